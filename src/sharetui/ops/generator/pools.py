"""What a generated company is drawn from: the activity types, stages, sources,
opportunity products, task subjects and teams, with how common each is, and the
pools of names made once with Faker (calling Faker per row is far too slow),
combined per row by seeded ``random.Random`` streams.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

# Activity types posted on leads: name -> captures an owner; and how common each is.
ACTIVITY_TYPES: dict[str, bool] = {
    "Meeting Scheduled": True,
    "Loan Evaluation": True,
    "Credit Evaluation": True,
    "Email Sent": False,
    "Inbound Call": False,
}
_ACTIVITY_WEIGHTS = {
    "Meeting Scheduled": 25,
    "Loan Evaluation": 10,
    "Credit Evaluation": 10,
    "Email Sent": 30,
    "Inbound Call": 25,
}
_NOTES = {
    "Meeting Scheduled": (
        "Branch meeting to compare fixed and tracker rates",
        "Video call to go through the application",
        "Meeting to review the documents",
        "Hand-over meeting with the product team",
    ),
    "Loan Evaluation": (
        "Affordability check for the requested amount",
        "Evaluate the loan against income and outgoings",
        "Second look at the loan after new payslips",
    ),
    "Credit Evaluation": (
        "Credit file review",
        "Check the credit history before the offer",
        "Review a missed payment on the credit file",
    ),
    "Email Sent": (
        "Sent the eligibility checklist",
        "Sent the product brochure",
        "Sent a reminder about missing documents",
    ),
    "Inbound Call": (
        "Customer called about rates",
        "Called to ask about the application status",
        "Asked about early repayment fees",
    ),
}
_LEAD_STAGES = (("new", 30), ("contacted", 25), ("qualified", 20), ("unqualified", 15), ("converted", 10))
_LEAD_SOURCES = (("website", 35), ("referral", 20), ("branch", 20), ("campaign", 15), ("partner", 10))
_OPP_STAGES = (("prospecting", 30), ("evaluation", 25), ("proposal", 20), ("won", 15), ("lost", 10))


@dataclass(frozen=True)
class _OppType:
    name: str
    weight: int
    low: int
    high: int
    step: int
    endings: tuple[str, ...]


_OPP_TYPES = (
    _OppType(
        "Home Loan",
        35,
        80_000,
        900_000,
        5_000,
        ("flat purchase", "terraced house", "semi-detached", "remortgage", "first home", "buy-to-let"),
    ),
    _OppType(
        "Personal Loan",
        25,
        2_000,
        40_000,
        500,
        ("renovation loan", "debt consolidation", "wedding loan", "van and equipment loan", "new kitchen"),
    ),
    _OppType("Car Loan", 20, 5_000, 60_000, 500, ("used hybrid car", "new family car", "electric car")),
    _OppType("Credit Card", 20, 500, 15_000, 500, ("cashback card", "travel card", "balance transfer")),
)
_OPP_TASKS = (
    "Chase the last three payslips",
    "Send the offer pack",
    "Book the property valuation",
    "Call back about the rate",
    "Collect proof of address",
    "Confirm the direct debit",
)
_LEAD_TASKS = ("Call back", "Send the brochure", "Qualify the lead", "Book a branch meeting")
_TEAMS = ("Pre-Sales", "Sales", "Home Loans", "Personal Loans", "Cards", "Business Banking")
# Share durations: the text a user types, its length, how common.
_LOCALES = (
    ("en_GB", 6),
    ("en_IE", 1),
    ("en_IN", 2),
    ("de_DE", 1),
    ("fr_FR", 1),
    ("es_ES", 1),
    ("it_IT", 1),
    ("pl_PL", 1),
    ("nl_NL", 1),
    ("pt_PT", 1),
)
_PERSONAL_DOMAINS = ("mailbox.test", "inbox.test", "post.test", "mail.test", "webmail.test")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z]", "", _ascii(text))[:30] or "x"


def _domain(company: str) -> str:
    return (re.sub(r"[^a-z0-9]+", "-", _ascii(company)).strip("-")[:40] or "company") + ".test"


def _cum(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


@dataclass
class _Pools:
    """Names made once with Faker and combined per row."""

    first: list[str]
    first_slug: list[str]
    last: list[str]
    last_slug: list[str]
    companies: list[str]  # "" for private customers
    company_domains: list[str]
    cities: list[str]


def _pools(seed: int) -> _Pools:
    from faker import Faker

    firsts: dict[str, None] = {}
    lasts: dict[str, None] = {}
    companies: dict[str, None] = {}
    cities: dict[str, None] = {}
    for locale, weight in _LOCALES:
        # One seeded instance per locale: a multi-locale Faker picks locales with
        # an unseeded generator.
        fake = Faker(locale)
        fake.seed_instance(f"sharetui:{seed}:{locale}")
        for _ in range(200 * weight):
            firsts.setdefault(fake.first_name().strip(), None)
            lasts.setdefault(fake.last_name().strip(), None)
        if locale in ("en_GB", "en_IE"):  # Faker's company() is slow: a few thousand do
            for _ in range(400 * weight):
                companies.setdefault(fake.company().strip(), None)
            for _ in range(60 * weight):
                cities.setdefault(fake.city().strip(), None)
    first = [f for f in firsts if f]
    last = [n for n in lasts if n]
    company = [c for c in companies if c]
    company += [""] * (len(company) * 3 // 7)  # three leads in ten are private customers
    return _Pools(
        first=first,
        first_slug=[_slug(f) for f in first],
        last=last,
        last_slug=[_slug(n) for n in last],
        companies=company,
        company_domains=[_domain(c) if c else "" for c in company],
        cities=[c for c in cities if c] or ["London"],
    )

"""Generate a large, realistic company into an existing database, fast.

:func:`generate` adds users (an admin when there is no active one, a couple of
sales managers, a marketing user and sales users spread over sales groups of
10-30 members), the activity types the stories need, leads, opportunities,
activities, tasks and shares (grants with their share requests and history),
for demos, load tests and benchmarks. :func:`check_integrity` (from
:mod:`sharetui.core.integrity`) checks the result.

How it stays fast (a million leads in seconds, not minutes):

- Names come from pools made once with Faker (calling Faker per row is far too
  slow), combined by seeded ``random.Random`` streams, one per purpose, so a
  seed gives the same company whatever the batch size.
- Rows go in with prepared ``INSERT`` statements through ``executemany`` in
  large batches, all in one transaction: a failure leaves nothing behind.
- Ids are reserved up front after the current maximum (on PostgreSQL the
  ``SERIAL`` sequences are moved past the block, under table locks, so other
  writers never collide with it).
- A table that at least doubles loses its secondary indexes for the load and
  gets them back, from the database's own DDL, before the commit: one sort
  per index beats a million random B-tree inserts. On SQLite the search index
  (FTS5) is rebuilt once the same way, its triggers set aside for the load.

Like ``sharetui load``, this is an import: it writes no outbox events (no
automation runs on the generated records), calls no plugin hooks and does not
go through the sharing service. Grants look as the service would have left
them: a ``share`` request (source ``api``) and ``share`` + ``granted`` history
rows each; ``expired`` / ``revoked`` rows (and the revoke request) for ended
ones. Some active grants are already past their expiry, so the next sweep has
work to do.
"""

from __future__ import annotations

import heapq
import json
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from sharetui.core.integrity import check_integrity
from sharetui.db.connection import SQLITE_PRAGMAS, is_sqlite
from sharetui.db.search import SEARCHED, rebuild_sqlite_index, suspend_sqlite_triggers
from sharetui.db.sql import Statement
from sharetui.domain.roles import GroupLevel, Role
from sharetui.domain.time import to_db
from sharetui.errors import UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

Progress = Callable[[str, int, int], None]

BATCH = 50_000
# Below this many new rows, inserting through live indexes beats rebuilding them.
BULK_INDEX_ROWS = 50_000
MAX_COUNT = 50_000_000  # ids are 32-bit on PostgreSQL; far beyond any test company
DAY = 86_400
_EPOCH = datetime(1970, 1, 1)
_SQLITE_CACHE_KIB = 131_072  # during the load (default 32 MB): more of the B-trees stay in memory

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
_DURATIONS = (("7d", 7, 20), ("14d", 14, 20), ("30d", 30, 30), ("90d", 90, 20), ("180d", 180, 10))
_PAST_EXPIRY = 0.06  # share of active grants already past expiry: the sweeper's work
_ENDED = 10  # one ended (expired or revoked) grant per this many active ones
_CONTEXT = 10  # up to one active grant in this many is made in an activity's context
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

_COLUMNS = {
    "users": "id username name email role active created_at updated_at",
    "sales_groups": "id name created_at",
    "group_members": "group_id user_id level",
    "activity_types": "id name entity captures_owner",
    "leads": "id name email phone company stage source owner_id fields created_at updated_at",
    "opportunities": "id lead_id name type stage amount owner_id fields created_at updated_at",
    "activities": "id type_id lead_id owner_id note fields status occurred_at created_at updated_at "
    "completed_at",
    "tasks": "id lead_id opportunity_id owner_id subject due_at reminder_at reminded_at completed_at "
    "created_at updated_at",
    "grants": "id entity_type entity_id user_id context_activity_id context_key access starts_at "
    "expires_at state source request_id until_completed ended_at ended_reason created_at updated_at",
    "share_requests": "id action outcome status entity_type entity_id recipient_name recipient_id "
    "requester_id context_activity_id all_contexts access duration until_completed source grant_id "
    "created_at finished_at",
    "history": "id at event status reason request_id grant_id entity_type entity_id user_id user_name "
    "access context_activity_id duration starts_at expires_at source requester_id requester_name "
    "automation_run_id",
}


@dataclass
class GenerateReport:
    """What :func:`generate` wrote, and how long each stage took."""

    seed: int
    counts: dict[str, int] = field(default_factory=dict)  # rows per table
    users_by_role: dict[str, int] = field(default_factory=dict)
    grants_by_state: dict[str, int] = field(default_factory=dict)
    stages: dict[str, tuple[int, float]] = field(default_factory=dict)  # stage -> (rows, seconds)
    indexes_rebuilt: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "counts": dict(self.counts),
            "users_by_role": dict(self.users_by_role),
            "grants_by_state": dict(self.grants_by_state),
            "stages": [
                {
                    "stage": name,
                    "rows": rows,
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(rows / seconds) if rows and seconds > 0 else None,
                }
                for name, (rows, seconds) in self.stages.items()
            ],
            "indexes_rebuilt": self.indexes_rebuilt,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
        }


def check_counts(*, leads: int, opportunities: int, users: int, grants: int) -> None:
    """Reject impossible numbers before anything is opened. Raises :class:`UsageError`."""
    given = {"leads": leads, "opportunities": opportunities, "users": users, "grants": grants}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"--{name} must be a whole number, not {value!r}")
        if value < 0:
            raise UsageError(f"--{name} must be 0 or more, not {value}")
        if value > MAX_COUNT:
            raise UsageError(f"--{name} must be at most {MAX_COUNT:,}, not {value:,}")
    if opportunities and not leads:
        raise UsageError("--opportunities needs leads to sit on: give --leads too")
    if grants and not leads:
        raise UsageError("--grants needs leads to share: give --leads too")


def generate(
    core: Core,
    *,
    leads: int,
    opportunities: int,
    users: int,
    grants: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> GenerateReport:
    """Fill the database with a large, realistic company (see the module docstring).

    Args:
        leads, opportunities: records to add; the new sales users own them.
        users: users to add, of all roles (with an admin only when no active one exists).
        grants: active lead shares to add, each to a new sales user on a lead
            they do not own, within the share cap; about 6% are already past
            expiry. One ended (``expired`` or ``revoked``) grant per ten active
            ones comes on top, as history.
        seed: the same seed, clock and starting database give the same company.
        progress: called as ``progress(stage, done, total)`` after each batch.

    Returns:
        A :class:`GenerateReport`. Bad numbers (negative, or more grants than
        the share cap allows) raise :class:`UsageError` with nothing written.
    """
    check_counts(leads=leads, opportunities=opportunities, users=users, grants=grants)
    return _Generator(core, leads, opportunities, users, grants, seed, progress).run()


# -- helpers ------------------------------------------------------------------------------------
def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z]", "", _ascii(text))[:30] or "x"


def _domain(company: str) -> str:
    return (re.sub(r"[^a-z0-9]+", "-", _ascii(company)).strip("-")[:40] or "company") + ".test"


def _cum(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


def _stamper(sqlite: bool) -> Callable[[int], Any]:
    """Seconds since the epoch (UTC) -> a stored time: naive datetimes for
    PostgreSQL, and for SQLite the text its adapter would have written
    (``YYYY-MM-DD HH:MM:SS``), built from cached parts ten times faster."""
    if not sqlite:
        return lambda seconds: _EPOCH + timedelta(seconds=seconds)
    days: dict[int, str] = {}
    clock = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

    def stamp(seconds: int) -> str:
        day, rest = divmod(seconds, DAY)
        text = days.get(day)
        if text is None:
            text = days[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
        return text + clock[rest]

    return stamp


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


def _allocate(total: int, room: list[int], weights: list[float]) -> list[int]:
    """Split ``total`` over slots by weight, never above a slot's room (needs sum(room) >= total)."""
    quota = [0] * len(room)
    remaining = total
    open_slots = [i for i, r in enumerate(room) if r > 0]
    while remaining > 0 and open_slots:
        weight = sum(weights[i] for i in open_slots)
        given = 0
        for i in open_slots:
            take = min(int(remaining * weights[i] / weight), room[i] - quota[i])
            quota[i] += take
            given += take
        if given == 0:  # less is left than one each: hand it out one at a time
            for i in open_slots:
                if given == remaining:
                    break
                quota[i] += 1
                given += 1
        remaining -= given
        open_slots = [i for i in open_slots if quota[i] < room[i]]
    return quota


@dataclass(slots=True)
class _Grant:
    starts: int
    expires: int
    ended: int | None
    state: str
    user: int
    lead: int  # index among the generated leads
    context: int | None
    until_completed: bool
    access: int
    duration: str
    requester: int


class _Generator:
    def __init__(
        self,
        core: Core,
        leads: int,
        opportunities: int,
        users: int,
        grants: int,
        seed: int,
        progress: Progress | None,
    ) -> None:
        self.core = core
        self.db = core.db
        self.sqlite = is_sqlite()
        self.n_leads = leads
        self.n_opps = opportunities
        self.n_users = users
        self.n_grants = grants
        self.seed = seed
        self.progress: Progress = progress or (lambda stage, done, total: None)
        self.now = int((to_db(core.now()) - _EPOCH).total_seconds())  # type: ignore[operator]
        self.stamp = _stamper(self.sqlite)
        self.report = GenerateReport(seed=seed)
        self.deferred: list[tuple[str, str]] = []  # (index, its DDL) to rebuild
        self.deferred_search: dict[str, list[str]] = {}  # table -> its search triggers' DDL
        self._inserts: dict[str, str] = {}

    # -- tools -----------------------------------------------------------------------------------
    def rng(self, name: str) -> random.Random:
        """One independent stream per purpose: batch sizes never change the data."""
        return random.Random(f"sharetui.generate:{self.seed}:{name}")

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """One batch: a prepared ``INSERT`` run by ``executemany``; on PostgreSQL,
        ``COPY ... FROM STDIN`` (psycopg 3), several times faster there."""
        if not rows:
            return
        cursor = self.db.cursor()
        columns = _COLUMNS[table].split()
        if not self.sqlite and hasattr(cursor, "copy"):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = self._inserts.get(table)
        if sql is None:
            text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            sql = self._inserts[table] = Statement(text).sql()
        cursor.executemany(sql, rows)

    def insert_batches(self, table: str, stage: str, rows: Any, total: int) -> None:
        """Insert rows from an iterable in batches, reporting progress."""
        self.progress(stage, 0, total)
        batch: list[tuple[Any, ...]] = []
        done = 0
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                self.insert(table, batch)
                done += len(batch)
                batch = []
                self.progress(stage, done, total)
        self.insert(table, batch)
        self.progress(stage, total, total)

    def reserve(self, table: str, n: int) -> int:
        """The first of ``n`` consecutive free ids in ``table`` (our locks keep them free)."""
        top = int((Statement(f"SELECT COALESCE(MAX(id), 0) FROM {table}").one() or (0,))[0])
        if self.sqlite or n == 0:
            return top + 1
        (sequence,) = Statement("SELECT pg_get_serial_sequence(?, 'id')").one([table]) or (None,)
        last, called = self.db.execute_sql(f"SELECT last_value, is_called FROM {sequence}").fetchone()
        first = max(top, int(last) if called else int(last) - 1) + 1
        Statement("SELECT setval(?, ?)").one([sequence, first + n - 1])
        return first

    def defer_indexes(self, table: str, adding: int) -> None:
        """Drop ``table``'s secondary indexes when the load at least doubles it;
        :meth:`rebuild_indexes` recreates them from the same DDL before the commit."""
        if adding < BULK_INDEX_ROWS:
            return
        existing = int((Statement(f"SELECT COUNT(*) FROM {table}").one() or (0,))[0])
        if existing > adding:
            return
        if self.sqlite:
            found = [
                (f'"{name}"', sql)
                for name, sql in Statement(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql IS NOT NULL ORDER BY name"
                ).all([table])
            ]
        else:  # not the primary key, nor indexes that back a constraint
            found = Statement(
                "SELECT c.oid::regclass::text, pg_get_indexdef(c.oid) FROM pg_index x "
                "JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = ?::regclass "
                "AND NOT x.indisprimary AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) ORDER BY 1"
            ).all([table])
        for name, _ in found:
            self.db.execute_sql(f"DROP INDEX {name}")
        self.deferred.extend(found)
        if self.sqlite and table in SEARCHED:
            # The text index too: one rebuild at the end, not a trigger per row.
            self.deferred_search[table] = suspend_sqlite_triggers(self.db, table)

    def rebuild_indexes(self) -> None:
        t = time.perf_counter()
        total = len(self.deferred)
        if total:
            self.progress("indexes", 0, total)
        for done, (_, ddl) in enumerate(self.deferred, 1):
            self.db.execute_sql(ddl)
            self.progress("indexes", done, total)
        self.report.indexes_rebuilt = total
        self.deferred = []
        if total:
            self.stage("indexes", 0, t)
        for table, triggers in self.deferred_search.items():
            t = time.perf_counter()
            self.progress("search index", 0, 1)
            rebuild_sqlite_index(self.db, table, triggers)
            self.progress("search index", 1, 1)
            self.stage("search index", 0, t)
        self.deferred_search = {}

    def stage(self, name: str, rows: int, started: float) -> None:
        before_rows, before_seconds = self.report.stages.get(name, (0, 0.0))
        self.report.stages[name] = (before_rows + rows, before_seconds + time.perf_counter() - started)

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> GenerateReport:
        began = time.perf_counter()
        if self.sqlite:
            self.db.execute_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        try:
            with self.db.atomic():
                t = time.perf_counter()
                self.lock()
                self.plan()
                self.stage("plan", 0, t)
                self.write_users()
                self.write_activity_types()
                self.write_leads()
                self.write_opportunities()
                self.write_activities()
                self.write_tasks()
                self.write_grants()
                self.rebuild_indexes()
                if not self.sqlite and self.report.rows >= BULK_INDEX_ROWS:
                    # Fresh statistics, or PostgreSQL keeps planning for the old, small tables.
                    t = time.perf_counter()
                    self.db.execute_sql(f"ANALYZE {', '.join(_COLUMNS)}")
                    self.stage("analyze", 0, t)
                self.progress("commit", 0, 1)  # SQLite: the WAL checkpoint takes a while
                t = time.perf_counter()
            self.stage("commit", 0, t)
            self.progress("commit", 1, 1)
        finally:
            if self.sqlite:
                self.db.execute_sql(f"PRAGMA cache_size = {SQLITE_PRAGMAS['cache_size']}")
        self.report.seconds = time.perf_counter() - began
        return self.report

    def lock(self) -> None:
        """PostgreSQL: keep other writers out while we reserve id blocks (on
        SQLite, ``BEGIN IMMEDIATE`` already holds the write lock)."""
        if not self.sqlite:
            self.db.execute_sql(f"LOCK TABLE {', '.join(_COLUMNS)} IN SHARE ROW EXCLUSIVE MODE")

    # -- plan: every check before the first write --------------------------------------------------
    def plan(self) -> None:
        self.usernames = {r[0] for r in Statement("SELECT username FROM users").all()}
        self.group_names = {r[0] for r in Statement("SELECT name FROM sales_groups").all()}
        admin = Statement(
            "SELECT id, username FROM users WHERE role = ? AND active = ? ORDER BY id LIMIT 1"
        ).one([Role.ADMIN.value, True])
        self.existing_admin = (int(admin[0]), str(admin[1])) if admin else None
        self.cap = self.core.settings.share_cap("lead")
        self.owners_can_share = bool(self.core.settings.get("owners_can_share"))

        # Roles: an admin if none, a couple of managers, marketing; the rest sell.
        n_admin = 1 if self.existing_admin is None and self.n_users else 0
        rest = self.n_users - n_admin
        n_managers = 2 if rest >= 10 else 1 if rest >= 5 else 0
        n_marketing = 1 if rest >= 5 else 0
        n_sales = rest - n_managers - n_marketing
        self.roles = (
            [Role.ADMIN.value] * n_admin
            + [Role.SALES_MANAGER.value] * n_managers
            + [Role.MARKETING.value] * n_marketing
            + [Role.SALES.value] * n_sales
        )
        if self.n_leads and not n_sales:
            raise UsageError(
                f"--users {self.n_users} leaves no sales user to own the leads: give at least {n_admin + 1}"
            )
        self.n_sales = n_sales
        # One in thirty sales users has left: they still own leads, they receive no shares.
        n_inactive = n_sales // 30 if n_sales >= 10 else 0
        self.inactive = set(self.rng("inactive").sample(range(n_sales), n_inactive))

        # Lead owners (positions among the sales users), then what the cap allows.
        weights_rng = self.rng("owner.weights")
        weights = [weights_rng.uniform(0.5, 1.5) * (0.3 if p in self.inactive else 1) for p in range(n_sales)]
        self.owner_pos = (
            self.rng("lead.owner").choices(range(n_sales), cum_weights=_cum(weights), k=self.n_leads)
            if self.n_leads
            else []
        )
        owned = Counter(self.owner_pos)
        self.room = [
            0 if p in self.inactive else min(self.cap, self.n_leads - owned.get(p, 0)) for p in range(n_sales)
        ]
        allowed = sum(self.room)
        if self.n_grants > allowed:
            raise UsageError(
                f"--grants {self.n_grants:,} is more than this company allows: at most {allowed:,} "
                f"({n_sales - n_inactive:,} active sales user(s), each with shares on at most "
                f"{self.cap:,} leads they do not own); add users or leads, or raise share_cap_leads"
            )

    # -- users and groups ------------------------------------------------------------------------
    def write_users(self) -> None:
        t = time.perf_counter()
        total = len(self.roles)
        self.progress("users", 0, total)
        pools = self.pools = _pools(self.seed)
        rng = self.rng("users")
        first_id = self.reserve("users", total)
        first_sales = total - self.n_sales
        taken = set(self.usernames)
        self.names: dict[int, str] = {}  # user id -> username
        rows = []
        for i, role in enumerate(self.roles):
            f = int(rng.random() * len(pools.first))
            last = int(rng.random() * len(pools.last))
            base = "admin" if role == Role.ADMIN.value else f"{pools.first_slug[f]}.{pools.last_slug[last]}"
            username, n = base, 1
            while username in taken:
                n += 1
                username = f"{base}{n}"
            taken.add(username)
            uid = first_id + i
            active = not (i >= first_sales and (i - first_sales) in self.inactive)
            stamp = self.stamp(self.now - 30 * DAY - int(rng.random() * 3 * 365 * DAY))
            name = f"{pools.first[f]} {pools.last[last]}"
            rows.append((uid, username, name, f"{username}@example-bank.test", role, active, stamp, stamp))
            self.names[uid] = username
        self.insert("users", rows)
        self.sales_ids = list(range(first_id + first_sales, first_id + total))
        self.active_sales = [u for p, u in enumerate(self.sales_ids) if p not in self.inactive]
        # Active sales users who can receive shares, and on how many leads at most.
        self.room_of = {self.sales_ids[p]: r for p, r in enumerate(self.room) if r}
        managers = [first_id + i for i, r in enumerate(self.roles) if r == Role.SALES_MANAGER.value]
        if not managers:
            managers = [first_id + i for i, r in enumerate(self.roles) if r == Role.ADMIN.value]
        if not managers and self.existing_admin is not None:
            managers = [self.existing_admin[0]]
            self.names[self.existing_admin[0]] = self.existing_admin[1]
        self.managers = managers
        self.report.counts["users"] = total
        self.report.users_by_role = dict(Counter(self.roles))
        if self.inactive:
            self.report.users_by_role["sales_inactive"] = len(self.inactive)
        self.write_groups(rng)
        self.progress("users", total, total)
        self.stage(
            "users", total + self.report.counts["sales_groups"] + self.report.counts["group_members"], t
        )

    def write_groups(self, rng: random.Random) -> None:
        """Sales users in groups of 10-30: a manager each, then modify, view and own members."""
        members = list(self.sales_ids)
        rng.shuffle(members)
        sizes: list[int] = []
        left = len(members)
        while left:
            # Leave at least ten for the next group; the last one takes what is left.
            size = left if left <= 30 else rng.randint(10, min(30, left - 10))
            sizes.append(size)
            left -= size
        cities = self.pools.cities
        taken = set(self.group_names)
        names = []
        for i in range(len(sizes)):
            base = f"{cities[(i // len(_TEAMS)) % len(cities)]} {_TEAMS[i % len(_TEAMS)]}"
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base} {n}"
            taken.add(name)
            names.append(name)
        first_id = self.reserve("sales_groups", len(sizes))
        stamp = self.stamp(self.now - 3 * 365 * DAY)
        self.insert("sales_groups", [(first_id + i, name, stamp) for i, name in enumerate(names)])
        levels = [
            int(level) for level in (GroupLevel.OWN, GroupLevel.VIEW, GroupLevel.MODIFY, GroupLevel.MANAGE)
        ]
        cum = _cum((50, 25, 20, 5))
        rows = []
        at = 0
        for g, size in enumerate(sizes):
            for k, uid in enumerate(members[at : at + size]):
                level = int(GroupLevel.MANAGE) if k == 0 else rng.choices(levels, cum_weights=cum)[0]
                rows.append((first_id + g, uid, level))
            at += size
        self.insert("group_members", rows)
        self.report.counts["sales_groups"] = len(sizes)
        self.report.counts["group_members"] = len(rows)

    def write_activity_types(self) -> None:
        """Reuse the types that exist by name; add the missing ones."""
        t = time.perf_counter()
        found = {
            name: (int(i), entity, bool(captures))
            for i, name, entity, captures in Statement(
                "SELECT id, name, entity, captures_owner FROM activity_types"
            ).all()
        }
        missing = [name for name in ACTIVITY_TYPES if name not in found]
        first_id = self.reserve("activity_types", len(missing))
        rows = [(first_id + i, name, "lead", ACTIVITY_TYPES[name]) for i, name in enumerate(missing)]
        self.insert("activity_types", rows)
        for type_id, name, entity, captures in rows:
            found[name] = (type_id, entity, captures)
        # (id, name, captures an owner) of the lead types to post
        self.activity_types = [(found[n][0], n, found[n][2]) for n in ACTIVITY_TYPES if found[n][1] == "lead"]
        self.report.counts["activity_types"] = len(rows)
        self.stage("activity types", len(rows), t)

    # -- records ---------------------------------------------------------------------------------
    def lead_created(self, index: int) -> int:
        """Leads arrive steadily over three years until two days ago: ids grow with time."""
        span = 3 * 365 * DAY
        return self.now - span + (index * (span - 2 * DAY)) // max(1, self.n_leads)

    def write_leads(self) -> None:
        t = time.perf_counter()
        n = self.n_leads
        pools = self.pools
        self.progress("leads", 0, n)
        self.defer_indexes("leads", n)
        self.lead0 = first_id = self.reserve("leads", n)
        self.owner = [self.sales_ids[p] for p in self.owner_pos]  # lead index -> owner id
        del self.owner_pos
        self.lead_first = self.rng("lead.first").choices(range(len(pools.first)), k=n)
        self.lead_last = self.rng("lead.last").choices(range(len(pools.last)), k=n)
        company_rng = self.rng("lead.company")
        email_rng = self.rng("lead.email")
        stage_rng = self.rng("lead.stage")
        source_rng = self.rng("lead.source")
        phone_rng = self.rng("lead.phone")
        fields_rng = self.rng("lead.fields")
        stages = [s for s, _ in _LEAD_STAGES]
        stage_cum = _cum([w for _, w in _LEAD_STAGES])
        sources = [s for s, _ in _LEAD_SOURCES]
        source_cum = _cum([w for _, w in _LEAD_SOURCES])
        phones = [f"+44 7700 900{i:03d}" for i in range(1000)]  # Ofcom's drama range: fictitious
        fields_pool = self.lead_fields()
        company_index = range(len(pools.companies))
        # Creation times from a pool of stamps along the three years, in id order.
        self.lead_stamps = [self.stamp(self.lead_created(i * n // 8192)) for i in range(8192)]
        stamps = self.lead_stamps
        fs, ls, cd, pd = pools.first_slug, pools.last_slug, pools.company_domains, _PERSONAL_DOMAINS
        fn, ln, cn = pools.first, pools.last, pools.companies
        for start in range(0, n, BATCH):
            end = min(n, start + BATCH)
            k = end - start
            firsts = self.lead_first[start:end]
            lasts = self.lead_last[start:end]
            companies = company_rng.choices(company_index, k=k)
            # email styles 0-3: a work address when there is a company; else a personal mailbox
            styles = [int(email_rng.random() * 10) for _ in range(k)]
            emails = [
                f"{fs[a]}.{ls[b]}@{cd[c]}" if s < 4 and cd[c] else f"{fs[a]}.{ls[b]}{s}@{pd[s % 5]}"
                for a, b, c, s in zip(firsts, lasts, companies, styles, strict=True)
            ]
            created = [stamps[(i * 8192) // n] for i in range(start, end)]
            rows = zip(
                range(first_id + start, first_id + end),
                [fn[a] + " " + ln[b] for a, b in zip(firsts, lasts, strict=True)],
                emails,
                phone_rng.choices(phones, k=k),
                [cn[c] for c in companies],
                stage_rng.choices(stages, cum_weights=stage_cum, k=k),
                source_rng.choices(sources, cum_weights=source_cum, k=k),
                self.owner[start:end],
                fields_rng.choices(fields_pool, k=k),
                created,
                created,
                strict=True,
            )
            self.insert("leads", list(rows))
            self.progress("leads", end, n)
        self.report.counts["leads"] = n
        self.stage("leads", n, t)

    def lead_fields(self) -> list[str]:
        """A pool of custom-field documents, encoded as the JSON field stores them."""
        rng = self.rng("lead.fields.pool")
        cum = _cum([o.weight for o in _OPP_TYPES])
        out = []
        for _ in range(4096):
            kind = rng.choices(_OPP_TYPES, cum_weights=cum)[0]
            doc = {
                "product_interest": kind.name,
                "requested_amount": rng.randrange(kind.low, kind.high + 1, kind.step),
                "city": rng.choice(self.pools.cities),
            }
            out.append(json.dumps(doc, sort_keys=True, ensure_ascii=False))
        return out

    def lead_name(self, index: int) -> str:
        return f"{self.pools.first[self.lead_first[index]]} {self.pools.last[self.lead_last[index]]}"

    def write_opportunities(self) -> None:
        """On random leads (sorted, so opportunity ids grow with their leads' age);
        most are owned by the lead's owner, some by a product specialist."""
        t = time.perf_counter()
        n = self.n_opps
        self.progress("opportunities", 0, n)
        self.defer_indexes("opportunities", n)
        self.opp0 = first_id = self.reserve("opportunities", n)
        rng = self.rng("opportunities")
        self.opp_lead = sorted(int(rng.random() * self.n_leads) for _ in range(n))
        active = self.active_sales or self.sales_ids
        r = rng.random
        self.opp_owner = [
            self.owner[li] if r() < 0.8 else active[int(r() * len(active))] for li in self.opp_lead
        ]
        kinds = rng.choices(_OPP_TYPES, cum_weights=_cum([o.weight for o in _OPP_TYPES]), k=n)
        stages = rng.choices([s for s, _ in _OPP_STAGES], cum_weights=_cum([w for _, w in _OPP_STAGES]), k=n)
        terms = [f'{{"term_years": {y}}}' for y in range(10, 36)]
        stamps, p = self.lead_stamps, len(self.lead_stamps)

        def rows():
            for i, (li, kind) in enumerate(zip(self.opp_lead, kinds, strict=True)):
                steps = (kind.high - kind.low) // kind.step + 1
                created = stamps[min(p - 1, li * p // self.n_leads + int(r() * 8))]
                yield (
                    first_id + i,
                    self.lead0 + li,
                    f"{self.lead_name(li)} - {kind.endings[int(r() * len(kind.endings))]}",
                    kind.name,
                    stages[i],
                    float(kind.low + kind.step * int(r() * steps)),
                    self.opp_owner[i],
                    terms[int(r() * len(terms))] if kind.name == "Home Loan" else "{}",
                    created,
                    created,
                )

        self.insert_batches("opportunities", "opportunities", rows(), n)
        self.report.counts["opportunities"] = n
        self.stage("opportunities", n, t)

    def write_activities(self) -> None:
        """Three activities per hundred leads. Those that capture an owner often
        belong to another sales user (a meeting with a colleague): some shares
        are made in their context."""
        t = time.perf_counter()
        types = self.activity_types
        n = (self.n_leads * 3) // 100 if types else 0
        self.defer_indexes("activities", n)
        first_id = self.reserve("activities", n)
        rng = self.rng("activities")
        r = rng.random
        picked = rng.choices(types, cum_weights=_cum([_ACTIVITY_WEIGHTS[name] for _, name, _ in types]), k=n)
        leads = sorted(int(r() * self.n_leads) for _ in range(n))
        active = self.active_sales
        active_set = set(active)
        # (activity id, lead index, owner, still open): owned by someone other than the lead's owner
        self.context_candidates: list[tuple[int, int, int, bool]] = []
        stamp, now = self.stamp, self.now

        def rows():
            for i, (li, (type_id, name, captures)) in enumerate(zip(leads, picked, strict=True)):
                lead_owner = self.owner[li]
                owner = None
                if captures:
                    owner = lead_owner
                    if active and r() < 0.6:
                        other = active[int(r() * len(active))]
                        owner = other if other != lead_owner else owner
                born = self.lead_created(li)
                if name == "Meeting Scheduled" and r() < 0.3:
                    occurred = now + 3600 + int(r() * 14 * DAY)  # booked for the coming days
                    created = max(born, now - int(r() * 7 * DAY))
                else:
                    occurred = born + int(r() * max(3600, now - born - 3600))
                    created = occurred
                done = occurred < now and r() < 0.6
                completed = stamp(min(now, occurred + 600 + int(r() * 3 * DAY))) if done else None
                fields = (
                    f'{{"amount": {10_000 + 1_000 * int(r() * 490)}}}' if name == "Loan Evaluation" else "{}"
                )
                notes = _NOTES.get(name, ("",))
                aid = first_id + i
                if owner is not None and owner != lead_owner and owner in active_set:
                    self.context_candidates.append((aid, li, owner, not done))
                yield (
                    aid,
                    type_id,
                    self.lead0 + li,
                    owner,
                    notes[int(r() * len(notes))],
                    fields,
                    "completed" if done else "open",
                    stamp(occurred),
                    stamp(created),
                    completed or stamp(created),
                    completed,
                )

        self.insert_batches("activities", "activities", rows(), n)
        self.report.counts["activities"] = n
        self.stage("activities", n, t)

    def write_tasks(self) -> None:
        """Tasks on opportunities (one per five) and on leads (one per two hundred);
        reminders already past were sent, so the worker owes nothing."""
        t = time.perf_counter()
        n_opp = self.n_opps // 5
        n_lead = self.n_leads // 200
        n = n_opp + n_lead
        self.defer_indexes("tasks", n)
        first_id = self.reserve("tasks", n)
        rng = self.rng("tasks")
        r = rng.random
        active = self.active_sales or self.sales_ids
        on_opps = sorted(int(r() * self.n_opps) for _ in range(n_opp))
        on_leads = sorted(int(r() * self.n_leads) for _ in range(n_lead))
        stamp, now = self.stamp, self.now

        def rows():
            for i in range(n):
                if i < n_opp:
                    oi = on_opps[i]
                    lead_id, opp_id, owner, subjects = None, self.opp0 + oi, self.opp_owner[oi], _OPP_TASKS
                else:
                    li = on_leads[i - n_opp]
                    lead_id, opp_id, owner, subjects = self.lead0 + li, None, self.owner[li], _LEAD_TASKS
                if r() < 0.3:
                    owner = active[int(r() * len(active))]
                due = now - 30 * DAY + int(r() * 60 * DAY)
                reminder = due - 3600 - int(r() * 2 * DAY) if r() < 0.7 else None
                created = min(now - 60, (reminder or due) - DAY - int(r() * 13 * DAY))
                completed = due - int(r() * DAY) if due < now and r() < 0.6 else None
                yield (
                    first_id + i,
                    lead_id,
                    opp_id,
                    owner,
                    subjects[int(r() * len(subjects))],
                    stamp(due),
                    stamp(reminder) if reminder is not None else None,
                    stamp(reminder) if reminder is not None and reminder <= now else None,
                    stamp(completed) if completed is not None else None,
                    stamp(created),
                    stamp(completed if completed is not None else created),
                )

        self.insert_batches("tasks", "tasks", rows(), n)
        self.report.counts["tasks"] = n
        self.stage("tasks", n, t)

    # -- shares ----------------------------------------------------------------------------------
    def pick_pairs(self) -> list[tuple[int, int, int | None, bool]]:
        """Who gets which lead, as (user, lead index, context activity, until completed):
        a tenth in the context of an activity the recipient owns, the rest spread over
        the active sales users by weight, each within their room under the cap."""
        rng = self.rng("grants.pairs")
        r = rng.random
        room = dict(self.room_of)
        owner = self.owner
        n_leads = self.n_leads
        owned = Counter(owner)
        taken: dict[int, set[int]] = {}
        pairs: list[tuple[int, int, int | None, bool]] = []
        candidates = list(self.context_candidates)
        rng.shuffle(candidates)
        for aid, li, uid, still_open in candidates:
            if len(pairs) >= self.n_grants // _CONTEXT:
                break
            leads = taken.setdefault(uid, set())
            if li in leads or room.get(uid, 0) <= 0:
                continue
            leads.add(li)
            room[uid] -= 1
            pairs.append((uid, li, aid, still_open and r() < 0.3))
        users = [u for u in self.sales_ids if room.get(u, 0) > 0]
        quota = _allocate(
            self.n_grants - len(pairs), [room[u] for u in users], [0.2 + 1.6 * r() for _ in users]
        )
        for uid, k in zip(users, quota, strict=True):
            if not k:
                continue
            leads = taken.setdefault(uid, set())
            free = n_leads - owned.get(uid, 0) - len(leads)
            if k * 3 < free:  # plenty to choose from: draw until enough are new
                picked = 0
                while picked < k:
                    li = int(r() * n_leads)
                    if owner[li] != uid and li not in leads:
                        leads.add(li)
                        pairs.append((uid, li, None, False))
                        picked += 1
            else:
                pool = [li for li in range(n_leads) if owner[li] != uid and li not in leads]
                pairs.extend((uid, li, None, False) for li in rng.sample(pool, k))
        return pairs

    def plan_grants(self) -> tuple[list[_Grant], int]:
        """Every grant with its times and requester, in time order; and how many
        active ones are already past expiry."""
        pairs = self.pick_pairs()
        rng = self.rng("grants.times")
        r = rng.random
        now, owner = self.now, self.owner
        managers = self.managers
        can_share = set(self.active_sales) if self.owners_can_share else set()

        def requester(li: int) -> int:
            """Mostly the lead's owner; else (and when owners may not share) a manager."""
            if owner[li] in can_share and (not managers or r() < 0.75):
                return owner[li]
            return managers[int(r() * len(managers))]

        n_ended = self.n_grants // _ENDED
        durations = rng.choices(
            _DURATIONS, cum_weights=_cum([d[2] for d in _DURATIONS]), k=len(pairs) + n_ended
        )
        grants: list[_Grant] = []
        past = 0
        for (uid, li, ctx, until), (text, days, _) in zip(pairs, durations, strict=False):
            length = days * DAY
            if r() < _PAST_EXPIRY:
                expires = now - 60 - int(r() * 14 * DAY)
                past += 1
            else:
                expires = now + 60 + int(r() * (length - 60))
            access = 2 if r() < 0.3 else 1
            grants.append(
                _Grant(
                    expires - length,
                    expires,
                    None,
                    "active",
                    uid,
                    li,
                    ctx,
                    until,
                    access,
                    text,
                    requester(li),
                )
            )
        # Ended grants, older: half expired (the sweeper's work), half revoked by their requester.
        recipients = list(self.room_of)  # active, and not the owner of every lead
        for e, (text, days, _) in enumerate(durations[len(pairs) :]):
            uid = recipients[int(r() * len(recipients))]
            li = int(r() * self.n_leads)
            while owner[li] == uid:
                li = int(r() * self.n_leads)
            length = days * DAY
            if e < n_ended - n_ended // 2:
                expires = now - 3600 - int(r() * 365 * DAY)
                starts, ended, state = expires - length, expires, "expired"
            else:
                starts = now - 3600 - int(r() * 365 * DAY)
                expires = starts + length
                span = min(expires, now) - starts
                ended, state = starts + 60 + int(r() * max(1, span - 120)), "revoked"
            access = 2 if r() < 0.3 else 1
            grants.append(
                _Grant(starts, expires, ended, state, uid, li, None, False, access, text, requester(li))
            )
        grants.sort(key=lambda g: g.starts)  # grant ids grow with time, as in real use
        return grants, past

    def write_grants(self) -> None:
        t = time.perf_counter()
        grants, past = self.plan_grants() if self.n_grants else ([], 0)
        revoked = [i for i, g in enumerate(grants) if g.state == "revoked"]
        n_expired = sum(1 for g in grants if g.state == "expired")
        for table, adding in (("grants", len(grants)), ("share_requests", len(grants) + len(revoked))):
            self.defer_indexes(table, adding)
        grant0 = self.reserve("grants", len(grants))
        request0 = self.reserve("share_requests", len(grants) + len(revoked))
        # Requests in time order: each grant's share request, and the revoke requests.
        shares = [(g.starts, i, 0) for i, g in enumerate(grants)]
        revokes = sorted((grants[i].ended, i, 1) for i in revoked)
        share_request = [0] * len(grants)
        revoke_request: dict[int, int] = {}
        for offset, (_, i, kind) in enumerate(heapq.merge(shares, revokes)):
            if kind == 0:
                share_request[i] = request0 + offset
            else:
                revoke_request[i] = request0 + offset
        stamp = self.stamp
        times = [
            (stamp(g.starts), stamp(g.expires), stamp(g.ended) if g.ended is not None else None)
            for g in grants
        ]
        names, lead0 = self.names, self.lead0

        def grant_rows():
            for i, g in enumerate(grants):
                starts, expires, ended = times[i]
                reason = (
                    "expired"
                    if g.state == "expired"
                    else f"revoked by {names[g.requester]}"
                    if ended
                    else None
                )
                yield (
                    grant0 + i, "lead", lead0 + g.lead, g.user, g.context, g.context or 0, g.access,
                    starts, expires, g.state, "api", share_request[i], g.until_completed, ended, reason,
                    starts, ended or starts,
                )  # fmt: skip

        def request_rows():
            for _, i, kind in heapq.merge(shares, revokes):
                g = grants[i]
                when = times[i][0] if kind == 0 else times[i][2]
                head = (
                    (share_request[i], "share", "granted")
                    if kind == 0
                    else (revoke_request[i], "revoke", "revoked")
                )
                yield (
                    *head, "completed", "lead", lead0 + g.lead, names[g.user], g.user, g.requester,
                    g.context, False,
                    g.access if kind == 0 else None, g.duration if kind == 0 else None,
                    g.until_completed if kind == 0 else False, "api", grant0 + i, when, when,
                )  # fmt: skip

        self.insert_batches("grants", "grants", grant_rows(), len(grants))
        self.stage("grants", len(grants), t)
        t = time.perf_counter()
        self.insert_batches("share_requests", "share requests", request_rows(), len(grants) + len(revoked))
        self.stage("share requests", len(grants) + len(revoked), t)
        self.report.counts["grants"] = len(grants)
        self.report.counts["share_requests"] = len(grants) + len(revoked)
        self.write_history(grants, times, grant0, share_request, revoke_request)
        self.report.grants_by_state = {
            "active": len(grants) - n_expired - len(revoked),
            "past_expiry": past,
            "expired": n_expired,
            "revoked": len(revoked),
        }

    def write_history(
        self,
        grants: list[_Grant],
        times: list[tuple[Any, Any, Any]],
        grant0: int,
        share_request: list[int],
        revoke_request: dict[int, int],
    ) -> None:
        """What the service writes, in time order: ``share`` + ``granted`` for every
        grant; ``expired`` (as the sweeper writes it); ``revoked`` + ``revoke``."""
        t = time.perf_counter()
        starts = [(g.starts, i, 0) for i, g in enumerate(grants)]
        ends = sorted((g.ended, i, 1) for i, g in enumerate(grants) if g.ended is not None)
        total = 2 * len(grants) + len(ends) + len(revoke_request)
        self.defer_indexes("history", total)
        first = self.reserve("history", total)
        names, lead0 = self.names, self.lead0

        def rows():
            next_id = first
            for _, i, kind in heapq.merge(starts, ends):
                g = grants[i]
                began, expires, ended = times[i]
                record = ("lead", lead0 + g.lead, g.user, names[g.user], g.access, g.context)
                who = names[g.requester]
                if kind == 0:
                    request = share_request[i]
                    for event in ("share", "granted"):
                        yield (next_id, began, event, "completed", None, request, grant0 + i, *record,
                               g.duration, began, expires, "api", g.requester, who, None)  # fmt: skip
                        next_id += 1
                elif g.state == "expired":
                    yield (next_id, expires, "expired", "completed", "expired", share_request[i], grant0 + i,
                           *record, None, began, expires, "api", None, "", None)  # fmt: skip
                    next_id += 1
                else:
                    request = revoke_request[i]
                    yield (next_id, ended, "revoked", "completed", f"revoked by {who}", request, grant0 + i,
                           *record, None, began, expires, "api", g.requester, who, None)  # fmt: skip
                    yield (next_id + 1, ended, "revoke", "completed", None, request, grant0 + i,
                           *record, None, began, expires, "api", g.requester, who, None)  # fmt: skip
                    next_id += 2

        self.insert_batches("history", "history", rows(), total)
        self.report.counts["history"] = total
        self.stage("history", total, t)


__all__ = [
    "ACTIVITY_TYPES",
    "BULK_INDEX_ROWS",
    "GenerateReport",
    "check_counts",
    "check_integrity",
    "generate",
]

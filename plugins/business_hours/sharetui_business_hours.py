"""sharetui plugin: shared access only within business hours.

Access that comes *only* from a time-limited share is allowed on business days
within business hours, in a configurable time zone; outside them the check
denies it. Owners, sales groups and roles are never restricted.

Configuration (environment):

- ``SHARETUI_BUSINESS_HOURS`` — ``09:00-17:00`` (default); the end is exclusive.
- ``SHARETUI_BUSINESS_DAYS`` — ``mon-fri`` (default), or a list: ``mon,tue,thu``.
- ``SHARETUI_BUSINESS_TZ`` — an IANA zone, e.g. ``Europe/London`` (default ``UTC``).

A bad value makes every share-only check fail, which denies (fail closed) and
shows in ``sharetui plugins``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from sharetui import hookimpl
from sharetui.sdk import Access, AccessDecision, RecordRef, UserInfo, Verdict, deny

PLUGIN_NAME = "business-hours"
__version__ = "0.1.0"

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessHours:
    start: time
    end: time
    days: frozenset[int]  # 0 = Monday
    zone: ZoneInfo
    text: str

    def open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            first, last = part.split("-", 1)
            a, b = DAYS.index(first[:3]), DAYS.index(last[:3])
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part:
            days.add(DAYS.index(part[:3]))
    if not days:
        raise ValueError("no business days")
    return frozenset(days)


@lru_cache(maxsize=8)
def parse(hours: str, days: str, zone: str) -> BusinessHours:
    """Parse the configuration; raises ``ValueError`` with what is wrong."""
    try:
        start_text, end_text = hours.replace(" ", "").split("-", 1)
        start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    except ValueError:
        raise ValueError(f"SHARETUI_BUSINESS_HOURS={hours!r}: write e.g. 09:00-17:00") from None
    if not start < end:
        raise ValueError(f"SHARETUI_BUSINESS_HOURS={hours!r}: the start must come before the end")
    try:
        day_set = _parse_days(days)
    except ValueError:
        raise ValueError(f"SHARETUI_BUSINESS_DAYS={days!r}: write e.g. mon-fri or mon,wed,fri") from None
    try:
        tz = ZoneInfo(zone)
    except Exception:  # noqa: BLE001 - ZoneInfo raises several kinds
        raise ValueError(f"SHARETUI_BUSINESS_TZ={zone!r}: not an IANA time zone") from None
    return BusinessHours(start, end, day_set, tz, f"{days} {hours} {zone}")


def configured() -> BusinessHours:
    return parse(
        os.environ.get("SHARETUI_BUSINESS_HOURS", "09:00-17:00"),
        os.environ.get("SHARETUI_BUSINESS_DAYS", "mon-fri"),
        os.environ.get("SHARETUI_BUSINESS_TZ", "UTC"),
    )


@hookimpl
def sharetui_check_access(
    user: UserInfo, record: RecordRef, action: str, decision: AccessDecision
) -> Verdict | None:
    need = Access.EDIT if action == "edit" else Access.READ
    if not decision.only_via_share(need):
        return None  # cheap: most checks end here
    hours = configured()
    if hours.open_at(decision.now):
        return None
    return deny(f"shared access only during business hours ({hours.text})")

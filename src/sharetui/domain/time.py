"""Time conversion: times are stored as naive UTC in whole seconds and shown in local
time (``SHARETUI_TZ`` or the machine's)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def display_zone() -> tzinfo | None:
    name = os.environ.get("SHARETUI_TZ", "").strip()
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None  # astimezone(None) uses the machine's zone


_ZONE_UNSET: Any = object()


def local_text(
    value: datetime | str | None, *, seconds: bool = False, zone: tzinfo | None = _ZONE_UNSET
) -> str:
    """``2026-11-23 19:30 CET`` style text in the display zone; ``-`` for none.

    ``zone``: the display zone, when the caller has looked it up once for many
    values (a table of hundreds of times; the lookup reads the environment)."""
    at = from_db(value)
    if at is None:
        return "-"
    try:
        local = at.astimezone(display_zone() if zone is _ZONE_UNSET else zone)
    except (OverflowError, ValueError):
        # A stored time at the edge of what datetime holds (9999-12-31 23:59 is year
        # 10000 in Tokyo): shown in UTC rather than ending the command with a traceback.
        local = at
    if local.year < 1000:  # strftime writes such years unpadded: keep its text
        return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z").strip()
    # What strftime writes, without its cost (a table shows hundreds of times).
    text = f"{local.year}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
    if seconds:
        text += f":{local.second:02d}"
    return f"{text} {local.tzname() or ''}".strip()


def iso(value: datetime | str | None) -> str | None:
    """UTC ISO-8601 with a ``Z``, for JSON output."""
    if type(value) is datetime:
        return _iso_of(value)
    at = from_db(value)
    return at.isoformat().replace("+00:00", "Z") if at else None


@lru_cache(maxsize=1024)
def _iso_of(value: datetime) -> str:
    # Kept: a batch of shares writes the same few times (now, now + the duration) into
    # every grant, history row and event. Equal datetimes are the same instant (or the
    # same naive UTC time): the same text.
    return from_db(value).isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]


# The last conversion to_db made: a frozen clock, and a batch of shares or runs, hand it
# the same ``now`` object again and again (a dozen times a share).
_LAST_TO_DB: tuple[datetime | None, datetime | None] = (None, None)


def to_db(value: datetime | None) -> datetime | None:
    """Aware datetime -> naive UTC in whole seconds, the stored form.

    Whole seconds keep every time the same text in SQL and in JSON on both
    databases; order within a second is kept by row ids.
    """
    global _LAST_TO_DB
    if value is None:
        return None
    last = _LAST_TO_DB
    if last[0] is value:
        return last[1]
    converted = value
    if converted.tzinfo is not None:
        converted = converted.astimezone(UTC).replace(tzinfo=None)
    converted = converted.replace(microsecond=0)
    _LAST_TO_DB = (value, converted)
    return converted


def from_db(value: Any) -> datetime | None:
    """Stored time (naive UTC datetime, or SQLite text from raw SQL) -> aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)

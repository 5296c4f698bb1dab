"""Time conversion: times are stored as naive UTC in whole seconds and shown in local
time (``SHARETUI_TZ`` or the machine's)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
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
    at = from_db(value)
    return at.isoformat().replace("+00:00", "Z") if at else None


def to_db(value: datetime | None) -> datetime | None:
    """Aware datetime -> naive UTC in whole seconds, the stored form.

    Whole seconds keep every time the same text in SQL and in JSON on both
    databases; order within a second is kept by row ids.
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


def from_db(value: Any) -> datetime | None:
    """Stored time (naive UTC datetime, or SQLite text from raw SQL) -> aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)

"""Times are stored as UTC and shown in local time (``SHARETUI_TZ`` or the machine's)."""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sharetui.core.sql import from_db


def display_zone() -> tzinfo | None:
    name = os.environ.get("SHARETUI_TZ", "").strip()
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None  # astimezone(None) uses the machine's zone


def local_text(value: datetime | str | None, *, seconds: bool = False) -> str:
    """``2026-11-23 19:30 CET`` style text in the display zone; ``-`` for none."""
    at = from_db(value)
    if at is None:
        return "-"
    local = at.astimezone(display_zone())
    fmt = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
    return local.strftime(fmt).strip()


def iso(value: datetime | str | None) -> str | None:
    """UTC ISO-8601 with a ``Z``, for JSON output."""
    at = from_db(value)
    return at.isoformat().replace("+00:00", "Z") if at else None

"""The one clock. Nothing else in sharetui asks the system for the time.

All times inside sharetui are timezone-aware UTC ``datetime`` objects; they are
stored as naive UTC and shown in local time. ``SHARETUI_NOW`` (ISO-8601)
freezes the clock, for scripted demos and tests.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sharetui.errors import UsageError


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FrozenClock:
    """A clock that stands still until it is moved; demos and tests use it."""

    def __init__(self, at: datetime) -> None:
        self._at = as_utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = as_utc(at)

    def advance(self, delta: timedelta) -> datetime:
        self._at = self._at + delta
        return self._at

    def __repr__(self) -> str:
        return f"FrozenClock({self._at.isoformat()})"


# Where a frozen clock (SHARETUI_NOW, a demo story's start) may stand: shares last up
# to 5 years and sweeps look back years, and datetime ends at year 9999.
FROZEN_YEARS = range(1900, 9000)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant (``2026-03-01T09:00``, ``...Z``, ``...+01:00``).

    A value without an offset is read as UTC.
    """
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        return as_utc(datetime.fromisoformat(raw))
    except ValueError:
        raise UsageError(f"cannot read time {text!r}: use ISO-8601, e.g. 2026-03-01T09:00:00Z") from None
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise UsageError(f"time {text!r} is out of range: years 1 to 9999 in UTC") from None


def clock_from_env(environ: dict[str, str] | None = None) -> Clock:
    """The clock the environment asks for: frozen at ``SHARETUI_NOW`` or the system's."""
    env = os.environ if environ is None else environ
    frozen = env.get("SHARETUI_NOW", "").strip()
    if frozen:
        try:
            at = parse_instant(frozen)
        except UsageError:
            raise UsageError(
                f"SHARETUI_NOW={frozen!r} is not an ISO-8601 time, e.g. 2026-03-01T09:00:00Z"
            ) from None
        if at.year not in FROZEN_YEARS:
            raise UsageError(f"SHARETUI_NOW={frozen!r} must fall between the years 1900 and 8999")
        return FrozenClock(at)
    return SystemClock()

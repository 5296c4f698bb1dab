"""Share durations: ``30m``, ``2h``, ``3d``, ``2w``, ``6mo``, ``1y``, ``1d12h``,
``3 days``, and a bare integer meaning minutes (batch-API compatibility).

Months and years follow calendar arithmetic (dateutil's ``relativedelta``) on
the local calendar (``SHARETUI_TZ`` or the machine's zone, the one times are
shown in): Jan 31 + 1mo is the last day of February there, and the wall-clock
time is kept across a DST change. Weeks, days, hours and minutes are elapsed
time: ``1d`` is 24 hours (1440 minutes, as the batch API counts), also on a DST
day. A duration is at least one minute and at most five years, measured from
the moment it starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from dateutil.relativedelta import relativedelta

from sharetui.errors import InvalidDuration

# unit word -> (canonical suffix, relativedelta keyword, factor)
_UNITS: dict[str, tuple[str, str, int]] = {}
for _names, _canon, _kw, _factor in (
    (("m", "min", "mins", "minute", "minutes"), "m", "minutes", 1),
    (("h", "hr", "hrs", "hour", "hours"), "h", "hours", 1),
    (("d", "day", "days"), "d", "days", 1),
    (("w", "wk", "wks", "week", "weeks"), "w", "days", 7),
    (("mo", "mon", "mons", "month", "months"), "mo", "months", 1),
    (("y", "yr", "yrs", "year", "years"), "y", "years", 1),
):
    for _name in _names:
        _UNITS[_name] = (_canon, _kw, _factor)

_ORDER = ["y", "mo", "w", "d", "h", "m"]
_WORDS = {"y": "year", "mo": "month", "w": "week", "d": "day", "h": "hour", "m": "minute"}
_TOKEN = re.compile(r"([0-9]+)\s*([a-z]+)")  # ASCII digits: int() refuses "²", which \d matches
_SEPARATORS = re.compile(r"[\s,]+|\band\b")

MIN_DURATION = relativedelta(minutes=1)
MAX_DURATION = relativedelta(years=5)
# No five calendar years are shorter than this (1,825 days less a DST hour, with room).
_SURELY_WITHIN_MAX = timedelta(days=1824)
_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}
DEFAULT_DURATION_TEXT = "90d"


@dataclass(frozen=True)
class Duration:
    """A parsed duration: calendar parts plus the text a user would write."""

    parts: tuple[tuple[str, int], ...]  # canonical unit -> amount, largest first

    @property
    def text(self) -> str:
        """Compact canonical form, e.g. ``1d12h`` or ``6mo``."""
        return "".join(f"{n}{unit}" for unit, n in self.parts) or "0m"

    @property
    def words(self) -> str:
        """Human form, e.g. ``1 day 12 hours``."""
        out = []
        for unit, n in self.parts:
            out.append(f"{n} {_WORDS[unit]}{'' if n == 1 else 's'}")
        return " ".join(out) or "0 minutes"

    @cached_property
    def delta(self) -> relativedelta:
        kwargs: dict[str, int] = {}
        for unit, n in self.parts:
            _, kw, factor = _UNITS[unit]
            kwargs[kw] = kwargs.get(kw, 0) + n * factor
        return relativedelta(**kwargs)

    @cached_property
    def elapsed(self) -> timedelta | None:
        """The length when it has no months or years (elapsed time only), else None."""
        if any(unit not in _MINUTES for unit, _ in self.parts):
            return None
        return timedelta(minutes=sum(_MINUTES[unit] * n for unit, n in self.parts))

    def end_from(self, start: datetime) -> datetime:
        """When a share of this duration that starts at ``start`` ends."""
        fixed = self.elapsed  # every share computes this: skip relativedelta when it can
        return start + fixed if fixed is not None else shift(start, self.delta)

    def minutes_from(self, start: datetime) -> int:
        """Length in whole minutes when started at ``start`` (months vary)."""
        return int((self.end_from(start) - start) / timedelta(minutes=1))

    def check_bounds(self, start: datetime) -> None:
        """Raise :class:`InvalidDuration` unless 1 minute ≤ duration ≤ 5 years."""
        try:
            fixed = self.elapsed
            if fixed is not None and timedelta(minutes=1) <= fixed <= _SURELY_WITHIN_MAX:
                return
            end = self.end_from(start)
        except (OverflowError, ValueError):  # beyond datetime's range: far too long
            raise InvalidDuration(f"duration {self.text} is too long: the maximum is 5 years") from None
        if end < start + MIN_DURATION:
            raise InvalidDuration(f"duration {self.text} is too short: the minimum is 1 minute")
        if end > shift(start, MAX_DURATION):
            raise InvalidDuration(f"duration {self.text} is too long: the maximum is 5 years")

    def __str__(self) -> str:
        return self.text


def shift(start: datetime, delta: relativedelta) -> datetime:
    """``start + delta``, the months and years on the local calendar (see the module doc).

    A naive ``start`` is shifted as it is.
    """
    calendar = relativedelta(years=delta.years, months=delta.months)
    elapsed = delta - calendar
    if not calendar or start.tzinfo is None:
        return start + delta
    from sharetui.domain.time import display_zone

    zone = display_zone()
    if zone is None:  # the machine's zone: naive local wall time, converted back DST-aware
        moved = (start.astimezone().replace(tzinfo=None) + calendar).astimezone(start.tzinfo)
    else:
        moved = (start.astimezone(zone) + calendar).astimezone(start.tzinfo)
    return moved + elapsed


def parse_duration(value: str | int) -> Duration:
    """Read a duration. Raises :class:`InvalidDuration` with a message a user can act on.

    Bounds are not checked here (they depend on the start for months); see
    :meth:`Duration.check_bounds`. A batch of shares or automation runs reads the same
    few texts again and again: the answers (immutable) are kept.
    """
    if (type(value) is int or (type(value) is str and len(value) < 64)) and len(_PARSED) < 1024:
        key = (type(value), value)
        found = _PARSED.get(key)
        if found is None:
            found = _PARSED[key] = _parse_duration(value)
        return found
    return _parse_duration(value)


_PARSED: dict[tuple[type, str | int], Duration] = {}


def _parse_duration(value: str | int) -> Duration:
    if isinstance(value, bool):
        raise InvalidDuration(f"duration {value!r} is not a duration")
    if isinstance(value, int):
        if value < 0:
            raise InvalidDuration(f"duration {value} is negative")
        return Duration((("m", value),) if value else ())
    if not isinstance(value, str):
        raise InvalidDuration(f"duration {value!r} is not a duration")
    text = value.strip().lower()
    if not text:
        raise InvalidDuration("duration is empty: write e.g. 30m, 2h, 3d, 2w, 6mo or 1y")
    if text.isascii() and text.isdigit():
        minutes = _number(text, value)
        return Duration((("m", minutes),) if minutes else ())
    totals: dict[str, int] = {}
    pos = 0
    for match in _TOKEN.finditer(text):
        gap = text[pos : match.start()]
        if _SEPARATORS.sub("", gap):
            raise _unreadable(value)
        unit = _UNITS.get(match.group(2))
        if unit is None:
            raise InvalidDuration(
                f"duration {value!r}: unknown unit {match.group(2)!r} "
                "(use m, h, d, w, mo, y or the words minutes, hours, days, weeks, months, years)"
            )
        canon, _, _ = unit
        totals[canon] = totals.get(canon, 0) + _number(match.group(1), value)
        pos = match.end()
    if pos == 0 or _SEPARATORS.sub("", text[pos:]):
        raise _unreadable(value)
    parts = tuple((u, totals[u]) for u in _ORDER if totals.get(u))
    return Duration(parts)


def parse_offset(value: str) -> relativedelta:
    """A signed duration such as ``-3d`` or ``+1d12h`` (sample data uses these)."""
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text[:1] in "+-" else text
    delta = parse_duration(body).delta
    return delta if sign > 0 else -delta


def offset_from(start: datetime, value: str) -> datetime:
    """``start`` moved by a signed duration (``-3d``, ``+2w``); :class:`InvalidDuration`
    when the result falls outside the calendar (years 1 to 9999)."""
    try:
        return start + parse_offset(value)
    except (OverflowError, ValueError):
        raise InvalidDuration(f"{value!r} from {start:%Y-%m-%d} falls outside the calendar") from None


def _number(digits: str, value: str) -> int:
    try:
        return int(digits)
    except ValueError:  # more digits than int() reads (4300): far beyond any bound
        raise InvalidDuration(f"duration {value!r} is too long: the maximum is 5 years") from None


def _unreadable(value: str) -> InvalidDuration:
    return InvalidDuration(
        f"cannot read duration {value!r}: write e.g. 30m, 2h, 3d, 2w, 6mo, 1y, 1d12h, "
        "'3 days', or a number of minutes"
    )

"""Cron schedules (croniter 7) with a time zone each: pure functions of time.

- Expressions have 5 fields (minute hour day month weekday) or are macros
  (``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
  ``@yearly``/``@annually``). Six- and seven-field forms are refused: croniter
  reads a sixth field as seconds at the end, cron-descriptor as seconds at the
  start, so the description would not say what runs.
- An expression that can never fire (``0 0 31 2 *``) is refused when saved.
- DST: on the fall-back day croniter yields a fixed-hour time twice (fold 0
  and 1); like cron, sharetui fires it once. Wildcard-hour expressions fire in
  both passes of the repeated hour. On the spring-forward day a time in the gap
  fires once, at the first valid time after it (croniter's shift).
- After downtime, ``latest_once`` (default) runs once for the missed period,
  ``skip`` runs nothing that was missed, ``all`` runs every missed firing
  (at most ``MAX_CATCH_UP``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import get_description
from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from sharetui.errors import UsageError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MISFIRE_POLICIES = ("latest_once", "skip", "all")
MAX_CATCH_UP = 1000
# A firing this late still counts as on time under ``skip``.
ON_TIME = timedelta(minutes=2)


@dataclass(frozen=True)
class Schedule:
    expression: str  # as written
    fields: str  # the 5-field form croniter and cron-descriptor both read
    zone: ZoneInfo

    @property
    def description(self) -> str:
        """Human words, e.g. ``At 09:00 AM, Monday through Friday (Europe/Berlin)``."""
        return f"{get_description(self.fields)} ({self.zone.key})"

    @property
    def fixed_hour(self) -> bool:
        return not self.fields.split()[1].startswith("*")


def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """Check and normalise a schedule; :class:`UsageError` says what is wrong."""
    text = " ".join(str(expression).split())
    if not text:
        raise UsageError("cron: empty expression; write 5 fields, e.g. '0 9 * * 1-5', or @daily")
    fields = MACROS.get(text.lower())
    if fields is None:
        if text.startswith("@"):
            raise UsageError(f"cron: unknown macro {text!r}; use one of {', '.join(MACROS)}")
        count = len(text.split())
        if count != 5:
            raise UsageError(f"cron: {text!r} has {count} fields; write 5 (minute hour day month weekday)")
        if _NOT_CRON.search(text):
            raise UsageError(f"cron: {text!r}: R (random) and H (hashed) are not cron; write the number")
        fields = " ".join(_one_value_ranges(field) for field in text.split())
    try:
        zone = ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder of zones
        raise UsageError(f"timezone: {timezone!r} is not an IANA time zone, e.g. Europe/Berlin") from None
    try:
        it = croniter(fields, datetime(2026, 1, 1, tzinfo=zone))
        it.get_next(datetime)
    except CroniterBadDateError:
        raise UsageError(f"cron: {text!r} can never fire") from None
    except (CroniterBadCronError, CroniterNotAlphaError, ValueError, KeyError) as exc:
        raise UsageError(f"cron: {text!r} is not a valid expression: {exc}") from None
    schedule = Schedule(text, fields, zone)
    try:
        schedule.description  # noqa: B018 - what lists show must be readable: refuse what is not
    except Exception:  # noqa: BLE001 - cron-descriptor's FormatError and the errors it wraps
        raise UsageError(f"cron: {text!r} is not an expression sharetui can describe; simplify it") from None
    return schedule


# croniter extensions that cron-descriptor (and cron) do not read: R (random), H (hashed).
_NOT_CRON = re.compile(r"(?<![a-z])[rh](?![a-z])", re.IGNORECASE)
_SAME_ENDS = re.compile(r"^(\w+)-(\w+)(/\d+)?$")


def _one_value_ranges(field: str) -> str:
    """``5-5`` → ``5``: croniter 7 reads a range whose ends are equal as ``*`` (every value);
    and a list holding ``*`` (``0,*``) is every value, ``*``, which cron-descriptor reads."""
    if "*" in field.split(","):
        return "*"
    parts = []
    for part in field.split(","):
        match = _SAME_ENDS.match(part)
        same = match is not None and match.group(1).lower() == match.group(2).lower()
        parts.append(match.group(1) if same else part)  # type: ignore[union-attr]
    return ",".join(parts)


def fire_times(
    schedule: Schedule, after: datetime, until: datetime, limit: int = MAX_CATCH_UP
) -> list[datetime]:
    """Firings strictly after ``after`` and at or before ``until``, as aware UTC."""
    start = after.astimezone(schedule.zone)
    it = croniter(schedule.fields, start)
    out: list[datetime] = []
    while len(out) < limit:
        local: datetime = it.get_next(datetime)
        at = local.astimezone(UTC)
        if at > until:
            break
        if schedule.fixed_hour and _second_pass(local):
            continue  # the repeated hour of a fall-back day: a fixed time fires once, in the first pass
        if at > after:
            out.append(at)
    return out


def _second_pass(local: datetime) -> bool:
    """True for the second occurrence of an ambiguous wall time (fold 1 of a fall-back hour).

    Decided from the time alone, so it holds across calls: a worker that ticks
    through the night fires a daily 02:30 job once, whatever its cadence.
    """
    if local.fold != 1:
        return False
    return local.replace(fold=0).utcoffset() != local.utcoffset()


def due(schedule: Schedule, last: datetime, now: datetime, policy: str = "latest_once") -> list[datetime]:
    """Which firings to run now, given the last one handled and the misfire policy."""
    if policy not in MISFIRE_POLICIES:
        raise UsageError(f"misfire: {policy!r}; use one of {', '.join(MISFIRE_POLICIES)}")
    missed = fire_times(schedule, last, now)
    if not missed:
        return []
    if policy == "all":
        return missed
    latest = missed[-1]
    if policy == "skip" and now - latest > ON_TIME:
        return []
    return [latest]


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    times = fire_times(schedule, after, after + timedelta(days=366 * 5), limit=1)
    return times[0] if times else None

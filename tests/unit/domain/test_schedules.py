"""Cron schedules as pure functions of time (DESIGN .5, STYLE "Time and schedules").

Each test names the day it is about: the DST spring-forward and fall-back days
of 2026 in Europe/Berlin (29 March and 25 October), and a downtime of several
days for the catch-up policies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sharetui.domain.schedules import MACROS, MISFIRE_POLICIES, due, fire_times, next_fire, parse_schedule
from sharetui.errors import UsageError

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(times: list[datetime], zone: ZoneInfo = BERLIN) -> list[str]:
    """Firings as local wall-clock text with the UTC offset, to read like a calendar."""
    return [t.astimezone(zone).strftime("%Y-%m-%d %H:%M %z") for t in times]


# -- parsing -------------------------------------------------------------------------


def test_a_five_field_expression_is_kept_as_written_with_its_zone() -> None:
    sched = parse_schedule("0  9 * *   1-5", "Europe/Berlin")
    assert sched.expression == "0 9 * * 1-5"
    assert sched.fields == "0 9 * * 1-5"
    assert sched.zone.key == "Europe/Berlin"
    assert sched.fixed_hour
    assert not parse_schedule("*/15 * * * *").fixed_hour


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_macros_become_their_five_field_form(macro: str, fields: str) -> None:
    sched = parse_schedule(macro, "UTC")
    assert sched.fields == fields
    assert sched.expression == macro
    assert set(MACROS) >= {macro}


def test_a_macro_fires_when_its_five_field_form_does() -> None:
    """@daily in Berlin on Monday 2 March 2026 (CET, UTC+1): midnight local is 23:00 UTC."""
    sched = parse_schedule("@daily", "Europe/Berlin")
    times = fire_times(sched, utc(2026, 3, 2, 9), utc(2026, 3, 4, 9))
    assert times == [utc(2026, 3, 2, 23), utc(2026, 3, 3, 23)]
    hourly = parse_schedule("@hourly", "UTC")
    assert fire_times(hourly, utc(2026, 3, 2, 9, 30), utc(2026, 3, 2, 12)) == [
        utc(2026, 3, 2, 10),
        utc(2026, 3, 2, 11),
        utc(2026, 3, 2, 12),
    ]


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("0 0 9 * * 1-5", "UTC", "'0 0 9 * * 1-5' has 6 fields; write 5 (minute hour day month weekday)"),
        ("0 0 9 * * 1-5 2026", "UTC", "has 7 fields; write 5"),
        ("@reboot", "UTC", "unknown macro '@reboot'; use one of @yearly"),
        ("", "UTC", "empty expression"),
        ("61 * * * *", "UTC", "'61 * * * *' is not a valid expression"),
        ("0 0 31 2 *", "UTC", "'0 0 31 2 *' can never fire"),
        ("0 9 * * *", "Europe/Atlantis", "timezone: 'Europe/Atlantis' is not an IANA time zone"),
        ("0 9 * * *", "", "is not an IANA time zone"),
    ],
)
def test_bad_expressions_and_zones_are_refused_with_a_message_that_says_what_to_write(
    expression: str, zone: str, message: str
) -> None:
    with pytest.raises(UsageError) as err:
        parse_schedule(expression, zone)
    assert message in err.value.message


def test_february_31st_is_refused_but_february_28th_is_fine() -> None:
    with pytest.raises(UsageError, match="can never fire"):
        parse_schedule("0 0 31 2 *", "Europe/Berlin")
    sched = parse_schedule("0 0 28 2 *", "Europe/Berlin")
    assert next_fire(sched, utc(2026, 3, 2, 9)) == datetime(2027, 2, 28, tzinfo=BERLIN).astimezone(UTC)


# -- DST ---------------------------------------------------------------------------------


def test_a_daily_0230_job_fires_once_on_the_fall_back_day_2026_10_25() -> None:
    """Berlin leaves summer time at 03:00 CEST on Sunday 25 October 2026: 02:30
    happens twice (CEST then CET). Like cron, the job runs once, at the first."""
    sched = parse_schedule("30 2 * * *", "Europe/Berlin")
    times = fire_times(sched, utc(2026, 10, 23, 12), utc(2026, 10, 26, 12))
    assert local(times) == [
        "2026-10-24 02:30 +0200",
        "2026-10-25 02:30 +0200",
        "2026-10-26 02:30 +0100",
    ]
    on_the_day = [t for t in times if t.astimezone(BERLIN).date().isoformat() == "2026-10-25"]
    assert on_the_day == [utc(2026, 10, 25, 0, 30)]


def test_a_daily_0230_job_fires_once_at_0300_on_the_spring_forward_day_2026_03_29() -> None:
    """Berlin skips 02:00-03:00 on Sunday 29 March 2026: 02:30 does not exist, so
    the job runs once, at 03:00 CEST (01:00 UTC), the first valid time after it."""
    sched = parse_schedule("30 2 * * *", "Europe/Berlin")
    times = fire_times(sched, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    assert local(times) == [
        "2026-03-28 02:30 +0100",
        "2026-03-29 03:00 +0200",
        "2026-03-30 02:30 +0200",
    ]
    assert times[1] == utc(2026, 3, 29, 1, 0)


def test_a_wildcard_hour_job_fires_in_both_passes_of_the_repeated_hour_on_2026_10_25() -> None:
    sched = parse_schedule("15 * * * *", "Europe/Berlin")
    times = fire_times(sched, utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 30))
    # 01:15 CEST, 02:15 CEST, 02:15 CET (again), 03:15 CET
    assert local(times) == [
        "2026-10-25 02:15 +0200",
        "2026-10-25 02:15 +0100",
        "2026-10-25 03:15 +0100",
    ]
    assert times == [utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 1, 15), utc(2026, 10, 25, 2, 15)]


def test_an_hourly_job_on_the_spring_forward_day_has_no_0215() -> None:
    sched = parse_schedule("15 * * * *", "Europe/Berlin")
    times = fire_times(sched, utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 2, 30))
    assert local(times) == [
        "2026-03-29 01:15 +0100",
        "2026-03-29 03:15 +0200",
        "2026-03-29 04:15 +0200",
    ]


def test_next_fire_is_strictly_after_the_given_time() -> None:
    sched = parse_schedule("0 9 * * 1-5", "Europe/Berlin")
    # Monday 2 March 2026 08:00 UTC is 09:00 in Berlin: the next one is Tuesday's.
    assert next_fire(sched, utc(2026, 3, 2, 8)) == utc(2026, 3, 3, 8)
    # Friday 6 March after 09:00 Berlin: the next is Monday 9 March.
    assert next_fire(sched, utc(2026, 3, 6, 12)) == utc(2026, 3, 9, 8)


# -- catch-up after downtime -----------------------------------------------------------------

# Last handled firing: Monday 2 March 2026 09:00 Berlin; the worker was down
# until Friday 6 March 12:00 UTC, so Tuesday..Friday 09:00 were missed.
DAILY_9 = "0 9 * * *"
LAST = utc(2026, 3, 2, 8)
BACK = utc(2026, 3, 6, 12)
MISSED = [utc(2026, 3, 3, 8), utc(2026, 3, 4, 8), utc(2026, 3, 5, 8), utc(2026, 3, 6, 8)]


def test_after_four_days_down_latest_once_runs_once_for_the_latest_missed_firing() -> None:
    sched = parse_schedule(DAILY_9, "Europe/Berlin")
    assert fire_times(sched, LAST, BACK) == MISSED
    assert due(sched, LAST, BACK, "latest_once") == [utc(2026, 3, 6, 8)]
    assert due(sched, LAST, BACK) == [utc(2026, 3, 6, 8)], "latest_once is the default"


def test_after_four_days_down_skip_runs_nothing_that_was_missed() -> None:
    sched = parse_schedule(DAILY_9, "Europe/Berlin")
    assert due(sched, LAST, BACK, "skip") == []


def test_skip_still_runs_a_firing_that_is_on_time() -> None:
    sched = parse_schedule(DAILY_9, "Europe/Berlin")
    on_time = utc(2026, 3, 6, 8, 1)  # one minute after Friday's firing
    assert due(sched, LAST, on_time, "skip") == [utc(2026, 3, 6, 8)]
    assert due(sched, LAST, utc(2026, 3, 6, 8, 30), "skip") == []


def test_after_four_days_down_all_runs_every_missed_firing_in_order() -> None:
    sched = parse_schedule(DAILY_9, "Europe/Berlin")
    assert due(sched, LAST, BACK, "all") == MISSED


def test_nothing_is_due_before_the_next_firing_whatever_the_policy() -> None:
    sched = parse_schedule(DAILY_9, "Europe/Berlin")
    for policy in MISFIRE_POLICIES:
        assert due(sched, LAST, LAST + timedelta(hours=23), policy) == []


def test_an_unknown_misfire_policy_is_refused() -> None:
    sched = parse_schedule(DAILY_9, "Europe/Berlin")
    with pytest.raises(UsageError, match="misfire: 'twice'; use one of latest_once, skip, all"):
        due(sched, LAST, BACK, "twice")


# -- descriptions ----------------------------------------------------------------------------


def test_descriptions_say_what_runs_and_in_which_zone() -> None:
    assert parse_schedule("@weekly", "Europe/London").description == (
        "At 12:00 AM, only on Sunday (Europe/London)"
    )
    assert parse_schedule("0 9 * * 1-5", "Europe/Berlin").description == (
        "At 09:00 AM, Monday through Friday (Europe/Berlin)"
    )


def test_asked_every_ten_minutes_through_the_fall_back_night_a_0230_job_fires_once() -> None:
    sched = parse_schedule("30 2 * * *", "Europe/Berlin")
    last, fired = utc(2026, 10, 24, 22), []
    while last < utc(2026, 10, 25, 4):
        now = last + timedelta(minutes=10)
        fired += due(sched, last, now)
        last = now
    assert local(fired) == ["2026-10-25 02:30 +0200"]


def test_a_list_holding_a_star_is_every_value_and_reads_as_words() -> None:
    """Found by the fuzz pass: croniter took ``0,*`` but cron-descriptor could not describe
    it, so the automation list raised. A list holding ``*`` is ``*``."""
    schedule = parse_schedule("0 0,* 1 1 0", "UTC")
    assert schedule.fields == "0 * 1 1 0"
    assert schedule.description.startswith("Every hour")

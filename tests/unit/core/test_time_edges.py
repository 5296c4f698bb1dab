"""Time at its edges (DESIGN .3, .5): expiry at exactly now, a clock that moves
backwards, both DST days (shares, durations and cron schedules in
Europe/Berlin and America/New_York), month ends, leap days, and a machine
whose time zone is not UTC.

Rules these tests hold the product to:

- Expiry is checked at read time: ``expires_at == now`` grants nothing, swept or not.
- A clock that moves backwards never resurrects an ended grant, never re-sends
  a notice or re-fires a schedule, and nothing crashes.
- Weeks, days, hours and minutes are elapsed time (``1d`` = 24 h = 1440 minutes,
  as the batch API counts), also on a DST day; months and years move along the
  local calendar (Jan 31 + 1mo is the end of February there, and the wall-clock
  time is kept across DST). The five-year limit is measured the same way.
- Cron schedules fire in their own time zone: a fixed time once a day on both
  DST days, whatever the machine's zone.
- Times are stored as naive UTC and shown in local time (``SHARETUI_TZ``, else
  the machine's ``TZ``); JSON carries UTC with a ``Z``.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sharetui.core.events.worker import Worker
from sharetui.core.history import HistoryFilter
from sharetui.db.connection import database
from sharetui.db.models import Grant, OutboxEvent
from sharetui.domain.durations import parse_duration
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import local_text

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def z(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def share(bank, who: str = "daniel", duration: str = "1h", **kw):
    result = bank.core.sharing.share("lead", bank.lead.id, who, requester=bank.admin, duration=duration, **kw)
    assert result.ok, result.reason
    return result


def history_events(bank) -> list[str]:
    return [
        h["event"]
        for h in bank.core.history.query(
            None, HistoryFilter(record=RecordRef(EntityType.LEAD, bank.lead.id)), limit=None
        )
    ]


def back_to(core) -> None:
    """Rebind the model proxy to the test's Core after a ``cli`` call opened its own
    (two Cores in one process is a test-harness situation, never the product's)."""
    database.initialize(core.db)


def stored(core, sql: str, *params) -> str:
    """A stored time as text, the same on SQLite (text) and PostgreSQL (naive datetime)."""
    sql = sql if core.db.param == "?" else sql.replace("?", "%s")
    return str(core.db.execute_sql(sql, params).fetchone()[0])[:19]


# -- expiry at exactly now ---------------------------------------------------------------------
def test_a_grant_expiring_exactly_now_gives_nothing_anywhere(bank, clock, cli) -> None:
    core = bank.core
    grant = share(bank, duration="1h").grant
    end = clock.now() + timedelta(hours=1)
    assert grant["expires_at"] == z(end)

    clock.set(end - timedelta(seconds=1))
    assert core.access.can("daniel", bank.lead, "read")
    assert [r.id for r in core.access.visible("daniel", "lead").rows] == [bank.lead.id]

    clock.set(end)  # expires_at == now, not yet swept
    assert Grant.get_by_id(grant["id"]).state == "active"
    assert not core.access.can("daniel", bank.lead, "read")
    assert core.access.visible("daniel", "lead").rows == []
    assert core.access.explain("daniel", bank.lead, actor=None).grants == []
    assert core.sharing.grants(user=bank.daniel, actor=None) == []
    assert cli("check", "daniel", "lead", bank.lead.id).exit_code == 1
    back_to(core)
    revoke = core.sharing.revoke("lead", bank.lead.id, "daniel", requester=bank.admin)
    assert revoke.status == "failed" and "no active share" in revoke.reason

    # Re-sharing at that instant makes a new grant; the old one is recorded as expired.
    again = share(bank, duration="1h")
    assert again.outcome == "granted" and again.grant["id"] != grant["id"]
    old = Grant.get_by_id(grant["id"])
    assert (old.state, old.ended_reason) == ("expired", "expired")
    assert stored(core, "SELECT ended_at FROM grants WHERE id = ?", grant["id"]) == "2026-03-02 10:00:00"
    assert history_events(bank)[-3:] == ["expired", "share", "granted"]


def test_the_sweeper_expires_at_exactly_now_and_stamps_the_expiry_time(bank, clock) -> None:
    core = bank.core
    share(bank, duration="30m")
    clock.advance(timedelta(minutes=30) - timedelta(seconds=1))
    assert core.expiry.sweep().expired == 0
    clock.advance(timedelta(seconds=1))
    assert core.expiry.sweep().expired == 1
    (expired,) = core.history.query(
        None, HistoryFilter(record=RecordRef(EntityType.LEAD, bank.lead.id), event="expired")
    )
    assert expired["at"] == expired["expires_at"] == "2026-03-02T09:30:00Z"


# -- a clock that moves backwards ---------------------------------------------------------------
def test_a_clock_moving_backwards_never_resurrects_an_expired_grant(bank, clock, cli) -> None:
    core = bank.core
    first = share(bank, duration="1h").grant
    clock.advance(timedelta(hours=2))
    assert core.expiry.sweep().expired == 1

    clock.set(utc(2026, 3, 2, 9, 30))  # back to before the expiry
    assert not core.access.can("daniel", bank.lead, "read"), "an expired grant stays expired"
    assert core.expiry.sweep().expired == 0
    assert Grant.get_by_id(first["id"]).state == "expired"
    assert core.sharing.grants(user=bank.daniel, actor=None) == []
    assert history_events(bank).count("expired") == 1
    swept = cli("sweep", "--json")  # SHARETUI_NOW in the past: no crash, nothing to do
    assert swept.exit_code == 0 and swept.json()["expired"] == 0
    back_to(core)

    # A share made now, before the old grant's expiry, is a new grant counted from now.
    again = share(bank, duration="1h")
    assert again.outcome == "granted" and again.grant["expires_at"] == "2026-03-02T10:30:00Z"
    assert core.access.can("daniel", bank.lead, "read")
    clock.set(utc(2026, 3, 2, 12, 0))
    assert core.expiry.sweep().expired == 1
    assert history_events(bank).count("expired") == 2


def test_a_clock_moving_backwards_sends_no_second_notice_and_revokes_cleanly(bank, clock) -> None:
    core = bank.core
    share(bank, duration="2d")
    clock.advance(timedelta(days=1, hours=1))  # inside the 24 h window
    assert core.expiry.sweep().warned == 1
    clock.set(utc(2026, 3, 2, 9, 0))
    assert core.expiry.sweep().as_dict() == {"expired": 0, "expiring_soon": 0}
    clock.set(utc(2026, 3, 3, 12, 0))
    assert core.expiry.sweep().warned == 0, "the notice fires once per grant"
    assert history_events(bank).count("expiring_soon") == 1

    clock.set(utc(2026, 3, 1, 9, 0))  # before the share even started
    assert core.access.can("daniel", bank.lead, "read")  # active and unexpired: no crash, no surprise
    result = core.sharing.revoke("lead", bank.lead.id, "daniel", requester=bank.admin)
    assert result.ok and result.grant["state"] == "revoked"
    assert not core.access.can("daniel", bank.lead, "read")
    clock.set(utc(2026, 3, 10, 9, 0))
    assert core.expiry.sweep().expired == 0, "a revoked grant is never expired later"


SCHEDULE = """
name = "Morning digest"
status = "published"

[trigger]
type = "schedule"
cron = "{cron}"
timezone = "{zone}"
entity = "lead"

[[actions]]
type = "notify"
to = "record_owner"
message = "Still open: {{lead.name}}"
"""


def add_schedule(bank, cron: str, zone: str):
    core = bank.core
    text = textwrap.dedent(SCHEDULE.format(cron=cron, zone=zone))
    return core.automations.add(core.automations.parse(text, "digest.toml"), actor=bank.admin)


def fired() -> list[str]:
    return [e.payload["fire_at"] for e in OutboxEvent.select().where(OutboxEvent.topic == "schedule.fired")]


def test_a_clock_moving_backwards_never_fires_a_schedule_twice(bank, clock) -> None:
    core = bank.core
    add_schedule(bank, "0 9 * * *", "Europe/Berlin")
    clock.set(utc(2026, 3, 3, 8, 0))
    assert core.automations.fire_due_schedules() == 1
    clock.set(utc(2026, 3, 2, 7, 0))  # back a day
    assert core.automations.fire_due_schedules() == 0
    worker = Worker(core)
    assert worker.tick().lease
    clock.set(utc(2026, 3, 3, 8, 30))  # past the firing that already ran
    assert core.automations.fire_due_schedules() == 0
    clock.set(utc(2026, 3, 4, 8, 0))
    assert core.automations.fire_due_schedules() == 1
    assert fired() == ["2026-03-03T08:00:00Z", "2026-03-04T08:00:00Z"]
    assert worker.tick().lease


# -- DST days: shares and durations -------------------------------------------------------------
def test_on_the_spring_forward_day_a_day_is_24_hours_and_a_month_keeps_the_wall_clock(
    bank, clock, monkeypatch
) -> None:
    """Berlin, Sunday 29 March 2026: 02:00 CET jumps to 03:00 CEST."""
    monkeypatch.setenv("SHARETUI_TZ", "Europe/Berlin")
    core = bank.core
    clock.set(datetime(2026, 3, 28, 9, 0, tzinfo=BERLIN))  # Saturday 09:00 CET = 08:00 UTC
    by_day = share(bank, duration="1d").grant
    assert by_day["expires_at"] == "2026-03-29T08:00:00Z"
    assert local_text(by_day["expires_at"]) == "2026-03-29 10:00 CEST"
    assert parse_duration("1440").end_from(clock.now()) == parse_duration("1d").end_from(clock.now())

    clock.set(utc(2026, 3, 29, 7, 59, 59))
    assert core.access.can("daniel", bank.lead, "read")
    clock.set(utc(2026, 3, 29, 8, 0))
    assert not core.access.can("daniel", bank.lead, "read")

    clock.set(datetime(2026, 3, 15, 9, 0, tzinfo=BERLIN))
    monthly = share(bank, "sofia", duration="1mo").grant
    assert local_text(monthly["expires_at"]) == "2026-04-15 09:00 CEST"
    assert monthly["expires_at"] == "2026-04-15T07:00:00Z"  # 30 days 23 hours later


def test_a_share_inside_the_skipped_hour_ends_an_exact_time_later(bank, clock, monkeypatch) -> None:
    monkeypatch.setenv("SHARETUI_TZ", "Europe/Berlin")
    clock.set(utc(2026, 3, 29, 0, 30))  # 01:30 CET, half an hour before the jump
    grant = share(bank, duration="1h").grant
    assert grant["expires_at"] == "2026-03-29T01:30:00Z"
    assert local_text(grant["expires_at"]) == "2026-03-29 03:30 CEST"  # 02:30 never happened


def test_on_the_fall_back_day_the_repeated_hour_is_told_apart(bank, clock, monkeypatch) -> None:
    """Berlin, Sunday 25 October 2026: 03:00 CEST falls back to 02:00 CET."""
    monkeypatch.setenv("SHARETUI_TZ", "Europe/Berlin")
    core = bank.core
    clock.set(utc(2026, 10, 24, 23, 30))  # 01:30 CEST
    first = share(bank, duration="1h").grant  # ends 02:30 CEST, the first pass
    second = share(bank, "sofia", duration="2h").grant  # ends 02:30 CET, the second pass
    assert (first["expires_at"], second["expires_at"]) == ("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z")
    assert local_text(first["expires_at"]) == "2026-10-25 02:30 CEST"
    assert local_text(second["expires_at"]) == "2026-10-25 02:30 CET"
    clock.set(utc(2026, 10, 25, 1, 0))  # 02:00 CET, inside the second pass
    assert not core.access.can("daniel", bank.lead, "read")
    assert core.access.can("sofia", bank.lead, "read")
    assert core.expiry.sweep().expired == 1

    clock.set(datetime(2026, 10, 24, 9, 0, tzinfo=BERLIN))  # 07:00 UTC
    by_day = share(bank, duration="1d").grant
    assert local_text(by_day["expires_at"]) == "2026-10-25 08:00 CET"  # 24 hours, not 25
    by_month = share(bank, "sofia", duration="1mo").grant
    assert local_text(by_month["expires_at"]) == "2026-11-24 09:00 CET"


def test_the_five_year_limit_is_measured_on_the_same_calendar_as_the_share(bank, clock, monkeypatch) -> None:
    """03:30 CEST on 29 March 2026 plus 5 years is 03:30 CET on 29 March 2031 (DST starts on
    the 30th that year): an hour more than five UTC years, and still exactly the limit."""
    monkeypatch.setenv("SHARETUI_TZ", "Europe/Berlin")
    clock.set(datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN))
    grant = share(bank, duration="5y").grant
    assert local_text(grant["expires_at"]) == "2031-03-29 03:30 CET"
    over = bank.core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="5y1m")
    assert over.status == "failed" and "maximum is 5 years" in over.reason


# -- DST days: cron schedules ------------------------------------------------------------------
def tick_through(core, clock, start: datetime, end: datetime, step: timedelta) -> None:
    """A worker asking every ``step`` whether a schedule is due."""
    clock.set(start)
    while clock.now() < end:
        clock.advance(step)
        core.automations.fire_due_schedules()


@pytest.mark.parametrize(
    ("zone", "cron", "days", "expected"),
    [
        pytest.param(
            "America/New_York",
            "30 2 * * *",
            (utc(2026, 3, 7, 0), utc(2026, 3, 10, 0)),
            # 02:30 EST; the 8th has no 02:30 (it fires at 03:00 EDT); 02:30 EDT
            ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
            id="new-york-spring-forward",
        ),
        pytest.param(
            "America/New_York",
            "30 1 * * *",
            (utc(2026, 10, 31, 0), utc(2026, 11, 3, 0)),
            # 01:30 EDT; on 1 November 01:30 comes twice and fires once (EDT); 01:30 EST
            ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
            id="new-york-fall-back",
        ),
        pytest.param(
            "Europe/Berlin",
            "0 9 * * 1-5",
            (utc(2026, 3, 27, 6), utc(2026, 3, 31, 9)),
            # weekdays 09:00: CET before the weekend, CEST after it
            ["2026-03-27T08:00:00Z", "2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z"],
            id="berlin-workdays-across-spring-forward",
        ),
        pytest.param(
            "Europe/Berlin",
            "30 2 * * *",
            (utc(2026, 10, 24, 0), utc(2026, 10, 27, 0)),
            ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
            id="berlin-fall-back",
        ),
    ],
)
def test_a_schedule_fires_once_a_day_in_its_own_zone_across_dst(
    bank, clock, zone: str, cron: str, days: tuple[datetime, datetime], expected: list[str]
) -> None:
    core = bank.core
    start, end = days
    clock.set(start)
    add_schedule(bank, cron, zone)
    tick_through(core, clock, start, end, timedelta(minutes=25))
    assert fired() == expected
    reports = core.automations.process_pending()
    assert len(reports) == len(expected) and {r.status for r in reports} == {"succeeded"}


# -- month ends and leap days -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "duration", "end"),
    [
        (utc(2027, 1, 31, 10), "1mo", "2027-02-28T10:00:00Z"),
        (utc(2028, 1, 31, 10), "1mo", "2028-02-29T10:00:00Z"),  # a leap year's February
        (utc(2026, 3, 31, 10), "1mo", "2026-04-30T10:00:00Z"),
        (utc(2027, 1, 31, 10), "1mo1d", "2027-03-01T10:00:00Z"),
        (utc(2028, 2, 29, 9), "1y", "2029-02-28T09:00:00Z"),
        (utc(2028, 2, 29, 9), "12mo", "2029-02-28T09:00:00Z"),
        (utc(2028, 2, 29, 9), "4y", "2032-02-29T09:00:00Z"),
        (utc(2028, 2, 28, 9), "1d", "2028-02-29T09:00:00Z"),
        (utc(2027, 2, 28, 9), "1d", "2027-03-01T09:00:00Z"),
    ],
)
def test_month_ends_and_leap_days_follow_the_calendar(bank, clock, start, duration, end) -> None:
    clock.set(start)
    grant = share(bank, duration=duration).grant
    assert grant["expires_at"] == end
    clock.set(datetime.fromisoformat(end) - timedelta(seconds=1))
    assert bank.core.access.can("daniel", bank.lead, "read")
    clock.set(datetime.fromisoformat(end))
    assert not bank.core.access.can("daniel", bank.lead, "read")


@pytest.mark.parametrize(
    ("zone", "local_start", "duration", "local_end"),
    [
        # In India 03:00 on 31 January is still 30 January in UTC: the month is India's.
        ("Asia/Kolkata", datetime(2027, 1, 31, 3, 0), "1mo", "2027-02-28 03:00 IST"),
        ("Asia/Kolkata", datetime(2028, 2, 29, 2, 0), "1y", "2029-02-28 02:00 IST"),
        # In New York 21:00 on 31 January is already 1 February in UTC.
        ("America/New_York", datetime(2027, 1, 31, 21, 0), "1mo", "2027-02-28 21:00 EST"),
        ("America/New_York", datetime(2027, 2, 28, 21, 0), "1mo", "2027-03-28 21:00 EDT"),
    ],
)
def test_months_and_years_move_on_the_local_calendar(
    bank, clock, monkeypatch, zone: str, local_start: datetime, duration: str, local_end: str
) -> None:
    monkeypatch.setenv("SHARETUI_TZ", zone)
    clock.set(local_start.replace(tzinfo=ZoneInfo(zone)))
    grant = share(bank, duration=duration).grant
    assert local_text(grant["expires_at"]) == local_end
    assert grant["expires_at"].endswith("Z")


# -- a machine whose time zone is not UTC -------------------------------------------------------
@pytest.fixture
def machine_zone(monkeypatch) -> Iterator:
    """Set the machine's zone (``TZ`` + ``time.tzset()``), with no ``SHARETUI_TZ``."""
    saved = os.environ.get("TZ")
    monkeypatch.delenv("SHARETUI_TZ", raising=False)

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_zone
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_on_a_machine_in_india_times_are_stored_in_utc_and_shown_in_ist(
    bank, clock, cli, machine_zone
) -> None:
    machine_zone("Asia/Kolkata")
    core = bank.core
    lead = bank.lead.id
    result = cli("share", "lead", lead, "--with", "daniel", "--for", "2h", user="admin")
    assert result.exit_code == 0, result.stderr
    assert "until 2026-03-02 16:30 IST" in result.stdout  # 11:00 UTC
    listed = cli("shares", "--json").json()["items"]
    assert [(g["starts_at"], g["expires_at"]) for g in listed] == [
        ("2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z")
    ]
    assert (
        stored(core, "SELECT expires_at FROM grants WHERE id = ?", listed[0]["id"]) == "2026-03-02 11:00:00"
    )
    assert stored(core, "SELECT created_at FROM leads WHERE id = ?", lead) == "2026-03-02 09:00:00"
    table = cli("shares").stdout
    assert "2026-03-02 14:30 IST" in table and "2026-03-02 16:30 IST" in table

    # The same instant written with an offset, and the display zone chosen by SHARETUI_TZ.
    ist_now = {"SHARETUI_NOW": "2026-03-02T16:29:59+05:30"}
    assert cli("check", "daniel", "lead", lead, env=ist_now).exit_code == 0
    assert (
        cli("check", "daniel", "lead", lead, env={"SHARETUI_NOW": "2026-03-02T16:30:00+05:30"}).exit_code == 1
    )
    in_new_york = cli("shares", env={"SHARETUI_TZ": "America/New_York"}).stdout
    assert "2026-03-02 06:00 EST" in in_new_york
    broken = cli("shares", env={"SHARETUI_TZ": "Mars/Olympus_Mons"})
    assert broken.exit_code == 0 and "2026-03-02 16:30 IST" in broken.stdout, "a bad zone falls back"


def test_a_postgres_session_in_another_time_zone_stores_and_expires_in_utc(db_url: str, clock) -> None:
    """PostgreSQL's session ``TimeZone`` (server default, ``PGTZ`` or the URL's options) never
    shifts a stored time or the expiry check: sharetui stores naive UTC and never asks the
    database for the time."""
    if db_url.startswith("sqlite"):
        pytest.skip("a PostgreSQL session setting")
    from urllib.parse import parse_qsl, urlencode, urlparse

    from sharetui.runtime import open_core

    parsed = urlparse(db_url)
    options = dict(parse_qsl(parsed.query)).get("options", "")
    query = urlencode({"options": f"{options} -cTimeZone=Asia/Kolkata".strip()})
    core = open_core(parsed._replace(query=query).geturl(), clock)
    try:
        assert core.db.execute_sql("SHOW TimeZone").fetchone()[0] == "Asia/Kolkata"
        admin = core.users.add("admin", role="admin", actor=None)
        core.users.add("priya", role="sales", actor=admin)
        core.users.add("daniel", role="sales", actor=admin)
        lead = core.records.add_lead(name="Mira Demir", owner="priya", actor=admin)
        grant = core.sharing.share("lead", lead.id, "daniel", requester=admin, duration="1h").grant
        assert grant["expires_at"] == "2026-03-02T10:00:00Z"
        assert (
            stored(core, "SELECT expires_at FROM grants WHERE id = ?", grant["id"]) == "2026-03-02 10:00:00"
        )
        clock.set(utc(2026, 3, 2, 9, 59, 59))
        assert core.access.can("daniel", lead, "read") and core.expiry.sweep().expired == 0
        clock.set(utc(2026, 3, 2, 10, 0))
        assert not core.access.can("daniel", lead, "read") and core.expiry.sweep().expired == 1
    finally:
        core.close()


def test_on_a_machine_in_new_york_expiry_and_the_sweeper_do_not_shift(bank, clock, machine_zone) -> None:
    """The machine's offset never leaks into stored times or the expiry check."""
    machine_zone("America/New_York")
    core = bank.core
    grant = share(bank, duration="30m").grant
    assert grant["expires_at"] == "2026-03-02T09:30:00Z"
    assert local_text(grant["expires_at"]) == "2026-03-02 04:30 EST"
    clock.set(utc(2026, 3, 2, 9, 29, 59))
    assert core.access.can("daniel", bank.lead, "read") and core.expiry.sweep().expired == 0
    clock.set(utc(2026, 3, 2, 9, 30))
    assert not core.access.can("daniel", bank.lead, "read") and core.expiry.sweep().expired == 1
    # A month on the machine's own calendar, across New York's DST start (8 March).
    clock.set(utc(2026, 3, 1, 14, 0))  # 09:00 EST
    monthly = share(bank, duration="1mo").grant
    assert local_text(monthly["expires_at"]) == "2026-04-01 09:00 EDT"


def test_on_a_machine_in_india_a_schedule_keeps_its_own_zone_and_shows_local_times(
    bank, clock, cli, machine_zone
) -> None:
    machine_zone("Asia/Kolkata")
    auto = add_schedule(bank, "0 9 * * 1-5", "Europe/Berlin")
    shown = cli("automations", "show", auto.id)
    assert shown.exit_code == 0, shown.stderr
    assert "2026-03-03 13:30 IST" in shown.stdout  # next run: Tuesday 09:00 Berlin = 08:00 UTC
    assert cli("automations", "show", auto.id, "--json").json()["schedule"]["next"] == "2026-03-03T08:00:00Z"
    back_to(bank.core)
    tick_through(bank.core, clock, clock.now(), utc(2026, 3, 4, 0), timedelta(minutes=30))
    assert fired() == ["2026-03-03T08:00:00Z"]


def test_a_demo_timeline_shows_local_times_like_its_text(cli, machine_zone) -> None:
    """The time column of ``demo --script`` and the times inside its lines agree."""
    machine_zone("Asia/Kolkata")
    told = cli("demo", "--script", "presales_handoff")
    assert told.exit_code == 0, told.stderr
    moved = [line for line in told.stdout.splitlines() if "the clock moves" in line]
    assert moved
    for line in moved:
        stamp = datetime.strptime(line.split(" IST")[0][-16:], "%Y-%m-%d %H:%M")
        assert line.startswith(stamp.strftime("%a %d %b %H:%M")), line


def test_an_activity_time_past_what_a_display_zone_holds_is_refused_and_an_old_one_still_shows(
    bank, cli, monkeypatch
) -> None:
    """HTTP API attack H2: ``9999-12-31 23:59:59`` UTC is year 10000 in Tokyo, and
    ``leads show`` ended with OverflowError. The core refuses activity times outside the
    years 1900-8999 (as SHARETUI_NOW), for every face; a value stored before that (or
    written by hand) is shown in UTC instead of crashing."""
    from sharetui.db.models import Activity
    from sharetui.errors import UsageError

    core = bank.core
    for at in (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)):
        with pytest.raises(UsageError, match="between the years 1900 and 8999"):
            core.records.post_activity(
                ("lead", bank.lead.id), type="Email Sent", actor=bank.priya, occurred_at=at
            )
    edge = core.records.post_activity(("lead", bank.lead.id), type="Email Sent", actor=bank.priya)
    Activity.update(occurred_at=datetime(9999, 12, 31, 23, 59, 59)).where(Activity.id == edge.id).execute()
    monkeypatch.setenv("SHARETUI_TZ", "Asia/Tokyo")
    assert local_text(datetime(9999, 12, 31, 23, 59, 59)) == "9999-12-31 23:59 UTC"
    shown = cli("leads", "show", bank.lead.id, env={"SHARETUI_TZ": "Asia/Tokyo"})
    assert shown.exit_code == 0 and "9999-12-31 23:59 UTC" in shown.stdout, shown.stderr


def test_fields_with_numbers_json_cannot_hold_are_refused_by_the_core(bank) -> None:
    """HTTP API attack H3 (and H10's note): a plugin or any face posting NaN, an infinity
    or a note longer than 10,000 characters gets a UsageError, nothing written."""
    from sharetui.errors import UsageError

    core = bank.core
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(UsageError, match=r"fields\.amount is not a finite number"):
            core.records.post_activity(
                ("lead", bank.lead.id), type="Email Sent", actor=bank.priya, fields={"amount": bad}
            )
    with pytest.raises(UsageError, match="at most 10000"):
        core.records.post_activity(
            ("lead", bank.lead.id), type="Email Sent", actor=bank.priya, note="n" * 10_001
        )
    act = core.records.post_activity(("lead", bank.lead.id), type="Email Sent", actor=bank.priya, note="ok")
    with pytest.raises(UsageError, match="not a finite number"):
        core.records.update_activity(act.id, actor=bank.priya, fields={"x": float("nan")})


@pytest.mark.parametrize(
    "zone",
    [UTC, BERLIN, NEW_YORK, ZoneInfo("Asia/Tokyo"), ZoneInfo("America/St_Johns"), None],
    ids=str,
)
def test_local_text_writes_what_strftime_writes(zone: ZoneInfo | None) -> None:
    """local_text formats without strftime (a timeline shows a thousand times): the text
    is strftime's, zone name and all, across DST changes, at the ends of what datetime
    holds (years below 1000 take strftime's own unpadded form) and with seconds."""
    instants = [utc(2026, 3, 29, 0, 59, 59), utc(2026, 10, 25, 1, 0), utc(2026, 11, 1, 5, 30, 7)]
    instants += [utc(1, 1, 1, 5), utc(999, 3, 1), utc(1000, 1, 1), utc(9999, 12, 31, 23, 59, 59)]
    instants += [utc(2024, 2, 29, 12) + timedelta(minutes=97 * i, seconds=i) for i in range(200)]
    for at in instants:
        try:
            local = at.astimezone(zone)
        except (OverflowError, ValueError):
            local = at
        for seconds in (False, True):
            expected = local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z").strip()
            assert local_text(at, seconds=seconds, zone=zone) == expected

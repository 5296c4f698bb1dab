"""``Worker``: one pass does reminders, schedules, events and the expiry sweep;
on SQLite one worker holds the lease; on PostgreSQL several share the outbox and
every event is processed exactly once (DESIGN .4, .6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sharetui.core.events.worker import Worker
from sharetui.db.connection import is_sqlite
from sharetui.db.models import (
    AutomationRun,
    Grant,
    Notification,
    OutboxEvent,
    Task,
    WorkerLease,
)


def add(core, toml: str, actor):
    return core.automations.add(core.automations.parse(textwrap.dedent(toml), "x.toml"), actor=actor)


def pending() -> int:
    return OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).count()


SCHEDULE = """
name = "Weekday digest"
status = "published"

[trigger]
type = "schedule"
cron = "0 9 * * 1-5"
timezone = "Europe/Berlin"
entity = "lead"

[[actions]]
type = "notify"
to = "record_owner"
message = "Still open: {lead.name}"
"""

REMINDER = """
name = "Task owner reads the opportunity"
status = "published"

[trigger]
type = "task_reminder_for_opportunity"

[[actions]]
type = "share_opportunity"
share_with = "owner_in_trigger"
duration = "2d"
"""

NOTIFY_ON_UPDATE = """
name = "Tell ruth"
status = "published"

[trigger]
type = "lead_update"

[[actions]]
type = "notify"
to = "ruth"
message = "{lead.name} is now {lead.stage}"
"""


def test_one_tick_does_reminders_schedules_events_and_the_sweep(bank, clock) -> None:
    core = bank.core
    add(core, SCHEDULE, bank.admin)
    reminder = add(core, REMINDER, bank.admin)
    updates = add(core, NOTIFY_ON_UPDATE, bank.admin)
    opp = core.records.add_opportunity(
        lead=bank.lead.id, name="Home loan", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    task = core.records.add_task(
        opp,
        owner="daniel",
        subject="Payslips",
        actor=bank.admin,
        reminder_at=clock.now() + timedelta(hours=2),
    )
    short = core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="1h")
    warned = core.sharing.share("lead", bank.lead.id, "tomas", requester=bank.admin, duration="1d12h")
    worker = Worker(core, name="w1")

    first = worker.tick()
    assert first.lease and (first.reminders, first.schedules, first.expired) == (0, 0, 0)
    assert first.warned == 1, "the 1h share expires within the 24h window"
    assert first.runs == 0
    assert first.events > 0  # the setup's own events
    assert [e.topic for e in OutboxEvent.select().where(OutboxEvent.processed_at.is_null())] == [
        "share.expiring_soon"
    ], "the sweep runs after the events; what it writes waits for the next pass"

    # Tuesday 08:00 UTC = 09:00 Berlin: the digest fires, the reminder is due,
    # the 1h share has expired, the 36h one is within a day of its end.
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    report = worker.tick()
    assert report.lease
    assert report.reminders == 1
    assert report.schedules == 1
    assert report.expired == 1 and report.warned == 1
    assert report.runs == 3  # the lead update, the reminder, the digest on the one lead
    assert len(report.summaries) == 3
    assert report.busy()
    assert Task.get_by_id(task.id).reminded_at is not None
    assert Grant.get(Grant.request_id == short.request_id).state == "expired"
    assert Grant.get(Grant.request_id == warned.request_id).warned_at is not None
    assert [r["status"] for r in core.automations.runs(reminder.id, actor=None)] == ["succeeded"]
    assert [r["status"] for r in core.automations.runs(updates.id, actor=None)] == ["succeeded"]
    assert sorted(n.message for n in Notification.select()) == [
        "Mira Demir is now qualified",
        "Still open: Mira Demir",
    ]
    assert core.access.can(bank.daniel, opp, "read")

    # The same moment again: nothing twice.
    again = worker.tick()
    assert (again.reminders, again.schedules, again.expired, again.warned, again.runs) == (0, 0, 0, 0, 0)
    assert AutomationRun.select().count() == 3


def test_run_once_drains_the_outbox_in_batches(bank) -> None:
    core = bank.core
    updates = add(core, NOTIFY_ON_UPDATE, bank.admin)
    core.automations.process_pending()
    with core.db.atomic():
        for i in range(12):
            core.records.update_record(bank.lead, values={"stage": f"stage {i}"}, actor=bank.admin)
    total = Worker(core, name="w1", batch=5).run(once=True)
    assert pending() == 0
    assert total.events == 12 and total.runs == 12
    assert len(core.automations.runs(updates.id, limit=100, actor=None)) == 12


def test_run_once_drains_the_outbox_even_when_the_runs_emit_events(bank) -> None:
    core = bank.core
    add(
        core,
        NOTIFY_ON_UPDATE.replace("Tell ruth", "Share").split("[[actions]]")[0]
        + '[[actions]]\ntype = "share_lead"\nshare_with = "daniel"\n',
        bank.admin,
    )
    core.automations.process_pending()
    leads = [core.records.add_lead(name=f"Lead {i}", owner="priya", actor=bank.admin) for i in range(12)]
    core.automations.process_pending()
    for lead in leads:
        core.records.update_record(lead, values={"stage": "qualified"}, actor=bank.admin)
    worker = Worker(core, name="w1", batch=5)
    first = worker.tick()
    assert first.runs == 5
    assert first.events >= 5, "five lead updates were processed"
    worker.run(once=True)
    assert pending() == 0
    assert Grant.select().where(Grant.state == "active").count() == 12


# -- the SQLite lease ---------------------------------------------------------------------------


@pytest.mark.skipif(bool(os.environ.get("SHARETUI_TEST_DATABASE_URL")), reason="the lease is SQLite only")
def test_on_sqlite_a_second_worker_waits_for_the_lease(bank, clock) -> None:
    core = bank.core
    assert is_sqlite()
    add(core, NOTIFY_ON_UPDATE, bank.admin)
    first, second = Worker(core, name="first"), Worker(core, name="second")
    assert first.tick().lease
    assert WorkerLease.get().holder == "first"

    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    blocked = second.tick()
    assert not blocked.lease and blocked.runs == 0 and blocked.events == 0
    assert pending() == 1, "the waiting worker touched nothing"
    assert not second.run(once=True).lease
    assert WorkerLease.get().holder == "first", "a waiting worker does not take or drop the lease"

    # The first renews on every tick; 29 s later the lease still holds.
    clock.advance(timedelta(seconds=29))
    assert not second.tick().lease
    # It is not renewed for 30 s: it has expired, and the second takes over.
    clock.advance(timedelta(seconds=30))
    taken = second.tick()
    assert taken.lease and taken.runs == 1 and pending() == 0
    assert WorkerLease.get().holder == "second"
    assert not first.tick().lease

    # Released (a worker that stops), the lease is free at once.
    second.release_lease()
    assert WorkerLease.select().count() == 0
    assert first.tick().lease
    assert WorkerLease.get().holder == "first"
    total = first.run(once=True)
    assert total.lease
    assert WorkerLease.select().count() == 0, "run() releases the lease when it ends"
    assert second.tick().lease


# -- PostgreSQL: two worker processes race over one outbox ------------------------------------------

WORKER_SCRIPT = """
import json, sys
from sharetui.clock import FrozenClock, parse_instant
from sharetui.runtime import open_core
from sharetui.core.events.worker import Worker
from sharetui.db.models import OutboxEvent

url, now, name = sys.argv[1], sys.argv[2], sys.argv[3]
core = open_core(url, FrozenClock(parse_instant(now)))
print("ready", flush=True)
sys.stdin.readline()
runs = events = passes = 0
while True:
    total = Worker(core, name=name, batch=25).run(once=True)
    runs += total.runs
    events += total.events
    passes += 1
    if not OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).exists():
        break
print(json.dumps({"runs": runs, "events": events, "passes": passes}), flush=True)
core.close()
"""


@pytest.mark.skipif(not os.environ.get("SHARETUI_TEST_DATABASE_URL"), reason="needs PostgreSQL")
def test_on_postgresql_two_worker_processes_process_every_event_exactly_once(bank, db_url, clock) -> None:
    core = bank.core
    assert not is_sqlite()
    core.settings.set("automation_daily_limit", 5000, actor=None)  # every run does its action
    automation = add(core, NOTIFY_ON_UPDATE, bank.admin)
    core.automations.process_pending()
    with core.db.atomic():
        for i in range(1000):
            core.records.update_record(bank.lead, values={"stage": f"stage {i}"}, actor=bank.admin)
    update_ids = [
        e.id
        for e in OutboxEvent.select(OutboxEvent.id)
        .where(OutboxEvent.topic == "lead.updated")
        .order_by(OutboxEvent.id)
    ]
    assert len(update_ids) == 1000 and pending() == 1000
    core.close()  # the workers get the database to themselves

    now = clock.now().isoformat()
    env = dict(os.environ)  # the same interpreter and sharetui as this test
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, db_url, now, f"worker-{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in (1, 2)
    ]
    try:
        for p in procs:  # both connected before either starts
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        started = time.monotonic()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=90)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.monotonic() - started
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()

    assert sum(r["runs"] for r in results) == 1000
    assert all(r["runs"] > 0 for r in results), f"both workers took part: {results}"
    assert elapsed < 60
    runs = list(AutomationRun.select().where(AutomationRun.automation == automation.id))
    assert len(runs) == 1000
    assert sorted(r.event_id for r in runs) == update_ids, "one run per event, none twice"
    assert {r.status for r in runs} == {"succeeded"}
    assert Notification.select().count() == 1000
    assert len({n.automation_run_id for n in Notification.select()}) == 1000
    assert pending() == 0
    attempts = {e.attempts for e in OutboxEvent.select().where(OutboxEvent.id.in_(update_ids))}
    assert attempts == {1}, "each event was processed by exactly one worker, once"


# -- a lost database connection -----------------------------------------------------------------------


def test_the_reconnect_wait_doubles_from_half_a_second_to_thirty_with_jitter() -> None:
    import random

    from sharetui.core.events.worker import reconnect_wait

    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (8, 30.0), (500, 30.0)]:
        waits = [reconnect_wait(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempt, min(waits), max(waits))
        assert max(waits) - min(waits) > ceiling / 10, "jittered: a fleet does not come back in step"


def test_what_counts_as_a_lost_connection() -> None:
    import sqlite3

    import psycopg
    from psycopg import errors as pg

    from sharetui.db import IntegrityError, OperationalError
    from sharetui.db.connection import connection_lost

    def wrapped(driver: BaseException) -> BaseException:
        outer = OperationalError(str(driver))
        outer.__context__ = driver
        return outer

    assert connection_lost(wrapped(pg.AdminShutdown("terminating connection"))) == "AdminShutdown"
    assert connection_lost(OperationalError("the connection is closed")) == "OperationalError"
    assert connection_lost(wrapped(psycopg.OperationalError("connection failed: Connection refused")))
    assert connection_lost(wrapped(pg.CannotConnectNow("the database system is starting up")))
    assert connection_lost(IntegrityError("duplicate key value violates unique constraint")) is None
    assert connection_lost(wrapped(pg.SerializationFailure("could not serialize access"))) is None
    assert connection_lost(OperationalError("database is locked")) is None
    assert connection_lost(sqlite3.OperationalError("no such table: leads")) is None


def test_a_worker_that_cannot_reconnect_gives_up_after_its_attempts(bank, monkeypatch) -> None:
    """``worker --once`` (max_reconnects) gives up rather than wait forever; the wait grows."""
    from sharetui.core.events import worker as worker_module
    from sharetui.db import OperationalError

    waits: list[float] = []
    lost = OperationalError("server closed the connection unexpectedly")

    def tick_fails(self):
        raise lost

    def connect_fails(*_args, **_kwargs):
        raise OperationalError("connection failed: Connection refused")

    w = Worker(bank.core, name="w", max_reconnects=3)
    monkeypatch.setattr(Worker, "tick", tick_fails)
    monkeypatch.setattr(w.stop_event, "wait", lambda seconds: waits.append(seconds) or False)
    monkeypatch.setattr(bank.core.db, "connect", connect_fails)
    monkeypatch.setattr(worker_module, "reconnect_wait", lambda attempt: 0.5 * 2 ** (attempt - 1))
    with pytest.raises(OperationalError, match="connection failed"):
        w.run(once=True)
    assert waits == [0.5, 1.0, 2.0]
    assert w.reconnects == 0


SLOW_STEP_PLUGIN = '''
import os
import time
from pathlib import Path

from sharetui import hookimpl
from sharetui.sdk import Outcome


def run(ctx, config):
    """Sleeps once, in the middle of the run's transaction, when the test leaves a marker."""
    marker = Path(os.environ["SHARETUI_TEST_SLOW_MARKER"])
    if not ctx.dry_run and marker.exists():
        marker.unlink()
        Path(str(marker) + ".sleeping").write_text("now")
        time.sleep(3)
    return Outcome.succeeded("slow step done")


@hookimpl
def sharetui_register_actions(register):
    register("slow_step", "Sleep once when a test asks", run)
'''

NOTIFY_THEN_SLOW = """
name = "Tell ruth, then take a while"
status = "published"

[trigger]
type = "lead_update"

[[actions]]
type = "notify"
to = "ruth"
message = "{lead.name} is now {lead.stage}"

[[actions]]
type = "slow_step"
"""


def _wait_for(what: str, predicate, timeout: float = 20.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@pytest.mark.skipif(not os.environ.get("SHARETUI_TEST_DATABASE_URL"), reason="needs PostgreSQL")
def test_on_postgresql_a_worker_reconnects_after_its_connection_is_terminated(
    db_url: str, clock, tmp_path
) -> None:
    """Regression: after pg_terminate_backend the worker exited. Now the same process logs
    one line per attempt (error class and wait, no password), connects again with backoff
    and goes on: events posted after an idle kill are processed within seconds, and an
    event whose transaction was killed half-way is processed again, exactly once."""
    import signal
    import uuid

    import psycopg

    from sharetui.host import PluginHost
    from sharetui.runtime import open_core

    plugins = tmp_path / "slow-plugin"
    plugins.mkdir()
    (plugins / "slow_step.py").write_text(SLOW_STEP_PLUGIN, encoding="utf-8")
    marker = tmp_path / "sleep-once"
    core = open_core(db_url, clock, plugins=PluginHost.load(plugin_dirs=[plugins], entry_points=False))
    admin = core.users.add("admin", role="admin", actor=None)
    core.users.add("ruth", role="sales_manager", actor=admin)
    lead = core.records.add_lead(name="Élodie Ünal", owner=admin, actor=admin)
    add(core, NOTIFY_THEN_SLOW, admin)
    core.automations.process_pending()

    app_name = f"sharetui-worker-{uuid.uuid4().hex[:8]}"
    secret = "s3cret-worker-pw"  # the test server trusts local logins: any password opens it
    plain = os.environ["SHARETUI_TEST_DATABASE_URL"].split("?", 1)[0]
    url = db_url.replace("://postgres@", f"://postgres:{secret}@", 1) + f"&application_name={app_name}"
    assert secret in url and app_name in url
    admin_conn = psycopg.connect(plain, autocommit=True)

    def backend() -> int | None:
        row = admin_conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app_name,)
        ).fetchone()
        return row[0] if row else None

    def terminate() -> None:
        pid = backend()
        assert pid is not None
        assert admin_conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        _wait_for("the backend to go", lambda: backend() != pid)

    def notifications() -> list[str]:
        return [n.message for n in Notification.select().order_by(Notification.id)]

    work = tmp_path / "work"
    work.mkdir()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "SHARETUI_NOW": clock.now().isoformat(),
        "SHARETUI_TEST_SLOW_MARKER": str(marker),
        "SHARETUI_LOAD_ENTRY_POINTS": "0",
    }
    command = [sys.executable, "-m", "sharetui", "--db", url, "--plugins-dir", str(plugins)]
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [*command, "worker", "--interval", "0.2"],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            env=env,
            cwd=work,
        )
    try:
        _wait_for("the worker's connection", lambda: backend() is not None, log=log_path)

        core.records.update_record(lead, values={"stage": "worker up"}, actor=admin)
        _wait_for("the worker's first event", lambda: len(notifications()) == 1, log=log_path)

        # 1. Killed while idle: the next events are processed by the same process.
        terminate()
        core.records.update_record(lead, values={"stage": "after an idle kill"}, actor=admin)
        _wait_for("the event after the idle kill", lambda: len(notifications()) == 2, log=log_path)
        assert proc.poll() is None

        # 2. Killed in the middle of an event's transaction (its notification written,
        # the slow step asleep): rolled back, then processed again on the new connection.
        marker.write_text("once")
        core.records.update_record(lead, values={"stage": "killed half-way"}, actor=admin)
        _wait_for("the slow step", lambda: Path(f"{marker}.sleeping").exists(), log=log_path)
        terminate()
        _wait_for("the killed event, again", lambda: len(notifications()) == 3, log=log_path)

        # 3. And it carries on.
        for n, stage in enumerate(("one", "two", "three"), start=4):
            core.records.update_record(lead, values={"stage": stage}, actor=admin)
            # (one at a time: a notification names the lead's stage when it is processed)
            _wait_for(f"event {stage}", lambda n=n: len(notifications()) == n, timeout=5, log=log_path)
        assert proc.poll() is None, "the same worker process did all of it"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        admin_conn.close()

    assert code == 0
    assert notifications() == [
        "Élodie Ünal is now worker up",
        "Élodie Ünal is now after an idle kill",
        "Élodie Ünal is now killed half-way",
        "Élodie Ünal is now one",
        "Élodie Ünal is now two",
        "Élodie Ünal is now three",
    ], "nothing lost, nothing twice"
    updates = [e.id for e in OutboxEvent.select().where(OutboxEvent.topic == "lead.updated")]
    runs = [r.event_id for r in AutomationRun.select().order_by(AutomationRun.event_id)]
    assert runs == sorted(updates) and len(updates) == 6, "one run per event"
    assert {e.attempts for e in OutboxEvent.select().where(OutboxEvent.id.in_(updates))} == {1}
    assert pending() == 0

    log = log_path.read_text()
    lost = [line for line in log.splitlines() if "database connection lost" in line]
    assert len(lost) >= 2, log
    assert all("(AdminShutdown); reconnecting in" in line or "reconnecting in" in line for line in lost), log
    assert log.count("reconnected to the database") >= 2, log
    assert secret not in log
    core.close()


def test_an_event_that_cannot_be_decided_fails_alone_and_the_queue_goes_on(bank, clock) -> None:
    """Poison rows (written around sharetui: psql, a restore) used to crash every pass:
    a payload that is no object or no JSON, an activity id that is no number, a lead
    whose fields are no JSON. Each is marked processed with its error kept, and the
    events after it are decided as usual."""
    from sharetui.db.models import PluginError

    core = bank.core
    add(core, NOTIFY_ON_UPDATE, bank.admin)
    meeting_rule = add(
        core,
        """
        name = "Meeting note"
        status = "published"

        [trigger]
        type = "new_activity_on_lead"

        [[actions]]
        type = "notify"
        to = "ruth"
        message = "meeting on {lead.name}"
        """,
        bank.admin,
    )
    core.automations.process_pending()
    at = core.db_now()
    lead = bank.lead.id
    p = core.db.param

    def raw_event(topic: str, entity_id: int, text: str) -> int:
        event = OutboxEvent.insert(topic=topic, entity_type="lead", entity_id=entity_id, created_at=at)
        event_id = event.execute()
        core.db.execute_sql(f"UPDATE outbox SET payload = {p} WHERE id = {p}", (text, event_id))
        return event_id

    bad = [
        raw_event("lead.updated", lead, '["x"]'),
        raw_event("lead.updated", lead, "not json"),
        raw_event("activity.created", lead, json.dumps({"activity_id": "1 OR 1=1"})),
    ]
    broken = core.records.add_lead(name="Broken", owner=bank.priya, actor=bank.admin)
    core.db.execute_sql(f"UPDATE leads SET fields = 'not json' WHERE id = {p}", (broken.id,))
    bad.append(raw_event("lead.updated", broken.id, "{}"))
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    core.automations.process_pending()  # raised on the first bad row before
    assert pending() == 0
    done = OutboxEvent.select(OutboxEvent.id).where(OutboxEvent.processed_at.is_null(False))
    assert set(bad) <= {e.id for e in done}
    assert "Mira Demir is now qualified" in {n.message for n in Notification.select()}
    assert "Broken is now new" in {n.message for n in Notification.select()}  # fields read as {}
    kept = {e.hook for e in PluginError.select().where(PluginError.plugin == "sharetui")}
    assert {f"outbox event {i} (lead.updated)" for i in bad[:2]} <= kept
    assert [r["status"] for r in core.automations.runs(meeting_rule.id, actor=None)] in ([], ["succeeded"])
    # A lead whose fields are no JSON still shows.
    assert core.records.detail(("lead", broken.id), actor=bank.admin)["fields"] == {}


def test_while_a_backlog_fills_every_pass_the_periodic_jobs_run_at_most_once_a_second(
    bank, clock, monkeypatch
) -> None:
    """A worker draining a backlog does not sweep, remind and prune at every pass: at
    most every PERIODIC_EVERY seconds; when the backlog is gone, at every pass again."""
    from sharetui.core.events import worker as worker_module

    core = bank.core
    now = [1000.0]
    monkeypatch.setattr(worker_module, "_monotonic", lambda: now[0])
    for stage in ("contacted", "qualified", "converted", "lost", "new", "contacted"):
        core.records.update_record(bank.lead, values={"stage": stage}, actor=bank.admin)
    core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="1h")
    worker = Worker(core, name="w1", batch=2)
    swept: list[int] = []
    real_sweep = core.expiry.sweep

    def sweep(*args, **kwargs):
        swept.append(1)
        return real_sweep(*args, **kwargs)

    monkeypatch.setattr(core.expiry, "sweep", sweep)
    assert worker.tick().events == 2 and len(swept) == 1  # the first pass runs them
    clock.advance(timedelta(hours=2))  # the share is due: only a sweep would record it
    report = worker.tick()
    assert report.events == 2 and report.expired == 0 and len(swept) == 1  # a full pass, 0 s later
    now[0] += worker_module.PERIODIC_EVERY
    report = worker.tick()
    assert report.expired == 1 and len(swept) == 2  # a second on: they run
    while worker.tick().events == worker.batch:  # drain
        pass
    before = len(swept)
    worker.tick()
    assert len(swept) == before + 1  # no backlog: every pass

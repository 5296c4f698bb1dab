"""Crash safety: ``kill -9`` at random points loses and duplicates nothing (DESIGN .4, issue 8).

Three stories, each with a real process killed with SIGKILL again and again at
seeded random moments, then run to completion:

- a ``sharetui worker`` draining a queue of activities that each lead to a share
  through a published automation (team mode: nothing is processed at posting);
- an expiry sweep over thousands of due grants;
- ``sharetui api share`` running large batches.

After every kill the database is checked for half-done work, and at the end
for exactly-once results. Sizes are tunable (``SHARETUI_STRESS_*``, see below);
the defaults keep the file within CI's time budget, and the full-size run on
PostgreSQL (``SHARETUI_STRESS_EVENTS=10000``) is the same test.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sharetui.db.connection import database, is_sqlite
from sharetui.db.models import (
    Activity,
    AutomationRun,
    AutomationStep,
    Grant,
    HistoryEvent,
    OutboxEvent,
    ShareRequest,
)
from sharetui.domain.time import iso

from .child import ACTIVITY_TYPE, CHILD, SALES, build_company, child_env, cli_command, problems_in_stderr

# Activities posted (one pending event and, once processed, one share each). The full
# 10,000 on SQLite; fewer on PostgreSQL by default, where events go at some 30-60 a
# second here (each its own transaction of a few dozen round trips): the full run takes
# 5-6 minutes, over CI's budget for this file.
_PG = bool(os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip())
EVENTS = int(os.environ.get("SHARETUI_STRESS_EVENTS", "1000" if _PG else "10000"))
# Times the worker is killed at most (fewer when the queue drains first).
WORKER_KILLS = int(os.environ.get("SHARETUI_STRESS_WORKER_KILLS", "25"))
SWEEP_KILLS = int(os.environ.get("SHARETUI_STRESS_SWEEP_KILLS", "10"))
# Grants generated for the sweep story, about half of them due.
SWEEP_GRANTS = int(os.environ.get("SHARETUI_STRESS_SWEEP_GRANTS", "20000"))
# How long after it is ready a sweep may be killed, at most (seconds). PostgreSQL's sweep
# picks each batch through the (state, expires_at) index and finishes all of it in well
# under a second: kills drawn up to a second found it done more often than not.
SWEEP_KILL_WINDOW = 0.4 if _PG else 1.0
BATCH_KILLS = int(os.environ.get("SHARETUI_STRESS_BATCH_KILLS", "8"))
# Leads of the batch story (items = leads x 8 sellers). SQLite decides 500 items per
# transaction, so a call that has committed its first chunk is near its end with 1,200
# items; 4,000 leave most of every call still to do when the kill lands.
BATCH_LEADS = int(os.environ.get("SHARETUI_STRESS_BATCH_LEADS", "150" if _PG else "500"))
SEED = int(os.environ.get("SHARETUI_STRESS_SEED", "8"))
# A killed worker's SQLite lease runs out 30 s after its last renewal; the frozen clock of
# each restart moves on by more than that, as the wall clock would during a restart.
RESTART_STEP = timedelta(seconds=31)


# Children connect under this name, so a killed one's server side can be waited for.
CHILD_APP = f"sharetui-crash-{os.getpid()}"


def start(args: list[str], now: datetime, cwd: Path, **kw: Any) -> subprocess.Popen[str]:
    env = child_env(iso(now)) | {"PGAPPNAME": CHILD_APP}
    return subprocess.Popen(args, env=env, cwd=cwd, text=True, **kw)


def wait_for_orphans(timeout: float = 30.0) -> None:
    """On PostgreSQL, wait until no killed child's backend is still at work: SIGKILL ends
    the client, but a statement it sent (a COMMIT) still runs on the server, and the next
    check or sweep must see the database after it, as a restarted worker would."""
    if is_sqlite():
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (busy,) = database.execute_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL",
            (CHILD_APP,),
        ).fetchone()
        if not busy:
            return
        time.sleep(0.05)


def kill_after(proc: subprocess.Popen[str], delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds; True when it was still running (a real crash)."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wait_for_orphans()
        return True
    return False


def kill_once(proc: subprocess.Popen[str], started: Any, delay: float) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds after ``started()`` first holds (polled: the
    child's work shows in the database), so the kill lands mid-work, not during start-up.
    True when it was still running (a real crash)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and not started():
        assert time.monotonic() < deadline, "the child never started its work"
        time.sleep(0.05)
    return kill_after(proc, delay)


def run_cli(url: str, now: datetime, cwd: Path, *args: str, stdin: str | None = None) -> Any:
    proc = subprocess.run(
        cli_command(url, *args),
        env=child_env(iso(now)),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert not problems_in_stderr(proc.stderr), proc.stderr
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    return json.loads(proc.stdout)


# -- 1. a worker killed while it drains the queue ------------------------------------------------------


def one_snapshot(check: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``check``'s queries in one read snapshot. A process killed just after it sent
    COMMIT leaves its PostgreSQL backend committing a moment later: a check reading grants,
    then history, then events in separate statements could see the first before that commit
    and the rest after it (a due grant "active" beside its ``expired`` row) though the
    database never held that state. One REPEATABLE READ transaction sees one state."""

    @functools.wraps(check)
    def checked(*args: Any, **kwargs: Any) -> Any:
        with database.atomic():
            if not is_sqlite():
                database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return check(*args, **kwargs)

    return checked


@one_snapshot
def check_worker_state(activity_of_event: dict[int, int]) -> int:
    """Nothing half done at this crash point: an activity's event is processed exactly when
    its one run, its one step, its one share request, its one grant, its history rows and
    its ``share.granted`` event all exist. Returns how many of the events are processed."""
    ids = list(activity_of_event)
    events = {
        e_id: (processed, attempts)
        for e_id, processed, attempts in OutboxEvent.select(
            OutboxEvent.id, OutboxEvent.processed_at, OutboxEvent.attempts
        )
        .where(OutboxEvent.id.in_(ids))
        .tuples()
    }
    done = {e for e, (processed, _) in events.items() if processed is not None}
    assert all(attempts == (1 if e in done else 0) for e, (_, attempts) in events.items()), (
        "an event was marked processed twice, or counted without being processed"
    )

    runs = list(AutomationRun.select(AutomationRun.id, AutomationRun.event_id, AutomationRun.status).tuples())
    per_event = Counter(event for _, event, _ in runs)
    assert not [e for e, n in per_event.items() if n > 1], "an event ran the automation twice"
    assert set(per_event) == done, "a run without its event marked done, or the other way round"
    failed = AutomationRun.select(AutomationRun.reason).where(AutomationRun.status != "succeeded")
    assert {status for _, _, status in runs} <= {"succeeded"}, Counter(r.reason for r in failed)
    steps = Counter(run for (run,) in AutomationStep.select(AutomationStep.run).tuples())
    assert steps == Counter({run_id: 1 for run_id, _, _ in runs}), "a step done twice or missing"

    assert not ShareRequest.select().where(ShareRequest.status == "processing").exists()
    requests = list(
        ShareRequest.select(ShareRequest.id, ShareRequest.status, ShareRequest.grant_id)
        .where(ShareRequest.source == "automation")
        .tuples()
    )
    assert len(requests) == len(runs) and {s for _, s, _ in requests} <= {"completed"}

    grants = list(
        Grant.select(Grant.id, Grant.context_activity_id, Grant.state, Grant.request_id)
        .where(Grant.source == "automation")
        .tuples()
    )
    contexts = Counter(ctx for _, ctx, _, _ in grants)
    assert not [c for c, n in contexts.items() if n > 1], "a share duplicated"
    assert set(contexts) == {activity_of_event[e] for e in done}, "a share lost, or made twice"
    assert {state for _, _, state, _ in grants} <= {"active"}
    assert {req for _, _, _, req in grants} == {r for r, _, _ in requests}
    assert {g for _, _, g in requests} == {g for g, _, _, _ in grants}

    history = Counter(
        (event, grant)
        for event, grant in HistoryEvent.select(HistoryEvent.event, HistoryEvent.grant_id)
        .where(HistoryEvent.source == "automation")
        .tuples()
    )
    for grant_id, *_ in grants:
        assert history[("share", grant_id)] == 1 and history[("granted", grant_id)] == 1, grant_id
    assert sum(history.values()) == 2 * len(grants), "history rows without their grant"
    granted_events = Counter(
        json.loads(p)["grant_id"] if isinstance(p, str) else p["grant_id"]
        for (p,) in OutboxEvent.select(OutboxEvent.payload)
        .where(OutboxEvent.topic == "share.granted")
        .tuples()
    )
    assert granted_events == Counter({g: 1 for g, *_ in grants}), "share.granted lost or doubled"
    return len(done)


def processed_count(event_ids: list[int]) -> int:
    return (
        OutboxEvent.select()
        .where(OutboxEvent.id.in_(event_ids) & OutboxEvent.processed_at.is_null(False))
        .count()
    )


def test_a_worker_killed_at_random_points_processes_every_event_exactly_once(
    core, db_url: str, clock, tmp_path: Path
) -> None:
    """``kill -9`` of ``sharetui worker`` at seeded random moments, many times over, while it
    drains EVENTS activities that each lead to a share; then a ``worker --once``. Every event
    is processed exactly once and every share exists exactly once, with its history."""
    per_lead = 20  # under the default loop guard too (50 runs per record per day)
    _admin, sellers, leads = build_company(core, leads=max(1, EVENTS // per_lead))
    admin = core.users.get("admin")
    with core.db.atomic():  # team mode: posting queues the events, nobody processes them yet
        for n in range(EVENTS):
            core.records.post_activity(
                ("lead", leads[n // per_lead]),
                type=ACTIVITY_TYPE,
                owner=sellers[n % len(sellers)],
                actor=admin,
            )
    activity_of_event = {
        e.id: e.payload["activity_id"]
        for e in OutboxEvent.select().where(
            (OutboxEvent.topic == "activity.created") & OutboxEvent.processed_at.is_null()
        )
    }
    assert len(activity_of_event) == EVENTS
    assert OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).count() == EVENTS

    ids = list(activity_of_event)
    rng = random.Random(SEED)
    t0 = clock.now()
    kills = progressed = 0
    done = 0
    attempt = 0
    for attempt in range(1, WORKER_KILLS + 1):
        now = t0 + attempt * RESTART_STEP
        with open(tmp_path / f"worker-{attempt}.err", "w") as err:
            proc = start(
                cli_command(db_url, "worker", "--interval", "0.1"),
                now,
                tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            if rng.random() < 0.2:  # while it starts: connecting, migrating, taking the lease
                crashed = kill_after(proc, rng.uniform(0.05, 1.0))
            else:  # while it works: once it has processed something, a moment later
                crashed = kill_once(proc, lambda done=done: processed_count(ids) > done, rng.uniform(0, 0.5))
        stderr = (tmp_path / f"worker-{attempt}.err").read_text()
        assert crashed, f"the worker stopped by itself (exit {proc.returncode}): {stderr[-3000:]}"
        assert not problems_in_stderr(stderr), stderr[-3000:]
        kills += 1
        now_done = check_worker_state(activity_of_event)
        progressed += now_done > done
        done = now_done
        if done == EVENTS:
            break

    final = run_cli(db_url, t0 + (attempt + 1) * RESTART_STEP, tmp_path, "worker", "--once", "--json")
    assert final["lease"], "the final worker got the lease"
    assert check_worker_state(activity_of_event) == EVENTS
    assert not OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).exists()
    assert set(OutboxEvent.select(OutboxEvent.attempts).tuples()) == {(1,)}, "every event exactly once"
    # Every activity's owner holds exactly one active share of its lead in its context.
    active = Counter(
        (lead, user, ctx)
        for lead, user, ctx in Grant.select(Grant.entity_id, Grant.user, Grant.context_activity_id)
        .where(Grant.state == "active")
        .tuples()
    )
    expected = Counter(
        (lead, owner, act)
        for act, lead, owner in Activity.select(Activity.id, Activity.lead, Activity.owner).tuples()
    )
    assert active == expected
    assert kills >= min(WORKER_KILLS, 5) and progressed >= 1, (kills, progressed)
    print(f"\nworker: {kills} kills survived ({progressed} with events processed since the last one)")
    if is_sqlite():
        assert core.db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- 2. a sweep killed over many due grants ------------------------------------------------------


@one_snapshot
def check_sweep_state(due: set[int]) -> int:
    """Every grant the sweep ended is expired at its expiry with exactly one ``expired``
    history row and one ``share.expired`` event; every other one has neither. Notices: a
    grant is marked warned exactly when it has one ``expiring_soon`` row. Returns how many
    of the due grants are expired."""
    rows = list(
        Grant.select(Grant.id, Grant.state, Grant.ended_at, Grant.expires_at, Grant.warned_at).tuples()
    )
    expired_rows = Counter(
        g
        for (g,) in HistoryEvent.select(HistoryEvent.grant_id).where(HistoryEvent.event == "expired").tuples()
    )
    warned_rows = Counter(
        g
        for (g,) in HistoryEvent.select(HistoryEvent.grant_id)
        .where(HistoryEvent.event == "expiring_soon")
        .tuples()
    )
    events = Counter(
        (json.loads(p) if isinstance(p, str) else p)["grant_id"]
        for (p,) in OutboxEvent.select(OutboxEvent.payload)
        .where(OutboxEvent.topic == "share.expired")
        .tuples()
    )
    swept = 0
    for grant_id, state, ended_at, expires_at, warned_at in rows:
        if grant_id in due:
            if state == "expired":
                swept += 1
                assert ended_at == expires_at, grant_id
                assert expired_rows[grant_id] == 1 and events[grant_id] == 1, grant_id
            else:
                assert state == "active" and ended_at is None, grant_id
                assert expired_rows[grant_id] == 0 and events[grant_id] == 0, grant_id
        else:
            assert events[grant_id] == 0, f"grant {grant_id} was not due"
            assert expired_rows[grant_id] == (1 if state == "expired" else 0), grant_id
        assert warned_rows[grant_id] == (1 if warned_at is not None else 0), grant_id
    return swept


def test_a_sweep_killed_at_random_points_expires_each_due_grant_exactly_once(
    core, db_url: str, clock, tmp_path: Path
) -> None:
    """Thousands of due grants; the sweep (small batches, so many commits) is killed at
    random moments, then ``sharetui sweep`` finishes. Each due grant ends expired exactly
    once, with one ``expired`` history row and one event; nothing is half done."""
    from sharetui.ops.generator import generate

    generate(core, leads=4000, opportunities=0, users=60, grants=SWEEP_GRANTS, seed=SEED, actor=None)
    at = clock.now() + timedelta(days=10)
    due = {
        g
        for (g,) in Grant.select(Grant.id)
        .where((Grant.state == "active") & (Grant.expires_at <= at.replace(tzinfo=None)))
        .tuples()
    }
    assert len(due) > SWEEP_GRANTS // 4
    assert check_sweep_state(due) == 0
    rng = random.Random(SEED)
    kills = progressed = swept = 0
    for _ in range(SWEEP_KILLS):
        batch = rng.choice((10, 50, 200))
        proc = start(
            [sys.executable, str(CHILD), "sweep", "--url", db_url, "--now", iso(at), "--batch", str(batch)],
            at,
            tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        crashed = kill_after(proc, rng.uniform(0.0, SWEEP_KILL_WINDOW))
        _, err = proc.communicate()
        assert not problems_in_stderr(err), err
        now_swept = check_sweep_state(due)
        kills += crashed
        progressed += crashed and now_swept > swept
        swept = now_swept
        if swept == len(due):
            break
    result = run_cli(db_url, at, tmp_path, "sweep", "--json")
    assert result["expired"] == len(due) - swept, "the last sweep did exactly what was left"
    assert check_sweep_state(due) == len(due)
    assert run_cli(db_url, at, tmp_path, "sweep", "--json")["expired"] == 0, "nothing twice"
    assert kills >= 3 and progressed >= 1, (kills, progressed)
    print(f"\nsweep: {kills} kills survived ({progressed} after some grants were swept)")


# -- 3. the batch API killed while it runs -------------------------------------------------------------


@one_snapshot
def check_batch_state(pairs: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Each batch item has all of its effects (a completed request, the grant, ``share`` and
    ``granted`` history rows, a ``share.granted`` event) or none (no request at all).
    Returns the (lead, user) pairs that are done."""
    requests = list(
        ShareRequest.select(
            ShareRequest.id,
            ShareRequest.status,
            ShareRequest.entity_id,
            ShareRequest.recipient_name,
            ShareRequest.grant_id,
        )
        .where(ShareRequest.source == "api")
        .tuples()
    )
    stuck = [r for r in requests if r[1] != "completed"]
    assert not stuck, f"{len(stuck)} batch item(s) half done, e.g. request {stuck[0]}"
    by_pair = Counter((lead, user) for _, _, lead, user, _ in requests)
    assert not [p for p, n in by_pair.items() if n > 1], "an item was done twice"
    assert set(by_pair) <= pairs
    grants = {
        g: (lead, user, state, req)
        for g, lead, user, state, req in Grant.select(
            Grant.id, Grant.entity_id, Grant.user, Grant.state, Grant.request_id
        )
        .where(Grant.source == "api")
        .tuples()
    }
    history = Counter(
        (event, req)
        for event, req in HistoryEvent.select(HistoryEvent.event, HistoryEvent.request_id)
        .where(HistoryEvent.source == "api")
        .tuples()
    )
    events = Counter(
        (json.loads(p) if isinstance(p, str) else p)["request_id"]
        for (p,) in OutboxEvent.select(OutboxEvent.payload)
        .where(OutboxEvent.topic == "share.granted")
        .tuples()
    )
    assert len(grants) == len(requests)
    for req, _status, _lead, _user, grant_id in requests:
        assert grant_id in grants and grants[grant_id][3] == req and grants[grant_id][2] == "active"
        assert history[("share", req)] == 1 and history[("granted", req)] == 1, req
        assert events[req] == 1, req
    assert sum(history.values()) == 2 * len(requests) and sum(events.values()) == len(requests)
    return set(by_pair)


def test_a_batch_api_call_killed_mid_batch_leaves_each_item_all_done_or_not_started(
    core, db_url: str, clock, tmp_path: Path
) -> None:
    """``sharetui api share`` over large batches, killed at random moments: every item has
    all of its effects or none; re-sending what is not done completes the job, once."""
    _admin, _sellers, leads = build_company(core, leads=BATCH_LEADS)
    pairs = {(lead, user) for lead in leads for user in SALES}
    rng = random.Random(SEED)
    done: set[tuple[int, str]] = set()
    kills = progressed = 0
    now = clock.now()
    for attempt in range(BATCH_KILLS):
        todo = sorted(pairs - done)
        if not todo:
            break
        rng.shuffle(todo)
        items = [
            {"UserId": user, "Entity": 1, "EntityId": lead, "AccessType": 2, "DurationInMinutes": 7 * 24 * 60}
            for lead, user in todo
        ]
        path = tmp_path / f"batch-{attempt}.json"
        path.write_text(json.dumps(items))
        proc = start(
            cli_command(db_url, "api", "share", str(path)),
            now,
            tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        before = len(done)

        def started(before: int = before) -> bool:
            return ShareRequest.select().where(ShareRequest.source == "api").count() > before

        crashed = kill_once(proc, started, rng.uniform(0.0, 0.25))
        _, err = proc.communicate()
        assert not problems_in_stderr(err), err
        now_done = check_batch_state(pairs)
        kills += crashed
        progressed += crashed and len(now_done) > len(done)
        done = now_done

    rest = sorted(pairs - done)
    items = [
        {"UserId": user, "Entity": 1, "EntityId": lead, "AccessType": 2, "DurationInMinutes": 7 * 24 * 60}
        for lead, user in rest
    ]
    results = run_cli(db_url, now, tmp_path, "api", "share", "-", stdin=json.dumps(items)) if items else []
    assert [r["outcome"] for r in results] == ["granted"] * len(rest)
    assert check_batch_state(pairs) == pairs
    assert kills >= 3 and progressed >= 1, (kills, progressed)
    print(f"\nbatch: {kills} kills survived ({progressed} after some items were done)")

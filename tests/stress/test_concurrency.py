"""Concurrency: several processes share, revoke and post activities at once (DESIGN .6, issue 8).

SQLite (embedded mode): four writer processes against one file, each processing
the automations its changes trigger, as the CLI does. Three use the Python
API, one mostly runs ``sharetui`` commands. No user ever sees "database is
locked", a traceback or a raw database error; every operation that reported
success is in the database and in history, and the counts match.

PostgreSQL (team mode): the same writers, with two ``sharetui worker``
processes draining the same queue at once: each event is processed exactly
once and no share is duplicated.

``SHARETUI_STRESS_SECONDS`` sets how long the writers run (default 55 s).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sharetui.db.models import (
    Activity,
    AutomationRun,
    Grant,
    HistoryEvent,
    OutboxEvent,
    ShareRequest,
)
from sharetui.domain.time import iso
from sharetui.runtime import open_core

from .child import CHILD, build_company, child_env, cli_command, problems_in_stderr

SECONDS = float(os.environ.get("SHARETUI_STRESS_SECONDS", "55"))
SEED = int(os.environ.get("SHARETUI_STRESS_SEED", "8"))
PG = bool(os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip())
LEADS = 30  # few, so writers collide on the same grants: renewals, double revokes


def start_writers(
    db_url: str, now: str, tmp_path: Path, leads: list[int], flavours: list[str], *, embedded: bool
) -> list[tuple[subprocess.Popen[str], Path]]:
    procs = []
    for n, flavour in enumerate(flavours):
        log = tmp_path / f"writer-{n}.jsonl"
        args = [
            sys.executable,
            str(CHILD),
            "writer",
            "--url",
            db_url,
            "--now",
            now,
            "--name",
            f"w{n}-{flavour}",
            "--seed",
            str(SEED * 100 + n),
            "--seconds",
            str(SECONDS),
            "--log",
            str(log),
            "--leads",
            ",".join(map(str, leads)),
            "--flavour",
            flavour,
            "--cwd",
            str(tmp_path),
        ] + (["--embedded"] if embedded else [])
        proc = subprocess.Popen(
            args,
            env=child_env(now),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append((proc, log))
    return procs


def finish_writers(procs: list[tuple[subprocess.Popen[str], Path]]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for proc, log in procs:
        _, err = proc.communicate(timeout=SECONDS + 300)
        assert proc.returncode == 0, err[-3000:]
        assert not problems_in_stderr(err) and not err.strip(), err[-3000:]
        entries += [json.loads(line) for line in log.read_text().splitlines()]
    return entries


def verify(entries: list[dict[str, Any]]) -> Counter[str]:
    """What every writer saw is what the database holds. Returns operation counts."""
    errors = [e for e in entries if "error" in e]
    assert not errors, f"{len(errors)} error(s) reached a user, first:\n{errors[0].get('traceback')}"
    for e in entries:
        if e["via"] != "cli":
            continue
        assert not problems_in_stderr(e["stderr"]), e
        assert e["exit_code"] in (0, 1), e
        if e["exit_code"] == 1:  # a refusal, said clearly: a failed request with its reason
            assert e["op"] in ("share", "revoke") and e["status"] == "failed" and e["reason"], e
        else:
            assert e["ok"], e

    # -- manual shares and revokes: each request as reported, with its history and event --
    ops = [e for e in entries if e["op"] in ("share", "revoke")]
    requests = {
        r.id: r
        for r in ShareRequest.select().where(ShareRequest.source == "manual").order_by(ShareRequest.id)
    }
    assert sorted(e["request_id"] for e in ops) == sorted(requests), "a request lost, or one nobody made"
    history = Counter(
        (event, status, req)
        for event, status, req in HistoryEvent.select(
            HistoryEvent.event, HistoryEvent.status, HistoryEvent.request_id
        ).tuples()
    )
    revoked_by = Counter(
        (req, grant)
        for req, grant in HistoryEvent.select(HistoryEvent.request_id, HistoryEvent.grant_id)
        .where(HistoryEvent.event == "revoked")
        .tuples()
    )
    events = Counter()
    for topic, payload in OutboxEvent.select(OutboxEvent.topic, OutboxEvent.payload).tuples():
        data = json.loads(payload) if isinstance(payload, str) else payload
        if "request_id" in data:
            events[(topic, data["request_id"])] += 1
    for e in ops:
        req = requests[e["request_id"]]
        assert (req.action, req.status, req.entity_id, req.recipient_name) == (
            e["op"],
            e["status"],
            e["lead"],
            e["user"],
        ), e
        rid = req.id
        if e["status"] == "failed":
            assert history[(e["op"], "failed", rid)] == 1, e
            assert events[("share.request_failed", rid)] == 1, e
        elif e["op"] == "share":
            verb = "share" if e["outcome"] == "granted" else "renew"
            assert e["outcome"] in ("granted", "renewed") and req.grant_id == e["grant_id"], e
            assert history[(verb, "completed", rid)] == 1 and history[(e["outcome"], "completed", rid)] == 1
            assert events[(f"share.{e['outcome']}", rid)] == 1, e
        else:
            ended = [e["grant_id"]] if e["grant_id"] else e["grant_ids"]
            assert ended and history[("revoke", "completed", rid)] == 1, e
            assert sorted(g for (r, g) in revoked_by if r == rid) == sorted(ended), e
            assert {g.state for g in Grant.select().where(Grant.id.in_(ended))} == {"revoked"}, e
    assert not [r for r in requests.values() if r.status == "processing"]

    # -- activities: each posted one is there and made its one share through one run --
    posted = [e["activity_id"] for e in entries if e["op"] == "activity"]
    assert sorted(posted) == sorted(a for (a,) in Activity.select(Activity.id).tuples())
    assert not OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).exists(), "events left"
    assert set(OutboxEvent.select(OutboxEvent.attempts).tuples()) == {(1,)}, "an event processed twice"
    runs = Counter(event for (event,) in AutomationRun.select(AutomationRun.event_id).tuples())
    assert not [e for e, n in runs.items() if n > 1] and len(runs) == len(posted)
    assert {s for (s,) in AutomationRun.select(AutomationRun.status).tuples()} == {"succeeded"}
    contexts = Counter(
        c for (c,) in Grant.select(Grant.context_activity_id).where(Grant.source == "automation").tuples()
    )
    assert contexts == Counter(posted), "each activity's share exists exactly once"

    # -- every grant: one granted row; at most one active per (lead, user, context) --
    granted = Counter(
        g
        for (g,) in HistoryEvent.select(HistoryEvent.grant_id).where(HistoryEvent.event == "granted").tuples()
    )
    grants = list(
        Grant.select(Grant.id, Grant.entity_id, Grant.user, Grant.context_key, Grant.state).tuples()
    )
    assert granted == Counter({g[0]: 1 for g in grants})
    active = Counter((lead, user, ctx) for _, lead, user, ctx, state in grants if state == "active")
    assert not [k for k, n in active.items() if n > 1], "a duplicated active share"
    ended = Counter(
        g
        for (g,) in HistoryEvent.select(HistoryEvent.grant_id)
        .where(HistoryEvent.event.in_(("revoked", "expired")))
        .tuples()
    )
    assert ended == Counter({g[0]: 1 for g in grants if g[4] != "active"}), "an end recorded twice"

    counts = Counter(
        f"{e['op']} via {e['via']}" for e in entries if e["op"] in ("share", "revoke", "activity")
    )
    counts["succeeded"] = sum(1 for e in entries if e.get("ok"))
    counts["refused"] = sum(1 for e in entries if e["op"] in ("share", "revoke") and not e.get("ok"))
    counts["automation runs"] = len(runs)
    return counts


@pytest.mark.skipif(PG, reason="SQLite: one file shared by four processes")
def test_four_processes_writing_one_sqlite_file_lose_nothing_and_never_see_a_lock(
    core, db_url: str, clock, tmp_path: Path
) -> None:
    _admin, _sellers, leads = build_company(core, leads=LEADS)
    procs = start_writers(
        db_url, iso(clock.now()), tmp_path, leads, ["api", "api", "api", "cli"], embedded=True
    )
    entries = finish_writers(procs)
    counts = verify(entries)
    assert counts["activity via api"] and counts["share via cli"] and counts["revoke via api"], counts
    assert core.db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(f"\nconcurrent operations on SQLite in {SECONDS:.0f} s: {dict(counts)}")


@pytest.mark.skipif(not PG, reason="PostgreSQL: workers share the queue with row locks")
def test_on_postgresql_two_workers_and_four_writers_process_each_event_exactly_once(
    core, db_url: str, clock, tmp_path: Path
) -> None:
    _admin, _sellers, leads = build_company(core, leads=LEADS)
    now = iso(clock.now())
    workers = []
    for n in range(2):
        err = open(tmp_path / f"worker-{n}.err", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            cli_command(db_url, "worker", "--interval", "0.1"),
            env=child_env(now),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        workers.append((proc, err, tmp_path / f"worker-{n}.err"))
    try:
        procs = start_writers(db_url, now, tmp_path, leads, ["api", "api", "api", "cli"], embedded=False)
        entries = finish_writers(procs)
        # The workers drain what the writers queued (they run on; this only waits for them).
        deadline = time.monotonic() + 300
        while OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).exists():
            assert time.monotonic() < deadline, "the workers did not drain the queue"
            assert all(p.poll() is None for p, _, _ in workers), "a worker died"
            time.sleep(0.2)
    finally:
        for proc, _, _ in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, err, _ in workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            err.close()
    for proc, _, path in workers:
        text = path.read_text()
        assert proc.returncode == 0, text[-3000:]
        assert not problems_in_stderr(text), text[-3000:]
    counts = verify(entries)
    by_worker = Counter()
    for _, _, path in workers:
        by_worker[path.name] = path.read_text().count("automation 'Evaluator edits the lead'")
    assert counts["activity via api"] and counts["share via cli"], counts
    print(
        f"\nconcurrent operations on PostgreSQL in {SECONDS:.0f} s: {dict(counts)}; runs logged {by_worker}"
    )


@pytest.mark.skipif(PG, reason="the SQLite write lock")
def test_reading_never_queues_for_the_sqlite_write_lock(core, db_url: str, clock, tmp_path: Path) -> None:
    """Regression: every start ran four IMMEDIATE transactions (one per migration, even with
    nothing to migrate) and embedded mode one more after every command (to find the queue
    empty), so under concurrent writers a read-only command waited for the write lock, and
    after the busy timeout failed with "database is locked". Now reads go on while another
    process holds the write lock."""
    _admin, _sellers, leads = build_company(core, leads=1)
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing, and keeps at it
    other = None
    try:
        other = open_core(db_url, clock, migrate=False)
        other.db.execute_sql("PRAGMA busy_timeout = 50")  # a lock wait fails at once
        assert other.migrate() == []
        assert other.automations.process_pending() == []
        assert other.records.get(("lead", leads[0])).name == "Lead 0"
        proc = subprocess.run(
            cli_command(db_url, "shares", "--all", "--json"),
            env=child_env(iso(clock.now())),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
        assert json.loads(proc.stdout)["items"] == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        if other is not None:
            other.close()


def test_a_lock_conflict_inside_an_action_retries_the_event_instead_of_losing_its_share(
    core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with events decided 100 per transaction, two PostgreSQL workers lock
    recipients' user rows in different orders and one is told "deadlock detected". The
    share action reported that as its own failure: the run was recorded ``failed``, the
    event marked processed, the share lost (and the lock conflict blamed on the plugin).
    A lock conflict (deadlock, serialization failure; SQLite's "database is locked") now
    rolls the event back and it is decided again."""
    import peewee

    admin, sellers, leads = build_company(core, leads=1)
    first = core.records.post_activity(("lead", leads[0]), type="Evaluation", owner=sellers[0], actor=admin)
    second = core.records.post_activity(("lead", leads[0]), type="Evaluation", owner=sellers[1], actor=admin)
    real_share = core.sharing.share
    calls: list[int] = []

    def conflicted_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # the first share in this pass loses a lock conflict, as a driver says it
            if PG:
                import psycopg

                driver_error: Exception = psycopg.errors.DeadlockDetected("deadlock detected")
            else:
                driver_error = sqlite3.OperationalError("database is locked")
            try:
                raise driver_error
            except type(driver_error) as exc:
                raise peewee.OperationalError(exc, *exc.args)  # noqa: B904 - as peewee wraps it
        return real_share(*args, **kwargs)

    monkeypatch.setattr(core.sharing, "share", conflicted_once)
    reports = core.automations.process_pending()
    assert [r.status for r in reports] == ["succeeded", "succeeded"]
    assert len(calls) == 3, "the conflicted share was tried again"
    runs = list(AutomationRun.select().order_by(AutomationRun.id))
    assert [(r.status, r.reason) for r in runs] == [("succeeded", None)] * 2
    assert sorted(Grant.select(Grant.context_activity_id).tuples()) == [(first.id,), (second.id,)]
    assert set(OutboxEvent.select(OutboxEvent.attempts).tuples()) == {(1,)}
    from sharetui.db.models import PluginError

    assert not PluginError.select().exists(), "a lock conflict is not the plugin's failure"


# -- PostgreSQL: a revoke racing another end or a renewal of the same grant ----------------------------


def _pg_holder(db_url: str) -> Any:
    """A second session on the test schema, its transaction left open: another process mid-write."""
    from urllib.parse import parse_qs

    import psycopg

    plain, _, query = db_url.partition("?")
    return psycopg.connect(plain, options=parse_qs(query).get("options", [""])[0])


def _in_thread_blocked_by(core: Any, holder: Any, work: Any) -> dict[str, Any]:
    """Run ``work()`` on its own connection in a thread; return once PostgreSQL shows it
    waiting for ``holder``'s lock (polled, not timed). ``result``/``error`` come later."""
    import threading

    out: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        try:
            out["pid"] = core.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
            ready.set()
            out["result"] = work()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc
        finally:
            ready.set()
            core.db.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    holder_pid = holder.info.backend_pid
    deadline = time.monotonic() + 30
    with _pg_holder_admin(holder) as admin:
        while holder_pid not in (
            admin.execute("SELECT pg_blocking_pids(%s)", (out["pid"],)).fetchone()[0] or []
        ):
            assert "result" not in out and "error" not in out, f"it did not wait for the lock: {out}"
            assert time.monotonic() < deadline, "it never waited for the other transaction"
            time.sleep(0.02)
    out["thread"] = thread
    return out


def _once_holder_commits(core: Any, holder: Any, work: Any) -> Any:
    """Run ``work()`` in a thread until it waits for ``holder``'s lock, commit the
    holder, and return what ``work()`` returned (it must not have raised)."""
    race = _in_thread_blocked_by(core, holder, work)
    holder.commit()
    race["thread"].join(30)
    assert "error" not in race, race.get("error")
    return race["result"]


def _pg_holder_admin(holder: Any) -> Any:
    import psycopg

    return psycopg.connect(holder.info.dsn, autocommit=True)


@pytest.mark.skipif(not PG, reason="PostgreSQL row locks (SQLite writers take turns)")
def test_on_postgresql_a_revoke_racing_another_end_of_the_grant_fails_instead_of_ending_it_twice(
    core, db_url: str
) -> None:
    """Regression: a revoke read the active grants unlocked, then ended them; when another
    process ended one meanwhile, the revoke still reported ``completed`` and wrote a second
    ``revoked`` row and event for it. Now it reads them locked, waits, and finds nothing
    left to revoke."""
    admin, _sellers, leads = build_company(core, leads=1)
    shared = core.sharing.share("lead", leads[0], "seller0", requester=admin, duration="3d")
    grant_id = shared.grant["id"]
    holder = _pg_holder(db_url)
    try:
        holder.execute(
            "UPDATE grants SET state = 'revoked', ended_at = updated_at, ended_reason = 'by another' "
            "WHERE id = %s",
            (grant_id,),
        )
        result = _once_holder_commits(
            core, holder, lambda: core.sharing.revoke("lead", leads[0], "seller0", requester=admin)
        )
    finally:
        holder.close()
    assert (result.status, result.reason) == (
        "failed",
        f"no active share of lead {leads[0]} with seller0 without a context",
    )
    assert not HistoryEvent.select().where(HistoryEvent.event == "revoked").exists()
    assert not OutboxEvent.select().where(OutboxEvent.topic == "share.revoked").exists()


@pytest.mark.skipif(not PG, reason="PostgreSQL row locks (SQLite writers take turns)")
def test_on_postgresql_a_share_racing_a_revoke_grants_anew_instead_of_reviving_the_revoked_grant(
    core, db_url: str
) -> None:
    """Regression: re-sharing read the active grant unlocked, then renewed it by id; a
    revoke committing meanwhile left the share ``completed: renewed`` on a grant that was
    revoked, so the user reported shared had no access. Now the read waits for the revoke
    and the share grants anew."""
    admin, sellers, leads = build_company(core, leads=1)
    first = core.sharing.share("lead", leads[0], "seller0", requester=admin, duration="3d")
    holder = _pg_holder(db_url)
    try:
        holder.execute(
            "UPDATE grants SET state = 'revoked', ended_at = updated_at, ended_reason = 'by another' "
            "WHERE id = %s",
            (first.grant["id"],),
        )
        again = _once_holder_commits(
            core,
            holder,
            lambda: core.sharing.share("lead", leads[0], "seller0", requester=admin, duration="5d"),
        )
    finally:
        holder.close()
    assert again.outcome == "granted" and again.grant["id"] != first.grant["id"], again
    assert core.access.can(sellers[0], ("lead", leads[0]), "read")
    states = dict(Grant.select(Grant.id, Grant.state).tuples())
    assert states == {first.grant["id"]: "revoked", again.grant["id"]: "active"}


@pytest.mark.skipif(not PG, reason="PostgreSQL's recipient locks (SQLite writers take turns)")
def test_on_postgresql_a_batch_never_waits_for_a_recipient_while_it_holds_another(core, db_url: str) -> None:
    """Regression (twice over): events were once decided 100 per transaction, each holding
    its recipient's lock to the batch's commit, so two workers (or a worker and a user's
    share) locking recipients in different orders deadlocked. A worker still decides its
    events in batches, but waits for a recipient's lock only while it holds none: here
    another session holds seller1's, the worker commits the event it decided for seller0,
    and only then waits for seller1 (seller0's lock free, its share visible meanwhile)."""
    from sharetui.db.locks import RECIPIENT_LOCK

    admin, sellers, leads = build_company(core, leads=1)
    for seller in sellers[:3]:
        core.records.post_activity(("lead", leads[0]), type="Evaluation", owner=seller, actor=admin)
    holder = _pg_holder(db_url)
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", (RECIPIENT_LOCK, sellers[1].id))
        race = _in_thread_blocked_by(core, holder, core.automations.process_pending)
        with _pg_holder_admin(holder) as other:
            free = other.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (RECIPIENT_LOCK, sellers[0].id)
            ).fetchone()[0]
            other.execute("SELECT pg_advisory_unlock_all()")
            shared = other.execute(
                "SELECT user_id FROM grants WHERE state = 'active' ORDER BY user_id"
            ).fetchall()
        holder.commit()
        race["thread"].join(30)
    finally:
        holder.close()
    assert free, "seller0's lock was held while the worker waited for seller1's"
    assert shared == [(sellers[0].id,)], "the event decided before the wait was not committed"
    assert "error" not in race, race.get("error")
    assert [r.status for r in race["result"]] == ["succeeded"] * 3


@pytest.mark.skipif(not PG, reason="PostgreSQL's recipient locks (SQLite writers take turns)")
def test_on_postgresql_two_batches_sharing_with_the_same_people_in_opposite_orders_both_finish(
    core, db_url: str
) -> None:
    """Two batch API calls at once, each sharing with the same eight people, one in the
    opposite order of the other, many times over: no deadlock, every item granted once,
    the cap's lock taken for each."""
    import threading

    from sharetui.core.sharing.batch import BatchAPI, load_items
    from sharetui.runtime import open_core

    admin, sellers, leads = build_company(core, leads=40)
    names = [s.username for s in sellers]
    halves = [leads[:20], leads[20:]]
    batches = [
        [
            {"EntityId": lead, "Entity": 1, "UserId": name, "AccessType": 1, "DurationInMinutes": 60}
            for lead in halves[0]
            for name in names
        ],
        [
            {"EntityId": lead, "Entity": 1, "UserId": name, "AccessType": 1, "DurationInMinutes": 60}
            for lead in halves[1]
            for name in reversed(names)
        ],
    ]
    results: dict[int, Any] = {}

    def run(which: int) -> None:
        mine = open_core(db_url, core.clock)
        try:
            requester = mine.users.get(admin.id)
            results[which] = BatchAPI(mine).share(load_items(json.dumps(batches[which])), requester=requester)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            results[which] = exc
        finally:
            mine.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for which in (0, 1):
        assert not isinstance(results[which], Exception), results[which]
        assert [r["outcome"] for r in results[which]] == ["granted"] * 160
    assert Grant.select().where(Grant.state == "active").count() == 320


@pytest.mark.skipif(not PG, reason="PostgreSQL's unique index waits (SQLite writers take turns)")
def test_on_postgresql_a_grant_made_meanwhile_is_renewed_instead_of_failing_the_share(
    core, db_url: str
) -> None:
    """Another session (one that does not take the recipient's lock: a script, an older
    version) inserts the active grant this share is about to make. The share's insert
    waits for it, finds it on commit (ON CONFLICT, no savepoint needed) and renews it."""
    from datetime import timedelta

    admin, sellers, leads = build_company(core, leads=1)
    now = core.db_now()
    holder = _pg_holder(db_url)
    try:
        holder.execute(
            "INSERT INTO grants (entity_type, entity_id, user_id, context_key, access, starts_at, "
            "expires_at, state, source, until_completed, created_at, updated_at) "
            "VALUES ('lead', %s, %s, 0, 1, %s, %s, 'active', 'manual', false, %s, %s) RETURNING id",
            (leads[0], sellers[0].id, now, now + timedelta(days=1), now, now),
        )
        theirs = holder.execute("SELECT max(id) FROM grants").fetchone()[0]
        result = _once_holder_commits(
            core,
            holder,
            lambda: core.sharing.share("lead", leads[0], "seller0", requester=admin, duration="5d"),
        )
    finally:
        holder.close()
    assert result.outcome == "renewed" and result.grant["id"] == theirs, result
    assert Grant.select().where(Grant.state == "active").count() == 1


@pytest.mark.skipif(not PG, reason="PostgreSQL's recipient locks (SQLite writers take turns)")
def test_on_postgresql_a_recipient_lock_held_forever_fails_the_share_after_the_wait_limit(
    core, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any login may take an advisory lock (psql, a stuck session): a share waits for the
    recipient's at most WAIT_LIMIT, then fails as a lock conflict, changing nothing."""
    import psycopg

    from sharetui.db import locks
    from sharetui.db.connection import is_lock_conflict

    monkeypatch.setattr(locks, "WAIT_LIMIT", "300ms")
    admin, sellers, leads = build_company(core, leads=1)
    holder = _pg_holder(db_url)
    try:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (locks.RECIPIENT_LOCK, sellers[0].id))
        with pytest.raises(Exception) as raised:
            core.sharing.share("lead", leads[0], "seller0", requester=admin, duration="5d")
        assert is_lock_conflict(raised.value), raised.value
        assert isinstance(raised.value.__cause__ or raised.value, psycopg.errors.LockNotAvailable) or (
            "lock timeout" in str(raised.value)
        )
    finally:
        holder.close()
    assert Grant.select().count() == 0
    again = core.sharing.share("lead", leads[0], "seller0", requester=admin, duration="5d")
    assert again.outcome == "granted"

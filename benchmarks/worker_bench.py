"""Team mode's workers on PostgreSQL: ``worker_postgres`` and ``worker_scaling_postgres``.

Workers are separate processes that need committed state, so each benchmark works on a
scratch database: the cached PostgreSQL company's schema copied with ``pg_dump | psql``
(data, indexes, constraints), then ``team init`` with a test clock, the sample
automation ``01_meeting_share.toml`` published, a worker login, and logins for the
sales users who post. Every role is named with one random tag; the database and the
roles are dropped afterwards, however the benchmark ends.

A run: "Meeting Scheduled" activities on leads of eight sales users, each naming
another sales user as the meeting's owner, posted for those eight (the setup role
writes them with the poster as the actor, in one transaction, so that the workers see
every event at once; a poster's own login, row security on, was checked once to write
the same event); the ``sharetui worker`` processes (``SHARETUI_DATABASE_URL`` the
worker login's, started beforehand and idle) then decide them. The time is from that commit until no event
waits in the outbox: each activity's run and share, and the ``share.granted`` event the
share adds. Every run must have succeeded and every activity must have made a grant.

The baseline (``worker_postgres``): as many raw ``psycopg`` processes, also the worker
login, claiming the same events 100 a transaction (``FOR UPDATE SKIP LOCKED``, a
savepoint each) and writing the same rows, nothing decided and no recipient lock.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from benchmarks.core_bench import ROOT, product
from benchmarks.harness import NOW, NOW_ISO, Bench, Figure, at_least, at_least_ratio, benchmark, reported

POSTERS = 8  # sales logins who post, each on leads they own
READY_TIMEOUT = 60.0  # seconds a worker may take to start
DRAIN_TIMEOUT = 600.0  # seconds a run may take to empty the queue


def _events(bench: Bench) -> int:
    return 300 if bench.quick else 3_000  # quick keeps the harness alive in CI


def _repeats(bench: Bench) -> int:
    return 1 if bench.quick else 3


def _replace(url: str, *, login: str | None = None, database: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{login or parts.username or 'postgres'}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, f"/{database}" if database else parts.path, parts.query, ""))


@dataclass
class TeamCopy:
    """A scratch team-mode copy of the company, and who posts on it."""

    bench: Bench
    tag: str
    url: str  # the setup role's (search_path: the company's schema)
    worker_url: str
    core: Any  # the setup role's Core (posting)
    poll: Any  # a psycopg connection (autocommit) of the setup role
    automation_id: int
    posters: list[tuple[int, str, list[int]]]  # (user id, login, leads they own)
    recipients: list[tuple[int, str]]  # sales users (id, username)
    taken: set[tuple[int, int]]  # (lead, user) pairs that hold or will hold a grant
    rng: random.Random = field(default_factory=lambda: random.Random(23))
    posted: int = 0  # activities posted so far

    def waiting(self) -> int:
        return self.poll.execute("SELECT count(*) FROM outbox WHERE processed_at IS NULL").fetchone()[0]

    def post(self, count: int) -> None:
        """``count`` activities, spread over the posters, committed at once. Written by
        the setup role naming the poster as the actor: the rows and the event are those a
        poster's own login writes (checked once by :func:`_check_login_post`), and one
        commit shows the workers every event at the same moment."""
        from sharetui.domain.records import RecordRef
        from sharetui.domain.roles import EntityType

        plan: dict[int, list[tuple[int, str]]] = {}
        for k in range(count):
            uid, _login, leads = self.posters[k % len(self.posters)]
            lead = leads[(k // len(self.posters)) % len(leads)]
            while True:
                rid, name = self.rng.choice(self.recipients)
                if rid != uid and (lead, rid) not in self.taken:
                    break
            self.taken.add((lead, rid))
            plan.setdefault(uid, []).append((lead, name))
        with self.core.db.atomic():
            for uid, _login, _leads in self.posters:
                actor = self.core.users.get(uid)
                for lead, name in plan.get(uid, ()):
                    self.core.records.post_activity(
                        RecordRef(EntityType.LEAD, lead), type="Meeting Scheduled", owner=name, actor=actor
                    )
        self.posted += count

    def check(self, what: str, runs_wanted: int) -> None:
        """Fail loudly unless ``runs_wanted`` runs of the automation exist, all succeeded,
        with as many automation grants, and no event was given up."""
        runs = dict(
            self.poll.execute(
                "SELECT status, count(*) FROM automation_runs WHERE automation_id = %s GROUP BY status",
                (self.automation_id,),
            ).fetchall()
        )
        grants = self.poll.execute("SELECT count(*) FROM grants WHERE source = 'automation'").fetchone()[0]
        errors = self.poll.execute("SELECT * FROM plugin_errors LIMIT 5").fetchall()
        if runs != {"succeeded": runs_wanted} or grants != runs_wanted or errors:
            raise RuntimeError(
                f"{what}: runs {runs}, {grants} automation grants, wanted {runs_wanted} succeeded "
                f"runs and grants; plugin errors {errors}"
            )


@contextmanager
def team_copy(bench: Bench, name: str) -> Iterator[TeamCopy | None]:
    """A scratch database holding a copy of the cached PostgreSQL company in team mode
    (None when PostgreSQL is unavailable); dropped afterwards with its roles."""
    company = bench.pg_company_url()
    if company is None:
        yield None
        return
    import psycopg

    plain = company.split("?", 1)[0]
    options = parse_qs(urlsplit(company).query)["options"][0]
    schema = options.split("search_path=", 1)[1]
    tag = f"wb{uuid.uuid4().hex[:8]}"
    database = f"{tag}_{name}"
    scratch = _replace(plain, database=database)
    url = f"{scratch}?{urlsplit(company).query}"
    admin = psycopg.connect(plain, autocommit=True)
    admin.execute(f'CREATE DATABASE "{database}"')
    try:
        started = time.perf_counter()
        with psycopg.connect(scratch, autocommit=True) as con:
            con.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # the company's text indexes use it
        dump = subprocess.Popen(
            ["pg_dump", "--dbname", plain, "--schema", schema], stdout=subprocess.PIPE, env=bench.env()
        )
        restore = subprocess.run(
            ["psql", "--dbname", scratch, "-q", "-v", "ON_ERROR_STOP=1", "-o", os.devnull],
            stdin=dump.stdout,
            env=bench.env(),
            check=False,
        )
        assert dump.stdout is not None
        dump.stdout.close()
        if dump.wait() != 0 or restore.returncode != 0:
            raise RuntimeError(
                f"copying schema {schema}: pg_dump {dump.returncode}, psql {restore.returncode}"
            )
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("ANALYZE")
        bench.log(f"  copied the company into {database} in {time.perf_counter() - started:.1f} s")
        with product(url) as core, psycopg.connect(url, autocommit=True) as poll:
            yield _team_setup(bench, core, poll, tag, url)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        roles = admin.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY rolcanlogin DESC", (f"{tag}\\_%",)
        ).fetchall()
        for (role,) in roles:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def _team_setup(bench: Bench, core: Any, poll: Any, tag: str, url: str) -> TeamCopy:
    """``team init`` with a test clock at the benchmark's now, the sample automation,
    the worker login and the posters' logins."""
    core.team.init(f"{tag}_")
    core.team.set_test_clock()
    core.team.start_session(NOW_ISO)
    admin = core.users.acting(None)
    toml = (ROOT / "sample_data" / "automations" / "01_meeting_share.toml").read_text()
    automation = core.automations.add(core.automations.parse(toml), actor=admin)
    worker_login = f"{tag}_wlogin"  # not {tag}_worker: the group role
    core.team.add_worker_login(worker_login, password=None)

    def rows(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return poll.execute(sql, params).fetchall()

    recipients = rows("SELECT id, username FROM users WHERE role = 'sales' AND active ORDER BY id")
    busiest = rows(
        "SELECT l.owner_id FROM leads l JOIN users u ON u.id = l.owner_id "
        "WHERE u.role = 'sales' AND u.active GROUP BY l.owner_id ORDER BY count(*) DESC, l.owner_id LIMIT %s",
        (POSTERS,),
    )
    posters = []
    for (uid,) in busiest:
        login = f"{tag}_u{uid}"
        core.team.link_login(core.users.get(uid), login, password=None)
        leads = [r[0] for r in rows("SELECT id FROM leads WHERE owner_id = %s ORDER BY id", (uid,))]
        posters.append((uid, login, leads))
    mine = [lead for _, _, leads in posters for lead in leads]
    taken = set(
        rows(
            "SELECT entity_id, user_id FROM grants WHERE entity_type = 'lead' AND entity_id = ANY(%s)",
            (mine,),
        )
    )
    copy = TeamCopy(
        bench,
        tag,
        url,
        _replace(url, login=worker_login),
        core,
        poll,
        automation.id,
        posters,
        recipients,
        taken,
    )
    _check_login_post(copy)
    # What the first worker passes do on a fresh copy (the sweep of the grants due at now,
    # then its events; the automation's own event), untimed.
    for _ in range(3):
        once = subprocess.run(
            [sys.executable, "-m", "sharetui", "worker", "--once", "--json"],
            env=bench.env(SHARETUI_DATABASE_URL=copy.worker_url),
            cwd=bench.cache_dir,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if once.returncode != 0:
            raise RuntimeError(f"a first worker pass failed ({once.returncode}): {once.stderr[-3000:]}")
        if not copy.waiting():
            break
    else:
        raise RuntimeError(f"the first worker passes left {copy.waiting()} events waiting")
    return copy


def _check_login_post(copy: TeamCopy) -> None:
    """A poster's own login posts one activity (row security on, the write through the
    database's functions); its event must read as the setup role's do: the same keys,
    the poster as the actor. It is processed with the first worker passes."""
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType

    uid, login, leads = copy.posters[0]
    rid, name = next(r for r in copy.recipients if r[0] != uid and (leads[-1], r[0]) not in copy.taken)
    copy.taken.add((leads[-1], rid))
    from sharetui.clock import FrozenClock
    from sharetui.host import PluginHost
    from sharetui.runtime import open_core, release

    core = open_core(
        _replace(copy.url, login=login), FrozenClock(NOW), plugins=PluginHost.load(entry_points=False)
    )
    try:
        core.team.start_session(NOW_ISO)
        actor = core.team.identify(None)
        if actor is None or actor.id != uid or not core.team.routed:
            raise RuntimeError(f"login {login} acts as {actor}, wanted user {uid} through the functions")
        core.records.post_activity(
            RecordRef(EntityType.LEAD, leads[-1]), type="Meeting Scheduled", owner=name, actor=actor
        )
    finally:
        release(core)  # the store is the setup role's Core's again
    payload = copy.poll.execute(
        "SELECT payload FROM outbox WHERE topic = 'activity.created' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    event = json.loads(payload)
    if set(event) != {"activity_id", "type", "owner_id", "actor_id"} or event["actor_id"] != uid:
        raise RuntimeError(f"a sales login's activity.created event reads {event}")
    copy.posted += 1


# -- worker processes -----------------------------------------------------------------------
@dataclass
class Workers:
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def tails(self) -> str:
        return "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-4000:]}" for p in self.logs)


@contextmanager
def workers(copy: TeamCopy, count: int, *, raw: bool = False) -> Iterator[Workers]:
    """``count`` worker processes on the copy's queue, started and idle; stopped (SIGTERM)
    afterwards. ``raw``: the psycopg baseline's workers instead of ``sharetui worker``."""
    bench = copy.bench
    if raw:
        cmd = [sys.executable, "-m", "benchmarks.worker_bench", copy.worker_url, str(copy.automation_id)]
        cwd, ready = ROOT, "raw worker ready"
    else:
        cmd = [sys.executable, "-m", "sharetui", "worker", "--interval", "0.05"]
        cwd, ready = bench.cache_dir, "worker running as login"
    logs = [bench.cache_dir / f"{copy.tag}-{'raw' if raw else 'worker'}{i}.log" for i in range(count)]
    procs = []
    try:
        for log in logs:
            with log.open("wb") as fh:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        env=bench.env(SHARETUI_DATABASE_URL=copy.worker_url),
                        cwd=cwd,
                        stdout=subprocess.DEVNULL,
                        stderr=fh,
                    )
                )
        group = Workers(procs, logs)
        deadline = time.perf_counter() + READY_TIMEOUT
        while not all(ready in log.read_text(errors="replace") for log in logs):
            if time.perf_counter() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"workers did not start:\n{group.tails()}")
            time.sleep(0.05)
        time.sleep(0.5)  # their first pass, over an empty queue
        yield group
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=60) for p in procs]
        if any(codes) or any("Traceback" in log.read_text(errors="replace") for log in logs):
            raise RuntimeError(f"a worker failed (exit {codes}):\n{group.tails()}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.unlink(missing_ok=True)


def drain_time(copy: TeamCopy, group: Workers, events: int) -> float:
    """Post ``events`` activities (one commit) and time the workers until no event waits."""
    copy.post(events)
    started = time.perf_counter()
    while copy.waiting():
        if any(p.poll() is not None for p in group.procs):
            raise RuntimeError(f"a worker died:\n{group.tails()}")
        if time.perf_counter() - started > DRAIN_TIMEOUT:
            raise RuntimeError(f"the queue was not drained in {DRAIN_TIMEOUT:.0f} s:\n{group.tails()}")
        time.sleep(0.005)
    return time.perf_counter() - started


def rates(copy: TeamCopy, count: int, *, raw: bool = False) -> list[float]:
    """Events a second of ``count`` workers, one a timed run (a warmup run first)."""
    events = _events(copy.bench)
    with workers(copy, count, raw=raw) as group:
        times = [drain_time(copy, group, events) for _ in range(1 + _repeats(copy.bench))]
    kind = "raw psycopg" if raw else "sharetui"
    copy.bench.log(
        f"  {count} {kind} worker(s): " + ", ".join(f"{events / t:,.0f}" for t in times) + " events/s"
    )
    return [events / t for t in times[1:]]


# -- the figures ----------------------------------------------------------------------------
@benchmark("worker_postgres")
def worker_postgres(bench: Bench) -> list[Figure]:
    with team_copy(bench, "worker") as copy:
        if copy is None:
            return []
        product_rates = rates(copy, 2)
        copy.check("worker_postgres", copy.posted)
        product_posted = copy.posted
        raw_rates = rates(copy, 2, raw=True)
        raw_runs = copy.posted - product_posted
        copy.check("worker_postgres (with the baseline's rows)", product_posted + raw_runs)
    events = _events(bench)
    notes = (
        f"2 sharetui worker processes as the worker login, team mode (row security on), {events:,} "
        f"activities a run posted for {POSTERS} sales users, each a run, a share and its share.granted "
        f"event; median of {_repeats(bench)} runs; baseline: 2 raw psycopg processes writing the same rows"
    )
    return [
        at_least(
            "worker_postgres",
            statistics.median(product_rates),
            "events/s",
            1500,
            statistics.median(raw_rates),
            notes,
        )
    ]


@benchmark("worker_scaling_postgres")
def worker_scaling_postgres(bench: Bench) -> list[Figure]:
    with team_copy(bench, "scaling") as copy:
        if copy is None:
            return []
        rate = {n: statistics.median(rates(copy, n)) for n in (1, 2, 4)}
        copy.check("worker_scaling_postgres", copy.posted)
    events = _events(bench)
    common = f"{events:,} activities a run, team mode, median of {_repeats(bench)} runs"
    return [
        reported("worker_scaling_postgres_1", rate[1], "events/s", None, f"1 worker process; {common}"),
        at_least_ratio(
            "worker_scaling_postgres_2",
            rate[2],
            rate[1],
            "events/s",
            1.6,
            f"2 worker processes; baseline: 1 worker (same run); {common}",
        ),
        at_least_ratio(
            "worker_scaling_postgres_4",
            rate[4],
            rate[2],
            "events/s",
            1.0,
            f"4 worker processes on {os.cpu_count()} CPUs; baseline: 2 workers (same run); {common}",
        ),
    ]


# -- the raw baseline's worker (a process of its own) -----------------------------------------
_RAW_CLAIM = (
    "SELECT id, topic, entity_id, payload FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT 100 "
    "FOR UPDATE SKIP LOCKED"
)
_RAW_ACTIVITY_OWNER = (
    "SELECT u.id, u.username FROM activities a JOIN users u ON u.id = a.owner_id WHERE a.id = %s"
)
_RAW_RUN = (
    "INSERT INTO automation_runs (automation_id, event_id, trigger_type, entity_type, entity_id, status, "
    "trace, dry_run, started_at, duration_ms) "
    "VALUES (%s, %s, 'new_activity_on_lead', 'lead', %s, 'running', '{}', false, %s, 0) RETURNING id"
)
_RAW_REQUEST = (
    "INSERT INTO share_requests (action, status, entity_type, entity_id, recipient_name, recipient_id, "
    "requester_id, context_activity_id, all_contexts, access, duration, until_completed, source, "
    "automation_run_id, created_at) VALUES ('share', 'processing', 'lead', %s, %s, %s, %s, %s, false, 2, "
    "'14d', false, 'automation', %s, %s) RETURNING id"
)
_RAW_GRANT = (
    "INSERT INTO grants (entity_type, entity_id, user_id, context_activity_id, context_key, access, "
    "starts_at, expires_at, state, source, request_id, until_completed, created_at, updated_at) "
    "VALUES ('lead', %s, %s, %s, %s, 2, %s, %s, 'active', 'automation', %s, false, %s, %s) RETURNING id"
)
_RAW_DONE = (
    "UPDATE share_requests SET status = 'completed', outcome = 'granted', grant_id = %s, finished_at = %s "
    "WHERE id = %s"
)
_RAW_HISTORY = (
    "INSERT INTO history (at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id, "
    "user_name, access, context_activity_id, duration, starts_at, expires_at, source, requester_id, "
    "requester_name, automation_run_id) VALUES (%s, %s, 'completed', NULL, %s, %s, 'lead', %s, %s, %s, 2, "
    "%s, '14d', %s, %s, 'automation', %s, %s, %s)"
)
_RAW_EVENT = (
    "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
    "VALUES ('share.granted', 'lead', %s, %s, %s, 0)"
)
_RAW_STEP = (
    "INSERT INTO automation_steps (run_id, step, action, status, outcome) "
    "VALUES (%s, 0, 'share_lead', 'succeeded', '{}')"
)
_RAW_RUN_DONE = (
    "UPDATE automation_runs SET status = 'succeeded', trace = '{}', finished_at = %s, duration_ms = 1 "
    "WHERE id = %s"
)
_RAW_EVENT_DONE = "UPDATE outbox SET processed_at = %s, attempts = attempts + 1 WHERE id = %s"


def raw_worker(url: str, automation_id: int) -> None:
    """The baseline's worker: the rows ``sharetui worker`` writes for this automation, by
    hand, in the same transactions (100 events each, a savepoint per event), reading only
    what it must (each waiting event, its activity's owner and the poster)."""
    import psycopg

    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    now = NOW.replace(tzinfo=None)
    expires = now + timedelta(days=14)
    expires_text = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    with psycopg.connect(url, autocommit=True) as con:
        print("raw worker ready", file=sys.stderr, flush=True)
        while not stopping:
            with con.transaction():
                events = con.execute(_RAW_CLAIM).fetchall()
                for event_id, topic, lead, payload in events:
                    with con.transaction():
                        if topic == "activity.created":
                            data = json.loads(payload)
                            aid, actor = data["activity_id"], data["actor_id"]
                            uid, name = con.execute(_RAW_ACTIVITY_OWNER, (aid,)).fetchone()
                            actor_name = con.execute(
                                "SELECT username FROM users WHERE id = %s", (actor,)
                            ).fetchone()[0]
                            run = con.execute(_RAW_RUN, (automation_id, event_id, lead, now)).fetchone()[0]
                            rid = con.execute(
                                _RAW_REQUEST, (lead, name, uid, actor, aid, run, now)
                            ).fetchone()[0]
                            gid = con.execute(
                                _RAW_GRANT, (lead, uid, aid, aid, now, expires, rid, now, now)
                            ).fetchone()[0]
                            con.execute(_RAW_DONE, (gid, now, rid))
                            for kind in ("share", "granted"):
                                con.execute(
                                    _RAW_HISTORY,
                                    (
                                        now,
                                        kind,
                                        rid,
                                        gid,
                                        lead,
                                        uid,
                                        name,
                                        aid,
                                        now,
                                        expires,
                                        actor,
                                        actor_name,
                                        run,
                                    ),
                                )
                            grant = {
                                "access": "edit",
                                "context": aid,
                                "expires_at": expires_text,
                                "grant_id": gid,
                                "request_id": rid,
                                "source": "automation",
                                "user_id": uid,
                            }
                            con.execute(_RAW_EVENT, (lead, json.dumps(grant, sort_keys=True), now))
                            con.execute(_RAW_STEP, (run,))
                            con.execute(_RAW_RUN_DONE, (now, run))
                        con.execute(_RAW_EVENT_DONE, (now, event_id))
            if not events:
                time.sleep(0.05)


if __name__ == "__main__":
    raw_worker(sys.argv[1], int(sys.argv[2]))

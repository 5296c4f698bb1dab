"""Shares in team mode that the other team files do not cover: the worker login decides
automation shares (its lock on the recipient must not need a privilege it lacks: it may
not write ``users``), and the share cap holds for people's logins, who may not count
the recipient's other grants themselves, under concurrency and from psql."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import TeamDb

AUTOMATION = """
name = "Meeting owner gets the lead"
status = "published"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Meeting"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "7d"
access = "edit"
"""


def test_an_automation_share_is_granted_by_the_worker_login(team: TeamDb, tmp_path: Path) -> None:
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "activity", "types", "add", "Meeting")
    spec = tmp_path / "meeting.toml"
    spec.write_text(AUTOMATION)
    team.ok("boss", "automations", "add", str(spec))
    lead = team.ok("daniel", "leads", "add", "--name", "Acme", "--owner", "daniel", "--json").json()
    team.ok("daniel", "activity", "post", "--lead", lead["id"], "--type", "Meeting", "--owner", "kenji")
    login = f"{team.tag}_worker1"
    team.ok(None, "team", "worker-login", login)
    team.logins["worker1"] = login
    ran = team.cli("worker1", "worker", "--once")
    assert ran.exit_code == 0, ran.stderr
    runs = team.ok("boss", "automations", "runs", "1", "--json").json()["items"]
    assert [r["status"] for r in runs] == ["succeeded"], runs
    assert team.ok("kenji", "leads", "show", lead["id"]).exit_code == 0
    grants = team.connect().execute("SELECT user_id, access, source, state FROM grants").fetchall()
    assert len(grants) == 1 and grants[0][1:] == (2, "automation", "active")
    history = team.ok("daniel", "history", "lead", lead["id"], "--json").json()["items"]
    assert {h["event"] for h in history} >= {"share", "granted"}


def test_the_share_cap_holds_when_two_logins_share_to_one_recipient_at_once(team: TeamDb) -> None:
    """Two sales logins share their own leads with kenji at the same moment, with a cap of
    one lead: both wait on kenji's share lock (his users row, held here), and once it is
    let go exactly one share is granted and the other refused by the cap."""
    import os
    import subprocess
    import sys
    import time

    for name in ("daniel", "sofia", "kenji"):
        team.add_user(name, "sales")
    team.ok("boss", "settings", "share_cap_leads", "1")
    leads = {
        name: team.ok(name, "leads", "add", "--name", f"{name}'s", "--owner", name, "--json").json()["id"]
        for name in ("daniel", "sofia")
    }
    kenji = team.connect().execute("SELECT id FROM users WHERE username = 'kenji'").fetchone()[0]
    holder = team.connect()
    holder.autocommit = False
    holder.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (kenji,))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sharetui", "share", "lead", str(lead), "--with", "kenji", "--json"],
            env={**os.environ, "SHARETUI_DATABASE_URL": team.url(name)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, lead in leads.items()
    ]
    try:
        waiting = 0
        holder_pid = holder.info.backend_pid
        watcher = team.connect()
        for _ in range(300):
            # Each waits on the holder, or on the other waiter queued before it for the row.
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) > 0 "
                "AND pid <> %s",
                (holder_pid,),
            ).fetchone()[0]
            if waiting == 2:
                break
            time.sleep(0.05)
        assert waiting == 2, "both shares wait on the recipient's lock"
    finally:
        holder.commit()
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs
    statuses = sorted(json.loads(out)["status"] for out, _ in outs)
    assert statuses == ["completed", "failed"]
    active = team.connect().execute("SELECT count(*) FROM grants WHERE state = 'active'").fetchone()[0]
    assert active == 1


def test_psql_cannot_take_a_recipient_past_the_share_cap(team: TeamDb) -> None:
    """daniel calls the database's functions himself: the cap is the database's too."""
    import psycopg

    for name in ("daniel", "sofia", "kenji"):
        team.add_user(name, "sales")
    team.ok("boss", "settings", "share_cap_leads", "1")
    held = team.ok("sofia", "leads", "add", "--name", "Sofia's", "--owner", "sofia", "--json").json()["id"]
    team.ok("sofia", "share", "lead", held, "--with", "kenji")
    mine = team.ok("daniel", "leads", "add", "--name", "Mine", "--owner", "daniel", "--json").json()["id"]
    refused = team.cli("daniel", "share", "lead", mine, "--with", "kenji", "--json")
    assert refused.exit_code == 1 and "the cap is 1" in refused.json()["reason"], refused
    conn = team.connect("daniel")
    request = conn.execute(
        "SELECT sharetui_open_request('share', 'lead', %s, 'kenji', NULL, false, 1, '1d', false, "
        "'manual', NULL)",
        (mine,),
    ).fetchone()[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="share cap"):
        conn.execute("SELECT sharetui_put_grant(%s, sharetui_now() + interval '1 day')", (request,))
    # Nor does asking tell daniel anything about a record he may not share.
    assert conn.execute("SELECT sharetui_over_cap('lead', %s, 1)", (held,)).fetchone()[0] is None
    active = team.connect().execute("SELECT count(*) FROM grants WHERE state = 'active'").fetchone()[0]
    assert active == 1


def test_a_team_database_set_up_by_an_older_sharetui_keeps_sharing_and_doctor_says_run_team_init(
    team: TeamDb,
) -> None:
    """After an upgrade, until the setup role runs `team init` again, the database lacks
    the new functions (sharetui_hold_recipient): shares still work (the advisory lock, as
    before), and doctor names the fix."""
    for name in ("daniel", "kenji"):
        team.add_user(name, "sales")
    lead = team.ok("daniel", "leads", "add", "--name", "Mine", "--owner", "daniel", "--json").json()["id"]
    setup = team.connect()
    setup.execute("DELETE FROM team_config WHERE key = 'functions'")
    setup.execute("DROP FUNCTION sharetui_hold_recipient(integer, boolean, text)")
    shared = team.ok("daniel", "share", "lead", lead, "--with", "kenji", "--json").json()
    assert shared["status"] == "completed"
    checks = {c["name"]: c for c in team.cli("boss", "doctor", "--json").json()["checks"]}
    assert checks["row security"]["status"] == "problem"
    assert "run sharetui team init again" in checks["row security"]["detail"]
    team.ok(None, "team", "init", "--role-prefix", team.prefix)
    checks = {c["name"]: c for c in team.cli("boss", "doctor", "--json").json()["checks"]}
    assert checks["row security"]["status"] == "ok"
    assert (
        team.ok("daniel", "share", "lead", lead, "--with", "kenji", "--for", "3d", "--json").json()["outcome"]
        == "renewed"
    )


def test_the_worker_login_takes_a_batchs_recipient_locks_at_once(team: TeamDb) -> None:
    """In team mode a batch's recipients' share locks are their users rows, taken by the
    database's sharetui_hold_recipient: the worker login takes them all in one statement
    (no privilege on users needed), and a row another session holds is left to its item."""
    from sharetui.clock import SystemClock
    from sharetui.db import locks
    from sharetui.runtime import open_core

    for name in ("daniel", "sofia", "kenji"):
        team.add_user(name, "sales")
    ids = dict(team.connect().execute("SELECT username, id FROM users").fetchall())
    login = f"{team.tag}_worker1"
    team.ok(None, "team", "worker-login", login)
    team.logins["worker1"] = login
    holder = team.connect()
    holder.autocommit = False
    holder.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (ids["sofia"],))
    core = open_core(team.url("worker1"), SystemClock())
    try:
        assert core.team.is_team and core.team.functions_current
        with core.db.atomic(), locks.many_recipients(core.db) as scope:
            locks.hold_recipients(core.db, scope, [ids["daniel"], ids["sofia"], ids["kenji"]], team=True)
            assert scope.held == {ids["daniel"], ids["kenji"]}
            probe = team.connect()
            probe.execute("SET lock_timeout = '100ms'")
            with pytest.raises(Exception, match="lock"):
                probe.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (ids["kenji"],))
    finally:
        holder.rollback()
        core.close()


@pytest.mark.parametrize("clock", ["test clock", "server clock"])
def test_the_worker_reads_the_servers_clock_once_a_batch(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: str
) -> None:
    """Each reading of the server's clock is a round trip: the worker reads it once a batch
    of events (and adds the time elapsed since), not once an event; the runs' times follow
    the server's clock, frozen in a test-clock session (which the server says, not the
    worker)."""
    from sharetui.clock import SystemClock
    from sharetui.db import team as team_sql
    from sharetui.runtime import open_core

    db: TeamDb = request.getfixturevalue("team" if clock == "test clock" else "real_clock_team")
    for name in ("daniel", "sofia", "kenji", "aiko", "ravi"):
        db.add_user(name, "sales")
    db.ok("boss", "activity", "types", "add", "Meeting")
    spec = tmp_path / "meeting.toml"
    spec.write_text(AUTOMATION)
    db.ok("boss", "automations", "add", str(spec))
    lead = db.ok("daniel", "leads", "add", "--name", "Acme", "--owner", "daniel", "--json").json()["id"]
    login = f"{db.tag}_worker1"
    db.ok(None, "team", "worker-login", login)
    db.logins["worker1"] = login
    assert db.cli("worker1", "worker", "--once").exit_code == 0  # the set-up's events
    for owner in ("sofia", "kenji", "aiko", "ravi"):
        db.ok("daniel", "activity", "post", "--lead", lead, "--type", "Meeting", "--owner", owner)
    reads: list[str] = []
    real = team_sql.execute_apart

    def counted(database: Any, sql: str, params: Any = ()) -> Any:
        if "sharetui_now()" in sql:
            reads.append(sql)
        return real(database, sql, params)

    monkeypatch.setattr(team_sql, "execute_apart", counted)
    core = open_core(db.url("worker1"), SystemClock())
    try:
        core.team.start_session("2026-03-02T09:00:00Z" if clock == "test clock" else None)  # as the CLI does
        before = db.connect().execute("SELECT now()::timestamp").fetchone()[0]
        reports = core.automations.process_pending()
        after = db.connect().execute("SELECT now()::timestamp").fetchone()[0]
    finally:
        core.close()
    assert [r.status for r in reports] == ["succeeded"] * 4
    # One batch of the four activities, one marking their share events, one finding none.
    assert 1 <= len(reads) <= 3, reads
    started = [
        row[0]
        for row in db.connect().execute("SELECT started_at FROM automation_runs ORDER BY id DESC LIMIT 4")
    ]
    if clock == "server clock":
        assert all(before.replace(microsecond=0) <= at <= after for at in started), (before, started, after)
    else:
        assert set(started) == {datetime(2026, 3, 2, 9, 0)}

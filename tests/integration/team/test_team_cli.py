"""Team mode through the CLI, connected as each person's own PostgreSQL login
(DESIGN §8): setup, logins following roles, identity, impersonation, the clock, and a
sales login using the product normally while the database refuses its direct writes."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sharetui.db.team import RLS_TABLES

PG_URL = os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()
TeamDb = Any  # the `team` fixture (tests/integration/team/conftest.py)
pytestmark = pytest.mark.skipif(not PG_URL, reason="team mode needs PostgreSQL (SHARETUI_TEST_DATABASE_URL)")


def member_of(team: TeamDb, login: str) -> set[str]:
    conn = team.connect()
    rows = conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
        (login,),
    ).fetchall()
    return {r[0][len(team.prefix) :] for r in rows}


def can_login(team: TeamDb, login: str) -> bool:
    return (
        team.connect().execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (login,)).fetchone()[0]
    )


def test_team_init_is_idempotent_and_turns_row_security_on(team: TeamDb) -> None:
    again = team.ok(None, "team", "init", "--role-prefix", team.prefix, "--json").json()
    assert again["mode"] == "team"
    assert again["groups"] == [team.prefix + g for g in ("admin", "manager", "marketing", "sales", "worker")]
    assert all(again["row_security"].values()) and set(again["row_security"]) == set(RLS_TABLES)
    doctor = team.ok("boss", "doctor", "--json").json()
    assert doctor["mode"] == "team" and doctor["login"] == team.login("boss")
    assert doctor["acting"]["user"] == "boss"
    assert all(v == {"enabled": True, "forced": True} for v in doctor["row_security"].values())
    assert doctor["test_database"] is True


def test_team_init_refuses_sqlite(tmp_path) -> None:
    from click.testing import CliRunner

    from sharetui.cli import cli

    url = f"sqlite:///{tmp_path / 'x.db'}"
    CliRunner().invoke(cli, ["--db", url, "init"])
    result = CliRunner().invoke(cli, ["--db", url, "team", "init"])
    assert result.exit_code == 2
    assert "PostgreSQL" in result.stderr and "SQLite file is personal mode" in result.stderr


def test_plain_postgresql_database_is_flagged_by_doctor(db_url: str, cli) -> None:
    cli("init")
    report = cli("doctor", "--json").json()
    assert report["mode"] == "postgresql"
    assert any("not in team mode" in w for w in report["warnings"])


def test_logins_follow_role_changes_and_deactivation(team: TeamDb) -> None:
    team.add_user("daniel", "sales")
    login = team.login("daniel")
    assert member_of(team, login) == {"sales"} and can_login(team, login)
    team.ok("boss", "users", "set-role", "daniel", "sales_manager")
    assert member_of(team, login) == {"manager"}
    team.ok("boss", "users", "set-role", "daniel", "sales")
    assert member_of(team, login) == {"sales"}
    team.ok("boss", "users", "deactivate", "daniel")
    assert not can_login(team, login) and member_of(team, login) == {"sales"}
    team.ok("boss", "users", "activate", "daniel")
    assert can_login(team, login)


def test_users_add_links_an_existing_role_and_reads_the_password_from_a_file(team: TeamDb, tmp_path) -> None:
    existing = f"{team.tag}_existing"
    team.connect().execute(f'CREATE ROLE "{existing}" LOGIN')
    out = team.ok("boss", "users", "add", "ana", "--role", "marketing", "--login", existing, "--json").json()
    assert out["login"] == existing and out["login_created"] is False
    assert member_of(team, existing) == {"marketing"}
    secret = tmp_path / "pw"
    secret.write_text("s3cret-Horse\n")
    made = team.cli(
        "boss",
        "users",
        "add",
        "leo",
        "--role",
        "sales",
        "--login",
        team.login("leo"),
        "--password-file",
        secret,
    )
    assert made.exit_code == 0, made.stderr
    assert "s3cret" not in made.stdout + made.stderr
    stored = (
        team.connect()
        .execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (team.login("leo"),))
        .fetchone()[0]
    )
    assert stored.startswith("SCRAM-SHA-256$") and "s3cret" not in stored
    # An existing login's password is its own: sharetui sets none on it.
    other = f"{team.tag}_other"
    team.connect().execute(f'CREATE ROLE "{other}" LOGIN')
    again = team.cli(
        "boss", "users", "add", "ida", "--role", "sales", "--login", other, "--password-file", secret
    )
    assert again.exit_code == 2 and "sets no password" in again.stderr


def test_a_login_linked_to_no_user_is_exit_2_naming_it(team: TeamDb) -> None:
    stranger = f"{team.tag}_stranger"
    team.connect().execute(f'CREATE ROLE "{stranger}" LOGIN')
    team.logins["stranger"] = stranger
    result = team.cli("stranger", "leads", "list")
    assert result.exit_code == 2
    assert stranger in result.stderr and "linked to no sharetui user" in result.stderr


def test_impersonation_is_for_admins_and_records_both_names(team: TeamDb) -> None:
    from sharetui.runtime import open_core, release
    from sharetui.tui.session import Session

    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "leads", "add", "--name", "Acme", "--owner", "daniel")
    for how in (("--as", "kenji"), ()):
        env = {} if how else {"SHARETUI_USER": "kenji"}
        refused = team.cli("daniel", *how, "leads", "list", env=env)
        assert refused.exit_code == 2, refused.stdout
        assert "only admins may act as another user" in refused.stderr
    shared = team.ok("boss", "--as", "daniel", "share", "lead", "1", "--with", "kenji", "--json").json()
    assert shared["status"] == "completed"
    history = team.ok("boss", "history", "lead", "1", "--json").json()["items"]
    assert {h["requester"] for h in history} == {"boss as daniel"}
    payload = team.connect().execute("SELECT payload FROM outbox WHERE topic = 'share.granted'").fetchone()[0]
    assert '"impersonated_by": "boss"' in payload
    core = open_core(team.url("boss"))
    try:
        core.team.start_session(None)
        session = Session(core, "daniel")  # the TUI started with --as: an admin impersonating
        assert "acting boss as daniel · test clock" in session.identity_text()
        session.act_as("boss")
        assert "acting boss · test clock" in session.identity_text()
    finally:
        release(core)
    doctor = team.ok("boss", "--as", "daniel", "doctor", "--json").json()
    assert doctor["acting"]["user"] == "daniel" and doctor["acting"]["impersonated_by"] == "boss"


def test_tui_act_as_is_refused_for_a_sales_login(team: TeamDb) -> None:
    from sharetui.errors import UsageError
    from sharetui.runtime import open_core, release
    from sharetui.tui.session import Session

    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    core = open_core(team.url("daniel"))
    try:
        core.team.start_session(None)
        session = Session(core)
        assert session.user.username == "daniel"
        assert session.act_as_choices() == []
        with pytest.raises(UsageError, match="only admins"):
            session.act_as("kenji")
        assert "login " + team.login("daniel") in session.identity_text()
        from sharetui.tui.app import make_app

        header = make_app(core).header_text()
        assert header.startswith(f"team mode · login {team.login('daniel')} · acting daniel")
    finally:
        release(core)


def test_sharetui_now_is_refused_without_a_test_clock(real_clock_team: TeamDb) -> None:
    team = real_clock_team
    refused = team.cli("boss", "leads", "list", env={"SHARETUI_NOW": "2020-01-01T00:00:00Z"})
    assert refused.exit_code == 2 and "SHARETUI_NOW is refused in team mode" in refused.stderr
    assert "test_database" not in team.ok("boss", "doctor", "--json").json()


def test_sharetui_now_sets_the_session_time_in_a_test_clock_database(team: TeamDb) -> None:
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "leads", "add", "--name", "Acme", "--owner", "daniel")
    at = "2030-01-01T09:00:00Z"
    team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--for", "1h", env={"SHARETUI_NOW": at})
    row = team.connect().execute("SELECT starts_at, expires_at FROM grants").fetchone()
    assert row[0].isoformat() == "2030-01-01T09:00:00" and row[1].isoformat() == "2030-01-01T10:00:00"
    history = team.connect().execute("SELECT DISTINCT at FROM history").fetchall()
    assert [h[0].isoformat() for h in history] == ["2030-01-01T09:00:00"]
    assert (
        team.cli("kenji", "leads", "show", "1", env={"SHARETUI_NOW": "2030-01-01T09:59:00Z"}).exit_code == 0
    )
    assert (
        team.cli("kenji", "leads", "show", "1", env={"SHARETUI_NOW": "2030-01-01T10:00:00Z"}).exit_code == 1
    )


def test_a_sales_login_uses_the_product_normally(team: TeamDb) -> None:
    """Everything a sales user does in a day, as their own login: the product's writes to
    share metadata go through the database's functions, and they work."""
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "activity", "types", "add", "Meeting")
    lead = team.ok("daniel", "leads", "add", "--name", "Acme", "--owner", "daniel", "--json").json()
    other = team.ok("boss", "leads", "add", "--name", "Other", "--owner", "kenji", "--json").json()
    assert team.cli("daniel", "leads", "add", "--name", "X", "--owner", "kenji").exit_code == 1
    team.ok("daniel", "leads", "update", lead["id"], "--stage", "qualified")
    act = team.ok(
        "daniel", "activity", "post", "--lead", lead["id"], "--type", "Meeting", "--owner", "kenji", "--json"
    ).json()
    opp = team.ok(
        "daniel",
        "opps",
        "add",
        "--lead",
        lead["id"],
        "--name",
        "Loan",
        "--type",
        "Home",
        "--owner",
        "daniel",
        "--json",
    ).json()
    shared = team.ok("daniel", "share", "lead", lead["id"], "--with", "kenji", "--for", "2d", "--json").json()
    assert shared["status"] == "completed" and shared["grant"]["user"] == "kenji"
    ctx = team.ok(
        "daniel",
        "share",
        "lead",
        lead["id"],
        "--with",
        "kenji",
        "--context",
        act["id"],
        "--access",
        "edit",
        "--json",
    ).json()
    assert ctx["status"] == "completed"
    renewed = team.ok(
        "daniel", "share", "lead", lead["id"], "--with", "kenji", "--for", "3d", "--json"
    ).json()
    assert renewed["grant"]["id"] == shared["grant"]["id"]
    team.ok("daniel", "share", "opp", opp["id"], "--with", "kenji", "--access", "edit")
    refused = team.cli("daniel", "share", "lead", other["id"], "--with", "kenji", "--json")
    assert refused.exit_code == 1 and refused.json()["status"] == "failed"
    assert team.ok("daniel", "status", shared["request_id"], "--json").json()["status"] == "completed"
    assert {s["entity_id"] for s in team.ok("kenji", "shares", "--json").json()["items"]} >= {lead["id"]}
    assert team.ok("kenji", "leads", "show", lead["id"]).exit_code == 0
    assert team.cli("kenji", "check", "kenji", "opp", opp["id"], "--action", "edit").exit_code == 0
    team.ok("kenji", "opps", "update", opp["id"], "--stage", "won")
    team.ok("daniel", "activity", "delete", act["id"])  # ends the share made in its context
    states = team.connect().execute(
        "SELECT context_activity_id, state FROM grants WHERE entity_type = 'lead'"
    )
    assert dict(states.fetchall()) == {act["id"]: "revoked", None: "active"}
    team.ok("daniel", "revoke", "lead", lead["id"], "--user", "kenji", "--all-contexts")
    assert team.cli("kenji", "leads", "show", lead["id"]).exit_code == 1
    history = team.ok("daniel", "history", "lead", lead["id"], "--json").json()["items"]
    assert {h["event"] for h in history} >= {"share", "granted", "renew", "renewed", "revoke", "revoked"}
    assert {h["requester"] for h in history} == {"daniel"}
    # …and psql as daniel still cannot write share metadata directly.
    import psycopg

    conn = team.connect("daniel")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE grants SET expires_at = expires_at + interval '1 year'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM history")


def test_worker_runs_as_a_worker_login_and_refuses_a_sales_login(team: TeamDb) -> None:
    team.add_user("daniel", "sales")
    refused = team.cli("daniel", "worker", "--once")
    assert refused.exit_code == 2 and "sales login" in refused.stderr
    swept = team.cli("daniel", "sweep")
    assert swept.exit_code == 2 and "runs as a worker login" in swept.stderr
    login = f"{team.tag}_worker1"
    team.ok(None, "team", "worker-login", login)
    team.logins["worker1"] = login
    ran = team.cli("worker1", "worker", "--once")
    assert ran.exit_code == 0, ran.stderr
    assert f"worker running as login {login}" in ran.stderr


def test_saved_views_are_private_to_their_owner_in_the_database_too(team: TeamDb) -> None:
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "leads", "add", "--name", "Acme Dental", "--owner", "daniel")
    team.ok("daniel", "views", "add", "dental", "--search", "dental")
    team.ok("boss", "views", "add", "everyone", "--shared")
    listed = team.ok("daniel", "leads", "list", "--view", "dental", "--json").json()["items"]
    assert [i["name"] for i in listed] == ["Acme Dental"]
    # kenji sees the shared view, not daniel's, from the CLI and from psql alike.
    names = [v["name"] for v in team.ok("kenji", "views", "list", "--json").json()["items"]]
    assert names == ["everyone"]
    kenji = team.connect("kenji")
    assert [r[0] for r in kenji.execute("SELECT name FROM saved_views ORDER BY name")] == ["everyone"]
    assert team.ok("kenji", "leads", "list", "--view", "everyone", "--json").json()["items"] == []
    refused = team.cli("kenji", "views", "remove", "everyone", "--shared")
    assert refused.exit_code == 1
    team.ok("kenji", "views", "add", "mine")
    team.ok("kenji", "views", "remove", "mine")


def test_api_keys_are_their_users_own_in_the_database(team: TeamDb) -> None:
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    created = team.ok("daniel", "keys", "create", "--json").json()
    assert created["secret_key"] not in team.ok("daniel", "keys", "list", "--json").stdout
    kenji = team.connect("kenji")
    assert kenji.execute("SELECT count(*) FROM api_keys").fetchone()[0] == 0
    assert team.ok("kenji", "keys", "list", "--json").json()["items"] == []
    boss = team.connect("boss")
    assert boss.execute("SELECT count(*) FROM api_keys").fetchone()[0] == 1


def test_serve_refuses_a_team_mode_database(team: TeamDb) -> None:
    """One server acting for every key's user would be one login that is everyone: in
    team mode the HTTP API fails closed (docs/api.md)."""
    refused = team.cli("boss", "serve", "--port", "1")
    assert refused.exit_code == 2 and "team-mode" in refused.stderr

"""The team-mode attack's findings (docs/security-review.md, T1-T12), each as the
attacker's repro: psycopg connected as a person's own login, as psql would be. Each
test failed before its fix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()
TeamDb = Any  # the `team` fixture (tests/integration/team/conftest.py)
pytestmark = pytest.mark.skipif(not PG_URL, reason="team mode needs PostgreSQL (SHARETUI_TEST_DATABASE_URL)")

SAMPLE = Path(__file__).resolve().parents[3] / "sample_data" / "automations" / "01_meeting_share.toml"


def _company(team: TeamDb) -> dict[str, int]:
    """daniel owns lead 1 (opportunity 1, a meeting with kenji as owner: activity 1);
    kenji owns lead 2; nadia is marketing. The sample "Meeting owner gets the lead"
    automation is published after those, and a worker login exists."""
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.add_user("nadia", "marketing")
    team.ok("boss", "activity", "types", "add", "Meeting Scheduled")
    team.ok("boss", "leads", "add", "--name", "Acme", "--owner", "daniel")
    team.ok("boss", "leads", "add", "--name", "Beta", "--owner", "kenji")
    team.ok("boss", "opps", "add", "--lead", "1", "--name", "Loan", "--type", "Home", "--owner", "daniel")
    team.ok("daniel", "activity", "post", "--lead", "1", "--type", "Meeting Scheduled", "--owner", "kenji")
    team.ok("boss", "automations", "add", str(SAMPLE))
    login = f"{team.tag}_worker1"
    team.ok(None, "team", "worker-login", login)
    team.logins["worker1"] = login
    team.ok("worker1", "worker", "--once")
    return dict(team.connect().execute("SELECT username, id FROM users").fetchall())


def _access(team: TeamDb, user_id: int, entity: str, entity_id: int) -> int:
    row = team.connect().execute(
        "SELECT MAX(access) FROM grants WHERE user_id = %s AND entity_type = %s AND entity_id = %s "
        "AND state = 'active'",
        (user_id, entity, entity_id),
    )
    return row.fetchone()[0] or 0


# -- T1: forged events ----------------------------------------------------------------------
def test_t1_an_emitted_event_always_names_its_caller_and_only_what_a_change_makes(team: TeamDb) -> None:
    import psycopg

    ids = _company(team)
    team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--for", "2d")  # read
    kenji = team.connect("kenji")
    # The repro: no actor_id, so the automation acted for itself and gave kenji edit.
    event = kenji.execute("SELECT sharetui_emit('activity.created', 'lead', 1, '{\"activity_id\": 1}')")
    event_id = event.fetchone()[0]
    payload = team.connect().execute("SELECT payload FROM outbox WHERE id = %s", (event_id,)).fetchone()[0]
    assert '"actor_id": ' + str(ids["kenji"]) in payload
    team.ok("worker1", "worker", "--once")
    assert _access(team, ids["kenji"], "lead", 1) == 1
    # Topics no person's change makes, payloads that are no object, ids of other records.
    kenji_lead_activity = team.ok(
        "kenji", "activity", "post", "--lead", "2", "--type", "Meeting Scheduled", "--json"
    ).json()["id"]
    for sql in (
        "SELECT sharetui_emit('trigger.new_activity_on_lead', 'lead', 1, '{}')",
        "SELECT sharetui_emit('task.reminder_due', 'lead', 1, '{}')",
        "SELECT sharetui_emit('schedule.fired', NULL, NULL, '{}')",
        "SELECT sharetui_emit('opportunity.created', 'lead', 1, '{}')",
        f"SELECT sharetui_emit('activity.created', 'lead', 1, '{{\"activity_id\": {kenji_lead_activity}}}')",
        "SELECT sharetui_emit('activity.created', 'lead', 1, '{\"activity_id\": \"1 OR 1=1\"}')",
        "SELECT sharetui_emit('task.created', 'lead', 1, '{\"task_id\": 1}')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            kenji.execute(sql)
    for payload_text in ('["x"]', "1", "null"):
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            kenji.execute("SELECT sharetui_emit('lead.updated', 'lead', 1, %s)", (payload_text,))
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        kenji.execute("SELECT sharetui_emit('lead.updated', 'lead', 1, 'not json')")
    # Marketing reads every lead, but may share none: its forged meeting gives nobody edit.
    nadia = team.connect("nadia")
    nadia.execute("SELECT sharetui_emit('activity.created', 'lead', 1, '{\"activity_id\": 1}')")
    team.ok("worker1", "worker", "--once")
    assert _access(team, ids["kenji"], "lead", 1) == 1


# -- T2 and T5: children of records one may not edit -------------------------------------------
def test_t2_an_opportunity_goes_only_on_a_lead_one_may_edit(team: TeamDb) -> None:
    import psycopg

    ids = _company(team)
    kenji = team.connect("kenji")
    insert = (
        "INSERT INTO opportunities (lead_id, name, type, stage, amount, owner_id, fields, created_at, "
        "updated_at) VALUES (%s, 'carrier', 'Card', 'new', 0, %s, '{}', now(), now()) RETURNING id"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # hidden lead
        kenji.execute(insert, (1, ids["kenji"]))
    team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--for", "2d")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # read only
        kenji.execute(insert, (1, ids["kenji"]))
    mine = kenji.execute(insert, (2, ids["kenji"])).fetchone()[0]  # kenji's own lead: fine
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # and not moved onto lead 1 either
        kenji.execute("UPDATE opportunities SET lead_id = 1 WHERE id = %s", (mine,))


def test_t3_t5_activities_and_tasks_hang_only_on_records_one_may_edit(team: TeamDb) -> None:
    import psycopg

    ids = _company(team)
    kenji = team.connect("kenji")
    task = (
        "INSERT INTO tasks (lead_id, opportunity_id, owner_id, subject, created_by_id, created_at, "
        "updated_at) VALUES (%s, %s, %s, 'x', NULL, now(), now()) RETURNING id, created_by_id"
    )
    activity = (
        "INSERT INTO activities (type_id, lead_id, opportunity_id, note, fields, status, occurred_at, "
        "created_at, updated_at) VALUES (1, %s, %s, 'x', '{}', 'open', now(), now(), now())"
    )
    # kenji's own lead 2 with daniel's hidden opportunity 1: either parent used to do.
    for sql in (task, activity):
        params: tuple[Any, ...] = (2, 1, ids["kenji"]) if sql is task else (2, 1)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            kenji.execute(sql, params)
    # A hidden record and a missing one answer alike (no existence test through the FK).
    for lead in (1, 999):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            kenji.execute(activity, (lead, None))
    # The creator (whom a reminder acts for) is the caller, whatever the row says.
    task_id, created_by = kenji.execute(task, (2, None, ids["kenji"])).fetchone()
    assert created_by == ids["kenji"]
    kenji.execute("UPDATE tasks SET created_by_id = NULL WHERE id = %s", (task_id,))
    stored = team.connect().execute("SELECT created_by_id FROM tasks WHERE id = %s", (task_id,))
    assert stored.fetchone()[0] == ids["kenji"]


# -- T6: owners -----------------------------------------------------------------------------
def test_t6_only_admins_and_sales_managers_change_an_owner(team: TeamDb) -> None:
    import psycopg

    ids = _company(team)
    team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--access", "edit", "--for", "2d")
    team.ok("daniel", "share", "opp", "1", "--with", "kenji", "--access", "edit", "--for", "2d")
    kenji = team.connect("kenji")
    kenji.execute("UPDATE leads SET name = 'Acme 2' WHERE id = 1")  # edit is edit
    for table in ("leads", "opportunities"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            kenji.execute(f"UPDATE {table} SET owner_id = %s WHERE id = 1", (ids["kenji"],))
    # A `modify` member of daniel's sales group edits his leads, and does not take them.
    team.ok("boss", "users", "join", "daniel", "North:own")
    team.ok("boss", "users", "join", "kenji", "North:modify")
    team.ok("daniel", "revoke", "lead", "1", "--user", "kenji", "--all-contexts")
    assert kenji.execute("UPDATE leads SET name = 'Acme 3' WHERE id = 1").rowcount == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        kenji.execute("UPDATE leads SET owner_id = %s WHERE id = 1", (ids["kenji"],))
    team.add_user("maria", "sales_manager")
    team.connect("maria").execute("UPDATE leads SET owner_id = %s WHERE id = 1", (ids["kenji"],))
    assert team.connect().execute("SELECT owner_id FROM leads WHERE id = 1").fetchone()[0] == ids["kenji"]


# -- T7: history and requests -------------------------------------------------------------------
def test_t7_history_and_finished_requests_record_only_what_the_request_did(team: TeamDb) -> None:
    import psycopg

    ids = _company(team)
    mine = team.ok("kenji", "share", "lead", "2", "--with", "daniel", "--for", "2d", "--json").json()
    theirs = team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--for", "2d", "--json").json()
    kenji = team.connect("kenji")
    history = (
        "SELECT sharetui_add_history(%s, 'completed', NULL, %s, %s, 'lead', 2, %s, 'x', 2, NULL, NULL, "
        "'automation', false)"
    )
    # Someone else's grant, through a request of mine.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        kenji.execute(history, ("granted", mine["request_id"], theirs["grant"]["id"], ids["kenji"]))
    # A row of my request names what the request was about, whatever the call says.
    kenji.execute(history, ("renew", mine["request_id"], None, ids["kenji"]))
    row = team.connect().execute(
        "SELECT entity_id, user_id, access, source, requester_id FROM history "
        "WHERE request_id = %s AND event = 'renew'",
        (mine["request_id"],),
    )
    assert row.fetchone() == (2, ids["daniel"], 1, "manual", ids["kenji"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # and only once
        kenji.execute(history, ("renew", mine["request_id"], None, ids["kenji"]))
    # A request of mine is never linked to someone else's grant.
    request = kenji.execute(
        "SELECT sharetui_open_request('share', 'lead', 2, 'daniel', NULL, false, 1, '1d', false, "
        "'manual', NULL)"
    ).fetchone()[0]
    for outcome in ("none", "revoked", "granted"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            kenji.execute(
                "SELECT sharetui_finish_request(%s, 'completed', %s, %s, NULL)",
                (request, outcome, theirs["grant"]["id"]),
            )


# -- T4: what a person writes into fields is a JSON object --------------------------------------
def test_t4_a_person_login_writes_only_json_objects_into_fields(team: TeamDb) -> None:
    import psycopg

    _company(team)
    daniel = team.connect("daniel")
    for text in ("not json", '["x"]', "1"):
        with pytest.raises((psycopg.errors.InvalidParameterValue, psycopg.errors.InvalidTextRepresentation)):
            daniel.execute("UPDATE leads SET fields = %s WHERE id = 1", (text,))
    daniel.execute("UPDATE leads SET fields = '{\"score\": 3}' WHERE id = 1")
    # Damage written around the product (the setup role here) shows as no fields.
    team.connect().execute("UPDATE leads SET fields = 'not json' WHERE id = 1")
    shown = team.ok("daniel", "leads", "show", "1", "--json").json()
    assert shown["fields"] == {}


# -- T8: logins ------------------------------------------------------------------------------
def test_t8_an_admin_links_only_plain_logins_and_sets_no_password_on_an_existing_one(team: TeamDb) -> None:
    import psycopg

    ids = _company(team)
    setup = team.connect()
    victim, ops, sup = (f"{team.tag}_{n}" for n in ("victim", "ops", "sup"))
    setup.execute(f'CREATE ROLE "{victim}" LOGIN')
    setup.execute(f'CREATE ROLE "{sup}" NOLOGIN SUPERUSER')
    setup.execute(f'CREATE ROLE "{ops}" LOGIN IN ROLE "{sup}"')
    boss = team.connect("boss")
    link = "SELECT sharetui_link_login(%s, %s, %s, false)"
    verifier = "SCRAM-SHA-256$4096:c2FsdA==$aGFzaA==:a2V5"
    # No password on a role that exists (it is someone's), not even a plain one.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        boss.execute(link, (ids["nadia"], victim, verifier))
    # Not the worker login, not a member of a superuser role, not a login linked already.
    for login in (team.login("worker1"), ops, team.login("daniel")):
        with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.DuplicateObject)):
            boss.execute(link, (ids["nadia"], login, None))
    assert (
        team.connect()
        .execute("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = %s", (victim,))
        .fetchone()[0]
    )
    # A plain role links, and follows the user; an unlinked role is never touched.
    boss.execute(link, (ids["nadia"], victim, None))
    team.ok("boss", "users", "deactivate", "nadia")
    assert not setup.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (victim,)).fetchone()[0]
    # The worker may not set who a login is by writing users.login itself.
    worker = team.connect("worker1")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        worker.execute("UPDATE users SET login = %s WHERE id = %s", (victim, ids["boss"]))
    # The CLI says so too.
    refused = team.cli("boss", "users", "add", "ana", "--role", "sales", "--login", ops)
    assert refused.exit_code != 0


# -- T9: the clock of each statement ------------------------------------------------------------
def test_t9_a_share_ends_between_two_statements_of_one_transaction(team: TeamDb) -> None:
    import time

    import psycopg

    ids = _company(team)
    team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--access", "edit", "--for", "1m")
    # The server's clock (no session time): the share now ends two seconds from now.
    team.connect().execute(
        "UPDATE grants SET expires_at = date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC') "
        "+ interval '2 seconds' WHERE user_id = %s",
        (ids["kenji"],),
    )
    with psycopg.connect(team.url("kenji")) as kenji:  # one transaction
        assert kenji.execute("SELECT count(*) FROM leads WHERE id = 1").fetchone()[0] == 1
        time.sleep(3)
        assert kenji.execute("SELECT count(*) FROM leads WHERE id = 1").fetchone()[0] == 0
        assert kenji.execute("UPDATE leads SET name = 'late' WHERE id = 1").rowcount == 0


# -- T10: what sales and marketing read beyond records --------------------------------------------
def test_t10_sales_and_marketing_read_no_automations_or_schedules(team: TeamDb) -> None:
    import psycopg

    _company(team)
    for who in ("kenji", "nadia"):
        conn = team.connect(who)
        for table in ("automations", "schedule_state"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {table}")
    # The product as a sales login still works: usernames, settings, group levels.
    team.ok("kenji", "leads", "list")
    team.ok("kenji", "share", "lead", "2", "--with", "daniel", "--for", "1d")
    team.ok("kenji", "history", "lead", "2")
    team.add_user("maria", "sales_manager")
    assert team.ok("maria", "automations", "list", "--json").json()["items"]


# -- T11: small things ---------------------------------------------------------------------------
def test_t11_an_activity_owner_with_read_access_completes_it_and_its_share_ends(team: TeamDb) -> None:
    ids = _company(team)
    refused = team.cli("boss", "worker", "--once")
    assert refused.exit_code == 2 and "is an admin login" in refused.stderr
    # daniel shares lead 1 with kenji, the meeting's owner, until the meeting is completed.
    team.ok(
        "daniel",
        "share",
        "lead",
        "1",
        "--with",
        "kenji",
        "--context",
        "1",
        "--until-completed",
        "--for",
        "7d",
    )
    assert _access(team, ids["kenji"], "lead", 1) == 1
    done = team.ok("kenji", "activity", "update", "1", "--status", "completed", "--json").json()
    assert done["status"] == "completed"
    assert _access(team, ids["kenji"], "lead", 1) == 0
    ended = team.connect().execute(
        "SELECT event, requester_id FROM history WHERE event = 'revoked' AND user_id = %s", (ids["kenji"],)
    )
    assert ended.fetchall() == [("revoked", ids["kenji"])]


def test_t11_ending_a_grant_says_the_same_for_a_hidden_one_and_a_missing_one(team: TeamDb) -> None:
    import psycopg

    _company(team)
    team.add_user("leo", "sales")
    hidden = team.ok("daniel", "share", "lead", "1", "--with", "leo", "--for", "2d", "--json").json()
    kenji = team.connect("kenji")
    answers = []
    for grant in (hidden["grant"]["id"], 999_999):
        try:
            answers.append(
                kenji.execute("SELECT sharetui_end_grant(%s, 'revoked', 'x')", (grant,)).fetchone()
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            answers.append(str(exc).replace(str(grant), "N"))
    assert answers[0] == answers[1]
    assert team.connect().execute(
        "SELECT state FROM grants WHERE id = %s", (hidden["grant"]["id"],)
    ).fetchone() == ("active",)


# -- A2-1: the share cap passed from two REPEATABLE READ transactions -----------------------
def _psql_share(conn: Any, lead: int, recipient: str) -> int:
    """What the product does for a share, as psql can do it: open the request, put the grant."""
    request = conn.execute(
        "SELECT sharetui_open_request('share', 'lead', %s, %s, NULL, false, 1, '1d', false, 'manual', NULL)",
        (lead, recipient),
    ).fetchone()[0]
    return conn.execute(
        "SELECT sharetui_put_grant(%s, sharetui_now() + interval '1 day')", (request,)
    ).fetchone()[0]


def test_a2_1_the_share_cap_holds_for_repeatable_read_transactions(team: TeamDb) -> None:
    """Finding A2-1: sharetui_put_grant counts the recipient's grants after taking the
    recipient's lock, but a REPEATABLE READ transaction counts them in the snapshot it took
    before the lock: a share committed meanwhile is not seen. Two sessions (two owners, or
    one owner twice) took kenji past a cap of 2, deterministically, with no race."""
    import psycopg

    for name in ("daniel", "sofia", "kenji"):
        team.add_user(name, "sales")
    team.ok("boss", "settings", "share_cap_leads", "2")
    daniel_leads = [
        team.ok("daniel", "leads", "add", "--name", f"D{i}", "--owner", "daniel", "--json").json()["id"]
        for i in range(2)
    ]
    sofia_lead = team.ok("sofia", "leads", "add", "--name", "S", "--owner", "sofia", "--json").json()["id"]
    team.ok("daniel", "share", "lead", daniel_leads[0], "--with", "kenji")  # kenji: 1 of 2
    first, second = team.connect("daniel"), team.connect("sofia")
    for conn in (first, second):
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT 1 FROM users LIMIT 1")  # the snapshot is taken here
    try:
        _psql_share(first, daniel_leads[1], "kenji")  # kenji: 2 of 2
        first.execute("COMMIT")
    except psycopg.Error:
        first.execute("ROLLBACK")
    try:
        _psql_share(second, sofia_lead, "kenji")  # must be refused (or refused to run)
        second.execute("COMMIT")
    except psycopg.Error:
        second.execute("ROLLBACK")
    live = (
        team.connect()
        .execute(
            "SELECT count(DISTINCT entity_id) FROM grants WHERE state = 'active' AND entity_type = 'lead'"
        )
        .fetchone()[0]
    )
    assert live <= 2, f"kenji holds live shares on {live} leads past a cap of 2"


# -- A2-2: any login blocked every share to a recipient with an advisory lock ---------------
def test_a2_2_a_login_that_may_share_nothing_cannot_hold_up_shares_to_a_recipient(team: TeamDb) -> None:
    """Finding A2-2: the recipient's share lock was an advisory lock, which every login may
    take: nadia (marketing, who may share nothing) held kenji's, and every share to him
    waited with her (the worker's too). In team mode the lock is now kenji's users row,
    taken only through sharetui_hold_recipient, which marketing may not call: nadia can
    neither lock the row nor call the function, and her advisory locks hold up nothing."""
    import os
    import subprocess
    import sys

    import psycopg

    from sharetui.db.locks import RECIPIENT_LOCK

    for name in ("daniel", "kenji"):
        team.add_user(name, "sales")
    team.add_user("nadia", "marketing")
    lead = team.ok("daniel", "leads", "add", "--name", "Mine", "--owner", "daniel", "--json").json()["id"]
    kenji = team.connect().execute("SELECT id FROM users WHERE username = 'kenji'").fetchone()[0]
    nadia = team.connect("nadia")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        nadia.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (kenji,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        nadia.execute("SELECT sharetui_hold_recipient(%s, true, '1s')", (kenji,))
    assert nadia.execute("SELECT pg_try_advisory_lock(%s, %s)", (RECIPIENT_LOCK, kenji)).fetchone()[0]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sharetui", "share", "lead", str(lead), "--with", "kenji", "--json"],
            env={**os.environ, "SHARETUI_DATABASE_URL": team.url("daniel")},
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("daniel's share to kenji waited 20 s on a lock nadia (marketing) holds")
    finally:
        nadia.execute("SELECT pg_advisory_unlock_all()")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"

"""DESIGN §9, as a matrix: every role and relation to one hidden record, against every
command (and the TUI's sections) that reads or changes records or share metadata.

The hidden record is olga's lead. Its name, company, custom field, activity note, its
opportunity and that opportunity's task all carry :data:`CANARY`; so does a
notification about it. Whoever may not read the lead must never see the canary, in any
output: stdout, stderr, JSON, CSV, notifications, traces, the TUI's screens.

Relations (to the lead): ``admin`` and ``ruth`` (sales manager) edit by role, ``nadia``
(marketing) reads by role; ``olga`` owns it; ``gown``, ``gview``, ``gmod`` and
``gman`` share a sales group with olga at levels own, view, modify and manage;
``sread`` and ``sedit`` hold a read and an edit share; ``sexp`` held one that ran out
(not swept), ``srev`` one that was revoked; ``nobody`` has nothing. The matrix runs
on SQLite and, with ``SHARETUI_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from sharetui.core.service import Core
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType

CANARY = "Kanarienvogel7f3a"
NONE, READ, EDIT = 0, 1, 2
LEVELS: dict[str, int] = {
    "admin": EDIT,
    "ruth": EDIT,
    "nadia": READ,
    "olga": EDIT,
    "gown": NONE,
    "gview": READ,
    "gmod": EDIT,
    "gman": EDIT,
    "sread": READ,
    "sedit": EDIT,
    "sexp": NONE,
    "srev": NONE,
    "nobody": NONE,
}
USERS = list(LEVELS)
SALES = [u for u in USERS if u not in ("admin", "ruth", "nadia")]
SEES_ALL = {"admin", "ruth"}  # share metadata, runs, other users' checks (DESIGN §9)
MISSING = 987_654


@dataclass
class World:
    core: Core
    lead: int
    opp: int
    activity: int
    task: int
    request: int  # sread's share
    automation: int
    visible_lead: int  # nobody's own lead: every list has something


@pytest.fixture
def world(core: Core, clock) -> World:
    u = core.users
    admin = u.add("admin", role="admin", actor=None)
    u.add("ruth", role="sales_manager", actor=admin)
    u.add("nadia", role="marketing", actor=admin)
    groups = {"olga": "own", "gown": "own", "gview": "view", "gmod": "modify", "gman": "manage"}
    for name in SALES:
        u.add(name, role="sales", groups={"Team": groups[name]} if name in groups else None, actor=admin)
    r = core.records
    r.add_activity_type("Meeting", actor=admin)
    olga = u.get("olga")
    lead = r.add_lead(
        name=f"{CANARY} lead", company=f"{CANARY} Ltd", owner=olga, fields={"secret": CANARY}, actor=admin
    )
    visible = r.add_lead(name="Plain lead", owner="nobody", actor=admin)
    opp = r.add_opportunity(
        lead=lead.id, name=f"{CANARY} opp", type="Home Loan", owner=olga, amount=1, actor=admin
    )
    task = r.add_task(("opportunity", opp.id), owner=olga, subject=f"{CANARY} task", actor=admin)
    definition = core.automations.parse(
        """
name = "Tell the team"
status = "published"
[trigger]
type = "new_activity_on_lead"
[[actions]]
type = "notify"
to = ["gown", "olga", "sread", "nobody"]
message = "news about {lead.name}"
"""
    )
    automation = core.automations.add(definition, actor=admin)
    act = r.post_activity(("lead", lead.id), type="Meeting", owner=olga, note=f"{CANARY} note", actor=olga)
    share = core.sharing.share
    read = share("lead", lead.id, "sread", requester=olga, duration="30d", access="read")
    share("opp", opp.id, "sread", requester=olga, duration="30d", access="read")
    share("lead", lead.id, "sedit", requester=olga, duration="30d", access="edit")
    share("opp", opp.id, "sedit", requester=olga, duration="30d", access="edit")
    share("lead", lead.id, "sexp", requester=olga, duration="1h", access="edit")
    share("lead", lead.id, "srev", requester=olga, duration="30d", access="edit")
    core.sharing.revoke("lead", lead.id, "srev", requester=olga, all_contexts=True)
    core.automations.process_pending()
    clock.advance(timedelta(hours=2))  # sexp's share ran out; nothing swept it
    for name, level in LEVELS.items():  # the fixture is what the matrix says it is
        assert core.access.level(name, ("lead", lead.id)) == level, name
        assert core.access.level(name, ("opportunity", opp.id)) == (
            level if name not in ("sexp", "srev") else NONE
        )
    return World(core, lead.id, opp.id, act.id, task.id, read.request_id, automation.id, visible.id)


def leaks(result: Any) -> bool:
    return CANARY in result.stdout or CANARY in result.stderr


def refused_like_missing(result: Any, what: str) -> None:
    assert result.exit_code == 1, result
    assert result.stderr.strip().endswith("you may read") and what in result.stderr, result


# -- reading one record ------------------------------------------------------------------------------


def test_a_record_and_its_parts_show_exactly_to_those_who_may_read_them(cli, world: World) -> None:
    lead, opp = str(world.lead), str(world.opp)
    for user in USERS:
        for command in (
            ["leads", "show", lead, "--json"],
            ["leads", "show", lead],
            ["opps", "show", opp, "--json"],
            ["history", "lead", lead, "--json"],
        ):
            result = cli(*command, user=user)
            opp_level = LEVELS[user] if user not in ("sexp", "srev") else NONE
            level = opp_level if command[0] == "opps" else LEVELS[user]
            if level >= READ or (command[0] == "history" and user in SEES_ALL):
                assert result.exit_code == 0, (user, command, result)
            else:
                refused_like_missing(result, "no ")
                assert not leaks(result), (user, command)
        # The same words for a record that does not exist.
        missing = cli("leads", "show", str(MISSING), user=user)
        refused_like_missing(missing, f"no lead {MISSING}")


def test_check_and_explain_self_for_everyone_others_for_admins_and_managers(cli, world: World) -> None:
    lead = str(world.lead)
    for user in USERS:
        mine = cli("explain", user, "lead", lead, "--json", user=user)
        if LEVELS[user] >= READ or user in SEES_ALL:
            assert mine.exit_code == 0, (user, mine)
        else:
            refused_like_missing(mine, f"no lead {lead}")
        other = cli("check", "olga", "lead", lead, user=user)
        if user in SEES_ALL:
            assert other.exit_code == 0, (user, other)
        elif user == "olga":
            assert other.exit_code == 0
        else:
            assert other.exit_code == 1 and "may not check or explain another user" in other.stderr, user
        assert not leaks(mine) and not leaks(other)


# -- lists ----------------------------------------------------------------------------------------------


def test_lists_and_search_show_the_record_only_to_its_readers(cli, world: World) -> None:
    for user in USERS:
        for command in (
            ["leads", "list", "--json"],
            ["leads", "list", "--search", CANARY[:8], "--json"],
            ["leads", "list", "--sort", "name"],
            ["opps", "list", "--json"],
            ["opps", "list", "--search", CANARY[:8], "--json"],
        ):
            result = cli(*command, user=user)
            assert result.exit_code == 0, (user, command, result)
            opp_level = LEVELS[user] if user not in ("sexp", "srev") else NONE
            level = opp_level if command[0] == "opps" else LEVELS[user]
            assert leaks(result) is (level >= READ), (user, command)


# -- share metadata ----------------------------------------------------------------------------------


def test_history_grants_and_requests_show_only_what_concerns_readable_records_or_own_grants(
    cli, world: World
) -> None:
    lead = world.lead
    for user in USERS:
        history = cli("history", "--all", "--json", user=user)
        assert history.exit_code == 0, (user, history)
        rows = history.json()["items"]
        about_lead = [r for r in rows if (r["entity"], r["entity_id"]) == ("lead", lead)]
        if LEVELS[user] >= READ or user in SEES_ALL:
            assert {r["user"] for r in about_lead} >= {"sread", "sedit", "sexp", "srev"}, user
        else:
            assert {r["user"] for r in about_lead} <= {user}, (user, about_lead)
        csv = cli("history", "--all", "--csv", user=user)
        assert csv.exit_code == 0 and not leaks(csv)

        grants = cli("shares", "--all", "--json", user=user).json()["items"]
        on_lead = {g["user"]: g["state"] for g in grants if (g["entity"], g["entity_id"]) == ("lead", lead)}
        if LEVELS[user] >= READ or user in SEES_ALL:
            assert on_lead == {"sread": "active", "sedit": "active", "sexp": "expired", "srev": "revoked"}
        else:
            assert set(on_lead) <= {user}, (user, on_lead)
        if user == "sexp":
            assert on_lead == {"sexp": "expired"}  # its own, and its state as it is now

        status = cli("status", str(world.request), "--json", user=user)
        batch = cli("api", "status", input=json.dumps([world.request]), user=user)
        may = LEVELS[user] >= READ or user in SEES_ALL or user == "sread"
        assert (status.exit_code == 0) is may, (user, status)
        assert (json.loads(batch.stdout)[0]["status"] != "unknown") is may, (user, batch.stdout)
        if not may:
            refused_like_missing(status, f"no request {world.request}")


def test_notifications_are_ones_own_and_never_about_records_one_may_not_read(cli, world: World) -> None:
    for user in USERS:
        mine = cli("notifications", "--json", user=user)
        assert mine.exit_code == 0
        assert leaks(mine) is (user in ("olga", "sread")), user  # gown and nobody were sent it too
        theirs = cli("notifications", "--user", "olga", "--json", user=user)
        if user in ("admin", "olga"):
            assert theirs.exit_code == 0 and leaks(theirs)
        else:
            assert theirs.exit_code == 1 and not leaks(theirs), user


def test_automation_runs_and_traces_are_for_admins_and_managers(cli, world: World) -> None:
    for user in USERS:
        for command in (
            ["automations", "runs", str(world.automation), "--json"],
            ["automations", "list", "--json"],
            ["automations", "show", str(world.automation), "--json"],
            ["automations", "test", str(world.automation), "--lead", str(world.lead), "--json"],
        ):
            result = cli(*command, user=user)
            if user in SEES_ALL:
                assert result.exit_code == 0, (user, command, result)
            else:
                assert result.exit_code == 1 and "may not read automations" in result.stderr, (user, command)
                assert not leaks(result)


# -- changes ----------------------------------------------------------------------------------------


def test_changes_to_the_record_follow_its_edit_access(cli, world: World) -> None:
    core = world.core
    lead = str(world.lead)
    for user in USERS:
        level = LEVELS[user]
        before = core.records.get(("lead", world.lead)).name
        attempts = {
            "update": cli("leads", "update", lead, "--name", before, "--json", user=user),
            "post": cli("activity", "post", "--lead", lead, "--type", "Meeting", "--note", "hi", user=user),
            "task": cli("task", "add", "--lead", lead, "--owner", "olga", "--subject", "x", user=user),
            "activity": cli("activity", "update", str(world.activity), "--note", "n", user=user),
        }
        for what, result in attempts.items():
            allowed = level == EDIT or (what == "activity" and user == "olga")
            if allowed:
                assert result.exit_code == 0, (user, what, result)
            elif level == READ:
                assert result.exit_code == 1 and "may not edit" in result.stderr, (user, what, result)
            else:
                refused_like_missing(result, "no ")
            assert not leaks(result) or level >= READ, (user, what)


def test_sharing_and_revoking_follow_the_matrix(cli, world: World) -> None:
    lead = str(world.lead)
    may_share = {"admin", "ruth", "olga"}
    for user in USERS:
        shared = cli("share", "lead", lead, "--with", "nobody", "--for", "1d", "--json", user=user)
        assert (shared.exit_code == 0) is (user in may_share), (user, shared)
        if shared.exit_code == 0:
            revoked = cli("revoke", "lead", lead, "--user", "nobody", "--json", user=user)
            assert revoked.exit_code == 0, (user, revoked)
        else:
            reason = shared.json()["reason"]
            assert (
                reason == f"no lead {lead} you may read"
                if LEVELS[user] == NONE
                else "may not share" in reason
            )
        assert not leaks(shared) or LEVELS[user] >= READ


def test_creating_records_follows_roles(cli, world: World) -> None:
    for user in USERS:
        for_self = cli("leads", "add", "--name", "Mine", "--owner", user, "--json", user=user)
        for_other = cli("leads", "add", "--name", "Theirs", "--owner", "nobody", "--json", user=user)
        if user in ("admin", "ruth"):
            assert for_self.exit_code == 0 and for_other.exit_code == 0, user
        elif user == "nadia":
            assert for_self.exit_code == 1 and for_other.exit_code == 1, user
        else:
            assert for_self.exit_code == 0, (user, for_self)
            assert for_other.exit_code == 1 or user == "nobody", (user, for_other)


def test_data_tools_users_groups_and_settings_are_for_admins(cli, world: World, tmp_path) -> None:
    """load, import, generate, backup and restore are the admins' (import the sales
    managers' too); membership is changed by admins and sales managers; users and
    settings are admins' to change."""
    leads = tmp_path / "leads.csv"
    leads.write_text("name,owner\nImported,nobody\n")
    backup = tmp_path / "copy.db"
    for user in USERS:
        results = {
            "import": cli("leads", "import", str(leads), "--json", user=user),
            "join": cli("users", "join", "nobody", "Team:view", user=user),
            "users add": cli("users", "add", f"new{user}", "--role", "sales", user=user),
            "settings": cli("settings", "owners_can_share", "true", user=user),
            "generate": cli(
                "generate", "--leads", "1", "--opportunities", "0", "--users", "1", "--grants", "0", user=user
            ),
        }
        if world.core.db.__class__.__name__ == "SqliteDatabase":
            results["backup"] = cli("backup", str(backup), "--force", user=user)
        allowed = {
            "import": {"admin", "ruth"},
            "join": {"admin", "ruth"},
            "users add": {"admin"},
            "settings": {"admin"},
            "generate": {"admin"},
            "backup": {"admin"},
        }
        for what, result in results.items():
            assert (result.exit_code == 0) is (user in allowed[what]), (user, what, result)
            if user not in allowed[what]:
                assert "may not" in result.stderr or "only" in result.stderr, (user, what, result.stderr)
        cli("users", "leave", "nobody", "Team", user="admin")  # undo an allowed join


# -- the TUI --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["gown", "sexp", "srev", "nobody"])
def test_the_tui_shows_no_canary_to_a_user_who_may_not_read_the_record(world: World, user: str) -> None:
    from sharetui.tui.app import make_app

    app = make_app(world.core, acting=user, poll_seconds=0)
    seen: list[str] = []

    async def main() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            for key in ("1", "2", "3", "4", "5", "6"):
                await pilot.press(key)
                for _ in range(10):
                    await app.workers.wait_for_complete()
                    await pilot.pause()
                seen.append(app.export_screenshot())
            session = app.session
            view = session.record(RecordRef(EntityType.LEAD, world.lead))
            seen.append(repr(view))

    asyncio.run(main())
    assert not any(CANARY in text for text in seen), user

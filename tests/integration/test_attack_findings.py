"""Findings of an attack on DESIGN §9 (and §7), one test each; every test here failed
when it was written, on the code as it stood (branch ``attack``).

The world: ``priya`` (sales) owns a lead whose name, email, company and custom field
carry :data:`CANARY`; ``jamal`` (sales, in no group with priya) owns an opportunity on
that lead (as in the sample data, where jamal owns O004 on priya's L011): he may read
and edit the opportunity, never the lead. ``kenji`` (sales) has nothing to do with
either. Whoever may not read the lead must never see the canary.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from sharetui.core.service import Core
from sharetui.domain.roles import Access, EntityType

CANARY = "Zaunkoenig9c1e"


@dataclass
class World:
    core: Core
    admin: Any
    lead: int  # priya's; carries the canary
    opp: int  # jamal's, on priya's lead
    kenji_lead: int


@pytest.fixture
def world(core: Core) -> World:
    u = core.users
    admin = u.add("admin", role="admin", actor=None)
    u.add("ruth", role="sales_manager", actor=admin)
    u.add("nadia", role="marketing", actor=admin)
    u.add("priya", role="sales", groups={"Pre-Sales": "manage"}, actor=admin)
    u.add("jamal", role="sales", groups={"Personal Loans": "modify"}, actor=admin)
    u.add("marta", role="sales", groups={"Personal Loans": "manage"}, actor=admin)
    u.add("kenji", role="sales", groups={"Pre-Sales": "own"}, actor=admin)
    r = core.records
    r.add_activity_type("Meeting Scheduled", actor=admin)
    r.add_activity_type("Call", entity="opportunity", captures_owner=False, actor=admin)
    lead = r.add_lead(
        name=f"{CANARY} Byrne",
        email=f"{CANARY.lower()}@example.test",
        company=f"{CANARY} Logistics",
        owner="priya",
        fields={"requested_amount": 520000, "note": CANARY},
        actor=admin,
    )
    opp = r.add_opportunity(
        lead=lead.id, name="Renovation loan", type="Personal Loan", owner="jamal", amount=20000, actor=admin
    )
    kenji_lead = r.add_lead(name="Kenji's own lead", owner="kenji", actor=admin)
    core.automations.process_pending()
    for user in ("jamal", "kenji", "marta"):  # the world is what the docstring says
        assert core.access.level(user, ("lead", lead.id)) is Access.NONE, user
    assert core.access.level("jamal", ("opportunity", opp.id)) is Access.EDIT
    return World(core, admin, lead.id, opp.id, kenji_lead.id)


def add_automation(core: Core, admin: Any, toml: str) -> int:
    return core.automations.add(core.automations.parse(toml), actor=admin).id


def leaks(result: Any) -> bool:
    return CANARY in result.stdout or CANARY in result.stderr or CANARY.lower() in result.stdout


# -- F1: a run's trace, printed with the change that fired it, carries the lead's fields -----------------


def test_a_change_to_an_opportunity_never_shows_its_unreadable_lead_through_the_run_trace(cli, world) -> None:
    """DESIGN §9: a user who may not read a record learns nothing of it, through any path
    (automations included). jamal may edit his opportunity but not its lead; an admin's
    automation on opportunity changes (its condition does not even hold) must not hand
    him the lead's name, owner and custom fields in the trace printed with his change."""
    add_automation(
        world.core,
        world.admin,
        """
name = "Big opportunity changes"
status = "published"
[trigger]
type = "opportunity_update"
[[conditions]]
field = "opportunity.amount"
op = ">="
value = 1000000
[[actions]]
type = "notify"
to = "admin"
message = "{opportunity.name} changed"
""",
    )
    assert cli("leads", "show", str(world.lead), user="jamal").exit_code == 1  # he may not read it

    for command in (
        ["opps", "update", str(world.opp), "--stage", "evaluation", "--json"],
        ["opps", "update", str(world.opp), "--stage", "proposal"],
    ):
        result = cli(*command, user="jamal")
        assert result.exit_code == 0, result
        assert not leaks(result), result.stdout


def test_task_and_activity_on_an_opportunity_never_show_its_unreadable_lead(cli, world) -> None:
    """The same leak through the other opportunity triggers a sales user fires himself."""
    for trigger in ("task_created_on_opportunity", "new_activity_on_opportunity"):
        add_automation(
            world.core,
            world.admin,
            f"""
name = "Watch {trigger}"
status = "published"
[trigger]
type = "{trigger}"
[[conditions]]
field = "lead.stage"
op = "="
value = "never"
[[actions]]
type = "notify"
to = "admin"
message = "x"
""",
        )
    opp = str(world.opp)
    task = cli(
        "task", "add", "--opp", opp, "--owner", "jamal", "--subject", "call back", "--json", user="jamal"
    )
    post = cli("activity", "post", "--opp", opp, "--type", "Call", "--json", user="jamal")
    for result in (task, post):
        assert result.exit_code == 0, result
        assert not leaks(result), result.stdout


# -- F2: a notification about an opportunity renders its unreadable lead's fields --------------------


def test_a_notification_about_an_opportunity_never_carries_its_unreadable_lead(cli, world) -> None:
    """DESIGN §9: notifications never tell a user about a record they may not read. The
    sample data's "Personal Loan opportunities to the team lead" automation, with a
    message naming the customer ({lead.name}): marta may read (edit) the opportunity it
    shares with her, not the lead, yet her notification spells out the lead."""
    add_automation(
        world.core,
        world.admin,
        """
name = "Personal Loan opportunities to the team lead"
status = "published"
[trigger]
type = "new_opportunity"
[[conditions]]
field = "opportunity.type"
op = "="
value = "Personal Loan"
[[actions]]
type = "share_opportunity"
share_with = "marta"
duration = "30d"
access = "edit"
on_behalf_of = "automation"
[[actions]]
type = "notify"
to = "marta"
message = "New Personal Loan for {lead.name} ({lead.email}): {opportunity.name}"
""",
    )
    made = cli(
        "opps", "add", "--lead", str(world.lead), "--name", "Car loan", "--type", "Personal Loan",
        "--owner", "priya", "--json", user="priya",
    )  # fmt: skip
    assert made.exit_code == 0, made
    opp = made.json()["id"]
    assert cli("opps", "show", str(opp), user="marta").exit_code == 0  # the share reached her
    assert cli("leads", "show", str(world.lead), user="marta").exit_code == 1  # the lead did not

    mine = cli("notifications", "--json", user="marta")
    assert mine.exit_code == 0, mine
    assert mine.json()["items"], "marta was notified"
    assert not leaks(mine), mine.stdout


# -- F3: run reports go to whoever processes them, whatever they may read ------------------------------


POST_NOTE = f"merger talk {CANARY}"

TELL_ADMIN = """
name = "Tell the admin about meetings"
status = "published"
[trigger]
type = "new_activity_on_lead"
[[actions]]
type = "notify"
to = "admin"
message = "meeting on {lead.name}: {activity.note}"
"""


def test_runs_of_someone_elses_change_are_never_reported_to_the_next_user(cli, world) -> None:
    """Embedded mode processes waiting events after every command. A change made through
    the Python API (DESIGN: shares are made by hand "… CLI, Python API …") leaves its
    events waiting; the next command, run by kenji, processes them and prints each
    run's summary on stderr ("note: automation … notified admin: meeting on <lead
    name>: <note>") — a record kenji may not read, and runs he may not see (§9)."""
    core = world.core
    add_automation(core, world.admin, TELL_ADMIN)
    core.records.post_activity(
        ("lead", world.lead), type="Meeting Scheduled", owner="priya", note=POST_NOTE, actor=world.admin
    )  # the Python API: nothing processes its events yet

    result = cli("leads", "list", "--json", user="kenji")
    assert result.exit_code == 0, result
    assert not leaks(result), result.stderr


def test_a_sales_users_worker_pass_never_reports_runs_on_records_they_may_not_read(cli, world) -> None:
    """``sharetui worker --once`` run by a sales user (personal mode: anyone may run it)
    prints every run it did: its summaries (``runs_detail``, or the log lines) name
    records he may not read, what was shared with whom and the notified text."""
    core = world.core
    add_automation(core, world.admin, TELL_ADMIN)
    core.records.post_activity(
        ("lead", world.lead), type="Meeting Scheduled", owner="priya", note=POST_NOTE, actor=world.admin
    )
    result = cli("worker", "--once", "--json", user="kenji")
    assert result.exit_code == 0, result
    assert not leaks(result), result.stdout


# -- F4: runs and traces reach sales users with the change that fired them -------------------------


def test_sales_users_get_no_automation_runs_or_traces_with_their_changes(cli, world) -> None:
    """DESIGN §9: automation runs and traces are for admins (all) and sales managers
    (read); marketing and sales see none (``automations runs`` refuses kenji). Yet every
    change kenji makes prints the runs it fired with their whole trace under
    ``automation_runs`` (the automation's name, its conditions with the values
    compared, each action's outcome) — here an admin's secret threshold."""
    add_automation(
        world.core,
        world.admin,
        """
name = "Escalate big asks"
status = "published"
[trigger]
type = "lead_update"
[[conditions]]
field = "lead.fields.requested_amount"
op = ">="
value = 7777777
[[actions]]
type = "notify"
to = "admin"
message = "big ask on {lead.name}"
""",
    )
    refused = cli("automations", "runs", "Escalate big asks", "--json", user="kenji")
    assert refused.exit_code == 1 and "may not read automations" in refused.stderr

    result = cli(
        "leads", "update", str(world.kenji_lead), "--field", "requested_amount=5", "--json", user="kenji"
    )
    assert result.exit_code == 0, result
    runs = result.json().get("automation_runs") or []
    assert all("trace" not in run for run in runs), runs
    assert "7777777" not in result.stdout and "Escalate big asks" not in result.stdout


# -- F5: the worker's log lines carry terminal control sequences from data -------------------------


def test_the_worker_log_never_carries_terminal_control_sequences_from_data(world, db_url, clock) -> None:
    """DESIGN §9: output never carries terminal control sequences from data. ``sharetui
    worker`` logs each run's summary with ``log.info("%s", line)``, unfiltered: a lead
    named with an OSC/CSI sequence, put into a notify message by ``{lead.name}``,
    retitles and repaints the terminal of whoever watches the worker."""
    core = world.core
    add_automation(
        core,
        world.admin,
        """
name = "Lead renamed"
status = "published"
[trigger]
type = "lead_update"
[[actions]]
type = "notify"
to = "admin"
message = "renamed: {lead.name}"
""",
    )
    evil = "Kenji \x1b]0;owned\x07\x1b[2J\x1b[31mRED"
    core.records.update_record(
        ("lead", world.kenji_lead), actor=core.users.get("kenji"), values={"name": evil}
    )
    env = {
        **os.environ,
        "SHARETUI_DATABASE_URL": db_url,
        "SHARETUI_NOW": clock.now().isoformat().replace("+00:00", "Z"),
        "SHARETUI_USER": "admin",  # who may read runs: the run is logged, and inert
    }
    done = subprocess.run(
        [sys.executable, "-m", "sharetui", "worker", "--once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "renamed: Kenji" in done.stderr  # the run was logged …
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr, repr(done.stderr)  # … and is inert


# -- F6: a list's next_cursor spells out the record a plugin check hid ------------------------------


class _ClosedForShares:
    """Like the business-hours example plugin, after hours: access that comes only from
    a share is denied."""

    PLUGIN_NAME = "closed-for-shares"

    from sharetui.sdk.markers import hookimpl as _hookimpl

    @_hookimpl
    def sharetui_check_access(self, user, record, action, decision):
        from sharetui.sdk import deny

        if decision.only_via_share(Access.parse(action)):
            return deny("shares are closed")
        return None


class _NoShares:
    """A rule set (``sharetui_access_level``): the built-in rules without shares."""

    PLUGIN_NAME = "no-shares-rules"

    from sharetui.sdk.markers import hookimpl as _hookimpl

    @_hookimpl
    def sharetui_access_level(self, user_id, record, now):
        from sharetui.default_plugins.access import sharetui_access_level as builtin
        from sharetui.sdk.types import AccessDecision

        d = builtin(user_id, record, now)
        sources = {k: v for k, v in d.sources.items() if k != "share"}
        return AccessDecision(max(sources.values(), default=Access.NONE), sources, now, d.user)


def _cursor_text(cursor: str | None) -> str:
    if not cursor:
        return ""
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def test_a_next_cursor_never_names_a_record_a_plugin_check_hides(world) -> None:
    """DESIGN §9: lists follow the plugin checks, and a record one may not read cannot be
    told from one that does not exist. With a check that denies share-only access,
    kenji's read share on priya's lead gives him nothing; the lead is left off his page,
    but the page's ``next_cursor`` (sorted by name) is cut after it: base64 of
    ``["<the lead's name>", id]``."""
    from sharetui.testing import plugin_registered

    core = world.core
    core.records.add_lead(name="Aardvark (kenji)", owner="kenji", actor=world.admin)
    core.records.update_record(("lead", world.kenji_lead), actor=world.admin, values={"name": "Zz kenji"})
    core.sharing.share("lead", world.lead, "kenji", requester=core.users.get("priya"), duration="7d")
    with plugin_registered(core, _ClosedForShares()):
        assert not core.access.can("kenji", ("lead", world.lead), "read")
        page = core.access.visible("kenji", EntityType.LEAD, sort="name", limit=2)
        names = [r.values["name"] for r in page.rows]
        assert all(CANARY not in n for n in names), names
        assert CANARY not in _cursor_text(page.next_cursor), _cursor_text(page.next_cursor)


def test_a_rule_set_list_cursor_never_names_records_the_user_may_not_read(world) -> None:
    """Under a plugin rule set a page scans at most 20 pages' worth of records and then
    returns what it kept with a cursor to go on from: the cursor after the last record it
    *scanned*, readable or not. ``leads list --sort name --limit 1``, page after page,
    hands kenji the name of every 20th lead of the company."""
    from sharetui.testing import plugin_registered

    core = world.core
    for i in range(30):
        core.records.add_lead(name=f"A{i:02d} {CANARY} secret", owner="priya", actor=world.admin)
    with plugin_registered(core, _NoShares()):
        page = core.access.visible("kenji", EntityType.LEAD, sort="name", limit=1)
        assert all(CANARY not in r.values["name"] for r in page.rows)
        assert CANARY not in _cursor_text(page.next_cursor), _cursor_text(page.next_cursor)


# -- F7: an edit-only user hands an opportunity to whoever they name, through a task reminder --------

REMINDER_SHARE = """
name = "Task owner can read the opportunity"
status = "published"
[trigger]
type = "task_reminder_for_opportunity"
[[actions]]
type = "share_opportunity"
share_with = "owner_in_trigger"
duration = "2d"
access = "read"
"""


def test_an_edit_only_user_cannot_hand_an_opportunity_to_a_task_owner_they_name(cli, world) -> None:
    """DESIGN §9: sharing is the owner's (and admins' and managers'); an automation's share
    acts for the person whose change fired it, so that — in the sample data's words — "a
    group colleague who may edit the lead cannot hand it to whoever they name". marta
    (Personal Loans, ``manage``) may edit jamal's opportunity but not share it (refused
    below). She adds a task on it owned by kenji with a reminder already due; the
    sample automation "Task owner can read the opportunity" then shares it with kenji
    "as the automation" because a reminder counts as no one's change, although marta
    chose both the owner and the moment."""
    add_automation(world.core, world.admin, REMINDER_SHARE)
    opp = str(world.opp)
    refused = cli("share", "opp", opp, "--with", "kenji", "--json", user="marta")
    assert refused.exit_code == 1 and "may not share" in refused.json()["reason"]
    assert cli("opps", "show", opp, user="kenji").exit_code == 1

    added = cli(
        "task", "add", "--opp", opp, "--owner", "kenji", "--subject", "look at this",
        "--due", "+1h", "--reminder", "-1m", user="marta",
    )  # fmt: skip
    assert added.exit_code == 0, added
    assert cli("worker", "--once", user="admin").exit_code == 0  # whoever runs the worker

    assert cli("opps", "show", opp, user="kenji").exit_code == 1, "marta handed kenji the opportunity"


# -- F8: marketing changes the activities and tasks it owns ------------------------------------------


def test_marketing_only_reads_activities_and_tasks_even_those_it_owns(cli, world) -> None:
    """DESIGN §9, "activities and tasks": marketing **read**. An activity or a task may be
    owned by anyone (``--owner nadia``); owning one lets nadia complete the task and
    rewrite and complete the activity, although she may not post one."""
    core = world.core
    lead, opp = str(world.lead), str(world.opp)
    act = cli("activity", "post", "--lead", lead, "--type", "Meeting Scheduled", "--owner", "nadia", "--json")
    task = cli("task", "add", "--opp", opp, "--owner", "nadia", "--subject", "brochure", "--json")
    assert act.exit_code == 0 and task.exit_code == 0, (act, task)
    refused = cli("activity", "post", "--lead", lead, "--type", "Meeting Scheduled", user="nadia")
    assert refused.exit_code == 1 and "may not edit" in refused.stderr  # she only reads

    note = cli("activity", "update", str(act.json()["id"]), "--note", "rewritten by marketing", user="nadia")
    done = cli("task", "complete", str(task.json()["id"]), user="nadia")
    assert note.exit_code == 1, note.stdout
    assert done.exit_code == 1, done.stdout
    assert core.records.activity(act.json()["id"]).note == ""
    assert core.records.task(task.json()["id"]).completed_at is None


# -- F9: a TUI session keeps the role (and the active flag) its user had when it started -----------


def test_a_tui_session_follows_a_role_change_made_meanwhile(world) -> None:
    """DESIGN §1, §9: a deactivated user has no access; what one sees follows one's role.
    The TUI's session loads its acting user once: after an admin moves ruth from sales
    manager to sales (or deactivates her) in another process, ruth's open TUI still
    answers with a manager's capabilities — all share history (of a lead she may no
    longer read), the automations and their runs — because the gate reads the role and
    the active flag off the session's stale ``User``, while record checks ask the database."""
    from sharetui.core.history import HistoryFilter
    from sharetui.tui.session import Session

    core = world.core
    core.sharing.share("lead", world.lead, "kenji", requester=core.users.get("priya"), duration="7d")
    session = Session(core, "ruth")
    assert any(h.entity_id == world.lead for h in session.history(HistoryFilter()))  # a manager: yes

    core.users.set_role("ruth", "sales", actor=world.admin)  # another process, meanwhile
    assert not core.access.can("ruth", ("lead", world.lead), "read")
    rows = session.history(HistoryFilter())
    assert not any(h.entity_id == world.lead and h.entity == "lead" for h in rows), rows

    core.users.deactivate("ruth", actor=world.admin)
    from sharetui.core.access.gate import Capability

    assert not session.may(Capability.READ_AUTOMATIONS)


def test_a_deactivated_admins_open_tui_can_no_longer_publish_automations(world) -> None:
    """The same stale session, worse: an admin deactivated meanwhile keeps writing and
    publishing automations from the TUI that was open (``_require_admin`` reads the
    session's ``User``), e.g. one that shares every new lead with an accomplice as the
    automation."""
    from sharetui.errors import SharetuiError
    from sharetui.tui.session import Session

    core = world.core
    core.users.add("asha", role="admin", actor=world.admin)
    session = Session(core, "asha")
    core.users.deactivate("asha", actor=world.admin)  # another process, meanwhile

    with pytest.raises(SharetuiError):
        session.save_automation(
            None,
            """
name = "Everything to kenji"
status = "published"
[trigger]
type = "new_lead"
[[actions]]
type = "share_lead"
share_with = "kenji"
duration = "1y"
access = "edit"
on_behalf_of = "automation"
""",
        )

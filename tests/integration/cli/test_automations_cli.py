"""``sharetui automations …``, ``activity post`` with automations, and ``worker --once``
(DESIGN .4, .7): exit 0 on success, 1 when refused, 2 for bad input, nothing changed
on an error. The company comes from the ``bank`` fixture; every command runs at the
frozen test clock unless ``SHARETUI_NOW`` says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sharetui.db.models import (
    Automation,
    AutomationRun,
    Grant,
    HistoryEvent,
    Notification,
    OutboxEvent,
    ShareRequest,
    Task,
)

if TYPE_CHECKING:
    from conftest import CliResult

MEETING_SHARE = """\
name = "Meeting owner gets the lead"
description = "Whoever takes a meeting may edit the lead for two weeks"
status = "{status}"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Meeting Scheduled"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "14d"
access = "edit"
"""

SCHEDULE = """\
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


def ok(result: CliResult) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.json()


def one_line_error(result: CliResult, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    line = result.stderr.rstrip("\n")
    assert line.startswith("error: ") and "\n" not in line, result.stderr
    return line


def write(tmp_path: Path, text: str, name: str = "auto.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def counts() -> dict[str, int]:
    return {
        "automations": Automation.select().count(),
        "grants": Grant.select().count(),
        "share_requests": ShareRequest.select().count(),
        "history": HistoryEvent.select().count(),
        "automation_runs": AutomationRun.select().count(),
        "notifications": Notification.select().count(),
    }


# -- add ------------------------------------------------------------------------------------


def test_add_validates_and_saves_the_file(cli, bank, tmp_path) -> None:
    path = write(tmp_path, MEETING_SHARE.format(status="draft"))
    data = ok(cli("automations", "add", path, "--json"))
    assert data["name"] == "Meeting owner gets the lead"
    assert data["status"] == "draft" and data["created_by"] == "admin"
    assert data["trigger"] == {"type": "new_activity_on_lead", "activity_types": ["Meeting Scheduled"]}
    assert data["actions"][0]["share_with"] == "owner_in_trigger"
    human = cli("automations", "add", write(tmp_path, SCHEDULE, "s.toml"))
    assert human.exit_code == 0 and "added automation" in human.stdout and "Weekday digest" in human.stdout
    again = cli("automations", "add", path)
    assert "already exists" in one_line_error(again, 2)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'type = "new_activity_on_lead"',
            'type = "new_meeting"',
            ":6: trigger.type: unknown trigger 'new_meeting'",
        ),
        ('access = "edit"', 'access = "edit"\nacces = "read"', ":14: actions[0].acces: unknown"),
        ('access = "edit"', 'access = "owner"', ":13: actions[0].access:"),
        ('status = "{status}"', 'status = "live"', ":3: status: 'live' is not one of"),
        (
            'activity_types = ["Meeting Scheduled"]',
            'activity_types = "Meeting"',
            ":7: trigger.activity_types",
        ),
    ],
)
def test_add_with_a_bad_file_exits_2_naming_the_key_and_line(cli, bank, tmp_path, old, new, expected) -> None:
    path = write(tmp_path, MEETING_SHARE.replace(old, new).format(status="published"))
    before = counts()
    line = one_line_error(cli("automations", "add", path, "--json"), 2)
    assert f"{path}{expected}" in line
    assert counts() == before


def test_add_refuses_a_bad_cron_and_a_missing_file(cli, bank, tmp_path) -> None:
    path = write(tmp_path, SCHEDULE.replace("0 9 * * 1-5", "0 0 31 2 *"))
    line = one_line_error(cli("automations", "add", path), 2)
    assert f"{path}:6: trigger.cron:" in line and "can never fire" in line
    line = one_line_error(cli("automations", "add", tmp_path / "nope.toml"), 2)
    assert "cannot read" in line and "nope.toml" in line
    assert Automation.select().count() == 0


def test_a_sales_user_may_not_add_publish_or_pause(cli, bank, tmp_path) -> None:
    path = write(tmp_path, MEETING_SHARE.format(status="draft"))
    line = one_line_error(cli("automations", "add", path, "--json", user="daniel"), 1)
    assert "only an admin" in line
    assert Automation.select().count() == 0
    ident = ok(cli("automations", "add", path, "--json"))["id"]
    assert "only an admin" in one_line_error(cli("automations", "publish", ident, user="sofia"), 1)
    assert "only an admin" in one_line_error(cli("automations", "pause", ident, user="ruth"), 1)
    assert ok(cli("automations", "show", ident, "--json"))["status"] == "draft"


# -- list, show, publish, pause, runs -------------------------------------------------------


def test_list_show_publish_pause_and_runs(cli, bank, tmp_path) -> None:
    meeting = ok(cli("automations", "add", write(tmp_path, MEETING_SHARE.format(status="draft")), "--json"))
    digest = ok(cli("automations", "add", write(tmp_path, SCHEDULE, "s.toml"), "--json"))

    items = ok(cli("automations", "list", "--json"))["items"]
    assert [(a["id"], a["status"], a["last_run"]) for a in items] == [
        (meeting["id"], "draft", None),
        (digest["id"], "published", None),
    ]
    assert items[1]["schedule"]["description"] == "At 09:00 AM, Monday through Friday (Europe/Berlin)"

    shown = ok(cli("automations", "show", digest["id"], "--json"))
    # Monday 2 March 2026 09:00 UTC is 10:00 in Berlin: next is Tuesday 09:00 Berlin.
    assert shown["schedule"] == {
        "description": "At 09:00 AM, Monday through Friday (Europe/Berlin)",
        "next": "2026-03-03T08:00:00Z",
        "misfire": "latest_once",
    }
    by_name = ok(cli("automations", "show", "Meeting owner gets the lead", "--json"))
    assert by_name["id"] == meeting["id"] and "schedule" not in by_name
    human = cli("automations", "show", digest["id"])
    assert human.exit_code == 0 and "Monday through Friday" in human.stdout
    assert "does not exist" in one_line_error(cli("automations", "show", "999"), 2)

    # A draft does not run; published it does; paused it stops.
    post = ["activity", "post", "--lead", bank.lead.id, "--type", "Meeting Scheduled", "--json"]
    ok(cli(*post, "--owner", "sofia"))
    assert ok(cli("automations", "runs", meeting["id"], "--json"))["items"] == []
    assert ok(cli("automations", "publish", meeting["id"], "--json"))["status"] == "published"
    ok(cli(*post, "--owner", "tomas"))
    assert ok(cli("automations", "pause", meeting["id"], "--json"))["status"] == "paused"
    ok(cli(*post, "--owner", "leila"))

    runs = ok(cli("automations", "runs", meeting["id"], "--json"))["items"]
    assert len(runs) == 1
    (run,) = runs
    assert run["status"] == "succeeded" and run["record"] == f"lead {bank.lead.id}"
    assert run["trigger"] == "new_activity_on_lead"
    assert run["trace"]["trigger"]["data"]["activity"]["owner"] == "tomas"
    assert run["trace"]["actions"][0]["type"] == "share_lead"
    assert run["started_at"] == "2026-03-02T09:00:00Z"
    listed = ok(cli("automations", "list", "--json"))["items"][0]
    assert listed["status"] == "paused" and listed["last_run"]["id"] == run["id"]
    table = cli("automations", "runs", meeting["id"])
    assert table.exit_code == 0 and "share_lead" in table.stdout
    assert [g.user.username for g in Grant.select()] == ["tomas"]


# -- dry run -----------------------------------------------------------------------------------


def test_test_is_a_dry_run_that_changes_nothing(cli, bank, tmp_path) -> None:
    ident = ok(
        cli("automations", "add", write(tmp_path, MEETING_SHARE.format(status="published")), "--json")
    )["id"]
    before = counts()
    outbox = OutboxEvent.select().count()
    report = ok(cli("automations", "test", ident, "--lead", bank.lead.id, "--json"))
    assert report["status"] == "succeeded" and report["id"] is None
    assert report["trace"]["dry_run"] is True
    (step,) = report["trace"]["actions"]
    assert step["message"].startswith(f"would share lead {bank.lead.id} with daniel (edit, 14d")
    human = cli("automations", "test", ident, "--lead", bank.lead.id)
    assert human.exit_code == 0 and "nothing was changed" in human.stdout
    assert counts() == before
    assert OutboxEvent.select().count() == outbox
    line = one_line_error(cli("automations", "test", ident, "--lead", bank.lead.id, "--opp", 1), 2)
    assert "exactly one of --lead" in line
    assert "no lead 999 you may read" in one_line_error(cli("automations", "test", ident, "--lead", 999), 1)


# -- activity post shows the runs it triggered -------------------------------------------------


def test_activity_post_prints_the_automation_runs_it_triggered(cli, bank, tmp_path) -> None:
    ok(cli("automations", "add", write(tmp_path, MEETING_SHARE.format(status="published")), "--json"))
    data = ok(
        cli(
            "activity",
            "post",
            "--lead",
            bank.lead.id,
            "--type",
            "Meeting Scheduled",
            "--owner",
            "sofia",
            "--json",
        )
    )
    (run,) = data["automation_runs"]  # an admin may read runs (DESIGN §9)
    assert run["automation"] == "Meeting owner gets the lead"
    assert run["status"] == "succeeded" and run["record"] == f"lead {bank.lead.id}"
    assert f"context activity {data['id']}" in run["trace"]["actions"][0]["message"]
    assert AutomationRun.get_by_id(run["id"]).event_id is not None
    grant = Grant.get(Grant.context_activity_id == data["id"])
    assert (grant.user.username, grant.access, grant.source) == ("sofia", 2, "automation")

    human = cli(
        "activity",
        "post",
        "--lead",
        bank.lead.id,
        "--type",
        "Meeting Scheduled",
        "--owner",
        "tomas",
    )
    assert human.exit_code == 0
    assert "automation 'Meeting owner gets the lead' succeeded: shared lead" in human.stdout
    # Nothing is triggered: the list is there, and empty.
    quiet = ok(
        cli("activity", "post", "--lead", bank.lead.id, "--type", "Email Sent", "--json", user="priya")
    )
    assert quiet["automation_runs"] == []


# -- the worker ---------------------------------------------------------------------------------


def test_worker_once_does_reminders_schedules_events_and_expiry(cli, bank, tmp_path, clock) -> None:
    ok(cli("automations", "add", write(tmp_path, SCHEDULE, "s.toml"), "--json"))
    reminder = """\
name = "Task owner reads the opportunity"
status = "published"

[trigger]
type = "task_reminder_for_opportunity"

[[actions]]
type = "share_opportunity"
share_with = "owner_in_trigger"
duration = "2d"
"""
    ok(cli("automations", "add", write(tmp_path, reminder, "r.toml"), "--json"))
    opp = ok(
        cli(
            "opps",
            "add",
            "--lead",
            bank.lead.id,
            "--name",
            "Home loan",
            "--type",
            "Home Loan",
            "--owner",
            "priya",
            "--json",
        )
    )["id"]
    ok(
        cli(
            "task",
            "add",
            "--opp",
            opp,
            "--owner",
            "daniel",
            "--subject",
            "Payslips",
            "--due",
            "+1d",
            "--reminder",
            "+2h",
            "--json",
        )
    )
    short = ok(cli("share", "lead", bank.lead.id, "--with", "sofia", "--for", "1h", "--json"))
    assert short["status"] == "completed"

    # Nothing due yet at the test clock.
    idle = ok(cli("worker", "--once", "--json"))
    assert (idle["reminders"], idle["schedules"], idle["expired"], idle["lease"]) == (0, 0, 0, True)

    # Tuesday 3 March 2026, 08:00 UTC = 09:00 Berlin: the schedule fires, the
    # reminder (due 11:00 Monday) is late but sent once, the 1h share has expired.
    later = "2026-03-03T08:00:00Z"
    data = ok(cli("worker", "--once", "--json", env={"SHARETUI_NOW": later}))
    assert data["reminders"] == 1
    assert data["schedules"] == 1
    assert data["expired"] == 1
    assert data["runs"] == 1 + 1  # the reminder's share, the schedule on the one lead
    assert data["events"] >= 2
    assert any("shared opp" in line and "daniel" in line for line in data["runs_detail"])
    assert any("notified priya: Still open: Mira Demir" in line for line in data["runs_detail"])
    # What the sweep wrote after the pass waits for the next one; nothing an automation reacts to.
    left = [e.topic for e in OutboxEvent.select().where(OutboxEvent.processed_at.is_null())]
    assert left == ["share.expired"]
    assert Task.get().reminded_at is not None
    expired = Grant.get(Grant.request_id == short["request_id"])
    assert expired.state == "expired"
    daniel = Grant.get(Grant.entity_type == "opportunity")
    assert (daniel.user.username, daniel.state) == ("daniel", "active")
    assert Notification.get().message == "Still open: Mira Demir"

    # Run again at the same time: nothing is done twice.
    again = ok(cli("worker", "--once", "--json", env={"SHARETUI_NOW": later}))
    assert (again["reminders"], again["schedules"], again["expired"], again["runs"]) == (0, 0, 0, 0)
    human = cli("worker", "--once", env={"SHARETUI_NOW": later})
    assert human.exit_code == 0 and "events 0, runs 0" in human.stdout


def test_worker_once_uses_the_clock_from_sharetui_now(cli, bank, tmp_path, clock) -> None:
    """The test clock stands still; only SHARETUI_NOW moves the worker's time."""
    ok(cli("share", "lead", bank.lead.id, "--with", "sofia", "--for", "2h", "--json"))
    at = (clock.now() + timedelta(hours=1, minutes=59)).isoformat().replace("+00:00", "Z")
    assert ok(cli("worker", "--once", "--json", env={"SHARETUI_NOW": at}))["expired"] == 0
    at = datetime(2026, 3, 2, 11, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    assert ok(cli("worker", "--once", "--json", env={"SHARETUI_NOW": at}))["expired"] == 1


def test_a_run_names_its_record_the_same_way_everywhere(cli, bank, tmp_path) -> None:
    toml = """\
name = "New opportunities to daniel"
status = "published"

[trigger]
type = "new_opportunity"

[[actions]]
type = "share_opportunity"
share_with = "daniel"
"""
    ident = ok(cli("automations", "add", write(tmp_path, toml), "--json"))["id"]
    made = ok(
        cli(
            "opps",
            "add",
            "--lead",
            bank.lead.id,
            "--name",
            "Card",
            "--type",
            "Credit Card",
            "--owner",
            "priya",
            "--json",
        )
    )
    (run,) = made["automation_runs"]
    (listed,) = ok(cli("automations", "runs", ident, "--json"))["items"]
    assert listed["id"] == run["id"]
    assert run["record"] == listed["record"]


# -- an automation acts for the person whose change fired it (DESIGN §9) ------------------------


def test_the_meeting_automation_cannot_pass_a_lead_down_a_chain(cli, tmp_path) -> None:
    """The tester's chain on the sample bank: tomas may edit priya's lead 1 (Pre-Sales,
    modify) but not share it, so booking a meeting for jamal must not give jamal the
    lead; and jamal, once priya shares it with him, cannot pass it on to elena the same
    way. Each refusal names the person, and history names both them and the automation."""
    from conftest import SAMPLE_DATA

    ok(cli("load", SAMPLE_DATA, "--json"))
    post = ["activity", "post", "--lead", 1, "--type", "Meeting Scheduled", "--json"]

    by_tomas = ok(cli(*post, "--owner", "jamal", user="tomas"))
    # tomas may not read runs (DESIGN §9): he learns that one ran, not what it did.
    assert (by_tomas["automation_runs"], by_tomas["automation_runs_not_shown"]) == ([], 1)
    (run,) = ok(cli("automations", "runs", "Meeting owner gets the lead", "--json"))["items"]
    assert run["status"] == "failed" and "tomas may not share lead 1" in run["reason"]
    assert run["trace"]["acting_for"] == "tomas"
    assert cli("check", "jamal", "lead", 1, "--json").exit_code == 1

    assert (
        ok(cli("share", "lead", 1, "--with", "jamal", "--access", "edit", "--json", user="priya"))["status"]
        == "completed"
    )
    ok(cli(*post, "--owner", "elena", user="jamal"))
    run = ok(cli("automations", "runs", "Meeting owner gets the lead", "--json"))["items"][0]
    assert run["status"] == "failed" and "jamal may not share lead 1" in run["reason"]
    assert cli("check", "elena", "lead", 1, "--json").exit_code == 1

    rows = ok(cli("history", "lead", 1, "--source", "automation", "--json"))["items"]
    assert [(r["requester"], r["user"], r["status"], r["automation"]) for r in rows] == [
        ("tomas", "jamal", "failed", "Meeting owner gets the lead"),
        ("jamal", "elena", "failed", "Meeting owner gets the lead"),
    ]
    human = cli("history", "lead", 1, "--source", "automation", env={"COLUMNS": "250"})
    assert human.exit_code == 0
    assert "jamal via automation 'Meeting owner gets the lead'" in human.stdout
    assert "tomas via automation 'Meeting owner gets the lead'" in human.stdout

    runs = ok(cli("automations", "runs", "Meeting owner gets the lead", "--json"))["items"]
    assert [r["trace"]["acting_for"] for r in runs] == ["jamal", "tomas"]


def test_the_dry_run_says_whom_it_acts_for(cli, bank, tmp_path) -> None:
    ident = ok(
        cli("automations", "add", write(tmp_path, MEETING_SHARE.format(status="published")), "--json")
    )["id"]
    as_ruth = ok(cli("automations", "test", ident, "--lead", bank.lead.id, "--json", user="ruth"))
    assert as_ruth["trace"]["acting_for"] == "ruth" and as_ruth["status"] == "succeeded"
    # A dry run shows a trace: sales users may not (DESIGN §9: runs and traces are for
    # admins and sales managers).
    refused = cli("automations", "test", ident, "--lead", bank.lead.id, user="tomas")
    assert refused.exit_code == 1 and "may not read automations" in refused.stderr
    human = cli("automations", "test", ident, "--lead", bank.lead.id)
    assert human.exit_code == 0 and "acting for admin" in " ".join(human.stdout.split())
    on_behalf = (
        MEETING_SHARE.format(status="published").replace("Meeting owner gets the lead", "As the automation")
        + 'on_behalf_of = "automation"\n'
    )
    other = ok(cli("automations", "add", write(tmp_path, on_behalf, "b.toml"), "--json"))["id"]
    human = cli("automations", "test", other, "--lead", bank.lead.id, user="ruth")
    assert human.exit_code == 0 and "as the automation" in " ".join(human.stdout.split())


def test_runs_json_shows_the_capped_trace(cli, bank, tmp_path) -> None:
    """An admin's 50,000-item ``in`` list: ``automations runs --json`` shows a trace
    under run_trace_max_bytes that says it was cut."""
    import json

    refs = ", ".join(f'"R{i:06d}"' for i in range(50_000))
    toml = f"""\
name = "Known refs"
status = "published"

[trigger]
type = "lead_update"

[[conditions]]
field = "lead.name"
op = "in"
value = [{refs}]

[[actions]]
type = "notify"
to = "ruth"
message = "known"
"""
    ident = ok(cli("automations", "add", write(tmp_path, toml), "--json"))["id"]
    ok(cli("leads", "update", bank.lead.id, "--stage", "contacted", "--json", user="priya"))
    (run,) = ok(cli("automations", "runs", ident, "--json"))["items"]
    assert run["status"] == "skipped" and len(run["reason"]) < 1_100
    assert run["trace"]["truncated"] is True
    assert len(json.dumps(run["trace"], sort_keys=True, ensure_ascii=False).encode()) <= 65_536
    assert run["trace"]["conditions"][0]["value"][-1].startswith("…(cut: ")
    human = cli("automations", "runs", ident)
    assert human.exit_code == 0 and "skipped" in human.stdout

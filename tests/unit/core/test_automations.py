"""The automation engine through the Python API (DESIGN .4).

An automation acts only on events after it was published, so each test adds
its automations first, then makes the change, then drains the outbox with
``process_pending()`` the way embedded mode and the worker do.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from peewee import IntegrityError

from conftest import SAMPLE_DATA
from sharetui import hookimpl
from sharetui.core.history import HistoryFilter
from sharetui.db.models import (
    Activity,
    Automation,
    AutomationRun,
    AutomationStep,
    Grant,
    HistoryEvent,
    Notification,
    OutboxEvent,
    ShareRequest,
    Task,
)
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import to_db
from sharetui.errors import PermissionDenied, UsageError
from sharetui.ops.loader import Loader
from sharetui.sdk import ConfigField, Outcome
from sharetui.testing import plugin_registered

ROOT = Path(__file__).resolve().parents[3]

# -- helpers ---------------------------------------------------------------------------


def add(core, toml: str, actor, source: str = "x.toml") -> Automation:
    """Parse and save an automation from TOML text, as ``automations add`` does."""
    return core.automations.add(core.automations.parse(textwrap.dedent(toml), source), actor=actor)


def published(name: str, trigger: str, actions: str, extra: str = "") -> str:
    """A published automation's TOML: trigger table, optional extra tables, actions."""
    return (
        f'name = "{name}"\nstatus = "published"\n\n[trigger]\ntype = "{trigger}"\n'
        + textwrap.dedent(extra)
        + "\n"
        + textwrap.dedent(actions)
    )


NOTIFY_RUTH = """
[[actions]]
type = "notify"
to = "ruth"
message = "{event.type} on {lead.name}"
"""


def runs(core, automation) -> list[dict[str, Any]]:
    """The automation's runs, oldest first."""
    return list(reversed(core.automations.runs(automation.id, limit=1000, actor=None)))


def counts() -> dict[str, int]:
    return {
        "grants": Grant.select().count(),
        "share_requests": ShareRequest.select().count(),
        "history": HistoryEvent.select().count(),
        "automation_runs": AutomationRun.select().count(),
        "automation_steps": AutomationStep.select().count(),
        "notifications": Notification.select().count(),
    }


def lead_ref(lead) -> RecordRef:
    return RecordRef(EntityType.LEAD, lead.id)


def opp_ref(opp) -> RecordRef:
    return RecordRef(EntityType.OPPORTUNITY, opp.id)


def active_grants(user: str | None = None) -> list[Grant]:
    from sharetui.db.models import User

    query = Grant.select().where(Grant.state == "active").order_by(Grant.id)
    if user:
        query = query.join(User).where(User.username == user)
    return list(query)


def load_rotation_plugin():
    path = ROOT / "plugins" / "group_rotation" / "sharetui_group_rotation.py"
    spec = importlib.util.spec_from_file_location("sharetui_group_rotation", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def opp(bank):
    """A Home Loan opportunity on the bank's lead, owned by priya (made before any automation)."""
    return bank.core.records.add_opportunity(
        lead=bank.lead.id, name="Demir home loan", type="Home Loan", owner=bank.priya, actor=bank.admin
    )


# -- every built-in trigger fires from a real change ------------------------------------


ALL_TRIGGERS = [
    "new_lead",
    "lead_update",
    "new_activity_on_lead",
    "activity_update_on_lead",
    "new_opportunity",
    "opportunity_update",
    "new_activity_on_opportunity",
    "activity_update_on_opportunity",
    "task_created_on_opportunity",
    "task_completed_on_opportunity",
]


def test_each_change_fires_its_own_trigger_and_no_other(bank, opp) -> None:
    """One published automation per trigger; each real change makes exactly the
    runs of the trigger it stands for, on the record it changed."""
    core, admin = bank.core, bank.admin
    r = core.records
    call = r.post_activity(opp_ref(opp), type="Follow-up Call", actor=admin)
    task = r.add_task(opp_ref(opp), owner="daniel", subject="Payslips", actor=admin)
    autos = {t: add(core, published(f"on {t}", t, NOTIFY_RUTH), admin) for t in ALL_TRIGGERS}
    core.automations.process_pending()  # the setup's events came before publishing
    assert AutomationRun.select().count() == 0

    def fired(change) -> dict[str, list[str]]:
        before = {t: len(runs(core, a)) for t, a in autos.items()}
        change()
        core.automations.process_pending()
        return {
            t: [x["record"] for x in runs(core, a)[before[t] :]]
            for t, a in autos.items()
            if len(runs(core, a)) > before[t]
        }

    lead_id, opp_id = bank.lead.id, opp.id
    new_lead: list[Any] = []
    assert fired(lambda: new_lead.append(r.add_lead(name="Ada", owner="kenji", actor=admin))) == {
        "new_lead": [f"lead {new_lead[0].id}"]
    }
    assert fired(lambda: r.update_record(bank.lead, values={"stage": "qualified"}, actor=admin)) == {
        "lead_update": [f"lead {lead_id}"]
    }
    assert fired(lambda: r.post_activity(bank.lead, type="Loan Evaluation", owner="sofia", actor=admin)) == {
        "new_activity_on_lead": [f"lead {lead_id}"]
    }
    assert fired(lambda: r.update_activity(bank.meeting.id, note="moved to Friday", actor=admin)) == {
        "activity_update_on_lead": [f"lead {lead_id}"]
    }
    new_opp: list[Any] = []
    assert fired(
        lambda: new_opp.append(
            r.add_opportunity(lead=lead_id, name="Card", type="Credit Card", owner="daniel", actor=admin)
        )
    ) == {"new_opportunity": [f"opportunity {new_opp[0].id}"]}
    assert fired(lambda: r.update_record(opp, values={"stage": "proposal"}, actor=admin)) == {
        "opportunity_update": [f"opportunity {opp_id}"]
    }
    assert fired(lambda: r.post_activity(opp, type="Follow-up Call", actor=admin)) == {
        "new_activity_on_opportunity": [f"opportunity {opp_id}"]
    }
    assert fired(lambda: r.update_activity(call.id, status="completed", actor=admin)) == {
        "activity_update_on_opportunity": [f"opportunity {opp_id}"]
    }
    assert fired(lambda: r.add_task(opp, owner="daniel", subject="Valuation", actor=admin)) == {
        "task_created_on_opportunity": [f"opportunity {opp_id}"]
    }
    assert fired(lambda: r.complete_task(task.id, actor=admin)) == {
        "task_completed_on_opportunity": [f"opportunity {opp_id}"]
    }
    # Every run succeeded and notified ruth once, linked to its run.
    all_runs = [x for a in autos.values() for x in runs(core, a)]
    assert len(all_runs) == 10 and {x["status"] for x in all_runs} == {"succeeded"}
    notes = list(Notification.select().order_by(Notification.id))
    assert sorted(n.automation_run_id for n in notes) == sorted(x["id"] for x in all_runs)
    assert {n.user.username for n in notes} == {"ruth"}
    assert any(n.message == "Loan Evaluation on Mira Demir" for n in notes)


def test_activity_triggers_filter_by_activity_type(bank) -> None:
    core = bank.core
    evaluation = add(
        core,
        published(
            "evaluations",
            "new_activity_on_lead",
            NOTIFY_RUTH,
            extra='activity_types = ["Loan Evaluation"]\n',
        ),
        bank.admin,
    )
    core.records.post_activity(bank.lead, type="Meeting Scheduled", owner="daniel", actor=bank.priya)
    core.records.post_activity(bank.lead, type="Email Sent", actor=bank.priya)
    core.automations.process_pending()
    assert runs(core, evaluation) == []

    act = core.records.post_activity(bank.lead, type="Loan Evaluation", owner="sofia", actor=bank.priya)
    core.automations.process_pending()
    (run,) = runs(core, evaluation)
    assert run["status"] == "succeeded"
    assert run["trace"]["trigger"]["data"]["activity"]["id"] == act.id
    assert run["trace"]["trigger"]["data"]["activity"]["type"] == "Loan Evaluation"


def test_activity_update_trigger_filters_by_type_too(bank) -> None:
    core = bank.core
    email = core.records.post_activity(bank.lead, type="Email Sent", actor=bank.priya)
    auto = add(
        core,
        published(
            "meeting changes",
            "activity_update_on_lead",
            NOTIFY_RUTH,
            extra='activity_types = ["Meeting Scheduled"]\n',
        ),
        bank.admin,
    )
    core.records.update_activity(email.id, note="bounced", actor=bank.priya)
    core.automations.process_pending()
    assert runs(core, auto) == []
    core.records.update_activity(bank.meeting.id, status="completed", actor=bank.priya)
    core.automations.process_pending()
    assert [r["status"] for r in runs(core, auto)] == ["succeeded"]


def test_task_reminder_fires_once_after_its_time_even_if_asked_again(bank, opp, clock) -> None:
    """daniel owns a task on priya's opportunity; when its reminder is due he may read it."""
    core = bank.core
    auto = add(
        core,
        published(
            "reminder share",
            "task_reminder_for_opportunity",
            """
            [[actions]]
            type = "share_opportunity"
            share_with = "owner_in_trigger"
            duration = "2d"
            access = "read"
            """,
        ),
        bank.admin,
    )
    task = core.records.add_task(
        opp,
        owner="daniel",
        subject="Chase payslips",
        actor=bank.admin,
        due_at=clock.now() + timedelta(days=1),
        reminder_at=clock.now() + timedelta(hours=2),
    )
    core.automations.process_pending()
    assert core.automations.fire_due_reminders() == 0
    clock.advance(timedelta(hours=1, minutes=59))
    assert core.automations.fire_due_reminders() == 0
    assert not core.access.can(bank.daniel, opp_ref(opp), "read")

    clock.advance(timedelta(minutes=2))
    assert core.automations.fire_due_reminders() == 1
    core.automations.process_pending()
    assert core.automations.fire_due_reminders() == 0
    clock.advance(timedelta(hours=5))
    assert core.automations.fire_due_reminders() == 0
    core.automations.process_pending()

    (run,) = runs(core, auto)
    assert run["status"] == "succeeded" and run["trigger"] == "task_reminder_for_opportunity"
    assert run["trace"]["trigger"]["data"]["task"]["id"] == task.id
    assert core.access.can(bank.daniel, opp_ref(opp), "read")
    assert not core.access.can(bank.daniel, opp_ref(opp), "edit")
    (grant,) = active_grants("daniel")
    assert grant.entity_type == "opportunity" and grant.entity_id == opp.id
    assert Task.get_by_id(task.id).reminded_at is not None
    assert OutboxEvent.select().where(OutboxEvent.topic == "task.reminder_due").count() == 1


def test_a_completed_task_sends_no_reminder(bank, opp, clock) -> None:
    core = bank.core
    task = core.records.add_task(
        opp, owner="daniel", subject="x", actor=bank.admin, reminder_at=clock.now() + timedelta(hours=1)
    )
    core.records.complete_task(task.id, actor=bank.admin)
    clock.advance(timedelta(hours=2))
    assert core.automations.fire_due_reminders() == 0


SCHEDULE = """
name = "Untouched qualified leads"
status = "published"

[trigger]
type = "schedule"
cron = "0 9 * * 1-5"
timezone = "Europe/Berlin"
entity = "lead"

[[trigger.where]]
field = "lead.stage"
op = "="
value = "qualified"

[[actions]]
type = "share_lead"
share_with = "sofia"
duration = "3d"
access = "edit"
"""


def test_a_schedule_runs_once_per_selected_record_at_each_firing(bank, clock) -> None:
    """Weekdays 09:00 Berlin. The clock starts Monday 2 March 2026 09:00 UTC
    (10:00 in Berlin): the next firing is Tuesday 08:00 UTC."""
    core = bank.core
    r = core.records
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    second = r.add_lead(name="Jonas Weber", stage="qualified", owner="kenji", actor=bank.admin)
    r.add_lead(name="Not yet", stage="new", owner="kenji", actor=bank.admin)
    auto = add(core, SCHEDULE, bank.admin)
    core.automations.process_pending()
    assert core.automations.fire_due_schedules() == 0

    clock.set(datetime(2026, 3, 3, 7, 59, tzinfo=UTC))
    assert core.automations.fire_due_schedules() == 0
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    assert core.automations.fire_due_schedules() == 1
    assert core.automations.fire_due_schedules() == 0, "the same firing is queued once"
    reports = core.automations.process_pending()

    assert sorted(x.record for x in reports) == sorted([f"lead {bank.lead.id}", f"lead {second.id}"])
    done = runs(core, auto)
    assert len(done) == 2 and {x["status"] for x in done} == {"succeeded"}
    assert len({x["event_id"] for x in done}) == 1
    assert done[0]["trace"]["trigger"]["data"]["schedule"]["fire_at"] == "2026-03-03T08:00:00Z"
    assert sorted(g.entity_id for g in active_grants("sofia")) == sorted([bank.lead.id, second.id])
    assert all(g.access == 2 for g in active_grants("sofia"))

    # Wednesday's firing runs again on what the filter selects then.
    core.records.update_record(second, values={"stage": "converted"}, actor=bank.admin)
    clock.set(datetime(2026, 3, 4, 8, 0, tzinfo=UTC))
    assert core.automations.fire_due_schedules() == 1
    reports = core.automations.process_pending()
    assert [x.record for x in reports] == [f"lead {bank.lead.id}"]
    assert [x["outcome"] for x in [runs(core, auto)[-1]["trace"]["actions"][0]["data"]]] == ["renewed"]


def test_a_schedule_after_days_of_downtime_runs_once_for_the_latest_missed_firing(bank, clock) -> None:
    core = bank.core
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    auto = add(core, SCHEDULE, bank.admin)
    clock.set(datetime(2026, 3, 6, 12, 0, tzinfo=UTC))  # Friday; Tue..Fri missed
    assert core.automations.fire_due_schedules() == 1
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["trace"]["trigger"]["data"]["schedule"]["fire_at"] == "2026-03-06T08:00:00Z"
    event = OutboxEvent.get_by_id(run["event_id"])
    assert event.payload["missed"] == 3


def test_a_schedule_with_misfire_all_runs_every_missed_firing(bank, clock) -> None:
    core = bank.core
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    auto = add(core, SCHEDULE.replace('entity = "lead"', 'entity = "lead"\nmisfire = "all"'), bank.admin)
    clock.set(datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    assert core.automations.fire_due_schedules() == 4
    core.automations.process_pending()
    fired = [x["trace"]["trigger"]["data"]["schedule"]["fire_at"] for x in runs(core, auto)]
    assert fired == [f"2026-03-0{d}T08:00:00Z" for d in (3, 4, 5, 6)]


def test_a_paused_schedule_queues_nothing(bank, clock) -> None:
    core = bank.core
    auto = add(core, SCHEDULE, bank.admin)
    core.automations.set_status(auto.id, "paused", actor=bank.admin)
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    assert core.automations.fire_due_schedules() == 0


# -- actions ------------------------------------------------------------------------------

LOAN_EVALUATION = """
name = "Loan evaluation access"
status = "published"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Loan Evaluation"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "7d"
access = "read"
until_completed = true
"""


def test_share_lead_with_the_owner_in_trigger_until_the_activity_is_completed(bank, clock) -> None:
    """The DESIGN .4 example: sofia evaluates the loan; she may read the lead
    in the evaluation's context until it is completed."""
    core = bank.core
    auto = add(core, LOAN_EVALUATION, bank.admin)
    assert not core.access.can(bank.sofia, bank.lead, "read")
    act = core.records.post_activity(bank.lead, type="Loan Evaluation", owner="sofia", actor=bank.priya)
    (report,) = core.automations.process_pending()

    assert report.status == "succeeded"
    (run,) = runs(core, auto)
    (grant,) = active_grants("sofia")
    assert (grant.entity_type, grant.entity_id) == ("lead", bank.lead.id)
    assert grant.context_activity_id == act.id
    assert grant.until_completed and grant.access == 1
    assert grant.source == "automation"
    assert grant.expires_at == to_db(clock.now() + timedelta(days=7))
    request = ShareRequest.get_by_id(grant.request_id)
    assert request.automation_run_id == run["id"] and request.source == "automation"
    rows = core.history.query(None, HistoryFilter(source="automation"), limit=None)
    assert [(h["event"], h["status"]) for h in rows] == [("share", "completed"), ("granted", "completed")]
    assert {h["automation_run_id"] for h in rows} == {run["id"]}
    assert {(h["entity"], h["entity_id"], h["user"], h["context"]) for h in rows} == {
        ("lead", bank.lead.id, "sofia", act.id)
    }
    step = run["trace"]["actions"][0]
    assert step["status"] == "succeeded" and step["data"]["request_id"] == request.id
    assert f"context activity {act.id}" in step["message"] and "until completed" in step["message"]
    assert core.access.can(bank.sofia, bank.lead, "read")

    core.records.update_activity(act.id, status="completed", actor=bank.sofia)
    assert Grant.get_by_id(grant.id).state == "revoked"
    assert not core.access.can(bank.sofia, bank.lead, "read")


def test_share_opportunity_with_a_named_user(bank, opp, clock) -> None:
    core = bank.core
    auto = add(
        core,
        published(
            "opportunity to daniel",
            "opportunity_update",
            """
            [[actions]]
            type = "share_opportunity"
            share_with = "daniel"
            duration = "30d"
            access = "edit"
            """,
        ),
        bank.admin,
    )
    core.records.update_record(opp, values={"stage": "evaluation"}, actor=bank.priya)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "succeeded" and run["record"] == f"opportunity {opp.id}"
    (grant,) = active_grants("daniel")
    assert (grant.entity_type, grant.entity_id, grant.access) == ("opportunity", opp.id, 2)
    assert grant.context_activity_id is None
    assert grant.expires_at == to_db(clock.now() + timedelta(days=30))
    assert ShareRequest.get_by_id(grant.request_id).automation_run_id == run["id"]
    assert core.access.can(bank.daniel, opp_ref(opp), "edit")


def test_revoke_share_ends_a_users_grants_on_the_record(bank) -> None:
    core = bank.core
    manual = core.sharing.share(
        "lead", bank.lead.id, "daniel", requester=bank.priya, duration="30d", context=bank.meeting.id
    )
    plain = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="30d")
    assert manual.ok and plain.ok
    auto = add(
        core,
        published(
            "lost lead closes access",
            "lead_update",
            """
            [[actions]]
            type = "revoke_share"
            user = "daniel"
            """,
            extra='\n[[conditions]]\nfield = "lead.stage"\nop = "="\nvalue = "unqualified"\n',
        ),
        bank.admin,
    )
    core.records.update_record(bank.lead, values={"stage": "unqualified"}, actor=bank.priya)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "succeeded", run
    assert "revoked daniel's share of lead" in run["trace"]["actions"][0]["message"]
    assert active_grants("daniel") == []
    assert not core.access.can(bank.daniel, bank.lead, "read")
    revoked = core.history.query(None, HistoryFilter(source="automation", event="revoked"), limit=None)
    assert len(revoked) == 2 and {h["automation_run_id"] for h in revoked} == {run["id"]}


def test_revoking_what_is_not_shared_is_a_failed_step(bank) -> None:
    core = bank.core
    auto = add(
        core,
        published("revoke nothing", "lead_update", '[[actions]]\ntype = "revoke_share"\nuser = "daniel"\n'),
        bank.admin,
    )
    core.records.update_record(bank.lead, values={"stage": "lost"}, actor=bank.priya)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "failed"
    assert run["trace"]["actions"][0]["status"] == "failed"
    failed = core.history.query(None, HistoryFilter(source="automation", status="failed"), limit=None)
    assert len(failed) == 1 and failed[0]["automation_run_id"] == run["id"]


def test_notify_writes_a_notification_per_user_with_the_fields_filled_in(bank, opp) -> None:
    core = bank.core
    auto = add(
        core,
        published(
            "tell the owner and ruth",
            "opportunity_update",
            """
            [[actions]]
            type = "notify"
            to = ["record_owner", "ruth"]
            message = "{opportunity.name} is now {opportunity.stage} (lead {lead.name})"
            """,
        ),
        bank.admin,
    )
    core.records.update_record(opp, values={"stage": "proposal"}, actor=bank.admin)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    notes = list(Notification.select().order_by(Notification.id))
    assert sorted(n.user.username for n in notes) == ["priya", "ruth"]
    assert {n.message for n in notes} == {"Demir home loan is now proposal (lead Mira Demir)"}
    assert {(n.entity_type, n.entity_id, n.automation_run_id) for n in notes} == {
        ("opportunity", opp.id, run["id"])
    }
    message = run["trace"]["actions"][0]["message"]
    assert message.startswith("notified ") and {"priya", "ruth"} <= set(message[9:].split(":")[0].split(", "))


def test_owner_in_trigger_with_a_type_that_captures_no_owner_skips_and_says_why(bank) -> None:
    core = bank.core
    auto = add(
        core,
        published(
            "email share",
            "new_activity_on_lead",
            '[[actions]]\ntype = "share_lead"\nshare_with = "owner_in_trigger"\n',
        ),
        bank.admin,
    )
    core.records.post_activity(bank.lead, type="Email Sent", actor=bank.priya)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "skipped"
    assert "activity type 'Email Sent' does not capture an owner" in run["reason"]
    step = run["trace"]["actions"][0]
    assert step["status"] == "skipped" and "does not capture an owner" in step["message"]
    assert run["trace"]["trigger"]["data"]["owner_in_trigger"] is None
    assert Grant.select().count() == 0 and ShareRequest.select().count() == 0


def test_a_failing_share_is_a_failed_step_a_failed_run_and_a_failed_request(bank) -> None:
    """priya owns the lead: sharing it with her must fail, and say so everywhere."""
    core = bank.core
    auto = add(
        core,
        published(
            "share with the owner (wrong)",
            "lead_update",
            """
            [[actions]]
            type = "share_lead"
            share_with = "priya"

            [[actions]]
            type = "share_lead"
            share_with = "daniel"
            """,
        ),
        bank.admin,
    )
    core.records.update_record(bank.lead, values={"stage": "contacted"}, actor=bank.priya)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "failed"
    first, second = run["trace"]["actions"]
    assert first["status"] == "failed" and "owns" in first["message"]
    assert run["reason"] == first["message"]
    assert second["status"] == "succeeded", "a failed step does not stop the next one"
    steps = {s.step: s.status for s in AutomationStep.select().where(AutomationStep.run == run["id"])}
    assert steps == {0: "failed", 1: "succeeded"}
    failed = core.history.query(None, HistoryFilter(source="automation", status="failed"), limit=None)
    assert len(failed) == 1
    assert (failed[0]["user"], failed[0]["entity_id"], failed[0]["automation_run_id"]) == (
        "priya",
        bank.lead.id,
        run["id"],
    )
    assert "owns" in failed[0]["reason"]
    assert ShareRequest.get_by_id(first["data"]["request_id"]).status == "failed"
    assert [g.user.username for g in active_grants()] == ["daniel"]


# -- conditions ---------------------------------------------------------------------------

CASES = [
    # (field, op, value as TOML, holds)
    ("lead.stage", "=", '"Qualified"', True),
    ("lead.stage", "=", '"new"', False),
    ("lead.stage", "!=", '"new"', True),
    ("lead.stage", "!=", '"qualified"', False),
    ("lead.fields.amount", ">", "100000", True),
    ("lead.fields.amount", ">", "150000", False),
    ("lead.fields.amount", ">=", "150000", True),
    ("lead.fields.amount", ">=", "150001", False),
    ("lead.fields.amount", "<", "150001", True),
    ("lead.fields.amount", "<", "150000", False),
    ("lead.fields.amount", "<=", "150000", True),
    ("lead.fields.amount", "<=", "149999.5", False),
    ("lead.stage", "in", '["new", "qualified"]', True),
    ("lead.stage", "in", '["lost", "converted"]', False),
    ("lead.company", "contains", '"textile"', True),
    ("lead.company", "contains", '"bank"', False),
    ("lead.fields.tags", "contains", '"vip"', True),
    ("lead.fields.tags", "contains", '"cold"', False),
    ("lead.fields.missing", ">", "1", False),
]


def test_each_operator_holds_or_not_and_the_trace_shows_the_actual_value(bank) -> None:
    """One automation per case on new_lead; one new lead runs them all."""
    core = bank.core
    autos = []
    for i, (fld, op, value, _holds) in enumerate(CASES):
        cond = f'\n[[conditions]]\nfield = "{fld}"\nop = "{op}"\nvalue = {value}\n'
        autos.append(add(core, published(f"case {i}", "new_lead", NOTIFY_RUTH, extra=cond), bank.admin))
    lead = core.records.add_lead(
        name="Ada",
        company="Demir Textiles",
        stage="qualified",
        owner="kenji",
        actor=bank.admin,
        fields={"amount": 150000, "tags": ["vip", "new"]},
    )
    core.automations.process_pending()
    actual = {
        "lead.stage": "qualified",
        "lead.fields.amount": 150000,
        "lead.company": "Demir Textiles",
        "lead.fields.tags": ["vip", "new"],
        "lead.fields.missing": None,
    }
    for auto, (fld, op, _value, holds) in zip(autos, CASES, strict=True):
        (run,) = runs(core, auto)
        (cond,) = run["trace"]["conditions"]
        assert (cond["field"], cond["op"]) == (fld, op)
        assert cond["actual"] == actual[fld], (fld, op)
        assert cond["result"] is holds, (fld, op, _value)
        assert run["status"] == ("succeeded" if holds else "skipped"), (fld, op, _value)
        assert run["record"] == f"lead {lead.id}"
        if not holds:
            assert run["reason"].startswith(f"condition {fld} {op} ") and run["reason"].endswith("is false")
            assert run["trace"]["actions"] == []
    assert Notification.select().count() == sum(1 for c in CASES if c[3])


def test_all_conditions_must_hold_and_the_trace_lists_each_result(bank) -> None:
    core = bank.core
    extra = """
    [[conditions]]
    field = "lead.stage"
    op = "="
    value = "qualified"

    [[conditions]]
    field = "lead.fields.amount"
    op = ">="
    value = 100000

    [[conditions]]
    field = "lead.company"
    op = "contains"
    value = "Bank"
    """
    auto = add(core, published("three conditions", "lead_update", NOTIFY_RUTH, extra=extra), bank.admin)
    core.records.update_record(
        bank.lead, values={"stage": "qualified"}, fields={"amount": 250000}, actor=bank.admin
    )
    core.automations.process_pending()
    core.records.update_record(bank.lead, values={"company": "Demir Bank"}, actor=bank.admin)
    core.automations.process_pending()
    first, second = runs(core, auto)
    assert first["status"] == "skipped"
    assert [(c["actual"], c["result"]) for c in first["trace"]["conditions"]] == [
        ("qualified", True),
        (250000, True),
        ("Demir Textiles", False),
    ]
    assert second["status"] == "succeeded"
    assert [c["result"] for c in second["trace"]["conditions"]] == [True, True, True]


# -- validation ---------------------------------------------------------------------------

VALID = """\
name = "Valid"
status = "published"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Loan Evaluation"]

[[conditions]]
field = "activity.fields.amount"
op = ">="
value = 100000

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "7d"
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'type = "new_activity_on_lead"',
            'type = "new_acivity_on_lead"',
            "x.toml:5: trigger.type: unknown trigger 'new_acivity_on_lead'",
        ),
        ('duration = "7d"', 'duration = "7d"\nacess = "read"', "x.toml:17: actions[0].acess: unknown"),
        ('op = ">="', 'op = "=>"', "x.toml:10: conditions[0].op: '=>' is not one of"),
        ('status = "published"', 'status = "live"', "x.toml:2: status: 'live' is not one of draft"),
        ('duration = "7d"', 'duration = "7 parsecs"', "x.toml:16: actions[0].duration:"),
        ('share_with = "owner_in_trigger"', 'with = "daniel"', "x.toml:15: actions[0].with"),
        ("value = 100000", "valu = 100000", "x.toml:11: conditions[0].valu: unknown key"),
    ],
)
def test_validation_errors_name_the_key_and_its_line(core, old: str, new: str, expected: str) -> None:
    assert old in VALID
    with pytest.raises(UsageError) as err:
        core.automations.parse(VALID.replace(old, new, 1), "x.toml")
    assert expected in err.value.message


def test_a_bad_cron_is_refused_on_its_line(core) -> None:
    with pytest.raises(UsageError) as err:
        core.automations.parse(SCHEDULE.replace("0 9 * * 1-5", "0 9 * *"), "x.toml")
    assert "x.toml:7: trigger.cron:" in err.value.message and "has 4 fields" in err.value.message
    with pytest.raises(UsageError) as err:
        core.automations.parse(SCHEDULE.replace("Europe/Berlin", "Berlin"), "x.toml")
    assert "x.toml:8: trigger.timezone:" in err.value.message
    with pytest.raises(UsageError) as err:
        core.automations.parse(SCHEDULE.replace('op = "="', 'op = "like"'), "x.toml")
    assert "trigger.where" in err.value.message and "'like'" in err.value.message


def test_missing_actions_are_refused(core) -> None:
    text = VALID.split("[[actions]]")[0]
    with pytest.raises(UsageError, match=r"x.toml: actions: required: at least one \[\[actions\]\] table"):
        core.automations.parse(text, "x.toml")
    with pytest.raises(UsageError, match="unknown action 'share_everything'"):
        core.automations.parse(VALID.replace('type = "share_lead"', 'type = "share_everything"'), "x.toml")
    with pytest.raises(UsageError, match=r"x\.toml: not valid TOML"):
        core.automations.parse("name = ", "x.toml")


def test_the_valid_file_parses_into_its_parts(core) -> None:
    d = core.automations.parse(VALID, "x.toml")
    assert (d.name, d.status, d.trigger_type) == ("Valid", "published", "new_activity_on_lead")
    assert d.trigger_config == {"activity_types": ["Loan Evaluation"]}
    assert d.conditions == [{"field": "activity.fields.amount", "op": ">=", "value": 100000}]
    assert d.actions == [{"type": "share_lead", "share_with": "owner_in_trigger", "duration": "7d"}]


# -- who may manage, and when automations run ------------------------------------------------


def test_only_admins_add_publish_and_pause(bank) -> None:
    core = bank.core
    definition = core.automations.parse(published("x", "new_lead", NOTIFY_RUTH), "x.toml")
    for user in (bank.daniel, bank.manager, bank.marketing):
        with pytest.raises(PermissionDenied, match="only an admin"):
            core.automations.add(definition, actor=user)
    assert Automation.select().count() == 0
    auto = core.automations.add(definition, actor=bank.admin)
    for status in ("paused", "published"):
        with pytest.raises(PermissionDenied):
            core.automations.set_status(auto.id, status, actor=bank.daniel)
    with pytest.raises(PermissionDenied):
        core.automations.update(auto.id, definition, actor=bank.manager)
    assert core.automations.get(auto.id).status == "published"
    assert core.automations.get(auto.id).created_by == bank.admin.id


def test_draft_and_paused_automations_do_not_run(bank) -> None:
    core = bank.core
    draft = add(
        core, published("notify", "lead_update", NOTIFY_RUTH).replace("published", "draft"), bank.admin
    )
    assert draft.status == "draft"

    def touch(stage: str) -> None:
        core.records.update_record(bank.lead, values={"stage": stage}, actor=bank.admin)
        core.automations.process_pending()

    touch("contacted")
    assert runs(core, draft) == []
    core.automations.set_status(draft.id, "published", actor=bank.admin)
    touch("qualified")
    assert len(runs(core, draft)) == 1
    core.automations.set_status(draft.id, "paused", actor=bank.admin)
    touch("converted")
    assert len(runs(core, draft)) == 1
    core.automations.set_status(draft.id, "published", actor=bank.admin)
    touch("lost")
    assert len(runs(core, draft)) == 2


def test_publishing_acts_only_on_later_events(bank) -> None:
    core = bank.core
    auto = add(
        core, published("notify", "lead_update", NOTIFY_RUTH).replace("published", "draft"), bank.admin
    )
    core.records.update_record(bank.lead, values={"stage": "contacted"}, actor=bank.admin)
    core.automations.set_status(auto.id, "published", actor=bank.admin)  # before the drain
    core.automations.process_pending()
    assert runs(core, auto) == []


def test_the_start_and_end_dates_are_respected(bank, clock) -> None:
    core = bank.core
    window = 'starts_at = "2026-03-05T00:00:00Z"\nends_at = "2026-03-10T00:00:00Z"\n'
    auto = add(core, window + published("windowed", "lead_update", NOTIFY_RUTH), bank.admin)
    stages = iter(["a", "b", "c", "d"])

    def touch() -> int:
        core.records.update_record(bank.lead, values={"stage": next(stages)}, actor=bank.admin)
        core.automations.process_pending()
        return len(runs(core, auto))

    assert touch() == 0  # 2 March: not started
    clock.set(datetime(2026, 3, 5, 0, 0, tzinfo=UTC))
    assert touch() == 1
    clock.set(datetime(2026, 3, 9, 23, 59, tzinfo=UTC))
    assert touch() == 2
    clock.set(datetime(2026, 3, 10, 0, 0, tzinfo=UTC))
    assert touch() == 2  # ended


def test_the_loop_guard_stops_the_fourth_run_and_resets_after_24_hours(bank, clock) -> None:
    core = bank.core
    core.settings.set("automation_daily_limit", 3, actor=None)
    auto = add(core, published("every update", "lead_update", NOTIFY_RUTH), bank.admin)
    for i in range(4):
        clock.advance(timedelta(minutes=10))
        core.records.update_record(bank.lead, values={"stage": f"s{i}"}, actor=bank.admin)
        core.automations.process_pending()
    statuses = [r["status"] for r in runs(core, auto)]
    assert statuses == ["succeeded", "succeeded", "succeeded", "skipped"]
    fourth = runs(core, auto)[-1]
    assert "loop guard" in fourth["reason"] and "limit 3" in fourth["reason"]
    assert fourth["trace"]["actions"] == []
    assert Notification.select().count() == 3

    # Another lead is counted on its own.
    other = core.records.add_lead(name="Other", owner="kenji", actor=bank.admin)
    core.records.update_record(other, values={"stage": "x"}, actor=bank.admin)
    core.automations.process_pending()
    assert runs(core, auto)[-1]["status"] == "succeeded"

    # Runs at +10, +20 and +30 minutes. At +23h40 they are all within the last 24 h.
    clock.advance(timedelta(hours=23))
    core.records.update_record(bank.lead, values={"stage": "still"}, actor=bank.admin)
    core.automations.process_pending()
    assert runs(core, auto)[-1]["status"] == "skipped"
    # At +24h40 they are all older than 24 h: the guard has reset.
    clock.advance(timedelta(hours=1))
    core.records.update_record(bank.lead, values={"stage": "again"}, actor=bank.admin)
    core.automations.process_pending()
    assert runs(core, auto)[-1]["status"] == "succeeded"
    assert Notification.select().count() == 5


# -- dry run --------------------------------------------------------------------------------


def test_a_dry_run_reports_what_would_happen_and_changes_nothing(bank) -> None:
    core = bank.core
    auto = add(
        core,
        published(
            "meeting share",
            "new_activity_on_lead",
            """
            [[actions]]
            type = "share_lead"
            share_with = "owner_in_trigger"
            duration = "14d"
            access = "edit"

            [[actions]]
            type = "notify"
            to = "owner_in_trigger"
            message = "You may edit {lead.name}"
            """,
            extra='activity_types = ["Meeting Scheduled"]\n',
        ),
        bank.admin,
    )
    core.automations.process_pending()
    before = counts()
    outbox_before = OutboxEvent.select().count()
    report = core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.admin)

    assert report.status == "succeeded" and report.id is None
    assert report.trace["dry_run"] is True
    share, note = report.trace["actions"]
    assert share["status"] == "succeeded"
    assert share["message"].startswith(f"would share lead {bank.lead.id} with daniel (edit, 14d")
    assert note["message"] == "would notify daniel: You may edit Mira Demir"
    assert report.trace["trigger"]["data"]["activity"]["id"] == bank.meeting.id
    assert counts() == before
    assert OutboxEvent.select().count() == outbox_before
    assert not core.access.can(bank.daniel, bank.lead, "read")


def test_a_dry_run_shows_a_false_condition_and_a_wrong_record_type(bank, opp) -> None:
    core = bank.core
    auto = add(
        core,
        published(
            "qualified only",
            "lead_update",
            NOTIFY_RUTH,
            extra='[[conditions]]\nfield = "lead.stage"\nvalue = "qualified"\n',
        ),
        bank.admin,
    )
    report = core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.admin)
    assert report.status == "skipped" and "lead.stage = 'qualified' is false" in report.reason
    assert report.trace["conditions"][0]["result"] is False
    with pytest.raises(UsageError, match="automation 'qualified only' runs on leads, not opp"):
        core.automations.test(auto.id, opp_ref(opp), actor=bank.admin)
    assert AutomationRun.select().count() == 0


# -- crash safety and retries --------------------------------------------------------------

TWO_SHARES = """
name = "two shares"
status = "published"

[trigger]
type = "lead_update"

[[actions]]
type = "share_lead"
share_with = "daniel"

[[actions]]
type = "share_lead"
share_with = "sofia"
"""


def test_a_crash_mid_run_commits_nothing_and_the_retry_does_each_step_once(bank) -> None:
    core = bank.core
    auto = add(core, TWO_SHARES, bank.admin)
    core.automations.process_pending()
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    event = (
        OutboxEvent.select().where(OutboxEvent.topic == "lead.updated").order_by(OutboxEvent.id.desc()).get()
    )
    before = counts()

    core.automations.crash_after_step = 0
    try:
        with pytest.raises(BaseException, match="simulated crash after step 0"):
            core.automations.process_pending()
    finally:
        core.automations.crash_after_step = None
    assert counts() == before
    assert Grant.select().count() == 0
    assert OutboxEvent.get_by_id(event.id).processed_at is None
    assert core.db.transaction_depth() == 0

    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "succeeded" and run["event_id"] == event.id
    assert sorted(g.user.username for g in Grant.select()) == ["daniel", "sofia"]
    assert ShareRequest.select().count() == 2
    assert AutomationStep.select().count() == 2
    assert OutboxEvent.get_by_id(event.id).processed_at is not None


def test_a_retried_event_never_makes_a_second_run(bank) -> None:
    core = bank.core
    auto = add(core, TWO_SHARES, bank.admin)
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    event = OutboxEvent.get_by_id(run["event_id"])
    assert event.processed_at is not None and event.attempts == 1
    before = counts()

    # The same event delivered again (by hand, or by a worker that lost track):
    # the unique (automation, event, record) run refuses a second run and
    # everything that run would have written rolls back with it.
    with contextlib.suppress(IntegrityError), core.db.atomic():
        core.automations.process_event(event)
    OutboxEvent.update(processed_at=None).where(OutboxEvent.id == event.id).execute()
    with contextlib.suppress(IntegrityError):
        core.automations.process_pending()
    assert counts() == before
    assert len(runs(core, auto)) == 1
    assert [g.user.username for g in active_grants()] == ["daniel", "sofia"]


def test_a_redelivered_event_is_settled_and_does_not_block_the_outbox(bank) -> None:
    core = bank.core
    auto = add(core, TWO_SHARES, bank.admin)
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.admin)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    OutboxEvent.update(processed_at=None).where(OutboxEvent.id == run["event_id"]).execute()
    core.records.update_record(bank.lead, values={"stage": "converted"}, actor=bank.admin)
    core.automations.process_pending()
    assert OutboxEvent.get_by_id(run["event_id"]).processed_at is not None
    assert len(runs(core, auto)) == 2, "the later event still ran"
    assert Grant.select().count() == 2


# -- retention --------------------------------------------------------------------------------


def test_prune_runs_keeps_runs_for_the_retention_period(bank, clock) -> None:
    core = bank.core
    core.settings.set("run_retention_days", 30, actor=None)
    auto = add(core, TWO_SHARES, bank.admin)
    core.records.update_record(bank.lead, values={"stage": "old"}, actor=bank.admin)
    core.automations.process_pending()
    clock.advance(timedelta(days=20))
    core.records.update_record(bank.lead, values={"stage": "newer"}, actor=bank.admin)
    core.automations.process_pending()
    old, newer = runs(core, auto)

    clock.advance(timedelta(days=10))  # the first run is now exactly 30 days old
    assert core.automations.prune_runs() == 0
    clock.advance(timedelta(minutes=1))
    assert core.automations.prune_runs() == 1
    assert [r["id"] for r in runs(core, auto)] == [newer["id"]]
    assert AutomationStep.select().where(AutomationStep.run == old["id"]).count() == 0
    assert AutomationStep.select().where(AutomationStep.run == newer["id"]).count() == 2
    # History keeps its link to the pruned run: the story of the shares stays.
    assert HistoryEvent.select().where(HistoryEvent.automation_run_id == old["id"]).count() > 0


# -- plugins ---------------------------------------------------------------------------------


def test_the_rotation_plugin_action_runs_inside_a_real_automation(bank) -> None:
    core = bank.core
    core.users.add("wei", role="sales", groups={"Sales": "view"}, actor=bank.admin)
    plugin = load_rotation_plugin()
    with plugin_registered(core, plugin):
        auto = add(
            core,
            published(
                "new leads in turn",
                "new_lead",
                """
                [[actions]]
                type = "share_with_group_rotation"
                group = "Sales"
                duration = "3d"
                access = "edit"
                """,
            ),
            bank.admin,
        )
        leads = []
        for name in ("One", "Two", "Three", "Four"):
            leads.append(core.records.add_lead(name=name, owner="priya", actor=bank.admin))
            core.automations.process_pending()
        done = runs(core, auto)
    assert [r["status"] for r in done] == ["succeeded"] * 4
    assert [r["trace"]["actions"][0]["data"]["recipient"] for r in done] == [
        "daniel",
        "sofia",
        "wei",
        "daniel",
    ]
    got = {(g.entity_id, g.user.username) for g in active_grants()}
    assert got == {
        (leads[0].id, "daniel"),
        (leads[1].id, "sofia"),
        (leads[2].id, "wei"),
        (leads[3].id, "daniel"),
    }
    assert {g.source for g in active_grants()} == {"automation"}


class ScoreTrigger:
    """A test plugin with its own trigger: a lead was scored by some outside model."""

    @hookimpl
    def sharetui_register_triggers(self, register) -> None:
        register("lead_scored", "A lead got a score", config={"model": ConfigField(str)}, entity="lead")


def test_a_plugin_trigger_fired_through_the_api_runs_an_automation(bank) -> None:
    core = bank.core
    with plugin_registered(core, ScoreTrigger(), name="score-trigger"):
        auto = add(
            core,
            published(
                "hot leads to daniel",
                "lead_scored",
                '[[actions]]\ntype = "share_lead"\nshare_with = "daniel"\nduration = "2d"\n',
                extra='model = "v2"\n\n[[conditions]]\nfield = "event.score"\nop = ">="\nvalue = 80\n',
            ),
            bank.admin,
        )
        core.automations.fire("lead_scored", lead_ref(bank.lead), {"score": 55})
        core.automations.fire("lead_scored", lead_ref(bank.lead), {"score": 91})
        core.automations.process_pending()
        with pytest.raises(UsageError, match="unknown trigger 'lead_rated'"):
            core.automations.fire("lead_rated", lead_ref(bank.lead), {})
    cold, hot = runs(core, auto)
    assert cold["status"] == "skipped" and cold["trace"]["conditions"][0]["actual"] == 55
    assert hot["status"] == "succeeded" and hot["trigger"] == "lead_scored"
    (grant,) = active_grants("daniel")
    assert grant.entity_id == bank.lead.id and grant.source == "automation"


class RunListener:
    def __init__(self, core) -> None:
        self.core = core
        self.calls: list[tuple[dict[str, Any], int, str | None]] = []

    @hookimpl
    def sharetui_automation_run_finished(self, run) -> None:
        row = AutomationRun.get_or_none(AutomationRun.id == run["id"])
        self.calls.append((run, self.core.db.transaction_depth(), row.status if row else None))


def test_run_finished_is_called_once_per_run_after_commit(bank) -> None:
    core = bank.core
    listener = RunListener(core)
    with plugin_registered(core, listener, name="listener"):
        auto = add(core, TWO_SHARES, bank.admin)
        core.records.update_record(bank.lead, values={"stage": "a"}, actor=bank.admin)
        core.records.update_record(bank.lead, values={"stage": "b"}, actor=bank.admin)
        core.automations.process_pending()
        ids = [r["id"] for r in runs(core, auto)]
        assert [c[0]["id"] for c in listener.calls] == ids
        assert all(depth == 0 for _, depth, _ in listener.calls), "called after commit"
        assert [status for *_, status in listener.calls] == ["succeeded", "succeeded"]
        assert listener.calls[0][0]["status"] == "succeeded"
        assert listener.calls[0][0]["trace"]["actions"][0]["type"] == "share_lead"

        # A crash rolls the run back: nobody hears of it.
        core.records.update_record(bank.lead, values={"stage": "c"}, actor=bank.admin)
        core.automations.crash_after_step = 1
        try:
            with pytest.raises(BaseException, match="simulated crash"):
                core.automations.process_pending()
        finally:
            core.automations.crash_after_step = None
        assert len(listener.calls) == 2
        core.automations.process_pending()
        assert len(listener.calls) == 3
        # A dry run is not a run.
        core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.admin)
        assert len(listener.calls) == 3


# -- the sample automations tell the same story in runs and history ---------------------------


def _story(core, automation_name: str) -> tuple[list[tuple], list[tuple]]:
    """(what the runs say, what the history says) about one sample automation's shares."""
    auto = core.automations.get(automation_name)
    from_runs = []
    run_ids = set()
    for run in reversed(core.automations.runs(auto.id, limit=1000, actor=None)):
        run_ids.add(run["id"])
        for step in run["trace"]["actions"]:
            if step["type"].startswith("share_"):
                request = ShareRequest.get_by_id(step["data"]["request_id"])
                from_runs.append(
                    (
                        run["id"],
                        request.entity_type,
                        request.entity_id,
                        request.recipient_name,
                        "completed" if step["status"] == "succeeded" else "failed",
                    )
                )
    from_history = [
        (h["automation_run_id"], h["entity"], h["entity_id"], h["user"], h["status"])
        for h in core.history.query(None, HistoryFilter(source="automation"), limit=None)
        if h["automation_run_id"] in run_ids and h["event"] in ("share", "renew")
    ]
    return from_runs, from_history


def test_the_sample_automations_tell_the_same_story_in_runs_and_history(core, clock) -> None:
    """Load the demo company with its six automations, live a week of it, and read
    each automation's story twice: from its runs, and from the share history."""
    from sharetui.db.models import Lead, Opportunity

    Loader(core).load(SAMPLE_DATA, actor=None)
    assert core.automations.process_pending() == [], "loading runs no automation"
    names = {a["name"]: a for a in core.automations.list(actor=None)}
    assert len(names) == 6 and {a["status"] for a in names.values()} == {"published"}
    admin = core.users.get("admin")
    r = core.records

    def lead(ref: str) -> Lead:
        return Lead.get(Lead.ref == ref)

    # 1. A meeting on L001 taken by sofia: she may edit the lead for two weeks.
    meeting = r.post_activity(lead("L001"), type="Meeting Scheduled", owner="sofia", actor=admin)
    #    A meeting on L004 taken by leila, who owns it: that share must fail.
    r.post_activity(lead("L004"), type="Meeting Scheduled", owner="leila", actor=admin)
    # 2. A loan evaluation on L002 by arjun: read until completed.
    evaluation = r.post_activity(lead("L002"), type="Loan Evaluation", owner="arjun", actor=admin)
    # 3. A Personal Loan opportunity goes to marta; a Home Loan does not, but being
    #    large it gets a Credit Evaluation by farah (the first of Credit in turn), who
    #    may read L002 until it is done.
    personal = r.add_opportunity(
        lead=lead("L002").id, name="Kitchen", type="Personal Loan", amount=15000, owner="jamal", actor=admin
    )
    r.add_opportunity(
        lead=lead("L002").id, name="House", type="Home Loan", amount=300000, owner="hannah", actor=admin
    )
    core.automations.process_pending()

    # 4. T001's reminder (+2h) lets daniel read O001 for two days.
    clock.advance(timedelta(hours=2, minutes=1))
    assert core.automations.fire_due_reminders() == 1
    core.automations.process_pending()
    # 5. L003 is touched on Friday; on Monday 9 March, 09:00 London, the qualified
    #    leads nobody touched for a week go to sofia.
    clock.set(datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    r.update_record(lead("L003"), values={"company": "Tan & Ashby LLP"}, actor=admin)
    core.automations.process_pending()
    clock.set(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))
    assert core.automations.fire_due_schedules() == 1
    core.automations.process_pending()

    stories = {name: _story(core, name) for name in names}
    for name, (from_runs, from_history) in stories.items():
        assert from_runs == from_history, name
        assert from_runs, f"{name} told no story"

    def told(name: str) -> list[tuple]:
        return [x[1:] for x in stories[name][0]]

    assert told("Meeting owner gets the lead") == [
        ("lead", lead("L001").id, "sofia", "completed"),
        ("lead", lead("L004").id, "leila", "failed"),
    ]
    meeting_runs = core.automations.runs("Meeting owner gets the lead", actor=None)
    assert [x["status"] for x in reversed(meeting_runs)] == [
        "succeeded",
        "failed",
    ]
    assert Grant.get(Grant.context_activity_id == meeting.id).access == 2

    assert told("Loan evaluation access") == [("lead", lead("L002").id, "arjun", "completed")]
    assert Grant.get(Grant.context_activity_id == evaluation.id).until_completed

    assert told("Credit evaluation for large home loans") == [("lead", lead("L002").id, "farah", "completed")]
    credit = Grant.get(Grant.user == core.users.get("farah").id)
    assert credit.until_completed
    assert Activity.get_by_id(credit.context_activity_id).type.name == "Credit Evaluation"

    assert told("Personal Loan opportunities to the team lead") == [
        ("opportunity", personal.id, "marta", "completed")
    ]
    personal_runs = core.automations.runs("Personal Loan opportunities to the team lead", actor=None)
    assert sorted(x["status"] for x in personal_runs) == ["skipped", "succeeded"]
    succeeded = next(x for x in personal_runs if x["status"] == "succeeded")
    (note,) = Notification.select().where(Notification.automation_run_id == succeeded["id"])
    assert note.user.username == "marta" and "Kitchen (15000)" in note.message

    o001 = Opportunity.get(Opportunity.ref == "O001")
    assert told("Task owner can read the opportunity") == [("opportunity", o001.id, "daniel", "completed")]

    qualified = {x.id for x in Lead.select().where(Lead.stage == "qualified")}
    assert lead("L003").id in qualified
    assert told("Untouched qualified leads to Sofia") == [
        ("lead", ident, "sofia", "completed") for ident in sorted(qualified - {lead("L003").id})
    ]

    # Every automation share request in history belongs to one of these runs.
    everything = [
        h
        for h in core.history.query(None, HistoryFilter(source="automation"), limit=None)
        if h["event"] in ("share", "renew")
    ]
    assert len(everything) == sum(len(h) for _, h in stories.values())


# -- regressions: each of these was a bug found by these tests -----------------------------


def test_a_worker_ticking_through_the_fall_back_night_fires_a_0230_job_once(bank, clock) -> None:
    core = bank.core
    clock.set(datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    add(core, SCHEDULE.replace('cron = "0 9 * * 1-5"', 'cron = "30 2 * * *"'), bank.admin)
    queued = []
    while clock.now() < datetime(2026, 10, 25, 12, 0, tzinfo=UTC):
        clock.advance(timedelta(minutes=10))
        if core.automations.fire_due_schedules():
            queued.append(clock.now())
    # 02:30 CEST on Sunday 25 October 2026 is 00:30 UTC; 02:30 CET (01:30 UTC) must not fire again.
    assert queued == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]


def test_a_dry_run_does_not_show_a_record_to_someone_who_may_not_read_it(bank) -> None:
    core = bank.core
    auto = add(core, published("notify", "lead_update", NOTIFY_RUTH), bank.admin)
    assert not core.access.can(bank.kenji, bank.lead, "read")
    with pytest.raises(PermissionDenied):
        core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.kenji)


class GrantListener:
    def __init__(self) -> None:
        self.granted: list[str | None] = []

    @hookimpl
    def sharetui_share_granted(self, event) -> None:
        self.granted.append(event.user)


def test_a_dry_run_inside_a_transaction_tells_plugins_of_no_grant(bank) -> None:
    core = bank.core
    auto = add(core, TWO_SHARES, bank.admin)
    listener = GrantListener()
    with plugin_registered(core, listener, name="grant-listener"):
        with core.db.atomic():
            report = core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.admin)
        assert report.status == "succeeded"
        assert Grant.select().count() == 0
        assert listener.granted == []


def test_share_lead_with_a_named_user_works_on_an_activity_trigger(bank) -> None:
    core = bank.core
    auto = add(
        core,
        published(
            "every meeting to sofia",
            "new_activity_on_lead",
            '[[actions]]\ntype = "share_lead"\nshare_with = "sofia"\nduration = "2d"\n',
        ),
        bank.admin,
    )
    core.records.post_activity(bank.lead, type="Meeting Scheduled", owner="daniel", actor=bank.priya)
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "succeeded", run["reason"]
    assert core.access.can(bank.sofia, bank.lead, "read")


def test_a_dry_run_on_the_wrong_record_type_says_opportunities(bank, opp) -> None:
    core = bank.core
    auto = add(core, published("notify", "lead_update", NOTIFY_RUTH), bank.admin)
    with pytest.raises(UsageError) as err:
        core.automations.test(auto.id, opp_ref(opp), actor=bank.admin)
    assert "not opportunities" in err.value.message


def test_a_bad_where_op_is_reported_on_its_own_line(core) -> None:
    text = SCHEDULE.replace('op = "="', 'op = "like"')
    line = next(i for i, x in enumerate(text.splitlines(), 1) if x == 'op = "like"')
    with pytest.raises(UsageError) as err:
        core.automations.parse(text, "x.toml")
    assert err.value.message.startswith(f"x.toml:{line}: ")


# -- whom a run acts for (DESIGN §9) ----------------------------------------------------------

MEETING_SHARE = """
name = "Meeting owner gets the lead"
status = "published"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Meeting Scheduled"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "14d"
access = "edit"
"""


def _viewer_rows(core, actor, lead) -> list[dict[str, Any]]:
    return core.history.query(actor, HistoryFilter(record=lead_ref(lead), source="automation"), limit=None)


def test_a_share_action_acts_for_the_person_whose_change_fired_it(bank) -> None:
    """tomas may edit priya's lead (Pre-Sales, modify) but not share it: a meeting he
    books for sofia must not give her the lead. priya, who owns it, may."""
    from sharetui.core.history import requested_by

    core = bank.core
    auto = add(core, MEETING_SHARE, bank.admin)
    core.records.post_activity(bank.lead, type="Meeting Scheduled", owner="sofia", actor=bank.tomas)
    (report,) = core.automations.process_pending()

    assert report.status == "failed"
    assert f"tomas may not share lead {bank.lead.id}" in report.reason
    assert report.trace["acting_for"] == "tomas"
    assert report.trace["actions"][0]["data"]["requester"] == "tomas"
    assert active_grants("sofia") == [] and not core.access.can(bank.sofia, bank.lead, "read")
    request = ShareRequest.get_by_id(report.trace["actions"][0]["data"]["request_id"])
    assert (request.requester_id, request.source, request.automation_run_id) == (
        bank.tomas.id,
        "automation",
        report.id,
    )
    # History names both the person and the automation; who may not read automations
    # (priya, a sales user) sees that it was one, not which.
    (row,) = _viewer_rows(core, bank.admin, bank.lead)
    assert (row["requester"], row["source"], row["automation"]) == ("tomas", "automation", auto.name)
    assert requested_by(row) == "tomas via automation 'Meeting owner gets the lead'"
    (seen,) = _viewer_rows(core, bank.priya, bank.lead)
    assert seen["automation"] is None and requested_by(seen) == "tomas via an automation"

    core.records.post_activity(bank.lead, type="Meeting Scheduled", owner="sofia", actor=bank.priya)
    (report,) = core.automations.process_pending()
    assert report.status == "succeeded", report.reason
    assert report.trace["actions"][0]["message"].endswith(" for priya")
    (grant,) = active_grants("sofia")
    assert ShareRequest.get_by_id(grant.request_id).requester_id == bank.priya.id


def test_on_behalf_of_automation_makes_the_request_as_the_automation(bank) -> None:
    from sharetui.core.history import requested_by

    core = bank.core
    add(core, MEETING_SHARE + 'on_behalf_of = "automation"\n', bank.admin)
    core.records.post_activity(bank.lead, type="Meeting Scheduled", owner="sofia", actor=bank.tomas)
    (report,) = core.automations.process_pending()

    assert report.status == "succeeded", report.reason
    assert report.trace["acting_for"] == "tomas", "the trace still says whose change fired it"
    step = report.trace["actions"][0]
    assert step["data"]["requester"] is None and step["message"].endswith(" as the automation")
    (grant,) = active_grants("sofia")
    assert ShareRequest.get_by_id(grant.request_id).requester_id is None
    request_row = _viewer_rows(core, bank.admin, bank.lead)[0]
    assert requested_by(request_row) == "automation 'Meeting owner gets the lead'"


def test_revoke_share_acts_for_the_person_too(bank) -> None:
    core = bank.core
    assert core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="30d").ok
    auto = add(
        core,
        published("closing access", "lead_update", '[[actions]]\ntype = "revoke_share"\nuser = "daniel"\n'),
        bank.admin,
    )
    core.records.update_record(bank.lead, values={"stage": "lost"}, actor=bank.tomas)
    core.automations.process_pending()
    core.records.update_record(bank.lead, values={"stage": "unqualified"}, actor=bank.priya)
    core.automations.process_pending()
    by_tomas, by_priya = runs(core, auto)
    assert by_tomas["status"] == "failed"
    assert f"tomas may not revoke shares on lead {bank.lead.id}" in by_tomas["reason"]
    assert by_priya["status"] == "succeeded", by_priya["reason"]
    assert by_priya["trace"]["actions"][0]["message"].endswith(" for priya")
    assert active_grants("daniel") == []


def test_a_task_reminder_acts_for_whoever_added_the_task(bank, opp, clock) -> None:
    """Whoever adds a task picks its owner and when its reminder fires, so the reminder
    acts for them (a tester handed an opportunity on through a reminder they set); a
    task the system added (a load) acts as the automation."""
    core = bank.core
    auto = add(
        core,
        published(
            "reminder share",
            "task_reminder_for_opportunity",
            '[[actions]]\ntype = "share_opportunity"\nshare_with = "owner_in_trigger"\nduration = "2d"\n',
        ),
        bank.admin,
    )
    core.records.add_task(
        opp_ref(opp),
        owner="daniel",
        subject="Payslips",
        actor=bank.priya,
        due_at=clock.now() + timedelta(days=1),
        reminder_at=clock.now() + timedelta(hours=1),
    )
    core.records.add_task(
        opp_ref(opp),
        owner="sofia",
        subject="Bank statements",
        actor=None,
        due_at=clock.now() + timedelta(days=1),
        reminder_at=clock.now() + timedelta(hours=1),
    )
    clock.advance(timedelta(hours=2))
    assert core.automations.fire_due_reminders() == 2
    core.automations.process_pending()
    by_priya, by_system = runs(core, auto)
    assert by_priya["status"] == "succeeded", by_priya["reason"]
    assert by_priya["trace"]["acting_for"] == "priya"
    assert by_system["trace"]["acting_for"] is None
    assert by_system["trace"]["actions"][0]["message"].endswith(" as the automation")


class TouchAndFire:
    """A plugin action that changes the record and fires a trigger of its own, and
    tells what it was handed (``ActionContext.acting_for``)."""

    seen: list[str | None]

    def __init__(self) -> None:
        self.seen = []

    @hookimpl
    def sharetui_register_triggers(self, register) -> None:
        register("lead_touched", "A plugin touched a lead", entity="lead")

    @hookimpl
    def sharetui_register_actions(self, register) -> None:
        def touch(ctx, config):
            self.seen.append(ctx.acting_for)
            ctx.services.records.update(ctx.record, fields={"touched": True})
            ctx.services.triggers.fire("lead_touched", ctx.record, {"actor_id": 1, "why": "test"})
            return Outcome.succeeded("touched")

        register("touch", "Touch the lead", touch)


def test_a_chain_of_automations_acts_for_the_person_who_started_it(bank) -> None:
    """tomas books a meeting; a plugin action (acting for him) edits the lead and fires a
    trigger. The automations those fire act for tomas too: neither may share the lead."""
    core = bank.core
    plugin = TouchAndFire()
    share_daniel = '[[actions]]\ntype = "share_lead"\nshare_with = "daniel"\nduration = "2d"\n'
    with plugin_registered(core, plugin, name="touch-and-fire"):
        add(core, published("touch", "new_activity_on_lead", '[[actions]]\ntype = "touch"\n'), bank.admin)
        on_update = add(core, published("on update", "lead_update", share_daniel), bank.admin)
        on_touch = add(core, published("on touch", "lead_touched", share_daniel), bank.admin)
        core.records.post_activity(bank.lead, type="Email Sent", actor=bank.tomas)
        core.automations.process_pending()
    assert plugin.seen == ["tomas"]
    events = {e.topic: e.payload for e in OutboxEvent.select().where(OutboxEvent.entity_id == bank.lead.id)}
    assert events["lead.updated"]["actor_id"] == bank.tomas.id
    assert events["trigger.lead_touched"]["actor_id"] == bank.tomas.id, "a plugin cannot name the actor"
    for auto in (on_update, on_touch):
        (run,) = runs(core, auto)
        assert run["trace"]["acting_for"] == "tomas"
        assert run["status"] == "failed" and "tomas may not share" in run["reason"]
    assert active_grants("daniel") == []


def test_a_plugin_action_may_ask_as_the_automation(bank) -> None:
    from sharetui.testing import action_context

    core = bank.core
    ctx = action_context(core, "x", lead_ref(bank.lead), acting_for=bank.tomas)
    assert ctx.acting_for == "tomas"
    refused = ctx.services.shares.share(lead_ref(bank.lead), "sofia", duration="1d")
    assert not refused.ok and "tomas may not share" in refused.reason
    granted = ctx.services.shares.share(
        lead_ref(bank.lead), "sofia", duration="1d", on_behalf_of="automation"
    )
    assert granted.ok and ShareRequest.get_by_id(granted.request_id).requester_id is None
    with pytest.raises(UsageError, match="on_behalf_of must be"):
        ctx.services.shares.revoke(lead_ref(bank.lead), "sofia", on_behalf_of="me")  # type: ignore[arg-type]


def test_a_dry_run_acts_for_the_user_running_it(bank) -> None:
    core = bank.core
    auto = add(core, MEETING_SHARE, bank.admin)
    as_admin = core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.admin)
    assert as_admin.status == "succeeded" and as_admin.trace["acting_for"] == "admin"
    assert as_admin.trace["actions"][0]["message"].endswith(" for admin")
    as_ruth = core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.manager)
    assert as_ruth.status == "succeeded" and as_ruth.trace["acting_for"] == "ruth"
    with pytest.raises(PermissionDenied):  # a dry run shows a trace: not for sales users (§9)
        core.automations.test(auto.id, lead_ref(bank.lead), actor=bank.tomas)
    as_system = core.automations.test(auto.id, lead_ref(bank.lead), actor=None)
    assert as_system.trace["acting_for"] is None
    assert as_system.trace["actions"][0]["message"].endswith(" as the automation")
    assert Grant.select().count() == 0 and ShareRequest.select().count() == 0


def test_an_event_naming_an_unknown_person_fails_closed(bank) -> None:
    """Users are never deleted, so an actor id naming nobody is a damaged event: the
    run acts for someone who may share nothing, never with the automation's rights."""
    core = bank.core
    auto = add(core, MEETING_SHARE, bank.admin)
    with core.db.atomic():
        core.outbox.emit(
            "activity.created",
            "lead",
            bank.lead.id,
            {"activity_id": bank.meeting.id, "type": "Meeting Scheduled", "actor_id": 99_999},
        )
    core.automations.process_pending()
    (run,) = runs(core, auto)
    assert run["status"] == "failed" and active_grants() == []


def test_on_behalf_of_takes_trigger_or_automation(core) -> None:
    text = MEETING_SHARE + 'on_behalf_of = "priya"\n'
    with pytest.raises(UsageError) as err:
        core.automations.parse(textwrap.dedent(text), "x.toml")
    assert "actions[0].on_behalf_of: 'priya' is not one of trigger, automation" in err.value.message


def test_the_sample_automations_act_for_whoever_fired_them(core) -> None:
    """On the sample bank: tomas (Pre-Sales, modify) cannot pass priya's lead on through
    the meeting automation; the Personal Loans policy reaches marta whoever creates the
    opportunity, even with owners_can_share off."""
    from sharetui.db.models import Lead, Opportunity

    Loader(core).load(SAMPLE_DATA, actor=None)
    users = {name: core.users.get(name) for name in ("admin", "tomas", "priya", "jamal")}
    l001 = Lead.get(Lead.ref == "L001")
    core.records.post_activity(l001, type="Meeting Scheduled", owner="jamal", actor=users["tomas"])
    (meeting,) = core.automations.process_pending()
    assert meeting.status == "failed" and f"tomas may not share lead {l001.id}" in meeting.reason
    assert not core.access.can("jamal", l001, "read")

    core.settings.set("owners_can_share", False, actor=users["admin"])
    l048 = Lead.get(Lead.ref == "L048")
    opp = core.records.add_opportunity(
        lead=l048.id, name="Car", type="Personal Loan", amount=9000, owner="jamal", actor=users["jamal"]
    )
    reports = {r.automation: r for r in core.automations.process_pending()}
    policy = reports["Personal Loan opportunities to the team lead"]
    assert policy.status == "succeeded", policy.reason
    assert policy.trace["acting_for"] == "jamal"
    assert core.access.can("marta", Opportunity.get_by_id(opp.id), "edit")


# -- run traces are capped ---------------------------------------------------------------------


def _stored_trace_bytes(run_id: int) -> int:
    (text,) = AutomationRun.select(AutomationRun.trace).where(AutomationRun.id == run_id).tuples().get()
    if not isinstance(text, str):
        text = json.dumps(text, sort_keys=True, ensure_ascii=False)
    return len(text.encode())


def test_a_big_in_list_is_cut_from_the_stored_trace(bank) -> None:
    """An admin's 200,000-item ``in`` list stored about 2.4 MB of trace per run (21 MB
    with two million): the stored trace stays under run_trace_max_bytes and says where
    it was cut, and the run's reason stays short."""
    core = bank.core
    names = ", ".join(f'"L{i:07d}"' for i in range(200_000))
    auto = add(
        core,
        published(
            "known refs",
            "lead_update",
            NOTIFY_RUTH,
            extra=f'\n[[conditions]]\nfield = "lead.name"\nop = "in"\nvalue = [{names}]\n',
        ),
        bank.admin,
    )
    core.records.update_record(bank.lead, values={"stage": "contacted"}, actor=bank.priya)
    (report,) = core.automations.process_pending()

    assert report.status == "skipped"
    assert len(report.reason) < 1_100 and "more bytes)" in report.reason
    assert _stored_trace_bytes(report.id) <= 65_536
    (run,) = runs(core, auto)
    trace = run["trace"]
    assert trace["truncated"] is True
    (cond,) = trace["conditions"]
    assert (cond["field"], cond["op"], cond["result"], cond["actual"]) == (
        "lead.name",
        "in",
        False,
        "Mira Demir",
    )
    assert cond["value"][:2] == ["L0000000", "L0000001"]
    assert cond["value"][-1].startswith("…(cut: ") and cond["value"][-1].endswith(" more bytes)")
    assert int(cond["value"][-1].removeprefix("…(cut: ").split(" ")[0].replace(",", "")) > 2_000_000
    assert trace["trigger"]["data"]["lead"]["name"] == "Mira Demir", "small parts are kept"

    # The cap is a setting, within bounds.
    core.settings.set("run_trace_max_bytes", 8192, actor=bank.admin)
    core.records.update_record(bank.lead, values={"stage": "qualified"}, actor=bank.priya)
    (report,) = core.automations.process_pending()
    assert _stored_trace_bytes(report.id) <= 8192
    for bad, says in ((100, "at least 4096"), (10**9, "at most 67108864")):
        with pytest.raises(UsageError, match=says):
            core.settings.set("run_trace_max_bytes", bad, actor=bank.admin)


class BigResult:
    @hookimpl
    def sharetui_register_actions(self, register) -> None:
        register(
            "big",
            "Return a huge result",
            lambda ctx, config: Outcome.failed("x" * 300_000, blob="y" * 300_000),
        )


def test_a_huge_action_result_is_cut_from_the_step_and_the_trace(bank) -> None:
    core = bank.core
    with plugin_registered(core, BigResult(), name="big-result"):
        add(core, published("big", "lead_update", '[[actions]]\ntype = "big"\n'), bank.admin)
        core.records.update_record(bank.lead, values={"stage": "contacted"}, actor=bank.priya)
        (report,) = core.automations.process_pending()
    assert report.status == "failed" and len(report.reason) < 1_100
    assert _stored_trace_bytes(report.id) <= 65_536
    (step,) = report.trace["actions"]
    assert (step["step"], step["type"], step["status"]) == (0, "big", "failed")
    assert "more bytes)" in step["data"]["blob"] and report.trace["truncated"] is True
    stored = AutomationStep.get(AutomationStep.run == report.id)
    assert len(json.dumps(stored.outcome, ensure_ascii=False).encode()) <= 65_536
    assert stored.outcome["truncated"] is True and stored.outcome["status"] == "failed"

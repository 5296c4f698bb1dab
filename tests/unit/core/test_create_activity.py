"""The create_activity action (issue 19): an automation posts an activity, then later
steps share the record with its owner, in its context, until it is completed.

The bank (conftest): admin; in Pre-Sales priya (manage), tomas (modify), leila (view),
kenji (own); in Sales daniel (manage) and sofia (modify). ``bank.lead`` is priya's.
"""

from __future__ import annotations

import textwrap
from collections import Counter

import pytest

from sharetui.db.models import (
    Activity,
    AutomationRun,
    AutomationStep,
    Grant,
    HistoryEvent,
    OutboxEvent,
    ShareRequest,
)
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType

EVALUATE_AND_SHARE = """
name = "evaluate"
status = "published"

[trigger]
type = "new_opportunity"

[[conditions]]
field = "opportunity.amount"
op = ">="
value = 250000

[[actions]]
type = "create_activity"
on = "lead"
activity_type = "Credit Evaluation"
owner = "{owner}"
group = "Credit"
note = "Credit check for {{opportunity.name}}"
fields = {{ amount = "{{opportunity.amount}}", source = "automation" }}
on_behalf_of = "automation"

[[actions]]
type = "share_lead"
share_with = "owner_of_created_activity"
context = "created_activity"
until_completed = true
access = "read"
duration = "14d"
on_behalf_of = "automation"
"""


@pytest.fixture
def credit(bank):
    users = bank.core.users
    bank.core.records.add_activity_type("Credit Evaluation", actor=bank.admin)
    for name in ("farah", "ines", "omar"):
        users.add(name, role="sales", groups={"Credit": "own"}, actor=bank.admin)
    return bank


def add(core, toml: str, actor):
    return core.automations.add(core.automations.parse(textwrap.dedent(toml), "x.toml"), actor=actor)


def new_loan(bank, amount=300000, name="Loan"):
    return bank.core.records.add_opportunity(
        lead=bank.lead.id, name=name, type="Home Loan", owner=bank.priya, amount=amount, actor=bank.priya
    )


def access_of(core, username, lead_id) -> Access:
    return core.access.level(core.users.get(username).id, RecordRef(EntityType.LEAD, lead_id))


def test_create_share_in_context_complete_and_access_ends(credit):
    core = credit.core
    add(core, EVALUATE_AND_SHARE.format(owner="farah"), credit.admin)
    new_loan(credit, name="Flat, Leeds")
    (run,) = core.automations.process_pending()
    assert run.status == "succeeded", run.reason

    act = Activity.get((Activity.lead == credit.lead.id) & (Activity.owner == core.users.get("farah").id))
    assert act.note == "Credit check for Flat, Leeds"
    assert act.fields == {"amount": "300000", "source": "automation"}
    grant = Grant.get(Grant.user == core.users.get("farah").id)
    assert (grant.context_activity_id, grant.until_completed, grant.access) == (act.id, True, Access.READ)
    assert access_of(core, "farah", credit.lead.id) is Access.READ

    core.records.update_activity(act.id, status="completed", actor=core.users.get("farah"))
    core.automations.process_pending()
    assert access_of(core, "farah", credit.lead.id) is Access.NONE


def test_the_created_activity_fires_its_own_trigger(credit):
    core = credit.core
    add(core, EVALUATE_AND_SHARE.format(owner="ines"), credit.admin)
    add(
        core,
        """
        name = "on evaluations"
        status = "published"

        [trigger]
        type = "new_activity_on_lead"
        activity_types = ["Credit Evaluation"]

        [[actions]]
        type = "notify"
        to = "owner_in_trigger"
        message = "you have an evaluation on {lead.name}"
        """,
        credit.admin,
    )
    new_loan(credit)
    reports = core.automations.process_pending()
    assert [(r.automation, r.status) for r in reports] == [
        ("evaluate", "succeeded"),
        ("on evaluations", "succeeded"),
    ]
    assert core.notifications.of_user(core.users.get("ines"), actor=None)[0]["message"].startswith(
        "you have an evaluation"
    )


def test_the_loop_guard_stops_an_automation_feeding_itself(credit):
    core = credit.core
    core.settings.set("automation_daily_limit", 5, actor=credit.admin)
    add(
        core,
        """
        name = "echo"
        status = "published"

        [trigger]
        type = "new_activity_on_lead"
        activity_types = ["Credit Evaluation"]

        [[actions]]
        type = "create_activity"
        activity_type = "Credit Evaluation"
        owner = "owner_in_trigger"
        on_behalf_of = "automation"
        """,
        credit.admin,
    )
    core.records.post_activity(credit.lead, type="Credit Evaluation", owner="farah", actor=credit.priya)
    for _ in range(30):
        if not core.automations.process_pending():
            break
    runs = list(AutomationRun.select())
    assert Counter(r.status for r in runs) == {"succeeded": 5, "skipped": 1}
    assert "loop guard" in next(r.reason for r in runs if r.status == "skipped")
    # The meeting, the one posted by hand, and one per run that went ahead.
    assert Activity.select().count() == 2 + 5


def test_a_retried_run_creates_one_activity_and_one_share(credit):
    core = credit.core
    add(core, EVALUATE_AND_SHARE.format(owner="farah"), credit.admin)
    new_loan(credit)

    # Killed between the two steps: everything rolls back with the event.
    core.automations.crash_after_step = 0
    try:
        with pytest.raises(BaseException, match="simulated crash after step 0"):
            core.automations.process_pending()
    finally:
        core.automations.crash_after_step = None
    assert Activity.select().where(Activity.note.startswith("Credit check")).count() == 0
    assert Grant.select().count() == 0

    core.automations.process_pending()
    assert Activity.select().where(Activity.note.startswith("Credit check")).count() == 1
    assert Grant.select().count() == 1


def test_a_resumed_run_shares_with_the_activity_its_first_step_made(credit):
    """A run left 'running' with its first step recorded (its event delivered again)
    skips that step and still knows the activity it created."""
    core = credit.core
    add(core, EVALUATE_AND_SHARE.format(owner="farah"), credit.admin)
    new_loan(credit)
    (run,) = core.automations.process_pending()
    act = Activity.get(Activity.note.startswith("Credit check"))
    # Undo the second step and the run's end, as if the process died right after step 0.
    with core.db.atomic():
        grant = Grant.get()
        HistoryEvent.delete().where(HistoryEvent.request_id == grant.request_id).execute()
        Grant.delete().execute()
        ShareRequest.delete().execute()
        AutomationStep.delete().where((AutomationStep.run == run.id) & (AutomationStep.step == 1)).execute()
        AutomationRun.update(status="running").where(AutomationRun.id == run.id).execute()
        event = AutomationRun.get_by_id(run.id).event_id
        OutboxEvent.update(processed_at=None).where(OutboxEvent.id == event).execute()

    core.automations.process_pending()
    assert Activity.select().where(Activity.note.startswith("Credit check")).count() == 1
    (grant,) = Grant.select()
    assert grant.context_activity_id == act.id and grant.user.username == "farah"
    assert AutomationRun.get_by_id(run.id).status == "succeeded"


def test_round_robin_is_fair_over_100_runs(credit):
    core = credit.core
    add(core, EVALUATE_AND_SHARE.format(owner="round_robin"), credit.admin)
    for i in range(100):
        new_loan(credit, name=f"loan {i}")
    core.automations.process_pending()
    owners = Counter(
        a.owner.username for a in Activity.select().where(Activity.note.startswith("Credit check"))
    )
    assert sum(owners.values()) == 100
    assert set(owners) == {"farah", "ines", "omar"}
    assert max(owners.values()) - min(owners.values()) <= 1


def test_round_robin_skips_deactivated_members(credit):
    core = credit.core
    core.users.deactivate("ines", actor=credit.admin)
    add(core, EVALUATE_AND_SHARE.format(owner="round_robin"), credit.admin)
    for i in range(4):
        new_loan(credit, name=f"loan {i}")
    core.automations.process_pending()
    owners = [a.owner.username for a in Activity.select().where(Activity.note.startswith("Credit check"))]
    assert owners == ["farah", "omar", "farah", "omar"]


def test_the_dry_run_shows_what_would_be_created_and_creates_nothing(credit):
    core = credit.core
    auto = add(core, EVALUATE_AND_SHARE.format(owner="round_robin"), credit.admin)
    opp = new_loan(credit)
    core.automations.process_pending()
    before = (Activity.select().count(), Grant.select().count())
    report = core.automations.test(auto.id, RecordRef(EntityType.OPPORTUNITY, opp.id), actor=credit.admin)
    steps = report.trace["actions"]
    assert steps[0]["message"].startswith("would create 'Credit Evaluation' activity on lead")
    assert "owned by ines" in steps[0]["message"]  # farah had the first real run
    assert steps[1]["message"].startswith("would share lead") and "context activity" in steps[1]["message"]
    assert (Activity.select().count(), Grant.select().count()) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('owner = "round_robin"\ngroup = "Nobody"', "no active sales members"),
        ('owner = "round_robin"', "needs group"),
    ],
)
def test_a_create_activity_that_cannot_pick_an_owner_says_why(credit, change, message):
    core = credit.core
    toml = EVALUATE_AND_SHARE.format(owner="x").replace('owner = "x"\ngroup = "Credit"', change)
    add(core, toml, credit.admin)
    new_loan(credit)
    (run,) = core.automations.process_pending()
    assert message in (run.reason or run.trace["actions"][0]["message"])
    assert Activity.select().where(Activity.note.startswith("Credit check")).count() == 0


def test_share_with_the_created_activitys_owner_needs_a_create_step(credit):
    core = credit.core
    toml = EVALUATE_AND_SHARE.format(owner="farah")
    toml = (
        toml[: toml.index("[[actions]]")] + toml[toml.index("[[actions]]", toml.index("[[actions]]") + 1) :]
    )
    add(core, toml, credit.admin)
    new_loan(credit)
    (run,) = core.automations.process_pending()
    assert run.status == "skipped" and "create_activity" in run.reason
    assert Grant.select().count() == 0

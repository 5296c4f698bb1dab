"""A trigger's configuration filters its events (``matches``), says what it filters
(``describe``), and the run trace keeps the data the trigger fired with."""

from __future__ import annotations

from sharetui import hookimpl
from sharetui.sdk import ConfigField, EntityType, Outcome, RecordRef
from sharetui.testing import plugin_registered


class Scored:
    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken

    @hookimpl
    def sharetui_register_triggers(self, register):
        def matches(config, event):
            if self.broken:
                raise RuntimeError("filter down")
            return event["event"]["score"] >= config.get("threshold", 80)

        register(
            "lead_scored",
            "A lead got a score",
            config={"threshold": ConfigField((int, float), default=80)},
            entity="lead",
            matches=matches,
            describe=lambda config: f"score at least {config.get('threshold', 80)}",
        )

    @hookimpl
    def sharetui_register_actions(self, register):
        register("noop", "does nothing", lambda ctx, config: Outcome.succeeded("ok"))


def _automation(core, admin, threshold):
    definition = core.automations.validate(
        {
            "name": f"hot {threshold}",
            "status": "published",
            "trigger": {"type": "lead_scored", "threshold": threshold},
            "actions": [{"type": "noop"}],
        }
    )
    return core.automations.add(definition, actor=admin)


def test_only_automations_whose_config_matches_run(bank):
    core = bank.core
    lead = RecordRef(EntityType.LEAD, bank.lead.id)
    with plugin_registered(core, Scored(), name="scored"):
        _automation(core, bank.admin, 50)
        _automation(core, bank.admin, 90)
        core.automations.fire("lead_scored", lead, {"score": 70})
        reports = core.automations.process_pending()
        assert [r.automation for r in reports] == ["hot 50"]
        assert reports[0].trace["trigger"]["data"]["event"] == {"score": 70}
        listed = {a["name"]: a.get("trigger_filter") for a in core.automations.list(actor=bank.admin)}
        assert listed == {"hot 50": "score at least 50", "hot 90": "score at least 90"}


def test_a_filter_that_fails_matches_nothing_and_is_recorded(bank):
    core = bank.core
    lead = RecordRef(EntityType.LEAD, bank.lead.id)
    with plugin_registered(core, Scored(broken=True), name="scored"):
        _automation(core, bank.admin, 50)
        core.automations.fire("lead_scored", lead, {"score": 70})
        assert core.automations.process_pending() == []
        assert any("filter down" in e for e in core.plugins.plugins["scored"].errors)


def test_the_builtin_activity_type_filter_goes_the_same_way(bank):
    trigger = bank.core.plugins.triggers["new_activity_on_lead"]
    assert trigger.matches(
        {"activity_types": ["Meeting Scheduled"]}, {"activity": {"type": "Meeting Scheduled"}}
    )
    assert not trigger.matches({"activity_types": ["Loan Evaluation"]}, {"activity": {"type": "Email Sent"}})
    assert trigger.matches({}, {"activity": {"type": "Email Sent"}})
    assert trigger.describe({"activity_types": ["Loan Evaluation"]}) == "activity type in Loan Evaluation"


def test_a_dry_run_warns_when_the_triggers_plugin_is_set_aside(bank):
    core = bank.core
    with plugin_registered(core, Scored(), name="scored"):
        automation = _automation(core, bank.admin, 50)
        assert (
            core.automations.test(
                automation.id, RecordRef(EntityType.LEAD, bank.lead.id), actor=bank.admin
            ).trace.get("warnings")
            is None
        )
        core.plugins.plugins["scored"].set_aside = "5 failures in a row"
        report = core.automations.test(
            automation.id, RecordRef(EntityType.LEAD, bank.lead.id), actor=bank.admin
        )
        aside = "comes from plugin scored, which is set aside until restart (5 failures in a row)"
        assert report.trace["warnings"] == [f"trigger 'lead_scored' {aside}", f"action 'noop' {aside}"]

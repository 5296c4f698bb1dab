"""The score-threshold trigger: automations run once per crossing of their threshold."""

from __future__ import annotations

import sharetui_score_threshold as plugin

from sharetui.testing import company, plugin_registered, temporary_core

AUTOMATION = {
    "name": "hot lead",
    "status": "published",
    "trigger": {"type": "lead_score_crossed", "threshold": 80},
    "actions": [{"type": "share_lead", "share_with": "daniel", "duration": "3d"}],
}


def test_a_lead_crossing_the_threshold_runs_the_automation_once(tmp_path):
    with temporary_core(tmp_path) as core, plugin_registered(core, plugin):
        people = company(core)
        core.automations.add(core.automations.validate(AUTOMATION), actor=people.admin)
        for score in (75, 85, 90):  # 75: below; 85: crossed; 90: still above
            core.records.update_record(people.lead, actor=people.priya, fields={"score": score})
        reports = core.automations.process_pending()
        assert [r.status for r in reports] == ["succeeded"]
        assert reports[0].trace["trigger"]["data"]["event"] == {"before": 75.0, "after": 85.0}
        assert reports[0].trace["acting_for"] == "priya"  # whose change it was
        assert [g["user"] for g in core.sharing.grants(actor=None)] == ["daniel"]


def test_the_filter_compares_each_automations_threshold():
    assert plugin.matches({"threshold": 80}, {"event": {"before": 79, "after": 80}})
    assert plugin.matches({}, {"event": {"before": None, "after": 95}})
    assert not plugin.matches({"threshold": 80}, {"event": {"before": 81, "after": 99}})
    assert not plugin.matches({"threshold": 90}, {"event": {"before": 70, "after": 85}})
    assert plugin.describe({"threshold": 60}) == "score crosses 60"


def test_the_threshold_is_a_number_int_or_float(tmp_path):
    with temporary_core(tmp_path) as core, plugin_registered(core, plugin):
        schema = core.plugins.triggers["lead_score_crossed"].config
        from sharetui.sdk import validate_config

        assert validate_config(schema, {"threshold": 80}) == []
        assert validate_config(schema, {"threshold": 80.5}) == []
        assert validate_config(schema, {"threshold": "80"}) == ["threshold: expected a number, got text"]

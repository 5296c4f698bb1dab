import example_run_finished as plugin

from sharetui.testing import company, plugin_registered, process_events, temporary_core


def test_finished_runs_are_counted(tmp_path):
    plugin.STATUSES.clear()
    with temporary_core(tmp_path) as core:
        people = company(core)
        automation = {
            "name": "tell priya",
            "status": "published",
            "trigger": {"type": "lead_update"},
            "actions": [{"type": "notify", "to": "priya", "message": "{lead.name} changed"}],
        }
        core.automations.add(core.automations.validate(automation), actor=people.admin)
        with plugin_registered(core, plugin):
            core.records.update_record(people.lead, actor=people.priya, values={"stage": "Qualified"})
            process_events(core)
    assert plugin.STATUSES == {"succeeded": 1}

import example_trigger as plugin

from sharetui.testing import company, fire_trigger, plugin_registered, process_events, temporary_core


def automation(min_amount):
    return {
        "name": f"won over {min_amount}",
        "status": "published",
        "trigger": {"type": "deal_won", "min_amount": min_amount},
        "actions": [{"type": "notify", "to": "ruth", "message": "{opportunity.name} won"}],
    }


def test_a_won_deal_runs_the_automations_whose_minimum_it_reaches(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)  # the opportunity's amount is 250000
        with plugin_registered(core, plugin):
            for minimum in (100000, 1000000):
                core.automations.add(core.automations.validate(automation(minimum)), actor=people.admin)
            core.records.update_record(people.opportunity, actor=people.priya, values={"stage": "Won"})
            [run] = process_events(core)
            assert run.automation == "won over 100000" and run.status == "succeeded"
            assert run.trace["trigger"]["data"]["event"] == {"previous_stage": "prospecting"}
            assert [r.automation for r in fire_trigger(core, "deal_won", people.opportunity)] == [
                "won over 100000"
            ]

import example_action as plugin
import pytest

from sharetui.testing import company, plugin_registered, run_action, temporary_core


def test_the_action_tags_the_record_as_the_person_it_acts_for(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        with plugin_registered(core, plugin):
            outcome = run_action(core, "tag_record", people.lead, {"tag": "hot"}, acting_for="priya")
            assert outcome.status == "succeeded"
            assert core.records.get(people.lead).fields["tag"] == "hot"
            refused = run_action(core, "tag_record", people.lead, {"tag": "x"}, acting_for="wei")
            assert refused.status == "failed"  # wei may not edit priya's lead: the step fails
            with pytest.raises(ValueError, match="tag: required"):
                run_action(core, "tag_record", people.lead, {})

import example_check_access as plugin

from sharetui.testing import company, plugin_registered, temporary_core


def test_marketing_edits_unless_the_lead_is_marked(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        with plugin_registered(core, plugin):
            assert core.access.can("nadia", people.lead, "edit")
            core.records.update_record(people.lead, actor=people.priya, fields={"do_not_touch": True})
            assert not core.access.can("nadia", people.lead, "edit")
            assert not core.access.can("priya", people.lead, "edit")  # the owner too
            assert core.access.can("priya", people.lead, "read")

import example_record_changed as plugin

from sharetui.testing import as_user, company, plugin_registered, temporary_core


def test_the_owner_hears_of_a_stage_change_by_someone_else(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        with plugin_registered(core, plugin):
            as_user(core, "ruth").records.update(people.lead, values={"stage": "Qualified"})
            as_user(core, "priya").records.update(people.lead, values={"stage": "Won"})  # her own
        [note] = core.notifications.of_user(people.priya, actor=people.priya)
        assert note["message"] == "ruth moved Mira Demir to Qualified"

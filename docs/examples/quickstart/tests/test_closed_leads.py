import closed_leads

from sharetui.testing import company, plugin_registered, temporary_core


def test_sales_may_read_but_not_edit_closed_leads(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)  # priya (sales) owns lead (stage "new") and closed_lead
        with plugin_registered(core, closed_leads):
            assert core.access.can("priya", people.closed_lead, "read")
            assert not core.access.can("priya", people.closed_lead, "edit")
            assert core.access.can("priya", people.lead, "edit")
            assert core.access.can("ruth", people.closed_lead, "edit")  # a sales manager

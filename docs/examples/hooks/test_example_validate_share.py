import example_validate_share as plugin

from sharetui.testing import company, plugin_registered, temporary_core


def test_long_edit_shares_are_refused(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        with plugin_registered(core, plugin):
            long = core.sharing.share(
                "lead", people.lead.id, "daniel", requester=people.priya, access="edit", duration="90d"
            )
            short = core.sharing.share(
                "lead", people.lead.id, "daniel", requester=people.priya, access="edit", duration="7d"
            )
        assert (
            not long.ok and long.reason == "example-short-edit-shares: edit shares may last at most 30 days"
        )
        assert short.ok

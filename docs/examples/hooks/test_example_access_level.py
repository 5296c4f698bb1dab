import example_access_level as plugin

from sharetui.sdk import UserInfo
from sharetui.testing import company, plugin_registered, temporary_core


def test_a_locked_out_owner_reaches_nothing(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        priya = people.priya
        plugin.LOCKED_OUT[priya.id] = UserInfo(priya.id, "priya", "sales", True)
        try:
            with plugin_registered(core, plugin):
                assert not core.access.can("priya", people.lead, "read")
                assert core.access.can("daniel", people.lead, "read") is False  # rules as before
                assert core.access.can("ruth", people.lead, "edit")
        finally:
            plugin.LOCKED_OUT.clear()

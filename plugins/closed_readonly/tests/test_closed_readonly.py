"""Closed records: read-only through a share, editable by the owner as before."""

from __future__ import annotations

import sharetui_closed_readonly as plugin

from sharetui.testing import company, plugin_registered, temporary_core


def test_a_share_reads_but_does_not_edit_a_closed_lead(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        for record in (people.lead, people.closed_lead):
            core.sharing.share(
                "lead", record.id, "daniel", requester=people.admin, duration="7d", access="edit"
            )
        with plugin_registered(core, plugin):
            assert core.access.can("daniel", people.closed_lead, "read")
            assert not core.access.can("daniel", people.closed_lead, "edit")
            assert core.access.can("daniel", people.lead, "edit")  # not closed
            assert core.access.can("priya", people.closed_lead, "edit")  # the owner
            assert core.access.can("admin", people.closed_lead, "edit")


def test_group_access_is_not_only_a_share(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        core.users.add("mo", role="sales", groups={"Pre-Sales": "modify"}, actor=people.admin)
        with plugin_registered(core, plugin):
            assert core.access.can("mo", people.closed_lead, "edit")


def test_closing_a_record_takes_effect_at_once(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)
        core.sharing.share("lead", people.lead.id, "daniel", requester=people.admin, access="edit")
        with plugin_registered(core, plugin):
            assert core.access.can("daniel", people.lead, "edit")
            core.records.update_record(people.lead, actor=people.priya, values={"stage": "Closed Won"})
            assert not core.access.can("daniel", people.lead, "edit")

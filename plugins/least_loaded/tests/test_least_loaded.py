"""The least-loaded action: the member holding the fewest shares gets the next one."""

from __future__ import annotations

import pytest
import sharetui_least_loaded as plugin

from sharetui.testing import company, plugin_registered, run_action, temporary_core


@pytest.fixture
def people(tmp_path):
    with temporary_core(tmp_path) as core:
        made = company(core)
        with plugin_registered(core, plugin):
            yield made


def _lead(people, name):
    lead = people.core.records.add_lead(name=name, owner=people.priya, actor=people.admin)
    return lead.record_ref


def test_each_share_goes_to_whoever_holds_the_fewest(people):
    core = people.core
    core.sharing.share("lead", _lead(people, "A").id, "daniel", requester=people.admin)
    core.sharing.share("lead", _lead(people, "B").id, "sofia", requester=people.admin)
    config = {"group": "Sales", "on_behalf_of": "automation"}
    first = run_action(core, "share_with_least_loaded", people.lead, config)
    assert first.status == "succeeded" and first.data["user"] == "wei"  # 0 shares
    second = run_action(core, "share_with_least_loaded", _lead(people, "C"), config)
    assert second.data["user"] == "daniel"  # all hold 1 now: the first username
    assert second.data["loads"] == {"daniel": 1, "sofia": 1, "wei": 1}


def test_a_share_is_requested_by_whoever_fired_the_run(people):
    outcome = run_action(
        people.core, "share_with_least_loaded", people.lead, {"group": "Sales"}, acting_for="wei"
    )
    assert outcome.status == "failed" and "may read" in outcome.message  # wei may not read priya's lead
    ok = run_action(
        people.core, "share_with_least_loaded", people.lead, {"group": "Sales"}, acting_for="priya"
    )
    assert ok.status == "succeeded"


def test_the_configuration_is_checked_with_the_products_messages(people):
    with pytest.raises(ValueError, match="group: no sales group named 'Nobody'"):
        run_action(people.core, "share_with_least_loaded", people.lead, {"group": "Nobody"})
    with pytest.raises(ValueError, match="access: 'write' is not one of read, edit"):
        run_action(people.core, "share_with_least_loaded", people.lead, {"group": "Sales", "access": "write"})


def test_a_dry_run_changes_nothing(people):
    outcome = run_action(
        people.core, "share_with_least_loaded", people.lead, {"group": "Sales"}, dry_run=True
    )
    assert outcome.status == "succeeded" and outcome.message.startswith("would share")
    assert people.core.sharing.grants(actor=None) == []

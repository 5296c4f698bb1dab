"""The rotation action: each run shares with the next member of the group."""

from __future__ import annotations

import pytest
import sharetui_group_rotation as plugin

from sharetui.sdk import validate_config
from sharetui.testing import action_context, plugin_registered, small_company, temporary_core


@pytest.fixture
def bank(tmp_path):
    with temporary_core(tmp_path) as core:
        company = small_company(core)
        core.users.add("wei", role="sales", groups={"Sales": "view"}, actor=company.admin)
        with plugin_registered(core, plugin):
            yield company


def context(bank, *, dry_run=False, run_id=1):
    return action_context(bank.core, "group-rotation", bank.lead, run_id=run_id, dry_run=dry_run)


def test_the_action_is_registered_with_its_schema(bank):
    action = bank.core.plugins.actions["share_with_group_rotation"]
    assert action.plugin == "group-rotation"
    assert validate_config(action.config, {"group": "Sales"}) == []
    assert validate_config(action.config, {"duration": "7d"}) == ["group: required"]
    assert validate_config(action.config, {"group": "Sales", "duration": "3 parsecs"})[0].startswith(
        "duration:"
    )


def test_each_run_shares_with_the_next_member_in_turn(bank):
    action = bank.core.plugins.actions["share_with_group_rotation"]
    config = {"group": "Sales", "duration": "3d", "access": "edit"}
    recipients = [action.run(context(bank, run_id=i), config).data["recipient"] for i in range(4)]
    assert recipients == ["daniel", "sofia", "wei", "daniel"]
    shares = bank.core.sharing.grants(actor=None)
    assert {g["user"] for g in shares} == {"daniel", "sofia", "wei"}
    assert all(g["source"] == "automation" and g["access"] == "edit" for g in shares)


def test_a_dry_run_says_who_and_changes_nothing(bank):
    action = bank.core.plugins.actions["share_with_group_rotation"]
    outcome = action.run(context(bank, dry_run=True), {"group": "Sales"})
    assert outcome.status == "succeeded" and "would share" in outcome.message
    assert bank.core.sharing.grants(actor=None) == []
    assert action.run(context(bank), {"group": "Sales"}).data["recipient"] == "daniel"


def test_a_failed_share_does_not_move_the_turn(bank):
    action = bank.core.plugins.actions["share_with_group_rotation"]
    bank.core.settings.set("share_cap_leads", 1, actor=None)
    bank.core.sharing.share(
        "lead",
        bank.core.records.add_lead(name="Other", owner="priya", actor=bank.admin).id,
        "daniel",
        requester=bank.admin,
        duration="1d",
    )
    outcome = action.run(context(bank), {"group": "Sales"})
    assert outcome.status == "failed" and "cap" in outcome.message
    assert context(bank).plugin_state.get("turn:Sales", 0) == 0


def test_a_group_without_members_fails_clearly(bank):
    action = bank.core.plugins.actions["share_with_group_rotation"]
    outcome = action.run(context(bank), {"group": "Nobody Here"})
    assert outcome.status == "failed" and "no active sales member" in outcome.message

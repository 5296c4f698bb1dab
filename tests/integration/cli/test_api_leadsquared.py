"""``sharetui api`` takes the bodies LeadSquared scripts send, unchanged (DESIGN §7)."""

from __future__ import annotations

import json


def test_sharetui_api_takes_leadsquared_share_and_revoke_bodies(cli, bank) -> None:
    item = {
        "UserId": "daniel",
        "Entity": 1,
        "EntityType": 3,
        "EntityId": str(bank.lead.id),
        "ContextEntity": 1,
        "ContextEntityId": str(bank.meeting.id),
        "AccessType": 2,
        "DurationInMinutes": 30,
    }
    shared = cli("api", "share", input=json.dumps([item]), user="priya")
    assert shared.exit_code == 0, shared.stderr
    assert shared.json()[0]["status"] == "completed"
    revoke = {k: v for k, v in item.items() if k != "DurationInMinutes"}
    revoked = cli("api", "revoke", input=json.dumps([revoke]), user="priya")
    assert revoked.exit_code == 0, revoked.stderr
    assert revoked.json()[0]["outcome"] == "revoked"
    refused = cli("api", "share", input=json.dumps([item, {**item, "EntityType": 4}]), user="priya")
    assert refused.exit_code == 2 and "item 1: EntityType must be 3 (a user)" in refused.stderr

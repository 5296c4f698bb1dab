"""The batch JSON API, shaped like LeadSquared's entity access API (DESIGN .7).

A well-formed batch gives one result per item, in order, each completed or
failed with a reason; a malformed item rejects the whole batch and nothing
changes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sharetui.core.sharing.batch import BatchAPI, load_items
from sharetui.db.models import Grant, HistoryEvent, OutboxEvent, ShareRequest
from sharetui.errors import UsageError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the frozen clock's start (conftest)


def z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def counts() -> dict[str, int]:
    return {
        "grants": Grant.select().count(),
        "active": Grant.select().where(Grant.state == "active").count(),
        "requests": ShareRequest.select().count(),
        "history": HistoryEvent.select().count(),
        "outbox": OutboxEvent.select().count(),
    }


@pytest.fixture
def api(bank) -> BatchAPI:
    return BatchAPI(bank.core)


@pytest.fixture
def second_lead(bank):
    return bank.core.records.add_lead(name="Lukas Becker", owner=bank.tomas, actor=bank.admin)


def test_a_mixed_batch_gives_one_result_per_item_in_order(bank, api, second_lead) -> None:
    """A script ports over from LeadSquared: good and bad items side by side."""
    core = bank.core
    items = [
        # 0: username, edit, a day in minutes, in the meeting's context
        {
            "UserId": "daniel",
            "Entity": 1,
            "EntityId": bank.lead.id,
            "ContextEntityId": bank.meeting.id,
            "AccessType": 2,
            "DurationInMinutes": 1440,
        },
        # 1: numeric user id, read by default, default duration
        {"UserId": bank.sofia.id, "Entity": 1, "EntityId": second_lead.id},
        # 2: not a sales user
        {"UserId": "nadia", "Entity": 1, "EntityId": bank.lead.id, "AccessType": 1},
        # 3: no such lead
        {"UserId": "sofia", "Entity": 1, "EntityId": 987654},
        # 4: the owner
        {"UserId": "priya", "Entity": 1, "EntityId": bank.lead.id},
        # 5: unknown user id
        {"UserId": 4242, "Entity": 1, "EntityId": bank.lead.id},
        # 6: duration as a string of minutes, and a duration string
        {"UserId": "sofia", "Entity": "1", "EntityId": str(bank.lead.id), "DurationInMinutes": "90"},
        {"UserId": "daniel", "Entity": 1, "EntityId": second_lead.id, "DurationInMinutes": "2w"},
        # 8: zero minutes is readable but too short
        {"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id, "DurationInMinutes": 0},
    ]

    results = api.share(items, requester=bank.admin)

    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [
        "completed",
        "completed",
        "failed",
        "failed",
        "failed",
        "failed",
        "completed",
        "completed",
        "failed",
    ]
    reasons = [r["reason"] for r in results]
    assert reasons[0] is None and reasons[1] is None
    assert reasons[2] == "user nadia is marketing: only sales users receive shares"
    assert reasons[3] == "no lead 987654 you may read"
    assert reasons[4] == f"priya owns lead {bank.lead.id}"
    assert reasons[5] == "unknown user '4242'"
    assert reasons[8] == "duration 0m is too short: the minimum is 1 minute"

    first = results[0]["grant"]
    assert (first["user"], first["access"], first["context"]) == ("daniel", "edit", bank.meeting.id)
    assert first["expires_at"] == z(T0 + timedelta(days=1)) and first["source"] == "api"
    second = results[1]["grant"]
    assert (second["user"], second["access"]) == ("sofia", "read")
    assert second["expires_at"] == z(T0 + timedelta(days=90))  # the default duration
    assert results[6]["grant"]["expires_at"] == z(T0 + timedelta(minutes=90))
    assert results[7]["grant"]["expires_at"] == z(T0 + timedelta(weeks=2))
    assert all("grant" not in r for r in results if r["status"] == "failed")

    # Access follows; every request is kept, all tagged as one batch from the API.
    assert core.access.can(bank.daniel, bank.lead, "edit")
    assert core.access.can(bank.sofia, second_lead, "read")
    requests = list(ShareRequest.select().order_by(ShareRequest.id))
    assert [r.id for r in requests] == [r["request_id"] for r in results]
    assert len({r.batch_id for r in requests}) == 1 and requests[0].batch_id
    assert {r.source for r in requests} == {"api"}
    failed_rows = HistoryEvent.select().where(HistoryEvent.status == "failed").order_by(HistoryEvent.id)
    assert [h.reason for h in failed_rows] == [reasons[i] for i in (2, 3, 4, 5, 8)]


def test_a_batch_item_renews_like_any_share(bank, api, clock) -> None:
    item = {"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id, "DurationInMinutes": 60}
    (first,) = api.share([item], requester=bank.priya)
    clock.advance(timedelta(minutes=30))
    (again,) = api.share([{**item, "AccessType": 2}], requester=bank.priya)
    assert first["outcome"] == "granted" and again["outcome"] == "renewed"
    assert again["grant"]["id"] == first["grant"]["id"]
    assert again["grant"]["access"] == "edit"
    assert again["grant"]["expires_at"] == z(T0 + timedelta(minutes=90))


def test_opportunities_are_entity_5(bank, api) -> None:
    opp = bank.core.records.add_opportunity(
        lead=bank.lead.id, name="Demir mortgage", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    (result,) = api.share(
        [{"UserId": "sofia", "Entity": 5, "EntityId": opp.id, "AccessType": 2, "DurationInMinutes": 120}],
        requester=bank.priya,
    )
    assert result["status"] == "completed"
    assert result["grant"]["entity"] == "opportunity" and result["grant"]["access"] == "edit"
    assert bank.core.access.can(bank.sofia, ("opportunity", opp.id), "edit")


def test_the_requester_rules_apply_to_every_item(bank, api) -> None:
    items = [{"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id}]
    (by_marketing,) = api.share(items, requester=bank.marketing)
    assert by_marketing["status"] == "failed"
    assert by_marketing["reason"].startswith(f"nadia may not share lead {bank.lead.id}")
    (by_owner,) = api.share(items, requester=bank.priya)
    assert by_owner["status"] == "completed"


GOOD = {"UserId": "daniel", "Entity": 1, "EntityId": 1, "AccessType": 1, "DurationInMinutes": 60}

BAD_SHARE_ITEMS: dict[str, tuple[Any, str]] = {
    "not an object": ("daniel", "must be a JSON object"),
    "unknown key": ({**GOOD, "ExpiresOn": "2026-04-01"}, "unknown key(s) ExpiresOn"),
    "Entity 3": ({**GOOD, "Entity": 3}, "Entity must be 1 (lead) or 5 (opportunity), not 3"),
    "Entity missing": ({k: v for k, v in GOOD.items() if k != "Entity"}, "Entity is required"),
    "Entity as text": ({**GOOD, "Entity": "lead"}, "Entity must be a whole number"),
    "AccessType 3": ({**GOOD, "AccessType": 3}, "AccessType must be 1 (read) or 2 (edit)"),
    "EntityId not a number": ({**GOOD, "EntityId": "abc"}, "EntityId must be a whole number"),
    "EntityId missing": ({k: v for k, v in GOOD.items() if k != "EntityId"}, "EntityId is required"),
    "EntityId zero": ({**GOOD, "EntityId": 0}, "positive whole number"),
    "UserId missing": ({k: v for k, v in GOOD.items() if k != "UserId"}, "UserId must be a username"),
    "UserId a list": ({**GOOD, "UserId": ["daniel"]}, "UserId must be a username"),
    "DurationInMinutes junk": ({**GOOD, "DurationInMinutes": "3 parsecs"}, "unknown unit 'parsecs'"),
    "DurationInMinutes negative": ({**GOOD, "DurationInMinutes": -5}, "negative"),
    "DurationInMinutes a float": ({**GOOD, "DurationInMinutes": 1.5}, "DurationInMinutes must be"),
    "DurationInMinutes a bool": ({**GOOD, "DurationInMinutes": True}, "DurationInMinutes must be"),
    "UntilCompleted text": ({**GOOD, "UntilCompleted": "yes"}, "UntilCompleted must be true or false"),
    "UntilCompleted without context": ({**GOOD, "UntilCompleted": True}, "needs a --context"),
    "context on an opportunity": ({**GOOD, "Entity": 5, "ContextEntityId": 1}, "no context"),
}


@pytest.mark.parametrize("case", list(BAD_SHARE_ITEMS), ids=list(BAD_SHARE_ITEMS))
def test_one_malformed_item_rejects_the_whole_batch(bank, api, case: str) -> None:
    bad, message = BAD_SHARE_ITEMS[case]
    good = {**GOOD, "EntityId": bank.lead.id}
    before = counts()
    with pytest.raises(UsageError) as caught:
        api.share([good, {**good, "UserId": "sofia"}, bad, good], requester=bank.admin)
    assert str(caught.value).startswith("item 2: ")
    assert message in str(caught.value)
    assert counts() == before  # the good items before it did not run either
    assert not bank.core.access.can(bank.daniel, bank.lead, "read")


def test_access_type_zero_is_rejected_not_read(bank, api) -> None:
    with pytest.raises(UsageError, match="item 0: AccessType must be 1"):
        api.share([{**GOOD, "EntityId": bank.lead.id, "AccessType": 0}], requester=bank.admin)


def test_an_absurd_duration_in_minutes_fails_that_item_only(bank, api) -> None:
    items = [
        {**GOOD, "EntityId": bank.lead.id, "DurationInMinutes": 10**12},
        {**GOOD, "EntityId": bank.lead.id, "UserId": "sofia"},
    ]
    results = api.share(items, requester=bank.admin)
    assert [r["status"] for r in results] == ["failed", "completed"]
    assert "too long" in results[0]["reason"]


# -- load_items -----------------------------------------------------------------------------


def test_load_items_reads_an_array_or_one_object() -> None:
    assert load_items('[{"UserId": "daniel"}, 7]') == [{"UserId": "daniel"}, 7]
    assert load_items(b'{"UserId": "daniel"}') == [{"UserId": "daniel"}]
    assert load_items("[]") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"UserId": "daniel",}]', "not valid JSON"),
        ('[{"UserId": "daniel"}', "not valid JSON"),
        ("", "not valid JSON"),
        ('"daniel"', "must be a JSON array"),
        (b"\xff\xfe[]", "not UTF-8"),
    ],
)
def test_malformed_batch_input_is_a_usage_error(text: str | bytes, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_items(text)


def test_malformed_json_names_where_it_broke_and_changes_nothing(bank, api) -> None:
    text = '[\n  {"UserId": "daniel", "Entity": 1, "EntityId": 1},\n  {"UserId": "sofia" "Entity": 1}\n]'
    before = counts()
    with pytest.raises(UsageError) as caught:
        api.share(load_items(text), requester=bank.admin)
    assert "line 3 column" in str(caught.value)
    assert counts() == before


def test_a_batch_document_round_trips_through_load_items(bank, api) -> None:
    doc = json.dumps(
        [
            {
                "UserId": "daniel",
                "Entity": 1,
                "EntityId": bank.lead.id,
                "AccessType": 2,
                "DurationInMinutes": 30,
            }
        ]
    )
    (result,) = api.share(load_items(doc), requester=bank.priya)
    assert result["status"] == "completed" and result["grant"]["access"] == "edit"


# -- revoke and status --------------------------------------------------------------------------


@pytest.fixture
def shared(bank, second_lead):
    """daniel holds bank.lead in the meeting context and plainly; sofia holds the second lead."""
    core = bank.core
    in_meeting = core.sharing.share(
        "lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id
    )
    plain = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya)
    sofias = core.sharing.share("lead", second_lead.id, "sofia", requester=bank.tomas)
    return in_meeting, plain, sofias


def test_revoke_items_end_grants_one_result_each(bank, api, second_lead, shared) -> None:
    in_meeting, plain, sofias = shared
    results = api.revoke(
        [
            {"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id, "ContextEntityId": bank.meeting.id},
            {"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id, "ContextEntityId": bank.meeting.id},
            {"UserId": bank.sofia.id, "Entity": 1, "EntityId": second_lead.id, "AllContexts": True},
            {"UserId": "leila", "Entity": 1, "EntityId": bank.lead.id},
        ],
        requester=bank.admin,
    )

    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == ["completed", "failed", "completed", "failed"]
    assert results[0]["grant"]["id"] == in_meeting.grant["id"]
    assert results[0]["grant"]["state"] == "revoked"
    assert results[1]["reason"].startswith(f"no active share of lead {bank.lead.id} with daniel")
    assert results[2]["grant"]["id"] == sofias.grant["id"]
    assert results[3]["reason"] == f"no active share of lead {bank.lead.id} with leila without a context"
    assert Grant.get_by_id(plain.grant["id"]).state == "active"  # the other context stays
    assert bank.core.access.can(bank.daniel, bank.lead, "read")
    assert not bank.core.access.can(bank.sofia, second_lead, "read")
    sources = {r.source for r in ShareRequest.select().where(ShareRequest.action == "revoke")}
    assert sources == {"api"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        # LeadSquared's revoke body carries AccessType: accepted, but only 1 or 2.
        ({"UserId": "daniel", "Entity": 1, "EntityId": 1, "AccessType": 3}, "AccessType must be 1 (read)"),
        ({"UserId": "daniel", "Entity": 1, "EntityId": 1, "Colour": 1}, "unknown key(s) Colour"),
        ({"UserId": "daniel", "Entity": 3, "EntityId": 1}, "Entity must be 1 (lead) or 5"),
        ({"UserId": "daniel", "Entity": 1, "EntityId": 1, "AllContexts": "yes"}, "true or false"),
        (
            {"UserId": "daniel", "Entity": 1, "EntityId": 1, "AllContexts": True, "ContextEntityId": 1},
            "not both",
        ),
        ({"UserId": "daniel", "Entity": 5, "EntityId": 1, "ContextEntityId": 1}, "no context"),
        ({"Entity": 1, "EntityId": 1}, "UserId must be"),
        ([1, 2], "must be a JSON object"),
        # Found by the HTTP API's attacker: these two were checked only as each item ran,
        # after the items before them had ended their grants.
        ({"UserId": "   ", "Entity": 1, "EntityId": 1}, "not blank"),
        ({"UserId": "x" * 150, "Entity": 1, "EntityId": 1}, "at most 100"),
    ],
)
def test_a_malformed_revoke_item_rejects_the_whole_batch(bank, api, shared, bad, message) -> None:
    before = counts()
    good = {"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id, "AllContexts": True}
    with pytest.raises(UsageError) as caught:
        api.revoke([good, bad], requester=bank.admin)
    assert str(caught.value).startswith("item 1: ") and message in str(caught.value)
    assert counts() == before
    assert bank.core.access.can(bank.daniel, bank.lead, "read")


def test_a_revoke_item_with_entity_id_zero_rejects_the_batch_before_anything_runs(bank, api, shared) -> None:
    before = counts()
    good = {"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id, "AllContexts": True}
    with pytest.raises(UsageError, match=r"^item 1: "):
        api.revoke([good, {"UserId": "daniel", "Entity": 1, "EntityId": 0}], requester=bank.admin)
    assert counts() == before


def test_status_items_report_each_request(bank, api) -> None:
    (done,) = api.share([{"UserId": "daniel", "Entity": 1, "EntityId": bank.lead.id}], requester=bank.priya)
    (refused,) = api.share([{"UserId": "nadia", "Entity": 1, "EntityId": bank.lead.id}], requester=bank.priya)
    results = api.status(
        [
            done["request_id"],
            {"RequestId": refused["request_id"]},
            {"RequestId": str(done["request_id"])},
            987654,
        ],
        actor=None,
    )
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == ["completed", "failed", "completed", "unknown"]
    assert results[0]["grant"] == done["grant"]
    assert results[1]["reason"] == refused["reason"]
    assert results[3]["reason"] == "no request 987654 you may read"
    # The status follows the grant: after a revoke it shows the grant as revoked.
    bank.core.sharing.revoke("lead", bank.lead.id, "daniel", requester=bank.priya)
    (later,) = api.status([done["request_id"]], actor=None)
    assert later["status"] == "completed" and later["grant"]["state"] == "revoked"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("7", 'must be a request id or {"RequestId": n}'),
        (True, "must be a request id"),
        ({"RequestId": 1, "Extra": 2}, "unknown key(s) Extra"),
        ({"RequestId": "x"}, "whole number"),
    ],
)
def test_a_malformed_status_item_is_a_usage_error(bank, api, bad, message) -> None:
    with pytest.raises(UsageError) as caught:
        api.status([1, bad], actor=None)
    assert str(caught.value).startswith("item 1: ") and message in str(caught.value)


def leadsquared_share(bank) -> dict[str, Any]:
    """LeadSquared's published "Share a Lead" item, ids adapted (DESIGN §7)."""
    return {
        "UserId": "daniel",
        "Entity": 1,
        "EntityType": 3,
        "EntityId": str(bank.lead.id),
        "ContextEntity": 1,
        "ContextEntityId": str(bank.meeting.id),
        "AccessType": 2,
        "DurationInMinutes": 30,
    }


def test_leadsquared_bodies_are_accepted_as_they_are(bank, api) -> None:
    """The share and revoke bodies a LeadSquared script sends, with EntityType 3 and
    ContextEntity 1 (and the revoke's AccessType), run unchanged."""
    [shared] = api.share([leadsquared_share(bank)], requester=bank.priya)
    assert shared["status"] == "completed", shared
    assert shared["grant"]["context"] == bank.meeting.id and shared["grant"]["access"] == "edit"
    revoke_body = {k: v for k, v in leadsquared_share(bank).items() if k != "DurationInMinutes"}
    [revoked] = api.revoke([revoke_body], requester=bank.priya)
    assert revoked["status"] == "completed" and revoked["outcome"] == "revoked", revoked


def test_leadsquared_opportunity_body_is_accepted(bank, api) -> None:
    core = bank.core
    opp = core.records.add_opportunity(
        lead=bank.lead.id, name="Home loan", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    body = {
        "UserId": "kenji",
        "Entity": 5,
        "EntityType": 3,
        "EntityId": str(opp.id),
        "AccessType": 2,
        "DurationInMinutes": 30,
    }
    [result] = api.share([body], requester=bank.priya)
    assert result["status"] == "completed", result


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"EntityType": 2}, "EntityType must be 3 (a user)"),
        ({"EntityType": "group"}, "EntityType must be a whole number"),
        ({"ContextEntity": 4}, "ContextEntity must be 1 (an activity)"),
        ({"ContextEntityId": None}, "give its ContextEntityId"),
    ],
)
def test_other_leadsquared_codes_are_refused_with_a_reason_before_any_write(
    bank, api, change, fragment
) -> None:
    """Every item is checked before the first is written: a bad last item leaves
    the good first one undone."""
    before = counts()
    bad = {**leadsquared_share(bank), **change}
    with pytest.raises(UsageError, match=re.escape(fragment)) as caught:
        api.share([leadsquared_share(bank), bad], requester=bank.priya)
    assert "item 1" in caught.value.message
    with pytest.raises(UsageError, match=re.escape(fragment)):
        api.revoke([{k: v for k, v in bad.items() if k != "DurationInMinutes"}], requester=bank.priya)
    assert counts() == before

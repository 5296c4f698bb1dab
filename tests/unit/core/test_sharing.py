"""Share, renew, revoke, history, the sweeper and the outbox (DESIGN .3).

Stories first (the pre-sales hand-off, a loan evaluation, LeadSquared's
two-context case), then every failure rule, then history, expiry and events.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from peewee import chunked

from sharetui.core.history import FIELDS, HistoryFilter
from sharetui.core.sharing.batch import BatchAPI
from sharetui.db.models import Grant, HistoryEvent, Lead, OutboxEvent, ShareRequest
from sharetui.domain.records import as_record
from sharetui.domain.roles import Access, EntityType
from sharetui.domain.time import iso
from sharetui.errors import NotReadable, UsageError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the frozen clock's start (conftest)

# -- helpers -------------------------------------------------------------------------


def z(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def counts() -> dict[str, int]:
    return {
        "grants": Grant.select().count(),
        "active": Grant.select().where(Grant.state == "active").count(),
        "requests": ShareRequest.select().count(),
        "history": HistoryEvent.select().count(),
        "outbox": OutboxEvent.select().count(),
    }


def grant_states() -> dict[int, str]:
    return {g.id: g.state for g in Grant.select()}


def record_history(core, lead, **kwargs) -> list[dict[str, Any]]:
    return core.history.query(None, HistoryFilter(record=as_record(lead), **kwargs), limit=None)


def events_of_grant(grant_id: int) -> list[str]:
    return [
        e.event
        for e in HistoryEvent.select().where(HistoryEvent.grant_id == grant_id).order_by(HistoryEvent.id)
    ]


def lead_of(bank, owner, name: str):
    return bank.core.records.add_lead(name=name, owner=owner, actor=bank.admin)


def topics(entity_id: int | None = None) -> list[str]:
    query = OutboxEvent.select().order_by(OutboxEvent.id)
    if entity_id is not None:
        query = query.where((OutboxEvent.entity_type == "lead") & (OutboxEvent.entity_id == entity_id))
    return [e.topic for e in query]


# -- stories ---------------------------------------------------------------------------


def test_presales_hands_a_lead_to_sales_for_the_meeting(bank, clock) -> None:
    """priya (Pre-Sales) owns the lead; daniel (Sales) owns the meeting on it.
    She shares it with him for 14 days, with edit access, in the meeting's context."""
    core = bank.core
    assert not core.access.can(bank.daniel, bank.lead, "read")

    result = core.sharing.share(
        "lead",
        bank.lead.id,
        "daniel",
        requester=bank.priya,
        duration="14d",
        access="edit",
        context=bank.meeting.id,
    )

    assert result.ok and result.outcome == "granted" and result.reason is None
    grant = result.grant
    assert grant["user"] == "daniel" and grant["access"] == "edit"
    assert grant["context"] == bank.meeting.id and grant["state"] == "active"
    assert grant["source"] == "manual"
    assert grant["starts_at"] == z(T0) and grant["expires_at"] == z(T0 + timedelta(days=14))
    assert core.sharing.status(result.request_id, actor=None).as_dict() == result.as_dict()

    # daniel now edits the lead, and explain says why.
    assert core.access.can(bank.daniel, bank.lead, "edit")
    reasons = core.access.explain("daniel", bank.lead, actor=None).reasons
    assert reasons == [
        f"shared edit in context of activity {bank.meeting.id} until {grant['expires_at']} "
        f"(grant {grant['id']}, manual)"
    ]
    core.records.update_record(bank.lead, actor=bank.daniel, values={"stage": "proposal"})
    assert Lead.get_by_id(bank.lead.id).stage == "proposal"

    # History tells it: the request and the grant, by priya, for daniel.
    rows = record_history(core, bank.lead)
    assert [(r["event"], r["status"]) for r in rows] == [("share", "completed"), ("granted", "completed")]
    for row in rows:
        assert row["user"] == "daniel" and row["requester"] == "priya"
        assert row["context"] == bank.meeting.id and row["access"] == "edit"
        assert row["duration"] == "14d" and row["request_id"] == result.request_id
        assert row["expires_at"] == grant["expires_at"]

    # Two weeks on, the hand-off window has closed by itself.
    clock.advance(timedelta(days=14))
    assert not core.access.can(bank.daniel, bank.lead, "read")


@pytest.fixture
def evaluation(bank):
    """tomas owns a mortgage lead; sofia owns two Loan Evaluation activities on it."""
    core = bank.core
    lead = lead_of(bank, bank.tomas, "Siobhan Gallagher")
    first = core.records.post_activity(
        ("lead", lead.id),
        type="Loan Evaluation",
        owner=bank.sofia,
        fields={"amount": 275000},
        actor=bank.tomas,
    )
    second = core.records.post_activity(
        ("lead", lead.id),
        type="Loan Evaluation",
        owner=bank.sofia,
        fields={"amount": 40000},
        actor=bank.tomas,
    )
    return lead, first, second


def test_a_loan_evaluation_share_ends_when_the_evaluation_is_completed(bank, evaluation) -> None:
    core = bank.core
    lead, activity, _ = evaluation
    result = core.sharing.share(
        "lead",
        lead.id,
        "sofia",
        requester=bank.tomas,
        duration="7d",
        access="read",
        context=activity.id,
        until_completed=True,
    )
    assert result.ok and result.grant["until_completed"] is True
    assert core.access.can(bank.sofia, lead, "read")
    assert not core.access.can(bank.sofia, lead, "edit")

    # sofia, who owns the evaluation, marks it done.
    core.records.update_activity(activity.id, status="completed", actor=bank.sofia)

    assert not core.access.can(bank.sofia, lead, "read")
    grant = Grant.get_by_id(result.grant["id"])
    assert grant.state == "revoked"
    assert grant.ended_reason == f"activity {activity.id} completed"
    assert events_of_grant(grant.id) == ["share", "granted", "revoked"]
    assert "share.revoked" in topics(lead.id)


def test_completing_an_activity_without_until_completed_keeps_the_share(bank, evaluation) -> None:
    core = bank.core
    lead, plain_ctx, ending_ctx = evaluation
    plain = core.sharing.share(
        "lead", lead.id, "sofia", requester=bank.tomas, duration="7d", context=plain_ctx.id
    )
    ending = core.sharing.share(
        "lead",
        lead.id,
        "sofia",
        requester=bank.tomas,
        duration="7d",
        context=ending_ctx.id,
        until_completed=True,
    )

    core.records.update_activity(plain_ctx.id, status="completed", actor=bank.sofia)
    assert Grant.get_by_id(plain.grant["id"]).state == "active"
    assert Grant.get_by_id(ending.grant["id"]).state == "active"

    core.records.update_activity(ending_ctx.id, status="completed", actor=bank.sofia)
    assert Grant.get_by_id(plain.grant["id"]).state == "active"
    assert Grant.get_by_id(ending.grant["id"]).state == "revoked"
    assert core.access.can(bank.sofia, lead, "read")  # the plain-context share still holds


def test_until_completed_on_an_already_completed_activity_is_refused(bank, evaluation) -> None:
    core = bank.core
    lead, activity, _ = evaluation
    core.records.update_activity(activity.id, status="completed", actor=bank.tomas)
    result = core.sharing.share(
        "lead",
        lead.id,
        "sofia",
        requester=bank.tomas,
        duration="7d",
        context=activity.id,
        until_completed=True,
    )
    assert result.status == "failed"
    assert result.reason == f"activity {activity.id} is already completed"
    assert Grant.select().count() == 0


def test_one_lead_shared_with_one_user_under_two_activities(bank) -> None:
    """LeadSquared's case: kenji's lead goes to sofia under a meeting (read, 3
    months) and a loan evaluation (edit, 6 months). The two are separate grants."""
    core = bank.core
    lead = lead_of(bank, bank.kenji, "Kwame Asante")
    meeting = core.records.post_activity(
        ("lead", lead.id), type="Meeting Scheduled", owner=bank.sofia, actor=bank.kenji
    )
    evaluation = core.records.post_activity(
        ("lead", lead.id), type="Loan Evaluation", owner=bank.sofia, actor=bank.kenji
    )
    in_meeting = core.sharing.share(
        "lead", lead.id, "sofia", requester=bank.kenji, duration="3mo", access="read", context=meeting.id
    )
    in_evaluation = core.sharing.share(
        "lead", lead.id, "sofia", requester=bank.kenji, duration="6mo", access="edit", context=evaluation.id
    )
    assert in_meeting.grant["id"] != in_evaluation.grant["id"]
    assert in_meeting.grant["expires_at"] == "2026-06-02T09:00:00Z"
    assert in_evaluation.grant["expires_at"] == "2026-09-02T09:00:00Z"
    assert core.access.level(bank.sofia, lead) == Access.EDIT
    assert len(core.access.explain("sofia", lead, actor=None).grants) == 2

    # Revoke the evaluation context: the meeting context stays, so sofia drops to read.
    revoked = core.sharing.revoke("lead", lead.id, "sofia", requester=bank.kenji, context=evaluation.id)
    assert revoked.ok and revoked.grant["id"] == in_evaluation.grant["id"]
    assert revoked.grant["state"] == "revoked"
    assert Grant.get_by_id(in_meeting.grant["id"]).state == "active"
    assert core.access.level(bank.sofia, lead) == Access.READ

    # A revoke with no context does not guess which one is meant.
    guess = core.sharing.revoke("lead", lead.id, "sofia", requester=bank.kenji)
    assert guess.status == "failed"
    assert guess.reason == (
        f"no active share of lead {lead.id} with sofia without a context (use --context ID or --all-contexts)"
    )

    # Shared again in the evaluation context, then everything ends at once.
    again = core.sharing.share(
        "lead", lead.id, "sofia", requester=bank.kenji, duration="6mo", access="edit", context=evaluation.id
    )
    assert again.outcome == "granted" and again.grant["id"] != in_evaluation.grant["id"]
    every = core.sharing.revoke("lead", lead.id, "sofia", requester=bank.kenji, all_contexts=True)
    assert every.ok and every.outcome == "revoked"
    assert sorted(g["id"] for g in every.grants) == sorted([in_meeting.grant["id"], again.grant["id"]])
    assert {g["state"] for g in every.grants} == {"revoked"}
    assert core.access.level(bank.sofia, lead) == Access.NONE
    revoked_rows = record_history(core, lead, event="revoked")
    assert [r["request_id"] for r in revoked_rows] == [revoked.request_id] + [every.request_id] * 2
    assert core.sharing.status(every.request_id, actor=None).grants == every.grants


def test_deleting_the_context_activity_ends_its_shares_only(bank) -> None:
    core = bank.core
    in_meeting = core.sharing.share(
        "lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id, duration="14d"
    )
    plain = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="2d")

    ended = core.records.delete_activity(bank.meeting.id, actor=bank.priya)

    assert ended == 1
    gone = Grant.get_by_id(in_meeting.grant["id"])
    assert gone.state == "revoked"
    assert gone.ended_reason == f"activity {bank.meeting.id} deleted"
    assert Grant.get_by_id(plain.grant["id"]).state == "active"
    assert core.access.can(bank.daniel, bank.lead, "read")
    # The deleted activity can no longer be a context.
    retry = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id)
    assert retry.status == "failed"
    assert retry.reason == f"activity {bank.meeting.id} is not an activity of lead {bank.lead.id}"


def test_sharing_again_renews_the_grant_from_now(bank, clock) -> None:
    core = bank.core
    first = core.sharing.share(
        "lead",
        bank.lead.id,
        "daniel",
        requester=bank.priya,
        duration="14d",
        access="read",
        context=bank.meeting.id,
    )
    clock.advance(timedelta(days=10))

    renewal = core.sharing.share(
        "lead",
        bank.lead.id,
        "daniel",
        requester=bank.priya,
        duration="30d",
        access="edit",
        context=bank.meeting.id,
    )

    assert renewal.ok and renewal.outcome == "renewed"
    assert renewal.grant["id"] == first.grant["id"]  # the same grant, renewed
    assert renewal.grant["access"] == "edit"
    assert renewal.grant["expires_at"] == z(T0 + timedelta(days=40))  # counted from now
    assert renewal.grant["request_id"] == renewal.request_id
    assert Grant.select().where(Grant.state == "active").count() == 1
    assert core.access.can(bank.daniel, bank.lead, "edit")
    assert events_of_grant(first.grant["id"]) == ["share", "granted", "renew", "renewed"]
    renewed = record_history(core, bank.lead, event="renewed")[0]
    assert renewed["at"] == z(T0 + timedelta(days=10)) and renewed["duration"] == "30d"
    assert ShareRequest.get_by_id(renewal.request_id).outcome == "renewed"
    assert topics(bank.lead.id)[-1] == "share.renewed"
    clock.advance(timedelta(days=29))
    assert core.access.can(bank.daniel, bank.lead, "edit")  # the old 14 days no longer apply


def test_sharing_after_expiry_makes_a_new_grant_and_records_the_old_one_as_expired(bank, clock) -> None:
    core = bank.core
    old = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="1d")
    clock.advance(timedelta(days=3))  # expired, never swept
    new = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="1d")
    assert new.ok and new.outcome == "granted" and new.grant["id"] != old.grant["id"]
    assert Grant.get_by_id(old.grant["id"]).state == "expired"
    expired = HistoryEvent.get((HistoryEvent.grant_id == old.grant["id"]) & (HistoryEvent.event == "expired"))
    assert iso(expired.at) == old.grant["expires_at"]


def test_a_sales_manager_and_the_system_may_share(bank) -> None:
    core = bank.core
    by_manager = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.manager)
    by_system = core.sharing.share("lead", bank.lead.id, "sofia", requester=None, duration="1h")
    assert by_manager.ok and by_system.ok
    # default duration: 90 days
    assert by_manager.grant["expires_at"] == z(T0 + timedelta(days=90))


def test_opportunities_are_shared_without_a_context(bank) -> None:
    core = bank.core
    opp = core.records.add_opportunity(
        lead=bank.lead.id, name="Demir mortgage", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    result = core.sharing.share("opp", opp.id, "sofia", requester=bank.priya, duration="2w", access="edit")
    assert result.ok and result.grant["entity"] == "opportunity" and result.grant["context"] is None
    assert core.access.can(bank.sofia, ("opportunity", opp.id), "edit")
    assert not core.access.can(bank.sofia, bank.lead, "read")  # the lead is not shared with it


# -- every failure rule of DESIGN .3 -------------------------------------------------------

Case = Callable[[Any], tuple[dict[str, Any], str]]


def _other_lead_activity(bank) -> tuple[dict[str, Any], str]:
    other = lead_of(bank, bank.priya, "Niamh Kelly")
    act = bank.core.records.post_activity(
        ("lead", other.id), type="Meeting Scheduled", owner=bank.daniel, actor=bank.priya
    )
    return {"context": act.id}, f"activity {act.id} is not an activity of lead {bank.lead.id}"


def _inactive_recipient(bank) -> tuple[dict[str, Any], str]:
    bank.core.users.deactivate("daniel", actor=bank.admin)
    return {}, unfit("daniel")


def unfit(name: str) -> str:
    """The one refusal for a recipient who is unknown, deactivated or not a sales user,
    to a requester who may not list users (HTTP API attack H7: sales users learned
    roles and active flags by sharing with ids 1, 2, 3...)."""
    return f"{name!r} is not a user who may receive shares (an active sales user)"


def _inactive_requester(bank) -> tuple[dict[str, Any], str]:
    bank.core.users.deactivate("priya", actor=bank.admin)
    return {"requester": bank.core.users.get("priya")}, "requester priya is deactivated"


def _owners_may_not_share(bank) -> tuple[dict[str, Any], str]:
    bank.core.settings.set("owners_can_share", False, actor=None)
    return {}, f"priya may not share lead {bank.lead.id}"


def _ownerless_context(bank) -> tuple[dict[str, Any], str]:
    act = bank.core.records.post_activity(("lead", bank.lead.id), type="Email Sent", actor=bank.priya)
    return {"context": act.id}, f"activity {act.id} has no owner, not by daniel"


def _cap_of_three(bank) -> tuple[dict[str, Any], str]:
    core = bank.core
    core.settings.set("share_cap_leads", 3, actor=None)
    for i in range(3):
        lead = lead_of(bank, bank.priya, f"Capped {i}")
        assert core.sharing.share("lead", lead.id, "daniel", requester=bank.priya).ok
    return {}, "daniel already holds active shares on 3 leads (the cap is 3)"


# Each case: bank -> (changes to a good request, the reason it must fail with).
# The good request: priya shares her lead with daniel, edit, 14 days, in his meeting.
FAILURES: dict[str, Case] = {
    # priya may not list users: one text for all of these (H7).
    "unknown recipient": lambda b: ({"recipient": "zoe"}, unfit("zoe")),
    "inactive recipient": _inactive_recipient,
    "admin recipient": lambda b: ({"recipient": "admin"}, unfit("admin")),
    "admin recipient by id": lambda b: ({"recipient": str(b.admin.id)}, unfit(str(b.admin.id))),
    "sales manager recipient": lambda b: ({"recipient": "ruth"}, unfit("ruth")),
    "marketing recipient": lambda b: ({"recipient": "nadia"}, unfit("nadia")),
    # An admin (who may list users) is told which it is.
    "unknown recipient, to an admin": lambda b: (
        {"recipient": "zoe", "requester": b.admin},
        "unknown user 'zoe'",
    ),
    "admin recipient, to an admin": lambda b: (
        {"recipient": "admin", "requester": b.admin},
        "user admin is admin: only sales users receive shares",
    ),
    "marketing recipient, to an admin": lambda b: (
        {"recipient": "nadia", "requester": b.admin},
        "user nadia is marketing: only sales users receive shares",
    ),
    "recipient owns the record": lambda b: (
        {"recipient": "priya", "requester": b.admin},
        f"priya owns lead {b.lead.id}",
    ),
    "marketing requester": lambda b: ({"requester": b.marketing}, f"nadia may not share lead {b.lead.id}"),
    "sales requester who edits but does not own it": lambda b: (
        {"requester": b.tomas},
        f"tomas may not share lead {b.lead.id}",
    ),
    "recipient shares with themself": lambda b: (
        {"requester": b.daniel},
        f"no lead {b.lead.id} you may read",  # daniel may not read priya's lead (DESIGN §9)
    ),
    "owners may not share (setting off)": _owners_may_not_share,
    "deactivated requester": _inactive_requester,
    "missing lead": lambda b: ({"entity_id": 987654}, "no lead 987654 you may read"),
    "missing opportunity": lambda b: (
        {"entity": "opp", "entity_id": 987654, "context": None},
        "no opportunity 987654 you may read",
    ),
    "context activity on another lead": _other_lead_activity,
    "context activity owned by someone else": lambda b: (
        {"recipient": "sofia"},
        f"activity {b.meeting.id} owned by daniel, not by sofia",
    ),
    "context activity with no owner": _ownerless_context,
    "context activity that does not exist": lambda b: (
        {"context": 987654},
        "activity 987654 is not an activity of lead 1",
    ),
    "duration too long": lambda b: ({"duration": "6y"}, "duration 6y is too long: the maximum is 5 years"),
    "duration just over five years": lambda b: ({"duration": "5y1m"}, "is too long"),
    "duration too short": lambda b: ({"duration": "0m"}, "duration 0m is too short: the minimum is 1 minute"),
    "cap on distinct leads": _cap_of_three,
}


@pytest.mark.parametrize("case", list(FAILURES), ids=list(FAILURES))
def test_a_refused_share_changes_no_grant_and_is_kept_in_history(bank, case: str) -> None:
    core = bank.core
    overrides, reason = FAILURES[case](bank)
    kwargs: dict[str, Any] = {
        "entity": "lead",
        "entity_id": bank.lead.id,
        "recipient": "daniel",
        "requester": bank.priya,
        "duration": "14d",
        "access": "edit",
        "context": bank.meeting.id,
    }
    kwargs.update(overrides)
    before, states = counts(), grant_states()

    result = core.sharing.share(
        kwargs.pop("entity"), kwargs.pop("entity_id"), kwargs.pop("recipient"), **kwargs
    )

    assert result.status == "failed" and not result.ok
    assert reason in result.reason
    assert result.grant is None and result.outcome is None
    after = counts()
    assert grant_states() == states  # no grant made or changed
    assert after["requests"] == before["requests"] + 1
    assert after["history"] == before["history"] + 1
    (row,) = core.history.query(None, HistoryFilter(), after_id=None, limit=1, newest_first=True)
    assert (row["event"], row["status"], row["reason"]) == ("share", "failed", result.reason)
    assert row["request_id"] == result.request_id and row["grant_id"] is None
    stored = ShareRequest.get_by_id(result.request_id)
    assert (stored.status, stored.reason) == ("failed", result.reason)
    assert core.sharing.status(result.request_id, actor=None).reason == result.reason
    last = OutboxEvent.select().order_by(OutboxEvent.id.desc()).first()
    assert last.topic == "share.request_failed" and last.payload["reason"] == result.reason


def test_the_cap_counts_distinct_active_records(bank, clock) -> None:
    """With the cap lowered to 3: a 4th lead is refused, but renewing, a second
    context on a lead already held, and a slot freed by expiry all work."""
    core = bank.core
    core.settings.set("share_cap_leads", 3, actor=None)
    leads = [lead_of(bank, bank.priya, f"Lead {i}") for i in range(4)]
    short = core.sharing.share("lead", leads[0].id, "daniel", requester=bank.priya, duration="1h")
    for lead in leads[1:3]:
        assert core.sharing.share("lead", lead.id, "daniel", requester=bank.priya).ok

    refused = core.sharing.share("lead", leads[3].id, "daniel", requester=bank.priya)
    assert refused.reason == "daniel already holds active shares on 3 leads (the cap is 3)"
    # Another user is not affected by daniel's cap.
    assert core.sharing.share("lead", leads[3].id, "sofia", requester=bank.priya).ok
    # Renewing a held lead is fine at the cap.
    assert (
        core.sharing.share("lead", leads[1].id, "daniel", requester=bank.priya, duration="30d").outcome
        == "renewed"
    )
    # So is a new context on a lead already held (still 3 distinct leads).
    act = core.records.post_activity(
        ("lead", leads[1].id), type="Meeting Scheduled", owner=bank.daniel, actor=bank.priya
    )
    assert (
        core.sharing.share("lead", leads[1].id, "daniel", requester=bank.priya, context=act.id).outcome
        == "granted"
    )
    # The opportunity cap is separate.
    opp = core.records.add_opportunity(
        lead=leads[0].id, name="Opp", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    assert core.sharing.share("opp", opp.id, "daniel", requester=bank.priya).ok
    # When the short share runs out (no sweep needed) the slot is free again.
    clock.advance(timedelta(hours=1))
    assert Grant.get_by_id(short.grant["id"]).state == "active"
    assert core.sharing.share("lead", leads[3].id, "daniel", requester=bank.priya).ok


def test_the_default_cap_is_two_thousand_leads(bank) -> None:
    core = bank.core
    assert core.settings.get("share_cap_leads") == 2000
    now = core.db_now()
    with core.db.atomic():
        for batch in chunked(range(2000), 250):
            Lead.insert_many(
                [
                    {"name": f"Bulk {i:04d}", "owner": bank.priya.id, "created_at": now, "updated_at": now}
                    for i in batch
                ]
            ).execute()
    bulk = [
        lead_id
        for (lead_id,) in Lead.select(Lead.id).where(Lead.name.startswith("Bulk ")).order_by(Lead.id).tuples()
    ]
    assert len(bulk) == 2000
    with core.db.atomic():
        for batch in chunked(bulk, 250):
            Grant.insert_many(
                [
                    {
                        "entity_type": "lead",
                        "entity_id": lead_id,
                        "user": bank.daniel.id,
                        "context_key": 0,
                        "access": 1,
                        "starts_at": now,
                        "expires_at": now + timedelta(days=30),
                        "state": "active",
                        "source": "manual",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for lead_id in batch
                ]
            ).execute()

    refused = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya)
    assert refused.status == "failed"
    assert refused.reason == "daniel already holds active shares on 2000 leads (the cap is 2000)"
    assert not core.access.can(bank.daniel, bank.lead, "read")

    renewed = core.sharing.share("lead", bulk[0], "daniel", requester=bank.priya, access="edit")
    assert renewed.ok and renewed.outcome == "renewed"

    assert core.sharing.revoke("lead", bulk[1], "daniel", requester=bank.priya).ok
    assert core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya).ok


# -- bad syntax: an error, and nothing recorded ---------------------------------------------

SYNTAX: dict[str, tuple[dict[str, Any], str]] = {
    "junk duration": ({"duration": "3 parsecs"}, "unknown unit 'parsecs'"),
    "negative duration": ({"duration": "-5"}, "cannot read duration"),
    "unknown access": ({"access": "owner"}, "unknown access 'owner'"),
    "access number out of range": ({"access": 3}, "unknown access 3"),
    "unknown entity": ({"entity": "contact"}, "unknown record type 'contact'"),
    "entity number out of range": ({"entity": 3}, "unknown record type 3"),
    "non-numeric id": ({"entity_id": "abc"}, "lead id must be a whole number, not 'abc'"),
    "zero id": ({"entity_id": 0}, "lead id must be a positive whole number"),
    "non-numeric context": ({"context": "meeting"}, "context activity id must be a whole number"),
    "until completed without context": (
        {"context": None, "until_completed": True},
        "--until-completed needs a --context activity",
    ),
    "context on an opportunity": ({"entity": "opp"}, "opportunities have no context"),
    "no recipient": ({"recipient": "  "}, "name the user to share with"),
}


@pytest.mark.parametrize("case", list(SYNTAX), ids=list(SYNTAX))
def test_bad_syntax_raises_usage_error_and_records_nothing(bank, case: str) -> None:
    core = bank.core
    overrides, message = SYNTAX[case]
    args: dict[str, Any] = {
        "entity": "lead",
        "entity_id": bank.lead.id,
        "recipient": "daniel",
        "duration": "14d",
        "access": "read",
        "context": bank.meeting.id,
    }
    args.update(overrides)
    positional = (args.pop("entity"), args.pop("entity_id"), args.pop("recipient"))
    before = counts()

    with pytest.raises(UsageError) as parsed:
        core.sharing.parse_share(*positional, **args)
    assert message in str(parsed.value)
    with pytest.raises(UsageError) as shared:
        core.sharing.share(*positional, requester=bank.priya, **args)
    assert str(shared.value) == str(parsed.value)

    assert counts() == before


def test_a_revoke_with_bad_syntax_records_nothing(bank) -> None:
    core = bank.core
    before = counts()
    with pytest.raises(UsageError, match="not both"):
        core.sharing.revoke(
            "lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id, all_contexts=True
        )
    with pytest.raises(UsageError, match="whole number"):
        core.sharing.revoke("lead", "L1", "daniel", requester=bank.priya)
    assert counts() == before


# -- revoke of what is not active -------------------------------------------------------------


def _never_shared(bank, clock) -> str:
    return f"no active share of lead {bank.lead.id} with daniel in the context of activity"


def _already_revoked(bank, clock) -> str:
    bank.core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id)
    assert bank.core.sharing.revoke(
        "lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id
    ).ok
    return "no active share"


def _expired_unswept(bank, clock) -> str:
    bank.core.sharing.share(
        "lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id, duration="1d"
    )
    clock.advance(timedelta(days=2))
    return "no active share"


def _other_context(bank, clock) -> str:
    bank.core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya)  # no context
    return f"in the context of activity {bank.meeting.id}"


def _not_allowed(bank, clock) -> str:
    bank.core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id)
    return f"nadia may not revoke shares on lead {bank.lead.id}"


REVOKE_FAILURES = {
    "never shared": (_never_shared, {}),
    "already revoked": (_already_revoked, {}),
    "expired, not yet swept": (_expired_unswept, {}),
    "shared in another context": (_other_context, {}),
    "requester may not revoke": (_not_allowed, {"requester": "nadia"}),
    "unknown user": (lambda b, c: "unknown user 'zoe'", {"user": "zoe"}),
    "missing lead": (lambda b, c: "no lead 987654 you may read", {"entity_id": 987654}),
}


@pytest.mark.parametrize("case", list(REVOKE_FAILURES), ids=list(REVOKE_FAILURES))
def test_revoking_what_is_not_active_fails_and_changes_nothing(bank, clock, case: str) -> None:
    core = bank.core
    setup, overrides = REVOKE_FAILURES[case]
    reason = setup(bank, clock)
    args = {
        "entity_id": bank.lead.id,
        "user": "daniel",
        "requester": "priya",
        "context": bank.meeting.id,
        **overrides,
    }
    requester = core.users.get(args.pop("requester"))
    level_before = core.access.level(bank.daniel, bank.lead)
    before, states = counts(), grant_states()

    result = core.sharing.revoke("lead", args.pop("entity_id"), args.pop("user"), requester=requester, **args)

    assert result.status == "failed" and reason in result.reason
    assert grant_states() == states
    assert core.access.level(bank.daniel, bank.lead) == level_before
    after = counts()
    assert (after["requests"], after["history"]) == (before["requests"] + 1, before["history"] + 1)
    last = HistoryEvent.select().order_by(HistoryEvent.id.desc()).first()
    assert (last.event, last.status, last.reason) == ("revoke", "failed", result.reason)


# -- history ------------------------------------------------------------------------------------


@pytest.fixture
def story(bank, clock):
    """A small history: manual, failed, automation, api shares and a revoke."""
    core = bank.core
    other = lead_of(bank, bank.tomas, "Lukas Becker")
    handoff = core.sharing.share(
        "lead",
        bank.lead.id,
        "daniel",
        requester=bank.priya,
        context=bank.meeting.id,
        access="edit",
        duration="14d",
    )
    refused = core.sharing.share("lead", bank.lead.id, "nadia", requester=bank.priya)
    auto = core.sharing.share("lead", other.id, "sofia", requester=None, duration="7d", source="automation")
    BatchAPI(core).share(
        [{"UserId": "daniel", "Entity": 1, "EntityId": other.id, "AccessType": 1, "DurationInMinutes": 120}],
        requester=bank.admin,
    )
    clock.advance(timedelta(hours=1))
    revoke = core.sharing.revoke(
        "lead", bank.lead.id, "daniel", requester=bank.priya, context=bank.meeting.id
    )
    return {"other": other, "handoff": handoff, "refused": refused, "auto": auto, "revoke": revoke}


def ev(rows) -> list[tuple[str, str]]:
    return [(r["event"], r["status"]) for r in rows]


def test_history_filters_by_user_status_source_event_and_record(bank, story) -> None:
    core = bank.core
    q = functools.partial(core.history.query, None)

    everything = q(HistoryFilter(), limit=None)
    assert len(everything) == 9
    assert [r["id"] for r in everything] == sorted(r["id"] for r in everything)

    assert ev(q(HistoryFilter(user="daniel"))) == [
        ("share", "completed"),
        ("granted", "completed"),  # hand-off
        ("share", "completed"),
        ("granted", "completed"),  # batch
        ("revoked", "completed"),
        ("revoke", "completed"),  # the grant ends, the request completes
    ]
    failed = q(HistoryFilter(status="failed"))
    assert len(failed) == 1 and failed[0]["user"] == "nadia"
    assert failed[0]["reason"] == story["refused"].reason
    api = q(HistoryFilter(source="api"))
    assert ev(api) == [("share", "completed"), ("granted", "completed")]
    assert {r["user"] for r in api} == {"daniel"} and {r["requester"] for r in api} == {"admin"}
    auto = q(HistoryFilter(source="automation"))
    assert {r["user"] for r in auto} == {"sofia"} and {r["requester"] for r in auto} == {None}
    assert len(q(HistoryFilter(event="granted"))) == 3
    # The revoked event is stamped when it happened (an hour later).
    (revoked,) = q(HistoryFilter(event="revoked"))
    assert revoked["at"] == z(T0 + timedelta(hours=1)) and revoked["reason"] == "revoked by priya"

    # Per record versus global.
    on_lead = record_history(core, bank.lead)
    assert ev(on_lead) == [
        ("share", "completed"),
        ("granted", "completed"),
        ("share", "failed"),
        ("revoked", "completed"),
        ("revoke", "completed"),
    ]
    on_other = record_history(core, story["other"], user="daniel")
    assert ev(on_other) == [("share", "completed"), ("granted", "completed")]
    assert record_history(core, story["other"], status="failed") == []
    assert q(HistoryFilter(entity="opportunity")) == []
    assert len(q(HistoryFilter(entity="lead"))) == 9
    # Combined filters narrow each other.
    assert ev(q(HistoryFilter(user="daniel", source="manual", event="revoked"))) == [("revoked", "completed")]
    # Newest first, keyset-paged.
    newest = q(HistoryFilter(), limit=2, newest_first=True)
    assert [r["id"] for r in newest] == [everything[-1]["id"], everything[-2]["id"]]
    assert q(HistoryFilter(), after_id=everything[6]["id"]) == everything[7:]


@pytest.mark.parametrize(
    "flt",
    [HistoryFilter(status="done"), HistoryFilter(source="cron"), HistoryFilter(event="deleted")],
)
def test_unknown_history_filter_values_are_usage_errors(bank, flt) -> None:
    with pytest.raises(UsageError, match="unknown"):
        bank.core.history.query(None, flt)


def test_history_exports_to_csv_and_json(bank, story) -> None:
    core = bank.core
    flt = HistoryFilter(user="daniel")
    rows = core.history.query(None, flt, limit=None)

    parsed = list(csv.DictReader(io.StringIO(core.history.to_csv(None, flt))))
    assert len(parsed) == len(rows) == 6
    assert list(parsed[0]) == list(FIELDS)
    for text_row, row in zip(parsed, rows, strict=True):
        for key in FIELDS:
            assert text_row[key] == ("" if row[key] is None else str(row[key])), key
    assert [r["event"] for r in parsed] == ["share", "granted", "share", "granted", "revoked", "revoke"]
    assert parsed[1]["context"] == str(bank.meeting.id) and parsed[1]["access"] == "edit"

    exported = json.loads(core.history.to_json(None, flt))
    assert exported == rows
    assert json.loads(core.history.to_json(None, HistoryFilter(status="failed")))[0]["user"] == "nadia"
    # A filter that matches nothing still gives a header / an empty list.
    assert core.history.to_csv(None, HistoryFilter(source="plugin")).splitlines() == [",".join(FIELDS)]
    assert json.loads(core.history.to_json(None, HistoryFilter(source="plugin"))) == []


def test_csv_export_of_many_rows_pages_through_everything(bank, clock) -> None:
    core = bank.core
    for _ in range(7):
        core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="1d")
        clock.advance(timedelta(minutes=1))
    rows = list(core.history.iter_all(None, HistoryFilter(), page=3))
    assert len(rows) == 14 and len({r["id"] for r in rows}) == 14
    assert len(list(csv.DictReader(io.StringIO(core.history.to_csv(None, HistoryFilter()))))) == 14


# -- the expiry sweep ---------------------------------------------------------------------------


def test_the_sweep_expires_due_grants_and_warns_once(bank, clock) -> None:
    core = bank.core
    other = lead_of(bank, bank.tomas, "Lukas Becker")
    soon = core.sharing.share(
        "lead", bank.lead.id, "daniel", requester=bank.priya, duration="3d", context=bank.meeting.id
    ).grant
    later = core.sharing.share("lead", other.id, "sofia", requester=bank.tomas, duration="7d").grant
    ended = core.sharing.share("lead", other.id, "daniel", requester=bank.tomas, duration="1d").grant
    assert core.sharing.revoke("lead", other.id, "daniel", requester=bank.tomas).ok

    clock.advance(timedelta(days=2))  # 'soon' is now exactly 24 h from expiry
    first = core.expiry.sweep()
    assert first.as_dict() == {"expired": 0, "expiring_soon": 1}
    assert core.expiry.sweep().as_dict() == {"expired": 0, "expiring_soon": 0}
    warnings = HistoryEvent.select().where(HistoryEvent.event == "expiring_soon")
    assert [(w.grant_id, iso(w.at)) for w in warnings] == [(soon["id"], z(T0 + timedelta(days=2)))]

    clock.advance(timedelta(days=1))  # 'soon' expires exactly now
    assert core.expiry.sweep().as_dict() == {"expired": 1, "expiring_soon": 0}
    clock.advance(timedelta(days=7))  # sweep long after 'later' expired
    assert core.expiry.sweep().as_dict() == {"expired": 1, "expiring_soon": 0}
    assert core.expiry.sweep().as_dict() == {"expired": 0, "expiring_soon": 0}

    for grant in (soon, later):
        row = Grant.get_by_id(grant["id"])
        assert row.state == "expired" and row.ended_reason == "expired"
        assert iso(row.ended_at) == grant["expires_at"]
        (event,) = HistoryEvent.select().where(
            (HistoryEvent.grant_id == grant["id"]) & (HistoryEvent.event == "expired")
        )
        assert iso(event.at) == grant["expires_at"]  # when it expired, not when swept
        assert event.reason == "expired" and event.user_name in ("daniel", "sofia")
        assert "revoked" not in events_of_grant(grant["id"])
    # 'later' skipped its warning window entirely between sweeps: no late notice.
    assert events_of_grant(later["id"]) == ["share", "granted", "expired"]
    # Revoked stays revoked, and is never counted as expired.
    assert Grant.get_by_id(ended["id"]).state == "revoked"
    assert events_of_grant(ended["id"]) == ["share", "granted", "revoked", "revoke"]
    assert [r["grant_id"] for r in core.history.query(None, HistoryFilter(event="expired"))] == [
        soon["id"],
        later["id"],
    ]
    assert topics().count("share.expired") == 2
    assert topics().count("share.expiring_soon") == 1


def test_renewing_re_arms_the_expiring_soon_notice(bank, clock) -> None:
    core = bank.core
    grant = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="1d").grant
    assert core.expiry.sweep().warned == 1
    core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="1d")
    assert core.expiry.sweep().warned == 1
    assert events_of_grant(grant["id"]).count("expiring_soon") == 2


def test_the_expiring_soon_window_is_a_setting(bank) -> None:
    core = bank.core
    core.settings.set("expiring_soon_window", "3d", actor=None)
    core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="2d")
    core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.priya, duration="4d")
    assert core.expiry.sweep().warned == 1


def test_the_sweep_works_in_batches_and_is_set_based(bank, clock, monkeypatch) -> None:
    core = bank.core
    leads = [lead_of(bank, bank.priya, f"Lead {i}") for i in range(25)]
    for lead in leads[:5]:
        core.sharing.share("lead", lead.id, "daniel", requester=bank.priya, duration="1h")
    clock.advance(timedelta(hours=1))

    statements: list[str] = []
    real = core.db.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        statements.append(sql)
        return real(sql, params, *args, **kwargs)

    monkeypatch.setattr(core.db, "execute_sql", counting)
    few = core.expiry.sweep()
    few_statements = len(statements)
    monkeypatch.undo()
    assert few.expired == 5
    assert few_statements >= 3  # the counter sees the sweep's SQL

    for lead in leads[5:]:
        core.sharing.share("lead", lead.id, "sofia", requester=bank.priya, duration="1h")
    clock.advance(timedelta(hours=1))
    monkeypatch.setattr(core.db, "execute_sql", counting)
    statements.clear()
    many = core.expiry.sweep()
    monkeypatch.undo()
    assert many.expired == 20
    assert len(statements) == few_statements  # 4x the grants, the same statements

    # With a small batch size every grant is still expired once, and only once.
    for lead in leads[:7]:
        core.sharing.share("lead", lead.id, "daniel", requester=bank.priya, duration="1h")
    clock.advance(timedelta(hours=1))
    assert core.expiry.sweep(batch_size=2).expired == 7
    per_grant = {}
    for event in HistoryEvent.select().where(HistoryEvent.event == "expired"):
        per_grant[event.grant_id] = per_grant.get(event.grant_id, 0) + 1
    assert len(per_grant) == 32 and set(per_grant.values()) == {1}
    assert Grant.select().where(Grant.state == "active").count() == 0


# -- the outbox ---------------------------------------------------------------------------------


def test_changes_put_their_events_in_the_outbox_in_order(bank, clock) -> None:
    core = bank.core
    lead = core.records.add_lead(name="Amara Okonkwo", owner=bank.priya, actor=bank.priya)
    act = core.records.post_activity(
        ("lead", lead.id), type="Meeting Scheduled", owner=bank.sofia, actor=bank.priya
    )
    shared = core.sharing.share("lead", lead.id, "sofia", requester=bank.priya, duration="2d", context=act.id)
    core.sharing.share("lead", lead.id, "sofia", requester=bank.priya, duration="1d", context=act.id)
    core.sharing.share("lead", lead.id, "nadia", requester=bank.priya)
    clock.advance(timedelta(days=1))
    core.expiry.sweep()

    assert topics(lead.id) == [
        "lead.created",
        "activity.created",
        "share.granted",
        "share.renewed",
        "share.request_failed",
        "share.expired",
    ]
    events = {e.topic: e for e in OutboxEvent.select().where(OutboxEvent.entity_id == lead.id)}
    assert events["lead.created"].payload == {"owner_id": bank.priya.id, "actor_id": bank.priya.id}
    assert events["activity.created"].payload["activity_id"] == act.id
    granted = events["share.granted"].payload
    assert granted["grant_id"] == shared.grant["id"] and granted["request_id"] == shared.request_id
    assert granted["user_id"] == bank.sofia.id and granted["context"] == act.id
    assert events["share.expired"].payload["grant_id"] == shared.grant["id"]
    assert all(e.processed_at is None for e in events.values())


def test_share_expired_payload_has_the_same_shape_as_other_share_events(bank, clock) -> None:
    core = bank.core
    grant = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="1d").grant
    clock.advance(timedelta(days=1))
    core.expiry.sweep()
    expired = OutboxEvent.get(OutboxEvent.topic == "share.expired").payload
    granted = OutboxEvent.get(OutboxEvent.topic == "share.granted").payload
    assert expired["expires_at"] == granted["expires_at"] == grant["expires_at"]


def test_status_of_an_unknown_request_is_not_found(bank) -> None:
    with pytest.raises(NotReadable, match="no request 424242 you may read"):
        bank.core.sharing.status(424242, actor=None)


def test_grants_lists_only_what_gives_access_now_unless_asked(bank, clock) -> None:
    core = bank.core
    live = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="3d")
    lapsed = core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.priya, duration="1d")
    clock.advance(timedelta(days=1))
    assert [g["id"] for g in core.sharing.grants(actor=None)] == [live.grant["id"]]
    assert [g["id"] for g in core.sharing.grants(include_ended=True, actor=None)] == [
        lapsed.grant["id"],
        live.grant["id"],
    ]
    assert core.sharing.grants(user=bank.sofia, actor=None) == []
    assert core.sharing.grants(entity=EntityType.OPPORTUNITY, actor=None) == []


def test_a_recipient_sees_a_failed_request_only_about_a_record_they_may_read(bank) -> None:
    """HTTP API attack H8: sofia, named as the recipient of priya's failed share, read its
    reason ("activity 5 owned by daniel, not by sofia") about a lead she may not read, in
    ``status`` and in her history. A failed request is not her grant: it answers like a
    missing request, and her history leaves it out. A request that gave her a grant she sees."""
    core = bank.core
    assert not core.gate.can_read(bank.sofia, as_record(("lead", bank.lead.id)))
    failed = core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.priya, context=bank.meeting.id)
    assert failed.status == "failed" and "owned by daniel" in (failed.reason or "")
    with pytest.raises(NotReadable, match=f"no request {failed.request_id} you may read"):
        core.sharing.status(failed.request_id, actor=bank.sofia)
    [unknown] = BatchAPI(core).status([failed.request_id], actor=bank.sofia)
    assert unknown["status"] == "unknown"
    assert core.sharing.status(failed.request_id, actor=bank.priya).reason == failed.reason
    seen = core.history.query(bank.sofia, HistoryFilter(), limit=100)
    assert all(row["request_id"] != failed.request_id for row in seen), seen

    granted = core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.priya, duration="1d")
    assert granted.ok
    assert core.sharing.status(granted.request_id, actor=bank.sofia).grant["user"] == "sofia"
    assert (
        core.sharing.status(failed.request_id, actor=bank.sofia).reason == failed.reason
    )  # now she may read it

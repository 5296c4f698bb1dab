"""The default rule set in a batch of deferred writes (``default_plugins/access.py``):
what it answers from the facts it read for the batch's records at once equals what it
answers a statement at a time, for every kind of user and record, and a grant the batch
makes is seen at once. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from conftest import PG_URL
from sharetui.core.sharing import facts
from sharetui.db.batching import batch_of, deferred_writes
from sharetui.domain.records import RecordRef, as_record
from sharetui.errors import NotFound


def _company(bank: Any) -> tuple[list[Any], list[RecordRef]]:
    core, admin = bank.core, bank.admin
    r = core.records
    kenji_lead = r.add_lead(name="Kenji's", owner=bank.kenji, actor=admin).id
    daniel_lead = r.add_lead(name="Daniel's", owner=bank.daniel, actor=admin).id
    shared = r.add_lead(name="Shared", owner=bank.priya, actor=admin).id
    gone = r.add_lead(name="Short", owner=bank.priya, actor=admin).id
    opp = r.add_opportunity(name="Loan", type="Personal Loan", lead=shared, owner=bank.kenji, actor=admin).id
    sharing = core.sharing
    sharing.share("lead", shared, "sofia", requester=admin, duration="2d", access="edit")
    sharing.share("lead", shared, "sofia", requester=admin, duration="1d", context=None)  # a renewal
    sharing.share("lead", shared, "daniel", requester=admin, duration="3d")
    sharing.share("lead", gone, "sofia", requester=admin, duration="1h")  # runs out below, unswept
    sharing.share("opportunity", opp, "leila", requester=admin, duration="1d", access="edit")
    bank.clock_advance(timedelta(hours=2))
    retired = core.users.add("retired", role="sales", groups={"Pre-Sales": "manage"}, actor=admin)
    core.sharing.share("lead", kenji_lead, "retired", requester=admin, duration="5d")
    core.users.deactivate("retired", actor=admin)
    users = [
        bank.admin,
        bank.manager,
        bank.marketing,
        bank.priya,
        bank.kenji,
        bank.leila,
        bank.tomas,
        bank.daniel,
        bank.sofia,
        retired,
    ]
    refs = [as_record(("lead", i)) for i in (bank.lead.id, kenji_lead, daniel_lead, shared, gone, 99_999)]
    refs += [as_record(("opportunity", i)) for i in (opp, 99_999)]
    return users, refs


def _answer(core: Any, user_id: int, ref: RecordRef) -> Any:
    try:
        d = core.access.decide(user_id, ref)
    except NotFound as exc:
        return ("not found", str(exc))
    return (d.level, dict(d.sources), d.user)


@pytest.fixture
def bank_clock(bank: Any, clock: Any) -> Any:
    bank.clock_advance = clock.advance
    return bank


def test_answers_from_the_batch_equal_answers_a_statement_at_a_time(bank_clock: Any) -> None:
    core = bank_clock.core
    users, refs = _company(bank_clock)
    ids = [u.id for u in users] + [987_654]  # and no such user
    one_by_one = {(uid, ref): _answer(core, uid, ref) for uid in ids for ref in refs}
    assert one_by_one[(bank_clock.sofia.id, refs[3])][1] == {"share": 1}  # renewed to read
    assert "share" not in one_by_one[(bank_clock.sofia.id, refs[4])][1]  # expired, unswept
    with core.db.atomic(), deferred_writes(core.db, size=10):
        batch = batch_of(core.db)
        assert batch is not None
        in_batch = {}
        for uid in ids:
            facts.prefetch([(ref, "sofia") for ref in refs], core.now())  # names the records again
            for ref in refs:
                in_batch[(uid, ref)] = _answer(core, uid, ref)
            # SQLite: answered from the batch (on PostgreSQL each question is read when asked).
            assert (("access", uid, "lead") in batch.memo) == (not PG_URL)
    assert in_batch == one_by_one


def test_a_grant_the_batch_makes_is_seen_by_the_next_question(bank_clock: Any) -> None:
    core, admin = bank_clock.core, bank_clock.admin
    _users, refs = _company(bank_clock)
    kenji_lead, daniel_lead = refs[1], refs[2]
    sofia = bank_clock.sofia
    with core.db.atomic(), deferred_writes(core.db, size=10):
        facts.prefetch([(kenji_lead, "sofia"), (daniel_lead, "sofia")], core.now())
        assert core.access.decide(sofia.id, daniel_lead).sources == {"group": 2}  # reads both for sofia
        assert (("access", sofia.id, "lead") in batch_of(core.db).memo) == (not PG_URL)
        parsed = core.sharing.parse_share("lead", kenji_lead.id, "sofia", duration="1d")
        request = core.sharing.open_share_request(parsed, requester=admin, source="api")
        assert core.sharing.process_share(request, parsed, admin).outcome == "granted"
        assert batch_of(core.db).held["grants"] == 1  # held, not written yet
        assert core.access.decide(sofia.id, kenji_lead).sources == {"share": 1}
    assert core.access.decide(sofia.id, kenji_lead).sources == {"share": 1}


def test_a_grant_that_runs_out_during_the_batch_no_longer_counts(bank_clock: Any, clock: Any) -> None:
    core = bank_clock.core
    _users, refs = _company(bank_clock)
    shared = refs[3]
    daniel = bank_clock.daniel
    with core.db.atomic(), deferred_writes(core.db, size=10):
        facts.prefetch([(shared, "daniel"), (refs[1], "daniel")], core.now())
        assert core.access.decide(daniel.id, refs[1]).sources == {}  # reads both records
        clock.advance(timedelta(days=3))  # daniel's share on ``shared`` ends now
        assert core.access.decide(daniel.id, shared).sources == {}


@pytest.mark.skipif(not PG_URL, reason="the share statement reads the rule set's facts on PostgreSQL")
def test_facts_read_for_a_question_never_asked_are_not_left_for_a_later_one(bank_clock: Any) -> None:
    """The share statement reads the requester's rule-set facts for the question whether
    they may read the record; a share refused before that question (the requester was
    deactivated meanwhile) leaves nothing in the batch for a later question to take."""
    from sharetui.db.sql import FRESH_LEVEL

    core, admin = bank_clock.core, bank_clock.admin
    _users, refs = _company(bank_clock)
    ruth = bank_clock.manager
    with core.db.atomic(), deferred_writes(core.db, size=10):
        facts.prefetch([(refs[1], "sofia")], core.now())
        core.users.deactivate(ruth.username, actor=admin)  # ruth's object still says active
        parsed = core.sharing.parse_share("lead", refs[1].id, "sofia", duration="1d")
        request = core.sharing.open_share_request(parsed, requester=ruth, source="api")
        result = core.sharing.process_share(request, parsed, ruth)
        assert result.status == "failed" and "deactivated" in (result.reason or "")
        assert not [k for k in batch_of(core.db).memo if k[0] == FRESH_LEVEL]

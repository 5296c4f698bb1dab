"""PostgreSQL batches (db/batching.py) against other sessions' commits and lock waits:
found by a fresh-eyes review of the change that made PostgreSQL batches hold their rows
(docs/security-review.md, "PostgreSQL batches")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sharetui.db.models import Grant, OutboxEvent, PluginError, ShareRequest

from .child import build_company
from .test_concurrency import PG, _pg_holder

pytestmark = pytest.mark.skipif(not PG, reason="PostgreSQL batches")


def _after_first(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, change: Any) -> None:
    """Run ``change()`` once the first call of ``owner.name`` returns (another session's commit)."""
    real = getattr(owner, name)
    calls: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            change()
        return result

    monkeypatch.setattr(owner, name, wrapped)


def _other(db_url: str) -> Any:
    conn = _pg_holder(db_url)
    conn.autocommit = True
    return conn


def _share(core: Any, admin: Any, *pairs: tuple[int, str]) -> list[dict[str, Any]]:
    from sharetui.core.sharing.batch import BatchAPI, load_items

    items = [
        {"EntityId": e, "Entity": 1, "UserId": u, "AccessType": 1, "DurationInMinutes": 60} for e, u in pairs
    ]
    return BatchAPI(core).share(load_items(json.dumps(items)), requester=admin)


def test_a_batch_does_not_share_with_a_recipient_deactivated_while_it_runs(core, db_url, monkeypatch) -> None:
    admin, sellers, leads = build_company(core, leads=2)
    other = _other(db_url)

    def deactivate() -> None:
        other.execute("UPDATE users SET active = false WHERE id = %s", (sellers[0].id,))

    _after_first(monkeypatch, core.sharing, "process_share", deactivate)
    try:
        results = _share(core, admin, (leads[0], "seller1"), (leads[1], "seller0"))
    finally:
        other.close()
    assert results[0]["outcome"] == "granted"
    assert results[1]["status"] == "failed", results[1]


def test_a_worker_batch_does_not_share_with_a_recipient_deactivated_while_it_runs(
    core, db_url, monkeypatch
) -> None:
    admin, sellers, leads = build_company(core, leads=2)
    core.records.post_activity(("lead", leads[0]), type="Evaluation", owner=sellers[1], actor=admin)
    core.records.post_activity(("lead", leads[1]), type="Evaluation", owner=sellers[0], actor=admin)
    other = _other(db_url)

    def deactivate() -> None:
        other.execute("UPDATE users SET active = false WHERE id = %s", (sellers[0].id,))

    _after_first(monkeypatch, core.automations, "process_event", deactivate)
    try:
        core.automations.process_pending()
    finally:
        other.close()
    assert not Grant.select().where((Grant.user == sellers[0].id) & (Grant.state == "active")).exists()


def test_an_event_created_after_another_committed_has_a_larger_id(core, db_url, monkeypatch) -> None:
    """An automation acts on the events after the largest id when it was published."""
    admin, _sellers, leads = build_company(core, leads=2)
    other = _other(db_url)
    theirs: list[int] = []
    sql = (
        "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
        "VALUES ('lead.updated', 'lead', %s, '{}', now(), 0) RETURNING id"
    )

    def emit() -> None:
        theirs.append(other.execute(sql, (leads[0],)).fetchone()[0])

    _after_first(monkeypatch, core.sharing, "process_share", emit)
    try:
        _share(core, admin, (leads[0], "seller1"), (leads[1], "seller0"))
    finally:
        other.close()
    second = OutboxEvent.get(OutboxEvent.topic == "share.granted", OutboxEvent.entity_id == leads[1])
    assert second.id > theirs[0], (second.id, theirs[0])


def test_a_lock_wait_that_runs_out_is_a_lock_conflict(core, db_url, monkeypatch) -> None:
    """The chunk is decided again a statement at a time (the item's savepoint was not
    opened yet when its lock wait ran out); what the caller sees is the lock conflict,
    and the item before it was recorded once."""
    from sharetui.db import locks
    from sharetui.db.connection import is_lock_conflict

    monkeypatch.setattr(locks, "WAIT_LIMIT", "300ms")
    admin, sellers, leads = build_company(core, leads=2)
    assert not core.team.is_team  # read once, as a running process has
    holder = _pg_holder(db_url)
    try:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (locks.RECIPIENT_LOCK, sellers[0].id))
        with pytest.raises(Exception) as raised:
            _share(core, admin, (leads[0], "nobody"), (leads[1], "seller0"))
    finally:
        holder.close()
    assert ShareRequest.select().where(ShareRequest.recipient_name == "nobody").count() == 1
    assert is_lock_conflict(raised.value), f"the driver's error is lost: {raised.value!r}"


def test_an_event_given_up_before_a_lock_wait_that_runs_out_is_kept(core, db_url, monkeypatch) -> None:
    from sharetui.core.automations import queue
    from sharetui.db import locks

    monkeypatch.setattr(locks, "WAIT_LIMIT", "300ms")
    monkeypatch.setattr(queue, "_CONFLICT_RETRIES", 0)
    admin, sellers, leads = build_company(core, leads=1)
    assert not core.team.is_team
    core.db.execute_sql(
        "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
        "VALUES ('activity.created', 'lead', %s, '\"not an object\"', now(), 0)",
        (leads[0],),
    )
    core.records.post_activity(("lead", leads[0]), type="Evaluation", owner=sellers[0], actor=admin)
    holder = _pg_holder(db_url)
    try:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (locks.RECIPIENT_LOCK, sellers[0].id))
        with pytest.raises(Exception):  # noqa: B017 - the lock conflict, after the retries
            core.automations.process_pending()
    finally:
        holder.close()
    assert PluginError.select().count() == 1, "the given-up event was rolled back at commit"


def test_a_chunk_takes_its_recipients_locks_at_its_start_and_leaves_busy_ones_to_their_items(
    core, db_url
) -> None:
    """``hold_recipients``: the first item's recipient is waited for, the rest tried in one
    statement; a recipient another session holds is left to its item (which then tries
    and ends the chunk there), and the ones taken are held to the end of the transaction."""
    from sharetui.db import locks

    _admin, sellers, _leads = build_company(core, leads=1)
    a, busy, c = (s.id for s in sellers[:3])
    holder = _pg_holder(db_url)
    other = _other(db_url)
    try:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (locks.RECIPIENT_LOCK, busy))
        with core.db.atomic(), locks.many_recipients(core.db) as scope:
            locks.hold_recipients(core.db, scope, [a, None, busy, c, a])
            assert scope.held == {a, c} and scope.earlier
            for taken in (a, c):
                row = other.execute("SELECT pg_try_advisory_lock(%s, %s)", (locks.RECIPIENT_LOCK, taken))
                assert row.fetchone()[0] is False
            locks.hold_recipient(core.db, a)  # held already: no statement, no wait
            with pytest.raises(locks.RecipientBusy):
                locks.hold_recipient(core.db, busy)  # tried, not waited for: this one holds others
        row = other.execute("SELECT pg_try_advisory_lock(%s, %s)", (locks.RECIPIENT_LOCK, c))
        assert row.fetchone()[0] is True  # let go at the commit
    finally:
        holder.close()
        other.close()


def test_a_chunk_whose_first_item_names_nobody_waits_for_no_one(core, db_url) -> None:
    """With no first recipient to wait for, every recipient is only tried: none taken means
    the chunk holds nothing, and its items may still wait, one at a time, as before."""
    from sharetui.db import locks

    _admin, sellers, _leads = build_company(core, leads=1)
    busy = sellers[0].id
    holder = _pg_holder(db_url)
    try:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (locks.RECIPIENT_LOCK, busy))
        with core.db.atomic(), locks.many_recipients(core.db) as scope:
            locks.hold_recipients(core.db, scope, [None, busy])
            assert scope.held == set() and not scope.earlier
    finally:
        holder.close()


def test_marking_idle_events_locks_no_event_after_them(core, db_url) -> None:
    """The oldest waiting event is one no automation acts on, held by another worker's
    batch: marking the idle events read (and locked) every waiting event no one held up
    to the first that needs processing, and kept them locked to its commit, so other
    workers could claim none of them. Now it locks only the idle ones it marks."""
    admin, sellers, leads = build_company(core, leads=1)
    core.records.add_lead(name="Idle before", owner=admin, actor=admin)
    core.records.post_activity(("lead", leads[0]), type="Evaluation", owner=sellers[0], actor=admin)
    core.records.add_lead(name="Idle after", owner=admin, actor=admin)
    first, activity, _after = (
        e.id for e in OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).order_by(OutboxEvent.id)
    )
    holder = _pg_holder(db_url)
    probe = _pg_holder(db_url)
    try:
        holder.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (first,))
        with core.db.atomic():
            assert core.automations._mark_idle(100) == 0  # the held one is its holder's to mark
            free = probe.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE SKIP LOCKED", (activity,))
            assert free.fetchall() == [(activity,)], "another worker may claim the event after it"
            probe.rollback()
    finally:
        holder.close()
        probe.close()


def test_a_chunk_sharing_many_records_with_one_recipient_writes_its_rows_once_and_keeps_the_cap(
    core, monkeypatch
) -> None:
    """The recipient's grants the chunk holds on other records are counted, not written
    first: its rows are written at its end, unless they could reach the cap; then they are
    written and the count read again, and the share past the cap is refused."""
    from sharetui.db import batching

    admin, sellers, leads = build_company(core, leads=5)
    flushes: list[int] = []
    real = batching.Batch.flush

    def counted(self: Any) -> None:
        flushes.append(self.held.get("grants") or 0)
        real(self)

    monkeypatch.setattr(batching.Batch, "flush", counted)
    results = _share(core, admin, *((lead, "seller0") for lead in leads))
    assert [r["outcome"] for r in results] == ["granted"] * 5
    assert len([n for n in flushes if n]) == 1, flushes  # the chunk's end only
    core.settings.set("share_cap_leads", 7, actor=admin)
    more = [core.records.add_lead(name=f"More {n}", owner=admin, actor=admin).id for n in range(4)]
    results = _share(core, admin, *((lead, "seller0") for lead in more))
    assert [r["outcome"] for r in results[:2]] == ["granted", "granted"]
    assert [r["status"] for r in results[2:]] == ["failed", "failed"], results
    assert "the cap is 7" in (results[2]["reason"] or "")
    assert Grant.select().where(Grant.user_id == sellers[0].id, Grant.state == "active").count() == 7

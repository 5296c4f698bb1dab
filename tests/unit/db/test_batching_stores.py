"""A batch of deferred writes on either store (db/batching.py): what it holds, what runs
apart from it, and who hears of its events."""

from __future__ import annotations

from sharetui.core.service import Core
from sharetui.db.batching import batch_of, deferred_writes, execute_apart
from sharetui.db.models import OutboxEvent, ShareRequest


def test_events_a_batch_writes_wake_whoever_watches_when_it_commits(core: Core) -> None:
    """Open faces refresh when a batch commits: on PostgreSQL the batch sends the NOTIFY
    with the events it writes set-based (an event written alone carries its own)."""
    watcher = core.outbox.watcher()
    try:
        with core.db.atomic(), deferred_writes(core.db) as batch:
            assert batch is not None and batch_of(core.db) is batch
            core.outbox.emit("test.held", None, None, {"n": 1})
            assert OutboxEvent.select().where(OutboxEvent.topic == "test.held").count() == 1  # read: written
            core.outbox.emit("test.held", None, None, {"n": 2})
        assert watcher.wait(5.0)
        held = OutboxEvent.select().where(OutboxEvent.topic == "test.held")
        assert [e.payload["n"] for e in held] == [1, 2]
    finally:
        watcher.close()


def test_a_statement_run_apart_leaves_the_held_rows_held(core: Core) -> None:
    with core.db.atomic(), deferred_writes(core.db) as batch:
        assert batch is not None
        core.outbox.emit("test.held", None, None, {})
        assert batch.held["outbox"] == 1
        assert execute_apart(core.db, "SELECT 1").fetchone()[0] == 1
        assert batch.held["outbox"] == 1  # still held: the statement read none of them
        core.db.execute_sql("SELECT 1")  # a statement the batch does not know: rows first
        assert not batch.held


def test_rows_rolled_back_with_their_savepoint_give_their_ids_again(core: Core) -> None:
    """An item rolled back drops the rows it held, and the next item takes the same ids
    (on PostgreSQL drawn from the sequence ahead: none is lost to a rolled-back item)."""
    from sharetui.core.sharing.share import _INSERT_REQUEST

    def request(name: str) -> int:
        at = core.db_now()
        row = ("lead", 1, name, None, None, None, False, 1, "1h", False, "api", None, None, at)
        return _INSERT_REQUEST.insert(row)

    with core.db.atomic(), deferred_writes(core.db) as batch:
        assert batch is not None
        first = request("kept")
        try:
            with core.db.atomic():
                dropped = request("dropped")
                raise RuntimeError("this item fails")
        except RuntimeError:
            pass
        again = request("kept")
    assert dropped == first + 1 and again == dropped
    kept = ShareRequest.select().where(ShareRequest.id >= first).order_by(ShareRequest.id)
    assert [(r.id, r.recipient_name) for r in kept] == [(first, "kept"), (again, "kept")]

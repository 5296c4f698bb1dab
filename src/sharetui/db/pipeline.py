"""Write-behind on PostgreSQL: inside a batch, the statements whose answer nobody waits
for are sent without waiting, and the server runs them while the program goes on.

Deciding a share writes its request, its grant, the request's completion with two
history rows and an event, inside a savepoint that is opened and released: on PostgreSQL
each of those was a round trip to the server, waited for one after the other, although
nothing the share path decides depends on their answers. Inside :func:`write_behind`
(a batch API chunk, a worker's batch of events; opened by
:func:`sharetui.db.batching.deferred_writes`, SQLite's counterpart) the connection is in
psycopg's pipeline mode, and:

- a savepoint's ``SAVEPOINT`` and ``RELEASE``, an :class:`~sharetui.db.sql.Insert` whose
  new id is not asked for, a deferred :class:`~sharetui.db.sql.Update` and a statement
  run with :meth:`~sharetui.db.sql.Statement.send` are *sent and not waited for*;
- an ``Insert`` whose id is asked for takes one drawn ahead from the table's sequence
  (:meth:`WriteBehind.take_id`: a block of ids per table in one statement) and is sent
  the same way;
- any other statement (a read, a write whose row count is asked for, a rollback to a
  savepoint, a commit) is sent and waited for (a pipeline sync): the server runs
  everything in the order it was sent, so it answers after the writes before it.

Where nothing waits, the server writes while the program decides the next item: on a
two-CPU machine, the two overlap.

Errors keep their meaning where they can. If the statement waited for fails and every
write sent since the last wait went through, its error is raised as if it had run alone
(the item's savepoint rolls it back as before). If a write sent without waiting fails,
the write-behind is broken: that error and every later statement raise
:class:`DeferredWriteFailed`, the transaction rolls back, and the caller does the work
again without write-behind, where each statement is waited for and a failing item is
rolled back alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peewee import __exception_wrapper__

# Tables whose rows a memo keeps (people, records and their owners, activities, tasks):
# a write to one, sent without waiting, drops the memo.
_MEMO_TABLES = frozenset({"users", "leads", "opportunities", "activities", "activity_types", "tasks"})
_NOT_WAITED = ("SAVEPOINT", "RELEASE")


class DeferredWriteFailed(Exception):
    """Writing held rows or statements failed (here, or in SQLite's batch); the transaction
    must roll back and the work be done again without deferring. The store's error is the
    ``__cause__``."""


class WriteBehind:
    """The write-behind open on one connection (see the module)."""

    __slots__ = ("block", "broken", "conn", "ids", "memo", "pipeline", "sent")

    def __init__(self, conn: Any, block: int) -> None:
        self.conn = conn
        self.block = max(1, block)
        self.pipeline: Any = None
        self.sent: list[Any] = []  # cursors of the writes sent since the last wait
        self.ids: dict[str, list[int]] = {}
        self.broken: BaseException | None = None
        # Lookups the work may keep for the block, as a SQLite batch's memo (people,
        # records and owners, activities: sharetui.core.sharing.facts and the automations'
        # trigger data): dropped when a write to their tables is sent, or a statement that
        # may change a row (or rolls back to a savepoint) is waited for. Other connections'
        # changes are seen as late as a read at the block's start sees them.
        self.memo: dict[Any, Any] = {}

    def hold(self, sql: str, params: Any, tables: frozenset[str] | None = None) -> None:
        """Send a write of ``tables`` (None: it may write any) without waiting for it."""
        self.check()
        if self.memo and (tables is None or not tables.isdisjoint(_MEMO_TABLES)):
            self.memo.clear()
        try:
            with __exception_wrapper__:
                cursor = self.conn.cursor()
                cursor.execute(sql, params or ())
        except Exception as exc:  # an earlier write's error, met while sending this one
            self.broken = exc
            raise DeferredWriteFailed(f"a write sent without waiting failed: {exc}") from exc
        self.sent.append(cursor)

    def holds(self, sql: str) -> bool:
        """Send ``SAVEPOINT x`` or ``RELEASE SAVEPOINT x`` without waiting; False for any
        other statement."""
        if sql.lstrip()[:9].upper().startswith(_NOT_WAITED):
            self.hold(sql, None, frozenset())
            return True
        return False

    def take_id(self, table: str) -> int:
        """The next id of ``table`` from its sequence, a block of them drawn at a time."""
        pool = self.ids.get(table)
        if not pool:
            rows = self.run(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                (table, self.block),
            ).fetchall()
            pool = self.ids[table] = [row[0] for row in reversed(rows)]
        return pool.pop()

    def run(self, sql: str | None, params: Any) -> Any:
        """Send ``sql`` (if any) and wait for it, and so for everything sent before it;
        returns its cursor."""
        self.check()
        if sql is not None and self.memo and not sql.lstrip()[:6].upper().startswith("SELECT"):
            self.memo.clear()  # it may change a row (as a SQLite batch drops its memo), or roll back
        cursor = None
        try:
            with __exception_wrapper__:
                if sql is not None:
                    cursor = self.conn.cursor()
                    cursor.execute(sql, params or ())
                self.pipeline.sync()
        except Exception as exc:
            sent, self.sent = self.sent, []
            self._resync()
            if sql is not None and cursor is not None and all(_went_through(c) for c in sent):
                raise  # the statement waited for failed, alone: as if run without write-behind
            self.broken = exc
            raise DeferredWriteFailed(f"a write sent without waiting failed: {exc}") from exc
        self.sent = []
        return cursor

    def _resync(self) -> None:
        """After an error: take in every answer still due, so the connection takes
        statements again (a rollback to a savepoint, or of the transaction)."""
        for _ in range(3):
            try:
                self.pipeline.sync()
                return
            except Exception:  # noqa: BLE001 - answers of statements the error aborted
                continue

    def flush(self) -> None:
        """Wait for everything sent."""
        self.run(None, None)

    def discard(self) -> None:
        self.ids.clear()
        self.memo.clear()
        self.sent = []

    def check(self) -> None:
        if self.broken is not None:
            raise DeferredWriteFailed("a write-behind whose statements could not be written") from self.broken


def _went_through(cursor: Any) -> bool:
    from psycopg.pq import ExecStatus

    result = cursor.pgresult
    return result is not None and result.status in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK)


def write_behind_of(db: Any) -> WriteBehind | None:
    """The write-behind open on this thread's connection, or None."""
    return getattr(db._state, "write_behind", None) if db is not None else None


@contextmanager
def write_behind(db: Any, *, block: int = 100) -> Iterator[WriteBehind]:
    """Send writes without waiting inside this block (call inside a transaction).
    ``block``: ids drawn from a sequence at a time (about as many as the block will
    insert into a table). Everything sent is waited for when the block ends normally."""
    conn = db.connection()
    wb = WriteBehind(conn, block)
    manager = conn.pipeline()
    wb.pipeline = manager.__enter__()
    db._state.write_behind = wb
    failed = True
    try:
        yield wb
        wb.flush()
        failed = False
    finally:
        db._state.write_behind = None
        wb.discard()
        try:
            manager.__exit__(None, None, None)  # waits for anything still unanswered
        except Exception:
            if not failed:  # the block went through but the last writes did not
                raise
            # Already failing (the transaction rolls back): the first error is the one to see.


__all__ = ["DeferredWriteFailed", "WriteBehind", "write_behind", "write_behind_of"]

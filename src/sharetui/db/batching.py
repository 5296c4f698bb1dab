"""Deferred writes: a batch of work in one write transaction writes its rows
set-based, one statement per table, instead of one statement per row.

The batch API decides up to 500 share items in one transaction (100 on PostgreSQL), and
the worker a hundred events or more; each item writes a request, a grant, history rows
and an outbox event (and an event its run, step and mark), one statement each. Inside
:func:`deferred_writes`:

- an :class:`~sharetui.db.sql.Insert` keeps its row in memory with the id the table
  will have given it, and returns that id. SQLite: the largest id + 1, read once (the
  transaction holds SQLite's write lock, so no other connection inserts meanwhile).
  PostgreSQL: ids drawn from the table's sequence a block at a time, as an insert
  would have drawn them (other sessions draw theirs in between);
- an :class:`~sharetui.db.sql.Update` of a row still held changes it in place (a
  request is written once, completed), other updates wait to be written together;
- the rows are written before anything could need them: before a statement that may
  read them (a :class:`~sharetui.db.sql.Statement` names the tables it reads; any other
  statement, a Peewee query included, counts as reading and writing everything) and
  before the commit. A read that knows which rows it depends on asks
  :meth:`Batch.settle` for just those (a share's grants on its record). A statement
  that reads none of them (a lock, the server's clock) runs apart (:func:`execute_apart`);
- each table's rows are written by one ``executemany`` (SQLite), or one ``INSERT ...
  SELECT * FROM unnest(...)`` of a column array each (PostgreSQL: a statement a row
  costs the client and the server a statement each, and a ``VALUES`` list of thousands
  of parameters is parsed anew by the driver each time);
- savepoints are opened lazily, in order, only when something is written under them;
  rolling one back drops what it held. An item or event keeps its savepoint and its
  isolation: one that fails is rolled back alone;
- lookups the batch may memo (users, record owners: tables its writes never touch)
  live in :attr:`Batch.memo`, dropped whenever another statement may have changed a row.
  On PostgreSQL other sessions may change them meanwhile: what the memo keeps is what a
  read at the batch's start saw, so the share decision reads what it depends on again
  under the recipient's lock (``share.py``'s ``_CAP_AND_GRANT_PG``).

If writing the held rows fails, the batch is broken: every later statement and the
commit raise :class:`DeferredWriteFailed`, the transaction rolls back, and the caller
does the work again without deferring (where a failing item is isolated as before).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from peewee import __exception_wrapper__

from sharetui.db.changes import CHANNEL

if TYPE_CHECKING:
    from sharetui.db.sql import Insert, Statement, Update

# Rows are written table by table in this order: a step's run must exist first.
_TABLE_ORDER = {"automation_runs": 0, "automation_steps": 1}
# PostgreSQL: a column's values as one Python type, by the column's type (a row may hold
# an int where others hold a float, or 0 for false).
_KINDS: dict[str, Any] = {
    "integer": int,
    "bigint": int,
    "smallint": int,
    "boolean": bool,
    "double precision": float,
    "real": float,
    "numeric": float,
}


def _array(kind: Any, values: tuple[Any, ...]) -> list[Any]:
    if kind is None:
        return list(values)
    return [None if v is None else kind(v) for v in values]


# PostgreSQL: rows one INSERT writes at most.
_PG_ROWS = 1000
# PostgreSQL: per database, each Insert's statement writing rows from arrays (Batch._unnest_sql).
_UNNEST: weakref.WeakKeyDictionary[Any, dict[Any, str]] = weakref.WeakKeyDictionary()


class DeferredWriteFailed(Exception):
    """Writing a batch's held rows failed; the transaction must roll back and the work
    be done again without deferring. The store's error is the ``__cause__``."""


class _Mark:
    __slots__ = ("issued", "name", "next_ids", "seq")

    def __init__(self, name: str, seq: int, next_ids: dict[str, int]) -> None:
        self.name = name
        self.seq = seq
        self.issued = False
        self.next_ids = next_ids


class _Savepoint:
    """A savepoint inside a batch, as Peewee's ``atomic()`` uses one (``_savepoint``'s
    interface): opened when something is written under it (:class:`Batch`)."""

    __slots__ = ("batch", "name")

    def __init__(self, batch: Batch, name: str) -> None:
        self.batch = batch
        self.name = name

    def __enter__(self) -> _Savepoint:
        batch = self.batch
        batch._check()
        batch.marks.append(_Mark(self.name, batch.seq, dict(batch.next_ids)))
        return self

    def commit(self, begin: bool = True) -> None:
        self.batch.release(self.name)
        if begin:
            self.__enter__()

    def rollback(self, begin: bool = True) -> None:
        self.batch.rollback_to(self.name)
        if begin:
            self.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type:
            self.rollback(False)
        else:
            try:
                self.commit(begin=False)
            except Exception:
                self.rollback(begin=False)
                raise


class _NoRows:
    """What a statement the batch answered itself returns (a savepoint it has not opened yet)."""

    rowcount = 0
    lastrowid = None

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []


_NO_ROWS = _NoRows()


class Batch:
    """The rows one transaction holds back; see the module's docstring."""

    # PostgreSQL: ids drawn from a sequence at a time (None: as many as the batch's size).
    id_block: int | None = None

    def __init__(self, db: Any, size: int = 100) -> None:
        self.db = db
        self.conn = db.connection()
        self.sqlite = hasattr(self.conn, "total_changes")
        self.size = max(1, size)
        self.pools: dict[str, list[int]] = {}  # PostgreSQL: ids drawn, by table
        self.writes = 0  # PostgreSQL: statements run that may have changed a row
        self.seq = 0
        # Insert statement -> [(seq, row)], rows in the statement's ``layout``.
        self.rows: dict[Insert, list[tuple[int, list[Any]]]] = {}
        # table -> id -> (seq, row, its statement) of the rows held, for updates in place.
        self.by_id: dict[str, dict[Any, tuple[int, list[Any], Insert]]] = {}
        # Update statement -> [(seq, params)] waiting for an executemany.
        self.updates: dict[Update, list[tuple[int, Any]]] = {}
        self.held: Counter[str] = Counter()  # table -> rows and updates held
        self.updated: set[str] = set()  # tables with updates held
        self.keyed: dict[tuple[str, str], Counter[tuple[Any, ...]]] = {}
        self.next_ids: dict[str, int] = {}
        self.marks: list[_Mark] = []
        self.memo: dict[Any, Any] = {}
        # Records the batch's work will ask about, by entity: a lookup keyed by record may
        # read them all in one statement when it first misses (facts.prefetch names them).
        self.records: dict[str, set[int]] = {}
        self.changes = self._changes()
        self.broken: BaseException | None = None
        self.named = 0  # savepoints named so far (b1, b2, ...)

    # -- what the statements call ---------------------------------------------------
    def add(self, insert: Insert, rows: list[list[Any]]) -> int:
        """Hold ``rows`` (without their id) of ``insert``; returns the last one's id."""
        if self.broken is not None:
            self._check()
        table = insert.table
        held = self.rows.get(insert)
        if held is None:
            held = self.rows[insert] = []
        ident = 0
        for row in rows:
            self.seq = seq = self.seq + 1
            if insert.has_id:
                ident = self._take_id(table)
                row.insert(0, ident)
                by_id = self.by_id.get(table)
                if by_id is None:
                    by_id = self.by_id[table] = {}
                by_id[ident] = (seq, row, insert)
            held.append((seq, row))
            for name, columns in insert.keys.items():
                counter = self.keyed.get((table, name))
                if counter is None:
                    counter = self.keyed[(table, name)] = Counter()
                counter[tuple([row[i] for i in columns])] += 1
        self.held[table] += len(rows)
        return ident

    def update(self, update: Update, sql: str, params: Any) -> int:
        """Change a held row in place; else hold the update (``deferred``) or run it."""
        self._check()
        key = params[-1]
        found = self.by_id.get(update.table, {}).get(key) if update.key == "id" else None
        if (
            found is not None
            and not (self.marks and self.marks[-1].seq > found[0])
            and update.columns <= found[2].columns_held
        ):
            # Held, and written under the innermost open savepoint or later: a rollback
            # of that savepoint drops the row itself, so changing it in place is exact.
            _seq, row, insert = found
            layout = insert.layout
            for column, value in zip(update.sets, params, strict=False):
                row[layout.index(column)] = value
            for column, value in update.constants.items():
                row[layout.index(column)] = value
            for column in update.increments:
                row[layout.index(column)] += 1
            return 1
        if update.deferred or found is not None:
            self.seq += 1
            self.updates.setdefault(update, []).append((self.seq, tuple(params)))
            self.held[update.table] += 1
            self.updated.add(update.table)
            return 1
        return self.execute_foreign(sql, params).rowcount

    def read(self, statement: Statement, sql: str, params: Any) -> Any:
        """Run a statement: one that only reads tables whose held rows it may not see
        (or were settled by the caller) at once, anything else after the rows are written."""
        self._check()
        reads = statement.reads
        if reads is None:
            return self.execute_foreign(sql, params)
        held = self.held
        if held:
            for table in reads:
                if held[table] and (table not in statement.checked or table in self.updated):
                    self.flush()
                    break
        return self.apart(sql, params)

    def apart(self, sql: str, params: Any) -> Any:
        """Run ``sql`` at once, the held rows left held (:func:`execute_apart`).

        PostgreSQL: should it fail (a lock wait that runs out, a deadlock) while a
        savepoint the work is inside is not opened yet, the server's transaction is
        aborted and no rollback to that savepoint can undo just this item: the batch is
        broken, and the caller decides it again a statement at a time (where the
        savepoint is opened first). Committing would otherwise roll back silently."""
        try:
            return self._execute(sql, params)
        except Exception as exc:
            if not self.sqlite and any(not mark.issued for mark in self.marks):
                self.broken = exc
                raise DeferredWriteFailed(f"a statement failed outside its savepoint: {exc}") from exc
            raise

    def execute_foreign(self, sql: str, params: Any) -> Any:
        """A statement that may read or write anything: the held rows go first, under
        their savepoints, and memos go after it if it changed a row."""
        self._check()
        first = sql.lstrip()[:24].upper()
        if first.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            return self._savepoint(first, sql)
        self.flush()
        cursor = self._execute(sql, params)
        if not self.sqlite and not first.startswith("SELECT"):
            self.writes += 1  # it may have changed a row (PostgreSQL does not count them)
        changes = self._changes()
        if changes != self.changes:
            self.changes = changes
            self.memo.clear()
            if self.sqlite:  # ids come from MAX(id): another statement may have inserted
                self.next_ids.clear()
        return cursor

    def savepoint(self) -> _Savepoint:
        """A savepoint for Peewee's ``atomic()`` inside this batch."""
        self.named += 1
        return _Savepoint(self, f"b{self.named}")

    # -- what callers ask -------------------------------------------------------------
    def pending(self, table: str, key: str, value: tuple[Any, ...]) -> int:
        """How many held rows of ``table`` have ``value`` in the columns named ``key``."""
        counter = self.keyed.get((table, key))
        return counter[value] if counter else 0

    def settle(self, table: str, key: str, value: tuple[Any, ...]) -> None:
        """Write the held rows if any of ``table``'s has ``value`` in ``key``'s columns:
        the caller is about to read those (a read declaring ``checked=(table,)``)."""
        if self.pending(table, key, value) or (table in self.updated and self.held[table]):
            self.flush()

    def flush(self) -> None:
        """Write every held row and update, each savepoint opened before what it holds."""
        self._check()
        if not self.held:
            self._issue_marks()
            return
        try:
            bounds = [mark for mark in self.marks if not mark.issued]
            low = 0
            for mark in [*bounds, None]:
                high = mark.seq if mark is not None else self.seq
                self._write(low, high)
                if mark is not None:
                    self._execute(f"SAVEPOINT {mark.name};", ())
                    mark.issued = True
                low = high
        except Exception as exc:
            self.broken = exc
            raise DeferredWriteFailed(f"writing the batch's rows failed: {exc}") from exc
        self.rows.clear()
        self.by_id.clear()
        self.updates.clear()
        self.held.clear()
        self.updated.clear()
        self.keyed.clear()
        self.changes = self._changes()

    def discard(self) -> None:
        """The transaction rolled back: forget everything held."""
        self.rows.clear()
        self.by_id.clear()
        self.updates.clear()
        self.held.clear()
        self.updated.clear()
        self.keyed.clear()
        self.next_ids.clear()
        self.pools.clear()
        self.marks.clear()
        self.memo.clear()

    # -- inside ---------------------------------------------------------------------------
    def _check(self) -> None:
        if self.broken is not None:
            raise DeferredWriteFailed("a batch whose rows could not be written") from self.broken

    def _execute(self, sql: str, params: Any) -> Any:
        return self.db.execute_direct(sql, params)

    def _changes(self) -> int:
        return self.conn.total_changes if self.sqlite else self.writes

    def _take_id(self, table: str) -> int:
        """The id of the next row held for ``table``. SQLite: the table's largest + 1 (the
        transaction holds the write lock: no other connection inserts meanwhile).
        PostgreSQL: the next of the ids drawn from the table's sequence, a block at a time;
        ``next_ids`` keeps the position, so a rolled-back savepoint gives its ids again."""
        if self.sqlite:
            ident = self.next_ids.get(table) or self._next_id(table)
            self.next_ids[table] = ident + 1
            return ident
        at = self.next_ids.get(table, 0)
        pool = self.pools.setdefault(table, [])
        if at >= len(pool):
            block = self.id_block or self.size
            pool += [
                row[0]
                for row in self._execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    (table, block),
                ).fetchall()
            ]
        self.next_ids[table] = at + 1
        return pool[at]

    def _unnest_sql(self, insert: Insert) -> tuple[str, tuple[Any, ...]]:
        """PostgreSQL: ``INSERT INTO t (layout) SELECT * FROM unnest(%s::type[], ...)``, and
        what each column's values are made (an array holds one Python type)."""
        texts = _UNNEST.setdefault(self.db, {})
        found = texts.get(insert)
        if found is None:
            types = dict(
                self._execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    (insert.table,),
                ).fetchall()
            )
            arrays = ", ".join(f"%s::{types[column]}[]" for column in insert.layout)
            text = f"INSERT INTO {insert.table} ({', '.join(insert.layout)}) SELECT * FROM unnest({arrays})"
            found = texts[insert] = (text, tuple(_KINDS.get(types[column]) for column in insert.layout))
        return found

    def _next_id(self, table: str) -> int:
        """The id the table would give its next row: its largest + 1."""
        row = self._execute(f"SELECT MAX(id) FROM {table}", ()).fetchone()
        return (row[0] or 0) + 1 if row else 1

    def _write(self, low: int, high: int) -> None:
        """Write what was held after ``low`` up to ``high`` (sequence numbers)."""
        order = sorted(self.rows, key=lambda s: _TABLE_ORDER.get(s.table, 2))
        cursor = None
        notify = False
        for insert in order:
            rows = [row for seq, row in self.rows[insert] if low < seq <= high]
            if rows:
                cursor = cursor or self.db.cursor()
                with __exception_wrapper__:
                    if self.sqlite:
                        cursor.executemany(insert.batch_sql(), rows)
                        continue
                    # PostgreSQL: one statement writes the rows, a column an array (one
                    # statement a row would cost the client and the server a statement each,
                    # and a VALUES list of thousands of parameters is parsed anew each time).
                    sql, kinds = self._unnest_sql(insert)
                    for start in range(0, len(rows), _PG_ROWS):
                        part = rows[start : start + _PG_ROWS]
                        columns = zip(kinds, zip(*part, strict=True), strict=True)
                        cursor.execute(sql, [_array(kind, column) for kind, column in columns])
                    notify = notify or insert.table == "outbox"
        for update, waiting in self.updates.items():
            params = [p for seq, p in waiting if low < seq <= high]
            if params:
                cursor = cursor or self.db.cursor()
                with __exception_wrapper__:
                    cursor.executemany(update.sql(), params)
        if notify and cursor is not None:  # open faces refresh when the batch commits (NOTIFY's function)
            with __exception_wrapper__:
                cursor.execute(f"SELECT pg_notify('{CHANNEL}', '')")

    def _issue_marks(self) -> None:
        for mark in self.marks:
            if not mark.issued:
                self._execute(f"SAVEPOINT {mark.name};", ())
                mark.issued = True

    def _savepoint(self, first: str, sql: str) -> Any:
        """A savepoint statement run through ``execute_sql`` (Peewee's own savepoints)."""
        name = sql.split()[-1].rstrip(";")
        if first.startswith("SAVEPOINT"):
            self.marks.append(_Mark(name, self.seq, dict(self.next_ids)))
            return _NO_ROWS
        if first.startswith("RELEASE"):
            return self.release(name, sql)
        return self.rollback_to(name, sql)

    def _find(self, name: str) -> int | None:
        marks = self.marks
        for i in range(len(marks) - 1, -1, -1):
            if marks[i].name == name:
                return i
        return None

    def release(self, name: str, sql: str | None = None) -> Any:
        """``RELEASE SAVEPOINT name``: its rows belong to the savepoint around it now."""
        at = self._find(name)
        sql = sql or f"RELEASE SAVEPOINT {name}"
        if at is None:  # opened before the batch began: the store's own
            self.flush()
            return self._execute(sql, ())
        issued = self.marks[at].issued
        del self.marks[at:]
        return self._execute(sql, ()) if issued else _NO_ROWS

    def rollback_to(self, name: str, sql: str | None = None) -> Any:
        """``ROLLBACK TO SAVEPOINT name``: drop what was held since; it stays open."""
        at = self._find(name)
        sql = sql or f"ROLLBACK TO SAVEPOINT {name}"
        if at is None:
            self.flush()
            return self._execute(sql, ())
        mark = self.marks[at]
        self._truncate(mark.seq)
        self.next_ids = dict(mark.next_ids)
        self.memo.clear()
        del self.marks[at + 1 :]
        if mark.issued:
            cursor = self._execute(sql, ())
            self.changes = self._changes()
            return cursor
        return _NO_ROWS

    def _truncate(self, seq: int) -> None:
        for insert, rows in self.rows.items():
            while rows and rows[-1][0] > seq:
                _, row = rows.pop()
                self.held[insert.table] -= 1
                if insert.has_id:
                    self.by_id[insert.table].pop(row[0], None)
                for name, columns in insert.keys.items():
                    self.keyed[(insert.table, name)][tuple(row[i] for i in columns)] -= 1
        for update, waiting in self.updates.items():
            while waiting and waiting[-1][0] > seq:
                waiting.pop()
                self.held[update.table] -= 1
        self.held = +self.held  # drop tables that hold nothing now
        self.updated = {u.table for u, waiting in self.updates.items() if waiting}
        for counter in self.keyed.values():
            counter += Counter()  # drop keys counted down to nothing


@contextmanager
def deferred_writes(db: Any, *, size: int = 100) -> Iterator[Batch | None]:
    """Defer the writes of the statements run in this block (inside a transaction; nested,
    nothing changes and None is yielded). ``size``: about how many items the block decides
    (PostgreSQL draws as many ids at a time). The rows held are written when the block
    ends normally; when it raises they are dropped, as the transaction around it rolls back."""
    if not hasattr(db, "execute_direct") or db.transaction_depth() == 0 or batch_of(db) is not None:
        yield None
        return
    batch = Batch(db, size)
    db._state.batch = batch
    try:
        yield batch
        batch.flush()
    except BaseException:
        batch.discard()
        raise
    finally:
        db._state.batch = None


def execute_apart(db: Any, sql: str, params: Any = ()) -> Any:
    """Run a statement that reads no table a batch holds rows for, and writes none (a
    lock, the server's clock): at once, the batch's rows left held."""
    batch = batch_of(db)
    if batch is None:
        return db.execute_sql(sql, params)
    batch._check()
    return batch.apart(sql, params)


def memo_of(db: Any) -> dict[Any, Any] | None:
    """The memo of the batch open on this thread's connection, or None: lookups the
    batch may keep (see each use)."""
    batch = batch_of(db)
    return None if batch is None else batch.memo


def batch_of(db: Any) -> Batch | None:
    """The batch of deferred writes open on this thread's connection, or None."""
    # A stand-in store without Peewee's per-thread state (a test's fake server) has none.
    return getattr(getattr(db, "_state", None), "batch", None)


__all__ = ["Batch", "DeferredWriteFailed", "batch_of", "deferred_writes", "execute_apart", "memo_of"]

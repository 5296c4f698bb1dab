"""Precompiled SQL for hot paths: written once with ``?`` placeholders, adapted
to the bound dialect, then run with ``execute_sql`` (no query building per call).

Inside a batch of deferred writes (:mod:`sharetui.db.batching`) an :class:`Insert`
keeps its row to be written with its table's others in one statement, an
:class:`Update` of such a row changes it in place, and a read that names its tables
(``reads=``) runs without first writing the rows it cannot see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from peewee import __exception_wrapper__

from sharetui.db.connection import Dialect, database, dialect


class Statement:
    """One SQL text, compiled per dialect on first use.

    ``reads``: the tables the statement reads, when it only reads (else None: it may
    write, and a batch writes what it holds before it runs). ``checked``: of those,
    the tables whose deferred rows the caller has settled itself
    (:meth:`~sharetui.db.batching.Batch.settle`) because it knows which rows it reads.
    """

    __slots__ = ("_bound", "_compiled", "checked", "reads", "text")

    def __init__(self, text: str, *, reads: Iterable[str] | None = None, checked: Iterable[str] = ()) -> None:
        self.text = " ".join(text.split())
        self._compiled: dict[Dialect, str] = {}
        # (database, its SQL text, is SQLite) for the database the proxy was last bound to:
        # hot paths run thousands of statements a second, so the dialect is not asked each time.
        self._bound: tuple[Any, str, bool] | None = None
        self.reads = None if reads is None else frozenset(reads)
        self.checked = frozenset(checked)

    def _for_database(self) -> tuple[Any, str, bool]:
        bound = self._bound
        db = database.obj
        if bound is None or bound[0] is not db:
            which = dialect()
            compiled = self._compiled.get(which)
            if compiled is None:
                compiled = self.text if which is Dialect.SQLITE else self.text.replace("?", "%s")
                self._compiled[which] = compiled
            if db is None:  # unbound: the proxy raises its own error
                return database, compiled, False
            bound = self._bound = (db, compiled, which is Dialect.SQLITE)
        return bound

    def sql(self) -> str:
        return self._for_database()[1]

    def _cursor(self, params: tuple[Any, ...] | list[Any]) -> Any:
        db, sql, _sqlite = self._for_database()
        batch = getattr(db._state, "batch", None)
        if batch is not None:
            return batch.read(self, sql, params)
        return db.execute_sql(sql, params)

    def all(self, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        return self._cursor(params).fetchall()

    def one(self, params: tuple[Any, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        return self._cursor(params).fetchone()

    def all_unprepared(self, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Like :meth:`all`, but never prepared by the server (PostgreSQL): for a query
        whose best plan depends on its parameters, such as a text search."""
        db, sql, sqlite = self._for_database()
        if sqlite:
            return self._cursor(params).fetchall()
        with __exception_wrapper__:  # driver errors as peewee's, as execute_sql gives them
            cursor = db.cursor()
            cursor.execute(sql, params, prepare=False)
            return cursor.fetchall()

    def run(self, params: tuple[Any, ...] | list[Any] = ()) -> int:
        return self._cursor(params).rowcount

    def insert(self, params: tuple[Any, ...] | list[Any] = ()) -> int:
        """Run an ``INSERT`` of one row into a table with an ``id`` key; returns the new id."""
        db, sql, sqlite = self._for_database()
        if sqlite:
            return db.execute_sql(sql, params).lastrowid
        return db.execute_sql(sql + " RETURNING id", params).fetchone()[0]


class Insert(Statement):
    """``INSERT INTO table (columns) VALUES (...)``: one row per ``len(columns)``
    parameters (two rows from twice as many), then the ``fixed`` columns with their
    values.

    In a batch (:mod:`sharetui.db.batching`) the row is kept, with the id the table
    would give it, and written with its table's other rows in one ``executemany``.
    ``has_id``: the table's key is an ``id`` the store assigns. ``keys``: names for
    tuples of columns a batch counts its rows by (:meth:`Batch.pending`), so a read
    that depends only on other keys need not wait for them.
    """

    __slots__ = ("_texts", "columns", "columns_held", "fixed", "has_id", "keys", "layout", "table")

    def __init__(
        self,
        table: str,
        columns: Iterable[str],
        *,
        fixed: Mapping[str, Any] | None = None,
        has_id: bool = True,
        keys: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.fixed = tuple((fixed or {}).values())
        bound = (*self.columns, *(fixed or {}))
        self.has_id = has_id
        # The columns of a row as a batch keeps it (the id first when the store assigns one).
        self.layout = ("id", *bound) if has_id else bound
        self.columns_held = frozenset(self.layout)
        self.keys = {name: tuple(self.layout.index(c) for c in cols) for name, cols in (keys or {}).items()}
        self._texts: dict[int, str] = {}
        super().__init__(_values_sql(table, bound, 1))

    def batch_sql(self) -> str:
        """What a batch writes its rows with: every column of :attr:`layout` bound."""
        return _values_sql(self.table, self.layout, 1)

    def rows_sql(self, rows: int) -> str:
        """The ``INSERT`` of ``rows`` rows (``?`` placeholders), the store's id left out."""
        text = self._texts.get(rows)
        if text is None:
            text = _values_sql(self.table, self.layout[1:] if self.has_id else self.layout, rows)
            self._texts[rows] = text
        return text

    def _rows(self, params: tuple[Any, ...] | list[Any]) -> list[list[Any]]:
        width = len(self.columns)
        if len(params) == width:
            return [[*params, *self.fixed]]
        return [[*params[i : i + width], *self.fixed] for i in range(0, len(params), width)]

    def insert(self, params: tuple[Any, ...] | list[Any] = ()) -> int:
        db, sql, sqlite = self._for_database()
        batch = getattr(db._state, "batch", None)
        if batch is not None:
            return batch.add(self, self._rows(params))
        if sqlite:
            return db.execute_sql(sql, [*params, *self.fixed]).lastrowid
        return db.execute_sql(sql + " RETURNING id", [*params, *self.fixed]).fetchone()[0]

    def run(self, params: tuple[Any, ...] | list[Any] = ()) -> int:
        db, sql, sqlite = self._for_database()
        rows = self._rows(params)
        batch = getattr(db._state, "batch", None)
        if batch is not None:
            batch.add(self, rows)
            return len(rows)
        if len(rows) > 1:
            text = self.rows_sql(len(rows))
            sql = text if sqlite else text.replace("?", "%s")
        return db.execute_sql(sql, [value for row in rows for value in row]).rowcount


def _values_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    one = "(" + ", ".join("?" * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * rows)


class Update(Statement):
    """``UPDATE table SET ... WHERE key = ?``: ``sets`` bound to the parameters in
    order (the key's value last), ``constants`` set to fixed values and one added to
    each of ``increments``.

    In a batch, a row the batch still holds is changed in place. Another row's update
    is kept and written with the others in one ``executemany`` (``deferred``, the
    default), or else at once, after what the batch holds.
    """

    __slots__ = ("columns", "constants", "deferred", "increments", "key", "sets", "table")

    def __init__(
        self,
        table: str,
        sets: Iterable[str],
        *,
        constants: Mapping[str, Any] | None = None,
        increments: Iterable[str] = (),
        key: str = "id",
        deferred: bool = True,
    ) -> None:
        self.table = table
        self.sets = tuple(sets)
        self.constants = dict(constants or {})
        self.increments = tuple(increments)
        self.key = key
        self.deferred = deferred
        self.columns = frozenset((*self.sets, *self.constants, *self.increments))
        parts = [f"{c} = ?" for c in self.sets]
        parts += [f"{c} = {_literal(v)}" for c, v in self.constants.items()]
        parts += [f"{c} = {c} + 1" for c in self.increments]
        super().__init__(f"UPDATE {table} SET {', '.join(parts)} WHERE {key} = ?")

    def run(self, params: tuple[Any, ...] | list[Any] = ()) -> int:
        db, sql, _sqlite = self._for_database()
        batch = getattr(db._state, "batch", None)
        if batch is not None:
            return batch.update(self, sql, params)
        return db.execute_sql(sql, params).rowcount


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if value is None:
        return "NULL"
    return str(int(value)) if isinstance(value, bool) else str(value)


# "Active and unexpired", for a query that also names the user (``user_id = ?``). Without
# statistics (a database is never ANALYZEd) SQLite prefers the sweeper's (state,
# expires_at) index for ``state = 'active' AND expires_at > ?`` and reads every live
# grant in the company; ``state || ''`` is the same test that no index serves, so the
# user's own index is used. PostgreSQL plans from statistics either way.
USER_LIVE_GRANT = "state || '' = 'active' AND expires_at > ?"


def level_sql(table: str) -> str:
    """What the default rule set reads to decide a user's level on a record of ``table``
    (``default_plugins/access.py``), parameters (entity type, now, record id, user id):
    the user's role, active flag and username, the record's owner (NULL: no record), the
    best group level the user shares with the owner, the best active unexpired grant.
    No row: no such user. The share path reads it for the requester in the statement it
    runs under the recipient's lock on PostgreSQL (``FRESH_LEVEL``)."""
    return f"""
        SELECT u.role, u.active, u.username, r.owner_id,
          (SELECT MAX(gm1.level) FROM group_members gm1
             JOIN group_members gm2 ON gm2.group_id = gm1.group_id
            WHERE gm1.user_id = u.id AND gm2.user_id = r.owner_id),
          (SELECT MAX(g.access) FROM grants g
            WHERE g.user_id = u.id AND g.entity_type = ? AND g.entity_id = r.id
              AND g.state = 'active' AND g.expires_at > ?)
        FROM users u LEFT JOIN {table} r ON r.id = ?
        WHERE u.id = ?
        """


# A batch's memo key: ``(FRESH_LEVEL, user id, entity type, record id, now)`` -> the
# ``level_sql`` row (None: no such user) read a moment ago in a statement the share path
# ran anyway, for the rule set's next question about exactly that; taken once.
FRESH_LEVEL = "fresh-level"

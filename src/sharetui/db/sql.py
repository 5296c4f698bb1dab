"""Precompiled SQL for hot paths: written once with ``?`` placeholders, adapted
to the bound dialect, then run with ``execute_sql`` (no query building per call).
"""

from __future__ import annotations

from typing import Any

from peewee import __exception_wrapper__

from sharetui.db.connection import Dialect, database, dialect


class Statement:
    """One SQL text, compiled per dialect on first use."""

    __slots__ = ("_bound", "_compiled", "text")

    def __init__(self, text: str) -> None:
        self.text = " ".join(text.split())
        self._compiled: dict[Dialect, str] = {}
        # (database, its SQL text, is SQLite) for the database the proxy was last bound to:
        # hot paths run thousands of statements a second, so the dialect is not asked each time.
        self._bound: tuple[Any, str, bool] | None = None

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

    def all(self, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        db, sql, _ = self._for_database()
        return db.execute_sql(sql, params).fetchall()

    def one(self, params: tuple[Any, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        db, sql, _ = self._for_database()
        return db.execute_sql(sql, params).fetchone()

    def all_unprepared(self, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Like :meth:`all`, but never prepared by the server (PostgreSQL): for a query
        whose best plan depends on its parameters, such as a text search."""
        db, sql, sqlite = self._for_database()
        if sqlite:
            return db.execute_sql(sql, params).fetchall()
        with __exception_wrapper__:  # driver errors as peewee's, as execute_sql gives them
            cursor = db.cursor()
            cursor.execute(sql, params, prepare=False)
            return cursor.fetchall()

    def run(self, params: tuple[Any, ...] | list[Any] = ()) -> int:
        db, sql, _ = self._for_database()
        return db.execute_sql(sql, params).rowcount

    def insert(self, params: tuple[Any, ...] | list[Any] = ()) -> int:
        """Run an ``INSERT`` of one row into a table with an ``id`` key; returns the new id."""
        db, sql, sqlite = self._for_database()
        if sqlite:
            return db.execute_sql(sql, params).lastrowid
        return db.execute_sql(sql + " RETURNING id", params).fetchone()[0]


# "Active and unexpired", for a query that also names the user (``user_id = ?``). Without
# statistics (a database is never ANALYZEd) SQLite prefers the sweeper's (state,
# expires_at) index for ``state = 'active' AND expires_at > ?`` and reads every live
# grant in the company; ``state || ''`` is the same test that no index serves, so the
# user's own index is used. PostgreSQL plans from statistics either way.
USER_LIVE_GRANT = "state || '' = 'active' AND expires_at > ?"

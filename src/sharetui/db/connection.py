"""One ``DatabaseProxy`` for the whole program, initialised from a URL."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase

from sharetui.errors import UsageError

database = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 15000,
    "synchronous": "normal",
    "cache_size": -32000,
}


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


def connect(url: str) -> Database:
    """Build the database a URL names and bind the global proxy to it.

    SQLite gets WAL, foreign keys, a busy timeout, and write transactions that
    begin ``IMMEDIATE``: under WAL a deferred transaction that reads and then
    writes fails at once with "database is locked", whatever the timeout.
    PostgreSQL URLs (``postgresql://user@host:port/db?options=...``) use psycopg 3.
    """
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parsed.path)
        if parsed.netloc == ":memory:" or path in ("/:memory:", ":memory:"):
            target = ":memory:"
        else:
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy and peewee read them.
            target = path[1:] if path.startswith("/") else path
            if not target:
                raise UsageError(f"database URL {url!r} names no file")
            try:
                Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # e.g. a part of the path is a file
                raise UsageError(f"database URL {url!r}: cannot make its folder: {exc.strerror}") from None
        db: Database = SqliteDatabase(target, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE", timeout=15)
    elif scheme in ("postgres", "postgresql"):
        from sharetui.db._peewee import enable_psycopg

        enable_psycopg()
        params: dict[str, object] = dict(parse_qsl(parsed.query))
        if parsed.username:
            params["user"] = unquote(parsed.username)
        if parsed.password:
            params["password"] = unquote(parsed.password)
        params["host"] = parsed.hostname or "127.0.0.1"
        try:
            port = parsed.port
        except ValueError:
            raise UsageError(f"database URL {url!r}: the port must be a number") from None
        if port:
            params["port"] = port
        name = parsed.path.lstrip("/")
        if not name:
            raise UsageError(f"database URL {url!r} names no database")
        db = PostgresqlDatabase(name, prefer_psycopg3=True, **params)
    else:
        raise UsageError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")
    database.initialize(db)
    return db


# Lock conflicts between concurrent transactions: serialization failure, deadlock
# detected, lock not available. The work was sound; done again, it succeeds.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error peewee wrapped in it) is a lock conflict with
    another transaction (PostgreSQL: deadlock, serialization failure, lock not available;
    SQLite: "database is locked"), not a failure of the work itself."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        err = stack.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        if getattr(err, "sqlstate", None) in _CONFLICT_SQLSTATES:
            return True
        if type(err).__name__ == "OperationalError" and "database is locked" in str(err):
            return True
        stack += [err.__cause__, err.__context__, *err.args]
    return False


def dialect() -> Dialect:
    """Which SQL dialect the bound database speaks."""
    return Dialect.SQLITE if isinstance(database.obj, SqliteDatabase) else Dialect.POSTGRESQL


def is_sqlite() -> bool:
    return dialect() is Dialect.SQLITE

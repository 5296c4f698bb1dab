"""One ``DatabaseProxy`` for the whole program, initialised from a URL."""

from __future__ import annotations

import errno
import os
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase

from sharetui.config import redact_url
from sharetui.db.locks import RecipientBusy
from sharetui.db.search import sql_lower
from sharetui.errors import UsageError

database = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 15000,
    "synchronous": "normal",
    "cache_size": -32000,
    # Checkpoint the log every 20,000 pages (~80 MB), not SQLite's 1,000: a worker's batch
    # or an API chunk touches thousands of index pages, and each checkpoint writes a page
    # once however often it changed meanwhile. Processing events: ~2,600 -> ~3,000 a second
    # on the million-lead company (BENCHMARKS.md, issue 17).
    "wal_autocheckpoint": 20000,
}


class _BatchAware:
    """A store aware of a batch of deferred writes (:mod:`sharetui.db.batching`): while
    one is open on this thread's connection, a statement the batch does not know runs
    after the rows it holds are written, savepoints are opened when something is written
    under them, and a commit writes what is held first."""

    def execute_sql(self, sql, params=None):
        batch = getattr(self._state, "batch", None)
        if batch is None:
            return super().execute_sql(sql, params)
        return batch.execute_foreign(sql, params)

    def execute_direct(self, sql, params=None):
        """Run ``sql`` as it is, whatever batch is open (the batch's own statements)."""
        return super().execute_sql(sql, params)

    def commit(self):
        batch = getattr(self._state, "batch", None)
        if batch is not None:
            batch.flush()
        return super().commit()

    def rollback(self):
        batch = getattr(self._state, "batch", None)
        if batch is not None:
            batch.discard()
        return super().rollback()

    def savepoint(self):
        batch = getattr(self._state, "batch", None)
        if batch is None:
            return super().savepoint()
        return batch.savepoint()


class SqliteStore(_BatchAware, SqliteDatabase):
    """Peewee's SQLite database, batch-aware."""


class PostgresStore(_BatchAware, PostgresqlDatabase):
    """Peewee's PostgreSQL database (psycopg 3), batch-aware."""


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
    shown = redact_url(url)  # what messages may say: never the password
    try:
        parsed = urlparse(url)
    except ValueError as exc:  # e.g. an unclosed '[' of an IPv6 host
        raise UsageError(f"database URL {shown!r} cannot be read: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parsed.path)
        if parsed.netloc == ":memory:" or path in ("/:memory:", ":memory:"):
            target = ":memory:"
        else:
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy and peewee read them.
            target = path[1:] if path.startswith("/") else path
            if not target:
                raise UsageError(f"database URL {shown!r} names no file")
            try:
                Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # e.g. a part of the path is a file
                raise UsageError(f"database URL {shown!r}: cannot make its folder: {exc.strerror}") from None
        db: Database = SqliteStore(target, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE", timeout=15)
        # lower() as PostgreSQL's under a UTF-8 locale, for every alphabet (SQLite's folds
        # ASCII only), so a search means the same on both stores (sharetui.db.search).
        # Not marked deterministic: SQLite then refuses it in an index or a generated
        # column, where another client's built-in lower() would disagree with it.
        db.register_function(sql_lower, "lower", 1)
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
            raise UsageError(f"database URL {shown!r}: the port must be a number") from None
        if port:
            params["port"] = port
        name = parsed.path.lstrip("/")
        if not name:
            raise UsageError(f"database URL {shown!r} names no database")
        # No JIT compilation: every query here reads a page or a handful of rows, but under
        # row security the plans of never-run policy branches are costed as whole-table
        # scans, which passes jit_above_cost, and compiling took a second per list page.
        # Options in the URL come after, so they may turn it back on.
        params["options"] = f"-c jit=off {params.get('options', '')}".strip()
        db = PostgresStore(name, prefer_psycopg3=True, **params)
    else:
        raise UsageError(
            f"unsupported database URL {shown!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    database.initialize(db)
    return db


# Lock conflicts between concurrent transactions: serialization failure, deadlock
# detected, lock not available. The work was sound; done again, it succeeds.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error peewee wrapped in it) is a lock conflict with
    another transaction (PostgreSQL: deadlock, serialization failure, lock not available;
    SQLite: "database is locked"; a recipient another batch holds, :mod:`~sharetui.db.locks`),
    not a failure of the work itself."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        err = stack.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        if getattr(err, "sqlstate", None) in _CONFLICT_SQLSTATES or isinstance(err, RecipientBusy):
            return True
        if type(err).__name__ == "OperationalError" and "database is locked" in str(err):
            return True
        stack += [err.__cause__, err.__context__, *err.args]
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every error it wraps or followed (``__cause__``, ``__context__``, and
    driver errors peewee keeps in ``args``)."""
    seen: set[int] = set()
    found: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        err = stack.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        found.append(err)
        stack += [err.__cause__, err.__context__, *err.args]
    return found


# PostgreSQL errors that mean the session is gone (not that the work failed): the
# connection_exception class, and the server shutting down, crashing or starting.
_CONNECTION_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# What psycopg says, with no SQLSTATE, when the socket is gone or cannot be opened.
_CONNECTION_LOST_TEXT = (
    "the connection is closed",
    "connection already closed",
    "server closed the connection",
    "terminating connection",
    "consuming input failed",
    "could not receive data from server",
    "could not send data to server",
    "ssl connection has been closed",
    "connection failed",
    "connection refused",
    "could not connect to server",
    "the database system is",
)


def connection_lost(exc: BaseException) -> str | None:
    """If ``exc`` says the connection to the database server is gone (terminated by an
    admin, the server restarting, the network) or cannot be made again yet, the name of
    the most specific error class (e.g. ``AdminShutdown``) for a log line; else None.

    A lost connection is no failure of the work: the server rolled back whatever the
    transaction had done, so the same work can be done again on a new connection."""
    found: str | None = None
    for err in _chain(exc):
        state = getattr(err, "sqlstate", None)
        text = str(err).lower()
        if (state and (state.startswith("08") or state in _CONNECTION_LOST_SQLSTATES)) or any(
            marker in text for marker in _CONNECTION_LOST_TEXT
        ):
            name = type(err).__name__
            # The driver's own class (AdminShutdown) says more than peewee's wrapper.
            if found is None or (found in ("OperationalError", "InterfaceError") and state):
                found = name
    return found


_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full" (also ENOSPC while writing)
_PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is, or followed, a full disk: SQLite's SQLITE_FULL (a full file
    system, or ``max_page_count`` reached), PostgreSQL's ``disk_full``, or ENOSPC.

    After SQLITE_FULL, SQLite has already rolled the transaction back, so peewee's own
    rollback fails with "cannot rollback - no transaction is active", which is what
    surfaces: the disk-full error is in its ``__context__``."""
    for err in _chain(exc):
        code = getattr(err, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == _SQLITE_FULL:
            return True
        if "database or disk is full" in str(err):
            return True
        if getattr(err, "sqlstate", None) == _PG_DISK_FULL:
            return True
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        # A WAL database on a disk with no room left cannot grow its -shm file: SQLite
        # says "disk I/O error" (SQLITE_IOERR_SHMSIZE) without the cause; the folder says it.
        io_error = (code is not None and code & 0xFF == _SQLITE_IOERR) or "disk I/O error" in str(err)
        if io_error and _sqlite_folder_is_full():
            return True
    return False


_SQLITE_IOERR = 10
_NEARLY_FULL = 64 * 1024  # bytes: less than a few pages free


def _sqlite_folder_is_full() -> bool:
    """Whether the folder of the bound SQLite file has (next to) no space left."""
    db = database.obj
    if not isinstance(db, SqliteDatabase) or db.database in ("", ":memory:"):
        return False
    try:
        st = os.statvfs(Path(db.database).expanduser().absolute().parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL


def dialect() -> Dialect:
    """Which SQL dialect the bound database speaks."""
    return Dialect.SQLITE if isinstance(database.obj, SqliteDatabase) else Dialect.POSTGRESQL


def is_sqlite() -> bool:
    return dialect() is Dialect.SQLITE

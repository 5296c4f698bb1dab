"""Noticing other connections' commits without re-querying tables.

- **SQLite**: ``PRAGMA data_version`` on a connection of its own changes when
  any *other* connection (another process, or another thread here) commits;
  asking costs no table read.
- **PostgreSQL**: a connection of its own ``LISTEN``\\s on :data:`CHANNEL`; every
  change appends to the outbox, and the outbox's insert ``NOTIFY``\\s in the
  same transaction, so the notice arrives exactly when the change commits.

A :class:`ChangeWatcher` is used from one thread (the TUI's watcher worker).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from peewee import Database, SqliteDatabase

CHANNEL = "sharetui_changes"
NOTIFY_SQL = f"NOTIFY {CHANNEL}"
SQLITE_STEP = 0.1  # how often data_version is read while waiting (a few µs each)


def _real(db: Any) -> Database:
    """The database behind a proxy (or the database itself)."""
    obj = getattr(db, "obj", db)
    if not isinstance(obj, Database):
        raise TypeError(f"not a database: {obj!r}")
    return obj


class ChangeWatcher:
    """Waits for another connection's commit. :meth:`wait` returns True once one happened."""

    def __init__(self, db: Any) -> None:
        self.db = _real(db)
        self.sqlite = isinstance(self.db, SqliteDatabase)
        self._conn: Any = self.db._connect()  # a connection of its own, never the shared one
        if self.sqlite:
            self._version = self._data_version()
        else:
            self._conn.autocommit = True
            self._conn.execute(f"LISTEN {CHANNEL}")

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if something was committed meanwhile."""
        if not self.sqlite:
            changed = False
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                changed = True
            # Several commits in a burst: one refresh is enough.
            while changed and list(self._conn.notifies(timeout=0.0, stop_after=50)):
                pass
            return changed
        deadline = time.monotonic() + timeout
        while True:
            version = self._data_version()
            if version != self._version:
                self._version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(SQLITE_STEP, left))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a connection that already went away
            self._conn.close()


__all__ = ["CHANNEL", "NOTIFY_SQL", "ChangeWatcher"]

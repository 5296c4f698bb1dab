"""The composition root: a :class:`~sharetui.core.service.Core` wired to its plugin host.

The core never imports the plugin runtime; the CLI, the TUI, ``sharetui.testing``
and the benchmarks build a Core here. The faces never import the store either, so
the store's errors they report (a database that cannot be opened, a failed
statement) are named here too.
"""

from __future__ import annotations

import sqlite3

from peewee import DatabaseError, OperationalError

from sharetui.clock import Clock
from sharetui.core.service import Core
from sharetui.db.connection import connect, database, is_disk_full
from sharetui.errors import UsageError
from sharetui.host import PluginHost


def open_core(
    url: str, clock: Clock | None = None, *, migrate: bool = True, plugins: PluginHost | None = None
) -> Core:
    """Connect to ``url``, apply missing migrations (unless told not to), return a Core.

    ``plugins`` is a loaded :class:`~sharetui.host.PluginHost`; without one only
    the default plugins run (``PluginHost.from_environment()`` loads what the
    CLI loads).
    """
    previous = database.obj
    db = connect(url)
    try:
        core = Core(db, clock, plugins or PluginHost.load(entry_points=False))
    except DatabaseError as exc:
        if _denied(exc):
            login = db.execute_sql("SELECT session_user::text").fetchone()[0]
            raise UsageError(
                f"login {login} is linked to no sharetui user and may not read this database: "
                f"in team mode an admin links it with `sharetui users add NAME --role R --login {login}`"
            ) from None
        raise
    core.previous_binding = previous
    if migrate:
        core.migrate()
    return core


_PERMISSION_DENIED = "42501"


def _denied(exc: BaseException) -> bool:
    """A PostgreSQL "permission denied" (insufficient_privilege), as peewee wraps it."""
    causes = (exc, exc.__cause__, exc.__context__, *exc.args)
    return any(getattr(err, "sqlstate", None) == _PERMISSION_DENIED for err in causes)


def release(core: Core) -> None:
    """Close ``core``'s connection and give the store back to whatever was bound before
    it (a program that embeds sharetui, or a test, keeps its own database)."""
    core.close()
    if core.previous_binding is not None:
        database.initialize(core.previous_binding)


# What a failed statement raises: peewee's errors, and the driver's own where a bulk path
# (imports, backups) talks to sqlite3 directly.
STORE_ERRORS: tuple[type[Exception], ...] = (DatabaseError, sqlite3.Error)

__all__ = ["STORE_ERRORS", "DatabaseError", "OperationalError", "is_disk_full", "open_core", "release"]

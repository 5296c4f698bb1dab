"""The ``Core`` facade: one object that holds the clock and the services.

The CLI, the TUI, the batch API and tests all build one with :func:`open_core`
and call its services; nothing else writes to the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from peewee import Database

from sharetui.clock import Clock, SystemClock
from sharetui.core.sql import to_db
from sharetui.db import migrations
from sharetui.db.connection import connect, database

if TYPE_CHECKING:
    from sharetui.sdk.host import PluginHost


class Core:
    """Services over the bound database, reading time from one clock."""

    def __init__(self, db: Database, clock: Clock | None = None, plugins: PluginHost | None = None) -> None:
        from sharetui.core.access import AccessService
        from sharetui.core.automations import AutomationService
        from sharetui.core.expiry import ExpiryService
        from sharetui.core.history import HistoryService
        from sharetui.core.outbox import Outbox
        from sharetui.core.records import RecordService
        from sharetui.core.settings import Settings
        from sharetui.core.sharing import SharingService
        from sharetui.core.users import UserService

        self.db = db
        self.clock: Clock = clock or SystemClock()
        self.outbox = Outbox(self)
        self.settings = Settings(self)
        self.users = UserService(self)
        self.records = RecordService(self)
        self.access = AccessService(self)
        self.sharing = SharingService(self)
        self.expiry = ExpiryService(self)
        self.history = HistoryService(self)
        self.automations = AutomationService(self)
        from sharetui.sdk.host import PluginHost

        # Without a host: the default plugins only (built-in rules, triggers, actions).
        self.plugins: PluginHost = plugins or PluginHost.load(entry_points=False)
        self.plugins.attach(self)

    def now(self) -> datetime:
        """Current time, aware UTC."""
        return self.clock.now()

    def db_now(self) -> datetime:
        """Current time as stored: naive UTC."""
        return to_db(self.clock.now())  # type: ignore[return-value]

    def migrate(self) -> list[migrations.Migration]:
        return migrations.migrate(self.db, self.db_now())

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()


def open_core(
    url: str, clock: Clock | None = None, *, migrate: bool = True, plugins: PluginHost | None = None
) -> Core:
    """Connect to ``url``, apply missing migrations (unless told not to), return a Core.

    ``plugins`` is a loaded :class:`~sharetui.sdk.host.PluginHost`; without one
    only the default plugins run (``PluginHost.from_environment()`` loads what
    the CLI loads).
    """
    db = connect(url)
    core = Core(db, clock, plugins)
    if migrate:
        core.migrate()
    return core


__all__ = ["Core", "database", "open_core"]

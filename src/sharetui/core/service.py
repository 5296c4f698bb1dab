"""The ``Core`` facade: one object that holds the clock and the services.

The CLI, the TUI, the batch API and tests all build one with :func:`open_core`
and call its services; nothing else writes to the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sharetui.clock import Clock, SystemClock
from sharetui.db import migrations
from sharetui.db.connection import database
from sharetui.domain.time import to_db

if TYPE_CHECKING:
    from peewee import Database

    from sharetui.core.plugins import PluginRuntime


class Core:
    """Services over the bound database, reading time from one clock."""

    def __init__(self, db: Database, clock: Clock | None, plugins: PluginRuntime) -> None:
        from sharetui.core.access import AccessService
        from sharetui.core.access.gate import Gate
        from sharetui.core.access.keys import KeyService
        from sharetui.core.automations import AutomationService
        from sharetui.core.events.dispatch import Dispatch
        from sharetui.core.events.outbox import Outbox
        from sharetui.core.history import HistoryService
        from sharetui.core.records import RecordService
        from sharetui.core.records.notifications import NotificationService
        from sharetui.core.records.saved_views import SavedViewService
        from sharetui.core.records.settings import Settings
        from sharetui.core.records.users import UserService
        from sharetui.core.sharing import SharingService
        from sharetui.core.sharing.expiry import ExpiryService
        from sharetui.core.team import TeamService
        from sharetui.core.views import ViewService

        self.db = db
        self.previous_binding: Database | None = None  # what the store was bound to before (runtime)
        self.clock: Clock = clock or SystemClock()
        self.team = TeamService(self)
        self.outbox = Outbox(self)
        self.settings = Settings(self)
        self.users = UserService(self)
        self.records = RecordService(self)
        self.notifications = NotificationService(self)
        self.access = AccessService(self)
        self.gate = Gate(self)
        self.keys = KeyService(self)
        self.sharing = SharingService(self)
        self.expiry = ExpiryService(self)
        self.history = HistoryService(self)
        self.automations = AutomationService(self)
        self.views = ViewService(self)
        self.saved_views = SavedViewService(self)
        self.plugins: PluginRuntime = plugins
        self.dispatch = Dispatch(self)
        self.plugins.attach(self)

    def now(self) -> datetime:
        """Current time, aware UTC."""
        return self.clock.now()

    def db_now(self) -> datetime:
        """Current time as stored: naive UTC."""
        return to_db(self.clock.now())  # type: ignore[return-value]

    def schema_version(self) -> int:
        """The newest migration applied to this database (0: none)."""
        return max(migrations.applied(self.db) or {0})

    def migrate(self) -> list[migrations.Migration]:
        return migrations.migrate(self.db, self.db_now())

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()


__all__ = ["Core", "database"]

"""Plugin storage: a private key/value store per plugin, and stored plugin errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sharetui.db.models import PluginError, PluginState

if TYPE_CHECKING:
    from sharetui.core.service import Core


class PluginStateStore:
    """``get``/``set`` JSON values under keys private to one plugin.

    Writes join the caller's transaction, so an action's state change commits
    (or rolls back) with the rest of its run.
    """

    def __init__(self, core: Core, plugin: str) -> None:
        self.core = core
        self.plugin = plugin

    def get(self, key: str, default: Any = None) -> Any:
        row = PluginState.get_or_none((PluginState.plugin == self.plugin) & (PluginState.key == key))
        return default if row is None else row.value

    def set(self, key: str, value: Any) -> None:
        PluginState.insert(
            plugin=self.plugin, key=key, value=value, updated_at=self.core.db_now()
        ).on_conflict(
            conflict_target=[PluginState.plugin, PluginState.key],
            update={PluginState.value: value, PluginState.updated_at: self.core.db_now()},
        ).execute()


def record_plugin_error(core: Core, plugin: str, hook: str, error: str) -> None:
    """Count a plugin failure; ``sharetui plugins`` shows stored failures."""
    now = core.db_now()
    PluginError.insert(
        plugin=plugin, hook=hook, error=error[:2000], count=1, first_at=now, last_at=now
    ).on_conflict(
        conflict_target=[PluginError.plugin, PluginError.hook, PluginError.error],
        update={PluginError.count: PluginError.count + 1, PluginError.last_at: now},
    ).execute()


def stored_errors(limit: int = 200) -> list[dict[str, Any]]:
    from sharetui.domain.time import iso

    rows = PluginError.select().order_by(PluginError.last_at.desc()).limit(limit)
    return [
        {
            "plugin": r.plugin,
            "hook": r.hook,
            "error": r.error,
            "count": r.count,
            "first_at": iso(r.first_at),
            "last_at": iso(r.last_at),
        }
        for r in rows
    ]

"""The plugin host: a typed facade over ``pluggy.PluginManager``.

It does four jobs, each in its own module: loading plugins
(:mod:`~sharetui.host.loading`), calling hooks in isolation
(:mod:`~sharetui.host.calls`, on time: :mod:`~sharetui.host.isolation`), the trigger and action registries
(:mod:`~sharetui.host.registry`) and plugins' commands
(:mod:`~sharetui.host.commands`). It implements the core's
:class:`~sharetui.core.plugins.PluginRuntime`; events reach it from the core's
after-commit dispatch (:mod:`sharetui.core.events.dispatch`).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from sharetui.host.calls import Impl, IsolatedCalls
from sharetui.host.commands import CommandCollector
from sharetui.host.isolation import (
    ACTION_BUDGET_SETTING,
    CHECK_BUDGET_SETTING,
    DIRS_SETTING,
    FAILURE_LIMIT_SETTING,
    CallPool,
    Limits,
)
from sharetui.host.loading import (
    BUILTIN,
    DIRECTORY,
    ENTRY_POINT,
    REGISTERED,
    SETTINGS_DIRECTORY,
    PluginInfo,
    PluginLoader,
    disabled_from_env,
    plugin_dirs_from_env,
    short_error,
)
from sharetui.host.registry import TypeRegistry
from sharetui.sdk import hookspecs
from sharetui.sdk.markers import PROJECT
from sharetui.sdk.types import ActionType, TriggerType

if TYPE_CHECKING:
    from sharetui.core.service import Core

log = logging.getLogger("sharetui.plugins")


class _Manager(pluggy.PluginManager):
    """pluggy's manager, also finding implementations of renamed hooks under their old
    name (the SDK's versioning policy): each is called as the current hook, with a
    ``DeprecationWarning`` and a note that ``sharetui plugins`` shows."""

    def __init__(self, project: str) -> None:
        super().__init__(project)
        self.deprecations: dict[int, list[str]] = {}

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        new = hookspecs.RENAMED_HOOKS.get(name)
        if opts is not None and new is not None and not opts.get("specname"):
            opts = {**opts, "specname": new}
            note = f"{name} was renamed {new} (SDK {hookspecs.SDK_VERSION}): rename your function"
            self.deprecations.setdefault(id(plugin), []).append(note)
            warnings.warn(note, DeprecationWarning, stacklevel=2)
        return opts


class PluginHost(PluginLoader, IsolatedCalls, TypeRegistry, CommandCollector):
    """Loads plugins, calls their hooks in isolation, and holds what they registered."""

    def __init__(self) -> None:
        self.pm = _Manager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.unloadable: list[str] = []  # from the settings' folders: access checks deny
        self.triggers: dict[str, TriggerType] = {}
        self.actions: dict[str, ActionType] = {}
        self.core: Core | None = None
        self._registries_built = False
        self._commands_added = False
        self._lock = threading.RLock()
        self.commands: dict[str, Any] = {}
        self._access_checks: list[Impl] = []
        self._level_impls: list[Impl] = []
        self._level_builtin: list[bool] = []
        self._share_validators: list[Impl] = []
        self.limits = Limits()
        self._pool = CallPool()
        self._dirs_loaded: list[Path] = []
        self._guards: dict[tuple[str, str, Any], Any] = {}

    @classmethod
    def load(
        cls,
        *,
        plugin_dirs: Iterable[str | Path] = (),
        entry_points: bool = True,
        disabled: Iterable[str] = (),
        defaults: bool = True,
    ) -> PluginHost:
        """A host with plugins from ``plugin_dirs``, entry points, then the defaults."""
        host = cls()
        for name in disabled:
            host.pm.set_blocked(name)
            host.plugins[name] = PluginInfo(
                name, "blocked", loaded=False, errors=["disabled by SHARETUI_DISABLE_PLUGINS"]
            )
        for directory in plugin_dirs:
            host.load_directory(Path(directory))
            host._dirs_loaded.append(Path(directory).expanduser().resolve())
        if entry_points:
            host.load_entry_points()
        if defaults:
            host.load_defaults()
        return host

    @classmethod
    def from_environment(cls, cli_dirs: Iterable[str | Path] = ()) -> PluginHost:
        """What the CLI and TUI use: every configured source."""
        entry_points = os.environ.get("SHARETUI_LOAD_ENTRY_POINTS", "1").strip() not in ("0", "false", "no")
        return cls.load(
            plugin_dirs=plugin_dirs_from_env(cli_dirs),
            entry_points=entry_points,
            disabled=disabled_from_env(),
        )

    def register(
        self,
        plugin: Any,
        *,
        name: str,
        source: str = REGISTERED,
        location: str | None = None,
        version: str | None = None,
    ) -> bool:
        """Register one plugin object or module; validation failures are recorded, not raised."""
        with self._lock:
            try:
                self.pm.register(plugin, name=name)
                self.pm.check_pending()
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                if self.pm.has_plugin(name):
                    self.pm.unregister(name=name)
                self._error_info(name, source, location, f"rejected: {short_error(exc)}")
                return False
            hooks = [h.name for h in (self.pm.get_hookcallers(plugin) or [])]
            targets = getattr(plugin, "SDK_VERSION", None)
            self.plugins[name] = PluginInfo(
                name,
                source,
                version=version,
                location=location,
                hooks=hooks,
                sdk=str(targets) if isinstance(targets, str | int | float) else None,
                notes=self.pm.deprecations.pop(id(plugin), []),
            )
            self._refresh_impls()
            if self.core is not None:
                self._register_types_of(name)
            return True

    def unregister(self, name: str) -> None:
        with self._lock:
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            self.plugins.pop(name, None)
            self.triggers = {k: v for k, v in self.triggers.items() if v.plugin != name}
            self.actions = {k: v for k, v in self.actions.items() if v.plugin != name}
            self._refresh_impls()
            if self.core is not None:
                self._register_types_of()  # brings back built-in types the plugin had overridden

    def attach(self, core: Core) -> None:
        """Bind to a Core: read the plugin settings, load the directories they name,
        then build the registries; access, vetoes and events come here."""
        if not self._registries_built:
            self._apply_settings(core)
        self.core = core
        if not self._registries_built:
            self._registries_built = True
            self._register_types_of()

    def _apply_settings(self, core: Core) -> None:
        """Budgets, the failure limit and the admin's plugin directories, from the
        database (read once: a change applies to processes started after it). Only
        what is stored there changes the host's :attr:`limits`."""
        from sharetui.db.models import Setting

        keys = (CHECK_BUDGET_SETTING, ACTION_BUDGET_SETTING, FAILURE_LIMIT_SETTING, DIRS_SETTING)
        # A database error goes up: running without the plugins an admin named (a deny
        # among them, say) would fail open.
        if "settings" not in core.db.get_tables():
            return  # a new database: nothing is set yet
        stored = {row.key: row.value for row in Setting.select().where(Setting.key.in_(keys))}
        limits = self.limits
        self.limits = Limits(
            check_ms=int(stored.get(CHECK_BUDGET_SETTING, limits.check_ms)),
            action_ms=int(stored.get(ACTION_BUDGET_SETTING, limits.action_ms)),
            failure_limit=int(stored.get(FAILURE_LIMIT_SETTING, limits.failure_limit)),
        )
        for text in stored.get(DIRS_SETTING) or ():
            directory = Path(str(text)).expanduser()
            if not directory.is_absolute():
                # The setting refuses relative paths; one stored otherwise would name a
                # different folder for each working directory.
                self._error_info(
                    str(text), SETTINGS_DIRECTORY, str(text), "plugin_dirs holds a relative path: ignored"
                )
                continue
            resolved = directory.resolve()
            if resolved in self._dirs_loaded:
                continue
            self._dirs_loaded.append(resolved)
            self.load_directory(resolved, source=SETTINGS_DIRECTORY)

    def configure(self, limits: Limits) -> None:
        """Use ``limits`` from now on (tests, and programs that embed sharetui);
        settings stored in the database replace them when the host attaches."""
        self.limits = limits

    def close(self) -> None:
        """Stop the idle worker threads (they also stop when the host is collected)."""
        self._pool.close()

    def info(self) -> list[PluginInfo]:
        order = {DIRECTORY: 0, SETTINGS_DIRECTORY: 1, ENTRY_POINT: 2, REGISTERED: 3, BUILTIN: 4, "blocked": 5}
        return sorted(self.plugins.values(), key=lambda p: (order.get(p.source, 6), p.name))

"""The plugin host: a typed facade over ``pluggy.PluginManager``.

Load order (later sources cannot shadow earlier names):

1. plugin directories, in this order: ``--plugins-dir``, ``SHARETUI_PLUGINS_DIR``
   (``os.pathsep``-separated), and ``./plugins`` when the current directory has
   one. Each ``*.py`` file and each package (a folder with ``__init__.py``)
   directly inside is one plugin, named after the file or folder;
2. entry points in group ``sharetui`` of installed distributions;
3. the default plugins (built-in access rules, triggers and actions),
   registered ``trylast`` so any plugin can override them.

``SHARETUI_DISABLE_PLUGINS`` (comma-separated names) blocks plugins by name.
Pluggy stops at the first exception, so the host calls each implementation
itself: a plugin that fails to import, fails validation, raises in a hook or
returns nonsense is recorded with its name and the rest go on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from sharetui.sdk import hookspecs
from sharetui.sdk.markers import PROJECT
from sharetui.sdk.types import (
    ActionType,
    ConfigField,
    ShareEvent,
    TriggerType,
    Verdict,
)

if TYPE_CHECKING:
    import click

    from sharetui.core.service import Core

log = logging.getLogger("sharetui.plugins")

ENTRY_POINT_GROUP = "sharetui"
BUILTIN, ENTRY_POINT, DIRECTORY, REGISTERED = "builtin", "entry point", "directory", "registered"
LIFECYCLE_HOOKS = {
    "granted": "sharetui_share_granted",
    "renewed": "sharetui_share_renewed",
    "revoked": "sharetui_share_revoked",
    "expired": "sharetui_share_expired",
    "expiring_soon": "sharetui_share_expiring_soon",
    "request_failed": "sharetui_share_request_failed",
}


@dataclass
class PluginInfo:
    """One plugin as ``sharetui plugins`` shows it."""

    name: str
    source: str
    version: str | None = None
    location: str | None = None
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    loaded: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "location": self.location,
            "loaded": self.loaded,
            "hooks": sorted(self.hooks),
            "errors": list(self.errors),
        }


def plugin_dirs_from_env(cli_dirs: Iterable[str | Path] = (), cwd: Path | None = None) -> list[Path]:
    """Directories to load plugins from, in load order."""
    dirs: list[Path] = [Path(d) for d in cli_dirs]
    env = os.environ.get("SHARETUI_PLUGINS_DIR", "").strip()
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    here = (cwd or Path.cwd()) / "plugins"
    if here.is_dir():
        dirs.append(here)
    out: list[Path] = []
    for d in dirs:
        resolved = d.expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def disabled_from_env() -> set[str]:
    raw = os.environ.get("SHARETUI_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


class PluginHost:
    """Loads plugins, calls their hooks in isolation, and holds what they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.triggers: dict[str, TriggerType] = {}
        self.actions: dict[str, ActionType] = {}
        self.core: Core | None = None
        self._registries_built = False
        self._commands_added = False
        self._lock = threading.RLock()
        self._local = threading.local()
        self.commands: dict[str, Any] = {}
        self._access_checks: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = []
        self._level_impls: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = []
        self._share_validators: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = []

    # -- building ------------------------------------------------------------------
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

    def load_directory(self, directory: Path) -> None:
        if not directory.is_dir():
            self._error_info(
                directory.name or str(directory),
                DIRECTORY,
                str(directory),
                f"plugin directory {directory} does not exist",
            )
            return
        for path in sorted(directory.iterdir()):
            if path.name.startswith(("_", ".")):
                continue
            if path.is_file() and path.suffix == ".py":
                name, target = path.stem, path
            elif path.is_dir() and (path / "__init__.py").exists():
                name, target = path.name, path / "__init__.py"
            else:
                continue
            if self._skip(name, DIRECTORY, str(path)):
                continue
            try:
                module = self._import_file(name, target)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._error_info(name, DIRECTORY, str(path), f"import failed: {_short(exc)}")
                continue
            # A module may name itself (PLUGIN_NAME), so it is called the same
            # whether dropped into a directory or installed with an entry point.
            declared = getattr(module, "PLUGIN_NAME", None)
            if isinstance(declared, str) and declared and declared != name:
                if self._skip(declared, DIRECTORY, str(path)):
                    continue
                name = declared
            self.register(
                module,
                name=name,
                source=DIRECTORY,
                location=str(path),
                version=getattr(module, "__version__", None),
            )

    def load_entry_points(self) -> None:
        seen: set[str] = set()
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                    continue
                seen.add(ep.name)
                location = f"{dist.metadata['Name']} {dist.version}"
                if self._skip(ep.name, ENTRY_POINT, location):
                    continue
                try:
                    plugin = ep.load()
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    self._error_info(ep.name, ENTRY_POINT, location, f"import failed: {_short(exc)}")
                    continue
                self.register(
                    plugin, name=ep.name, source=ENTRY_POINT, location=location, version=dist.version
                )

    def load_defaults(self) -> None:
        from sharetui.default_plugins import DEFAULT_PLUGINS

        for name, module_path in DEFAULT_PLUGINS:
            if name in self.plugins and self.plugins[name].source != "blocked":
                continue
            if self.pm.is_blocked(name):
                continue
            module = importlib.import_module(module_path)
            self.register(module, name=name, source=BUILTIN, location=module_path)

    def _skip(self, name: str, source: str, location: str) -> bool:
        if self.pm.is_blocked(name):
            info = self.plugins.setdefault(name, PluginInfo(name, source, loaded=False))
            info.location = location
            return True
        if name in self.plugins:
            self._error_info(
                f"{name} ({source})",
                source,
                location,
                f"a plugin named {name!r} is already loaded from {self.plugins[name].source}",
            )
            return True
        return False

    def _import_file(self, name: str, path: Path) -> ModuleType:
        module_name = f"sharetui_plugin_{name}"
        spec = importlib.util.spec_from_file_location(
            module_name,
            path,
            submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None,
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module

    def _error_info(self, name: str, source: str, location: str | None, error: str) -> None:
        info = self.plugins.setdefault(name, PluginInfo(name, source, location=location, loaded=False))
        info.errors.append(error)
        log.warning("plugin %s: %s", name, error)

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
                self._error_info(name, source, location, f"rejected: {_short(exc)}")
                return False
            hooks = [h.name for h in (self.pm.get_hookcallers(plugin) or [])]
            self.plugins[name] = PluginInfo(name, source, version=version, location=location, hooks=hooks)
            self._changed()
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
            self._changed()
            if self.core is not None:
                self._register_types_of()  # brings back built-in types the plugin had overridden

    def _changed(self) -> None:
        self._access_checks = self._impls("sharetui_check_access")
        self._level_impls = self._impls("sharetui_access_level")
        self._share_validators = self._impls("sharetui_validate_share")

    # -- calling ---------------------------------------------------------------------
    def _impls(self, hook_name: str) -> list[tuple[str, Callable[..., Any], tuple[str, ...]]]:
        caller = getattr(self.pm.hook, hook_name)
        # pluggy's call order: the reverse of its list (tryfirst first, trylast last).
        return [
            (impl.plugin_name, impl.function, tuple(impl.argnames))
            for impl in reversed(caller.get_hookimpls())
            if not (impl.wrapper or impl.hookwrapper)
        ]

    def _impls_in_load_order(self, hook_name: str) -> list[tuple[str, Callable[..., Any], tuple[str, ...]]]:
        """Registration hooks run in load order, defaults (trylast) last: the first wins."""
        caller = getattr(self.pm.hook, hook_name)
        impls = sorted(caller.get_hookimpls(), key=lambda impl: (impl.trylast, -impl.tryfirst))
        return [
            (i.plugin_name, i.function, tuple(i.argnames)) for i in impls if not (i.wrapper or i.hookwrapper)
        ]

    def record_error(self, plugin: str, hook: str, error: str) -> None:
        """Remember a failure of ``plugin`` in ``hook`` (shown by ``sharetui plugins``)."""
        message = f"{hook}: {error}"
        info = self.plugins.get(plugin)
        if info is not None and message not in info.errors:
            info.errors.append(message)
        log.warning("plugin %s failed in %s: %s", plugin, hook, error)
        if self.core is not None:
            try:
                from sharetui.host.state import record_plugin_error

                record_plugin_error(self.core, plugin, hook, error)
            except Exception:
                log.debug("could not store plugin error", exc_info=True)

    def _answers(self, hook_name: str, kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Each implementation's non-``None`` answer, in call order; a failure is
        recorded against its plugin and skipped."""
        for plugin, fn, argnames in self._impls(hook_name):
            try:
                value = fn(**{a: kwargs[a] for a in argnames})
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                self.record_error(plugin, hook_name, _short(exc))
                continue
            if value is not None:
                yield plugin, value

    def call(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a hook, isolated. Returns ``(plugin, result)``
        pairs for those that returned something other than ``None``."""
        return list(self._answers(hook_name, kwargs))

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """firstresult hooks: the first non-``None`` answer, skipping failures."""
        return next((value for _, value in self._answers(hook_name, kwargs)), None)

    def has_access_checks(self) -> bool:
        return bool(self._access_checks)

    def has_share_validators(self) -> bool:
        """Whether any plugin implements ``sharetui_validate_share`` (else the share path skips it)."""
        return bool(self._share_validators)

    def check_access(self, user: Any, record: Any, action: str, decision: Any) -> Iterator[tuple[str, str]]:
        """Ask every access check; yield ``("allow"|"deny", reason)``.

        An implementation that raises or returns something that is not a
        ``Verdict`` (or ``None``) denies: access checks fail closed.
        """
        kwargs = {"user": user, "record": record, "action": action, "decision": decision}
        for plugin, fn, argnames in self._access_checks:
            try:
                value = fn(**{a: kwargs[a] for a in argnames})
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                self.record_error(plugin, "sharetui_check_access", _short(exc))
                yield ("deny", f"{plugin}: access check failed ({type(exc).__name__})")
                continue
            if value is None:
                continue
            if isinstance(value, Verdict) and value.kind in ("allow", "deny"):
                yield (value.kind, f"{plugin}: {value.reason}")
            else:
                self.record_error(
                    plugin, "sharetui_check_access", f"returned {value!r}, not allow()/deny()/None"
                )
                yield ("deny", f"{plugin}: access check returned nonsense")

    def validate_share(self, request: Any) -> str | None:
        """Ask every ``sharetui_validate_share``; the first veto's reason, or None.

        A check that raises or answers with something that is not a string
        refuses the request (fail closed).
        """
        for plugin, fn, argnames in self._share_validators:
            try:
                value = fn(**{a: request for a in argnames})
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                self.record_error(plugin, "sharetui_validate_share", _short(exc))
                return f"{plugin}: share check failed ({type(exc).__name__})"
            if value is None:
                continue
            if isinstance(value, str) and value.strip():
                return f"{plugin}: {value.strip()}"
            self.record_error(plugin, "sharetui_validate_share", f"returned {value!r}, not a reason or None")
            return f"{plugin}: share check returned an invalid answer"
        return None

    def emit_after_commit(self, event: ShareEvent) -> None:
        """Deliver ``event`` once the outermost transaction commits (now if none).

        Events wait in a per-thread batch tied to that transaction; peewee drops
        the flush if the transaction rolls back, and :meth:`discard_since`
        drops the events of a rolled-back savepoint.
        """
        if not self.listens_to(event.kind):
            return
        db = self.core.db if self.core is not None else None
        if db is None or db.transaction_depth() == 0:
            self.emit(event)
            return
        outer = db._state.transactions[0]
        batch = getattr(self._local, "batch", None)
        if batch is None or batch[0] is not outer:
            batch = (outer, [])
            self._local.batch = batch
            db.after_commit(lambda b=batch: self._flush(b))
        batch[1].append(event)

    def _flush(self, batch: tuple[Any, list[ShareEvent]]) -> None:
        if getattr(self._local, "batch", None) is batch:
            self._local.batch = None
        for event in batch[1]:
            self.emit(event)

    def mark(self) -> int:
        """How many events wait now (see :meth:`discard_since`)."""
        batch = getattr(self._local, "batch", None)
        return len(batch[1]) if batch is not None else 0

    def discard_since(self, mark: int) -> None:
        """Forget the events queued since ``mark``: their savepoint rolled back."""
        batch = getattr(self._local, "batch", None)
        if batch is not None:
            del batch[1][mark:]

    def emit(self, event: ShareEvent) -> None:
        """Deliver a lifecycle event to every plugin that listens (after commit)."""
        self.call(LIFECYCLE_HOOKS[event.kind], event=event)

    def listens_to(self, kind: str) -> bool:
        return bool(getattr(self.pm.hook, LIFECYCLE_HOOKS[kind]).get_hookimpls())

    # -- registries ------------------------------------------------------------------
    def _register_types_of(self, plugin_name: str | None = None) -> None:
        """Run the register hooks (of one plugin, or all) into the registries."""
        for hook_name, kind in (
            ("sharetui_register_triggers", "trigger"),
            ("sharetui_register_actions", "action"),
        ):
            for plugin, fn, argnames in self._impls_in_load_order(hook_name):
                if plugin_name is not None and plugin != plugin_name:
                    continue
                register = self._registrar(kind, plugin)
                try:
                    fn(**{a: register for a in argnames})
                except Exception as exc:  # noqa: BLE001 - isolate plugins
                    self.record_error(plugin, hook_name, _short(exc))

    def _registrar(self, kind: str, plugin: str) -> Callable[..., Any]:
        registry: dict[str, Any] = self.triggers if kind == "trigger" else self.actions

        def register(
            name: str,
            description: str,
            run: Callable[..., Any] | None = None,
            *,
            config: dict[str, ConfigField] | None = None,
            entity: str | None = None,
        ) -> Any:
            if not isinstance(name, str) or not name.strip() or not name.replace("_", "").isalnum():
                raise ValueError(f"{kind} name {name!r} must be a word of letters, digits and _")
            if name in registry and registry[name].plugin != plugin:
                owner = registry[name].plugin
                mine_builtin = self.plugins.get(plugin, PluginInfo(plugin, "")).source == BUILTIN
                theirs_builtin = self.plugins.get(owner, PluginInfo(owner, "")).source == BUILTIN
                if mine_builtin and not theirs_builtin:
                    return registry[name]  # a plugin overrides the built-in type of that name
                if not theirs_builtin:
                    raise ValueError(f"{kind} {name!r} is already registered by {owner}")
            for key, spec in (config or {}).items():
                if not isinstance(spec, ConfigField):
                    raise TypeError(f"config key {key!r} must be a ConfigField")
                types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
                if not types or not all(isinstance(t, type) for t in types):
                    raise TypeError(f"config key {key!r}: type must be a type or a tuple of types")
            if kind == "trigger":
                item = TriggerType(name, description, dict(config or {}), entity, plugin)
            else:
                if not callable(run):
                    raise TypeError(f"action {name!r} needs a run function")
                item = ActionType(name, description, run, dict(config or {}), plugin)
            registry[name] = item
            return item

        return register

    def attach(self, core: Core) -> None:
        """Bind to a Core: build the registries and route access, vetoes and events here."""
        self.core = core
        core.plugins = self
        if not self._registries_built:
            self._registries_built = True
            self._register_types_of()

    def add_commands(self, cli: click.Group) -> dict[str, Any]:
        """Collect plugins' CLI subcommands into :attr:`commands` (the root group asks
        the host; nothing is added to the shared group). A name that clashes with a
        built-in command, or another plugin's, is refused and recorded."""
        import click

        if self._commands_added:
            return self.commands
        self._commands_added = True
        for plugin, fn, argnames in self._impls_in_load_order("sharetui_register_commands"):
            collector = click.Group(name=cli.name)
            try:
                fn(**{a: collector for a in argnames})
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                self.record_error(plugin, "sharetui_register_commands", _short(exc))
            for name, command in collector.commands.items():
                if name in cli.commands or name in self.commands:
                    other = "a built-in command" if name in cli.commands else "another plugin's command"
                    self.record_error(
                        plugin,
                        "sharetui_register_commands",
                        f"command {name!r} clashes with {other}; ignored",
                    )
                    continue
                self.commands[name] = command
        return self.commands

    def info(self) -> list[PluginInfo]:
        order = {DIRECTORY: 0, ENTRY_POINT: 1, REGISTERED: 2, BUILTIN: 3, "blocked": 4}
        return sorted(self.plugins.values(), key=lambda p: (order.get(p.source, 5), p.name))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(exc).__name__}: {text}{loc}" if text else f"{type(exc).__name__}{loc}"

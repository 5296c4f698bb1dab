"""Finding and importing plugins.

Load order (later sources cannot shadow earlier names):

1. plugin directories named on purpose: ``--plugins-dir``, then
   ``SHARETUI_PLUGINS_DIR`` (``os.pathsep``-separated). Each ``*.py`` file and
   each package (a folder with ``__init__.py``) directly inside is one plugin,
   named after the file or folder. The current directory is never searched:
   a ``./plugins`` folder is just a folder;
2. entry points in group ``sharetui`` of installed distributions;
3. the default plugins (built-in access rules, triggers and actions),
   registered ``trylast`` so any plugin can override them;
4. once the database is open (the host attaches to a core), the directories an
   admin named in the ``plugin_dirs`` setting (source ``directory (settings)``).
   A plugin there named like a default plugin replaces it, as in any directory.

``SHARETUI_DISABLE_PLUGINS`` (comma-separated names) blocks plugins by name.
A plugin that fails to import is recorded with its name and the rest go on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from sharetui.host.isolation import users_interrupt

log = logging.getLogger("sharetui.plugins")

ENTRY_POINT_GROUP = "sharetui"
BUILTIN, ENTRY_POINT, DIRECTORY, REGISTERED = "builtin", "entry point", "directory", "registered"
SETTINGS_DIRECTORY = "directory (settings)"


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
    failures: int = 0
    """Failed calls in this process (raised, answered nonsense, or late)."""
    failures_in_a_row: int = 0
    set_aside: str | None = None
    """Why the plugin is set aside until the process ends; None while it is called."""
    set_aside_at: str | None = None
    sdk: str | None = None
    """The SDK version the plugin says it targets (its ``SDK_VERSION``), or None."""
    notes: list[str] = field(default_factory=list)
    """Deprecations: what the plugin uses that a later SDK will drop."""

    @property
    def state(self) -> str:
        """``active``, ``set aside``, ``not loaded`` or ``blocked``."""
        if self.source == "blocked":
            return "blocked"
        if not self.loaded:
            return "not loaded"
        return "set aside" if self.set_aside else "active"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "location": self.location,
            "loaded": self.loaded,
            "state": self.state,
            "hooks": sorted(self.hooks),
            "sdk": self.sdk,
            "deprecations": list(self.notes),
            "errors": list(self.errors),
            "failures": self.failures,
            "failures_in_a_row": self.failures_in_a_row,
            "set_aside": (
                None if self.set_aside is None else {"reason": self.set_aside, "at": self.set_aside_at}
            ),
        }


def plugin_dirs_from_env(cli_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Directories to load plugins from, in load order: ``--plugins-dir``, then
    ``SHARETUI_PLUGINS_DIR``. Never the current directory: running sharetui in a
    folder that holds a ``plugins`` folder must not run its code."""
    dirs: list[Path] = [Path(d) for d in cli_dirs]
    env = os.environ.get("SHARETUI_PLUGINS_DIR", "").strip()
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for d in dirs:
        resolved = d.expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def disabled_from_env() -> set[str]:
    raw = os.environ.get("SHARETUI_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


class PluginLoader:
    """The loading half of :class:`~sharetui.host.PluginHost`: directories, entry
    points and the defaults, each import isolated."""

    pm: Any
    plugins: dict[str, PluginInfo]
    unloadable: list[str]  # plugins from the settings' folders that failed to load
    register: Callable[..., bool]  # PluginHost.register
    unregister: Callable[[str], None]  # PluginHost.unregister

    def load_directory(self, directory: Path, source: str = DIRECTORY) -> None:
        """Import each plugin directly inside ``directory``; ``source`` says who named it."""
        if not directory.is_dir():
            self._error_info(
                directory.name or str(directory),
                source,
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
            if self._skip(name, source, str(path)):
                continue
            try:
                module = _import_file(name, target)
            except BaseException as exc:
                if users_interrupt(exc):
                    raise
                self._error_info(name, source, str(path), f"import failed: {short_error(exc)}")
                continue
            # A module may name itself (PLUGIN_NAME), so it is called the same
            # whether dropped into a directory or installed with an entry point.
            declared = getattr(module, "PLUGIN_NAME", None)
            if isinstance(declared, str) and declared and declared != name:
                if self._skip(declared, source, str(path)):
                    continue
                name = declared
            self.register(
                module,
                name=name,
                source=source,
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
                    if users_interrupt(exc):
                        raise
                    self._error_info(ep.name, ENTRY_POINT, location, f"import failed: {short_error(exc)}")
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
            self.register(module, name=name, source=BUILTIN, location=module_path, version=None)

    def _skip(self, name: str, source: str, location: str) -> bool:
        if self.pm.is_blocked(name):
            info = self.plugins.setdefault(name, PluginInfo(name, source, loaded=False))
            info.location = location
            return True
        loaded = self.plugins.get(name)
        if source == SETTINGS_DIRECTORY and loaded is not None and loaded.source == BUILTIN:
            # Settings directories load after the defaults; a plugin there named like a
            # default plugin replaces it, as a plugin in any other directory does.
            self.unregister(name)
            return False
        if name in self.plugins:
            self._error_info(
                f"{name} ({source})",
                source,
                location,
                f"a plugin named {name!r} is already loaded from {self.plugins[name].source}",
            )
            return True
        return False

    def _error_info(self, name: str, source: str, location: str | None, error: str) -> None:
        info = self.plugins.setdefault(name, PluginInfo(name, source, location=location, loaded=False))
        info.errors.append(error)
        log.warning("plugin %s: %s", name, error)
        if source == SETTINGS_DIRECTORY:
            # An admin named this folder for everyone: what it should have added (a deny,
            # say) must not silently drop out. Until it loads, access checks deny.
            self.unloadable.append(f"{name}: {error}")


def _import_file(name: str, path: Path) -> ModuleType:
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


def short_error(exc: BaseException) -> str:
    """``Type: first line at file:line`` of an exception, for a plugin's error list."""
    import traceback

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(exc).__name__}: {text}{loc}" if text else f"{type(exc).__name__}{loc}"

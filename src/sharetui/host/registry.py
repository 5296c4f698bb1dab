"""The trigger and action registries, filled by the ``sharetui_register_*`` hooks.

Registration hooks receive a ``register(...)`` callback, so names are validated
and de-duplicated here, in one place. A plugin may override a built-in type of
the same name; two plugins may not claim one name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sharetui.host.calls import Impl
from sharetui.host.isolation import users_interrupt
from sharetui.host.loading import BUILTIN, PluginInfo, short_error
from sharetui.sdk.types import ActionType, ConfigField, FieldType, TriggerType


class TypeRegistry:
    """The registry half of :class:`~sharetui.host.PluginHost`."""

    plugins: dict[str, PluginInfo]
    triggers: dict[str, TriggerType]
    actions: dict[str, ActionType]
    _impls_in_load_order: Callable[[str], list[Impl]]
    record_error: Callable[[str, str, str], None]
    guarded_action: Callable[..., Callable[..., Any]]
    guarded_filter: Callable[..., Callable[..., bool]]
    guarded_describe: Callable[..., Callable[..., str]]

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
                except BaseException as exc:  # any exception: a plugin's sys.exit must not end the program
                    if users_interrupt(exc):
                        raise
                    self.record_error(plugin, hook_name, short_error(exc))

    def _registrar(self, kind: str, plugin: str) -> Callable[..., Any]:
        registry: dict[str, Any] = self.triggers if kind == "trigger" else self.actions

        def register(
            name: str,
            description: str,
            run: Callable[..., Any] | None = None,
            *,
            config: dict[str, ConfigField] | None = None,
            entity: str | None = None,
            matches: Callable[[Any, Any], bool] | None = None,
            describe: Callable[[Any], str] | None = None,
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
                if isinstance(spec.type, FieldType):
                    continue
                types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
                if not types or not all(isinstance(t, type) for t in types):
                    raise TypeError(
                        f"config key {key!r}: type must be a field type (number, duration, user, "
                        "group, choice(...), list_of(...)), a type or a tuple of types"
                    )
            if kind == "trigger":
                for what, fn in (("matches", matches), ("describe", describe)):
                    if fn is not None and not callable(fn):
                        raise TypeError(f"trigger {name!r}: {what} must be a function")
                item = TriggerType(
                    name,
                    description,
                    dict(config or {}),
                    entity,
                    plugin,
                    self.guarded_filter(plugin, name, matches) if matches is not None else None,
                    self.guarded_describe(plugin, name, describe) if describe is not None else None,
                )
            else:
                if not callable(run):
                    raise TypeError(f"action {name!r} needs a run function")
                # Run by the engine through the guard: any exception fails the step, on time.
                item = ActionType(
                    name, description, self.guarded_action(plugin, name, run), dict(config or {}), plugin
                )
            registry[name] = item
            return item

        return register

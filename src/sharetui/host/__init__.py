"""The plugin runtime over pluggy: loading, isolated calls, registries, plugin commands."""

from sharetui.host.runtime import (
    ENTRY_POINT_GROUP,
    LIFECYCLE_HOOKS,
    PluginHost,
    PluginInfo,
    disabled_from_env,
    plugin_dirs_from_env,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "LIFECYCLE_HOOKS",
    "PluginHost",
    "PluginInfo",
    "disabled_from_env",
    "plugin_dirs_from_env",
]

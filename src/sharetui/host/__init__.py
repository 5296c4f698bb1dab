"""The plugin runtime over pluggy: loading, isolated calls, registries, plugin commands.

It implements what the core asks of plugins (:class:`sharetui.core.plugins.PluginRuntime`);
:func:`sharetui.runtime.open_core` wires the two together.
"""

from sharetui.host.calls import LIFECYCLE_HOOKS
from sharetui.host.loading import ENTRY_POINT_GROUP, PluginInfo, disabled_from_env, plugin_dirs_from_env
from sharetui.host.runtime import PluginHost

__all__ = [
    "ENTRY_POINT_GROUP",
    "LIFECYCLE_HOOKS",
    "PluginHost",
    "PluginInfo",
    "disabled_from_env",
    "plugin_dirs_from_env",
]

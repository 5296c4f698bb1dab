"""Built-in rules, triggers and actions, loaded like any plugin (``trylast``)."""

# (plugin name, module) in load order.
DEFAULT_PLUGINS: list[tuple[str, str]] = [
    ("builtin-access", "sharetui.default_plugins.access"),
    ("builtin-automation", "sharetui.default_plugins.automation"),
]

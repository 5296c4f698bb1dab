"""Plugins' command-line subcommands (``sharetui_register_commands``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sharetui.host.calls import Impl
from sharetui.host.isolation import users_interrupt
from sharetui.host.loading import short_error

if TYPE_CHECKING:
    import click


class CommandCollector:
    """The command half of :class:`~sharetui.host.PluginHost`."""

    commands: dict[str, Any]
    _commands_added: bool
    _impls_in_load_order: Callable[[str], list[Impl]]
    record_error: Callable[[str, str, str], None]

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
            except BaseException as exc:  # any exception: a plugin's sys.exit must not end the program
                if users_interrupt(exc):
                    raise
                self.record_error(plugin, "sharetui_register_commands", short_error(exc))
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

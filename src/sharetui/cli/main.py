"""The ``sharetui`` root group. Exit 0 on success, 1 for a refused or failed request,
2 for bad usage or input (a one-line error on stderr; nothing changed).

The commands live in :mod:`sharetui.cli.commands`; this module adds them, in the
order ``sharetui --help`` lists them, and nothing imports it back.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sharetui import __version__
from sharetui.cli.commands.automations import automations, notifications, worker
from sharetui.cli.commands.backup import backup, restore
from sharetui.cli.commands.database import init, load
from sharetui.cli.commands.doctor import doctor
from sharetui.cli.commands.generate import generate
from sharetui.cli.commands.keys import keys
from sharetui.cli.commands.plugins import plugins
from sharetui.cli.commands.records import activity, leads, opps, task
from sharetui.cli.commands.serve import serve
from sharetui.cli.commands.sharing import (
    api,
    check,
    explain,
    history,
    revoke,
    settings,
    share,
    shares,
    status,
    sweep,
)
from sharetui.cli.commands.team import team
from sharetui.cli.commands.tui import demo, tui
from sharetui.cli.commands.users import users
from sharetui.cli.commands.views import views
from sharetui.cli.context import AppContext, Group, database_error_line, one_line
from sharetui.errors import SharetuiError


def _unreadable_input(args: list[Any]) -> str | None:
    """Arguments and SHARETUI_* variables that are not UTF-8 text (Python hands undecodable
    bytes over as lone surrogates, which no database stores) or hold a NUL, named."""
    named = [(f"argument {i}", a) for i, a in enumerate(args, start=1) if isinstance(a, str)]
    named += [(k, v) for k, v in os.environ.items() if k.startswith("SHARETUI_")]
    for name, value in named:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{name} is not UTF-8 text: {one_line(ascii(value))}"
        if "\x00" in value:
            return f"{name} contains a NUL character: {one_line(ascii(value))}"
    return None


class RootGroup(Group):
    """The ``sharetui`` group: turns every error a user can cause into one line
    on stderr and the contract's exit status (2 usage/input, 1 refused), and
    adds plugins' commands when a command that is not built in is asked for."""

    def _plugin_host(self, ctx: click.Context) -> Any:
        host = ctx.meta.get("sharetui.host")
        if host is None:
            from sharetui.host import PluginHost

            host = PluginHost.from_environment(ctx.params.get("plugins_dirs") or ())
            ctx.meta["sharetui.host"] = host
        host.add_commands(self)
        return host

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not ctx.resilient_parsing:
            command = self._plugin_host(ctx).commands.get(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        if ctx.meta.get("sharetui.list_plugins"):
            names += sorted(n for n in self._plugin_host(ctx).commands if n not in names)
        return names

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta["sharetui.list_plugins"] = True
        super().format_commands(ctx, formatter)

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        problem = _unreadable_input(sys.argv[1:] if args is None else list(args))
        if problem:
            click.echo(f"error: {problem}", err=True)
            sys.exit(2)
        try:
            return super().main(args=args, prog_name=prog_name or "sharetui", standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "sharetui"
            click.echo(f"error: {one_line(exc.format_message())} (see '{where} --help')", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code or 2)
        except SharetuiError as exc:
            click.echo(f"error: {one_line(exc.message)}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            sys.exit(0)
        except Exception as exc:
            # Imported only when a command failed: `--version` and `--help` never load the store.
            from sharetui.runtime import STORE_ERRORS

            if not isinstance(exc, STORE_ERRORS):
                raise
            click.echo(f"error: {database_error_line(exc)}", err=True)
            sys.exit(2)


@click.group(
    cls=RootGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--db",
    "db",
    metavar="URL",
    help="Database URL or SQLite path (default: SHARETUI_DATABASE_URL, "
    "else sharetui.db in your data directory).",
)
@click.option(
    "--as", "acting", metavar="USER", help="Act as this user (default: SHARETUI_USER, else the first admin)."
)
@click.option(
    "--plugins-dir",
    "plugins_dirs",
    multiple=True,
    metavar="DIR",
    is_eager=True,  # read before --help, so plugin commands show in the help
    help="Load plugins from DIR (before SHARETUI_PLUGINS_DIR).",
)
@click.version_option(__version__, prog_name="sharetui")
@click.pass_context
def cli(ctx: click.Context, db: str | None, acting: str | None, plugins_dirs: tuple[str, ...]) -> None:
    """sharetui: share CRM leads and opportunities with sales users for a limited time."""
    ctx.obj = AppContext(db, acting, plugins_dirs, ctx.meta.get("sharetui.host"))
    ctx.call_on_close(ctx.obj.close)
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui)


@cli.result_callback()
@click.pass_context
def _after_success(ctx: click.Context, *_: Any, **__: Any) -> None:
    """Embedded mode: after a command succeeded, run the automations its changes triggered."""
    if isinstance(ctx.obj, AppContext):
        ctx.obj.after_command()


# In the order `sharetui --help` lists them (test_cli_errors pins it; plugin commands follow).
for _command in (
    init,
    load,
    users,
    team,
    automations,
    worker,
    notifications,
    backup,
    restore,
    generate,
    plugins,
    doctor,
    leads,
    opps,
    activity,
    task,
    share,
    revoke,
    status,
    shares,
    history,
    check,
    explain,
    sweep,
    api,
    keys,
    serve,
    settings,
    views,
    tui,
    demo,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="sharetui")

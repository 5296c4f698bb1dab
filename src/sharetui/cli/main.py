"""``sharetui`` commands. Exit 0 on success, 1 for a refused or failed request,
2 for bad usage or input (a one-line error on stderr; nothing changed)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sharetui import __version__
from sharetui.cli.context import (
    AppContext,
    Group,
    json_option,
    one_line,
    out,
    pass_app,
)
from sharetui.errors import SharetuiError, UsageError


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
            from sharetui.runtime import DatabaseError

            if not isinstance(exc, DatabaseError):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"error: database: {one_line(first)}", err=True)
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
    help="Load plugins from DIR (before SHARETUI_PLUGINS_DIR and ./plugins).",
)
@click.version_option(__version__, prog_name="sharetui")
@click.pass_context
def cli(ctx: click.Context, db: str | None, acting: str | None, plugins_dirs: tuple[str, ...]) -> None:
    """sharetui: share CRM leads and opportunities with sales users for a limited time."""
    ctx.obj = AppContext(db, acting, plugins_dirs, ctx.meta.get("sharetui.host"))
    if ctx.invoked_subcommand is None:
        from sharetui.cli.tui import tui

        ctx.invoke(tui)


@cli.result_callback()
@click.pass_context
def _after_success(ctx: click.Context, *_: Any, **__: Any) -> None:
    """Embedded mode: after a command succeeded, run the automations its changes triggered."""
    if isinstance(ctx.obj, AppContext):
        ctx.obj.after_command()


# -- database -------------------------------------------------------------------
@cli.command()
@json_option
@pass_app
def init(app: AppContext, as_json: bool) -> None:
    """Create or migrate the database."""
    from sharetui.cli.output import say

    core = app.core
    version = core.schema_version()
    has_users = core.users.any_exist()
    data = {"database": app.url, "schema_version": version, "has_users": has_users}

    def human() -> None:
        say(f"database ready: {app.url} (schema version {version})")
        if not has_users:
            say(
                "no users yet: add the first admin with `sharetui users add NAME --role admin`, "
                "or load the demo company with `sharetui load sample_data`"
            )

    out(as_json, data, human)


@cli.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=str))
@json_option
@pass_app
def load(app: AppContext, path: str, as_json: bool) -> None:
    """Load a sample_data directory (idempotent)."""
    from sharetui.cli.output import table
    from sharetui.ops.loader import Loader

    report = Loader(app.core).load(path)

    def human() -> None:
        kinds = sorted(set(report.created) | set(report.existing))
        table(
            f"loaded {path}",
            ["kind", "created", "already present"],
            [(k, report.created.get(k, 0), report.existing.get(k, 0)) for k in kinds],
            caption=f"{report.expired} past share(s) expired on load" if report.expired else None,
        )

    out(as_json, report.as_dict(), human)


# -- users ----------------------------------------------------------------------
@cli.group()
def users() -> None:
    """Users, roles and sales groups."""


def _user_dict(core, user) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "active": bool(user.active),
        "groups": {g: lvl.label for g, lvl in core.users.groups_of(user)},
    }


def _group_spec(spec: str) -> tuple[str, str]:
    name, _, level = spec.partition(":")
    if not name.strip():
        raise UsageError(f"--group takes NAME[:level], not {spec!r}")
    return name.strip(), (level.strip() or "own")


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, help="admin, sales_manager, marketing or sales")
@click.option("--name", help="Display name.")
@click.option("--email", default="")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="G[:LEVEL]",
    help="Sales group and level (own, view, modify, manage).",
)
@json_option
@pass_app
def users_add(
    app: AppContext,
    username: str,
    role: str,
    name: str | None,
    email: str,
    groups: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a user (admins; the system while there are no users)."""
    from sharetui.cli.output import say

    specs = dict(_group_spec(g) for g in groups)
    user = app.core.users.add(username, role=role, name=name, email=email, groups=specs, actor=app.actor)
    out(as_json, _user_dict(app.core, user), lambda: say(f"added {user.username} ({user.role})"))


@users.command("list")
@json_option
@pass_app
def users_list(app: AppContext, as_json: bool) -> None:
    """List users with their roles and groups."""
    from sharetui.cli.output import table

    rows = [_user_dict(app.core, u) for u in app.core.users.list()]
    out(
        as_json,
        {"items": rows},
        lambda: table(
            "users",
            ["username", "name", "role", "active", "groups"],
            [
                (
                    r["username"],
                    r["name"],
                    r["role"],
                    "yes" if r["active"] else "no",
                    ", ".join(f"{g} ({lv})" for g, lv in r["groups"].items()),
                )
                for r in rows
            ],
        ),
    )


@users.command("deactivate")
@click.argument("username")
@json_option
@pass_app
def users_deactivate(app: AppContext, username: str, as_json: bool) -> None:
    """Deactivate a user; their active shares are revoked."""
    from sharetui.cli.output import say

    ended = app.core.users.deactivate(username, actor=app.actor)
    out(
        as_json,
        {"username": username, "active": False, "shares_revoked": ended},
        lambda: say(f"deactivated {username}; {ended} active share(s) revoked"),
    )


@users.command("activate")
@click.argument("username")
@json_option
@pass_app
def users_activate(app: AppContext, username: str, as_json: bool) -> None:
    """Reactivate a user."""
    from sharetui.cli.output import say

    app.core.users.activate(username, actor=app.actor)
    out(as_json, {"username": username, "active": True}, lambda: say(f"activated {username}"))


@users.command("set-role")
@click.argument("username")
@click.argument("role")
@json_option
@pass_app
def users_set_role(app: AppContext, username: str, role: str, as_json: bool) -> None:
    """Change a user's role (leaving sales revokes their shares)."""
    from sharetui.cli.output import say

    ended = app.core.users.set_role(username, role, actor=app.actor)
    out(
        as_json,
        {"username": username, "role": role, "shares_revoked": ended},
        lambda: say(f"{username} is now {role}" + (f"; {ended} share(s) revoked" if ended else "")),
    )


@users.command("join")
@click.argument("username")
@click.argument("group", metavar="GROUP[:LEVEL]")
@json_option
@pass_app
def users_join(app: AppContext, username: str, group: str, as_json: bool) -> None:
    """Put a user in a sales group (or change their level)."""
    from sharetui.cli.output import say

    name, level = _group_spec(group)
    app.core.users.join(username, name, level, actor=app.actor)
    out(
        as_json,
        {"username": username, "group": name, "level": level},
        lambda: say(f"{username} is in {name} ({level})"),
    )


@users.command("leave")
@click.argument("username")
@click.argument("group")
@json_option
@pass_app
def users_leave(app: AppContext, username: str, group: str, as_json: bool) -> None:
    """Take a user out of a sales group."""
    from sharetui.cli.output import say

    app.core.users.leave(username, group, actor=app.actor)
    out(as_json, {"username": username, "group": group}, lambda: say(f"{username} left {group}"))


@users.command("groups")
@json_option
@pass_app
def users_groups(app: AppContext, as_json: bool) -> None:
    """List sales groups and their members."""
    from sharetui.cli.output import table

    groups = app.core.users.groups()
    data = {
        "items": [
            {"group": g.name, "members": {u.username: lvl.label for u, lvl in members}}
            for g, members in groups
        ]
    }
    out(
        as_json,
        data,
        lambda: table(
            "sales groups",
            ["group", "members"],
            [
                (g.name, ", ".join(f"{u.username} ({lvl.label})" for u, lvl in members))
                for g, members in groups
            ],
        ),
    )


# -- entry point ------------------------------------------------------------------
from sharetui.cli import automations as _automations  # noqa: E402,F401
from sharetui.cli import backup as _backup  # noqa: E402,F401
from sharetui.cli import generate as _generate  # noqa: E402,F401
from sharetui.cli import plugins as _plugins  # noqa: E402,F401
from sharetui.cli import records as _records  # noqa: E402,F401  (registers commands)
from sharetui.cli import sharing as _sharing  # noqa: E402,F401
from sharetui.cli import tui as _tui  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="sharetui")

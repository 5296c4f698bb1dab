"""``users``: users, roles and sales groups."""

from __future__ import annotations

from typing import Any

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app
from sharetui.errors import UsageError


@click.group()
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
@click.option(
    "--login",
    "login",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PGROLE]",
    help="Team mode: create (or link) the PostgreSQL LOGIN role, named PGROLE or the username.",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help="Team mode: the new login's password, on the first line of this file.",
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
    login: str | None,
    password_file: str | None,
    as_json: bool,
) -> None:
    """Add a user (admins; the system while there are no users).

    In team mode ``--login`` makes them a PostgreSQL login too (or links an existing
    role); an existing user gets the login linked, and their role set to ``--role``."""
    from sharetui.cli.commands.team import read_password_file
    from sharetui.cli.output import say

    if password_file is not None and login is None:
        raise UsageError("--password-file goes with --login")
    specs = dict(_group_spec(g) for g in groups)
    core = app.core
    actor = app.actor
    if login is None:
        user = core.users.add(username, role=role, name=name, email=email, groups=specs, actor=actor)
        out(as_json, _user_dict(core, user), lambda: say(f"added {user.username} ({user.role})"))
        return
    core.team.require_team("--login")
    password = read_password_file(password_file)
    pg_login = login.strip() or username.strip().lower()
    with core.db.atomic():  # the user, their login and its membership: all or nothing
        existing = core.users.find(username)
        if existing is None:
            user = core.users.add(username, role=role, name=name, email=email, groups=specs, actor=actor)
        else:
            user = existing
            if user.role != role.strip().lower():
                core.users.set_role(user, role, actor=actor)
        if password is None and not core.team.login_exists(pg_login) and _interactive():
            password = click.prompt(
                f"password for login {pg_login}", hide_input=True, confirmation_prompt=True
            )
        created = core.team.link_login(user, pg_login, password=password)
        user = core.users.get(user.id)
    data = {**_user_dict(core, user), "login": pg_login, "login_created": created}
    verb = "created" if created else "linked"
    out(as_json, data, lambda: say(f"added {user.username} ({user.role}); {verb} login {pg_login}"))


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty()


@users.command("list")
@json_option
@pass_app
def users_list(app: AppContext, as_json: bool) -> None:
    """List users with their roles and groups."""
    from sharetui.cli.output import table

    rows = [_user_dict(app.core, u) for u in app.core.users.list(actor=app.actor)]
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

    groups = app.core.users.groups(actor=app.actor)
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

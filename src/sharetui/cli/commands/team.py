"""``team``: set a PostgreSQL database up for team mode (DESIGN §8)."""

from __future__ import annotations

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app
from sharetui.errors import UsageError


def read_password_file(path: str | None) -> str | None:
    """The first line of ``path`` (a password never travels in argv or the environment)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise UsageError(f"cannot read --password-file {path}: {exc.strerror}") from None
    if not first:
        raise UsageError(f"--password-file {path} holds no password on its first line")
    return first


@click.group()
def team() -> None:
    """Team mode: PostgreSQL logins are the identity, row security enforces shares."""


@team.command("init")
@click.option(
    "--role-prefix",
    default="sharetui_",
    show_default=True,
    metavar="PREFIX",
    help="Prefix of the group roles (admin, manager, marketing, sales, worker).",
)
@json_option
@pass_app
def team_init(app: AppContext, role_prefix: str, as_json: bool) -> None:
    """Create the group roles, turn row security on and grant what each role needs.

    Run once (again after upgrades: it is idempotent) by the role that owns the
    tables and may create roles."""
    from sharetui.cli.output import say

    core = app.core
    names = core.team.init(role_prefix)
    rls = core.team.row_security()
    data = {
        "database": app.shown_url,
        "mode": "team",
        "groups": [names.group(g) for g in ("admin", "manager", "marketing", "sales", "worker")],
        "setup_role": names.owner,
        "row_security": {t: on and forced for t, (on, forced) in rls.items()},
    }

    def human() -> None:
        say(f"team mode on {app.shown_url}: group roles {', '.join(data['groups'])}")
        say(f"row security on {len(rls)} tables; add people with `sharetui users add NAME --role R --login`")

    out(as_json, data, human)


@team.command("worker-login")
@click.argument("login")
@click.option("--password-file", type=click.Path(dir_okay=False), help="Read the password from this file.")
@json_option
@pass_app
def team_worker_login(app: AppContext, login: str, password_file: str | None, as_json: bool) -> None:
    """Create (or reuse) LOGIN as a worker login: `sharetui worker` runs as it."""
    from sharetui.cli.output import say

    created = app.core.team.add_worker_login(login, password=read_password_file(password_file))
    group = app.core.team.prefix + "worker"
    out(
        as_json,
        {"login": login, "group": group, "created": created},
        lambda: say(f"{'created' if created else 'reused'} login {login} in {group}"),
    )

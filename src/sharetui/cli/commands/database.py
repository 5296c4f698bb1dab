"""``init`` and ``load``: create or migrate the database, load sample data."""

from __future__ import annotations

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app


@click.command()
@click.option(
    "--test-clock",
    is_flag=True,
    help="PostgreSQL: a test database, where SHARETUI_NOW may set a session's time in team mode.",
)
@json_option
@pass_app
def init(app: AppContext, test_clock: bool, as_json: bool) -> None:
    """Create or migrate the database."""
    from sharetui.cli.output import say

    core = app.core
    if test_clock:
        core.team.set_test_clock()
    version = core.schema_version()
    has_users = core.users.any_exist()
    data = {"database": app.shown_url, "schema_version": version, "has_users": has_users}

    def human() -> None:
        say(f"database ready: {app.shown_url} (schema version {version})")
        if not has_users:
            say(
                "no users yet: add the first admin with `sharetui users add NAME --role admin`, "
                "or load the demo company with `sharetui load sample_data`"
            )

    out(as_json, data, human)


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=str))
@json_option
@pass_app
def load(app: AppContext, path: str, as_json: bool) -> None:
    """Load a sample_data directory (idempotent)."""
    from sharetui.cli.output import table
    from sharetui.ops.loader import Loader

    report = Loader(app.core).load(path, actor=app.actor)

    def human() -> None:
        kinds = sorted(set(report.created) | set(report.existing))
        table(
            f"loaded {path}",
            ["kind", "created", "already present"],
            [(k, report.created.get(k, 0), report.existing.get(k, 0)) for k in kinds],
            caption=f"{report.expired} past share(s) expired on load" if report.expired else None,
        )

    out(as_json, report.as_dict(), human)

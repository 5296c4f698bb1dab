"""``serve``: the LeadSquared-compatible HTTP API (DESIGN §10)."""

from __future__ import annotations

import click

from sharetui.cli.context import AppContext, pass_app


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow an address other machines can reach (the default is loopback only).",
)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="Database threads.")
@click.option(
    "--max-body",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(1024, 64 * 1024 * 1024),
    help="Largest request body, in bytes (413 past it).",
)
@click.option("--no-automations", is_flag=True, help="Leave automations to `sharetui worker`.")
@pass_app
def serve(
    app: AppContext,
    host: str,
    port: int,
    allow_remote: bool,
    threads: int,
    max_body: int,
    no_automations: bool,
) -> None:
    """Serve LeadSquared's entity-access API; each call acts as its key's user (keys create)."""
    from sharetui.api.server import check_address
    from sharetui.api.server import serve as run
    from sharetui.config import sqlite_file
    from sharetui.errors import UsageError

    check_address(host, allow_remote=allow_remote)  # before opening anything
    if app.core.team.is_team:
        # In team mode a person is their own database login (DESIGN §8); one server
        # process acting for every key's user would be the one login that is everyone.
        # Until the API opens a session per user, it fails closed.
        raise UsageError(
            "serve does not run on a team-mode database yet: each person uses sharetui with "
            "their own login (see docs/team.md)"
        )
    if app.url.lower().startswith("sqlite:") and sqlite_file(app.url) is None:
        # Each of the server's threads would open an empty database of its own.
        raise UsageError("serve needs a database file or PostgreSQL, not an in-memory SQLite database")
    run(
        app.core,
        host=host,
        port=port,
        allow_remote=allow_remote,
        threads=threads,
        max_body=max_body,
        automations=not no_automations,
    )

"""``backup`` and ``restore`` commands (SQLite; PostgreSQL users are told the
``pg_dump``/``pg_restore`` commands to run). See docs/backup.md."""

from __future__ import annotations

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app


@click.command()
@click.argument("file", metavar="FILE")
@click.option("--force", is_flag=True, help="Overwrite FILE if it already exists.")
@json_option
@pass_app
def backup(app: AppContext, file: str, force: bool, as_json: bool) -> None:
    """Write a consistent copy of the database to FILE, while others keep working."""
    from sharetui.cli.output import say
    from sharetui.core.access.gate import Capability
    from sharetui.ops.backup import backup_database

    app.embedded = False  # a backup copies; it never migrates or runs automations
    app.require_on_the_database_as_is(Capability.BACKUP)  # admins (DESIGN §9)
    report = backup_database(app.url, file, force=force)
    rows = sum(n for t, n in report.tables.items() if t != "schema_migrations")
    out(
        as_json,
        report.as_dict(),
        lambda: say(
            f"backed up {app.shown_url} to {report.file} "
            f"({report.bytes:,} bytes, schema version {report.schema_version}, {rows:,} rows)"
        ),
    )


@click.command()
@click.argument("file", metavar="FILE")
@click.option(
    "--yes",
    "--force",
    "yes",
    is_flag=True,
    help="Replace the database even though it holds data (its current content is lost).",
)
@json_option
@pass_app
def restore(app: AppContext, file: str, yes: bool, as_json: bool) -> None:
    """Replace the database's content with a backup FILE, then migrate it if it is older."""
    from sharetui.cli.output import say
    from sharetui.clock import clock_from_env
    from sharetui.core.access.gate import Capability
    from sharetui.ops.backup import restore_database

    app.embedded = False  # the restored outbox is left for the next command or worker
    app.require_on_the_database_as_is(Capability.RESTORE)  # admins (DESIGN §9)
    report = restore_database(app.url, file, replace=yes, clock=clock_from_env())

    def human() -> None:
        say(f"restored {report.file} into {app.shown_url} (schema version {report.backup_schema_version})")
        if report.migrated:
            say(f"migrated to schema version {report.schema_version}: {', '.join(report.migrated)}")

    out(as_json, report.as_dict(), human)

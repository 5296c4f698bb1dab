"""The store: migrations build exactly the models' schema, run once, and the
domain stays headless."""

from __future__ import annotations

import subprocess
import sys

from sharetui.db import migrations
from sharetui.db.connection import connect, database
from sharetui.db.models import MODELS
from sharetui.db.search import is_index_table


def _schema(db) -> dict[str, tuple[set[str], set[tuple[str, ...]]]]:
    out = {}
    for table in db.get_tables():
        if is_index_table(table):  # the search index (FTS5 on SQLite) has no model
            continue
        columns = {c.name for c in db.get_columns(table)}
        indexes = {tuple(i.columns) + (("unique",) if i.unique else ()) for i in db.get_indexes(table)}
        out[table] = (columns, indexes)
    return out


def test_migrations_build_the_models_schema(core):
    """If a model changes without a migration (or the reverse), this fails."""
    migrated = _schema(core.db)
    assert set(migrated) == {m._meta.table_name for m in MODELS}
    for model in MODELS:
        table = model._meta.table_name
        expected_columns = {f.column_name for f in model._meta.sorted_fields}
        assert migrated[table][0] == expected_columns, table
        expected_indexes = set()
        for index in model._meta.fields_to_index():
            cols = tuple(getattr(f, "column_name", str(f)) for f in index._expressions)
            expected_indexes.add(cols + (("unique",) if index._unique else ()))
        got = {i for i in migrated[table][1] if i}
        assert expected_indexes <= got, (table, expected_indexes - got)


def test_migrations_are_recorded_and_run_once(core):
    applied = migrations.applied(core.db)
    assert applied == {m.version for m in migrations.available()}
    assert core.migrate() == []  # nothing left to do
    assert not migrations.needs_migration(core.db)


def test_an_older_database_is_migrated_by_any_command(cli, db_url, clock):
    """init makes a new database; any command brings an existing one up to date (only the
    commands that create databases may start one: see test_cli_database)."""
    from sharetui.db.connection import connect

    db = connect(db_url)
    migrations.migrate(db, clock.now().replace(tzinfo=None), target=1)
    db.close()
    result = cli("users", "list", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"items": []}
    assert migrations.applied(database) == {m.version for m in migrations.available()}


def test_init_makes_and_migrates_a_new_database(cli, db_url):
    result = cli("init", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["schema_version"] == migrations.latest_version()
    db = connect(db_url)  # the command let go of its own connection
    try:
        assert "schema_migrations" in db.get_tables()
    finally:
        db.close()


def test_sqlite_pragmas_and_immediate_transactions(core):
    if not db_url_is_sqlite(core):
        return
    assert core.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert core.db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert core.db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert core.db._lock_type == "IMMEDIATE"


def db_url_is_sqlite(core) -> bool:
    from peewee import SqliteDatabase

    return isinstance(core.db, SqliteDatabase)


def test_domain_and_cli_never_import_textual():
    code = (
        "import sys, sharetui.cli, sharetui.core.service, sharetui.core.sharing.service, "
        "sharetui.core.access.service, sharetui.db.models; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

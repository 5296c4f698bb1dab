"""DDL generated from the models, per dialect.

Used once to freeze a migration (``python -m sharetui.db.schema NNNN_name [TABLE ...]``)
and by the test that holds migrations and models in agreement. Never used to
create a live database: migrations do that.
"""

from __future__ import annotations

import sys
from pathlib import Path

from peewee import Database, PostgresqlDatabase, SqliteDatabase

from sharetui.db.models import MODELS, SchemaMigration

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _offline_database(dialect: str) -> Database:
    if dialect == "sqlite":
        return SqliteDatabase(None)
    if dialect == "postgresql":
        return PostgresqlDatabase(None)
    raise ValueError(dialect)


def schema_statements(dialect: str, tables: list[str] | None = None) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements for the models (or the named tables)."""
    db = _offline_database(dialect)
    out: list[str] = []
    models = [m for m in MODELS if m is not SchemaMigration]
    if tables is not None:
        models = [m for m in models if m._meta.table_name in tables]
    with db.bind_ctx(models, bind_refs=False, bind_backrefs=False):
        for model in models:
            ctx = db.get_sql_context()
            sql, params = ctx.sql(model._schema._create_table(safe=False)).query()
            assert not params, params
            out.append(sql)
            for index in model._schema._create_indexes(safe=False):
                ctx = db.get_sql_context()
                sql, params = ctx.sql(index).query()
                assert not params, params
                out.append(sql)
    return out


def freeze(name: str, tables: list[str] | None = None) -> list[Path]:
    """Write ``NAME.<dialect>.sql`` for both dialects: new tables from the current models."""
    written = []
    for dialect in ("sqlite", "postgresql"):
        path = MIGRATIONS_DIR / f"{name}.{dialect}.sql"
        path.write_text(";\n".join(schema_statements(dialect, tables)) + ";\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - developer tool
    for p in freeze(sys.argv[1], sys.argv[2:] or None):
        print(p)

"""Numbered migrations and the runner that applies them.

A migration is ``NNNN_name.sqlite.sql`` plus ``NNNN_name.postgresql.sql``
(statements separated by ``;`` at line ends), or ``NNNN_name.py`` with
``up(db, dialect)``. Each runs in its own transaction and is recorded in
``schema_migrations``; a database is never left half-migrated.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from peewee import Database

from sharetui.db.connection import Dialect, dialect

MIGRATIONS_DIR = Path(__file__).parent
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgresql))?\.(sql|py)$")

_LOG_DDL = (
    'CREATE TABLE IF NOT EXISTS "schema_migrations" ('
    '"version" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(255) NOT NULL, '
    '"applied_at" {ts} NOT NULL)'
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str

    def apply(self, db: Database, which: Dialect) -> None:
        py = MIGRATIONS_DIR / f"{self.version:04d}_{self.name}.py"
        if py.exists():
            module = importlib.import_module(f"{__name__}.{py.stem}")
            module.up(db, which)
            return
        sql = MIGRATIONS_DIR / f"{self.version:04d}_{self.name}.{which.value}.sql"
        for statement in split_statements(sql.read_text(encoding="utf-8")):
            db.execute_sql(statement)


def split_statements(text: str) -> list[str]:
    return [s.strip() for s in re.split(r";\s*\n", text) if s.strip()]


def available() -> list[Migration]:
    """Every migration shipped, in order."""
    found: dict[int, str] = {}
    for path in MIGRATIONS_DIR.iterdir():
        m = _NAME.match(path.name)
        if m:
            found[int(m.group(1))] = m.group(2)
    return [Migration(v, found[v]) for v in sorted(found)]


def latest_version() -> int:
    items = available()
    return items[-1].version if items else 0


def applied(db: Database) -> set[int]:
    if "schema_migrations" not in db.get_tables():
        return set()
    return {row[0] for row in db.execute_sql('SELECT version FROM "schema_migrations"')}


def migrate(db: Database, now_naive_utc, target: int | None = None) -> list[Migration]:
    """Apply what is missing, up to ``target`` (default: all). Returns what ran.

    Safe when two processes start at once: on SQLite the IMMEDIATE transaction
    serialises them, on PostgreSQL a transaction-level advisory lock does.
    """
    which = dialect()
    ts = "DATETIME" if which is Dialect.SQLITE else "TIMESTAMP"
    ran: list[Migration] = []
    if not needs_migration(db):
        # Up to date (the common case, on every start): a read, no write transaction. Each
        # IMMEDIATE transaction queues for the write lock behind every writer, so even
        # read-only commands waited, and could fail with "database is locked"; and a team
        # login (PostgreSQL) may not create tables, not even "IF NOT EXISTS" ones.
        return ran
    for migration in available():
        if target is not None and migration.version > target:
            break
        with db.atomic():
            if which is Dialect.POSTGRESQL:
                db.execute_sql("SELECT pg_advisory_xact_lock(727274)")
            db.execute_sql(_LOG_DDL.format(ts=ts))
            if migration.version in applied(db):
                continue
            migration.apply(db, which)
            db.execute_sql(
                'INSERT INTO "schema_migrations" (version, name, applied_at) VALUES (%s, %s, %s)'.replace(
                    "%s", db.param
                ),
                (migration.version, migration.name, now_naive_utc),
            )
        ran.append(migration)
    return ran


def needs_migration(db: Database) -> bool:
    return applied(db) != {m.version for m in available()}

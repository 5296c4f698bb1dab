"""A text index for searching leads and opportunities by any part of a word.

The lists' filter finds records whose name, company or email (opportunities:
name or type) contain the typed text, case-insensitively. Without an index
that is a scan of every row (about a second on a million leads); with one, a
rare term costs a few index reads.

- SQLite: an FTS5 table per searched table with the ``trigram`` tokenizer
  (substring matching), an *external content* table (it stores only the index;
  the text stays in ``leads``/``opportunities``), kept in step by triggers on
  insert, update and delete, and filled here from the existing rows.
  ``detail=none`` keeps only which rows hold each trigram (no positions: a
  quarter of the size, half the build time) and ``columnsize=0`` no token
  counts (the lists never rank): a search asks for the rows holding all of
  the term's trigrams and the exact test decides, so positions are not needed.
  An SQLite without the trigram tokenizer (older than 3.34) gets no index and
  keeps searching by scan.
- PostgreSQL: ``pg_trgm`` GIN indexes on ``lower(column)``, which the lists'
  ``LOWER(column) LIKE '%…%'`` uses as it is. The extension is created in
  ``public`` (one per database; it must not live in a schema that may be
  dropped with its tables) unless it is there already; where it is not
  available or may not be created, the indexes are left out and search scans.

This is a Python migration: it has to ask the database what it supports.
"""

from __future__ import annotations

from peewee import Database, DatabaseError

from sharetui.db.connection import Dialect

SEARCHED = {"leads": ("name", "company", "email"), "opportunities": ("name", "type")}


def up(db: Database, which: Dialect) -> None:
    if which is Dialect.SQLITE:
        _sqlite(db)
    else:
        _postgresql(db)


def _sqlite(db: Database) -> None:
    for table, columns in SEARCHED.items():
        index = f"{table}_search"
        cols = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        try:
            with db.atomic():  # a savepoint: an SQLite without trigram leaves nothing behind
                db.execute_sql(
                    f"CREATE VIRTUAL TABLE {index} USING fts5({cols}, content='{table}', "
                    "content_rowid='id', tokenize='trigram', detail=none, columnsize=0)"
                )
        except DatabaseError:
            return
        insert = f"INSERT INTO {index}(rowid, {cols}) VALUES (new.id, {new});"
        delete = f"INSERT INTO {index}({index}, rowid, {cols}) VALUES ('delete', old.id, {old});"
        db.execute_sql(f"CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN {insert} END")
        db.execute_sql(f"CREATE TRIGGER {index}_delete AFTER DELETE ON {table} BEGIN {delete} END")
        db.execute_sql(
            f"CREATE TRIGGER {index}_update AFTER UPDATE OF id, {cols} ON {table} BEGIN {delete} {insert} END"
        )
        db.execute_sql(f"INSERT INTO {index}({index}) VALUES ('rebuild')")


def _trgm_schema(db: Database) -> str | None:
    row = db.execute_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    ).fetchone()
    return row[0] if row else None


def _postgresql(db: Database) -> None:
    schema = _trgm_schema(db)
    if schema is None:
        if not db.execute_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").fetchone():
            return
        try:
            with db.atomic():  # a savepoint: without the right to create it, go on without
                db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
        except DatabaseError:
            return
        schema = _trgm_schema(db)
        if schema is None:
            return
    for table, columns in SEARCHED.items():
        for column in columns:
            db.execute_sql(
                f'CREATE INDEX "{table}_{column}_trgm" ON "{table}" '
                f'USING gin (lower("{column}") "{schema}".gin_trgm_ops)'
            )

"""The text index behind the lists' search (made by migration 0005).

On SQLite each searched table has an FTS5 ``trigram`` table ``<table>_search``
(external content: only the index is stored) kept in step by three triggers.
This module answers whether it is there and lets bulk loaders set the
triggers aside and rebuild the index once, which is faster than feeding it a
row at a time. On PostgreSQL the index is plain ``pg_trgm`` GIN indexes that
bulk loaders drop and rebuild like any other index.
"""

from __future__ import annotations

from peewee import Database

SEARCHED: dict[str, tuple[str, ...]] = {
    "leads": ("name", "company", "email"),
    "opportunities": ("name", "type"),
}

# While the index is rebuilt, FTS5 may hold this much in memory before writing a
# segment (default 1 MB): fewer, larger segments make a bulk rebuild ~20 % faster.
_REBUILD_HASHSIZE = 8 * 1024 * 1024
_DEFAULT_HASHSIZE = 1024 * 1024


def index_table(table: str) -> str:
    return f"{table}_search"


def is_index_table(name: str) -> bool:
    """Whether ``name`` is an FTS table of the search index or one of its shadow tables."""
    return any(name == index_table(t) or name.startswith(index_table(t) + "_") for t in SEARCHED)


def sqlite_has_index(db: Database, table: str) -> bool:
    """Whether ``table`` has its FTS5 search index (SQLite; an SQLite without the
    trigram tokenizer has none, and search scans)."""
    row = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (index_table(table),)
    ).fetchone()
    return row is not None


def suspend_sqlite_triggers(db: Database, table: str) -> list[str]:
    """Drop the triggers that feed ``table``'s search index; returns their DDL for
    :func:`rebuild_sqlite_index`. Call inside the bulk load's transaction."""
    rows = db.execute_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? ORDER BY name", (table,)
    ).fetchall()
    found = [(name, sql) for name, sql in rows if name.startswith(index_table(table) + "_")]
    for name, _ in found:
        db.execute_sql(f'DROP TRIGGER "{name}"')
    return [sql for _, sql in found]


def index_sqlite_rows(db: Database, table: str, triggers: list[str], first_id: int, last_id: int) -> None:
    """Put the triggers back and add the rows ``first_id..last_id`` of ``table`` to its
    search index in one statement: what the triggers would have done row by row, for a
    bulk insert into a table that already holds many rows (no rebuild of the old ones)."""
    for sql in triggers:
        db.execute_sql(sql)
    if not sqlite_has_index(db, table):
        return
    index = index_table(table)
    cols = ", ".join(SEARCHED[table])
    db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('hashsize', {_REBUILD_HASHSIZE})")
    db.execute_sql(
        f"INSERT INTO {index}(rowid, {cols}) SELECT id, {cols} FROM {table} WHERE id BETWEEN ? AND ?",
        (first_id, last_id),
    )
    db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('hashsize', {_DEFAULT_HASHSIZE})")


def rebuild_sqlite_index(db: Database, table: str, triggers: list[str]) -> None:
    """Put the triggers back and rebuild ``table``'s search index from its rows."""
    for sql in triggers:
        db.execute_sql(sql)
    if not sqlite_has_index(db, table):
        return
    index = index_table(table)
    db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('hashsize', {_REBUILD_HASHSIZE})")
    db.execute_sql(f"INSERT INTO {index}({index}) VALUES ('rebuild')")
    db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('hashsize', {_DEFAULT_HASHSIZE})")

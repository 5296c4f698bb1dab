"""The text index behind the lists' search (made by migrations 0005 and 0006).

Search is case-insensitive for every alphabet and accent-sensitive, on both
stores, as PostgreSQL's ``LOWER(column) LIKE '%term%'`` is: ``élodie`` and
``ÉLODIE`` find "Élodie Ünal", ``elodie`` does not. :func:`fold` is that
``lower()``: each character to its lowercase (Unicode's simple mapping, which
glibc's and ICU's ``lower()`` apply), so ``İ`` becomes ``i`` and a capital sigma
ending a word the plain small sigma (U+03C3). On SQLite, whose own ``lower()`` folds ASCII only, sharetui's
connections replace ``lower()`` with :func:`sql_lower` (see
:func:`sharetui.db.connection.connect`), so the lists' exact test means the same
on both stores.

On SQLite each searched table also has an FTS5 ``trigram`` table
``<table>_search`` (external content: only the index is stored) that narrows
the candidates. FTS5 folds case itself, with Unicode tables older than
Python's: for the few hundred letters it folds differently (``İ``, Cherokee,
Georgian Mtavruli, recent Latin additions...), the view ``<table>_search_text``
that feeds it (migration 0006) spells them in lowercase with ``replace()``, a
built-in SQL function, so the index stays right whoever writes the table (the
``sqlite3`` shell included). Four triggers keep the index in step. This module
answers whether it is there and lets bulk loaders set the triggers aside and
rebuild the index once, which is faster than feeding it a row at a time. On
PostgreSQL the index is plain ``pg_trgm`` GIN indexes on ``lower(column)``
that bulk loaders drop and rebuild like any other index.
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


def text_view(table: str) -> str:
    """The view that feeds ``table``'s search index its text (migration 0006)."""
    return f"{table}_search_text"


_DOTTED_CAPITAL_I = "\u0130"  # İ: lowercase "i̇" (two characters) in Python, "i" in lower()
_FINAL_SIGMA_CONTEXT = "\u03a3"  # Σ: Python writes the final sigma at a word's end, lower() never


def fold(text: str) -> str:
    """``text`` as PostgreSQL's ``lower()`` writes it under a UTF-8 locale: every
    character to its lowercase, one for one (``İ`` to ``i``; a capital sigma always to
    U+03C3, never to the final sigma Python writes at a word's end).
    Accents stay: search is case-insensitive, not accent-insensitive."""
    if text.isascii():
        return text.lower()
    if _DOTTED_CAPITAL_I in text or _FINAL_SIGMA_CONTEXT in text:
        return "".join("i" if ch == _DOTTED_CAPITAL_I else ch.lower() for ch in text)
    return text.lower()


def sql_lower(value: object) -> object:
    """SQLite's ``lower(X)`` for sharetui's connections: :func:`fold` for text, as the
    built-in does for ASCII; NULL stays NULL and other values are read as text."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return fold(value if isinstance(value, str) else str(value))


# The letters FTS5 folds differently from :func:`fold`, with their fold (migration 0006).
FOLD_MAP = "search_fold_map"


def is_index_table(name: str) -> bool:
    """Whether ``name`` belongs to the search index: an FTS table, one of its shadow
    tables, its text view, or the fold map."""
    return name == FOLD_MAP or any(
        name == index_table(t) or name.startswith(index_table(t) + "_") for t in SEARCHED
    )


def sqlite_has_index(db: Database, table: str) -> bool:
    """Whether ``table`` has its FTS5 search index (SQLite; an SQLite without the
    trigram tokenizer has none, and search scans)."""
    row = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (index_table(table),)
    ).fetchone()
    return row is not None


def sqlite_has_text_view(db: Database, table: str) -> bool:
    """Whether ``table``'s index is fed through its text view (migration 0006 ran)."""
    row = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ?", (text_view(table),)
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
    source = text_view(table) if sqlite_has_text_view(db, table) else table
    db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('hashsize', {_REBUILD_HASHSIZE})")
    db.execute_sql(
        f"INSERT INTO {index}(rowid, {cols}) SELECT id, {cols} FROM {source} WHERE id BETWEEN ? AND ?",
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

"""Search finds non-ASCII names whatever their case, on SQLite as on PostgreSQL.

PostgreSQL's ``LOWER(column) LIKE '%term%'`` folds every alphabet (and keeps
accents): "Élodie Ünal" is found by ``Élodie``, ``élodie`` and ``ünal``. On
SQLite it was not: SQLite's ``lower()`` folds ASCII only. sharetui's SQLite
connections now replace ``lower()`` with :func:`sharetui.db.search.sql_lower`
(nothing stored depends on it: no index, view or trigger calls ``lower()``),
and this migration makes the FTS5 index that narrows the candidates agree with
it, then rebuilds the index.

FTS5's trigram tokenizer folds case with Unicode tables of its own, older than
Python's and glibc's. For the letters it folds differently (it leaves ``İ``,
Cherokee, Georgian Mtavruli, Osage, Adlam and recent Latin additions alone),
the index would hold trigrams the folded term never asks for, and such names
would be missed. So the index is no longer fed the table's text directly but
a view, ``<table>_search_text``, that writes exactly those letters in
lowercase. Which letters: this SQLite's FTS5 is asked, one probe per cased
letter, and the answer is kept as data, in ``search_fold_map``. A value with
none of them (every ASCII value, told by its length in bytes; most others, by a
``GLOB`` over their ranges) goes to the index as it is; one with some is rewritten a character at a time
by a recursive CTE looking each up in the map. Only built-in SQL, so a write
from any SQLite client (the ``sqlite3`` shell too) keeps the index right.

The triggers read the view: after an insert the new row's text; before an
update or a delete the old row's (an external-content index must be told the
exact text it holds to forget it), after an update the new row's.

PostgreSQL needs nothing: its ``lower()`` already folds every alphabet.
"""

from __future__ import annotations

import functools
import sys

from peewee import Database

from sharetui.db.connection import Dialect
from sharetui.db.search import fold

SEARCHED = {"leads": ("name", "company", "email"), "opportunities": ("name", "type")}
FOLD_MAP = "search_fold_map"


def up(db: Database, which: Dialect) -> None:
    if which is not Dialect.SQLITE:
        return
    present = [
        t
        for t in SEARCHED
        if db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (f"{t}_search",)
        ).fetchone()
    ]
    if not present:
        return  # an SQLite without the trigram tokenizer: no index (0005), search scans
    respell = _letters_fts5_folds_differently(db)
    db.execute_sql(
        f'CREATE TABLE "{FOLD_MAP}" ("ch" TEXT NOT NULL PRIMARY KEY, "low" TEXT NOT NULL) WITHOUT ROWID'
    )
    for ch, low in respell:
        db.execute_sql(f'INSERT INTO "{FOLD_MAP}" (ch, low) VALUES (?, ?)', (ch, low))
    ranges = _glob_ranges([ch for ch, _ in respell])
    for table in present:
        _refeed(db, table, SEARCHED[table], ranges)


def _letters_fts5_folds_differently(db: Database) -> list[tuple[str, str]]:
    """(letter, its fold) for each letter whose FTS5 folding differs from its fold's."""
    cased = _cased_letters()
    db.execute_sql(
        "CREATE VIRTUAL TABLE temp.sharetui_fold_probe USING fts5(t, tokenize='trigram', detail=none)"
    )
    try:
        for i, (ch, _) in enumerate(cased):
            db.execute_sql("INSERT INTO temp.sharetui_fold_probe(rowid, t) VALUES (?, ?)", (i, f"qq{ch}"))
        differ = []
        for i, (ch, low) in enumerate(cased):
            query = '"qq' + low.replace('"', '""') + '"'
            hit = db.execute_sql(
                "SELECT 1 FROM temp.sharetui_fold_probe WHERE sharetui_fold_probe MATCH ? AND rowid = ?",
                (query, i),
            ).fetchone()
            if hit is None:
                differ.append((ch, low))
        return differ
    finally:
        db.execute_sql("DROP TABLE temp.sharetui_fold_probe")


@functools.cache
def _cased_letters() -> tuple[tuple[str, str], ...]:
    """Every non-ASCII letter that :func:`fold` changes, with its fold (once per process:
    a walk over all of Unicode)."""
    found = []
    for ch in map(chr, range(0x80, sys.maxunicode + 1)):
        if (low := ch.lower()) != ch:
            found.append((ch, fold(ch) if len(low) != 1 else low))
    return tuple(found)


def _glob_ranges(letters: list[str]) -> str:
    """A GLOB character class body matching every letter given (and maybe a few
    neighbours: letters close together share a range; the map decides)."""
    points = sorted(ord(ch) for ch in letters)
    spans: list[list[int]] = []
    for p in points:
        if spans and p - spans[-1][1] <= 8:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in spans)


def _respelled(column: str, ranges: str) -> str:
    """SQL for ``column`` with each letter of the map written as its fold."""
    if not ranges:
        return column
    step = (
        f"SELECT i + 1, out || coalesce((SELECT low FROM {FOLD_MAP} WHERE ch = substr({column}, i + 1, 1)), "
        f"substr({column}, i + 1, 1)) FROM f WHERE i < length({column})"
    )
    rewrite = (
        f"(WITH RECURSIVE f(i, out) AS (SELECT 0, '' UNION ALL {step}) "
        f"SELECT out FROM f WHERE i = length({column}))"
    )
    # ASCII text (as many bytes as characters) is told apart first: a GLOB over the
    # ranges costs more than the rest of the indexing for every value that goes through it.
    test = f"length(CAST({column} AS BLOB)) <> length({column}) AND {column} GLOB '*[{ranges}]*'"
    return f"CASE WHEN {test} THEN {rewrite} ELSE {column} END"


def _refeed(db: Database, table: str, columns: tuple[str, ...], ranges: str) -> None:
    index, view = f"{table}_search", f"{table}_search_text"
    cols = ", ".join(columns)
    for what in ("insert", "update", "delete"):
        db.execute_sql(f"DROP TRIGGER IF EXISTS {index}_{what}")
    db.execute_sql(f"DROP TABLE {index}")
    folded = ", ".join(f"{_respelled(c, ranges)} AS {c}" for c in columns)
    db.execute_sql(f"CREATE VIEW {view} AS SELECT id, {folded} FROM {table}")
    db.execute_sql(
        f"CREATE VIRTUAL TABLE {index} USING fts5({cols}, content='{view}', "
        "content_rowid='id', tokenize='trigram', detail=none, columnsize=0)"
    )
    add = f"INSERT INTO {index}(rowid, {cols}) SELECT id, {cols} FROM {view} WHERE id = new.id;"
    forget = (
        f"INSERT INTO {index}({index}, rowid, {cols}) "
        f"SELECT 'delete', id, {cols} FROM {view} WHERE id = old.id;"
    )
    watched = f"UPDATE OF id, {cols} ON {table}"
    db.execute_sql(f"CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN {add} END")
    db.execute_sql(f"CREATE TRIGGER {index}_delete BEFORE DELETE ON {table} BEGIN {forget} END")
    db.execute_sql(f"CREATE TRIGGER {index}_update_old BEFORE {watched} BEGIN {forget} END")
    db.execute_sql(f"CREATE TRIGGER {index}_update_new AFTER {watched} BEGIN {add} END")
    db.execute_sql(f"INSERT INTO {index}({index}) VALUES ('rebuild')")

"""Deferred writes (db/batching.py): a batch holds its rows and writes them set-based,
and what the store ends up with is what writing them one by one would have left.

These run on SQLite, on tables of their own; tests/unit/db/test_batching_stores.py and
tests/unit/core/test_deferred_writes.py run the batch on the store under test (PostgreSQL too).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sharetui.db.batching import DeferredWriteFailed, batch_of, deferred_writes
from sharetui.db.connection import connect, database
from sharetui.db.sql import Insert, Statement, Update

_ITEM = Insert("items", ("kind", "name"), fixed={"state": "new"}, keys={"kind": ("kind",)})
_NOTE = Insert("notes", ("item_id", "text"))
_DONE = Update("items", ("state",))
_BUMP = Update("items", ("state",), increments=("tries",))
_ITEMS_OF_KIND = Statement("SELECT COUNT(*) FROM items WHERE kind = ?", reads=("items",), checked=("items",))
_ALL_ITEMS = Statement("SELECT id, kind, name, state, tries FROM items ORDER BY id", reads=("items",))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Any]:
    previous = database.obj
    store = connect(f"sqlite:///{tmp_path / 'batch.db'}")
    store.execute_sql(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL UNIQUE, "
        "state TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0)"
    )
    store.execute_sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items (id), "
        "text TEXT)"
    )
    yield store
    store.close()
    if previous is not None:
        database.initialize(previous)


def rows(db: Any) -> list[tuple[Any, ...]]:
    return db.execute_sql("SELECT id, kind, name, state, tries FROM items ORDER BY id").fetchall()


class Counting:
    """Counts the statements the store runs (execute and executemany calls)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.calls: list[str] = []
        self.original = db.cursor

    def __enter__(self) -> Counting:
        outer = self

        class Cursor:
            def __init__(self, cursor: Any) -> None:
                self.cursor = cursor

            def execute(self, sql: str, *args: Any) -> Any:
                outer.calls.append(sql.split()[0].upper())
                return self.cursor.execute(sql, *args)

            def executemany(self, sql: str, *args: Any) -> Any:
                outer.calls.append("MANY " + sql.split()[2])
                return self.cursor.executemany(sql, *args)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.cursor, name)

        self.db.cursor = lambda *a, **k: Cursor(self.original(*a, **k))
        return self

    def __exit__(self, *exc: Any) -> None:
        del self.db.cursor


def test_held_rows_get_the_ids_the_table_would_give_and_go_in_one_statement_per_table(db) -> None:
    """A batch of 50 rows is one executemany per table, with the ids one-by-one inserts give."""
    _ITEM.insert(("a", "first"))
    with Counting(db) as counted, db.atomic(), deferred_writes(db) as batch:
        assert batch is not None
        ids = [_ITEM.insert(("b", f"item {i}")) for i in range(50)]
        for ident in ids:
            _NOTE.insert((ident, "hello"))
        assert ids == list(range(2, 52))
        assert db.execute_direct("SELECT COUNT(*) FROM items").fetchone() == (1,), "held, not written"
    assert [r[0] for r in rows(db)] == [1, *ids]
    assert db.execute_sql("SELECT COUNT(*) FROM notes").fetchone() == (50,)
    assert counted.calls.count("MANY items") == 1 and counted.calls.count("MANY notes") == 1
    assert "INSERT" not in counted.calls


def test_a_held_row_is_changed_in_place_and_written_once(db) -> None:
    with db.atomic(), deferred_writes(db):
        ident = _ITEM.insert(("a", "one"))
        _DONE.run(("done", ident))
        _BUMP.run(("again", ident))
    assert rows(db) == [(1, "a", "one", "again", 1)]


def test_a_read_of_a_table_with_held_rows_sees_them(db) -> None:
    """A read naming a table the batch holds rows of writes them first; a Peewee query
    (which names nothing) too."""
    with db.atomic(), deferred_writes(db) as batch:
        _ITEM.insert(("a", "one"))
        assert [r[2] for r in _ALL_ITEMS.all()] == ["one"]
        _ITEM.insert(("a", "two"))
        assert db.execute_sql("SELECT COUNT(*) FROM items").fetchone() == (2,)
        assert batch is not None and not batch.held


def test_a_read_that_settles_its_own_keys_does_not_wait_for_other_rows(db) -> None:
    with db.atomic(), deferred_writes(db) as batch:
        assert batch is not None
        _ITEM.insert(("a", "one"))
        _ITEM.insert(("b", "two"))
        batch.settle("items", "kind", ("c",))
        assert _ITEMS_OF_KIND.one(("c",)) == (0,)
        assert batch.held["items"] == 2, "nothing of kind c was held: nothing written"
        assert batch.pending("items", "kind", ("a",)) == 1
        batch.settle("items", "kind", ("a",))
        assert _ITEMS_OF_KIND.one(("a",)) == (1,)
        assert not batch.held


def test_rolling_back_a_savepoint_drops_only_its_rows_and_gives_their_ids_again(db) -> None:
    """Each item in a savepoint of its own: one that fails leaves the others, and the next
    row takes the id the failed one had (as SQLite gives it)."""
    with db.atomic(), deferred_writes(db):
        with db.atomic():
            _ITEM.insert(("a", "kept"))
        with pytest.raises(RuntimeError), db.atomic():
            _ITEM.insert(("a", "dropped"))
            raise RuntimeError("this item fails")
        with db.atomic():
            again = _ITEM.insert(("a", "next"))
    assert [r[2] for r in rows(db)] == ["kept", "next"]
    assert again == 2


def test_rows_written_mid_savepoint_stay_when_a_later_savepoint_rolls_back(db) -> None:
    """The rows of an earlier item are written before the savepoint of a later one opens,
    so rolling the later one back after a mid-item write keeps them."""
    with db.atomic(), deferred_writes(db):
        with db.atomic():
            _ITEM.insert(("a", "first item"))
        with pytest.raises(RuntimeError), db.atomic():
            _ITEM.insert(("a", "second item"))
            db.execute_sql("SELECT 1")  # a statement the batch does not know: rows written
            _ITEM.insert(("a", "after the write"))
            raise RuntimeError("the second item fails")
    assert [r[2] for r in rows(db)] == ["first item"]


def test_a_change_under_an_inner_savepoint_that_rolls_back_is_undone(db) -> None:
    """An update of a row held from before the inner savepoint is not made in place, so
    rolling the savepoint back undoes it."""
    with db.atomic(), deferred_writes(db):
        ident = _ITEM.insert(("a", "one"))
        with pytest.raises(RuntimeError), db.atomic():
            _DONE.run(("changed", ident))
            raise RuntimeError("rolled back")
        with db.atomic():
            _BUMP.run(("new", ident))
    assert rows(db) == [(1, "a", "one", "new", 1)]


def test_another_statement_drops_the_memo_only_when_it_changes_a_row(db) -> None:
    with db.atomic(), deferred_writes(db) as batch:
        assert batch is not None
        batch.memo["x"] = 1
        db.execute_sql("SELECT COUNT(*) FROM items")
        assert batch.memo == {"x": 1}
        db.execute_sql("INSERT INTO items (kind, name, state) VALUES ('z', 'plain', 'new')")
        assert batch.memo == {}
        assert _ITEM.insert(("a", "after")) == 2, "the table's next id is read again"


def test_a_failed_write_breaks_the_batch_and_rolls_the_transaction_back(db) -> None:
    """Two held rows break a UNIQUE constraint when written: nothing is kept, and the
    caller hears DeferredWriteFailed (to do the work again one statement at a time)."""
    _ITEM.insert(("a", "before"))
    with pytest.raises(DeferredWriteFailed), db.atomic(), deferred_writes(db):
        _ITEM.insert(("a", "twin"))
        _ITEM.insert(("a", "twin"))
    assert [r[2] for r in rows(db)] == ["before"]
    assert batch_of(db) is None


def test_a_batch_is_only_opened_inside_a_transaction(db) -> None:
    with deferred_writes(db) as batch:
        assert batch is None
        _ITEM.insert(("a", "written at once"))
    assert len(rows(db)) == 1

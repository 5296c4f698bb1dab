"""The orders a list of leads or opportunities can be sorted in.

A sort names one column, ``-column`` for descending; ties go by id, in the same
direction. Text columns compare case-insensitively (``zeta`` before ``Zulu``), the
owner by username, ``updated`` by when the record last changed. The same names serve
the core, the CLI (``--sort``), saved views and the TUI's column headers.
"""

from __future__ import annotations

from sharetui.domain.roles import EntityType
from sharetui.errors import UsageError

SORT_COLUMNS: dict[EntityType, tuple[str, ...]] = {
    EntityType.LEAD: ("id", "name", "company", "stage", "source", "owner", "updated"),
    EntityType.OPPORTUNITY: ("id", "name", "type", "stage", "amount", "owner", "updated"),
}
# Compared with ASCII letters folded to lower case (the same on SQLite and PostgreSQL).
TEXT_SORTS = frozenset({"name", "company", "stage", "source", "type"})
DEFAULT_SORT = "id"


def sort_orders(entity: EntityType) -> tuple[str, ...]:
    """Every sort ``entity``'s lists accept: each column, then each column descending."""
    columns = SORT_COLUMNS[entity]
    return (*columns, *(f"-{c}" for c in columns))


def all_sort_orders() -> tuple[str, ...]:
    """The sorts of either list (for a command line that names the entity later)."""
    seen: dict[str, None] = {}
    for entity in EntityType:
        seen.update(dict.fromkeys(sort_orders(entity)))
    return tuple(seen)


def parse_sort(entity: EntityType, sort: str) -> tuple[str, bool]:
    """``sort`` as ``(column, descending)``; a :class:`UsageError` naming the valid
    sorts when ``entity``'s lists have no such sort."""
    column = sort[1:] if isinstance(sort, str) and sort.startswith("-") else sort
    if not isinstance(sort, str) or column not in SORT_COLUMNS[entity]:
        columns = ", ".join(SORT_COLUMNS[entity])
        lists = "a lead list" if entity is EntityType.LEAD else "an opportunity list"
        raise UsageError(f"unknown sort {sort!r}: {lists} sorts by {columns} (-COLUMN for descending)")
    return column, sort.startswith("-")

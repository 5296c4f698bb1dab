"""Read-only views of records for plugin access checks, loaded in batches.

An access check that names the ``view`` parameter gets the record it is asked about
(owner, stage, the standard and the custom fields) as a frozen
:class:`~sharetui.sdk.RecordView`. A list loads the views of its whole page in one
query before it asks the checks, so a page of 50 rows costs one round trip more,
not fifty; a single check loads its one record. Nothing is loaded when no check
asks for a view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from sharetui.db.sql import Statement
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import from_db
from sharetui.sdk.facade import RecordView

_COLUMNS = {
    EntityType.LEAD: ("email", "phone", "company", "source"),
    EntityType.OPPORTUNITY: ("lead_id", "type", "amount"),
}
_STATEMENTS: dict[tuple[EntityType, int], Statement] = {}
_BATCH = 200  # ids per statement: one page of a list is one statement


def _statement(entity: EntityType, count: int) -> Statement:
    key = (entity, count)
    statement = _STATEMENTS.get(key)
    if statement is None:
        extra = ", ".join(f"r.{c}" for c in _COLUMNS[entity])
        marks = ", ".join("?" for _ in range(count))
        statement = _STATEMENTS[key] = Statement(
            f"SELECT r.id, r.name, u.username, r.stage, r.fields, r.created_at, r.updated_at, {extra} "
            f"FROM {entity.table} r LEFT JOIN users u ON u.id = r.owner_id WHERE r.id IN ({marks})"
        )
    return statement


def _fields(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        loaded = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def load_record_views(entity: EntityType, ids: Iterable[int]) -> dict[int, RecordView]:
    """The views of the records ``ids`` of one kind that exist, by id (one query per
    200 ids)."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    names = _COLUMNS[entity]
    out: dict[int, RecordView] = {}
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        for row in _statement(entity, len(chunk)).all(chunk):
            ident, name, owner, stage, fields, created, updated, *rest = row
            out[ident] = RecordView(
                ref=RecordRef(entity, ident),
                name=name,
                owner=owner,
                stage=stage,
                values=MappingProxyType(dict(zip(names, rest, strict=True))),
                fields=MappingProxyType(_fields(fields)),
                created_at=from_db(created),  # type: ignore[arg-type]
                updated_at=from_db(updated),  # type: ignore[arg-type]
            )
    return out


def load_record_view(record: RecordRef) -> RecordView | None:
    """One record's view, or None when it does not exist."""
    return load_record_views(record.entity, [record.id]).get(record.id)


__all__ = ["load_record_view", "load_record_views"]

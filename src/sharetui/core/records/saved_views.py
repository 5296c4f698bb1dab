"""Saved views ("smart views"): named list filters of leads or opportunities.

A view holds the list's search term, field conditions in the automation condition
format (``lead.stage = "qualified"``, ``opportunity.fields.score >= 80``), a sort and
the columns to show. It is saved for its owner, or by an admin for everyone.

A view never widens what anyone sees: its list is :meth:`AccessService.visible` for
the viewer (the authorization gate, DESIGN §9) with the conditions applied to the
rows of each page, read in batches. Conditions read only records the viewer may
read, so a view cannot be used to learn about any other.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sharetui.core.access import Page, VisibleRow
from sharetui.core.access.gate import Capability
from sharetui.core.access.listing import cursor_after
from sharetui.core.automations.definitions import OPERATORS, evaluate
from sharetui.core.automations.trigger_data import RECORD_SELECT, record_data
from sharetui.db.models import SavedView as SavedViewRow
from sharetui.db.models import User
from sharetui.db.sql import Statement
from sharetui.domain.roles import EntityType
from sharetui.domain.sorts import parse_sort
from sharetui.domain.text import text_problem
from sharetui.errors import NotFound, PermissionDenied, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

NAME_MAX = 80
SEARCH_MAX = 200
MAX_CONDITIONS = 20
# What a list can show, in the order lists show them.
COLUMNS: dict[EntityType, tuple[str, ...]] = {
    EntityType.LEAD: ("id", "name", "company", "email", "stage", "source", "owner", "access", "updated_at"),
    EntityType.OPPORTUNITY: (
        *("id", "name", "type", "stage", "amount"),
        *("lead_id", "owner", "access", "updated_at"),
    ),
}
DEFAULT_COLUMNS: dict[EntityType, tuple[str, ...]] = {
    EntityType.LEAD: ("id", "name", "company", "stage", "owner", "access"),
    EntityType.OPPORTUNITY: ("id", "name", "type", "stage", "amount", "owner", "access"),
}
# A view's page reads the viewer's visible records this many at a time, and at most
# this many batches before it returns what it found with a cursor to go on from.
_BATCH = 200
_SCAN_BATCHES = 25
_CONDITION = re.compile(
    r"^\s*(?P<field>[^\s=!<>]+)\s*(?P<op>!=|>=|<=|=|>|<|\bin\b|\bcontains\b)\s*(?P<value>.*?)\s*$"
)


@dataclass(frozen=True)
class SavedView:
    """A saved view as the CLI and the TUI show it."""

    id: int
    name: str
    entity: EntityType
    owner: str | None  # None: shared with everyone
    search: str
    conditions: tuple[dict[str, Any], ...]
    sort: str
    columns: tuple[str, ...]

    @property
    def shared(self) -> bool:
        return self.owner is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "entity": self.entity.value,
            "shared": self.shared,
            "owner": self.owner,
            "search": self.search,
            "conditions": [dict(c) for c in self.conditions],
            "sort": self.sort,
            "columns": list(self.columns),
        }


def parse_condition(text: str) -> dict[str, Any]:
    """``FIELD OP VALUE`` (e.g. ``lead.fields.score >= 80``, ``lead.stage in ["won", "lost"]``)
    as a condition. VALUE is read as a TOML value (a number, ``true``, a quoted string, a
    list); anything else is taken as the text it is."""
    match = _CONDITION.match(text)
    if match is None or not match.group("value"):
        raise UsageError(
            f"bad condition {text!r}: write FIELD OP VALUE, e.g. lead.stage = qualified "
            f"(OP is one of {' '.join(OPERATORS)})"
        )
    raw = match.group("value")
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return {"field": match.group("field"), "op": match.group("op"), "value": value}


def check_conditions(entity: EntityType, conditions: list[Any]) -> list[dict[str, Any]]:
    """The conditions, checked: each is ``{field, op, value}`` on the view's own record
    (``lead.`` or ``opportunity.``), with a known operator and a plain value."""
    if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS:
        raise UsageError(f"conditions: a list of at most {MAX_CONDITIONS}")
    root = entity.value
    checked = []
    for i, cond in enumerate(conditions):
        where = f"condition {i + 1}"
        if not isinstance(cond, dict) or set(cond) - {"field", "op", "value"} or "value" not in cond:
            raise UsageError(f"{where}: write a field, an op and a value")
        field, op, value = cond.get("field"), cond.get("op", "="), cond["value"]
        if not isinstance(field, str) or not field.startswith(f"{root}.") or len(field) <= len(root) + 1:
            raise UsageError(
                f"{where}: field {field!r}: a {root} view's conditions read its {root}, "
                f"e.g. {root}.stage or {root}.fields.score"
            )
        if op not in OPERATORS:
            raise UsageError(f"{where}: op {op!r} is not one of {' '.join(OPERATORS)}")
        if op == "in" and not isinstance(value, list):
            raise UsageError(f'{where}: \'in\' needs a list, e.g. ["won", "lost"]')
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, (str, int, float, bool)):
                raise UsageError(f"{where}: the value must be text, a number, true/false or a list of those")
            if isinstance(item, str) and (problem := text_problem(item)):
                raise UsageError(f"{where}: the value {problem}")
        checked.append({"field": field, "op": op, "value": value})
    return checked


class SavedViewService:
    """Add, list, remove and read saved views, always for an acting user."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- changes -----------------------------------------------------------------
    def add(
        self,
        name: str,
        entity: EntityType | str,
        *,
        actor: User,
        search: str | None = None,
        conditions: list[Any] | tuple[Any, ...] = (),
        sort: str = "id",
        columns: list[str] | tuple[str, ...] | None = None,
        shared: bool = False,
        replace: bool = False,
    ) -> SavedView:
        """Save a view for ``actor``, or for everyone (``shared``: admins only).
        Everything is checked before anything is written; ``replace`` overwrites a
        view of the same name, otherwise that is an error."""
        kind = EntityType.parse(entity) if isinstance(entity, str) else entity
        self._require_active(actor)
        if shared:
            self.core.gate.require(actor, Capability.SHARE_VIEWS)
        name = _check_name(name)
        term = (search or "").strip()
        if len(term) > SEARCH_MAX:
            raise UsageError(f"search: at most {SEARCH_MAX} characters")
        if problem := text_problem(term):
            raise UsageError(f"search {problem}")
        checked = check_conditions(kind, list(conditions))
        parse_sort(kind, sort)  # a UsageError naming the list's sorts
        cols = tuple(columns) if columns else DEFAULT_COLUMNS[kind]
        unknown = [c for c in cols if c not in COLUMNS[kind]]
        if unknown or len(set(cols)) != len(cols):
            raise UsageError(
                f"columns: {', '.join(unknown) or 'a column twice'}: "
                f"a {kind.value} view shows some of {', '.join(COLUMNS[kind])}"
            )
        owner_id = None if shared else actor.id
        now = self.core.db_now()
        with self.core.db.atomic():
            existing = self._row(name, kind, owner_id)
            if existing is not None and not replace:
                whose = "a shared" if shared else "your"
                raise UsageError(f"{whose} {kind.value} view {name!r} exists: remove it first, or replace it")
            values = {
                "search": term,
                "conditions": checked,
                "sort": sort,
                "columns": list(cols),
                "created_by": actor.id,
                "updated_at": now,
            }
            if existing is not None:
                SavedViewRow.update(values).where(SavedViewRow.id == existing.id).execute()
                view_id = existing.id
            else:
                view_id = SavedViewRow.insert(
                    name=name, entity_type=kind.value, owner=owner_id, created_at=now, **values
                ).execute()
        return self._view(SavedViewRow.get_by_id(view_id))

    def remove(self, name: str, entity: EntityType | str, *, actor: User, shared: bool = False) -> SavedView:
        """Remove ``actor``'s view, or (``shared``, admins only) a shared one."""
        kind = EntityType.parse(entity) if isinstance(entity, str) else entity
        self._require_active(actor)
        if shared:
            self.core.gate.require(actor, Capability.SHARE_VIEWS)
        row = self._row(name.strip(), kind, None if shared else actor.id)
        if row is None:
            raise NotFound(f"no {'shared' if shared else 'saved'} {kind.value} view named {name!r}")
        view = self._view(row)
        SavedViewRow.delete().where(SavedViewRow.id == row.id).execute()
        return view

    # -- reads -------------------------------------------------------------------
    def list(self, *, actor: User, entity: EntityType | str | None = None) -> list[SavedView]:
        """``actor``'s own views and the shared ones, by record type and name."""
        self._require_active(actor)
        query = SavedViewRow.select().where(
            (SavedViewRow.owner == actor.id) | (SavedViewRow.owner.is_null(True))
        )
        if entity is not None:
            kind = EntityType.parse(entity) if isinstance(entity, str) else entity
            query = query.where(SavedViewRow.entity_type == kind.value)
        views = [self._view(row) for row in query]
        return sorted(views, key=lambda v: (v.entity.value, v.name.casefold(), v.shared))

    def get(self, name: str, entity: EntityType | str, *, actor: User) -> SavedView:
        """The view ``name`` as ``actor`` finds it: their own first, then a shared one."""
        kind = EntityType.parse(entity) if isinstance(entity, str) else entity
        self._require_active(actor)
        row = self._row(name.strip(), kind, actor.id) or self._row(name.strip(), kind, None)
        if row is None:
            raise NotFound(f"no {kind.value} view named {name!r}: `sharetui views list` shows yours")
        return self._view(row)

    def page(
        self,
        view: SavedView,
        *,
        actor: User,
        after: str | None = None,
        limit: int = 50,
        sort: str | None = None,
    ) -> Page:
        """One page of the view for ``actor``: the records they may read (the gate) that
        match its search and conditions, in its sort (or ``sort``)."""
        access = self.core.access
        order = sort or view.sort
        if not view.conditions:
            term = view.search or None
            return access.visible(actor, view.entity, after=after, limit=limit, search=term, sort=order)
        if not 1 <= limit <= 1000:
            raise UsageError("limit must be between 1 and 1000")
        kept: list[VisibleRow] = []
        cursor = after
        for _ in range(_SCAN_BATCHES):
            batch = access.visible(
                actor, view.entity, after=cursor, limit=_BATCH, search=view.search or None, sort=order
            )
            data = self._record_data(view.entity, [row.id for row in batch.rows])
            for row in batch.rows:
                record = data.get(row.id)
                if record is None or not _matches(view, record):
                    continue
                kept.append(row)
                if len(kept) == limit:
                    more = row is not batch.rows[-1] or batch.next_cursor is not None
                    return Page(kept, _cursor_after(row) if more else None)
            if batch.next_cursor is None:
                return Page(kept, None)
            cursor = batch.next_cursor
        return Page(kept, cursor)

    # -- helpers -----------------------------------------------------------------
    def _require_active(self, actor: User | None) -> None:
        if actor is None:
            raise UsageError("saved views belong to a user: act as one (--as NAME)")
        if not actor.active:
            raise PermissionDenied(f"{actor.username} is deactivated")

    def _row(self, name: str, kind: EntityType, owner_id: int | None) -> SavedViewRow | None:
        owner = SavedViewRow.owner.is_null(True) if owner_id is None else SavedViewRow.owner == owner_id
        return (
            SavedViewRow.select()
            .where((SavedViewRow.name == name) & (SavedViewRow.entity_type == kind.value) & owner)
            .first()
        )

    def _view(self, row: SavedViewRow) -> SavedView:
        owner = None
        if row.owner_id is not None:
            owner = self.core.users.usernames([row.owner_id]).get(row.owner_id)
        return SavedView(
            id=row.id,
            name=row.name,
            entity=EntityType(row.entity_type),
            owner=owner,
            search=row.search,
            conditions=tuple(row.conditions),
            sort=row.sort,
            columns=tuple(row.columns),
        )

    def _record_data(self, entity: EntityType, ids: list[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = Statement(f"{RECORD_SELECT[entity]} WHERE r.id IN ({marks})").all_unprepared(ids)
        now = self.core.now()
        return {row[0]: record_data(entity, row, now) for row in rows}


def _matches(view: SavedView, record: dict[str, Any]) -> bool:
    data = {view.entity.value: record}
    return all(evaluate(cond, data)[0] for cond in view.conditions)


def _cursor_after(row: VisibleRow) -> str:
    return cursor_after(row.values, "id")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UsageError("a view needs a name")
    name = name.strip()
    if len(name) > NAME_MAX:
        raise UsageError(f"a view's name is at most {NAME_MAX} characters")
    if problem := text_problem(name):
        raise UsageError(f"the name {problem}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UsageError("a view's name cannot hold control characters")
    return name


__all__ = [
    "COLUMNS",
    "DEFAULT_COLUMNS",
    "SavedView",
    "SavedViewService",
    "check_conditions",
    "parse_condition",
]

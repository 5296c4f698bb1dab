"""Leads, opportunities, activity types, activities and tasks.

Every change runs in one transaction that also appends its outbox events.
Edits need edit access to the record (a read share never allows one).

:class:`RecordService` is the one object ``core.records`` is: leads and
opportunities are here, activities (:mod:`.activities`) and tasks (:mod:`.tasks`)
are mixed in from modules of their own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sharetui.core.access.record_views import load_record_view
from sharetui.core.events.outbox import ambient_actor
from sharetui.core.records.activities import Activities, activity_dict
from sharetui.core.records.tasks import Tasks, task_dict
from sharetui.db.batching import memo_of
from sharetui.db.models import Lead, Opportunity, User, check_lengths
from sharetui.db.sql import Statement
from sharetui.domain.records import RecordLike, RecordRef, as_record
from sharetui.domain.roles import Access, EntityType, Role
from sharetui.errors import NotFound, PermissionDenied, UsageError
from sharetui.sdk.facade import RecordView
from sharetui.sdk.types import RecordChange

if TYPE_CHECKING:
    from sharetui.core.service import Core

# activity_dict and task_dict lived here before the split: they still import from here.
__all__ = ["LEAD_FIELDS", "OPP_FIELDS", "RecordService", "activity_dict", "record_dict", "task_dict"]

# Asked before every read of a record (the gate): compiled once, as a Peewee query costs ~20x.
_EXISTS = {
    entity: Statement(f"SELECT 1 FROM {entity.table} WHERE id = ?", reads=(entity.table,))
    for entity in EntityType
}

LEAD_FIELDS = ("name", "email", "phone", "company", "stage", "source")
OPP_FIELDS = ("name", "type", "stage", "amount")
# The stages a face offers to pick from (sample_data/README.md); a stored record may
# hold another (an import), which a face keeps on offer for that record.
LEAD_STAGES = ("new", "contacted", "qualified", "unqualified", "converted")
OPP_STAGES = ("prospecting", "evaluation", "proposal", "won", "lost")


def _amount(value: Any) -> float:
    """An opportunity amount: a finite number ("nan", "inf" and 1e400 are not amounts)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"amount must be a number, not {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise UsageError(f"amount must be a finite number, not {value!r}")
    return number


def record_dict(row: Lead | Opportunity) -> dict[str, Any]:
    from sharetui.domain.time import iso

    out: dict[str, Any] = {"id": row.id}
    if isinstance(row, Lead):
        out.update({f: getattr(row, f) for f in LEAD_FIELDS})
        out["entity"] = "lead"
    else:
        out.update({f: getattr(row, f) for f in OPP_FIELDS})
        out["entity"] = "opportunity"
        out["lead_id"] = row.lead_id
    out["owner"] = User.get_by_id(row.owner_id).username
    out["fields"] = row.fields or {}
    out["created_at"] = iso(row.created_at)
    out["updated_at"] = iso(row.updated_at)
    return out


class RecordService(Activities, Tasks):
    """Leads and opportunities (here), activities and tasks (mixed in)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- lookups -----------------------------------------------------------
    def get(self, record: RecordLike) -> Lead | Opportunity:
        ref = as_record(record)
        model = Lead if ref.entity is EntityType.LEAD else Opportunity
        row = model.get_or_none(model.id == ref.id)
        if row is None:
            raise NotFound(f"{ref.entity.value} {ref.id} does not exist")
        return row

    def exists(self, ref: RecordRef) -> bool:
        memo = memo_of(self.core.db)
        if memo is not None:  # the share path has often just read the record's owner
            owner = memo.get(("owner", ref.entity, ref.id), False)
            if owner is not False:
                return owner is not None
        return _EXISTS[ref.entity].one((ref.id,)) is not None

    def detail(self, record: RecordLike, *, actor: User | None) -> dict[str, Any]:
        """The record with its activities, tasks and active shares, as the CLI's JSON
        shows it, for ``actor`` who must be able to read it (else :class:`NotReadable`,
        as for a record that does not exist)."""
        from sharetui.core.records.activities import activity_dict
        from sharetui.core.records.tasks import task_dict

        ref = as_record(record)
        self.core.gate.require_read(actor, ref)
        data = record_dict(self.get(ref))
        data["activities"] = [activity_dict(a) for a in self.activities_of(ref)]
        data["tasks"] = [task_dict(t) for t in self.tasks_of(ref)]
        data["shares"] = self.core.access.active_grants(ref)
        if actor is not None:
            data["your_access"] = self.core.access.level(actor, ref).label
        return data

    # -- permission helpers --------------------------------------------------
    def require(self, actor: User | None, ref: RecordRef, action: Access) -> None:
        """The gate's answer for ``actor`` reading or editing ``ref``: :class:`NotReadable`
        when they may not read it (or it does not exist), :class:`PermissionDenied`
        when they may read but not edit it."""
        if action >= Access.EDIT:
            self.core.gate.require_edit(actor, ref)
        else:
            self.core.gate.require_read(actor, ref)

    def _active_user(self, who: User | str | int, what: str) -> User:
        user = self.core.users.get(who)
        if not user.active:
            raise UsageError(f"{what} {user.username} is deactivated")
        return user

    # -- leads and opportunities --------------------------------------------------
    def add_lead(
        self,
        *,
        name: str,
        owner: User | str,
        actor: User | None,
        ref: str | None = None,
        fields: dict[str, Any] | None = None,
        **values: Any,
    ) -> Lead:
        """Create a lead. Sales users may only create leads they own."""
        unknown = set(values) - set(LEAD_FIELDS)
        if unknown:
            raise UsageError(f"unknown lead field(s): {', '.join(sorted(unknown))}")
        if not name or not name.strip():
            raise UsageError("a lead needs a name")
        check_lengths(Lead, {"name": name.strip(), "ref": ref, **{k: str(v) for k, v in values.items()}})
        owner_user = self._active_user(owner, "owner")
        self.core.gate.require_create(actor, owner_user)
        now = self.core.db_now()
        with self.core.db.atomic():
            lead = Lead.create(
                name=name.strip(),
                owner=owner_user.id,
                ref=ref,
                fields=fields or {},
                created_at=now,
                updated_at=now,
                **{k: ("" if v is None else str(v)) for k, v in values.items()},
            )
            self.core.outbox.emit(
                "lead.created",
                "lead",
                lead.id,
                {"owner_id": owner_user.id, "actor_id": actor.id if actor else None},
            )
            self._record_changed("created", lead.record_ref, None, actor)
        return lead

    def update_record(
        self,
        record: RecordLike,
        *,
        actor: User | None,
        values: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        owner: User | str | None = None,
    ) -> Lead | Opportunity:
        """Change a record's fields (edit access required) or owner (share managers only)."""
        ref = as_record(record)
        self.require(actor, ref, Access.EDIT)
        row = self.get(ref)
        allowed = LEAD_FIELDS if ref.entity is EntityType.LEAD else OPP_FIELDS
        values = dict(values or {})
        unknown = set(values) - set(allowed)
        if unknown:
            raise UsageError(f"unknown {ref.entity.value} field(s): {', '.join(sorted(unknown))}")
        if "amount" in values:
            values["amount"] = _amount(values["amount"])
        check_lengths(type(row), values)
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if getattr(row, key) != value:
                changes[key] = value
        if fields:
            merged = {**(row.fields or {}), **fields}
            merged = {k: v for k, v in merged.items() if v is not None}
            if merged != row.fields:
                changes["fields"] = merged
        if owner is not None:
            new_owner = self._active_user(owner, "owner")
            if actor is not None and actor.role not in (Role.ADMIN.value, Role.SALES_MANAGER.value):
                raise PermissionDenied("only an admin or a sales manager may change a record's owner")
            if new_owner.id != row.owner_id:
                changes["owner"] = new_owner.id
        if not changes:
            return row
        model = type(row)
        with self.core.db.atomic():
            # As it was, read in the change's transaction (only when a plugin listens).
            before = load_record_view(ref) if self.core.dispatch.listens_to_records() else None
            model.update(updated_at=self.core.db_now(), **changes).where(model.id == row.id).execute()
            if "owner" in changes:
                # A recipient never holds a share on a record they own.
                self.core.sharing.end_grants(
                    (ref.entity.value, ref.id, changes["owner"]),
                    reason="recipient became the owner",
                    actor=actor,
                )
            self.core.outbox.emit(
                f"{ref.entity.value}.updated",
                ref.entity.value,
                ref.id,
                {"changed": sorted(changes), "actor_id": actor.id if actor else None},
            )
            self._record_changed("updated", ref, before, actor)
        return self.get(ref)

    def add_opportunity(
        self,
        *,
        lead: int,
        name: str,
        type: str,
        owner: User | str,
        actor: User | None,
        stage: str = "prospecting",
        amount: float | str = 0,
        ref: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Opportunity:
        lead_ref = RecordRef(EntityType.LEAD, int(lead))
        self.require(actor, lead_ref, Access.EDIT)  # an opportunity is made on a lead one may edit
        if not name or not name.strip():
            raise UsageError("an opportunity needs a name")
        check_lengths(Opportunity, {"name": name.strip(), "type": type.strip(), "stage": stage, "ref": ref})
        owner_user = self._active_user(owner, "owner")
        self.core.gate.require_create(actor, owner_user)
        amount_value = _amount(amount)
        now = self.core.db_now()
        with self.core.db.atomic():
            opp = Opportunity.create(
                lead=lead_ref.id,
                name=name.strip(),
                type=type.strip(),
                stage=stage,
                amount=amount_value,
                owner=owner_user.id,
                ref=ref,
                fields=fields or {},
                created_at=now,
                updated_at=now,
            )
            self.core.outbox.emit(
                "opportunity.created",
                "opportunity",
                opp.id,
                {
                    "owner_id": owner_user.id,
                    "lead_id": lead_ref.id,
                    "type": opp.type,
                    "actor_id": actor.id if actor else None,
                },
            )
            self._record_changed("created", opp.record_ref, None, actor)
        return opp

    def _record_changed(
        self, kind: str, ref: RecordRef, before: RecordView | None, actor: User | None
    ) -> None:
        """Queue ``sharetui_record_changed`` for after commit (nothing when no plugin
        listens). Call inside the change's transaction, after the change."""
        if not self.core.dispatch.listens_to_records():
            return
        after = load_record_view(ref) if kind != "deleted" else None
        changed: list[str] = []
        if before is not None and after is not None:
            for key in ("name", "stage", "owner"):
                if getattr(before, key) != getattr(after, key):
                    changed.append(key)
            changed += [k for k in after.values if before.values.get(k) != after.values[k]]
            names = sorted(set(before.fields) | set(after.fields))
            changed += [f"fields.{k}" for k in names if before.fields.get(k) != after.fields.get(k)]
        by = actor.username if actor is not None else None
        if by is None and (ambient := ambient_actor()) is not None:
            person = self.core.users.find(ambient)
            by = person.username if person is not None else None
        self.core.dispatch.after_commit(
            RecordChange(kind, ref, before, after, by, self.core.now(), tuple(changed))  # type: ignore[arg-type]
        )

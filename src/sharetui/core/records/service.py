"""Leads, opportunities, activity types, activities and tasks.

Every change runs in one transaction that also appends its outbox events.
Edits need edit access to the record (a read share never allows one).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.db.models import Activity, ActivityType, Lead, Opportunity, Task, User, check_lengths
from sharetui.db.sql import Statement
from sharetui.domain.records import RecordLike, RecordRef, as_record
from sharetui.domain.roles import Access, EntityType, Role
from sharetui.domain.time import to_db
from sharetui.errors import NotFound, PermissionDenied, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

LEAD_FIELDS = ("name", "email", "phone", "company", "stage", "source")
OPP_FIELDS = ("name", "type", "stage", "amount")


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


def activity_dict(a: Activity) -> dict[str, Any]:
    from sharetui.domain.time import iso

    return {
        "id": a.id,
        "type": a.type.name,
        "lead_id": a.lead_id,
        "opportunity_id": a.opportunity_id,
        "owner": a.owner.username if a.owner_id else None,
        "note": a.note,
        "fields": a.fields or {},
        "status": a.status,
        "occurred_at": iso(a.occurred_at),
        "completed_at": iso(a.completed_at),
        "deleted": a.deleted_at is not None,
    }


def task_dict(t: Task) -> dict[str, Any]:
    from sharetui.domain.time import iso

    return {
        "id": t.id,
        "lead_id": t.lead_id,
        "opportunity_id": t.opportunity_id,
        "owner": t.owner.username,
        "subject": t.subject,
        "due_at": iso(t.due_at),
        "reminder_at": iso(t.reminder_at),
        "completed_at": iso(t.completed_at),
    }


_RECORD_EXISTS = {
    EntityType.LEAD: Statement("SELECT id FROM leads WHERE id = ?"),
    EntityType.OPPORTUNITY: Statement("SELECT id FROM opportunities WHERE id = ?"),
}
_ACTIVITY_TYPE = Statement("SELECT id, name, entity, captures_owner FROM activity_types WHERE name = ?")
_ACTIVE_USER = Statement("SELECT id, active FROM users WHERE username = ?")
_INSERT_ACTIVITY = Statement(
    "INSERT INTO activities (type_id, lead_id, opportunity_id, owner_id, note, fields, status, occurred_at, "
    "created_at, updated_at, completed_at, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class RecordService:
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
        model = Lead if ref.entity is EntityType.LEAD else Opportunity
        return model.select().where(model.id == ref.id).exists()

    def activity(self, activity_id: int) -> Activity:
        row = Activity.get_or_none(Activity.id == activity_id)
        if row is None:
            raise NotFound(f"activity {activity_id} does not exist")
        return row

    def task(self, task_id: int) -> Task:
        row = Task.get_or_none(Task.id == task_id)
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        return row

    def activities_of(self, ref: RecordRef, *, include_deleted: bool = False) -> list[Activity]:
        col = Activity.lead if ref.entity is EntityType.LEAD else Activity.opportunity
        query = Activity.select().where(col == ref.id).order_by(Activity.occurred_at, Activity.id)
        if not include_deleted:
            query = query.where(Activity.deleted_at.is_null())
        return list(query)

    def tasks_of(self, ref: RecordRef) -> list[Task]:
        col = Task.lead if ref.entity is EntityType.LEAD else Task.opportunity
        return list(Task.select().where(col == ref.id).order_by(Task.due_at, Task.id))

    def activity_type(self, name: str) -> ActivityType:
        row = ActivityType.get_or_none(ActivityType.name == name.strip())
        if row is None:
            known = ", ".join(t.name for t in ActivityType.select().order_by(ActivityType.name))
            raise NotFound(f"unknown activity type {name!r}" + (f" (known: {known})" if known else ""))
        return row

    def activity_types(self) -> list[ActivityType]:
        return list(ActivityType.select().order_by(ActivityType.entity, ActivityType.name))

    # -- permission helpers --------------------------------------------------
    def require(self, actor: User | None, ref: RecordRef, action: Access) -> None:
        if actor is None:
            return
        if not self.core.access.can(actor.id, ref, action):
            raise PermissionDenied(f"{actor.username} may not {action.label} {ref}")

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
        if actor is not None and actor.role == Role.SALES.value and owner_user.id != actor.id:
            raise PermissionDenied(f"{actor.username} may only create leads they own")
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
            self.core.outbox.emit("lead.created", "lead", lead.id, {"owner_id": owner_user.id})
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
        row = self.get(ref)
        allowed = LEAD_FIELDS if ref.entity is EntityType.LEAD else OPP_FIELDS
        values = dict(values or {})
        unknown = set(values) - set(allowed)
        if unknown:
            raise UsageError(f"unknown {ref.entity.value} field(s): {', '.join(sorted(unknown))}")
        if "amount" in values:
            values["amount"] = _amount(values["amount"])
        check_lengths(type(row), values)
        self.require(actor, ref, Access.EDIT)
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
        self.get(lead_ref)
        if not name or not name.strip():
            raise UsageError("an opportunity needs a name")
        check_lengths(Opportunity, {"name": name.strip(), "type": type.strip(), "stage": stage, "ref": ref})
        owner_user = self._active_user(owner, "owner")
        if actor is not None:
            if actor.role == Role.MARKETING.value:
                raise PermissionDenied(f"{actor.username} ({actor.role}) may not create opportunities")
            if actor.role == Role.SALES.value:
                if owner_user.id != actor.id:
                    raise PermissionDenied(f"{actor.username} may only create opportunities they own")
                self.require(actor, lead_ref, Access.EDIT)
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
                {"owner_id": owner_user.id, "lead_id": lead_ref.id, "type": opp.type},
            )
        return opp

    # -- activity types and activities -------------------------------------------
    def add_activity_type(
        self,
        name: str,
        *,
        entity: EntityType | str = EntityType.LEAD,
        captures_owner: bool = True,
        actor: User | None,
    ) -> ActivityType:
        if actor is not None and actor.role != Role.ADMIN.value:
            raise PermissionDenied("only an admin may add activity types")
        clean = name.strip()
        if not clean:
            raise UsageError("an activity type needs a name")
        check_lengths(ActivityType, {"name": clean})
        if ActivityType.get_or_none(ActivityType.name == clean) is not None:
            raise UsageError(f"activity type {clean!r} already exists")
        kind = EntityType.parse(entity) if isinstance(entity, str) else entity
        with self.core.db.atomic():
            row = ActivityType.create(name=clean, entity=kind.value, captures_owner=captures_owner)
            self.core.outbox.emit("activity_type.created", None, None, {"id": row.id, "name": clean})
        return row

    def post_activity(
        self,
        record: RecordLike,
        *,
        type: str,
        actor: User | None,
        owner: User | str | None = None,
        note: str = "",
        fields: dict[str, Any] | None = None,
        status: str = "open",
        occurred_at: datetime | None = None,
        ref: str | None = None,
    ) -> Activity:
        """Post an activity on a lead or opportunity (edit access to the record)."""
        target = as_record(record)
        # Posting feeds the automations (one per call, at volume): compiled statements,
        # the Peewee lookups only to raise their errors.
        if _RECORD_EXISTS[target.entity].one((target.id,)) is None:
            self.get(target)
        found = _ACTIVITY_TYPE.one((type.strip(),))
        atype = (
            ActivityType(id=found[0], name=found[1], entity=found[2], captures_owner=bool(found[3]))
            if found
            else self.activity_type(type)
        )
        if atype.entity != target.entity.value:
            raise UsageError(
                f"activity type {atype.name!r} applies to {atype.entity}s, not {target.entity.value}s"
            )
        if status not in ("open", "completed"):
            raise UsageError(f"activity status must be open or completed, not {status!r}")
        owner_user = None
        if owner is not None:
            if not atype.captures_owner:
                raise UsageError(f"activity type {atype.name!r} does not capture an owner")
            person = _ACTIVE_USER.one((owner.strip().lower(),)) if isinstance(owner, str) else None
            if person is not None and person[1]:
                owner_user = User(id=person[0], active=True)
            else:  # a User, an id, unknown or deactivated: the full lookup and its errors
                owner_user = self._active_user(owner, "activity owner")
        self.require(actor, target, Access.EDIT)
        now = self.core.db_now()
        values = {
            "type": atype.id,
            "lead": target.id if target.entity is EntityType.LEAD else None,
            "opportunity": target.id if target.entity is EntityType.OPPORTUNITY else None,
            "owner": owner_user.id if owner_user else None,
            "note": note,
            "fields": fields or {},
            "status": status,
            "occurred_at": to_db(occurred_at) or now,
            "created_at": now,
            "updated_at": now,
            "completed_at": now if status == "completed" else None,
            "ref": ref,
        }
        with self.core.db.atomic():
            row = [*values.values()]
            row[5] = json.dumps(row[5], sort_keys=True, ensure_ascii=False)  # as JSONField stores it
            act = Activity(id=_INSERT_ACTIVITY.insert(row), **values)
            self.core.outbox.emit(
                "activity.created",
                target.entity.value,
                target.id,
                {
                    "activity_id": act.id,
                    "type": atype.name,
                    "owner_id": act.owner_id,
                    "actor_id": actor.id if actor else None,
                },
            )
        return act

    def update_activity(
        self,
        activity_id: int,
        *,
        actor: User | None,
        status: str | None = None,
        fields: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> Activity:
        """Change an activity. Completing it ends the ``until_completed`` shares made in it."""
        act = self.activity(activity_id)
        if act.deleted_at is not None:
            raise UsageError(f"activity {activity_id} was deleted")
        target = self._activity_record(act)
        if status is not None and status not in ("open", "completed"):
            raise UsageError(f"activity status must be open or completed, not {status!r}")
        if actor is not None and act.owner_id != actor.id:
            self.require(actor, target, Access.EDIT)
        changes: dict[str, Any] = {}
        now = self.core.db_now()
        if status is not None and status != act.status:
            changes["status"] = status
            changes["completed_at"] = now if status == "completed" else None
        if fields:
            merged = {k: v for k, v in {**(act.fields or {}), **fields}.items() if v is not None}
            if merged != act.fields:
                changes["fields"] = merged
        if note is not None and note != act.note:
            changes["note"] = note
        if not changes:
            return act
        with self.core.db.atomic():
            Activity.update(updated_at=now, **changes).where(Activity.id == act.id).execute()
            if changes.get("status") == "completed" and target.entity is EntityType.LEAD:
                self.core.sharing.end_context_grants(
                    act.id,
                    reason=f"activity {act.id} completed",
                    actor=actor,
                    only_until_completed=True,
                )
            self.core.outbox.emit(
                "activity.updated",
                target.entity.value,
                target.id,
                {
                    "activity_id": act.id,
                    "type": act.type.name,
                    "owner_id": act.owner_id,
                    "changed": sorted(changes),
                    "status": changes.get("status", act.status),
                    "actor_id": actor.id if actor else None,
                },
            )
        return self.activity(activity_id)

    def delete_activity(self, activity_id: int, *, actor: User | None) -> int:
        """Delete an activity; the shares made in its context end. Returns how many."""
        act = self.activity(activity_id)
        if act.deleted_at is not None:
            raise UsageError(f"activity {activity_id} was already deleted")
        target = self._activity_record(act)
        self.require(actor, target, Access.EDIT)
        with self.core.db.atomic():
            Activity.update(deleted_at=self.core.db_now()).where(Activity.id == act.id).execute()
            ended = self.core.sharing.end_context_grants(
                act.id,
                reason=f"activity {act.id} deleted",
                actor=actor,
                only_until_completed=False,
            )
            self.core.outbox.emit("activity.deleted", target.entity.value, target.id, {"activity_id": act.id})
        return ended

    @staticmethod
    def _activity_record(act: Activity) -> RecordRef:
        if act.lead_id is not None:
            return RecordRef(EntityType.LEAD, act.lead_id)
        return RecordRef(EntityType.OPPORTUNITY, act.opportunity_id)

    # -- tasks ---------------------------------------------------------------
    def add_task(
        self,
        record: RecordLike,
        *,
        owner: User | str,
        subject: str,
        actor: User | None,
        due_at: datetime | None = None,
        reminder_at: datetime | None = None,
        ref: str | None = None,
        completed_at: datetime | None = None,
    ) -> Task:
        target = as_record(record)
        self.get(target)
        if not subject or not subject.strip():
            raise UsageError("a task needs a subject")
        check_lengths(Task, {"subject": subject.strip(), "ref": ref})
        owner_user = self._active_user(owner, "task owner")
        if due_at and reminder_at and reminder_at > due_at:
            raise UsageError("a task's reminder must not come after it is due")
        self.require(actor, target, Access.EDIT)
        now = self.core.db_now()
        with self.core.db.atomic():
            task = Task.create(
                lead=target.id if target.entity is EntityType.LEAD else None,
                opportunity=target.id if target.entity is EntityType.OPPORTUNITY else None,
                owner=owner_user.id,
                subject=subject.strip(),
                due_at=to_db(due_at),
                reminder_at=to_db(reminder_at),
                completed_at=to_db(completed_at),
                created_at=now,
                updated_at=now,
                ref=ref,
            )
            self.core.outbox.emit(
                "task.created",
                target.entity.value,
                target.id,
                {"task_id": task.id, "owner_id": owner_user.id},
            )
        return task

    def complete_task(self, task_id: int, *, actor: User | None) -> Task:
        task = self.task(task_id)
        if task.completed_at is not None:
            raise UsageError(f"task {task_id} is already completed")
        target = (
            RecordRef(EntityType.LEAD, task.lead_id)
            if task.lead_id is not None
            else RecordRef(EntityType.OPPORTUNITY, task.opportunity_id)
        )
        if actor is not None and actor.id != task.owner_id:
            self.require(actor, target, Access.EDIT)
        now = self.core.db_now()
        with self.core.db.atomic():
            Task.update(completed_at=now, updated_at=now).where(Task.id == task.id).execute()
            self.core.outbox.emit(
                "task.completed",
                target.entity.value,
                target.id,
                {"task_id": task.id, "owner_id": task.owner_id},
            )
        return self.task(task_id)

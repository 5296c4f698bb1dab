"""Activity types and activities: post, update and delete activities on a lead or
an opportunity. Completing or deleting an activity ends the shares made in its
context. Posting feeds the automations at volume, so its reads are compiled once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.clock import FROZEN_YEARS, as_utc
from sharetui.db.models import Activity, ActivityType, User, check_lengths
from sharetui.db.sql import Statement
from sharetui.domain.records import RecordLike, RecordRef, as_record
from sharetui.domain.roles import Access, EntityType, Role
from sharetui.domain.text import find_text_problem, shorten
from sharetui.domain.time import to_db
from sharetui.errors import NotFound, NotReadable, PermissionDenied, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core


# An activity's note: long enough for a pasted e-mail, short enough that no caller (the
# HTTP API takes a megabyte per body) stores pages of text in every list of activities.
MAX_NOTE = 10_000


def check_activity_input(
    note: str | None, fields: dict[str, Any] | None, occurred_at: datetime | None = None
) -> None:
    """Refuse what no face should store (:class:`UsageError`, nothing written): a note
    over :data:`MAX_NOTE` characters, fields holding text no database stores or a
    number that is not finite (NaN, an infinity: JSON has neither), and a time outside
    the years 1900 to 8999 (as ``SHARETUI_NOW``): shown in a zone east of UTC, 9999-12-31
    23:59 is past the last year a datetime holds."""
    if note is not None and len(note) > MAX_NOTE:
        raise UsageError(f"the note is {len(note)} characters long: at most {MAX_NOTE} fit")
    if fields:
        problem = find_text_problem(fields, "fields")
        if problem:
            raise UsageError(problem)
    if occurred_at is not None and as_utc(occurred_at).year not in FROZEN_YEARS:
        shown = as_utc(occurred_at).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
        raise UsageError(f"the activity's time {shown} must fall between the years 1900 and 8999")


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


class Activities:
    """The activities part of :class:`~sharetui.core.records.RecordService` (a mixin:
    it uses the service's ``get``, ``require`` and ``_active_user``)."""

    core: Core

    def activity_for(
        self, activity_id: int, actor: User | None, action: Access, *, owner_may: bool = False
    ) -> Activity:
        """The activity, for ``actor`` to read or change: its record must allow it.

        A missing activity and one on a record ``actor`` may not read answer alike.
        ``owner_may``: the activity's owner may change it with read access to the
        record (an evaluator completing their evaluation); once that access ends,
        owning the activity is not enough (DESIGN §9).
        """
        act = Activity.get_or_none(Activity.id == activity_id)
        if act is None or not self.core.gate.can_read(actor, self._activity_record(act)):
            raise NotReadable(f"no activity {activity_id} you may read")
        if owner_may and actor is not None and act.owner_id == actor.id and actor.role == Role.SALES.value:
            return act  # marketing only reads activities, even its own (DESIGN §9)
        self.require(actor, self._activity_record(act), action)
        return act

    def activity(self, activity_id: int) -> Activity:
        row = Activity.get_or_none(Activity.id == activity_id)
        if row is None:
            raise NotFound(f"activity {activity_id} does not exist")
        return row

    def activities_of(self, ref: RecordRef, *, include_deleted: bool = False) -> list[Activity]:
        col = Activity.lead if ref.entity is EntityType.LEAD else Activity.opportunity
        query = Activity.select().where(col == ref.id).order_by(Activity.occurred_at, Activity.id)
        if not include_deleted:
            query = query.where(Activity.deleted_at.is_null())
        return list(query)

    def activity_type(self, name: str) -> ActivityType:
        row = ActivityType.get_or_none(ActivityType.name == name.strip())
        if row is None:
            known = ", ".join(t.name for t in ActivityType.select().order_by(ActivityType.name))
            raise NotFound(
                shorten(f"unknown activity type {name!r}", 140) + (f" (known: {known})" if known else "")
            )
        return row

    def activity_types(self) -> list[ActivityType]:
        return list(ActivityType.select().order_by(ActivityType.entity, ActivityType.name))

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
        check_activity_input(note, fields, occurred_at)
        # Posting feeds the automations (one per call, at volume): compiled statements,
        # the Peewee lookups only to raise their errors.
        if _RECORD_EXISTS[target.entity].one((target.id,)) is None:
            self.require(actor, target, Access.EDIT)  # NotReadable, as for one the actor may not read
            self.get(target)
        if actor is not None:  # the record exists: read just above
            self.core.gate.require_edit(actor, target, found=True)
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
        """Change an activity: edit access to its record, or its owner with read access
        (being its owner is not enough once that access ends). Completing it ends the
        ``until_completed`` shares made in it."""
        act = self.activity_for(activity_id, actor, Access.EDIT, owner_may=True)
        if act.deleted_at is not None:
            raise UsageError(f"activity {activity_id} was deleted")
        check_activity_input(note, fields)
        target = self._activity_record(act)
        if status is not None and status not in ("open", "completed"):
            raise UsageError(f"activity status must be open or completed, not {status!r}")
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
        # As written, not read back: completing it may have ended the share its owner read
        # it through (team mode's row security would then hide it).
        for name, value in {**changes, "updated_at": now}.items():
            setattr(act, name, value)
        return act

    def delete_activity(self, activity_id: int, *, actor: User | None) -> int:
        """Delete an activity; the shares made in its context end. Returns how many."""
        act = self.activity_for(activity_id, actor, Access.EDIT)
        if act.deleted_at is not None:
            raise UsageError(f"activity {activity_id} was already deleted")
        target = self._activity_record(act)
        with self.core.db.atomic():
            Activity.update(deleted_at=self.core.db_now()).where(Activity.id == act.id).execute()
            ended = self.core.sharing.end_context_grants(
                act.id,
                reason=f"activity {act.id} deleted",
                actor=actor,
                only_until_completed=False,
            )
            self.core.outbox.emit(
                "activity.deleted",
                target.entity.value,
                target.id,
                {"activity_id": act.id, "actor_id": actor.id if actor else None},
            )
        return ended

    @staticmethod
    def _activity_record(act: Activity) -> RecordRef:
        if act.lead_id is not None:
            return RecordRef(EntityType.LEAD, act.lead_id)
        return RecordRef(EntityType.OPPORTUNITY, act.opportunity_id)

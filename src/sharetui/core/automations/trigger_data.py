"""Trigger data: which trigger an outbox event stands for (:func:`trigger_for`), and
what an automation's conditions and actions may read about it (``trigger_data``):
the record, its lead, the activity or task the event is about, and whose it is.

Each read is one compiled statement (an event is decided per record, at volume).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sharetui.core.sharing import facts
from sharetui.core.sharing.facts import Person
from sharetui.db.batching import batch_of, memo_of
from sharetui.db.models import Activity, Automation, OutboxEvent, Task, load_fields
from sharetui.db.sql import Statement
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import from_db, iso, to_db

if TYPE_CHECKING:
    from sharetui.core.service import Core

# What conditions read about a record: these columns, shaped by :func:`record_data`.
RECORD_SELECT = {
    EntityType.LEAD: (
        "SELECT r.id, r.name, r.email, r.phone, r.company, r.stage, r.source, r.owner_id, u.username, "
        "r.fields, r.created_at, r.updated_at FROM leads r JOIN users u ON u.id = r.owner_id"
    ),
    EntityType.OPPORTUNITY: (
        "SELECT r.id, r.name, r.type, r.stage, r.amount, r.lead_id, r.owner_id, u.username, "
        "r.fields, r.created_at, r.updated_at FROM opportunities r JOIN users u ON u.id = r.owner_id"
    ),
}
_RECORD_SQL = {
    entity: Statement(f"{sql} WHERE r.id = ?", reads=(entity.table, "users"))
    for entity, sql in RECORD_SELECT.items()
}


def record_data(entity: EntityType, row: tuple[Any, ...], now: datetime) -> dict[str, Any]:
    """A row of :data:`RECORD_SELECT` as conditions read it (``lead.stage``,
    ``opportunity.fields.score``, ``lead.days_since_update``...): ``record_dict``'s keys,
    with the owner's username and id and the record's ages in days at ``now``."""
    if entity is EntityType.LEAD:
        rid, name, email, phone, company, stage, source, owner_id, owner, fields, created, updated = row
        data: dict[str, Any] = {
            "id": rid,
            "name": name,
            "email": email,
            "phone": phone,
            "company": company,
            "stage": stage,
            "source": source,
            "entity": "lead",
        }
    else:
        rid, name, kind, stage, amount, lead_id, owner_id, owner, fields, created, updated = row
        data = {
            "id": rid,
            "name": name,
            "type": kind,
            "stage": stage,
            "amount": amount,
            "entity": "opportunity",
            "lead_id": lead_id,
        }
    data["owner"] = owner
    data["fields"] = load_fields(fields) or {}
    data["created_at"] = iso(created)
    data["updated_at"] = iso(updated)
    data["owner_id"] = owner_id
    data["days_since_update"] = (now - from_db(updated)).days
    data["days_since_created"] = (now - from_db(created)).days
    return data


# The activity as trigger data shows it (the first 12 columns), then its owner as the
# share path looks people up (a batch memoes both: see TriggerData.prefetch_events).
_ACTIVITY_SELECT = (
    "SELECT a.id, t.name, a.lead_id, a.opportunity_id, u.username, a.note, a.fields, a.status, "
    "a.occurred_at, a.completed_at, a.deleted_at, t.captures_owner, a.owner_id, u.role, u.active "
    "FROM activities a JOIN activity_types t ON t.id = a.type_id LEFT JOIN users u ON u.id = a.owner_id"
)
_ACTIVITY_READS = ("activities", "activity_types", "users")
_ACTIVITY_SQL = Statement(f"{_ACTIVITY_SELECT} WHERE a.id = ?", reads=_ACTIVITY_READS)
_TASK_SQL = Statement(
    "SELECT t.id, t.lead_id, t.opportunity_id, u.username, t.subject, t.due_at, t.reminder_at, "
    "t.completed_at FROM tasks t JOIN users u ON u.id = t.owner_id WHERE t.id = ?",
    reads=("tasks", "users"),
)

# outbox topic (+ entity) -> trigger type
_ACTIVITY = {"lead": "activity_on_lead", "opportunity": "activity_on_opportunity"}


def trigger_for(topic: str, entity_type: str | None) -> str | None:
    if topic == "lead.created":
        return "new_lead"
    if topic == "lead.updated":
        return "lead_update"
    if topic == "opportunity.created":
        return "new_opportunity"
    if topic == "opportunity.updated":
        return "opportunity_update"
    if topic == "activity.created" and entity_type in _ACTIVITY:
        return f"new_{_ACTIVITY[entity_type]}"
    if topic == "activity.updated" and entity_type in _ACTIVITY:
        return f"activity_update_on_{entity_type}"
    if entity_type == "opportunity" and topic == "task.created":
        return "task_created_on_opportunity"
    if entity_type == "opportunity" and topic == "task.completed":
        return "task_completed_on_opportunity"
    if entity_type == "opportunity" and topic == "task.reminder_due":
        return "task_reminder_for_opportunity"
    if topic == "schedule.fired":
        return "schedule"
    if topic.startswith("trigger."):
        return topic.removeprefix("trigger.")
    return None


class TriggerData:
    """The trigger-data part of :class:`~sharetui.core.automations.AutomationService`
    (a mixin: the service is the one object, this is where its trigger data is built)."""

    core: Core

    def _record_data(self, ref: RecordRef) -> dict[str, Any] | None:
        """:func:`record_data` of the record (one statement, or none in a batch that read it)."""
        memo = memo_of(self.core.db)
        row = memo.get(("record", ref.entity, ref.id), False) if memo is not None else False
        if row is False:
            row = _RECORD_SQL[ref.entity].one((ref.id,))
        return None if row is None else record_data(ref.entity, row, self.core.now())

    def prefetch_events(self, events: list[OutboxEvent], candidates: Any) -> list[int | None]:
        """In a batch of deferred writes, read what deciding these events reads, a few
        statements for all of them instead of several an event: their records, their
        activities, the people who caused them, and for a share of each record with its
        activity's owner (the common automation) what the share path asks
        (:func:`sharetui.core.sharing.facts.prefetch`). ``candidates(trigger, event_id)``:
        the automations that may run. The memo holds these only while nothing else
        changes a row (db/batching.py); whatever it misses is read as before.

        Returns, event by event, whom that share would be with (the activity's owner's id;
        None: no such share expected), for the batch to take their share locks at once."""
        memo = memo_of(self.core.db)
        if memo is None:
            return []
        batch = batch_of(self.core.db)  # SQLite's: its held runs are counted by the guard below
        refs: dict[EntityType, set[int]] = {entity: set() for entity in EntityType}
        automations: dict[EntityType, set[int]] = {entity: set() for entity in EntityType}
        activities: set[int] = set()
        actors: set[int] = set()
        expected: list[int | None] = []  # per event: the activity whose owner a share may be with
        for event in events:
            expected.append(None)
            trigger = trigger_for(event.topic, event.entity_type)
            payload = event.payload
            if trigger is None or trigger == "schedule" or not isinstance(payload, dict):
                continue
            runs = candidates(trigger, event.id)
            if not runs:
                continue
            if event.entity_type == "lead" and type(payload.get("activity_id")) is int:
                expected[-1] = payload["activity_id"]
            if event.entity_type in ("lead", "opportunity") and type(event.entity_id) is int:
                refs[EntityType(event.entity_type)].add(event.entity_id)
                automations[EntityType(event.entity_type)].update(a.id for a in runs)
            if type(payload.get("activity_id")) is int:
                activities.add(payload["activity_id"])
            if type(payload.get("actor_id")) is int:
                actors.add(payload["actor_id"])
        for entity, ids in refs.items():
            found = {
                row[0]: row
                for row in _rows_in(f"{RECORD_SELECT[entity]} WHERE r.id IN", (entity.table, "users"), ids)
            }
            owner_at = 7 if entity is EntityType.LEAD else 6
            for ident in ids:
                row = found.get(ident)
                memo[("record", entity, ident)] = row
                memo[("owner", entity, ident)] = None if row is None else row[owner_at]
        shares: list[tuple[RecordRef, str]] = []
        for row in _rows_in(f"{_ACTIVITY_SELECT} WHERE a.id IN", _ACTIVITY_READS, activities):
            memo[("activity", row[0])] = row
            # What the share path checks of a context activity (share.py's _CONTEXT_SQL).
            memo[("context", row[0])] = (row[2], row[12], row[7], row[10], row[4])
            if row[4] is not None and row[12] is not None:
                memo[("person", row[4])] = Person(row[12], row[4], row[13], bool(row[14]))
                if row[2] is not None:
                    shares.append((RecordRef(EntityType.LEAD, row[2]), row[4]))
        for row in _rows_in("SELECT id, username, role, active FROM users WHERE id IN", ("users",), actors):
            memo[("person-id", row[0])] = row
        # The loop guard's counts: the runs of each automation on each record in the last day.
        since = to_db(self.core.now() - timedelta(days=1))
        for entity, ids in refs.items():
            if not ids or (batch is not None and batch.held.get("automation_runs")):
                continue
            counts: dict[tuple[int, int], int] = {}
            for auto in sorted(automations[entity]):
                rows = _rows_in(
                    "SELECT entity_id, COUNT(*) FROM automation_runs WHERE automation_id = ? "
                    "AND entity_type = ? AND started_at > ? AND dry_run = ? AND status <> 'skipped' "
                    "AND entity_id IN",
                    ("automation_runs",),
                    ids,
                    before=(auto, entity.value, since, False),
                    suffix=" GROUP BY entity_id",
                )
                counts.update({(auto, ident): count for ident, count in rows})
                for ident in ids:
                    memo[("guard", auto, entity.value, ident, since)] = counts.get((auto, ident), 0)
        facts.prefetch(shares, self.core.now())
        contexts = [None if a is None else memo.get(("context", a)) for a in expected]
        return [None if c is None or c[3] is not None else c[1] for c in contexts]

    def trigger_data(self, trigger: str, ref: RecordRef | None, payload: dict[str, Any]) -> dict[str, Any]:
        """Everything conditions and actions may read: lead, opportunity, activity, task."""
        data: dict[str, Any] = {"event": dict(payload)}
        if ref is not None:
            record = self._record_data(ref)
            if record is not None:
                data[ref.entity.value] = record
                if ref.entity is EntityType.OPPORTUNITY:
                    lead = self._record_data(RecordRef(EntityType.LEAD, record["lead_id"]))
                    if lead:
                        data["lead"] = lead
        if payload.get("activity_id"):
            memo = memo_of(self.core.db)
            act = memo.get(("activity", payload["activity_id"])) if memo is not None else None
            if act is None:
                act = _ACTIVITY_SQL.one((payload["activity_id"],))
            if act is not None:  # as records.activity_dict, in one statement
                keys = ("id", "type", "lead_id", "opportunity_id", "owner", "note", "fields", "status")
                data["activity"] = dict(zip(keys, act[:8], strict=True))
                data["activity"]["fields"] = load_fields(act[6]) or {}
                data["activity"]["occurred_at"] = iso(act[8])
                data["activity"]["completed_at"] = iso(act[9])
                data["activity"]["deleted"] = act[10] is not None
                data["activity"]["captures_owner"] = bool(act[11])
        if payload.get("task_id"):
            task = _TASK_SQL.one((payload["task_id"],))
            if task is not None:  # as records.task_dict, in one statement
                tid, lead_id, opp_id, owner, subject, due, reminder, completed = task
                data["task"] = {
                    "id": tid,
                    "lead_id": lead_id,
                    "opportunity_id": opp_id,
                    "owner": owner,
                    "subject": subject,
                    "due_at": iso(due),
                    "reminder_at": iso(reminder),
                    "completed_at": iso(completed),
                }
        owner, missing = self._owner_in_trigger(trigger, data)
        data["owner_in_trigger"] = owner
        if missing:
            data["owner_missing_reason"] = missing
        return data

    @staticmethod
    def _owner_in_trigger(trigger: str, data: dict[str, Any]) -> tuple[str | None, str | None]:
        if "activity" in trigger:
            act = data.get("activity") or {}
            if act.get("owner"):
                return act["owner"], None
            if not act.get("captures_owner", True):
                return None, f"activity type {act.get('type')!r} does not capture an owner"
            return None, f"activity {act.get('id')} has no owner"
        if trigger.startswith("task_"):
            task = data.get("task") or {}
            return (task.get("owner"), None) if task.get("owner") else (None, "the task has no owner")
        if trigger in ("new_opportunity", "opportunity_update"):
            return (data.get("opportunity") or {}).get("owner"), None
        return None, f"trigger {trigger} has no owner (share with a named user instead)"

    def _sample_payload(self, automation: Automation, record: RecordRef) -> dict[str, Any]:
        """For a dry run: the latest activity or task the trigger would be about."""
        trigger = automation.trigger_type
        if "activity" in trigger:
            types = (automation.trigger_config or {}).get("activity_types")
            col = Activity.lead if record.entity is EntityType.LEAD else Activity.opportunity
            query = Activity.select().where((col == record.id) & Activity.deleted_at.is_null())
            acts = [a for a in query.order_by(Activity.id.desc()) if not types or a.type.name in types]
            return {"activity_id": acts[0].id} if acts else {}
        if trigger.startswith("task_"):
            col = Task.lead if record.entity is EntityType.LEAD else Task.opportunity
            task = Task.select().where(col == record.id).order_by(Task.id.desc()).first()
            return {"task_id": task.id} if task else {}
        return {}


def _rows_in(
    head: str, reads: tuple[str, ...], ids: set[int], *, before: tuple[Any, ...] = (), suffix: str = ""
) -> list[tuple[Any, ...]]:
    """Rows of ``head (?, ...)suffix`` for ``ids`` (``before``: the parameters ahead of
    them), a few hundred at a time."""
    items = sorted(ids)
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(items), 500):
        part = items[start : start + 500]
        sql = f"{head} ({', '.join('?' * len(part))}){suffix}"
        rows += Statement(sql, reads=reads).all([*before, *part])
    return rows

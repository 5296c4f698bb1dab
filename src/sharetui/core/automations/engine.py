"""The automation engine: outbox events -> triggers -> conditions -> actions.

Each outbox event is processed in one transaction with everything it causes:
its runs, their steps, the grants and history they write, and the mark that
the event is done. A crash anywhere rolls all of it back, and the retry does it
once; a unique (automation, event, record) run and (run, step) step make a
second run or a repeated step impossible. Events are taken in id order; on
PostgreSQL workers share them with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sharetui.core.automations.definitions import (
    Definition,
    evaluate,
    parse_definition,
    validate_definition,
)
from sharetui.db.connection import is_lock_conflict, is_sqlite
from sharetui.db.models import (
    Activity,
    Automation,
    AutomationRun,
    AutomationStep,
    Lead,
    Opportunity,
    OutboxEvent,
    ScheduleState,
    Task,
    User,
)
from sharetui.db.sql import Statement
from sharetui.domain.ids import MAX_ID, as_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType, Role
from sharetui.domain.time import from_db, iso, to_db
from sharetui.errors import NotFound, PermissionDenied, UsageError
from sharetui.sdk.types import ActionContext, Outcome

if TYPE_CHECKING:
    from sharetui.core.service import Core

log = logging.getLogger("sharetui.automations")

# Events no automation can act on, marked processed per statement (see _mark_idle).
_IDLE_BATCH = 5_000
# Events decided per transaction (each in a savepoint of its own): a commit costs about
# as much as deciding an event, and a crash still loses and duplicates nothing.
_EVENT_BATCH = 100

# The engine's per-event reads and writes, compiled once (a Peewee query costs ~20x).
_CLAIM_SQL = Statement(
    "SELECT id, topic, entity_type, entity_id, payload, attempts FROM outbox "
    "WHERE processed_at IS NULL ORDER BY id LIMIT ?"
)
_OLDEST_WAITING = Statement(
    "SELECT id, topic, entity_type FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT 1"
)
_EVENT_DONE = Statement("UPDATE outbox SET processed_at = ?, attempts = attempts + 1 WHERE id = ?")
_RECORD_SQL = {
    EntityType.LEAD: Statement(
        "SELECT r.id, r.name, r.email, r.phone, r.company, r.stage, r.source, r.owner_id, u.username, "
        "r.fields, r.created_at, r.updated_at FROM leads r JOIN users u ON u.id = r.owner_id WHERE r.id = ?"
    ),
    EntityType.OPPORTUNITY: Statement(
        "SELECT r.id, r.name, r.type, r.stage, r.amount, r.lead_id, r.owner_id, u.username, "
        "r.fields, r.created_at, r.updated_at FROM opportunities r JOIN users u ON u.id = r.owner_id "
        "WHERE r.id = ?"
    ),
}
_ACTIVITY_SQL = Statement(
    "SELECT a.id, t.name, a.lead_id, a.opportunity_id, u.username, a.note, a.fields, a.status, "
    "a.occurred_at, a.completed_at, a.deleted_at, t.captures_owner FROM activities a "
    "JOIN activity_types t ON t.id = a.type_id LEFT JOIN users u ON u.id = a.owner_id WHERE a.id = ?"
)
_TASK_SQL = Statement(
    "SELECT t.id, t.lead_id, t.opportunity_id, u.username, t.subject, t.due_at, t.reminder_at, "
    "t.completed_at FROM tasks t JOIN users u ON u.id = t.owner_id WHERE t.id = ?"
)
_GUARD_SQL = Statement(
    "SELECT COUNT(*) FROM automation_runs WHERE automation_id = ? AND entity_type = ? AND entity_id = ? "
    "AND started_at > ? AND dry_run = ? AND status <> 'skipped'"
)
_RUN_OF_EVENT = {
    True: Statement(
        "SELECT id, status, reason, trace FROM automation_runs WHERE automation_id = ? AND event_id = ? "
        "AND entity_type = ? AND entity_id = ?"
    ),
    False: Statement(
        "SELECT id, status, reason, trace FROM automation_runs WHERE automation_id = ? AND event_id = ? "
        "AND entity_type IS NULL AND entity_id IS NULL"
    ),
}
_INSERT_RUN = Statement(
    "INSERT INTO automation_runs (automation_id, event_id, trigger_type, entity_type, entity_id, status, "
    "trace, dry_run, started_at, duration_ms) VALUES (?, ?, ?, ?, ?, 'running', '{}', ?, ?, 0)"
)
_FINISH_RUN = Statement(
    "UPDATE automation_runs SET status = ?, reason = ?, trace = ?, finished_at = ?, duration_ms = ? "
    "WHERE id = ?"
)
_STEP_DONE = Statement("SELECT 1 FROM automation_steps WHERE run_id = ? AND step = ?")
_INSERT_STEP = Statement(
    "INSERT INTO automation_steps (run_id, step, action, status, outcome) VALUES (?, ?, ?, ?, ?)"
)


def _json(value: Any) -> str:
    """Text as a ``JSONField`` stores it."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _loads(value: Any) -> Any:
    """A ``JSONField`` read with raw SQL (text) as Peewee would return it."""
    return json.loads(value) if isinstance(value, str) else value


_ANY_PENDING = Statement("SELECT 1 FROM outbox WHERE processed_at IS NULL LIMIT 1")
_CONFLICT_RETRIES = 20  # lock conflicts one process_pending call retries before it gives up

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


@dataclass
class RunReport:
    """What one run did, for the CLI, the TUI and the trace."""

    id: int | None
    automation_id: int
    automation: str
    status: str
    reason: str | None
    record: str | None
    trace: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "automation_id": self.automation_id,
            "automation": self.automation,
            "status": self.status,
            "reason": self.reason,
            "record": self.record,
            "trace": self.trace,
        }

    def summary(self) -> str:
        steps = "; ".join(a["message"] for a in self.trace.get("actions", []) if a.get("message"))
        return f"automation {self.automation!r} {self.status}" + (
            f": {steps}" if steps else f" ({self.reason})" if self.reason else ""
        )


class _Crash(BaseException):
    """Raised only by tests (``crash_after_step``) to stand for a killed process."""


def automation_dict(a: Automation) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "status": a.status,
        "trigger": {"type": a.trigger_type, **(a.trigger_config or {})},
        "conditions": a.conditions or [],
        "actions": a.actions or [],
        "starts_at": iso(a.starts_at),
        "ends_at": iso(a.ends_at),
        "created_by": User.get_by_id(a.created_by).username if a.created_by else None,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    }


def run_dict(r: AutomationRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "automation_id": r.automation_id,
        "event_id": r.event_id,
        "trigger": r.trigger_type,
        "record": f"{r.entity_type} {r.entity_id}" if r.entity_type else None,
        "status": r.status,
        "reason": r.reason,
        "trace": r.trace,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "duration_ms": round(r.duration_ms or 0, 2),
    }


class AutomationService:
    crash_after_step: int | None = None  # test hook: simulate a crash after this step

    def __init__(self, core: Core) -> None:
        self.core = core
        # Published automations by trigger, while a batch of events is processed (else None).
        self._candidate_cache: dict[str, list[Automation]] | None = None

    # -- definitions -------------------------------------------------------------------
    def _require_admin(self, actor: User | None, what: str) -> None:
        if actor is not None and (actor.role != Role.ADMIN.value or not actor.active):
            raise PermissionDenied(f"only an admin may {what} automations ({actor.username} is {actor.role})")

    def parse(self, text: str, source: str = "automation") -> Definition:
        return parse_definition(text, self.core.plugins, source)

    def validate(self, data: dict[str, Any], source: str = "form") -> Definition:
        return validate_definition(data, self.core.plugins, source)

    def add(self, definition: Definition, *, actor: User | None) -> Automation:
        """Save a new automation (admins only). Names are unique."""
        self._require_admin(actor, "create")
        if Automation.get_or_none(Automation.name == definition.name) is not None:
            raise UsageError(f"an automation named {definition.name!r} already exists")
        now = self.core.db_now()
        with self.core.db.atomic():
            row = Automation.create(
                **_columns(definition),
                created_by=actor.id if actor else None,
                created_at=now,
                updated_at=now,
                since_event_id=self._high_water() if definition.status == "published" else None,
            )
            if row.status == "published":
                self._start_schedule(row)
            self.core.outbox.emit("automation.created", None, None, {"automation_id": row.id})
        self._candidate_cache = None if self._candidate_cache is None else {}
        return row

    def update(self, ident: int | str, definition: Definition, *, actor: User | None) -> Automation:
        """Replace an automation's definition (admins only); its runs are kept."""
        self._require_admin(actor, "edit")
        row = self.get(ident)
        clash = Automation.get_or_none((Automation.name == definition.name) & (Automation.id != row.id))
        if clash is not None:
            raise UsageError(f"an automation named {definition.name!r} already exists")
        with self.core.db.atomic():
            Automation.update(
                **_columns(definition),
                updated_at=self.core.db_now(),
                since_event_id=(row.since_event_id or self._high_water())
                if definition.status == "published"
                else None,
            ).where(Automation.id == row.id).execute()
            ScheduleState.delete().where(ScheduleState.automation == row.id).execute()
            fresh = self.get(row.id)
            if fresh.status == "published":
                self._start_schedule(fresh)
        self._candidate_cache = None if self._candidate_cache is None else {}
        return fresh

    def get(self, ident: int | str) -> Automation:
        row = None
        number = ident if isinstance(ident, int) else as_id(str(ident))
        if number is not None and 0 < number <= MAX_ID:
            row = Automation.get_or_none(Automation.id == number)
        if row is None:
            row = Automation.get_or_none(Automation.name == str(ident))
        if row is None:
            raise NotFound(f"automation {ident!r} does not exist")
        return row

    def list(self) -> list[dict[str, Any]]:
        latest = AutomationRun.select(_max_id()).group_by(AutomationRun.automation)
        last_runs = {r.automation_id: r for r in AutomationRun.select().where(AutomationRun.id.in_(latest))}
        out = []
        for a in Automation.select().order_by(Automation.id):
            item = automation_dict(a)
            last = last_runs.get(a.id)
            item["last_run"] = run_dict(last) if last else None
            if a.trigger_type == "schedule":
                item["schedule"] = self.describe_schedule(a)
            out.append(item)
        return out

    def set_status(self, ident: int | str, status: str, *, actor: User | None) -> Automation:
        """Publish or pause (admins only). Publishing a schedule starts it from now."""
        self._require_admin(actor, "publish or pause")
        if status not in ("published", "paused", "draft"):
            raise UsageError(f"unknown status {status!r}")
        row = self.get(ident)
        with self.core.db.atomic():
            changes: dict[str, Any] = {"status": status, "updated_at": self.core.db_now()}
            if status == "published" and row.status != "published":
                changes["since_event_id"] = self._high_water()
            Automation.update(**changes).where(Automation.id == row.id).execute()
            row = self.get(row.id)
            if status == "published":
                self._start_schedule(row)
            self.core.outbox.emit(f"automation.{status}", None, None, {"automation_id": row.id})
        self._candidate_cache = None if self._candidate_cache is None else {}
        return row

    def runs(self, ident: int | str, *, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        row = self.get(ident)
        query = AutomationRun.select().where(AutomationRun.automation == row.id)
        if before is not None:
            query = query.where(AutomationRun.id < before)
        return [run_dict(r) for r in query.order_by(AutomationRun.id.desc()).limit(limit)]

    def describe_schedule(self, a: Automation) -> dict[str, Any]:
        from sharetui.domain.schedules import next_fire, parse_schedule

        cfg = a.trigger_config or {}
        sched = parse_schedule(cfg.get("cron", ""), cfg.get("timezone", "UTC"))
        state = ScheduleState.get_or_none(ScheduleState.automation == a.id)
        after = from_db(state.last_fire_at) if state and state.last_fire_at else self.core.now()
        nxt = next_fire(sched, max(after, self.core.now()) if a.status == "published" else self.core.now())
        return {
            "description": sched.description,
            "next": iso(nxt),
            "misfire": cfg.get("misfire", "latest_once"),
        }

    def _start_schedule(self, row: Automation) -> None:
        if row.trigger_type != "schedule":
            return
        now = self.core.db_now()
        ScheduleState.insert(automation=row.id, last_fire_at=now, updated_at=now).on_conflict(
            conflict_target=[ScheduleState.automation],
            update={ScheduleState.last_fire_at: now, ScheduleState.updated_at: now},
        ).execute()

    # -- trigger data ------------------------------------------------------------------
    def _record_data(self, ref: RecordRef) -> dict[str, Any] | None:
        """``record_dict`` of the record (one statement), with owner id and ages in days."""
        row = _RECORD_SQL[ref.entity].one((ref.id,))
        if row is None:
            return None
        if ref.entity is EntityType.LEAD:
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
        data["fields"] = _loads(fields) or {}
        data["created_at"] = iso(created)
        data["updated_at"] = iso(updated)
        data["owner_id"] = owner_id
        now = self.core.now()
        data["days_since_update"] = (now - from_db(updated)).days
        data["days_since_created"] = (now - from_db(created)).days
        return data

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
            act = _ACTIVITY_SQL.one((payload["activity_id"],))
            if act is not None:  # as records.activity_dict, in one statement
                keys = ("id", "type", "lead_id", "opportunity_id", "owner", "note", "fields", "status")
                data["activity"] = dict(zip(keys, act[:8], strict=True))
                data["activity"]["fields"] = _loads(act[6]) or {}
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

    # -- running --------------------------------------------------------------------
    @staticmethod
    def _high_water() -> int:
        """The newest outbox event id: a newly published automation acts on later ones only."""
        row = Statement("SELECT MAX(id) FROM outbox").one()
        return int(row[0] or 0) if row else 0

    def _candidates(self, trigger: str, at: datetime, event_id: int | None = None) -> list[Automation]:
        """Published automations on ``trigger``, in their date window, published before ``event_id``."""
        now = to_db(at)
        published_before = event_id if event_id is not None else 2**62
        if self._candidate_cache is not None:  # within a batch: one query per trigger
            every = self._candidate_cache.get(trigger)
            if every is None:
                every = self._candidate_cache[trigger] = list(
                    Automation.select()
                    .where((Automation.trigger_type == trigger) & (Automation.status == "published"))
                    .order_by(Automation.id)
                )
            return [
                a
                for a in every
                if a.since_event_id is not None
                and a.since_event_id < published_before
                and (a.starts_at is None or a.starts_at <= now)
                and (a.ends_at is None or a.ends_at > now)
            ]
        return list(
            Automation.select()
            .where(
                (Automation.trigger_type == trigger)
                & (Automation.status == "published")
                & (Automation.since_event_id < published_before)
                & (Automation.starts_at.is_null() | (Automation.starts_at <= now))
                & (Automation.ends_at.is_null() | (Automation.ends_at > now))
            )
            .order_by(Automation.id)
        )

    def _matches(self, automation: Automation, data: dict[str, Any]) -> tuple[bool, str | None]:
        config = automation.trigger_config or {}
        types = config.get("activity_types")
        if types and "activity" in automation.trigger_type:
            name = (data.get("activity") or {}).get("type")
            if name not in types:
                return False, f"activity type {name!r} is not one of {', '.join(types)}"
        trigger = self.core.plugins.triggers.get(automation.trigger_type)
        match = getattr(trigger, "match", None)
        if callable(match) and not match(config, data):
            return False, "the trigger's filter did not match"
        return True, None

    def _guard(self, automation: Automation, ref: RecordRef | None, at: datetime) -> str | None:
        if ref is None:
            return None
        limit = int(self.core.settings.get("automation_daily_limit"))
        since = to_db(at - timedelta(days=1))
        row = _GUARD_SQL.one((automation.id, ref.entity.value, ref.id, since, False))
        count = row[0] if row else 0
        if count >= limit:
            return f"loop guard: ran {count} times on {ref} in the last 24 hours (limit {limit}); stopped"
        return None

    def run_one(
        self,
        automation: Automation,
        ref: RecordRef | None,
        data: dict[str, Any],
        *,
        event_id: int | None,
        dry_run: bool = False,
        first_delivery: bool = False,
    ) -> RunReport:
        """Run one automation for one record. Call inside the event's transaction.

        ``first_delivery``: the event was never processed before (no attempt), so no run
        of it can exist to continue (a run commits with its event's mark) and the lookup
        is skipped; the unique (automation, event, record) index still guards.
        """
        started = time.perf_counter()
        now = self.core.now()
        trace: dict[str, Any] = {
            "trigger": {"type": automation.trigger_type, "data": _summary(data)},
            "conditions": [],
            "actions": [],
        }
        status, reason = "succeeded", None
        guard = None if dry_run else self._guard(automation, ref, now)
        if guard:
            status, reason = "skipped", guard
        if status == "succeeded":
            for cond in automation.conditions or []:
                ok, actual = evaluate(cond, data)
                trace["conditions"].append({**cond, "actual": _jsonable(actual), "result": ok})
                if not ok:
                    status, reason = (
                        "skipped",
                        f"condition {cond['field']} {cond['op']} {cond['value']!r} is false",
                    )
                    break
        run_id: int | None = None
        if event_id is not None and not first_delivery:
            # An event delivered again (a retry) continues its run: steps done are skipped.
            if ref is not None:
                found = _RUN_OF_EVENT[True].one((automation.id, event_id, ref.entity.value, ref.id))
            else:
                found = _RUN_OF_EVENT[False].one((automation.id, event_id))
            if found is not None:
                run_id, run_status, run_reason, run_trace = found
                if run_status != "running":
                    return RunReport(
                        run_id,
                        automation.id,
                        automation.name,
                        run_status,
                        run_reason,
                        _label(ref),
                        _loads(run_trace) or {},
                    )
        resumed = run_id is not None
        if run_id is None:
            run_id = _INSERT_RUN.insert(
                (
                    automation.id,
                    event_id,
                    automation.trigger_type,
                    ref.entity.value if ref else None,
                    ref.id if ref else None,
                    dry_run,
                    to_db(now),
                )
            )
        if status == "succeeded":
            status, reason = self._run_actions(
                automation, AutomationRun(id=run_id), ref, data, trace, dry_run, resumed=resumed
            )
        elapsed = (time.perf_counter() - started) * 1000
        _FINISH_RUN.run((status, reason, _json(trace), self.core.db_now(), elapsed, run_id))
        run = AutomationRun(id=run_id)
        report = RunReport(run.id, automation.id, automation.name, status, reason, _label(ref), trace)
        if not dry_run:
            self._after_commit_run_finished(report)
        return report

    def _run_actions(
        self,
        automation: Automation,
        run: AutomationRun,
        ref: RecordRef | None,
        data: dict[str, Any],
        trace: dict[str, Any],
        dry_run: bool,
        *,
        resumed: bool = True,
    ) -> tuple[str, str | None]:
        """Run the actions in order. ``resumed``: the run existed before (a retry), so
        steps already done are skipped; a new run has none to look up."""
        from sharetui.core.facade import Acting, PluginServices, PluginStateStore

        statuses = []
        for step, action in enumerate(automation.actions or []):
            if resumed and _STEP_DONE.one((run.id, step)):
                continue  # done before a retry: never twice
            kind = self.core.plugins.actions.get(action["type"])
            config = {k: v for k, v in action.items() if k != "type"}
            t0 = time.perf_counter()
            if kind is None:
                outcome = Outcome.failed(f"action {action['type']!r} is not registered (plugin missing?)")
            else:
                defaults = {k: f.default for k, f in kind.config.items() if f.default is not None}
                ctx = ActionContext(
                    services=PluginServices(self.core, Acting(run_id=run.id)),
                    record=ref,
                    trigger_data=data,
                    run_id=run.id,
                    step=step,
                    dry_run=dry_run,
                    plugin_state=PluginStateStore(self.core, kind.plugin),
                )
                try:
                    # A failing action leaves nothing half-written, and plugins never hear of it.
                    with self.core.dispatch.held(), self.core.db.atomic():
                        outcome = kind.run(ctx, {**defaults, **config})
                    if not _sound_outcome(outcome):
                        self.core.plugins.record_error(
                            kind.plugin, f"action {kind.name}", f"returned {outcome!r:.200}, not an Outcome"
                        )
                        outcome = Outcome.failed(f"action {kind.name} returned no outcome")
                except Exception as exc:  # an action's failure is its outcome (a lock conflict aside)
                    if is_lock_conflict(exc):
                        raise  # not the action's outcome: the event is rolled back and decided again
                    self.core.plugins.record_error(
                        kind.plugin, f"action {kind.name}", f"{type(exc).__name__}: {exc}"
                    )
                    outcome = Outcome.failed(f"action {kind.name} raised {type(exc).__name__}: {exc}")
            entry = {
                "step": step,
                "type": action["type"],
                "status": outcome.status,
                "message": outcome.message,
                "data": _jsonable(dict(outcome.data)),
                "ms": round((time.perf_counter() - t0) * 1000, 2),
            }
            trace["actions"].append(entry)
            _INSERT_STEP.run((run.id, step, action["type"], outcome.status, _json(entry)))
            statuses.append(outcome.status)
            if self.crash_after_step is not None and step == self.crash_after_step:
                raise _Crash(f"simulated crash after step {step}")
        if "failed" in statuses:
            failed = next(a for a in trace["actions"] if a["status"] == "failed")
            return "failed", failed["message"]
        if statuses and all(s == "skipped" for s in statuses):
            return "skipped", trace["actions"][0]["message"]
        return "succeeded", None

    def _after_commit_run_finished(self, report: RunReport) -> None:
        host = self.core.plugins
        if not host.implements("sharetui_automation_run_finished"):
            return
        self.core.db.after_commit(lambda: host.call("sharetui_automation_run_finished", run=report.as_dict()))

    # -- events ------------------------------------------------------------------------
    def process_event(self, event: OutboxEvent) -> list[RunReport]:
        """Run every matching automation for one event. Call inside a transaction."""
        trigger = trigger_for(event.topic, event.entity_type)
        reports: list[RunReport] = []
        if trigger is not None:
            payload = event.payload or {}
            if trigger == "schedule":
                reports = self._fire_schedule(event, payload)
            else:
                ref = RecordRef(EntityType(event.entity_type), event.entity_id) if event.entity_type else None
                automations = self._candidates(trigger, self.core.now(), event.id)
                if automations:
                    data = self.trigger_data(trigger, ref, payload)
                    for automation in automations:
                        matched, _why = self._matches(automation, data)
                        if matched:
                            reports.append(
                                self.run_one(
                                    automation,
                                    ref,
                                    data,
                                    event_id=event.id,
                                    first_delivery=not event.attempts,
                                )
                            )
        _EVENT_DONE.run((self.core.db_now(), event.id))
        return reports

    def _claim(self, limit: int = 1) -> list[OutboxEvent]:
        """The oldest waiting events, in order (on PostgreSQL: those no other worker holds,
        locked for this transaction)."""
        sql = _CLAIM_SQL.sql() + ("" if is_sqlite() else " FOR UPDATE SKIP LOCKED")
        return [
            OutboxEvent(
                id=eid,
                topic=topic,
                entity_type=entity_type,
                entity_id=entity_id,
                payload=_loads(payload),
                attempts=attempts,
            )
            for eid, topic, entity_type, entity_id, payload, attempts in self.core.db.execute_sql(
                sql, (limit,)
            ).fetchall()
        ]

    def _mark_idle(self, limit: int) -> int:
        """Mark processed, in one statement, the oldest waiting events that no automation
        can act on: no trigger reads their topic, or no automation on their trigger was
        published before them and is in its date window now. That is all processing them
        one at a time would do (a bulk import or a sweep queues many such events). Stops
        at the first event that needs processing. Call inside a transaction."""
        now = self.core.db_now()
        oldest = _OLDEST_WAITING.one()
        if oldest is None:
            return 0
        live: dict[str, int] = {}  # trigger -> lowest since_event_id of the automations that could run
        for trigger, since, starts, ends in (
            Automation.select(
                Automation.trigger_type, Automation.since_event_id, Automation.starts_at, Automation.ends_at
            )
            .where(Automation.status == "published")
            .tuples()
        ):
            if since is None or (starts is not None and starts > now) or (ends is not None and ends <= now):
                continue
            live[trigger] = min(since, live.get(trigger, since))
        first_id, first_topic, first_entity = oldest
        first_trigger = trigger_for(first_topic, first_entity)
        if first_trigger is not None and (
            first_trigger == "schedule" or live.get(first_trigger, first_id) < first_id
        ):
            return 0  # the oldest needs processing: do not read (or, on PostgreSQL, lock) a batch
        sqlite = is_sqlite()
        waiting = self.core.db.execute_sql(
            Statement(
                "SELECT id, topic, entity_type FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT ?"
            ).sql()
            + ("" if sqlite else " FOR UPDATE SKIP LOCKED"),
            (limit,),
        ).fetchall()
        idle: list[int] = []
        for event_id, topic, entity_type in waiting:
            trigger = trigger_for(topic, entity_type)
            if trigger is not None and (trigger == "schedule" or live.get(trigger, event_id) < event_id):
                break
            idle.append(event_id)
        if not idle:
            return 0
        if sqlite:  # one writer: the waiting events in this range are exactly those read
            Statement(
                "UPDATE outbox SET processed_at = ?, attempts = attempts + 1 "
                "WHERE processed_at IS NULL AND id BETWEEN ? AND ?"
            ).run([now, idle[0], idle[-1]])
        else:  # only the rows locked above: other workers may hold some in the range
            self.core.db.execute_sql(
                "UPDATE outbox SET processed_at = %s, attempts = attempts + 1 WHERE id = ANY(%s)", (now, idle)
            )
        return len(idle)

    def process_pending(self, limit: int | None = None) -> list[RunReport]:
        """Process waiting events in order (embedded mode and the worker).

        Each event with everything it causes commits or rolls back as one: events are
        taken :data:`_EVENT_BATCH` at a time (one at a time on PostgreSQL), each decided
        in a savepoint of its own, in one transaction per batch. An event that raises
        rolls back alone; the events before it commit and the error is raised. A crash
        rolls back the batch, whose events then wait to be processed again: nothing lost,
        nothing done twice.
        """
        return self.process_pending_counted(limit)[1]

    def process_pending_counted(self, limit: int | None = None) -> tuple[int, list[RunReport]]:
        """Like :meth:`process_pending`, also saying how many events this call processed."""
        reports: list[RunReport] = []
        done = 0
        conflicts = 0
        while limit is None or done < limit:
            if is_sqlite() and not _ANY_PENDING.one():
                # Nothing waits: no write transaction, which on SQLite would queue for the
                # write lock behind every writer (embedded mode runs this after every command).
                break
            error: Exception | None = None
            with self.core.db.atomic():
                idle = self._mark_idle(_IDLE_BATCH if limit is None else min(_IDLE_BATCH, limit - done))
                if idle:
                    done += idle
                    continue
                # PostgreSQL: one event per transaction. A batch holds each recipient's row lock
                # (the share cap's) to its commit; two workers' batches lock them in different
                # orders and deadlock, taking concurrent shares down with them. SQLite has one
                # writer at a time: nothing to deadlock with.
                size = _EVENT_BATCH if is_sqlite() else 1
                events = self._claim(size if limit is None else min(size, limit - done))
                if not events:
                    break
                self._candidate_cache = {}
                try:
                    for event in events:
                        try:
                            with self.core.db.atomic():  # one event and all it causes, or nothing
                                reports.extend(self.process_event(event))
                        except Exception as exc:  # noqa: BLE001 - re-raised once the events before it commit
                            error = exc
                            break
                        done += 1
                finally:
                    self._candidate_cache = None
            if error is not None:
                if is_lock_conflict(error) and conflicts < _CONFLICT_RETRIES:
                    # Lost a lock conflict (two workers' batches lock recipients in different
                    # orders): the events before it committed; this one is claimed again.
                    conflicts += 1
                    continue
                raise error
        return done, reports

    def fire(self, trigger: str, record: RecordRef | None, data: dict[str, Any] | None = None) -> int:
        """Let a plugin fire its own trigger (queued in the outbox, processed in order)."""
        if trigger not in self.core.plugins.triggers:
            raise UsageError(f"unknown trigger {trigger!r}")
        with self.core.db.atomic():
            return self.core.outbox.emit(
                f"trigger.{trigger}",
                record.entity.value if record else None,
                record.id if record else None,
                data or {},
            )

    # -- schedules and reminders --------------------------------------------------------------
    def fire_due_schedules(self) -> int:
        """Queue a ``schedule.fired`` event for each due firing; returns how many."""
        from sharetui.domain.schedules import due, parse_schedule

        queued = 0
        now = self.core.now()
        for automation in self._candidates("schedule", now):
            with self.core.db.atomic():
                if not is_sqlite():
                    locked = Statement(
                        "SELECT automation_id FROM schedule_state WHERE automation_id = ? "
                        "FOR UPDATE SKIP LOCKED"
                    ).one([automation.id])
                    if locked is None:
                        continue
                state = ScheduleState.get_or_none(ScheduleState.automation == automation.id)
                if state is None:
                    self._start_schedule(automation)
                    continue
                cfg = automation.trigger_config or {}
                sched = parse_schedule(cfg["cron"], cfg.get("timezone", "UTC"))
                last = from_db(state.last_fire_at)
                firings = due(sched, last, now, cfg.get("misfire", "latest_once"))
                missed = len([t for t in _all_between(sched, last, now)])
                for fire_at in firings:
                    self.core.outbox.emit(
                        "schedule.fired",
                        None,
                        None,
                        {
                            "automation_id": automation.id,
                            "fire_at": iso(fire_at),
                            "missed": max(0, missed - len(firings)),
                        },
                    )
                    queued += 1
                if missed:
                    ScheduleState.update(last_fire_at=to_db(now), updated_at=to_db(now)).where(
                        ScheduleState.automation == automation.id
                    ).execute()
        return queued

    def _fire_schedule(self, event: OutboxEvent, payload: dict[str, Any]) -> list[RunReport]:
        automation = Automation.get_or_none(Automation.id == payload.get("automation_id"))
        if automation is None or automation.status != "published":
            return []
        cfg = automation.trigger_config or {}
        entity = EntityType(cfg["entity"])
        model = Lead if entity is EntityType.LEAD else Opportunity
        where = cfg.get("where") or []
        limit = int(self.core.settings.get("schedule_max_records"))
        reports = []
        last_id = 0
        while len(reports) < limit:
            batch = list(model.select(model.id).where(model.id > last_id).order_by(model.id).limit(500))
            if not batch:
                break
            for row in batch:
                last_id = row.id
                ref = RecordRef(entity, row.id)
                data = self.trigger_data("schedule", ref, {})
                data["schedule"] = {"fire_at": payload.get("fire_at"), "automation_id": automation.id}
                if all(evaluate({"op": "=", **c}, data)[0] for c in where):
                    reports.append(self.run_one(automation, ref, data, event_id=event.id))
                    if len(reports) >= limit:
                        break
        return reports

    def fire_due_reminders(self) -> int:
        """Mark due task reminders sent and queue their events, exactly once each."""
        now = self.core.db_now()
        with self.core.db.atomic():
            due = list(
                Task.select()
                .where(
                    Task.reminded_at.is_null()
                    & Task.completed_at.is_null()
                    & Task.reminder_at.is_null(False)
                    & (Task.reminder_at <= now)
                )
                .order_by(Task.id)
                .limit(1000)
            )
            sent = 0
            for task in due:
                claimed = (
                    Task.update(reminded_at=now)
                    .where((Task.id == task.id) & Task.reminded_at.is_null())
                    .execute()
                )
                if not claimed:
                    continue
                entity = "opportunity" if task.opportunity_id else "lead"
                self.core.outbox.emit(
                    "task.reminder_due",
                    entity,
                    task.opportunity_id or task.lead_id,
                    {"task_id": task.id, "owner_id": task.owner_id},
                )
                sent += 1
        return sent

    # -- dry run and retention ------------------------------------------------------------
    def test(self, ident: int | str, record: RecordRef, *, actor: User | None) -> RunReport:
        """Dry run: what the automation would do on ``record`` now. Changes nothing.

        The actor must be able to read the record: the trace shows its fields.
        """
        automation = self.get(ident)
        self.core.records.get(record)
        if actor is not None and not self.core.access.can(actor.id, record, "read"):
            raise PermissionDenied(f"{actor.username} may not read {record}, so cannot dry-run on it")
        trigger_entity = (
            self.core.plugins.triggers.get(automation.trigger_type).entity
            if automation.trigger_type in self.core.plugins.triggers
            else None
        )
        if automation.trigger_type == "schedule":
            trigger_entity = (automation.trigger_config or {}).get("entity")
        if trigger_entity and trigger_entity != record.entity.value:
            nouns = {"lead": "leads", "opportunity": "opportunities"}
            raise UsageError(
                f"automation {automation.name!r} runs on {nouns.get(trigger_entity, trigger_entity)}, "
                f"not {nouns[record.entity.value]}"
            )
        payload = self._sample_payload(automation, record)
        data = self.trigger_data(automation.trigger_type, record, payload)
        if automation.trigger_type == "schedule":
            data["schedule"] = {"fire_at": iso(self.core.now()), "automation_id": automation.id}
        report: RunReport | None = None

        class _Rollback(Exception):
            pass

        try:
            # Plugins never hear of a dry run's shares: they roll back with it.
            with self.core.dispatch.held(), self.core.db.atomic():
                matched, why = self._matches(automation, data)
                if not matched:
                    report = RunReport(
                        None,
                        automation.id,
                        automation.name,
                        "skipped",
                        why,
                        str(record),
                        {
                            "trigger": {"type": automation.trigger_type, "data": _summary(data)},
                            "conditions": [],
                            "actions": [],
                        },
                    )
                else:
                    report = self.run_one(automation, record, data, event_id=None, dry_run=True)
                    report.id = None
                raise _Rollback
        except _Rollback:
            pass
        assert report is not None
        report.trace["dry_run"] = True
        return report

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

    def prune_runs(self) -> int:
        """Keep runs for ``run_retention_days`` (steps go with them)."""
        days = int(self.core.settings.get("run_retention_days"))
        cutoff = to_db(self.core.now() - timedelta(days=days))
        with self.core.db.atomic():
            old = AutomationRun.select(AutomationRun.id).where(AutomationRun.started_at < cutoff)
            AutomationStep.delete().where(AutomationStep.run.in_(old)).execute()
            return AutomationRun.delete().where(AutomationRun.started_at < cutoff).execute()


def _label(ref: RecordRef | None) -> str | None:
    """How runs name their record, everywhere: ``lead 5``, ``opportunity 3``."""
    return f"{ref.entity.value} {ref.id}" if ref is not None else None


def _columns(definition: Definition) -> dict[str, Any]:
    """The stored form of a definition."""
    return {
        "name": definition.name,
        "description": definition.description,
        "trigger_type": definition.trigger_type,
        "trigger_config": definition.trigger_config,
        "conditions": definition.conditions,
        "actions": definition.actions,
        "status": definition.status,
        "starts_at": to_db(definition.starts_at),
        "ends_at": to_db(definition.ends_at),
        "source_text": definition.source_text,
    }


def _all_between(sched: Any, last: datetime, now: datetime) -> list[datetime]:
    from sharetui.domain.schedules import fire_times

    return fire_times(sched, last, now)


def _max_id() -> Any:
    from peewee import fn

    return fn.MAX(AutomationRun.id)


def _sound_outcome(outcome: Any) -> bool:
    """What an action's ``run`` must return: an ``Outcome`` with a known status, a text
    message and a mapping of data (junk fails the step instead of the run)."""
    from collections.abc import Mapping

    return (
        isinstance(outcome, Outcome)
        and outcome.status in ("succeeded", "failed", "skipped")
        and isinstance(outcome.message, str)
        and isinstance(outcome.data, Mapping)
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """The trigger data kept in a trace: ids, names and owners, not every field."""
    keep = ("id", "name", "type", "stage", "owner", "status", "subject", "lead_id", "amount", "fields")
    out: dict[str, Any] = {}
    for root in ("lead", "opportunity", "activity", "task", "schedule"):
        if isinstance(data.get(root), dict):
            out[root] = {k: _jsonable(v) for k, v in data[root].items() if k in keep or root == "schedule"}
    out["owner_in_trigger"] = data.get("owner_in_trigger")
    if data.get("owner_missing_reason"):
        out["owner_missing_reason"] = data["owner_missing_reason"]
    return out

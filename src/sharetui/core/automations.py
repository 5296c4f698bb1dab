"""The automation engine: outbox events -> triggers -> conditions -> actions.

Each outbox event is processed in one transaction with everything it causes:
its runs, their steps, the grants and history they write, and the mark that
the event is done. A crash anywhere rolls all of it back, and the retry does it
once; a unique (automation, event, record) run and (run, step) step make a
second run or a repeated step impossible. Events are taken in id order; on
PostgreSQL workers share them with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sharetui.core.access import RecordRef
from sharetui.core.automation_defs import Definition, evaluate, parse_definition, validate_definition
from sharetui.core.roles import MAX_ID, EntityType, Role, as_id
from sharetui.core.sql import Statement, from_db, to_db
from sharetui.core.timefmt import iso
from sharetui.db.connection import is_sqlite
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
from sharetui.errors import NotFound, PermissionDenied, UsageError
from sharetui.sdk.types import ActionContext, Outcome

if TYPE_CHECKING:
    from sharetui.core.service import Core

log = logging.getLogger("sharetui.automations")

# Events no automation can act on, marked processed per statement (see _mark_idle).
_IDLE_BATCH = 5_000
_ANY_PENDING = Statement("SELECT 1 FROM outbox WHERE processed_at IS NULL LIMIT 1")

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
        return row

    def runs(self, ident: int | str, *, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        row = self.get(ident)
        query = AutomationRun.select().where(AutomationRun.automation == row.id)
        if before is not None:
            query = query.where(AutomationRun.id < before)
        return [run_dict(r) for r in query.order_by(AutomationRun.id.desc()).limit(limit)]

    def describe_schedule(self, a: Automation) -> dict[str, Any]:
        from sharetui.core.schedules import next_fire, parse_schedule

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
        model = Lead if ref.entity is EntityType.LEAD else Opportunity
        row = model.get_or_none(model.id == ref.id)
        if row is None:
            return None
        from sharetui.core.records import record_dict

        data = record_dict(row)
        data["owner_id"] = row.owner_id
        now = self.core.now()
        data["days_since_update"] = (now - from_db(row.updated_at)).days
        data["days_since_created"] = (now - from_db(row.created_at)).days
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
            act = Activity.get_or_none(Activity.id == payload["activity_id"])
            if act is not None:
                from sharetui.core.records import activity_dict

                data["activity"] = activity_dict(act)
                data["activity"]["captures_owner"] = bool(act.type.captures_owner)
        if payload.get("task_id"):
            task = Task.get_or_none(Task.id == payload["task_id"])
            if task is not None:
                from sharetui.core.records import task_dict

                data["task"] = task_dict(task)
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
        count = (
            AutomationRun.select()
            .where(
                (AutomationRun.automation == automation.id)
                & (AutomationRun.entity_type == ref.entity.value)
                & (AutomationRun.entity_id == ref.id)
                & (AutomationRun.started_at > since)
                & (AutomationRun.dry_run == False)  # noqa: E712
                & (AutomationRun.status != "skipped")
            )
            .count()
        )
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
    ) -> RunReport:
        """Run one automation for one record. Call inside the event's transaction."""
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
        run = None
        if event_id is not None:
            # An event delivered again (a retry) continues its run: steps done are skipped.
            run = AutomationRun.get_or_none(
                (AutomationRun.automation == automation.id)
                & (AutomationRun.event_id == event_id)
                & (AutomationRun.entity_type == (ref.entity.value if ref else None))
                & (AutomationRun.entity_id == (ref.id if ref else None))
            )
            if run is not None and run.status != "running":
                return RunReport(
                    run.id,
                    automation.id,
                    automation.name,
                    run.status,
                    run.reason,
                    _label(ref),
                    run.trace or {},
                )
        if run is None:
            run = AutomationRun.create(
                automation=automation.id,
                event_id=event_id,
                trigger_type=automation.trigger_type,
                entity_type=ref.entity.value if ref else None,
                entity_id=ref.id if ref else None,
                status="running",
                trace={},
                dry_run=dry_run,
                started_at=to_db(now),
            )
        if status == "succeeded":
            status, reason = self._run_actions(automation, run, ref, data, trace, dry_run)
        elapsed = (time.perf_counter() - started) * 1000
        AutomationRun.update(
            status=status, reason=reason, trace=trace, finished_at=self.core.db_now(), duration_ms=elapsed
        ).where(AutomationRun.id == run.id).execute()
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
    ) -> tuple[str, str | None]:
        from sharetui.sdk.state import PluginStateStore

        statuses = []
        for step, action in enumerate(automation.actions or []):
            if AutomationStep.get_or_none((AutomationStep.run == run.id) & (AutomationStep.step == step)):
                continue  # done before a retry: never twice
            kind = self.core.plugins.actions.get(action["type"])
            config = {k: v for k, v in action.items() if k != "type"}
            t0 = time.perf_counter()
            if kind is None:
                outcome = Outcome.failed(f"action {action['type']!r} is not registered (plugin missing?)")
            else:
                defaults = {k: f.default for k, f in kind.config.items() if f.default is not None}
                ctx = ActionContext(
                    core=self.core,
                    record=ref,
                    trigger_data=data,
                    run_id=run.id,
                    step=step,
                    dry_run=dry_run,
                    plugin_state=PluginStateStore(self.core, kind.plugin),
                )
                mark = self.core.plugins.mark()
                try:
                    with self.core.db.atomic():  # a failing action leaves nothing half-written
                        outcome = kind.run(ctx, {**defaults, **config})
                    if not _sound_outcome(outcome):
                        self.core.plugins.record_error(
                            kind.plugin, f"action {kind.name}", f"returned {outcome!r:.200}, not an Outcome"
                        )
                        outcome = Outcome.failed(f"action {kind.name} returned no outcome")
                except Exception as exc:  # noqa: BLE001 - an action's failure is its outcome
                    self.core.plugins.discard_since(mark)  # its savepoint rolled back: so do its events
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
            AutomationStep.create(
                run=run.id, step=step, action=action["type"], status=outcome.status, outcome=entry
            )
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
        if not host.pm.hook.sharetui_automation_run_finished.get_hookimpls():
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
                            reports.append(self.run_one(automation, ref, data, event_id=event.id))
        OutboxEvent.update(processed_at=self.core.db_now(), attempts=OutboxEvent.attempts + 1).where(
            OutboxEvent.id == event.id
        ).execute()
        return reports

    def _claim(self) -> OutboxEvent | None:
        if is_sqlite():
            return (
                OutboxEvent.select()
                .where(OutboxEvent.processed_at.is_null())
                .order_by(OutboxEvent.id)
                .first()
            )
        row = Statement(
            "SELECT id FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ).one()
        return OutboxEvent.get_by_id(row[0]) if row else None

    def _mark_idle(self, limit: int) -> int:
        """Mark processed, in one statement, the oldest waiting events that no automation
        can act on: no trigger reads their topic, or no automation on their trigger was
        published before them and is in its date window now. That is all processing them
        one at a time would do (a bulk import or a sweep queues many such events). Stops
        at the first event that needs processing. Call inside a transaction."""
        now = self.core.db_now()
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
        """Process waiting events in order, one transaction each (embedded mode and the worker)."""
        return self.process_pending_counted(limit)[1]

    def process_pending_counted(self, limit: int | None = None) -> tuple[int, list[RunReport]]:
        """Like :meth:`process_pending`, also saying how many events this call processed."""
        reports: list[RunReport] = []
        done = 0
        while limit is None or done < limit:
            if is_sqlite() and not _ANY_PENDING.one():
                # Nothing waits: no write transaction, which on SQLite would queue for the
                # write lock behind every writer (embedded mode runs this after every command).
                break
            with self.core.db.atomic():
                idle = self._mark_idle(_IDLE_BATCH if limit is None else min(_IDLE_BATCH, limit - done))
                if idle:
                    done += idle
                    continue
                event = self._claim()
                if event is None:
                    break
                reports.extend(self.process_event(event))
            done += 1
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
        from sharetui.core.schedules import due, parse_schedule

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

        mark = self.core.plugins.mark()
        try:
            with self.core.db.atomic():
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
            self.core.plugins.discard_since(mark)  # plugins never hear of a dry run's shares
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
    from sharetui.core.schedules import fire_times

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

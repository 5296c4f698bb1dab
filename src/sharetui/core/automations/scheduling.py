"""Schedules and task reminders: the time-driven side of automations.

``fire_due_schedules`` queues a ``schedule.fired`` event for each due firing (its
catch-up after downtime follows the automation's stored misfire policy), and the
engine hands such an event back to ``_fire_schedule``, which runs the automation on
every matching record. ``fire_due_reminders`` marks due task reminders sent and
queues their events, exactly once each. Whether a schedule is due at a time is the
pure function in :mod:`sharetui.domain.schedules`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.core.automations.definitions import evaluate
from sharetui.db.connection import is_sqlite
from sharetui.db.models import Automation, Lead, Opportunity, OutboxEvent, ScheduleState, Task
from sharetui.db.sql import Statement
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import from_db, iso, to_db

if TYPE_CHECKING:
    from sharetui.core.automations.reports import RunReport
    from sharetui.core.service import Core


class Scheduling:
    """The schedules-and-reminders part of :class:`~sharetui.core.automations.AutomationService`
    (a mixin: it uses the service's ``_candidates`` and ``run_one`` from the engine, and
    ``trigger_data``)."""

    core: Core

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
                    # The reminder acts for whoever added the task (None: a load, the
                    # system): they chose its owner and when it fires.
                    {"task_id": task.id, "owner_id": task.owner_id, "actor_id": task.created_by_id},
                )
                sent += 1
        return sent


def _all_between(sched: Any, last: datetime, now: datetime) -> list[datetime]:
    from sharetui.domain.schedules import fire_times

    return fire_times(sched, last, now)

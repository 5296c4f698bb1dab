"""The automation engine: outbox events -> triggers -> conditions -> actions.

Each outbox event is processed in one transaction with everything it causes:
its runs, their steps, the grants and history they write, and the mark that
the event is done. A crash anywhere rolls all of it back, and the retry does it
once; a unique (automation, event, record) run and (run, step) step make a
second run or a repeated step impossible. Events are taken in id order; on
PostgreSQL workers share them with ``FOR UPDATE SKIP LOCKED``.

This module decides events: it claims them from the outbox, finds the automations on
their trigger, guards against loops, runs conditions and actions, and writes each
run's trace. The rest of :class:`~sharetui.core.automations.AutomationService` lives
beside it: the definitions (``service``), trigger data (``trigger_data``), schedules
and reminders (``scheduling``) and what runs are reported as (``reports``).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sharetui.core.automations.definitions import evaluate
from sharetui.core.automations.reports import RunReport, _jsonable, _label, _loads, _summary
from sharetui.core.automations.traces import brief, cap_trace, cut_text
from sharetui.core.automations.trigger_data import trigger_for
from sharetui.db.batching import batch_of, memo_of
from sharetui.db.connection import database, is_lock_conflict
from sharetui.db.models import Automation, AutomationRun, OutboxEvent, User
from sharetui.db.sql import Insert, Statement, Update
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import to_db
from sharetui.errors import UsageError
from sharetui.sdk.types import ActionContext, Outcome

if TYPE_CHECKING:
    from sharetui.core.service import Core

log = logging.getLogger("sharetui.automations")


# In a batch of deferred writes (db/batching.py, the worker's batch of events on SQLite)
# a run is written once, finished, with its steps and the event's mark, in one
# executemany per table for the whole batch; a run is counted by (automation, record)
# so the loop guard of another record need not wait for it.
_EVENT_DONE = Update("outbox", ("processed_at",), increments=("attempts",))
_GUARD_SQL = Statement(
    "SELECT COUNT(*) FROM automation_runs WHERE automation_id = ? AND entity_type = ? AND entity_id = ? "
    "AND started_at > ? AND dry_run = ? AND status <> 'skipped'",
    reads=("automation_runs",),
    checked=("automation_runs",),  # the record's runs are settled first (_guard)
)
_RUN_OF_EVENT = {
    True: Statement(
        "SELECT id, status, reason, trace FROM automation_runs WHERE automation_id = ? AND event_id = ? "
        "AND entity_type = ? AND entity_id = ?",
        reads=("automation_runs",),
    ),
    False: Statement(
        "SELECT id, status, reason, trace FROM automation_runs WHERE automation_id = ? AND event_id = ? "
        "AND entity_type IS NULL AND entity_id IS NULL",
        reads=("automation_runs",),
    ),
}
_INSERT_RUN = Insert(
    "automation_runs",
    ("automation_id", "event_id", "trigger_type", "entity_type", "entity_id", "dry_run", "started_at"),
    fixed={"status": "running", "trace": "{}", "duration_ms": 0, "reason": None, "finished_at": None},
    keys={"record": ("automation_id", "entity_type", "entity_id")},
)
_FINISH_RUN = Update("automation_runs", ("status", "reason", "trace", "finished_at", "duration_ms"))
_STEP_DONE = Statement(
    "SELECT outcome FROM automation_steps WHERE run_id = ? AND step = ?", reads=("automation_steps",)
)
_INSERT_STEP = Insert("automation_steps", ("run_id", "step", "action", "status", "outcome"), has_id=False)

_PERSON = Statement("SELECT id, username, role, active FROM users WHERE id = ?", reads=("users",))


class _Run(NamedTuple):
    """A run as its actions need it: its id."""

    id: int


# (action type, step's table) -> the step's settings: the type's defaults, then the step's
# own values. Built once per automation and step (a batch runs the same steps thousands
# of times); the type and table are kept so an id is never matched by another object.
_STEP_CONFIGS: dict[tuple[int, int], tuple[Any, dict[str, Any], dict[str, Any]]] = {}


def _step_config(kind: Any, action: dict[str, Any]) -> dict[str, Any]:
    key = (id(kind), id(action))
    found = _STEP_CONFIGS.get(key)
    if found is not None and found[0] is kind and found[1] is action:
        return found[2]
    if len(_STEP_CONFIGS) > 1000:
        _STEP_CONFIGS.clear()
    defaults = {k: f.default for k, f in kind.config.items() if f.default is not None}
    settings = {**defaults, **{k: v for k, v in action.items() if k != "type"}}
    _STEP_CONFIGS[key] = (kind, action, settings)
    return settings


class _Crash(BaseException):
    """Raised only by tests (``crash_after_step``) to stand for a killed process."""


class AutomationEngine:
    """The event-deciding part of :class:`~sharetui.core.automations.AutomationService`
    (a mixin: it uses the service's ``trigger_data`` and hands ``schedule.fired`` events
    to its ``_fire_schedule``)."""

    core: Core
    # Published automations by trigger, while a batch of events is processed (else None).
    _candidate_cache: dict[str, list[Automation]] | None
    crash_after_step: int | None = None  # test hook: simulate a crash after this step

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
        """Whether the trigger's filter (its ``matches(config, event)``) lets the event
        through for this automation's configuration, and why not. A trigger with no
        filter matches every event; a filter that fails does not match (the host)."""
        config = automation.trigger_config or {}
        trigger = self.core.plugins.triggers.get(automation.trigger_type)
        if trigger is None or trigger.matches is None or trigger.matches(config, data):
            return True, None
        what = trigger.describe(config) if trigger.describe is not None else ""
        return (
            False,
            f"the trigger's filter ({what}) did not match" if what else "the trigger's filter did not match",
        )

    def _trace_cap(self) -> int:
        return int(self.core.settings.get("run_trace_max_bytes"))

    def _guard(self, automation: Automation, ref: RecordRef | None, at: datetime) -> str | None:
        if ref is None:
            return None
        limit = int(self.core.settings.get("automation_daily_limit"))
        since = to_db(at - timedelta(days=1))
        batch = batch_of(self.core.db)
        memo = memo_of(self.core.db)
        # Read for the whole batch (prefetch_events), once: the run this check precedes changes it.
        row = memo.pop(("guard", automation.id, ref.entity.value, ref.id, since), None) if memo else None
        if row is not None:
            row = (row,)
        else:
            if batch is not None:  # this record's runs held by the batch count too
                batch.settle("automation_runs", "record", (automation.id, ref.entity.value, ref.id))
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
        acting_for: User | None = None,
    ) -> RunReport:
        """Run one automation for one record. Call inside the event's transaction.

        ``first_delivery``: the event was never processed before (no attempt), so no run
        of it can exist to continue (a run commits with its event's mark) and the lookup
        is skipped; the unique (automation, event, record) index still guards.

        ``acting_for``: the person whose change fired the run (in a dry run, the user
        running it); its share and revoke requests are theirs (DESIGN §9). ``None``: no
        person did (a schedule, a reminder, a load), and the automation acts itself.
        """
        started = time.perf_counter()
        now = self.core.now()
        trace: dict[str, Any] = {
            "trigger": {"type": automation.trigger_type, "data": _summary(data)},
            "acting_for": acting_for.username if acting_for is not None else None,
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
                        f"condition {cond['field']} {cond['op']} {brief(cond['value'])} is false",
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
                automation,
                _Run(run_id),
                ref,
                data,
                trace,
                dry_run,
                resumed=resumed,
                acting_for=acting_for,
            )
        elapsed = (time.perf_counter() - started) * 1000
        # Stored traces are capped (run_trace_max_bytes): a huge condition value or action
        # result would otherwise be stored again by every run.
        trace, text = cap_trace(trace, self._trace_cap())
        reason = cut_text(reason, 1000) if reason else reason
        _FINISH_RUN.run((status, reason, text, self.core.db_now(), elapsed, run_id))
        report = RunReport(run_id, automation.id, automation.name, status, reason, _label(ref), trace)
        if not dry_run:
            self._after_commit_run_finished(report)
        return report

    def _run_actions(
        self,
        automation: Automation,
        run: AutomationRun | _Run,
        ref: RecordRef | None,
        data: dict[str, Any],
        trace: dict[str, Any],
        dry_run: bool,
        *,
        resumed: bool = True,
        acting_for: User | None = None,
    ) -> tuple[str, str | None]:
        """Run the actions in order. ``resumed``: the run existed before (a retry), so
        steps already done are skipped; a new run has none to look up. ``acting_for``:
        the person the run acts for (see :meth:`run_one`)."""
        from sharetui.core.events.outbox import acting_for as events_acting_for
        from sharetui.core.facade import Acting, PluginServices, PluginStateStore

        person_id = acting_for.id if acting_for is not None else None

        statuses = []
        # What earlier steps hand on to later ones (an outcome's ``provides``, e.g. the
        # activity create_activity made), read back from a step done before a retry.
        carried: dict[str, Any] = {}
        for step, action in enumerate(automation.actions or []):
            if resumed and (done := _STEP_DONE.one((run.id, step))):
                carried.update(_provided((_loads(done[0]) or {}).get("data"), data))
                continue  # done before a retry: never twice
            kind = self.core.plugins.actions.get(action["type"])
            t0 = time.perf_counter()
            if kind is None:
                outcome = Outcome.failed(f"action {action['type']!r} is not registered (plugin missing?)")
            else:
                settings = _step_config(kind, action)
                acting = Acting(run_id=run.id, on_behalf_of=acting_for)
                ctx = ActionContext(
                    services=PluginServices(self.core, acting),
                    record=ref,
                    trigger_data={**data, **carried} if carried else data,
                    run_id=run.id,
                    step=step,
                    dry_run=dry_run,
                    plugin_state=PluginStateStore(self.core, kind.plugin),
                    acting_for=acting.acting_for,
                )
                try:
                    # A failing action leaves nothing half-written, and plugins never hear of it.
                    # What it changes names the person the run acts for, so the automations
                    # that change fires act for them too.
                    with self.core.dispatch.held(), self.core.db.atomic(), events_acting_for(person_id):
                        outcome = kind.run(ctx, dict(settings))
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
            _INSERT_STEP.run(
                (run.id, step, action["type"], outcome.status, cap_trace(entry, self._trace_cap())[1])
            )
            statuses.append(outcome.status)
            if outcome.status == "succeeded":
                carried.update(_provided(entry["data"], data))
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
        from sharetui.core.facade import Acting, PluginServices
        from sharetui.domain.roles import Source

        services = PluginServices(self.core, Acting(source=Source.PLUGIN))
        self.core.db.after_commit(
            lambda: host.call("sharetui_automation_run_finished", run=report.as_dict(), services=services)
        )

    # -- events ------------------------------------------------------------------------
    def process_event(self, event: OutboxEvent) -> list[RunReport]:
        """Run every matching automation for one event. Call inside a transaction."""
        trigger = trigger_for(event.topic, event.entity_type)
        reports: list[RunReport] = []
        if trigger is not None:
            payload = event.payload if event.payload is not None else {}
            if not isinstance(payload, dict):
                raise ValueError(f"event {event.id}'s payload is no JSON object")
            if trigger == "schedule":
                reports = self._fire_schedule(event, payload)
            else:
                ref = RecordRef(EntityType(event.entity_type), event.entity_id) if event.entity_type else None
                automations = self._candidates(trigger, self.core.now(), event.id)
                if automations:
                    data = self.trigger_data(trigger, ref, payload)
                    person = _person(payload)
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
                                    acting_for=person,
                                )
                            )
        _EVENT_DONE.run((self.core.db_now(), event.id))
        return reports

    def fire(
        self,
        trigger: str,
        record: RecordRef | None,
        data: dict[str, Any] | None = None,
        *,
        actor: User | None = None,
    ) -> int:
        """Let a plugin fire its own trigger (queued in the outbox, processed in order).

        The event's ``actor_id`` is sharetui's to set, never the plugin's: ``actor``
        (the person whose change a ``sharetui_record_changed`` hook heard of), else,
        fired from an automation action, the person that run acts for; otherwise no one.
        """
        if trigger not in self.core.plugins.triggers:
            raise UsageError(f"unknown trigger {trigger!r}")
        with self.core.db.atomic():
            ident = self.core.outbox.emit(
                f"trigger.{trigger}",
                record.entity.value if record else None,
                record.id if record else None,
                {**(data or {}), "actor_id": actor.id if actor is not None else None},
                need_id=True,
            )
            assert ident is not None
            return ident


def _person(payload: dict[str, Any]) -> User | None:
    """The person whose change wrote an event (its ``actor_id``), or None when no person
    did (a schedule, a reminder, a load, the system)."""
    ident = payload.get("actor_id")
    if ident is None:
        return None
    if type(ident) is not int:
        row = None
    else:
        memo = memo_of(database.obj)
        row = memo.get(("person-id", ident)) if memo is not None else None
        if row is None:
            row = _PERSON.one((ident,))
    if row is None:
        # Users are never deleted: an actor that names nobody is a damaged event. Fail
        # closed: act for someone who may share nothing, never with the automation's rights.
        return User(id=None, username=f"unknown user {str(ident)[:20]!r}", role="sales", active=False)
    return User(id=row[0], username=row[1], role=row[2], active=bool(row[3]))


def _provided(outcome_data: Any, trigger_data: dict[str, Any]) -> dict[str, Any]:
    """What a step's outcome hands on to the later steps of its run: its ``provides``
    mapping (e.g. ``{"created_activity": {...}}``), never overriding the trigger's data."""
    provides = outcome_data.get("provides") if isinstance(outcome_data, dict) else None
    if not isinstance(provides, dict):
        return {}
    return {k: v for k, v in provides.items() if isinstance(k, str) and k not in trigger_data}


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

"""The automation service: the one object ``core.automations`` is.

:class:`AutomationService` is composed of its parts, each in a module of its own and
mixed in: deciding events (:mod:`.engine`), schedules and reminders
(:mod:`.scheduling`) and trigger data (:mod:`.trigger_data`). This module holds what
admins do with definitions: add, update, publish or pause, list, read runs, dry-run
one on a record, and prune old runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sharetui.core.access.gate import Capability
from sharetui.core.automations.definitions import Definition, parse_definition, validate_definition
from sharetui.core.automations.engine import AutomationEngine
from sharetui.core.automations.queue import EventQueue
from sharetui.core.automations.reports import RunReport, _summary, automation_dict, run_dict
from sharetui.core.automations.scheduling import Scheduling
from sharetui.core.automations.trigger_data import TriggerData
from sharetui.db.models import Automation, AutomationRun, AutomationStep, ScheduleState, User
from sharetui.db.sql import Statement
from sharetui.domain.ids import MAX_ID, as_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Role
from sharetui.domain.time import iso, to_db
from sharetui.errors import NotFound, PermissionDenied, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core


class AutomationService(AutomationEngine, EventQueue, Scheduling, TriggerData):
    """Automations: their definitions (here), and through the parts it is made of,
    the engine that runs them, their schedules and the data their triggers carry."""

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

    def list(self, *, actor: User | None) -> list[dict[str, Any]]:
        """Every automation with its latest run (admins and sales managers; DESIGN §9)."""
        self.core.gate.require(actor, Capability.READ_AUTOMATIONS)
        latest = AutomationRun.select(_max_id()).group_by(AutomationRun.automation)
        last_runs = {r.automation_id: r for r in AutomationRun.select().where(AutomationRun.id.in_(latest))}
        out = []
        for a in Automation.select().order_by(Automation.id):
            item = automation_dict(a)
            last = last_runs.get(a.id)
            item["last_run"] = run_dict(last) if last else None
            if a.trigger_type == "schedule":
                item["schedule"] = self.describe_schedule(a)
            trigger = self.core.plugins.triggers.get(a.trigger_type)
            if trigger is not None and trigger.describe is not None:
                item["trigger_filter"] = trigger.describe(a.trigger_config or {})
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

    def visible_reports(self, actor: User | None, reports: list[RunReport]) -> tuple[list[RunReport], int]:
        """The run reports ``actor`` may see, and how many others ran.

        A run's report carries its trace (the trigger's data: a record's fields, a
        parent lead's) and its actions' messages (a notify action's rendered text):
        runs and traces are for admins and sales managers (DESIGN §9), so everyone
        else learns only that runs happened, whoever's change they came from.
        """
        if self.core.gate.allows(actor, Capability.READ_AUTOMATIONS):
            return reports, 0
        return [], len(reports)

    def show(self, ident: int | str, *, actor: User | None) -> Automation:
        """One automation, for ``actor`` to read (admins and sales managers)."""
        self.core.gate.require(actor, Capability.READ_AUTOMATIONS)
        return self.get(ident)

    def runs(
        self, ident: int | str, *, actor: User | None, limit: int = 50, before: int | None = None
    ) -> list[dict[str, Any]]:
        """An automation's runs with their traces, newest first (admins and sales
        managers: traces carry record data; DESIGN §9)."""
        self.core.gate.require(actor, Capability.READ_AUTOMATIONS)
        row = self.get(ident)
        query = AutomationRun.select().where(AutomationRun.automation == row.id)
        if before is not None:
            query = query.where(AutomationRun.id < before)
        return [run_dict(r) for r in query.order_by(AutomationRun.id.desc()).limit(limit)]

    # -- publishing ---------------------------------------------------------------
    @staticmethod
    def _high_water() -> int:
        """The newest outbox event id: a newly published automation acts on later ones only."""
        row = Statement("SELECT MAX(id) FROM outbox").one()
        return int(row[0] or 0) if row else 0

    # -- dry run and retention ------------------------------------------------------------
    def test(self, ident: int | str, record: RecordRef, *, actor: User | None) -> RunReport:
        """Dry run: what the automation would do on ``record`` now. Changes nothing.

        The actor must be able to read the record: the trace shows its fields. The run
        acts for the actor, as if their change had fired it (``trace["acting_for"]``);
        actions that say ``on_behalf_of = "automation"`` act as the automation.
        """
        self.core.gate.require(actor, Capability.READ_AUTOMATIONS)
        automation = self.get(ident)
        self.core.gate.require_read(actor, record)
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
                            "acting_for": actor.username if actor is not None else None,
                            "conditions": [],
                            "actions": [],
                        },
                    )
                else:
                    report = self.run_one(
                        automation, record, data, event_id=None, dry_run=True, acting_for=actor
                    )
                    report.id = None
                raise _Rollback
        except _Rollback:
            pass
        assert report is not None
        report.trace["dry_run"] = True
        warnings = self.plugin_warnings(automation)
        if warnings:
            report.trace["warnings"] = warnings
        return report

    def plugin_warnings(self, automation: Automation) -> list[str]:
        """What stands between the automation and a real run: its trigger or an action is
        not registered (the plugin that adds it is missing), or comes from a plugin that
        is set aside or failing (a dry run calls it anyway, so it may look fine)."""
        host = self.core.plugins
        warnings: list[str] = []
        parts = [("trigger", automation.trigger_type, host.triggers.get(automation.trigger_type))]
        parts += [
            ("action", a.get("type"), host.actions.get(a.get("type"))) for a in automation.actions or []
        ]
        for kind, name, registered in parts:
            if registered is None:
                warnings.append(
                    f"{kind} {name!r} is not registered: the plugin that adds it is missing "
                    "(not installed, blocked, or it failed to load; see `sharetui plugins`)"
                )
                continue
            problem = host.plugin_problem(registered.plugin)
            if problem:
                warnings.append(f"{kind} {name!r} comes from plugin {registered.plugin}, which {problem}")
        return list(dict.fromkeys(warnings))

    def prune_runs(self) -> int:
        """Keep runs for ``run_retention_days`` (steps go with them)."""
        days = int(self.core.settings.get("run_retention_days"))
        cutoff = to_db(self.core.now() - timedelta(days=days))
        with self.core.db.atomic():
            old = AutomationRun.select(AutomationRun.id).where(AutomationRun.started_at < cutoff)
            AutomationStep.delete().where(AutomationStep.run.in_(old)).execute()
            return AutomationRun.delete().where(AutomationRun.started_at < cutoff).execute()


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


def _max_id() -> Any:
    from peewee import fn

    return fn.MAX(AutomationRun.id)

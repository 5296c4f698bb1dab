"""Scripted demo stories, run: :class:`StoryRunner` plays a checked story's steps on
a throwaway demo bank with a simulated clock, printing a timeline of :class:`Event`
lines; ``expect`` steps make a story self-checking.

The story file format, and reading and checking a file before anything runs, are in
:mod:`sharetui.ops.story_files`; this module re-exports its names (``load_story``,
``find_story``, ``list_stories``, ``Story``, ``StoryError``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sharetui.clock import FrozenClock
from sharetui.domain.durations import offset_from, parse_duration
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.errors import SharetuiError, UsageError
from sharetui.ops.story_files import Step, Story, StoryError, find_story, list_stories, load_story


@dataclass
class Event:
    """One line of the timeline."""

    at: datetime
    step: int
    kind: str
    actor: str | None
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "step": self.step,
            "kind": self.kind,
            "actor": self.actor,
            "text": self.text,
            "data": self.data,
        }


Printer = Callable[[Event], None]


class StoryRunner:
    """Runs a checked story against a Core whose clock is a FrozenClock."""

    def __init__(self, core: Any, story: Story, emit: Printer) -> None:
        if not isinstance(core.clock, FrozenClock):
            raise UsageError("a story needs a frozen clock")
        self.core = core
        self.story = story
        self.emit = emit
        self.actor = core.users.acting(None)
        self.aliases: dict[str, tuple[str, int]] = {}
        self.last_request: Any = None
        self.last_runs: list[Any] = []
        self.failures: list[str] = []
        self.position = 0
        # The records this story is about: what the worker does to others in the demo
        # bank (their reminders, expiries, automation runs) is not its story.
        self.cast: set[tuple[str, int]] = set()
        for step in story.steps:
            self._cast_of(step.args)

    def _cast_of(self, args: Any) -> None:
        """Add the records ``args`` name, as far as they exist yet (a record the story
        makes joins the cast when it is made)."""
        if not isinstance(args, dict):
            return
        for key in ("lead", "opp"):
            if key in args:
                with contextlib.suppress(UsageError, ValueError, TypeError):
                    self._record({key: args[key]})
        for kind in ("task", "activity", "context"):
            if args.get(kind) is not None:
                self._cast_parent("activity" if kind == "context" else kind, args[kind])

    def _cast_parent(self, kind: str, value: Any) -> None:
        from sharetui.db.models import Activity, Task

        model = Activity if kind == "activity" else Task
        try:
            row = model.get_or_none(model.id == self._ref_id(kind, value))
        except (UsageError, ValueError, TypeError):
            return
        if row is not None:
            if row.lead_id:
                self.cast.add((EntityType.LEAD.value, row.lead_id))
            if row.opportunity_id:
                self.cast.add((EntityType.OPPORTUNITY.value, row.opportunity_id))

    # -- naming things ------------------------------------------------------------------
    def _say(self, step: Step, kind: str, text: str, **data: Any) -> None:
        self.emit(
            Event(self.core.now(), step.index, kind, self.actor.username if self.actor else None, text, data)
        )

    def _record(self, args: dict[str, Any]) -> RecordRef:
        from sharetui.db.models import Lead, Opportunity

        entity = EntityType.LEAD if "lead" in args else EntityType.OPPORTUNITY
        value = args["lead"] if entity is EntityType.LEAD else args["opp"]
        model = Lead if entity is EntityType.LEAD else Opportunity
        if isinstance(value, int):
            ident = value
        elif value in self.aliases:
            ident = self.aliases[value][1]
        else:
            row = model.get_or_none(model.ref == value)
            if row is None:
                raise UsageError(f"no {entity.value} {value!r} in the demo data")
            ident = row.id
        self.cast.add((entity.value, ident))
        return RecordRef(entity, ident)

    def _ref_id(self, kind: str, value: Any) -> int:
        from sharetui.db.models import Activity, Task

        if isinstance(value, int):
            return value
        if value in self.aliases:
            return self.aliases[value][1]
        model = Activity if kind == "activity" else Task
        row = model.get_or_none(model.ref == value)
        if row is None:
            raise UsageError(f"no {kind} {value!r} in the demo data or earlier in the story")
        return row.id

    # -- running ---------------------------------------------------------------------------
    def run(self) -> list[str]:
        while self.position < len(self.story.steps):
            self.step()
        return self.failures

    def step(self) -> Step | None:
        if self.position >= len(self.story.steps):
            return None
        step = self.story.steps[self.position]
        self.position += 1
        if step.say and step.action != "say":
            self._say(step, "say", step.say)
        try:
            getattr(self, f"_do_{step.action}")(step, step.args)
        except SharetuiError as exc:
            self.failures.append(f"step {step.index} ({step.action}): {exc.message}")
            self._say(step, "error", f"step {step.index} ({step.action}) could not run: {exc.message}")
        return step

    def _automations(self, step: Step) -> None:
        self.last_runs = self.core.automations.process_pending()
        for report in self.last_runs:
            self._say(step, "automation", report.summary(), run=report.as_dict())

    def _do_say(self, step: Step, text: str) -> None:
        self._say(step, "say", text)

    def _do_act_as(self, step: Step, username: str) -> None:
        self.actor = self.core.users.get(username)
        self._say(step, "act_as", f"now acting as {self.actor.username} ({self.actor.role})")

    def _do_set(self, step: Step, values: dict[str, Any]) -> None:
        for key, value in values.items():
            stored = self.core.settings.set(key, value, actor=None)
            self._say(step, "set", f"setting {key} = {stored}")

    def _do_post_activity(self, step: Step, args: dict[str, Any]) -> None:
        ref = self._record(args)
        act = self.core.records.post_activity(
            ref,
            type=args["type"],
            actor=self.actor,
            owner=args.get("owner"),
            note=args.get("note", ""),
            status=args.get("status", "open"),
            fields=args.get("fields") or {},
        )
        if "as" in args:
            self.aliases[str(args["as"])] = ("activity", act.id)
        owner = f" owned by {args['owner']}" if args.get("owner") else " (no owner)"
        self._say(
            step,
            "activity",
            f"posted {args['type']!r} (activity {act.id}) on {ref}{owner}",
            activity_id=act.id,
        )
        self._automations(step)

    def _do_add_opportunity(self, step: Step, args: dict[str, Any]) -> None:
        lead = self._record({"lead": args["lead"]})
        opp = self.core.records.add_opportunity(
            lead=lead.id,
            name=args["name"],
            type=args["type"],
            owner=args["owner"],
            stage=args.get("stage", "prospecting"),
            amount=args.get("amount", 0),
            fields=args.get("fields") or {},
            actor=self.actor,
        )
        self.cast.add((EntityType.OPPORTUNITY.value, opp.id))
        if "as" in args:
            self.aliases[str(args["as"])] = ("opportunity", opp.id)
        self._say(
            step,
            "record",
            f"added opportunity {opp.id} ({args['type']}, {args.get('amount', 0):,}) on {lead} "
            f"for {args['owner']}",
            opportunity_id=opp.id,
        )
        self._automations(step)

    def _newest_open_activity(self, args: dict[str, Any]) -> int:
        from sharetui.db.models import Activity, ActivityType

        ref = self._record(args)
        column = Activity.lead if ref.entity is EntityType.LEAD else Activity.opportunity
        row = (
            Activity.select(Activity.id)
            .join(ActivityType)
            .where((column == ref.id) & (ActivityType.name == args["type"]) & (Activity.status == "open"))
            .order_by(Activity.id.desc())
            .first()
        )
        if row is None:
            raise UsageError(f"no open {args['type']!r} activity on {ref}")
        return row.id

    def _do_update_activity(self, step: Step, args: dict[str, Any]) -> None:
        if "activity" in args:
            ident = self._ref_id("activity", args["activity"])
        else:
            ident = self._newest_open_activity(args)
        act = self.core.records.update_activity(
            ident,
            actor=self.actor,
            status=args.get("status"),
            note=args.get("note"),
            fields=args.get("fields"),
        )
        self._say(step, "activity", f"updated activity {ident} ({act.type.name}): {act.status}")
        self._automations(step)

    def _do_add_task(self, step: Step, args: dict[str, Any]) -> None:
        ref = self._record(args)
        now = self.core.now()
        task = self.core.records.add_task(
            ref,
            owner=args["owner"],
            subject=args["subject"],
            actor=self.actor,
            due_at=offset_from(now, args["due"]) if args.get("due") else None,
            reminder_at=offset_from(now, args["reminder"]) if args.get("reminder") else None,
        )
        if "as" in args:
            self.aliases[str(args["as"])] = ("task", task.id)
        when = f", reminder {args['reminder']}" if args.get("reminder") else ""
        self._say(
            step, "task", f"added task {task.id} {args['subject']!r} on {ref} for {args['owner']}{when}"
        )
        self._automations(step)

    def _do_complete_task(self, step: Step, args: dict[str, Any]) -> None:
        ident = self._ref_id("task", args["task"])
        self.core.records.complete_task(ident, actor=self.actor)
        self._say(step, "task", f"completed task {ident}")
        self._automations(step)

    def _do_share(self, step: Step, args: dict[str, Any]) -> None:
        ref = self._record(args)
        context = self._ref_id("activity", args["context"]) if args.get("context") is not None else None
        result = self.core.sharing.share(
            ref.entity,
            ref.id,
            args["with"],
            requester=self.actor,
            duration=args.get("for"),
            access=args.get("access", "read"),
            context=context,
            until_completed=bool(args.get("until_completed", False)),
        )
        self._request(step, result, f"share {ref} with {args['with']}")
        self._automations(step)

    def _do_revoke(self, step: Step, args: dict[str, Any]) -> None:
        ref = self._record(args)
        context = self._ref_id("activity", args["context"]) if args.get("context") is not None else None
        result = self.core.sharing.revoke(
            ref.entity,
            ref.id,
            args["user"],
            requester=self.actor,
            context=context,
            all_contexts=bool(args.get("all_contexts", False)),
        )
        self._request(step, result, f"revoke {args['user']}'s share of {ref}")

    def _request(self, step: Step, result: Any, what: str) -> None:
        from sharetui.domain.time import local_text

        self.last_request = result
        if result.ok:
            grants = [result.grant] if result.grant else result.grants
            for g in grants:
                ctx = f" in the context of activity {g['context']}" if g["context"] else ""
                if result.outcome == "revoked":
                    text = f"request {result.request_id}: revoked {g['user']}'s {g['access']} share{ctx}"
                else:
                    text = (
                        f"request {result.request_id}: {result.outcome} {g['access']} access for {g['user']}"
                        f"{ctx} until {local_text(g['expires_at'])}"
                    )
                self._say(step, "share", text, result=result.as_dict())
        else:
            self._say(
                step,
                "refused",
                f"request {result.request_id} to {what} failed: {result.reason}",
                result=result.as_dict(),
            )

    def _do_advance(self, step: Step, amount: str) -> None:
        from sharetui.core.events.worker import Worker
        from sharetui.db import fn
        from sharetui.db.models import HistoryEvent, Task
        from sharetui.domain.text import visible
        from sharetui.domain.time import local_text

        self.core.clock.set(offset_from(self.core.now(), str(amount)))
        self._say(
            step,
            "clock",
            f"the clock moves {parse_duration(str(amount)).words} to {local_text(self.core.now())}",
        )
        last = HistoryEvent.select(fn.MAX(HistoryEvent.id)).scalar() or 0
        report = Worker(self.core, name="story").tick()
        # Only this story's records: the demo bank's other tasks and shares move too.
        lifecycle = Counter(
            event
            for event, entity, ident in HistoryEvent.select(
                HistoryEvent.event, HistoryEvent.entity_type, HistoryEvent.entity_id
            )
            .where((HistoryEvent.id > last) & HistoryEvent.event.in_(("expired", "expiring_soon")))
            .tuples()
            if (entity, ident) in self.cast
        )
        now = self.core.db_now()
        reminders = sum(
            1
            for lead, opp in Task.select(Task.lead, Task.opportunity).where(Task.reminded_at == now).tuples()
            # A task's reminder is about its opportunity, or its lead if it has none.
            if ((EntityType.OPPORTUNITY.value, opp) if opp else (EntityType.LEAD.value, lead)) in self.cast
        )
        if lifecycle["expired"]:
            self._say(step, "expired", f"{lifecycle['expired']} share(s) expired")
        if lifecycle["expiring_soon"]:
            self._say(step, "notice", f"{lifecycle['expiring_soon']} share(s) expiring soon")
        if reminders:
            self._say(step, "task", f"{reminders} task reminder(s) fell due")
        for run in report.reports:
            if run.record is None or tuple(_split_record(run.record)) in self.cast:
                self._say(step, "automation", visible(run.summary(), one_line=True), run=run.as_dict())

    def _do_sweep(self, step: Step, _: Any) -> None:
        result = self.core.expiry.sweep()
        self._say(step, "sweep", f"sweep: {result.expired} expired, {result.warned} expiring soon")

    def _do_check(self, step: Step, args: dict[str, Any]) -> None:
        ref = self._record(args)
        decision = self.core.access.explain(args["user"], ref, actor=None)
        reasons = "; ".join(decision.reasons + [f"denied: {d}" for d in decision.denials])
        self._say(
            step,
            "check",
            f"{decision.user} {('can ' + decision.level.label) if decision.level else 'cannot see'} "
            f"{ref}" + (f" — {reasons}" if reasons else ""),
            level=decision.level.label,
        )

    def _do_history(self, step: Step, args: dict[str, Any]) -> None:
        from sharetui.core.history import HistoryFilter
        from sharetui.domain.time import local_text

        ref = self._record(args) if ("lead" in args or "opp" in args) else None
        rows = self.core.history.query(None, HistoryFilter(record=ref, user=args.get("user")), limit=None)
        self._say(step, "history", f"history of {ref or 'everything'}: {len(rows)} event(s)")
        for h in rows:
            extra = (
                f" until {local_text(h['expires_at'])}"
                if h["expires_at"] and h["event"] in ("granted", "renewed")
                else ""
            )
            reason = f" ({h['reason']})" if h["reason"] and h["event"] not in ("expired",) else ""
            self._say(
                step,
                "history",
                f"  {local_text(h['at'])} {h['event']:<13} {h['user'] or '-'} "
                f"{h['access'] or ''}{extra} [{h['source']}]{reason}",
            )

    def _do_expect(self, step: Step, args: dict[str, Any]) -> None:
        problems = []
        if "access" in args:
            ref = self._record(args)
            level = self.core.access.level(args["user"], ref).label
            if level != args["access"]:
                problems.append(f"{args['user']} has {level} access to {ref}, expected {args['access']}")
        if "request" in args:
            got = self.last_request.status if self.last_request else "no request yet"
            if got != args["request"]:
                problems.append(f"the last request was {got}, expected {args['request']}")
            wanted = args.get("reason_contains")
            if wanted and (not self.last_request or wanted not in (self.last_request.reason or "")):
                problems.append(f"the last request's reason does not mention {wanted!r}")
        if "automation_runs" in args:
            done = [r for r in self.last_runs if r.status == "succeeded"]
            if len(done) != int(args["automation_runs"]):
                problems.append(
                    f"{len(done)} automation run(s) succeeded, expected {args['automation_runs']}"
                )
        if problems:
            for p in problems:
                self.failures.append(f"step {step.index} (expect): {p}")
            self._say(step, "expect_failed", "EXPECTED BUT NOT SO: " + "; ".join(problems))
        else:
            self._say(step, "expect", "as expected: " + _describe_expectation(args))

    def _do_add_leads(self, step: Step, args: dict[str, Any]) -> None:
        from sharetui.db.models import Lead

        owner = self.core.users.get(args["owner"])
        now = self.core.db_now()
        prefix = args.get("prefix", "Extra lead")
        with self.core.db.atomic():
            rows = [
                dict(name=f"{prefix} {i + 1}", owner=owner.id, fields={}, created_at=now, updated_at=now)
                for i in range(int(args["count"]))
            ]
            for start in range(0, len(rows), 500):
                Lead.insert_many(rows[start : start + 500]).execute()
        self._say(step, "data", f"added {args['count']} leads owned by {owner.username}")

    def _do_share_each(self, step: Step, args: dict[str, Any]) -> None:
        from sharetui.db.models import Lead

        owner = self.core.users.get(args["owner"])
        query = Lead.select(Lead.id).where(Lead.owner == owner.id).order_by(Lead.id)
        if args.get("limit"):
            query = query.limit(int(args["limit"]))
        done = failed = 0
        for lead in query:
            self.cast.add((EntityType.LEAD.value, lead.id))
            result = self.core.sharing.share(
                "lead",
                lead.id,
                args["with"],
                requester=self.actor,
                duration=args.get("for"),
                access=args.get("access", "read"),
            )
            self.last_request = result
            done += result.ok
            failed += not result.ok
        self._say(
            step,
            "share",
            f"shared {done} of {owner.username}'s leads with {args['with']}"
            + (f"; {failed} refused" if failed else ""),
        )


def _split_record(label: str) -> tuple[str, int]:
    """``"opportunity 3"`` (a run's record) as ``("opportunity", 3)``."""
    entity, _, ident = label.partition(" ")
    return entity, int(ident) if ident.isdigit() else -1


def _describe_expectation(args: dict[str, Any]) -> str:
    if "access" in args:
        record = f"lead {args['lead']}" if "lead" in args else f"opp {args['opp']}"
        level = "no" if args["access"] == "none" else args["access"]
        return f"{args['user']} has {level} access to {record}"
    if "request" in args:
        return f"the last request {args['request']}" + (
            f" ({args['reason_contains']!r})" if args.get("reason_contains") else ""
        )
    return f"{args['automation_runs']} automation run(s) succeeded"


__all__ = [
    "Access",
    "Event",
    "Story",
    "StoryError",
    "StoryRunner",
    "find_story",
    "list_stories",
    "load_story",
]

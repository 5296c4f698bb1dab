"""Scripted demo stories: TOML files of steps run on a throwaway demo bank with
a simulated clock, printed as a timeline; ``expect`` steps make them self-checking.

A story file::

    title = "Pre-sales hands a lead to sales"
    description = "..."
    start = "2026-03-02T09:00:00Z"      # optional: when the clock starts
    plugins = ["business_hours"]        # optional: example plugins from plugins/
    settings = { share_cap_leads = 5 }  # optional

    [[steps]]
    act_as = "priya"
    say = "Priya works the lead."        # optional narration on any step

    [[steps]]
    post_activity = { lead = "L003", type = "Meeting Scheduled", owner = "daniel", as = "meeting" }

    [[steps]]
    expect = { user = "daniel", lead = "L003", access = "edit" }

Every step has exactly one action: ``act_as``, ``say``, ``post_activity``,
``update_activity``, ``add_task``, ``complete_task``, ``share``, ``revoke``,
``advance``, ``check``, ``history``, ``expect``, ``sweep``, ``set``,
``add_leads``, ``share_each``. Records are named by their sample ``ref``
(``L003``, ``O004``, ``A007``, ``T001``), an ``as`` alias given earlier in the
story, or an id. The whole file is checked before anything runs.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sharetui.clock import FROZEN_YEARS, FrozenClock, parse_instant
from sharetui.domain.durations import offset_from, parse_duration
from sharetui.domain.ids import MAX_ID
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.errors import SharetuiError, UsageError

DEFAULT_START = "2026-03-02T09:00:00Z"  # a Monday morning

# action -> (allowed keys when a table, required keys); a plain value is allowed where noted
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "act_as": (set(), set()),
    "say": (set(), set()),
    "post_activity": ({"lead", "opp", "type", "owner", "note", "as", "status", "fields"}, {"type"}),
    "update_activity": ({"activity", "status", "note", "fields"}, {"activity"}),
    "add_task": ({"lead", "opp", "owner", "subject", "due", "reminder", "as"}, {"owner", "subject"}),
    "complete_task": ({"task"}, {"task"}),
    "share": ({"lead", "opp", "with", "for", "access", "context", "until_completed"}, {"with"}),
    "revoke": ({"lead", "opp", "user", "context", "all_contexts"}, {"user"}),
    "advance": (set(), set()),
    "check": ({"user", "lead", "opp"}, {"user"}),
    "history": ({"lead", "opp", "user"}, set()),
    "expect": ({"user", "lead", "opp", "access", "request", "reason_contains", "automation_runs"}, set()),
    "sweep": (set(), set()),
    "set": (set(), set()),
    "add_leads": ({"count", "owner", "prefix"}, {"count", "owner"}),
    "share_each": ({"owner", "with", "for", "access", "limit"}, {"owner", "with"}),
}
SCALAR_ACTIONS = {"act_as", "say", "advance", "sweep", "set", "complete_task"}
RECORD_ACTIONS = {"post_activity", "add_task", "share", "revoke", "check", "history"}


@dataclass
class Step:
    index: int
    action: str
    args: Any
    say: str | None = None


@dataclass
class Story:
    name: str
    path: Path
    title: str
    description: str
    start: datetime
    plugins: list[str]
    settings: dict[str, Any]
    steps: list[Step]


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


class StoryError(UsageError):
    """A story file that cannot run; names the file, the step and the problem."""


def stories_dir(sample: Path) -> Path:
    return sample / "demos"


def list_stories(folder: Path) -> list[tuple[str, str, str]]:
    """(name, title, description) of every story in ``folder``."""
    out = []
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            out.append((path.stem, "(unreadable story)", ""))
            continue
        out.append((path.stem, str(data.get("title", path.stem)), str(data.get("description", ""))))
    return out


def find_story(folder: Path, name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return path
    candidate = folder / f"{name}.toml"
    if candidate.exists():
        return candidate
    known = ", ".join(n for n, _, _ in list_stories(folder)) or "none"
    raise UsageError(f"no story named {name!r} (known: {known}); `sharetui demo --list` lists them")


def load_story(path: Path) -> Story:
    """Read and check a story file. Raises :class:`StoryError` naming file, step and problem."""
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise StoryError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise StoryError(f"{where}: not valid TOML: {exc}") from None
    except ValueError:  # tomllib hands int() numbers of any length, and int() refuses 4300+ digits
        raise StoryError(f"{where}: not valid TOML: a number has too many digits") from None
    except RecursionError:
        raise StoryError(f"{where}: not valid TOML: arrays or tables nested too deeply") from None
    except OSError as exc:
        raise StoryError(f"{where}: cannot read: {exc.strerror}") from None
    unknown = set(data) - {"title", "description", "start", "plugins", "settings", "steps"}
    if unknown:
        raise StoryError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        start = parse_instant(str(data.get("start", DEFAULT_START)))
    except UsageError:
        raise StoryError(f"{where}: start {data.get('start')!r} is not an ISO-8601 time") from None
    if start.year not in FROZEN_YEARS:  # the sample data and the story move the clock from it
        raise StoryError(f"{where}: start {data.get('start')!r} must fall between the years 1900 and 8999")
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise StoryError(f"{where}: plugins must be a list of example plugin names")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise StoryError(f"{where}: settings must be a table")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise StoryError(f"{where}: needs [[steps]]")
    steps = []
    aliases: set[str] = set()
    for index, raw in enumerate(raw_steps, start=1):
        steps.append(_check_step(where, index, raw, aliases, start))
    return Story(
        path.stem,
        path,
        str(data.get("title", path.stem)),
        str(data.get("description", "")),
        start,
        plugins,
        settings,
        steps,
    )


# What the values of step keys must be; checked before anything runs.
_KINDS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("with", "user", "owner", "type", "subject", "note", "prefix", "as"), (str,)),
    **dict.fromkeys(("status", "reason_contains", "access"), (str,)),
    **dict.fromkeys(("until_completed", "all_contexts"), (bool,)),
    **dict.fromkeys(("count", "limit", "automation_runs"), (int,)),
    **dict.fromkeys(("lead", "opp", "activity", "context", "task"), (str, int)),
    "fields": (dict,),
}
_CHOICES = {"access": ("read", "edit"), "status": ("open", "completed")}
MAX_ADDED_LEADS = 100_000


def _value_problem(action: str, key: str, value: Any) -> str | None:
    """Why a step's value cannot be used (checked before anything runs), or None."""
    kinds = _KINDS.get(key)
    if kinds is None or (action == "expect" and key == "access"):
        return None
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        wanted = " or ".join("true/false" if k is bool else k.__name__ for k in kinds)
        return f"must be {wanted}, not {value!r}"
    if isinstance(value, int) and not isinstance(value, bool):
        top = MAX_ADDED_LEADS if key in ("count", "limit") else MAX_ID
        if not 0 <= value <= top:
            return f"must be a whole number from 0 to {top}, not {value}"
    if key in _CHOICES and value not in _CHOICES[key]:
        return f"must be one of {', '.join(_CHOICES[key])}, not {value!r}"
    return None


def _check_step(where: str, index: int, raw: Any, aliases: set[str], start: datetime) -> Step:
    def fail(problem: str) -> StoryError:
        return StoryError(f"{where}: step {index}: {problem}")

    if not isinstance(raw, dict):
        raise fail("must be a table")
    say = raw.get("say")
    if say is not None and not isinstance(say, str):
        raise fail("say must be text")
    actions = [k for k in raw if k != "say"]
    if not actions:
        if say is None:
            raise fail("is empty")
        return Step(index, "say", say, say)
    if len(actions) > 1:
        raise fail(f"has more than one action ({', '.join(actions)}); write one per step")
    action = actions[0]
    if action not in ACTIONS:
        raise fail(f"unknown action {action!r} (known: {', '.join(sorted(ACTIONS))})")
    args = raw[action]
    allowed, required = ACTIONS[action]
    if action in SCALAR_ACTIONS and not isinstance(args, dict):
        if action == "advance":
            try:
                offset_from(start, "+" + str(parse_duration(str(args))))
            except SharetuiError as exc:
                raise fail(f"advance: {exc.message}") from None
        elif action == "act_as" and not isinstance(args, str):
            raise fail("act_as takes a username")
        elif action == "set":
            raise fail("set takes a table of settings")
        elif action == "complete_task":
            problem = _value_problem(action, "task", args)
            if problem:
                raise fail(f"complete_task: {problem}")
            return Step(index, action, {"task": args}, say)
        return Step(index, action, args, say)
    if action == "set":
        if not isinstance(args, dict) or not args:
            raise fail("set takes a table of settings")
        return Step(index, action, args, say)
    if not isinstance(args, dict):
        raise fail(f"{action} takes a table, e.g. {action} = {{ ... }}")
    extra = set(args) - allowed
    if extra:
        raise fail(
            f"{action}: unknown key(s) {', '.join(sorted(extra))} (known: {', '.join(sorted(allowed))})"
        )
    missing = required - set(args)
    if missing:
        raise fail(f"{action}: missing {', '.join(sorted(missing))}")
    for key, value in args.items():
        problem = _value_problem(action, key, value)
        if problem:
            raise fail(f"{action}.{key}: {problem}")
    if action in RECORD_ACTIONS and action != "history" and ("lead" in args) == ("opp" in args):
        raise fail(f"{action}: name exactly one of lead or opp")
    if action == "expect":
        if "access" in args:
            if "user" not in args or ("lead" in args) == ("opp" in args):
                raise fail("expect access: give user and exactly one of lead or opp")
            if args["access"] not in ("none", "read", "edit"):
                raise fail("expect access: must be none, read or edit")
        elif "request" in args:
            if args["request"] not in ("completed", "failed"):
                raise fail("expect request: must be completed or failed")
        elif "automation_runs" not in args:
            raise fail("expect: give access (with user and a record), request, or automation_runs")
    for key in ("for",):
        if key in args:
            try:
                parse_duration(str(args[key]))
            except SharetuiError as exc:
                raise fail(f"{action}.{key}: {exc.message}") from None
    for key in ("due", "reminder"):
        if key in args:
            try:
                offset_from(start, str(args[key]))
            except SharetuiError as exc:
                raise fail(f"{action}.{key}: {exc.message}") from None
    for key in ("activity", "context", "task"):
        value = args.get(key)
        if isinstance(value, str) and not value[:1].isalpha():
            raise fail(f"{action}.{key}: {value!r} is not a ref, an alias or an id")
    if "as" in args:
        aliases.add(str(args["as"]))
    return Step(index, action, args, say)


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
            return RecordRef(entity, value)
        if value in self.aliases:
            return RecordRef(entity, self.aliases[value][1])
        row = model.get_or_none(model.ref == value)
        if row is None:
            raise UsageError(f"no {entity.value} {value!r} in the demo data")
        return RecordRef(entity, row.id)

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

    def _do_update_activity(self, step: Step, args: dict[str, Any]) -> None:
        ident = self._ref_id("activity", args["activity"])
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
        from sharetui.domain.time import local_text

        self.core.clock.set(offset_from(self.core.now(), str(amount)))
        self._say(
            step,
            "clock",
            f"the clock moves {parse_duration(str(amount)).words} to {local_text(self.core.now())}",
        )
        report = Worker(self.core, name="story").tick()
        if report.expired:
            self._say(step, "expired", f"{report.expired} share(s) expired")
        if report.warned:
            self._say(step, "notice", f"{report.warned} share(s) expiring soon")
        if report.reminders:
            self._say(step, "task", f"{report.reminders} task reminder(s) fell due")
        for line in report.summaries:
            self._say(step, "automation", line)

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

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
story, or an id. The whole file is checked before anything runs: this module
reads and checks it (:func:`load_story`); :mod:`sharetui.ops.stories` runs it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sharetui.clock import FROZEN_YEARS, parse_instant
from sharetui.domain.durations import offset_from, parse_duration
from sharetui.domain.ids import MAX_ID
from sharetui.errors import DataFileError, SharetuiError, UsageError
from sharetui.ops.input_files import DEFAULT_LIMIT, read_text

DEFAULT_START = "2026-03-02T09:00:00Z"  # a Monday morning

# action -> (allowed keys when a table, required keys); a plain value is allowed where noted
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "act_as": (set(), set()),
    "say": (set(), set()),
    "post_activity": ({"lead", "opp", "type", "owner", "note", "as", "status", "fields"}, {"type"}),
    "update_activity": ({"activity", "lead", "opp", "type", "status", "note", "fields"}, set()),
    "add_opportunity": (
        {"lead", "name", "type", "amount", "owner", "stage", "fields", "as"},
        {"lead", "name", "type", "owner"},
    ),
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


class StoryError(UsageError):
    """A story file that cannot run; names the file, the step and the problem."""


def stories_dir(sample: Path) -> Path:
    return sample / "demos"


def list_stories(folder: Path) -> list[tuple[str, str, str]]:
    """(name, title, description) of every story in ``folder``."""
    out = []
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(read_text(path, DEFAULT_LIMIT))
        except (tomllib.TOMLDecodeError, DataFileError, ValueError, RecursionError):
            out.append((path.stem, "(unreadable story)", ""))
            continue
        out.append((path.stem, str(data.get("title", path.stem)), str(data.get("description", ""))))
    return out


def find_story(folder: Path, name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" and _exists(path):
        return path
    candidate = folder / f"{name}.toml"
    if "/" not in name and "\\" not in name and _exists(candidate):
        return candidate
    known = ", ".join(n for n, _, _ in list_stories(folder)) or "none"
    raise UsageError(f"no story named {name!r} (known: {known}); `sharetui demo --list` lists them")


def _exists(path: Path) -> bool:
    """Whether ``path`` exists (reading it checks what it is and its size); a name the
    system refuses (too long, a NUL) names nothing."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def load_story(path: Path) -> Story:
    """Read and check a story file. Raises :class:`StoryError` naming file, step and problem."""
    where = str(path)
    try:
        # At most max_input_bytes (its default: a demo never opens your database).
        data = tomllib.loads(read_text(path, DEFAULT_LIMIT))
    except DataFileError as exc:
        raise StoryError(exc.message) from None
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
    **dict.fromkeys(
        ("with", "user", "owner", "type", "subject", "note", "prefix", "as", "name", "stage"), (str,)
    ),
    "amount": (int, float),
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
    if action == "update_activity" and ("activity" in args) == bool({"lead", "opp", "type"} & set(args)):
        raise fail(
            "update_activity: name the activity, or a lead (or opp) and a type for its newest open one"
        )
    if (
        action == "update_activity"
        and "activity" not in args
        and ("type" not in args or ("lead" in args) == ("opp" in args))
    ):
        raise fail("update_activity: give a type and exactly one of lead or opp")
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

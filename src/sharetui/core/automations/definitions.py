"""Automation definitions: read from TOML (DESIGN .4), validated against each
trigger's and action's schema, with errors naming the bad key and its line."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.clock import parse_instant
from sharetui.domain.text import locate_text_problem
from sharetui.errors import UsageError
from sharetui.sdk.types import validate_config

if TYPE_CHECKING:
    from sharetui.host import PluginHost

STATUSES = ("draft", "published", "paused")
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "in", "contains")
FIELD_ROOTS = ("lead", "opportunity", "activity", "task", "event", "schedule")
_TOP_KEYS = {"name", "description", "status", "starts_at", "ends_at", "trigger", "conditions", "actions"}
_CONDITION_KEYS = {"field", "op", "value"}
NAME_MAX = 200  # the automations.name column (PostgreSQL refuses a longer one)


@dataclass
class Definition:
    name: str
    description: str
    trigger_type: str
    trigger_config: dict[str, Any]
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    status: str = "draft"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    source_text: str = ""
    warnings: list[str] = field(default_factory=list)


class _Lines:
    """Finds the line of a key in a TOML text: ``[trigger]``, ``[[actions]]`` #n."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.]+)\s*\]\]?")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]+\")\s*=")

    def __init__(self, text: str) -> None:
        self.where: dict[tuple[str, int, str], int] = {}
        self.headers: dict[tuple[str, int], int] = {}
        section, counts, index = "", {}, 0
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                section = header.group(2)
                if header.group(1) == "[[":
                    index = counts.get(section, -1) + 1
                    counts[section] = index
                else:
                    index = 0
                self.headers.setdefault((section, index), number)
                continue
            key = self._KEY.match(line)
            if key:
                self.where.setdefault((section, index, key.group(1).strip('"')), number)

    def line(self, section: str, index: int, key: str | None) -> int | None:
        if key is not None and (section, index, key) in self.where:
            return self.where[(section, index, key)]
        return self.headers.get((section, index))


def _error(source: str, line: int | None, where: str, problem: str) -> UsageError:
    at = f"{source}:{line}" if line else source
    return UsageError(f"{at}: {where}: {problem}")


def parse_definition(text: str, host: PluginHost, source: str = "automation") -> Definition:
    """Parse and validate an automation file. Raises :class:`UsageError` naming key and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML: {exc}") from None
    except ValueError:  # tomllib hands int() numbers of any length, and int() refuses 4300+ digits
        raise UsageError(f"{source}: not valid TOML: a number has too many digits") from None
    except RecursionError:
        raise UsageError(f"{source}: not valid TOML: arrays or tables nested too deeply") from None
    lines = _Lines(text)
    return validate_definition(data, host, source, lines, text)


def _lookup(host: Any) -> Any:
    """Users and groups to check ``user``/``group`` config values against (None before
    the host is bound to a database)."""
    core = getattr(host, "core", None)
    if core is None:
        return None
    from sharetui.core.facade import PluginServices

    return PluginServices(core).users


def validate_definition(
    data: dict[str, Any],
    host: PluginHost,
    source: str = "automation",
    lines: _Lines | None = None,
    text: str = "",
) -> Definition:
    """Validate a definition given as a dict (TOML-shaped); used by files and the TUI form."""
    lines = lines or _Lines("")

    def fail(section: str, index: int, key: str | None, where: str, problem: str) -> UsageError:
        return _error(source, lines.line(section, index, key), where, problem)

    for key in data:
        if key not in _TOP_KEYS:
            raise fail("", 0, key, key, f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    _check_text(data, fail)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("", 0, "name", "name", "required: a non-empty string")
    if len(name.strip()) > NAME_MAX:
        raise fail("", 0, "name", "name", f"at most {NAME_MAX} characters, not {len(name.strip()):,}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("", 0, "description", "description", "must be a string")
    status = data.get("status", "draft")
    if status not in STATUSES:
        raise fail("", 0, "status", "status", f"{status!r} is not one of {', '.join(STATUSES)}")
    dates: dict[str, datetime | None] = {}
    for key in ("starts_at", "ends_at"):
        value = data.get(key)
        if value is None:
            dates[key] = None
        elif isinstance(value, (datetime, str)):
            try:
                dates[key] = parse_instant(value.isoformat() if isinstance(value, datetime) else value)
            except UsageError as exc:
                raise fail("", 0, key, key, exc.message) from None
        else:
            raise fail("", 0, key, key, "must be a date-time")
    if dates["starts_at"] and dates["ends_at"] and dates["ends_at"] <= dates["starts_at"]:
        raise fail("", 0, "ends_at", "ends_at", "must come after starts_at")

    trigger = data.get("trigger")
    if not isinstance(trigger, dict):
        raise fail("trigger", 0, None, "trigger", "required: a [trigger] table with a type")
    ttype = trigger.get("type")
    if not isinstance(ttype, str) or ttype not in host.triggers:
        raise fail(
            "trigger",
            0,
            "type",
            "trigger.type",
            f"unknown trigger {ttype!r} (known: {', '.join(sorted(host.triggers))})",
        )
    tconfig = {k: v for k, v in trigger.items() if k != "type"}
    lookup = _lookup(host)
    for problem in validate_config(host.triggers[ttype].config, tconfig, lookup):
        key, detail = problem.split(": ", 1)
        entry = re.match(r"entry (\d+)(?:: (\w+))?", detail)
        if entry and isinstance(tconfig.get(key), list):
            # A bad [[trigger.<key>]] table: point at its bad key (or the table), not at [trigger].
            index, inner = int(entry.group(1)), entry.group(2)
            line = (
                (lines.line(f"trigger.{key}", index, inner) if inner else None)
                or lines.line(f"trigger.{key}", index, None)
                or lines.line("trigger", 0, key)
            )
            raise _error(source, line, f"trigger.{key}[{index}]", detail.split(": ", 1)[-1])
        raise fail("trigger", 0, key, f"trigger.{key}", detail)

    conditions = data.get("conditions", [])
    if not isinstance(conditions, list):
        raise fail("conditions", 0, None, "conditions", "must be [[conditions]] tables")
    for i, cond in enumerate(conditions):
        where = f"conditions[{i}]"
        if not isinstance(cond, dict):
            raise fail("conditions", i, None, where, "must be a table")
        for key in cond:
            if key not in _CONDITION_KEYS:
                raise fail("conditions", i, key, f"{where}.{key}", "unknown key (known: field, op, value)")
        fld = cond.get("field")
        if not isinstance(fld, str) or fld.split(".", 1)[0] not in FIELD_ROOTS or "." not in fld:
            raise fail(
                "conditions",
                i,
                "field",
                f"{where}.field",
                f"{fld!r}: write e.g. lead.stage or activity.fields.amount (roots: {', '.join(FIELD_ROOTS)})",
            )
        op = cond.get("op", "=")
        if op not in OPERATORS:
            raise fail("conditions", i, "op", f"{where}.op", f"{op!r} is not one of {' '.join(OPERATORS)}")
        if "value" not in cond:
            raise fail("conditions", i, None, f"{where}.value", "required")
        if op == "in" and not isinstance(cond["value"], list):
            raise fail("conditions", i, "value", f"{where}.value", '\'in\' needs a list, e.g. ["a", "b"]')

    actions = data.get("actions")
    if not isinstance(actions, list) or not actions:
        raise fail("actions", 0, None, "actions", "required: at least one [[actions]] table")
    for i, action in enumerate(actions):
        where = f"actions[{i}]"
        if not isinstance(action, dict):
            raise fail("actions", i, None, where, "must be a table")
        atype = action.get("type")
        if not isinstance(atype, str) or atype not in host.actions:
            raise fail(
                "actions",
                i,
                "type",
                f"{where}.type",
                f"unknown action {atype!r} (known: {', '.join(sorted(host.actions))})",
            )
        aconfig = {k: v for k, v in action.items() if k != "type"}
        for problem in validate_config(host.actions[atype].config, aconfig, lookup):
            key = problem.split(":", 1)[0]
            raise fail("actions", i, key, f"{where}.{key}", problem.split(": ", 1)[1])

    return Definition(
        name=name.strip(),
        description=description,
        trigger_type=ttype,
        trigger_config=tconfig,
        conditions=[{"field": c["field"], "op": c.get("op", "="), "value": c["value"]} for c in conditions],
        actions=[dict(a) for a in actions],
        status=status,
        starts_at=dates["starts_at"],
        ends_at=dates["ends_at"],
        source_text=text,
    )


_PATH = re.compile(r"(?P<top>[^.\[]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<key>[^.\[]+))?")


def _check_text(data: dict[str, Any], fail: Any) -> None:
    """Text no database stores (a NUL from a ``\\u0000`` escape; a lone surrogate,
    which a TOML file cannot hold but the TUI's form can), named by key and line."""
    found = locate_text_problem(data)
    if found is None:
        return
    where, problem = found
    parts = _PATH.match(where)
    top = parts.group("top") if parts else ""
    if parts and top in ("trigger", "conditions", "actions"):
        raise fail(top, int(parts.group("index") or 0), parts.group("key"), where, problem)
    raise fail("", 0, top, where, problem)


def evaluate(condition: dict[str, Any], data: dict[str, Any]) -> tuple[bool, Any]:
    """One condition against the trigger's data: (result, the actual value)."""
    actual: Any = data
    for part in condition["field"].split("."):
        actual = actual.get(part) if isinstance(actual, dict) else None
    op, expected = condition["op"], condition["value"]
    try:
        if op == "=":
            return _norm(actual) == _norm(expected), actual
        if op == "!=":
            return _norm(actual) != _norm(expected), actual
        if op == "in":
            return _norm(actual) in [_norm(v) for v in expected], actual
        if op == "contains":
            if isinstance(actual, str):
                return str(expected).lower() in actual.lower(), actual
            if isinstance(actual, list):
                return expected in actual, actual
            return False, actual
        if actual is None:
            return False, actual
        a, b = _comparable(actual, expected)
        return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op], actual
    except (TypeError, ValueError):
        return False, actual


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, str):
        return a, float(b)
    if isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, str):
        return float(a), b
    return a, b

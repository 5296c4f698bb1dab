"""Fuzzing the parsers with hypothesis (issue 8, part 4), for a bounded number of examples.

Property, for every parser that reads what a user or a file hands over: it either
returns a clean result or raises the product's own error (``UsageError`` and its
subclasses), never any other exception. Where a clean result goes on to be used
(a duration's end, a schedule's next firing, a field value stored as JSON), that use
must not fail either.

Parsers: durations and offsets, cron schedules with time zones, ISO instants,
``--field`` pairs, batch JSON documents and items, automation definitions (as dicts
and as TOML text) and demo stories. The example database is off and every test has
a fixed example budget, so the whole file runs in well under a minute. The parsers
never touch the configured database (the batch items go to a SQLite company of their
own), so the PostgreSQL pass of the suite skips the file rather than repeat it.
"""

from __future__ import annotations

import json
import os
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharetui.errors import UsageError

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()),
    reason="the parsers do not touch the database: fuzzed once, in the SQLite pass",
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# -- building blocks -----------------------------------------------------------------------------
# Text that looks like input more often than pure noise does, with the awkward corners:
# non-ASCII digits, NUL, lone surrogates (undecodable bytes), huge numbers.
AWKWARD = ["²", "\u0661", "\x00", "\udcff", "\u200b", "é", "-", "+", ",", " ", "\t", "\n", "/", ":", "."]
BIG_NUMBERS = st.sampled_from(["0", "1", "9" * 19, "9" * 30, "9" * 4301, "-1", "1e400", "NaN", "007"])
NUMBERS = st.one_of(st.integers(min_value=0, max_value=10**6).map(str), BIG_NUMBERS)
noise = st.text(alphabet=st.sampled_from([*string.printable, *AWKWARD]), max_size=40)

UNITS = [
    "m",
    "min",
    "h",
    "hr",
    "hours",
    "d",
    "day",
    "days",
    "w",
    "wk",
    "weeks",
    "mo",
    "months",
    "y",
    "yr",
    "years",
    "s",
    "sec",
    "x",
    "dd",
    "",
    "and",
]
duration_text = st.one_of(
    noise,
    st.lists(st.tuples(NUMBERS, st.sampled_from(["", " "]), st.sampled_from(UNITS)), max_size=4).map(
        lambda parts: " ".join(f"{n}{sp}{u}" for n, sp, u in parts)
    ),
    st.tuples(st.sampled_from(["", "+", "-", " ", "²"]), NUMBERS, st.sampled_from(UNITS)).map("".join),
)

JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(alphabet=st.sampled_from([*string.printable, *AWKWARD]), max_size=20),
        NUMBERS,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


# -- durations -------------------------------------------------------------------------------------
@fuzz(500)
@given(value=st.one_of(duration_text, st.integers(min_value=-(10**40), max_value=10**40), JSONISH))
def test_durations_parse_cleanly_or_say_why(value: Any) -> None:
    from sharetui.domain.durations import parse_duration

    try:
        duration = parse_duration(value)
    except UsageError:
        return
    # A parsed duration can always be bounds-checked, and within bounds it has an end.
    try:
        duration.check_bounds(START)
    except UsageError:
        return
    assert duration.end_from(START) >= START
    assert parse_duration(duration.text) == duration  # its canonical text reads back the same


@fuzz(300)
@given(sign=st.sampled_from(["+", "-", ""]), body=duration_text)
def test_offsets_stay_on_the_calendar_or_say_why(sign: str, body: str) -> None:
    from sharetui.domain.durations import offset_from

    try:
        moved = offset_from(START, sign + body)
    except UsageError:
        return
    assert moved.tzinfo is not None


# -- instants --------------------------------------------------------------------------------------
instant_text = st.one_of(
    noise,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat()),
    st.tuples(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from(["Z", "+01:00", "-01:00", "+23:59", "-23:59", "+25:00", " UTC", "z", ""]),
    ).map(lambda p: p[0].isoformat() + p[1]),
)


@fuzz(300)
@given(text=instant_text)
def test_instants_parse_to_aware_utc_or_say_why(text: str) -> None:
    from sharetui.clock import parse_instant

    try:
        at = parse_instant(text)
    except UsageError:
        return
    assert at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


# -- cron schedules --------------------------------------------------------------------------------
CRON_ATOMS = [
    "*",
    "?",
    "L",
    "W",
    "1W",
    "LW",
    "5L",
    "1#2",
    "R",
    "H",
    "MON",
    "jan",
    "FRI",
    "SUN",
    "0",
    "7",
    "13",
    "23",
    "24",
    "31",
    "32",
    "59",
    "60",
]
cron_number = st.one_of(
    st.sampled_from(CRON_ATOMS), st.integers(min_value=0, max_value=70).map(str), BIG_NUMBERS
)
cron_part = st.one_of(
    cron_number,
    st.tuples(cron_number, cron_number).map("-".join),
    st.tuples(cron_number, st.integers(min_value=0, max_value=70)).map(lambda p: f"{p[0]}/{p[1]}"),
    st.tuples(cron_number, cron_number, st.integers(min_value=0, max_value=9)).map(
        lambda p: f"{p[0]}-{p[1]}/{p[2]}"
    ),
)
cron_field = st.lists(cron_part, min_size=1, max_size=3).map(",".join)


def _plausible_field(low: int, high: int) -> Any:
    number = st.integers(min_value=low, max_value=high).map(str)
    return st.one_of(
        st.just("*"),
        number,
        st.tuples(number, number).map("-".join),
        st.tuples(st.sampled_from(["*", str(low)]), st.integers(min_value=1, max_value=high + 2)).map(
            lambda p: f"{p[0]}/{p[1]}"
        ),
        st.lists(number, min_size=2, max_size=3).map(",".join),
    )


# Mostly expressions cron could read, so the accepted ones get exercised too.
plausible_cron = st.tuples(
    _plausible_field(0, 59),
    _plausible_field(0, 23),
    _plausible_field(1, 31),
    _plausible_field(1, 12),
    st.one_of(_plausible_field(0, 7), st.sampled_from(["MON-FRI", "SUN", "1#2", "5L"])),
).map(" ".join)
cron_text = st.one_of(
    plausible_cron,
    plausible_cron,
    st.lists(cron_field, min_size=5, max_size=5).map(" ".join),
    st.lists(cron_field, min_size=1, max_size=7).map(" ".join),
    st.sampled_from(["@daily", "@hourly", "@weekly", "@monthly", "@yearly", "@reboot", "@", ""]),
    noise,
)
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America",
    "Etc",
    "",
    "../etc/passwd",
    "/etc/localtime",
    "Mars/Base",
    "UTC\x00",
    "a" * 300,
    "+01:00",
    "é",
]


@fuzz(400)
@given(expression=cron_text, zone=st.one_of(st.sampled_from(ZONES), noise))
def test_schedules_parse_cleanly_and_accepted_ones_fire(expression: str, zone: str) -> None:
    from datetime import timedelta

    from sharetui.domain.schedules import fire_times, next_fire, parse_schedule

    try:
        schedule = parse_schedule(expression, zone)
    except UsageError:
        return
    assert schedule.description  # cron-descriptor reads what was accepted
    first = next_fire(schedule, START)  # parse_schedule refuses what can never fire
    assert first is not None and first > START
    times = fire_times(schedule, START, START + timedelta(days=3), limit=50)
    assert times == sorted(set(times))


# -- --field pairs ---------------------------------------------------------------------------------
field_pair = st.one_of(
    noise,
    st.tuples(st.text(max_size=8), st.sampled_from(["=", "==", " = "]), st.one_of(noise, NUMBERS)).map(
        "".join
    ),
)


@fuzz(300)
@given(pairs=st.lists(field_pair, max_size=5))
def test_field_pairs_parse_to_storable_json_or_say_why(pairs: list[str]) -> None:
    from sharetui.cli.context import parse_fields

    try:
        fields = parse_fields(tuple(pairs))
    except UsageError:
        return
    json.dumps(fields, allow_nan=False)  # what the database stores: no NaN or Infinity


# -- batch JSON ------------------------------------------------------------------------------------
SHARE_KEYS = [
    "UserId",
    "Entity",
    "EntityId",
    "ContextEntityId",
    "AccessType",
    "DurationInMinutes",
    "UntilCompleted",
    "AllContexts",
    "RequestId",
    "userid",
    "Colour",
]
batch_item = st.one_of(
    JSONISH,
    st.dictionaries(
        st.sampled_from(SHARE_KEYS),
        st.one_of(JSONISH, st.sampled_from([1, 5, 2, "daniel", "1", "60", "3d"])),
        max_size=7,
    ),
)


@pytest.fixture(scope="module")
def batch_core(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sharetui.testing import small_company, temporary_core

    with temporary_core(tmp_path_factory.mktemp("fuzz")) as core:
        small_company(core)
        yield core


@fuzz(300)
@given(document=st.one_of(noise, st.binary(max_size=64), st.lists(batch_item, max_size=4).map(json.dumps)))
def test_batch_documents_load_or_say_why(document: Any) -> None:
    from sharetui.core.sharing.batch import load_items

    try:
        items = load_items(document)
    except UsageError:
        return
    assert isinstance(items, list)


def test_batch_items_parse_or_say_why(batch_core: Any) -> None:
    from sharetui.core.sharing import ShareInput
    from sharetui.core.sharing.batch import BatchAPI

    api = BatchAPI(batch_core)

    @fuzz(250)
    @given(item=batch_item)
    def share_item(item: Any) -> None:
        try:
            parsed = api._parse_share(item, 0)
        except UsageError as exc:
            assert exc.message.startswith("item 0: ")
            return
        assert isinstance(parsed, ShareInput)

    @fuzz(100)
    @given(items=st.lists(batch_item, max_size=3))
    def status_items(items: list[Any]) -> None:
        try:
            results = api.status(items, actor=None)
        except UsageError:
            return
        assert len(results) == len(items)

    share_item()
    status_items()


# -- automation definitions --------------------------------------------------------------------------
TRIGGERS = ["new_lead", "new_activity_on_lead", "schedule", "task_reminder_for_opportunity", "nope", "", None]
ACTIONS = ["share_lead", "share_opportunity", "revoke_share", "notify", "nope", None]
TRIGGER_KEYS = ["activity_types", "cron", "timezone", "entity", "where", "misfire", "colour"]
ACTION_KEYS = [
    "share_with",
    "duration",
    "access",
    "until_completed",
    "user",
    "entity",
    "context",
    "to",
    "message",
    "colour",
]
GOOD_VALUES = st.sampled_from(
    [
        "owner_in_trigger",
        "daniel",
        "7d",
        "0m",
        "6y",
        "read",
        "edit",
        "lead",
        "all",
        "0 9 * * 1-5",
        "5-5 * * * *",
        "R * * * *",
        "Europe/Berlin",
        "America",
        "hi {lead.name}",
        ["Meeting Scheduled"],
        ["daniel"],
        [{"field": "lead.stage", "value": "new"}],
        [{"field": 5}],
        [{"field": "lead.stage"}],
    ]
)
values = st.one_of(JSONISH, GOOD_VALUES)
condition = st.dictionaries(
    st.sampled_from(["field", "op", "value", "colour"]),
    st.one_of(values, st.sampled_from(["lead.stage", "activity.fields.amount", "=", "in", ">=", "~"])),
    max_size=4,
)
definition = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.just("fuzzed"), JSONISH),
        "description": JSONISH,
        "status": st.one_of(st.sampled_from(["draft", "published", "paused", "live"]), JSONISH),
        "starts_at": st.one_of(instant_text, st.datetimes(timezones=st.just(UTC)), JSONISH),
        "ends_at": st.one_of(instant_text, JSONISH),
        "trigger": st.one_of(
            JSONISH,
            st.dictionaries(
                st.sampled_from(["type", *TRIGGER_KEYS]),
                st.one_of(st.sampled_from(TRIGGERS), values),
                max_size=5,
            ),
        ),
        "conditions": st.one_of(JSONISH, st.lists(st.one_of(condition, JSONISH), max_size=3)),
        "actions": st.one_of(
            JSONISH,
            st.lists(
                st.dictionaries(
                    st.sampled_from(["type", *ACTION_KEYS]),
                    st.one_of(st.sampled_from(ACTIONS), values),
                    max_size=5,
                ),
                max_size=3,
            ),
        ),
        "colour": JSONISH,
    },
)


# Definitions that are nearly right, so validation gets past the first key.
mostly_good = st.one_of(GOOD_VALUES, GOOD_VALUES, GOOD_VALUES, JSONISH)
plausible_definition = st.fixed_dictionaries(
    {
        "name": st.just("fuzzed"),
        "trigger": st.one_of(
            st.fixed_dictionaries({"type": st.sampled_from(TRIGGERS[:4])}),
            st.fixed_dictionaries(
                {"type": st.just("schedule"), "cron": cron_text, "entity": st.sampled_from(["lead", "opp"])},
                optional={"timezone": st.sampled_from(ZONES), "where": mostly_good, "misfire": mostly_good},
            ),
            st.fixed_dictionaries(
                {"type": st.just("new_activity_on_lead")}, optional={"activity_types": mostly_good}
            ),
        ),
        "actions": st.lists(
            st.one_of(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["share_lead", "share_opportunity"]), "share_with": mostly_good},
                    optional={"duration": st.one_of(duration_text, mostly_good), "access": mostly_good},
                ),
                st.fixed_dictionaries({"type": st.just("notify"), "to": mostly_good, "message": mostly_good}),
                st.fixed_dictionaries(
                    {"type": st.just("revoke_share"), "user": mostly_good},
                    optional={"entity": mostly_good, "context": mostly_good},
                ),
            ),
            min_size=1,
            max_size=2,
        ),
    },
    optional={"conditions": st.lists(condition, max_size=2), "status": st.sampled_from(["draft", "live"])},
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value).replace("inf", "inf").lower() if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return '""'


def _toml(data: dict[str, Any]) -> str:
    """A TOML rendering of a fuzzed dict (nulls dropped); may well be invalid TOML."""
    return "\n".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in data.items() if v is not None)


@fuzz(300)
@given(data=st.one_of(definition, plausible_definition))
def test_automation_definitions_validate_or_say_why(data: dict[str, Any]) -> None:
    from sharetui.core.automations.definitions import (
        Definition,
        evaluate,
        parse_definition,
        validate_definition,
    )

    host = _host()
    for given_as in ("dict", "toml"):
        try:
            result = (
                validate_definition(data, host) if given_as == "dict" else parse_definition(_toml(data), host)
            )
        except UsageError:
            continue
        assert isinstance(result, Definition) and result.actions
        # What the engine does with it later must not fail either: evaluate the
        # conditions, and a schedule's filter, against a record's data.
        data = {"lead": {"stage": "new", "fields": {"amount": 5}}, "activity": {"fields": {}}}
        for cond in result.conditions:
            evaluate(cond, data)
        for cond in result.trigger_config.get("where") or []:
            evaluate({"op": "=", **cond}, data)


_HOSTS: list[Any] = []


def _host() -> Any:
    """The default plugins' triggers and actions, built once."""
    if not _HOSTS:
        from sharetui.host import PluginHost

        host = PluginHost.load(entry_points=False)
        host._register_types_of()
        _HOSTS.append(host)
    return _HOSTS[0]


# -- demo stories ------------------------------------------------------------------------------------
STORY_ACTIONS = [
    "act_as",
    "say",
    "post_activity",
    "update_activity",
    "add_task",
    "complete_task",
    "share",
    "revoke",
    "advance",
    "check",
    "history",
    "expect",
    "sweep",
    "set",
    "add_leads",
    "share_each",
    "dance",
]
STORY_KEYS = [
    "lead",
    "opp",
    "type",
    "owner",
    "note",
    "as",
    "status",
    "fields",
    "activity",
    "subject",
    "due",
    "reminder",
    "task",
    "with",
    "for",
    "access",
    "context",
    "until_completed",
    "user",
    "all_contexts",
    "request",
    "reason_contains",
    "automation_runs",
    "count",
    "prefix",
    "limit",
]
STORY_VALUES = st.one_of(
    JSONISH,
    st.sampled_from(
        [
            "L003",
            "O001",
            "A001",
            "T001",
            "daniel",
            "priya",
            "7d",
            "+2d",
            "-1d",
            "+99999y",
            "read",
            "edit",
            "none",
            "completed",
            "failed",
            "Meeting Scheduled",
            3,
            -1,
            10**12,
            2**70,
        ]
    ),
)
step = st.one_of(
    JSONISH,
    st.dictionaries(
        st.sampled_from([*STORY_ACTIONS, "say"]),
        st.one_of(STORY_VALUES, st.dictionaries(st.sampled_from(STORY_KEYS), STORY_VALUES, max_size=5)),
        min_size=1,
        max_size=2,
    ),
)
S = st.one_of(STORY_VALUES, st.sampled_from(["L003", "daniel", "7d", "read"]))
record = st.sampled_from(
    [{"lead": "L003"}, {"opp": "O001"}, {"lead": 1}, {"lead": "L003", "opp": "O001"}, {}]
)
# Steps that are nearly right, so loading gets past the first value.
plausible_step = st.one_of(
    st.fixed_dictionaries({"act_as": st.one_of(st.sampled_from(["priya", "daniel", "ghost"]), S)}),
    st.fixed_dictionaries({"advance": st.one_of(duration_text, S)}),
    st.tuples(
        record,
        st.fixed_dictionaries(
            {"with": S},
            optional={"for": st.one_of(duration_text, S), "access": S, "context": S, "until_completed": S},
        ),
    ).map(lambda p: {"share": {**p[0], **p[1]}}),
    st.tuples(
        record,
        st.fixed_dictionaries(
            {"owner": S, "subject": S}, optional={"due": st.one_of(duration_text, S), "reminder": S, "as": S}
        ),
    ).map(lambda p: {"add_task": {**p[0], **p[1]}}),
    st.fixed_dictionaries(
        {
            "expect": st.fixed_dictionaries(
                {}, optional={"user": S, "lead": S, "access": S, "request": S, "automation_runs": S}
            )
        }
    ),
    st.fixed_dictionaries({"add_leads": st.fixed_dictionaries({"count": S, "owner": S})}),
    st.fixed_dictionaries({"set": st.one_of(S, st.dictionaries(st.sampled_from(["share_cap_leads"]), S))}),
)
story = st.fixed_dictionaries(
    {
        "steps": st.one_of(
            st.lists(st.one_of(plausible_step, plausible_step, step), min_size=1, max_size=4), JSONISH
        )
    },
    optional={
        "title": JSONISH,
        "start": st.one_of(instant_text, JSONISH),
        "plugins": st.one_of(
            st.lists(st.sampled_from(["business_hours", "nowhere", "../x"]), max_size=2), JSONISH
        ),
        "settings": st.one_of(
            st.dictionaries(st.sampled_from(["share_cap_leads", "colour"]), STORY_VALUES, max_size=2), JSONISH
        ),
    },
)


def _story_toml(data: dict[str, Any]) -> str:
    lines = [
        f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in data.items() if k != "steps" and v is not None
    ]
    steps = data.get("steps")
    if isinstance(steps, list) and all(isinstance(s, dict) for s in steps):
        for s in steps:
            lines.append("[[steps]]")
            lines += [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in s.items() if v is not None]
    elif steps is not None:
        lines.insert(0, f"steps = {_toml_value(steps)}")
    return "\n".join(lines) + "\n"


def test_stories_load_or_say_why(tmp_path: Path) -> None:
    from sharetui.ops.stories import Story, load_story

    path = tmp_path / "fuzzed.toml"

    @fuzz(300)
    @given(data=story, raw=st.one_of(st.none(), noise, st.binary(max_size=64)))
    def load(data: dict[str, Any], raw: Any) -> None:
        if isinstance(raw, bytes):
            path.write_bytes(raw)
        else:
            path.write_text(
                _story_toml(data) if raw is None else raw, encoding="utf-8", errors="surrogateescape"
            )
        try:
            loaded = load_story(path)
        except UsageError:
            return
        assert isinstance(loaded, Story) and loaded.steps

    load()

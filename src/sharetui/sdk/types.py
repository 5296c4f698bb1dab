"""What plugins receive and return. Plain, typed, documented; no database objects.

Everything here is safe to keep after a hook returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType

if TYPE_CHECKING:
    from sharetui.sdk.facade import RecordView, Services, StateStore

__all__ = [
    "Access",
    "AccessDecision",
    "ActionContext",
    "ActionType",
    "ConfigField",
    "ConfigLookup",
    "EntityType",
    "FieldType",
    "Outcome",
    "RecordChange",
    "RecordRef",
    "ShareEvent",
    "ShareRequestInfo",
    "TriggerType",
    "UserInfo",
    "Verdict",
    "allow",
    "choice",
    "deny",
    "duration",
    "duration_problem",
    "group",
    "list_of",
    "number",
    "user",
    "validate_config",
]


class UserInfo(NamedTuple):
    """The user an access check is about."""

    id: int
    username: str
    role: str
    active: bool


class AccessDecision(NamedTuple):
    """What the built-in rules decided, handed to ``sharetui_check_access``.

    ``sources`` maps each source of access the user has to the level it gives:
    ``role``, ``owner``, ``group`` and ``share`` (only those present).
    ``now`` is the clock's time (frozen in demos and tests): use it, not the
    system clock. (NamedTuples: built on every check, they must be cheap.)
    """

    level: Access
    sources: Mapping[str, Access]
    now: datetime
    user: UserInfo | None = None  # None: no such user

    def only_via_share(self, action: Access) -> bool:
        """True when nothing but a share gives ``action``."""
        return self.sources.get("share", Access.NONE) >= action and all(
            lvl < action for src, lvl in self.sources.items() if src != "share"
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """An access check's answer: ``allow`` or ``deny``, with a reason people read."""

    kind: Literal["allow", "deny"]
    reason: str


def allow(reason: str) -> Verdict:
    """Allow the action (unless another check denies it)."""
    return Verdict("allow", reason)


def deny(reason: str) -> Verdict:
    """Deny the action. A deny always wins."""
    return Verdict("deny", reason)


@dataclass(frozen=True, slots=True)
class ShareRequestInfo:
    """A share (or renew) about to be granted, for ``sharetui_validate_share``."""

    request_id: int
    record: RecordRef
    recipient: str
    requester: str | None
    access: Access
    duration: str
    starts_at: datetime
    expires_at: datetime
    context_activity_id: int | None
    source: str
    renewal: bool


@dataclass(frozen=True, slots=True)
class ShareEvent:
    """A share lifecycle event, delivered after its transaction committed.

    ``kind`` is ``granted``, ``renewed``, ``revoked``, ``expired``,
    ``expiring_soon`` or ``request_failed``. ``grant`` is the grant as the
    CLI's JSON shows it (absent for failed requests).
    """

    kind: str
    record: RecordRef
    user: str | None
    at: datetime
    source: str
    request_id: int | None = None
    reason: str | None = None
    grant: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "entity": self.record.entity.value,
            "entity_id": self.record.id,
            "user": self.user,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "request_id": self.request_id,
            "reason": self.reason,
            "grant": dict(self.grant) if self.grant else None,
        }


@dataclass(frozen=True, slots=True)
class RecordChange:
    """A lead or an opportunity was created, updated or deleted, for
    ``sharetui_record_changed`` (delivered after the change committed).

    ``before`` and ``after`` are the record as it was and as it is now (``before`` is
    None for ``created``, ``after`` for ``deleted``). ``changed`` names what changed:
    standard fields by name (``stage``, ``owner``), custom fields as ``fields.NAME``.
    ``by`` is the username of the person who made the change, or None when no person
    did (the system, a load, an automation acting as itself).
    """

    kind: Literal["created", "updated", "deleted"]
    record: RecordRef
    before: RecordView | None
    after: RecordView | None
    by: str | None
    at: datetime
    changed: tuple[str, ...] = ()

    def crossed(self, field: str, threshold: float) -> bool:
        """True when the custom field ``field`` went from below ``threshold`` (or absent)
        to at least ``threshold`` in this change."""
        old = self.before.fields.get(field) if self.before is not None else None
        new = self.after.fields.get(field) if self.after is not None else None
        return (
            _number(new) is not None
            and _number(new) >= threshold
            and (  # type: ignore[operator]
                _number(old) is None or _number(old) < threshold  # type: ignore[operator]
            )
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -- triggers and actions -------------------------------------------------------------
class ConfigLookup(Protocol):
    """What validating ``user`` and ``group`` fields asks (``Services.users`` answers it)."""

    def get(self, username: str) -> Any: ...

    def group_exists(self, group: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class FieldType:
    """A kind of configuration value: ``number``, ``duration``, ``user``, ``group``,
    ``choice(...)`` or ``list_of(...)``. Use one as a ``ConfigField``'s ``type``."""

    name: str
    problem: Callable[[Any, ConfigLookup | None], str | None]
    """The reason a value is not of this kind, or None (the lookup checks names)."""

    def __repr__(self) -> str:
        return self.name


def _number_problem(value: Any, _lookup: ConfigLookup | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {_kind(value)}"
    return None


def _duration_value_problem(value: Any, _lookup: ConfigLookup | None) -> str | None:
    if not isinstance(value, str):
        return f"expected a duration such as 7d or 2h, got {_kind(value)}"
    return duration_problem(value)


def _user_problem(value: Any, lookup: ConfigLookup | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"expected a username, got {_kind(value)}"
    if lookup is not None and lookup.get(value) is None:
        return f"no user named {value!r}"
    return None


def _group_problem(value: Any, lookup: ConfigLookup | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"expected a sales group's name, got {_kind(value)}"
    if lookup is not None and not lookup.group_exists(value):
        return f"no sales group named {value!r}"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {"str": "text", "int": "a number", "float": "a number", "list": "a list", "dict": "a table"}.get(
        type(value).__name__, type(value).__name__
    )


number = FieldType("number", _number_problem)
"""An int or a float (TOML's ``80`` and ``80.5`` alike); never true/false."""
duration = FieldType("duration", _duration_value_problem)
"""A share duration: ``30m``, ``2h``, ``7d``, ``6mo``, ``1y``, ``1d12h``, ``3 days``; 1 minute to 5 years."""
user = FieldType("user", _user_problem)
"""A username; validated against the users when the automation is saved."""
group = FieldType("group", _group_problem)
"""A sales group's name; validated against the groups when the automation is saved."""


def choice(*options: Any) -> FieldType:
    """One of ``options``."""

    def problem(value: Any, _lookup: ConfigLookup | None) -> str | None:
        if value not in options or isinstance(value, bool) != any(isinstance(o, bool) for o in options):
            return f"{value!r} is not one of {', '.join(map(str, options))}"
        return None

    return FieldType(f"choice({', '.join(map(repr, options))})", problem)


def list_of(item: FieldType | type) -> FieldType:
    """A list whose every entry is an ``item`` (a ``FieldType`` or a Python type)."""

    def problem(value: Any, lookup: ConfigLookup | None) -> str | None:
        if not isinstance(value, list):
            return f"expected a list, got {_kind(value)}"
        for i, entry in enumerate(value):
            why = _value_problem(item, entry, lookup)
            if why:
                return f"entry {i}: {why}"
        return None

    name = item.name if isinstance(item, FieldType) else item.__name__
    return FieldType(f"list_of({name})", problem)


def _value_problem(
    kind: FieldType | type | tuple[type, ...], value: Any, lookup: ConfigLookup | None
) -> str | None:
    if isinstance(kind, FieldType):
        return kind.problem(value, lookup)
    types = kind if isinstance(kind, tuple) else (kind,)
    if float in types and int not in types and isinstance(value, int) and not isinstance(value, bool):
        return None  # TOML's 80 is an int: a float field takes it
    if isinstance(value, bool) and bool not in types:
        return f"expected {' or '.join(t.__name__ for t in types)}, got true/false"
    if not isinstance(value, types):
        return f"expected {' or '.join(t.__name__ for t in types)}, got {type(value).__name__}"
    return None


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One key of a trigger's or action's configuration.

    ``type`` is a field type (``number``, ``duration``, ``user``, ``group``,
    ``choice(...)``, ``list_of(...)``) or a Python type (or a tuple of them; a
    ``float`` field takes ints too). A key that is not ``required`` is optional: when
    absent it is ``default``, which actions get filled in.
    """

    type: FieldType | type | tuple[type, ...]
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    check: Callable[[Any], str | None] | None = None  # returns an error, or None


def duration_problem(value: str) -> str | None:
    """A ``ConfigField.check`` for durations: the reason ``value`` is not one, or is out of
    a share's range (1 minute to 5 years), or None."""
    from datetime import UTC

    from sharetui.domain.durations import parse_duration
    from sharetui.errors import InvalidDuration

    try:
        # Calendar units hardly depend on the start; the share checks its own bounds again.
        parse_duration(value).check_bounds(datetime(2026, 1, 1, tzinfo=UTC))
    except InvalidDuration as exc:
        return exc.message
    return None


def validate_config(
    schema: Mapping[str, ConfigField], config: Mapping[str, Any], lookup: ConfigLookup | None = None
) -> list[str]:
    """Errors in ``config`` against ``schema``, each ``"key: what is wrong"`` (the
    product's format); empty when valid. ``lookup`` (``services.users``) checks that
    ``user`` and ``group`` values name users and groups that exist."""
    errors: list[str] = []
    for key in config:
        if key not in schema:
            known = ", ".join(sorted(schema)) or "none"
            errors.append(f"{key}: unknown key (known: {known})")
    for key, spec in schema.items():
        if key not in config or config[key] is None:
            if spec.required:
                errors.append(f"{key}: required")
            continue
        value = config[key]
        problem = _value_problem(spec.type, value, lookup)
        if problem:
            errors.append(f"{key}: {problem}")
            continue
        if spec.choices is not None:
            items = value if isinstance(value, list) else [value]
            bad = [v for v in items if v not in spec.choices]
            if bad:
                errors.append(f"{key}: {bad[0]!r} is not one of {', '.join(map(str, spec.choices))}")
                continue
        if spec.check is not None:
            try:
                problem = spec.check(value)
            except Exception as exc:  # noqa: BLE001 - a plugin's check: it fails closed
                problem = f"cannot be checked ({type(exc).__name__} in the check)"
            if problem:
                errors.append(f"{key}: {problem}")
    return errors


@dataclass(frozen=True, slots=True)
class TriggerType:
    """A kind of event that can start an automation.

    ``matches(config, event) -> bool`` is the trigger's filter: an automation on the
    trigger runs for an event only when its configuration matches the event's data
    (``event`` is what conditions see: ``event``, ``lead``, ``activity``, …). With no
    filter every event matches. ``describe(config) -> str`` says in a few words what a
    configuration filters, for lists and run reports.
    """

    name: str
    description: str
    config: Mapping[str, ConfigField] = field(default_factory=dict)
    entity: str | None = None  # "lead" or "opportunity": the record the trigger is about
    plugin: str = ""
    matches: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None = None
    describe: Callable[[Mapping[str, Any]], str] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did: ``succeeded``, ``failed`` or ``skipped``, and why."""

    status: Literal["succeeded", "failed", "skipped"]
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def succeeded(cls, message: str = "", **data: Any) -> Outcome:
        return cls("succeeded", message, data)

    @classmethod
    def failed(cls, message: str, **data: Any) -> Outcome:
        return cls("failed", message, data)

    @classmethod
    def skipped(cls, message: str, **data: Any) -> Outcome:
        return cls("skipped", message, data)


@dataclass(slots=True)
class ActionContext:
    """What an action's ``run`` gets: the services it may use (acting for this
    run), the record, the trigger's data, where it runs (automation run and step)
    and whether it is a dry run.

    ``plugin_state`` is a small persistent key/value store private to the plugin
    (e.g. a rotation pointer); writes join the run's transaction.

    ``acting_for`` is the username of the person whose change fired the run (in a
    dry run, the user running it), or ``None`` when no person did (a schedule, a
    task reminder, a load, the system). ``services.shares.share``/``revoke`` make
    their requests as that person, who must be allowed to share the record
    (DESIGN §9), unless the action passes ``on_behalf_of="automation"``.
    """

    services: Services
    record: RecordRef | None
    trigger_data: Mapping[str, Any]
    run_id: int | None
    step: int
    dry_run: bool
    plugin_state: StateStore | None = None
    acting_for: str | None = None


@dataclass(frozen=True, slots=True)
class ActionType:
    """A kind of step an automation can take."""

    name: str
    description: str
    run: Callable[[ActionContext, Mapping[str, Any]], Outcome]
    config: Mapping[str, ConfigField] = field(default_factory=dict)
    plugin: str = ""

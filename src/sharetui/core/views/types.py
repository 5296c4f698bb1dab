"""What a face shows, as core builds it: frozen, slotted values with typed fields.

A view holds no store row and no query: it is built once in a worker and read
on the UI thread. Times are aware UTC datetimes (``None`` where there is none);
a face formats them for its reader. Mappings are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeAlias

from sharetui.db.models import User
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType

Actor: TypeAlias = User
"""The acting user as core's services take it (``actor=``, ``requester=``). A face holds
one and hands it back; it reads only ``username``, ``role`` and ``active``."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen_mapping(values: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of ``values`` (empty for ``None``)."""
    return MappingProxyType(dict(values)) if values else _EMPTY


@dataclass(frozen=True, slots=True)
class Permissions:
    """What the acting user may do with one record now. ``level`` is the access label
    (``none``, ``read``, ``edit``); ``share`` is :meth:`SharingService.may_share`."""

    read: bool = False
    edit: bool = False
    share: bool = False
    level: str = "none"


@dataclass(frozen=True, slots=True)
class ActivityRow:
    id: int
    type: str
    owner: str | None
    status: str
    note: str
    occurred_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: int
    subject: str
    owner: str
    due_at: datetime | None
    completed_at: datetime | None

    @property
    def open(self) -> bool:
        return self.completed_at is None


@dataclass(frozen=True, slots=True)
class GrantRow:
    """An active share of a record: who holds it, how, until when."""

    id: int
    user: str
    access: str
    context: int | None  # the activity the share was made in (leads only)
    starts_at: datetime | None
    expires_at: datetime | None
    source: str
    until_completed: bool


@dataclass(frozen=True, slots=True)
class ShareOutcome:
    """What a share, renew or revoke request came to."""

    request_id: int
    status: str
    outcome: str | None  # granted, renewed, revoked... when it completed
    reason: str | None  # why it failed
    grant: GrantRow | None
    previous_access: str | None = None  # a renewal: the access the grant gave before

    @property
    def lowered(self) -> bool:
        """A renewal that gave less access than the grant had."""
        grant = self.grant
        return bool(self.previous_access == "edit" and grant is not None and grant.access == "read")

    @property
    def ok(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One request or lifecycle event of the share history."""

    id: int
    at: datetime | None
    event: str
    status: str
    reason: str | None
    entity: str
    entity_id: int
    user: str | None
    access: str | None
    context: int | None
    expires_at: datetime | None
    source: str
    requester: str | None
    duration: str | None = None
    request_id: int | None = None
    grant_id: int | None = None
    by: str | None = None  # who asked, in people's words (the person, via which automation)
    starts_at: datetime | None = None

    @property
    def record(self) -> str:
        return f"{self.entity} {self.entity_id}"


@dataclass(frozen=True, slots=True)
class TimelineBar:
    """One share of a record over time: from its start to its end (its expiry, or
    when it was revoked or found expired)."""

    grant_id: int
    user: str
    access: str
    starts_at: datetime
    ends_at: datetime
    state: str  # active | expired | revoked
    until_completed: bool
    context: int | None
    ended_reason: str | None


@dataclass(frozen=True, slots=True)
class Timeline:
    """A record's shares, newest start first (``more``: older ones were left out)."""

    now: datetime
    bars: tuple[TimelineBar, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class ExpiringShare:
    """An active share that ends soon."""

    record: RecordRef
    name: str  # the record's name
    user: str
    access: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ExpiringSoon:
    """Active shares ending within 24 hours (``day``) and within 7 days (``week``,
    the 24 hours included), soonest first: the acting user's own, or everyone's."""

    now: datetime
    everyone: bool
    day: int
    week: int
    shares: tuple[ExpiringShare, ...]  # the soonest, up to the limit asked for


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """A page of the history ledger, newest first; ``next`` is the key of the page after."""

    rows: tuple[HistoryRow, ...]
    next: tuple[datetime, int] | None


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of an automation; ``trace`` is the stored trace (trigger, conditions, actions)."""

    id: int
    automation_id: int
    started_at: datetime | None
    record: str | None
    status: str
    reason: str | None
    trace: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ScheduleView:
    description: str
    next_at: datetime | None
    misfire: str


@dataclass(frozen=True, slots=True)
class AutomationRow:
    """An automation in the list: its trigger, schedule and latest run."""

    id: int
    name: str
    status: str
    trigger: str
    schedule: ScheduleView | None
    last_run: RunRow | None


@dataclass(frozen=True, slots=True)
class AutomationView:
    """One automation: its definition and its latest runs, newest first."""

    id: int
    name: str
    description: str
    status: str
    trigger: Mapping[str, Any]  # ``type`` and the trigger's settings
    conditions: tuple[Mapping[str, Any], ...]
    actions: tuple[Mapping[str, Any], ...]
    schedule: ScheduleView | None
    runs: tuple[RunRow, ...]


@dataclass(frozen=True, slots=True)
class Membership:
    group: str
    level: str


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    name: str
    role: str
    active: bool
    groups: tuple[Membership, ...]


@dataclass(frozen=True, slots=True)
class PluginRow:
    """A loaded (or failed) plugin, as the plugin host reports it."""

    name: str
    version: str | None
    source: str
    hooks: tuple[str, ...]
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordView:
    """A lead or an opportunity as the acting user may see it.

    When they may not read it, the view carries none of its data: only the ref and
    the permissions (see :meth:`unreadable`).
    """

    id: int
    entity: EntityType
    name: str
    owner: str  # username
    standard: Mapping[str, Any]  # the record's own fields but the name, in their usual order
    custom: Mapping[str, Any]  # the custom ``fields``
    activities: tuple[ActivityRow, ...]
    tasks: tuple[TaskRow, ...]
    shares: tuple[GrantRow, ...]
    permissions: Permissions

    @property
    def ref(self) -> RecordRef:
        return RecordRef(self.entity, self.id)

    @classmethod
    def unreadable(cls, ref: RecordRef, permissions: Permissions) -> RecordView:
        """The view of a record the user may not read: its ref and permissions, nothing else."""
        return cls(ref.id, ref.entity, "", "", _EMPTY, _EMPTY, (), (), (), permissions)


__all__ = [
    "ActivityRow",
    "Actor",
    "AutomationRow",
    "AutomationView",
    "GrantRow",
    "HistoryRow",
    "Membership",
    "Permissions",
    "PluginRow",
    "RecordView",
    "RunRow",
    "ScheduleView",
    "ShareOutcome",
    "TaskRow",
    "UserRow",
    "frozen_mapping",
]

"""The services a plugin may use, typed: records, users and groups, shares, firing
triggers, notifications and the plugin's own state.

These are Protocols: the core implements them and hands an instance to the hooks
that need one (``ActionContext.services`` for actions). Plugins import only
``sharetui`` and ``sharetui.sdk``; what they get back are the plain, frozen views
below, never database rows, safe to keep after the hook returns.

Who acts: services handed to an automation action act for that automation run
(its shares have source ``automation`` and link to the run; a dry run changes
nothing, and what it would have done is rolled back). Its share and revoke
requests are made by the person whose change fired the run
(``ActionContext.acting_for``), who must be allowed to share the record, unless
the call says ``on_behalf_of="automation"``: then the automation itself asks, as
it does when no person fired the run (schedules, reminders, loads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.sdk.types import UserInfo

# Who makes an automation action's share or revoke request: the person whose change
# fired the run (``"trigger"``, the default) or the automation itself (``"automation"``).
OnBehalfOf = Literal["trigger", "automation"]

__all__ = [
    "ActivityView",
    "GrantView",
    "NotificationsService",
    "OnBehalfOf",
    "RecordView",
    "RecordsService",
    "Services",
    "ShareResult",
    "SharesService",
    "StateStore",
    "TriggersService",
    "UsersService",
]


@dataclass(frozen=True, slots=True)
class RecordView:
    """A lead or an opportunity, read-only.

    ``values`` holds the standard fields (a lead's ``email``, ``phone``,
    ``company``, ``source``; an opportunity's ``lead_id``, ``type``, ``amount``);
    ``fields`` holds the custom fields.
    """

    ref: RecordRef
    name: str
    owner: str | None
    stage: str
    values: Mapping[str, Any]
    fields: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ActivityView:
    """An activity on a lead or an opportunity, read-only. ``owner`` is a username,
    or None for a type that captures no owner; ``status`` is ``open`` or ``completed``."""

    id: int
    record: RecordRef
    type: str
    owner: str | None
    status: str
    note: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GrantView:
    """A share. ``state`` is decided when it is read: a grant past its expiry is
    ``expired`` whether or not the sweeper has run."""

    id: int
    record: RecordRef
    user: str
    access: Access
    context: int | None
    starts_at: datetime
    expires_at: datetime
    state: Literal["active", "expired", "revoked"]
    source: str
    until_completed: bool


@dataclass(frozen=True, slots=True)
class ShareResult:
    """What a share or revoke request came to. ``outcome`` is ``granted``,
    ``renewed`` or ``revoked`` when it completed; ``reason`` says why it failed;
    ``previous_access``, for a renewal, the access the grant gave until then."""

    request_id: int
    status: Literal["completed", "failed"]
    reason: str | None
    outcome: str | None
    grant: GrantView | None
    # A renewal: the access the grant gave before it (None for anything else).
    previous_access: Access | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class RecordsService(Protocol):
    def get(self, record: RecordRef) -> RecordView | None:
        """The record, or None when there is no such record."""
        ...

    def can(self, username: str, record: RecordRef, action: Literal["read", "edit"] = "read") -> bool:
        """May ``username`` read (or edit) ``record`` now, by the one gate (DESIGN §9)?
        False for an unknown user or a record that does not exist. Ask before putting a
        record's data in front of someone (a notification, a message)."""
        ...

    def update(
        self,
        record: RecordRef,
        *,
        values: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> RecordView:
        """Change standard ``values`` (name, stage, …) and custom ``fields`` (merged;
        a ``None`` value removes a field). Fires ``lead_update``/``opportunity_update``."""
        ...

    def post_activity(
        self,
        record: RecordRef,
        *,
        type: str,
        owner: str | None = None,
        note: str = "",
        fields: Mapping[str, Any] | None = None,
        status: Literal["open", "completed"] = "open",
        on_behalf_of: OnBehalfOf = "trigger",
    ) -> ActivityView:
        """Post an activity of ``type`` on ``record``, owned by ``owner``. It is the
        change of the person the run acts for, who needs edit access to the record
        (DESIGN §9), unless ``on_behalf_of="automation"``. It fires
        ``new_activity_on_lead``/``new_activity_on_opportunity`` like any other."""
        ...


class UsersService(Protocol):
    def get(self, username: str) -> UserInfo | None:
        """The user, or None when there is no such user."""
        ...

    def groups_of(self, username: str) -> Mapping[str, str]:
        """The user's sales groups: group name -> membership level (own, view, modify, manage)."""
        ...

    def members(self, group: str) -> Mapping[str, str]:
        """A sales group's members: username -> membership level, in username order.
        Empty when there is no such group."""
        ...

    def group_exists(self, group: str) -> bool:
        """Whether a sales group of that name exists."""
        ...


class SharesService(Protocol):
    def share(
        self,
        record: RecordRef,
        with_user: str,
        *,
        access: Literal["read", "edit"] = "read",
        duration: str = "7d",
        context: int | None = None,
        until_completed: bool = False,
        on_behalf_of: OnBehalfOf = "trigger",
    ) -> ShareResult:
        """Share (or renew) ``record`` with a sales user, by the rules of DESIGN §3.

        In an automation run the request is made by the person whose change fired it
        (it fails when they may not share ``record``), or by the automation itself with
        ``on_behalf_of="automation"`` or when no person fired the run."""
        ...

    def revoke(
        self,
        record: RecordRef,
        user: str,
        *,
        context: int | None = None,
        all_contexts: bool = False,
        on_behalf_of: OnBehalfOf = "trigger",
    ) -> ShareResult:
        """End ``user``'s share of ``record`` (one context, or all of them); made by the
        same requester as :meth:`share`."""
        ...

    def active(self, *, record: RecordRef | None = None, user: str | None = None) -> list[GrantView]:
        """Shares that give access now (active and unexpired), of a record and/or a user."""
        ...

    def count_active(self, user: str, entity: EntityType | None = None) -> int:
        """How many records ``user`` holds active, unexpired shares on (of one kind, or all)."""
        ...


class TriggersService(Protocol):
    def fire(self, trigger: str, record: RecordRef | None, data: Mapping[str, Any] | None = None) -> int:
        """Queue an event for ``trigger`` (a registered trigger name) about ``record``.

        It is written in the caller's transaction and processed after it commits,
        like every other event; ``data`` (JSON values) reaches the automations as
        ``event.*``. Returns the event's id.
        """
        ...


class NotificationsService(Protocol):
    def send(self, usernames: list[str], message: str, record: RecordRef | None = None) -> list[str]:
        """Leave ``message`` for each active user named; returns those it reached."""
        ...


class StateStore(Protocol):
    """A small key/value store private to one plugin; writes join the caller's transaction."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class Services(Protocol):
    """Everything a plugin may ask of sharetui."""

    records: RecordsService
    users: UsersService
    shares: SharesService
    triggers: TriggersService
    notifications: NotificationsService

    def now(self) -> datetime:
        """The clock's time, aware UTC (frozen in demos and tests): use it, not the system clock."""
        ...

    def fire(self, trigger: str, record: RecordRef | None, data: Mapping[str, Any] | None = None) -> int:
        """``triggers.fire``: queue an event for your trigger about ``record`` with ``data``
        (JSON values, ``event.*`` to automations; kept in the run trace). Returns its id."""
        ...

"""The core's side of :mod:`sharetui.sdk.facade`: the services plugins may use,
returning plain frozen views, never database rows.

One :class:`PluginServices` is made for each action run (it acts for that run)
and for each plugin command or hook that needs a handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.db.models import Lead, Opportunity, PluginState, SalesGroup, User
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType, GroupLevel, Source
from sharetui.domain.time import from_db
from sharetui.errors import NotFound, UsageError
from sharetui.sdk.facade import ActivityView, GrantView, OnBehalfOf, RecordView, ShareResult
from sharetui.sdk.types import UserInfo

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.core.sharing import RequestResult


@dataclass(frozen=True, slots=True)
class Acting:
    """Who the services act for: an automation run (``run_id``), or the system.

    ``on_behalf_of`` is the person whose change fired the run (in a dry run, the user
    running it): share and revoke requests are theirs, unless an action asks to act as
    the automation (DESIGN §9). ``None``: no person fired it (a schedule, a task
    reminder, a load, the system), and requests are the automation's own.
    """

    source: str = Source.AUTOMATION
    run_id: int | None = None
    on_behalf_of: User | None = None

    @property
    def acting_for(self) -> str | None:
        """The person's username, as ``ActionContext.acting_for`` gives it to plugins."""
        return self.on_behalf_of.username if self.on_behalf_of is not None else None

    def actor(self, on_behalf_of: OnBehalfOf) -> User | None:
        """Who a request or change is made by: the person the run acts for (``"trigger"``),
        or the automation itself (``"automation"``, and always when no person fired it)."""
        if on_behalf_of == "automation":
            return None
        if on_behalf_of != "trigger":
            raise UsageError(f"on_behalf_of must be 'trigger' or 'automation', not {on_behalf_of!r}")
        return self.on_behalf_of


def record_view(row: Lead | Opportunity) -> RecordView:
    """A stored lead or opportunity as plugins see it."""
    if isinstance(row, Lead):
        values = {"email": row.email, "phone": row.phone, "company": row.company, "source": row.source}
    else:
        values = {"lead_id": row.lead_id, "type": row.type, "amount": row.amount}
    owner = User.get_or_none(User.id == row.owner_id)
    return RecordView(
        ref=row.record_ref,
        name=row.name,
        owner=owner.username if owner else None,
        stage=row.stage,
        values=values,
        fields=dict(row.fields or {}),
        created_at=from_db(row.created_at),  # type: ignore[arg-type]
        updated_at=from_db(row.updated_at),  # type: ignore[arg-type]
    )


def grant_view(grant: Mapping[str, Any], now: datetime) -> GrantView:
    """A grant as ``grant_dict`` shows it, with its state decided at ``now``."""
    expires = from_db(grant["expires_at"].replace("Z", "+00:00"))
    state = grant["state"]
    if state == "active" and expires is not None and expires <= now:
        state = "expired"
    return GrantView(
        id=grant["id"],
        record=RecordRef(EntityType(grant["entity"]), grant["entity_id"]),
        user=grant["user"],
        access=Access.parse(grant["access"]),
        context=grant["context"],
        starts_at=from_db(grant["starts_at"].replace("Z", "+00:00")),  # type: ignore[arg-type]
        expires_at=expires,  # type: ignore[arg-type]
        state=state,
        source=grant["source"],
        until_completed=bool(grant["until_completed"]),
    )


def share_result(result: RequestResult, now: datetime) -> ShareResult:
    return ShareResult(
        request_id=result.request_id,
        status="completed" if result.ok else "failed",
        reason=result.reason,
        outcome=result.outcome,
        grant=grant_view(result.grant, now) if result.grant else None,
        previous_access=Access.parse(result.previous_access) if result.previous_access else None,
    )


class _Records:
    def __init__(self, core: Core, acting: Acting) -> None:
        self.core = core
        self.acting = acting

    def get(self, record: RecordRef) -> RecordView | None:
        try:
            return record_view(self.core.records.get(record))
        except NotFound:
            return None

    def can(self, username: str, record: RecordRef, action: str = "read") -> bool:
        user = self.core.users.find(username)
        if user is None or not self.core.records.exists(record):
            return False
        return self.core.access.can(user.id, record, action)

    def update(
        self,
        record: RecordRef,
        *,
        values: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> RecordView:
        row = self.core.records.update_record(
            # A change a run makes is the change of the person it acts for, by their
            # rights (DESIGN §9); with no person, the automation's own.
            record,
            actor=self.acting.on_behalf_of,
            values=dict(values or {}),
            fields=dict(fields or {}),
        )
        return record_view(row)

    def post_activity(
        self,
        record: RecordRef,
        *,
        type: str,
        owner: str | None = None,
        note: str = "",
        fields: Mapping[str, Any] | None = None,
        status: str = "open",
        on_behalf_of: OnBehalfOf = "trigger",
    ) -> ActivityView:
        act = self.core.records.post_activity(
            record,
            type=type,
            actor=self.acting.actor(on_behalf_of),
            owner=owner,
            note=note,
            fields=dict(fields or {}),
            status=status,
        )
        owner_name = self.core.users.usernames([act.owner_id]).get(act.owner_id) if act.owner_id else None
        return ActivityView(
            id=act.id,
            record=record,
            type=type.strip(),
            owner=owner_name,
            status=status,
            note=note,
            fields=dict(fields or {}),
        )


class _Users:
    def __init__(self, core: Core) -> None:
        self.core = core

    def get(self, username: str) -> UserInfo | None:
        user = self.core.users.find(username)
        if user is None:
            return None
        return UserInfo(user.id, user.username, user.role, bool(user.active))

    def groups_of(self, username: str) -> Mapping[str, str]:
        user = self.core.users.find(username)
        if user is None:
            return {}
        return {name: level.label for name, level in self.core.users.groups_of(user)}

    def members(self, group: str) -> Mapping[str, str]:
        return {username: GroupLevel(level).label for username, level in self.core.users.members_of(group)}

    def group_exists(self, group: str) -> bool:
        return SalesGroup.select().where(SalesGroup.name == group).exists()


class _Shares:
    def __init__(self, core: Core, acting: Acting) -> None:
        self.core = core
        self.acting = acting

    def requester(self, on_behalf_of: OnBehalfOf) -> User | None:
        """Who makes a request (see :meth:`Acting.actor`)."""
        return self.acting.actor(on_behalf_of)

    def share(
        self,
        record: RecordRef,
        with_user: str,
        *,
        access: str = "read",
        duration: str = "7d",
        context: int | None = None,
        until_completed: bool = False,
        on_behalf_of: OnBehalfOf = "trigger",
    ) -> ShareResult:
        result = self.core.sharing.share(
            record.entity,
            record.id,
            with_user,
            requester=self.requester(on_behalf_of),
            duration=duration,
            access=access,
            context=context,
            until_completed=until_completed,
            source=self.acting.source,
            automation_run_id=self.acting.run_id,
        )
        return share_result(result, self.core.now())

    def revoke(
        self,
        record: RecordRef,
        user: str,
        *,
        context: int | None = None,
        all_contexts: bool = False,
        on_behalf_of: OnBehalfOf = "trigger",
    ) -> ShareResult:
        result = self.core.sharing.revoke(
            record.entity,
            record.id,
            user,
            requester=self.requester(on_behalf_of),
            context=context,
            all_contexts=all_contexts,
            source=self.acting.source,
            automation_run_id=self.acting.run_id,
        )
        return share_result(result, self.core.now())

    def active(self, *, record: RecordRef | None = None, user: str | None = None) -> list[GrantView]:
        now = self.core.now()
        if record is not None:
            who = self.core.users.find(user) if user is not None else None
            if user is not None and who is None:
                return []
            grants = self.core.access.active_grants(record, user_id=who.id if who else None, now=now)
        else:
            who = self.core.users.find(user) if user is not None else None
            if user is not None and who is None:
                return []
            grants = self.core.sharing.grants(actor=None, user=who, limit=1_000_000)
        # Only shares that give access now: an expired grant the sweeper has not reached
        # yet is left out, as the access rules leave it out.
        return [view for view in (grant_view(g, now) for g in grants) if view.state == "active"]

    def count_active(self, user: str, entity: EntityType | None = None) -> int:
        who = self.core.users.find(user)
        if who is None:
            return 0
        return self.core.sharing.count_active(who.id, entity, self.core.now())


class _Triggers:
    def __init__(self, core: Core, acting: Acting) -> None:
        self.core = core
        self.acting = acting

    def fire(self, trigger: str, record: RecordRef | None, data: Mapping[str, Any] | None = None) -> int:
        # Outside an automation run (a record_changed hook), the event names the person
        # whose change the hook heard of; inside one, the run's person (the outbox's).
        actor = self.acting.on_behalf_of if self.acting.run_id is None else None
        return self.core.automations.fire(trigger, record, dict(data or {}), actor=actor)


class _Notifications:
    def __init__(self, core: Core, acting: Acting) -> None:
        self.core = core
        self.acting = acting

    def send(self, usernames: list[str], message: str, record: RecordRef | None = None) -> list[str]:
        users = [u for u in (self.core.users.find(name) for name in dict.fromkeys(usernames)) if u]
        reached = [u for u in users if u.active]
        self.core.notifications.send([u.id for u in reached], message, record, self.acting.run_id)
        return [u.username for u in reached]


class PluginServices:
    """What a plugin may ask of sharetui (:class:`sharetui.sdk.facade.Services`)."""

    def __init__(self, core: Core, acting: Acting | None = None) -> None:
        acting = acting or Acting()
        self._core = core
        self.acting = acting
        self.records = _Records(core, acting)
        self.users = _Users(core)
        self.shares = _Shares(core, acting)
        self.triggers = _Triggers(core, acting)
        self.notifications = _Notifications(core, acting)

    def now(self) -> datetime:
        return self._core.now()

    def fire(self, trigger: str, record: RecordRef | None, data: Mapping[str, Any] | None = None) -> int:
        return self.triggers.fire(trigger, record, data)


class PluginStateStore:
    """``get``/``set`` JSON values under keys private to one plugin
    (:class:`sharetui.sdk.facade.StateStore`).

    Writes join the caller's transaction, so an action's state change commits
    (or rolls back) with the rest of its run.
    """

    def __init__(self, core: Core, plugin: str) -> None:
        self.core = core
        self.plugin = plugin

    def get(self, key: str, default: Any = None) -> Any:
        row = PluginState.get_or_none((PluginState.plugin == self.plugin) & (PluginState.key == key))
        return default if row is None else row.value

    def set(self, key: str, value: Any) -> None:
        now = self.core.db_now()
        PluginState.insert(plugin=self.plugin, key=key, value=value, updated_at=now).on_conflict(
            conflict_target=[PluginState.plugin, PluginState.key],
            update={PluginState.value: value, PluginState.updated_at: now},
        ).execute()


__all__ = ["Acting", "PluginServices", "PluginStateStore", "grant_view", "record_view", "share_result"]

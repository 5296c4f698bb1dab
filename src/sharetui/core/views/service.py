"""Builds the views a face shows from core's services, for one acting user.

Every method reads the database: call it from a worker, never a UI thread. The
rules stay where they are: access levels come from :class:`AccessService`, the
share question from :meth:`SharingService.may_share`; a view only carries them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sharetui.core.automations import automation_dict
from sharetui.core.history import HistoryFilter, requested_by
from sharetui.core.records import LEAD_FIELDS, OPP_FIELDS
from sharetui.core.views.types import (
    ActivityRow,
    Actor,
    AutomationRow,
    AutomationView,
    ExpiringShare,
    ExpiringSoon,
    GrantRow,
    HistoryRow,
    LedgerPage,
    Membership,
    Permissions,
    PluginRow,
    RecordView,
    RunRow,
    ScheduleView,
    ShareOutcome,
    TaskRow,
    Timeline,
    TimelineBar,
    UserRow,
    frozen_mapping,
)
from sharetui.db import Case, fn
from sharetui.db.models import Grant, Lead, Opportunity, User
from sharetui.db.sql import Statement
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType, Role
from sharetui.domain.time import from_db, to_db

_TIMELINE = Statement(
    "SELECT g.id, u.username, g.access, g.starts_at, g.expires_at, g.ended_at, g.state, "
    "g.until_completed, g.context_activity_id, g.ended_reason FROM grants g JOIN users u ON u.id = g.user_id "
    "WHERE g.entity_type = ? AND g.entity_id = ? ORDER BY g.starts_at DESC, g.id DESC LIMIT ?"
)

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.core.sharing import RequestResult


def grant_row(grant: Mapping[str, Any]) -> GrantRow:
    """A grant as :func:`~sharetui.core.access.grant_dict` gives it, typed."""
    return GrantRow(
        id=grant["id"],
        user=grant["user"],
        access=grant["access"],
        context=grant["context"] or None,  # stored as 0 or NULL: no context either way
        starts_at=from_db(grant["starts_at"]),
        expires_at=from_db(grant["expires_at"]),
        source=grant["source"],
        until_completed=bool(grant["until_completed"]),
    )


def history_row(event: Mapping[str, Any]) -> HistoryRow:
    """A history event as :func:`~sharetui.core.history.event_dict` gives it, typed."""
    return HistoryRow(
        id=event["id"],
        at=from_db(event["at"]),
        event=event["event"],
        status=event["status"],
        reason=event["reason"],
        entity=event["entity"],
        entity_id=event["entity_id"],
        user=event["user"],
        access=event["access"],
        context=event["context"] or None,
        expires_at=from_db(event["expires_at"]),
        source=event["source"],
        requester=event["requester"],
        duration=event.get("duration"),
        request_id=event.get("request_id"),
        grant_id=event.get("grant_id"),
        by=event.get("by") or requested_by(event),
        starts_at=from_db(event.get("starts_at")),
    )


def run_row(run: Mapping[str, Any]) -> RunRow:
    """An automation run as :func:`~sharetui.core.automations.run_dict` gives it, typed."""
    return RunRow(
        id=run["id"],
        automation_id=run["automation_id"],
        started_at=from_db(run["started_at"]),
        record=run["record"],
        status=run["status"],
        reason=run["reason"],
        trace=frozen_mapping(run["trace"]),
    )


def schedule_view(schedule: Mapping[str, Any] | None) -> ScheduleView | None:
    """A schedule as :meth:`AutomationService.describe_schedule` gives it, typed."""
    if not schedule:
        return None
    return ScheduleView(schedule["description"], from_db(schedule["next"]), schedule["misfire"])


def share_outcome(result: RequestResult) -> ShareOutcome:
    """What a share or revoke request came to; the grant is the one it made or ended."""
    grant = result.grant or (result.grants[0] if result.grants else None)
    return ShareOutcome(
        request_id=result.request_id,
        status=result.status,
        outcome=result.outcome,
        reason=result.reason,
        grant=grant_row(grant) if grant else None,
        previous_access=result.previous_access,
    )


class ViewService:
    def __init__(self, core: Core) -> None:
        self.core = core

    # -- one record ------------------------------------------------------------------
    def permissions(self, user: Actor | None, ref: RecordRef) -> Permissions:
        """What ``user`` may do with ``ref`` now (nothing for no user)."""
        if user is None:
            return Permissions()
        level = self.core.access.level(user, ref)
        return Permissions(
            read=level >= Access.READ,
            edit=level >= Access.EDIT,
            share=self.core.sharing.may_share(user, ref),
            level=level.label,
        )

    def record(self, user: Actor | None, ref: RecordRef) -> RecordView:
        """The record as ``user`` may see it: everything if they may read it, else only
        its ref and their permissions. :class:`NotFound` if it does not exist."""
        row = self.core.records.get(ref)
        permissions = self.permissions(user, ref)
        if not permissions.read:
            # A stale list, or a share that ran out while the record was open: none of it.
            return RecordView.unreadable(ref, permissions)
        names = LEAD_FIELDS if ref.entity is EntityType.LEAD else OPP_FIELDS
        owner = self.core.users.usernames({row.owner_id}).get(row.owner_id, "?")
        return RecordView(
            id=row.id,
            entity=ref.entity,
            name=row.name,
            owner=owner,
            standard=frozen_mapping({f: getattr(row, f) for f in names if f != "name"}),
            custom=frozen_mapping(row.fields),
            activities=tuple(
                ActivityRow(
                    id=a.id,
                    type=a.type.name,
                    owner=a.owner.username if a.owner_id else None,
                    status=a.status,
                    note=a.note or "",
                    occurred_at=from_db(a.occurred_at),
                    completed_at=from_db(a.completed_at),
                )
                for a in self.core.records.activities_of(ref)
            ),
            tasks=tuple(
                TaskRow(
                    id=t.id,
                    subject=t.subject,
                    owner=t.owner.username,
                    due_at=from_db(t.due_at),
                    completed_at=from_db(t.completed_at),
                )
                for t in self.core.records.tasks_of(ref)
            ),
            shares=tuple(grant_row(g) for g in self.core.access.active_grants(ref)),
            permissions=permissions,
        )

    def activity_types(self, entity: EntityType) -> list[tuple[str, bool]]:
        """(name, captures an owner) of the activity types of ``entity``'s records."""
        return [
            (t.name, bool(t.captures_owner))
            for t in self.core.records.activity_types()
            if t.entity == entity.value
        ]

    # -- history -------------------------------------------------------------------------
    def history(
        self, actor: Actor | None, flt: HistoryFilter, *, limit: int = 200, before: int | None = None
    ) -> list[HistoryRow]:
        """The newest events matching ``flt`` that ``actor`` may see; ``before`` an event
        id to page back from."""
        rows = self.core.history.query(actor, flt, limit=limit, after_id=before, newest_first=True)
        return [history_row(e) for e in rows]

    def ledger(
        self,
        actor: Actor | None,
        flt: HistoryFilter,
        *,
        before: tuple[datetime, int] | None = None,
        limit: int = 100,
    ) -> LedgerPage:
        """One row per request (share, renew, revoke) with its outcome, newest first by
        time, a page at a time; requests still waiting come first as ``processing``."""
        requests = replace(flt, requests_only=True)
        rows, cursor = self.core.history.ledger(actor, requests, before=before, limit=limit)
        return LedgerPage(tuple(history_row(e) for e in rows), cursor)

    def lifecycle(self, actor: Actor | None, row: HistoryRow) -> list[HistoryRow]:
        """What became of a request: the rows of its request and of the grant it made or
        renewed (granted, renewed, expiring soon, expired, revoked), oldest first."""
        if row.request_id is None and row.grant_id is None:
            return [row]
        ref = RecordRef(EntityType(row.entity), row.entity_id)
        flt = HistoryFilter(record=ref, grant_id=row.grant_id, request_id=row.request_id)
        rows = self.core.history.query(actor, flt, limit=500)
        return [history_row(e) for e in rows]

    def history_per_day(self, actor: Actor | None, flt: HistoryFilter) -> dict[str, dict[str, int]]:
        """Shares granted, expired and revoked per day (UTC) in ``flt``'s range, as ``actor`` may see."""
        return self.core.history.per_day(actor, flt)

    # -- pictures --------------------------------------------------------------------------
    def timeline(self, actor: Actor | None, ref: RecordRef, *, limit: int = 500) -> Timeline:
        """Every share of ``ref`` (active, expired, revoked), newest start first, for those
        who may see its share metadata (:meth:`Gate.require_metadata`)."""
        self.core.gate.require_metadata(actor, ref)
        now = self.core.now()
        # One prepared query, tuples only: a record with 500 shares is read in a few ms.
        rows = _TIMELINE.all((ref.entity.value, ref.id, limit + 1))
        bars = []
        for ident, user, access, starts, expires_at, ended_at, state, until, context, why in rows:
            expires = from_db(expires_at)
            ended = from_db(ended_at)
            if state == "active" and expires is not None and expires <= now:
                state = "expired"  # past its expiry, swept or not
            end = ended if state == "revoked" and ended else expires
            bars.append(
                TimelineBar(
                    grant_id=ident,
                    user=user,
                    access=Access(access).label,
                    starts_at=from_db(starts) or now,
                    ends_at=end or now,
                    state=state,
                    until_completed=bool(until),
                    context=context or None,
                    ended_reason=why,
                )
            )
        return Timeline(now, tuple(bars[:limit]), len(bars) > limit)

    def expiring_soon(self, actor: Actor | None, *, limit: int = 20) -> ExpiringSoon:
        """Active shares ending in the next 24 h and 7 days: everyone's for those who see all
        share metadata (admins, sales managers), else the ones ``actor`` holds."""
        now = self.core.now()
        everyone = self.core.gate.sees_everything(actor)
        at, day, week = to_db(now), to_db(now + timedelta(days=1)), to_db(now + timedelta(days=7))
        base = (Grant.state == "active") & (Grant.expires_at > at) & (Grant.expires_at <= week)
        if not everyone:
            if actor is None:
                return ExpiringSoon(now, False, 0, 0, ())
            base &= Grant.user == actor.id
        counts = (
            Grant.select(fn.COUNT(Grant.id), fn.SUM(Case(None, [(Grant.expires_at <= day, 1)], 0)))
            .where(base)
            .tuples()
            .get()
        )
        soonest = list(
            Grant.select(Grant, User.username).join(User).where(base).order_by(Grant.expires_at).limit(limit)
        )
        names: dict[tuple[str, int], str] = {}
        for entity in EntityType:
            ids = {g.entity_id for g in soonest if g.entity_type == entity.value}
            if ids:
                model = Lead if entity is EntityType.LEAD else Opportunity
                for ident, name in model.select(model.id, model.name).where(model.id.in_(ids)).tuples():
                    names[(entity.value, ident)] = name
        shares = tuple(
            ExpiringShare(
                record=RecordRef(EntityType(g.entity_type), g.entity_id),
                name=names.get((g.entity_type, g.entity_id), "?"),
                user=g.user.username,
                access=Access(g.access).label,
                expires_at=from_db(g.expires_at) or now,
            )
            for g in soonest
        )
        return ExpiringSoon(now, everyone, int(counts[1] or 0), int(counts[0] or 0), shares)

    # -- people ----------------------------------------------------------------------------
    def users(self, actor: Actor | None) -> list[UserRow]:
        """Every user, active or not, by username, with their sales groups (for those who may
        read the user list)."""
        return self._user_rows(self.core.users.list(actor=actor))

    def act_as_choices(self) -> list[UserRow]:
        """The users the TUI's act-as offers (DESIGN §8)."""
        return self._user_rows(self.core.users.act_as_choices())

    def _user_rows(self, users: list[Actor]) -> list[UserRow]:
        return [
            UserRow(
                username=u.username,
                name=u.name,
                role=u.role,
                active=bool(u.active),
                groups=tuple(Membership(g, lv.label) for g, lv in self.core.users.groups_of(u)),
            )
            for u in users
        ]

    def sales_users(self) -> list[tuple[str, str]]:
        """(username, name) of the active sales users, who may receive shares, by username."""
        return [
            (u.username, u.name)
            for u in self.core.users.act_as_choices()
            if u.active and u.role == Role.SALES.value
        ]

    # -- automations -------------------------------------------------------------------
    def automations(self, actor: Actor | None) -> list[AutomationRow]:
        """Every automation by id, with its schedule and latest run (for those who may read them)."""
        return [
            AutomationRow(
                id=a["id"],
                name=a["name"],
                status=a["status"],
                trigger=a["trigger"]["type"],
                schedule=schedule_view(a.get("schedule")),
                last_run=run_row(a["last_run"]) if a["last_run"] else None,
            )
            for a in self.core.automations.list(actor=actor)
        ]

    def automation(self, ident: int | str, actor: Actor | None, *, runs: int = 100) -> AutomationView:
        """One automation's definition and its newest ``runs`` runs (for those who may read them)."""
        service = self.core.automations
        row = service.show(ident, actor=actor)
        data = automation_dict(row)
        schedule = service.describe_schedule(row) if row.trigger_type == "schedule" else None
        return AutomationView(
            id=data["id"],
            name=data["name"],
            description=data["description"],
            status=data["status"],
            trigger=frozen_mapping(data["trigger"]),
            conditions=tuple(frozen_mapping(c) for c in data["conditions"]),
            actions=tuple(frozen_mapping(a) for a in data["actions"]),
            schedule=schedule_view(schedule),
            runs=tuple(run_row(r) for r in service.runs(row.id, actor=actor, limit=runs)),
        )

    # -- plugins -------------------------------------------------------------------------
    def plugins(self) -> list[PluginRow]:
        """The plugins the host loaded or failed to, in its order."""
        return [
            PluginRow(
                name=p.name,
                version=p.version,
                source=p.source,
                hooks=tuple(sorted(p.hooks)),
                errors=tuple(p.errors),
            )
            for p in self.core.plugins.info()
        ]

"""Ending grants early: revoke requests, and the ends other changes cause (the owner
changes, a user is deactivated or changes role, an activity is deleted or completed).
``_end`` writes every end, expiry included, with its history and outbox rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.core.access import grant_dict
from sharetui.core.sharing import team_writes
from sharetui.core.sharing.requests import RequestResult
from sharetui.db.connection import is_sqlite
from sharetui.db.models import Grant, HistoryEvent, Lead, Opportunity, ShareRequest, User, check_lengths
from sharetui.domain.ids import parse_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType, Source
from sharetui.errors import UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core


class Revoking:
    """The revoke part of :class:`~sharetui.core.sharing.SharingService` (a mixin: it asks
    the service's ``_requester_refusal`` and writes through its ``RequestHistory``)."""

    core: Core

    # -- revoke ------------------------------------------------------------------
    def revoke(
        self,
        entity: EntityType | str | int,
        entity_id: Any,
        user: User | str | int,
        *,
        requester: User | None,
        context: Any = None,
        all_contexts: bool = False,
        source: Source | str = Source.MANUAL,
        automation_run_id: int | None = None,
        batch_id: str | None = None,
    ) -> RequestResult:
        """End one grant (record, user, context) early, or all of them with ``all_contexts``."""
        kind = entity if isinstance(entity, EntityType) else EntityType.parse(entity)
        ident = parse_id(entity_id, f"{kind.value} id")
        ctx = None if context in (None, "", 0) else parse_id(context, "context activity id")
        if ctx is not None and all_contexts:
            raise UsageError("give --context or --all-contexts, not both")
        if ctx is not None and kind is EntityType.OPPORTUNITY:
            raise UsageError("opportunities have no context")
        name = user.username if isinstance(user, User) else str(user).strip()
        if not name:
            raise UsageError("name the user whose share to revoke")
        check_lengths(ShareRequest, {"recipient_name": name})
        with self.core.db.atomic():
            target = self.core.users.find(name)
            values = {
                "entity_type": kind.value,
                "entity_id": ident,
                "recipient_name": name,
                "recipient_id": target.id if target else None,
                "requester_id": requester.id if requester else None,
                "context_activity_id": ctx,
                "all_contexts": all_contexts,
                "source": Source(source).value,
                "automation_run_id": automation_run_id,
                "batch_id": batch_id,
                "created_at": self.core.db_now(),
            }
            if self.core.team.routed:  # team mode: the database writes the request
                request = ShareRequest(
                    id=team_writes.open_request("revoke", values),
                    action="revoke",
                    status="processing",
                    **values,
                )
            else:
                request = ShareRequest.create(action="revoke", status="processing", **values)
            return self.process_revoke(request, requester)

    def process_revoke(self, request: ShareRequest, requester: User | None) -> RequestResult:
        ref = RecordRef(EntityType(request.entity_type), request.entity_id)
        now = self.core.db_now()
        target = self.core.users.find(request.recipient_name)
        record = self._record(ref)
        reason = None
        if requester is not None and not requester.active:
            reason = f"requester {requester.username} is deactivated"
        elif record is None or not self.core.gate.can_read(requester, ref):
            reason = f"no {ref.entity.value} {ref.id} you may read"  # the same for both (DESIGN §9)
        else:
            reason = self._requester_refusal(requester, record.owner_id, ref, "revoke shares on")
        if reason is None and target is None:
            reason = f"unknown user {request.recipient_name!r}"
        grants: list[Grant] = []
        if reason is None:
            assert target is not None
            query = Grant.select().where(
                (Grant.entity_type == ref.entity.value)
                & (Grant.entity_id == ref.id)
                & (Grant.user == target.id)
                & (Grant.state == "active")
                & (Grant.expires_at > now)
            )
            if not request.all_contexts:
                query = query.where(Grant.context_key == (request.context_activity_id or 0))
            if not is_sqlite() and not self.core.team.routed:
                # Locked: a concurrent revoke (or renewal) of the same grant waits for this one,
                # then sees it ended; else both would end it and record the end twice.
                query = query.for_update()
            grants = list(query.order_by(Grant.id))
            if not grants:
                where = (
                    "in any context"
                    if request.all_contexts
                    else f"in the context of activity {request.context_activity_id}"
                    if request.context_activity_id
                    else "without a context"
                )
                reason = f"no active share of {ref.entity.value} {ref.id} with {target.username} {where}"
                if not request.all_contexts and self._has_other_contexts(ref, target.id, now):
                    reason += " (use --context ID or --all-contexts)"
        if reason is not None:
            return self._fail(request, reason, requester, target)
        who = requester.username if requester else "the system"
        ended = self._end(
            grants,
            state="revoked",
            reason=f"revoked by {who}",
            at=now,
            requester=requester,
            source=request.source,
            request=request,
        )
        if self.core.team.routed:
            team_writes.finish_request(
                request.id,
                "completed",
                outcome="revoked",
                grant_id=grants[0].id if len(grants) == 1 else None,
            )
        else:
            ShareRequest.update(
                status="completed",
                outcome="revoked",
                finished_at=now,
                grant_id=grants[0].id if len(grants) == 1 else None,
            ).where(ShareRequest.id == request.id).execute()
        first = Grant.get_by_id(grants[0].id)
        self._history(
            "revoke",
            "completed",
            request,
            grant=first if len(grants) == 1 else None,
            requester=requester,
            reason=None,
            user=target,
        )
        return RequestResult(
            request.id,
            "revoke",
            "completed",
            None,
            "revoked",
            ended[0] if len(ended) == 1 else None,
            ended if len(ended) > 1 else [],
        )

    @staticmethod
    def _has_other_contexts(ref: RecordRef, user_id: int, now: datetime) -> bool:
        return (
            Grant.select()
            .where(
                (Grant.entity_type == ref.entity.value)
                & (Grant.entity_id == ref.id)
                & (Grant.user == user_id)
                & (Grant.state == "active")
                & (Grant.expires_at > now)
            )
            .exists()
        )

    @staticmethod
    def _record(ref: RecordRef) -> Lead | Opportunity | None:
        model = Lead if ref.entity is EntityType.LEAD else Opportunity
        return model.get_or_none(model.id == ref.id)

    # -- ending grants for other reasons ------------------------------------------------
    def end_grants(self, key: tuple[str, int, int], *, reason: str, actor: User | None) -> int:
        """End every active grant of (entity type, id, user); used when ownership moves."""
        etype, eid, uid = key
        return self._end_early(
            (Grant.entity_type == etype) & (Grant.entity_id == eid) & (Grant.user == uid), reason, actor
        )

    def end_grants_of_user(self, user_id: int, *, reason: str, actor: User | None) -> int:
        """End a user's grants (deactivation, a role change)."""
        return self._end_early(Grant.user == user_id, reason, actor)

    def end_context_grants(
        self, activity_id: int, *, reason: str, actor: User | None, only_until_completed: bool
    ) -> int:
        """End the grants made in an activity's context (deleted, or completed)."""
        where = Grant.context_activity_id == activity_id
        if only_until_completed:
            where &= Grant.until_completed == True  # noqa: E712
        return self._end_early(where, reason, actor)

    def _end_early(self, where: Any, reason: str, actor: User | None) -> int:
        """Revoke the active grants matching ``where``; returns how many were revoked.

        A grant already past its expiry (not yet swept) gave nothing since then:
        it is recorded as expired at its expiry, not as revoked now.
        """
        now = self.core.db_now()
        grants = list(Grant.select().where(where & (Grant.state == "active")).order_by(Grant.id))
        due = [g for g in grants if g.expires_at <= now]
        live = [g for g in grants if g.expires_at > now]
        for grant in due:
            self._end(
                [grant],
                state="expired",
                reason="expired",
                at=grant.expires_at,
                requester=None,
                source=grant.source,
            )
        ended = self._end(
            live, state="revoked", reason=reason, at=now, requester=actor, source=Source.MANUAL.value
        )
        return len(ended)

    def _end(
        self,
        grants: Iterable[Grant],
        *,
        state: str,
        reason: str,
        at: datetime,
        requester: User | None,
        source: str,
        request: ShareRequest | None = None,
    ) -> list[dict[str, Any]]:
        """Move grants to ``revoked`` or ``expired``, with history and outbox rows."""
        out = []
        event = "revoked" if state == "revoked" else "expired"
        routed = self.core.team.routed
        for grant in grants:
            if routed:  # team mode: the database checks who may end it and when
                changed = team_writes.end_grant(grant.id, state, reason)
            else:
                changed = (
                    Grant.update(state=state, ended_at=at, ended_reason=reason, updated_at=self.core.db_now())
                    .where((Grant.id == grant.id) & (Grant.state == "active"))
                    .execute()
                )
            if not changed:
                continue  # a concurrent transaction ended it first, and recorded that end
            fresh = Grant.get_by_id(grant.id)
            row = dict(
                at=at,
                event=event,
                status="completed",
                reason=reason,
                request_id=request.id if request else None,
                grant_id=fresh.id,
                entity_type=fresh.entity_type,
                entity_id=fresh.entity_id,
                user_id=fresh.user_id,
                user_name=fresh.user.username,
                access=fresh.access,
                context_activity_id=fresh.context_activity_id,
                duration=None,
                starts_at=fresh.starts_at,
                expires_at=fresh.expires_at,
                source=source,
                requester_id=requester.id if requester else None,
                requester_name=requester.username if requester else "",
                automation_run_id=request.automation_run_id if request else None,
            )
            if routed:
                from sharetui.core.sharing.history import _HISTORY_COLUMNS

                team_writes.history([row[c.strip()] for c in _HISTORY_COLUMNS.split(",")])
            else:
                HistoryEvent.insert(**row).execute()
            payload = self._grant_payload(fresh)
            payload["reason"] = reason
            self.core.outbox.emit(f"share.{event}", fresh.entity_type, fresh.entity_id, payload)
            as_dict = grant_dict(fresh, self.core.now())
            self._lifecycle(
                event,
                RecordRef(EntityType(fresh.entity_type), fresh.entity_id),
                as_dict["user"],
                source,
                request.id if request else None,
                reason,
                as_dict,
            )
            out.append(as_dict)
        return out

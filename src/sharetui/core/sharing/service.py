"""Share, renew and revoke (DESIGN .3).

Each request gets an id and a status ``processing -> completed | failed`` with
a human reason. A failed request changes no grant, and stays in history.
Re-sharing the same (record, user, context) renews that grant. Every request
and lifecycle event is written to history and to the outbox in the same
transaction as the change.

:class:`SharingService` is the one object ``core.sharing`` is, composed of its parts,
each in a module of its own and mixed in: the share path (:mod:`.share`), revoking
and ending grants (:mod:`.revoke`) and the history they write (:mod:`.history`).
This module holds the reads: a request's status, grants, and the count the share
cap is checked against.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.core.access import grant_dict
from sharetui.core.sharing.history import RequestHistory
from sharetui.core.sharing.requests import RequestResult, ShareInput
from sharetui.core.sharing.revoke import Revoking
from sharetui.core.sharing.share import _CAP_SQL, Sharing
from sharetui.db import SQL
from sharetui.db.models import Grant, HistoryEvent, ShareRequest, User
from sharetui.domain.ids import parse_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import to_db
from sharetui.errors import NotReadable

if TYPE_CHECKING:
    from sharetui.core.service import Core

# RequestResult and ShareInput lived here before the split: they still import from here.
__all__ = ["RequestResult", "ShareInput", "SharingService"]


class SharingService(Sharing, Revoking, RequestHistory):
    """Share, renew and revoke; end grants; read requests and grants."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- reading -------------------------------------------------------------------
    def status(self, request_id: Any, *, actor: User | None) -> RequestResult:
        """A request's status, for ``actor``: admins and sales managers see every
        request; others the requests they made, those about their own grants, and
        those about records they may read (DESIGN §9). Others answer like a missing
        request."""
        ident = parse_id(request_id, "request id")
        request = ShareRequest.get_or_none(ShareRequest.id == ident)
        if request is None or not self.may_see_request(actor, request):
            raise NotReadable(f"no request {ident} you may read")
        return self.result_of(request)

    def may_see_request(self, actor: User | None, request: ShareRequest) -> bool:
        """Whether ``actor`` may see ``request``: everyone's for admins and sales managers;
        otherwise a request they made, one that gave or ended a grant of theirs, or one
        about a record they may read. A failed request naming them as the recipient is not
        enough: its reason may describe a record they may not read ("activity 5 owned by
        sofia, not by daniel")."""
        gate = self.core.gate
        if gate.sees_everything(actor):
            return True
        assert actor is not None
        if actor.active and actor.id == request.requester_id:
            return True
        if actor.active and actor.id == request.recipient_id and request.status == "completed":
            return True  # a grant of theirs was made, renewed or ended: their own grants (DESIGN §9)
        return gate.can_read(actor, RecordRef(EntityType(request.entity_type), request.entity_id))

    def result_of(self, request: ShareRequest) -> RequestResult:
        now = self.core.now()
        grant = Grant.get_or_none(Grant.id == request.grant_id) if request.grant_id else None
        grants: list[dict[str, Any]] = []
        if request.action == "revoke" and request.status == "completed" and grant is None:
            ended = HistoryEvent.select(HistoryEvent.grant_id).where(
                (HistoryEvent.request_id == request.id) & (HistoryEvent.event == "revoked")
            )
            grants = [
                grant_dict(g, now) for g in Grant.select().where(Grant.id.in_(ended)).order_by(Grant.id)
            ]
        return RequestResult(
            request.id,
            request.action,
            request.status,
            request.reason,
            request.outcome,
            grant_dict(grant, now) if grant else None,
            grants,
        )

    def count_active(self, user_id: int, entity: EntityType | None, now: datetime) -> int:
        """On how many records ``user_id`` holds active, unexpired shares (of one kind, or all)."""
        kinds = [entity] if entity is not None else list(EntityType)
        return sum((_CAP_SQL.one((0, user_id, kind.value, to_db(now))) or (0, 0))[0] or 0 for kind in kinds)

    def grants(
        self,
        *,
        actor: User | None,
        user: User | None = None,
        entity: EntityType | None = None,
        include_ended: bool = False,
        limit: int = 200,
        after_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Grants ``actor`` may see, newest first; by default only those that give access now.

        Admins and sales managers see every grant; others the grants on records they
        may read, and their own (DESIGN §9).
        """
        now = self.core.now()
        g = Grant.alias("g")  # the gate's SQL names the grant's columns g.*
        query = g.select(g, User).join(User, on=(g.user == User.id)).order_by(g.id.desc()).limit(limit)
        visible = self.core.gate.share_rows(
            actor, entity_col="g.entity_type", id_col="g.entity_id", user_col="g.user_id", now=now
        )
        if visible is not None:
            query = query.where(SQL(*visible))
        if not include_ended:
            query = query.where((g.state == "active") & (g.expires_at > self.core.db_now()))
        if user is not None:
            query = query.where(g.user == user.id)
        if entity is not None:
            query = query.where(g.entity_type == entity.value)
        if after_id is not None:
            query = query.where(g.id < after_id)
        rows = [grant_dict(row, now) for row in query]
        return self.core.gate.keep_readable(actor, rows, own="user")

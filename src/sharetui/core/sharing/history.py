"""What a share or revoke request leaves behind besides its grant: the history rows,
the outbox event of a failed request, and the lifecycle events plugins hear of once
the transaction commits. Every row is written with a compiled statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sharetui.core.sharing.requests import RequestResult
from sharetui.db.models import Grant, ShareRequest, User
from sharetui.db.sql import Insert, Update
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.domain.time import iso

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.core.sharing.share import _Person

_FAIL_REQUEST = Update("share_requests", ("reason", "finished_at"), constants={"status": "failed"})
_HISTORY_COLUMNS = (
    "at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id, user_name, access, "
    "context_activity_id, duration, starts_at, expires_at, source, requester_id, requester_name, "
    "automation_run_id"
)
# One row per 19 values; a share writes two at once (the request, then what it did:
# granted or renewed), in one statement (or, in a batch, with the batch's other rows).
_INSERT_HISTORY = Insert("history", [c.strip() for c in _HISTORY_COLUMNS.split(",")])
_INSERT_TWO_HISTORY = _INSERT_HISTORY


class _GrantRow(NamedTuple):
    """A grant the share path just wrote, with the fields ``Grant`` has that it reads."""

    id: int
    entity_type: str
    entity_id: int
    user_id: int
    user_name: str
    context_activity_id: int | None
    access: int
    starts_at: datetime
    expires_at: datetime
    source: str
    until_completed: bool
    request_id: int

    def as_dict(self) -> dict[str, Any]:
        """The same dict :func:`grant_dict` makes of the stored row."""
        return {
            "id": self.id,
            "entity": self.entity_type,
            "entity_id": self.entity_id,
            "user": self.user_name,
            "access": Access(self.access).label,
            "context": self.context_activity_id,
            "starts_at": iso(self.starts_at),
            "expires_at": iso(self.expires_at),
            "state": "active",
            "source": self.source,
            "until_completed": bool(self.until_completed),
            "request_id": self.request_id,
        }


class RequestHistory:
    """The history part of :class:`~sharetui.core.sharing.SharingService` (a mixin)."""

    core: Core

    def _fail(
        self, request: ShareRequest, reason: str, requester: User | None, user: User | _Person | None
    ) -> RequestResult:
        now = self.core.db_now()
        if self.core.team.routed:
            from sharetui.core.sharing import team_writes

            team_writes.finish_request(request.id, "failed", reason=reason)
        else:
            _FAIL_REQUEST.run([reason, now, request.id])
        request.status, request.reason = "failed", reason
        self._history(
            request.action, "failed", request, grant=None, requester=requester, reason=reason, user=user
        )
        self.core.outbox.emit(
            "share.request_failed",
            request.entity_type,
            request.entity_id,
            {
                "request_id": request.id,
                "action": request.action,
                "reason": reason,
                "user": request.recipient_name,
                "source": request.source,
            },
        )
        self._lifecycle(
            "request_failed",
            RecordRef(EntityType(request.entity_type), request.entity_id or 0),
            request.recipient_name or None,
            request.source,
            request.id,
            reason,
            None,
        )
        return RequestResult(request.id, request.action, "failed", reason)

    def _history(
        self,
        event: str,
        status: str,
        request: ShareRequest,
        *,
        grant: Grant | _GrantRow | None,
        requester: User | None,
        reason: str | None,
        user: User | _Person | None = None,
    ) -> None:
        row = self._history_row(
            event, status, request, grant=grant, requester=requester, reason=reason, user=user
        )
        if self.core.team.routed:
            from sharetui.core.sharing import team_writes

            team_writes.history(row)
        else:
            _INSERT_HISTORY.run(row)

    def _history_row(
        self,
        event: str,
        status: str,
        request: ShareRequest,
        *,
        grant: Grant | _GrantRow | None,
        requester: User | None,
        reason: str | None,
        user: User | _Person | None = None,
        at: datetime | None = None,
    ) -> list[Any]:
        """The values of one history row, in ``_HISTORY_COLUMNS`` order (``at``: now)."""
        if grant is None:
            user_id = user.id if user else request.recipient_id
            user_name = user.username if user else request.recipient_name
        else:
            user_id = grant.user_id
            user_name = grant.user_name if isinstance(grant, _GrantRow) else grant.user.username
        return [
            at or self.core.db_now(),
            event,
            status,
            reason,
            request.id,
            grant.id if grant else None,
            request.entity_type,
            request.entity_id,
            user_id,
            user_name,
            grant.access if grant else request.access,
            grant.context_activity_id if grant else request.context_activity_id,
            request.duration,
            grant.starts_at if grant else None,
            grant.expires_at if grant else None,
            request.source,
            requester.id if requester else None,
            requester.username if requester else "",
            request.automation_run_id,
        ]

    @staticmethod
    def _grant_payload(grant: Grant | _GrantRow) -> dict[str, Any]:
        return {
            "grant_id": grant.id,
            "user_id": grant.user_id,
            "access": Access(grant.access).label,
            "context": grant.context_activity_id,
            "expires_at": iso(grant.expires_at),
            "source": grant.source,
        }

    def _lifecycle(
        self,
        kind: str,
        ref: RecordRef,
        user: str | None,
        source: str,
        request_id: int | None,
        reason: str | None,
        grant: dict[str, Any] | None,
    ) -> None:
        """Tell plugins about a lifecycle event once the transaction commits."""
        if not self.core.plugins.listens_to(kind):
            return
        from sharetui.sdk.types import ShareEvent

        self.core.dispatch.after_commit(
            ShareEvent(kind, ref, user, self.core.now(), source, request_id, reason, grant)
        )

"""Share, renew and revoke (DESIGN .3).

Each request gets an id and a status ``processing -> completed | failed`` with
a human reason. A failed request changes no grant, and stays in history.
Re-sharing the same (record, user, context) renews that grant. Every request
and lifecycle event is written to history and to the outbox in the same
transaction as the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sharetui.core.access import grant_dict
from sharetui.db import IntegrityError
from sharetui.db.connection import is_sqlite
from sharetui.db.models import Grant, HistoryEvent, Lead, Opportunity, ShareRequest, User, check_lengths
from sharetui.db.sql import USER_LIVE_GRANT, Statement
from sharetui.domain.durations import Duration, parse_duration
from sharetui.domain.ids import as_id, parse_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import SHARE_MANAGERS, Access, EntityType, Role, Source
from sharetui.domain.time import iso, to_db
from sharetui.errors import InvalidDuration, NotFound, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core


@dataclass
class RequestResult:
    """The outcome of a share or revoke request, shaped like the CLI's JSON."""

    request_id: int
    action: str
    status: str
    reason: str | None
    outcome: str | None = None
    grant: dict[str, Any] | None = None
    grants: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "action": self.action,
            "outcome": self.outcome,
            "status": self.status,
            "reason": self.reason,
        }
        if self.grant is not None:
            out["grant"] = self.grant
        if self.grants:
            out["grants"] = self.grants
        return out


@dataclass(frozen=True)
class ShareInput:
    """A share request after its syntax was checked (bad syntax never gets this far)."""

    entity: EntityType
    entity_id: int
    recipient: str
    access: Access
    duration: Duration
    context: int | None
    until_completed: bool


_CAP_SQL = Statement(
    "SELECT COUNT(DISTINCT entity_id), "
    "SUM(CASE WHEN entity_id = ? THEN 1 ELSE 0 END) FROM grants "
    f"WHERE user_id = ? AND entity_type = ? AND {USER_LIVE_GRANT}"
)


# The share path runs per item of a batch and per automation run: its statements are
# compiled once (STYLE: a Peewee query costs ~20x a raw statement), and the rows it
# writes are built from what it already knows instead of read back.
_USER_BY_NAME = Statement("SELECT id, username, role, active FROM users WHERE username = ?")
_USER_BY_ID = Statement("SELECT id, username, role, active FROM users WHERE id = ?")
_OWNER = {
    EntityType.LEAD: Statement("SELECT owner_id FROM leads WHERE id = ?"),
    EntityType.OPPORTUNITY: Statement("SELECT owner_id FROM opportunities WHERE id = ?"),
}
_CONTEXT_SQL = Statement(
    "SELECT a.lead_id, a.owner_id, a.status, a.deleted_at, u.username FROM activities a "
    "LEFT JOIN users u ON u.id = a.owner_id WHERE a.id = ?"
)
_ACTIVE_GRANT_SQL = Statement(
    "SELECT id, expires_at, starts_at, source FROM grants WHERE entity_type = ? AND entity_id = ? "
    "AND user_id = ? AND context_key = ? AND state = 'active'"
)
# PostgreSQL: the same, locked, so a revoke committing meanwhile cannot end the grant
# between this read and its renewal (the renewal would revive a revoked grant).
_ACTIVE_GRANT_LOCKED = Statement(_ACTIVE_GRANT_SQL.text + " FOR UPDATE")
_INSERT_REQUEST = Statement(
    "INSERT INTO share_requests (action, status, entity_type, entity_id, recipient_name, recipient_id, "
    "requester_id, context_activity_id, all_contexts, access, duration, until_completed, source, "
    "automation_run_id, batch_id, created_at) "
    "VALUES ('share', 'processing', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_GRANT = Statement(
    "INSERT INTO grants (entity_type, entity_id, user_id, context_activity_id, context_key, access, "
    "starts_at, expires_at, state, source, request_id, until_completed, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)"
)
_RENEW_GRANT = Statement(
    "UPDATE grants SET access = ?, expires_at = ?, until_completed = ?, request_id = ?, warned_at = NULL, "
    "updated_at = ? WHERE id = ?"
)
_COMPLETE_REQUEST = Statement(
    "UPDATE share_requests SET status = 'completed', outcome = ?, grant_id = ?, finished_at = ? WHERE id = ?"
)
_FAIL_REQUEST = Statement(
    "UPDATE share_requests SET status = 'failed', reason = ?, finished_at = ? WHERE id = ?"
)
_HISTORY_COLUMNS = (
    "at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id, user_name, access, "
    "context_activity_id, duration, starts_at, expires_at, source, requester_id, requester_name, "
    "automation_run_id"
)
_HISTORY_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_HISTORY = Statement(f"INSERT INTO history ({_HISTORY_COLUMNS}) VALUES {_HISTORY_VALUES}")
# A share writes two rows at once (the request, then what it did: granted or renewed).
_INSERT_TWO_HISTORY = Statement(
    f"INSERT INTO history ({_HISTORY_COLUMNS}) VALUES {_HISTORY_VALUES}, {_HISTORY_VALUES}"
)
_UNKNOWN = object()


class _Person(NamedTuple):
    """A user as the share path needs one (duck-types the ``User`` fields it reads)."""

    id: int
    username: str
    role: str
    active: bool


def _find_person(who: str) -> _Person | None:
    """Like ``UserService.find`` for a name: the username (any case), else a numeric id."""
    text = str(who).strip()
    if not text or "\x00" in text:  # no username holds a NUL (PostgreSQL cannot even compare one)
        return None
    row = _USER_BY_NAME.one((text.lower(),))
    if row is None and as_id(text) is not None:
        row = _USER_BY_ID.one((as_id(text),))
    return None if row is None else _Person(row[0], row[1], row[2], bool(row[3]))


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


def _naive(value: Any) -> datetime:
    """A stored time read with raw SQL (text on SQLite) as the naive UTC datetime Peewee gives."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class SharingService:
    def __init__(self, core: Core) -> None:
        self.core = core

    # -- input -----------------------------------------------------------------
    def parse_share(
        self,
        entity: EntityType | str | int,
        entity_id: Any,
        recipient: User | str | int,
        *,
        duration: Duration | str | int | None = None,
        access: Access | str | int = Access.READ,
        context: Any = None,
        until_completed: bool = False,
    ) -> ShareInput:
        """Check a share request's syntax. Raises :class:`UsageError`; changes nothing."""
        kind = entity if isinstance(entity, EntityType) else EntityType.parse(entity)
        ident = parse_id(entity_id, f"{kind.value} id")
        level = access if isinstance(access, Access) else Access.parse(access)
        if level is Access.NONE:
            raise UsageError("access must be read or edit")
        if duration is None:  # not given: the default (an empty string is an error)
            duration = self.core.settings.get("default_duration")
        dur = duration if isinstance(duration, Duration) else parse_duration(duration)  # type: ignore[arg-type]
        ctx = None if context in (None, "", 0) else parse_id(context, "context activity id")
        if ctx is not None and kind is EntityType.OPPORTUNITY:
            raise UsageError("opportunities have no context: share them without --context")
        if until_completed and ctx is None:
            raise UsageError("--until-completed needs a --context activity")
        if isinstance(recipient, User):
            name = recipient.username
        else:
            name = str(recipient).strip()
            if not name:
                raise UsageError("name the user to share with")
            check_lengths(ShareRequest, {"recipient_name": name})
        check_lengths(ShareRequest, {"duration": dur.text})
        return ShareInput(kind, ident, name, level, dur, ctx, bool(until_completed))

    # -- share -----------------------------------------------------------------
    def share(
        self,
        entity: EntityType | str | int,
        entity_id: Any,
        recipient: User | str | int,
        *,
        requester: User | None,
        duration: Duration | str | int | None = None,
        access: Access | str | int = Access.READ,
        context: Any = None,
        until_completed: bool = False,
        source: Source | str = Source.MANUAL,
        automation_run_id: int | None = None,
    ) -> RequestResult:
        """Share a record with a sales user for a time; renews an existing grant.

        Bad syntax raises :class:`UsageError` and records nothing; a refused
        request returns a ``failed`` result that is kept in history.
        """
        parsed = self.parse_share(
            entity,
            entity_id,
            recipient,
            duration=duration,
            access=access,
            context=context,
            until_completed=until_completed,
        )
        with self.core.db.atomic():
            request = self.open_share_request(
                parsed, requester=requester, source=source, automation_run_id=automation_run_id
            )
            return self.process_share(request, parsed, requester)

    def open_share_request(
        self,
        parsed: ShareInput,
        *,
        requester: User | None,
        source: Source | str,
        automation_run_id: int | None = None,
        batch_id: str | None = None,
    ) -> ShareRequest:
        """Record a share request as ``processing``."""
        recipient = _find_person(parsed.recipient)
        values = {
            "entity_type": parsed.entity.value,
            "entity_id": parsed.entity_id,
            "recipient_name": parsed.recipient,
            "recipient_id": recipient.id if recipient else None,
            "requester_id": requester.id if requester else None,
            "context_activity_id": parsed.context,
            "all_contexts": False,
            "access": int(parsed.access),
            "duration": parsed.duration.text,
            "until_completed": parsed.until_completed,
            "source": Source(source).value,
            "automation_run_id": automation_run_id,
            "batch_id": batch_id,
            "created_at": self.core.db_now(),
        }
        request_id = _INSERT_REQUEST.insert(list(values.values()))
        # The row as written, without reading it back; process_share reuses the recipient
        # looked up here (the same transaction: it cannot have changed).
        request = ShareRequest(id=request_id, action="share", status="processing", **values)
        request._recipient = recipient
        return request

    def process_share(
        self, request: ShareRequest, parsed: ShareInput, requester: User | None
    ) -> RequestResult:
        """Decide a processing share request: fail it, or grant or renew. Call in a transaction."""
        now_aware = self.core.now()
        now = to_db(now_aware)
        ref = RecordRef(parsed.entity, parsed.entity_id)
        recipient = request.__dict__.get("_recipient", _UNKNOWN)
        if recipient is _UNKNOWN:
            recipient = _find_person(parsed.recipient)
        if recipient is not None and not is_sqlite():
            # Serialise shares to one recipient so the cap holds under concurrency.
            self.core.db.execute_sql("SELECT id FROM users WHERE id = %s FOR UPDATE", (recipient.id,))
        reason = self._share_refusal(ref, parsed, recipient, requester, now_aware)
        if reason is not None:
            return self._fail(request, reason, requester, recipient)
        assert recipient is not None
        expires = to_db(parsed.duration.end_from(now_aware))
        existing = self._active_grant_row(ref, recipient.id, parsed.context)
        if existing is not None and _naive(existing[1]) <= now:
            stale = Grant.get_by_id(existing[0])
            self._end(
                [stale],
                state="expired",
                reason="expired",
                at=stale.expires_at,
                requester=None,
                source=stale.source,
            )
            existing = None
        if self.core.plugins.has_share_validators():
            reason = self._plugin_veto(request, parsed, requester, recipient, now_aware, existing is not None)
            if reason is not None:
                return self._fail(request, reason, requester, recipient)
        if existing is None:
            params = [
                ref.entity.value,
                ref.id,
                recipient.id,
                parsed.context,
                parsed.context or 0,
                int(parsed.access),
                now,
                expires,
                request.source,
                request.id,
                parsed.until_completed,
                now,
                now,
            ]
            try:
                if is_sqlite():  # a failed statement leaves the transaction usable
                    grant_id = _INSERT_GRANT.insert(params)
                else:  # PostgreSQL aborts the transaction: fence the insert in a savepoint
                    with self.core.db.atomic():
                        grant_id = _INSERT_GRANT.insert(params)
                outcome, starts, source = "granted", now, request.source
            except IntegrityError:
                existing = self._active_grant_row(ref, recipient.id, parsed.context)
                if existing is None:
                    raise
        if existing is not None:
            _RENEW_GRANT.run(
                [int(parsed.access), expires, parsed.until_completed, request.id, now, existing[0]]
            )
            grant_id, starts, source = existing[0], _naive(existing[2]), existing[3]
            outcome = "renewed"
        grant = _GrantRow(
            grant_id,
            ref.entity.value,
            ref.id,
            recipient.id,
            recipient.username,
            parsed.context,
            int(parsed.access),
            starts,
            expires,
            source,
            parsed.until_completed,
            request.id,
        )
        _COMPLETE_REQUEST.run([outcome, grant.id, now, request.id])
        event = "share" if outcome == "granted" else "renew"
        done = {"grant": grant, "requester": requester, "reason": None, "at": now}
        _INSERT_TWO_HISTORY.run(
            self._history_row(event, "completed", request, **done)
            + self._history_row(outcome, "completed", request, **done)
        )
        payload = self._grant_payload(grant)
        payload["request_id"] = request.id
        self.core.outbox.emit(f"share.{outcome}", ref.entity.value, ref.id, payload, at=now)
        as_dict = grant.as_dict()
        self._lifecycle(outcome, ref, as_dict["user"], request.source, request.id, None, as_dict)
        return RequestResult(request.id, "share", "completed", None, outcome, as_dict)

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

    def _share_refusal(
        self,
        ref: RecordRef,
        parsed: ShareInput,
        recipient: User | None,
        requester: User | None,
        now: datetime,
    ) -> str | None:
        """Why this share must fail (DESIGN .3), or None."""
        found = _OWNER[ref.entity].one((ref.id,))
        if found is None:
            return f"{ref.entity.value} {ref.id} does not exist"
        owner_id = found[0]
        refusal = self._requester_refusal(requester, owner_id, ref, "share")
        if refusal:
            return refusal
        if recipient is None:
            return f"unknown user {parsed.recipient!r}"
        if not recipient.active:
            return f"user {recipient.username} is deactivated"
        if recipient.role != Role.SALES.value:
            return f"user {recipient.username} is {recipient.role}: only sales users receive shares"
        if owner_id == recipient.id:
            return f"{recipient.username} owns {ref.entity.value} {ref.id}"
        if parsed.context is not None:
            act = _CONTEXT_SQL.one((parsed.context,))
            if act is None or act[3] is not None:
                return f"context activity {parsed.context} does not exist"
            act_lead, act_owner, act_status, _deleted, act_owner_name = act
            if act_lead != ref.id:
                return f"activity {parsed.context} is not on lead {ref.id}"
            if act_owner != recipient.id:
                owner = f"owned by {act_owner_name}" if act_owner else "has no owner"
                return f"activity {parsed.context} {owner}, not by {recipient.username}"
            if parsed.until_completed and act_status == "completed":
                return f"activity {parsed.context} is already completed"
        try:
            parsed.duration.check_bounds(now)
        except InvalidDuration as exc:
            return exc.message
        cap = self.core.settings.share_cap(ref.entity.value)
        distinct, this_one = _CAP_SQL.one((ref.id, recipient.id, ref.entity.value, to_db(now))) or (0, 0)
        if not this_one and (distinct or 0) >= cap:
            noun = "leads" if ref.entity is EntityType.LEAD else "opportunities"
            return f"{recipient.username} already holds active shares on {distinct} {noun} (the cap is {cap})"
        return None

    def _plugin_veto(
        self,
        request: ShareRequest,
        parsed: ShareInput,
        requester: User | None,
        recipient: User,
        now: datetime,
        renewal: bool,
    ) -> str | None:
        from sharetui.sdk.types import ShareRequestInfo

        info = ShareRequestInfo(
            request_id=request.id,
            record=RecordRef(parsed.entity, parsed.entity_id),
            recipient=recipient.username,
            requester=requester.username if requester else None,
            access=parsed.access,
            duration=parsed.duration.text,
            starts_at=now,
            expires_at=parsed.duration.end_from(now),
            context_activity_id=parsed.context,
            source=request.source,
            renewal=renewal,
        )
        return self.core.plugins.validate_share(info)

    def may_share(self, user: User | None, ref: RecordRef) -> bool:
        """May ``user`` share (and revoke) ``ref`` now? The question every face asks
        before offering to share; the share itself asks it again."""
        if user is None:
            return False
        found = _OWNER[ref.entity].one((ref.id,))
        return found is not None and self._requester_refusal(user, found[0], ref, "share") is None

    def _requester_refusal(
        self, requester: User | None, owner_id: int, ref: RecordRef, verb: str
    ) -> str | None:
        if requester is None:
            return None
        if not requester.active:
            return f"requester {requester.username} is deactivated"
        role = Role(requester.role)
        if role in SHARE_MANAGERS:
            return None
        if role is Role.SALES and owner_id == requester.id and self.core.settings.get("owners_can_share"):
            return None
        who = (
            "admins, sales managers and the record's owner"
            if self.core.settings.get("owners_can_share")
            else "admins and sales managers (owners_can_share is off)"
        )
        return f"{requester.username} may not {verb} {ref.entity.value} {ref.id}: only {who} may"

    @staticmethod
    def _record(ref: RecordRef) -> Lead | Opportunity | None:
        model = Lead if ref.entity is EntityType.LEAD else Opportunity
        return model.get_or_none(model.id == ref.id)

    @staticmethod
    def _active_grant_row(ref: RecordRef, user_id: int, context: int | None) -> tuple[Any, ...] | None:
        """(id, expires_at, starts_at, source) of the active grant of (record, user, context)."""
        sql = _ACTIVE_GRANT_SQL if is_sqlite() else _ACTIVE_GRANT_LOCKED
        return sql.one((ref.entity.value, ref.id, user_id, context or 0))

    @staticmethod
    def _active_grant(ref: RecordRef, user_id: int, context: int | None) -> Grant | None:
        return Grant.get_or_none(
            (Grant.entity_type == ref.entity.value)
            & (Grant.entity_id == ref.id)
            & (Grant.user == user_id)
            & (Grant.context_key == (context or 0))
            & (Grant.state == "active")
        )

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
            request = ShareRequest.create(
                action="revoke",
                status="processing",
                entity_type=kind.value,
                entity_id=ident,
                recipient_name=name,
                recipient_id=target.id if target else None,
                requester_id=requester.id if requester else None,
                context_activity_id=ctx,
                all_contexts=all_contexts,
                source=Source(source).value,
                automation_run_id=automation_run_id,
                batch_id=batch_id,
                created_at=self.core.db_now(),
            )
            return self.process_revoke(request, requester)

    def process_revoke(self, request: ShareRequest, requester: User | None) -> RequestResult:
        ref = RecordRef(EntityType(request.entity_type), request.entity_id)
        now = self.core.db_now()
        target = self.core.users.find(request.recipient_name)
        record = self._record(ref)
        reason = None
        if record is None:
            reason = f"{ref.entity.value} {ref.id} does not exist"
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
            if not is_sqlite():
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
        for grant in grants:
            changed = (
                Grant.update(state=state, ended_at=at, ended_reason=reason, updated_at=self.core.db_now())
                .where((Grant.id == grant.id) & (Grant.state == "active"))
                .execute()
            )
            if not changed:
                continue  # a concurrent transaction ended it first, and recorded that end
            fresh = Grant.get_by_id(grant.id)
            HistoryEvent.insert(
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
            ).execute()
            payload = self._grant_payload(fresh)
            payload["reason"] = reason
            self.core.outbox.emit(f"share.{event}", fresh.entity_type, fresh.entity_id, payload)
            as_dict = grant_dict(fresh)
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

    # -- history and results ----------------------------------------------------
    def _fail(
        self, request: ShareRequest, reason: str, requester: User | None, user: User | _Person | None
    ) -> RequestResult:
        now = self.core.db_now()
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
        _INSERT_HISTORY.run(
            self._history_row(
                event, status, request, grant=grant, requester=requester, reason=reason, user=user
            )
        )

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

    # -- reading -------------------------------------------------------------------
    def status(self, request_id: Any) -> RequestResult:
        ident = parse_id(request_id, "request id")
        request = ShareRequest.get_or_none(ShareRequest.id == ident)
        if request is None:
            raise NotFound(f"request {ident} does not exist")
        return self.result_of(request)

    def result_of(self, request: ShareRequest) -> RequestResult:
        grant = Grant.get_or_none(Grant.id == request.grant_id) if request.grant_id else None
        grants: list[dict[str, Any]] = []
        if request.action == "revoke" and request.status == "completed" and grant is None:
            ended = HistoryEvent.select(HistoryEvent.grant_id).where(
                (HistoryEvent.request_id == request.id) & (HistoryEvent.event == "revoked")
            )
            grants = [grant_dict(g) for g in Grant.select().where(Grant.id.in_(ended)).order_by(Grant.id)]
        return RequestResult(
            request.id,
            request.action,
            request.status,
            request.reason,
            request.outcome,
            grant_dict(grant) if grant else None,
            grants,
        )

    def count_active(self, user_id: int, entity: EntityType | None, now: datetime) -> int:
        """On how many records ``user_id`` holds active, unexpired shares (of one kind, or all)."""
        kinds = [entity] if entity is not None else list(EntityType)
        return sum((_CAP_SQL.one((0, user_id, kind.value, to_db(now))) or (0, 0))[0] or 0 for kind in kinds)

    def grants(
        self,
        *,
        user: User | None = None,
        entity: EntityType | None = None,
        include_ended: bool = False,
        limit: int = 200,
        after_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Grants, newest first; by default only those that give access now."""
        query = Grant.select(Grant, User).join(User).order_by(Grant.id.desc()).limit(limit)
        if not include_ended:
            query = query.where((Grant.state == "active") & (Grant.expires_at > self.core.db_now()))
        if user is not None:
            query = query.where(Grant.user == user.id)
        if entity is not None:
            query = query.where(Grant.entity_type == entity.value)
        if after_id is not None:
            query = query.where(Grant.id < after_id)
        return [grant_dict(g) for g in query]

"""The share path: check a share request's syntax, open it, then grant, renew or
refuse it (who may share, the recipient, the context, the cap, plugin validators).
This is the hot path BENCHMARKS.md measures: see the note on its statements below.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sharetui.core.sharing import facts, team_writes
from sharetui.core.sharing.facts import Person, find_person, naive, record_owner
from sharetui.core.sharing.history import _INSERT_TWO_HISTORY, _GrantRow
from sharetui.core.sharing.requests import RequestResult, ShareInput
from sharetui.db import IntegrityError
from sharetui.db.batching import batch_of, memo_of
from sharetui.db.connection import database, is_sqlite
from sharetui.db.locks import ManyRecipients, hold_recipient, hold_recipients
from sharetui.db.models import Grant, ShareRequest, User, check_lengths
from sharetui.db.sql import FRESH_LEVEL, USER_LIVE_GRANT, Insert, Statement, Update, level_sql
from sharetui.domain.durations import Duration, parse_duration
from sharetui.domain.ids import parse_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import SHARE_MANAGERS, Access, EntityType, Role, Source
from sharetui.domain.time import to_db
from sharetui.errors import InvalidDuration, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

_CAP_SQL = Statement(
    "SELECT COUNT(DISTINCT entity_id), "
    "SUM(CASE WHEN entity_id = ? THEN 1 ELSE 0 END) FROM grants "
    f"WHERE user_id = ? AND entity_type = ? AND {USER_LIVE_GRANT}",
    reads=("grants",),
    checked=("grants",),  # see Sharing._cap_count
)


# The share path runs per item of a batch and per automation run: its statements are
# compiled once (STYLE: a Peewee query costs ~20x a raw statement), and the rows it
# writes are built from what it already knows instead of read back.
_CONTEXT_SQL = Statement(
    "SELECT a.lead_id, a.owner_id, a.status, a.deleted_at, u.username FROM activities a "
    "LEFT JOIN users u ON u.id = a.owner_id WHERE a.id = ?",
    reads=("activities", "users"),
)
_ACTIVE_GRANT_SQL = Statement(
    "SELECT id, expires_at, starts_at, source, access FROM grants WHERE entity_type = ? AND entity_id = ? "
    "AND user_id = ? AND context_key = ? AND state = 'active'",
    reads=("grants",),
    checked=("grants",),  # the user's grants on the record are settled first (_active_grant_row)
)
# PostgreSQL: the same, locked, so a revoke committing meanwhile cannot end the grant
# between this read and its renewal (the renewal would revive a revoked grant).
_ACTIVE_GRANT_LOCKED = Statement(_ACTIVE_GRANT_SQL.text + " FOR UPDATE")
# PostgreSQL, under the recipient's lock, in one round trip: what the decision depends on,
# as it is now. The cap's count and the active grant (locked): (distinct records, grants
# on this one, the grant's 5 columns or NULLs); then the recipient's and the requester's
# active flag and role, and the context activity (_CONTEXT_SQL's columns after its id).
# A batch may have looked people and activities up at its start (facts.prefetch): another
# session may have deactivated the recipient, changed the requester's role or completed
# the activity meanwhile, and the decision must see that.
_CAP_AND_GRANT_PG = Statement(
    f"SELECT c.n, c.here, g.*, r.active, r.role, q.active, q.role, "
    f"a.id, a.lead_id, a.owner_id, a.status, a.deleted_at, au.username FROM ({_CAP_SQL.text}) AS c (n, here) "
    f"LEFT JOIN ({_ACTIVE_GRANT_LOCKED.text}) AS g ON true "
    "LEFT JOIN users r ON r.id = ? LEFT JOIN users q ON q.id = ? "
    "LEFT JOIN activities a ON a.id = ? LEFT JOIN users au ON au.id = a.owner_id",
    reads=("grants", "users", "activities"),
    checked=("grants",),  # run outside a batch only (a batch runs _CAP_GRANT_LEVEL_PG)
)
# The same, in a batch, with what the default rule set reads for the requester on the record
# (db/sql.py's level_sql), for the check that the requester may read it (FRESH_LEVEL): one
# round trip fewer, and read as late, under the lock; and the record's owner as it is now
# (a batch looked owners up at its start: another session may have reassigned the record).
_CAP_GRANT_LEVEL_PG = {
    entity: Statement(
        f"SELECT d.*, lv.*, rec.owner_id FROM ({_CAP_AND_GRANT_PG.text}) AS d "
        f"LEFT JOIN LATERAL ({level_sql(entity.table)}) AS lv ON true "
        f"LEFT JOIN {entity.table} rec ON rec.id = ?",
        reads=("grants", "users", "activities", "group_members", entity.table),
        # The recipient's and the requester's held grants on the record are written first;
        # the recipient's on other records are counted apart (process_share).
        checked=("grants",),
    )
    for entity in EntityType
}
# In a batch of deferred writes (db/batching.py) the request is kept and written once,
# completed or failed; the grant is counted by (record, user) and by recipient, so a
# read of other records' and recipients' grants need not wait for it.
_INSERT_REQUEST = Insert(
    "share_requests",
    (
        "entity_type",
        "entity_id",
        "recipient_name",
        "recipient_id",
        "requester_id",
        "context_activity_id",
        "all_contexts",
        "access",
        "duration",
        "until_completed",
        "source",
        "automation_run_id",
        "batch_id",
        "created_at",
    ),
    fixed={
        "action": "share",
        "status": "processing",
        "outcome": None,
        "reason": None,
        "grant_id": None,
        "finished_at": None,
    },
)
_INSERT_GRANT = Insert(
    "grants",
    (
        "entity_type",
        "entity_id",
        "user_id",
        "context_activity_id",
        "context_key",
        "access",
        "starts_at",
        "expires_at",
        "source",
        "request_id",
        "until_completed",
        "created_at",
        "updated_at",
    ),
    fixed={"state": "active"},
    keys={"holder": ("entity_type", "entity_id", "user_id"), "recipient": ("user_id", "entity_type")},
)
_RENEW_GRANT = Statement(
    "UPDATE grants SET access = ?, expires_at = ?, until_completed = ?, request_id = ?, warned_at = NULL, "
    "updated_at = ? WHERE id = ?"
)
_COMPLETE_REQUEST = Update(
    "share_requests", ("outcome", "grant_id", "finished_at"), constants={"status": "completed"}
)
# PostgreSQL: a grant that another transaction made meanwhile (the unique index on active
# grants) returns no id instead of aborting the transaction, so no savepoint is needed
# around the insert; and the request's completion and its two history rows go in one
# statement. One round trip each instead of three, and two instead of one.
_INSERT_GRANT_PG = Statement(_INSERT_GRANT.text + " ON CONFLICT DO NOTHING RETURNING id")
_COMPLETE_WITH_HISTORY_PG = Statement(
    "WITH done AS (UPDATE share_requests SET outcome = ?, grant_id = ?, finished_at = ?, "
    "status = 'completed' WHERE id = ?) " + _INSERT_TWO_HISTORY.rows_sql(2)
)
_UNKNOWN = object()


class _UnderLock(NamedTuple):
    """A ``_CAP_AND_GRANT_PG`` row: what the share decision reads under the recipient's lock."""

    # Records of the kind the recipient holds live grants on: in a batch, without those
    # the batch holds on other records, exact only where it decides the cap (process_share).
    distinct: int
    this_one: int  # of them, grants on this record
    grant: tuple[Any, ...] | None  # the grant to renew: (id, expires_at, starts_at, source, access)
    context: tuple[Any, ...] | None  # as _CONTEXT_SQL reads it; None: no such activity

    @classmethod
    def read(cls, row: tuple[Any, ...]) -> _UnderLock:
        return cls(
            row[0] or 0,
            row[1] or 0,
            None if row[2] is None else tuple(row[2:7]),
            None if row[11] is None else tuple(row[12:17]),
        )


def _held_may_reach_cap(batch: Any, user_id: int, kind: str, distinct: int, this_one: int, cap: int) -> bool:
    """Whether the user's grants a batch holds (not written yet) may decide the cap that a
    count read without them (``distinct`` records, ``this_one`` on the record) left open:
    each adds at most one record, so while the count plus them stays under the cap they
    cannot; else the caller writes them and counts again."""
    if this_one:
        return False  # a grant on the record already: the cap does not apply
    held = batch.pending("grants", "recipient", (user_id, kind))
    return bool(held) and distinct + held >= cap


def _as_now(row: tuple[Any, ...], recipient: Any, requester: User | None) -> tuple[Any, User | None]:
    """The recipient and the requester with the active flag and role ``_CAP_AND_GRANT_PG``
    read under the lock, where they differ from what was looked up before."""
    active, role = row[7], row[8]
    if active is not None and (bool(active), role) != (bool(recipient.active), recipient.role):
        recipient = Person(recipient.id, recipient.username, role, bool(active))
    if requester is not None and row[9] is not None:
        active, role = bool(row[9]), row[10]
        if (active, role) != (bool(requester.active), requester.role):
            requester = User(**{**requester.__data__, "active": active, "role": role})
    return recipient, requester


# Kept under their old names: history.py and tests import them from here.
_Person = Person
_find_person = find_person
_naive = naive


class Sharing:
    """The share part of :class:`~sharetui.core.sharing.SharingService` (a mixin: it
    writes through the service's ``RequestHistory`` and ends stale grants with ``_end``)."""

    core: Core

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
        if self.core.team.routed:
            request_id = team_writes.open_request("share", values)
        else:
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
        routed = self.core.team.routed
        batch = batch_of(database.obj)
        counted: _UnderLock | None = None
        fresh_key: tuple[Any, ...] | None = None
        if recipient is not None and not is_sqlite():
            # One at a time, so the cap holds (db/locks.py).
            hold_recipient(self.core.db, recipient.id, team=self.core.team.locks_recipient_rows)
            if not routed:  # then what the cap counts and the grant to renew, in one statement
                kind, context_key = ref.entity.value, parsed.context or 0
                requester_id = requester.id if requester is not None else None
                cap = (ref.id, recipient.id, kind, now)
                grant = (kind, ref.id, recipient.id, context_key)
                params: tuple[Any, ...] = (*cap, *grant, recipient.id, requester_id, parsed.context)
                if batch is None:
                    row = _CAP_AND_GRANT_PG.one(params)
                else:  # the recipient's and requester's grants on the record this batch holds are read
                    batch.settle("grants", "holder", (kind, ref.id, recipient.id))
                    if requester_id is not None:
                        batch.settle("grants", "holder", (kind, ref.id, requester_id))
                    level = (kind, now, ref.id, requester_id)
                    statement = _CAP_GRANT_LEVEL_PG[ref.entity]
                    row = statement.one((*params, *level, ref.id))
                    assert row is not None
                    cap_at = self.core.settings.share_cap(kind)
                    if _held_may_reach_cap(batch, recipient.id, kind, row[0] or 0, row[1] or 0, cap_at):
                        batch.flush()
                        row = statement.one((*params, *level, ref.id))
                        assert row is not None
                    # What the share checks of the record's owner (record_owner), as it is now.
                    batch.memo[("owner", ref.entity, ref.id)] = row[23]
                    if requester_id is not None:
                        # For the rule set's question whether the requester may read the record.
                        fresh_key = (FRESH_LEVEL, requester_id, kind, ref.id, now)
                        batch.memo[fresh_key] = None if row[17] is None else tuple(row[17:23])
                assert row is not None
                counted = _UnderLock.read(row)
                recipient, requester = _as_now(row, recipient, requester)
        reason = self._share_refusal(ref, parsed, recipient, requester, now_aware, counted)
        if fresh_key is not None:  # not asked (a refusal before the question, a plugin's rule set)
            batch.memo.pop(fresh_key, None)  # type: ignore[union-attr]
        if reason is not None:
            unfit = recipient is None or not recipient.active or recipient.role != Role.SALES.value
            # Nor does the history row name whom an id stood for, to someone who may not list users.
            named = None if unfit and not self._may_list_users(requester) else recipient
            return self._fail(request, reason, requester, named)
        assert recipient is not None
        expires = to_db(parsed.duration.end_from(now_aware))
        previous_access: str | None = None
        if counted is not None:
            existing = counted.grant
        else:
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
                if routed:  # team mode: the database checks and writes it (in a savepoint, as below)
                    with self.core.db.atomic():
                        grant_id = team_writes.put_grant(request.id, expires)
                elif is_sqlite() or batch is not None:
                    # SQLite: a failed statement leaves the transaction usable. A batch holds
                    # the row; on PostgreSQL, under the recipient's lock no other grant of this
                    # record and user can appear meanwhile: should one, writing the batch
                    # fails and it is decided again a statement at a time.
                    grant_id = _INSERT_GRANT.insert(params)
                    grant_row = (grant_id, recipient.id, parsed.context or 0, expires, now, request.source)
                    facts.granted(batch, ref, (*grant_row, int(parsed.access)), now_aware)
                else:  # a conflict returns no row rather than aborting the transaction
                    row = _INSERT_GRANT_PG.one([*params, *_INSERT_GRANT.fixed])
                    if row is None:
                        raise IntegrityError("an active grant of this record and user already exists")
                    grant_id = row[0]
                outcome, starts, source = "granted", now, request.source
            except IntegrityError:
                existing = self._active_grant_row(ref, recipient.id, parsed.context)
                if existing is None:
                    raise
        if existing is not None:
            if routed:
                team_writes.put_grant(request.id, expires)
            else:
                _RENEW_GRANT.run(
                    [int(parsed.access), expires, parsed.until_completed, request.id, now, existing[0]]
                )
            grant_id, starts, source = existing[0], _naive(existing[2]), existing[3]
            outcome = "renewed"
            previous_access = Access(existing[4]).label
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
        event = "share" if outcome == "granted" else "renew"
        done = {"grant": grant, "requester": requester, "reason": None, "at": now}
        rows = self._history_row(event, "completed", request, **done) + self._history_row(
            outcome, "completed", request, **done
        )
        if routed:
            team_writes.finish_request(request.id, "completed", outcome=outcome, grant_id=grant.id)
            team_writes.history(rows)
        elif is_sqlite() or batch is not None:  # a held request is completed in place
            _COMPLETE_REQUEST.run([outcome, grant.id, now, request.id])
            _INSERT_TWO_HISTORY.run(rows)
        else:
            _COMPLETE_WITH_HISTORY_PG.run([outcome, grant.id, now, request.id, *rows])
        payload = self._grant_payload(grant)
        payload["request_id"] = request.id
        self.core.outbox.emit(f"share.{outcome}", ref.entity.value, ref.id, payload, at=now)
        as_dict = grant.as_dict()
        self._lifecycle(outcome, ref, as_dict["user"], request.source, request.id, None, as_dict)
        return RequestResult(
            request.id, "share", "completed", None, outcome, as_dict, previous_access=previous_access
        )

    def _share_refusal(
        self,
        ref: RecordRef,
        parsed: ShareInput,
        recipient: User | None,
        requester: User | None,
        now: datetime,
        counted: _UnderLock | None = None,
    ) -> str | None:
        """Why this share must fail (DESIGN .3), or None. ``counted``: the cap's count and
        the context activity, read already under the recipient's lock (PostgreSQL)."""
        if requester is not None and not requester.active:
            return f"requester {requester.username} is deactivated"
        owner_id = record_owner(ref)
        if owner_id is None or (
            requester is not None and not self.core.gate.can_read(requester, ref, found=True)
        ):
            return f"no {ref.entity.value} {ref.id} you may read"  # the same for both (DESIGN §9)
        refusal = self._requester_refusal(requester, owner_id, ref, "share")
        if refusal:
            return refusal
        if recipient is None or not recipient.active or recipient.role != Role.SALES.value:
            if not self._may_list_users(requester):
                # The same words for unknown, deactivated and not-sales: someone who may not
                # list users (DESIGN §9) must not learn roles and active flags by sharing
                # with ids 1, 2, 3... ("user admin is admin").
                return f"{parsed.recipient!r} is not a user who may receive shares (an active sales user)"
            if recipient is None:
                return f"unknown user {parsed.recipient!r}"
            if not recipient.active:
                return f"user {recipient.username} is deactivated"
            return f"user {recipient.username} is {recipient.role}: only sales users receive shares"
        if owner_id == recipient.id:
            return f"{recipient.username} owns {ref.entity.value} {ref.id}"
        if parsed.context is not None:
            if counted is not None:  # read under the recipient's lock (PostgreSQL)
                act = counted.context
            else:
                memo = memo_of(database.obj)
                act = memo.get(("context", parsed.context)) if memo is not None else None
                if act is None:
                    act = _CONTEXT_SQL.one((parsed.context,))
            # An activity that is not this lead's is not described (it may be on a lead the
            # requester may not read): missing and elsewhere answer alike.
            if act is None or act[3] is not None or act[0] != ref.id:
                return f"activity {parsed.context} is not an activity of lead {ref.id}"
            _lead, act_owner, act_status, _deleted, act_owner_name = act
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
        noun = "leads" if ref.entity is EntityType.LEAD else "opportunities"
        if self.core.team.routed:  # team mode: the recipient's other grants are not mine to count
            if team_writes.over_cap(ref.entity.value, ref.id, recipient.id):
                held = f"{cap} or more {noun}"
                return f"{recipient.username} already holds active shares on {held} (the cap is {cap})"
            return None
        if counted is not None:
            distinct, this_one = counted.distinct, counted.this_one
        else:
            distinct, this_one = self._cap_count(ref, recipient.id, now, cap)
        if not this_one and distinct >= cap:
            return f"{recipient.username} already holds active shares on {distinct} {noun} (the cap is {cap})"
        return None

    @staticmethod
    def _cap_count(ref: RecordRef, user_id: int, now: datetime, cap: int) -> tuple[int, int]:
        """(On how many distinct records of ``ref``'s kind ``user_id`` holds live grants,
        how many of them are on ``ref``), exact where it decides the cap.

        In a batch of deferred writes, the user's grants held for this record are written
        first; those held on other records are not. Each may add one record to the
        count, so while the stored count plus them stays under the cap the share passes
        whatever they add; otherwise they are written and the count read again."""
        batch = batch_of(database.obj)
        known = facts.known_cap(batch, user_id, ref, now)
        if known is not None:
            return known
        params = (ref.id, user_id, ref.entity.value, to_db(now))
        if batch is not None:
            batch.settle("grants", "holder", (ref.entity.value, ref.id, user_id))
        distinct, this_one = _CAP_SQL.one(params) or (0, 0)
        distinct, this_one = distinct or 0, this_one or 0
        if batch is not None and _held_may_reach_cap(
            batch, user_id, ref.entity.value, distinct, this_one, cap
        ):
            batch.flush()
            distinct, this_one = _CAP_SQL.one(params) or (0, 0)
            distinct, this_one = distinct or 0, this_one or 0
        return distinct, this_one

    def _may_list_users(self, requester: User | None) -> bool:
        from sharetui.core.access.gate import Capability

        return requester is None or self.core.gate.allows(requester, Capability.READ_USERS)

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

    def lock_recipients(self, scope: ManyRecipients, people: list[int | None]) -> None:
        """At the start of a batch deciding shares item by item (``many_recipients``): take
        the share locks of the people its items will likely share with, in item order
        (None: nobody known), all at once (db/locks.py ``hold_recipients``). Nothing on
        SQLite, nor for a people's login in team mode (the database's functions lock)."""
        if not is_sqlite() and not self.core.team.routed:
            hold_recipients(self.core.db, scope, people, team=self.core.team.locks_recipient_rows)

    def may_share(self, user: User | None, ref: RecordRef) -> bool:
        """May ``user`` share (and revoke) ``ref`` now? The question every face asks
        before offering to share; the share itself asks it again."""
        if user is None:
            return False
        owner_id = record_owner(ref)
        return (
            owner_id is not None
            and self.core.gate.can_read(user, ref)
            and self._requester_refusal(user, owner_id, ref, "share") is None
        )

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

    def _active_grant_row(self, ref: RecordRef, user_id: int, context: int | None) -> tuple[Any, ...] | None:
        """(id, expires_at, starts_at, source, access) of the active grant of (record, user, context)."""
        # Locked on PostgreSQL; a team login may not lock grants (no UPDATE on them), and
        # the database's sharetui_put_grant renews in one statement instead.
        sql = _ACTIVE_GRANT_SQL if is_sqlite() or self.core.team.routed else _ACTIVE_GRANT_LOCKED
        batch = batch_of(database.obj)
        known = facts.record_grants(batch, ref)
        if known is not None:  # a batch read them with the others' (facts.prefetch)
            key = context or 0
            for grant_id, holder, context_key, expires, starts, source, access in known:
                if holder == user_id and context_key == key:
                    return grant_id, expires, starts, source, access
            return None
        if batch is not None:  # the user's grant held for this record is written before it is looked for
            batch.settle("grants", "holder", (ref.entity.value, ref.id, user_id))
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

"""The built-in access rules (DESIGN .1, .3) as the default ``sharetui_access_level``.

Roles, ownership, sales groups (never across groups) and every active,
unexpired grant of any context; a deactivated user has nothing. One
precompiled statement answers all of it in a single round trip.

In a batch of deferred writes on SQLite (``db/batching.py``: the batch API's chunk, the
worker's batch of events) the first question about one of the batch's records reads the
answer for the user and all of the batch's records of that kind in one statement, kept
in the batch's memo: the grants with their expiry (compared with ``now`` when asked), the
record's owner and the groups shared with the owner, the user's role and active flag.
The memo goes whenever another statement may have changed a row and when the batch
grants the user one of these records (``core/sharing/facts.py``). The batch holds
SQLite's write lock: no other connection changes a row meanwhile. On PostgreSQL other
sessions do, and each question is read when asked: by the share path, for its
requester, in the statement it runs under the recipient's lock (``FRESH_LEVEL``).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sharetui.db.batching import Batch, batch_of
from sharetui.db.connection import database
from sharetui.db.sql import FRESH_LEVEL, Statement, level_sql
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import ROLE_ACCESS, Access, EntityType, GroupLevel, Role
from sharetui.domain.time import to_db
from sharetui.sdk.markers import hookimpl
from sharetui.sdk.types import AccessDecision, UserInfo


def _level_sql(table: str) -> Statement:
    return Statement(
        level_sql(table),
        reads=("users", table, "group_members", "grants"),
        # The user's grants on the record held by a batch of deferred writes are written
        # before a rule set is asked (AccessService.decide).
        checked=("grants",),
    )


_LEVEL_SQL = {e: _level_sql(e.table) for e in EntityType}
_NOTHING: dict[str, Access] = {}
# SQLite's limit on bound values is far above this; a batch names a few hundred records.
_MOST_AT_ONCE = 500


@lru_cache(maxsize=64)
def _levels_sql(table: str, count: int) -> Statement:
    # _level_sql's facts for one user and ``count`` records, a row per active grant (none:
    # one row with NULLs); no row at all: no such user; r.id NULL: none of the records.
    marks = ", ".join("?" * count)
    return Statement(
        f"""
        SELECT u.role, u.active, u.username, r.id, r.owner_id,
          (SELECT MAX(gm1.level) FROM group_members gm1
             JOIN group_members gm2 ON gm2.group_id = gm1.group_id
            WHERE gm1.user_id = u.id AND gm2.user_id = r.owner_id),
          g.access, g.expires_at
        FROM users u LEFT JOIN {table} r ON r.id IN ({marks})
          LEFT JOIN grants g ON g.user_id = u.id AND g.entity_type = ? AND g.entity_id = r.id
            AND g.state = 'active'
        WHERE u.id = ?
        """,
        reads=("users", table, "group_members", "grants"),
        checked=("grants",),  # the user's grants of this kind held by the batch are written first
    )


def _naive(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


_MISSING = object()


def _from_batch(batch: Batch, user_id: int, record: RecordRef, at: datetime) -> Any:
    """_LEVEL_SQL's row at ``at`` from the batch's memo, which is read at the first miss
    for all the batch's records of this kind not asked about yet (the user's grants kept
    with their expiry). ``_MISSING``: not one of the batch's records (asked once already,
    or never named); None: no such user."""
    entity = record.entity.value
    key = ("access", user_id, entity)
    known = batch.memo.get(key)
    if known is None or record.id not in known[1]:
        waiting = batch.records.get(entity)
        if not waiting or record.id not in waiting:
            return _MISSING
        # The user's grants of this kind that the batch holds are written before they are read.
        batch.settle("grants", "recipient", (user_id, entity))
        ids = sorted(waiting)
        user: tuple[Any, ...] | None = None
        records: dict[int, Any] = {i: (None, None, []) for i in ids}
        for start in range(0, len(ids), _MOST_AT_ONCE):
            part = ids[start : start + _MOST_AT_ONCE]
            rows = _levels_sql(record.entity.table, len(part)).all([*part, entity, user_id])
            for role, active, username, rid, owner_id, group_level, access, expires in rows:
                user = (role, active, username)
                if rid is None:
                    continue
                grants = records[rid][2]
                if access is not None:
                    grants.append((access, _naive(expires)))
                records[rid] = (owner_id, group_level, grants)
        known = batch.memo[key] = (user, records)
    user, records = known
    batch.records[entity].discard(record.id)  # asked: a refill after the memo goes skips it
    if user is None:
        return None
    owner_id, group_level, grants = records[record.id]
    live = [access for access, expires in grants if expires > at]
    return (*user, owner_id, group_level, max(live, default=None))


@hookimpl(trylast=True)
def sharetui_access_level(user_id: int, record: RecordRef, now: datetime) -> AccessDecision:
    at = to_db(now)
    batch = batch_of(database.obj)
    row: Any = _MISSING
    if batch is not None:
        # Read a moment ago, under the recipient's lock, by the share path (PostgreSQL).
        row = batch.memo.pop((FRESH_LEVEL, user_id, record.entity.value, record.id, at), _MISSING)
        # SQLite: the batch holds the write lock, so no other connection changes a row
        # meanwhile. On PostgreSQL other sessions do: the memo would miss their commits.
        if row is _MISSING and batch.sqlite:
            row = _from_batch(batch, user_id, record, at)
    if row is _MISSING:
        row = _LEVEL_SQL[record.entity].one((record.entity.value, at, record.id, user_id))
    if row is None:
        return AccessDecision(Access.NONE, _NOTHING, now, None)
    role, active, username, owner_id, group_level, grant_access = row
    user = UserInfo(user_id, username, role, bool(active))
    if not active or owner_id is None:
        return AccessDecision(Access.NONE, _NOTHING, now, user)
    sources: dict[str, Access] = {}
    role_level = ROLE_ACCESS.get(Role(role), Access.NONE)
    if role_level:
        sources["role"] = role_level
    if owner_id == user_id:
        sources["owner"] = Access.EDIT
    if group_level is not None:
        group = GroupLevel(group_level).grants
        if group:
            sources["group"] = group
    if grant_access:
        sources["share"] = Access(grant_access)
    return AccessDecision(max(sources.values(), default=Access.NONE), sources, now, user)

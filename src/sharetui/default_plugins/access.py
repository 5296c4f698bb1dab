"""The built-in access rules (DESIGN .1, .3) as the default ``sharetui_access_level``.

Roles, ownership, sales groups (never across groups) and every active,
unexpired grant of any context; a deactivated user has nothing. One
precompiled statement answers all of it in a single round trip.
"""

from __future__ import annotations

from datetime import datetime

from sharetui.db.sql import Statement
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import ROLE_ACCESS, Access, EntityType, GroupLevel, Role
from sharetui.domain.time import to_db
from sharetui.sdk.markers import hookimpl
from sharetui.sdk.types import AccessDecision, UserInfo


def _level_sql(table: str) -> Statement:
    # role, active, username, record owner (NULL: no record), the best group
    # level shared with the owner, the best active unexpired grant.
    return Statement(
        f"""
        SELECT u.role, u.active, u.username, r.owner_id,
          (SELECT MAX(gm1.level) FROM group_members gm1
             JOIN group_members gm2 ON gm2.group_id = gm1.group_id
            WHERE gm1.user_id = u.id AND gm2.user_id = r.owner_id),
          (SELECT MAX(g.access) FROM grants g
            WHERE g.user_id = u.id AND g.entity_type = ? AND g.entity_id = r.id
              AND g.state = 'active' AND g.expires_at > ?)
        FROM users u LEFT JOIN {table} r ON r.id = ?
        WHERE u.id = ?
        """,
        reads=("users", table, "group_members", "grants"),
        # The user's grants on the record held by a batch of deferred writes are written
        # before a rule set is asked (AccessService.decide).
        checked=("grants",),
    )


_LEVEL_SQL = {e: _level_sql(e.table) for e in EntityType}
_NOTHING: dict[str, Access] = {}


@hookimpl(trylast=True)
def sharetui_access_level(user_id: int, record: RecordRef, now: datetime) -> AccessDecision:
    row = _LEVEL_SQL[record.entity].one((record.entity.value, to_db(now), record.id, user_id))
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

"""Invariants of sharing, checked with a handful of set-based queries.

Used after :mod:`sharetui.ops.generator` fills a database, and useful on any
other: each check is one SQL statement over the whole table, so a database
with a million leads and a quarter of a million grants is checked in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sharetui.db.sql import Statement
from sharetui.domain.roles import Role

if TYPE_CHECKING:
    from sharetui.core.service import Core

# (what is wrong, SQL returning COUNT(*) and the first offending id)
_CHECKS: tuple[tuple[str, str], ...] = (
    (
        "grant(s) name a user that does not exist",
        "SELECT COUNT(*), MIN(g.id) FROM grants g "
        "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = g.user_id)",
    ),
    (
        "lead grant(s) name a lead that does not exist",
        "SELECT COUNT(*), MIN(g.id) FROM grants g WHERE g.entity_type = 'lead' "
        "AND NOT EXISTS (SELECT 1 FROM leads r WHERE r.id = g.entity_id)",
    ),
    (
        "opportunity grant(s) name an opportunity that does not exist",
        "SELECT COUNT(*), MIN(g.id) FROM grants g WHERE g.entity_type = 'opportunity' "
        "AND NOT EXISTS (SELECT 1 FROM opportunities r WHERE r.id = g.entity_id)",
    ),
    (
        "grant(s) of an unknown record type",
        "SELECT COUNT(*), MIN(id) FROM grants WHERE entity_type NOT IN ('lead', 'opportunity')",
    ),
    (
        "grant(s) in an unknown state",
        "SELECT COUNT(*), MIN(id) FROM grants WHERE state NOT IN ('active', 'expired', 'revoked')",
    ),
    (
        "active grant(s) held by a user who is deactivated or not a sales user",
        "SELECT COUNT(*), MIN(g.id) FROM grants g JOIN users u ON u.id = g.user_id "
        f"WHERE g.state = 'active' AND (NOT u.active OR u.role <> '{Role.SALES.value}')",
    ),
    (
        "active lead grant(s) held by the lead's owner",
        "SELECT COUNT(*), MIN(g.id) FROM grants g JOIN leads r ON r.id = g.entity_id "
        "WHERE g.entity_type = 'lead' AND g.state = 'active' AND r.owner_id = g.user_id",
    ),
    (
        "active opportunity grant(s) held by the opportunity's owner",
        "SELECT COUNT(*), MIN(g.id) FROM grants g JOIN opportunities r ON r.id = g.entity_id "
        "WHERE g.entity_type = 'opportunity' AND g.state = 'active' AND r.owner_id = g.user_id",
    ),
    (
        "grant(s) whose context_key is not their context activity",
        "SELECT COUNT(*), MIN(id) FROM grants WHERE context_key <> COALESCE(context_activity_id, 0)",
    ),
    (
        "active grant(s) in the context of an activity that is gone, on another lead "
        "or owned by someone else",
        "SELECT COUNT(*), MIN(g.id) FROM grants g LEFT JOIN activities a ON a.id = g.context_activity_id "
        "WHERE g.state = 'active' AND g.context_activity_id IS NOT NULL AND (a.id IS NULL "
        "OR a.deleted_at IS NOT NULL OR a.lead_id IS NULL OR a.lead_id <> g.entity_id "
        "OR a.owner_id IS NULL OR a.owner_id <> g.user_id)",
    ),
    (
        "active until-completed grant(s) whose activity is completed",
        "SELECT COUNT(*), MIN(g.id) FROM grants g JOIN activities a ON a.id = g.context_activity_id "
        "WHERE g.state = 'active' AND g.until_completed AND a.status = 'completed'",
    ),
    (
        "grant(s) without the share request that made them",
        "SELECT COUNT(*), MIN(g.id) FROM grants g WHERE g.request_id IS NULL "
        "OR NOT EXISTS (SELECT 1 FROM share_requests s WHERE s.id = g.request_id)",
    ),
    (
        "grant(s) without a 'granted' history row",
        "SELECT COUNT(*), MIN(g.id) FROM grants g WHERE NOT EXISTS "
        "(SELECT 1 FROM history h WHERE h.grant_id = g.id AND h.event = 'granted')",
    ),
    (
        "sales group membership(s) of a user or group that does not exist",
        "SELECT COUNT(*), MIN(m.user_id) FROM group_members m "
        "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id) "
        "OR NOT EXISTS (SELECT 1 FROM sales_groups s WHERE s.id = m.group_id)",
    ),
)

_CAP = Statement(
    "SELECT user_id, COUNT(DISTINCT entity_id) FROM grants WHERE entity_type = ? AND state = 'active' "
    "AND expires_at > ? GROUP BY user_id HAVING COUNT(DISTINCT entity_id) > ? ORDER BY user_id"
)
_PAST_EXPIRY = Statement("SELECT COUNT(*), MIN(id) FROM grants WHERE state = 'active' AND expires_at <= ?")


def check_integrity(core: Core, *, swept: bool = False) -> list[str]:
    """Check the invariants of sharing. Returns the problems found (empty: all is well).

    Holds on any database, generated or not: every grant's user and record
    exist; every active grant's user is an active sales user who does not own
    the record; an active grant made in an activity's context names a live
    activity on that lead owned by its user (an open one if the grant ends on
    completion); no user holds active, unexpired shares on more distinct records
    than the cap (``share_cap_leads`` / ``share_cap_opportunities``); every
    grant has the request that made it and a ``granted`` history row; sales
    group members exist.

    Args:
        swept: the sweeper has just run at this clock (``core.expiry.sweep()``),
            so no active grant may be past its expiry either. Without it an
            active grant past expiry is fine: access checks ignore it.
    """
    problems: list[str] = []

    def report(what: str, row: Sequence[Any] | None) -> None:
        n, first = (int(row[0] or 0), row[1]) if row else (0, None)
        if n:
            problems.append(f"{n:,} {what} (first: {first})")

    for what, sql in _CHECKS:
        report(what, Statement(sql).one())
    now = core.db_now()
    for entity in ("lead", "opportunity"):
        cap = core.settings.share_cap(entity)
        over = _CAP.all([entity, now, cap])
        if over:
            user, held = max(over, key=itemgetter(1))
            problems.append(
                f"{len(over):,} user(s) hold active shares on more than {cap:,} {entity}s, the cap "
                f"(user {user} holds {held:,})"
            )
    if swept:
        report("active grant(s) past their expiry after the sweep", _PAST_EXPIRY.one([now]))
    return problems


__all__ = ["check_integrity"]

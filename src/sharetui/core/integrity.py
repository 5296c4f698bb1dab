"""Invariants of sharing, checked with a handful of set-based queries, and the
store's own checks (``sharetui doctor``).

Used after :mod:`sharetui.ops.generator` fills a database, and by ``sharetui
doctor`` on any other: each check is one SQL statement over the whole table, so
a database with a million leads and a quarter of a million grants is checked in
seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sharetui.db import DatabaseError, is_sqlite
from sharetui.db.migrations import latest_version
from sharetui.db.search import SEARCHED, index_table, sqlite_has_index
from sharetui.db.sql import Statement
from sharetui.domain.roles import Role
from sharetui.domain.time import iso

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
        "record/user/context key(s) with more than one active grant",
        "SELECT COUNT(*), MIN(first) FROM (SELECT MIN(id) AS first FROM grants WHERE state = 'active' "
        "GROUP BY entity_type, entity_id, user_id, context_key HAVING COUNT(*) > 1) d",
    ),
    (
        "ended grant(s) without the history row that says how they ended",
        "SELECT COUNT(*), MIN(g.id) FROM grants g WHERE g.state IN ('expired', 'revoked') AND NOT EXISTS "
        "(SELECT 1 FROM history h WHERE h.grant_id = g.id AND h.event = g.state)",
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
    exist; at most one grant is active per record, user and context; every
    active grant's user is an active sales user who does not own the record; an
    active grant made in an activity's context names a live activity on that
    lead owned by its user (an open one if the grant ends on completion); no
    user holds active, unexpired shares on more distinct records than the cap
    (``share_cap_leads`` / ``share_cap_opportunities``); every grant has the
    request that made it and a ``granted`` history row, and every ended grant
    the history row that ended it; sales group members exist.

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


@dataclass(frozen=True)
class StoreCheck:
    """One check ``sharetui doctor`` ran (or skipped, saying why)."""

    name: str
    status: str  # ok | problem | skipped
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def store_checks(core: Core) -> list[StoreCheck]:
    """The store's own checks. SQLite: ``PRAGMA integrity_check`` (every page, index and
    constraint), ``PRAGMA foreign_key_check`` and the search index against its rows.
    PostgreSQL checks its pages and enforces foreign keys as rows are written: those are
    reported as skipped, with why."""
    if not is_sqlite():
        return [
            StoreCheck(
                "integrity_check",
                "skipped",
                "PostgreSQL: no equivalent of SQLite's PRAGMA integrity_check; pages carry "
                "checksums if the cluster was made with them, and pg_amcheck verifies indexes",
            ),
            StoreCheck(
                "foreign_key_check",
                "skipped",
                "PostgreSQL enforces foreign keys as rows are written: none can dangle",
            ),
        ]
    checks = []
    found = [r[0] for r in core.db.execute_sql("PRAGMA integrity_check").fetchall()]
    checks.append(
        StoreCheck("integrity_check", "ok")
        if found == ["ok"]
        else StoreCheck("integrity_check", "problem", "; ".join(found[:5]) + (" …" if len(found) > 5 else ""))
    )
    dangling = core.db.execute_sql("PRAGMA foreign_key_check").fetchall()
    checks.append(
        StoreCheck("foreign_key_check", "ok")
        if not dangling
        else StoreCheck(
            "foreign_key_check",
            "problem",
            f"{len(dangling):,} row(s) name a parent that does not exist (first: {dangling[0][0]} "
            f"row {dangling[0][1]} -> {dangling[0][2]})",
        )
    )
    for table in SEARCHED:
        if not sqlite_has_index(core.db, table):
            checks.append(StoreCheck(f"search index of {table}", "skipped", "no FTS5 index: search scans"))
            continue
        index = index_table(table)
        try:
            core.db.execute_sql(f"INSERT INTO {index}({index}, rank) VALUES ('integrity-check', 1)")
        except DatabaseError as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            checks.append(StoreCheck(f"search index of {table}", "problem", f"{text} (run sharetui init)"))
        else:
            checks.append(StoreCheck(f"search index of {table}", "ok"))
    return checks


@dataclass(frozen=True)
class StuckEvents:
    """Outbox events waiting longer than they should."""

    count: int
    waiting: int
    first_id: int | None
    oldest_at: str | None
    older_than: timedelta

    def problem(self) -> str | None:
        if not self.count:
            return None
        minutes = int(self.older_than.total_seconds() // 60)
        return (
            f"{self.count:,} outbox event(s) unprocessed for more than {minutes} minute(s) "
            f"(first: event {self.first_id}, from {self.oldest_at}): no worker is running, or "
            "an event fails every time it is processed and holds up the ones behind it"
        )


_STUCK = Statement(
    "SELECT COUNT(*), MIN(id), MIN(created_at) FROM outbox WHERE processed_at IS NULL AND created_at < ?"
)
_WAITING = Statement("SELECT COUNT(*) FROM outbox WHERE processed_at IS NULL")


def stuck_events(core: Core, older_than: timedelta) -> StuckEvents:
    """Events unprocessed for longer than ``older_than`` by the clock in force.

    "Stuck" is by age alone: an event's ``attempts`` count only grows when it is
    processed (a failed attempt rolls back with everything it did), so a waiting
    event always shows 0. Embedded mode processes events after every command and a
    worker within a second, so an old waiting event means nobody processes the queue
    or one event fails every time (events are processed in order: it blocks the rest).
    """
    count, first, oldest = _STUCK.one([core.db_now() - older_than]) or (0, None, None)
    waiting = (_WAITING.one() or (0,))[0]
    return StuckEvents(int(count or 0), int(waiting or 0), first, iso(oldest) if oldest else None, older_than)


def database_login(core: Core) -> str | None:
    """The PostgreSQL login this session runs as (``session_user``); None on SQLite."""
    if is_sqlite():
        return None
    row = core.db.execute_sql("SELECT session_user").fetchone()
    return str(row[0]) if row else None


def schema_status(core: Core) -> tuple[int, int]:
    """(the schema version of this database, the newest this code knows)."""
    return core.schema_version(), latest_version()


__all__ = [
    "StoreCheck",
    "StuckEvents",
    "check_integrity",
    "database_login",
    "schema_status",
    "store_checks",
    "stuck_events",
]

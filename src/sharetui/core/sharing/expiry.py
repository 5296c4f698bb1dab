"""The sweeper: moves due grants to ``expired`` and sends ``expiring soon`` notices.

Access never waits for it (expiry is checked at read time); it keeps state,
history and the outbox truthful. Work is set-based, in batches: one
``INSERT … SELECT`` into history, one into the outbox and one ``UPDATE`` per
batch, never a statement per grant, written in grant id order so history reads the
same on every backend and every run. On PostgreSQL each batch locks its rows
with ``FOR UPDATE SKIP LOCKED`` so concurrent sweepers never record a grant twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.db.connection import is_sqlite
from sharetui.db.sql import Statement
from sharetui.domain.durations import parse_duration
from sharetui.domain.time import to_db

if TYPE_CHECKING:
    from sharetui.core.service import Core

_HISTORY_COLUMNS = (
    "at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id, user_name, "
    "access, context_activity_id, duration, starts_at, expires_at, source, requester_id, "
    "requester_name, automation_run_id"
)


def _history_select(at_sql: str, event: str, reason: str) -> str:
    return (
        f"SELECT {at_sql}, '{event}', 'completed', '{reason}', g.request_id, g.id, g.entity_type, "
        "g.entity_id, g.user_id, u.username, g.access, g.context_activity_id, NULL, g.starts_at, "
        "g.expires_at, g.source, NULL, '', NULL FROM grants g JOIN users u ON u.id = g.user_id"
    )


def _payload_sql() -> str:
    """The same payload as ``SharingService._grant_payload``, built in SQL (times as ISO-8601 Z)."""
    if is_sqlite():
        fn, cast, expires = "json_object", "", "strftime('%Y-%m-%dT%H:%M:%SZ', g.expires_at)"
    else:
        fn, cast = "json_build_object", "::text"
        expires = 'to_char(g.expires_at, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\')'
    return (
        f"{fn}('grant_id', g.id, 'user_id', g.user_id, 'access', "
        "CASE g.access WHEN 2 THEN 'edit' ELSE 'read' END, 'context', g.context_activity_id, "
        f"'expires_at', {expires}, 'source', g.source){cast}"
    )


_SWEEP_TABLE = Statement("CREATE TEMP TABLE IF NOT EXISTS sweep_batch (id INTEGER PRIMARY KEY)")
_SWEEP_CLEAR = Statement("DELETE FROM temp.sweep_batch")


@dataclass
class SweepResult:
    expired: int
    warned: int

    def as_dict(self) -> dict[str, Any]:
        return {"expired": self.expired, "expiring_soon": self.warned}


class ExpiryService:
    batch_size = 10_000

    def __init__(self, core: Core) -> None:
        self.core = core

    def sweep(self, *, now: datetime | None = None, batch_size: int | None = None) -> SweepResult:
        """Expire every due grant and send the notices that are due. Returns counts."""
        at = to_db(now or self.core.now())
        size = batch_size or self.batch_size
        expired = 0
        while True:
            n = self._expire_batch(at, size)
            expired += n
            if n < size:
                break
        window = parse_duration(self.core.settings.get("expiring_soon_window")).delta
        warned = 0
        horizon = at + window
        while True:
            n = self._warn_batch(at, horizon, size)
            warned += n
            if n < size:
                break
        return SweepResult(expired, warned)

    def _select_batch(self, where: str, params: list[Any], size: int) -> tuple[str, list[Any]] | None:
        """Pick one batch; return a WHERE clause (and params) naming exactly its grants."""
        if is_sqlite():
            # The batch's ids go into a temporary table, read once through the (state,
            # expires_at) index in its order: the statements that follow visit those rows
            # only. (An id bound made each of them walk every due grant again, batch after
            # batch: 100,000 due grants cost five times a raw sweep.)
            _SWEEP_TABLE.run()
            _SWEEP_CLEAR.run()
            picked = Statement(
                f"INSERT INTO temp.sweep_batch (id) SELECT g.id FROM grants g WHERE {where} "
                "ORDER BY g.expires_at, g.id LIMIT ?"
            ).run([*params, size])
            if not picked:
                return None
            return "g.id IN (SELECT id FROM temp.sweep_batch)", []
        # In expiry order too: in id order the planner walked the primary key hoping to meet
        # due grants soon, and with none due read every grant (40 ms a worker pass on the
        # million-lead company); the (state, expires_at) index stops at the first one not due.
        ids = [
            r[0]
            for r in Statement(
                f"SELECT id FROM grants g WHERE {where} ORDER BY g.expires_at, g.id LIMIT ? "
                "FOR UPDATE SKIP LOCKED"
            ).all([*params, size])
        ]
        if not ids:
            return None
        return "g.id = ANY(?)", [ids]

    def _notify(self, kind: str, where: str, params: list[Any], reason: str) -> None:
        """Queue plugin lifecycle events for one batch (only when a plugin listens)."""
        host = self.core.plugins
        if not host.listens_to(kind):
            return
        from sharetui.core.access import grant_dict
        from sharetui.db.models import Grant
        from sharetui.domain.records import RecordRef
        from sharetui.domain.roles import EntityType
        from sharetui.sdk.types import ShareEvent

        ids = [r[0] for r in Statement(f"SELECT g.id FROM grants g WHERE {where}").all(params)]
        now = self.core.now()
        for start in range(0, len(ids), 500):
            for grant in Grant.select().where(Grant.id.in_(ids[start : start + 500])):
                as_dict = grant_dict(grant, now)
                if kind == "expired":
                    as_dict["state"] = "expired"
                ref = RecordRef(EntityType(grant.entity_type), grant.entity_id)
                self.core.dispatch.after_commit(
                    ShareEvent(
                        kind, ref, as_dict["user"], now, grant.source, grant.request_id, reason, as_dict
                    )
                )

    def _expire_batch(self, at: datetime, size: int) -> int:
        with self.core.db.atomic():
            picked = self._select_batch("g.state = 'active' AND g.expires_at <= ?", [at], size)
            if picked is None:
                return 0
            where, params = picked
            self._notify("expired", where, params, "expired")
            Statement(
                f"INSERT INTO history ({_HISTORY_COLUMNS}) "
                f"{_history_select('g.expires_at', 'expired', 'expired')} WHERE {where} ORDER BY g.id"
            ).run(params)
            Statement(
                "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
                f"SELECT 'share.expired', g.entity_type, g.entity_id, {_payload_sql()}, ?, 0 "
                f"FROM grants g WHERE {where} ORDER BY g.id"
            ).run([at, *params])
            return Statement(
                "UPDATE grants SET state = 'expired', ended_at = expires_at, ended_reason = 'expired', "
                f"updated_at = ? WHERE id IN (SELECT g.id FROM grants g WHERE {where})"
            ).run([at, *params])

    def _warn_batch(self, at: datetime, horizon: datetime, size: int) -> int:
        with self.core.db.atomic():
            picked = self._select_batch(
                "g.state = 'active' AND g.warned_at IS NULL AND g.expires_at > ? AND g.expires_at <= ?",
                [at, horizon],
                size,
            )
            if picked is None:
                return 0
            where, params = picked
            self._notify("expiring_soon", where, params, "expires soon")
            Statement(
                f"INSERT INTO history ({_HISTORY_COLUMNS}) "
                f"{_history_select('?', 'expiring_soon', 'expires soon')} WHERE {where} ORDER BY g.id"
            ).run([at, *params])
            Statement(
                "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
                f"SELECT 'share.expiring_soon', g.entity_type, g.entity_id, {_payload_sql()}, ?, 0 "
                f"FROM grants g WHERE {where} ORDER BY g.id"
            ).run([at, *params])
            return Statement(
                f"UPDATE grants SET warned_at = ? WHERE id IN (SELECT g.id FROM grants g WHERE {where})"
            ).run([at, *params])

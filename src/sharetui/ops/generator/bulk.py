"""The bulk-load tools the generator writes with: prepared ``INSERT`` batches (``COPY``
on PostgreSQL), id blocks reserved up front, secondary indexes (and SQLite's search
index) set aside for a load that at least doubles a table and rebuilt before the
commit, and the per-stage timings of the :class:`GenerateReport`.

:data:`BULK_INDEX_ROWS` is read here at call time (and by ``sharetui.ops.imports``):
tests patch ``sharetui.ops.generator.bulk.BULK_INDEX_ROWS`` to take the bulk path
with a small company.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sharetui.db.search import SEARCHED, rebuild_sqlite_index, suspend_sqlite_triggers
from sharetui.db.sql import Statement

Progress = Callable[[str, int, int], None]

BATCH = 50_000
# Below this many new rows, inserting through live indexes beats rebuilding them.
BULK_INDEX_ROWS = 50_000
DAY = 86_400
_EPOCH = datetime(1970, 1, 1)
_SQLITE_CACHE_KIB = 131_072  # during the load (default 32 MB): more of the B-trees stay in memory

_COLUMNS = {
    "users": "id username name email role active created_at updated_at",
    "sales_groups": "id name created_at",
    "group_members": "group_id user_id level",
    "activity_types": "id name entity captures_owner",
    "leads": "id name email phone company stage source owner_id fields created_at updated_at",
    "opportunities": "id lead_id name type stage amount owner_id fields created_at updated_at",
    "activities": "id type_id lead_id owner_id note fields status occurred_at created_at updated_at "
    "completed_at",
    "tasks": "id lead_id opportunity_id owner_id subject due_at reminder_at reminded_at completed_at "
    "created_at updated_at",
    "grants": "id entity_type entity_id user_id context_activity_id context_key access starts_at "
    "expires_at state source request_id until_completed ended_at ended_reason created_at updated_at",
    "share_requests": "id action outcome status entity_type entity_id recipient_name recipient_id "
    "requester_id context_activity_id all_contexts access duration until_completed source grant_id "
    "created_at finished_at",
    "history": "id at event status reason request_id grant_id entity_type entity_id user_id user_name "
    "access context_activity_id duration starts_at expires_at source requester_id requester_name "
    "automation_run_id",
}


@dataclass
class GenerateReport:
    """What :func:`generate` wrote, and how long each stage took."""

    seed: int
    counts: dict[str, int] = field(default_factory=dict)  # rows per table
    users_by_role: dict[str, int] = field(default_factory=dict)
    grants_by_state: dict[str, int] = field(default_factory=dict)
    stages: dict[str, tuple[int, float]] = field(default_factory=dict)  # stage -> (rows, seconds)
    indexes_rebuilt: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "counts": dict(self.counts),
            "users_by_role": dict(self.users_by_role),
            "grants_by_state": dict(self.grants_by_state),
            "stages": [
                {
                    "stage": name,
                    "rows": rows,
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(rows / seconds) if rows and seconds > 0 else None,
                }
                for name, (rows, seconds) in self.stages.items()
            ],
            "indexes_rebuilt": self.indexes_rebuilt,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
        }


def _stamper(sqlite: bool) -> Callable[[int], Any]:
    """Seconds since the epoch (UTC) -> a stored time: naive datetimes for
    PostgreSQL, and for SQLite the text its adapter would have written
    (``YYYY-MM-DD HH:MM:SS``), built from cached parts ten times faster."""
    if not sqlite:
        return lambda seconds: _EPOCH + timedelta(seconds=seconds)
    days: dict[int, str] = {}
    clock = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

    def stamp(seconds: int) -> str:
        day, rest = divmod(seconds, DAY)
        text = days.get(day)
        if text is None:
            text = days[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
        return text + clock[rest]

    return stamp


class BulkLoad:
    """The tools part of the generator (a mixin; the generator sets the state below)."""

    db: Any
    sqlite: bool
    seed: int
    progress: Progress
    report: GenerateReport
    deferred: list[tuple[str, str]]  # (index, its DDL) to rebuild
    deferred_search: dict[str, list[str]]  # table -> its search triggers' DDL
    _inserts: dict[str, str]

    def rng(self, name: str) -> random.Random:
        """One independent stream per purpose: batch sizes never change the data."""
        return random.Random(f"sharetui.generate:{self.seed}:{name}")

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """One batch: a prepared ``INSERT`` run by ``executemany``; on PostgreSQL,
        ``COPY ... FROM STDIN`` (psycopg 3), several times faster there."""
        if not rows:
            return
        cursor = self.db.cursor()
        columns = _COLUMNS[table].split()
        if not self.sqlite and hasattr(cursor, "copy"):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = self._inserts.get(table)
        if sql is None:
            text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            sql = self._inserts[table] = Statement(text).sql()
        cursor.executemany(sql, rows)

    def insert_batches(self, table: str, stage: str, rows: Any, total: int) -> None:
        """Insert rows from an iterable in batches, reporting progress."""
        self.progress(stage, 0, total)
        batch: list[tuple[Any, ...]] = []
        done = 0
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                self.insert(table, batch)
                done += len(batch)
                batch = []
                self.progress(stage, done, total)
        self.insert(table, batch)
        self.progress(stage, total, total)

    def reserve(self, table: str, n: int) -> int:
        """The first of ``n`` consecutive free ids in ``table`` (our locks keep them free)."""
        top = int((Statement(f"SELECT COALESCE(MAX(id), 0) FROM {table}").one() or (0,))[0])
        if self.sqlite or n == 0:
            return top + 1
        (sequence,) = Statement("SELECT pg_get_serial_sequence(?, 'id')").one([table]) or (None,)
        last, called = self.db.execute_sql(f"SELECT last_value, is_called FROM {sequence}").fetchone()
        first = max(top, int(last) if called else int(last) - 1) + 1
        Statement("SELECT setval(?, ?)").one([sequence, first + n - 1])
        return first

    def defer_indexes(self, table: str, adding: int) -> None:
        """Drop ``table``'s secondary indexes when the load at least doubles it;
        :meth:`rebuild_indexes` recreates them from the same DDL before the commit."""
        if adding < BULK_INDEX_ROWS:
            return
        existing = int((Statement(f"SELECT COUNT(*) FROM {table}").one() or (0,))[0])
        if existing > adding:
            return
        if self.sqlite:
            found = [
                (f'"{name}"', sql)
                for name, sql in Statement(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql IS NOT NULL ORDER BY name"
                ).all([table])
            ]
        else:  # not the primary key, nor indexes that back a constraint
            found = Statement(
                "SELECT c.oid::regclass::text, pg_get_indexdef(c.oid) FROM pg_index x "
                "JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = ?::regclass "
                "AND NOT x.indisprimary AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) ORDER BY 1"
            ).all([table])
        for name, _ in found:
            self.db.execute_sql(f"DROP INDEX {name}")
        self.deferred.extend(found)
        if self.sqlite and table in SEARCHED:
            # The text index too: one rebuild at the end, not a trigger per row.
            self.deferred_search[table] = suspend_sqlite_triggers(self.db, table)

    def rebuild_indexes(self) -> None:
        t = time.perf_counter()
        total = len(self.deferred)
        if total:
            self.progress("indexes", 0, total)
        for done, (_, ddl) in enumerate(self.deferred, 1):
            self.db.execute_sql(ddl)
            self.progress("indexes", done, total)
        self.report.indexes_rebuilt = total
        self.deferred = []
        if total:
            self.stage("indexes", 0, t)
        for table, triggers in self.deferred_search.items():
            t = time.perf_counter()
            self.progress("search index", 0, 1)
            rebuild_sqlite_index(self.db, table, triggers)
            self.progress("search index", 1, 1)
            self.stage("search index", 0, t)
        self.deferred_search = {}

    def stage(self, name: str, rows: int, started: float) -> None:
        before_rows, before_seconds = self.report.stages.get(name, (0, 0.0))
        self.report.stages[name] = (before_rows + rows, before_seconds + time.perf_counter() - started)

"""The generator itself: checks the plan before the first write, then runs the writers
in order, in one transaction (see :mod:`sharetui.ops.generator`).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from sharetui.db.connection import SQLITE_PRAGMAS, is_sqlite
from sharetui.db.sql import Statement
from sharetui.domain.roles import Role
from sharetui.domain.time import to_db
from sharetui.errors import UsageError
from sharetui.ops.generator import bulk
from sharetui.ops.generator.bulk import (
    _COLUMNS,
    _EPOCH,
    _SQLITE_CACHE_KIB,
    GenerateReport,
    Progress,
    _stamper,
)
from sharetui.ops.generator.pools import _cum
from sharetui.ops.generator.records import RecordWriters
from sharetui.ops.generator.shares import ShareWriters

if TYPE_CHECKING:
    from sharetui.core.service import Core


class _Generator(RecordWriters, ShareWriters):
    def __init__(
        self,
        core: Core,
        leads: int,
        opportunities: int,
        users: int,
        grants: int,
        seed: int,
        progress: Progress | None,
    ) -> None:
        self.core = core
        self.db = core.db
        self.sqlite = is_sqlite()
        self.n_leads = leads
        self.n_opps = opportunities
        self.n_users = users
        self.n_grants = grants
        self.seed = seed
        self.progress: Progress = progress or (lambda stage, done, total: None)
        self.now = int((to_db(core.now()) - _EPOCH).total_seconds())  # type: ignore[operator]
        self.stamp = _stamper(self.sqlite)
        self.report = GenerateReport(seed=seed)
        self.deferred: list[tuple[str, str]] = []  # (index, its DDL) to rebuild
        self.deferred_search: dict[str, list[str]] = {}  # table -> its search triggers' DDL
        self._inserts: dict[str, str] = {}

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> GenerateReport:
        began = time.perf_counter()
        if self.sqlite:
            self.db.execute_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        try:
            with self.db.atomic():
                t = time.perf_counter()
                self.lock()
                self.plan()
                self.stage("plan", 0, t)
                self.write_users()
                self.write_activity_types()
                self.write_leads()
                self.write_opportunities()
                self.write_activities()
                self.write_tasks()
                self.write_grants()
                self.rebuild_indexes()
                if not self.sqlite and self.report.rows >= bulk.BULK_INDEX_ROWS:
                    # Fresh statistics, or PostgreSQL keeps planning for the old, small tables.
                    t = time.perf_counter()
                    self.db.execute_sql(f"ANALYZE {', '.join(_COLUMNS)}")
                    self.stage("analyze", 0, t)
                self.progress("commit", 0, 1)  # SQLite: the WAL checkpoint takes a while
                t = time.perf_counter()
            self.stage("commit", 0, t)
            self.progress("commit", 1, 1)
        finally:
            if self.sqlite:
                self.db.execute_sql(f"PRAGMA cache_size = {SQLITE_PRAGMAS['cache_size']}")
        self.report.seconds = time.perf_counter() - began
        return self.report

    def lock(self) -> None:
        """PostgreSQL: keep other writers out while we reserve id blocks (on
        SQLite, ``BEGIN IMMEDIATE`` already holds the write lock)."""
        if not self.sqlite:
            self.db.execute_sql(f"LOCK TABLE {', '.join(_COLUMNS)} IN SHARE ROW EXCLUSIVE MODE")

    # -- plan: every check before the first write --------------------------------------------------
    def plan(self) -> None:
        self.usernames = {r[0] for r in Statement("SELECT username FROM users").all()}
        self.group_names = {r[0] for r in Statement("SELECT name FROM sales_groups").all()}
        admin = Statement(
            "SELECT id, username FROM users WHERE role = ? AND active = ? ORDER BY id LIMIT 1"
        ).one([Role.ADMIN.value, True])
        self.existing_admin = (int(admin[0]), str(admin[1])) if admin else None
        self.cap = self.core.settings.share_cap("lead")
        self.owners_can_share = bool(self.core.settings.get("owners_can_share"))

        # Roles: an admin if none, a couple of managers, marketing; the rest sell.
        n_admin = 1 if self.existing_admin is None and self.n_users else 0
        rest = self.n_users - n_admin
        n_managers = 2 if rest >= 10 else 1 if rest >= 5 else 0
        n_marketing = 1 if rest >= 5 else 0
        n_sales = rest - n_managers - n_marketing
        self.roles = (
            [Role.ADMIN.value] * n_admin
            + [Role.SALES_MANAGER.value] * n_managers
            + [Role.MARKETING.value] * n_marketing
            + [Role.SALES.value] * n_sales
        )
        if self.n_leads and not n_sales:
            raise UsageError(
                f"--users {self.n_users} leaves no sales user to own the leads: give at least {n_admin + 1}"
            )
        self.n_sales = n_sales
        # One in thirty sales users has left: they still own leads, they receive no shares.
        n_inactive = n_sales // 30 if n_sales >= 10 else 0
        self.inactive = set(self.rng("inactive").sample(range(n_sales), n_inactive))

        # Lead owners (positions among the sales users), then what the cap allows.
        weights_rng = self.rng("owner.weights")
        weights = [weights_rng.uniform(0.5, 1.5) * (0.3 if p in self.inactive else 1) for p in range(n_sales)]
        self.owner_pos = (
            self.rng("lead.owner").choices(range(n_sales), cum_weights=_cum(weights), k=self.n_leads)
            if self.n_leads
            else []
        )
        owned = Counter(self.owner_pos)
        self.room = [
            0 if p in self.inactive else min(self.cap, self.n_leads - owned.get(p, 0)) for p in range(n_sales)
        ]
        allowed = sum(self.room)
        if self.n_grants > allowed:
            raise UsageError(
                f"--grants {self.n_grants:,} is more than this company allows: at most {allowed:,} "
                f"({n_sales - n_inactive:,} active sales user(s), each with shares on at most "
                f"{self.cap:,} leads they do not own); add users or leads, or raise share_cap_leads"
            )

"""``sharetui worker``: processes the outbox, due schedules, task reminders,
expiring-soon notices and expiry sweeps, until told to stop.

On SQLite one worker holds the ``worker`` lease and a second waits for it.
On PostgreSQL any number run side by side: events, schedules and reminders
are claimed with row locks (``FOR UPDATE SKIP LOCKED``) so nothing runs twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sharetui.db import IntegrityError
from sharetui.db.connection import is_sqlite
from sharetui.db.models import WorkerLease
from sharetui.domain.time import to_db

if TYPE_CHECKING:
    from sharetui.core.service import Core

log = logging.getLogger("sharetui.worker")


@dataclass
class TickReport:
    events: int = 0
    runs: int = 0
    schedules: int = 0
    reminders: int = 0
    expired: int = 0
    warned: int = 0
    pruned: int = 0
    lease: bool = True
    summaries: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "summaries"} | {"runs_detail": self.summaries}

    def busy(self) -> bool:
        return bool(self.events or self.schedules or self.reminders or self.expired or self.warned)


class Worker:
    def __init__(
        self, core: Core, *, name: str | None = None, lease_seconds: int = 30, batch: int = 500
    ) -> None:
        self.core = core
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.stop_event = threading.Event()

    # -- the SQLite lease -----------------------------------------------------------------
    def acquire_lease(self) -> bool:
        """Hold (or renew) the ``worker`` lease; False while another live worker holds it."""
        if not is_sqlite():
            return True
        now = self.core.db_now()
        until = to_db(self.core.now() + timedelta(seconds=self.lease_seconds))
        with self.core.db.atomic():
            row = WorkerLease.get_or_none(WorkerLease.name == "worker")
            if row is None:
                try:
                    WorkerLease.create(name="worker", holder=self.name, expires_at=until)
                    return True
                except IntegrityError:
                    return False
            if row.holder == self.name or row.expires_at <= now:
                WorkerLease.update(holder=self.name, expires_at=until).where(
                    WorkerLease.name == "worker"
                ).execute()
                return True
            return False

    def release_lease(self) -> None:
        if is_sqlite():
            with self.core.db.atomic():
                WorkerLease.delete().where(
                    (WorkerLease.name == "worker") & (WorkerLease.holder == self.name)
                ).execute()

    # -- one pass ----------------------------------------------------------------------
    def tick(self) -> TickReport:
        """Do everything that is due once. Returns what was done."""
        report = TickReport()
        if not self.acquire_lease():
            report.lease = False
            return report
        automations = self.core.automations
        report.reminders = automations.fire_due_reminders()
        report.schedules = automations.fire_due_schedules()
        report.events, runs = automations.process_pending_counted(limit=self.batch)
        report.runs = len(runs)
        report.summaries = [r.summary() for r in runs]
        sweep = self.core.expiry.sweep()
        report.expired, report.warned = sweep.expired, sweep.warned
        report.pruned = automations.prune_runs()
        for line in report.summaries:
            log.info("%s", line)
        if report.busy():
            log.info(
                "events %d, runs %d, schedules %d, reminders %d, expired %d, expiring soon %d",
                report.events,
                report.runs,
                report.schedules,
                report.reminders,
                report.expired,
                report.warned,
            )
        return report

    def run(self, *, interval: float = 1.0, once: bool = False) -> TickReport:
        """Loop until :meth:`stop` (SIGINT/SIGTERM in the CLI); ``once`` for a single pass
        that also drains the outbox."""
        total = TickReport()
        waiting_logged = False
        try:
            while not self.stop_event.is_set():
                report = self.tick()
                if not report.lease:
                    if not waiting_logged:
                        log.info("another worker holds the lease; waiting")
                        waiting_logged = True
                    if once:
                        total.lease = False
                        return total
                    self.stop_event.wait(interval)
                    continue
                waiting_logged = False
                _add(total, report)
                if once:
                    if report.events >= self.batch:
                        continue  # drain what is waiting
                    return total
                if not report.busy():
                    self.stop_event.wait(interval)
        finally:
            self.release_lease()
        return total

    def stop(self) -> None:
        self.stop_event.set()


def _add(total: TickReport, report: TickReport) -> None:
    for key in ("events", "runs", "schedules", "reminders", "expired", "warned", "pruned"):
        setattr(total, key, getattr(total, key) + getattr(report, key))
    total.summaries.extend(report.summaries)

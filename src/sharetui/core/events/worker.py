"""``sharetui worker``: processes the outbox, due schedules, task reminders,
expiring-soon notices and expiry sweeps, until told to stop.

On SQLite one worker holds the ``worker`` lease and a second waits for it.
On PostgreSQL any number run side by side: events, schedules and reminders
are claimed with row locks (``FOR UPDATE SKIP LOCKED``) so nothing runs twice.

A worker outlives its database connection: when the server drops it (an admin's
``pg_terminate_backend``, a restart, the network), the worker logs one line and
connects again, waiting 0.5 s, 1 s, 2 s ... up to 30 s between attempts (each
wait drawn between half and all of that, so a fleet of workers does not come
back in step). Nothing is lost or done twice: the server rolls back the
transaction the connection was in, and each event is marked processed in the
same transaction as everything it caused, so an interrupted event is still
waiting in the outbox and is processed again on the new connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sharetui.core.automations.reports import RunReport, runs_not_shown
from sharetui.db import IntegrityError
from sharetui.db.connection import connection_lost, is_sqlite
from sharetui.db.models import WorkerLease
from sharetui.domain.text import visible
from sharetui.domain.time import to_db

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.db.models import User

log = logging.getLogger("sharetui.worker")

RECONNECT_FIRST_WAIT = 0.5  # seconds before the first attempt to connect again
RECONNECT_MAX_WAIT = 30.0  # the wait doubles per attempt up to this
# While a backlog fills every pass, the periodic jobs (reminders, schedules, the expiry
# sweep, pruning old runs) run at most this often (seconds) instead of every pass: each
# reads its due rows (tens of milliseconds on a big company, in every worker), and none
# is later than an idle worker's wait between passes (``interval``, 1 s by default).
# Expiry is decided whenever access is read: a later sweep gives no access away.
PERIODIC_EVERY = 1.0
_monotonic = time.monotonic  # the periodic jobs' clock (tests move it)


def reconnect_wait(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before reconnect ``attempt`` (1, 2, ...): 0.5 s doubling up to
    30 s, each drawn between half and all of that (jitter)."""
    ceiling = min(RECONNECT_MAX_WAIT, RECONNECT_FIRST_WAIT * 2 ** min(attempt - 1, 16))
    return ceiling * (rng or random).uniform(0.5, 1.0)


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
    # The runs the viewer may read, each with its record (``summaries`` says them).
    reports: list[RunReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        skip = ("summaries", "reports")
        return {k: v for k, v in self.__dict__.items() if k not in skip} | {"runs_detail": self.summaries}

    def busy(self) -> bool:
        return bool(self.events or self.schedules or self.reminders or self.expired or self.warned)


class Worker:
    def __init__(
        self,
        core: Core,
        *,
        name: str | None = None,
        lease_seconds: int = 30,
        batch: int = 500,
        max_reconnects: int | None = None,
        viewer: User | None = None,
    ) -> None:
        """Args:
        max_reconnects: attempts to connect again after the connection is lost before
            giving up (raising the error); None: keep trying until stopped.
        viewer: who reads what the worker reports (its summaries and log lines); the
            system (None) sees every run.
        """
        self.viewer = viewer
        self.core = core
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.max_reconnects = max_reconnects
        self.reconnects = 0  # connections made again over the worker's life
        self._failed_attempts = 0  # since the last pass that went through: the backoff grows
        self._backlog = False  # the last pass was full: events are waiting
        self._periodic_at = float("-inf")  # when the periodic jobs last ran (monotonic)
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
        """Do everything that is due once (while a backlog fills every pass, the periodic
        jobs at most every :data:`PERIODIC_EVERY` seconds). Returns what was done."""
        report = TickReport()
        if not self.acquire_lease():
            report.lease = False
            return report
        automations = self.core.automations
        periodic = not self._backlog or _monotonic() - self._periodic_at >= PERIODIC_EVERY
        if periodic:
            report.reminders = automations.fire_due_reminders()
            report.schedules = automations.fire_due_schedules()
        report.events, runs = automations.process_pending_counted(limit=self.batch)
        self._backlog = report.events >= self.batch
        report.runs = len(runs)
        shown, hidden = automations.visible_reports(self.viewer, runs)
        # A summary carries data (a notify action's text): shown as text, never as
        # terminal controls, and only to whoever may read runs (DESIGN §9).
        report.reports = list(shown)
        report.summaries = [visible(r.summary(), one_line=True) for r in shown]
        if hidden:
            report.summaries.append(runs_not_shown(hidden))
        if periodic:
            sweep = self.core.expiry.sweep()
            report.expired, report.warned = sweep.expired, sweep.warned
            report.pruned = automations.prune_runs()
            self._periodic_at = _monotonic()
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

    # -- a lost connection ------------------------------------------------------------------
    def _reconnect(self, error: BaseException) -> bool:
        """Connect again after ``error`` lost the connection, waiting with backoff between
        attempts. Returns False if stopped meanwhile; raises the last error once
        ``max_reconnects`` attempts have failed, or one that is not a lost connection."""
        db = self.core.db
        while not self.stop_event.is_set():
            reason = connection_lost(error)
            if reason is None:
                raise error
            self._failed_attempts += 1
            attempt = self._failed_attempts
            if self.max_reconnects is not None and attempt > self.max_reconnects:
                log.error("database connection lost (%s); giving up after %d attempt(s)", reason, attempt - 1)
                raise error
            wait = reconnect_wait(attempt)
            # One line, naming the error's class and the wait: never the URL or the message,
            # which may name the server and the login (the password is never in either).
            log.warning(
                "database connection lost (%s); reconnecting in %.1f s (attempt %d)", reason, wait, attempt
            )
            if self.stop_event.wait(wait):
                return False
            try:
                # Forget the broken connection (closing a dead socket may complain: it is gone).
                with contextlib.suppress(Exception):
                    db.close()
                db.connect(reuse_if_open=True)
                db.execute_sql("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - classified at the top of the loop
                error = exc
                continue
            self.reconnects += 1
            log.info("reconnected to the database (attempt %d)", attempt)
            return True
        return False

    def _tick_surviving_disconnects(self) -> TickReport | None:
        """:meth:`tick`, connecting again (and ticking again) if the connection was lost.
        None when stopped while reconnecting."""
        while True:
            try:
                report = self.tick()
            except Exception as exc:  # only a lost connection is handled here
                if connection_lost(exc) is None:
                    raise
                if not self._reconnect(exc):
                    return None
                continue
            self._failed_attempts = 0  # a pass went through: the next loss starts from 0.5 s
            return report

    def run(self, *, interval: float = 1.0, once: bool = False) -> TickReport:
        """Loop until :meth:`stop` (SIGINT/SIGTERM in the CLI); ``once`` for a single pass
        that also drains the outbox. A lost connection is made again (see the module)."""
        total = TickReport()
        waiting_logged = False
        try:
            while not self.stop_event.is_set():
                report = self._tick_surviving_disconnects()
                if report is None:  # stopped while reconnecting
                    break
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
            try:
                self.release_lease()
            except Exception as exc:  # a lease on a lost connection expires by itself
                if connection_lost(exc) is None:
                    raise
        return total

    def stop(self) -> None:
        self.stop_event.set()


def _add(total: TickReport, report: TickReport) -> None:
    for key in ("events", "runs", "schedules", "reminders", "expired", "warned", "pruned"):
        setattr(total, key, getattr(total, key) + getattr(report, key))
    total.summaries.extend(report.summaries)
    total.reports.extend(report.reports)

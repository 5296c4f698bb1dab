"""Taking events from the outbox, in order, for the engine to decide.

Each event with everything it causes commits or rolls back as one; a batch of
events no automation can act on is marked processed in one statement. On
PostgreSQL workers share the queue with ``FOR UPDATE SKIP LOCKED``.

:class:`EventQueue` is mixed into :class:`~sharetui.core.automations.AutomationService`;
it relies on the engine's ``process_event`` and ``_candidate_cache``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from sharetui.core.automations.engine import _EVENT_DONE
from sharetui.core.automations.reports import RunReport, _loads
from sharetui.core.automations.trigger_data import trigger_for
from sharetui.db.batching import DeferredWriteFailed, deferred_writes
from sharetui.db.connection import connection_lost, is_disk_full, is_lock_conflict, is_sqlite
from sharetui.db.locks import RecipientBusy, many_recipients
from sharetui.db.models import Automation, OutboxEvent
from sharetui.db.sql import Statement

if TYPE_CHECKING:
    from sharetui.core.service import Core

# Events no automation can act on, marked processed per statement (see _mark_idle).
_IDLE_BATCH = 5_000
# Events decided per transaction on SQLite (each in a savepoint of its own). Their facts
# are read and their runs, steps, shares and marks written set-based (db/batching.py:
# a few statements and one executemany per table for the batch), so a larger batch
# spreads those over more events: 500 decide ~8 % more a second than 100 (quick
# company), holding the write lock ~0.3 s, as a batch API chunk does. A crash still
# loses and duplicates nothing.
_EVENT_BATCH = 500
# Events decided per transaction on PostgreSQL, each in a savepoint of its own: a commit
# (and its wait for the log to reach the disk) per batch, not per event. Recipients'
# share locks are taken so that two workers' batches never wait on each other
# (db/locks.py): an event whose recipient another batch holds ends this batch before
# it and is decided first in the next.
_PG_EVENT_BATCH = 100
# The engine's per-event reads and writes, compiled once (a Peewee query costs ~20x).
_CLAIM_SQL = Statement(
    "SELECT id, topic, entity_type, entity_id, payload, attempts FROM outbox "
    "WHERE processed_at IS NULL ORDER BY id LIMIT ?"
)
_OLDEST_WAITING = Statement(
    "SELECT id, topic, entity_type FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT 1"
)
_ANY_PENDING = Statement("SELECT 1 FROM outbox WHERE processed_at IS NULL LIMIT 1")
_CONFLICT_RETRIES = 20  # lock conflicts one process_pending call retries before it gives up

log = logging.getLogger("sharetui.automations")


def held_time(core: Core) -> Any:
    """One reading of the clock for an event and all it causes, where reading it costs a
    round trip (team mode's server clock: ``ServerClock.held``); else nothing to do."""
    held = getattr(core.clock, "held", None)
    return held() if held is not None else nullcontext()


def anchored_time(core: Core) -> Any:
    """One reading of the clock for a batch of events, where reading it costs a round trip
    (team mode's server clock: ``ServerClock.anchored``); else nothing to do."""
    anchored = getattr(core.clock, "anchored", None)
    return anchored() if anchored is not None else nullcontext()


def _payload(text: Any) -> Any:
    """An event's payload as stored; text that is no JSON stays text (the event is then
    undecidable, see :meth:`EventQueue._give_up`), never an error that stops the queue."""
    try:
        return _loads(text)
    except ValueError:
        return text


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` says nothing about the event: a lock conflict, a lost connection, a
    full disk. Such an event is tried again; any other failure is the event's own."""
    return is_lock_conflict(exc) or connection_lost(exc) is not None or is_disk_full(exc)


class EventQueue:
    """The queue half of the engine: claim events in order and process them."""

    core: Core
    _candidate_cache: Any
    process_event: Callable[[OutboxEvent], list[RunReport]]  # the engine's
    prefetch_events: Callable[[list[OutboxEvent], Any], list[int | None]]  # trigger data's
    _candidates: Callable[..., list[Automation]]  # the engine's

    def _claim(self, limit: int = 1) -> list[OutboxEvent]:
        """The oldest waiting events, in order (on PostgreSQL: those no other worker holds,
        locked for this transaction)."""
        sql = _CLAIM_SQL.sql() + ("" if is_sqlite() else " FOR UPDATE SKIP LOCKED")
        return [
            OutboxEvent(
                id=eid,
                topic=topic,
                entity_type=entity_type,
                entity_id=entity_id,
                payload=_payload(payload),
                attempts=attempts,
            )
            for eid, topic, entity_type, entity_id, payload, attempts in self.core.db.execute_sql(
                sql, (limit,)
            ).fetchall()
        ]

    def _mark_idle(self, limit: int) -> int:
        """Mark processed, in one statement, the oldest waiting events that no automation
        can act on: no trigger reads their topic, or no automation on their trigger was
        published before them and is in its date window now. That is all processing them
        one at a time would do (a bulk import or a sweep queues many such events). Stops
        at the first event that needs processing. Call inside a transaction."""
        now = self.core.db_now()
        oldest = _OLDEST_WAITING.one()
        if oldest is None:
            return 0
        live: dict[str, int] = {}  # trigger -> lowest since_event_id of the automations that could run
        for trigger, since, starts, ends in (
            Automation.select(
                Automation.trigger_type, Automation.since_event_id, Automation.starts_at, Automation.ends_at
            )
            .where(Automation.status == "published")
            .tuples()
        ):
            if since is None or (starts is not None and starts > now) or (ends is not None and ends <= now):
                continue
            live[trigger] = min(since, live.get(trigger, since))
        first_id, first_topic, first_entity = oldest
        first_trigger = trigger_for(first_topic, first_entity)
        if first_trigger is not None and (
            first_trigger == "schedule" or live.get(first_trigger, first_id) < first_id
        ):
            return 0  # the oldest needs processing: do not read (or, on PostgreSQL, lock) a batch
        # Read unlocked: on PostgreSQL only the idle ones found are locked (below), never
        # the events after them, which other workers' batches may then claim.
        waiting = self.core.db.execute_sql(
            Statement(
                "SELECT id, topic, entity_type FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT ?"
            ).sql(),
            (limit,),
        ).fetchall()
        idle: list[int] = []
        for event_id, topic, entity_type in waiting:
            trigger = trigger_for(topic, entity_type)
            if trigger is not None and (trigger == "schedule" or live.get(trigger, event_id) < event_id):
                break
            idle.append(event_id)
        if not idle:
            return 0
        if is_sqlite():  # one writer: the waiting events in this range are exactly those read
            Statement(
                "UPDATE outbox SET processed_at = ?, attempts = attempts + 1 "
                "WHERE processed_at IS NULL AND id BETWEEN ? AND ?"
            ).run([now, idle[0], idle[-1]])
            return len(idle)
        # Those no other worker holds (one that does decides it in its batch).
        return self.core.db.execute_sql(
            "UPDATE outbox SET processed_at = %s, attempts = attempts + 1 WHERE id IN "
            "(SELECT id FROM outbox WHERE id = ANY(%s) AND processed_at IS NULL FOR UPDATE SKIP LOCKED)",
            (now, idle),
        ).rowcount

    def _give_up(self, event: OutboxEvent, exc: BaseException) -> None:
        """Mark an undecidable event processed, its error logged and kept (in
        ``plugin_errors``, under ``sharetui``: ``sharetui plugins`` shows it). Call in the
        batch's transaction, after the event's own savepoint rolled back."""
        error = f"{type(exc).__name__}: {str(exc)[:500]}"
        log.error("outbox event %s (%s) cannot be decided, marked failed: %s", event.id, event.topic, error)
        _EVENT_DONE.run((self.core.db_now(), event.id))
        with self.core.db.atomic():
            self.core.plugins.record_error("sharetui", f"outbox event {event.id} ({event.topic[:64]})", error)

    def process_pending(self, limit: int | None = None) -> list[RunReport]:
        """Process waiting events in order (embedded mode and the worker).

        Each event with everything it causes commits or rolls back as one: events are
        taken :data:`_EVENT_BATCH` at a time (:data:`_PG_EVENT_BATCH` on PostgreSQL),
        each decided in a savepoint of its own, in one transaction per batch. An event that raises
        rolls back alone; the events before it commit and the error is raised. A crash
        rolls back the batch, whose events then wait to be processed again: nothing lost,
        nothing done twice.
        """
        return self.process_pending_counted(limit)[1]

    def process_pending_counted(self, limit: int | None = None) -> tuple[int, list[RunReport]]:
        """Like :meth:`process_pending`, also saying how many events this call processed."""
        reports: list[RunReport] = []
        done = 0
        conflicts = 0
        defer = True  # a batch's rows written set-based (SQLite); off again after a failed write
        while limit is None or done < limit:
            if is_sqlite() and not _ANY_PENDING.one():
                # Nothing waits: no write transaction, which on SQLite would queue for the
                # write lock behind every writer (embedded mode runs this after every command).
                break
            error: Exception | None = None
            before = (done, len(reports))
            try:
                with self.core.db.atomic(), anchored_time(self.core):
                    idle = self._mark_idle(_IDLE_BATCH if limit is None else min(_IDLE_BATCH, limit - done))
                    if idle:
                        done += idle
                        continue
                    sqlite = is_sqlite()
                    size = _EVENT_BATCH if sqlite else _PG_EVENT_BATCH
                    events = self._claim(size if limit is None else min(size, limit - done))
                    if not events:
                        break
                    self._candidate_cache = {}
                    try:
                        with (
                            # A people's login writes through the database's functions (team mode).
                            deferred_writes(self.core.db)
                            if defer and not self.core.team.routed
                            else nullcontext(),
                            many_recipients(self.core.db) as recipients,
                        ):
                            now = self.core.now()
                            people = self.prefetch_events(
                                events, lambda t, e, at=now: self._candidates(t, at, e)
                            )
                            self.core.sharing.lock_recipients(recipients, people)
                            for event in events:
                                try:
                                    # One event and all it causes, or nothing.
                                    with self.core.db.atomic(), held_time(self.core):
                                        reports.extend(self.process_event(event))
                                except DeferredWriteFailed:
                                    raise
                                except RecipientBusy:
                                    break  # the events before it commit; it comes first in the next batch
                                except Exception as exc:  # noqa: BLE001 - re-raised once the events before it commit
                                    if _transient(exc):
                                        error = exc
                                        break
                                    # An event that cannot be decided (a damaged payload, a record
                                    # whose data no automation can read): it fails, and the queue
                                    # goes on; one bad row must not stop every event after it.
                                    self._give_up(event, exc)
                                finally:
                                    recipients.item_done()
                                done += 1
                    finally:
                        self._candidate_cache = None
            except DeferredWriteFailed:
                # The batch's rows could not be written set-based (the transaction rolled
                # back): decide the same events again one statement at a time, where an
                # event that fails is rolled back alone.
                done, kept = before
                del reports[kept:]
                defer = False
                continue
            defer = True
            if error is not None:
                if is_lock_conflict(error) and conflicts < _CONFLICT_RETRIES:
                    # Lost a lock conflict (two workers' batches lock recipients in different
                    # orders): the events before it committed; this one is claimed again.
                    conflicts += 1
                    continue
                raise error
        return done, reports

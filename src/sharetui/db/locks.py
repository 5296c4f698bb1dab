"""Shares to one recipient are decided one at a time (PostgreSQL), so the share cap
holds under concurrency: each decision takes the recipient's share lock, held to the end
of its transaction. On plain PostgreSQL (one trusted role) that is an advisory lock; in
team mode, where any login may take advisory locks, it is the recipient's ``users`` row,
locked by the database's ``sharetui_hold_recipient`` (which only those who may share may
call, and which ``sharetui_put_grant`` takes too): no privilege on ``users`` is needed,
and no login can hold up shares to a person it may not share with.

One share per transaction may wait for its lock, at most :data:`WAIT_LIMIT`. A
transaction that decides many (a batch API chunk, a worker's batch of events) inside
:func:`many_recipients` waits only while no earlier item holds a recipient's lock; after
that it only *tries*, and a recipient another transaction holds raises
:class:`RecipientBusy`. The caller then rolls that item back, commits the ones before it,
and decides it first in a new transaction. A batch never waits for a recipient while it
holds another's, so two batches never deadlock on them (one item that shares with two
people waits for both: PostgreSQL's deadlock detection covers that rare case, a lock
conflict the caller retries). SQLite has one writer at a time: nothing to lock.

A batch that knows its items' recipients before deciding them (the batch API's chunk;
the worker's batch, from the owners of its events' activities, the common automation's
recipients) takes their locks at its start, in at most two round trips instead of one per
item (:func:`hold_recipients`): it waits for the first item's recipient while it holds
nothing, then tries the rest in one statement. A lock taken early is held a little
longer (from the batch's start instead of from its item's; the worker's for an event
that ends up sharing with nobody, until its commit), and a recipient that was busy is
tried again at its item, which ends the batch there as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sharetui.db.batching import execute_apart

# Plain PostgreSQL: the advisory-lock class of "shares to one recipient" (the second key
# is the user id).
RECIPIENT_LOCK = 0x5354_5348

# The longest a share waits for a recipient's lock: any login may take an advisory lock
# (psql, a stuck session), and one held forever must not stall the worker or a command.
# Set for the rest of the transaction, in the same round trip; a wait that runs out is a
# lock conflict (lock_not_available), retried by the worker like any other.
WAIT_LIMIT = "10s"
_WAIT = "SELECT set_config('lock_timeout', %s, true), pg_advisory_xact_lock(%s, %s)"
_TRY = "SELECT pg_try_advisory_xact_lock(%s, %s)"
_HOLD_ROW = "SELECT sharetui_hold_recipient(%s, %s, %s)"
# Many at once: the ids whose lock another transaction holds (tried, never waited for).
_TRY_MANY = (
    "SELECT COALESCE(array_agg(k), '{}') FROM unnest(%s::integer[]) AS k "
    "WHERE NOT pg_try_advisory_xact_lock(%s, k)"
)
_HOLD_ROWS = (
    "SELECT COALESCE(array_agg(k), '{}') FROM unnest(%s::integer[]) AS k "
    "WHERE NOT sharetui_hold_recipient(k, false, %s)"
)


class RecipientBusy(Exception):
    """Another transaction holds this recipient's lock, and this one holds others: end
    this transaction before the item and decide the item first in the next one."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"recipient {user_id} is being shared with by another transaction")
        self.user_id = user_id


class ManyRecipients:
    """A transaction deciding shares item by item (see the module)."""

    __slots__ = ("earlier", "held", "took")

    def __init__(self) -> None:
        self.earlier = False  # an earlier item of this transaction may hold a recipient's lock
        self.took = False  # the current item took one
        self.held: set[int] = set()  # recipients locked at the transaction's start (hold_recipients)

    def item_done(self) -> None:
        """Call after each item, kept or rolled back (a rolled-back item let its locks go,
        but counting it only makes the next item try where it could have waited)."""
        self.earlier = self.earlier or self.took
        self.took = False


@contextmanager
def many_recipients(db: Any) -> Iterator[ManyRecipients]:
    """The transaction being run decides shares to many recipients, item by item (on
    SQLite nothing asks it: no lock is taken there)."""
    state = db._state
    previous = getattr(state, "recipient_locks", None)
    scope = state.recipient_locks = ManyRecipients()
    try:
        yield scope
    finally:
        state.recipient_locks = previous


def hold_recipient(db: Any, user_id: int, *, team: bool = False) -> None:
    """Take ``user_id``'s share lock for this transaction (PostgreSQL only); ``team``:
    the database is in team mode (the lock is the users row, through its function)."""
    scope: ManyRecipients | None = getattr(db._state, "recipient_locks", None)
    if scope is not None and user_id in scope.held:
        return  # taken at the transaction's start (hold_recipients), outside any savepoint
    wait = scope is None or not scope.earlier  # no other item's lock held: waiting cannot deadlock
    # A lock reads no table a batch holds rows for: they stay held (db/batching.py).
    if team:
        if not execute_apart(db, _HOLD_ROW, (user_id, wait, WAIT_LIMIT)).fetchone()[0]:
            raise RecipientBusy(user_id)
    elif wait:
        execute_apart(db, _WAIT, (WAIT_LIMIT, RECIPIENT_LOCK, user_id))
    elif not execute_apart(db, _TRY, (RECIPIENT_LOCK, user_id)).fetchone()[0]:
        raise RecipientBusy(user_id)
    if scope is not None:
        scope.took = True


def hold_recipients(
    db: Any, scope: ManyRecipients, user_ids: list[int | None], *, team: bool = False
) -> None:
    """At the start of a :func:`many_recipients` transaction, before any savepoint: take
    the share locks of its items' recipients (``user_ids``, in item order; None: not
    known), waiting only for the first item's, as that item would have. Those another
    transaction holds are left to their items, which try again (and end the transaction
    there if still busy). PostgreSQL only."""
    if scope.earlier or scope.held or not any(k is not None for k in user_ids):
        return
    first = user_ids[0]
    rest = list(dict.fromkeys(k for k in user_ids[1:] if k is not None and k != first))
    taken: set[int] = set()
    if first is not None:
        hold_recipient(db, first, team=team)  # it holds nothing yet: it may wait
        taken.add(first)
    if rest:
        sql, params = (_HOLD_ROWS, (rest, WAIT_LIMIT)) if team else (_TRY_MANY, (rest, RECIPIENT_LOCK))
        busy = set(execute_apart(db, sql, params).fetchone()[0])
        taken.update(k for k in rest if k not in busy)
    scope.took = False
    scope.earlier = bool(taken)  # holding any, an item only tries (no deadlock)
    scope.held = taken

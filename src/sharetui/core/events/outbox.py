"""The event outbox: every change appends its events in the same transaction.

The automation engine consumes it in order; the faces poll its newest id
(:meth:`Outbox.change_token`) to know when to redraw.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.db.batching import batch_of
from sharetui.db.changes import CHANNEL, NOTIFY_SQL, ChangeWatcher
from sharetui.db.connection import is_sqlite
from sharetui.db.models import OutboxEvent
from sharetui.db.sql import Insert, Statement
from sharetui.domain.time import to_db

if TYPE_CHECKING:
    from sharetui.core.service import Core


# Every change appends here: compiled once (the payload is stored as JSONField stores it).
_NOTIFY = Statement(NOTIFY_SQL)
_EMIT = Insert(
    "outbox",
    ("topic", "entity_type", "entity_id", "payload", "created_at"),
    fixed={"attempts": 0, "processed_at": None},
)
# PostgreSQL, in a batch (db/batching.py): held without an id, which the sequence gives
# when the batch writes it. An event's id says where it stands in the queue: an
# automation published meanwhile acts on the events after its high-water mark (the
# largest id then), so an id drawn ahead, before other sessions' later events, would
# hide this event from it.
_EMIT_HELD = Insert(
    "outbox",
    ("topic", "entity_type", "entity_id", "payload", "created_at"),
    fixed={"attempts": 0, "processed_at": None},
    has_id=False,
)
# PostgreSQL: the event and its NOTIFY in one statement (pg_notify is NOTIFY's function
# form: delivered at commit, once per transaction however often it is called).
_EMIT_NOTIFY_PG = Statement(
    "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts, processed_at) "
    f"SELECT ?, ?, ?, ?, ?, 0, NULL FROM pg_notify('{CHANNEL}', '') RETURNING id"
)
_LAST_EVENT = Statement("SELECT MAX(id) FROM outbox")
_LAPSED_GRANTS = Statement("SELECT COUNT(*) FROM grants WHERE state = 'active' AND expires_at <= ?")

# Whom an automation run acts for while its actions run (set by the engine, DESIGN §9).
# A change an action makes through the services names that person as its actor, so an
# automation the change fires in turn acts for them too: a chain of automations never
# does more than the person who started it may.
_ACTING_FOR: ContextVar[int | None] = ContextVar("sharetui_acting_for", default=None)


@contextmanager
def acting_for(user_id: int | None) -> Iterator[None]:
    """Within this block, events whose payload names no actor (``"actor_id": None``)
    name ``user_id``. ``None`` changes nothing."""
    token = _ACTING_FOR.set(user_id)
    try:
        yield
    finally:
        _ACTING_FOR.reset(token)


def ambient_actor() -> int | None:
    """The person an automation step acts for (:func:`acting_for`), or None."""
    return _ACTING_FOR.get()


class Outbox:
    def __init__(self, core: Core) -> None:
        self.core = core

    def emit(
        self,
        topic: str,
        entity_type: str | None,
        entity_id: int | None,
        payload: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
        need_id: bool = False,
    ) -> int | None:
        """Append one event. Call inside the transaction of the change it describes.
        Returns its id, or None on PostgreSQL inside a batch of deferred writes, where the
        id is given when the batch writes the event, unless ``need_id`` (the event is then
        written at once).

        ``at``: when it happened, as stored (naive UTC); now if not given. A payload
        with ``"actor_id": None`` written while an automation acts for someone
        (:func:`acting_for`) names that person.
        """
        if payload and "actor_id" in payload and payload["actor_id"] is None:
            ambient = _ACTING_FOR.get()
            if ambient is not None:
                payload = {**payload, "actor_id": ambient}
        text = json.dumps(payload or {}, sort_keys=True, ensure_ascii=False)
        at = at or self.core.db_now()
        if self.core.team.routed:  # team mode: the database stamps the actor and the time
            from sharetui.core.sharing import team_writes

            ident = team_writes.emit(topic, entity_type, entity_id, text)
            _NOTIFY.run(())  # delivered when the change commits (never if it rolls back)
            return ident
        if is_sqlite():
            return _EMIT.insert((topic, entity_type, entity_id, text, at))
        if batch_of(self.core.db) is not None and not need_id:  # the batch notifies when it writes events
            _EMIT_HELD.run((topic, entity_type, entity_id, text, at))
            return None
        # With its NOTIFY, in one statement: open TUIs refresh when the change commits.
        return _EMIT_NOTIFY_PG.one((topic, entity_type, entity_id, text, at))[0]

    def watcher(self) -> ChangeWatcher:
        """Something that waits for another connection's commit (LISTEN/NOTIFY on
        PostgreSQL, ``PRAGMA data_version`` on SQLite); use it from one thread."""
        return ChangeWatcher(self.core.db)

    def change_token(self) -> tuple[int | None, int]:
        """A value that changes when anything a face shows could have: the newest event
        (every change appends one, in any process) and how many active grants have run
        out (the clock ends a share before the sweep records it). Cheap enough to poll."""
        last = _LAST_EVENT.one()
        lapsed = _LAPSED_GRANTS.one((to_db(self.core.now()),))
        return (last[0] if last else None, lapsed[0] if lapsed else 0)

    def pending(self, limit: int = 100) -> list[OutboxEvent]:
        return list(
            OutboxEvent.select()
            .where(OutboxEvent.processed_at.is_null())
            .order_by(OutboxEvent.id)
            .limit(limit)
        )

"""The event outbox: every change appends its events in the same transaction.

The automation engine consumes it in order; nothing reads it back here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sharetui.db.models import OutboxEvent

if TYPE_CHECKING:
    from sharetui.core.service import Core


class Outbox:
    def __init__(self, core: Core) -> None:
        self.core = core

    def emit(
        self,
        topic: str,
        entity_type: str | None,
        entity_id: int | None,
        payload: dict[str, Any] | None = None,
    ) -> int:
        """Append one event. Call inside the transaction of the change it describes."""
        return OutboxEvent.insert(
            topic=topic,
            entity_type=entity_type,
            entity_id=entity_id,
            payload=payload or {},
            created_at=self.core.db_now(),
        ).execute()

    def pending(self, limit: int = 100) -> list[OutboxEvent]:
        return list(
            OutboxEvent.select()
            .where(OutboxEvent.processed_at.is_null())
            .order_by(OutboxEvent.id)
            .limit(limit)
        )

"""Notifications: messages the ``notify`` action leaves for users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sharetui.db.models import Notification
from sharetui.domain.records import RecordRef
from sharetui.domain.time import iso

if TYPE_CHECKING:
    from sharetui.core.service import Core


class NotificationService:
    def __init__(self, core: Core) -> None:
        self.core = core

    def send(self, user_ids: list[int], message: str, record: RecordRef | None, run_id: int | None) -> None:
        """Leave ``message`` for each user (inside the caller's transaction)."""
        now = self.core.db_now()
        for user_id in user_ids:
            Notification.create(
                user=user_id,
                message=message,
                entity_type=record.entity.value if record else None,
                entity_id=record.id if record else None,
                automation_run_id=run_id,
                created_at=now,
            )

    def of_user(self, user_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
        """A user's newest notifications, as the CLI's JSON shows them."""
        rows = (
            Notification.select()
            .where(Notification.user == user_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
        return [
            {
                "id": n.id,
                "at": iso(n.created_at),
                "message": n.message,
                "record": f"{n.entity_type} {n.entity_id}" if n.entity_type else None,
                "automation_run_id": n.automation_run_id,
            }
            for n in rows
        ]

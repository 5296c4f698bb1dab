"""Notifications: messages the ``notify`` action leaves for users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sharetui.db.models import Notification, User
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
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

    def of_user(self, user: User, *, actor: User | None, limit: int = 50) -> list[dict[str, Any]]:
        """``user``'s newest notifications, as the CLI's JSON shows them.

        Users read their own; admins anyone's (DESIGN §9). A notification about a
        record the reader may not read (any more) is left out: it carries its data.
        """
        from sharetui.core.access.gate import Capability

        if actor is not None and actor.id != user.id:
            self.core.gate.require(actor, Capability.READ_ALL_NOTIFICATIONS)
        rows = (
            Notification.select()
            .where(Notification.user == user.id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
        readable: dict[RecordRef, bool] = {}
        out = []
        for n in rows:
            if n.entity_type:
                ref = RecordRef(EntityType(n.entity_type), n.entity_id)
                if ref not in readable:
                    readable[ref] = self.core.gate.can_read(actor, ref)
                if not readable[ref]:
                    continue
            out.append(
                {
                    "id": n.id,
                    "at": iso(n.created_at),
                    "message": n.message,
                    "record": f"{n.entity_type} {n.entity_id}" if n.entity_type else None,
                    "automation_run_id": n.automation_run_id,
                }
            )
        return out

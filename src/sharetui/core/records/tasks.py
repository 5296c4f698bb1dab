"""Tasks on a lead or an opportunity: add and complete them (their reminders are
sent by the automations' scheduling)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.db.models import Task, User, check_lengths
from sharetui.domain.records import RecordLike, RecordRef, as_record
from sharetui.domain.roles import Access, EntityType, Role
from sharetui.domain.time import to_db
from sharetui.errors import NotFound, NotReadable, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core


def task_dict(t: Task) -> dict[str, Any]:
    from sharetui.domain.time import iso

    return {
        "id": t.id,
        "lead_id": t.lead_id,
        "opportunity_id": t.opportunity_id,
        "owner": t.owner.username,
        "subject": t.subject,
        "due_at": iso(t.due_at),
        "reminder_at": iso(t.reminder_at),
        "completed_at": iso(t.completed_at),
    }


class Tasks:
    """The tasks part of :class:`~sharetui.core.records.RecordService` (a mixin: it uses
    the service's ``get``, ``require`` and ``_active_user``)."""

    core: Core

    def task(self, task_id: int) -> Task:
        row = Task.get_or_none(Task.id == task_id)
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        return row

    def tasks_of(self, ref: RecordRef) -> list[Task]:
        col = Task.lead if ref.entity is EntityType.LEAD else Task.opportunity
        return list(Task.select().where(col == ref.id).order_by(Task.due_at, Task.id))

    # -- tasks ---------------------------------------------------------------
    def add_task(
        self,
        record: RecordLike,
        *,
        owner: User | str,
        subject: str,
        actor: User | None,
        due_at: datetime | None = None,
        reminder_at: datetime | None = None,
        ref: str | None = None,
        completed_at: datetime | None = None,
    ) -> Task:
        target = as_record(record)
        self.require(actor, target, Access.EDIT)
        if not subject or not subject.strip():
            raise UsageError("a task needs a subject")
        check_lengths(Task, {"subject": subject.strip(), "ref": ref})
        owner_user = self._active_user(owner, "task owner")
        if due_at and reminder_at and reminder_at > due_at:
            raise UsageError("a task's reminder must not come after it is due")
        now = self.core.db_now()
        with self.core.db.atomic():
            task = Task.create(
                lead=target.id if target.entity is EntityType.LEAD else None,
                opportunity=target.id if target.entity is EntityType.OPPORTUNITY else None,
                owner=owner_user.id,
                subject=subject.strip(),
                due_at=to_db(due_at),
                reminder_at=to_db(reminder_at),
                completed_at=to_db(completed_at),
                created_at=now,
                updated_at=now,
                ref=ref,
                created_by=actor.id if actor is not None else None,
            )
            self.core.outbox.emit(
                "task.created",
                target.entity.value,
                target.id,
                {"task_id": task.id, "owner_id": owner_user.id, "actor_id": actor.id if actor else None},
            )
        return task

    def complete_task(self, task_id: int, *, actor: User | None) -> Task:
        """Complete a task: edit access to its record, or its owner with read access (as
        for activities: owning the task is not enough once that access ends)."""
        task = Task.get_or_none(Task.id == task_id)
        target = (
            None
            if task is None
            else RecordRef(EntityType.LEAD, task.lead_id)
            if task.lead_id is not None
            else RecordRef(EntityType.OPPORTUNITY, task.opportunity_id)
        )
        if task is None or target is None or not self.core.gate.can_read(actor, target):
            raise NotReadable(f"no task {task_id} you may read")
        if actor is None or actor.id != task.owner_id or actor.role != Role.SALES.value:
            self.require(actor, target, Access.EDIT)  # marketing only reads tasks, even its own
        if task.completed_at is not None:
            raise UsageError(f"task {task_id} is already completed")
        now = self.core.db_now()
        with self.core.db.atomic():
            Task.update(completed_at=now, updated_at=now).where(Task.id == task.id).execute()
            self.core.outbox.emit(
                "task.completed",
                target.entity.value,
                target.id,
                {"task_id": task.id, "owner_id": task.owner_id, "actor_id": actor.id if actor else None},
            )
        return self.task(task_id)

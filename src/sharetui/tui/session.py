"""What the UI asks of the core, in one place. Every method here touches the
database and is called from a thread worker, never from the UI thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sharetui.clock import FrozenClock
from sharetui.core.access import Page
from sharetui.core.history import HistoryFilter
from sharetui.core.service import Core
from sharetui.db.models import User
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import SHARE_MANAGERS, Access, EntityType, Role


@dataclass
class Permissions:
    read: bool = False
    edit: bool = False
    share: bool = False
    level: str = "none"


class Session:
    def __init__(self, core: Core, acting: str | None = None, *, demo: bool = False) -> None:
        self.core = core
        self.demo = demo
        self.user: User | None = core.users.acting(acting) if core.users.any_exist() else None

    # -- who and when -------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        return isinstance(self.core.clock, FrozenClock)

    def act_as(self, username: str) -> User:
        user = self.core.users.get(username)
        if not user.active:
            from sharetui.errors import UsageError

            raise UsageError(f"{user.username} is deactivated")
        self.user = user
        return user

    def advance_clock(self, seconds: int) -> Any:
        """Demo mode: move the frozen clock, then let due work happen (expiry, reminders, schedules)."""
        assert isinstance(self.core.clock, FrozenClock)
        self.core.clock.advance(timedelta(seconds=seconds))
        return self.run_due_work()

    def run_due_work(self) -> Any:
        from sharetui.core.events.worker import Worker

        return Worker(self.core, name="tui").tick()

    def change_token(self) -> tuple[Any, ...]:
        """Changes when anything another process (or the clock) could show does."""
        from sharetui.db.sql import Statement
        from sharetui.domain.time import to_db

        outbox = Statement("SELECT MAX(id) FROM outbox").one()
        lapsed = Statement("SELECT COUNT(*) FROM grants WHERE state = 'active' AND expires_at <= ?").one(
            [to_db(self.core.now())]
        )
        return (outbox[0] if outbox else None, lapsed[0] if lapsed else 0)

    # -- lists ------------------------------------------------------------------------
    def page(
        self, entity: EntityType, *, after: str | None, limit: int, search: str | None, sort: str
    ) -> Page:
        assert self.user is not None
        return self.core.access.visible(self.user, entity, after=after, limit=limit, search=search, sort=sort)

    def owners(self, ids: set[int]) -> dict[int, str]:
        """Usernames by id, for a page of records (one prepared query: this is on every page)."""
        from sharetui.db.sql import Statement

        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        return dict(Statement(f"SELECT id, username FROM users WHERE id IN ({marks})").all(list(ids)))

    # -- a record ----------------------------------------------------------------------
    def permissions(self, ref: RecordRef) -> Permissions:
        if self.user is None:
            return Permissions()
        level = self.core.access.level(self.user, ref)
        record = self.core.records.get(ref)
        role = Role(self.user.role)
        may_share = role in SHARE_MANAGERS or (
            role is Role.SALES
            and record.owner_id == self.user.id
            and self.core.settings.get("owners_can_share")
        )
        return Permissions(
            level >= Access.READ, level >= Access.EDIT, may_share and self.user.active, level.label
        )

    def record(self, ref: RecordRef) -> dict[str, Any]:
        from sharetui.core.records import activity_dict, record_dict, task_dict

        row = self.core.records.get(ref)
        permissions = self.permissions(ref)
        if not permissions.read:
            # A stale list, or a share that ran out while the record was open: show none of it.
            return {
                "id": ref.id,
                "entity": ref.entity.value,
                "name": "(you may not read it)",
                "owner": "-",
                "fields": {},
                "activities": [],
                "tasks": [],
                "shares": [],
                "permissions": permissions,
            }
        data = record_dict(row)
        data["activities"] = [activity_dict(a) for a in self.core.records.activities_of(ref)]
        data["tasks"] = [task_dict(t) for t in self.core.records.tasks_of(ref)]
        data["shares"] = self.core.access.active_grants(ref)
        data["permissions"] = permissions
        return data

    def history(
        self, flt: HistoryFilter, limit: int = 200, before: int | None = None
    ) -> list[dict[str, Any]]:
        return self.core.history.query(flt, limit=limit, after_id=before, newest_first=True)

    def sales_users(self) -> list[tuple[str, str]]:
        active = User.active == True  # noqa: E712
        rows = User.select().where((User.role == Role.SALES.value) & active).order_by(User.username)
        return [(u.username, u.name) for u in rows]

    def users(self) -> list[dict[str, Any]]:
        return [
            {
                "username": u.username,
                "name": u.name,
                "role": u.role,
                "active": bool(u.active),
                "groups": ", ".join(f"{g} ({lv.label})" for g, lv in self.core.users.groups_of(u)),
            }
            for u in self.core.users.list()
        ]

    # -- changes ------------------------------------------------------------------------
    def share(
        self,
        ref: RecordRef,
        recipient: str,
        duration: str,
        access: str,
        context: int | None,
        until_completed: bool,
    ) -> tuple[Any, list[Any]]:
        result = self.core.sharing.share(
            ref.entity,
            ref.id,
            recipient,
            requester=self.user,
            duration=duration,
            access=access,
            context=context,
            until_completed=until_completed,
        )
        return result, self.core.automations.process_pending()

    def revoke(self, ref: RecordRef, user: str, context: int | None) -> Any:
        return self.core.sharing.revoke(ref.entity, ref.id, user, requester=self.user, context=context)

    def post_activity(
        self, ref: RecordRef, type_name: str, owner: str | None, note: str
    ) -> tuple[Any, list[Any]]:
        act = self.core.records.post_activity(
            ref, type=type_name, actor=self.user, owner=owner or None, note=note
        )
        return act, self.core.automations.process_pending()

    def complete_task(self, task_id: int) -> tuple[Any, list[Any]]:
        task = self.core.records.complete_task(task_id, actor=self.user)
        return task, self.core.automations.process_pending()

    def complete_activity(self, activity_id: int) -> tuple[Any, list[Any]]:
        act = self.core.records.update_activity(activity_id, actor=self.user, status="completed")
        return act, self.core.automations.process_pending()

    def edit_record(self, ref: RecordRef, values: dict[str, Any]) -> tuple[Any, list[Any]]:
        row = self.core.records.update_record(ref, actor=self.user, values=values)
        return row, self.core.automations.process_pending()

    def activity_types(self, entity: EntityType) -> list[tuple[str, bool]]:
        return [
            (t.name, bool(t.captures_owner))
            for t in self.core.records.activity_types()
            if t.entity == entity.value
        ]

"""The one gate (DESIGN §9): who may see and do what, asked by every path.

The CLI, the TUI, the batch API, automations and the plugin facade never decide
for themselves: the core's services ask here, with the acting user, before they
read or change anything.

- **Records.** Reading needs read access (:meth:`AccessService.can`: role,
  ownership, sales group, an active unexpired share, then plugin checks);
  changing needs edit access. A user who may not read a record cannot tell it
  from a record that does not exist: both are :class:`~sharetui.errors.NotReadable`
  ("no lead 12 you may read", exit 1).
- **Share metadata** (history, grants, request status): admins and sales
  managers see all of it; others see what concerns records they may read, and
  their own grants. Lists are filtered in SQL by the same rules ``check``
  applies (:meth:`Gate.share_rows`), then by plugin checks when there are any.
- **Capabilities** (users, groups, settings, automations, runs, data tools,
  checking another user): by role, in :data:`ROLE_CAPABILITIES`.

The acting user ``None`` is the system: automations' own bookkeeping, and the
commands that create the first admin while no user exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sharetui.core.plugins import BUILTIN_RULE_SET
from sharetui.db.models import User
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import ROLE_ACCESS, SHARE_MANAGERS, Access, EntityType, Role
from sharetui.domain.time import to_db
from sharetui.errors import NotReadable, PermissionDenied

if TYPE_CHECKING:
    from sharetui.core.service import Core


class Capability(StrEnum):
    """Things a role may do that are not about one record."""

    MANAGE_USERS = "add, deactivate and change the role of users"
    READ_USERS = "list users and sales groups"
    MANAGE_GROUPS = "change sales-group membership"
    CHANGE_SETTINGS = "change settings"
    READ_SETTINGS = "read settings"
    MANAGE_AUTOMATIONS = "create, edit, publish and pause automations"
    READ_AUTOMATIONS = "read automations, their runs and traces"
    CHECK_OTHERS = "check or explain another user's access"
    READ_ALL_NOTIFICATIONS = "read other users' notifications"
    LOAD = "load sample data"
    IMPORT = "import leads"
    GENERATE = "generate a company"
    BACKUP = "back up the database"
    RESTORE = "restore the database"
    CREATE_RECORDS = "create leads and opportunities"
    CREATE_FOR_OTHERS = "create records owned by someone else"
    SHARE_VIEWS = "save or remove views shown to everyone"


_ALL = frozenset(Capability)
ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.ADMIN: _ALL,
    Role.SALES_MANAGER: frozenset(
        {
            Capability.READ_USERS,
            Capability.MANAGE_GROUPS,
            Capability.READ_SETTINGS,
            Capability.READ_AUTOMATIONS,
            Capability.CHECK_OTHERS,
            Capability.IMPORT,
            Capability.CREATE_RECORDS,
            Capability.CREATE_FOR_OTHERS,
        }
    ),
    Role.MARKETING: frozenset(),
    Role.SALES: frozenset({Capability.CREATE_RECORDS}),
}

# "The user may read the record": ownership or a sales group giving view or more
# (never across groups), for one table. An active, unexpired share is checked apart.
_GROUP_OWNERS = (
    "SELECT gm2.user_id FROM group_members gm1 JOIN group_members gm2 ON gm2.group_id = gm1.group_id "
    "WHERE gm1.user_id = ? AND gm1.level >= 1"
)


def _record_reach(table: str, id_column: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {table} r WHERE r.id = {id_column} "
        f"AND (r.owner_id = ? OR r.owner_id IN ({_GROUP_OWNERS})))"
    )


class Gate:
    """Asked before every read and change of records and share metadata."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- capabilities ------------------------------------------------------------
    def allows(self, actor: User | None, capability: Capability) -> bool:
        if actor is None:
            return True
        if not actor.active:
            return False
        return capability in ROLE_CAPABILITIES.get(Role(actor.role), frozenset())

    def require(self, actor: User | None, capability: Capability) -> None:
        """Raise :class:`PermissionDenied` unless ``actor``'s role may do ``capability``."""
        if not self.allows(actor, capability):
            assert actor is not None
            raise PermissionDenied(f"{actor.username} ({actor.role}) may not {capability.value}")

    def sees_everything(self, actor: User | None) -> bool:
        """Admins and sales managers see every record and all share metadata."""
        return actor is None or (bool(actor.active) and Role(actor.role) in SHARE_MANAGERS)

    # -- records -----------------------------------------------------------------
    def exists(self, ref: RecordRef) -> bool:
        return self.core.records.exists(ref)

    def can_read(self, actor: User | None, ref: RecordRef, *, found: bool = False) -> bool:
        """May ``actor`` read ``ref``? False for a record that does not exist.
        ``found``: the caller has just read the record (its owner), in this transaction."""
        if not found and not self.exists(ref):
            return False
        return actor is None or self.core.access.can(actor.id, ref, Access.READ)

    def require_read(self, actor: User | None, ref: RecordRef) -> None:
        """Raise :class:`NotReadable` unless the record exists and ``actor`` may read it."""
        if not self.can_read(actor, ref):
            raise NotReadable(f"no {ref.entity.value} {ref.id} you may read")

    def require_metadata(self, actor: User | None, ref: RecordRef) -> None:
        """May ``actor`` see ``ref``'s share metadata (history, grants, explanations)?
        Admins and sales managers see all of it (a plugin check that hides the record's
        fields from them does not hide who may see it); others need read access."""
        if self.sees_everything(actor):
            if not self.exists(ref):
                raise NotReadable(f"no {ref.entity.value} {ref.id} you may read")
            return
        self.require_read(actor, ref)

    def require_edit(self, actor: User | None, ref: RecordRef, *, found: bool = False) -> None:
        """:meth:`require_read`, then :class:`PermissionDenied` unless ``actor`` may edit
        (both from one decision of the rule set). ``found``: as for :meth:`can_read`."""
        if actor is None:
            self.require_read(actor, ref)
            return
        may_read, may_edit = False, False
        if found or self.exists(ref):
            may_read, may_edit = self.core.access.can_read_and_edit(actor.id, ref)
        if not may_read:
            raise NotReadable(f"no {ref.entity.value} {ref.id} you may read")
        if not may_edit:
            raise PermissionDenied(f"{actor.username} may not edit {ref.entity.value} {ref.id}")

    def require_create(self, actor: User | None, owner: User) -> None:
        """Admins and sales managers create records for anyone, sales users for
        themselves, marketing nothing (DESIGN §9)."""
        if actor is None:
            return
        self.require(actor, Capability.CREATE_RECORDS)
        if owner.id != actor.id and not self.allows(actor, Capability.CREATE_FOR_OTHERS):
            raise PermissionDenied(f"{actor.username} may create records owned by themselves only")

    def require_check_of(self, actor: User | None, subject: User) -> None:
        """``check``/``explain`` of another user: admins and sales managers only."""
        if actor is not None and actor.id != subject.id:
            self.require(actor, Capability.CHECK_OTHERS)

    # -- share metadata ----------------------------------------------------------
    def share_rows(
        self,
        actor: User | None,
        *,
        entity_col: str,
        id_col: str,
        user_col: str | None,
        now: datetime,
        own_condition: str | None = None,
    ) -> tuple[str, list[Any]] | None:
        """A SQL condition keeping the share-metadata rows (history, grants,
        requests) ``actor`` may see, over the given columns; None: all of them.

        Rows about records ``actor`` may read by role, ownership, group or an
        active unexpired share, and rows about ``actor``'s own grants
        (``user_col``; only those that also meet ``own_condition``, SQL over the same
        row, when given). Plugin checks are applied afterwards by :meth:`keep_readable`.
        """
        if self.sees_everything(actor):
            return None
        assert actor is not None
        if not actor.active:
            return "1 = 0", []
        if ROLE_ACCESS[Role(actor.role)] >= Access.READ:  # marketing reads every record
            return None
        uid = actor.id
        parts = [
            f"({entity_col} = 'lead' AND {_record_reach('leads', id_col)})",
            f"({entity_col} = 'opportunity' AND {_record_reach('opportunities', id_col)})",
            "EXISTS (SELECT 1 FROM grants sg WHERE sg.user_id = ? AND sg.entity_type = "
            f"{entity_col} AND sg.entity_id = {id_col} AND sg.state = 'active' AND sg.expires_at > ?)",
        ]
        params: list[Any] = [uid, uid, uid, uid, uid, to_db(now)]
        if user_col is not None:
            parts.append(f"({user_col} = ? AND {own_condition})" if own_condition else f"{user_col} = ?")
            params.append(uid)
        # Peewee's SQL() takes the store's own placeholder ('?' on SQLite, '%s' on PostgreSQL).
        return "(" + " OR ".join(parts).replace("?", self.core.db.param) + ")", params

    def keep_readable(
        self,
        actor: User | None,
        rows: Iterable[dict[str, Any]],
        *,
        own: str | None = None,
        own_if: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows (with ``entity`` and ``entity_id``) whose record ``actor`` may read
        now, plugin checks included, or (``own``: the key naming the row's user; and
        ``own_if`` true of the row, when given) that concern ``actor``'s own grants.
        What :meth:`share_rows` filtered in SQL is asked again only when a plugin may
        change the answer."""
        rows = list(rows)
        if self.sees_everything(actor) or actor is None:
            return rows
        plugins = self.core.plugins
        if not plugins.has_access_checks() and plugins.rule_set() == BUILTIN_RULE_SET:
            return rows
        answers: dict[tuple[str, int], bool] = {}
        kept = []
        for row in rows:
            if own is not None and row.get(own) == actor.username and (own_if is None or own_if(row)):
                kept.append(row)
                continue
            key = (row["entity"], row["entity_id"])
            if key not in answers:
                answers[key] = self.can_read(actor, RecordRef(EntityType(key[0]), key[1]))
            if answers[key]:
                kept.append(row)
        return kept

    def may_see_share_row(self, actor: User | None, ref: RecordRef, user: str | None) -> bool:
        """One row of share metadata about ``ref`` and ``user``'s grant."""
        if self.sees_everything(actor):
            return True
        assert actor is not None
        if user is not None and user == actor.username and actor.active:
            return True
        return self.can_read(actor, ref)


__all__ = ["ROLE_CAPABILITIES", "Capability", "Gate"]

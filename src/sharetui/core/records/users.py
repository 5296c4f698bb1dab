"""Users, roles and sales groups. Users are deactivated, never deleted."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sharetui.db.models import GroupMember, SalesGroup, User, check_lengths
from sharetui.db.sql import Statement
from sharetui.domain.ids import as_id
from sharetui.domain.roles import GroupLevel, Role
from sharetui.domain.text import shorten
from sharetui.errors import NotFound, PermissionDenied, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

_BY_EMAIL = Statement("SELECT id FROM users WHERE lower(email) = ? AND active = ? LIMIT 2")
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")


class UserService:
    def __init__(self, core: Core) -> None:
        self.core = core

    # -- lookups -----------------------------------------------------------
    def get(self, who: User | int | str) -> User:
        """A user by instance, id or username; :class:`NotFound` otherwise."""
        if isinstance(who, User):
            return who
        if isinstance(who, int) and not isinstance(who, bool):
            user = User.get_or_none(User.id == who)
        else:
            text = str(who).strip()
            user = User.get_or_none(User.username == text.lower())
            if user is None and as_id(text) is not None:
                user = User.get_or_none(User.id == as_id(text))
        if user is None:
            raise NotFound(shorten(f"unknown user {who!r}", 100))
        return user

    def find(self, who: str | int | None) -> User | None:
        try:
            return None if who in (None, "") else self.get(who)  # type: ignore[arg-type]
        except NotFound:
            return None

    def by_email(self, email: str) -> User:
        """The active user with this email (any case), as LeadSquared's ``ActivityOwnerEmail``
        names one; :class:`NotFound` when none or several have it."""
        text = str(email).strip().lower()
        if not text:
            raise NotFound("name the activity owner's email")
        rows = _BY_EMAIL.all((text, True))
        found = [User.get_by_id(row[0]) for row in rows]
        if len(found) != 1:
            raise NotFound(shorten(f"no active user with email {email!r}", 300))
        return found[0]

    def usernames(self, ids: set[int] | list[int]) -> dict[int, str]:
        """Usernames by id, for a page of records (one prepared query: it runs on every page)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        marks = ", ".join("?" for _ in wanted)
        return dict(Statement(f"SELECT id, username FROM users WHERE id IN ({marks})").all(wanted))

    def any_exist(self) -> bool:
        return User.select().limit(1).exists()

    def acting(self, name: str | None) -> User | None:
        """Who is acting: ``name`` (``SHARETUI_USER``), else the first active admin.

        ``None`` means the system, which is allowed only while no user exists.
        """
        if name:
            user = self.get(name)
            if not user.active:
                raise PermissionDenied(f"user {user.username} is deactivated")
            return user
        admin = (
            User.select()
            .where((User.role == Role.ADMIN.value) & (User.active == True))  # noqa: E712
            .order_by(User.id)
            .first()
        )
        if admin is None and self.any_exist():
            raise UsageError("no active admin: set SHARETUI_USER to the user who is acting")
        return admin

    def acting_as_is(self, name: str | None) -> User | None:
        """:meth:`acting` on a database that may predate this sharetui (``backup`` and
        ``restore`` never migrate what they copy): only the columns every schema has."""
        base = (User.id, User.username, User.role, User.active)
        if name:
            text = name.strip().lower()
            user = User.select(*base).where(User.username == text).first()
            if user is None:
                raise NotFound(f"unknown user {name!r}")
            if not user.active:
                raise PermissionDenied(f"user {user.username} is deactivated")
            return user
        admins = User.select(*base).where((User.role == Role.ADMIN.value) & (User.active == True))  # noqa: E712
        admin = admins.order_by(User.id).first()
        if admin is None and User.select(User.id).exists():
            raise UsageError("no active admin: set SHARETUI_USER to the user who is acting")
        return admin

    def list(self, *, actor: User | None, include_inactive: bool = True) -> list[User]:
        """Every user (admins and sales managers; DESIGN §9)."""
        from sharetui.core.access.gate import Capability

        self.core.gate.require(actor, Capability.READ_USERS)
        return self._all(include_inactive=include_inactive)

    def act_as_choices(self) -> list[User]:
        """Whom the acting user may switch to (the TUI's act-as): in personal mode,
        whoever can open the file may look through anyone's eyes (DESIGN §8)."""
        return self._all()

    def _all(self, *, include_inactive: bool = True) -> list[User]:
        query = User.select().order_by(User.username)
        if not include_inactive:
            query = query.where(User.active == True)  # noqa: E712
        return list(query)

    def groups_of(self, user: User) -> list[tuple[str, GroupLevel]]:
        rows = (
            GroupMember.select(SalesGroup.name, GroupMember.level)
            .join(SalesGroup)
            .where(GroupMember.user == user.id)
            .order_by(SalesGroup.name)
            .tuples()
        )
        return [(name, GroupLevel(level)) for name, level in rows]

    def members_of(self, group: str) -> list[tuple[str, GroupLevel]]:
        """A sales group's members (username, level), in username order; none for no such group."""
        rows = (
            GroupMember.select(User.username, GroupMember.level)
            .join(User)
            .switch(GroupMember)
            .join(SalesGroup)
            .where(SalesGroup.name == group)
            .order_by(User.username)
            .tuples()
        )
        return [(username, GroupLevel(level)) for username, level in rows]

    def groups(self, *, actor: User | None) -> list[tuple[SalesGroup, list[tuple[User, GroupLevel]]]]:
        """Every sales group with its members (admins and sales managers; DESIGN §9)."""
        from sharetui.core.access.gate import Capability

        self.core.gate.require(actor, Capability.READ_USERS)
        out = []
        for group in SalesGroup.select().order_by(SalesGroup.name):
            members = (
                GroupMember.select(GroupMember, User)
                .join(User)
                .where(GroupMember.group == group.id)
                .order_by(User.username)
            )
            out.append((group, [(m.user, GroupLevel(m.level)) for m in members]))
        return out

    # -- changes -----------------------------------------------------------
    def _require_admin(self, actor: User | None, what: str) -> None:
        if actor is None:
            if self.any_exist():
                raise PermissionDenied(f"only an admin may {what}")
            return
        if actor.role != Role.ADMIN.value or not actor.active:
            raise PermissionDenied(f"only an admin may {what} ({actor.username} is {actor.role})")

    def add(
        self,
        username: str,
        *,
        role: Role | str,
        name: str | None = None,
        email: str = "",
        groups: dict[str, GroupLevel | str] | None = None,
        active: bool = True,
        actor: User | None = None,
    ) -> User:
        """Create a user. Only admins may; the system may while no user exists."""
        self._require_admin(actor, "add users")
        uname = username.strip().lower()
        if not _USERNAME.match(uname):
            raise UsageError(
                f"username {username!r} must start with a letter and use a-z, 0-9, '.', '_' or '-'"
            )
        role = Role.parse(role) if isinstance(role, str) else role
        check_lengths(User, {"name": (name or uname).strip(), "email": email.strip()})
        if User.get_or_none(User.username == uname) is not None:
            raise UsageError(f"user {uname} already exists")
        levels = {g: GroupLevel.parse(lv) if isinstance(lv, str) else lv for g, lv in (groups or {}).items()}
        now = self.core.db_now()
        with self.core.db.atomic():
            user = User.create(
                username=uname,
                name=(name or uname).strip(),
                email=email.strip(),
                role=role.value,
                active=active,
                created_at=now,
                updated_at=now,
            )
            for group_name, level in levels.items():
                self._join(user, group_name, level)
            self.core.outbox.emit(
                "user.created", None, None, {"user_id": user.id, "username": uname, "role": role.value}
            )
        return user

    def _group(self, name: str, *, create: bool) -> SalesGroup:
        clean = name.strip()
        if not clean:
            raise UsageError("a sales group needs a name")
        group = SalesGroup.get_or_none(SalesGroup.name == clean)
        if group is None:
            if not create:
                raise NotFound(f"unknown sales group {clean!r}")
            group = SalesGroup.create(name=clean, created_at=self.core.db_now())
        return group

    def _join(self, user: User, group_name: str, level: GroupLevel) -> None:
        group = self._group(group_name, create=True)
        GroupMember.insert(group=group.id, user=user.id, level=int(level)).on_conflict(
            conflict_target=[GroupMember.group, GroupMember.user],
            update={GroupMember.level: int(level)},
        ).execute()

    def _may_manage_group(self, actor: User | None) -> bool:
        """Admins and sales managers change membership; a group's ``manage`` level
        edits the members' records but does not (DESIGN §9)."""
        from sharetui.core.access.gate import Capability

        if actor is None:
            return not self.any_exist()
        return self.core.gate.allows(actor, Capability.MANAGE_GROUPS)

    def join(self, who: User | str, group_name: str, level: GroupLevel | str, *, actor: User | None) -> None:
        """Put a user in a sales group at a level (admins and sales managers)."""
        if not self._may_manage_group(actor):
            raise PermissionDenied("only admins and sales managers may change sales-group members")
        user = self.get(who)
        lvl = GroupLevel.parse(level) if isinstance(level, str) else level
        with self.core.db.atomic():
            self._join(user, group_name, lvl)
            self.core.outbox.emit(
                "group.member_set",
                None,
                None,
                {"group": group_name.strip(), "user_id": user.id, "level": lvl.label},
            )

    def leave(self, who: User | str, group_name: str, *, actor: User | None) -> None:
        if not self._may_manage_group(actor):
            raise PermissionDenied("only admins and sales managers may change sales-group members")
        user = self.get(who)
        group = self._group(group_name, create=False)
        with self.core.db.atomic():
            deleted = (
                GroupMember.delete()
                .where((GroupMember.group == group.id) & (GroupMember.user == user.id))
                .execute()
            )
            if not deleted:
                raise UsageError(f"{user.username} is not in {group.name}")
            self.core.outbox.emit(
                "group.member_removed", None, None, {"group": group.name, "user_id": user.id}
            )

    def deactivate(self, who: User | str, *, actor: User | None) -> int:
        """Deactivate a user and revoke their active grants and their API keys (in the
        same transaction: reactivation brings neither back). Returns how many grants ended."""
        self._require_admin(actor, "deactivate users")
        user = self.get(who)
        if not user.active:
            raise UsageError(f"user {user.username} is already deactivated")
        with self.core.db.atomic():
            User.update(active=False, updated_at=self.core.db_now()).where(User.id == user.id).execute()
            ended = self.core.sharing.end_grants_of_user(
                user.id, reason=f"user {user.username} deactivated", actor=actor
            )
            self.core.keys.revoke_all_of(user.id, actor=actor)
            self.core.outbox.emit("user.deactivated", None, None, {"user_id": user.id})
        return ended

    def activate(self, who: User | str, *, actor: User | None) -> None:
        self._require_admin(actor, "activate users")
        user = self.get(who)
        with self.core.db.atomic():
            User.update(active=True, updated_at=self.core.db_now()).where(User.id == user.id).execute()
            self.core.outbox.emit("user.activated", None, None, {"user_id": user.id})

    def set_role(self, who: User | str, role: Role | str, *, actor: User | None) -> int:
        """Change a user's role. Leaving ``sales`` revokes their shares (only sales receive them)."""
        self._require_admin(actor, "change roles")
        user = self.get(who)
        new = Role.parse(role) if isinstance(role, str) else role
        ended = 0
        with self.core.db.atomic():
            User.update(role=new.value, updated_at=self.core.db_now()).where(User.id == user.id).execute()
            if user.role == Role.SALES.value and new is not Role.SALES:
                ended = self.core.sharing.end_grants_of_user(
                    user.id, reason=f"role changed to {new.value}", actor=actor
                )
            self.core.outbox.emit("user.role_changed", None, None, {"user_id": user.id, "role": new.value})
        return ended

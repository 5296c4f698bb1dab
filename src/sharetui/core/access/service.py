"""Who may read or edit a record (DESIGN .1, .3). The hot path of sharetui.

Effective access = the highest of role, ownership, sales group and every active,
unexpired grant (any context); then plugin checks, which may allow or deny
(deny wins). Deactivated users have nothing. Expiry is checked here, at read
time: a grant whose ``expires_at`` <= now gives nothing, swept or not.

One check is one precompiled SQL statement (user, owner, group and grant in a
single round trip) plus the plugin checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.core.access.record_views import load_record_view
from sharetui.core.plugins import BUILTIN_RULE_SET
from sharetui.db.batching import batch_of
from sharetui.db.models import Activity, Grant, User
from sharetui.db.sql import Statement
from sharetui.domain.records import RecordLike, RecordRef, as_record
from sharetui.domain.roles import ROLE_ACCESS, Access, EntityType, GroupLevel, Role
from sharetui.domain.time import from_db, iso, to_db
from sharetui.errors import NotFound, UsageError
from sharetui.sdk.facade import RecordView

if TYPE_CHECKING:
    from sharetui.core.service import Core


# ``view`` not given: load it if an access check asks for it.
LOAD: Any = object()
_USER_ID_SQL = Statement("SELECT id FROM users WHERE username = ?")


@dataclass
class Decision:
    """What :meth:`AccessService.explain` found."""

    user: str
    record: RecordRef
    level: Access
    reasons: list[str] = field(default_factory=list)
    denials: list[str] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)

    def allows(self, action: Access) -> bool:
        # Denials have already lowered ``level``: a denied read leaves NONE.
        return self.level >= action

    def as_dict(self, action: Access | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "user": self.user,
            "entity": self.record.entity.value,
            "entity_id": self.record.id,
            "level": self.level.label,
            "reasons": list(self.reasons),
            "denials": list(self.denials),
            "grants": self.grants,
        }
        if action is not None:
            out["action"] = action.label
            out["allowed"] = self.allows(action)
        return out


@dataclass
class VisibleRow:
    id: int
    values: dict[str, Any]
    reach: str
    level: Access


@dataclass
class Page:
    rows: list[VisibleRow]
    next_cursor: str | None


class AccessService:
    def __init__(self, core: Core) -> None:
        self.core = core

    # -- the hot path ------------------------------------------------------
    def _user_id(self, user: User | int | str) -> int:
        if isinstance(user, int) and not isinstance(user, bool):
            return user
        if isinstance(user, User):
            return user.id
        row = _USER_ID_SQL.one((str(user).strip().lower(),))
        if row is None:
            raise NotFound(f"unknown user {user!r}")
        return row[0]

    def decide(self, user_id: int, record: RecordRef, now: datetime | None = None):
        """The rule set's decision (an ``AccessDecision``), before access checks.

        The rule set is the ``sharetui_access_level`` hook; the default plugin
        answers unless a plugin replaces it.
        """
        at = now or self.core.clock.now()
        batch = batch_of(self.core.db)
        if batch is not None:  # the rule set reads the user's grants on the record: none held back
            batch.settle("grants", "holder", (record.entity.value, record.id, user_id))
        decision = self.core.plugins.access_level(user_id, record, at)
        if decision is None or decision.user is None:
            raise NotFound(f"unknown user id {user_id}")
        return decision

    def view_for_checks(self, ref: RecordRef, view: Any = LOAD) -> RecordView | None:
        """The record's view when an access check asks for one (``view``: one loaded
        already, with the rest of a list's page), else None."""
        if view is not LOAD:
            return view
        if not self.core.plugins.wants_record_view():
            return None
        return load_record_view(ref)

    def level(self, user: User | int | str, record: RecordLike, *, view: Any = LOAD) -> Access:
        """Effective level after access checks: a deny of read gives NONE, of edit READ.

        ``view``: the record's :class:`RecordView` for the checks, when the caller loaded
        it with others (a list's page); by default it is loaded here if a check asks."""
        ref = as_record(record)
        decision = self.decide(self._user_id(user), ref)
        host = self.core.plugins
        if not host.has_access_checks():
            return decision.level
        if not decision.user.active:  # a deactivated user has no access, whatever a plugin allows
            return Access.NONE
        seen = self.view_for_checks(ref, view)
        for action in (Access.EDIT, Access.READ):
            if self._checked(decision, ref, action, seen):
                return action
        return Access.NONE

    def can(self, user: User | int | str, record: RecordLike, action: Access | str = Access.READ) -> bool:
        """May ``user`` do ``action`` (read or edit) on ``record`` now?

        The rule set decides, then every access check is asked: a deny always
        wins (and a check that fails denies); an allow grants the action.
        """
        need = action if isinstance(action, Access) else Access.parse(action)
        if need is Access.NONE:
            raise UsageError("action must be read or edit")
        ref = record if type(record) is RecordRef else as_record(record)
        uid = user if type(user) is int else self._user_id(user)
        return self._allowed(self.decide(uid, ref), ref, (need,))[0]

    def can_read_and_edit(self, user: User | int | str, record: RecordLike) -> tuple[bool, bool]:
        """``(can(user, record, READ), can(user, record, EDIT))`` from one decision of the
        rule set (each action's access checks asked as :meth:`can` asks them)."""
        ref = as_record(record)
        decision = self.decide(self._user_id(user), ref)
        read, edit = self._allowed(decision, ref, (Access.READ, Access.EDIT))
        return read, edit

    def _allowed(self, decision: Any, ref: RecordRef, needs: tuple[Access, ...]) -> list[bool]:
        """Whether the rule set's ``decision`` and the access checks allow each action."""
        host = self.core.plugins
        if not host.has_access_checks():
            return [decision.level >= need for need in needs]
        if not decision.user.active:  # a deactivated user has no access, whatever a plugin allows
            return [False for _ in needs]
        seen = self.view_for_checks(ref)
        return [self._checked(decision, ref, need, seen) for need in needs]

    def _checked(self, decision: Any, ref: RecordRef, action: Access, seen: RecordView | None) -> bool:
        """Does ``action`` pass the access checks, given the rule set's ``decision``? A deny
        always wins (and a check that fails denies); an allow grants the action."""
        allowed = decision.level >= action
        checks = self.core.plugins.check_access(decision.user, ref, action.label, decision, seen)
        for verdict, _reason in checks:
            if verdict == "deny":
                return False
            allowed = True
        return allowed

    # -- explanations --------------------------------------------------------
    def explain(self, user: User | int | str, record: RecordLike, *, actor: User | None) -> Decision:
        """Every source of access the user has to the record, in words.

        ``actor`` asks: they may explain themselves, admins and sales managers anyone
        (DESIGN §9), and only for a record ``actor`` may read (else :class:`NotReadable`,
        as for a record that does not exist).
        """
        ref = as_record(record)
        u = self.core.users.get(user)
        self.core.gate.require_check_of(actor, u)
        self.core.gate.require_metadata(actor, ref)
        row = self.core.records.get(ref)
        now = self.core.clock.now()
        decision = Decision(user=u.username, record=ref, level=Access.NONE)
        if not u.active:
            decision.denials.append(f"{u.username} is deactivated")
            return decision
        role_level = ROLE_ACCESS.get(Role(u.role), Access.NONE)
        levels = [Access.NONE]
        if role_level:
            decision.reasons.append(f"role {u.role}: {role_level.label} on all records")
            levels.append(role_level)
        if row.owner_id == u.id:
            decision.reasons.append(f"owner of {ref}: edit")
            levels.append(Access.EDIT)
        for group_name, my_level, _owner_level in self._shared_groups(u.id, row.owner_id):
            gives = my_level.grants
            if gives and row.owner_id != u.id:
                owner = User.get_by_id(row.owner_id).username
                decision.reasons.append(
                    f"sales group {group_name} ({my_level.label}) with owner {owner}: {gives.label}"
                )
                levels.append(gives)
        for grant in self.active_grants(ref, user_id=u.id, now=now):
            ctx = f" in context of activity {grant['context']}" if grant["context"] else ""
            decision.reasons.append(
                f"shared {grant['access']}{ctx} until {grant['expires_at']} "
                f"(grant {grant['id']}, {grant['source']})"
            )
            decision.grants.append(grant)
            levels.append(Access.parse(grant["access"]))
        decision.level = max(levels)
        host = self.core.plugins
        rules = self.decide(u.id, ref, now)
        rule_set = host.rule_set()
        if rule_set != BUILTIN_RULE_SET:
            # A plugin replaced the rule set: say what it decided, as can() does.
            decision.level = rules.level
            decision.grants = []
            decision.reasons = [
                f"rule set {rule_set}: {src} gives {lvl.label}" for src, lvl in rules.sources.items()
            ]
        if host.has_access_checks():
            seen = self.view_for_checks(ref)
            for action in (Access.READ, Access.EDIT):
                for verdict, reason in host.check_access(rules.user, ref, action.label, rules, seen):
                    text = f"{reason} ({action.label})"
                    if verdict == "deny" and text not in decision.denials:
                        decision.denials.append(text)
                    elif verdict == "allow" and decision.level < action:
                        decision.reasons.append(f"plugin {text}")
                        decision.level = action
            if any(d.endswith("(read)") for d in decision.denials):
                decision.level = Access.NONE
            elif any(d.endswith("(edit)") for d in decision.denials):
                decision.level = min(decision.level, Access.READ)
        if not decision.reasons:
            decision.reasons.append("no role, ownership, group or active share gives access")
        return decision

    def _shared_groups(self, user_id: int, owner_id: int) -> list[tuple[str, GroupLevel, GroupLevel]]:
        rows = Statement(
            """
            SELECT sg.name, gm1.level, gm2.level FROM group_members gm1
              JOIN group_members gm2 ON gm2.group_id = gm1.group_id
              JOIN sales_groups sg ON sg.id = gm1.group_id
             WHERE gm1.user_id = ? AND gm2.user_id = ? ORDER BY sg.name
            """
        ).all((user_id, owner_id))
        return [(name, GroupLevel(a), GroupLevel(b)) for name, a, b in rows]

    def active_grants(
        self, record: RecordLike, *, user_id: int | None = None, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Grants that give access now (active and unexpired), as dicts."""
        ref = as_record(record)
        at = to_db(now or self.core.clock.now())
        query = (
            Grant.select(Grant, User.username)
            .join(User)
            .where(
                (Grant.entity_type == ref.entity.value)
                & (Grant.entity_id == ref.id)
                # ``state || ''``: the same test, but SQLite (never ANALYZEd) then reads the
                # record's grants by its index instead of every live grant of the company
                # through (state, expires_at): 6 ms a call on 4,000 grants (db/sql.py).
                & (Grant.state.concat("") == "active")
                & (Grant.expires_at > at)
            )
            .order_by(Grant.expires_at, Grant.id)
        )
        if user_id is not None:
            query = query.where(Grant.user == user_id)
        return [grant_dict(g, now or self.core.clock.now()) for g in query]

    # -- lists -------------------------------------------------------------
    def visible(
        self,
        user: User | int | str,
        entity: EntityType | str,
        *,
        after: str | None = None,
        limit: int = 50,
        search: str | None = None,
        sort: str = "id",
    ) -> Page:
        """One keyset page of the records ``user`` can see, with how they reach each.

        ``sort`` is a column of :data:`sharetui.domain.sorts.SORT_COLUMNS` (``name``,
        ``owner``, ``updated``, ...), ``-column`` descending: text ignores case and ties
        go by id; ``after`` is the ``next_cursor`` of the previous page.
        """
        from sharetui.core.access.listing import visible_page

        return visible_page(
            self.core,
            self._user_id(user),
            EntityType.parse(entity) if isinstance(entity, str) else entity,
            after=after,
            limit=limit,
            search=search,
            sort=sort,
        )


def grant_dict(g: Grant, now: datetime) -> dict[str, Any]:
    """A grant as the CLI's JSON shows it (DESIGN §7), its state decided at ``now``: an
    active grant whose expiry has passed is ``expired`` whether or not the sweeper ran."""
    user = g.user.username if isinstance(getattr(g, "user", None), User) else None
    if user is None:
        user = User.get_by_id(g.user_id).username
    return {
        "id": g.id,
        "entity": g.entity_type,
        "entity_id": g.entity_id,
        "user": user,
        "access": Access(g.access).label,
        "context": g.context_activity_id,
        "starts_at": iso(g.starts_at),
        "expires_at": iso(g.expires_at),
        "state": "expired" if g.state == "active" and from_db(g.expires_at) <= now else g.state,
        "source": g.source,
        "until_completed": bool(g.until_completed),
        "request_id": g.request_id,
    }


__all__ = [
    "AccessService",
    "Activity",
    "Decision",
    "Page",
    "RecordLike",
    "RecordRef",
    "VisibleRow",
    "as_record",
    "grant_dict",
]

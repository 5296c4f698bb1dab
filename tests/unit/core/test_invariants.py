"""Access invariants, property-based: random small companies and random
sequences of changes, with ``core.access`` checked after every step against
an independent model of DESIGN .1 and .3 kept here in plain Python.

The model never calls the product to decide access. It knows: roles (admin
and sales_manager edit everything, marketing reads everything, sales nothing
by role), ownership (edit), sales groups (a member at ``view`` reads, at
``modify``/``manage`` edits the records of the other members of a group they
share; ``own`` gives nothing; never across groups), and grants (an active
grant whose expiry is still ahead gives its access; expired — swept or not —
and revoked grants give nothing). A deactivated user has nothing. Plugin
access checks come last: a deny always wins, a check that raises denies, and
an allow grants beyond the rules (never to a deactivated user).

Each step is one of: a share or a renewal (core or batch API; lead with or
without an activity context, ``until_completed``, opportunity), a revoke (one
context or all), a group join or leave, a role change, a deactivation or an
activation, an activity posted, completed, reopened or deleted, a record edit
or owner change, an automation created/published/paused (by every role), an
automation share acting for a person (a random user posts a "Handoff" activity on
a lead; the published share automation on it shares the lead with the activity's
owner, and the model says it happens only when that user may share the lead, or
the automation says ``on_behalf_of = "automation"``, DESIGN §9), the
``owners_can_share`` setting flipped, the clock moved forward, back or onto a
grant's expiry, a sweep, and the test plugins switched on or off. Every
attempt must succeed exactly when the model says it may (a refused share or
revoke must leave every grant as it was). After every step, for every (user,
record) pair, ``level``, ``can(read)`` and ``can(edit)`` must equal the
model's answer, and ``visible`` must list exactly the records the rules reach
less those a plugin denies; a rotating sample of pairs also goes through
``explain`` (what ``sharetui check`` prints).

The run is bounded for CI; ``SHARETUI_INVARIANT_EXAMPLES`` and
``SHARETUI_INVARIANT_STEPS`` raise the bounds (tests/stress runs longer).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from conftest import PG_URL, T0
from sharetui import hookimpl
from sharetui.clock import FrozenClock
from sharetui.core.service import Core
from sharetui.core.sharing.batch import BatchAPI
from sharetui.db import models
from sharetui.db.connection import is_sqlite
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.errors import NotReadable, PermissionDenied, SharetuiError, UsageError
from sharetui.host import PluginHost
from sharetui.host.isolation import Limits
from sharetui.runtime import open_core
from sharetui.sdk import allow, deny
from sharetui.testing import plugin_registered

NONE, READ, EDIT = 0, 1, 2
ROLES = ("admin", "sales_manager", "marketing", "sales")
ROLE_LEVEL = {"admin": EDIT, "sales_manager": EDIT, "marketing": READ, "sales": NONE}
GROUP_LEVELS = ("own", "view", "modify", "manage")
GROUP_GIVES = {"own": NONE, "view": READ, "modify": EDIT, "manage": EDIT}
GROUPS = ("North", "South")
DURATIONS = {
    "1m": timedelta(minutes=1),
    "30m": timedelta(minutes=30),
    "2h": timedelta(hours=2),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "2w": timedelta(weeks=2),
    "90d": timedelta(days=90),
    "6y": None,  # past the 5-year maximum: the request fails
    "0": None,  # under the 1-minute minimum: the request fails
}
CLOCK_MOVES = [timedelta(minutes=m) for m in (1, 29, 30, 31, 60, 119, 120, 60 * 24, 60 * 24 * 3)] + [
    timedelta(days=d) for d in (14, 20, 90, 100)
]
ROOT = "root"  # the admin that sets the company up; never demoted or deactivated

AUTOMATION = """
name = "{name}"
description = "invariant test automation"

[trigger]
type = "new_lead"

[[actions]]
type = "notify"
to = "root"
message = "new lead"
"""

# The share automation a person's change fires (DESIGN §9): each example draws whether it
# acts for that person (the default) or as the automation.
HANDOFF = "Handoff share"
HANDOFF_AUTOMATION = """
name = "Handoff share"
status = "published"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Handoff"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "2w"
access = "edit"
on_behalf_of = "{mode}"
"""

# Each step is one of these actions; repeats weigh them.
ACTIONS = (
    *["share"] * 3,
    *["share_plausibly"] * 5,
    *["revoke"] * 2,
    *["revoke_plausibly"] * 3,
    "group_change",
    *["user_change"] * 2,
    *["activity_change"] * 2,
    *["end_a_context"] * 2,
    *["record_change"] * 2,
    *["manage_automation"] * 2,
    *["automation_share"] * 2,
    *["setting_change"] * 2,
    *["move_clock"] * 3,
    "sweep",
)

# What the runs did, for the report ("invariant cases tried").
STATS: Counter[str] = Counter()


# -- the independent model -----------------------------------------------------------------


@dataclass
class MUser:
    id: int
    role: str
    active: bool = True


@dataclass
class MActivity:
    lead: int
    owner: str | None
    status: str = "open"
    deleted: bool = False


@dataclass
class MGrant:
    access: int
    expires: datetime
    until_completed: bool
    state: str = "active"  # active | expired | revoked


Key = tuple[str, int]  # ("lead" | "opportunity", id)


@dataclass
class Model:
    now: datetime
    users: dict[str, MUser] = field(default_factory=dict)
    members: dict[tuple[str, str], str] = field(default_factory=dict)  # (user, group) -> level
    owners: dict[Key, str] = field(default_factory=dict)
    activities: dict[int, MActivity] = field(default_factory=dict)
    # (entity, id, user, context activity or 0) -> grant
    grants: dict[tuple[str, int, str, int], MGrant] = field(default_factory=dict)
    owners_can_share: bool = True
    caps: dict[str, int] = field(default_factory=lambda: {"lead": 2000, "opportunity": 2000})
    handoff_mode: str = "trigger"  # the share automation's on_behalf_of
    handoff_published: bool = True
    plugins_on: bool = False
    deny_read: set[tuple[str, Key]] = field(default_factory=set)
    deny_edit: set[tuple[str, Key]] = field(default_factory=set)
    raises: set[tuple[str, Key]] = field(default_factory=set)
    allow_read: set[tuple[str, Key]] = field(default_factory=set)
    allow_edit: set[tuple[str, Key]] = field(default_factory=set)

    # -- access -------------------------------------------------------------------------
    def gives(self, grant: MGrant) -> bool:
        return grant.state == "active" and grant.expires > self.now

    def rules_level(self, user: str, rec: Key) -> int:
        u = self.users[user]
        if not u.active:
            return NONE
        owner = self.owners[rec]
        levels = [ROLE_LEVEL[u.role]]
        if owner == user:
            levels.append(EDIT)
        for group in GROUPS:
            mine = self.members.get((user, group))
            if mine is not None and (owner, group) in self.members:
                levels.append(GROUP_GIVES[mine])
        for (etype, eid, who, _ctx), grant in self.grants.items():
            if (etype, eid) == rec and who == user and self.gives(grant):
                levels.append(grant.access)
        return max(levels)

    def level(self, user: str, rec: Key) -> int:
        level = self.rules_level(user, rec)
        if not self.plugins_on or not self.users[user].active:
            return level
        pair = (user, rec)
        denied_read = pair in self.deny_read or pair in self.raises
        edit = (level >= EDIT or pair in self.allow_edit) and not denied_read and pair not in self.deny_edit
        read = (level >= READ or pair in self.allow_read or pair in self.allow_edit) and not denied_read
        return EDIT if edit else READ if read else NONE

    # -- who may share ----------------------------------------------------------------------
    def may_manage_shares(self, requester: str | None, rec: Key) -> bool:
        """May ``requester`` share and revoke ``rec``? ``None`` is the system (an
        automation acting as itself): it may."""
        if requester is None:
            return True
        u = self.users[requester]
        if not u.active:
            return False
        if self.level(requester, rec) < READ:
            return False  # one never shares (or revokes) what one may not read (DESIGN §9)
        if u.role in ("admin", "sales_manager"):
            return True
        return u.role == "sales" and self.owners[rec] == requester and self.owners_can_share

    def share_allowed(
        self, requester: str | None, recipient: str, rec: Key, duration: str, ctx: int, until: bool
    ) -> bool:
        if not self.may_manage_shares(requester, rec):
            return False
        r = self.users[recipient]
        if not r.active or r.role != "sales" or self.owners[rec] == recipient:
            return False
        if ctx:
            act = self.activities.get(ctx)
            if act is None or act.deleted or act.lead != rec[1] or act.owner != recipient:
                return False
            if until and act.status == "completed":
                return False
        if DURATIONS[duration] is None:
            return False
        held = {(e, i) for (e, i, who, _c), g in self.grants.items() if who == recipient and self.gives(g)}
        held = {k for k in held if k[0] == rec[0]}
        return rec in held or len(held) < self.caps[rec[0]]

    # -- ending grants ------------------------------------------------------------------------
    def end_early(self, match) -> None:
        """What ``_end_early`` does: lapsed grants become expired, live ones revoked."""
        for key, grant in self.grants.items():
            if grant.state == "active" and match(key, grant):
                grant.state = "revoked" if grant.expires > self.now else "expired"


# -- test plugins (registered through the SDK) -----------------------------------------------------


class DenyPairs:
    """Denies reading (or only editing) chosen (user, record) pairs."""

    def __init__(self, model: Model) -> None:
        self.model = model

    @hookimpl
    def sharetui_check_access(self, user, record, action):
        pair = (user.username, (record.entity.value, record.id))
        if pair in self.model.deny_read:
            return deny("invariant test: no read")
        if action == "edit" and pair in self.model.deny_edit:
            return deny("invariant test: no edit")
        return None


class AllowPairs:
    """Allows reading (or reading and editing) chosen pairs, even where the rules do not."""

    def __init__(self, model: Model) -> None:
        self.model = model

    @hookimpl
    def sharetui_check_access(self, user, record, action):
        pair = (user.username, (record.entity.value, record.id))
        if pair in self.model.allow_edit or (action == "read" and pair in self.model.allow_read):
            return allow("invariant test: allowed")
        return None


class RaisingCheck:
    """An access check that fails for chosen pairs (and answers nothing otherwise)."""

    def __init__(self, model: Model) -> None:
        self.model = model

    @hookimpl
    def sharetui_check_access(self, user, record):
        if (user.username, (record.entity.value, record.id)) in self.model.raises:
            raise RuntimeError("invariant test: the check broke")
        return None


# -- a fresh database per example -----------------------------------------------------------------

TABLES = [m._meta.table_name for m in models.BaseModel.__subclasses__() if m is not models.SchemaMigration]


def fresh_core(url: str, clock: FrozenClock) -> Core:
    """A Core on the test's database (the ``db_url`` fixture's), emptied of the last example's data."""
    host = PluginHost.load(entry_points=False)
    # The model's raising check denies only its pairs: it is never set aside here, and no
    # budget runs out on a busy machine (tests/unit/host/test_plugin_failures.py covers both).
    host.configure(Limits(check_ms=60_000, action_ms=600_000, failure_limit=1_000_000))
    core = open_core(url, clock, plugins=host)
    with core.db.atomic():
        if is_sqlite():
            core.db.execute_sql("PRAGMA defer_foreign_keys = ON")
            for table in TABLES:
                core.db.execute_sql(f'DELETE FROM "{table}"')
        else:
            # Durability is not under test: commits need not wait for the disk (many small ones).
            core.db.execute_sql("SET synchronous_commit TO OFF")
            core.db.execute_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in TABLES))
    return core


# -- strategies ----------------------------------------------------------------------------------


@st.composite
def companies(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(3, 6))
    roles = draw(
        st.lists(
            st.sampled_from(("sales", "sales", "sales", "admin", "sales_manager", "marketing")),
            min_size=n,
            max_size=n,
        )
    )
    names = [f"u{i}" for i in range(n)]
    memberships = {}
    for name in names:
        for group in GROUPS:
            level = draw(st.sampled_from((None, None, *GROUP_LEVELS)))
            if level is not None:
                memberships[(name, group)] = level
    everyone = [ROOT, *names]
    leads = draw(st.lists(st.sampled_from(names), min_size=2, max_size=4))
    opps = draw(st.lists(st.tuples(st.integers(0, len(leads) - 1), st.sampled_from(names)), max_size=2))
    sellers = [name for name in names if roles[names.index(name)] == "sales"]
    owners = st.sampled_from([None, *names, *sellers, *sellers])
    acts = draw(st.lists(st.tuples(st.integers(0, len(leads) - 1), owners), max_size=4))
    pairs = st.tuples(st.sampled_from(everyone), st.integers(0, 5))
    return {
        "roles": dict(zip(names, roles, strict=True)),
        "memberships": memberships,
        "leads": leads,
        "opps": opps,
        "activities": acts,
        "lead_cap": draw(st.sampled_from((2000, 2000, 1, 2))),
        "opp_cap": draw(st.sampled_from((2000, 1))),
        "deny_read": draw(st.lists(pairs, max_size=3)),
        "deny_edit": draw(st.lists(pairs, max_size=3)),
        "raises": draw(st.lists(pairs, max_size=2)),
        "allow_read": draw(st.lists(pairs, max_size=3)),
        "allow_edit": draw(st.lists(pairs, max_size=3)),
        "plugins_on": draw(st.booleans()),
        "handoff_mode": draw(st.sampled_from(("trigger", "trigger", "automation"))),
    }


# -- the machine ---------------------------------------------------------------------------------


class AccessMachine(RuleBasedStateMachine):
    db_url: str = ""  # set by the test (the db_url fixture)

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(T0)
        self.core = fresh_core(self.db_url, self.clock)
        self.model = Model(now=T0)
        self.plugins: list[Any] = []
        self.explained = 0
        # The last step was refused: it changed no grant (checked) and nothing else the model
        # knows, so the full check is skipped; any change it did make shows at the next check.
        self.refused = False
        STATS["examples"] += 1

    # -- helpers ---------------------------------------------------------------------------------
    def user(self, name: str) -> models.User:
        return models.User.get_by_id(self.model.users[name].id)

    def ref(self, rec: Key) -> RecordRef:
        return RecordRef(EntityType(rec[0]), rec[1])

    def records(self) -> list[Key]:
        return sorted(self.model.owners)

    def active_users(self) -> list[str]:
        return sorted(n for n, u in self.model.users.items() if u.active)

    def grants_snapshot(self) -> list[tuple[Any, ...]]:
        return list(
            models.Grant.select(
                models.Grant.id, models.Grant.state, models.Grant.access, models.Grant.expires_at
            )
            .order_by(models.Grant.id)
            .tuples()
        )

    def pick(self, data: st.DataObject, preferred: list[Any], anything: list[Any], label: str) -> Any:
        """One of ``preferred`` (the cases that matter) half the time, else one of ``anything``."""
        if preferred and data.draw(st.booleans(), label=f"{label}: a telling one"):
            return data.draw(st.sampled_from(sorted(preferred)), label=label)
        return data.draw(st.sampled_from(sorted(anything)), label=label)

    def holders(self) -> list[str]:
        """Users that hold a live grant (what deactivation and role changes must end)."""
        return sorted({k[2] for k, g in self.model.grants.items() if self.model.gives(g)} - {ROOT})

    def context_activities(self) -> list[int]:
        """Live activities that live grants were made in (what completion and deletion end)."""
        m = self.model
        return sorted(
            {k[3] for k, g in m.grants.items() if k[3] and m.gives(g) and not m.activities[k[3]].deleted}
        )

    def set_plugins(self, on: bool) -> None:
        host = self.core.plugins
        if on and not self.plugins:
            for name, plugin in (
                ("invariant-deny", DenyPairs(self.model)),
                ("invariant-raise", RaisingCheck(self.model)),
                ("invariant-allow", AllowPairs(self.model)),
            ):
                cm = plugin_registered(host, plugin, name=name)
                cm.__enter__()
                self.plugins.append(cm)
        elif not on:
            while self.plugins:
                self.plugins.pop().__exit__(None, None, None)
        self.model.plugins_on = on

    def teardown(self) -> None:
        self.set_plugins(False)
        self.core.close()

    # -- the company ---------------------------------------------------------------------------
    @initialize(spec=companies())
    def make_company(self, spec: dict[str, Any]) -> None:
        users, records, m = self.core.users, self.core.records, self.model
        root = users.add(ROOT, role="admin", actor=None)
        m.users[ROOT] = MUser(root.id, "admin")
        for name, role in spec["roles"].items():
            groups = {g: lvl for (who, g), lvl in spec["memberships"].items() if who == name}
            m.users[name] = MUser(users.add(name, role=role, groups=groups, actor=root).id, role)
        m.members = dict(spec["memberships"])
        records.add_activity_type("Meeting", actor=root)
        records.add_activity_type("Handoff", actor=root)
        m.handoff_mode = spec["handoff_mode"]
        autos = self.core.automations
        autos.add(autos.parse(HANDOFF_AUTOMATION.format(mode=m.handoff_mode)), actor=root)
        # Long runs post many handoffs on few leads: the loop guard is not under test here.
        self.core.settings.set("automation_daily_limit", 1_000_000, actor=None)
        lead_ids = []
        for i, owner in enumerate(spec["leads"]):
            lead = records.add_lead(name=f"Lead {i}", owner=owner, actor=root)
            lead_ids.append(lead.id)
            m.owners[("lead", lead.id)] = owner
        for i, (lead_index, owner) in enumerate(spec["opps"]):
            opp = records.add_opportunity(
                lead=lead_ids[lead_index], name=f"Opp {i}", type="Home Loan", owner=owner, actor=root
            )
            m.owners[("opportunity", opp.id)] = owner
        for lead_index, owner in spec["activities"]:
            act = records.post_activity(
                ("lead", lead_ids[lead_index]), type="Meeting", owner=owner, actor=root
            )
            m.activities[act.id] = MActivity(lead_ids[lead_index], owner)
        if spec["lead_cap"] != 2000:
            self.core.settings.set("share_cap_leads", spec["lead_cap"], actor=None)
        if spec["opp_cap"] != 2000:
            self.core.settings.set("share_cap_opportunities", spec["opp_cap"], actor=None)
        m.caps = {"lead": spec["lead_cap"], "opportunity": spec["opp_cap"]}
        recs = self.records()
        for target, pairs in (
            (m.deny_read, spec["deny_read"]),
            (m.deny_edit, spec["deny_edit"]),
            (m.raises, spec["raises"]),
            (m.allow_read, spec["allow_read"]),
            (m.allow_edit, spec["allow_edit"]),
        ):
            target.update((who, recs[i % len(recs)]) for who, i in pairs)
        self.set_plugins(spec["plugins_on"])

    # -- one step: an action drawn by weight ------------------------------------------------------
    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One action, drawn by weight (one rule rather than many: Hypothesis would
        otherwise spend most steps on whichever few rules an example happens to favour)."""
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        STATS[f"action {action}"] += 1
        self.refused = False
        getattr(self, action)(data)

    # -- sharing ---------------------------------------------------------------------------------
    def share(self, data: st.DataObject) -> None:
        """Anyone shares anything with anyone, in any context: mostly refused."""
        m = self.model
        requester = data.draw(st.sampled_from(sorted(m.users)), label="requester")
        recipient = data.draw(st.sampled_from(sorted(m.users)), label="recipient")
        rec = data.draw(st.sampled_from(self.records()), label="record")
        duration = data.draw(st.sampled_from(sorted(DURATIONS)), label="duration")
        ctx = 0
        if rec[0] == "lead" and m.activities and data.draw(st.booleans(), label="in context"):
            ctx = data.draw(st.sampled_from(sorted(m.activities)), label="context")
        self._share(data, requester, recipient, rec, duration, ctx)

    def share_plausibly(self, data: st.DataObject) -> None:
        """An admin or the owner shares with a sales user for a valid time, half the time in an
        activity of the recipient's on that lead: mostly granted (or renewed)."""
        m = self.model
        in_context = [
            (("lead", a.lead), i)
            for i, a in m.activities.items()
            if not a.deleted
            and a.owner
            and m.users[a.owner].role == "sales"
            and a.owner != m.owners[("lead", a.lead)]
        ]
        chosen = self.pick(data, in_context, [None], "in context")
        if chosen is not None:
            rec, ctx = chosen
            recipient = m.activities[ctx].owner
        else:
            rec, ctx = data.draw(st.sampled_from(self.records()), label="record"), 0
            sales = sorted(n for n, u in m.users.items() if u.role == "sales" and n != m.owners[rec])
            recipient = data.draw(st.sampled_from(sales or sorted(m.users)), label="recipient")
        requester = data.draw(st.sampled_from((ROOT, m.owners[rec])), label="requester")
        valid = sorted(d for d, delta in DURATIONS.items() if delta is not None)
        duration = data.draw(st.sampled_from(valid), label="duration")
        self._share(data, requester, recipient, rec, duration, ctx)

    def _share(
        self, data: st.DataObject, requester: str, recipient: str, rec: Key, duration: str, ctx: int
    ) -> None:
        m = self.model
        access = data.draw(st.sampled_from(("read", "edit")), label="access")
        until = bool(ctx) and data.draw(st.sampled_from((True, True, False)), label="until completed")
        via = data.draw(st.sampled_from(("core", "batch")), label="via")
        expected = m.share_allowed(requester, recipient, rec, duration, ctx, until)
        before = self.grants_snapshot()
        if via == "core":
            result = self.core.sharing.share(
                rec[0],
                rec[1],
                recipient,
                requester=self.user(requester),
                duration=duration,
                access=access,
                context=ctx or None,
                until_completed=until,
            )
            ok, reason = result.ok, result.reason
        else:
            item: dict[str, Any] = {
                "UserId": recipient,
                "Entity": 1 if rec[0] == "lead" else 5,
                "EntityId": rec[1],
                "AccessType": 1 if access == "read" else 2,
                "DurationInMinutes": duration,
            }
            if ctx:
                item["ContextEntityId"] = ctx
                item["UntilCompleted"] = until
            [answer] = BatchAPI(self.core).share([item], requester=self.user(requester))
            ok, reason = answer["status"] == "completed", answer["reason"]
        assert ok is expected, (requester, recipient, rec, access, duration, ctx, until, reason)
        STATS[f"share {'completed' if ok else 'failed'}"] += 1
        if not ok:
            assert self.grants_snapshot() == before, "a failed share changed a grant"
            self.refused = True
            if m.users[requester].role == "sales" and m.owners[rec] != requester:
                STATS["re-share by a non-owner sales user refused"] += 1
            return
        key = (rec[0], rec[1], recipient, ctx)
        renewing = key in m.grants and m.grants[key].state == "active"
        STATS["renewals" if renewing else "grants"] += 1
        if until:
            STATS["until-completed shares"] += 1
        m.grants[key] = MGrant(EDIT if access == "edit" else READ, m.now + DURATIONS[duration], until)

    def revoke(self, data: st.DataObject) -> None:
        """Anyone revokes any user's share of any record: mostly refused."""
        m = self.model
        requester = data.draw(st.sampled_from(sorted(m.users)), label="requester")
        rec = data.draw(st.sampled_from(self.records()), label="record")
        who = data.draw(st.sampled_from(sorted(m.users)), label="user")
        all_contexts = rec[0] == "lead" and data.draw(st.booleans(), label="all contexts")
        ctx = 0
        if rec[0] == "lead" and not all_contexts and m.activities and data.draw(st.booleans(), label="ctx"):
            ctx = data.draw(st.sampled_from(sorted(m.activities)), label="context")
        self._revoke(data, requester, rec, who, ctx, all_contexts)

    def revoke_plausibly(self, data: st.DataObject) -> None:
        """An admin or the owner revokes a grant that exists (live, lapsed or ended)."""
        m = self.model
        if not m.grants:
            return
        etype, eid, who, ctx = data.draw(st.sampled_from(sorted(m.grants)), label="grant")
        rec = (etype, eid)
        requester = data.draw(st.sampled_from((ROOT, m.owners[rec])), label="requester")
        all_contexts = data.draw(st.booleans(), label="all contexts")
        self._revoke(data, requester, rec, who, 0 if all_contexts else ctx, all_contexts)

    def _revoke(
        self, data: st.DataObject, requester: str, rec: Key, who: str, ctx: int, all_contexts: bool
    ) -> None:
        m = self.model
        via = data.draw(st.sampled_from(("core", "batch")), label="via")

        def matches(key: tuple[str, int, str, int], grant: MGrant) -> bool:
            return key[:3] == (*rec, who) and (all_contexts or key[3] == ctx) and m.gives(grant)

        targets = [g for k, g in m.grants.items() if matches(k, g)]
        expected = m.may_manage_shares(requester, rec) and bool(targets)
        before = self.grants_snapshot()
        if via == "core":
            result = self.core.sharing.revoke(
                rec[0],
                rec[1],
                who,
                requester=self.user(requester),
                context=ctx or None,
                all_contexts=all_contexts,
            )
            ok, reason = result.ok, result.reason
        else:
            item: dict[str, Any] = {"UserId": who, "Entity": 1 if rec[0] == "lead" else 5, "EntityId": rec[1]}
            if ctx:
                item["ContextEntityId"] = ctx
            if all_contexts:
                item["AllContexts"] = True
            [answer] = BatchAPI(self.core).revoke([item], requester=self.user(requester))
            ok, reason = answer["status"] == "completed", answer["reason"]
        assert ok is expected, (requester, who, rec, ctx, all_contexts, reason)
        STATS[f"revoke {'completed' if ok else 'failed'}"] += 1
        if not ok:
            assert self.grants_snapshot() == before, "a failed revoke changed a grant"
            self.refused = True
            return
        for grant in targets:
            grant.state = "revoked"

    # -- changes to the company, grouped so that shares and revokes stay frequent ----------------
    def group_change(self, data: st.DataObject) -> None:
        group = data.draw(st.sampled_from(GROUPS), label="group")
        if data.draw(st.booleans(), label="join"):
            self.join_group(data, group, data.draw(st.sampled_from(GROUP_LEVELS), label="level"))
        else:
            self.leave_group(data, group)

    def user_change(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(("role", "deactivate", "activate")), label="kind")
        if kind == "role":
            self.change_role(data, data.draw(st.sampled_from(ROLES), label="role"))
        elif kind == "deactivate":
            self.deactivate(data)
        else:
            self.activate(data)

    def activity_change(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(("post", "complete", "reopen", "delete")), label="kind")
        if kind == "post":
            self.post_activity(data)
        elif kind == "delete":
            self.delete_activity(data)
        else:
            self.update_activity(data, "completed" if kind == "complete" else "open")

    def record_change(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(("edit", "edit", "owner", "add")), label="kind")
        if kind == "edit":
            self.edit_record(data, data.draw(st.sampled_from(("new", "qualified", "won")), label="stage"))
        elif kind == "owner":
            self.change_owner(data)
        else:
            self.add_lead(data)

    def setting_change(self, data: st.DataObject) -> None:
        if data.draw(st.booleans(), label="owners_can_share"):
            self.flip_owners_can_share()
        else:
            self.switch_plugins(data.draw(st.booleans(), label="plugins on"))

    # -- users and groups -----------------------------------------------------------------------
    def join_group(self, data: st.DataObject, group: str, level: str) -> None:
        who = data.draw(st.sampled_from(sorted(self.model.users)), label="user")
        self.core.users.join(who, group, level, actor=self.user(ROOT))
        self.model.members[(who, group)] = level

    def leave_group(self, data: st.DataObject, group: str) -> None:
        m = self.model
        in_group = sorted(u for (u, g) in m.members if g == group)
        who = data.draw(st.sampled_from(in_group or sorted(m.users)), label="user")
        if (who, group) in m.members:
            self.core.users.leave(who, group, actor=self.user(ROOT))
            del m.members[(who, group)]
        else:
            with pytest.raises((UsageError, SharetuiError)):
                self.core.users.leave(who, group, actor=self.user(ROOT))

    def change_role(self, data: st.DataObject, role: str) -> None:
        m = self.model
        who = self.pick(data, self.holders(), list(set(m.users) - {ROOT}), "user")
        self.core.users.set_role(who, role, actor=self.user(ROOT))
        if m.users[who].role == "sales" and role != "sales":
            m.end_early(lambda key, _g: key[2] == who)
        m.users[who].role = role

    def deactivate(self, data: st.DataObject) -> None:
        m = self.model
        who = self.pick(data, self.holders(), list(set(m.users) - {ROOT}), "user")
        if not m.users[who].active:
            with pytest.raises(UsageError):
                self.core.users.deactivate(who, actor=self.user(ROOT))
            return
        self.core.users.deactivate(who, actor=self.user(ROOT))
        m.users[who].active = False
        m.end_early(lambda key, _g: key[2] == who)
        STATS["deactivations"] += 1

    def activate(self, data: st.DataObject) -> None:
        m = self.model
        asleep = sorted(n for n, u in m.users.items() if not u.active)
        who = data.draw(st.sampled_from(asleep or sorted(m.users)), label="user")
        self.core.users.activate(who, actor=self.user(ROOT))
        m.users[who].active = True

    # -- records and activities -------------------------------------------------------------------
    def _attempt(self, allowed: bool, action, what: str, *, readable: bool = True) -> Any:
        """Run ``action``; it must succeed exactly when ``allowed``, and be refused otherwise:
        as a record that does not exist when the actor may not read it (DESIGN §9), else
        as a permission the actor lacks."""
        if allowed:
            STATS[f"{what} allowed"] += 1
            return action()
        with pytest.raises(PermissionDenied if readable else NotReadable):
            action()
        STATS[f"{what} refused"] += 1
        self.refused = True
        return None

    def post_activity(self, data: st.DataObject) -> None:
        m = self.model
        actor = data.draw(st.sampled_from(self.active_users()), label="actor")
        lead = data.draw(st.sampled_from([r for r in self.records() if r[0] == "lead"]), label="lead")
        owner = data.draw(st.sampled_from([None, *self.active_users()]), label="owner")
        act = self._attempt(
            m.level(actor, lead) == EDIT,
            lambda: self.core.records.post_activity(
                lead, type="Meeting", owner=owner, actor=self.user(actor)
            ),
            "post activity",
            readable=m.level(actor, lead) >= READ,
        )
        if act is not None:
            m.activities[act.id] = MActivity(lead[1], owner)

    def end_a_context(self, data: st.DataObject) -> None:
        """Complete (or delete) an activity that live shares were made in, as an admin or its owner."""
        m = self.model
        until = sorted({k[3] for k, g in m.grants.items() if k[3] and g.until_completed and m.gives(g)})
        candidates = [i for i in until if not m.activities[i].deleted] or self.context_activities()
        if not candidates:
            return
        ident = data.draw(st.sampled_from(candidates), label="activity")
        actor = data.draw(st.sampled_from(sorted({ROOT, m.activities[ident].owner or ROOT})), label="actor")
        if data.draw(st.sampled_from(("complete", "complete", "delete")), label="how") == "complete":
            self.update_activity(data, "completed", ident, actor)
        else:
            self.delete_activity(data, ident, actor)

    def update_activity(
        self, data: st.DataObject, status: str, ident: int | None = None, actor: str | None = None
    ) -> None:
        m = self.model
        live = sorted(i for i, a in m.activities.items() if not a.deleted)
        if not live:
            return
        ident = ident or self.pick(data, self.context_activities(), live, "activity")
        act = m.activities[ident]
        actor = actor or self.pick(data, [ROOT], self.active_users(), "actor")
        # Its owner may change it while they may read its lead; owning it is not enough once
        # that access ends, and a marketing owner only reads it (DESIGN §9).
        level = m.level(actor, ("lead", act.lead))
        owns = act.owner == actor and actor != ROOT and m.users[actor].role == "sales"
        allowed = (owns and level >= READ) or level == EDIT
        done = self._attempt(
            allowed,
            lambda: self.core.records.update_activity(ident, actor=self.user(actor), status=status),
            "update activity",
            readable=level >= READ,
        )
        if done is None:
            return
        if status == "completed" and act.status != "completed":
            ending = [k for k, g in m.grants.items() if k[3] == ident and g.until_completed and m.gives(g)]
            STATS["until-completed shares ended by completion"] += len(ending)
            m.end_early(lambda key, g: key[3] == ident and g.until_completed)
        act.status = status

    def delete_activity(
        self, data: st.DataObject, ident: int | None = None, actor: str | None = None
    ) -> None:
        m = self.model
        live = sorted(i for i, a in m.activities.items() if not a.deleted)
        if not live:
            return
        ident = ident or self.pick(data, self.context_activities(), live, "activity")
        actor = actor or self.pick(data, [ROOT], self.active_users(), "actor")
        level = m.level(actor, ("lead", m.activities[ident].lead))
        done = self._attempt(
            level == EDIT,
            lambda: self.core.records.delete_activity(ident, actor=self.user(actor)),
            "delete activity",
            readable=level >= READ,
        )
        if done is not None:
            m.activities[ident].deleted = True
            m.end_early(lambda key, _g: key[3] == ident)

    def edit_record(self, data: st.DataObject, stage: str) -> None:
        m = self.model
        actor = data.draw(st.sampled_from(self.active_users()), label="actor")
        rec = data.draw(st.sampled_from(self.records()), label="record")
        self._attempt(
            m.level(actor, rec) == EDIT,
            lambda: self.core.records.update_record(rec, actor=self.user(actor), values={"stage": stage}),
            "edit",
            readable=m.level(actor, rec) >= READ,
        )

    def change_owner(self, data: st.DataObject) -> None:
        m = self.model
        actor = data.draw(st.sampled_from(self.active_users()), label="actor")
        rec = data.draw(st.sampled_from(self.records()), label="record")
        holders = [k[2] for k, g in m.grants.items() if k[:2] == rec and m.gives(g) and m.users[k[2]].active]
        new = self.pick(data, holders, self.active_users(), "new owner")
        allowed = m.level(actor, rec) == EDIT and m.users[actor].role in ("admin", "sales_manager")
        done = self._attempt(
            allowed,
            lambda: self.core.records.update_record(rec, actor=self.user(actor), owner=new),
            "owner change",
            readable=m.level(actor, rec) >= READ,
        )
        if done is not None and new != m.owners[rec]:
            m.owners[rec] = new
            m.end_early(lambda key, _g: key[:3] == (*rec, new))

    def add_lead(self, data: st.DataObject) -> None:
        m = self.model
        if sum(1 for r in m.owners if r[0] == "lead") >= 6:
            return
        owner = data.draw(st.sampled_from(self.active_users()), label="owner")
        actor = data.draw(st.sampled_from([ROOT, *self.active_users()]), label="actor")
        # DESIGN §9: admins and sales managers create for anyone, sales users for themselves,
        # marketing nothing.
        role = m.users[actor].role
        allowed = role in ("admin", "sales_manager") or (role == "sales" and owner == actor)
        lead = self._attempt(
            allowed,
            lambda: self.core.records.add_lead(name="Late lead", owner=owner, actor=self.user(actor)),
            "create lead",
        )
        if lead is not None:
            m.owners[("lead", lead.id)] = owner

    # -- automations (admins only) -------------------------------------------------------------
    def manage_automation(self, data: st.DataObject) -> None:
        verb = data.draw(st.sampled_from(("create", "published", "paused")), label="verb")
        m = self.model
        actor = data.draw(st.sampled_from(sorted(m.users)), label="actor")
        allowed = m.users[actor].role == "admin" and m.users[actor].active
        autos = self.core.automations
        before = list(models.Automation.select(models.Automation.id, models.Automation.status).tuples())
        existing = [a for a, _ in before]
        if verb == "create" or not existing:
            name = f"auto {len(before) + 1} by {actor}"
            definition = autos.parse(AUTOMATION.format(name=name))
            self._attempt(allowed, lambda: autos.add(definition, actor=self.user(actor)), "automation create")
        else:
            ident = data.draw(st.sampled_from(existing), label="automation")
            self._attempt(
                allowed, lambda: autos.set_status(ident, verb, actor=self.user(actor)), f"automation {verb}"
            )
            if allowed and ident == autos.get(HANDOFF).id:
                m.handoff_published = verb == "published"
        after = list(models.Automation.select(models.Automation.id, models.Automation.status).tuples())
        if not allowed:
            assert after == before, "a refused automation change changed something"

    def automation_share(self, data: st.DataObject) -> None:
        """A user posts a Handoff activity on a lead; the share automation it fires shares
        the lead with the activity's owner, acting for that user (or as the automation):
        it must succeed exactly when the model says the request may (DESIGN §9)."""
        m = self.model
        leads = [r for r in self.records() if r[0] == "lead"]
        users = self.active_users()
        # The telling case: someone who may edit the lead (a group colleague) but not share it.
        editors_not_sharers = [
            (u, rec)
            for u in users
            for rec in leads
            if m.level(u, rec) == EDIT and not m.may_manage_shares(u, rec)
        ]
        actor, lead = self.pick(
            data, editors_not_sharers, [(u, rec) for u in users for rec in leads], "poster"
        )
        sellers = [u for u in users if m.users[u].role == "sales" and u != m.owners[lead]]
        if sellers and data.draw(st.booleans(), label="owner: a telling one"):
            owner = data.draw(st.sampled_from(sellers), label="activity owner")
        else:
            owner = data.draw(st.sampled_from([None, *users]), label="activity owner")
        act = self._attempt(
            m.level(actor, lead) == EDIT,
            lambda: self.core.records.post_activity(
                lead, type="Handoff", owner=owner, actor=self.user(actor)
            ),
            "handoff post",
            readable=m.level(actor, lead) >= READ,
        )
        if act is None:
            return
        m.activities[act.id] = MActivity(lead[1], owner)
        before = self.grants_snapshot()
        reports = [r for r in self.core.automations.process_pending() if r.automation == HANDOFF]
        if not m.handoff_published:
            assert reports == [], "a paused automation ran"
            return
        (report,) = reports
        assert report.trace["acting_for"] == actor
        requester = actor if m.handoff_mode == "trigger" else None
        expected = owner is not None and m.share_allowed(requester, owner, lead, "2w", act.id, False)
        assert (report.status == "succeeded") is expected, (actor, owner, lead, m.handoff_mode, report.reason)
        STATS[f"automation share {'completed' if expected else 'not made'}"] += 1
        if owner is not None and m.handoff_mode == "trigger" and not m.may_manage_shares(actor, lead):
            STATS["automation share refused for the person who fired it"] += 1
        if owner is not None:  # a request was made, and history names the person and the run
            request = models.ShareRequest.get_by_id(report.trace["actions"][0]["data"]["request_id"])
            assert request.requester_id == (m.users[actor].id if requester else None)
            assert (request.source, request.automation_run_id) == ("automation", report.id)
        if not expected:
            assert self.grants_snapshot() == before, "a refused automation share changed a grant"
            return
        m.grants[("lead", lead[1], owner, act.id)] = MGrant(EDIT, m.now + DURATIONS["2w"], False)

    def flip_owners_can_share(self) -> None:
        m = self.model
        m.owners_can_share = not m.owners_can_share
        self.core.settings.set("owners_can_share", m.owners_can_share, actor=None)

    # -- time ---------------------------------------------------------------------------------
    def move_clock(self, data: st.DataObject) -> None:
        if self.model.grants and data.draw(st.booleans(), label="to an expiry"):
            self.move_clock_to_an_expiry(data)
            return
        step = data.draw(st.sampled_from(CLOCK_MOVES), label="by")
        back = data.draw(st.booleans(), label="back")
        delta = -step if back and step <= timedelta(days=3) else step
        self.clock.advance(delta)
        self.model.now = self.clock.now()
        STATS["clock moves back" if delta < timedelta(0) else "clock moves forward"] += 1

    def move_clock_to_an_expiry(self, data: st.DataObject) -> None:
        """Stand exactly on a grant's expiry (or one second either side): ``expires <= now`` ends it."""
        expiries = sorted({g.expires for g in self.model.grants.values()})
        if not expiries:
            return
        offset = data.draw(st.sampled_from((0, 0, -1, 1)), label="offset")
        at = data.draw(st.sampled_from(expiries), label="expiry") + timedelta(seconds=offset)
        self.clock.set(at)
        self.model.now = self.clock.now()
        STATS["clock set on an expiry" if offset == 0 else "clock set a second off an expiry"] += 1

    def sweep(self, data: st.DataObject) -> None:
        self.core.expiry.sweep()
        for grant in self.model.grants.values():
            if grant.state == "active" and grant.expires <= self.model.now:
                grant.state = "expired"

    def switch_plugins(self, on: bool) -> None:
        self.set_plugins(on)

    # -- the invariants -------------------------------------------------------------------------
    @invariant()
    def access_agrees_with_the_model(self) -> None:
        m, access = self.model, self.core.access
        STATS["steps"] += 1
        if self.refused:
            return
        STATS["steps checked in full"] += 1
        records = self.records()
        pairs = [(user, rec) for user in sorted(m.users) for rec in records]
        for user, rec in pairs:
            uid, ref = m.users[user].id, self.ref(rec)
            want = m.level(user, rec)
            got = access.level(uid, ref)
            assert int(got) == want, f"level({user}, {rec}) = {got.label}, model says {want} ({m!r})"
            assert access.can(uid, ref, "read") is (want >= READ), (user, rec, "read")
            assert access.can(uid, ref, "edit") is (want >= EDIT), (user, rec, "edit")
            STATS["checks"] += 3
            STATS["pairs"] += 1
            if m.users[user].role == "sales" and m.rules_level(user, rec) and not self._standing(user, rec):
                STATS["pairs reached only through a share"] += 1
            if m.plugins_on and (user, rec) in (m.deny_read | m.raises) and m.rules_level(user, rec):
                STATS["pairs a plugin denied that rules allowed"] += 1
            if m.plugins_on and want > m.rules_level(user, rec):
                STATS["pairs a plugin allowed beyond the rules"] += 1
            if m.plugins_on and not m.users[user].active and (user, rec) in (m.allow_read | m.allow_edit):
                STATS["pairs a plugin allowed but the user is deactivated"] += 1
        # A rotating sample goes through explain(), which is what `sharetui check` prints.
        for user, rec in pairs[self.explained % 13 :: 13]:
            decision = access.explain(user, self.ref(rec), actor=None)
            assert int(decision.level) == m.level(user, rec), (user, rec, decision)
            STATS["checks"] += 1
        self.explained += 1

    @invariant()
    def lists_show_exactly_what_may_be_read(self) -> None:
        m = self.model
        if self.refused:
            return
        for user in sorted(m.users):
            for entity in ("lead", "opportunity"):
                page = self.core.access.visible(m.users[user].id, entity, limit=100)
                # Lists are built from the rules' reach (a plugin cannot add rows to them), less
                # what plugins deny.
                want = sorted(
                    rid
                    for (e, rid) in m.owners
                    if e == entity and m.rules_level(user, (e, rid)) and m.level(user, (e, rid)) >= READ
                )
                assert [r.id for r in page.rows] == want, (user, entity)
                for row in page.rows:
                    assert int(row.level) == m.level(user, (entity, row.id)), (user, entity, row)
                STATS["checks"] += 1

    def _standing(self, user: str, rec: Key) -> bool:
        m = self.model
        saved, m.grants = m.grants, {}
        try:
            return m.rules_level(user, rec) > NONE
        finally:
            m.grants = saved


def _bound(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def run_machine(db_url: str, *, examples: int, steps: int) -> Counter[str]:
    """Run the state machine on ``db_url``; returns what it did (also used by tests/stress)."""
    STATS.clear()
    AccessMachine.db_url = db_url
    run_state_machine_as_test(
        AccessMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    return Counter(STATS)


def test_access_always_agrees_with_the_model(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The raising check is logged on every call: thousands of identical warnings.
    monkeypatch.setattr(logging.getLogger("sharetui.plugins"), "disabled", True)
    # Fewer examples on PostgreSQL, where every check is a network round trip.
    examples = _bound("SHARETUI_INVARIANT_EXAMPLES", 20 if PG_URL else 40)
    steps = _bound("SHARETUI_INVARIANT_STEPS", 25)
    stats = run_machine(db_url, examples=examples, steps=steps)
    # An automation share's two outcomes come from one action of fourteen, drawn as
    # Hypothesis favours it: a PostgreSQL run of 20 examples once drew it five times and
    # never where the share is allowed. Such a run tries more examples (at most three
    # more rounds) instead of passing without having checked both.
    for _ in range(3):
        if stats["automation share completed"] and stats["automation share not made"]:
            break
        stats.update(run_machine(db_url, examples=max(examples // 2, 5), steps=steps))
    with capsys.disabled():
        print("\ninvariant cases tried: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    # The run must have exercised what it claims to check (only what every run reaches by
    # far: Hypothesis chooses which actions an example favours, so the rest varies).
    assert stats["examples"] >= 10 and stats["steps checked in full"] >= 100
    assert stats["share completed"] and stats["share failed"] and stats["revoke failed"]
    assert stats["pairs reached only through a share"]
    assert stats["automation share completed"] and stats["automation share not made"]


# -- regressions found by the machine ------------------------------------------------------------


def test_lists_leave_out_what_a_plugin_denies(core: Core) -> None:
    """``visible`` (the TUI's lists, ``leads list``) asked only the built-in rules: a
    record a plugin denied still showed, reachable and with its rule-given level."""
    model = Model(now=T0)
    root = core.users.add(ROOT, role="admin", actor=None)
    core.users.add("nadia", role="marketing", actor=root)
    first = core.records.add_lead(name="First", owner=root, actor=root)
    second = core.records.add_lead(name="Second", owner=root, actor=root)
    model.deny_read.add(("nadia", ("lead", first.id)))
    model.deny_edit.add((ROOT, ("lead", second.id)))
    with plugin_registered(core, DenyPairs(model), name="deny-pairs"):
        nadia = [(r.id, r.level) for r in core.access.visible("nadia", "lead").rows]
        mine = {r.id: r.level for r in core.access.visible(ROOT, "lead").rows}
    assert nadia == [(second.id, 1)]
    assert mine == {first.id: 2, second.id: 1}
    assert [r.id for r in core.access.visible("nadia", "lead").rows] == [first.id, second.id]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("active", [True, False])
def test_only_active_admins_manage_automations(core: Core, role: str, active: bool) -> None:
    """Create, publish and pause, tried as every role (and deactivated): only an active admin may."""
    root = core.users.add(ROOT, role="admin", actor=None)
    user = core.users.add("someone", role=role, actor=root)
    if not active:
        core.users.deactivate(user, actor=root)
        user = core.users.get("someone")
    autos = core.automations
    existing = autos.add(autos.parse(AUTOMATION.format(name="existing")), actor=root)
    allowed = role == "admin" and active
    attempts = [
        lambda: autos.add(autos.parse(AUTOMATION.format(name="new")), actor=user),
        lambda: autos.set_status(existing.id, "published", actor=user),
        lambda: autos.set_status(existing.id, "paused", actor=user),
    ]
    for attempt in attempts:
        before = list(models.Automation.select(models.Automation.id, models.Automation.status).tuples())
        if allowed:
            attempt()
        else:
            with pytest.raises(PermissionDenied):
                attempt()
            after = list(models.Automation.select(models.Automation.id, models.Automation.status).tuples())
            assert after == before
    statuses = {a.name: a.status for a in models.Automation.select()}
    assert statuses == ({"existing": "paused", "new": "draft"} if allowed else {"existing": "draft"})


def test_a_plugin_allow_never_reaches_a_deactivated_user(core: Core) -> None:
    """``can``/``level`` let a plugin's allow through for a deactivated user (``explain``,
    hence ``sharetui check``, said none): deactivation now wins over any allow."""
    model = Model(now=T0)
    root = core.users.add(ROOT, role="admin", actor=None)
    daniel = core.users.add("daniel", role="sales", actor=root)
    lead = core.records.add_lead(name="Lead", owner=root, actor=root)
    model.allow_edit.add(("daniel", ("lead", lead.id)))
    with plugin_registered(core, AllowPairs(model), name="allow-pairs"):
        assert core.access.level("daniel", lead) == 2  # the allow works for an active user
        core.users.deactivate(daniel, actor=root)
        assert core.access.level("daniel", lead) == 0
        assert not core.access.can("daniel", lead, "read")
        assert core.access.explain("daniel", lead, actor=None).level == 0

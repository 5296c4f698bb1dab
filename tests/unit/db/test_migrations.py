"""Upgrading a database made by the first sharetui loses nothing and keeps working.

A database is built at the FIRST schema version (only the first migration),
filled with raw SQL written against that schema — users, sales groups, leads,
opportunities, activities, tasks, share requests, grants in every state
(active, active in an activity's context, expired, revoked, past due but not
yet swept), history, the outbox and settings — then migrated with the
product's runner, one step at a time and in one go from every version. Every
row and every value written at version 1 must still be there, and the product
must work on the result: access checks, lists, a new share, a renewal of an
old grant, the sweeper, revoke, history, the CLI.

Migrations are discovered with ``migrations.available()``: a new migration is
tested without touching this file. Runs on SQLite, and on PostgreSQL when
``SHARETUI_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from peewee import Database

from sharetui.clock import FrozenClock
from sharetui.core.history import HistoryFilter
from sharetui.core.service import Core
from sharetui.db import migrations
from sharetui.db.connection import Dialect, connect, dialect
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.runtime import open_core

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the conftest clock's T0
VERSIONS = [m.version for m in migrations.available()]
FIRST = VERSIONS[0]


def at(delta: timedelta) -> datetime:
    """A naive UTC time relative to NOW, the stored form."""
    return (NOW + delta).replace(tzinfo=None)


@dataclass
class OldData:
    """Ids of what the version-1 rows are, for the checks."""

    ids: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> int:
        return self.ids[key]


class Writer:
    """Raw SQL against the version-1 schema, on either dialect."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pg = dialect() is Dialect.POSTGRESQL

    def value(self, v: Any) -> Any:
        if isinstance(v, datetime) and not self.pg:
            return v.strftime("%Y-%m-%d %H:%M:%S")  # how peewee writes a naive UTC time
        if isinstance(v, (dict, list)):
            return json.dumps(v, sort_keys=True, ensure_ascii=False)
        return v

    def insert(self, table: str, returning: bool = True, **values: Any) -> int:
        cols = ", ".join(f'"{c}"' for c in values)
        marks = ", ".join(["%s" if self.pg else "?"] * len(values))
        sql = f'INSERT INTO "{table}" ({cols}) VALUES ({marks})'
        params = [self.value(v) for v in values.values()]
        if returning and self.pg:
            return self.db.execute_sql(sql + " RETURNING id", params).fetchone()[0]
        cursor = self.db.execute_sql(sql, params)
        return cursor.lastrowid if returning else 0


def fill_version_1(db: Database) -> OldData:
    """A small company as the first sharetui stored it."""
    w, d = Writer(db), OldData()
    made = at(timedelta(days=-60))
    with db.atomic():
        for name, role, active in (
            ("admin", "admin", True),
            ("ruth", "sales_manager", True),
            ("nadia", "marketing", True),
            ("priya", "sales", True),
            ("daniel", "sales", True),
            ("sofia", "sales", True),
            ("olga", "sales", False),
        ):
            d.ids[name] = w.insert(
                "users",
                username=name,
                name=name.title() + (" Øster" if name == "olga" else ""),
                email=f"{name}@bank.example",
                role=role,
                active=active,
                created_at=made,
                updated_at=made,
            )
        d.ids["presales"] = w.insert("sales_groups", name="Pre-Sales", created_at=made)
        d.ids["sales"] = w.insert("sales_groups", name="Sales", created_at=made)
        for group, user, level in (("presales", "priya", 3), ("sales", "daniel", 3), ("sales", "sofia", 2)):
            w.insert("group_members", False, group_id=d[group], user_id=d[user], level=level)
        d.ids["meeting_type"] = w.insert(
            "activity_types", name="Meeting Scheduled", entity="lead", captures_owner=True
        )
        d.ids["call_type"] = w.insert(
            "activity_types", name="Follow-up Call", entity="opportunity", captures_owner=False
        )
        lead = {
            "email": "",
            "phone": "",
            "stage": "new",
            "source": "web",
            "created_at": made,
            "updated_at": at(timedelta(days=-1)),
        }
        d.ids["mira"] = w.insert(
            "leads",
            **lead | {"name": "Mira Demir", "company": "Demir Textiles", "owner_id": d["priya"]},
            fields={"budget": 250000, "city": "İzmir", "tags": ["vip", "loan"]},
        )
        d.ids["jorg"] = w.insert(
            "leads",
            **lead | {"name": "Jörg Ångström", "company": "Nordic Ltd", "owner_id": d["priya"]},
            fields={},
        )
        d.ids["kofi"] = w.insert(
            "leads",
            **lead | {"name": "Kofi Mensah", "company": "", "owner_id": d["daniel"], "stage": "qualified"},
            ref="ext-0003",
            fields={"note": "quoted 'value' ; with a semicolon"},
        )
        d.ids["mira_loan"] = w.insert(
            "opportunities",
            lead_id=d["mira"],
            name="Demir home loan",
            type="Home Loan",
            stage="proposal",
            amount=250000.5,
            owner_id=d["priya"],
            fields={"rate": 3.9},
            created_at=made,
            updated_at=made,
        )
        d.ids["kofi_card"] = w.insert(
            "opportunities",
            lead_id=d["kofi"],
            name="Mensah card",
            type="Credit Card",
            stage="prospecting",
            amount=0.0,
            owner_id=d["daniel"],
            fields={},
            created_at=made,
            updated_at=made,
        )
        act = {"note": "", "fields": {}, "created_at": made, "updated_at": made, "occurred_at": made}
        d.ids["meeting"] = w.insert(
            "activities",
            **act,
            type_id=d["meeting_type"],
            lead_id=d["mira"],
            owner_id=d["daniel"],
            status="open",
        )
        d.ids["done_meeting"] = w.insert(
            "activities",
            **act | {"note": "signed"},
            type_id=d["meeting_type"],
            lead_id=d["jorg"],
            owner_id=d["sofia"],
            status="completed",
            completed_at=at(timedelta(days=-4)),
        )
        d.ids["deleted_meeting"] = w.insert(
            "activities",
            **act,
            type_id=d["meeting_type"],
            lead_id=d["mira"],
            owner_id=d["daniel"],
            status="open",
            deleted_at=at(timedelta(days=-7)),
        )
        d.ids["call"] = w.insert(
            "activities", **act, type_id=d["call_type"], opportunity_id=d["mira_loan"], status="open"
        )
        task = {"owner_id": d["daniel"], "created_at": made, "updated_at": made}
        d.ids["task_open"] = w.insert(
            "tasks",
            **task,
            opportunity_id=d["mira_loan"],
            subject="Collect payslips",
            due_at=at(timedelta(days=3)),
            reminder_at=at(timedelta(days=2)),
        )
        d.ids["task_done"] = w.insert(
            "tasks",
            **task,
            lead_id=d["kofi"],
            subject="Call back",
            due_at=at(timedelta(days=-2)),
            completed_at=at(timedelta(days=-2)),
        )

        def request(name: str, **values: Any) -> int:
            base = {
                "action": "share",
                "status": "completed",
                "entity_type": "lead",
                "all_contexts": False,
                "until_completed": False,
                "source": "manual",
                "requester_id": d["admin"],
            }
            d.ids[name] = w.insert("share_requests", **base | values)
            return d[name]

        def grant(name: str, request_id: int, user: str, **values: Any) -> int:
            base = {
                "entity_type": "lead",
                "context_key": values.get("context_activity_id") or 0,
                "access": 1,
                "state": "active",
                "source": "manual",
                "until_completed": False,
                "created_at": values["starts_at"],
                "updated_at": values["starts_at"],
            }
            d.ids[name] = w.insert("grants", **base | values, user_id=d[user], request_id=request_id)
            return d[name]

        def history(event: str, status: str, user: str, **values: Any) -> None:
            base = {
                "entity_type": "lead",
                "source": "manual",
                "user_id": d[user],
                "user_name": user,
                "requester_id": d["admin"],
                "requester_name": "admin",
            }
            w.insert("history", **base | values, event=event, status=status)

        # daniel: a plain read share of Mira, renewed once (active)
        started = at(timedelta(days=-10))
        r = request(
            "r_daniel",
            entity_id=d["mira"],
            recipient_name="daniel",
            recipient_id=d["daniel"],
            access=1,
            duration="30d",
            outcome="granted",
            created_at=started,
            finished_at=started,
        )
        g = grant(
            "g_daniel", r, "daniel", entity_id=d["mira"], starts_at=started, expires_at=at(timedelta(days=20))
        )
        w.db.execute_sql(
            f"UPDATE share_requests SET grant_id = {g} WHERE id = {r}"
        )  # the first product filled it after the grant
        for event in ("share", "granted"):
            history(
                event,
                "completed",
                "daniel",
                at=started,
                request_id=r,
                grant_id=g,
                entity_id=d["mira"],
                access=1,
                duration="30d",
                starts_at=started,
                expires_at=at(timedelta(days=20)),
            )
        renewed = at(timedelta(days=-1))
        r2 = request(
            "r_renew",
            entity_id=d["mira"],
            recipient_name="daniel",
            recipient_id=d["daniel"],
            access=1,
            duration="21d",
            outcome="renewed",
            grant_id=g,
            created_at=renewed,
            finished_at=renewed,
        )
        for event in ("renew", "renewed"):
            history(
                event,
                "completed",
                "daniel",
                at=renewed,
                request_id=r2,
                grant_id=g,
                entity_id=d["mira"],
                access=1,
                duration="21d",
                starts_at=started,
                expires_at=at(timedelta(days=20)),
            )
        # daniel: edit in the context of his meeting, until it is completed (active)
        r = request(
            "r_ctx",
            entity_id=d["mira"],
            recipient_name="daniel",
            recipient_id=d["daniel"],
            access=2,
            context_activity_id=d["meeting"],
            until_completed=True,
            duration="7d",
            outcome="granted",
            created_at=at(timedelta(days=-2)),
            finished_at=at(timedelta(days=-2)),
        )
        grant(
            "g_ctx",
            r,
            "daniel",
            entity_id=d["mira"],
            access=2,
            context_activity_id=d["meeting"],
            until_completed=True,
            starts_at=at(timedelta(days=-2)),
            expires_at=at(timedelta(days=5)),
        )
        # sofia: edit on the loan opportunity, from the batch API (active, warned)
        r = request(
            "r_opp",
            entity_type="opportunity",
            entity_id=d["mira_loan"],
            recipient_name="sofia",
            recipient_id=d["sofia"],
            access=2,
            duration="10080",
            outcome="granted",
            source="api",
            batch_id="batch-1",
            created_at=at(timedelta(days=-5)),
            finished_at=at(timedelta(days=-5)),
        )
        grant(
            "g_opp",
            r,
            "sofia",
            entity_type="opportunity",
            entity_id=d["mira_loan"],
            access=2,
            source="api",
            starts_at=at(timedelta(days=-5)),
            expires_at=at(timedelta(days=2)),
            warned_at=at(timedelta(hours=-20)),
        )
        history(
            "expiring_soon",
            "completed",
            "sofia",
            at=at(timedelta(hours=-20)),
            entity_type="opportunity",
            entity_id=d["mira_loan"],
            access=2,
            reason="expires soon",
            source="api",
        )
        # daniel: Jörg for a day, long ago (expired by the sweeper)
        r = request(
            "r_expired",
            entity_id=d["jorg"],
            recipient_name="daniel",
            recipient_id=d["daniel"],
            access=1,
            duration="1d",
            outcome="granted",
            created_at=at(timedelta(days=-6)),
            finished_at=at(timedelta(days=-6)),
        )
        g = grant(
            "g_expired",
            r,
            "daniel",
            entity_id=d["jorg"],
            state="expired",
            starts_at=at(timedelta(days=-6)),
            expires_at=at(timedelta(days=-5)),
            ended_at=at(timedelta(days=-5)),
            ended_reason="expired",
        )
        history(
            "expired",
            "completed",
            "daniel",
            at=at(timedelta(days=-5)),
            grant_id=g,
            entity_id=d["jorg"],
            access=1,
            reason="expired",
            requester_id=None,
            requester_name="",
        )
        # sofia: Jörg, revoked early
        r = request(
            "r_revoked",
            entity_id=d["jorg"],
            recipient_name="sofia",
            recipient_id=d["sofia"],
            access=1,
            duration="90d",
            outcome="granted",
            created_at=at(timedelta(days=-3)),
            finished_at=at(timedelta(days=-3)),
        )
        g = grant(
            "g_revoked",
            r,
            "sofia",
            entity_id=d["jorg"],
            state="revoked",
            starts_at=at(timedelta(days=-3)),
            expires_at=at(timedelta(days=87)),
            ended_at=at(timedelta(days=-1)),
            ended_reason="revoked by admin",
        )
        r = request(
            "r_revoke",
            action="revoke",
            entity_id=d["jorg"],
            recipient_name="sofia",
            recipient_id=d["sofia"],
            outcome="revoked",
            grant_id=g,
            created_at=at(timedelta(days=-1)),
            finished_at=at(timedelta(days=-1)),
        )
        for event in ("revoke", "revoked"):
            history(
                event,
                "completed",
                "sofia",
                at=at(timedelta(days=-1)),
                request_id=r,
                grant_id=g,
                entity_id=d["jorg"],
                access=1,
                reason="revoked by admin",
            )
        # sofia: Mira for an hour, due an hour ago, never swept (state still active)
        r = request(
            "r_due",
            entity_id=d["mira"],
            recipient_name="sofia",
            recipient_id=d["sofia"],
            access=1,
            duration="1h",
            outcome="granted",
            created_at=at(timedelta(hours=-2)),
            finished_at=at(timedelta(hours=-2)),
        )
        grant(
            "g_due",
            r,
            "sofia",
            entity_id=d["mira"],
            starts_at=at(timedelta(hours=-2)),
            expires_at=at(timedelta(hours=-1)),
        )
        # ruth may not receive shares: a failed request, kept in history
        reason = "user ruth is sales_manager: only sales users receive shares"
        r = request(
            "r_failed",
            entity_id=d["mira"],
            recipient_name="ruth",
            recipient_id=d["ruth"],
            access=1,
            duration="90d",
            status="failed",
            reason=reason,
            created_at=at(timedelta(days=-1)),
            finished_at=at(timedelta(days=-1)),
        )
        history(
            "share",
            "failed",
            "ruth",
            at=at(timedelta(days=-1)),
            request_id=r,
            entity_id=d["mira"],
            access=1,
            duration="90d",
            reason=reason,
        )
        w.insert(
            "outbox",
            topic="share.granted",
            entity_type="lead",
            entity_id=d["mira"],
            payload={"grant_id": d["g_daniel"]},
            created_at=started,
            processed_at=started,
            attempts=1,
        )
        w.insert(
            "outbox",
            topic="lead.updated",
            entity_type="lead",
            entity_id=d["kofi"],
            payload={"changes": {"stage": "qualified"}},
            created_at=at(timedelta(minutes=-5)),
            attempts=0,
        )
        w.insert("settings", False, key="share_cap_leads", value=json.dumps(50))
        w.insert("settings", False, key="expiring_soon_window", value=json.dumps("2d"))
    return d


# -- comparing ---------------------------------------------------------------------------------
def columns_of(db: Database) -> dict[str, list[str]]:
    """Each table's columns now (the version-1 shape, when called right after building it)."""
    return {t: [c.name for c in db.get_columns(t)] for t in db.get_tables() if t != "schema_migrations"}


def snapshot(db: Database, shape: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every row of the given tables, only the given columns, in a stable order."""
    out = {}
    for table, cols in shape.items():
        names = ", ".join(f'"{c}"' for c in cols)
        order = ", ".join(str(i + 1) for i in range(len(cols)))
        out[table] = db.execute_sql(f'SELECT {names} FROM "{table}" ORDER BY {order}').fetchall()
    return out


@pytest.fixture
def version_1(db_url: str) -> Iterator[tuple[Database, OldData, dict[str, list[str]], dict[str, list]]]:
    """A database at the first schema version holding the old company; its shape and rows."""
    db = connect(db_url)
    ran = migrations.migrate(db, at(timedelta(days=-60)), target=FIRST)
    assert [m.version for m in ran] == [FIRST]
    assert migrations.applied(db) == {FIRST}
    data = fill_version_1(db)
    shape = columns_of(db)
    rows = snapshot(db, shape)
    assert all(rows[t] for t in ("users", "leads", "grants", "history", "share_requests", "outbox")), rows
    yield db, data, shape, rows
    if not db.is_closed():
        db.close()


def test_each_migration_step_keeps_every_row_and_value(version_1) -> None:
    db, _data, shape, before = version_1
    for migration in migrations.available()[1:]:
        ran = migrations.migrate(db, at(timedelta(days=-30)), target=migration.version)
        assert [m.version for m in ran] == [migration.version], "one step applies exactly one migration"
        assert migrations.applied(db) == {v for v in VERSIONS if v <= migration.version}
        now_shape = columns_of(db)
        for table, cols in shape.items():
            assert table in now_shape, f"migration {migration.version} dropped table {table}"
            assert set(cols) <= set(now_shape[table]), f"migration {migration.version} dropped a column"
        assert snapshot(db, shape) == before, f"migration {migration.version} changed old rows"
    assert not migrations.needs_migration(db)
    assert migrations.migrate(db, at(timedelta(0))) == [], "a migrated database has nothing left to run"


@pytest.mark.parametrize("start", VERSIONS)
def test_an_old_database_migrated_by_the_product_keeps_its_data_and_works(
    version_1, db_url: str, clock: FrozenClock, cli, start: int
) -> None:
    """From every version the product has shipped, ``open_core`` (what every command does)
    brings the database to the latest schema in one go."""
    db, data, shape, before = version_1
    migrations.migrate(db, at(timedelta(days=-30)), target=start)
    db.close()
    core = open_core(db_url, clock)
    try:
        assert migrations.applied(core.db) == set(VERSIONS)
        assert snapshot(core.db, shape) == before
        product_works(core, data, clock)
    finally:
        core.close()
    # The command line, on the migrated database: the renewed old grant still reads, the
    # context grant ended when its activity was completed.
    result = cli("check", "daniel", "lead", str(data["mira"]), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["allowed"] is True
    assert cli("check", "daniel", "lead", str(data["mira"]), "--action", "edit").exit_code == 1


def product_works(core: Core, d: OldData, clock: FrozenClock) -> None:
    """Reads and writes over rows the first sharetui wrote."""
    lead, jorg, kofi = (RecordRef(EntityType.LEAD, d[k]) for k in ("mira", "jorg", "kofi"))
    loan = RecordRef(EntityType.OPPORTUNITY, d["mira_loan"])
    access = core.access
    # Access from old rows: role, owner, group, each grant state.
    assert access.level("daniel", lead) is Access.EDIT  # the context grant gives edit
    assert access.level("sofia", loan) is Access.EDIT
    assert access.level("sofia", kofi) is Access.EDIT  # Sales group, modify
    assert access.level("priya", lead) is Access.EDIT  # owner
    assert access.level("nadia", jorg) is Access.READ  # marketing
    assert not access.can("sofia", lead, "read"), "a grant past its expiry gives nothing, swept or not"
    assert not access.can("sofia", jorg, "read"), "revoked"
    assert not access.can("daniel", jorg, "read"), "expired"
    assert not access.can("olga", kofi, "read"), "deactivated"
    explained = access.explain("daniel", lead, actor=None)
    assert {g["id"] for g in explained.grants} == {d["g_daniel"], d["g_ctx"]}
    # Lists.
    page = access.visible("daniel", "lead")
    assert [r.id for r in page.rows] == sorted([d["mira"], d["kofi"]])
    assert [r.id for r in access.visible("sofia", "lead").rows] == [d["kofi"]]
    assert core.settings.get("share_cap_leads") == 50
    assert core.records.get(lead).fields == {"budget": 250000, "city": "İzmir", "tags": ["vip", "loan"]}
    assert core.records.get(loan).amount == 250000.5
    # A new share, a renewal of an old grant, the sweeper, a revoke, completing a context activity.
    admin = core.users.get("admin")
    fresh = core.sharing.share("lead", d["jorg"], "daniel", requester=core.users.get("priya"), duration="2d")
    assert fresh.ok and fresh.outcome == "granted" and fresh.grant["id"] > d["g_due"]
    renewed = core.sharing.share("lead", d["mira"], "daniel", requester=admin, duration="60d")
    assert renewed.outcome == "renewed" and renewed.grant["id"] == d["g_daniel"]
    assert renewed.grant["expires_at"] == (NOW + timedelta(days=60)).isoformat().replace("+00:00", "Z")
    assert core.sharing.status(d["r_failed"], actor=None).reason.startswith("user ruth is sales_manager")
    swept = core.expiry.sweep()
    assert swept.expired == 1  # sofia's overdue share of Mira, never swept by the old product
    assert core.sharing.revoke("opportunity", d["mira_loan"], "sofia", requester=admin).ok
    assert not access.can("sofia", loan, "read")
    core.records.update_activity(d["meeting"], status="completed", actor=core.users.get("daniel"))
    assert access.level("daniel", lead) is Access.READ, "until_completed ended the context grant"
    events = [h["event"] for h in core.history.query(None, HistoryFilter(record=lead), limit=None)]
    assert events.count("granted") == 1 and "renewed" in events and "expired" in events
    sofias = core.sharing.grants(user=core.users.get("sofia"), include_ended=True, actor=None)
    assert [g["state"] for g in sofias] == [
        "expired",
        "revoked",
        "revoked",
    ]
    clock.advance(timedelta(days=3))
    assert not access.can("daniel", jorg, "read"), "the new 2d share ran out"

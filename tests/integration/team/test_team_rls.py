"""Row security in team mode, seen through psycopg connected as each login, as psql or
a BI tool would be (DESIGN §8): reads equal what the core's rules allow, before and
after expiry by the server's clock with no sweep in between; a sales login's direct
writes change nothing; a one-minute share vanishes when the server clock passes it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

PG_URL = os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()
pytestmark = pytest.mark.skipif(not PG_URL, reason="team mode needs PostgreSQL (SHARETUI_TEST_DATABASE_URL)")

T0 = datetime(2030, 1, 7, 9, 0)  # naive UTC, as stored


def dump(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (as the setup role), for "nothing changed"."""
    tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in sorted(tables)}


def set_now(conn: Any, at: datetime) -> None:
    conn.execute("SELECT set_config('sharetui.now', %s, false)", (at.isoformat() + "+00:00",))


# -- direct writes ------------------------------------------------------------------------
# A write a sales login may not make, per table: (INSERT, UPDATE). DELETE is ``DELETE FROM t``
# everywhere. Leads, opportunities, activities and tasks take writes a sales user may make
# (their own records): the statements aim at daniel's lead 1, which kenji may only read.
TARGETED = {
    "leads": (
        "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at, "
        "updated_at) VALUES ('x', '', '', '', 'new', '', {daniel}, '{{}}', now(), now())",
        "UPDATE leads SET name = 'x' WHERE id = 1",
    ),
    "opportunities": (
        "INSERT INTO opportunities (lead_id, name, type, stage, amount, owner_id, fields, created_at, "
        "updated_at) VALUES (1, 'x', '', 'new', 0, {daniel}, '{{}}', now(), now())",
        "UPDATE opportunities SET name = 'x' WHERE lead_id = 1",
    ),
    "activities": (
        "INSERT INTO activities (type_id, lead_id, note, fields, status, occurred_at, created_at, "
        "updated_at) VALUES (1, 1, 'x', '{{}}', 'open', now(), now(), now())",
        # kenji owns the activity and may read lead 1: he completes it (status, note, fields)
        # as in the product, but changes nothing else about it.
        "UPDATE activities SET occurred_at = now() WHERE lead_id = 1",
    ),
    "tasks": (
        "INSERT INTO tasks (lead_id, owner_id, subject, created_at, updated_at) "
        "VALUES (1, {kenji}, 'x', now(), now())",
        "UPDATE tasks SET subject = 'x' WHERE lead_id = 1",
    ),
    "notifications": (
        "INSERT INTO notifications (user_id, message, created_at) VALUES ({kenji}, 'x', now())",
        "UPDATE notifications SET read_at = now() WHERE user_id <> {kenji}",
    ),
    "saved_views": (
        "INSERT INTO saved_views (name, entity_type, owner_id, search, conditions, sort, columns, "
        "created_by_id, created_at, updated_at) VALUES ('x', 'lead', {daniel}, '', '[]', 'id', '[]', "
        "{kenji}, now(), now())",
        "UPDATE saved_views SET name = 'x'",
    ),
    "api_keys": (
        "INSERT INTO api_keys (user_id, access_key, secret_hash, label, created_at) "
        "VALUES ({daniel}, 'ak_forged', 'x', '', now())",
        "UPDATE api_keys SET revoked_at = NULL",
    ),
}
# Plugins keep their own small state and failure log from any process; not record data
# nor share metadata (DESIGN §8 lists those), so every login may write them.
PLUGIN_BOOKKEEPING = {"plugin_state", "plugin_errors"}


def test_a_sales_login_cannot_write_any_table_directly(team: Any) -> None:
    import psycopg

    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "activity", "types", "add", "Call")
    team.ok("boss", "leads", "add", "--name", "Acme", "--owner", "daniel")
    team.ok("boss", "leads", "add", "--name", "Beta", "--owner", "kenji")
    team.ok("daniel", "activity", "post", "--lead", "1", "--type", "Call", "--owner", "kenji")
    team.ok("boss", "opps", "add", "--lead", "1", "--name", "Loan", "--type", "Home", "--owner", "daniel")
    team.ok(
        "boss", "task", "add", "--opp", "1", "--owner", "daniel", "--subject", "Call back", "--due", "+1d"
    )
    team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--for", "1d")
    team.ok("daniel", "views", "add", "mine", "--search", "acme")
    team.ok("boss", "views", "add", "everyone", "--shared")
    team.ok("daniel", "keys", "create")
    setup = team.connect()
    ids = dict(setup.execute("SELECT username, id FROM users").fetchall())
    setup.execute(
        "INSERT INTO notifications (user_id, message, created_at) VALUES (%s, 'hi', now())", (ids["daniel"],)
    )
    before = dump(setup)
    kenji = team.connect("kenji")
    tables = sorted(before)
    assert {"grants", "share_requests", "history", "outbox", "users", "automations"} <= set(tables)
    tried = 0
    for table in tables:
        if table in PLUGIN_BOOKKEEPING:
            continue
        insert, update = TARGETED.get(table, (f'INSERT INTO "{table}" DEFAULT VALUES', None))
        if update is None:
            column = setup.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s ORDER BY ordinal_position LIMIT 1",
                (table,),
            ).fetchone()[0]
            update = f'UPDATE "{table}" SET "{column}" = "{column}"'
        for statement in (insert, update, f'DELETE FROM "{table}"'):
            sql = statement.format(daniel=ids["daniel"], kenji=ids["kenji"])
            try:
                cursor = kenji.execute(sql)
            except psycopg.errors.InsufficientPrivilege:
                tried += 1
                continue
            assert cursor.rowcount == 0, f"{sql!r} changed {cursor.rowcount} row(s) as a sales login"
            tried += 1
    assert tried == 3 * (len(tables) - len(PLUGIN_BOOKKEEPING))
    # The write functions themselves refuse what the product would refuse.
    for sql in (
        "SELECT sharetui_end_grant((SELECT MIN(id) FROM grants), 'revoked', 'x')",
        "SELECT sharetui_end_grant((SELECT MIN(id) FROM grants), 'expired', 'x')",
        "SELECT sharetui_emit('lead.updated', 'lead', 99, '{}')",
        "SELECT sharetui_emit('user.created', NULL, NULL, '{}')",
        "SELECT sharetui_add_history('expired', 'completed', NULL, NULL, (SELECT MIN(id) FROM grants), "
        "'lead', 1, NULL, '', 1, NULL, NULL, 'manual', false)",
        f"SELECT sharetui_link_login({ids['kenji']}, 'postgres', NULL, false)",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            kenji.execute(sql)
    assert dump(setup) == before


# -- expiry by the server's clock -----------------------------------------------------------
def test_a_one_minute_share_vanishes_for_the_recipient_when_the_server_clock_passes_it(team: Any) -> None:
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "leads", "add", "--name", "Acme", "--owner", "daniel")
    grant = team.ok("daniel", "share", "lead", "1", "--with", "kenji", "--for", "1m", "--json").json()[
        "grant"
    ]
    expires = datetime.fromisoformat(grant["expires_at"].replace("Z", "+00:00")).replace(tzinfo=None)
    kenji = team.connect("kenji")
    assert [r[0] for r in kenji.execute("SELECT name FROM leads")] == ["Acme"]
    set_now(kenji, expires - timedelta(seconds=1))
    assert [r[0] for r in kenji.execute("SELECT name FROM leads")] == ["Acme"]
    set_now(kenji, expires)
    assert kenji.execute("SELECT name FROM leads").fetchall() == []
    assert kenji.execute("SELECT count(*) FROM sharetui_granted('lead', 1)").fetchone()[0] == 1
    assert kenji.execute("SELECT sharetui_granted('lead', 1)").fetchone()[0] == []
    # No sweep ran: the grant is still recorded active; only the clock ended it.
    assert team.connect().execute("SELECT state FROM grants").fetchone()[0] == "active"
    late = (expires + timedelta(seconds=5)).isoformat() + "Z"
    assert team.cli("kenji", "leads", "show", "1", env={"SHARETUI_NOW": late}).exit_code == 1


# -- the property: what each login SELECTs is what the core's rules allow ---------------------
def _company():
    from hypothesis import strategies as st

    sales = st.sampled_from(["s1", "s2", "s3"])
    owners = st.sampled_from(["s1", "s2", "s3", "mia"])
    return st.fixed_dictionaries(
        {
            "leads": st.lists(owners, min_size=1, max_size=6),
            "opps": st.lists(st.tuples(st.integers(0, 5), owners), max_size=4),
            "members": st.lists(
                st.tuples(st.sampled_from(["north", "south"]), sales, st.integers(0, 3)), max_size=5
            ),
            "grants": st.lists(
                st.tuples(
                    st.sampled_from(["lead", "opportunity"]),
                    st.integers(0, 5),
                    sales,
                    st.sampled_from([1, 2]),
                    st.integers(-90, 600),  # expires, minutes from T0
                    st.sampled_from(["active", "active", "active", "revoked", "expired"]),
                ),
                max_size=8,
            ),
            "later": st.integers(1, 600),  # the second look, minutes after T0
        }
    )


def _load(conn: Any, ids: dict[str, int], company: dict[str, Any]) -> tuple[list[int], list[int]]:
    conn.execute(
        "TRUNCATE leads, opportunities, grants, group_members, sales_groups, activities, tasks, history, "
        "share_requests, outbox, notifications RESTART IDENTITY CASCADE"
    )
    leads = []
    for owner in company["leads"]:
        row = conn.execute(
            "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at, "
            "updated_at) VALUES ('l', '', '', '', 'new', '', %s, '{}', %s, %s) RETURNING id",
            (ids[owner], T0, T0),
        ).fetchone()
        leads.append(row[0])
    opps = []
    for lead_index, owner in company["opps"]:
        row = conn.execute(
            "INSERT INTO opportunities (lead_id, name, type, stage, amount, owner_id, fields, created_at, "
            "updated_at) VALUES (%s, 'o', '', 'new', 0, %s, '{}', %s, %s) RETURNING id",
            (leads[lead_index % len(leads)], ids[owner], T0, T0),
        ).fetchone()
        opps.append(row[0])
    groups: dict[str, int] = {}
    for group, user, level in company["members"]:
        if group not in groups:
            groups[group] = conn.execute(
                "INSERT INTO sales_groups (name, created_at) VALUES (%s, %s) RETURNING id", (group, T0)
            ).fetchone()[0]
        conn.execute(
            "INSERT INTO group_members (group_id, user_id, level) VALUES (%s, %s, %s) "
            "ON CONFLICT (group_id, user_id) DO UPDATE SET level = EXCLUDED.level",
            (groups[group], ids[user], level),
        )
    active: set[tuple[str, int, str]] = set()  # one active grant per (record, user, context)
    for entity, index, user, access, minutes, state in company["grants"]:
        targets = leads if entity == "lead" else opps
        if not targets:
            continue
        key = (entity, targets[index % len(targets)], user)
        if state == "active" and key in active:
            continue
        active |= {key} if state == "active" else set()
        conn.execute(
            "INSERT INTO grants (entity_type, entity_id, user_id, context_key, access, starts_at, "
            "expires_at, state, source, until_completed, created_at, updated_at) "
            "VALUES (%s, %s, %s, 0, %s, %s, %s, %s, 'manual', false, %s, %s)",
            (
                entity,
                targets[index % len(targets)],
                ids[user],
                access,
                T0 - timedelta(hours=2),
                T0 + timedelta(minutes=minutes),
                state,
                T0,
                T0,
            ),
        )
    return leads, opps


def test_what_each_login_selects_is_what_the_core_allows(team: Any) -> None:
    from hypothesis import HealthCheck, given, settings

    from sharetui.clock import FrozenClock
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import Access, EntityType
    from sharetui.runtime import open_core, release

    people = {"mia": "sales_manager", "ana": "marketing", "s1": "sales", "s2": "sales", "s3": "sales"}
    for name, role in people.items():
        team.add_user(name, role)
    people["boss"] = "admin"
    setup = team.connect()
    ids = dict(setup.execute("SELECT username, id FROM users").fetchall())
    conns = {name: team.connect(name) for name in people}
    clock = FrozenClock(T0.replace(tzinfo=UTC))
    core = open_core(team.url(None), clock)

    @settings(max_examples=18, deadline=None, suppress_health_check=list(HealthCheck))
    @given(company=_company())
    def check(company: dict[str, Any]) -> None:
        leads, opps = _load(setup, ids, company)
        for at in (T0, T0 + timedelta(minutes=company["later"])):  # no sweep in between
            clock.set(at.replace(tzinfo=UTC))
            for name, conn in conns.items():
                set_now(conn, at)
                for entity, table, rows in (
                    (EntityType.LEAD, "leads", leads),
                    (EntityType.OPPORTUNITY, "opportunities", opps),
                ):
                    got = {r[0] for r in conn.execute(f"SELECT id FROM {table}")}
                    want = {i for i in rows if core.access.can(ids[name], RecordRef(entity, i), Access.READ)}
                    assert got == want, (name, table, at, company)
                    levels = dict(
                        conn.execute(
                            "SELECT i, sharetui_level(%s, i) FROM unnest(%s::integer[]) i",
                            (entity.value, rows),
                        ).fetchall()
                    )
                    expected = {i: int(core.access.level(ids[name], RecordRef(entity, i))) for i in rows}
                    assert levels == expected, (name, table, at, company)
                # Share metadata: the grants the gate lets this user see (DESIGN §9).
                got = {r[0] for r in conn.execute("SELECT id FROM grants")}
                actor = core.users.get(name)
                want = {
                    gid
                    for gid, kind, eid, holder in setup.execute(
                        "SELECT g.id, g.entity_type, g.entity_id, u.username FROM grants g "
                        "JOIN users u ON u.id = g.user_id"
                    ).fetchall()
                    if core.gate.may_see_share_row(actor, RecordRef(EntityType(kind), eid), holder)
                }
                assert got == want, (name, "grants", at, company)

    try:
        check()
    finally:
        release(core)

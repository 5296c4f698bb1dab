"""The large-company generator: what it writes, that a seed pins it down, that
it keeps the rules of sharing (checked by ``check_integrity``), and the
``generate`` command. Small companies here; the timing run is in the report."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conftest import PG_URL, SAMPLE_DATA, T0
from sharetui.clock import FrozenClock
from sharetui.core.service import Core
from sharetui.errors import UsageError
from sharetui.ops.generator import ACTIVITY_TYPES, check_integrity, generate
from sharetui.runtime import open_core

TABLES = (
    "users",
    "sales_groups",
    "group_members",
    "activity_types",
    "leads",
    "opportunities",
    "activities",
    "tasks",
    "grants",
    "share_requests",
    "history",
    "outbox",
)
SMALL = {"leads": 2000, "opportunities": 200, "users": 50, "grants": 500}


def counts(core: Core) -> dict[str, int]:
    return {t: core.db.execute_sql(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def rows(core: Core, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if not params:
        return [tuple(r) for r in core.db.execute_sql(sql).fetchall()]
    mark = "?" if "sqlite" in type(core.db).__name__.lower() else "%s"
    return [tuple(r) for r in core.db.execute_sql(sql.replace("?", mark), params).fetchall()]


def indexes(core: Core) -> set[tuple[str, str, tuple[str, ...], bool]]:
    return {
        (table, i.name, tuple(i.columns), bool(i.unique))
        for table in TABLES
        for i in core.db.get_indexes(table)
    }


@contextmanager
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """Another empty database of the kind under test (a file, or a PostgreSQL schema)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        return
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.split("?", 1)[0]
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{plain}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def company(url: str, seed: int) -> dict[str, list[tuple[Any, ...]]]:
    """Generate a small company into ``url`` and read back what identifies it."""
    core = open_core(url, FrozenClock(T0))
    try:
        generate(core, **SMALL, seed=seed, actor=None)
        return {
            "users": rows(core, "SELECT id, username, name, role, active FROM users ORDER BY id"),
            "leads": rows(
                core,
                "SELECT l.id, l.name, l.email, l.company, l.stage, u.username FROM leads l "
                "JOIN users u ON u.id = l.owner_id ORDER BY l.id",
            ),
            "grants": rows(
                core,
                "SELECT g.id, g.entity_id, u.username, g.access, g.state, g.context_activity_id, "
                "g.starts_at, g.expires_at FROM grants g JOIN users u ON u.id = g.user_id ORDER BY g.id",
            ),
            "groups": rows(
                core,
                "SELECT s.name, u.username, m.level FROM group_members m JOIN sales_groups s "
                "ON s.id = m.group_id JOIN users u ON u.id = m.user_id ORDER BY s.name, u.username",
            ),
        }
    finally:
        core.close()


# -- what a small company looks like -------------------------------------------------------
def test_a_small_company_has_what_was_asked_and_keeps_the_rules(core: Core) -> None:
    before = counts(core)
    report = generate(core, **SMALL, seed=7, actor=None)
    after = counts(core)

    written = {t: after[t] - before[t] for t in TABLES}
    assert {t: n for t, n in written.items() if t != "outbox"} == report.counts
    assert written["outbox"] == 0  # an import, like `load`: no events, no automation runs
    assert (written["users"], written["leads"], written["opportunities"]) == (50, 2000, 200)
    assert report.users_by_role == {
        "admin": 1,
        "sales_manager": 2,
        "marketing": 1,
        "sales": 46,
        "sales_inactive": 1,
    }
    assert written["activities"] > 0 and written["tasks"] > 0

    states = dict(rows(core, "SELECT state, COUNT(*) FROM grants GROUP BY state"))
    assert states["active"] == 500
    assert states["expired"] > 0 and states["revoked"] > 0
    assert report.grants_by_state["active"] == 500
    (past,) = rows(
        core, "SELECT COUNT(*) FROM grants WHERE state = 'active' AND expires_at <= ?", (core.db_now(),)
    )
    assert past[0] == report.grants_by_state["past_expiry"] > 0  # the sweeper has work
    # Every grant came from an API share request, with its history.
    assert rows(core, "SELECT DISTINCT source FROM share_requests") == [("api",)]
    events = Counter(dict(rows(core, "SELECT event, COUNT(*) FROM history GROUP BY event")))
    assert events["granted"] == events["share"] == written["grants"]
    assert events["expired"] == states["expired"] and events["revoked"] == states["revoked"]
    # Some shares were made in the context of an activity their recipient owns.
    assert rows(core, "SELECT COUNT(*) FROM grants WHERE context_activity_id IS NOT NULL")[0][0] > 0

    # Sales groups of 10 to 30, each with a manager.
    sizes = rows(core, "SELECT group_id, COUNT(*), MAX(level) FROM group_members GROUP BY group_id")
    assert sum(n for _, n, _ in sizes) == 46
    assert all(10 <= n <= 30 and top == 3 for _, n, top in sizes)
    types = dict(rows(core, "SELECT name, captures_owner FROM activity_types"))
    assert {name: bool(types[name]) for name in ACTIVITY_TYPES} == ACTIVITY_TYPES

    # The records work with the rest of sharetui: an active grant gives access.
    user_id, lead_id, access = rows(
        core,
        "SELECT user_id, entity_id, access FROM grants WHERE state = 'active' AND expires_at > ? "
        "ORDER BY id LIMIT 1",
        (core.db_now(),),
    )[0]
    assert core.access.level(user_id, ("lead", lead_id)) >= access

    assert check_integrity(core) == []
    assert check_integrity(core, swept=True)[0].startswith(f"{past[0]:,} active grant(s) past their expiry")
    swept = core.expiry.sweep()
    assert swept.expired == past[0]
    assert check_integrity(core, swept=True) == []


def test_check_integrity_finds_broken_rules(core: Core) -> None:
    """Break the data behind the services' back; the check names what is wrong."""
    generate(core, **SMALL, seed=3, actor=None)
    now = core.db_now()
    grant_id, user_id, lead_id = rows(
        core,
        "SELECT id, user_id, entity_id FROM grants WHERE state = 'active' AND expires_at > ? "
        "AND context_activity_id IS NULL ORDER BY id LIMIT 1",
        (now,),
    )[0]
    core.db.execute_sql(
        f"UPDATE leads SET owner_id = {int(user_id)} WHERE id = {int(lead_id)}"
    )  # the recipient now owns it
    other = rows(
        core,
        "SELECT user_id FROM grants WHERE state = 'active' AND user_id <> ? ORDER BY id LIMIT 1",
        (user_id,),
    )[0][0]
    core.db.execute_sql(f"UPDATE users SET role = 'marketing' WHERE id = {int(other)}")
    core.settings.set("share_cap_leads", 1, actor=None)

    problems = check_integrity(core)
    assert any("held by the lead's owner" in p and f"first: {grant_id}" in p for p in problems), problems
    assert any("deactivated or not a sales user" in p for p in problems), problems
    assert any("more than 1 leads, the cap" in p for p in problems), problems


# -- a seed pins the company down ---------------------------------------------------------
def test_the_same_seed_gives_the_same_company_and_another_seed_another(db_url: str, tmp_path: Path) -> None:
    first = company(db_url, seed=42)
    with fresh_database(tmp_path) as url:
        again = company(url, seed=42)
    with fresh_database(tmp_path) as url:
        other = company(url, seed=43)

    assert first == again
    assert len(first["leads"]) == 2000 and len(first["grants"]) == 550
    assert [r[1] for r in first["leads"]] != [r[1] for r in other["leads"]]
    assert first["grants"] != other["grants"]


def test_generate_on_top_of_the_sample_bank(core: Core) -> None:
    """An existing company stays as it was: its admin and activity types are reused,
    new usernames never clash, and the rules still hold."""
    from sharetui.ops.loader import Loader

    Loader(core).load(SAMPLE_DATA, actor=None)
    before = counts(core)
    sample_leads = rows(core, "SELECT id, name, owner_id FROM leads ORDER BY id")
    report = generate(core, leads=1500, opportunities=100, users=40, grants=300, seed=5, actor=None)

    assert "admin" not in report.users_by_role  # the bank has one
    assert report.counts["activity_types"] == 0  # all five exist in the sample data
    assert counts(core)["users"] == before["users"] + 40
    assert rows(core, "SELECT id, name, owner_id FROM leads ORDER BY id")[: len(sample_leads)] == sample_leads
    assert (
        rows(core, "SELECT COUNT(*), COUNT(DISTINCT username) FROM users")[0] == (before["users"] + 40,) * 2
    )
    assert check_integrity(core) == []
    core.expiry.sweep()
    assert check_integrity(core, swept=True) == []


def test_the_bulk_path_rebuilds_every_index(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """Big loads drop secondary indexes and rebuild them from the database's own DDL."""
    monkeypatch.setattr("sharetui.ops.generator.bulk.BULK_INDEX_ROWS", 1)
    schema = indexes(core)
    report = generate(core, **SMALL, seed=11, actor=None)
    assert report.indexes_rebuilt > 0
    assert indexes(core) == schema
    assert check_integrity(core) == []
    # The partial unique index is back: a second active grant on the same key is refused.
    from peewee import IntegrityError

    grant = rows(core, "SELECT * FROM grants WHERE state = 'active' ORDER BY id LIMIT 1")[0]
    with pytest.raises(IntegrityError), core.db.atomic():
        marks = ", ".join("?" if "sqlite" in type(core.db).__name__.lower() else "%s" for _ in grant)
        core.db.execute_sql(f"INSERT INTO grants VALUES ({marks})", (10**9, *grant[1:]))


# -- refusing what cannot be --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        ({"leads": -1, "opportunities": 0, "users": 5, "grants": 0}, "--leads must be 0 or more"),
        ({"leads": 0, "opportunities": 5, "users": 5, "grants": 0}, "--opportunities needs leads"),
        ({"leads": 10, "opportunities": 0, "users": 1, "grants": 0}, "leaves no sales user"),
        ({"leads": 100, "opportunities": 0, "users": 10, "grants": 10**6}, "more than this company allows"),
    ],
)
def test_impossible_numbers_are_refused_and_nothing_is_written(
    core: Core, numbers: dict[str, int], message: str
) -> None:
    before = counts(core)
    with pytest.raises(UsageError, match=message):
        generate(core, **numbers, actor=None)
    assert counts(core) == before


def test_the_cap_decides_how_many_grants_fit(core: Core) -> None:
    core.settings.set("share_cap_leads", 3, actor=None)
    # 10 users: an admin, a manager, marketing and 7 sales users, each with room for 3 leads.
    with pytest.raises(
        UsageError, match=r"at most 21 \(7 active sales user\(s\), each with shares on at most 3"
    ):
        generate(core, leads=100, opportunities=0, users=10, grants=22, actor=None)
    generate(core, leads=100, opportunities=0, users=10, grants=21, actor=None)
    held = rows(
        core, "SELECT user_id, COUNT(DISTINCT entity_id) FROM grants WHERE state = 'active' GROUP BY user_id"
    )
    assert sorted(n for _, n in held) == [3] * 7
    assert check_integrity(core) == []


# -- the command ----------------------------------------------------------------------------------
def test_the_generate_command_prints_a_summary_and_json(cli, core: Core) -> None:
    result = cli(
        "generate", "--leads", "1000", "--opportunities", "100", "--users", "30", "--grants", "200",
        "--seed", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["counts"]["leads"] == 1000 and data["counts"]["users"] == 30
    assert data["grants_by_state"]["active"] == 200
    assert data["rows"] == sum(data["counts"].values()) and data["seconds"] > 0
    assert [s["stage"] for s in data["stages"]][:4] == ["plan", "users", "activity types", "leads"]
    assert counts(core)["leads"] == 1000

    human = cli("generate", "--leads", "100", "--opportunities", "0", "--users", "12", "--grants", "10")
    assert human.exit_code == 0, human.stderr
    assert "rows in" in human.stdout and "leads" in human.stdout

    # The past-expiry shares are the next sweep's work.
    swept = cli("sweep", "--json")
    assert swept.exit_code == 0, swept.stderr
    assert swept.json()["expired"] >= data["grants_by_state"]["past_expiry"] > 0
    assert check_integrity(core, swept=True) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--leads", "-5", "--opportunities", "0", "--users", "5", "--grants", "0"),
            "-5 is not in the range",
        ),
        (
            ("--leads", "abc", "--opportunities", "0", "--users", "5", "--grants", "0"),
            "is not a valid integer",
        ),
        (("--opportunities", "0", "--users", "5", "--grants", "0"), "Missing option '--leads'"),
        (("--leads", "50", "--opportunities", "0", "--users", "8", "--grants", "9999"), "at most"),
        (("--leads", "0", "--opportunities", "3", "--users", "8", "--grants", "0"), "needs leads"),
    ],
)
def test_the_command_refuses_bad_numbers_with_exit_2(
    cli, core: Core, args: tuple[str, ...], message: str
) -> None:
    before = counts(core)
    result = cli("generate", *args, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert counts(core) == before


def test_tests_run_on_the_configured_database(core: Core) -> None:
    """The PostgreSQL run is real: SHARETUI_TEST_DATABASE_URL reaches these tests."""
    name = type(core.db).__name__.lower()
    assert ("postgres" in name) == bool(os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip())

"""``sharetui doctor``: exit 0 on a sound database, 1 naming each problem, and a
report of the mode, the acting user, the clock, the plugins and the schema. It
changes nothing: it neither migrates nor processes the outbox.

Each planted problem is one a tester could make happen: a duplicated active
grant (the unique index gone), a grant whose history was deleted, an event
stuck in the outbox, a dangling foreign key, a search index out of step with
its table, a plugin that fails to load, an acting user who does not exist, a
schema older than the code.
"""

from __future__ import annotations

import sqlite3
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sharetui.db import migrations
from sharetui.db.connection import is_sqlite


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ./plugins of the checkout, no installed entry points."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SHARETUI_LOAD_ENTRY_POINTS", "0")


def doctor(cli, *args: str, user: str | None = None, env: dict[str, str] | None = None) -> tuple[int, Any]:
    result = cli("doctor", "--json", *args, user=user, env=env)
    assert result.exit_code in (0, 1), (result.exit_code, result.stdout, result.stderr)
    data = result.json()
    assert data["ok"] is (result.exit_code == 0)
    assert bool(data["problems"]) is (result.exit_code == 1)
    return result.exit_code, data


def check(data: dict[str, Any], name: str) -> dict[str, str]:
    return next(c for c in data["checks"] if c["name"] == name)


def test_a_sound_database_passes_and_the_report_says_where_who_and_when(bank, cli, clock) -> None:
    code, data = doctor(cli)
    assert code == 0, data["problems"]
    assert data["schema"] == {"version": migrations.latest_version(), "latest": migrations.latest_version()}
    assert data["acting"] == {
        "user": "admin",
        "role": "admin",
        "via": "default (the first active admin)",
        "resolved": True,
    }
    assert data["clock"]["overridden"] is True and data["clock"]["source"] == "SHARETUI_NOW"
    assert data["clock"]["now"] == clock.now().isoformat().replace("+00:00", "Z")
    assert [p["name"] for p in data["plugins"]] == ["builtin-access", "builtin-automation"]
    assert check(data, "sharing invariants")["status"] == "ok"
    assert check(data, "outbox")["status"] == "ok"
    if is_sqlite():
        assert data["mode"] == "personal"
        assert "not a boundary between people" in data["mode_note"]
        assert "whoever can open the file administers it" in data["mode_note"]
        for name in ("integrity_check", "foreign_key_check", "search index of leads"):
            assert check(data, name)["status"] == "ok"
    else:
        # Never `team init`-ed: a plain PostgreSQL database, which protects nothing between
        # people (docs/team.md), and doctor says so.
        assert data["mode"] == "postgresql" and data["login"]
        assert any("not in team mode" in w for w in data["warnings"])
        for name in ("integrity_check", "foreign_key_check"):
            assert check(data, name)["status"] == "skipped"
            assert "PostgreSQL" in check(data, name)["detail"]

    human = cli("doctor")
    assert human.exit_code == 0
    assert "no problems found" in human.stdout
    if is_sqlite():
        assert "not a boundary between people" in human.stdout


def test_the_acting_user_is_who_as_or_sharetui_user_names(bank, cli) -> None:
    assert doctor(cli, user="daniel")[1]["acting"] == {
        "user": "daniel",
        "role": "sales",
        "via": "SHARETUI_USER",
        "resolved": True,
    }
    result = cli("--as", "priya", "doctor", "--json")
    assert result.json()["acting"]["via"] == "--as" and result.json()["acting"]["user"] == "priya"
    code, data = doctor(cli, user="ghost")
    assert code == 1 and data["acting"]["resolved"] is False
    assert any("acting user" in p and "ghost" in p for p in data["problems"])


def test_a_duplicated_active_grant_and_a_grant_without_history_are_problems(bank, cli) -> None:
    core = bank.core
    assert core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.admin, duration="2d").ok
    with core.db.atomic():
        core.db.execute_sql('DROP INDEX "grants_entity_type_entity_id_user_id_context_key"')
        core.db.execute_sql(
            "INSERT INTO grants (entity_type, entity_id, user_id, context_activity_id, context_key, access, "
            "starts_at, expires_at, state, source, request_id, until_completed, created_at, updated_at) "
            "SELECT entity_type, entity_id, user_id, context_activity_id, context_key, access, starts_at, "
            "expires_at, state, source, request_id, until_completed, created_at, updated_at FROM grants"
        )
    code, data = doctor(cli)
    assert code == 1
    assert any("more than one active grant" in p for p in data["problems"]), data["problems"]
    assert any("without a 'granted' history row" in p for p in data["problems"]), "the copy has none"
    assert check(data, "sharing invariants")["status"] == "problem"


def test_an_event_stuck_in_the_outbox_is_a_problem_and_doctor_does_not_process_it(bank, cli, clock) -> None:
    core = bank.core
    assert cli("shares").exit_code == 0  # embedded mode: what waits is processed
    assert doctor(cli)[0] == 0
    event = core.outbox.emit("lead.updated", "lead", bank.lead.id, {"changes": {}})
    code, data = doctor(cli)
    assert code == 0, "waiting a moment is not stuck"
    assert data["outbox"]["waiting"] == 1 and data["outbox"]["stuck"] == 0

    clock.advance(timedelta(minutes=20))
    code, data = doctor(cli)
    assert code == 1
    assert data["outbox"]["stuck"] == 1 and data["outbox"]["first_stuck_event"] == event
    [problem] = [p for p in data["problems"] if "outbox" in p]
    assert "unprocessed for more than 15 minute(s)" in problem
    code, data = doctor(cli, "--stuck-after", "30")
    assert code == 0
    assert data["outbox"]["waiting"] == 1, "doctor processed nothing"


def test_a_schema_older_than_the_code_is_reported_and_left_as_it_is(db_url: str, cli, clock) -> None:
    from sharetui.db.connection import connect

    db = connect(db_url)
    migrations.migrate(db, clock.now().replace(tzinfo=None), target=5)
    db.close()
    code, data = doctor(cli)
    assert code == 1
    assert data["schema"]["version"] == 5
    assert any("run sharetui init" in p for p in data["problems"])
    assert check(data, "sharing invariants")["status"] == "skipped"
    db = connect(db_url)
    assert max(migrations.applied(db)) == 5, "doctor does not migrate"
    db.close()


def test_a_plugin_that_fails_to_load_is_a_problem(bank, cli, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text(textwrap.dedent("raise RuntimeError('boom at import')\n"))
    code, data = doctor(cli, env={"SHARETUI_PLUGINS_DIR": str(plugins)})
    assert code == 1
    broken = next(p for p in data["plugins"] if p["name"] == "broken")
    assert broken["loaded"] is False and broken["errors"]
    assert any(p.startswith("plugin broken:") for p in data["problems"])


def sqlite_file(db_url: str) -> Path:
    from sharetui.ops.backup import sqlite_path

    return sqlite_path(db_url)


def test_a_dangling_foreign_key_is_found_by_sqlites_check(bank, cli, db_url: str) -> None:
    if not is_sqlite():
        pytest.skip("PostgreSQL enforces foreign keys as rows are written")
    raw = sqlite3.connect(sqlite_file(db_url), isolation_level=None)
    raw.execute("PRAGMA foreign_keys = OFF")  # what another tool might do
    raw.execute("DELETE FROM users WHERE username = 'sofia'")
    raw.close()
    code, data = doctor(cli)
    assert code == 1
    assert check(data, "foreign_key_check")["status"] == "problem"
    assert "parent that does not exist" in check(data, "foreign_key_check")["detail"]


def test_a_search_index_out_of_step_with_its_table_is_found(bank, cli, db_url: str) -> None:
    if not is_sqlite():
        pytest.skip("the FTS5 index is SQLite's")
    raw = sqlite3.connect(sqlite_file(db_url), isolation_level=None)
    raw.execute("DROP TRIGGER leads_search_insert")  # a lead added behind the index's back
    raw.execute(
        "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at, "
        "updated_at) VALUES ('Unindexed', '', '', '', 'new', 'web', 1, '{}', '2026-03-02', '2026-03-02')"
    )
    raw.close()
    code, data = doctor(cli)
    assert code == 1
    assert check(data, "search index of leads")["status"] == "problem"
    assert check(data, "search index of opportunities")["status"] == "ok"


def test_on_a_database_that_does_not_exist_doctor_creates_nothing(cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "crm.db"
    result = cli("--db", str(missing), "doctor")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no database at")
    assert not missing.parent.exists()

"""Shared fixtures: a fresh database per test (SQLite file, or a PostgreSQL
schema when ``SHARETUI_TEST_DATABASE_URL`` is set), a frozen clock, a Core,
a small bank, and a CLI runner that talks to the same database.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from sharetui.clock import FrozenClock
from sharetui.core.service import Core
from sharetui.runtime import open_core

PG_URL = os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()
ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = ROOT / "sample_data"
# A Monday morning, UTC.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the user's database, plugins or clock."""
    for key in ("SHARETUI_DATABASE_URL", "SHARETUI_NOW", "SHARETUI_USER", "SHARETUI_PLUGINS_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SHARETUI_TZ", "UTC")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    with fresh_store(tmp_path / "sharetui.db") as url:
        yield url


@contextmanager
def fresh_store(path: Path) -> Iterator[str]:
    """The URL of an empty store: a SQLite file at ``path``, or with
    SHARETUI_TEST_DATABASE_URL a PostgreSQL schema of its own, dropped afterwards."""
    if not PG_URL:
        yield f"sqlite:///{path}"
        return
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.split("?", 1)[0]
    with psycopg.connect(plain.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        # synchronous_commit off: a commit returns before the server's WAL reaches the disk.
        # Only a crash of the server itself could lose one, which no test does; each test
        # commits hundreds of times, and waiting for fsync was most of the suite's time.
        options = f"-csearch_path={schema} -csynchronous_commit=off"
        yield f"{plain}?options={quote(options)}"
    finally:
        from sharetui.db.connection import database

        if database.obj is not None and not database.obj.is_closed():
            database.obj.close()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def core(db_url: str, clock: FrozenClock) -> Iterator[Core]:
    c = open_core(db_url, clock)
    yield c
    c.close()


@dataclass
class Bank:
    """A small company: who is who, for scenario tests."""

    core: Core
    admin: Any
    manager: Any
    marketing: Any
    priya: Any  # Pre-Sales manage
    kenji: Any  # Pre-Sales own
    leila: Any  # Pre-Sales view
    tomas: Any  # Pre-Sales modify
    daniel: Any  # Sales manage
    sofia: Any  # Sales modify
    lead: Any  # owned by priya
    meeting: Any  # "Meeting Scheduled" on lead, owned by daniel


@pytest.fixture
def bank(core: Core) -> Bank:
    u = core.users
    admin = u.add("admin", role="admin", name="Asha Rao", actor=None)
    manager = u.add("ruth", role="sales_manager", actor=admin)
    marketing = u.add("nadia", role="marketing", actor=admin)
    priya = u.add("priya", role="sales", groups={"Pre-Sales": "manage"}, actor=admin)
    kenji = u.add("kenji", role="sales", groups={"Pre-Sales": "own"}, actor=admin)
    leila = u.add("leila", role="sales", groups={"Pre-Sales": "view"}, actor=admin)
    tomas = u.add("tomas", role="sales", groups={"Pre-Sales": "modify"}, actor=admin)
    daniel = u.add("daniel", role="sales", groups={"Sales": "manage"}, actor=admin)
    sofia = u.add("sofia", role="sales", groups={"Sales": "modify"}, actor=admin)
    r = core.records
    r.add_activity_type("Meeting Scheduled", actor=admin)
    r.add_activity_type("Loan Evaluation", actor=admin)
    r.add_activity_type("Email Sent", captures_owner=False, actor=admin)
    r.add_activity_type("Follow-up Call", entity="opportunity", captures_owner=False, actor=admin)
    lead = r.add_lead(name="Mira Demir", company="Demir Textiles", owner=priya, actor=admin)
    meeting = r.post_activity(("lead", lead.id), type="Meeting Scheduled", owner=daniel, actor=priya)
    return Bank(core, admin, manager, marketing, priya, kenji, leila, tomas, daniel, sofia, lead, meeting)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def cli(db_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch):
    """Run ``sharetui ARGS`` in-process against the test database, at the test clock."""
    from click.testing import CliRunner

    from sharetui.cli import cli as sharetui_cli

    def run(
        *args: str, user: str | None = None, input: str | None = None, env: dict[str, str] | None = None
    ) -> CliResult:
        full = {
            "SHARETUI_DATABASE_URL": db_url,
            "SHARETUI_NOW": clock.now().isoformat().replace("+00:00", "Z"),
        }
        if user:
            full["SHARETUI_USER"] = user
        full.update(env or {})
        runner = CliRunner()
        result = runner.invoke(
            sharetui_cli, [str(a) for a in args], input=input, env=full, catch_exceptions=False
        )
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run

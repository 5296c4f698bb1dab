"""Team mode needs a PostgreSQL server (SHARETUI_TEST_DATABASE_URL): each test gets its
own database and its own roles, all named with one random tag, because roles are shared
by every database of the cluster and others run tests on it at the same time. Both are
dropped afterwards.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_URL = os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()

pytestmark = pytest.mark.skipif(not PG_URL, reason="team mode needs PostgreSQL (SHARETUI_TEST_DATABASE_URL)")


def _url(login: str, database: str) -> str:
    parts = urlsplit(PG_URL.split("?", 1)[0])
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(("postgresql", f"{login}@{host}{port}", f"/{database}", "", ""))


def _setup_login() -> str:
    return urlsplit(PG_URL).username or "postgres"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class TeamDb:
    """A team-mode database of its own, and the logins made for it."""

    tag: str
    database: str
    logins: dict[str, str] = field(default_factory=dict)  # username -> login
    _conns: list[Any] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.tag}_"

    def login(self, username: str) -> str:
        return self.logins.get(username, f"{self.tag}_{username}")

    def url(self, username: str | None = None) -> str:
        """The URL a person's login (or, with None, the setup role) connects with."""
        return _url(self.login(username) if username else _setup_login(), self.database)

    def cli(self, username: str | None, *args: Any, env: dict[str, str] | None = None) -> CliResult:
        """``sharetui ARGS`` connected as ``username``'s login (None: the setup role)."""
        from click.testing import CliRunner

        from sharetui.cli import cli as sharetui_cli

        full = {"SHARETUI_DATABASE_URL": self.url(username)}
        full.update(env or {})
        result = CliRunner().invoke(sharetui_cli, [str(a) for a in args], env=full, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def ok(self, username: str | None, *args: Any, env: dict[str, str] | None = None) -> CliResult:
        result = self.cli(username, *args, env=env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def add_user(self, username: str, role: str, *extra: str) -> None:
        """An admin (``boss``) adds a user with a login of their own."""
        self.ok("boss", "users", "add", username, "--role", role, "--login", self.login(username), *extra)
        self.logins[username] = self.login(username)

    def connect(self, username: str | None = None) -> Any:
        """A psycopg connection (autocommit) as ``username``'s login, as psql would be."""
        import psycopg

        conn = psycopg.connect(self.url(username), autocommit=True)
        self._conns.append(conn)
        return conn


def _make(test_clock: bool) -> Iterator[TeamDb]:
    import psycopg

    tag = "st" + uuid.uuid4().hex[:10]
    team = TeamDb(tag, f"{tag}_db")
    admin_url = PG_URL.split("?", 1)[0]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{team.database}"')
    try:
        team.ok(None, "init", *(["--test-clock"] if test_clock else []))
        team.ok(None, "team", "init", "--role-prefix", team.prefix)
        team.ok(None, "users", "add", "boss", "--role", "admin", "--login", team.login("boss"))
        team.logins["boss"] = team.login("boss")
        yield team
    finally:
        from sharetui.db.connection import database

        for conn in team._conns:
            conn.close()
        if database.obj is not None and not database.obj.is_closed():
            database.obj.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{team.database}" WITH (FORCE)')
            roles = [
                r[0]
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY rolcanlogin DESC",
                    (f"{tag}\\_%",),
                )
            ]
            for role in roles:
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def team() -> Iterator[TeamDb]:
    """A test-clock team database with one admin, ``boss``."""
    yield from _make(test_clock=True)


@pytest.fixture
def real_clock_team() -> Iterator[TeamDb]:
    """A team database made without ``--test-clock``: the server's clock alone."""
    yield from _make(test_clock=False)

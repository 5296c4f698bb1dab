"""Where the database is, as the command line meets it: a mistyped path creates
nothing, a full disk says so, and no message carries a password.

- Only ``init``, ``load``, ``users add`` (the first admin), ``demo``,
  ``generate`` and ``restore`` may create a database; every other command on a
  SQLite file that does not exist exits 2 naming it and creates no file and no
  folder (``tui`` on the default path too).
- A full disk (a real tmpfs when the tests may mount one; SQLite's
  ``max_page_count`` otherwise, which fails the same way with SQLITE_FULL) is
  one line that says the disk is full, exit 2, and nothing half-written.
- A PostgreSQL URL's password is ``***`` in every message and JSON document.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from sharetui.cli import cli as sharetui_cli
from sharetui.config import redact_url, sqlite_file

PG_URL = os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    result = CliRunner().invoke(sharetui_cli, list(args), env=env or {}, input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# -- a database that does not exist is created only on purpose ----------------------------------

READ_AND_CHANGE_COMMANDS = [
    ["leads", "list"],
    ["leads", "show", "1"],
    ["opps", "list"],
    ["history", "--all"],
    ["shares"],
    ["users", "list"],
    ["check", "admin", "lead", "1"],
    ["explain", "admin", "lead", "1"],
    ["status", "1"],
    ["automations", "list"],
    ["notifications"],
    ["settings"],
    ["sweep"],
    ["worker", "--once"],
    ["leads", "add", "--name", "Ghost", "--owner", "admin"],
    ["share", "lead", "1", "--with", "daniel"],
    ["tui"],
    ["doctor"],
    ["keys", "list"],
    ["keys", "create"],
    ["serve", "--port", "1"],
]


@pytest.mark.parametrize("command", READ_AND_CHANGE_COMMANDS, ids=" ".join)
def test_a_mistyped_database_path_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "typo" / "deeper" / "crm.db"
    code, out, err = run("--db", str(missing), *command)
    assert code == 2, (out, err)
    assert out == ""
    assert one_error_line(err) == f"error: no database at {missing} (create one with sharetui init)"
    assert not (tmp_path / "typo").exists(), "no folder, no file"


def test_the_same_through_the_environment_and_a_sqlite_url(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "crm.db"
    for url in (str(missing), f"sqlite:///{missing}"):
        code, _, err = run("leads", "list", env={"SHARETUI_DATABASE_URL": url})
        assert code == 2 and "no database at" in err and str(missing) in err
    assert not missing.parent.exists()


def test_the_default_database_is_not_created_by_the_tui_or_a_read(tmp_path: Path) -> None:
    """``sharetui`` alone (the TUI) on the default path: the same rule, and the message says
    how to make one. (The conftest points XDG_DATA_HOME at tmp_path/xdg.)"""
    from sharetui.config import default_database_path

    default = default_database_path()
    assert str(default).startswith(str(tmp_path))
    for args in ([], ["tui"], ["leads", "list"]):
        code, out, err = run(*args)
        assert code == 2, (args, out, err)
        assert one_error_line(err) == f"error: no database at {default} (create one with sharetui init)"
    assert not default.parent.exists()
    code, out, _ = run("init")  # the way to make it
    assert code == 0 and default.is_file()
    assert run("users", "add", "admin", "--role", "admin")[0] == 0
    code, out, err = run("leads", "list", "--json")
    assert code == 0, err


def test_plugins_lists_without_a_database_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "crm.db"
    code, out, _ = run("--db", str(missing), "plugins", "--json")
    assert code == 0 and "plugins" in json.loads(out)
    assert not missing.parent.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["init"],
        ["users", "add", "admin", "--role", "admin"],
        ["load", "SAMPLE"],
        ["generate", "--leads", "5", "--opportunities", "1", "--users", "3", "--grants", "0"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_the_commands_that_create_a_database_still_do(tmp_path: Path, command: list[str]) -> None:
    from conftest import SAMPLE_DATA

    target = tmp_path / "new" / "crm.db"
    args = [str(SAMPLE_DATA) if a == "SAMPLE" else a for a in command]
    code, out, err = run("--db", str(target), *args, env={"SHARETUI_NOW": "2026-03-02T09:00:00Z"})
    assert code == 0, (out, err)
    assert target.is_file()
    code, _, err = run("--db", str(target), "users", "list", "--json")
    assert code == 0, err


def test_restore_into_a_path_that_does_not_exist_yet_creates_it(tmp_path: Path) -> None:
    source = tmp_path / "src.db"
    assert run("--db", str(source), "users", "add", "admin", "--role", "admin")[0] == 0
    assert run("--db", str(source), "backup", str(tmp_path / "b.db"))[0] == 0
    target = tmp_path / "restored" / "crm.db"
    code, _, err = run("--db", str(target), "restore", str(tmp_path / "b.db"))
    assert code == 0, err
    assert run("--db", str(target), "users", "list", "--json")[0] == 0


def test_a_backup_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "crm.db"
    code, _, err = run("--db", str(missing), "backup", str(tmp_path / "b.db"))
    assert code == 2 and "no database at" in one_error_line(err)
    assert not missing.parent.exists() and not (tmp_path / "b.db").exists()


# -- a full disk ------------------------------------------------------------------------------------


def lead_count(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


DISK_FULL = "error: the disk is full (database or disk is full): nothing was saved"


def test_a_database_that_reaches_its_size_limit_says_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's max_page_count fails a write with SQLITE_FULL, as a full disk does; after it
    peewee's rollback raised "cannot rollback - no transaction is active", which is what the
    user saw. Now: the disk-full line, exit 2, and neither the lead nor a part of an import."""
    from sharetui.db import connection

    db = tmp_path / "crm.db"
    assert run("--db", str(db), "users", "add", "admin", "--role", "admin")[0] == 0
    assert run("--db", str(db), "leads", "add", "--name", "Before", "--owner", "admin")[0] == 0
    conn = sqlite3.connect(db)
    conn.execute("VACUUM")  # no free pages left: the next page the database needs is past the limit
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    monkeypatch.setitem(connection.SQLITE_PRAGMAS, "max_page_count", pages)

    big = "x" * 5000
    code, out, err = run(
        "--db", str(db), "leads", "add", "--name", "Too Much", "--owner", "admin", "--field", f"note={big}"
    )
    assert code == 2, (out, err)
    assert one_error_line(err).startswith(DISK_FULL)
    assert "rollback" not in err

    rows = "name,owner\n" + "".join(f"Imported {i} {big[:150]},admin\n" for i in range(200))
    (tmp_path / "leads.csv").write_text(rows, encoding="utf-8")
    code, out, err = run("--db", str(db), "leads", "import", str(tmp_path / "leads.csv"))
    assert code == 2, (out, err)
    assert one_error_line(err).startswith(DISK_FULL)

    monkeypatch.delitem(connection.SQLITE_PRAGMAS, "max_page_count")
    assert lead_count(db) == 1, "nothing half-written"
    assert integrity(db) == "ok"
    assert run("--db", str(db), "leads", "add", "--name", "After", "--owner", "admin")[0] == 0
    assert lead_count(db) == 2


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (needs root and a kernel that lets this process mount)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_kib: int) -> Path:
    """Fill the disk but ``leave_kib`` KiB."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with filler.open("wb") as fh:
        remaining = max(0, free - leave_kib * 1024)
        while remaining > 0:
            chunk = min(remaining, 1 << 16)
            try:
                fh.write(b"\0" * chunk)
                fh.flush()
            except OSError:
                break
            remaining -= chunk
    return filler


def sharetui(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHARETUI_NOW": "2026-03-02T09:00:00Z"}
    return subprocess.run(
        [sys.executable, "-m", "sharetui", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_on_a_really_full_disk_a_write_and_a_read_say_so(small_disk: Path) -> None:
    db = small_disk / "crm.db"
    assert sharetui("--db", str(db), "users", "add", "admin", "--role", "admin").returncode == 0
    assert sharetui("--db", str(db), "leads", "add", "--name", "Kept", "--owner", "admin").returncode == 0

    filler = fill(small_disk, leave_kib=48)
    note = "y" * 60_000
    done = sharetui(
        "--db", str(db), "leads", "add", "--name", "Lost", "--owner", "admin", "--field", f"note={note}"
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert one_error_line(done.stderr).startswith(DISK_FULL)

    filler.unlink()
    filler = fill(small_disk, leave_kib=0)  # not even room for the -shm file
    done = sharetui("--db", str(db), "leads", "list")
    assert done.returncode == 2
    assert one_error_line(done.stderr).startswith(DISK_FULL)

    filler.unlink()
    assert lead_count(db) == 1, "the failed write left nothing behind"
    assert integrity(db) == "ok"
    done = sharetui("--db", str(db), "leads", "list", "--json")
    assert done.returncode == 0 and [r["name"] for r in json.loads(done.stdout)["items"]] == ["Kept"]


# -- passwords ---------------------------------------------------------------------------------------

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://bob:{SECRET}@db.test:5432/crm", "postgresql://bob:***@db.test:5432/crm"),
        (
            f"postgres://bob:{SECRET}@db.test/crm?sslmode=require",
            "postgres://bob:***@db.test/crm?sslmode=require",
        ),
        (f"postgresql://bob@db.test/crm?password={SECRET}", "postgresql://bob@db.test/crm?password=***"),
        (f"postgresql://:{SECRET}@db.test/crm", "postgresql://:***@db.test/crm"),
        (f"postgresql://bob:{SECRET}/x@db.test/crm", "postgresql://bob:***@db.test/crm"),  # unescaped '/'
        (f"postgresql://bob:p@{SECRET}@db.test/crm", "postgresql://bob:***@db.test/crm"),  # unescaped '@'
        ("postgresql://bob@db.test:5432/crm", "postgresql://bob@db.test:5432/crm"),
        ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert SECRET not in redact_url(url)


def test_sqlite_file_reads_urls_as_connect_does() -> None:
    assert sqlite_file("sqlite:////tmp/a%3Fb.db") == Path("/tmp/a?b.db")
    assert sqlite_file("sqlite:///rel.db") == Path("rel.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://x/y") is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # Nothing listens on port 1: the connection is refused at once.
        (
            f"postgresql://bob:{SECRET}@127.0.0.1:1/crm",
            ["cannot open database postgresql://bob:***@127.0.0.1:1/crm"],
        ),
        (f"postgresql://bob:{SECRET}@127.0.0.1:notaport/crm", ["the port must be a number", "bob:***@"]),
        (f"postgresql://bob:{SECRET}@127.0.0.1:5432/", ["names no database", "bob:***@"]),
        (f"mysql://bob:{SECRET}@127.0.0.1/crm", ["unsupported database URL", "bob:***@"]),
        (f"postgresql://bob:{SECRET}@[::1/crm", ["cannot be read", "bob:***@"]),
    ],
)
@pytest.mark.parametrize("command", [["init"], ["leads", "list"], ["worker", "--once"], ["doctor", "--json"]])
def test_no_error_message_carries_the_password(url: str, words: list[str], command: list[str]) -> None:
    code, out, err = run("--db", url, *command)
    assert code == 2, (out, err)
    line = one_error_line(err)
    for word in words:
        assert word in line, (word, line)
    assert SECRET not in out + err


def test_backup_and_restore_on_postgresql_do_not_echo_the_password(tmp_path: Path) -> None:
    url = f"postgresql://bob:{SECRET}@127.0.0.1:5432/crm"
    for command in (["backup", str(tmp_path / "b.dump")], ["restore", str(tmp_path / "b.dump")]):
        code, out, err = run("--db", url, *command)
        assert code == 2 and "pg_" in err
        assert SECRET not in out + err


@pytest.fixture
def pg_url_with_password() -> Iterator[str]:
    """The test PostgreSQL, in a fresh schema, through a URL that carries a password (the
    test server trusts local connections, so any password is accepted)."""
    if not PG_URL:
        pytest.skip("needs PostgreSQL (SHARETUI_TEST_DATABASE_URL)")
    import psycopg

    plain = PG_URL.split("?", 1)[0]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    scheme, rest = plain.split("://", 1)
    user, _, host = rest.rpartition("@")
    user = user.split(":", 1)[0] or "postgres"
    try:
        yield f"{scheme}://{user}:{SECRET}@{host}?options={quote(f'-csearch_path={schema}')}"
    finally:
        from sharetui.db.connection import database

        if database.obj is not None and not database.obj.is_closed():
            database.obj.close()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_init_and_doctor_on_postgresql_print_the_url_without_its_password(pg_url_with_password: str) -> None:
    url = pg_url_with_password
    code, out, err = run("--db", url, "init")
    assert code == 0, err
    assert f"database ready: {redact_url(url)}" in out and ":***@" in out
    code, out, err = run("--db", url, "init", "--json")
    assert code == 0 and json.loads(out)["database"] == redact_url(url)
    assert run("--db", url, "users", "add", "admin", "--role", "admin")[0] == 0
    for args in (["doctor"], ["doctor", "--json"]):
        code, out, err = run("--db", url, *args)
        assert ":***@" in out, (code, out, err)
        assert SECRET not in out + err


def test_a_command_run_in_process_lets_go_of_its_connection(cli, core, monkeypatch) -> None:
    """A program (or a test) that runs commands in-process keeps no connection per
    command, whether the command succeeded, was refused or failed on bad input; and
    the store is bound again to what was bound before (the embedding program's)."""
    import sharetui.runtime as runtime

    opened: list = []
    real_open = runtime.open_core

    def recording_open(*args, **kwargs):
        made = real_open(*args, **kwargs)
        opened.append(made)
        return made

    monkeypatch.setattr(runtime, "open_core", recording_open)
    admin = core.users.add("admin", role="admin", actor=None)
    core.users.add("sam", role="sales", actor=admin)
    results = [
        cli("leads", "list", user="admin"),  # succeeds
        cli("users", "add", "x", "--role", "sales", user="sam"),  # refused: exit 1
        cli("leads", "show", "987654", user="admin"),  # no such lead: exit 1
        cli("share", "lead", "1", "--with", "sam", "--for", "soon", user="admin"),  # bad input: exit 2
    ]
    assert [r.exit_code for r in results] == [0, 1, 1, 2], results
    assert len(opened) == 4
    assert all(made.db.is_closed() for made in opened)
    assert runtime.database.obj is core.db

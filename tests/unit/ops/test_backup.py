"""``sharetui backup FILE`` and ``sharetui restore FILE`` (docs/backup.md).

SQLite: an online backup is a consistent snapshot while other connections
write; a restore checks the file first and, when it refuses, changes nothing;
a restored older backup is migrated. PostgreSQL: both commands say which
``pg_dump``/``pg_restore`` command to run, and that command works.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sharetui.db import migrations
from sharetui.ops.backup import postgres_commands, sqlite_path

if TYPE_CHECKING:
    from conftest import Bank, CliResult


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


sqlite_only = pytest.mark.usefixtures("_needs_sqlite")


@pytest.fixture
def _needs_sqlite(db_url: str) -> None:
    if not is_sqlite_url(db_url):
        pytest.skip("SQLite backup and restore (PostgreSQL uses pg_dump; see the postgres tests)")


def ok(result: CliResult) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.json()


def refused(result: CliResult, *words: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr that says each of ``words``."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    line = result.stderr.rstrip("\n")
    assert line.startswith("error: ") and "\n" not in line, result.stderr
    for word in words:
        assert word in line, (word, line)
    return line


def dump(path: Path) -> dict[str, Any]:
    """Every table's schema and every row, in a stable order: equal dumps, equal databases."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = sorted(
            conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchall()
        )
        out: dict[str, Any] = {"schema": schema}
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ):
            width = len(conn.execute(f'SELECT * FROM "{table}" LIMIT 0').description)
            order = ", ".join(str(i) for i in range(1, width + 1))
            out[table] = conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
        return out
    finally:
        conn.close()


def busy_company(bank: Bank, clock) -> None:
    """Shares in every state, failed requests, history and an automation run's outbox."""
    core, s = bank.core, bank.core.sharing
    opp = core.records.add_opportunity(
        lead=bank.lead.id, name="Demir loan", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    assert s.share("lead", bank.lead.id, "daniel", requester=bank.admin, duration="2d").ok
    assert s.share("opp", opp.id, "sofia", requester=bank.admin, duration="1h", access="edit").ok
    assert s.share(
        "lead", bank.lead.id, "daniel", requester=bank.admin, context=bank.meeting.id, duration="3d"
    ).ok
    assert s.share("lead", bank.lead.id, "tomas", requester=bank.admin, duration="1d").ok
    assert s.revoke("lead", bank.lead.id, "tomas", requester=bank.admin).ok
    assert not s.share("lead", bank.lead.id, "ruth", requester=bank.admin).ok  # a failed request
    clock.advance(timedelta(hours=2))
    core.expiry.sweep()  # the opportunity share expires
    core.settings.set("share_cap_leads", 50, actor=None)


# -- backup --------------------------------------------------------------------------------------
@sqlite_only
def test_a_backup_is_a_consistent_snapshot_while_other_connections_write(
    bank: Bank, cli, db_url: str, tmp_path: Path
) -> None:
    """A writer holding an open transaction does not stop the backup and is not in it;
    a writer committing batches of ten leads throughout is in it whole batches at a time."""
    live = sqlite_path(db_url)
    owner = bank.priya.id
    stamp = "2026-03-02 09:00:00"
    row = ("", "", "", "New", "web", owner, "{}", stamp, stamp)
    filler = sqlite3.connect(live)
    with filler:  # enough pages that the copy takes a while
        filler.executemany(
            "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(f"filler {i:05d}", *row) for i in range(20_000)],
        )
    filler.close()

    holder = sqlite3.connect(live, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.executemany(
        "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(f"uncommitted {i}", *row) for i in range(10)],
    )
    first = ok(cli("backup", tmp_path / "during-open-write.db", "--json"))
    holder.execute("COMMIT")
    holder.close()
    snap = sqlite3.connect(first["file"])
    assert snap.execute("SELECT COUNT(*) FROM leads WHERE name LIKE 'uncommitted %'").fetchone()[0] == 0
    assert snap.execute("SELECT COUNT(*) FROM leads WHERE name LIKE 'filler %'").fetchone()[0] == 20_000
    assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snap.close()

    batches = {"committed": 0}
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        conn = sqlite3.connect(live, timeout=15, isolation_level=None)
        try:
            while not stop.is_set():
                k = batches["committed"] + 1
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(f"batch {k} row {j}", *row) for j in range(10)],
                )
                conn.execute(
                    "INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES ('t', 'batches', ?, ?)"
                    " ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
                    (str(k), stamp),
                )
                conn.execute("COMMIT")
                batches["committed"] = k
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while batches["committed"] < 3 and thread.is_alive():
            stop.wait(0.01)
        before = batches["committed"]
        second = ok(cli("backup", tmp_path / "during-writes.db", "--json"))
        after_backup = batches["committed"]
        while batches["committed"] < after_backup + 2 and thread.is_alive():
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    snap = sqlite3.connect(second["file"])
    rows = snap.execute("SELECT COUNT(*) FROM leads WHERE name LIKE 'batch %'").fetchone()[0]
    marker = snap.execute("SELECT value FROM plugin_state WHERE plugin = 't' AND key = 'batches'").fetchone()
    assert snap.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snap.close()
    in_backup = int(marker[0])
    assert rows == 10 * in_backup, "a batch was torn: the backup is not one snapshot"
    assert before <= in_backup <= after_backup
    assert second["tables"]["leads"] == 20_010 + 1 + rows  # filler, uncommitted-then-committed, bank lead
    assert batches["committed"] > after_backup, "the writer kept writing after the backup"


@sqlite_only
def test_backup_refuses_to_overwrite_without_force_and_bad_paths_exit_2(
    bank: Bank, cli, db_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "b.db"
    target.write_bytes(b"keep me")
    refused(cli("backup", target), "already exists", "--force")
    assert target.read_bytes() == b"keep me"
    report = ok(cli("backup", target, "--force", "--json"))
    assert report["file"] == str(target) and report["bytes"] == target.stat().st_size
    assert report["schema_version"] == migrations.latest_version()
    assert report["tables"]["users"] == 9 and report["tables"]["leads"] == 1
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "one self-contained file"
    conn.close()

    refused(cli("backup", tmp_path / "no" / "such" / "dir.db"), "does not exist")
    refused(cli("backup", tmp_path), "is a directory")
    refused(cli("backup", sqlite_path(db_url), "--force"), "the database itself")
    missing = tmp_path / "never-made.db"
    refused(cli("backup", tmp_path / "x.db", env={"SHARETUI_DATABASE_URL": str(missing)}), "no database")
    assert not missing.exists(), "a backup never creates the database it was asked to copy"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no partial files"


def _live_target(live: Path, tmp_path: Path, how: str) -> Path:
    """A path that is one of the live database's files, reached the way ``how`` says."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    if how in ("-wal", "-shm", "-journal"):
        return live.with_name(live.name + how)
    if how == "symlink to -wal":
        link = elsewhere / "innocent.db"
        link.symlink_to(live.with_name(live.name + "-wal"))
        return link
    if how == "hard link to -wal":
        link = elsewhere / "hard-wal.db"
        os.link(live.with_name(live.name + "-wal"), link)
        return link
    if how == "hard link to the database":
        link = elsewhere / "hard.db"
        os.link(live, link)
        return link
    if how == "symlinked folder":
        folder = elsewhere / "same-folder"
        folder.symlink_to(live.parent, target_is_directory=True)
        return folder / (live.name + "-wal")
    if how == "dot-dot":
        return live.parent / "sub" / ".." / (live.name + "-wal")
    raise AssertionError(how)


LIVE_FILES = [
    "-wal",
    "-shm",
    "-journal",
    "symlink to -wal",
    "hard link to -wal",
    "hard link to the database",
    "symlinked folder",
    "dot-dot",
]


def _leads_seen_by_a_new_connection(live: Path) -> list[str]:
    conn = sqlite3.connect(live)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM leads ORDER BY id")]
    finally:
        conn.close()


@sqlite_only
@pytest.mark.parametrize("how", LIVE_FILES)
def test_backup_never_writes_over_the_live_databases_own_files(
    bank: Bank, cli, db_url: str, tmp_path: Path, how: str
) -> None:
    """Regression: ``backup LIVE.db-wal --force`` replaced the write-ahead log while a worker
    held the database open, and a committed lead that lived only in the log was lost. The
    live database's files are refused whatever the path, --force or not."""
    live = sqlite_path(db_url)
    (live.parent / "sub").mkdir(exist_ok=True)
    holder = sqlite3.connect(live, isolation_level=None)  # a worker: holds the database open
    holder.execute("PRAGMA wal_autocheckpoint = 0")  # so the committed lead stays in the log
    holder.execute(
        "INSERT INTO leads (name, email, phone, company, stage, source, owner_id, fields, created_at,"
        " updated_at) VALUES ('Committed In The Log', '', '', '', 'new', 'web', ?, '{}', ?, ?)",
        (bank.priya.id, "2026-03-02 09:00:00", "2026-03-02 09:00:00"),
    )
    try:
        target = _live_target(live, tmp_path, how)
        wal = live.with_name(live.name + "-wal")
        wal_before = (wal.stat().st_ino, wal.read_bytes())
        for extra in (["--force"], []):
            line = refused(cli("backup", target, *extra))
            assert "the database" in line and "in use" in line, line
        assert (wal.stat().st_ino, wal.read_bytes()) == wal_before, "the log was not touched"
        assert not live.with_name(live.name + "-journal").exists()
        assert _leads_seen_by_a_new_connection(live) == ["Mira Demir", "Committed In The Log"]
    finally:
        holder.close()
    assert sorted(p.name for p in live.parent.iterdir() if p.name.endswith(".partial")) == []


@sqlite_only
@pytest.mark.parametrize("how", ["-wal", "symlink to -wal", "hard link to the database", "dot-dot"])
def test_restore_never_reads_from_the_live_databases_own_files(
    bank: Bank, cli, db_url: str, tmp_path: Path, how: str
) -> None:
    live = sqlite_path(db_url)
    (live.parent / "sub").mkdir(exist_ok=True)
    source = _live_target(live, tmp_path, how)
    before = dump(live)
    line = refused(cli("restore", source, "--yes"))
    assert "the database" in line and "in use" in line, line
    assert dump(live) == before


@sqlite_only
def test_a_backup_lands_whole_or_not_at_all(
    bank: Bank, cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is written to a temporary file beside FILE and renamed over it: interrupted
    before the rename (a crash), FILE is the old file and nothing else is left behind;
    after it, FILE is the whole new backup (a new file, not the old one written over)."""
    from sharetui.ops import backup as backup_module

    target = tmp_path / "nightly.db"
    ok(cli("backup", target, "--json"))
    old_inode, old_bytes = target.stat().st_ino, target.read_bytes()
    bank.core.records.add_lead(name="Added Later", owner=bank.priya, actor=bank.admin)

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt  # the process dies between the copy and the rename

    with monkeypatch.context() as m:
        m.setattr(backup_module.os, "replace", crash)
        with pytest.raises(KeyboardInterrupt):
            backup_module.backup_database(db_url, target, force=True)
    assert (target.stat().st_ino, target.read_bytes()) == (old_inode, old_bytes)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no partial file left"

    ok(cli("backup", target, "--force", "--json"))
    assert target.stat().st_ino != old_inode, "renamed into place, never written over"
    names = [r[0] for r in sqlite3.connect(target).execute("SELECT name FROM leads ORDER BY id")]
    assert names == ["Mira Demir", "Added Later"]


@sqlite_only
def test_backup_never_migrates_the_database_it_copies(cli, tmp_path: Path) -> None:
    """A backup taken before an upgrade is of the old schema."""
    old = tmp_path / "old.db"
    from sharetui.runtime import open_core

    core = open_core(f"sqlite:///{old}", migrate=False)
    migrations.migrate(core.db, core.db_now(), target=1)
    core.close()
    report = ok(cli("backup", tmp_path / "old-backup.db", "--json", env={"SHARETUI_DATABASE_URL": str(old)}))
    assert report["schema_version"] == 1
    assert migrations.applied(_peewee(old)) == {1}


def _peewee(path: Path):
    from peewee import SqliteDatabase

    return SqliteDatabase(str(path))


@sqlite_only
def test_backup_of_a_file_that_is_not_a_sharetui_database_is_refused(cli, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    refused(cli("backup", tmp_path / "x.db", env={"SHARETUI_DATABASE_URL": str(other)}), "not a sharetui")
    assert not (tmp_path / "x.db").exists()


# -- restore --------------------------------------------------------------------------------------
@sqlite_only
def test_restore_gives_back_every_table_exactly(bank: Bank, cli, clock, db_url: str, tmp_path: Path) -> None:
    busy_company(bank, clock)
    live = sqlite_path(db_url)
    original = dump(live)
    assert original["grants"] and original["history"] and original["share_requests"]
    ok(cli("backup", tmp_path / "b.db", "--json"))
    backed_up_at = clock.now()

    core = bank.core  # the product keeps working, then changes things
    clock.advance(timedelta(days=5))
    core.expiry.sweep()
    core.users.deactivate("sofia", actor=bank.admin)
    core.records.add_lead(name="After the backup", owner=bank.priya, actor=bank.admin)
    assert core.sharing.share("lead", bank.lead.id, "kenji", requester=bank.admin).ok
    changed = dump(live)
    assert changed != original

    refused(cli("restore", tmp_path / "b.db"), "holds data", "--yes")
    assert dump(live) == changed, "a refused restore changes nothing"

    report = ok(cli("restore", tmp_path / "b.db", "--yes", "--json"))
    assert report["replaced_data"] is True
    assert report["migrated"] == [] and report["schema_version"] == migrations.latest_version()
    assert dump(live) == original
    # The open connection of the running product sees the restored content.
    assert core.users.get("sofia").active
    assert not core.access.can("kenji", bank.lead, "read")
    assert not core.access.can("daniel", bank.lead, "read"), "his 2d share ran out during the 5 days"
    clock.set(backed_up_at)
    assert core.access.can("daniel", bank.lead, "read")
    assert ok(cli("check", "daniel", "lead", bank.lead.id, "--json"))["allowed"] is True


@sqlite_only
def test_restore_into_a_new_database_needs_no_confirmation(bank: Bank, cli, tmp_path: Path) -> None:
    ok(cli("backup", tmp_path / "b.db", "--json"))
    fresh = tmp_path / "elsewhere" / "new.db"
    env = {"SHARETUI_DATABASE_URL": str(fresh)}
    report = ok(cli("restore", tmp_path / "b.db", "--json", env=env))
    assert report["replaced_data"] is False and report["tables"]["users"] == 9
    listed = ok(cli("users", "list", "--json", env=env))
    assert {u["username"] for u in listed["items"]} >= {"admin", "priya", "daniel"}
    conn = sqlite3.connect(fresh)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


@sqlite_only
def test_restoring_an_older_backup_migrates_it_to_the_latest_schema(cli, tmp_path: Path) -> None:
    from sharetui.runtime import open_core

    old = tmp_path / "v1.db"
    core = open_core(f"sqlite:///{old}", migrate=False)
    migrations.migrate(core.db, core.db_now(), target=1)
    core.db.execute_sql(
        "INSERT INTO users (username, name, email, role, active, created_at, updated_at) "
        "VALUES ('admin', 'Asha', '', 'admin', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    core.close()
    live = tmp_path / "live.db"
    env = {"SHARETUI_DATABASE_URL": str(live)}
    report = ok(cli("restore", old, "--json", env=env))
    later = [f"{m.version:04d}_{m.name}" for m in migrations.available() if m.version > 1]
    assert report["backup_schema_version"] == 1
    assert report["migrated"] == later
    assert report["schema_version"] == migrations.latest_version()
    assert migrations.applied(_peewee(live)) == {m.version for m in migrations.available()}
    assert [u["username"] for u in ok(cli("users", "list", "--json", env=env))["items"]] == ["admin"]


def _good_backup(cli, tmp_path: Path) -> Path:
    path = tmp_path / "good.db"
    ok(cli("backup", path, "--json"))
    return path


def _text(cli, tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("this is a shopping list, not a database\n")
    return path


def _truncated(cli, tmp_path: Path) -> Path:
    data = _good_backup(cli, tmp_path).read_bytes()
    path = tmp_path / "truncated.db"
    path.write_bytes(data[: len(data) // 2])
    return path


def _random(cli, tmp_path: Path) -> Path:
    path = tmp_path / "random.db"
    path.write_bytes(os.urandom(64 * 1024))
    return path


def _corrupt_pages(cli, tmp_path: Path) -> Path:
    """A whole file with the right header whose later pages are overwritten with junk."""
    data = bytearray(_good_backup(cli, tmp_path).read_bytes())
    for offset in range(4096 * 2, len(data), 4096 * 3):
        data[offset : offset + 512] = os.urandom(512)
    path = tmp_path / "corrupt.db"
    path.write_bytes(bytes(data))
    return path


def _empty(cli, tmp_path: Path) -> Path:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    return path


def _other_sqlite(cli, tmp_path: Path) -> Path:
    path = tmp_path / "recipes.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('bread')")
    conn.commit()
    conn.close()
    return path


def _newer(cli, tmp_path: Path) -> Path:
    path = _good_backup(cli, tmp_path)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', "
        "'2030-01-01 00:00:00')",
        (migrations.latest_version() + 1,),
    )
    conn.commit()
    conn.close()
    return path


def _foreign_lineage(cli, tmp_path: Path) -> Path:
    path = _good_backup(cli, tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_migrations SET name = 'someone_elses' WHERE version = 1")
    conn.commit()
    conn.close()
    return path


def _missing_table(cli, tmp_path: Path) -> Path:
    path = _good_backup(cli, tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE grants")
    conn.commit()
    conn.close()
    return path


def _missing(cli, tmp_path: Path) -> Path:
    return tmp_path / "no-such-backup.db"


def _directory(cli, tmp_path: Path) -> Path:
    path = tmp_path / "a-directory"
    path.mkdir()
    return path


BAD_FILES = {
    "text file": (_text, "not an SQLite database"),
    "truncated file": (_truncated, "truncated"),
    "random bytes": (_random, "not an SQLite database"),
    "damaged pages": (_corrupt_pages, "damaged"),
    "empty file": (_empty, "not an SQLite database"),
    "SQLite but not sharetui": (_other_sqlite, "schema_migrations"),
    "newer schema": (_newer, "newer sharetui"),
    "another product's migrations": (_foreign_lineage, "someone_elses"),
    "a table missing": (_missing_table, "grants"),
    "missing file": (_missing, "no such file"),
    "a directory": (_directory, "not a file"),
}


@sqlite_only
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_is_refused_with_exit_2_and_nothing_changes(
    bank: Bank, cli, clock, db_url: str, tmp_path: Path, kind: str
) -> None:
    busy_company(bank, clock)
    make, words = BAD_FILES[kind]
    bad = make(cli, tmp_path)
    live = sqlite_path(db_url)
    before = dump(live)
    bad_bytes = bad.read_bytes() if bad.is_file() else None
    refused(cli("restore", bad, "--yes", "--json"), words)
    assert dump(live) == before
    if bad_bytes is not None:
        assert bad.read_bytes() == bad_bytes, "the backup file itself is never touched"
    assert bank.core.access.can("daniel", bank.lead, "read")


@sqlite_only
def test_restore_waits_for_a_writer_and_readers_see_old_or_new_never_a_mix(
    bank: Bank, db_url: str, tmp_path: Path
) -> None:
    """The restore takes the database's write lock: while another process writes it waits;
    a reader in the middle of a transaction keeps its snapshot of the old content."""
    from sharetui.clock import FrozenClock
    from sharetui.ops.backup import backup_database, restore_database

    live = sqlite_path(db_url)
    backup_database(db_url, tmp_path / "b.db")
    original = dump(live)
    bank.core.records.add_lead(name="Second lead", owner=bank.priya, actor=bank.admin)

    reader = sqlite3.connect(live, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM leads").fetchone()[0] == 2
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE leads SET name = 'written while restoring' WHERE id = ?", (bank.lead.id,))

    outcome: list[Any] = []
    clock = FrozenClock(bank.core.now())
    restoring = threading.Thread(
        target=lambda: outcome.append(restore_database(db_url, tmp_path / "b.db", replace=True, clock=clock))
    )
    restoring.start()
    restoring.join(timeout=0.5)
    assert restoring.is_alive() and outcome == [], "the restore waits while another connection writes"
    writer.execute("COMMIT")
    writer.close()
    restoring.join()
    assert outcome and outcome[0].replaced_data
    assert reader.execute("SELECT COUNT(*) FROM leads").fetchone()[0] == 2, "the reader's snapshot holds"
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM leads").fetchone()[0] == 1
    reader.close()
    assert dump(live) == original, "the restore landed after the writer, whole"


@sqlite_only
def test_database_paths_with_url_characters_name_the_file_they_say(cli, tmp_path: Path) -> None:
    """``--db`` takes a plain path: '#', '?', '%' and spaces in it are part of the file name,
    not a URL fragment, query or escape (they used to open a different file)."""
    folder = tmp_path / "team #2"
    folder.mkdir()
    live, restored = folder / "crm 100% ?.db", folder / "copy %41.db"
    assert cli("--db", str(live), "users", "add", "admin", "--role", "admin").exit_code == 0
    assert live.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["team #2"]
    report = ok(cli("--db", str(live), "backup", folder / "b #1.db", "--json"))
    assert report["file"] == str(folder / "b #1.db")
    ok(cli("--db", str(restored), "restore", folder / "b #1.db", "--json"))
    listed = ok(cli("--db", str(restored), "users", "list", "--json"))
    assert [u["username"] for u in listed["items"]] == ["admin"]
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".db") == [
        "b #1.db",
        "copy %41.db",
        "crm 100% ?.db",
    ]


@sqlite_only
def test_restoring_the_live_database_onto_itself_is_refused(bank: Bank, cli, db_url: str) -> None:
    live = sqlite_path(db_url)
    before = dump(live)
    refused(cli("restore", live, "--yes"), "the database itself")
    assert dump(live) == before


# -- PostgreSQL --------------------------------------------------------------------------------
def test_postgres_commands_are_derived_from_the_url() -> None:
    dump_cmd, restore_cmd = postgres_commands(
        "postgresql://crm%40ops@db.example.com:6543/sales?options=-csearch_path%3Dteam_a", "/b/crm.dump"
    )
    conn = ["-h", "db.example.com", "-p", "6543", "-U", "crm@ops"]
    assert dump_cmd == ["pg_dump", "-Fc", *conn, "-n", "team_a", "-f", "/b/crm.dump", "sales"]
    assert restore_cmd == [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--single-transaction",
        *conn,
        "-d",
        "sales",
        "/b/crm.dump",
    ]
    secret_dump, _ = postgres_commands("postgresql://u:s3cret@h/db", "f")
    assert "s3cret" not in " ".join(secret_dump), "passwords never go on a command line"


@pytest.fixture
def _needs_postgres(db_url: str) -> None:
    if is_sqlite_url(db_url):
        pytest.skip("set SHARETUI_TEST_DATABASE_URL to run the PostgreSQL tests")


@pytest.mark.usefixtures("_needs_postgres")
def test_on_postgres_both_commands_exit_2_and_name_the_pg_commands(
    bank: Bank, cli, db_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "crm.dump"
    dump_cmd, restore_cmd = postgres_commands(db_url, target)
    line = refused(cli("backup", target, "--json"), "pg_dump -Fc")
    assert " ".join(dump_cmd) in line
    line = refused(cli("restore", target, "--yes"), "pg_restore --clean")
    assert " ".join(restore_cmd) in line
    assert not target.exists()


@pytest.mark.usefixtures("_needs_postgres")
def test_on_postgres_the_suggested_commands_round_trip(
    bank: Bank, clock, db_url: str, tmp_path: Path
) -> None:
    """What the error message tells a user to run really backs up and restores the data."""
    busy_company(bank, clock)
    core = bank.core

    def snapshot() -> dict[str, list[tuple]]:
        return {
            t: core.db.execute_sql(f'SELECT * FROM "{t}" ORDER BY 1').fetchall()
            for t in ("users", "leads", "grants", "history", "share_requests", "schema_migrations")
        }

    before = snapshot()
    target = tmp_path / "crm.dump"
    dump_cmd, restore_cmd = postgres_commands(db_url, target)
    subprocess.run(dump_cmd, check=True, capture_output=True)
    core.records.add_lead(name="After the dump", owner=bank.priya, actor=bank.admin)
    assert core.sharing.share("lead", bank.lead.id, "kenji", requester=bank.admin).ok
    assert snapshot() != before
    core.db.close()  # pg_restore --clean drops the schema: let go of it first
    subprocess.run(restore_cmd, check=True, capture_output=True)
    assert snapshot() == before
    assert not core.access.can("kenji", bank.lead, "read")

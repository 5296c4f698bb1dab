"""Backup and restore of the embedded SQLite database (``sharetui backup|restore``).

- **Backup** copies the live database with SQLite's online backup API: one
  step under one read transaction, so the copy is a consistent snapshot while
  other connections keep writing (WAL). It is written to a temporary file
  beside FILE and renamed into place, so FILE is either the whole backup or
  untouched. The copy uses a rollback journal (one self-contained file).
- **Restore** first checks the file on a private copy (an SQLite file that
  passes ``PRAGMA integrity_check``, has ``schema_migrations`` whose versions
  and names are this product's, no newer than this code knows, and the tables
  those migrations made). Only then does it replace the live database's
  content with the backup API in the other direction, which takes the
  database's write lock, so readers and writers in other processes see either
  the old content or the new, never a mix. An older backup is then migrated to
  the latest schema. Any refusal leaves the live database untouched.
- **PostgreSQL** is backed up with ``pg_dump -Fc`` and restored with
  ``pg_restore --clean``; both commands say exactly what to run.

Nothing here needs a :class:`~sharetui.core.service.Core`: a backup must not
migrate the database it copies (a backup taken before an upgrade is of the old
schema), and a restore may target a database that does not exist yet.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlparse

from sharetui.clock import Clock, SystemClock
from sharetui.config import redact_url
from sharetui.errors import UsageError
from sharetui.ops.backup_files import _fsync, _refuse_live

SQLITE_MAGIC = b"SQLite format 3\x00"
# What a migration script does to tables: create, drop, rename (in script order).
_TABLE_DDL = re.compile(
    r'CREATE TABLE\s+(?:IF NOT EXISTS\s+)?"?(?P<created>\w+)"?'
    r'|DROP TABLE\s+(?:IF EXISTS\s+)?"?(?P<dropped>\w+)"?'
    r'|ALTER TABLE\s+"?(?P<old>\w+)"?\s+RENAME TO\s+"?(?P<new>\w+)"?',
    re.IGNORECASE,
)


@dataclass
class BackupReport:
    """What ``backup`` wrote."""

    database: str
    file: str
    bytes: int
    schema_version: int
    tables: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "file": self.file,
            "bytes": self.bytes,
            "schema_version": self.schema_version,
            "tables": self.tables,
        }


@dataclass
class BackupInfo:
    """A checked backup file: its schema version and row counts."""

    file: str
    schema_version: int
    tables: dict[str, int]


@dataclass
class RestoreReport:
    """What ``restore`` did."""

    database: str
    file: str
    backup_schema_version: int
    schema_version: int
    replaced_data: bool
    migrated: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "file": self.file,
            "backup_schema_version": self.backup_schema_version,
            "schema_version": self.schema_version,
            "replaced_data": self.replaced_data,
            "migrated": self.migrated,
            "tables": self.tables,
        }


# -- where the database is ---------------------------------------------------------
def is_postgres_url(url: str) -> bool:
    return urlparse(url).scheme.lower() in ("postgres", "postgresql")


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///`` URL names (read the way :func:`sharetui.db.connect` reads it).

    Raises :class:`UsageError` for ``:memory:`` and for URLs that are not SQLite.
    """
    parsed = urlparse(url)
    if parsed.scheme.lower() != "sqlite":
        raise UsageError(
            f"unsupported database URL {redact_url(url)!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    path = unquote(parsed.path)
    if parsed.netloc == ":memory:" or path in ("/:memory:", ":memory:"):
        raise UsageError("an in-memory database cannot be backed up or restored: name a database file")
    target = path[1:] if path.startswith("/") else path
    if not target:
        raise UsageError(f"database URL {redact_url(url)!r} names no file")
    return Path(target).expanduser().absolute()


def postgres_commands(url: str, file: str | Path) -> tuple[list[str], list[str]]:
    """The ``pg_dump`` and ``pg_restore`` command lines for the database a URL names.

    A ``search_path`` in the URL's ``options`` limits the dump to that schema.
    The password is never put on a command line: set ``PGPASSWORD`` or use ``~/.pgpass``.
    """
    parsed = urlparse(url)
    conn: list[str] = ["-h", parsed.hostname or "127.0.0.1"]
    if parsed.port:
        conn += ["-p", str(parsed.port)]
    if parsed.username:
        conn += ["-U", unquote(parsed.username)]
    name = unquote(parsed.path.lstrip("/"))
    if not name:
        raise UsageError(f"database URL {redact_url(url)!r} names no database")
    options = dict(parse_qsl(parsed.query)).get("options", "")
    schema = re.search(r"-c\s*search_path\s*=\s*([^\s,]+)", options)
    dump = ["pg_dump", "-Fc", *conn]
    if schema:
        dump += ["-n", schema.group(1)]
    dump += ["-f", str(file), name]
    restore = ["pg_restore", "--clean", "--if-exists", "--single-transaction", *conn, "-d", name, str(file)]
    return dump, restore


def _postgres_refusal(url: str, file: str | Path, verb: str) -> UsageError:
    dump, restore = postgres_commands(url, file)
    if verb == "backup":
        return UsageError(
            "sharetui backup copies SQLite databases only; back up this PostgreSQL database with: "
            f"{shlex.join(dump)}"
        )
    return UsageError(
        "sharetui restore replaces SQLite databases only; restore a pg_dump -Fc file into this "
        f"PostgreSQL database with: {shlex.join(restore)} (then run `sharetui init` to migrate it)"
    )


# -- small SQLite helpers -------------------------------------------------------------
def _open_existing(path: Path, *, timeout: float = 15.0) -> sqlite3.Connection:
    """Open a database file that must already exist (never creates one)."""
    return sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=timeout)


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in _tables(conn)}


def _schema_version(conn: sqlite3.Connection) -> int:
    if "schema_migrations" not in _tables(conn):
        return 0
    return int(conn.execute('SELECT COALESCE(MAX(version), 0) FROM "schema_migrations"').fetchone()[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- backup ---------------------------------------------------------------------------
def _check_target(file: str | Path, live: Path, force: bool) -> Path:
    _refuse_live(file, live, "backup")  # before anything else: --force never overrides this
    target = Path(file).expanduser().absolute()
    if target.is_dir():
        raise UsageError(f"{file} is a directory: name the backup file to write")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {file}: directory {target.parent} does not exist")
    if (target.exists() or target.is_symlink()) and not force:
        raise UsageError(f"{file} already exists: name another file, or pass --force to overwrite it")
    if not os.access(target.parent, os.W_OK):
        raise UsageError(f"cannot write {file}: no permission to write in {target.parent}")
    return target


def backup_database(url: str, file: str | Path, *, force: bool = False) -> BackupReport:
    """Write a consistent copy of the live SQLite database to ``file``.

    Raises :class:`UsageError` (and writes nothing) for PostgreSQL, a missing or
    non-sharetui database, or a bad or existing target without ``force``.
    """
    if is_postgres_url(url):
        raise _postgres_refusal(url, file, "backup")
    live = sqlite_path(url)
    if not live.is_file():
        raise UsageError(f"no database at {live}: nothing to back up")
    target = _check_target(file, live, force)
    try:
        source = _open_existing(live)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open database {live}: {_first_line(exc)}") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            if "schema_migrations" not in _tables(source):
                raise UsageError(f"{live} is not a sharetui database (it has no schema_migrations table)")
            copy = sqlite3.connect(tmp)
            try:
                # One step (pages=-1): the whole copy is read in one read transaction, a
                # consistent snapshot, while writers in WAL mode carry on.
                source.backup(copy, pages=-1)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                version = _schema_version(copy)
                counts = _counts(copy)
            finally:
                copy.close()
        except sqlite3.Error as exc:
            raise UsageError(f"cannot back up {live}: {_first_line(exc)}") from None
        finally:
            source.close()
        if target.exists() and not force:  # appeared while we copied
            raise UsageError(f"{file} already exists: name another file, or pass --force to overwrite it")
        _refuse_live(file, live, "backup")  # became one while we copied (a symlink swapped in)
        _fsync(tmp)
        # Atomic: FILE is the old file or the whole new one, never a part, even after a crash.
        os.replace(tmp, target)
        _fsync(target.parent, directory=True)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupReport(redact_url(url), str(target), target.stat().st_size, version, counts)


# -- checking a backup -----------------------------------------------------------------
def _expected_tables(versions: list[int]) -> set[str]:
    """Tables the given migrations leave behind (from their SQLite scripts, in order;
    Python migrations are not read)."""
    from sharetui.db.migrations import MIGRATIONS_DIR, available

    out: set[str] = set()
    for m in available():
        script = MIGRATIONS_DIR / f"{m.version:04d}_{m.name}.sqlite.sql"
        if m.version not in versions or not script.exists():
            continue
        for found in _TABLE_DDL.finditer(script.read_text(encoding="utf-8")):
            if found["created"]:
                out.add(found["created"])
            elif found["dropped"]:
                out.discard(found["dropped"])
            else:
                out.discard(found["old"])
                out.add(found["new"])
    return out


def check_backup_file(conn: sqlite3.Connection, label: str) -> BackupInfo:
    """Check an open candidate backup; raise :class:`UsageError` naming ``label`` if it is not one."""
    from sharetui.db.migrations import available, latest_version

    not_ours = f"{label} is not a sharetui backup"
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{label} is damaged: {_first_line(exc)}") from None
    if problems != ["ok"]:
        raise UsageError(f"{label} is damaged: integrity check says {problems[0]}")
    try:
        tables = _tables(conn)
        if "schema_migrations" not in tables:
            raise UsageError(f"{not_ours}: it is an SQLite database without a schema_migrations table")
        rows = conn.execute('SELECT version, name FROM "schema_migrations" ORDER BY version').fetchall()
        counts = _counts(conn)
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{label} is damaged: {_first_line(exc)}") from None
    if not rows:
        raise UsageError(f"{not_ours}: no migration was ever applied to it")
    latest = latest_version()
    newest = max(int(v) for v, _ in rows)
    if newest > latest:
        raise UsageError(
            f"{label} was made by a newer sharetui (schema version {newest}; this one knows up to "
            f"{latest}): upgrade sharetui before restoring it"
        )
    known = {m.version: m.name for m in available()}
    versions = [int(v) for v, _ in rows]
    for version, name in rows:
        if known.get(int(version)) != name:
            raise UsageError(
                f"{not_ours}: its migration {version} is {name!r}, this sharetui's is "
                f"{known.get(int(version))!r}"
            )
    missing_versions = sorted(v for v in known if v < newest and v not in versions)
    if missing_versions:
        raise UsageError(f"{not_ours}: its schema skips migration(s) {', '.join(map(str, missing_versions))}")
    missing = sorted(_expected_tables(versions) - set(tables))
    if missing:
        raise UsageError(f"{not_ours}: table(s) {', '.join(missing)} are missing")
    return BackupInfo(label, newest, counts)


def _header_problem(path: Path) -> str | None:
    """Why the first page says this is no (whole) SQLite file, or None."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(100)
    if not header.startswith(SQLITE_MAGIC):
        return "it is not an SQLite database file"
    if len(header) < 100:
        return "it is truncated"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    change_counter = int.from_bytes(header[24:28], "big")
    pages = int.from_bytes(header[28:32], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    if pages and valid_for == change_counter and size < pages * page_size:
        return f"it is truncated ({size} of {pages * page_size} bytes)"
    return None


# -- restore -----------------------------------------------------------------------------
def _has_data(live: Path) -> bool:
    """Does the live database hold anything but its migration log? Unreadable counts as yes."""
    if not live.exists() or live.stat().st_size == 0:
        return False
    try:
        conn = _open_existing(live)
        try:
            return any(n for t, n in _counts(conn).items() if t != "schema_migrations")
        finally:
            conn.close()
    except sqlite3.Error:
        return True


def restore_database(
    url: str, file: str | Path, *, replace: bool = False, clock: Clock | None = None
) -> RestoreReport:
    """Replace the live SQLite database's content with a checked backup, then migrate it.

    Args:
        url: the live database (``sqlite:///PATH``; PostgreSQL gets the ``pg_restore`` command).
        file: the backup to restore.
        replace: confirm replacing a database that holds data (``--yes``).
        clock: stamps the migrations a restored older backup needs.

    Raises :class:`UsageError`, changing nothing, when the file is missing, damaged,
    not a sharetui backup or newer than this code, or the database holds data and
    ``replace`` is not set.
    """
    if is_postgres_url(url):
        raise _postgres_refusal(url, file, "restore")
    live = sqlite_path(url)
    source = Path(file).expanduser().absolute()
    if not source.exists():
        raise UsageError(f"{file}: no such file")
    if not source.is_file():
        raise UsageError(f"{file} is not a file")
    _refuse_live(file, live, "restore")
    try:
        problem = _header_problem(source)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    if problem:
        raise UsageError(f"{file} is not a sharetui backup: {problem}")
    with tempfile.TemporaryDirectory(prefix="sharetui-restore-") as scratch:
        # Check and copy from a private copy: what was checked is what gets restored,
        # and a backup left in WAL mode opens without touching the original.
        staged = Path(scratch) / "backup.db"
        try:
            shutil.copyfile(source, staged)
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(staged)
        except sqlite3.Error as exc:
            raise UsageError(f"{file} is not a sharetui backup: {_first_line(exc)}") from None
        try:
            info = check_backup_file(conn, str(file))
            replaced = _has_data(live)
            if replaced and not replace:
                raise UsageError(
                    f"the database at {live} holds data: pass --yes to replace it with the content of {file}"
                )
            live.parent.mkdir(parents=True, exist_ok=True)
            try:
                target = sqlite3.connect(live, timeout=15)
            except sqlite3.Error as exc:
                raise UsageError(f"cannot open database {live}: {_first_line(exc)}") from None
            try:
                # The backup API takes the live database's write lock (waiting on the busy
                # timeout for writers) and swaps the whole content in one transaction.
                conn.backup(target, pages=-1)
            except sqlite3.Error as exc:
                raise UsageError(f"cannot restore into {live}: {_first_line(exc)}") from None
            finally:
                target.close()
        finally:
            conn.close()
    migrated = _migrate(url, clock or SystemClock())
    check = _open_existing(live)
    try:
        version, counts = _schema_version(check), _counts(check)
    finally:
        check.close()
    return RestoreReport(
        redact_url(url),
        str(source),
        info.schema_version,
        version,
        replaced,
        [f"{m.version:04d}_{m.name}" for m in migrated],
        counts,
    )


def _migrate(url: str, clock: Clock) -> list[Any]:
    """Bring the restored database to the latest schema with the product's runner."""
    from sharetui.db import migrations
    from sharetui.db.connection import connect
    from sharetui.domain.time import to_db

    db = connect(url)
    try:
        now: datetime = to_db(clock.now())  # type: ignore[assignment]
        return migrations.migrate(db, now)
    finally:
        db.close()


__all__ = [
    "BackupInfo",
    "BackupReport",
    "RestoreReport",
    "backup_database",
    "check_backup_file",
    "postgres_commands",
    "restore_database",
    "sqlite_path",
]

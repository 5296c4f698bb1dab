"""The files a backup must never touch, and writing one so it lands whole.

SQLite keeps a database in up to four files; committed data may live in the WAL
only (until a checkpoint), so a backup written over any of them loses data, and
a restore read from them reads the database into itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from sharetui.errors import UsageError

# SQLite keeps a database in up to four files: the database, its write-ahead log and
# shared-memory index (WAL mode), and its rollback journal. Committed data may live in
# the WAL only (until a checkpoint), so overwriting any of them loses or corrupts it.
_COMPANIONS = (
    ("", "the database itself"),
    ("-wal", "the database's write-ahead log"),
    ("-shm", "the database's shared-memory index"),
    ("-journal", "the database's rollback journal"),
)


def _live_files(live: Path) -> list[tuple[Path, str]]:
    """The live database's files, named as given and as resolved (SQLite names the
    companions after the path it opened; a symlinked database has them beside either)."""
    bases = [live.absolute()]
    try:
        resolved = live.resolve()
    except OSError:
        resolved = bases[0]
    if resolved != bases[0]:
        bases.append(resolved)
    return [(base.with_name(base.name + suffix), what) for base in bases for suffix, what in _COMPANIONS]


def live_file_role(path: str | Path, live: Path) -> str | None:
    """What ``path`` is of the live database (``"the database's write-ahead log"``, ...),
    or None.

    Compared by resolved path (symlinks, ``..``; files that do not exist yet, such as
    a ``-journal`` in WAL mode, count too) and, for files that exist, by device and
    inode (hard links, bind mounts)."""
    candidate = Path(path).expanduser().absolute()
    try:
        resolved = candidate.resolve()
    except OSError:
        resolved = candidate
    try:
        st = os.stat(candidate)  # follows symlinks
        identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        identity = None
    for live_file, what in _live_files(live):
        try:
            live_resolved = live_file.resolve()
        except OSError:
            live_resolved = live_file
        if candidate == live_file or resolved == live_resolved:
            return what
        if identity is not None:
            try:
                other = os.stat(live_file)
            except OSError:
                continue
            if identity == (other.st_dev, other.st_ino):
                return what
    return None


def _refuse_live(file: str | Path, live: Path, verb: str) -> None:
    role = live_file_role(file, live)
    if role is None:
        return
    what = "the backup file to write" if verb == "backup" else "a backup file to restore"
    raise UsageError(f"{file} is {role} (of {live}, in use): name {what}")


def _fsync(path: Path, *, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a folder's entries) to the disk: a rename is atomic, but
    only a synced file and folder make it so across a power cut."""
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:  # some file systems cannot sync a folder; the file must be synced
            raise
    finally:
        os.close(fd)

"""Bulk lead import: ``sharetui leads import FILE`` and ``sharetui load``'s leads.json.

:func:`import_leads` takes rows (mappings with the keys in :data:`IMPORT_KEYS`)
and works in two steps:

1. **Check every row** before anything is written: a name, an owner who is a
   user (by username), known keys only, text where text is due and no longer
   than its column, custom fields as an object, and refs unique in the input.
   Every problem is collected; any problem raises :class:`LeadImportError` naming
   the rows (line numbers for files) and writes nothing.
2. **Write in one transaction**: rows whose ``ref`` is already present are
   skipped (so a re-import adds nothing, as ``load`` does); owners of the rows
   still to create must be active (only admins and sales managers import, for
   any owner: DESIGN §9). Then the leads go in with prepared
   ``executemany`` (``COPY`` on PostgreSQL) in chunks, each chunk followed by
   its leads' ``lead.created`` outbox events (the event ``add_lead`` writes, to
   the byte, made by one ``INSERT ... SELECT``), so automations on ``new_lead``
   run for imported leads exactly as for ``leads add``. On SQLite a large
   import also takes the bulk-load steps of :func:`_sqlite_bulk_load` (search
   index fed once, not by a trigger per row; indexes rebuilt once when the
   table at least doubles).

Why one transaction rather than one per chunk: an import is one request, and
either all of it happened or none did. A crash or a database error half-way
leaves nothing to clean up, re-running the same file is always safe (with or
without refs), and the outbox never announces leads that were rolled back. The
price, on SQLite, is that other writers wait for the commit (readers do not,
under WAL).

:class:`LeadFile` (in :mod:`sharetui.ops.lead_files`) reads CSV, JSON Lines and
JSON arrays lazily, remembering where each row came from, so an error can say
``line 7``; this module re-exports it with the rest of the import's names.

Why this stays one file of some 530 lines: the check (step 1) and the write (step 2)
are one request over one ``_Import``'s state (the users, the rows to skip or refuse),
and neither half reads on its own; reading files is the part that did, and moved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sharetui.core.access.gate import Capability
from sharetui.db.connection import is_sqlite
from sharetui.db.models import Lead
from sharetui.db.sql import Statement
from sharetui.domain.text import find_text_problem, text_problem
from sharetui.ops.lead_files import (
    FORMATS,
    IMPORT_KEYS,
    TEXT_KEYS,
    LeadFile,
    LeadImportError,
    _Bad,
)

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.db.models import User

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``; stages, in order: ``check`` (total unknown,
``None``, while a file is still being read), ``write``, ``indexes`` (SQLite, from
1,000 leads: the search index, and the lead indexes when the table doubles) and
``commit``."""

CHUNK = 20_000  # rows per executemany / COPY, and per progress step
_SQLITE_CACHE_KIB = 131_072  # page cache while an import writes (the connection's default: 32 MB)
_SEARCH_BULK_ROWS = 1_000  # from this many leads, feed the SQLite search index once, not per row
_MAX_LEN = {key: Lead._meta.fields[key].max_length for key in ("ref", "name", *TEXT_KEYS)}


def _json_encoder() -> Callable[[Any], str]:
    """The text JSONField stores (``json.dumps(sort_keys=True, ensure_ascii=False)``),
    from one C encoder made once: ``dumps`` builds a new one per call, which costs
    more than encoding a small object."""
    from json import encoder

    if encoder.c_make_encoder is None:  # pragma: no cover - CPython always has _json
        return json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not JSON")

    # markers=None: no cycle check, so a cyclic object raises RecursionError (caught by the caller).
    make = encoder.c_make_encoder(
        None, refuse, encoder.encode_basestring, None, ": ", ", ", True, False, True
    )
    return lambda value: "".join(make(value, 0))


_encode_json = _json_encoder()

_LEAD_COLUMNS = [
    "id",
    "ref",
    "name",
    "email",
    "phone",
    "company",
    "stage",
    "source",
    "owner_id",
    "fields",
    "created_at",
    "updated_at",
]
_INSERT_LEADS = Statement(
    f"INSERT INTO leads ({', '.join(_LEAD_COLUMNS)}) VALUES ({', '.join('?' * len(_LEAD_COLUMNS))})"
)
# add_lead's event for each new lead: its payload as JSONField writes
# {"actor_id": A, "owner_id": N} (A is bound as the text of an id, or null).
_EVENTS_SELECT = (
    "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
    "SELECT 'lead.created', 'lead', id, "
    "'{\"actor_id\": ' || {actor} || ', \"owner_id\": ' || owner_id || '}', created_at, 0 FROM leads "
)
_INSERT_EVENTS = Statement(_EVENTS_SELECT.replace("{actor}", "?") + "WHERE id BETWEEN ? AND ? ORDER BY id")
_INSERT_EVENTS_PG = _EVENTS_SELECT.replace("{actor}", "%s") + "WHERE id = ANY(%s) ORDER BY id"


@dataclass
class ImportReport:
    """What :func:`import_leads` did."""

    rows: int = 0
    created: int = 0
    skipped: int = 0  # rows whose ref was already present
    first_id: int | None = None
    last_id: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "skipped": self.skipped,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "seconds": round(self.seconds, 3),
        }


# -- the import ----------------------------------------------------------------------------------
def import_leads(
    core: Core,
    rows: Iterable[Mapping[str, Any]],
    *,
    actor: User | None,
    where: Callable[[int], str] | None = None,
    source: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Create many leads at once (see the module docstring for the rules).

    Args:
        rows: mappings with keys from :data:`IMPORT_KEYS`; read once, so a
            :class:`LeadFile` (or any generator) streams.
        actor: who imports: an admin or a sales manager (DESIGN §9), who import for
            any owner; ``None`` is the system.
        where: names row ``i`` (0-based) in errors; default ``row i+1``
            (a :class:`LeadFile` passes its ``where``).
        source: names the input at the start of an error (e.g. the file).
        progress: called as ``progress(stage, done, total)``.

    Returns:
        An :class:`ImportReport`. Bad rows raise :class:`LeadImportError`
        (exit 2 on the CLI), an actor who may not import :class:`PermissionDenied`;
        either way nothing is written.
    """
    core.gate.require(actor, Capability.IMPORT)  # admins and sales managers (DESIGN §9)
    started = time.perf_counter()
    report = _Import(core, actor, where or (lambda i: f"row {i + 1}"), source, progress).run(rows)
    report.seconds = time.perf_counter() - started
    return report


class _Import:
    def __init__(
        self,
        core: Core,
        actor: User | None,
        where: Callable[[int], str],
        source: str | None,
        progress: Progress | None,
    ) -> None:
        self.core = core
        self.actor = actor
        self.where = where
        self.source = source
        self.progress: Progress = progress or (lambda stage, done, total: None)
        # Rows that may only be created under conditions known once refs are looked up.
        self.inactive_rows: list[int] = []

    def run(self, rows: Iterable[Mapping[str, Any]]) -> ImportReport:
        total = len(rows) if isinstance(rows, (list, tuple)) else None
        checked, refs = self.check(rows, total)
        report = ImportReport(rows=len(checked))
        with self.core.db.atomic():
            skip = self.existing(refs)
            self.check_owners(checked, skip)
            report.skipped = len(skip)
            ids = self.write(checked, skip)
            self.progress("commit", 0, 1)  # SQLite: a large commit checkpoints the WAL
        self.progress("commit", 1, 1)
        if ids:
            report.created = len(ids)
            report.first_id, report.last_id = min(ids), max(ids)
        return report

    # -- step 1: every row, before any write -------------------------------------------------------
    def check(
        self, rows: Iterable[Mapping[str, Any]], total: int | None
    ) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
        """Rows -> ``(ref, name, email, phone, company, stage, source, owner_id, fields)``
        tuples, and the refs given (ref -> row index).

        One test of a good row's values, written out (this runs a million times
        for a million leads); a row that fails it goes to :meth:`row_problems`, which
        names everything wrong with it."""
        users: dict[str, int] = {}  # username -> id, every user (deactivated ones too)
        self.users = users
        inactive: set[int] = set()
        for uid, username, active in Statement("SELECT id, username, active FROM users").all():
            users[str(username)] = int(uid)
            if not active:
                inactive.add(int(uid))
        owner_ids: dict[str, int | None] = {}  # the owner as written -> user id (None: unknown)
        problems: list[str] = []
        out: list[tuple[Any, ...]] = []
        refs: dict[str, int] = {}
        known = IMPORT_KEYS.issuperset
        encode = _encode_json
        n_name, n_ref, n_email, n_phone, n_company, n_stage, n_source = (
            _MAX_LEN[k] for k in ("name", "ref", *TEXT_KEYS)
        )
        where = self.where
        progress = self.progress
        progress("check", 0, total)
        i = -1
        for i, row in enumerate(rows):
            if not i % CHUNK and i:
                progress("check", i, total)
            if type(row) is not dict:
                if not isinstance(row, Mapping):
                    why = row.why if isinstance(row, _Bad) else "not an object with lead fields"
                    problems.append(f"{where(i)}: {why}")
                    continue
                row = dict(row)
            get = row.get
            name = get("name")
            if type(name) is str:
                name = name.strip()
            owner = get("owner")
            owner_id = None
            if type(owner) is str:
                owner_id = owner_ids.get(owner, 0)
                if owner_id == 0:  # not seen yet
                    owner_id = owner_ids[owner] = users.get(owner.strip().lower())
            email = get("email")
            email = "" if email is None else email
            phone = get("phone")
            phone = "" if phone is None else phone
            company = get("company")
            company = "" if company is None else company
            stage = get("stage")
            stage = "new" if stage is None else stage
            source = get("source")
            source = "" if source is None else source
            fields = get("fields")
            text = "{}" if fields is None else None
            if type(fields) is dict:
                try:
                    text = encode(fields)
                except (TypeError, ValueError, RecursionError):
                    text = None
            ref = get("ref")
            if ref == "":
                ref = None
            if not (
                owner_id is not None
                and text is not None
                and type(name) is str
                and 0 < len(name) <= n_name
                and type(email) is str
                and len(email) <= n_email
                and type(phone) is str
                and len(phone) <= n_phone
                and type(company) is str
                and len(company) <= n_company
                and type(stage) is str
                and len(stage) <= n_stage
                and type(source) is str
                and len(source) <= n_source
                and known(row)
                and (ref is None or (type(ref) is str and len(ref) <= n_ref and refs.setdefault(ref, i) == i))
                and _storable(f"{name}{email}{phone}{company}{stage}{source}{ref}", text, fields)
            ):
                found = self.row_problems(row, i, refs) or ["cannot be imported"]  # never silently dropped
                problems.extend(f"{where(i)}: {p}" for p in found)
                continue
            if owner_id in inactive:
                if ref is None:  # cannot be skipped: the owner is wrong now
                    problems.append(f"{where(i)}: owner {owner.strip().lower()} is deactivated")  # type: ignore[union-attr]
                    continue
                self.inactive_rows.append(i)
            out.append((ref, name, email, phone, company, stage, source, owner_id, text))
        progress("check", i + 1, i + 1)
        if problems:
            raise LeadImportError(problems, self.source)
        return out, refs

    def row_problems(self, row: Mapping[str, Any], i: int, refs: dict[str, int]) -> list[str]:
        """Everything wrong with one row (the slow, thorough twin of :meth:`check`'s test)."""
        bad: list[str] = []
        unknown = sorted(repr(k) for k in row if k not in IMPORT_KEYS)
        if unknown:
            bad.append(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
        name = row.get("name")
        if type(name) is not str:
            bad.append("a lead needs a name" if name is None else f"name must be text, not {_kind(name)}")
        elif not name.strip():
            bad.append("a lead needs a name")
        elif len(name.strip()) > _MAX_LEN["name"]:
            bad.append(f"name is longer than {_MAX_LEN['name']} characters")
        owner = row.get("owner")
        if owner is None or (type(owner) is str and not owner.strip()):
            bad.append("an owner is required (a username)")
        elif type(owner) is not str:
            bad.append(f"owner must be a username, not {_kind(owner)}")
        elif owner.strip().lower() not in self.users:
            bad.append(f"unknown owner {owner!r}")
        for key in ("name", *TEXT_KEYS, "ref"):
            value = row.get(key)
            problem = text_problem(value) if type(value) is str else None
            if problem:
                bad.append(f"{key} {problem}")
            if key in ("name", "ref"):
                continue
            if value is not None and type(value) is not str:
                bad.append(f"{key} must be text, not {_kind(value)}")
            elif value is not None and len(value) > _MAX_LEN[key]:
                bad.append(f"{key} is longer than {_MAX_LEN[key]} characters")
        fields = row.get("fields")
        if isinstance(fields, _Bad):
            bad.append(fields.why)
        elif type(fields) is dict:
            try:
                _encode_json(fields)
            except (TypeError, ValueError, RecursionError) as exc:
                bad.append(f"fields cannot be stored as JSON ({exc})")
            else:
                problem = find_text_problem(fields, "fields")
                if problem:
                    bad.append(problem)
        elif fields is not None:
            bad.append(f"fields must be an object of custom fields, not {_kind(fields)}")
        ref = row.get("ref")
        if ref is not None and ref != "":
            if type(ref) is not str:
                bad.append(f"ref must be text, not {_kind(ref)}")
            elif len(ref) > _MAX_LEN["ref"]:
                bad.append(f"ref is longer than {_MAX_LEN['ref']} characters")
            else:
                first = refs.setdefault(ref, i)
                if first != i:
                    bad.append(f"ref {ref!r} appears twice (first at {self.where(first)})")
        return bad

    # -- step 2: in the write transaction ------------------------------------------------------------
    def existing(self, refs: dict[str, int]) -> set[int]:
        """Indexes of the rows whose ref is already a lead's."""
        found: set[int] = set()
        keys = list(refs)
        for start in range(0, len(keys), 100_000):
            part = keys[start : start + 100_000]
            if is_sqlite():
                # One parameter however many refs: json_each unpacks it, the ref index does the rest.
                sql, param = (
                    "SELECT ref FROM leads WHERE ref IN (SELECT value FROM json_each(?))",
                    json.dumps(part),
                )
            else:
                sql, param = "SELECT ref FROM leads WHERE ref = ANY(%s)", part  # type: ignore[assignment]
            found.update(refs[r] for (r,) in self.core.db.execute_sql(sql, (param,)).fetchall())
        return found

    def check_owners(self, checked: list[tuple[Any, ...]], skip: set[int]) -> None:
        """Rows to create need an active owner."""
        names = {int(uid): str(name) for uid, name in Statement("SELECT id, username FROM users").all()}
        problems = [
            f"{self.where(i)}: owner {names[checked[i][7]]} is deactivated"
            for i in self.inactive_rows
            if i not in skip
        ]
        if problems:
            raise LeadImportError(problems, self.source)

    def write(self, checked: list[tuple[Any, ...]], skip: set[int]) -> list[int]:
        """Insert the leads and their ``lead.created`` events; returns the new ids."""
        todo = [row for i, row in enumerate(checked) if i not in skip] if skip else checked
        n = len(todo)
        self.progress("write", 0, n)
        if not n:
            return []
        now = self.core.db_now()
        sqlite = is_sqlite()
        stamp: Any = now.isoformat(" ") if sqlite else now  # the text SQLite's adapter would write
        ids: list[int] = []
        top = 0
        if sqlite:  # BEGIN IMMEDIATE holds the write lock: the ids after the maximum stay ours
            top = int((Statement("SELECT COALESCE(MAX(id), 0) FROM leads").one() or (0,))[0])
        with _sqlite_bulk_load(self.core, top + 1, top + n, self.progress) if sqlite else nullcontext():
            self.insert(todo, top, stamp, ids)
        return ids

    def insert(self, todo: list[tuple[Any, ...]], top: int, stamp: Any, ids: list[int]) -> None:
        """The leads, a chunk at a time, each chunk followed by its events."""
        n = len(todo)
        sqlite = is_sqlite()
        cursor = self.core.db.cursor()
        copy = not sqlite and hasattr(cursor, "copy")
        for start in range(0, n, CHUNK):
            part = todo[start : start + CHUNK]
            if sqlite:  # the ids after the maximum, ours under the write lock
                chunk_ids = list(range(top + 1 + start, top + 1 + start + len(part)))
            else:  # from the sequence, so concurrent writers never collide with us
                chunk_ids = [
                    int(r[0])
                    for r in self.core.db.execute_sql(
                        "SELECT nextval(pg_get_serial_sequence('leads', 'id')) FROM generate_series(1, %s)",
                        (len(part),),
                    ).fetchall()
                ]
            leads = [(lid, *row, stamp, stamp) for lid, row in zip(chunk_ids, part, strict=True)]
            if copy:
                with cursor.copy(f"COPY leads ({', '.join(_LEAD_COLUMNS)}) FROM STDIN") as pipe:
                    for item in leads:
                        pipe.write_row(item)
            else:
                cursor.executemany(_INSERT_LEADS.sql(), leads)
            # One lead.created event per lead, in id order, made by the database from the rows
            # just written (no second pass of a million rows through Python).
            actor = "null" if self.actor is None else str(int(self.actor.id))
            if sqlite:
                _INSERT_EVENTS.run([actor, chunk_ids[0], chunk_ids[-1]])
            else:  # only our ids: other sessions may have taken ids in between
                self.core.db.execute_sql(_INSERT_EVENTS_PG, (actor, chunk_ids))
            ids.extend(chunk_ids)
            self.progress("write", start + len(part), n)


@contextmanager
def _sqlite_bulk_load(core: Core, first_id: int, last_id: int, progress: Progress) -> Iterator[None]:
    """SQLite, inside the import's transaction, around the writes of the leads
    ``first_id..last_id``:

    - a bigger page cache while it writes;
    - the search index (FTS5, fed by a trigger per row, which costs more than the
      rest of the insert) fed the new rows in one statement after the writes;
    - when the import at least doubles the leads table (and is large), the table's
      secondary indexes dropped and rebuilt from their own DDL before the commit:
      one sort per index beats a B-tree insert per row (the rule ``sharetui
      generate`` follows). The unique ref index is rebuilt too, and the rows were
      checked against it under the write lock.

    Readers keep their snapshot, with the indexes and triggers, until the commit; a
    rollback brings them back with everything else."""
    from sharetui.db.connection import SQLITE_PRAGMAS
    from sharetui.db.search import index_sqlite_rows, suspend_sqlite_triggers
    from sharetui.ops.generator.bulk import BULK_INDEX_ROWS

    adding = last_id - first_id + 1
    deferred: list[str] = []
    core.db.execute_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
    try:
        triggers = suspend_sqlite_triggers(core.db, "leads") if adding >= _SEARCH_BULK_ROWS else None
        if adding >= BULK_INDEX_ROWS:
            existing = int((Statement("SELECT COUNT(*) FROM leads").one() or (0,))[0])
            if existing <= adding:
                for name, ddl in Statement(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' "
                    "AND sql IS NOT NULL ORDER BY name"
                ).all():
                    core.db.execute_sql(f'DROP INDEX "{name}"')
                    deferred.append(ddl)
        yield
        steps = len(deferred) + (triggers is not None)
        for done, ddl in enumerate(deferred):
            progress("indexes", done, steps)
            core.db.execute_sql(ddl)
        if triggers is not None:
            progress("indexes", len(deferred), steps)
            index_sqlite_rows(core.db, "leads", triggers, first_id, last_id)
        if steps:
            progress("indexes", steps, steps)
    finally:
        core.db.execute_sql(f"PRAGMA cache_size = {SQLITE_PRAGMAS['cache_size']}")


def _storable(plain: str, fields_text: str | None, fields: Any) -> bool:
    """Whether a row's text columns (``plain``, joined) and its custom fields (as JSON
    text) can be stored: no NUL (PostgreSQL refuses it) and no lone surrogate (a
    ``"\\ud800"`` escape in a JSON file; no database encodes it). Runs once per row:
    ASCII text (most of it) is settled without encoding anything."""
    if "\0" in plain:
        return False
    if fields_text is not None and "\\u0000" in fields_text and find_text_problem(fields):
        return False  # the JSON encoder wrote a NUL as \u0000 (the check is exact, not the hint)
    if plain.isascii() and (fields_text is None or fields_text.isascii()):
        return True
    try:
        plain.encode("utf-8")
        if fields_text is not None:
            fields_text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


__all__ = [
    "FORMATS",
    "IMPORT_KEYS",
    "ImportReport",
    "LeadFile",
    "LeadImportError",
    "import_leads",
]

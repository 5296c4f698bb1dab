"""Load a ``sample_data`` directory: users, groups, activity types, leads,
opportunities, activities, tasks and shares (format: ``sample_data/README.md``).

Every file is read and checked before anything is written; a bad file gets an
error naming the file and the record, and nothing is loaded. Loading is
idempotent: users match by username, types by name, records by ``ref``, and
shares by their position in the story, so a second load adds nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharetui.clock import FrozenClock
from sharetui.db.models import Activity, ActivityType, Lead, Opportunity, ShareRequest, Task, User
from sharetui.domain.durations import offset_from, parse_duration, parse_offset
from sharetui.domain.roles import Access, EntityType, GroupLevel, Role
from sharetui.domain.text import find_text_problem
from sharetui.errors import DataFileError, SharetuiError
from sharetui.ops.input_files import limit_of, read_text

if TYPE_CHECKING:
    from sharetui.core.service import Core

FILES = ("users", "activity_types", "leads", "opportunities", "activities", "tasks", "shares")


@dataclass
class LoadReport:
    created: Counter[str] = field(default_factory=Counter)
    existing: Counter[str] = field(default_factory=Counter)
    expired: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": dict(self.created),
            "already_present": dict(self.existing),
            "expired_on_load": self.expired,
        }


# Text no database stores (a NUL, a lone surrogate) gets into parsed JSON only through
# an escape (strict UTF-8 decoding let no surrogate through, JSON refuses a raw NUL):
# files without one, nearly all, need no walk over their records.
_MAYBE_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")


class _Reader:
    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit  # bytes per file at most (setting max_input_bytes)

    def read(self, name: str) -> list[dict[str, Any]]:
        path = self.root / f"{name}.json"
        if not path.exists():
            return []
        try:
            text = read_text(path, self.limit)
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        except ValueError:  # a number with more digits than int() reads
            raise DataFileError(f"{path}: invalid JSON: a number has too many digits") from None
        except RecursionError:
            raise DataFileError(f"{path}: invalid JSON: arrays or objects nested too deeply") from None
        except OSError as exc:  # e.g. users.json is a folder
            raise DataFileError(f"{path}: cannot read: {exc.strerror}") from None
        if not isinstance(data, list):
            raise DataFileError(f"{path}: must hold a JSON array of records")
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise DataFileError(f"{path}: record {i} is not a JSON object")
        if _MAYBE_UNSTORABLE.search(text):  # a JSON escape of a NUL or a surrogate: look closer
            for i, item in enumerate(data):
                problem = find_text_problem(item)
                if problem:
                    raise DataFileError(f"{path}: record {i}: {problem}")
        return data


def _label(name: str, index: int, item: dict[str, Any]) -> str:
    key = item.get("ref") or item.get("username") or item.get("name")
    return f"{name}.json record {index}" + (f" ({key})" if key else "")


def _require(item: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        value = item.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataFileError(f"{where}: missing {key!r}")
        if isinstance(value, (list, dict)):
            raise DataFileError(f"{where}: {key!r} must be one value, not {type(value).__name__} {value!r}")


@contextmanager
def _naming(name: str, index: int, item: dict[str, Any]) -> Iterator[None]:
    """Turn an error while writing one record into one naming its file and record."""
    try:
        yield
    except DataFileError:
        raise
    except SharetuiError as exc:
        raise DataFileError(f"{_label(name, index, item)}: {exc.message}") from None


class Loader:
    def __init__(self, core: Core) -> None:
        self.core = core

    def load(self, path: str | Path, *, actor: User | None) -> LoadReport:
        """Load a sample-data directory (admins; the system on a database with no users)."""
        from sharetui.core.access.gate import Capability

        self.core.gate.require(actor, Capability.LOAD)
        root = Path(path)
        if not root.is_dir():
            raise DataFileError(f"{root}: not a directory of sample data")
        reader = _Reader(root, limit_of(self.core))
        data = {name: reader.read(name) for name in FILES}
        if not any(data.values()):
            raise DataFileError(f"{root}: no sample data files ({', '.join(f + '.json' for f in FILES)})")
        self._check(data)
        definitions = self._read_automations(root)  # checked before anything is written, too
        report = LoadReport()
        with self.core.db.atomic():
            try:
                self._write(data, report)
            except DataFileError:
                raise
            except SharetuiError as exc:
                raise DataFileError(f"{root}: {exc.message}") from None
        report.expired = self.core.expiry.sweep().expired
        self._add_automations(definitions, report)
        return report

    def _read_automations(self, root: Path) -> list[Any]:
        """``automations/*.toml``, read and validated."""
        folder = root / "automations"
        if not folder.is_dir():
            return []
        files = sorted(folder.glob("*.toml"))
        definitions = []
        limit = limit_of(self.core)
        for path in files:
            text = read_text(path, limit)
            try:
                definitions.append(self.core.automations.parse(text, str(path)))
            except SharetuiError as exc:
                raise DataFileError(exc.message) from None
        return definitions

    def _add_automations(self, definitions: list[Any], report: LoadReport) -> None:
        """Added by name (idempotent), after the records, so they act only on what
        happens from now on."""
        from sharetui.db.models import Automation

        admin = self._admin()
        with self.core.db.atomic():
            for definition in definitions:
                if Automation.get_or_none(Automation.name == definition.name) is not None:
                    report.existing["automations"] += 1
                    continue
                self.core.automations.add(definition, actor=admin)
                report.created["automations"] += 1

    # -- checks before writing --------------------------------------------------
    def _check(self, data: dict[str, list[dict[str, Any]]]) -> None:
        usernames = {u.username for u in User.select(User.username)}
        types = {t.name: t.entity for t in ActivityType.select()}
        seen: dict[str, set[str]] = {}
        for i, item in enumerate(data["users"]):
            where = _label("users", i, item)
            _require(item, ("username", "role"), where)
            if not isinstance(item.get("groups") or {}, dict):
                raise DataFileError(f"{where}: groups must map group names to levels (own, view, ...)")
            try:
                Role.parse(str(item["role"]))
                for level in (item.get("groups") or {}).values():
                    GroupLevel.parse(str(level))
            except SharetuiError as exc:
                raise DataFileError(f"{where}: {exc.message}") from None
            usernames.add(str(item["username"]).lower())
        for i, item in enumerate(data["activity_types"]):
            where = _label("activity_types", i, item)
            _require(item, ("name",), where)
            if item.get("entity", "lead") not in ("lead", "opportunity"):
                raise DataFileError(f"{where}: entity must be lead or opportunity")
            types[item["name"]] = item.get("entity", "lead")
        refs: dict[str, str] = {}
        refs.update({r: "lead" for r in Lead.select(Lead.ref).where(Lead.ref.is_null(False)).scalars()})
        refs.update(
            {
                r: "opportunity"
                for r in Opportunity.select(Opportunity.ref).where(Opportunity.ref.is_null(False)).scalars()
            }
        )
        refs.update(
            {
                r: "activity"
                for r in Activity.select(Activity.ref).where(Activity.ref.is_null(False)).scalars()
            }
        )

        def user(where: str, value: Any, what: str) -> None:
            if str(value).lower() not in usernames:
                raise DataFileError(f"{where}: unknown {what} {value!r}")

        def ref_to(where: str, value: Any, kind: str) -> None:
            if refs.get(str(value)) != kind:
                raise DataFileError(f"{where}: unknown {kind} {value!r}")

        def when(where: str, value: Any, what: str) -> None:
            if value is None:
                return
            try:
                offset_from(self.core.now(), str(value))
            except SharetuiError as exc:
                raise DataFileError(f"{where}: {what}: {exc.message}") from None

        for name, kind in (
            ("leads", "lead"),
            ("opportunities", "opportunity"),
            ("activities", "activity"),
            ("tasks", "task"),
        ):
            seen[name] = set()
            for i, item in enumerate(data[name]):
                where = _label(name, i, item)
                _require(item, ("ref",), where)
                if item["ref"] in seen[name]:
                    raise DataFileError(f"{where}: ref {item['ref']!r} appears twice")
                seen[name].add(item["ref"])
                if name == "leads":
                    _require(item, ("name", "owner"), where)
                    user(where, item["owner"], "owner")
                elif name == "opportunities":
                    _require(item, ("name", "owner", "lead"), where)
                    user(where, item["owner"], "owner")
                    ref_to(where, item["lead"], "lead")
                    if not isinstance(item.get("amount", 0), (int, float)):
                        raise DataFileError(f"{where}: amount must be a number")
                elif name == "activities":
                    _require(item, ("type",), where)
                    if item["type"] not in types:
                        raise DataFileError(f"{where}: unknown activity type {item['type']!r}")
                    on = "lead" if item.get("lead") else "opportunity" if item.get("opportunity") else None
                    if on is None:
                        raise DataFileError(f"{where}: needs a lead or an opportunity")
                    ref_to(where, item[on], on)
                    if types[item["type"]] != on:
                        raise DataFileError(
                            f"{where}: type {item['type']!r} applies to {types[item['type']]}s"
                        )
                    if item.get("owner"):
                        user(where, item["owner"], "owner")
                    if item.get("status", "open") not in ("open", "completed"):
                        raise DataFileError(f"{where}: status must be open or completed")
                    when(where, item.get("occurred"), "occurred")
                else:
                    _require(item, ("owner", "subject"), where)
                    user(where, item["owner"], "owner")
                    on = "lead" if item.get("lead") else "opportunity" if item.get("opportunity") else None
                    if on is None:
                        raise DataFileError(f"{where}: needs a lead or an opportunity")
                    ref_to(where, item[on], on)
                    for key in ("due", "reminder", "completed"):
                        when(where, item.get(key), key)
                if name != "tasks":
                    refs[str(item["ref"])] = kind
        for i, item in enumerate(data["shares"]):
            where = f"shares.json record {i}"
            _require(item, ("entity", "record", "with", "by", "for"), where)
            kind = (
                "lead"
                if item["entity"] == "lead"
                else "opportunity"
                if item["entity"] in ("opp", "opportunity")
                else None
            )
            if kind is None:
                raise DataFileError(f"{where}: entity must be lead or opportunity")
            ref_to(where, item["record"], kind)
            user(where, item["with"], "user")
            user(where, item["by"], "user")
            if item.get("context"):
                ref_to(where, item["context"], "activity")
            try:
                Access.parse(item.get("access", "read"))
                parse_duration(str(item["for"]))
            except SharetuiError as exc:
                raise DataFileError(f"{where}: {exc.message}") from None
            when(where, item.get("started"), "started")

    # -- writing -------------------------------------------------------------------
    @contextmanager
    def _at(self, offset: str | None):
        """Run with the clock at an offset from now (for records made in the past)."""
        if not offset:
            yield
            return
        real = self.core.clock
        self.core.clock = FrozenClock(real.now() + parse_offset(offset))
        try:
            yield
        finally:
            self.core.clock = real

    def _write(self, data: dict[str, list[dict[str, Any]]], report: LoadReport) -> None:
        core = self.core
        now = core.now()
        inactive = []
        for index, item in enumerate(data["users"]):
            with _naming("users", index, item):
                username = str(item["username"]).lower()
                if User.get_or_none(User.username == username) is not None:
                    report.existing["users"] += 1
                    continue
                core.users.add(
                    username,
                    role=item["role"],
                    name=item.get("name"),
                    email=item.get("email", ""),
                    groups=item.get("groups") or {},
                    actor=None if not core.users.any_exist() else self._admin(),
                )
                report.created["users"] += 1
                if item.get("active") is False:
                    inactive.append(username)
        admin = self._admin()
        for index, item in enumerate(data["activity_types"]):
            with _naming("activity_types", index, item):
                if ActivityType.get_or_none(ActivityType.name == item["name"]) is not None:
                    report.existing["activity_types"] += 1
                    continue
                core.records.add_activity_type(
                    item["name"],
                    entity=item.get("entity", "lead"),
                    captures_owner=bool(item.get("captures_owner", True)),
                    actor=admin,
                )
                report.created["activity_types"] += 1
        if data["leads"]:
            # The bulk import path (every lead checked, then prepared inserts with their
            # lead.created events), so a large leads.json loads fast; refs make it idempotent.
            leads = data["leads"]
            from sharetui.ops.imports import import_leads

            imported = import_leads(
                core, leads, actor=admin, where=lambda index: _label("leads", index, leads[index])
            )
            for key, n in (("created", imported.created), ("existing", imported.skipped)):
                if n:
                    getattr(report, key)["leads"] += n
        for index, item in enumerate(data["opportunities"]):
            with _naming("opportunities", index, item):
                if Opportunity.get_or_none(Opportunity.ref == item["ref"]) is not None:
                    report.existing["opportunities"] += 1
                    continue
                lead = Lead.get(Lead.ref == item["lead"])
                core.records.add_opportunity(
                    lead=lead.id,
                    name=item["name"],
                    type=item.get("type", ""),
                    owner=item["owner"],
                    actor=admin,
                    stage=item.get("stage", "prospecting"),
                    amount=item.get("amount", 0),
                    ref=item["ref"],
                    fields=item.get("fields") or {},
                )
                report.created["opportunities"] += 1
        for index, item in enumerate(data["activities"]):
            with _naming("activities", index, item):
                if Activity.get_or_none(Activity.ref == item["ref"]) is not None:
                    report.existing["activities"] += 1
                    continue
                record = self._record(item)
                core.records.post_activity(
                    record,
                    type=item["type"],
                    actor=admin,
                    owner=item.get("owner"),
                    note=item.get("note", ""),
                    fields=item.get("fields") or {},
                    status=item.get("status", "open"),
                    occurred_at=now + parse_offset(item["occurred"]) if item.get("occurred") else None,
                    ref=item["ref"],
                )
                report.created["activities"] += 1
        for index, item in enumerate(data["tasks"]):
            with _naming("tasks", index, item):
                if Task.get_or_none(Task.ref == item["ref"]) is not None:
                    report.existing["tasks"] += 1
                    continue
                rel = {
                    k: now + parse_offset(item[k]) if item.get(k) else None
                    for k in ("due", "reminder", "completed")
                }
                core.records.add_task(
                    self._record(item),
                    owner=item["owner"],
                    subject=item["subject"],
                    actor=admin,
                    due_at=rel["due"],
                    reminder_at=rel["reminder"],
                    completed_at=rel["completed"],
                    ref=item["ref"],
                )
                report.created["tasks"] += 1
        for index, item in enumerate(data["shares"]):
            with _naming("shares", index, item):
                marker = f"sample:{index}:{item['record']}:{item['with']}:{item.get('context') or ''}"
                if ShareRequest.get_or_none(ShareRequest.batch_id == marker) is not None:
                    report.existing["shares"] += 1
                    continue
                kind = EntityType.parse(item["entity"])
                model = Lead if kind is EntityType.LEAD else Opportunity
                row = model.get(model.ref == item["record"])
                context = Activity.get(Activity.ref == item["context"]).id if item.get("context") else None
                by = core.users.get(item["by"])
                with self._at(item.get("started")):
                    result = core.sharing.share(
                        kind,
                        row.id,
                        item["with"],
                        requester=by,
                        duration=str(item["for"]),
                        access=item.get("access", "read"),
                        context=context,
                        until_completed=bool(item.get("until_completed")),
                    )
                ShareRequest.update(batch_id=marker).where(ShareRequest.id == result.request_id).execute()
                if not result.ok:
                    raise DataFileError(f"shares.json record {index}: share refused: {result.reason}")
                report.created["shares"] += 1
        for username in inactive:
            core.users.deactivate(username, actor=admin)

    @staticmethod
    def _admin() -> User | None:
        return User.select().where(User.role == Role.ADMIN.value).order_by(User.id).first()

    @staticmethod
    def _record(item: dict[str, Any]) -> tuple[str, int]:
        if item.get("lead"):
            return ("lead", Lead.get(Lead.ref == item["lead"]).id)
        return ("opportunity", Opportunity.get(Opportunity.ref == item["opportunity"]).id)

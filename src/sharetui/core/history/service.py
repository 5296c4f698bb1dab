"""The share history: every request and lifecycle event, filtered and exported."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.db import SQL, fn
from sharetui.db.models import Automation, AutomationRun, HistoryEvent, ShareRequest, User
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType, Source
from sharetui.domain.text import visible as inert
from sharetui.domain.time import iso, to_db
from sharetui.errors import UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

EVENTS = ("share", "renew", "revoke", "granted", "renewed", "revoked", "expired", "expiring_soon")
STATUSES = ("processing", "completed", "failed")
FIELDS = (
    "id",
    "at",
    "event",
    "status",
    "reason",
    "entity",
    "entity_id",
    "user",
    "access",
    "context",
    "duration",
    "starts_at",
    "expires_at",
    "source",
    "requester",
    "request_id",
    "grant_id",
    "automation_run_id",
    "automation",
)


REQUEST_EVENTS = ("share", "renew", "revoke")
# What a per-day chart counts (DESIGN §5: expired is distinct from revoked).
CHART_EVENTS = ("granted", "expired", "revoked")


@dataclass(frozen=True)
class HistoryFilter:
    record: RecordRef | None = None
    entity: str | None = None
    user: str | None = None
    status: str | None = None
    source: str | None = None
    event: str | None = None
    since: datetime | None = None  # rows at or after (aware)
    until: datetime | None = None  # rows before (aware)
    requests_only: bool = False  # one row per request (share, renew, revoke): the ledger
    grant_id: int | None = None  # one grant's lifecycle
    request_id: int | None = None

    def validate(self) -> None:
        if self.status and self.status not in STATUSES:
            raise UsageError(f"unknown status {self.status!r}: use {', '.join(STATUSES)}")
        if self.source and self.source not in {s.value for s in Source}:
            raise UsageError(f"unknown source {self.source!r}: use {', '.join(s.value for s in Source)}")
        if self.event and self.event not in EVENTS:
            raise UsageError(f"unknown event {self.event!r}: use {', '.join(EVENTS)}")


def event_dict(e: HistoryEvent | Any) -> dict[str, Any]:
    """A history row (a :class:`HistoryEvent`, or a named tuple of its fields) as the
    CLI, the API and the views read it."""
    return {
        "id": e.id,
        "at": iso(e.at),
        "event": e.event,
        "status": e.status,
        "reason": e.reason,
        "entity": e.entity_type,
        "entity_id": e.entity_id,
        "user": e.user_name or None,
        "access": Access(e.access).label if e.access else None,
        "context": e.context_activity_id,
        "duration": e.duration,
        "starts_at": iso(e.starts_at),
        "expires_at": iso(e.expires_at),
        "source": e.source,
        "requester": e.requester_name or None,
        "request_id": e.request_id,
        "grant_id": e.grant_id,
        "automation_run_id": e.automation_run_id,
        # The automation whose run made the request, filled in by the history service
        # for actors who may read automations (DESIGN §9); null otherwise.
        "automation": None,
    }


def requested_by(row: dict[str, Any]) -> str | None:
    """Who asked, as people read it: the requester, and the automation whose run made
    the request on their behalf (``daniel via automation 'Meeting owner gets the
    lead'``; ``automation '…'`` alone when no person fired the run)."""
    person = row.get("requester")
    if row.get("automation_run_id") is None:
        return person
    via = f"automation {row['automation']!r}" if row.get("automation") else "an automation"
    return f"{person} via {via}" if person else via


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell that a spreadsheet shows and never runs: text starting
    like a formula gets a leading ``'`` (OWASP's advice for CSV injection), and the
    characters a terminal would act on are shown, not sent (``\x1b``; DESIGN §9), as
    ``history --csv`` prints to the terminal by default."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = inert(value)
        if value.startswith(_FORMULA_STARTS):
            return "'" + value
    return value


class HistoryService:
    def __init__(self, core: Core) -> None:
        self.core = core

    def query(
        self,
        actor: User | None,
        flt: HistoryFilter,
        *,
        after_id: int | None = None,
        limit: int | None = 200,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """History rows matching ``flt`` that ``actor`` may see (DESIGN §9), keyset-paged on id.

        A record's history needs read access to the record (else :class:`NotReadable`,
        as for a record that does not exist); across records, ``actor`` sees rows
        about records they may read and about their own grants.
        """
        return self._page(actor, flt, after_id, limit, newest_first)[0]

    def _page(
        self,
        actor: User | None,
        flt: HistoryFilter,
        after_id: int | None,
        limit: int | None,
        newest_first: bool,
    ) -> tuple[list[dict[str, Any]], int | None, int]:
        """(rows ``actor`` may see, the id of the last row read, how many were read)."""
        h, query = self._filtered(actor, flt)
        if after_id is not None:
            query = query.where(h.id < after_id if newest_first else h.id > after_id)
        query = query.order_by(h.id.desc() if newest_first else h.id)
        if limit is not None:
            query = query.limit(limit)
        read = [event_dict(e) for e in query.namedtuples()]
        rows = read if flt.record is not None else self._keep_readable(actor, read)
        self._name_automations(actor, rows)
        return rows, (read[-1]["id"] if read else None), len(read)

    def _keep_readable(self, actor: User | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows plugin checks let ``actor`` see: about records they may read, or their
        own grants (a failed request naming them is not one: its reason may describe a
        record they may not read)."""
        return self.core.gate.keep_readable(
            actor, rows, own="user", own_if=lambda row: row["status"] != "failed"
        )

    def _filtered(self, actor: User | None, flt: HistoryFilter) -> tuple[Any, Any]:
        """(the history alias, a query of the rows matching ``flt`` that the gate lets
        ``actor`` see in SQL); plugin checks come after, in :meth:`Gate.keep_readable`."""
        flt.validate()
        gate = self.core.gate
        h = HistoryEvent.alias("h")  # the gate's SQL names the history row's columns h.*
        query = h.select()
        if flt.record is not None:
            gate.require_metadata(actor, flt.record)
            query = query.where((h.entity_type == flt.record.entity.value) & (h.entity_id == flt.record.id))
        else:
            if flt.entity:
                query = query.where(h.entity_type == flt.entity)
            visible = gate.share_rows(
                actor,
                entity_col="h.entity_type",
                id_col="h.entity_id",
                user_col="h.user_id",
                now=self.core.now(),
                # A failed request naming the actor is not their grant, and its reason may
                # describe a record they may not read ("activity 5 owned by sofia").
                own_condition="h.status <> 'failed'",
            )
            if visible is not None:
                query = query.where(SQL(*visible))
        if flt.user:
            user = User.get_or_none(User.username == flt.user.strip().lower())
            query = query.where(
                (h.user_id == user.id) if user is not None else (h.user_name == flt.user.strip())
            )
        if flt.status:
            query = query.where(h.status == flt.status)
        if flt.source:
            query = query.where(h.source == flt.source)
        if flt.event:
            query = query.where(h.event == flt.event)
        if flt.requests_only:
            query = query.where(h.event.in_(REQUEST_EVENTS))
        if flt.since is not None:
            query = query.where(h.at >= to_db(flt.since))
        if flt.until is not None:
            query = query.where(h.at < to_db(flt.until))
        if flt.grant_id is not None or flt.request_id is not None:
            query = query.where((h.grant_id == flt.grant_id) | (h.request_id == flt.request_id))
        return h, query

    def ledger(
        self,
        actor: User | None,
        flt: HistoryFilter,
        *,
        before: tuple[datetime, int] | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], tuple[datetime, int] | None]:
        """A page of history newest first by time (then id), keyset-paged on ``(at, id)``
        (index ``history_at_id``), and the key of the next page (None: no more).

        Each row also says who asked in people's words (``by``). Requests still
        waiting for a decision are not in the history yet: on the first page they
        come first, as ``processing`` rows (:meth:`waiting`).
        """
        h, query = self._filtered(actor, flt)
        if before is not None:
            at, ident = to_db(before[0]), before[1]
            query = query.where((h.at < at) | ((h.at == at) & (h.id < ident)))
        query = query.order_by(h.at.desc(), h.id.desc()).limit(limit + 1)
        # Named tuples, not model instances: a page of rows is read without building
        # (and setting every field of) a model per row.
        read = [event_dict(e) for e in query.namedtuples()]
        more = len(read) > limit
        read = read[:limit]
        rows = read if flt.record is not None else self._keep_readable(actor, read)
        self._name_automations(actor, rows)
        for row in rows:
            row["by"] = requested_by(row)
        if before is None and flt.status in (None, "processing") and flt.until is None:
            rows = self.waiting(actor, flt) + rows
        last = read[-1] if read else None
        if not more or last is None:
            return rows, None
        return rows, (datetime.fromisoformat(last["at"].replace("Z", "+00:00")), last["id"])

    def waiting(self, actor: User | None, flt: HistoryFilter) -> list[dict[str, Any]]:
        """Share and revoke requests still ``processing`` (no history row yet), shaped
        like history rows, that ``actor`` may see (index ``status, id``: few rows)."""
        r = ShareRequest
        query = r.select().where(r.status == "processing").order_by(r.id.desc()).limit(100)
        if flt.record is not None:
            query = query.where((r.entity_type == flt.record.entity.value) & (r.entity_id == flt.record.id))
        elif flt.entity:
            query = query.where(r.entity_type == flt.entity)
        if flt.source:
            query = query.where(r.source == flt.source)
        waiting = list(query)
        asked = {req.requester_id for req in waiting if req.requester_id is not None}
        names = self.core.users.usernames(asked) if asked else {}  # only the page's requesters
        rows = []
        for req in waiting:
            if flt.user and req.recipient_name != flt.user.strip().lower():
                continue
            rows.append(
                {
                    "id": 0,  # not in the history yet
                    "at": iso(req.created_at),
                    "event": "share" if req.action == "share" else "revoke",
                    "status": "processing",
                    "reason": None,
                    "entity": req.entity_type,
                    "entity_id": req.entity_id,
                    "user": req.recipient_name or None,
                    "access": Access(req.access).label if req.access else None,
                    "context": req.context_activity_id,
                    "duration": req.duration,
                    "starts_at": None,
                    "expires_at": None,
                    "source": req.source,
                    "requester": names.get(req.requester_id),
                    "request_id": req.id,
                    "grant_id": None,
                    "automation_run_id": req.automation_run_id,
                    "automation": None,
                }
            )
        if not self.core.gate.sees_everything(actor):
            rows = [
                row
                for row in rows
                if row["entity_id"] is not None
                and self.core.gate.may_see_share_row(
                    actor, RecordRef(EntityType(row["entity"]), row["entity_id"]), row["user"]
                )
            ]
        self._name_automations(actor, rows)
        for row in rows:
            row["by"] = requested_by(row)
        return rows

    def per_day(self, actor: User | None, flt: HistoryFilter) -> dict[str, dict[str, int]]:
        """How many shares were granted, expired and revoked each day (UTC) among the
        rows ``flt`` selects that ``actor`` may see: ``{"2026-03-02": {"granted": 3, ...}}``.
        Counted in SQL (one grouped query), so the gate's SQL filter applies; with
        plugin access checks loaded, rows are read and asked one by one instead."""
        h, query = self._filtered(actor, replace(flt, requests_only=False, event=None))
        query = query.where(h.event.in_(CHART_EVENTS) & (h.status == "completed"))
        out: dict[str, dict[str, int]] = {}
        plugins = self.core.plugins
        if flt.record is None and not self.core.gate.sees_everything(actor) and plugins.has_access_checks():
            rows = self._keep_readable(actor, [event_dict(e) for e in query.namedtuples()])
            for row in rows:
                day = row["at"][:10]
                out.setdefault(day, dict.fromkeys(CHART_EVENTS, 0))[row["event"]] += 1
            return out
        day = fn.date(h.at)
        grouped = (
            query.select(day.alias("day"), h.event, fn.COUNT(h.id))
            .group_by(day, h.event)
            .order_by(day)
            .tuples()
        )
        for when, event, count in grouped:
            key = str(when)[:10]
            out.setdefault(key, dict.fromkeys(CHART_EVENTS, 0))[event] = count
        return out

    def _name_automations(self, actor: User | None, rows: list[dict[str, Any]]) -> None:
        """Fill in ``automation`` (the name of the automation whose run made each request)
        for an actor who may read automations, in one query a page."""
        from sharetui.core.access.gate import Capability

        runs = sorted({r["automation_run_id"] for r in rows if r["automation_run_id"] is not None})
        if not runs or not self.core.gate.allows(actor, Capability.READ_AUTOMATIONS):
            return
        names: dict[int, str] = {}
        for start in range(0, len(runs), 500):  # a bounded IN list, however long the page
            names.update(
                AutomationRun.select(AutomationRun.id, Automation.name)
                .join(Automation)
                .where(AutomationRun.id.in_(runs[start : start + 500]))
                .tuples()
            )
        for row in rows:
            row["automation"] = names.get(row["automation_run_id"])

    def iter_all(self, actor: User | None, flt: HistoryFilter, page: int = 5000):
        """Every matching row ``actor`` may see, oldest first, a page at a time (for exports)."""
        after = None
        while True:
            rows, after, read = self._page(actor, flt, after, page, False)
            yield from rows
            if read < page:
                return

    def write_csv(self, actor: User | None, flt: HistoryFilter, out: io.TextIOBase) -> int:
        """Every row ``actor`` may see, as CSV, to ``out``; returns how many rows.

        Cells a spreadsheet would run as a formula (starting with ``=``, ``+``,
        ``-``, ``@``, a tab or a carriage return) are written with a leading ``'``.
        """
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        count = 0
        for row in self.iter_all(actor, flt):
            writer.writerow({k: csv_cell(row[k]) for k in FIELDS})
            count += 1
        return count

    def to_csv(self, actor: User | None, flt: HistoryFilter) -> str:
        buf = io.StringIO()
        self.write_csv(actor, flt, buf)
        return buf.getvalue()

    def to_json(self, actor: User | None, flt: HistoryFilter) -> str:
        return json.dumps(list(self.iter_all(actor, flt)), ensure_ascii=False, indent=2)

"""The share history: every request and lifecycle event, filtered and exported."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sharetui.db.models import HistoryEvent, User
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, Source
from sharetui.domain.time import iso
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
)


@dataclass(frozen=True)
class HistoryFilter:
    record: RecordRef | None = None
    entity: str | None = None
    user: str | None = None
    status: str | None = None
    source: str | None = None
    event: str | None = None

    def validate(self) -> None:
        if self.status and self.status not in STATUSES:
            raise UsageError(f"unknown status {self.status!r}: use {', '.join(STATUSES)}")
        if self.source and self.source not in {s.value for s in Source}:
            raise UsageError(f"unknown source {self.source!r}: use {', '.join(s.value for s in Source)}")
        if self.event and self.event not in EVENTS:
            raise UsageError(f"unknown event {self.event!r}: use {', '.join(EVENTS)}")


def event_dict(e: HistoryEvent) -> dict[str, Any]:
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
    }


class HistoryService:
    def __init__(self, core: Core) -> None:
        self.core = core

    def query(
        self,
        flt: HistoryFilter,
        *,
        after_id: int | None = None,
        limit: int | None = 200,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """History rows matching ``flt``, keyset-paged on id."""
        flt.validate()
        query = HistoryEvent.select()
        if flt.record is not None:
            query = query.where(
                (HistoryEvent.entity_type == flt.record.entity.value)
                & (HistoryEvent.entity_id == flt.record.id)
            )
        elif flt.entity:
            query = query.where(HistoryEvent.entity_type == flt.entity)
        if flt.user:
            user = User.get_or_none(User.username == flt.user.strip().lower())
            query = query.where(
                (HistoryEvent.user_id == user.id)
                if user is not None
                else (HistoryEvent.user_name == flt.user.strip())
            )
        if flt.status:
            query = query.where(HistoryEvent.status == flt.status)
        if flt.source:
            query = query.where(HistoryEvent.source == flt.source)
        if flt.event:
            query = query.where(HistoryEvent.event == flt.event)
        if after_id is not None:
            query = query.where(HistoryEvent.id < after_id if newest_first else HistoryEvent.id > after_id)
        query = query.order_by(HistoryEvent.id.desc() if newest_first else HistoryEvent.id)
        if limit is not None:
            query = query.limit(limit)
        return [event_dict(e) for e in query]

    def iter_all(self, flt: HistoryFilter, page: int = 5000):
        """Every matching row, oldest first, fetched a page at a time (for exports)."""
        after = None
        while True:
            rows = self.query(flt, after_id=after, limit=page)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["id"]

    def to_csv(self, flt: HistoryFilter, out: io.TextIOBase | None = None) -> str:
        buf = out or io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.iter_all(flt):
            writer.writerow({k: "" if row[k] is None else row[k] for k in FIELDS})
        return buf.getvalue() if out is None else ""

    def to_json(self, flt: HistoryFilter) -> str:
        return json.dumps(list(self.iter_all(flt)), ensure_ascii=False, indent=2)

"""How automations and their runs are shown: :class:`RunReport` (what one run did, for
the CLI, the TUI, plugins and the trace), :func:`automation_dict` and :func:`run_dict`
(the stored rows as the faces print them), and the trace's summary of trigger data.

Also the JSON helpers the engine's raw SQL needs: traces and payloads written or read
without Peewee must look exactly as a ``JSONField`` stores and returns them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sharetui.db.models import Automation, AutomationRun, User
from sharetui.domain.records import RecordRef
from sharetui.domain.time import iso


def _json(value: Any) -> str:
    """Text as a ``JSONField`` stores it."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _loads(value: Any) -> Any:
    """A ``JSONField`` read with raw SQL (text) as Peewee would return it."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class RunReport:
    """What one run did, for the CLI, the TUI and the trace."""

    id: int | None
    automation_id: int
    automation: str
    status: str
    reason: str | None
    record: str | None
    trace: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "automation_id": self.automation_id,
            "automation": self.automation,
            "status": self.status,
            "reason": self.reason,
            "record": self.record,
            "trace": self.trace,
        }

    def summary(self) -> str:
        steps = "; ".join(a["message"] for a in self.trace.get("actions", []) if a.get("message"))
        return f"automation {self.automation!r} {self.status}" + (
            f": {steps}" if steps else f" ({self.reason})" if self.reason else ""
        )


def automation_dict(a: Automation) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "status": a.status,
        "trigger": {"type": a.trigger_type, **(a.trigger_config or {})},
        "conditions": a.conditions or [],
        "actions": a.actions or [],
        "starts_at": iso(a.starts_at),
        "ends_at": iso(a.ends_at),
        "created_by": User.get_by_id(a.created_by).username if a.created_by else None,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    }


def run_dict(r: AutomationRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "automation_id": r.automation_id,
        "event_id": r.event_id,
        "trigger": r.trigger_type,
        "record": f"{r.entity_type} {r.entity_id}" if r.entity_type else None,
        "status": r.status,
        "reason": r.reason,
        "trace": r.trace,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "duration_ms": round(r.duration_ms or 0, 2),
    }


def _label(ref: RecordRef | None) -> str | None:
    """How runs name their record, everywhere: ``lead 5``, ``opportunity 3``."""
    return f"{ref.entity.value} {ref.id}" if ref is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """The trigger data kept in a trace: ids, names and owners, not every field."""
    keep = ("id", "name", "type", "stage", "owner", "status", "subject", "lead_id", "amount", "fields")
    out: dict[str, Any] = {}
    for root in ("lead", "opportunity", "activity", "task", "schedule"):
        if isinstance(data.get(root), dict):
            out[root] = {k: _jsonable(v) for k, v in data[root].items() if k in keep or root == "schedule"}
    event = data.get("event")
    if isinstance(event, dict) and event:
        # The data the trigger fired with (a plugin's ``fire(trigger, record, data)``);
        # who fired it is the trace's ``acting_for``.
        out["event"] = {k: _jsonable(v) for k, v in event.items() if k != "actor_id"}
    out["owner_in_trigger"] = data.get("owner_in_trigger")
    if data.get("owner_missing_reason"):
        out["owner_missing_reason"] = data["owner_missing_reason"]
    return out


def runs_not_shown(count: int) -> str:
    """What someone who may not read runs (DESIGN §9) is told of the runs they set off."""
    return f"{count} automation run(s); what they did is for admins and sales managers to read"

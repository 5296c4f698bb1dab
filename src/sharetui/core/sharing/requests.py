"""A share or revoke request as callers hand it in and get it back.

:class:`ShareInput` is a share request whose syntax was checked (``parse_share``
makes it; the batch API checks a whole batch before it writes), and
:class:`RequestResult` is what every request ends as, shaped like the CLI's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sharetui.domain.durations import Duration
from sharetui.domain.roles import Access, EntityType


@dataclass
class RequestResult:
    """The outcome of a share or revoke request, shaped like the CLI's JSON."""

    request_id: int
    action: str
    status: str
    reason: str | None
    outcome: str | None = None
    grant: dict[str, Any] | None = None
    grants: list[dict[str, Any]] = field(default_factory=list)
    # A renewal: the access the grant gave before (so a face can say it went down).
    previous_access: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "action": self.action,
            "outcome": self.outcome,
            "status": self.status,
            "reason": self.reason,
        }
        if self.grant is not None:
            out["grant"] = self.grant
        if self.grants:
            out["grants"] = self.grants
        return out


@dataclass(frozen=True)
class ShareInput:
    """A share request after its syntax was checked (bad syntax never gets this far)."""

    entity: EntityType
    entity_id: int
    recipient: str
    access: Access
    duration: Duration
    context: int | None
    until_completed: bool

"""Team mode's write path for share metadata (DESIGN §8): a login that is not the setup
role or a worker may not write grants, share requests, history or the outbox; the
product asks the database's ``SECURITY DEFINER`` functions (``sharetui.db.team``),
which check DESIGN §9 for the acting user and stamp the server's time and the
requester ("admin as daniel") themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sharetui.db.sql import Statement

_OPEN = Statement("SELECT sharetui_open_request(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_FINISH = Statement("SELECT sharetui_finish_request(?, ?, ?, ?, ?)")
_PUT_GRANT = Statement("SELECT sharetui_put_grant(?, ?)")
_END_GRANT = Statement("SELECT sharetui_end_grant(?, ?, ?)")
_HISTORY = Statement("SELECT sharetui_add_history(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_EMIT = Statement("SELECT sharetui_emit(?, ?, ?, ?)")
_OVER_CAP = Statement("SELECT sharetui_over_cap(?, ?, ?)")

HISTORY_WIDTH = 19  # values per row in sharetui.core.sharing.history._HISTORY_COLUMNS order


def over_cap(entity: str, entity_id: int, user_id: int) -> bool:
    """Would a new share of this record take ``user_id`` past the share cap? A person's
    login may not read the recipient's other grants: the database counts them."""
    row = _OVER_CAP.one((entity, entity_id, user_id))
    return bool(row and row[0])


def open_request(action: str, values: dict[str, Any]) -> int:
    """A ``processing`` share or revoke request; its requester is the acting user."""
    row = _OPEN.one(
        (
            action,
            values["entity_type"],
            values["entity_id"],
            values["recipient_name"],
            values.get("context_activity_id"),
            bool(values.get("all_contexts")),
            values.get("access"),
            values.get("duration"),
            bool(values.get("until_completed")),
            values["source"],
            values.get("batch_id"),
        )
    )
    assert row is not None
    return row[0]


def finish_request(
    request_id: int,
    status: str,
    *,
    outcome: str | None = None,
    grant_id: int | None = None,
    reason: str | None = None,
) -> None:
    _FINISH.one((request_id, status, outcome, grant_id, reason))


def put_grant(request_id: int, expires: datetime) -> int:
    """Grant (or renew) what the request asks, until ``expires`` (naive UTC)."""
    row = _PUT_GRANT.one((request_id, expires))
    assert row is not None
    return row[0]


def end_grant(grant_id: int, state: str, reason: str) -> bool:
    row = _END_GRANT.one((grant_id, state, reason))
    return bool(row and row[0])


def history(values: list[Any]) -> None:
    """History rows, given as the direct path's values (``HISTORY_WIDTH`` per row)."""
    for start in range(0, len(values), HISTORY_WIDTH):
        v = values[start : start + HISTORY_WIDTH]
        _HISTORY.one(
            (
                v[1],
                v[2],
                v[3],
                v[4],
                v[5],
                v[6],
                v[7],
                v[8],
                v[9],
                v[10],
                v[11],
                v[12],
                v[15],
                v[16] is not None,
            )
        )


def emit(topic: str, entity_type: str | None, entity_id: int | None, payload_text: str) -> int:
    row = _EMIT.one((topic, entity_type, entity_id, payload_text))
    assert row is not None
    return row[0]

"""What each endpoint does, as plain functions over the core: LeadSquared's body in,
one call of the core's services with the key's user as the actor, LeadSquared's
reply out. They block (Peewee), so the app runs them in its thread pool.

Nothing here decides who may see or do what: the services ask the gate (DESIGN
§9), exactly as for the CLI. A record the caller may not read answers as the CLI
does ("no lead 12 you may read"), in LeadSquared's error shape with 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.core.records.activities import MAX_NOTE
from sharetui.core.sharing.batch import BatchAPI, load_items
from sharetui.domain.ids import MAX_ID, as_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.domain.text import find_text_problem
from sharetui.errors import NotFound, NotReadable, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.db.models import User

# LeadSquared's ShareStatus: its documentation shows 6 for a request processed
# successfully; sharetui also answers 1 while processing and 7 for a failed request.
SHARE_STATUS = {"processing": 1, "completed": 6, "failed": 7}
MAX_STATUS_IDS = 100
MAX_HISTORY = 1000
_ENTITY_CODES = {"1": EntityType.LEAD, "5": EntityType.OPPORTUNITY}


@dataclass(frozen=True)
class Reply:
    """An HTTP status and a JSON body; ``wrote`` when the call changed something."""

    status: int
    body: dict[str, Any]
    wrote: bool = False


def error(status: int, kind: str, message: str, **extra: Any) -> Reply:
    """LeadSquared's error shape: ``Status``, ``ExceptionType``, ``ExceptionMessage``."""
    return Reply(status, {"Status": "Error", "ExceptionType": kind, "ExceptionMessage": message, **extra})


def success(message: dict[str, Any], *, wrote: bool = False, **extra: Any) -> Reply:
    return Reply(200, {"Status": "Success", "Message": message, **extra}, wrote)


def _unreadable(reason: str | None) -> bool:
    return bool(reason) and reason.startswith("no ") and reason.endswith(" you may read")  # type: ignore[union-attr]


def _requests_reply(results: list[dict[str, Any]]) -> Reply:
    """One reply for a share or revoke call: ``Message.Id`` is the request id (ids joined
    by commas for several items, which ``Status/Get`` takes back as they are).

    Several items, some done and some failed: 207 with ``Status: "Partial"`` and
    ``Results`` (one per item), so a script sees that some were written; a 404 or a
    422 would read as "nothing happened". Several items all failed: 404 or 422 as for
    one, with ``Results`` too."""
    ids = ",".join(str(r["request_id"]) for r in results)
    failed = [r for r in results if r["status"] == "failed"]
    if not failed:
        return success({"Id": ids}, wrote=True)
    extra: dict[str, Any] = {"Message": {"Id": ids}}
    if len(results) == 1:
        message = failed[0]["reason"]
    else:
        message = "; ".join(f"request {r['request_id']}: {r['reason']}" for r in failed)
        extra["Results"] = [
            {"Id": str(r["request_id"]), "Status": r["status"], "Reason": r["reason"]} for r in results
        ]
    if len(failed) < len(results):
        reply = error(207, "MXShareRequestFailedException", message, **extra)
        reply.body["Status"] = "Partial"
    elif all(_unreadable(r["reason"]) for r in failed):
        reply = error(404, "MXEntityNotFoundException", message, **extra)
    else:
        reply = error(422, "MXShareRequestFailedException", message, **extra)
    return Reply(reply.status, reply.body, wrote=True)  # failed requests stay in history


def _items(body: bytes) -> list[Any]:
    items = load_items(body)
    if not items:
        raise UsageError("the body holds no items: send a JSON array of share or revoke items")
    return items


def share(core: Core, actor: Any, body: bytes) -> Reply:
    """``POST /v2/EntityAccess.svc/Share``: every item checked before the first is written."""
    return _requests_reply(BatchAPI(core).share(_items(body), requester=actor))


def revoke(core: Core, actor: Any, body: bytes) -> Reply:
    """``POST /v2/EntityAccess.svc/Revoke``."""
    return _requests_reply(BatchAPI(core).revoke(_items(body), requester=actor))


def _ids(text: str | None, name: str, longest: int) -> list[int]:
    if text is None or not text.strip():
        raise UsageError(f"give the request id: ?{name}=ID")
    parts = text.split(",")
    if len(parts) > longest:
        raise UsageError(f"at most {longest} request ids at once, not {len(parts)}")
    ids = []
    for part in parts:
        ident = as_id(part.strip())
        if ident is None or ident > MAX_ID:
            raise UsageError(f"a request id is a whole number from 1 to {MAX_ID}, not {part.strip()[:40]!r}")
        ids.append(ident)
    return ids


def status(core: Core, actor: Any, params: dict[str, str]) -> Reply:
    """``GET /v2/EntityAccess.svc/Status/Get?id=ID``: a request the caller may not see
    answers like one that does not exist."""
    ids = _ids(params.get("id", params.get("Id")), "id", MAX_STATUS_IDS)
    try:
        results = [core.sharing.status(ident, actor=actor) for ident in ids]
    except NotReadable as exc:
        return error(404, "MXEntityNotFoundException", exc.message)
    states = {r.status for r in results}
    overall = "failed" if "failed" in states else "processing" if "processing" in states else "completed"
    reasons = [
        f"request {r.request_id}: {r.reason}" if len(results) > 1 else r.reason for r in results if r.reason
    ]
    text = {
        "completed": "Request processed successfully.",
        "processing": "Request is being processed.",
        "failed": "Request failed.",
    }[overall]
    return success(
        {"ResponseText": text},
        ShareStatus=SHARE_STATUS[overall],
        ErrorMessage="; ".join(reasons) if reasons else None,
        Requests=[r.as_dict() for r in results],
    )


def _entity(text: str | None) -> EntityType:
    value = (text or "").strip().lower()
    if value in _ENTITY_CODES:
        return _ENTITY_CODES[value]
    try:
        return EntityType.parse(value)
    except UsageError:
        raise UsageError(f"entity must be 1 (lead) or 5 (opportunity), not {value[:40]!r}") from None


def history(core: Core, actor: Any, params: dict[str, str]) -> Reply:
    """``GET /v2/EntityAccess.svc/History/Get?entity=1&entityId=ID`` (sharetui's own call:
    LeadSquared publishes none): the record's share history, as ``sharetui history``."""
    from sharetui.core.history import HistoryFilter

    entity = _entity(params.get("entity"))
    ident = as_id((params.get("entityId") or params.get("id") or "").strip())
    if ident is None or ident > MAX_ID:
        raise UsageError(f"entityId must be a {entity.value} id (a whole number from 1 to {MAX_ID})")
    limit = as_id((params.get("limit") or "200").strip())
    if limit is None or not 1 <= limit <= MAX_HISTORY:
        raise UsageError(f"limit must be a whole number from 1 to {MAX_HISTORY}")
    after = params.get("afterId")
    after_id = as_id(after.strip()) if after else None
    if after and after_id is None:
        raise UsageError("afterId must be a history row id")
    try:
        rows = core.history.query(
            actor, HistoryFilter(record=RecordRef(entity, ident)), limit=limit, after_id=after_id
        )
    except NotReadable as exc:
        return error(404, "MXEntityNotFoundException", exc.message)
    return success({"Count": len(rows)}, History=rows)


_ACTIVITY_KEYS = {
    "RelatedProspectId",
    "RelatedOpportunityId",
    "ActivityEvent",
    "ActivityNote",
    "ActivityDateTime",
    "ActivityOwnerEmail",
    "ActivityOwner",
    "Fields",
    # LeadSquared's switches for its own storage and scoring: nothing to do here.
    "ProcessFilesAsync",
    "ValidateDropDownOptions",
    "IncludeLeadScore",
}


def _record_id(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value in (None, ""):
        return None
    ident = (
        as_id(str(value).strip()) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    )
    if ident is None or ident > MAX_ID:
        raise UsageError(f"{key} must be a whole number from 1 to {MAX_ID}, not {value!r}"[:200])
    return ident


def _activity_type(core: Core, value: Any) -> str:
    """``ActivityEvent``: the activity type's name, or its id (LeadSquared's numeric code)."""
    if isinstance(value, str) and value.strip() and as_id(value.strip()) is None:
        return value
    ident = (
        as_id(str(value).strip()) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    )
    if ident is None:
        raise UsageError("ActivityEvent must name an activity type (its name or its id)")
    for kind in core.records.activity_types():
        if kind.id == ident:
            return str(kind.name)
    raise UsageError(f"no activity type with id {ident} (sharetui activity types list shows them)")


def _fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, list) or len(value) > 200:
        raise UsageError('Fields must be a list of {"SchemaName": …, "Value": …} (at most 200)')
    out: dict[str, Any] = {}
    for index, field in enumerate(value):
        if not isinstance(field, dict) or set(field) - {"SchemaName", "Value"}:
            raise UsageError(f'Fields item {index} must be {{"SchemaName": …, "Value": …}}')
        name = field.get("SchemaName")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise UsageError(f"Fields item {index}: SchemaName must be a name of at most 100 characters")
        if isinstance(field.get("Value"), (dict, list)):
            raise UsageError(f"Fields item {index}: Value must be text, a number, true/false or null")
        out[name.strip()] = field.get("Value")
    return out


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise UsageError("ActivityDateTime must be UTC text: YYYY-MM-DD HH:MM:SS")
    from sharetui.clock import parse_instant

    try:
        return parse_instant(value.strip())
    except (UsageError, ValueError):
        raise UsageError(
            f"ActivityDateTime must be UTC text (YYYY-MM-DD HH:MM:SS), not {value[:40]!r}"
        ) from None


_LONGEST_EMAIL = 254  # the users table's email column
_LONGEST_USERNAME = 64  # and its username column


def _owner(core: Core, email: Any, username: Any) -> User | None:
    """The activity's owner, an active user: unknown and deactivated answer alike."""
    if email not in (None, ""):
        try:
            return core.users.by_email(email)
        except NotFound:
            raise UsageError("ActivityOwnerEmail names no active user") from None
    if username not in (None, ""):
        user = core.users.find(username)
        if user is None or not user.active:
            raise UsageError(f"ActivityOwner {username[:_LONGEST_USERNAME]!r} names no active user")
        return user
    return None


def post_activity(core: Core, actor: Any, body: bytes) -> Reply:
    """``POST /v2/ProspectActivity.svc/Create``: an activity on a lead (``RelatedProspectId``)
    or an opportunity (``RelatedOpportunityId``), with edit access as the CLI needs. It
    fires the automations another system's event should fire."""
    import json

    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError("the body is not a JSON object") from None
    if not isinstance(data, dict):
        raise UsageError("the body must be one JSON object (an activity)")
    problem = find_text_problem(data)
    if problem:
        raise UsageError(problem)
    unknown = set(data) - _ACTIVITY_KEYS
    if unknown:
        raise UsageError(
            f"unknown key(s) {', '.join(sorted(unknown))[:200]} (known: {', '.join(sorted(_ACTIVITY_KEYS))})"
        )
    lead_id = _record_id(data, "RelatedProspectId")
    opp_id = _record_id(data, "RelatedOpportunityId")
    if lead_id is None and opp_id is None:
        raise UsageError("give RelatedProspectId (a lead id) or RelatedOpportunityId")
    if "ActivityEvent" not in data:
        raise UsageError("ActivityEvent is required: the activity type")
    type_name = _activity_type(core, data["ActivityEvent"])
    note = data.get("ActivityNote") or ""
    if not isinstance(note, str):
        raise UsageError("ActivityNote must be text")
    if len(note) > MAX_NOTE:
        raise UsageError(f"ActivityNote is {len(note)} characters long: at most {MAX_NOTE} fit")
    fields = _fields(data.get("Fields"))
    occurred = _when(data.get("ActivityDateTime"))
    email, username = data.get("ActivityOwnerEmail"), data.get("ActivityOwner")
    if username not in (None, "") and email not in (None, ""):
        raise UsageError("give ActivityOwner or ActivityOwnerEmail, not both")
    if email not in (None, "") and (not isinstance(email, str) or len(email) > _LONGEST_EMAIL):
        raise UsageError(f"ActivityOwnerEmail must be an email address (at most {_LONGEST_EMAIL} characters)")
    if username not in (None, "") and (not isinstance(username, str) or len(username) > _LONGEST_USERNAME):
        raise UsageError(f"ActivityOwner must be a username (at most {_LONGEST_USERNAME} characters)")
    if opp_id is not None:
        ref = RecordRef(EntityType.OPPORTUNITY, opp_id)
        try:
            related = core.records.detail(ref, actor=actor)["lead_id"]
        except NotReadable as exc:
            return error(404, "MXEntityNotFoundException", exc.message)
        if lead_id is not None and related != lead_id:
            return error(
                404, "MXEntityNotFoundException", f"no opportunity {opp_id} of lead {lead_id} you may read"
            )
    else:
        assert lead_id is not None
        ref = RecordRef(EntityType.LEAD, lead_id)
    try:
        # The record first: who owns what is no business of a caller who may not post on
        # it, and an owner lookup before this check told anyone with a key which emails
        # and usernames belong to active users.
        core.records.require(actor, ref, Access.EDIT)
        if not core.records.exists(ref):
            raise NotReadable(f"no {ref.entity.value} {ref.id} you may read")
        owner = _owner(core, email, username)
        activity = core.records.post_activity(
            (ref.entity.value, ref.id),
            type=type_name,
            actor=actor,
            owner=owner,
            note=note,
            fields=fields,
            occurred_at=occurred,
        )
    except NotReadable as exc:
        return error(404, "MXEntityNotFoundException", exc.message)
    message: dict[str, Any] = {"Id": str(activity.id)}
    if opp_id is not None:
        message["RelatedId"] = str(related)
    return success(message, wrote=True)


__all__ = [
    "SHARE_STATUS",
    "Reply",
    "error",
    "history",
    "post_activity",
    "revoke",
    "share",
    "status",
    "success",
]

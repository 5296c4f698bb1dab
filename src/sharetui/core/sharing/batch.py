"""The batch JSON API, shaped like LeadSquared's entity access API.

Items: ``UserId`` (username or user id), ``Entity`` (1 lead, 5 opportunity),
``EntityType`` (3: shared with a user, the only kind), ``EntityId``,
``ContextEntity`` (1: the context is an activity, the only kind),
``ContextEntityId`` (optional), ``AccessType`` (1 read, 2 edit),
``DurationInMinutes`` (or a duration string). Revoke items take ``UserId``,
``Entity``, ``EntityType``, ``EntityId`` and optionally ``ContextEntity`` with
``ContextEntityId``, ``AllContexts``, and ``AccessType`` (LeadSquared sends it;
a revoke ends the grant whatever its access). The body a LeadSquared script
sends is accepted as it is; other ``EntityType``/``ContextEntity`` values are
refused with a reason. Status items are request ids or ``{"RequestId": n}``.

The whole array is checked before anything runs: one malformed item rejects
the batch (nothing changes), and so does text no database stores (a lone
surrogate, which a ``"\\ud800"`` escape decodes to, or a NUL). Then each item is
recorded and decided in one transaction of its own, so a crash (``kill -9``)
leaves each item either fully done (its request, grant, history and event) or
not started at all: never a request stuck in ``processing`` that nothing will ever finish.
"""

from __future__ import annotations

import json
import uuid
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from sharetui.core.sharing import ShareInput, facts
from sharetui.db.batching import DeferredWriteFailed, deferred_writes
from sharetui.db.connection import is_sqlite
from sharetui.db.locks import RecipientBusy, many_recipients
from sharetui.db.models import ShareRequest, User, check_lengths
from sharetui.domain.ids import MAX_ID, as_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Source
from sharetui.domain.text import find_text_problem, shorten
from sharetui.errors import SharetuiError, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

MAX_ITEMS = 10_000
_SHARE_KEYS = {
    "UserId",
    "Entity",
    "EntityType",
    "EntityId",
    "ContextEntity",
    "ContextEntityId",
    "AccessType",
    "DurationInMinutes",
    "UntilCompleted",
}
_REVOKE_KEYS = {
    "UserId",
    "Entity",
    "EntityType",
    "EntityId",
    "ContextEntity",
    "ContextEntityId",
    "AllContexts",
    "AccessType",
}
# LeadSquared's codes for whom a record is shared with and what a context is: only a
# user (3) and an activity (1) exist here; its other codes are refused, never guessed at.
USER_ENTITY_TYPE = 3
ACTIVITY_CONTEXT = 1


def load_items(text: str | bytes) -> list[Any]:
    """Parse a batch document: a JSON array (one object also accepted)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("batch input is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"batch input is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError:  # a number with more digits than int() reads
        raise UsageError("batch input is not valid JSON: a number has too many digits") from None
    except RecursionError:
        raise UsageError("batch input is not valid JSON: arrays or objects nested too deeply") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise UsageError("batch input must be a JSON array of items")
    if len(data) > MAX_ITEMS:
        raise UsageError(f"a batch holds at most {MAX_ITEMS} items, this one has {len(data)}")
    return data


def _item_error(index: int, message: str) -> UsageError:
    # Cut: the message may repeat a value of the item, which may be as long as the body.
    return UsageError(shorten(f"item {index}: {message}"))


def _int_field(item: dict[str, Any], key: str, index: int, *, required: bool = True) -> int | None:
    if key not in item or item[key] is None:
        if required:
            raise _item_error(index, f"{key} is required")
        return None
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and as_id(value) is not None:
            return as_id(value)
        raise _item_error(index, f"{key} must be a whole number, not {value!r}")
    if value > MAX_ID:
        raise _item_error(index, f"{key} must be at most {MAX_ID}, not {value!r}")
    return value


# Items decided per transaction on SQLite (see BatchAPI.share): 500 holds the write lock
# ~0.3 s on a million-lead company and decides 25 % more items a second than 100 (a
# commit writes every index page the chunk touched; fewer commits, fewer page writes).
CHUNK = 500
# Items decided per transaction on PostgreSQL: a commit, and its wait for the log to
# reach the disk, per 100 items instead of per item. Recipients' share locks are taken
# so that two batches never wait on each other (db/locks.py).
PG_CHUNK = 100


def _user_field(item: dict[str, Any], index: int) -> str:
    value = item.get("UserId")
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise _item_error(index, "UserId must be a username or a user id")
    if isinstance(value, str) and "\x00" in value:  # no username has one; PostgreSQL cannot even look it up
        raise _item_error(index, "UserId must be a username or a user id, not text with a NUL character")
    if isinstance(value, int) and not 0 < value <= MAX_ID:
        raise _item_error(index, f"UserId must be a username or a user id (1 to {MAX_ID}), not {value!r}")
    if isinstance(value, int):
        # Kept as the id the caller gave (usernames start with a letter, so it can only be
        # an id): the share path finds the user, and a refusal repeats the caller's words,
        # never whom the id stood for.
        return str(value)
    # Checked here, with the rest of the batch, before its first item is written.
    if not value.strip():
        raise _item_error(index, "UserId must be a username or a user id, not blank")
    try:
        check_lengths(ShareRequest, {"recipient_name": value.strip()})
    except UsageError as exc:
        raise _item_error(index, f"UserId: {exc.message}") from None
    return value


def _check_leadsquared_codes(item: dict[str, Any], index: int, entity: int) -> None:
    """``EntityType`` must be 3 (a user) and ``ContextEntity`` 1 (an activity) when given;
    a ``ContextEntity`` names the kind of ``ContextEntityId``, so it needs one."""
    kind = _int_field(item, "EntityType", index, required=False)
    if kind is not None and kind != USER_ENTITY_TYPE:
        raise _item_error(
            index,
            f"EntityType must be {USER_ENTITY_TYPE} (a user): records are shared with users only, "
            f"not {item['EntityType']!r}",
        )
    context_kind = _int_field(item, "ContextEntity", index, required=False)
    if context_kind is None:
        return
    if context_kind != ACTIVITY_CONTEXT:
        raise _item_error(
            index,
            f"ContextEntity must be {ACTIVITY_CONTEXT} (an activity): the only context of a share, "
            f"not {item['ContextEntity']!r}",
        )
    if entity == 5:
        raise _item_error(index, "opportunities have no context: leave out ContextEntity")
    if item.get("ContextEntityId") in (None, ""):
        raise _item_error(index, "ContextEntity 1 names an activity: give its ContextEntityId")
    context = _int_field(item, "ContextEntityId", index, required=False)
    if context is not None and context < 1:  # 0 would silently become "no context"
        raise _item_error(index, f"ContextEntityId must be an activity id (1 or more), not {context!r}")


class BatchAPI:
    def __init__(self, core: Core) -> None:
        self.core = core

    def _check_keys(self, item: Any, index: int, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise _item_error(index, "must be a JSON object")
        # Before anything reads it: a lone surrogate (a "\ud800" escape) or a NUL reached the
        # database once the items before it were committed, and crashed the batch there.
        problem = find_text_problem(item)
        if problem:
            raise _item_error(index, problem)
        unknown = set(item) - allowed
        if unknown:
            raise _item_error(
                index, f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(allowed))})"
            )
        return item

    def _parse_share(self, item: Any, index: int) -> ShareInput:
        item = self._check_keys(item, index, _SHARE_KEYS)
        entity = _int_field(item, "Entity", index)
        if entity not in (1, 5):
            raise _item_error(index, f"Entity must be 1 (lead) or 5 (opportunity), not {entity!r}")
        _check_leadsquared_codes(item, index, entity)
        access = _int_field(item, "AccessType", index, required=False)
        access = 1 if access is None else access
        if access not in (1, 2):
            raise _item_error(index, f"AccessType must be 1 (read) or 2 (edit), not {access!r}")
        duration = item.get("DurationInMinutes")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, str))):
            raise _item_error(index, f"DurationInMinutes must be a number of minutes, not {duration!r}")
        until = item.get("UntilCompleted", False)
        if not isinstance(until, bool):
            raise _item_error(index, "UntilCompleted must be true or false")
        entity_id = _int_field(item, "EntityId", index)
        user = _user_field(item, index)
        context = _int_field(item, "ContextEntityId", index, required=False)
        try:
            return self.core.sharing.parse_share(
                entity,
                entity_id,
                user,
                duration=duration,
                access=access,
                context=context,
                until_completed=until,
            )
        except SharetuiError as exc:
            raise _item_error(index, exc.message) from None

    def share(self, items: list[Any], *, requester: User | None) -> list[dict[str, Any]]:
        """Run share items; one result per item, in order.

        Each item is recorded and decided in a savepoint of its own, up to
        :data:`CHUNK` items in one transaction on SQLite (:data:`PG_CHUNK` on
        PostgreSQL): a commit costs as much as deciding an item. A crash still leaves
        every item fully done or not started, and an item that raises is rolled back
        alone (the ones before it are kept). On PostgreSQL an item whose recipient
        another transaction is sharing with ends its chunk: the items before it commit
        and it starts the next (:mod:`sharetui.db.locks`: batches never deadlock).

        On SQLite a chunk's rows are written set-based (``db/batching.py``): one
        ``executemany`` per table. Should that fail, the chunk is decided again
        one statement at a time, where an item that fails is rolled back alone.
        """
        parsed = [self._parse_share(item, i) for i, item in enumerate(items)]
        batch_id = uuid.uuid4().hex
        results: list[dict[str, Any]] = []
        chunk = CHUNK if is_sqlite() else PG_CHUNK
        start = 0
        while start < len(parsed):
            kept = len(results)
            try:
                start = self._share_chunk(parsed, start, chunk, requester, batch_id, results, defer=True)
                continue
            except DeferredWriteFailed:  # rolled back: once more, a statement at a time
                del results[kept:]
            # Outside the except block: an error of the second try is its own, not chained
            # to the first's.
            start = self._share_chunk(parsed, start, chunk, requester, batch_id, results, defer=False)
        return results

    def _share_chunk(
        self,
        parsed: list[ShareInput],
        start: int,
        chunk: int,
        requester: User | None,
        batch_id: str,
        results: list[dict[str, Any]],
        *,
        defer: bool,
    ) -> int:
        """Decide the items from ``start``, up to ``chunk`` of them, in one transaction;
        returns where the next chunk starts."""
        error: Exception | None = None
        end = min(start + chunk, len(parsed))
        with (
            self.core.db.atomic(),
            # Team mode's people's logins write through the database's functions: nothing to hold.
            deferred_writes(self.core.db, size=end - start)
            if defer and not self.core.team.routed
            else nullcontext(),
            many_recipients(self.core.db) as recipients,
        ):
            # What the items' checks read, for all of them in a few statements (in a batch only).
            facts.prefetch(
                [(RecordRef(p.entity, p.entity_id), p.recipient) for p in parsed[start:end]], self.core.now()
            )
            people = facts.known_people(p.recipient for p in parsed[start:end])
            self.core.sharing.lock_recipients(recipients, people)
            for index in range(start, end):
                p = parsed[index]
                try:
                    with self.core.db.atomic():
                        request = self.core.sharing.open_share_request(
                            p, requester=requester, source=Source.API, batch_id=batch_id
                        )
                        result = self.core.sharing.process_share(request, p, requester)
                except DeferredWriteFailed:
                    raise
                except RecipientBusy:
                    return index  # the items before it commit; it starts the next chunk
                except Exception as exc:  # noqa: BLE001 - re-raised once the items before it commit
                    error = exc
                    break
                finally:
                    recipients.item_done()
                results.append({"index": index, **result.as_dict()})
        if error is not None:
            raise error
        return end

    def revoke(self, items: list[Any], *, requester: User | None) -> list[dict[str, Any]]:
        checked = []
        for index, raw in enumerate(items):
            item = self._check_keys(raw, index, _REVOKE_KEYS)
            entity = _int_field(item, "Entity", index)
            if entity not in (1, 5):
                raise _item_error(index, f"Entity must be 1 (lead) or 5 (opportunity), not {entity!r}")
            _check_leadsquared_codes(item, index, entity)
            access = _int_field(item, "AccessType", index, required=False)
            if access is not None and access not in (1, 2):
                raise _item_error(index, f"AccessType must be 1 (read) or 2 (edit), not {access!r}")
            all_contexts = item.get("AllContexts", False)
            if not isinstance(all_contexts, bool):
                raise _item_error(index, "AllContexts must be true or false")
            context = _int_field(item, "ContextEntityId", index, required=False)
            if context is not None and all_contexts:
                raise _item_error(index, "give ContextEntityId or AllContexts, not both")
            if context is not None and entity == 5:
                raise _item_error(index, "opportunities have no context")
            entity_id = _int_field(item, "EntityId", index)
            if entity_id is None or entity_id < 1:
                raise _item_error(index, f"EntityId must be a positive whole number, not {entity_id!r}")
            if context is not None and context < 1:
                raise _item_error(index, f"ContextEntityId must be a positive whole number, not {context!r}")
            checked.append((entity, entity_id, _user_field(item, index), context, all_contexts))
        results = []
        batch_id = uuid.uuid4().hex
        for index, (entity, eid, user, ctx, all_ctx) in enumerate(checked):
            result = self.core.sharing.revoke(
                entity,
                eid,
                user,
                requester=requester,
                context=ctx,
                all_contexts=all_ctx,
                source=Source.API,
                batch_id=batch_id,
            )
            results.append({"index": index, **result.as_dict()})
        return results

    def status(self, items: list[Any], *, actor: User | None) -> list[dict[str, Any]]:
        """Each request's status, for ``actor`` (DESIGN §9: a request ``actor`` may not
        see answers like one that does not exist)."""
        ids = []
        for index, item in enumerate(items):
            if isinstance(item, dict):
                value = _int_field(self._check_keys(item, index, {"RequestId"}), "RequestId", index)
            elif isinstance(item, int) and not isinstance(item, bool):
                if item > MAX_ID:
                    raise _item_error(index, f"request ids go up to {MAX_ID}, not {item!r}")
                value = item
            else:
                raise _item_error(index, 'must be a request id or {"RequestId": n}')
            ids.append(value)
        out = []
        for index, ident in enumerate(ids):
            request = ShareRequest.get_or_none(ShareRequest.id == ident)
            if request is None or not self.core.sharing.may_see_request(actor, request):
                out.append(
                    {
                        "index": index,
                        "request_id": ident,
                        "status": "unknown",
                        "reason": f"no request {ident} you may read",
                    }
                )
            else:
                out.append({"index": index, **self.core.sharing.result_of(request).as_dict()})
        return out

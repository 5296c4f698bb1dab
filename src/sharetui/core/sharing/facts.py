"""What the share path reads about a record and a recipient, read set-based for a batch.

A share asks: who is the recipient (by name or id), who owns the record, which active
grants the record has (the one to renew, and whether the recipient already holds one),
and on how many records the recipient holds live grants (the cap). One at a time that
is four or five statements a share. In a batch of deferred writes
(:mod:`sharetui.db.batching`: the batch API's chunk, the worker's batch of events)
:func:`prefetch` reads them for every share of the batch in four statements, into the
batch's memo, and the share path takes them from there (on PostgreSQL only people and
owners: grants are read under the recipient's lock, share by share):

- ``("person", text)``: the recipient as ``UserService.find`` would find ``text``;
- ``("owner", entity, id)``: the record's owner's id (None: no such record);
- ``("grants", entity, id)``: the record's active grants, as :data:`GRANT_COLUMNS`,
  kept up to date as the batch grants more (:func:`granted`);
- ``("cap", user_id, entity, now)``: on how many distinct records of that kind the user
  held live grants at ``now`` (stored form), counting the batch's own new ones.
- ``("access", user_id, entity)``: what the default rule set reads for the user and the
  batch's records of that kind (``default_plugins/access.py``); dropped when the batch
  grants the user a record of that kind (:func:`granted`).

:func:`prefetch` also names the batch's records (``Batch.records``), so that a lookup
keyed by record may read them all at its first miss.

Nothing here may go stale unseen: the memo holds no table the batch's own writes
change except grants, whose every new row goes through :func:`granted`, and the batch
drops the whole memo whenever another statement changes a row or a savepoint rolls back
(the share path's renewals and expiries are such statements).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sharetui.db.batching import Batch, batch_of, memo_of
from sharetui.db.connection import database
from sharetui.db.sql import USER_LIVE_GRANT, Statement
from sharetui.domain.ids import as_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import to_db

# (id, user_id, context_key, expires_at, starts_at, source, access) of an active grant.
GRANT_COLUMNS = "id, user_id, context_key, expires_at, starts_at, source, access"
_USER_BY_NAME = Statement("SELECT id, username, role, active FROM users WHERE username = ?", reads=("users",))
_USER_BY_ID = Statement("SELECT id, username, role, active FROM users WHERE id = ?", reads=("users",))
_OWNER = {
    entity: Statement(f"SELECT owner_id FROM {entity.table} WHERE id = ?", reads=(entity.table,))
    for entity in EntityType
}
# SQLite's limit on bound values is far above this; a batch is at most a few hundred.
_MOST_AT_ONCE = 500


class Person(NamedTuple):
    """A user as the share path needs one (duck-types the ``User`` fields it reads)."""

    id: int
    username: str
    role: str
    active: bool


def naive(value: Any) -> datetime:
    """A stored time read with raw SQL (text on SQLite) as the naive UTC datetime Peewee gives."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _memo() -> dict[Any, Any] | None:
    return memo_of(database.obj)


def find_person(who: str) -> Person | None:
    """Like ``UserService.find`` for a name: the username (any case), else a numeric id."""
    text = str(who).strip()
    if not text or "\x00" in text:  # no username holds a NUL (PostgreSQL cannot even compare one)
        return None
    memo = _memo()
    key = ("person", text)
    if memo is not None and key in memo:
        return memo[key]
    row = _USER_BY_NAME.one((text.lower(),))
    if row is None and as_id(text) is not None:
        row = _USER_BY_ID.one((as_id(text),))
    person = None if row is None else Person(row[0], row[1], row[2], bool(row[3]))
    if memo is not None:
        memo[key] = person
    return person


def known_people(whos: Iterable[Any]) -> list[int | None]:
    """The ids of the people these names stand for, in order, as the open batch's memo
    knows them (None: nobody, or not looked up)."""
    memo = _memo()
    people = [None if memo is None else memo.get(("person", str(who).strip())) for who in whos]
    return [None if person is None else person.id for person in people]


def record_owner(ref: RecordRef) -> int | None:
    """The record's owner's id, or None when there is no such record."""
    memo = _memo()
    if memo is None:
        found = _OWNER[ref.entity].one((ref.id,))
        return None if found is None else found[0]
    key = ("owner", ref.entity, ref.id)
    if key not in memo:
        found = _OWNER[ref.entity].one((ref.id,))
        memo[key] = None if found is None else found[0]
    return memo[key]


def record_grants(batch: Batch | None, ref: RecordRef) -> list[tuple[Any, ...]] | None:
    """The record's active grants (:data:`GRANT_COLUMNS`) when the batch knows them."""
    return None if batch is None else batch.memo.get(("grants", ref.entity.value, ref.id))


def known_cap(batch: Batch | None, user_id: int, ref: RecordRef, now: datetime) -> tuple[int, int] | None:
    """(distinct records, live grants on ``ref``) of the user, as the cap statement would
    count them at ``now``, when the batch knows both; else None."""
    if batch is None:
        return None
    distinct = batch.memo.get(("cap", user_id, ref.entity.value, to_db(now)))
    on = batch.memo.get(("grants", ref.entity.value, ref.id))
    if distinct is None or on is None:
        return None
    at = to_db(now)
    return distinct, sum(1 for row in on if row[1] == user_id and naive(row[3]) > at)


def granted(batch: Batch | None, ref: RecordRef, grant: tuple[Any, ...], now: datetime) -> None:
    """Keep the memo true after a new grant (:data:`GRANT_COLUMNS`) of the batch's."""
    if batch is None:
        return
    memo = batch.memo
    user_id = grant[1]
    memo.pop(("access", user_id, ref.entity.value), None)  # its level on the record changed
    cap_key = ("cap", user_id, ref.entity.value, to_db(now))
    on = memo.get(("grants", ref.entity.value, ref.id))
    if on is None:
        memo.pop(cap_key, None)  # whether it adds a record to the count is not known here
        return
    at = to_db(now)
    had = any(row[1] == user_id and naive(row[3]) > at for row in on)
    on.append(grant)
    if not had and cap_key in memo:
        memo[cap_key] += 1


def prefetch(shares: Iterable[tuple[RecordRef, Any]], now: datetime) -> None:
    """Read, for shares of these (record, recipient as given), what the share path asks,
    into the open batch's memo (nothing outside a batch). Harmless when a share is never
    made: it only reads."""
    memo = _memo()
    if memo is None:
        return
    wanted = [(ref, str(who).strip()) for ref, who in shares]
    if not wanted:
        return
    batch = batch_of(database.obj)
    if batch is not None:
        for ref, _ in wanted:
            batch.records.setdefault(ref.entity.value, set()).add(ref.id)
    # Recipients: by username (any case), then numeric ids that named nobody.
    names = {text for _, text in wanted if text and "\x00" not in text and ("person", text) not in memo}
    by_name = {
        row[1]: row
        for row in _in(
            "SELECT id, username, role, active FROM users WHERE username IN", ("users",), names, str.lower
        )
    }
    by_id_wanted = {as_id(t) for t in names if t.lower() not in by_name and as_id(t) is not None}
    by_id = {
        row[0]: row
        for row in _in("SELECT id, username, role, active FROM users WHERE id IN", ("users",), by_id_wanted)
    }
    for text in names:
        row = by_name.get(text.lower())
        if row is None and as_id(text) is not None:
            row = by_id.get(as_id(text))
        memo[("person", text)] = None if row is None else Person(row[0], row[1], row[2], bool(row[3]))
    # Owners of the records.
    for entity in EntityType:
        ids = {ref.id for ref, _ in wanted if ref.entity is entity}
        missing = {i for i in ids if ("owner", entity, i) not in memo}
        owners = dict(_in(f"SELECT id, owner_id FROM {entity.table} WHERE id IN", (entity.table,), missing))
        for ident in missing:
            memo[("owner", entity, ident)] = owners.get(ident)
    if batch is None or not batch.sqlite:
        # PostgreSQL: a record's grants and a recipient's count are read share by share,
        # under the recipient's lock (db/locks.py), which no read ahead of it would hold.
        return
    if batch.held.get("grants"):
        batch.flush()  # the grants read below must include the batch's own
    # Active grants of the records.
    for entity in EntityType:
        ids = {ref.id for ref, _ in wanted if ref.entity is entity}
        unread = {i for i in ids if ("grants", entity.value, i) not in memo}
        found: dict[int, list[tuple[Any, ...]]] = {i: [] for i in unread}
        sql = (
            f"SELECT entity_id, {GRANT_COLUMNS} FROM grants "
            "WHERE entity_type = ? AND state = 'active' AND entity_id IN"
        )
        for row in _in(sql, ("grants",), unread, before=(entity.value,)):
            found[row[0]].append(tuple(row[1:]))
        for ident, rows in found.items():
            memo[("grants", entity.value, ident)] = rows
    # The recipients' counts for the cap.
    at = to_db(now)
    pairs = {
        (person.id, ref.entity.value)
        for ref, text in wanted
        if (person := memo.get(("person", text))) is not None
        and ("cap", person.id, ref.entity.value, at) not in memo
    }
    if pairs:
        counts = {
            (user, entity): count
            for user, entity, count in _in(
                f"SELECT user_id, entity_type, COUNT(DISTINCT entity_id) FROM grants WHERE {USER_LIVE_GRANT} "
                "AND user_id IN",
                ("grants",),
                {user for user, _ in pairs},
                before=(at,),
                suffix=" GROUP BY user_id, entity_type",
            )
        }
        for user, entity in pairs:
            memo[("cap", user, entity, at)] = counts.get((user, entity), 0)


def _in(
    head: str,
    reads: tuple[str, ...],
    values: Iterable[Any],
    convert: Any = None,
    *,
    before: tuple[Any, ...] = (),
    suffix: str = "",
) -> list[tuple[Any, ...]]:
    """Rows of ``head (?, ?, ...)suffix`` for the values (``before``: the parameters
    ahead of them), a few hundred at a time."""
    items = sorted({convert(v) if convert else v for v in values})
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(items), _MOST_AT_ONCE):
        part = items[start : start + _MOST_AT_ONCE]
        sql = f"{head} ({', '.join('?' * len(part))}){suffix}"
        rows += Statement(sql, reads=reads, checked=reads).all([*before, *part])
    return rows

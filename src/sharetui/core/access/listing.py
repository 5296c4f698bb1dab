"""Keyset-paged lists of the records a user can see, with how they reach each.

A sales user's visible set is a UNION of three indexed lookups (own records,
records of group members they may view, active unexpired grants), each pushed
past the cursor, so a deep page costs the same as the first. Roles that see
everything page the table directly. Only the page's rows are ever fetched.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sharetui.core.access import Page, VisibleRow
from sharetui.core.access.record_views import load_record_views
from sharetui.core.plugins import BUILTIN_RULE_SET
from sharetui.db.connection import database, is_sqlite
from sharetui.db.search import SEARCHED, index_table, sqlite_has_index
from sharetui.db.sql import USER_LIVE_GRANT, Statement
from sharetui.domain.ids import MAX_ID
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import ROLE_ACCESS, Access, EntityType, GroupLevel, Role
from sharetui.domain.sorts import TEXT_SORTS, parse_sort
from sharetui.domain.time import from_db, to_db
from sharetui.errors import UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

_COLUMNS = {
    EntityType.LEAD: ["id", "name", "company", "email", "stage", "source", "owner_id", "updated_at"],
    EntityType.OPPORTUNITY: ["id", "name", "type", "stage", "amount", "lead_id", "owner_id", "updated_at"],
}
_USER_SQL = Statement("SELECT role, active FROM users WHERE id = ?")


# The SQL of each sort's key, on the record ``r`` (and its owner ``o`` for the owner sort).
# Every one of these columns is NOT NULL (a test holds the schema to it), so no key needs
# a COALESCE: a NULL would fall out of both sides of a keyset comparison, and wrapping
# the key would keep the indexes on it from serving the sort.
_OWNER_JOIN = " JOIN users o ON o.id = r.owner_id"


@dataclass(frozen=True)
class ListOrder:
    """How a list is ordered: the sort key's SQL (None: the id alone), the direction,
    the join the key needs, and the collation that keeps the key's order once it has
    left its table (where pieces of a page are merged: a sales user's branches, the two
    halves of an admin's page past a cursor).

    Text keys fold ASCII letters to lower case and then compare byte by byte, the same
    on both stores (and Python's ``sorted`` on ``str.lower`` for ASCII text): SQLite's
    built-in NOCASE collation does exactly that; on PostgreSQL the column is taken in
    the "C" collation, so ``lower`` folds ASCII only and comparisons go by code point
    whatever the database's locale. (SQLite's ``lower`` is sharetui's Unicode fold, and
    deliberately not one an index may hold.) The indexes of migration 0013 hold the
    same expressions, so the planner walks them instead of sorting the table.
    """

    column: str
    key: str | None
    desc: bool
    join: str = ""
    collate: str = ""
    value: str = "?"  # the cursor's key as a parameter, in the key's own type
    walk_from: str = ""  # the FROM of a walk in sort order through every record, if not r{join}

    @property
    def sql(self) -> str:
        """The ORDER BY terms, on ``r`` (and ``o``)."""
        way = " DESC" if self.desc else " ASC"
        return f"r.id{way}" if self.key is None else f"{self.key}{way}, r.id{way}"

    def after_sql(self) -> str:
        """Rows after (key, id) = (?, ?, ?): the key, the key again and the id.

        ``key >= ? AND (key > ? OR id > ?)`` is ``key > ? OR (key = ? AND id > ?)``,
        written so that its first term bounds an index range: in the second form SQLite
        walks the index from its start and tests every entry before the cursor."""
        cmp = "<" if self.desc else ">"
        v = self.value
        return f"{self.key} {cmp}= {v} AND ({self.key} {cmp} {v} OR r.id {cmp} ?)"

    def same_key_sql(self) -> str:
        """Rows of the cursor's key after it: the key and the id (?, ?)."""
        return f"{self.key} = {self.value} AND r.id {'<' if self.desc else '>'} ?"

    def past_key_sql(self) -> str:
        """Rows of the keys after the cursor's: the key (?)."""
        return f"{self.key} {'<' if self.desc else '>'} {self.value}"

    def walk(self, table: str) -> str:
        """The FROM clause of a walk through every record in the sort's order."""
        return self.walk_from.format(table=table) if self.walk_from else f"{table} r{self.join}"

    def lookup_sql(self, table: str) -> str:
        """The sort key of one record, by id (the cursor's record)."""
        return f"SELECT {self.key} FROM {table} r{self.join} WHERE r.id = ?"


def list_order(entity: EntityType, sort: str) -> ListOrder:
    """The order ``sort`` names for ``entity``'s lists; :class:`UsageError` naming the
    valid sorts when there is no such sort."""
    column, desc = parse_sort(entity, sort)
    if column == "id":
        return ListOrder(column, None, desc)
    sqlite = is_sqlite()
    if column == "owner":
        # By the owner's username (lower case by rule, and unique, so one owner's
        # records stay together), as the list shows owners: sorting by owner id would
        # put them in no order a reader can see. The admin's page walks users by
        # username (SQLite's unique index, PostgreSQL's "C" one) and each owner's
        # records by the (owner_id, id) index.
        if sqlite:
            # Users first, as written: without statistics SQLite may instead read every
            # record and sort them (it did so for a LIMIT written as a number).
            walk = "users o CROSS JOIN {table} r ON r.owner_id = o.id"
            return ListOrder(column, "o.username", desc, _OWNER_JOIN, walk_from=walk)
        return ListOrder(column, 'o.username COLLATE "C"', desc, _OWNER_JOIN, ' COLLATE "C"')
    if column in TEXT_SORTS:
        if sqlite:
            return ListOrder(column, f"r.{column} COLLATE NOCASE", desc, collate=" COLLATE NOCASE")
        return ListOrder(column, f'lower(r.{column} COLLATE "C")', desc, collate=' COLLATE "C"')
    if column == "amount":
        # PostgreSQL's REAL is 4 bytes, read back as the nearest short decimal (99.99):
        # as a double that is not the stored value, and the cursor's row came round again.
        return ListOrder(column, "r.amount", desc, value="CAST(? AS REAL)")
    return ListOrder(column, "r.updated_at", desc)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# A cursor holds an id, or a name and an id: anything longer was not made here.
_MAX_CURSOR = 4096
_MAX_CURSOR_TEXT = 1000


def decode_cursor(cursor: str) -> list[Any]:
    """The values :func:`encode_cursor` packed: a list of at most two ids (ints from 0 to
    ``MAX_ID``) or texts. Anything else, however it was mangled (not base64, not JSON,
    nested a thousand deep, numbers too big for the database, lone surrogates), is a
    :class:`UsageError`: a cursor comes from the user, so it is input, never a traceback."""
    bad = UsageError(f"bad cursor {cursor!r}: pass the next_cursor of the previous page")
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR:
        raise bad
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, RecursionError):  # binascii.Error and JSONDecodeError are ValueErrors
        raise bad from None
    if not isinstance(values, list) or not 1 <= len(values) <= 2:
        raise bad
    for value in values:
        if type(value) is int:
            if not 0 <= value <= MAX_ID:
                raise bad
        elif isinstance(value, str):
            if len(value) > _MAX_CURSOR_TEXT or "\x00" in value or not _is_utf8(value):
                raise bad
        else:
            raise bad
    return values


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 spells
        return False
    return True


def visible_page(
    core: Core,
    user_id: int,
    entity: EntityType,
    *,
    after: str | None,
    limit: int,
    search: str | None,
    sort: str,
) -> Page:
    """One page of the records ``user_id`` may read (see :meth:`AccessService.visible`).

    With the built-in rules, SQL picks the rows (the same rules ``check`` applies) and
    plugin checks then drop or relevel them. A plugin that replaced the rule set
    (``sharetui_access_level``) decides instead, row by row, over every record in the
    list's order: the rules in SQL are not its rules.
    """
    if core.plugins.rule_set() != BUILTIN_RULE_SET:
        return _page_by_rule_set(core, user_id, entity, after=after, limit=limit, search=search, sort=sort)
    return _page(core, user_id, entity, after=after, limit=limit, search=search, sort=sort)


# A page under a plugin's rule set reads at most this many pages' worth of records
# before it returns what it found (with a cursor to go on from).
_RULE_SET_SCAN_PAGES = 20


def _page_by_rule_set(
    core: Core,
    user_id: int,
    entity: EntityType,
    *,
    after: str | None,
    limit: int,
    search: str | None,
    sort: str,
) -> Page:
    rule_set = core.plugins.rule_set()
    kept: list[VisibleRow] = []
    cursor = after
    for _ in range(_RULE_SET_SCAN_PAGES):
        batch = _page(
            core, user_id, entity, after=cursor, limit=limit, search=search, sort=sort, every_record=True
        )
        views = (
            load_record_views(entity, [r.id for r in batch.rows]) if core.plugins.wants_record_view() else {}
        )
        for row in batch.rows:
            level = core.access.level(user_id, RecordRef(entity, row.id), view=views.get(row.id))
            if level is Access.NONE:
                continue
            kept.append(VisibleRow(row.id, row.values, f"rule set {rule_set} ({level.label})", level))
            if len(kept) == limit:
                more = row is not batch.rows[-1] or batch.next_cursor is not None
                return Page(kept, cursor_after(row.values, sort) if more else None)
        if batch.next_cursor is None:
            return Page(kept, None)
        cursor = batch.next_cursor
    return Page(kept, cursor)


def _page(
    core: Core,
    user_id: int,
    entity: EntityType,
    *,
    after: str | None,
    limit: int,
    search: str | None,
    sort: str,
    every_record: bool = False,
) -> Page:
    """``every_record``: every record in the list's order, as for an admin, with no
    access decided (the caller decides)."""
    order = list_order(entity, sort)
    if not 1 <= limit <= 1000:
        raise UsageError("limit must be between 1 and 1000")
    user = _USER_SQL.one((user_id,))
    if user is None:
        raise UsageError(f"unknown user id {user_id}")
    role, active = Role(user[0]), bool(user[1])
    now = to_db(core.clock.now())
    cols = _COLUMNS[entity]
    table = entity.table
    params: list[Any] = []
    where: list[str] = []
    if not active:
        return Page([], None)
    sees_all = every_record or ROLE_ACCESS[role] > Access.NONE
    desc = order.desc
    by_id = order.key is None
    cmp = "<" if desc else ">"
    cursor_vals = decode_cursor(after) if after else None
    if cursor_vals is not None:
        if [type(v) for v in cursor_vals] != [int]:
            raise UsageError(f"bad cursor {after!r}: it belongs to another list or sort order")
        if not by_id:
            # A cursor carries only the last row's id, never its sort value: the value is
            # looked up here (a page may end on a row the user may not read; DESIGN §9).
            found = Statement(order.lookup_sql(table)).one((cursor_vals[0],))
            if found is None:
                raise UsageError(f"bad cursor {after!r}: pass the next_cursor of the previous page")
            cursor_vals = [found[0], cursor_vals[0]]
    term = search.strip().lower() if search else ""
    text_index = None
    if term:
        # The typed text is matched literally (a '%' or '_' is not a wildcard).
        fields = _SEARCHED[entity]
        where.append("(" + " OR ".join(f"LOWER(r.{f}) LIKE ? ESCAPE '\\'" for f in fields) + ")")
        params.extend([_like_pattern(term)] * len(fields))
        text_index = _text_index(table, term)
    search_where, search_params = list(where), list(params)
    if cursor_vals is not None:
        if by_id:
            where.append(f"r.id {cmp} ?")
            params.append(int(cursor_vals[0]))
        else:
            where.append(order.after_sql())
            params.extend([cursor_vals[0], cursor_vals[0], int(cursor_vals[1])])
    select = ", ".join(f"r.{c}" for c in cols)
    join = order.join
    rare = False
    if text_index is not None and not (sees_all and by_id):
        rare = _rare(text_index, table, term)
        if not sees_all and sqlite3.sqlite_version_info < (3, 35):  # no MATERIALIZED CTEs
            rare = False
    if text_index is not None and sees_all and by_id:
        # Walk the text index in id order, keeping rows that match exactly: a page
        # costs its own matches, whether the term is rare or common.
        sql = (
            f"SELECT {select} FROM {text_index} f CROSS JOIN {table} r ON r.id = f.rowid "
            f"WHERE f.{text_index} MATCH ? AND {' AND '.join(where)}"
        )
        params = [_trigrams(term), *params]
        if cursor_vals is not None:  # on the index too, so it starts there
            sql += f" AND f.rowid {cmp} ?"
            params.append(int(cursor_vals[0]))
        sql += f" ORDER BY f.rowid {'DESC' if desc else 'ASC'} LIMIT ?"
        params.append(limit + 1)
    elif rare and sees_all:
        # A rare term: its few matches from the index, sorted; never a walk of the name index.
        sql = (
            f"SELECT {select} FROM (SELECT rowid AS id FROM {text_index} WHERE {text_index} MATCH ?) h "
            f"CROSS JOIN {table} r ON r.id = h.id{join} WHERE {' AND '.join(where)} "
            f"ORDER BY {order.sql} LIMIT ?"
        )
        params = [_trigrams(term), *params, limit + 1]
    elif sees_all and cursor_vals is not None and not by_id:
        # Past a cursor in a sort by a key: the rest of the cursor's key (by id), then the
        # keys after it, each an exact range of the sort's index. One range from the key
        # on (key >= ? AND ...) steps over every row of the cursor's key before the cursor:
        # a page deep among the 300,000 leads with no company took ~25 ms.
        way = " DESC" if desc else " ASC"
        extra = "".join(f" AND {w}" for w in search_where)
        rows_of = f"SELECT {select}, {order.key} AS sort_key FROM {order.walk(table)} WHERE"
        same = f"{rows_of} {order.same_key_sql()}{extra} ORDER BY r.id{way} LIMIT ?"
        past = f"{rows_of} {order.past_key_sql()}{extra} ORDER BY {order.sql} LIMIT ?"
        sql = (
            f"SELECT {', '.join(cols)} FROM (SELECT * FROM ({same}) s UNION ALL SELECT * FROM ({past}) p) "
            f"page ORDER BY sort_key{order.collate}{way}, id{way} LIMIT ?"
        )
        key_value, last_id = cursor_vals[0], int(cursor_vals[1])
        params = [
            key_value,
            last_id,
            *search_params,
            limit + 1,
            key_value,
            *search_params,
            limit + 1,
            limit + 1,
        ]
    elif sees_all:
        sql = f"SELECT {select} FROM {order.walk(table)}{(' WHERE ' + ' AND '.join(where)) if where else ''}"
        sql += f" ORDER BY {order.sql} LIMIT ?"
        params.append(limit + 1)
    elif rare:
        # Each branch keeps the rows among the term's few matches, found once.
        filters = " AND " + " AND ".join([*where, "r.id IN (SELECT id FROM hits)"])
        sql, params = _merged_page_sql(user_id, entity, select, filters, params, order, limit + 1, now)
        hits = f"SELECT rowid AS id FROM {text_index} WHERE {text_index} MATCH ?"
        sql = f"WITH hits AS MATERIALIZED ({hits}) {sql}"
        params = [_trigrams(term), *params]
    else:
        filters = (" AND " + " AND ".join(where)) if where else ""
        sql, params = _merged_page_sql(user_id, entity, select, filters, params, order, limit + 1, now)
    rows = _fetch_search(sql, params) if term else Statement(sql).all(params)
    more = len(rows) > limit
    rows = rows[:limit]
    page_rows = [dict(zip(cols, row, strict=True)) for row in rows]
    next_cursor = cursor_after(page_rows[-1], sort) if more and page_rows else None
    if every_record:
        return Page([VisibleRow(r["id"], r, "", Access.NONE) for r in page_rows], next_cursor)
    reach = _reach(core, user_id, role, entity, page_rows, now)
    out = [VisibleRow(r["id"], r, *reach[r["id"]]) for r in page_rows]
    if core.plugins.has_access_checks():
        # Plugin access checks decide too (a deny wins), as for every single check:
        # a row the user may not read is left out, a lowered or raised level is shown.
        out = _after_access_checks(core, user_id, entity, out)
    return Page(out, next_cursor)


def cursor_after(row: dict[str, Any], sort: str) -> str:
    """The cursor of the page that starts after ``row`` in ``sort`` order: its id only,
    whatever the sort (the row may be one the user may not read: a cursor names none of it)."""
    return encode_cursor([row["id"]])


def _after_access_checks(
    core: Core, user_id: int, entity: EntityType, rows: list[VisibleRow]
) -> list[VisibleRow]:
    kept = []
    # The checks that read the record get it from one query for the whole page.
    views = load_record_views(entity, [r.id for r in rows]) if core.plugins.wants_record_view() else {}
    for row in rows:
        level = core.access.level(user_id, RecordRef(entity, row.id), view=views.get(row.id))
        if level is Access.NONE:
            continue
        if level != row.level:
            row = VisibleRow(row.id, row.values, f"plugin ({level.label})", level)
        kept.append(row)
    return kept


_SEARCHED = {entity: list(SEARCHED[entity.table]) for entity in EntityType}


def _like_pattern(term: str) -> str:
    """``%term%`` with LIKE's wildcards and escape character taken literally."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _trigrams(term: str) -> str:
    """An FTS5 query for the rows holding every trigram of ``term`` (in any column, any
    order): all rows containing the term, and a few more, which the exact test drops.
    Each three-character piece is a quoted string that FTS5 tokenizes (and folds) as
    it did the text; the index keeps no positions, so a phrase cannot be asked for."""
    pieces = {term[i : i + 3] for i in range(len(term) - 2)}
    return " AND ".join('"' + p.replace('"', '""') + '"' for p in sorted(pieces))


def _text_index(table: str, term: str) -> str | None:
    """The SQLite text index to narrow a search with, if there is one and the term is
    long enough for trigrams (shorter terms match so much that a scan fills a page fast).

    The index is a prefilter only: it folds case for every alphabet, and the exact
    ``LOWER(column) LIKE`` test still decides, so results are what a scan gives.
    """
    if len(term) < 3 or not is_sqlite() or not sqlite_has_index(database, table):
        return None
    return index_table(table)


def _fetch_search(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run a search, on PostgreSQL planned for its own term.

    psycopg prepares a statement run five times, and PostgreSQL may then keep one
    generic plan for every term. For a search that plan ANDs the owner index with
    the trigram indexes: fine for a rare term, but a term with no trigram ('an')
    reads the whole of each trigram index, ~5 s on a million leads, where a plan
    made for the term takes ~10 ms. A search is never prepared, so never reused.
    """
    return Statement(sql).all_unprepared(params)


def _rare(text_index: str, table: str, term: str) -> bool:
    """Whether the term matches fewer rows than it pays to read through the index.

    Sorting the matches costs about one row read each; a scan in sort order finds a
    page's 101 matches in about 101 x N / matches rows. They cost the same near
    sqrt(101 x N) matches (~10,000 of 1,000,000 rows): count up to there, no further.
    """
    top = int((Statement(f"SELECT MAX(id) FROM {table}").one() or (0,))[0] or 0)
    enough = max(1000, math.isqrt(101 * top))
    found = Statement(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {text_index} WHERE {text_index} MATCH ? LIMIT ?)"
    ).one([_trigrams(term), enough])
    return int(found[0]) < enough if found else False


_VIEWABLE_OWNERS = Statement(
    "SELECT DISTINCT gm2.user_id FROM group_members gm1 JOIN group_members gm2 "
    "ON gm2.group_id = gm1.group_id WHERE gm1.user_id = ? AND gm1.level >= ?"
)
MAX_BRANCHES = 200  # SQLite allows 500 terms in a compound SELECT


def _merged_page_sql(
    user_id: int,
    entity: EntityType,
    select: str,
    filters: str,
    filter_params: list[Any],
    order: ListOrder,
    n: int,
    now: Any,
) -> tuple[str, list[Any]]:
    """One page of a sales user's records without touching the rest.

    Each source of access is read through its own index and cut to one page —
    one branch per owner whose records the user may see (own, and sales-group
    members at view level or above), one for active unexpired grants — and
    the branches are merged: the cost is (owners + 1) short index reads, not
    the size of the visible set. The branches carry only the sort key (read
    from the (owner, id) or (owner, lower(name), id) index; other keys sort the
    owner's own records); the page's rows are fetched once, by id, at the end.
    """
    table = entity.table
    join = order.join
    keys = "r.id" if order.key is None else f"{order.key} AS sort_key, r.id"
    way = " DESC" if order.desc else " ASC"
    outer_order = f"id{way}" if order.key is None else f"sort_key{order.collate}{way}, id{way}"
    owners = [user_id] + [
        r[0] for r in _VIEWABLE_OWNERS.all([user_id, int(GroupLevel.VIEW)]) if r[0] != user_id
    ]
    shared = (
        f"SELECT {keys} FROM {table} r{join} WHERE r.id IN (SELECT entity_id FROM grants WHERE user_id = ? "
        f"AND entity_type = ? AND {USER_LIVE_GRANT}){filters} ORDER BY {order.sql} LIMIT ?"
    )
    shared_params = [user_id, entity.value, now, *filter_params, n]
    if not is_sqlite():
        # PostgreSQL: the same per-owner index reads as one LATERAL join over the owners.
        # One subquery, planned once; under team mode's row security its policy's look-ups
        # (who am I, my groups, my grants) run once, not once per owner's branch.
        owned = (
            f"SELECT b.* FROM unnest(?::integer[]) AS seen(owner_id) CROSS JOIN LATERAL (SELECT {keys} "
            f"FROM {table} r{join} WHERE r.owner_id = seen.owner_id{filters} ORDER BY {order.sql} LIMIT ?) b"
        )
        branches = [(owned, [owners, *filter_params, n])]
    elif len(owners) > MAX_BRANCHES:
        owned = (
            f"SELECT {keys} FROM {table} r{join} WHERE r.owner_id IN "
            f"({', '.join('?' for _ in owners)}){filters} ORDER BY {order.sql} LIMIT ?"
        )
        branches = [(owned, [*owners, *filter_params, n])]
    else:
        branch = (
            f"SELECT {keys} FROM {table} r{join} WHERE r.owner_id = ?{filters} ORDER BY {order.sql} LIMIT ?"
        )
        branches = [(branch, [owner, *filter_params, n]) for owner in owners]
    branches.append((shared, shared_params))
    union = " UNION ".join(f"SELECT * FROM ({sql}) b{i}" for i, (sql, _) in enumerate(branches))
    params = [p for _, ps in branches for p in ps]
    page = f"SELECT id FROM ({union}) page ORDER BY {outer_order} LIMIT ?"
    return (
        f"SELECT {select} FROM {table} r{join} WHERE r.id IN ({page}) ORDER BY {order.sql}",
        [*params, n],
    )


def _reach(
    core: Core, user_id: int, role: Role, entity: EntityType, rows: list[dict[str, Any]], now: Any
) -> dict[int, tuple[str, Access]]:
    """How the user reaches each row: own, group, shared read/edit until …, or role."""
    if not rows:
        return {}
    ids = [r["id"] for r in rows]
    marks = ", ".join("?" for _ in ids)
    grants = Statement(
        f"SELECT entity_id, access, expires_at FROM grants WHERE user_id = ? "
        f"AND entity_type = ? AND state = 'active' AND expires_at > ? AND entity_id IN ({marks})"
    ).all([user_id, entity.value, now, *ids])
    # Per record: the highest access, and until when *that* access lasts.
    by_grant: dict[int, tuple[Access, Any]] = {}
    for eid, acc, exp in grants:
        best = by_grant.get(eid)
        if best is None or (acc, from_db(exp)) > (int(best[0]), best[1]):
            by_grant[eid] = (Access(acc), from_db(exp))
    owners = {r["owner_id"] for r in rows}
    omarks = ", ".join("?" for _ in owners)
    group_rows = database.execute_sql(
        Statement(
            "SELECT gm2.user_id, MAX(gm1.level) FROM group_members gm1 JOIN group_members gm2 "
            f"ON gm2.group_id = gm1.group_id WHERE gm1.user_id = ? AND gm2.user_id IN ({omarks}) "
            "GROUP BY gm2.user_id"
        ).sql(),
        [user_id, *owners],
    ).fetchall()
    by_owner = {uid: GroupLevel(level).grants for uid, level in group_rows}
    role_level = ROLE_ACCESS[role]
    out: dict[int, tuple[str, Access]] = {}
    for r in rows:
        if r["owner_id"] == user_id:
            out[r["id"]] = ("own", Access.EDIT)
            continue
        candidates: list[tuple[Access, str]] = []
        if role_level:
            candidates.append((role_level, f"role ({role_level.label})"))
        glevel = by_owner.get(r["owner_id"], Access.NONE)
        if glevel:
            candidates.append((glevel, f"group ({glevel.label})"))
        if r["id"] in by_grant:
            acc, exp = by_grant[r["id"]]
            until = core_local(exp)
            candidates.append((acc, f"shared {acc.label} until {until}"))
        if not candidates:
            out[r["id"]] = ("none", Access.NONE)
            continue
        best = max(candidates, key=lambda c: c[0])
        out[r["id"]] = (best[1], best[0])
    return out


def core_local(value: Any) -> str:
    from sharetui.domain.time import local_text

    return local_text(value)


__all__ = ["ListOrder", "RecordRef", "decode_cursor", "encode_cursor", "list_order", "visible_page"]

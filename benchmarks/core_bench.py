"""The core's benchmarks: access checks, visible pages, the batch share API, the
sweeper and the automation pipeline, each next to a raw baseline measured in
the same run (raw ``sqlite3``, or raw ``psycopg`` for the ``*_postgres`` figures).

What each one measures, and against what:

- ``check``: ``core.access.can()`` on random (user, record, action) triples,
  with the three example plugins of ``plugins/`` loaded the way
  ``--plugins-dir`` loads them. The triples mix leads (3/4) and opportunities,
  users who hold a share, owners, other sales users and the other roles.
  Baseline: per triple, the raw lookups of the same facts — user and record
  owner, best group level shared with the owner, best active unexpired grant.
- ``visible_first_page`` / ``visible_deep_page``: 50 leads visible to a sales
  user through ``core.listing.visible_page``, for the sales users who see the
  most leads; the deep page starts at a keyset cursor 90 % into their list.
  Baseline: one straightforward raw query for the same page.
- ``sorted_page`` / ``sorted_page_postgres``: the slowest of an admin's lead pages in
  the sorts other than id (name, company, stage, source, owner, updated, half of them
  descending), first page and a page 90 % into the list. Baseline: the slowest of the
  same pages' own SQL (the cursor's key looked up, then the keyset query) run raw.
  ``sorted_page_sales`` (``_postgres``): the slowest first page, in those sorts, of the
  sales user who sees the most. Reported.
- ``share_api``: LeadSquared-shaped share items through the batch API (parse
  included) on a scratch copy, fresh (record, user) pairs every run.
  Baseline: raw inserts of the same rows in the same transactions (the
  requests in one, then per item the grant, the request's completion, two
  history rows and the outbox event).
- ``sweep``: ``core.expiry.sweep()`` expiring 100,000 due grants (made due in
  setup), with their history and outbox rows. Baseline: a raw ``INSERT INTO
  history … SELECT``, ``INSERT INTO outbox … SELECT`` and ``UPDATE grants`` on
  another scratch copy set up the same way. Each run starts from the same
  state (restored outside the timing).
- ``automation_pipeline``: activities posted through ``core.records`` with the
  sample automation ``01_meeting_share.toml`` published, then the outbox
  processed as the worker does (500 events a call) until it is empty: every
  activity gives a run and a share. The figure is end to end (posting +
  processing); posting and processing are also reported on their own.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    NOW,
    Bench,
    Figure,
    at_least,
    at_least_ratio,
    at_most,
    at_most_ratio,
    benchmark,
    reported,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGINS = ("audit_log", "business_hours", "group_rotation")
NOW_DB = NOW.strftime("%Y-%m-%d %H:%M:%S")  # how SQLite stores times
PAGE = 50
PAGE_TARGET_MS = 20.0


# -- shared helpers -------------------------------------------------------------------------
def timed_runs(
    fn: Callable[[], Any], *, repeats: int, setup: Callable[[], Any] | None = None, warmup: int = 1
) -> list[float]:
    """Wall times of ``fn()`` (``setup()`` before each, untimed), warmup runs dropped."""
    import gc

    times = []
    for i in range(warmup + repeats):
        if setup is not None:
            setup()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        if i >= warmup:
            times.append(elapsed)
    return times


def paired_runs(
    product_fn: Callable[[], Any],
    baseline_fn: Callable[[], Any],
    *,
    repeats: int,
    warmup: int = 1,
    product_setup: Callable[[], Any] | None = None,
    baseline_setup: Callable[[], Any] | None = None,
) -> tuple[list[float], list[float]]:
    """Times of the product and its baseline, taken in turns (product, baseline, product, …)
    so both see the same machine: on a busy machine the load drifts over minutes, and
    one measured long after the other gave ratios that moved by half between runs."""
    product_times: list[float] = []
    baseline_times: list[float] = []
    for _ in range(warmup + repeats):
        product_times += timed_runs(product_fn, repeats=1, setup=product_setup, warmup=0)
        baseline_times += timed_runs(baseline_fn, repeats=1, setup=baseline_setup, warmup=0)
    return product_times[warmup:], baseline_times[warmup:]


def example_plugin_host() -> Any:
    """The three example plugins, loaded as ``--plugins-dir plugins/NAME`` loads each."""
    from sharetui.host import PluginHost

    host = PluginHost.load(
        plugin_dirs=[ROOT / "plugins" / name for name in EXAMPLE_PLUGINS], entry_points=False
    )
    loaded = {name for name, info in host.plugins.items() if info.loaded and not info.errors}
    wanted = {"audit-log", "business-hours", "group-rotation"}
    if not wanted <= loaded:
        problems = {n: i.errors for n, i in host.plugins.items() if i.errors}
        raise RuntimeError(f"example plugins did not load: {sorted(wanted - loaded)} {problems}")
    return host


@contextmanager
def product(url: str, *, plugins: Any = None) -> Iterator[Any]:
    """A Core on ``url`` at the benchmark's frozen now (default plugins unless given)."""
    from sharetui.clock import FrozenClock
    from sharetui.host import PluginHost
    from sharetui.runtime import open_core

    core = open_core(url, FrozenClock(NOW), plugins=plugins or PluginHost.load(entry_points=False))
    try:
        yield core
    finally:
        core.close()


@contextmanager
def quiet_audit_log(bench: Bench) -> Iterator[None]:
    """The audit-log example plugin writes to a throwaway file, never the user's."""
    old = os.environ.get("SHARETUI_AUDIT_LOG")
    path = bench.cache_dir / f"audit-{os.getpid()}.jsonl"
    os.environ["SHARETUI_AUDIT_LOG"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SHARETUI_AUDIT_LOG", None)
        else:
            os.environ["SHARETUI_AUDIT_LOG"] = old
        path.unlink(missing_ok=True)


def raw_writer(path: Path) -> sqlite3.Connection:
    """A raw connection set up as the product's for writing: WAL, synchronous NORMAL, same cache."""
    from sharetui.db.connection import SQLITE_PRAGMAS

    con = sqlite3.connect(path, isolation_level=None)
    for key, value in SQLITE_PRAGMAS.items():
        con.execute(f"PRAGMA {key}={value}")
    return con


def ms(seconds: float) -> float:
    return seconds * 1000.0


# -- check ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Triple:
    user_id: int
    entity: str  # "lead" | "opportunity"
    record_id: int
    action: int  # 1 read, 2 edit


def check_triples(
    rows: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], n: int, seed: int = 7
) -> list[Triple]:
    """``n`` (user, record, action) triples: 35 % a user with an active share on the record,
    15 % the record's owner, 35 % another sales user, 15 % an admin, manager or marketing user;
    records 3/4 leads, 1/4 opportunities (shares as they come); 1 in 5 asks for edit."""
    rng = random.Random(seed)
    sales = [r[0] for r in rows("SELECT id FROM users WHERE role = 'sales' ORDER BY id", ())]
    others = [r[0] for r in rows("SELECT id FROM users WHERE role <> 'sales' ORDER BY id", ())]
    bounds = {
        e: rows(f"SELECT MIN(id), MAX(id) FROM {t}", ())[0]
        for e, t in (("lead", "leads"), ("opportunity", "opportunities"))
    }
    shares = rows("SELECT user_id, entity_type, entity_id FROM grants WHERE state = 'active' ORDER BY id", ())

    def record() -> tuple[str, int]:
        entity = "lead" if rng.random() < 0.75 else "opportunity"
        lo, hi = bounds[entity]
        return entity, rng.randint(lo, hi)

    out = []
    for _ in range(n):
        action = 2 if rng.random() < 0.2 else 1
        pick = rng.random()
        if pick < 0.35 and shares:
            uid, entity, rid = rng.choice(shares)
        elif pick < 0.5:
            entity, rid = record()
            table = "leads" if entity == "lead" else "opportunities"
            uid = rows(f"SELECT owner_id FROM {table} WHERE id = ?", (rid,))[0][0]
        elif pick < 0.85:
            entity, rid = record()
            uid = rng.choice(sales)
        else:
            entity, rid = record()
            uid = rng.choice(others)
        out.append(Triple(uid, entity, rid, action))
    return out


_CHECK_OWNER = {
    "lead": (
        "SELECT u.role, u.active, r.owner_id FROM users u LEFT JOIN leads r ON r.id = {p} WHERE u.id = {p}"
    ),
    "opportunity": (
        "SELECT u.role, u.active, r.owner_id FROM users u LEFT JOIN opportunities r ON r.id = {p} "
        "WHERE u.id = {p}"
    ),
}
_CHECK_GROUP = (
    "SELECT MAX(gm1.level) FROM group_members gm1 JOIN group_members gm2 ON gm2.group_id = gm1.group_id "
    "WHERE gm1.user_id = {p} AND gm2.user_id = {p}"
)
_CHECK_GRANT = (
    "SELECT MAX(access) FROM grants WHERE user_id = {p} AND entity_type = {p} AND entity_id = {p} "
    "AND state = 'active' AND expires_at > {p}"
)


def raw_check(
    execute: Callable[[str, tuple[Any, ...]], Any], triples: list[Triple], now: Any, p: str = "?"
) -> list[bool]:
    """The baseline: three lookups per triple and the level worked out as the rules say."""
    owner_sql = {k: v.format(p=p) for k, v in _CHECK_OWNER.items()}
    group_sql, grant_sql = _CHECK_GROUP.format(p=p), _CHECK_GRANT.format(p=p)
    role_level = {"admin": 2, "sales_manager": 2, "marketing": 1, "sales": 0}
    out = []
    for t in triples:
        role, active, owner = execute(owner_sql[t.entity], (t.record_id, t.user_id)).fetchone()
        group = execute(group_sql, (t.user_id, owner)).fetchone()[0]
        grant = execute(grant_sql, (t.user_id, t.entity, t.record_id, now)).fetchone()[0]
        if not active or owner is None:
            out.append(False)
            continue
        level = role_level[role]
        if owner == t.user_id:
            level = 2
        if group is not None:
            level = max(level, 2 if group >= 2 else group)  # own 0, view 1 (read), modify/manage edit
        if grant:
            level = max(level, grant)
        out.append(level >= t.action)
    return out


def product_check(core: Any, triples: list[Triple]) -> Callable[[], list[bool]]:
    """``can()`` over the triples, as a function to time."""
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import Access, EntityType

    refs = [(t.user_id, RecordRef(EntityType(t.entity), t.record_id), Access(t.action)) for t in triples]
    can = core.access.can

    def run() -> list[bool]:
        return [can(uid, ref, action) for uid, ref, action in refs]

    return run


def _check_times(
    name: str, bench: Bench, core: Any, triples: list[Triple], baseline: Callable[[], list[bool]]
) -> tuple[float, float, str]:
    """(product, baseline) µs per check, after checking both answer the same."""
    run = product_check(core, triples)
    got, want = run(), baseline()
    differ = sum(a != b for a, b in zip(got, want, strict=True))
    if differ:
        raise RuntimeError(f"{name}: product and baseline disagree on {differ} checks")
    times, base_times = paired_runs(run, baseline, repeats=bench.repeats)
    value = statistics.median(times) / len(triples) * 1e6
    base = statistics.median(base_times) / len(triples) * 1e6
    return value, base, f"{len(triples):,} checks, {sum(got):,} allowed; example plugins loaded"


@benchmark("check")
def check(bench: Bench) -> list[Figure]:
    n = 2_000 if bench.quick else 20_000
    con = bench.raw()
    triples = check_triples(lambda sql, params: con.execute(sql, params).fetchall(), n)
    with quiet_audit_log(bench), product(bench.db_url, plugins=example_plugin_host()) as core:
        value, base, notes = _check_times(
            "check", bench, core, triples, lambda: raw_check(con.execute, triples, NOW_DB)
        )
    con.close()
    return [at_most_ratio("check", value, base, "µs/check", 3, notes)]


@benchmark("check_postgres")
def check_postgres(bench: Bench) -> list[Figure]:
    url = bench.pg_company_url()
    if url is None:
        return []
    import psycopg

    n = 500 if bench.quick else 10_000
    with psycopg.connect(url, autocommit=True) as con:
        triples = check_triples(lambda sql, params: con.execute(sql.replace("?", "%s"), params).fetchall(), n)
        with quiet_audit_log(bench), product(url, plugins=example_plugin_host()) as core:
            now = NOW.replace(tzinfo=None)
            value, base, notes = _check_times(
                "check_postgres",
                bench,
                core,
                triples,
                lambda: raw_check(lambda s, p: con.execute(s, p, prepare=True), triples, now, "%s"),
            )
    figure = at_most("check_postgres", value, "µs/check", 150, notes + "; baseline raw psycopg")
    return [replace(figure, baseline=base)]


# -- visible pages ----------------------------------------------------------------------------
_BUSIEST_SALES = """
WITH sees(uid, owner) AS (
  SELECT id, id FROM users WHERE role = 'sales' AND active = {true}
  UNION
  SELECT gm1.user_id, gm2.user_id FROM group_members gm1
    JOIN group_members gm2 ON gm2.group_id = gm1.group_id
    JOIN users u ON u.id = gm1.user_id AND u.role = 'sales' AND u.active = {true}
   WHERE gm1.level >= 1
),
per_owner(owner_id, n) AS (SELECT owner_id, COUNT(*) FROM leads GROUP BY owner_id)
SELECT sees.uid, SUM(per_owner.n) FROM sees JOIN per_owner ON per_owner.owner_id = sees.owner
GROUP BY sees.uid ORDER BY 2 DESC, 1 LIMIT {n}
"""
_VIEWABLE = (
    "SELECT DISTINCT gm2.user_id FROM group_members gm1 JOIN group_members gm2 "
    "ON gm2.group_id = gm1.group_id WHERE gm1.user_id = {p} AND gm1.level >= 1"
)
_PAGE_COLUMNS = "id, name, company, email, stage, source, owner_id, updated_at"


def raw_page_sql(owners: int, p: str) -> str:
    """The straightforward query: own or viewable owners' leads, or shared, after the cursor.

    (``state || ''`` as in the product, see ``sharetui.db.sql.USER_LIVE_GRANT``: without it
    SQLite reads every live grant of the company for each page.)"""
    marks = ", ".join(p for _ in range(owners))
    return (
        f"SELECT {_PAGE_COLUMNS} FROM leads WHERE (owner_id IN ({marks}) OR id IN ("
        f"SELECT entity_id FROM grants WHERE user_id = {p} AND entity_type = 'lead' "
        f"AND state || '' = 'active' AND expires_at > {p})) AND id > {p} ORDER BY id LIMIT {p}"
    )


@dataclass
class PageCase:
    user_id: int
    visible: int
    deep_cursor: str
    deep_after: int


def page_cases(
    rows: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], *, users: int, true: str, p: str, now: Any
) -> list[PageCase]:
    """The sales users who see the most leads, with a keyset cursor 90 % into their list."""
    from sharetui.core.access.listing import encode_cursor

    cases = []
    for uid, _owned in rows(_BUSIEST_SALES.format(true=true, n=users), ()):
        owners = [uid] + [r[0] for r in rows(_VIEWABLE.format(p=p), (uid,)) if r[0] != uid]
        marks = ", ".join(p for _ in owners)
        ids = [
            r[0]
            for r in rows(
                f"SELECT id FROM leads WHERE owner_id IN ({marks}) UNION SELECT entity_id FROM grants "
                f"WHERE user_id = {p} AND entity_type = 'lead' AND state || '' = 'active' "
                f"AND expires_at > {p} ORDER BY 1",
                (*owners, uid, now),
            )
        ]
        after = ids[int(len(ids) * 0.9)]
        cases.append(PageCase(uid, len(ids), encode_cursor([after]), after))
    return cases


_CASES: dict[str, list[PageCase]] = {}


def _page_figure(
    name: str,
    bench: Bench,
    core: Any,
    cases: list[PageCase],
    deep: bool,
    raw_page: Callable[[PageCase, int], list[tuple[Any, ...]]],
    postgres: bool,
) -> Figure:
    """Mean time of one page over ``cases`` (product and raw), after checking they agree."""
    from sharetui.domain.roles import EntityType

    def run_product() -> list[list[int]]:
        return [
            [
                r.id
                for r in core.access.visible(
                    c.user_id, EntityType.LEAD, after=c.deep_cursor if deep else None, limit=PAGE
                ).rows
            ]
            for c in cases
        ]

    def run_raw() -> list[list[int]]:
        return [[r[0] for r in raw_page(c, c.deep_after if deep else 0)][:PAGE] for c in cases]

    got, want = run_product(), run_raw()
    if got != want or any(len(page) != PAGE for page in got):
        raise RuntimeError(f"{name}: the product's pages differ from the raw query's")
    times, base_times = paired_runs(run_product, run_raw, repeats=bench.repeats)
    value = ms(statistics.median(times)) / len(cases)
    base = ms(statistics.median(base_times)) / len(cases)
    sees = ", ".join(f"{c.visible:,}" for c in cases)
    notes = f"mean over {len(cases)} sales users who see {sees} leads" + ("; cursor at 90 %" if deep else "")
    if postgres:
        return replace(at_most(name, value, "ms", 10, notes + "; baseline raw psycopg"), baseline=base)
    return Figure(name, value, "ms", f"<= {PAGE_TARGET_MS:g} ms", value <= PAGE_TARGET_MS, base, notes)


def _sqlite_page(bench: Bench, name: str, deep: bool) -> list[Figure]:
    con = bench.raw()

    def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return con.execute(sql, params).fetchall()

    key = f"sqlite:{bench.db_path}"
    if key not in _CASES:
        _CASES[key] = page_cases(rows, users=5, true="1", p="?", now=NOW_DB)

    def raw_page(case: PageCase, after: int) -> list[tuple[Any, ...]]:
        owners = [case.user_id] + [
            r[0] for r in rows(_VIEWABLE.format(p="?"), (case.user_id,)) if r[0] != case.user_id
        ]
        return rows(raw_page_sql(len(owners), "?"), (*owners, case.user_id, NOW_DB, after, PAGE + 1))

    try:
        with product(bench.db_url) as core:
            return [_page_figure(name, bench, core, _CASES[key], deep, raw_page, postgres=False)]
    finally:
        con.close()


def _postgres_page(bench: Bench, name: str, deep: bool) -> list[Figure]:
    url = bench.pg_company_url()
    if url is None:
        return []
    import psycopg

    now = NOW.replace(tzinfo=None)
    with psycopg.connect(url, autocommit=True) as con:

        def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return con.execute(sql, params, prepare=True).fetchall()

        key = f"postgres:{url}"
        if key not in _CASES:
            _CASES[key] = page_cases(rows, users=5, true="true", p="%s", now=now)

        def raw_page(case: PageCase, after: int) -> list[tuple[Any, ...]]:
            owners = [case.user_id] + [
                r[0] for r in rows(_VIEWABLE.format(p="%s"), (case.user_id,)) if r[0] != case.user_id
            ]
            return rows(raw_page_sql(len(owners), "%s"), (*owners, case.user_id, now, after, PAGE + 1))

        with product(url) as core:
            return [_page_figure(name, bench, core, _CASES[key], deep, raw_page, postgres=True)]


@benchmark("visible_first_page")
def visible_first_page(bench: Bench) -> list[Figure]:
    return _sqlite_page(bench, "visible_first_page", deep=False)


@benchmark("visible_deep_page")
def visible_deep_page(bench: Bench) -> list[Figure]:
    return _sqlite_page(bench, "visible_deep_page", deep=True)


@benchmark("visible_first_page_postgres")
def visible_first_page_postgres(bench: Bench) -> list[Figure]:
    return _postgres_page(bench, "visible_first_page_postgres", deep=False)


@benchmark("visible_deep_page_postgres")
def visible_deep_page_postgres(bench: Bench) -> list[Figure]:
    return _postgres_page(bench, "visible_deep_page_postgres", deep=True)


SORTED = ("name", "-company", "stage", "-source", "owner", "-updated")


def _sorted_figures(
    names: tuple[str, str], bench: Bench, url: str, raw_rows: Callable[..., Any], p: str
) -> list[Figure]:
    """The slowest admin page in the sorts (first and 90 % in) next to the slowest of the
    same pages' SQL run raw, and the busiest sales user's slowest first page."""
    from sharetui.core.access.listing import encode_cursor, list_order
    from sharetui.domain.roles import EntityType

    postgres = p != "?"
    with product(url) as core:
        db = core.db
        admin = db.execute_sql("SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id LIMIT 1")
        admin_id = admin.fetchone()[0]
        busiest = db.execute_sql(_BUSIEST_SALES.format(true="true" if postgres else "1", n=1)).fetchone()[0]
        total = db.execute_sql("SELECT COUNT(*) FROM leads").fetchone()[0]
        sees = db.execute_sql(
            "SELECT COUNT(*) FROM leads WHERE owner_id IN (SELECT gm2.user_id FROM group_members gm1 "
            "JOIN group_members gm2 ON gm2.group_id = gm1.group_id WHERE gm1.user_id = ? AND gm1.level >= 1) "
            "OR owner_id = ?".replace("?", p),
            (busiest, busiest),
        ).fetchone()[0]
        cols = ", ".join(f"r.{c}" for c in _PAGE_COLUMNS.split(", "))
        n = PAGE + 1

        def page(user: int, sort: str, cursor: str | None) -> Callable[[], Any]:
            return lambda: core.access.visible(user, EntityType.LEAD, after=cursor, limit=PAGE, sort=sort)

        admin_notes, sales_notes = [], []
        worst = worst_base = worst_sales = 0.0
        for sort in SORTED:
            order = list_order(EntityType.LEAD, sort)
            ident = db.execute_sql(
                f"SELECT r.id FROM leads r{order.join} ORDER BY {order.sql} LIMIT 1 OFFSET {int(total * 0.9)}"
            ).fetchone()[0]
            way = " DESC" if order.desc else " ASC"
            # The page's own SQL: the cursor's key, then the rest of that key and the keys after.
            rows_of = f"SELECT {cols}, {order.key} AS sort_key FROM {order.walk('leads')} WHERE"
            same = f"{rows_of} {order.same_key_sql()} ORDER BY r.id{way} LIMIT {n}"
            past = f"{rows_of} {order.past_key_sql()} ORDER BY {order.sql} LIMIT {n}"
            deep_sql = (
                f"SELECT * FROM (SELECT * FROM ({same}) s UNION ALL SELECT * FROM ({past}) q) "
                f"page ORDER BY sort_key{order.collate}{way}, id{way} LIMIT {n}"
            ).replace("?", p)
            first_sql = f"SELECT {cols} FROM {order.walk('leads')} ORDER BY {order.sql} LIMIT {n}"
            lookup = order.lookup_sql("leads").replace("?", p)

            def raw_deep(lookup: str = lookup, sql: str = deep_sql, ident: int = ident) -> Any:
                key = raw_rows(lookup, (ident,))[0][0]
                return raw_rows(sql, (key, ident, key))

            cursor = encode_cursor([ident])
            for cursor_, raw_fn in ((None, lambda sql=first_sql: raw_rows(sql, ())), (cursor, raw_deep)):
                got = [r.id for r in page(admin_id, sort, cursor_)().rows]
                if got != [r[0] for r in raw_fn()][:PAGE]:
                    raise RuntimeError(f"{names[0]}: the product's page in {sort} differs from its raw SQL's")
            times = []
            for product_fn, raw_fn in (
                (page(admin_id, sort, None), lambda sql=first_sql: raw_rows(sql, ())),
                (page(admin_id, sort, cursor), raw_deep),
            ):
                mine, base = paired_runs(product_fn, raw_fn, repeats=bench.repeats)
                times.append(ms(statistics.median(mine)))
                worst_base = max(worst_base, ms(statistics.median(base)))
            worst = max(worst, *times)
            admin_notes.append(f"{sort} {'/'.join(f'{t:.1f}' for t in times)}")
            sales = ms(statistics.median(timed_runs(page(busiest, sort, None), repeats=bench.repeats)))
            worst_sales = max(worst_sales, sales)
            sales_notes.append(f"{sort} {sales:.1f}")
    admin_text = f"admin, ms first/90 % in, per sort: {', '.join(admin_notes)}; baseline: the pages' SQL raw"
    sales_text = (
        f"first page of the sales user who sees the most ({sees:,} leads of owners, plus shares), "
        f"ms per sort: {', '.join(sales_notes)} (each owner's leads sorted: no per-owner index but name's)"
    )
    if postgres:
        return [
            reported(names[0], worst, "ms", worst_base, admin_text + " (psycopg)"),
            reported(names[1], worst_sales, "ms", None, sales_text),
        ]
    return [
        Figure(
            names[0],
            worst,
            "ms",
            f"<= {PAGE_TARGET_MS:g} ms",
            worst <= PAGE_TARGET_MS,
            worst_base,
            admin_text,
        ),
        reported(names[1], worst_sales, "ms", None, sales_text),
    ]


@benchmark("sorted_page")
def sorted_page(bench: Bench) -> list[Figure]:
    con = bench.raw()
    try:
        names = ("sorted_page", "sorted_page_sales")
        return _sorted_figures(names, bench, bench.db_url, lambda q, a: con.execute(q, a).fetchall(), "?")
    finally:
        con.close()


@benchmark("sorted_page_postgres")
def sorted_page_postgres(bench: Bench) -> list[Figure]:
    url = bench.pg_company_url()
    if url is None:
        return []
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:

        def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return con.execute(sql, params, prepare=True).fetchall()

        return _sorted_figures(("sorted_page_postgres", "sorted_page_sales_postgres"), bench, url, rows, "%s")


# -- share API --------------------------------------------------------------------------------
def share_item_sets(
    rows: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]],
    *,
    sets: int,
    size: int,
    true: str,
    p: str,
    seed: int = 11,
) -> list[list[dict[str, Any]]]:
    """``sets`` batches of ``size`` LeadSquared-shaped share items, every (record, user) pair
    fresh (no active grant, not the owner): 4/5 leads, read or edit, durations in minutes,
    the user by username (1 in 10 by numeric id)."""
    rng = random.Random(seed)
    users = rows(f"SELECT id, username FROM users WHERE role = 'sales' AND active = {true} ORDER BY id", ())
    taken = {
        (e, rid, uid)
        for e, rid, uid in rows(
            "SELECT entity_type, entity_id, user_id FROM grants WHERE state = 'active'", ()
        )
    }
    owners = {}
    for entity, table in (("lead", "leads"), ("opportunity", "opportunities")):
        lo, hi = rows(f"SELECT MIN(id), MAX(id) FROM {table}", ())[0]
        owners[entity] = (table, lo, hi)
    out: list[list[dict[str, Any]]] = []
    for _ in range(sets):
        batch: list[dict[str, Any]] = []
        while len(batch) < size:
            entity = "lead" if rng.random() < 0.8 else "opportunity"
            table, lo, hi = owners[entity]
            rid = rng.randint(lo, hi)
            uid, username = rng.choice(users)
            if (entity, rid, uid) in taken:
                continue
            owner = rows(f"SELECT owner_id FROM {table} WHERE id = {p}", (rid,))
            if not owner or owner[0][0] == uid:
                continue
            taken.add((entity, rid, uid))
            batch.append(
                {
                    "UserId": uid if rng.random() < 0.1 else username,
                    "Entity": 1 if entity == "lead" else 5,
                    "EntityId": rid,
                    "AccessType": rng.choice((1, 1, 2)),
                    "DurationInMinutes": rng.choice((60, 1440, 10080, 43200, 129600)),
                }
            )
        out.append(batch)
    return out


def product_share(core: Any, requester: Any, batch: list[dict[str, Any]]) -> None:
    from sharetui.core.sharing.batch import BatchAPI, load_items

    results = BatchAPI(core).share(load_items(json.dumps(batch)), requester=requester)
    failed = [r for r in results if r["status"] != "completed" or r["outcome"] != "granted"]
    if failed:
        raise RuntimeError(f"share_api: {len(failed)} items not granted, e.g. {failed[0]}")


_RAW_REQUEST = (
    "INSERT INTO share_requests (action, status, entity_type, entity_id, recipient_name, recipient_id, "
    "requester_id, context_activity_id, all_contexts, access, duration, until_completed, source, batch_id, "
    "created_at) VALUES ('share', 'processing', ?, ?, ?, ?, ?, NULL, 0, ?, ?, 0, 'api', ?, ?)"
)
_RAW_GRANT = (
    "INSERT INTO grants (entity_type, entity_id, user_id, context_activity_id, context_key, access, "
    "starts_at, expires_at, state, source, request_id, until_completed, created_at, updated_at) "
    "VALUES (?, ?, ?, NULL, 0, ?, ?, ?, 'active', 'api', ?, 0, ?, ?)"
)
_RAW_DONE = (
    "UPDATE share_requests SET status = 'completed', outcome = 'granted', grant_id = ?, finished_at = ? "
    "WHERE id = ?"
)
_RAW_HISTORY = (
    "INSERT INTO history (at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id, "
    "user_name, access, context_activity_id, duration, starts_at, expires_at, source, requester_id, "
    "requester_name, automation_run_id) VALUES (?, ?, 'completed', NULL, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, "
    "'api', ?, ?, NULL)"
)
_RAW_OUTBOX = (
    "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
    "VALUES ('share.granted', ?, ?, ?, ?, 0)"
)


def raw_share(con: sqlite3.Connection, requester: tuple[int, str], batch: list[dict[str, Any]]) -> None:
    """The baseline: the same rows written in the same transactions as the batch API
    (``CHUNK`` items a transaction, a savepoint each), nothing decided."""
    from datetime import timedelta

    items = json.loads(json.dumps(batch))
    now = NOW_DB
    rows = []
    for item in items:
        user = item["UserId"]
        if isinstance(user, int):
            uid, name = con.execute("SELECT id, username FROM users WHERE id = ?", (user,)).fetchone()
        else:
            uid, name = con.execute("SELECT id, username FROM users WHERE username = ?", (user,)).fetchone()
        entity = "lead" if item["Entity"] == 1 else "opportunity"
        minutes = item["DurationInMinutes"]
        expires = (NOW + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((entity, item["EntityId"], name, uid, item["AccessType"], f"{minutes}m", expires))
    from sharetui.core.sharing.batch import CHUNK

    for start in range(0, len(rows), CHUNK):
        con.execute("BEGIN IMMEDIATE")
        for entity, eid, name, uid, access, duration, expires in rows[start : start + CHUNK]:
            con.execute("SAVEPOINT item")
            rid = con.execute(
                _RAW_REQUEST, (entity, eid, name, uid, requester[0], access, duration, "raw", now)
            ).lastrowid
            gid = con.execute(_RAW_GRANT, (entity, eid, uid, access, now, expires, rid, now, now)).lastrowid
            con.execute(_RAW_DONE, (gid, now, rid))
            for event in ("share", "granted"):
                params = (now, event, rid, gid, entity, eid, uid, name, access, duration, now, expires)
                con.execute(_RAW_HISTORY, (*params, *requester))
            payload = json.dumps(
                {
                    "access": "edit" if access == 2 else "read",
                    "context": None,
                    "expires_at": expires.replace(" ", "T") + "Z",
                    "grant_id": gid,
                    "request_id": rid,
                    "source": "api",
                    "user_id": uid,
                },
                sort_keys=True,
            )
            con.execute(_RAW_OUTBOX, (entity, eid, payload, now))
            con.execute("RELEASE item")
        con.execute("COMMIT")


@benchmark("share_api")
def share_api(bench: Bench) -> list[Figure]:
    size = 1_000 if bench.quick else 5_000
    runs = 1 + bench.repeats
    with bench.scratch_copy("share_api") as path:
        con = raw_writer(path)

        def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return con.execute(sql, params).fetchall()

        sets = share_item_sets(rows, sets=2 * runs, size=size, true="1", p="?")
        admin = rows("SELECT id, username FROM users WHERE role = 'admin' AND active = 1 ORDER BY id", ())[0]
        mine, theirs = iter(sets[:runs]), iter(sets[runs:])
        with product(f"sqlite:///{path}") as core:
            requester = core.users.get(admin[0])
            times, base_times = paired_runs(
                lambda: product_share(core, requester, next(mine)),
                lambda: raw_share(con, admin, next(theirs)),
                repeats=bench.repeats,
            )
            value, base = statistics.median(times), statistics.median(base_times)
        con.close()
    notes = f"{size:,} items a run (4/5 leads), all granted; default plugins"
    return [at_least("share_api", size / value, "requests/s", 2000, size / base, notes)]


def raw_share_postgres(con: Any, requester: tuple[int, str], batch: list[dict[str, Any]]) -> None:
    """The PostgreSQL baseline: the same rows as the batch API writes, in the same
    transactions (``PG_CHUNK`` items a transaction, a savepoint each), with plain psycopg
    and one statement per row, the recipient looked up by name; nothing decided."""
    from datetime import timedelta

    from sharetui.core.sharing.batch import PG_CHUNK

    def pg(sql: str) -> str:
        return sql.replace("?", "%s")

    items = json.loads(json.dumps(batch))
    now = NOW.replace(tzinfo=None)
    for start in range(0, len(items), PG_CHUNK):
        with con.transaction():
            for item in items[start : start + PG_CHUNK]:
                with con.transaction():  # a savepoint
                    user = item["UserId"]
                    by = "id" if isinstance(user, int) else "username"
                    uid, name = con.execute(
                        f"SELECT id, username FROM users WHERE {by} = %s", (user,)
                    ).fetchone()
                    entity = "lead" if item["Entity"] == 1 else "opportunity"
                    eid, access, minutes = item["EntityId"], item["AccessType"], item["DurationInMinutes"]
                    expires = now + timedelta(minutes=minutes)
                    rid = con.execute(
                        pg(_RAW_REQUEST).replace("NULL, 0, %s, %s, 0,", "NULL, false, %s, %s, false,")
                        + " RETURNING id",
                        (entity, eid, name, uid, requester[0], access, f"{minutes}m", "raw", now),
                    ).fetchone()[0]
                    gid = con.execute(
                        pg(_RAW_GRANT).replace("%s, 0, %s, %s)", "%s, false, %s, %s)") + " RETURNING id",
                        (entity, eid, uid, access, now, expires, rid, now, now),
                    ).fetchone()[0]
                    con.execute(pg(_RAW_DONE), (gid, now, rid))
                    for event in ("share", "granted"):
                        params = (
                            now,
                            event,
                            rid,
                            gid,
                            entity,
                            eid,
                            uid,
                            name,
                            access,
                            f"{minutes}m",
                            now,
                            expires,
                        )
                        con.execute(pg(_RAW_HISTORY), (*params, *requester))
                    payload = {
                        "access": "edit" if access == 2 else "read",
                        "context": None,
                        "expires_at": expires.isoformat() + "Z",
                        "grant_id": gid,
                        "request_id": rid,
                        "source": "api",
                        "user_id": uid,
                    }
                    con.execute(pg(_RAW_OUTBOX), (entity, eid, json.dumps(payload, sort_keys=True), now))
                    con.execute("NOTIFY sharetui_changes")


@benchmark("share_api_postgres")
def share_api_postgres(bench: Bench) -> list[Figure]:
    """On the cached PostgreSQL company; what the runs added is deleted afterwards."""
    url = bench.pg_company_url()
    if url is None:
        return []
    import psycopg

    size = 200 if bench.quick else 2_000
    repeats = 2 if bench.quick else 3
    runs = 1 + repeats
    with psycopg.connect(url, autocommit=True) as con:

        def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return con.execute(sql, params).fetchall()

        sets = share_item_sets(rows, sets=2 * runs, size=size, true="true", p="%s", seed=13)
        admin = rows("SELECT id, username FROM users WHERE role = 'admin' AND active ORDER BY id", ())[0]
        mark = {
            t: rows(f"SELECT COALESCE(MAX(id), 0) FROM {t}", ())[0][0]
            for t in ("share_requests", "grants", "history", "outbox")
        }
        mine, theirs = iter(sets[:runs]), iter(sets[runs:])
        try:
            with product(url) as core, psycopg.connect(url) as raw:
                requester = core.users.get(admin[0])
                times, base_times = paired_runs(
                    lambda: product_share(core, requester, next(mine)),
                    lambda: raw_share_postgres(raw, admin, next(theirs)),
                    repeats=repeats,
                )
        finally:
            for table in ("history", "outbox", "grants", "share_requests"):
                con.execute(f"DELETE FROM {table} WHERE id > %s", (mark[table],))
    value, base = statistics.median(times), statistics.median(base_times)
    notes = (
        f"{size:,} items a run, {repeats} runs in turn with the baseline (raw psycopg, the same rows in "
        "the same transactions); rows added are deleted afterwards"
    )
    return [at_least("share_api_postgres", size / value, "requests/s", 1500, size / base, notes)]


# -- sweep ------------------------------------------------------------------------------------
def prepare_sweep(con: sqlite3.Connection, due: int, seed: int = 5) -> tuple[int, int]:
    """Make exactly ``due`` active grants due (spread over the last 30 days) and none other;
    mark those expiring within a day as already warned. Returns (history, outbox) high waters."""
    from datetime import timedelta

    rng = random.Random(seed)
    active = [r[0] for r in con.execute("SELECT id FROM grants WHERE state = 'active' ORDER BY id")]
    chosen = sorted(rng.sample(active, due))
    con.execute("BEGIN IMMEDIATE")
    con.execute("CREATE TABLE bench_due (id INTEGER PRIMARY KEY, expires_at TEXT NOT NULL)")
    fmt = "%Y-%m-%d %H:%M:%S"
    con.executemany(
        "INSERT INTO bench_due VALUES (?, ?)",
        [(gid, (NOW - timedelta(seconds=rng.randint(60, 30 * 86400))).strftime(fmt)) for gid in chosen],
    )
    later = (NOW + timedelta(days=30)).strftime(fmt)
    con.execute(
        "UPDATE grants SET expires_at = ? WHERE state = 'active' AND expires_at <= ? "
        "AND id NOT IN (SELECT id FROM bench_due)",
        (later, NOW_DB),
    )
    con.execute(
        "UPDATE grants SET expires_at = (SELECT expires_at FROM bench_due d WHERE d.id = grants.id) "
        "WHERE id IN (SELECT id FROM bench_due)"
    )
    soon = (NOW + timedelta(days=1)).strftime(fmt)
    con.execute(
        "UPDATE grants SET warned_at = ? WHERE state = 'active' AND warned_at IS NULL "
        "AND expires_at > ? AND expires_at <= ?",
        (NOW_DB, NOW_DB, soon),
    )
    con.execute("COMMIT")
    con.execute("ANALYZE")
    return tuple(con.execute(f"SELECT MAX(id) FROM {t}").fetchone()[0] or 0 for t in ("history", "outbox"))


def restore_sweep(con: sqlite3.Connection, marks: tuple[int, int], due: int) -> None:
    """Back to the prepared state: the due grants active again, their rows gone."""
    con.execute("BEGIN IMMEDIATE")
    con.execute(
        "UPDATE grants SET state = 'active', ended_at = NULL, ended_reason = NULL "
        "WHERE id IN (SELECT id FROM bench_due) AND state <> 'active'"
    )
    con.execute("DELETE FROM history WHERE id > ?", (marks[0],))
    con.execute("DELETE FROM outbox WHERE id > ?", (marks[1],))
    con.execute("COMMIT")
    n = con.execute(
        "SELECT COUNT(*) FROM grants WHERE state = 'active' AND expires_at <= ?", (NOW_DB,)
    ).fetchone()[0]
    if n != due:
        raise RuntimeError(f"sweep setup: {n} grants due, wanted {due}")


_RAW_SWEEP_HISTORY = """
INSERT INTO history (at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id,
  user_name, access, context_activity_id, duration, starts_at, expires_at, source, requester_id,
  requester_name, automation_run_id)
SELECT g.expires_at, 'expired', 'completed', 'expired', g.request_id, g.id, g.entity_type, g.entity_id,
  g.user_id, u.username, g.access, g.context_activity_id, NULL, g.starts_at, g.expires_at, g.source, NULL,
  '', NULL
FROM grants g JOIN users u ON u.id = g.user_id WHERE g.state = 'active' AND g.expires_at <= ?
"""
_RAW_SWEEP_OUTBOX = """
INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts)
SELECT 'share.expired', g.entity_type, g.entity_id,
  json_object('grant_id', g.id, 'user_id', g.user_id, 'access',
    CASE g.access WHEN 2 THEN 'edit' ELSE 'read' END, 'context', g.context_activity_id,
    'expires_at', strftime('%Y-%m-%dT%H:%M:%SZ', g.expires_at), 'source', g.source), ?, 0
FROM grants g WHERE g.state = 'active' AND g.expires_at <= ?
"""
_RAW_SWEEP_UPDATE = (
    "UPDATE grants SET state = 'expired', ended_at = expires_at, ended_reason = 'expired', updated_at = ? "
    "WHERE state = 'active' AND expires_at <= ?"
)


def raw_sweep(con: sqlite3.Connection) -> int:
    con.execute("BEGIN IMMEDIATE")
    con.execute(_RAW_SWEEP_HISTORY, (NOW_DB,))
    con.execute(_RAW_SWEEP_OUTBOX, (NOW_DB, NOW_DB))
    n = con.execute(_RAW_SWEEP_UPDATE, (NOW_DB, NOW_DB)).rowcount
    con.execute("COMMIT")
    return n


@benchmark("sweep")
def sweep(bench: Bench) -> list[Figure]:
    due = 2_000 if bench.quick else 100_000
    repeats = min(bench.repeats, 5)
    with bench.scratch_copy("sweep") as path, bench.scratch_copy("sweep-raw") as raw_path:
        con, raw_con = raw_writer(path), raw_writer(raw_path)
        marks, raw_marks = prepare_sweep(con, due), prepare_sweep(raw_con, due)
        counts: list[int] = []
        raw_counts: list[int] = []
        with product(f"sqlite:///{path}") as core:
            times, base_times = paired_runs(
                lambda: counts.append(core.expiry.sweep().expired),
                lambda: raw_counts.append(raw_sweep(raw_con)),
                product_setup=lambda: restore_sweep(con, marks, due),
                baseline_setup=lambda: restore_sweep(raw_con, raw_marks, due),
                repeats=repeats,
            )
            value, base = statistics.median(times), statistics.median(base_times)
            # What embedded mode does next (the first command after a sweep): process the
            # outbox, here the sweep's share.expired events, which no automation reads.
            restore_sweep(con, marks, due)
            core.expiry.sweep()
            start = time.perf_counter()
            drained = core.automations.process_pending_counted()[0]
            after_sweep = time.perf_counter() - start
        con.close()
        raw_con.close()
    if set(counts) != {due} or set(raw_counts) != {due}:
        raise RuntimeError(f"sweep: expired {counts} (raw {raw_counts}), wanted {due} each run")
    notes = f"{due:,} due grants a run, history + outbox rows each; default plugins"
    return [
        at_most_ratio("sweep", value, base, "s", 3, notes),
        reported(
            "sweep_then_outbox",
            after_sweep,
            "s",
            None,
            f"processing the {drained:,} events a sweep leaves (embedded mode's next command)",
        ),
    ]


# -- automation pipeline ------------------------------------------------------------------------
def pipeline_posts(
    rows: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], *, sets: int, size: int, seed: int = 17
) -> list[list[tuple[int, str]]]:
    """(lead, activity owner) pairs, every lead used once, the owner a sales user who does not own it."""
    rng = random.Random(seed)
    users = rows("SELECT id, username FROM users WHERE role = 'sales' AND active = 1 ORDER BY id", ())
    lo, hi = rows("SELECT MIN(id), MAX(id) FROM leads", ())[0]
    leads = rng.sample(range(lo, hi + 1), sets * size)
    owner_of = dict(rows(f"SELECT id, owner_id FROM leads WHERE id IN ({','.join(map(str, leads))})", ()))
    out = []
    for i in range(sets):
        batch = []
        for lead in leads[i * size : (i + 1) * size]:
            uid, name = rng.choice(users)
            while uid == owner_of[lead]:
                uid, name = rng.choice(users)
            batch.append((lead, name))
        out.append(batch)
    return out


_RAW_ACTIVITY = (
    "INSERT INTO activities (type_id, lead_id, opportunity_id, owner_id, note, fields, status, "
    "occurred_at, created_at, updated_at, completed_at, ref) "
    "VALUES (?, ?, NULL, ?, '', '{}', 'open', ?, ?, ?, NULL, NULL)"
)
_RAW_EVENT = (
    "INSERT INTO outbox (topic, entity_type, entity_id, payload, created_at, attempts) "
    "VALUES (?, 'lead', ?, ?, ?, 0)"
)
_RAW_WAITING = (
    "SELECT id, topic, entity_id, payload FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT 100"
)
_RAW_ACTIVITY_OWNER = (
    "SELECT u.id, u.username FROM activities a JOIN users u ON u.id = a.owner_id WHERE a.id = ?"
)
_RAW_RUN = (
    "INSERT INTO automation_runs (automation_id, event_id, trigger_type, entity_type, entity_id, status, "
    "trace, dry_run, started_at, duration_ms) "
    "VALUES (?, ?, 'new_activity_on_lead', 'lead', ?, 'running', '{}', 0, ?, 0)"
)
_RAW_AUTO_REQUEST = (
    "INSERT INTO share_requests (action, status, entity_type, entity_id, recipient_name, recipient_id, "
    "context_activity_id, all_contexts, access, duration, until_completed, source, automation_run_id, "
    "created_at) VALUES ('share', 'processing', 'lead', ?, ?, ?, ?, 0, 2, '14d', 0, 'automation', ?, ?)"
)
_RAW_AUTO_GRANT = (
    "INSERT INTO grants (entity_type, entity_id, user_id, context_activity_id, context_key, access, "
    "starts_at, expires_at, state, source, request_id, until_completed, created_at, updated_at) "
    "VALUES ('lead', ?, ?, ?, ?, 2, ?, ?, 'active', 'automation', ?, 0, ?, ?)"
)
_RAW_AUTO_HISTORY = (
    "INSERT INTO history (at, event, status, reason, request_id, grant_id, entity_type, entity_id, user_id, "
    "user_name, access, context_activity_id, duration, starts_at, expires_at, source, requester_id, "
    "requester_name, automation_run_id) "
    "VALUES (?, ?, 'completed', NULL, ?, ?, 'lead', ?, ?, ?, 2, ?, '14d', ?, ?, 'automation', NULL, '', ?)"
)
_RAW_STEP = (
    "INSERT INTO automation_steps (run_id, step, action, status, outcome) "
    "VALUES (?, 0, 'share_lead', 'succeeded', '{}')"
)
_RAW_RUN_DONE = (
    "UPDATE automation_runs SET status = 'succeeded', trace = '{}', finished_at = ?, duration_ms = 1 "
    "WHERE id = ?"
)
_RAW_EVENT_DONE = "UPDATE outbox SET processed_at = ?, attempts = attempts + 1 WHERE id = ?"


def raw_pipeline(
    con: sqlite3.Connection, batch: list[tuple[int, str]], automation_id: int
) -> tuple[float, float]:
    """The baseline: the rows the pipeline writes, in the same transactions (an activity
    and its event per post; events 100 a transaction, a savepoint each), reading only what
    it must (the owner's id, each waiting event, its activity's owner). Returns the
    (posting, processing) seconds."""
    from datetime import timedelta

    now = NOW_DB
    expires = (NOW + timedelta(days=14)).strftime("%Y-%m-%d %H:%M:%S")
    type_id = con.execute("SELECT id FROM activity_types WHERE name = 'Meeting Scheduled'").fetchone()[0]
    t0 = time.perf_counter()
    for lead, owner in batch:
        con.execute("BEGIN IMMEDIATE")
        uid = con.execute("SELECT id FROM users WHERE username = ?", (owner,)).fetchone()[0]
        aid = con.execute(_RAW_ACTIVITY, (type_id, lead, uid, now, now, now)).lastrowid
        payload = {"activity_id": aid, "actor_id": 1, "owner_id": uid, "type": "Meeting Scheduled"}
        con.execute(_RAW_EVENT, ("activity.created", lead, json.dumps(payload, sort_keys=True), now))
        con.execute("COMMIT")
    t1 = time.perf_counter()
    while True:
        con.execute("BEGIN IMMEDIATE")
        events = con.execute(_RAW_WAITING).fetchall()
        for event_id, topic, lead, payload in events:
            con.execute("SAVEPOINT event")
            if topic == "activity.created":
                aid = json.loads(payload)["activity_id"]
                uid, name = con.execute(_RAW_ACTIVITY_OWNER, (aid,)).fetchone()
                run = con.execute(_RAW_RUN, (automation_id, event_id, lead, now)).lastrowid
                rid = con.execute(_RAW_AUTO_REQUEST, (lead, name, uid, aid, run, now)).lastrowid
                gid = con.execute(
                    _RAW_AUTO_GRANT, (lead, uid, aid, aid, now, expires, rid, now, now)
                ).lastrowid
                con.execute(_RAW_DONE, (gid, now, rid))
                for kind in ("share", "granted"):
                    con.execute(
                        _RAW_AUTO_HISTORY, (now, kind, rid, gid, lead, uid, name, aid, now, expires, run)
                    )
                grant = {
                    "access": "edit",
                    "context": aid,
                    "expires_at": expires.replace(" ", "T") + "Z",
                    "grant_id": gid,
                    "request_id": rid,
                    "source": "automation",
                    "user_id": uid,
                }
                con.execute(_RAW_EVENT, ("share.granted", lead, json.dumps(grant, sort_keys=True), now))
                con.execute(_RAW_STEP, (run,))
                con.execute(_RAW_RUN_DONE, (now, run))
            con.execute(_RAW_EVENT_DONE, (now, event_id))
            con.execute("RELEASE event")
        con.execute("COMMIT")
        if not events:
            return t1 - t0, time.perf_counter() - t1


@benchmark("automation_pipeline")
def automation_pipeline(bench: Bench) -> list[Figure]:
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType

    size = 1_000 if bench.quick else 50_000
    repeats = 2 if bench.quick else 3
    warmup = max(size // 20, 100)
    toml = (ROOT / "sample_data" / "automations" / "01_meeting_share.toml").read_text()
    with bench.scratch_copy("pipeline") as path:
        con = raw_writer(path)
        posts = pipeline_posts(lambda s, p: con.execute(s, p).fetchall(), sets=2 * repeats + 2, size=size)
        sets = iter([posts[0][:warmup], *posts[1 : repeats + 1]])
        raw_sets = iter([posts[repeats + 1][:warmup], *posts[repeats + 2 :]])
        post_times: list[float] = []
        process_times: list[float] = []
        raw_times: list[tuple[float, float]] = []
        with product(f"sqlite:///{path}") as core:
            admin = core.users.acting(None)
            automation = core.automations.add(core.automations.parse(toml), actor=admin)
            drain(core)

            def one_run() -> None:
                batch = next(sets)
                before = count_automation_grants(con)
                t0 = time.perf_counter()
                for lead, owner in batch:
                    core.records.post_activity(
                        RecordRef(EntityType.LEAD, lead), type="Meeting Scheduled", owner=owner, actor=admin
                    )
                t1 = time.perf_counter()
                drain(core)
                t2 = time.perf_counter()
                post_times.append(t1 - t0)
                process_times.append(t2 - t1)
                made = count_automation_grants(con) - before
                if made != len(batch):
                    raise RuntimeError(f"automation_pipeline: {made} shares, wanted {len(batch)}")

            paired_runs(
                one_run,
                lambda: raw_times.append(raw_pipeline(con, next(raw_sets), automation.id)),
                repeats=repeats,
            )
            runs = con.execute(
                "SELECT status, COUNT(*) FROM automation_runs WHERE automation_id = ? GROUP BY status",
                (automation.id,),
            ).fetchall()
            expected = 2 * (warmup + size * repeats)  # the product's runs and the baseline's
            if dict(runs).get("succeeded") != expected:
                raise RuntimeError(f"automation_pipeline: runs {runs}, wanted {expected} succeeded")
        con.close()
    post = statistics.median(post_times[1:])
    process = statistics.median(process_times[1:])
    total = statistics.median(a + b for a, b in zip(post_times[1:], process_times[1:], strict=True))
    raw_post = statistics.median(p for p, _ in raw_times[1:])
    raw_process = statistics.median(q for _, q in raw_times[1:])
    raw_total = statistics.median(p + q for p, q in raw_times[1:])
    notes = (
        f"{size:,} activities a run, posting + processing (each share adds a share.granted event); "
        "baseline: the same rows with raw sqlite3"
    )
    return [
        at_least_ratio("automation_pipeline", size / total, size / raw_total, "events/s", 0.8, notes),
        reported("automation_pipeline_post", size / post, "events/s", size / raw_post, "posting only"),
        at_least(
            "automation_pipeline_process",
            size / process,
            "events/s",
            3000,
            size / raw_process,
            "processing the outbox only (activity events and the share events they cause)",
        ),
    ]


def count_automation_grants(con: sqlite3.Connection) -> int:
    return con.execute("SELECT COUNT(*) FROM grants WHERE source = 'automation'").fetchone()[0]


def drain(core: Any, batch: int = 500) -> int:
    """Process the outbox until it is empty, as the worker does (``batch`` events a call)."""
    total = 0
    while True:
        done, _ = core.automations.process_pending_counted(limit=batch)
        total += done
        if done < batch:
            return total

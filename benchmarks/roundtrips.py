"""Round trips per request and per event: how many SQL statements the product sends to
the store for one ``share_api`` item and for one ``automation_pipeline`` activity
(posting it, then the worker deciding its event and the share event it causes).

python -m benchmarks.roundtrips [--quick] [--cache DIR] [--items N] [--by-statement]
                                [--postgres URL]

Two counts, both untimed, on a scratch copy of the benchmark company:

- **calls**: the statements the product hands the driver (``cursor.execute`` and
  ``cursor.executemany``, each one call, savepoints and commits included). On
  PostgreSQL each is a round trip to the server; on SQLite each is a pass through
  the driver and Peewee.
- **runs** (SQLite only): the statements SQLite itself starts (its trace callback);
  an ``executemany`` of 50 rows is 50 runs and one call.

``--by-statement`` also lists the calls per item by statement kind (verb and table).
``--postgres URL`` counts ``share_api`` on the PostgreSQL copy of the company too
(``share_api_postgres``; the rows it adds are deleted afterwards), where each call is
one round trip to the server; commits are the driver's own and counted apart.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from benchmarks.harness import FULL, QUICK, Bench

_KIND = re.compile(
    r'^\s*(?:(INSERT)\s+INTO\s+"?(\w+)|(UPDATE)\s+"?(\w+)|(DELETE)\s+FROM\s+"?(\w+)'
    r'|(SELECT)\b.*?\bFROM\s+"?(\w+)|(\w+))',
    re.IGNORECASE | re.DOTALL,
)


def kind_of(sql: str) -> str:
    """'INSERT grants', 'SELECT users', 'SAVEPOINT', 'COMMIT', ... of a statement."""
    m = _KIND.match(sql)
    if m is None:
        return "?"
    parts = [g for g in m.groups() if g]
    return " ".join([parts[0].upper(), *parts[1:]])


class _CountingCursor:
    """A driver cursor whose ``execute``/``executemany`` calls are counted."""

    def __init__(self, cursor: Any, counter: StatementCounter) -> None:
        self._cursor = cursor
        self._counter = counter

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._counter.calls[kind_of(sql)] += 1
        return self._cursor.execute(sql, *args, **kwargs)

    def executemany(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._counter.calls[kind_of(sql) + " (many)"] += 1
        return self._cursor.executemany(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class StatementCounter:
    """Counts the statements a Peewee database runs while :meth:`counting`."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.calls: Counter[str] = Counter()
        self.runs = 0

    def _trace(self, sql: str) -> None:
        if not sql.startswith("--"):  # a trigger's statements are reported as comments
            self.runs += 1

    @contextmanager
    def counting(self) -> Iterator[StatementCounter]:
        self.calls.clear()
        self.runs = 0
        original = self.db.cursor
        db = self.db

        def cursor(*args: Any, **kwargs: Any) -> _CountingCursor:
            return _CountingCursor(original(*args, **kwargs), self)

        db.cursor = cursor
        raw = db.connection()
        if isinstance(raw, sqlite3.Connection):
            raw.set_trace_callback(self._trace)
        try:
            yield self
        finally:
            del db.cursor
            if isinstance(raw, sqlite3.Connection):
                raw.set_trace_callback(None)

    def total(self) -> int:
        return sum(self.calls.values())


def _report(name: str, counter: StatementCounter, per: int, by_statement: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "calls": round(counter.total() / per, 2),
        "runs": round(counter.runs / per, 2),
    }
    if by_statement:
        out["by_statement"] = {
            k: round(v / per, 3) for k, v in sorted(counter.calls.items(), key=lambda kv: -kv[1])
        }
    print(f"{name}: {out['calls']} calls, {out['runs']} SQLite runs per item", file=sys.stderr)
    return out


def count_share_api(bench: Bench, items: int, by_statement: bool) -> dict[str, Any]:
    from benchmarks.core_bench import product, product_share, share_item_sets

    with bench.scratch_copy("roundtrips-share") as path:
        con = sqlite3.connect(path)
        sets = share_item_sets(lambda s, p: con.execute(s, p).fetchall(), sets=2, size=items, true="1", p="?")
        admin = con.execute("SELECT id FROM users WHERE role = 'admin' AND active = 1 ORDER BY id").fetchone()
        con.close()
        with product(f"sqlite:///{path}") as core:
            requester = core.users.get(admin[0])
            product_share(core, requester, sets[0])  # warm: settings, plugins, compiled SQL
            counter = StatementCounter(core.db)
            with counter.counting():
                product_share(core, requester, sets[1])
    return {"share_api": _report("share_api (per item)", counter, items, by_statement)}


def count_share_api_postgres(bench: Bench, items: int, by_statement: bool) -> dict[str, Any]:
    from benchmarks.core_bench import product, product_share, share_item_sets

    url = bench.pg_company_url()
    if url is None:
        return {}
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        sets = share_item_sets(
            lambda s, p: con.execute(s, p).fetchall(), sets=2, size=items, true="true", p="%s", seed=17
        )
        mark = {
            t: con.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]
            for t in ("share_requests", "grants", "history", "outbox")
        }
        try:
            with product(url) as core:
                requester = core.users.acting(None)
                product_share(core, requester, sets[0])  # warm
                counter = StatementCounter(core.db)
                commits = _count_commits(core.db)
                with counter.counting():
                    before = commits[0]
                    product_share(core, requester, sets[1])
                    counter.calls["COMMIT (driver)"] += commits[0] - before
        finally:
            for table in ("history", "outbox", "grants", "share_requests"):
                con.execute(f"DELETE FROM {table} WHERE id > %s", (mark[table],))
    return {"share_api_postgres": _report("share_api_postgres (per item)", counter, items, by_statement)}


def _count_commits(db: Any) -> list[int]:
    """A one-element list that counts the driver-level commits of ``db``'s connection."""
    count = [0]
    conn = db.connection()
    original = conn.commit

    def commit() -> None:
        count[0] += 1
        original()

    conn.commit = commit
    return count


def count_pipeline(bench: Bench, items: int, by_statement: bool) -> dict[str, Any]:
    from benchmarks.core_bench import ROOT, pipeline_posts, product, raw_writer

    toml = (ROOT / "sample_data" / "automations" / "01_meeting_share.toml").read_text()
    with bench.scratch_copy("roundtrips-pipeline") as path:
        con = raw_writer(path)
        posts = pipeline_posts(lambda s, p: con.execute(s, p).fetchall(), sets=2, size=items)
        con.close()
        with product(f"sqlite:///{path}") as core:
            return _pipeline_rounds(core, toml, posts, items, by_statement, posts_too=True)


def _pipeline_rounds(
    core: Any,
    toml: str,
    posts: list[Any],
    items: int,
    by_statement: bool,
    *,
    posts_too: bool,
    suffix: str = "",
) -> dict[str, Any]:
    """Publish the automation, then post each round's activities and drain the queue; the
    second round is counted: the processing as ``automation_pipeline_process{suffix}``, the
    posting too as ``automation_pipeline_post`` when ``posts_too``."""
    from benchmarks.core_bench import drain
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType

    admin = core.users.acting(None)
    core.automations.add(core.automations.parse(toml), actor=admin)
    drain(core)
    counter = StatementCounter(core.db)
    out: dict[str, Any] = {}
    for round_, batch in enumerate(posts):
        with counter.counting() if posts_too else nullcontext():
            for lead, owner in batch:
                core.records.post_activity(
                    RecordRef(EntityType.LEAD, lead), type="Meeting Scheduled", owner=owner, actor=admin
                )
        if round_ and posts_too:
            name = "automation_pipeline_post"
            out[name] = _report(f"{name} (per activity)", counter, items, by_statement)
        with counter.counting():
            drain(core)
        if round_:
            name = f"automation_pipeline_process{suffix}"
            out[name] = _report(
                f"{name} (per activity: its event and the share event)", counter, items, by_statement
            )
    return out


def count_pipeline_postgres(bench: Bench, items: int, by_statement: bool) -> dict[str, Any]:
    """``automation_pipeline_process`` on the PostgreSQL copy of the company (as its owner;
    the worker's statements are the same in team mode, where its login writes directly).
    Every row added is deleted afterwards."""
    from benchmarks.core_bench import ROOT, pipeline_posts, product

    url = bench.pg_company_url()
    if url is None:
        return {}
    import psycopg

    toml = (ROOT / "sample_data" / "automations" / "01_meeting_share.toml").read_text()
    with psycopg.connect(url, autocommit=True) as con:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND column_name = 'id' AND data_type IN ('integer', 'bigint')"
            ).fetchall()
        ]
        mark = {t: con.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0] for t in tables}
        posts = pipeline_posts(
            lambda s, p: con.execute(s.replace("active = 1", "active"), p).fetchall(), sets=2, size=items
        )
        try:
            with product(url) as core:
                out = _pipeline_rounds(
                    core, toml, posts, items, by_statement, posts_too=False, suffix="_postgres"
                )
        finally:
            with con.transaction():
                con.execute("SET LOCAL session_replication_role = replica")  # rows go in any order
                for table in tables:
                    con.execute(f"DELETE FROM {table} WHERE id > %s", (mark[table],))
                # A run's steps are keyed by the run.
                con.execute("DELETE FROM automation_steps WHERE run_id > %s", (mark["automation_runs"],))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.roundtrips", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the small company")
    p.add_argument("--cache", type=Path, default=None, help="where generated companies are kept")
    p.add_argument("--items", type=int, default=500, help="share items and activities counted")
    p.add_argument("--by-statement", action="store_true", help="list the calls by statement kind")
    p.add_argument("--postgres", default=None, help="PostgreSQL URL: count share_api_postgres too")
    args = p.parse_args(argv)
    from benchmarks.__main__ import _default_cache

    bench = Bench(
        size=QUICK if args.quick else FULL,
        quick=args.quick,
        cache_dir=(args.cache or _default_cache()).expanduser(),
        pg_url=args.postgres,
    )
    bench.ensure_company()
    out = count_share_api(bench, args.items, args.by_statement)
    out.update(count_pipeline(bench, args.items, args.by_statement))
    if args.postgres:
        out.update(count_share_api_postgres(bench, args.items, args.by_statement))
        out.update(count_pipeline_postgres(bench, args.items, args.by_statement))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

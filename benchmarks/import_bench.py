"""The import benchmarks: loading many leads through the product's bulk import.

- ``import``: ``sharetui.ops.imports.import_leads`` on rows already read (1,000,000 in
  the full run, 50,000 with ``--quick``) into a scratch copy of the benchmark
  company: every row checked, refs looked up, the leads and one ``lead.created``
  outbox event each written in one transaction. "Loading 1,000,000 leads"
  is read as a CRM would meet it: a file of new leads for the company's sales
  users, imported into the live database (its 1,000,000 leads and their
  indexes included), not into an empty table. Baseline: raw ``sqlite3``
  ``executemany`` of the same lead rows (as stored: owner ids, fields as JSON
  text, timestamps) into the same table of an identical copy, on a connection
  set up as the product's is (WAL, ``synchronous=NORMAL``, its cache size), in
  one transaction. The table's triggers fire for each row there as they would
  for any naive insert (the search index's FTS5 trigger is most of that
  baseline's time), and its indexes take a B-tree insert per row. Target: at
  most 2x.
- ``import_vs_raw_bulk``: the same import next to raw ``executemany`` that also
  takes the product's SQLite bulk-load steps (a bigger page cache; the search
  index fed once rather than by its per-row trigger; the lead indexes rebuilt
  once when the import at least doubles the table): the cost of checking every
  row and writing the outbox, with the storage technique the same on both
  sides. Reported.
- ``import_cli``: ``sharetui leads import FILE --json`` end to end in a fresh
  process, from a CSV file of the same rows: start-up, reading and parsing the
  file, the import, and embedded mode's processing of the new events (no
  automation is published in the company, so each event is only marked
  processed). Reported next to the same raw baseline.
- ``import_postgres``: the import on the PostgreSQL company (100,000 leads;
  10,000 with ``--quick``), rolled back, next to a raw psycopg ``COPY`` of the
  same lead rows, also rolled back. Reported.

Each run starts from a fresh copy of the company (copied outside the timing);
product and baseline runs alternate, so a noisy neighbour hits both alike. The
full run does three of each (about half an hour on two busy cores: the naive
baseline alone takes minutes per million rows); ``--quick`` about a minute.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import NOW, NOW_ISO, Bench, Figure, at_most_ratio, benchmark, median_time, reported
from sharetui.ops.imports import import_leads as product_import

FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
TARGET = 2.0
_KEYS = ("ref", "name", "owner", "email", "phone", "company", "stage", "source")
# fmt: off
_FIRST = (
    "Amara", "Lukas", "Mei", "Priya", "Jonas", "Sofia", "Ahmed", "Chloe", "Mateo", "Hannah", "Kofi",
    "Aoife", "Ravi", "Elena", "Tomasz", "Ines", "Yusuf", "Freya", "Dmitri", "Leila", "Oscar", "Nadia",
    "Kenji", "Marta", "Wei", "Zara", "Pedro", "Ingrid", "Samir", "Lucia",
)
_LAST = (
    "Okonkwo", "Becker", "Tan", "Sharma", "Weber", "Rossi", "Khan", "Martin", "Garcia", "Murphy",
    "Mensah", "Byrne", "Patel", "Novak", "Kowalski", "Silva", "Demir", "Larsen", "Ivanov", "Haddad",
    "Berg", "Costa", "Moreau", "Fischer", "Nguyen", "Rahman", "Duarte", "Lindqvist", "Sato", "Walsh",
)
# fmt: on
_COMPANIES = (
    "",
    "",
    "",
    "Brightwater Dental",
    "Northgate Engineering",
    "Harbour Bakery",
    "Kestrel Logistics",
    "Greenfield Farms",
    "Atlas Joinery",
    "Riverside Vets",
    "Summit Accountants",
    "Oakline Builders",
)
_STAGES = ("new", "new", "new", "contacted", "qualified", "unqualified")
_SOURCES = ("website", "referral", "branch", "campaign", "partner", "event")
_CITIES = ("Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff", "Belfast", "Norwich", "York")
_PRODUCTS = (("Home Loan", 80_000, 900_000), ("Personal Loan", 2_000, 40_000), ("Car Loan", 5_000, 60_000))


def lead_rows(owners: list[str], n: int, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` new leads as an import file would hold them, owned by ``owners``."""
    rng = random.Random(f"import:{seed}")
    r = rng.random
    rows = []
    for i in range(n):
        first, last = _FIRST[int(r() * len(_FIRST))], _LAST[int(r() * len(_LAST))]
        company = _COMPANIES[int(r() * len(_COMPANIES))]
        product, low, high = _PRODUCTS[int(r() * len(_PRODUCTS))]
        rows.append(
            {
                "ref": f"IMP-{seed}-{i:07d}",
                "name": f"{first} {last}",
                "owner": owners[int(r() * len(owners))],
                "email": f"{first.lower()}.{last.lower()}{i}@mailbox.test",
                "phone": f"+44 7700 900{int(r() * 1000):03d}",
                "company": company,
                "stage": _STAGES[int(r() * len(_STAGES))],
                "source": _SOURCES[int(r() * len(_SOURCES))],
                "fields": {
                    "city": _CITIES[int(r() * len(_CITIES))],
                    "product_interest": product,
                    "requested_amount": low + 500 * int(r() * ((high - low) // 500)),
                },
            }
        )
    return rows


def stored_rows(rows: list[dict[str, Any]], owner_ids: dict[str, int], at: Any) -> list[tuple[Any, ...]]:
    """The same leads as the table stores them: the baseline's input."""
    encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
    return [
        (
            row["ref"],
            row["name"],
            row["email"],
            row["phone"],
            row["company"],
            row["stage"],
            row["source"],
            owner_ids[row["owner"]],
            encode(row["fields"]),
            at,
            at,
        )
        for row in rows
    ]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = sorted(rows[0]["fields"]) if rows else []
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow([*_KEYS, *(f"fields.{k}" for k in fields)])
        for row in rows:
            out.writerow([*(row[k] for k in _KEYS), *(row["fields"][k] for k in fields)])


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def _product_connection_pragmas(con: sqlite3.Connection) -> None:
    """Set a raw connection up as the product's (sharetui.db.connection.SQLITE_PRAGMAS)."""
    from sharetui.db.connection import SQLITE_PRAGMAS

    for key, value in SQLITE_PRAGMAS.items():
        con.execute(f"PRAGMA {key}={value}")


_INSERT = (
    "INSERT INTO leads (ref, name, email, phone, company, stage, source, owner_id, fields, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _product(path: Path, rows: list[dict[str, Any]], n: int) -> float:
    """The product: rows already read, through the core API."""
    from sharetui.clock import FrozenClock
    from sharetui.runtime import open_core

    core = open_core(f"sqlite:///{path}", FrozenClock(NOW))
    admin = core.users.acting(None)
    report: Any = None

    def run() -> None:
        nonlocal report
        report = product_import(core, rows, actor=admin)

    elapsed = _timed(run)
    events = core.db.execute_sql(
        "SELECT COUNT(*) FROM outbox WHERE topic = 'lead.created' AND entity_id >= ?", (report.first_id,)
    ).fetchone()[0]
    core.close()
    if report.created != n or events != n:
        raise AssertionError(f"import wrote {report.created} leads and {events} events, not {n}")
    return elapsed


def _raw(bench: Bench, path: Path, rows: list[tuple[Any, ...]], expected: int, *, bulk: bool) -> float:
    """Raw ``executemany`` of the stored rows in one transaction; with ``bulk``, the same
    bulk-load steps the product takes on SQLite (a bigger cache; the search index fed
    once instead of by its per-row trigger; the other indexes rebuilt once when the
    table at least doubles)."""
    from sharetui.ops.generator.bulk import BULK_INDEX_ROWS
    from sharetui.ops.imports import _SEARCH_BULK_ROWS, _SQLITE_CACHE_KIB

    con = bench.raw(path)
    _product_connection_pragmas(con)

    def run() -> None:
        con.execute("BEGIN IMMEDIATE")
        indexes: list[str] = []
        triggers: list[str] = []
        top = con.execute("SELECT COALESCE(MAX(id), 0) FROM leads").fetchone()[0]
        if bulk:
            con.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
            if len(rows) >= _SEARCH_BULK_ROWS:
                for name, sql in con.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND name LIKE 'leads_search_%'"
                ).fetchall():
                    con.execute(f'DROP TRIGGER "{name}"')
                    triggers.append(sql)
            existing = con.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
            if len(rows) >= BULK_INDEX_ROWS and existing <= len(rows):
                for name, sql in con.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' "
                    "AND sql IS NOT NULL"
                ).fetchall():
                    con.execute(f'DROP INDEX "{name}"')
                    indexes.append(sql)
        con.executemany(_INSERT, rows)
        for sql in indexes + triggers:
            con.execute(sql)
        if triggers:
            con.execute("INSERT INTO leads_search(leads_search, rank) VALUES ('hashsize', 8388608)")
            con.execute(
                "INSERT INTO leads_search(rowid, name, company, email) "
                "SELECT id, name, company, email FROM leads WHERE id > ?",
                (top,),
            )
            con.execute("INSERT INTO leads_search(leads_search, rank) VALUES ('hashsize', 1048576)")
        con.execute("COMMIT")

    elapsed = _timed(run)
    got = con.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
    con.close()
    if got != expected:
        raise AssertionError(f"the raw baseline left {got} leads, not {expected}")
    return elapsed


def _cli(bench: Bench, path: Path, csv_path: Path, n: int) -> float:
    """``sharetui leads import FILE --json`` in a fresh process."""
    command = ["leads", "import", str(csv_path), "--json"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sharetui", "--db", f"sqlite:///{path}", *command],
        env=bench.env(SHARETUI_NOW=NOW_ISO),
        cwd=bench.cache_dir,  # so ./plugins of a checkout is not picked up
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise AssertionError(f"leads import failed ({done.returncode}): {done.stderr.strip()}")
    out = json.loads(done.stdout)
    if out["created"] != n or out["automation_runs"]:
        raise AssertionError(f"leads import said {out}")
    return elapsed


@benchmark("import")
def import_leads(bench: Bench) -> list[Figure]:
    n = QUICK_ROWS if bench.quick else FULL_ROWS
    # A full run adds a million rows per run: fewer repeats. No warm-up run: each run starts
    # from a fresh copy, which the copying has just brought into the page cache.
    repeats = bench.repeats if bench.quick else min(bench.repeats, 3)
    warmup = 0
    con = sqlite3.connect(bench.ensure_company())
    owners = {
        str(name): int(uid)
        for uid, name in con.execute(
            "SELECT id, username FROM users WHERE role = 'sales' AND active ORDER BY id"
        ).fetchall()
    }
    before = con.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
    con.close()
    rows = lead_rows(list(owners), n)
    stored = stored_rows(rows, owners, NOW.strftime("%Y-%m-%d %H:%M:%S"))
    csv_path = bench.cache_dir / f"import-{n}-{os.getpid()}.csv"
    write_csv(csv_path, rows)
    times: dict[str, list[float]] = {"import": [], "raw": [], "raw_bulk": [], "cli": []}
    try:
        for run in range(warmup + repeats):
            got: dict[str, float] = {}
            # Alternating, each on a fresh copy: a noisy neighbour hits all of them alike.
            with bench.scratch_copy("import") as path:
                got["import"] = _product(path, rows, n)
            with bench.scratch_copy("import-raw") as path:
                got["raw"] = _raw(bench, path, stored, before + n, bulk=False)
            with bench.scratch_copy("import-raw-bulk") as path:
                got["raw_bulk"] = _raw(bench, path, stored, before + n, bulk=True)
            with bench.scratch_copy("import-cli") as path:
                got["cli"] = _cli(bench, path, csv_path, n)
            bench.log(f"    run {run + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in got.items()))
            if run >= warmup:
                for key, value in got.items():
                    times[key].append(value)
    finally:
        csv_path.unlink(missing_ok=True)

    value, raw, bulk, cli = (statistics.median(times[k]) for k in ("import", "raw", "raw_bulk", "cli"))
    where = f"{n:,} leads into a copy of the {before:,}-lead company, median of {repeats}"
    return [
        at_most_ratio("import", value, raw, "s", TARGET, notes=f"{where}; {n / value:,.0f} leads/s"),
        reported(
            "import_vs_raw_bulk",
            value,
            "s",
            baseline=bulk,
            notes="the same import against raw executemany that takes the product's SQLite bulk-load "
            "steps too (128 MB cache; search index fed once; other indexes rebuilt once when the "
            "table at least doubles): what checking every row and writing the outbox cost",
        ),
        reported(
            "import_cli",
            cli,
            "s",
            baseline=raw,
            notes=f"`sharetui leads import FILE.csv --json` in a fresh process from a CSV file, {where}",
        ),
    ]


PG_FULL_ROWS = 100_000
PG_QUICK_ROWS = 10_000


@benchmark("import_postgres")
def import_postgres(bench: Bench) -> list[Figure]:
    """The import on the PostgreSQL company: ``COPY`` of the leads and their events.
    Each run rolls back at the end (the company is shared, not copied), and so does the
    baseline, a raw psycopg ``COPY`` of the same lead rows: both leave out the commit."""
    url = bench.pg_company_url()
    if url is None:
        return []
    import psycopg

    from sharetui.clock import FrozenClock
    from sharetui.runtime import open_core

    n = PG_QUICK_ROWS if bench.quick else PG_FULL_ROWS
    repeats = bench.repeats if bench.quick else min(bench.repeats, 3)
    core = open_core(url, FrozenClock(NOW))
    owners = {
        str(name): int(uid)
        for uid, name in core.db.execute_sql(
            "SELECT id, username FROM users WHERE role = 'sales' AND active ORDER BY id"
        ).fetchall()
    }
    rows = lead_rows(list(owners), n, seed=12)
    stored = stored_rows(rows, owners, NOW.replace(tzinfo=None))
    admin = core.users.acting(None)
    columns = "ref, name, email, phone, company, stage, source, owner_id, fields, created_at, updated_at"

    def product() -> None:
        with core.db.atomic() as txn:
            report = product_import(core, rows, actor=admin)
            if report.created != n:
                raise AssertionError(f"import wrote {report.created} leads, not {n}")
            txn.rollback()

    with psycopg.connect(url) as con:

        def baseline() -> None:
            with con.cursor() as cur, cur.copy(f"COPY leads ({columns}) FROM STDIN") as copy:
                for row in stored:
                    copy.write_row(row)
            con.rollback()

        value = median_time(product, repeats=repeats)
        base = median_time(baseline, repeats=repeats)
    core.close()
    return [
        reported(
            "import_postgres",
            value,
            "s",
            baseline=base,
            notes=f"{n:,} leads, rolled back; baseline raw psycopg COPY of the same lead rows",
        )
    ]

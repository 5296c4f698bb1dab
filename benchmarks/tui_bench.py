"""The terminal UI on the big company, timed as its user waits for it.

Each figure comes from a fresh process (:mod:`benchmarks.tui_runner`) that runs
``sharetui --db URL tui`` headless at 120x40 and notes when the expected rows
are painted:

- ``tui_start``: from spawning the process to the first page of leads on
  screen (interpreter, imports, plugins, opening the database, the first
  query, painting). Baseline: the same for a bare Textual app that fills the
  same table from raw ``sqlite3`` (the floor of any Textual app here).
- ``tui_page``: from the PageDown key to the next page's rows on screen, median
  of many presses. Baseline: the bare app paging with a raw keyset query.
- ``tui_filter`` / ``tui_filter_common``: from the last keystroke of a rare /
  a common term typed in the filter to its rows on screen; the filter's
  debounce is included. Baseline: the raw ``sqlite3`` scan a list without a
  text index runs for the same first page.
- ``tui_memory``: peak resident memory (VmHWM) of the TUI process after the
  start, the paging and the filters. Baseline: the bare app after its paging.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure, at_most, benchmark, median_time

ROOT = Path(__file__).resolve().parents[1]
# In the seed-7 company: three leads (one in the quick company) are called Willi Szpyra,
# and about one lead in six has "son" in its name, company or email.
RARE, COMMON = "willi.szpyra", "son"
_SESSIONS: dict[tuple[int, str], dict[str, Any]] = {}


def _run(bench: Bench, *args: str) -> dict[str, Any]:
    """One runner process; returns what it reports."""
    command = [sys.executable, "-m", "benchmarks.tui_runner", "--db", bench.db_url, *args]
    env = bench.env(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # An installed sharetui starts from compiled bytecode: keep it (outside the
        # checkout) even where the environment says not to write any.
        PYTHONPYCACHEPREFIX=str(bench.cache_dir / "pycache"),
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    spawned = time.time()
    done = subprocess.run(
        [*command, "--spawned-at", repr(spawned)],
        capture_output=True,
        text=True,
        env=env,
        cwd=bench.cache_dir,  # so ./plugins of a checkout is not picked up
        timeout=600,
    )
    for line in done.stdout.splitlines():
        if line.startswith("TUI_BENCH "):
            return json.loads(line.removeprefix("TUI_BENCH "))
    error = done.stderr.strip()[-2000:]
    raise RuntimeError(f"tui_runner {' '.join(args)} failed ({done.returncode}): {error}")


def _session(bench: Bench, target: str) -> dict[str, Any]:
    """Start, page and filter in one process (shared by the figures that read it)."""
    key = (id(bench), target)
    if key not in _SESSIONS:
        args = ["--target", target, "--mode", "session", "--pages", "12" if bench.quick else "50"]
        if target == "sharetui":
            args += ["--term", RARE, "--term", COMMON, "--filter-repeats", str(bench.repeats)]
        _SESSIONS[key] = _run(bench, *args)
    return _SESSIONS[key]


def _ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


@benchmark("tui_start")
def tui_start(bench: Bench) -> list[Figure]:
    bench.ensure_company()
    _run(bench, "--mode", "start")  # warm up: bytecode written, the file in the page cache
    ours = [_run(bench, "--mode", "start") for _ in range(bench.repeats)]
    floor = [_run(bench, "--target", "null", "--mode", "start") for _ in range(bench.repeats)]
    value = statistics.median(r["start_seconds"] for r in ours)
    cpu = statistics.median(r["start_cpu_seconds"] for r in ours)
    figure = at_most("tui_start", value, "s", 1.5, notes=f"median CPU {cpu:.2f} s (all threads)")
    figure.baseline = statistics.median(r["start_seconds"] for r in floor)
    return [figure]


@benchmark("tui_page")
def tui_page(bench: Bench) -> list[Figure]:
    bench.ensure_company()
    ours, floor = _session(bench, "sharetui"), _session(bench, "null")
    figure = at_most(
        "tui_page",
        _ms(ours["page_seconds"]),
        "ms",
        50,
        notes=f"{len(ours['page_seconds'])} presses; median CPU {_ms(ours['page_cpu_seconds']):.0f} ms",
    )
    figure.baseline = _ms(floor["page_seconds"])
    return [figure]


@benchmark("tui_filter")
def tui_filter(bench: Bench) -> list[Figure]:
    path = bench.ensure_company()
    ours = _session(bench, "sharetui")
    figures = []
    for name, term in (("tui_filter", RARE), ("tui_filter_common", COMMON)):
        scan, indexed = _raw_first_page(bench, path, term)
        figure = at_most(
            name,
            _ms(ours["filter_seconds"][term]),
            "ms",
            200,
            notes=(
                f"{term!r}: {ours['filter_matches'][term]} rows on the first page; debounce included; "
                f"median CPU {_ms(ours['filter_cpu_seconds'][term]):.0f} ms; "
                f"raw query through the text index {indexed * 1000:.1f} ms"
            ),
        )
        figure.baseline = scan * 1000
        figures.append(figure)
    return figures


@benchmark("tui_memory")
def tui_memory(bench: Bench) -> list[Figure]:
    bench.ensure_company()
    ours, floor = _session(bench, "sharetui"), _session(bench, "null")
    figure = at_most(
        "tui_memory",
        ours["memory_mb"]["VmHWM"],
        "MB",
        150,
        notes=f"peak RSS after start, paging and filters; now {ours['memory_mb']['VmRSS']:.0f} MB",
    )
    figure.baseline = floor["memory_mb"]["VmHWM"]
    return [figure]


def _raw_first_page(bench: Bench, path: Path, term: str) -> tuple[float, float]:
    """Raw sqlite3: the first page of leads containing ``term`` by a scan, and through the index."""
    con = bench.raw(path)
    like = f"%{term}%"
    scan_sql = (
        "SELECT id, name, company, email FROM leads WHERE LOWER(name) LIKE ? OR LOWER(company) LIKE ? "
        "OR LOWER(email) LIKE ? ORDER BY id LIMIT 101"
    )
    pieces = " AND ".join(f'"{term[i : i + 3]}"' for i in range(len(term) - 2))
    index_sql = (
        "SELECT r.id, r.name, r.company, r.email FROM leads_search f CROSS JOIN leads r ON r.id = f.rowid "
        "WHERE f.leads_search MATCH ? AND (LOWER(r.name) LIKE ? OR LOWER(r.company) LIKE ? "
        "OR LOWER(r.email) LIKE ?) ORDER BY f.rowid LIMIT 101"
    )
    try:
        scan = median_time(
            lambda: con.execute(scan_sql, (like, like, like)).fetchall(), repeats=bench.repeats
        )
        indexed = median_time(
            lambda: con.execute(index_sql, (pieces, like, like, like)).fetchall(), repeats=bench.repeats
        )
    finally:
        con.close()
    return scan, indexed

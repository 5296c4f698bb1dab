"""What every benchmark shares: the company it runs on, timing, and results.

A benchmark is a function ``fn(bench: Bench) -> list[Figure]`` registered with
:func:`benchmark`. It reads the cached company through ``bench`` (never
changes it: destructive work runs on :meth:`Bench.scratch_copy`), times the
product and, in the same run, the raw baseline, and returns its figures.
"""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The frozen "now" of every benchmark company: generation and measurement agree on it.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW_ISO = "2026-03-02T09:00:00Z"


@dataclass(frozen=True)
class Size:
    leads: int
    opportunities: int
    users: int
    grants: int
    seed: int = 7

    @property
    def key(self) -> str:
        return f"{self.leads}l-{self.opportunities}o-{self.users}u-{self.grants}g-s{self.seed}"


FULL = Size(leads=1_000_000, opportunities=100_000, users=10_000, grants=200_000)
QUICK = Size(leads=20_000, opportunities=2_000, users=200, grants=4_000)


@dataclass
class Figure:
    """One line of the results: a value, its same-run baseline and the target."""

    name: str
    value: float
    unit: str
    target: str
    met: bool
    baseline: float | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "value": round(self.value, 6),
            "unit": self.unit,
            "baseline": None if self.baseline is None else round(self.baseline, 6),
            "ratio": None if ratio is None else round(ratio, 3),
            "target": self.target,
            "met": self.met,
            **({"notes": self.notes} if self.notes else {}),
        }


def at_most_ratio(
    name: str, value: float, baseline: float, unit: str, limit: float, notes: str = ""
) -> Figure:
    """A figure whose target is ``value <= limit x baseline`` (lower is better)."""
    return Figure(name, value, unit, f"<= {limit:g}x baseline", value <= limit * baseline, baseline, notes)


def at_most(name: str, value: float, unit: str, limit: float, notes: str = "") -> Figure:
    return Figure(name, value, unit, f"<= {limit:g} {unit}", value <= limit, None, notes)


def at_least(
    name: str, value: float, unit: str, limit: float, baseline: float | None = None, notes: str = ""
) -> Figure:
    return Figure(name, value, unit, f">= {limit:g} {unit}", value >= limit, baseline, notes)


def at_least_ratio(
    name: str, value: float, baseline: float, unit: str, limit: float, notes: str = ""
) -> Figure:
    """A figure whose target is ``value >= limit x baseline`` (higher is better)."""
    return Figure(name, value, unit, f">= {limit:g}x baseline", value >= limit * baseline, baseline, notes)


def reported(name: str, value: float, unit: str, baseline: float | None = None, notes: str = "") -> Figure:
    return Figure(name, value, unit, "reported", True, baseline, notes)


def median_time(fn: Callable[[], Any], *, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, garbage collection paused while timing."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return statistics.median(times)


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


@dataclass
class Bench:
    """The run's settings and the cached company every benchmark reads."""

    size: Size
    quick: bool
    cache_dir: Path
    pg_url: str | None = None
    repeats: int = 5
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    _pg_ready: str | None = None

    # -- the company --------------------------------------------------------

    @property
    def db_path(self) -> Path:
        # The schema version is in the name: a cached company never predates a migration.
        from sharetui.db.migrations import latest_version

        return self.cache_dir / f"company-{self.size.key}-v{latest_version()}.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def ensure_company(self) -> Path:
        """Make the company with ``sharetui generate`` unless it is cached."""
        path = self.db_path
        if path.exists():
            return path
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.db")
        for stale in partial.parent.glob(partial.name + "*"):
            stale.unlink()
        self.log(f"generating the {self.size.key} company (cached in {self.cache_dir}) …")
        started = time.perf_counter()
        self.generate(f"sqlite:///{partial}")
        con = sqlite3.connect(partial)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
        con.close()
        partial.rename(path)
        self.log(f"generated in {time.perf_counter() - started:.1f} s")
        return path

    def generate(self, url: str) -> None:
        s = self.size
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sharetui",
                "--db",
                url,
                "generate",
                "--leads",
                str(s.leads),
                "--opportunities",
                str(s.opportunities),
                "--users",
                str(s.users),
                "--grants",
                str(s.grants),
                "--seed",
                str(s.seed),
                "--json",
            ],
            check=True,
            env=self.env(),
            cwd=self.cache_dir,  # so ./plugins of a checkout is not picked up
            stdout=subprocess.DEVNULL,
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARETUI_")}
        env.update(SHARETUI_NOW=NOW_ISO, SHARETUI_TZ="UTC")
        env.update(extra)
        return env

    @contextmanager
    def scratch_copy(self, name: str) -> Iterator[Path]:
        """A throwaway copy of the company for work that changes it."""
        src = self.ensure_company()
        dst = self.cache_dir / f"scratch-{name}-{os.getpid()}.db"
        shutil.copyfile(src, dst)
        try:
            yield dst
        finally:
            for p in dst.parent.glob(dst.name + "*"):
                p.unlink()

    def raw(self, path: Path | None = None) -> sqlite3.Connection:
        """A plain ``sqlite3`` connection for baselines, set up as the product's is (WAL aside)."""
        con = sqlite3.connect(path or self.db_path, isolation_level=None)
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=5000")
        return con

    # -- PostgreSQL ---------------------------------------------------------

    def pg_company_url(self) -> str | None:
        """The same company in its own PostgreSQL schema (cached), or None when unavailable."""
        if not self.pg_url:
            return None
        if self._pg_ready:
            return self._pg_ready
        from urllib.parse import quote

        import psycopg

        from sharetui.db.migrations import latest_version

        schema = f"bench_{self.size.key.replace('-', '_')}_v{latest_version()}"
        plain = self.pg_url.split("?", 1)[0]
        url = f"{plain}?options={quote(f'-csearch_path={schema}')}"
        try:
            with psycopg.connect(plain, autocommit=True, connect_timeout=3) as con:
                exists = con.execute(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                    (schema, "bench_complete"),
                ).fetchone()
                if not exists:
                    self.log(f"generating the {self.size.key} company on PostgreSQL (schema {schema}) …")
                    con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    con.execute(f'CREATE SCHEMA "{schema}"')
                    self.generate(url)
                    con.execute(f'CREATE TABLE "{schema}".bench_complete (at timestamp)')
                    # As autovacuum leaves a live database: statistics, and the visibility
                    # map set, so index-only scans need not visit the table.
                    con.execute(f'SET search_path = "{schema}"')
                    con.execute("VACUUM ANALYZE")
        except Exception as exc:  # noqa: BLE001 - report and go on without PostgreSQL
            self.log(f"PostgreSQL unavailable, skipping *_postgres: {exc}")
            self.pg_url = None
            return None
        self._pg_ready = url
        return url


Benchmark = Callable[[Bench], list[Figure]]
REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str) -> Callable[[Benchmark], Benchmark]:
    """Register a benchmark under ``name`` (what ``--only`` selects)."""

    def register(fn: Benchmark) -> Benchmark:
        REGISTRY[name] = fn
        return fn

    return register

"""``python -m benchmarks``: run the benchmarks and print their figures.

python -m benchmarks            the full set on the 1,000,000-lead company
python -m benchmarks --quick    the same code on a small company (CI)
python -m benchmarks --json     one JSON object, name -> figure
python -m benchmarks --only check --only sweep
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.harness import FULL, QUICK, REGISTRY, Bench, Figure

# Importing the modules registers their benchmarks, in this order.
MODULES = (
    "benchmarks.core_bench",
    "benchmarks.plugin_bench",
    "benchmarks.import_bench",
    "benchmarks.tui_bench",
    "benchmarks.tui_power_bench",
    "benchmarks.team_bench",
    "benchmarks.worker_bench",
    "benchmarks.http_bench",
)


def _default_cache() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("SHARETUI_BENCH_CACHE") or user_cache_dir("sharetui-bench"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="a small company, fewer repeats (under two minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    p.add_argument("--repeats", type=int, help="timed runs per figure (median is reported)")
    p.add_argument("--cache", type=Path, default=None, help="where generated companies are kept")
    p.add_argument(
        "--postgres",
        default=os.environ.get("SHARETUI_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL URL for the *_postgres figures ('' to skip)",
    )
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import importlib

    args = _parse(argv)
    for module in MODULES:
        importlib.import_module(module)
    if args.list:
        for name in REGISTRY:
            print(name)
        return 0
    unknown = sorted(set(args.only or ()) - set(REGISTRY))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    if args.repeats is not None and args.repeats < 1:
        print("--repeats must be at least 1", file=sys.stderr)
        return 2
    bench = Bench(
        size=QUICK if args.quick else FULL,
        quick=args.quick,
        cache_dir=(args.cache or _default_cache()).expanduser(),
        pg_url=args.postgres or None,
        repeats=args.repeats or (3 if args.quick else 7),
    )
    bench.ensure_company()
    figures: list[Figure] = []
    failed: dict[str, str] = {}
    for name, fn in REGISTRY.items():
        if args.only and name not in args.only:
            continue
        bench.log(f"running {name} …")
        started = time.perf_counter()
        try:
            got = fn(bench)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            import traceback

            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        figures.extend(got)
        bench.log(f"  {name}: {time.perf_counter() - started:.1f} s")
    if args.json:
        out = {f.name: f.as_dict() for f in figures}
        for name, error in failed.items():
            out[name] = {
                "value": None,
                "unit": "",
                "baseline": None,
                "ratio": None,
                "target": "",
                "met": False,
                "error": error,
            }
        print(json.dumps(out, indent=2))
    else:
        _table(figures, failed, bench)
    return 1 if failed else 0


def _table(figures: list[Figure], failed: dict[str, str], bench: Bench) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"sharetui benchmarks — {bench.size.key} — {platform.node()} ({os.cpu_count()} CPUs)")
    for col in ("name", "value", "baseline", "ratio", "target", "met"):
        t.add_column(col, justify="right" if col in ("value", "baseline", "ratio") else "left")
    for f in figures:
        ratio = f.ratio
        t.add_row(
            f.name,
            f"{_fmt(f.value)} {f.unit}",
            "" if f.baseline is None else f"{_fmt(f.baseline)} {f.unit}",
            "" if ratio is None else f"{ratio:.2f}x",
            f.target,
            "[green]yes[/]" if f.met else "[red]NO[/]",
        )
    for name, error in failed.items():
        t.add_row(name, "", "", "", "", f"[red]error: {error}[/]")
    Console().print(t)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}"


if __name__ == "__main__":
    raise SystemExit(main())

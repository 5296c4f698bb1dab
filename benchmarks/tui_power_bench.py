"""The power user's screens (issue 16), timed in process with Textual's Pilot on
a scratch copy of the company:

- ``tui_history_page``: the History ledger on a history of 1,000,000 rows
  (100,000 in ``--quick``): from asking for the next page (PgDn past the last
  row) to the paint that shows its rows, median of several pages. Turning a
  page leaves the filter, and so the per-day chart, as it was: the chart is
  counted when the filter changes or the history may have, in a worker of its
  own, and ``tui_history_chart`` reports that count (the last 30 days of the
  1,000,000 rows). Baseline: the raw ``sqlite3`` keyset query for the same page.
- ``tui_timeline``: a record with 500 shares: from reading its timeline and
  building its rows (as the record screen does, in a worker) to the paint that
  shows it, median of several draws; ``tui_timeline_record_open`` reports the record screen's own
  load (the record, its shares, the timeline and the ledger's first page).
- ``tui_live_update`` / ``tui_live_update_postgres``: a change committed by
  another connection (as another process would) until the watching app's list
  shows it. PostgreSQL runs on a small throwaway schema when a URL is given.

"Painted" is taken as ``tui_runner`` takes it: when a compositor update that
shows the expected rows is turned into terminal output (``ScreenProbe``). No
Pilot pause is timed: ``Pilot.pause()`` sleeps at least 20 ms waiting for the
process to go idle, which no user waits for.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from benchmarks.harness import NOW, Bench, Figure, at_most, benchmark, reported
from benchmarks.tui_runner import ScreenProbe, _has_row0

SIZE = (120, 40)


def _pad_history(con: sqlite3.Connection, total: int) -> int:
    """Copy existing history rows (shifted back in time) until there are ``total``."""
    have = con.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    cols = [r[1] for r in con.execute("PRAGMA table_info(history)") if r[1] != "id"]
    names = ", ".join(cols)
    picked = ", ".join("datetime(at, '-' || (n % 400) || ' days')" if c == "at" else c for c in cols)
    while have < total:
        chunk = min(have, total - have)
        con.execute(
            f"INSERT INTO history ({names}) SELECT {picked} FROM "
            f"(SELECT *, ROW_NUMBER() OVER () AS n FROM history LIMIT ?)",
            (chunk,),
        )
        have += chunk
    con.execute("ANALYZE")
    return have


def _all_rows(table: Any, count: int) -> bool:
    """``table`` holds ``count`` rows and has measured them (none waits for its idle pass)."""
    return bool(table.row_count == count and not table._new_rows and not table._require_update_dimensions)


def _loaded(app: Any) -> bool:
    return not any(w.group == "records" and w.is_running for w in app.workers)


def _more_than(app: Any, seen: int) -> bool:
    return bool(app.changes_seen > seen)


def _turned(ledger: Any, pages: int, first: int) -> bool:
    return len(ledger.pages) > pages and ledger.rows[0].id != first


async def _until(pilot: Any, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise RuntimeError("the screen never showed what was expected")
        await asyncio.sleep(0.001)


async def _quiet(pilot: Any) -> None:
    """Let the app finish what it was doing (workers, messages, a paint) before timing."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _app(url: str, acting: str | None = None, poll: float = 0) -> tuple[Any, Any]:
    from sharetui.clock import FrozenClock
    from sharetui.runtime import open_core
    from sharetui.tui.app import make_app

    core = open_core(url, FrozenClock(NOW))
    return core, make_app(core, acting=acting, demo=True, poll_seconds=poll)


@benchmark("tui_history_page")
def tui_history_page(bench: Bench) -> list[Figure]:
    total = 100_000 if bench.quick else 1_000_000
    with bench.scratch_copy("history-page") as path:
        raw = bench.raw(path)
        rows = _pad_history(raw, total)
        core, app = _app(f"sqlite:///{path}")
        times: list[float] = []
        charts: list[float] = []

        async def main() -> None:
            from sharetui.tui.widgets.ledger import LedgerView

            probe = ScreenProbe(app)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.press("4")
                ledger = app.query_one("#history").query_one(LedgerView)
                table = ledger.query_one("DataTable")
                await _until(pilot, lambda: bool(ledger.rows))
                await app.workers.wait_for_complete()
                for _ in range(max(3, bench.repeats)):
                    pages = len(ledger.pages)
                    first = ledger.rows[0].id
                    table.move_cursor(row=len(ledger.rows) - 1)
                    await _quiet(pilot)
                    turned = partial(_turned, ledger, pages, first)
                    painted = probe.expect(lambda p, turned=turned: turned() and _has_row0(table, p))
                    start = time.perf_counter()
                    ledger.older()
                    times.append(await asyncio.wait_for(painted, 60) - start)
                    await _quiet(pilot)
                for _ in range(3):  # the chart: counted again for a new filter (here: the same one)
                    start = time.perf_counter()
                    ledger.reload(keep_page=False)
                    counting = [w for w in app.workers if w.group == "ledger-chart" and not w.is_finished]
                    await app.workers.wait_for_complete(counting)
                    charts.append(time.perf_counter() - start)
                    await _quiet(pilot)

        asyncio.run(main())
        core.close()

        def baseline() -> None:
            raw.execute(
                "SELECT * FROM history WHERE event IN ('share','renew','revoke') AND at < ? "
                "ORDER BY at DESC, id DESC LIMIT 101",
                ((NOW - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S"),),
            ).fetchall()

        start = time.perf_counter()
        for _ in range(5):
            baseline()
        base = (time.perf_counter() - start) / 5
        raw.close()
    value = statistics.median(times) * 1000
    figure = at_most(
        "tui_history_page",
        value,
        "ms",
        100,
        notes=f"{rows:,} history rows; PgDn to the next page painted (the chart's range is unchanged)",
    )
    figure.baseline = base * 1000
    chart = reported(
        "tui_history_chart",
        statistics.median(charts) * 1000,
        "ms",
        notes="the per-day chart counted for a filter (the last 30 days), in its own worker after the page",
    )
    return [figure, chart]


@benchmark("tui_timeline")
def tui_timeline(bench: Bench) -> list[Figure]:
    with bench.scratch_copy("timeline") as path:
        raw = bench.raw(path)
        users = [r[0] for r in raw.execute("SELECT id FROM users WHERE role = 'sales' AND active LIMIT 60")]
        lead = raw.execute("SELECT id FROM leads ORDER BY id LIMIT 1").fetchone()[0]
        raw.execute("DELETE FROM grants WHERE entity_type = 'lead' AND entity_id = ?", (lead,))
        start = NOW - timedelta(days=400)
        for i in range(500):
            begins = start + timedelta(hours=19 * i)
            state = "active" if i >= 500 - len(users) else ("revoked" if i % 3 == 0 else "expired")
            ended = (begins + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
            raw.execute(
                "INSERT INTO grants (entity_type, entity_id, user_id, context_activity_id, context_key, "
                "access, starts_at, expires_at, state, source, until_completed, created_at, updated_at, "
                "ended_at) "
                "VALUES ('lead', ?, ?, NULL, ?, ?, ?, ?, ?, 'manual', ?, ?, ?, ?)",
                (
                    lead,
                    users[i % len(users)],
                    i,  # a context key of its own: many active grants of one user may coexist here
                    1 + i % 2,
                    begins.strftime("%Y-%m-%d %H:%M:%S"),
                    (begins + timedelta(days=14 + i % 30)).strftime("%Y-%m-%d %H:%M:%S"),
                    state,
                    i % 7 == 0,
                    begins.strftime("%Y-%m-%d %H:%M:%S"),
                    begins.strftime("%Y-%m-%d %H:%M:%S"),
                    ended if state == "revoked" else None,
                ),
            )
        raw.close()
        core, app = _app(f"sqlite:///{path}")
        times: list[float] = []
        all_rows: list[float] = []
        opened: list[float] = []

        async def main() -> None:
            from textual.widgets import TabbedContent

            from sharetui.domain.records import RecordRef
            from sharetui.domain.roles import EntityType
            from sharetui.tui.screens.record import RecordScreen
            from sharetui.tui.widgets.timeline import Drawing, TimelineView, drawing

            def read(ref: RecordRef, width: int) -> Drawing:
                return drawing(app.session.timeline(ref), width, app.console)

            ref = RecordRef(EntityType.LEAD, lead)
            probe = ScreenProbe(app)
            async with app.run_test(size=SIZE) as pilot:
                await _until(pilot, lambda: bool(app.query_one("#leads").row_ids))
                screen = RecordScreen(ref)
                start = time.perf_counter()
                app.push_screen(screen)
                await _until(pilot, lambda: bool(screen.data))
                opened.append(time.perf_counter() - start)
                await app.workers.wait_for_complete()
                screen.query_one("#tabs", TabbedContent).active = "tab-timeline"
                view = screen.query_one(TimelineView)
                table = view.query_one("DataTable")
                await _until(pilot, lambda: table.row_count == 500)
                await _quiet(pilot)
                for _ in range(max(3, bench.repeats)):
                    start = time.perf_counter()
                    # What the record screen does for it: read the timeline and build its
                    # rows in a worker, then show them.
                    picture = await asyncio.to_thread(read, ref, view.bar_width())
                    view.show(picture)
                    # Any paint from here on draws the new table; the one to wait for shows
                    # its first rows measured (names and dates whole).
                    painted = probe.expect(lambda p: _has_row0(table, p))
                    # ... and the paint after the table holds and has measured all 500 rows.
                    complete = probe.expect(lambda p: _all_rows(table, 500) and _has_row0(table, p))
                    times.append(await asyncio.wait_for(painted, 60) - start)
                    all_rows.append(await asyncio.wait_for(complete, 60) - start)
                    await _quiet(pilot)

        asyncio.run(main())
        core.close()
    value = statistics.median(times) * 1000
    notes = "a lead with 500 shares: read and built in a worker, put in the table at once, painted"
    return [
        at_most("tui_timeline", value, "ms", 100, notes=notes),
        reported(
            "tui_timeline_all_rows",
            statistics.median(all_rows) * 1000,
            "ms",
            notes="the same, to the paint after all 500 rows are in the table and measured",
        ),
        reported("tui_timeline_record_open", opened[0] * 1000, "ms", notes="the record screen, to its data"),
    ]


def _live(url: str, change: Callable[[], None], repeats: int) -> list[float]:
    """Times from ``change()`` committing until the watching app's list has refreshed."""
    core, app = _app(url, poll=60)
    times: list[float] = []

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await _until(pilot, lambda: bool(app.query_one("#leads").row_ids))
            await asyncio.sleep(0.5)
            for _ in range(repeats):
                seen = app.changes_seen
                start = time.perf_counter()
                await asyncio.to_thread(change)
                await _until(pilot, partial(_more_than, app, seen), timeout=10)
                await _until(pilot, partial(_loaded, app), timeout=10)  # the list read again
                times.append(time.perf_counter() - start)
                await asyncio.sleep(0.3)

    asyncio.run(main())
    core.close()
    return times


@benchmark("tui_live_update")
def tui_live_update(bench: Bench) -> list[Figure]:
    with bench.scratch_copy("live") as path:

        def change() -> None:  # another connection commits, as another process would
            con = sqlite3.connect(path, isolation_level=None)
            con.execute(
                "UPDATE leads SET stage = CASE stage WHEN 'contacted' THEN 'qualified' ELSE 'contacted' END "
                "WHERE id = (SELECT MIN(id) FROM leads)"
            )
            con.close()

        times = _live(f"sqlite:///{path}", change, max(3, bench.repeats))
    value = statistics.median(times) * 1000
    return [at_most("tui_live_update", value, "ms", 1000, notes="SQLite: PRAGMA data_version")]


@benchmark("tui_live_update_postgres")
def tui_live_update_postgres(bench: Bench) -> list[Figure]:
    if not bench.pg_url:
        return []
    import psycopg

    from sharetui.db.changes import NOTIFY_SQL

    plain = bench.pg_url.split("?", 1)[0]
    schema = "bench_live"
    from urllib.parse import quote

    url = f"{plain}?options={quote(f'-csearch_path={schema}')}"
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            con.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # noqa: BLE001 - report and go on without PostgreSQL
        bench.log(f"PostgreSQL unavailable, skipping tui_live_update_postgres: {exc}")
        return []
    from pathlib import Path

    from sharetui.ops.loader import Loader

    core, _ = _app(url)
    Loader(core).load(Path(__file__).resolve().parents[1] / "sample_data", actor=None)
    core.close()

    def change() -> None:  # another session commits a change (the outbox insert notifies)
        with psycopg.connect(url, autocommit=False) as con:
            con.execute(
                "UPDATE leads SET stage = CASE stage WHEN 'contacted' THEN 'qualified' ELSE 'contacted' END "
                "WHERE id = 1"
            )
            con.execute(NOTIFY_SQL)
            con.commit()

    try:
        times = _live(url, change, max(3, bench.repeats))
    finally:
        with psycopg.connect(plain, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    value = statistics.median(times) * 1000
    return [
        at_most("tui_live_update_postgres", value, "ms", 1000, notes="LISTEN/NOTIFY"),
        reported("tui_live_update_postgres_max", max(times) * 1000, "ms"),
    ]

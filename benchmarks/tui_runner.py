"""The TUI as a user meets it, in a fresh process: ``python -m benchmarks.tui_runner``.

Spawned by :mod:`benchmarks.tui_bench`, never imported by it. The ``sharetui``
target runs the real command line (``sharetui --db URL tui``: imports, plugin
loading, opening and checking the database, building the app) with the
headless Textual driver, so the time to the first screen includes everything
a person waits for. The ``null`` target is the floor: a bare Textual app with
the same table filled by raw ``sqlite3``.

"On screen" is taken at the moment a compositor update that contains the
expected rows is turned into terminal output: the runner wraps
``App._display`` and does there what a terminal driver does (render the
update's segments and write them out), so the figures include painting.
Output is one line ``TUI_BENCH {json}`` on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZE = (120, 40)
MARK = "TUI_BENCH "


def _cpu() -> float:
    """CPU seconds this process has used (all threads): steadier than wall time on a busy machine."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _memory() -> dict[str, float]:
    """Peak and current resident set size of this process, in MB (from /proc, no psutil)."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(rest.split()[0]) / 1024
    return out


class ScreenProbe:
    """Wraps ``app._display``: renders each update as a terminal driver would and
    tells waiters when what they expect has been painted."""

    def __init__(self, app: Any) -> None:
        from textual._compositor import CompositorUpdate

        self.app = app
        self.sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        self.waiters: list[tuple[Callable[[str], bool], asyncio.Future[float]]] = []
        self.cpu_at_paint = 0.0
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count or not isinstance(renderable, CompositorUpdate):
                return
            painted = renderable.render_segments(app.console)
            self.sink.write(painted)
            if not self.waiters:
                return
            now = time.perf_counter()
            for entry in list(self.waiters):
                predicate, future = entry
                if not future.done() and predicate(painted):
                    self.cpu_at_paint = _cpu()  # before anything the paint lets run
                    future.set_result(now)
                    self.waiters.remove(entry)

        app._display = display

    def expect(self, predicate: Callable[[str], bool]) -> asyncio.Future[float]:
        """A future set to ``perf_counter()`` of the first paint for which ``predicate(painted)`` holds."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        return future


async def _await(future: asyncio.Future[float], what: str, timeout: float = 60.0) -> float:
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        raise SystemExit(f"tui_runner: timed out waiting for {what}") from None


# -- sharetui ---------------------------------------------------------------------------------


def _plain(cell: Any) -> str:
    return str(cell).strip()


async def drive_sharetui(
    app: Any, opts: argparse.Namespace, spawned_at: float, result: dict[str, Any]
) -> None:
    from textual.widgets import DataTable, Input

    probe = ScreenProbe(app)
    shown = probe.expect(lambda painted: _page_painted(app, painted, 1))
    async with app.run_test(size=SIZE) as pilot:
        first = await _await(shown, "the first page of leads")
        result["start_cpu_seconds"] = probe.cpu_at_paint
        # perf_counter is per process; time.time() is shared with the parent that spawned us.
        result["start_seconds"] = time.time() - (time.perf_counter() - first) - spawned_at
        result["first_rows"] = len(app.query_one("#leads").row_ids)
        if opts.mode == "start":
            app.exit()
            return
        view = app.query_one("#leads")
        table = view.query_one(DataTable)
        await _settle(pilot)

        pages, cpus = [], []
        for n in range(2, opts.pages + 2):
            if not view.next_cursor:
                break
            # PgDn moves one screen at a time, and past the page's last row loads the next
            # page: the cursor goes there first (untimed), and the timed press loads a page.
            table.move_cursor(row=table.row_count - 1)
            await _settle(pilot)
            painted = probe.expect(lambda p, n=n: _page_painted(app, p, n))
            began, cpu = time.perf_counter(), _cpu()
            await pilot.press("pagedown")
            pages.append(await _await(painted, f"page {n}") - began)
            cpus.append(probe.cpu_at_paint - cpu)
            await _settle(pilot)
        result["page_seconds"] = pages
        result["page_cpu_seconds"] = cpus
        result["rows_per_page"] = table.row_count

        await pilot.press("slash")
        box = view.query_one("#filter", Input)
        filters: dict[str, list[float]] = {}
        filter_cpus: dict[str, list[float]] = {}
        for term in opts.term:
            expected = _expected_ids(app, term)
            if not expected:
                raise SystemExit(f"tui_runner: {term!r} matches nothing visible; pick another term")
            samples = []
            for _ in range(opts.filter_repeats):
                await _clear_filter(pilot, view, box, probe)
                # Type the term; time from its last keystroke to its rows on screen
                # (the filter's debounce included: that is what the user waits for),
                # once the list has caught up with the keys before it.
                await pilot.press(*term[:-1])
                for _ in range(500):
                    if view.search == term[:-1].strip():
                        break
                    await pilot.pause(0.01)
                await _settle(pilot)
                painted = probe.expect(lambda p, e=expected: view.row_ids == e and _has_row0(table, p))
                began, cpu = time.perf_counter(), _cpu()
                await pilot.press(term[-1])
                samples.append(await _await(painted, f"the rows for {term!r}") - began)
                filter_cpus.setdefault(term, []).append(probe.cpu_at_paint - cpu)
                await _settle(pilot)
            filters[term] = samples
            result.setdefault("filter_matches", {})[term] = len(expected)
        result["filter_seconds"] = filters
        result["filter_cpu_seconds"] = filter_cpus
        result["memory_mb"] = _memory()
        app.exit()


def _page_painted(app: Any, painted: str, number: int) -> bool:
    """Page ``number`` of the leads is in the table and this paint shows it."""
    from textual.widgets import DataTable

    try:
        view = app.query_one("#leads")
    except Exception:  # noqa: BLE001 - not composed yet
        return False
    if len(view.page_starts) != number or not view.row_ids:
        return False
    return _has_row0(view.query_one(DataTable), painted)


def _has_row0(table: Any, painted: str) -> bool:
    """This paint shows the table's current first rows (their ids and names).

    Called only once the expected data is in the table, so a paint that holds
    them is the table drawing that data (status lines may come in another paint).
    """
    if not table.row_count:
        return False
    for index in range(min(2, table.row_count)):
        row = table.get_row_at(index)
        if _plain(row[0]) not in painted or _plain(row[1]) not in painted:
            return False
    return True


def _expected_ids(app: Any, term: str) -> list[int]:
    from sharetui.tui.widgets.records import PAGE_SIZE

    session = app.session
    page = session.page(app.query_one("#leads").entity, after=None, limit=PAGE_SIZE, search=term, sort="id")
    return [row.id for row in page.rows]


async def _settle(pilot: Any) -> None:
    """Wait for the app's work to finish: every worker but the live-update watcher,
    which waits for other processes' changes for as long as the app runs."""
    app = pilot.app

    def busy() -> list[Any]:
        return [w for w in app.workers if w.group != "watch" and not w.is_finished]

    for _ in range(50):
        await app.workers.wait_for_complete(busy())
        await pilot.pause()
        if not busy():
            return


async def _clear_filter(pilot: Any, view: Any, box: Any, probe: ScreenProbe) -> None:
    if not box.value and not view.search:
        return
    cleared = probe.expect(lambda p: not view.search and _page_painted(pilot.app, p, 1))
    box.value = ""
    await _await(cleared, "the unfiltered list")
    await _settle(pilot)
    box.focus()


def run_sharetui(opts: argparse.Namespace, spawned_at: float) -> dict[str, Any]:
    import sharetui.tui.app as tui_app

    result: dict[str, Any] = {"target": "sharetui"}

    def run(self: Any, *args: Any, **kwargs: Any) -> None:
        # No live-update watcher: it waits on another connection for as long as the app
        # runs, and these figures are of the list (tui_live_update measures the watcher).
        self.poll_seconds = 0.0
        asyncio.run(drive_sharetui(self, opts, spawned_at, result))

    tui_app.ShareTuiApp.run = run  # type: ignore[method-assign]
    from sharetui.cli import cli

    try:
        cli.main(["--db", opts.db, "tui"], prog_name="sharetui")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    return result


# -- the floor: a bare Textual app on raw sqlite3 ---------------------------------------------------

NULL_PAGE = (
    "SELECT l.id, l.name, l.stage, l.company, u.username FROM leads l JOIN users u ON u.id = l.owner_id "
    "WHERE l.id > ? ORDER BY l.id LIMIT 101"
)


def run_null(opts: argparse.Namespace, spawned_at: float) -> dict[str, Any]:
    import sqlite3

    from rich.text import Text
    from textual import work
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import DataTable, Input, Static

    path = opts.db.removeprefix("sqlite:///")

    class NullApp(App[None]):
        BINDINGS = [Binding("pagedown", "next_page", priority=True)]

        def __init__(self) -> None:
            super().__init__()
            self.starts = [0]
            self.next_after: int | None = None
            self.row_ids: list[int] = []

        def compose(self) -> ComposeResult:
            yield Input(id="filter")
            yield Static("", id="status")
            yield DataTable(id="records", cursor_type="row", zebra_stripes=True)

        def on_mount(self) -> None:
            self.query_one(DataTable).add_columns("id", "name", "your access", "owner", "stage", "company")
            self.load(0)

        @work(thread=True, exclusive=True)
        def load(self, after: int) -> None:
            con = sqlite3.connect(path)
            rows = con.execute(NULL_PAGE, (after,)).fetchall()
            con.close()
            self.call_from_thread(self.show, rows)

        def show(self, rows: list[tuple[Any, ...]]) -> None:
            table = self.query_one(DataTable)
            table.clear()
            more = len(rows) > 100
            rows = rows[:100]
            self.row_ids = [r[0] for r in rows]
            for ident, name, stage, company, owner in rows:
                table.add_row(
                    Text(str(ident)),
                    Text(name),
                    Text("role (edit)"),
                    Text(owner),
                    Text(stage),
                    Text(company),
                    key=str(ident),
                )
            self.next_after = rows[-1][0] if more else None
            self.query_one("#status", Static).update(f"page {len(self.starts)} · {len(rows)} shown")

        def action_next_page(self) -> None:
            if self.next_after is not None:
                self.starts.append(self.next_after)
                self.load(self.next_after)

    app = NullApp()
    result: dict[str, Any] = {"target": "null"}

    def page_painted(painted: str, number: int) -> bool:
        table = app.query_one(DataTable)
        return len(app.starts) == number and _has_row0(table, painted)

    async def drive() -> None:
        probe = ScreenProbe(app)
        shown = probe.expect(lambda p: page_painted(p, 1))
        async with app.run_test(size=SIZE) as pilot:
            first = await _await(shown, "the first page")
            result["start_cpu_seconds"] = probe.cpu_at_paint
            result["start_seconds"] = time.time() - (time.perf_counter() - first) - spawned_at
            if opts.mode == "session":
                await _settle(pilot)
                app.query_one(DataTable).focus()
                pages, cpus = [], []
                for n in range(2, opts.pages + 2):
                    painted = probe.expect(lambda p, n=n: page_painted(p, n))
                    began, cpu = time.perf_counter(), _cpu()
                    await pilot.press("pagedown")
                    pages.append(await _await(painted, f"page {n}") - began)
                    cpus.append(probe.cpu_at_paint - cpu)
                    await _settle(pilot)
                result["page_seconds"] = pages
                result["page_cpu_seconds"] = cpus
                result["memory_mb"] = _memory()
            app.exit()

    asyncio.run(drive())
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tui_runner")
    p.add_argument("--db", required=True, help="database URL (the null target reads sqlite:///PATH only)")
    p.add_argument("--target", choices=("sharetui", "null"), default="sharetui")
    p.add_argument("--mode", choices=("start", "session"), default="start")
    p.add_argument("--spawned-at", type=float, required=True, help="time.time() when the parent spawned us")
    p.add_argument("--pages", type=int, default=20)
    p.add_argument("--term", action="append", default=[], help="filter terms to type (session mode)")
    p.add_argument("--filter-repeats", type=int, default=3)
    opts = p.parse_args(argv)
    runner = run_sharetui if opts.target == "sharetui" else run_null
    result = runner(opts, opts.spawned_at)
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Two TUIs on one database see each other's changes within a second, without
re-querying on a timer: LISTEN/NOTIFY on PostgreSQL, ``PRAGMA data_version`` on
SQLite (the suite runs this on both when SHARETUI_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sharetui.core.service import Core
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.ops.loader import Loader
from sharetui.tui.app import ShareTuiApp, make_app
from sharetui.tui.widgets.records import RecordsView

SAMPLE_DATA = Path(__file__).resolve().parents[3] / "sample_data"
LEAD_1 = RecordRef(EntityType.LEAD, 1)


@pytest.fixture
def demo(core: Core) -> Core:
    Loader(core).load(SAMPLE_DATA, actor=None)
    return core


def test_two_apps_see_each_others_changes_within_a_second(demo: Core) -> None:
    watching = make_app(demo, acting="daniel", demo=True, poll_seconds=60)
    changing = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    def listed(app: ShareTuiApp) -> list[int]:
        return list(app.query_one("#leads", RecordsView).row_ids)

    async def until(condition: Callable[[], bool], seconds: float) -> float:
        start = time.perf_counter()
        while not condition():
            if time.perf_counter() - start > seconds:
                raise AssertionError("not seen in time")
            await asyncio.sleep(0.02)
        return time.perf_counter() - start

    async def main() -> None:
        async with watching.run_test(size=(120, 40)), changing.run_test(size=(120, 40)):
            await until(lambda: bool(listed(watching)) and bool(listed(changing)), 10)
            assert 1 not in listed(watching)
            await asyncio.sleep(0.5)  # the watcher has read where the database stands
            # priya, in the other app, shares lead 1 with daniel (in a worker thread, as the app does).
            started = time.perf_counter()
            share = changing.session.share
            outcome, _ = await asyncio.to_thread(share, LEAD_1, "daniel", "2d", "read", None, False)
            assert outcome.ok
            await until(lambda: 1 in listed(watching), 1.0)
            assert time.perf_counter() - started <= 1.5
            assert watching.changes_seen >= 1

    asyncio.run(main())

"""Team mode's clock is the server's: each reading is a round trip, so a unit of work
(the worker's event and all it causes) reads it once (``ServerClock.held``), and a
worker's batch of events once (``ServerClock.anchored``: the reading plus the time
elapsed since, measured locally)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sharetui.core.automations.queue import anchored_time, held_time
from sharetui.db import team as team_sql
from sharetui.db.team import ServerClock

T0 = datetime(2026, 3, 2, 9, 0)


class _Server:
    """Answers ``SELECT sharetui_now()`` with a time one second later at each call."""

    def __init__(self) -> None:
        self.calls = 0

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        assert sql == "SELECT sharetui_now()"
        self.calls += 1
        at = T0 + timedelta(seconds=self.calls)

        class _Cursor:
            def fetchone(self) -> tuple[datetime]:
                return (at,)

        return _Cursor()


def test_a_held_clock_reads_the_server_once_and_lets_go_after() -> None:
    server = _Server()
    clock = ServerClock(server)
    with clock.held():
        first = clock.now()
        assert clock.now() == first and server.calls == 1
        with clock.held():  # an enclosing hold is kept
            assert clock.now() == first
        assert clock.now() == first and server.calls == 1
    assert clock.now() == (T0 + timedelta(seconds=2)).replace(tzinfo=UTC) and server.calls == 2


def test_a_hold_is_its_threads_own() -> None:
    server = _Server()
    clock = ServerClock(server)
    seen: list[datetime] = []
    with clock.held():
        held = clock.now()
        thread = threading.Thread(target=lambda: seen.append(clock.now()))
        thread.start()
        thread.join()
    assert seen and seen[0] != held and server.calls == 2


def test_the_queue_holds_only_a_clock_that_can_be_held() -> None:
    class _Core:
        clock = object()  # a clock without held(): nothing to do

    with held_time(_Core()):  # type: ignore[arg-type]
        pass
    core = _Core()
    core.clock = ServerClock(_Server())  # type: ignore[assignment]
    with held_time(core):  # type: ignore[arg-type]
        assert core.clock.now() == core.clock.now()  # type: ignore[attr-defined]
    assert core.clock._local.held is None  # type: ignore[attr-defined]


def test_an_anchored_clock_reads_the_server_once_and_adds_the_time_elapsed_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = _Server()
    clock = ServerClock(server)
    ticks = iter([100.0, 100.25, 100.5, 101.0])
    monkeypatch.setattr(team_sql.time, "perf_counter", lambda: next(ticks))
    read = (T0 + timedelta(seconds=1)).replace(tzinfo=UTC)
    with clock.anchored():  # read at 100.0
        assert clock.now() == read + timedelta(seconds=0.25)
        with clock.held():  # an event's reading, from the anchor: no round trip
            event = clock.now()
            assert event == read + timedelta(seconds=0.5) and clock.now() == event
        with clock.anchored():  # an enclosing anchor is kept
            assert clock.now() == read + timedelta(seconds=1)
        assert server.calls == 1
    assert clock.now() == (T0 + timedelta(seconds=2)).replace(tzinfo=UTC) and server.calls == 2


def test_a_frozen_sessions_anchored_clock_does_not_move() -> None:
    server = _Server()
    clock = ServerClock(server, frozen=True)
    with clock.anchored():
        first = clock.now()
        assert clock.now() == first and server.calls == 1


def test_the_queue_anchors_only_a_clock_that_can_be_anchored() -> None:
    class _Core:
        clock = object()

    with anchored_time(_Core()):  # type: ignore[arg-type]
        pass
    core = _Core()
    core.clock = ServerClock(_Server())  # type: ignore[assignment]
    with anchored_time(core):  # type: ignore[arg-type]
        assert core.clock._local.anchor is not None  # type: ignore[attr-defined]
    assert core.clock._local.anchor is None  # type: ignore[attr-defined]

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


class _Anchoring:
    """Answers the anchor's statement as the server would: ``sharetui_now()`` (whole
    seconds; a test-clock session's frozen time when ``frozen``) and the statement's time
    to the microsecond, ``server[0]`` seconds after T0."""

    def __init__(self, server: list[float], frozen: datetime | None = None) -> None:
        self.server, self.frozen, self.calls = server, frozen, 0

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        self.calls += 1
        real = T0 + timedelta(seconds=self.server[0])
        clock = self.frozen or real.replace(microsecond=0)
        row = (clock, real) if sql == team_sql._ANCHOR else (clock,)

        class _Cursor:
            def fetchone(self) -> tuple[datetime, ...]:
                return row

        return _Cursor()


def test_an_anchored_clock_reads_the_server_once_and_adds_the_time_elapsed_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = [4.5]
    monkeypatch.setattr(team_sql.time, "perf_counter", lambda: server[0])  # the two clocks agree
    db = _Anchoring(server)
    clock = ServerClock(db)
    with clock.anchored():  # read at 4.5
        server[0] = 4.75
        assert clock.now() == (T0 + timedelta(seconds=4.75)).replace(tzinfo=UTC)
        server[0] = 5.0
        with clock.held():  # an event's reading, from the anchor: no round trip
            event = clock.now()
            server[0] = 5.5
            assert event == (T0 + timedelta(seconds=5)).replace(tzinfo=UTC) and clock.now() == event
        with clock.anchored():  # an enclosing anchor is kept
            assert clock.now() == (T0 + timedelta(seconds=5.5)).replace(tzinfo=UTC)
        assert db.calls == 1
    assert clock.now() == (T0 + timedelta(seconds=5)).replace(tzinfo=UTC) and db.calls == 2


def test_an_anchored_clock_is_never_before_a_time_the_server_stamped_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event a person commits after the batch's reading (stamped with sharetui_now(),
    whole seconds) is not decided at a time before it: the anchor is the server's
    statement time to the microsecond, not sharetui_now()'s whole second (found by review)."""
    from sharetui.domain.time import to_db

    server = [4.95]
    monkeypatch.setattr(team_sql.time, "perf_counter", lambda: server[0])
    db = _Anchoring(server)
    clock = ServerClock(db)
    with clock.anchored():  # read at 4.95
        server[0] = 5.0  # a person's event is stamped
        stamped = db.execute_sql("SELECT sharetui_now()").fetchone()[0]
        server[0] = 5.02  # the worker decides it
        assert to_db(clock.now()) >= to_db(stamped)


def test_a_frozen_sessions_anchored_clock_does_not_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server says which clock it keeps: a test-clock session's frozen time (not the
    statement's second) stays as it is through the batch."""
    server = [4.5]
    monkeypatch.setattr(team_sql.time, "perf_counter", lambda: server[0])
    frozen = datetime(2026, 1, 1, 12, 0)
    clock = ServerClock(_Anchoring(server, frozen))
    with clock.anchored():
        server[0] = 9.0
        assert clock.now() == frozen.replace(tzinfo=UTC)


def test_the_queue_anchors_only_a_clock_that_can_be_anchored() -> None:
    class _Core:
        clock = object()

    with anchored_time(_Core()):  # type: ignore[arg-type]
        pass
    core = _Core()
    core.clock = ServerClock(_Anchoring([0.0]))  # type: ignore[assignment]
    with anchored_time(core):  # type: ignore[arg-type]
        assert core.clock._local.anchor is not None  # type: ignore[attr-defined]
    assert core.clock._local.anchor is None  # type: ignore[attr-defined]

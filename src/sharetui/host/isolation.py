"""Running plugin code so that it fails closed: on every exception, and on time.

Three rules, for every hook (docs/plugins.md, "When a plugin fails: fail closed, on time"):

- **Any** ``BaseException`` a plugin raises is its failure — ``SystemExit``,
  ``GeneratorExit``, a ``KeyboardInterrupt`` its own code raises — never the
  program's. Only the user's real Ctrl-C stops the program (:func:`users_interrupt`).
- **A time budget per call.** Hooks that get only data (access checks, share
  validators, lifecycle listeners) are bounded by the clock: on the main thread
  a one-shot timer ends a call that runs out of time (:class:`MainThreadAlarm`);
  on other threads the call runs on one of the host's worker threads while the
  caller waits up to the budget (:class:`CallPool`). A late call on a worker is
  given up: the caller goes on as if it had failed and whatever the call
  returns later is dropped. Python cannot stop a thread, so the call runs on to
  its end on its own thread — a daemon thread, which never holds up the
  program's exit — and its database work, if any, goes through that thread's
  own connection, never the caller's transaction. Hooks that work in the
  caller's transaction (the rule set, actions) run on the caller's thread
  without a timer (an exception raised inside database work could leave the
  transaction half-done): their budget is checked when they return, and a late
  answer counts as a failure.
- **Set aside.** A plugin that fails (raises, answers nonsense, or is late) a
  number of times in a row is set aside until the process ends; what that means
  for each hook is in :mod:`sharetui.host.calls`.
"""

from __future__ import annotations

import dis
import queue
import signal
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:  # signal.getsignal wraps this in an enum lookup that costs microseconds per call
    from _signal import getsignal as _handler_of
except ImportError:  # pragma: no cover - not CPython
    _handler_of = signal.getsignal

# Settings (sharetui.core.records.settings) that tune this, with their defaults.
CHECK_BUDGET_SETTING = "plugin_budget_ms"
ACTION_BUDGET_SETTING = "plugin_action_budget_ms"
FAILURE_LIMIT_SETTING = "plugin_failure_limit"
DIRS_SETTING = "plugin_dirs"


@dataclass
class Limits:
    """How long one plugin call may take, and how many failures in a row set a plugin aside."""

    check_ms: int = 200
    """Access checks, share validators and a plugin's rule set (``plugin_budget_ms``)."""
    action_ms: int = 2000
    """Actions, lifecycle listeners and every other hook called at run time
    (``plugin_action_budget_ms``)."""
    failure_limit: int = 5
    """Failures in a row after which a plugin is set aside (``plugin_failure_limit``)."""


class PluginFailure(Exception):
    """A plugin call that failed in a way an ``except Exception`` would not see
    (``SystemExit``, ``KeyboardInterrupt`` from its own code, ...), was over its
    budget, or was not made because its plugin is set aside.

    Raised from an action's ``run`` so the automation engine treats it as any
    failing action: the step's savepoint rolls back and the step fails.
    """


_RAISE = dis.opmap["RAISE_VARARGS"]


def users_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's Ctrl-C, which must stop the program, rather
    than a ``KeyboardInterrupt`` a plugin raised itself (a failure like any other).

    A signal reaches only the main thread, and lands wherever that thread is —
    between two instructions, or inside a call such as ``time.sleep`` — never on a
    ``raise`` statement: code that raises ``KeyboardInterrupt`` itself stops on
    one. Calls on the host's worker threads never see the user's Ctrl-C (the
    caller, waiting on the main thread, gets it).
    """
    if not isinstance(exc, KeyboardInterrupt) or threading.current_thread() is not threading.main_thread():
        return False
    tb = exc.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code.co_code
    return not (0 <= tb.tb_lasti < len(code) and code[tb.tb_lasti] == _RAISE)


class Call:
    """One plugin call handed to a worker thread."""

    __slots__ = ("done", "error", "fn", "kwargs", "value")

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.fn = fn
        self.kwargs = kwargs
        self.value: Any = None
        self.error: BaseException | None = None
        self.done: threading.Lock | None = None  # set when handed to a worker thread


class _Late(BaseException):
    """Raised inside a call on the main thread when its budget ran out."""


class MainThreadAlarm:
    """Calls on the main thread, bounded by a one-shot real-time timer (``SIGALRM``).

    Handing a call to a worker thread and back costs two thread wake-ups (tens of
    microseconds on a virtual machine), on every access check of every list row.
    On the main thread the call runs in place instead, and a timer set to the
    budget raises :class:`_Late` inside it when it runs out — in a loop, or in a
    wait such as ``time.sleep``, a socket read or a lock — which ends it. Code
    that does not come back to Python (a C extension's loop) or that swallows
    the exception is judged when it returns: late is late. Used only where
    ``SIGALRM`` is free (nobody else installed a handler), so the timer never
    meets another user of it; elsewhere, and on other threads, the worker
    threads are used.
    """

    def __init__(self) -> None:
        self.armed = False
        self.deadline = 0.0
        self._handler = self._on_alarm
        self._main = threading.main_thread().ident
        self._can = hasattr(signal, "setitimer")

    def usable(self) -> bool:
        """Whether a call on this thread can be bounded by the alarm now."""
        if not self._can or threading.get_ident() != self._main or self.armed:
            return False
        handler = _handler_of(signal.SIGALRM)
        if handler is self._handler:
            return True
        if handler == signal.SIG_DFL:
            signal.signal(signal.SIGALRM, self._handler)
            return True
        self._can = False  # SIGALRM is somebody else's: leave it alone
        return False

    def _on_alarm(self, signum: int, frame: Any) -> None:
        # Not armed, or armed for a later call than the one whose alarm this is: nothing to end.
        if self.armed and time.perf_counter() >= self.deadline:
            self.armed = False
            raise _Late

    def run(self, call: Call, timeout_s: float) -> bool:
        """Run ``call`` here within ``timeout_s``: True when it finished in time
        (its answer is in ``call``), False when it was late."""
        started = time.perf_counter()
        self.deadline = started + timeout_s
        try:
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            try:
                call.value = call.fn(**call.kwargs)
            finally:
                self.armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Late:
            return False
        except BaseException as exc:
            if users_interrupt(exc):
                raise
            if isinstance(exc.__context__, _Late):
                return False  # it turned the alarm into an error of its own: still late
            call.error = exc
        return time.perf_counter() - started <= timeout_s


ALARM = MainThreadAlarm()


class _Worker:
    """A daemon thread that runs the calls put on its queue, one at a time."""

    __slots__ = ("jobs",)

    def __init__(self, pool: _Workers) -> None:
        self.jobs: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        threading.Thread(target=self._loop, args=(pool,), name="sharetui-plugin-call", daemon=True).start()

    def _loop(self, pool: _Workers) -> None:
        jobs, idle = self.jobs, pool.idle
        while True:
            call = jobs.get()
            if call is None:
                return
            try:
                call.value = call.fn(**call.kwargs)
            except BaseException as exc:  # noqa: BLE001 - on this thread, every exception is the plugin's
                call.error = exc
            call.fn = call.kwargs = None  # type: ignore[assignment]  # a late call's arguments go now
            done = call.done
            del call
            if pool.closed:
                done.release()  # type: ignore[union-attr]
                return
            # Free again before the caller hears back, so its next call finds this thread.
            idle.append(self)
            done.release()  # type: ignore[union-attr]


class _Workers:
    """The state the worker threads share (they never hold the pool or its host)."""

    def __init__(self) -> None:
        self.idle: list[_Worker] = []
        self.started = 0
        self.closed = False
        self.lock = threading.Lock()

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self.idle.pop().jobs.put(None)


class CallPool:
    """Worker threads for plugin calls with a deadline; threads start when first needed.

    A call that is late keeps its thread until it returns; the next call starts
    another. At most ``most`` threads exist: when all are busy (stuck in late
    calls), a new call is not made (:meth:`run` returns None at once), which
    fails closed. Setting a plugin aside after a few failures in a row keeps a
    hanging plugin from taking them all.
    """

    def __init__(self, most: int = 16) -> None:
        self.most = most
        self._workers = _Workers()
        # Stop the idle threads when the host that owns the pool goes away.
        self._finalizer = weakref.finalize(self, self._workers.close)

    def run(self, call: Call, timeout_s: float) -> bool | None:
        """Run ``call`` on a worker and wait up to ``timeout_s``.

        Returns True when it finished in time (``call.value`` or ``call.error`` is
        its answer), False when it is late (it runs on; its answer is ignored),
        None when no thread was free to run it.
        """
        workers = self._workers
        try:
            worker = workers.idle.pop()
        except IndexError:
            with workers.lock:
                if workers.started >= self.most:
                    return None
                workers.started += 1
            worker = _Worker(workers)
        call.done = done = threading.Lock()
        done.acquire()
        worker.jobs.put(call)
        # A real Ctrl-C arrives here, on the waiting thread, and stops the program.
        # The thread of a late call rejoins the idle ones when the call returns.
        return done.acquire(True, timeout_s)

    def close(self) -> None:
        """Stop the idle threads (late calls' threads stop when their call returns)."""
        self._finalizer()

"""Plugins fail closed, on everything, on time (DESIGN .9, docs/plugins.md
"When a plugin fails"): any ``BaseException`` a hook raises, an answer later than
its budget, and a plugin that keeps failing is set aside — never widening access.

Budgets here are tens of milliseconds and slow plugins wait on an event the test
sets at the end, so nothing sleeps for long and no thread outlives its test by
much.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from sharetui import hookimpl
from sharetui.db.models import Grant, Lead, ShareRequest
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.host.isolation import ALARM, Limits, users_interrupt
from sharetui.host.state import stored_errors
from sharetui.sdk import AccessDecision, Outcome, allow, deny
from sharetui.testing import plugin_registered


class Boom(BaseException):
    """Not an ``Exception``: ``except Exception`` lets it through."""


def _exit_0() -> None:
    sys.exit(0)


def _keyboard_interrupt() -> None:
    raise KeyboardInterrupt("raised by the plugin itself")


def _generator_exit() -> None:
    raise GeneratorExit


def _boom() -> None:
    raise Boom("a BaseException of its own")


MISBEHAVIOURS = [
    pytest.param(_exit_0, "SystemExit", id="sys-exit-0"),
    pytest.param(_keyboard_interrupt, "KeyboardInterrupt", id="keyboard-interrupt"),
    pytest.param(_generator_exit, "GeneratorExit", id="generator-exit"),
    pytest.param(_boom, "Boom", id="base-exception"),
]


def errors_of(plugin: str) -> list[dict[str, Any]]:
    return [e for e in stored_errors() if e["plugin"] == plugin]


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What slow plugins wait on; set at the end so their threads finish."""
    event = threading.Event()
    yield event
    event.set()


def limits(core, **values: int) -> None:
    core.plugins.configure(Limits(**values))


# -- every BaseException fails closed ----------------------------------------------------


@pytest.mark.parametrize(("misbehave", "name"), MISBEHAVIOURS)
def test_an_access_check_that_exits_or_interrupts_denies(bank, misbehave, name) -> None:
    def check(user):
        misbehave()

    access = bank.core.access
    with plugin_registered(bank.core, SimpleNamespace(sharetui_check_access=hookimpl(check)), name="rogue"):
        assert not access.can("admin", bank.lead, "read")
        assert access.level("priya", bank.lead) is Access.NONE  # even the owner
        denials = access.explain("admin", bank.lead, actor=None).denials
        assert f"rogue: access check failed ({name}) (read)" in denials
    assert errors_of("rogue")[0]["error"].startswith(name)
    assert access.can("admin", bank.lead, "edit")


@pytest.mark.parametrize(("misbehave", "name"), MISBEHAVIOURS)
def test_a_rule_set_that_exits_or_interrupts_denies(bank, misbehave, name) -> None:
    class Rules:
        @hookimpl(tryfirst=True)
        def sharetui_access_level(self, user_id, record, now):
            misbehave()

    access = bank.core.access
    with plugin_registered(bank.core, Rules(), name="rules"):
        assert not access.can("admin", bank.lead, "read")
        assert access.level("priya", bank.lead) is Access.NONE
    assert errors_of("rules")[0]["hook"] == "sharetui_access_level"
    assert errors_of("rules")[0]["error"].startswith(name)
    assert access.can("admin", bank.lead, "edit")


@pytest.mark.parametrize(("misbehave", "name"), MISBEHAVIOURS)
def test_a_share_validator_that_exits_or_interrupts_refuses(bank, misbehave, name) -> None:
    def validate(request):
        misbehave()

    plugin = SimpleNamespace(sharetui_validate_share=hookimpl(validate))
    with plugin_registered(bank.core, plugin, name="rogue"):
        result = bank.core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="1d")
    assert not result.ok
    assert result.reason == f"rogue: share check failed ({name})"
    assert not Grant.select().exists()
    assert ShareRequest.get_by_id(result.request_id).status == "failed"


@pytest.mark.parametrize(("misbehave", "name"), MISBEHAVIOURS)
def test_a_listener_that_exits_or_interrupts_is_recorded_and_the_program_goes_on(
    bank, misbehave, name
) -> None:
    heard: list[str] = []

    def granted(event):
        misbehave()

    with (
        plugin_registered(bank.core, SimpleNamespace(sharetui_share_granted=hookimpl(granted)), name="rogue"),
        plugin_registered(
            bank.core,
            SimpleNamespace(sharetui_share_granted=hookimpl(lambda event: heard.append(event.user))),
            name="calm",
        ),
    ):
        result = bank.core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="1d")
    assert result.ok
    assert heard == ["sofia"]
    assert bank.core.access.can("sofia", bank.lead, "read")
    assert errors_of("rogue")[0]["error"].startswith(name)


class Poker:
    """A trigger ``poke`` and an action that shares the lead with daniel, then
    does whatever ``then`` does."""

    def __init__(self, then: Callable[[], Any]) -> None:
        self.then = then
        self.ran = 0

    @hookimpl
    def sharetui_register_triggers(self, register):
        register("poke", "somebody poked a lead", entity="lead")

    @hookimpl
    def sharetui_register_actions(self, register):
        def run(ctx, config):
            self.ran += 1
            ctx.services.shares.share(ctx.record, "daniel", duration="1d")
            self.then()
            return Outcome.succeeded("shared")

        register("share_with_daniel", "share the lead with daniel", run)


def poke(bank, times: int = 1) -> list:
    core = bank.core
    definition = core.automations.validate(
        {
            "name": "poked",
            "status": "published",
            "trigger": {"type": "poke"},
            "actions": [{"type": "share_with_daniel"}],
        }
    )
    core.automations.add(definition, actor=bank.admin)
    reports = []
    for _ in range(times):
        core.automations.fire("poke", RecordRef(EntityType.LEAD, bank.lead.id))
        reports += core.automations.process_pending()
    return reports


@pytest.mark.parametrize(("misbehave", "name"), MISBEHAVIOURS)
def test_an_action_that_exits_or_interrupts_fails_and_leaves_nothing(bank, misbehave, name) -> None:
    with plugin_registered(bank.core, Poker(misbehave), name="poker"):
        [report] = poke(bank)
    assert report.status == "failed"
    assert name in report.reason
    assert not Grant.select().exists()  # the share it made before failing rolled back
    assert errors_of("poker")[0]["hook"] == "action share_with_daniel"


@pytest.mark.parametrize(("misbehave", "name"), MISBEHAVIOURS)
def test_a_registration_that_exits_or_interrupts_is_recorded(core, misbehave, name) -> None:
    def register_triggers(register):
        misbehave()

    plugin = SimpleNamespace(sharetui_register_triggers=hookimpl(register_triggers))
    with plugin_registered(core, plugin, name="rogue"):
        assert core.plugins.plugins["rogue"].errors[0].startswith(f"sharetui_register_triggers: {name}")
    assert "new_lead" in core.plugins.triggers


def test_sys_exit_in_a_check_no_longer_turns_a_denial_into_success(cli, bank, tmp_path) -> None:
    """The tester's report: ``check`` exited 0 and ``leads update`` said OK."""
    plugins = tmp_path / "exits"
    plugins.mkdir()
    (plugins / "quitter.py").write_text(
        "import sys\nfrom sharetui import hookimpl\n\n"
        "@hookimpl\ndef sharetui_check_access(user):\n    sys.exit(0)\n",
        encoding="utf-8",
    )
    lead = bank.lead.id

    checked = cli("--plugins-dir", plugins, "check", "admin", "lead", lead, "--json")
    assert checked.exit_code == 1, checked.stdout
    assert "denied: quitter: access check failed (SystemExit) (read)" in checked.json()["reasons"]

    updated = cli("--plugins-dir", plugins, "leads", "update", lead, "--name", "Changed", user="admin")
    assert updated.exit_code == 1, (updated.stdout, updated.stderr)
    assert Lead.get_by_id(lead).name == "Mira Demir"


# -- the user's own Ctrl-C still stops the program ------------------------------------------


@pytest.fixture
def ctrl_c_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in a terminal. A shell starts a background job
    (``pytest &``, as CI runs the two suites side by side) with SIGINT ignored, and Python
    then leaves it ignored: the signal would never reach the code under test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _ctrl_c_soon() -> threading.Timer:
    """A real SIGINT to this process in 20 ms (it reaches the main thread)."""
    timer = threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_a_real_ctrl_c_during_a_rule_set_stops_the_program(bank, ctrl_c_interrupts) -> None:
    class SlowRules:
        @hookimpl(tryfirst=True)
        def sharetui_access_level(self, user_id, record, now):
            time.sleep(2)

    limits(bank.core, check_ms=5000)
    with plugin_registered(bank.core, SlowRules(), name="slow-rules"):
        timer = _ctrl_c_soon()
        with pytest.raises(KeyboardInterrupt) as caught:
            bank.core.access.can("admin", bank.lead, "read")
        timer.join()
    assert users_interrupt(caught.value)
    assert errors_of("slow-rules") == []  # not the plugin's failure


@pytest.mark.parametrize("alarm", [True, False], ids=["in-place-under-the-alarm", "waiting-for-a-worker"])
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_a_real_ctrl_c_during_an_access_check_stops_the_program(
    bank, gate, alarm, monkeypatch: pytest.MonkeyPatch, ctrl_c_interrupts
) -> None:
    if not alarm:  # as when SIGALRM belongs to somebody else
        monkeypatch.setattr(ALARM, "_can", False)
    check = SimpleNamespace(sharetui_check_access=hookimpl(lambda user: gate.wait(2)))
    limits(bank.core, check_ms=5000)
    with plugin_registered(bank.core, check, name="slow-check"):
        timer = _ctrl_c_soon()
        with pytest.raises(KeyboardInterrupt):
            bank.core.access.can("admin", bank.lead, "read")
        timer.join()
    assert errors_of("slow-check") == []


def test_a_keyboard_interrupt_raised_by_code_is_not_the_users() -> None:
    try:
        _keyboard_interrupt()
    except KeyboardInterrupt as exc:
        assert not users_interrupt(exc)
    assert not users_interrupt(SystemExit(0))


# -- budgets -------------------------------------------------------------------------------


@pytest.fixture(params=["main thread", "other thread"])
def caller(request) -> Callable[[Callable[[], Any]], Any]:
    """Run a step on the main thread (a call that runs out of time is cut short by
    the alarm) or on another thread, as a TUI worker does (the call runs on a host
    worker thread and is given up)."""

    def on_main(step: Callable[[], Any]) -> Any:
        return step()

    def on_other(step: Callable[[], Any]) -> Any:
        out: dict[str, Any] = {}

        def target() -> None:
            try:
                out["value"] = step()
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                out["error"] = exc

        thread = threading.Thread(target=target)
        thread.start()
        thread.join(10)
        if "error" in out:
            raise out["error"]
        return out["value"]

    on_main.where = "main"  # type: ignore[attr-defined]
    on_other.where = "other"  # type: ignore[attr-defined]
    return on_main if request.param == "main thread" else on_other


def test_a_slow_access_check_denies_within_its_budget_and_its_late_answer_is_ignored(
    bank, gate, caller
) -> None:
    asked: list[int] = []
    answered: list[str] = []

    def slow(user):
        asked.append(1)
        gate.wait(5)
        answered.append(threading.current_thread().name)
        return allow("too late to count")

    limits(bank.core, check_ms=50, failure_limit=100)
    access = bank.core.access

    def four_checks() -> float:
        started = time.perf_counter()
        assert not access.can("admin", bank.lead, "read")
        assert not access.can("priya", bank.lead, "edit")
        assert access.level("daniel", bank.lead) is Access.NONE  # edit, then read: two calls
        return time.perf_counter() - started

    with plugin_registered(bank.core, SimpleNamespace(sharetui_check_access=hookimpl(slow)), name="slow"):
        took = caller(four_checks)
        assert took < 1.0, f"four 50 ms budgets took {took:.2f} s"
        denial = "slow: access check took longer than 50 ms (read)"
        assert denial in caller(lambda: access.explain("admin", bank.lead, actor=None).denials)
        gate.set()
        if caller.where == "main":
            assert answered == []  # each call was cut short where it waited
        else:
            # The late answers come now, on the host's threads, and count for nothing.
            deadline = time.monotonic() + 5
            while len(answered) < len(asked) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert answered and set(answered) == {"sharetui-plugin-call"}
        assert len(asked) == 6
        assert caller(lambda: access.can("admin", bank.lead, "read"))  # in time now: its allow counts
    [recorded] = errors_of("slow")
    assert recorded["hook"] == "sharetui_check_access"
    assert recorded["error"] == "TimeoutError: no answer within its 50 ms budget"
    assert recorded["count"] == 6
    assert access.can("admin", bank.lead, "edit")


def test_a_slow_share_validator_refuses_within_its_budget(bank, gate, caller) -> None:
    validator = SimpleNamespace(sharetui_validate_share=hookimpl(lambda request: gate.wait(5) and None))
    limits(bank.core, check_ms=50)

    def share() -> tuple[Any, float]:
        started = time.perf_counter()
        result = bank.core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="1d")
        return result, time.perf_counter() - started

    with plugin_registered(bank.core, validator, name="slow"):
        result, took = caller(share)
    assert took < 1.0, f"a 50 ms budget held the share (and its write lock) for {took:.2f} s"
    assert (result.ok, result.reason) == (False, "slow: share check took longer than 50 ms")
    assert not Grant.select().exists()
    assert ShareRequest.get_by_id(result.request_id).status == "failed"
    assert errors_of("slow")[0]["hook"] == "sharetui_validate_share"


def test_a_slow_rule_set_denies_when_it_answers(bank) -> None:
    """The rule set runs in the caller's transaction, on its thread: it cannot be cut
    short, but an answer later than the budget is not used."""

    class SlowRules:
        @hookimpl(tryfirst=True)
        def sharetui_access_level(self, user_id, record, now):
            time.sleep(0.08)
            return AccessDecision(Access.EDIT, {"slow": Access.EDIT}, now, None)

    limits(bank.core, check_ms=50)
    with plugin_registered(bank.core, SlowRules(), name="slow-rules"):
        assert not bank.core.access.can("admin", bank.lead, "read")
    assert errors_of("slow-rules")[0]["error"] == "TimeoutError: answered after its 50 ms budget"


def test_a_slow_action_fails_and_its_writes_roll_back(bank) -> None:
    limits(bank.core, action_ms=50)
    with plugin_registered(bank.core, Poker(lambda: time.sleep(0.08)), name="poker"):
        [report] = poke(bank)
    assert report.status == "failed"
    assert "answered after its 50 ms budget" in report.reason
    assert not Grant.select().exists()


def test_a_slow_listener_is_given_up_on_and_the_change_stands(bank, gate, caller) -> None:
    listener = SimpleNamespace(sharetui_share_granted=hookimpl(lambda event: gate.wait(5)))
    limits(bank.core, action_ms=50)

    def share() -> tuple[Any, float]:
        started = time.perf_counter()
        result = bank.core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="1d")
        return result, time.perf_counter() - started

    with plugin_registered(bank.core, listener, name="slow"):
        result, took = caller(share)
    assert result.ok and took < 1.0
    assert bank.core.access.can("sofia", bank.lead, "read")
    assert errors_of("slow")[0]["error"] == "TimeoutError: no answer within its 50 ms budget"


def test_a_check_that_swallows_the_alarm_is_still_late(bank) -> None:
    def stubborn(user):
        deadline = time.monotonic() + 0.15
        while time.monotonic() < deadline:
            with contextlib.suppress(BaseException):  # the misbehaviour under test
                time.sleep(0.01)
        return allow("I am not late")

    limits(bank.core, check_ms=50)
    with plugin_registered(bank.core, SimpleNamespace(sharetui_check_access=hookimpl(stubborn)), name="s"):
        assert not bank.core.access.can("daniel", bank.lead, "read")
    assert errors_of("s")[0]["error"] == "TimeoutError: no answer within its 50 ms budget"


def test_a_fast_plugin_is_unaffected_by_the_budget(bank) -> None:
    limits(bank.core, check_ms=50, failure_limit=2)
    check = SimpleNamespace(sharetui_check_access=hookimpl(lambda user: deny("no") if user == "x" else None))
    with plugin_registered(bank.core, check, name="quick"):
        for _ in range(20):
            assert bank.core.access.can("admin", bank.lead, "edit")
        assert bank.core.plugins.plugins["quick"].state == "active"
    assert errors_of("quick") == []


# -- set aside -------------------------------------------------------------------------------


class Flaky:
    """An access check that fails while ``failing`` and otherwise denies ruth."""

    def __init__(self) -> None:
        self.failing = True
        self.calls = 0

    @hookimpl
    def sharetui_check_access(self, user):
        self.calls += 1
        if self.failing:
            raise RuntimeError("rules server down")
        return deny("ruth is on leave") if user.username == "ruth" else None


def test_a_plugin_that_keeps_failing_is_set_aside_and_still_denies(bank) -> None:
    limits(bank.core, failure_limit=3)
    flaky = Flaky()
    access = bank.core.access
    host = bank.core.plugins
    with plugin_registered(bank.core, flaky, name="flaky"):
        for _ in range(3):
            assert not access.can("admin", bank.lead, "read")
        info = host.plugins["flaky"]
        assert (info.state, flaky.calls, info.failures_in_a_row) == ("set aside", 3, 3)
        assert info.set_aside.startswith("3 failures in a row, the last: sharetui_check_access: RuntimeError")
        assert info.set_aside_at == "2026-03-02T09:00:00Z"
        assert info.errors[-1].startswith("set aside until restart: 3 failures in a row")
        as_dict = info.as_dict()
        assert (as_dict["state"], as_dict["failures"], as_dict["set_aside"]["reason"]) == (
            "set aside",
            3,
            info.set_aside,
        )

        # Set aside, it is not called any more — and its checks deny, for everyone.
        flaky.failing = False
        for who in ("admin", "priya", "daniel"):
            assert not access.can(who, bank.lead, "read")
        assert access.level("admin", bank.lead) is Access.NONE
        assert "flaky: access check not run: plugin set aside until restart (read)" in (
            access.explain("admin", bank.lead, actor=None).denials
        )
        assert flaky.calls == 3
    [set_aside] = [e for e in errors_of("flaky") if e["hook"] == "set aside"]
    assert set_aside["error"] == info.set_aside
    # A new registration (a restart) calls it again.
    with plugin_registered(bank.core, flaky, name="flaky"):
        assert access.can("admin", bank.lead, "read")
        assert not access.can("ruth", bank.lead, "read")


def test_only_failures_in_a_row_count(bank) -> None:
    limits(bank.core, failure_limit=3)
    flaky = Flaky()
    access = bank.core.access
    with plugin_registered(bank.core, flaky, name="flaky"):
        for _ in range(4):
            flaky.failing = True
            access.can("admin", bank.lead, "read")
            access.can("admin", bank.lead, "read")
            flaky.failing = False
            assert access.can("admin", bank.lead, "read")  # a sound answer starts the count again
        info = bank.core.plugins.plugins["flaky"]
        assert (info.state, info.failures, info.failures_in_a_row) == ("active", 8, 0)


def test_a_slow_plugin_is_set_aside_after_its_timeouts(bank, gate) -> None:
    calls: list[int] = []

    def slow(user):
        calls.append(1)
        gate.wait(5)

    limits(bank.core, check_ms=30, failure_limit=2)
    access = bank.core.access
    with plugin_registered(bank.core, SimpleNamespace(sharetui_check_access=hookimpl(slow)), name="slow"):
        started = time.perf_counter()
        for _ in range(50):  # a 50-row list: two budgets, then denials at once
            assert not access.can("admin", bank.lead, "read")
        took = time.perf_counter() - started
        assert len(calls) == 2
        assert took < 1.0, took
        assert bank.core.plugins.plugins["slow"].state == "set aside"


def test_a_set_aside_rule_set_denies(bank) -> None:
    class Rules:
        def __init__(self) -> None:
            self.failing = True

        @hookimpl(tryfirst=True)
        def sharetui_access_level(self, user_id, record, now):
            if self.failing:
                raise RuntimeError("no rules today")
            return None  # no opinion: the built-in rules decide

    rules = Rules()
    limits(bank.core, failure_limit=2)
    access = bank.core.access
    with plugin_registered(bank.core, rules, name="rules"):
        assert not access.can("admin", bank.lead, "read")
        assert not access.can("admin", bank.lead, "read")
        rules.failing = False
        # It would now let the built-in rules answer, but it is set aside: everything denies.
        assert not access.can("admin", bank.lead, "read")
        assert access.level("priya", bank.lead) is Access.NONE
    assert access.can("admin", bank.lead, "read")


def test_a_set_aside_validator_refuses_every_share(bank) -> None:
    def validate(request):
        raise RuntimeError("down")

    limits(bank.core, failure_limit=1)
    with plugin_registered(bank.core, SimpleNamespace(sharetui_validate_share=hookimpl(validate)), name="v"):
        first = bank.core.sharing.share("lead", bank.lead.id, "sofia", requester=bank.admin, duration="1d")
        second = bank.core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.admin, duration="1d")
    assert first.reason == "v: share check failed (RuntimeError)"
    assert second.reason == "v: share check not run: plugin set aside until restart"
    assert not Grant.select().exists()


def test_a_set_aside_action_fails_without_being_called(bank) -> None:
    def fail() -> None:
        raise RuntimeError("down")

    limits(bank.core, failure_limit=2)
    poker = Poker(fail)
    with plugin_registered(bank.core, poker, name="poker"):
        reports = poke(bank, times=3)
    assert [r.status for r in reports] == ["failed", "failed", "failed"]
    assert poker.ran == 2
    assert "plugin poker is set aside until restart" in reports[2].reason
    assert not Grant.select().exists()


def test_a_set_aside_listener_is_not_called(bank) -> None:
    calls: list[str] = []

    def granted(event):
        calls.append(event.user)
        raise RuntimeError("down")

    limits(bank.core, failure_limit=1)
    with plugin_registered(bank.core, SimpleNamespace(sharetui_share_granted=hookimpl(granted)), name="l"):
        for who in ("sofia", "daniel"):
            assert bank.core.sharing.share("lead", bank.lead.id, who, requester=bank.admin, duration="1d").ok
    assert calls == ["sofia"]


def test_built_in_plugins_are_never_set_aside(core) -> None:
    limits(core, failure_limit=1)
    host = core.plugins
    for _ in range(3):
        host.record_error("builtin-automation", "action notify", "RuntimeError: x")
    assert host.plugins["builtin-automation"].state == "active"

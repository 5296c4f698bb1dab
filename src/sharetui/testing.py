"""Helpers for testing sharetui plugins the way sharetui tests itself (guide:
``docs/plugins.md``, "Testing a plugin").

    from sharetui.testing import company, plugin_registered, temporary_core

    def test_my_check(tmp_path):
        with temporary_core(tmp_path, now="2026-03-02T20:00:00Z") as core:
            people = company(core)
            with plugin_registered(core, my_plugin):
                assert not core.access.can("daniel", people.lead, "edit")

- :func:`temporary_core`: a throwaway, migrated SQLite database with a frozen clock
  and only the default plugins (never what is installed on the machine);
- :func:`company`: named people and records (:class:`Company` lists them);
- :func:`plugin_registered`: your plugin registered for one block;
- :func:`fire_trigger`, :func:`process_events`: fire a trigger and run the
  automations it starts, as ``sharetui worker`` would;
- :func:`run_action`: run one action the way an automation step does;
- :func:`as_user`: the services (``sharetui.sdk.Services``) acting for one person;
- :func:`advance`: move the frozen clock (``advance(core, "3d")``).

Or, in a ``conftest.py``: ``pytest_plugins = ["sharetui.testing"]`` gives the
fixtures ``sharetui_clock``, ``sharetui_core`` and ``sharetui_company``.

This module is for tests: it uses the core directly, which plugins never do. The
product never imports it (an import-linter contract says so).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sharetui.clock import FrozenClock, parse_instant
from sharetui.core.service import Core
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.host import PluginHost
from sharetui.runtime import open_core
from sharetui.sdk.types import ActionContext

DEFAULT_NOW = "2026-03-02T09:00:00Z"  # a Monday morning

__all__ = [
    "DEFAULT_NOW",
    "Company",
    "action_context",
    "advance",
    "as_user",
    "company",
    "fire_trigger",
    "frozen_clock",
    "plugin_registered",
    "process_events",
    "run_action",
    "small_company",
    "temporary_core",
]


def action_context(
    core: Core,
    plugin: str,
    record: RecordRef | None,
    *,
    trigger_data: dict[str, Any] | None = None,
    run_id: int | None = 1,
    step: int = 0,
    dry_run: bool = False,
    acting_for: Any = None,
) -> ActionContext:
    """The ``ActionContext`` an automation run would hand ``plugin``'s action: the
    services acting for run ``run_id``, and the plugin's own state store.

    ``acting_for``: the person whose change fired the run (a username or a user), whose
    share and revoke requests the services make; ``None``: no person (a schedule)."""
    from sharetui.core.facade import Acting, PluginServices, PluginStateStore

    person = core.users.get(acting_for) if acting_for is not None else None
    acting = Acting(run_id=run_id, on_behalf_of=person)
    return ActionContext(
        services=PluginServices(core, acting),
        record=record,
        trigger_data=trigger_data or {},
        run_id=run_id,
        step=step,
        dry_run=dry_run,
        plugin_state=PluginStateStore(core, plugin),
        acting_for=acting.acting_for,
    )


def frozen_clock(at: str | datetime = DEFAULT_NOW) -> FrozenClock:
    """A clock that stands still until you ``advance()`` or ``set()`` it."""
    return FrozenClock(parse_instant(at) if isinstance(at, str) else at)


@contextmanager
def temporary_core(
    directory: str | Path | None = None,
    *,
    now: str | datetime | FrozenClock = DEFAULT_NOW,
    plugins: PluginHost | None = None,
) -> Iterator[Core]:
    """A throwaway SQLite database (migrated) with a frozen clock and only the
    default plugins (never what is installed on the machine), as a Core."""
    clock = now if isinstance(now, FrozenClock) else frozen_clock(now)
    host = plugins or PluginHost.load(entry_points=False)
    with tempfile.TemporaryDirectory() if directory is None else _keep(Path(directory)) as where:
        core = open_core(f"sqlite:///{Path(where) / 'sharetui-test.db'}", clock, plugins=host)
        try:
            yield core
        finally:
            core.close()


@contextmanager
def _keep(path: Path) -> Iterator[str]:
    path.mkdir(parents=True, exist_ok=True)
    yield str(path)


@contextmanager
def plugin_registered(target: Core | PluginHost, plugin: Any, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or an object with hookimpls) for the block only.

    Its triggers and actions are registered too, and removed afterwards.
    Raises ``ValueError`` when the host rejected it (the reason is in the message).
    """
    host = target.plugins if isinstance(target, Core) else target
    plugin_name = (
        name or getattr(plugin, "PLUGIN_NAME", None) or getattr(plugin, "__name__", None) or repr(plugin)
    )
    if not host.register(plugin, name=plugin_name):
        errors = host.plugins.get(plugin_name)
        raise ValueError(f"plugin {plugin_name} was rejected: {errors.errors if errors else '?'}")
    try:
        yield plugin_name
    finally:
        host.unregister(plugin_name)


@dataclass
class Company:
    """The people and records :func:`company` makes (each user is the stored user;
    ``people.priya.username == "priya"``).

    People (role, sales groups):

    - ``admin`` — admin: reads and edits everything, manages automations;
    - ``manager`` — ``ruth``, sales_manager: reads and edits everything, shares;
    - ``marketing`` — ``nadia``, marketing: reads everything, edits nothing;
    - ``priya`` (also ``owner``) — sales, group "Pre-Sales" (manage): owns the records;
    - ``daniel`` — sales, group "Sales" (manage): receives shares;
    - ``sofia`` — sales, group "Sales" (modify);
    - ``wei`` — sales, group "Sales" (view).

    Records (``RecordRef``):

    - ``lead`` — "Mira Demir", company "Demir Textiles", stage "new", owner priya,
      custom fields ``{"score": 40}``;
    - ``closed_lead`` — "Oak & Pine Ltd", stage "Closed", owner priya;
    - ``opportunity`` — "Demir home loan" on ``lead``, type "Home Loan", stage
      "prospecting", amount 250000, owner priya;
    - ``meeting`` — the id of a "Meeting Scheduled" activity on ``lead``, owned by daniel.

    :func:`small_company` (older) makes the same minus nadia, wei and the closed lead
    (those are then None).
    """

    core: Core
    admin: Any
    manager: Any
    owner: Any  # priya
    daniel: Any
    sofia: Any
    lead: RecordRef
    opportunity: RecordRef
    meeting: int
    marketing: Any = None
    wei: Any = None
    closed_lead: RecordRef | None = None

    @property
    def priya(self) -> Any:
        return self.owner


def company(core: Core) -> Company:
    """Make the people and records :class:`Company` lists, and return them."""
    made = small_company(core)
    users = core.users
    made.marketing = users.add("nadia", role="marketing", actor=made.admin)
    made.wei = users.add("wei", role="sales", groups={"Sales": "view"}, actor=made.admin)
    records = core.records
    records.update_record(made.lead, actor=made.admin, fields={"score": 40})
    records.update_record(made.opportunity, actor=made.admin, values={"amount": 250000})
    closed = records.add_lead(
        name="Oak & Pine Ltd", company="Oak & Pine", stage="Closed", owner=made.owner, actor=made.admin
    )
    made.closed_lead = RecordRef(EntityType.LEAD, closed.id)
    core.automations.process_pending()  # the setup's own events are not the test's
    return made


def small_company(core: Core) -> Company:
    """Admin, a sales manager, three sales users in two groups, a lead with a
    meeting owned by daniel, and an opportunity (see :class:`Company`)."""
    users = core.users
    admin = users.add("admin", role="admin", actor=None)
    manager = users.add("ruth", role="sales_manager", actor=admin)
    priya = users.add("priya", role="sales", groups={"Pre-Sales": "manage"}, actor=admin)
    daniel = users.add("daniel", role="sales", groups={"Sales": "manage"}, actor=admin)
    sofia = users.add("sofia", role="sales", groups={"Sales": "modify"}, actor=admin)
    records = core.records
    records.add_activity_type("Meeting Scheduled", actor=admin)
    lead = records.add_lead(name="Mira Demir", company="Demir Textiles", owner=priya, actor=admin)
    opp = records.add_opportunity(
        lead=lead.id, name="Demir home loan", type="Home Loan", owner=priya, actor=admin
    )
    meeting = records.post_activity(("lead", lead.id), type="Meeting Scheduled", owner=daniel, actor=priya)
    return Company(
        core,
        admin,
        manager,
        priya,
        daniel,
        sofia,
        RecordRef(EntityType.LEAD, lead.id),
        RecordRef(EntityType.OPPORTUNITY, opp.id),
        meeting.id,
    )


def _user(core: Core, who: Any) -> Any:
    return None if who is None else core.users.get(who if isinstance(who, str | int) else who.id)


def process_events(core: Core) -> list[Any]:
    """Run the automations waiting events start, as ``sharetui worker`` would; returns
    their run reports (``status``, ``reason``, ``trace``)."""
    return core.automations.process_pending()


def fire_trigger(
    core: Core, trigger: str, record: RecordRef | None, data: dict[str, Any] | None = None, *, by: Any = None
) -> list[Any]:
    """Fire ``trigger`` about ``record`` with ``data`` (as ``services.fire`` does; ``by``:
    the person whose change it stands for) and process the events: the run reports."""
    core.automations.fire(trigger, record, dict(data or {}), actor=_user(core, by))
    return process_events(core)


def run_action(
    core: Core,
    action: str,
    record: RecordRef | None,
    config: dict[str, Any] | None = None,
    *,
    acting_for: Any = None,
    trigger_data: dict[str, Any] | None = None,
    dry_run: bool = False,
    run_id: int | None = 1,
) -> Any:
    """Run the registered action ``action`` once, as an automation step does: the
    configuration validated against its schema (``ValueError`` listing the errors)
    with defaults filled in, in a transaction of its own, through the host's guard
    (its budget, failing closed). Returns the ``Outcome``: an action that raises gives
    a failed one whose writes rolled back, as in a run."""
    from sharetui.sdk.types import validate_config

    kind = core.plugins.actions.get(action)
    if kind is None:
        raise ValueError(
            f"no action {action!r} is registered (known: {', '.join(sorted(core.plugins.actions))})"
        )
    given = dict(config or {})
    errors = validate_config(kind.config, given, as_user(core, None).users)
    if errors:
        raise ValueError("; ".join(errors))
    defaults = {k: f.default for k, f in kind.config.items() if f.default is not None}
    ctx = action_context(
        core,
        kind.plugin,
        record,
        trigger_data=trigger_data,
        run_id=run_id,
        dry_run=dry_run,
        acting_for=acting_for,
    )
    from sharetui.sdk.types import Outcome

    try:
        with core.dispatch.held() as held, core.db.atomic() as txn:
            outcome = kind.run(ctx, {**defaults, **given})
            if dry_run:
                held.clear()
                txn.rollback()
    except Exception as exc:  # noqa: BLE001 - as the engine: a raising action fails its step
        return Outcome.failed(f"action {action} raised {type(exc).__name__}: {exc}")
    return outcome


def as_user(core: Core, who: Any) -> Any:
    """The services (``sharetui.sdk.Services``) acting for ``who`` (a username or a user;
    None: the system), as a ``sharetui_record_changed`` hook gets them for the person
    whose change it heard of: ``as_user(core, "priya").records.update(lead, fields=...)``
    changes the lead as priya, by her rights."""
    from sharetui.core.facade import Acting, PluginServices
    from sharetui.domain.roles import Source

    return PluginServices(core, Acting(source=Source.PLUGIN, on_behalf_of=_user(core, who)))


def advance(core: Core, by: str | timedelta) -> datetime:
    """Move the core's frozen clock forward by ``by`` (``"3d"``, ``"2h"``, or a
    ``timedelta``) and return the new time. Raises ``TypeError`` for a clock that
    is not frozen."""
    from sharetui.domain.durations import parse_duration

    clock = core.clock
    if not isinstance(clock, FrozenClock):
        raise TypeError("advance() needs a frozen clock (temporary_core gives one)")
    if isinstance(by, timedelta):
        return clock.advance(by)
    clock.set(parse_duration(by).end_from(clock.now()))
    return clock.now()


try:  # pytest fixtures, for ``pytest_plugins = ["sharetui.testing"]``
    import pytest
except ImportError:  # pragma: no cover - pytest is optional at run time
    pass
else:

    @pytest.fixture
    def sharetui_clock() -> FrozenClock:
        return frozen_clock()

    @pytest.fixture
    def sharetui_core(tmp_path: Path, sharetui_clock: FrozenClock) -> Iterator[Core]:
        with temporary_core(tmp_path, now=sharetui_clock) as core:
            yield core

    @pytest.fixture
    def sharetui_company(sharetui_core: Core) -> Company:
        return company(sharetui_core)

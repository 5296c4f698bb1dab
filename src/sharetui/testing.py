"""Helpers for testing sharetui plugins the way sharetui tests itself.

    from sharetui.testing import temporary_core, plugin_registered, small_company

    def test_my_check(tmp_path):
        with temporary_core(tmp_path, now="2026-03-02T20:00:00Z") as core:
            bank = small_company(core)
            with plugin_registered(core, my_plugin):
                assert not core.access.can("daniel", bank.lead, "read")

Or, in a ``conftest.py``: ``pytest_plugins = ["sharetui.testing"]`` gives the
fixtures ``sharetui_clock``, ``sharetui_core`` and ``sharetui_company``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
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
    "frozen_clock",
    "plugin_registered",
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
    """A small company made by :func:`small_company`."""

    core: Core
    admin: Any
    manager: Any
    owner: Any  # priya, Pre-Sales manager, owns ``lead``
    daniel: Any  # Sales, receives shares
    sofia: Any  # Sales
    lead: RecordRef
    opportunity: RecordRef
    meeting: int  # a "Meeting Scheduled" activity on ``lead`` owned by daniel


def small_company(core: Core) -> Company:
    """Admin, a sales manager, three sales users in two groups, a lead with a
    meeting owned by daniel, and an opportunity."""
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
        return small_company(sharetui_core)

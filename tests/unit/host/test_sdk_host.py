"""The plugin host (docs/plugins.md): load order, isolation, access checks,
share vetoes, lifecycle events, registries and ``sharetui.testing``.

Plugins are written here the two ways authors write them: small modules in a
``tmp_path`` directory (or a fake installed distribution for entry points),
and objects with ``@hookimpl`` methods registered for one block with
``sharetui.testing.plugin_registered``. Nothing installed on the machine is
ever loaded: every host is built with ``entry_points=False`` unless the test
installs its own fake distribution.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sharetui import hookimpl
from sharetui.clock import parse_instant
from sharetui.core.history import HistoryFilter
from sharetui.db import migrations
from sharetui.db.models import Grant, Lead, ShareRequest
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.host import PluginHost
from sharetui.host.isolation import Limits
from sharetui.host.state import stored_errors
from sharetui.sdk import (
    AccessDecision,
    ConfigField,
    Outcome,
    ShareEvent,
    ShareRequestInfo,
    UserInfo,
    Verdict,
    allow,
    deny,
    validate_config,
)
from sharetui.testing import DEFAULT_NOW, plugin_registered, small_company, temporary_core

BUILTINS = ["builtin-access", "builtin-automation"]

VETO = """
from sharetui import hookimpl

@hookimpl
def sharetui_validate_share(request):
    return "no shares today"
"""


# -- helpers -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _forget_plugin_modules() -> Iterator[None]:
    """Directory plugins are imported as ``sharetui_plugin_<name>``: drop ours afterwards."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("sharetui_plugin_", "fake_mod_")):
            del sys.modules[name]


def write_plugin(directory: Path, name: str, source: str) -> Path:
    """Write one plugin module ``<directory>/<name>.py``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, str]]:
    """Make a fake installed distribution with ``sharetui`` entry points.

    ``install(entry_points={"fake": SOURCE, ...})`` writes
    ``fakeplug-1.0.dist-info/{METADATA,entry_points.txt}`` and one module per
    entry point into a fresh folder on ``sys.path``; returns entry name ->
    module name.
    """

    def make(entry_points: dict[str, str], *, dist: str = "fakeplug", version: str = "1.0") -> dict[str, str]:
        root = tmp_path / f"site-{uuid.uuid4().hex[:8]}"
        info = root / f"{dist}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        modules = {name: f"fake_mod_{uuid.uuid4().hex[:8]}" for name in entry_points}
        lines = "".join(f"{name} = {modules[name]}\n" for name in entry_points)
        (info / "entry_points.txt").write_text(f"[sharetui]\n{lines}", encoding="utf-8")
        for name, source in entry_points.items():
            (root / f"{modules[name]}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        monkeypatch.syspath_prepend(str(root))
        return modules

    return make


def share(core, who: str, *, requester=None, **kwargs):
    """Share the first lead (the bank's, or the small company's) with ``who``."""
    kwargs.setdefault("duration", "2d")
    first = Lead.select().order_by(Lead.id).first()
    return core.sharing.share("lead", first.id, who, requester=requester, **kwargs)


def request_info(**changes: Any) -> ShareRequestInfo:
    start = parse_instant(DEFAULT_NOW)
    values: dict[str, Any] = {
        "request_id": 1,
        "record": RecordRef(EntityType.LEAD, 1),
        "recipient": "daniel",
        "requester": "admin",
        "access": Access.READ,
        "duration": "1d",
        "starts_at": start,
        "expires_at": start + timedelta(days=1),
        "context_activity_id": None,
        "source": "manual",
        "renewal": False,
    }
    values.update(changes)
    return ShareRequestInfo(**values)


def errors_of(plugin: str) -> list[dict[str, Any]]:
    """The failures of ``plugin`` stored in the database (what ``sharetui plugins`` shows)."""
    return [e for e in stored_errors() if e["plugin"] == plugin]


def host_errors(core, plugin: str) -> list[str]:
    """The failures of ``plugin`` the host remembers in memory."""
    return core.plugins.plugins[plugin].errors


# -- load order and names ---------------------------------------------------------------


def test_directories_load_before_entry_points_which_load_before_the_defaults(tmp_path, install) -> None:
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "fake", VETO)
    modules = install(
        {
            # Same name as the directory plugin: skipped without being imported.
            "fake": "raise RuntimeError('an entry point shadowed by a directory must not be imported')",
            "extra": VETO,
        }
    )

    host = PluginHost.load(plugin_dirs=[plugins], entry_points=True)

    registered = [name for name, _ in host.pm.list_name_plugin()]
    assert registered == ["fake", "extra", *BUILTINS]
    assert host.plugins["fake"].source == "directory"
    assert host.plugins["extra"].source == "entry point"
    assert [p.source for p in host.info() if p.loaded] == ["directory", "entry point", "builtin", "builtin"]
    shadowed = host.plugins["fake (entry point)"]
    assert not shadowed.loaded
    assert shadowed.errors == ["a plugin named 'fake' is already loaded from directory"]
    assert modules["fake"] not in sys.modules


def test_plugin_name_in_a_module_names_the_plugin(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    path = write_plugin(plugins, "x_file", 'PLUGIN_NAME = "nice-name"\n__version__ = "3.2"\n' + VETO)
    write_plugin(plugins, "y_file", 'PLUGIN_NAME = "nice-name"\n' + VETO)

    host = PluginHost.load(plugin_dirs=[plugins], entry_points=False)

    assert "x_file" not in host.plugins
    info = host.plugins["nice-name"]
    assert (info.source, info.version, info.location) == ("directory", "3.2", str(path))
    assert info.hooks == ["sharetui_validate_share"]
    # A second module claiming the same name is refused, not merged.
    assert host.plugins["nice-name (directory)"].errors == [
        "a plugin named 'nice-name' is already loaded from directory"
    ]
    assert host.validate_share(request_info()) == "nice-name: no shares today"


def test_a_directory_plugin_named_like_a_default_plugin_replaces_it(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    write_plugin(
        plugins,
        "my_automation",
        """
        from sharetui import hookimpl
        PLUGIN_NAME = "builtin-automation"

        @hookimpl
        def sharetui_register_triggers(register):
            register("only_mine", "the only trigger")
        """,
    )

    host = PluginHost.load(plugin_dirs=[plugins], entry_points=False)
    with temporary_core(tmp_path / "db", plugins=host) as core:
        assert core.plugins.plugins["builtin-automation"].source == "directory"
        assert sorted(core.plugins.triggers) == ["only_mine"]
        assert core.plugins.actions == {}


def test_entry_point_plugins_are_found_only_when_asked(install) -> None:
    install(
        {
            "fake": VETO,
            "fake-broken": "import sharetui_no_such_module_anywhere\n",
        }
    )

    host = PluginHost.load(entry_points=True)

    info = host.plugins["fake"]
    assert (info.source, info.version, info.location) == ("entry point", "1.0", "fakeplug 1.0")
    assert info.hooks == ["sharetui_validate_share"]
    assert host.validate_share(request_info()) == "fake: no shares today"
    broken = host.plugins["fake-broken"]
    assert not broken.loaded
    assert broken.errors[0].startswith("import failed: ModuleNotFoundError")

    without = PluginHost.load(entry_points=False)
    assert sorted(without.plugins) == BUILTINS
    assert without.validate_share(request_info()) is None


def test_disabled_plugins_are_blocked_by_name_and_never_imported(
    tmp_path, monkeypatch: pytest.MonkeyPatch, install
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./plugins here
    plugins = tmp_path / "plugins-env"
    write_plugin(plugins, "keep", VETO.replace("no shares today", "kept"))
    write_plugin(plugins, "blocked", "raise RuntimeError('a disabled plugin must not be imported')\n" + VETO)
    modules = install({"fake": "raise RuntimeError('a disabled entry point must not be imported')\n"})
    monkeypatch.setenv("SHARETUI_PLUGINS_DIR", str(plugins))
    monkeypatch.setenv("SHARETUI_DISABLE_PLUGINS", " blocked , fake")

    host = PluginHost.from_environment()

    assert host.plugins["keep"].loaded
    for name in ("blocked", "fake"):
        info = host.plugins[name]
        assert (info.loaded, info.source) == (False, "blocked")
        assert info.errors == ["disabled by SHARETUI_DISABLE_PLUGINS"]
        assert not host.pm.has_plugin(name)
    assert "sharetui_plugin_blocked" not in sys.modules
    assert modules["fake"] not in sys.modules
    assert host.validate_share(request_info()) == "keep: kept"

    # Without the variable the same plugin is imported (and fails loudly).
    monkeypatch.delenv("SHARETUI_DISABLE_PLUGINS")
    again = PluginHost.from_environment().plugins["blocked"]
    assert again.errors[0].startswith("import failed: RuntimeError: a disabled plugin must not be imported")


# -- isolation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def broken(:\n", "import failed: SyntaxError"),
        ("import sharetui_no_such_module_anywhere\n", "import failed: ModuleNotFoundError"),
        ("raise RuntimeError('boom at import')\n", "import failed: RuntimeError: boom at import"),
        ("import sys\nsys.exit(3)\n", "import failed: SystemExit: 3"),
        ("raise KeyboardInterrupt('not the user')\n", "import failed: KeyboardInterrupt: not the user"),
    ],
    ids=["syntax-error", "import-error", "raises", "sys-exit", "keyboard-interrupt"],
)
def test_a_plugin_that_fails_to_import_is_recorded_and_the_others_load(tmp_path, source, error) -> None:
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "a_good", VETO)
    write_plugin(plugins, "broken", source)
    package = plugins / "broken_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(source, encoding="utf-8")
    write_plugin(plugins, "z_good", VETO)

    host = PluginHost.load(plugin_dirs=[plugins], entry_points=False)

    for name in ("broken", "broken_pkg"):
        info = host.plugins[name]
        assert not info.loaded and info.source == "directory"
        assert len(info.errors) == 1 and info.errors[0].startswith(error), info.errors
        assert not host.pm.has_plugin(name)
    assert all(host.plugins[n].loaded for n in ("a_good", "z_good", *BUILTINS))
    assert "sharetui_plugin_broken" not in sys.modules


def test_a_missing_plugin_directory_is_recorded(tmp_path) -> None:
    host = PluginHost.load(plugin_dirs=[tmp_path / "nowhere"], entry_points=False)
    assert host.plugins["nowhere"].errors == [f"plugin directory {tmp_path / 'nowhere'} does not exist"]
    assert all(host.plugins[n].loaded for n in BUILTINS)


class _Typo:
    @hookimpl
    def sharetui_shar_granted(self, event):  # the hook is sharetui_share_granted
        pass

    @hookimpl
    def sharetui_validate_share(self, request):
        return "a rejected plugin must not veto"


class _WrongArgument:
    @hookimpl
    def sharetui_validate_share(self, req):  # the hook's parameter is ``request``
        return "a rejected plugin must not veto"


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [(_Typo(), "sharetui_shar_granted"), (_WrongArgument(), "'sharetui_validate_share'")],
    ids=["unknown-hook", "unknown-argument"],
)
def test_an_invalid_plugin_is_rejected_and_recorded(core, plugin, problem) -> None:
    host = core.plugins
    with (
        pytest.raises(ValueError, match=r"plugin bad-hooks was rejected"),
        plugin_registered(core, plugin, name="bad-hooks"),
    ):
        pass  # pragma: no cover - never entered

    info = host.plugins["bad-hooks"]
    assert not info.loaded
    assert info.errors[0].startswith("rejected: PluginValidationError")
    assert problem in info.errors[0]
    assert not host.pm.has_plugin("bad-hooks")
    assert host.validate_share(request_info()) is None


def test_a_directory_plugin_with_an_unknown_hook_is_rejected_and_the_others_load(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    write_plugin(
        plugins,
        "typo",
        """
        from sharetui import hookimpl

        @hookimpl
        def sharetui_share_grantd(event):
            pass
        """,
    )
    write_plugin(plugins, "vetoer", VETO)

    host = PluginHost.load(plugin_dirs=[plugins], entry_points=False)

    assert host.plugins["typo"].errors[0].startswith("rejected: ")
    assert "sharetui_share_grantd" in host.plugins["typo"].errors[0]
    assert not host.pm.has_plugin("typo")
    assert host.plugins["vetoer"].loaded
    assert host.validate_share(request_info()) == "vetoer: no shares today"


def test_a_hook_that_raises_is_recorded_and_the_others_still_run(core) -> None:
    host = core.plugins

    def answer(text: str) -> SimpleNamespace:
        return SimpleNamespace(sharetui_validate_share=hookimpl(lambda request: text))

    def kaboom(request):
        raise RuntimeError("kaboom")

    raiser = SimpleNamespace(sharetui_validate_share=hookimpl(kaboom))
    with (
        plugin_registered(core, answer("one"), name="first"),
        plugin_registered(core, raiser, name="raiser"),
        plugin_registered(core, answer("two"), name="last"),
    ):
        results = host.call("sharetui_validate_share", request=request_info())
        again = host.call("sharetui_validate_share", request=request_info())

        assert sorted(results) == [("first", "one"), ("last", "two")]
        assert sorted(again) == sorted(results)
        # Recorded once in memory (the same message is not repeated) ...
        [message] = host.plugins["raiser"].errors
        assert message.startswith("sharetui_validate_share: RuntimeError: kaboom at test_sdk_host.py:")
        assert host.plugins["first"].errors == [] and host.plugins["last"].errors == []
    # ... and counted in the database, where `sharetui plugins` finds it later.
    [stored] = errors_of("raiser")
    assert stored["hook"] == "sharetui_validate_share"
    assert stored["error"].startswith("RuntimeError: kaboom")
    assert stored["count"] == 2


# -- access checks -------------------------------------------------------------------------


def _check(fn: Callable[..., Any]) -> SimpleNamespace:
    """A plugin object whose ``sharetui_check_access`` is ``fn``."""
    return SimpleNamespace(sharetui_check_access=hookimpl(fn))


def deny_ruth(user, record, action, decision):
    if user.username == "ruth":
        return deny("ruth is on leave")
    return None


def allow_everyone(user, action):
    return allow(f"open day ({action})")


def test_a_deny_wins_over_the_built_in_level(bank) -> None:
    access = bank.core.access
    assert access.can("ruth", bank.lead, "edit")  # a sales manager edits every record

    with plugin_registered(bank.core, _check(deny_ruth), name="on-leave"):
        assert not access.can("ruth", bank.lead, "read")
        assert not access.can("ruth", bank.lead, "edit")
        assert access.level("ruth", bank.lead) is Access.NONE
        explained = access.explain("ruth", bank.lead, actor=None)
        assert explained.level is Access.NONE
        assert explained.denials == [
            "on-leave: ruth is on leave (read)",
            "on-leave: ruth is on leave (edit)",
        ]
        # Nobody else is affected.
        assert access.can("admin", bank.lead, "edit")
        assert access.level("nadia", bank.lead) is Access.READ

    assert access.can("ruth", bank.lead, "edit")


@pytest.mark.parametrize("deny_first", [True, False], ids=["deny-registered-first", "allow-registered-first"])
def test_a_deny_wins_over_another_plugins_allow_in_any_order(bank, deny_first) -> None:
    plugins = [("on-leave", _check(deny_ruth)), ("open-day", _check(allow_everyone))]
    if not deny_first:
        plugins.reverse()
    access = bank.core.access
    with (
        plugin_registered(bank.core, plugins[0][1], name=plugins[0][0]),
        plugin_registered(bank.core, plugins[1][1], name=plugins[1][0]),
    ):
        assert not access.can("ruth", bank.lead, "read")
        assert access.level("ruth", bank.lead) is Access.NONE
        assert access.explain("ruth", bank.lead, actor=None).level is Access.NONE
        # The allow still works for whoever is not denied.
        assert access.can("daniel", bank.lead, "edit")


def test_an_allow_grants_beyond_the_built_in_rules(bank) -> None:
    def marketing_edits(user, action):
        if user.role == "marketing" and action == "edit":
            return allow("campaign team")
        return None

    access = bank.core.access
    assert not access.can("nadia", bank.lead, "edit")  # marketing reads only

    with plugin_registered(bank.core, _check(marketing_edits), name="campaigns"):
        assert access.can("nadia", bank.lead, "edit")
        assert access.level("nadia", bank.lead) is Access.EDIT
        explained = access.explain("nadia", bank.lead, actor=None)
        assert explained.level is Access.EDIT
        assert "plugin campaigns: campaign team (edit)" in explained.reasons
        assert explained.denials == []
        assert not access.can("daniel", bank.lead, "read")  # no opinion: the built-in rules

    assert not access.can("nadia", bank.lead, "edit")


def _raises(user, record, action, decision):
    raise RuntimeError("rules server down")


@pytest.mark.parametrize(
    ("check", "denial"),
    [
        (_raises, "shaky: access check failed (RuntimeError)"),
        (lambda user: "yes", "shaky: access check returned nonsense"),
        (lambda user: True, "shaky: access check returned nonsense"),
        (lambda user: Verdict("maybe", "?"), "shaky: access check returned nonsense"),  # type: ignore[arg-type]
    ],
    ids=["raises", "string", "true", "unknown-verdict"],
)
def test_an_access_check_that_fails_denies(bank, check, denial) -> None:
    access = bank.core.access
    # More failures than these checks make, so each says why it failed (set aside, see below).
    bank.core.plugins.configure(Limits(failure_limit=100))
    with plugin_registered(bank.core, _check(check), name="shaky"):
        assert not access.can("admin", bank.lead, "read")
        assert not access.can("priya", bank.lead, "edit")  # even the owner
        assert access.level("admin", bank.lead) is Access.NONE
        explained = access.explain("admin", bank.lead, actor=None)
        assert explained.level is Access.NONE
        assert explained.denials == [f"{denial} (read)", f"{denial} (edit)"]
        assert host_errors(bank.core, "shaky")[0].startswith("sharetui_check_access: ")
    assert errors_of("shaky")[0]["hook"] == "sharetui_check_access"
    assert access.can("admin", bank.lead, "edit")


class Territories:
    """A replacement rule set: on lead 1 daniel edits and ruth has nothing;
    elsewhere it has no opinion (the default rules answer)."""

    def __init__(self, lead_id: int) -> None:
        self.lead_id = lead_id
        self.asked = 0

    @hookimpl(tryfirst=True)
    def sharetui_access_level(self, user_id, record, now):
        self.asked += 1
        if record.id != self.lead_id:
            return None
        from sharetui.db.models import User

        user = User.get_by_id(user_id)
        level = {"daniel": Access.EDIT}.get(user.username, Access.NONE)
        info = UserInfo(user.id, user.username, user.role, bool(user.active))
        return AccessDecision(level, {"territory": level} if level else {}, now, info)


def test_a_replacement_rule_set_is_used_instead_of_the_default(bank) -> None:
    other = bank.core.records.add_lead(name="Ewa Nowak", owner=bank.sofia, actor=bank.admin)
    seen: list[dict] = []

    def sources(decision):
        seen.append(dict(decision.sources))

    rules = Territories(bank.lead.id)
    access = bank.core.access
    with (
        plugin_registered(bank.core, rules, name="territories"),
        plugin_registered(bank.core, _check(sources), name="spy"),
    ):
        assert access.can("daniel", bank.lead, "edit")
        assert access.level("daniel", bank.lead) is Access.EDIT
        assert not access.can("ruth", bank.lead, "read")  # replaced: the role no longer counts
        assert access.level("ruth", bank.lead) is Access.NONE
        # None falls through to the default rules.
        assert access.level("ruth", other) is Access.EDIT
        assert access.level("daniel", other) is Access.EDIT  # Sales group manage, with sofia
        assert access.level("kenji", other) is Access.NONE
        # Access checks see the replacement's decision.
        assert {"territory": Access.EDIT} in seen
        assert rules.asked >= 5

    assert access.level("daniel", bank.lead) is Access.NONE
    assert access.level("ruth", bank.lead) is Access.EDIT


def test_lists_and_search_follow_a_replacement_rule_set_as_check_does(bank) -> None:
    """Regression (the gate issue): a plugin's rule set removed group access, `check`
    and `show` denied, and `leads list` (and `--search`) still returned the record's
    name. Lists now ask the rule set row by row when a plugin replaced it."""
    core = bank.core
    other = core.records.add_lead(name="Ewa Nowak", owner=bank.sofia, actor=bank.admin)
    names = {}
    for n in range(7):  # more than a page, so the scan pages on
        names[core.records.add_lead(name=f"Filler {n}", owner=bank.priya, actor=bank.admin).id] = n

    def listed(user: str, **kw) -> list[int]:
        ids, after = [], None
        while True:
            page = core.access.visible(user, "lead", limit=2, after=after, **kw)
            ids += [r.id for r in page.rows]
            if page.next_cursor is None:
                return ids
            after = page.next_cursor

    with plugin_registered(core, Territories(bank.lead.id), name="territories"):
        assert not core.access.can("ruth", bank.lead, "read")
        assert bank.lead.id not in listed("ruth")
        assert bank.lead.id not in listed("ruth", search="Mira")
        assert bank.lead.id in listed("daniel") and bank.lead.id in listed("daniel", search="mira")
        assert other.id in listed("daniel")  # elsewhere the default rules answer
        for user in ("daniel", "ruth", "kenji", "admin"):
            expected = [
                r for r in [bank.lead.id, other.id, *names] if core.access.can(user, ("lead", r), "read")
            ]
            assert sorted(listed(user)) == sorted(expected), user
        page = core.access.visible("daniel", "lead", limit=50)
        assert {r.id: r.reach for r in page.rows}[bank.lead.id] == "rule set territories (edit)"
    assert bank.lead.id in listed("ruth")


def test_explain_uses_the_replacement_rule_set(bank) -> None:
    access = bank.core.access
    with plugin_registered(bank.core, Territories(bank.lead.id), name="territories"):
        assert access.explain("daniel", bank.lead, actor=None).level is access.level("daniel", bank.lead)
        assert access.explain("ruth", bank.lead, actor=None).level is access.level("ruth", bank.lead)


# -- sharetui_validate_share ---------------------------------------------------------------


class Validator:
    """Remembers what it was asked; vetoes whatever ``veto(request)`` returns."""

    def __init__(self, veto: Callable[[ShareRequestInfo], Any] = lambda request: None) -> None:
        self.requests: list[ShareRequestInfo] = []
        self.veto = veto

    @hookimpl
    def sharetui_validate_share(self, request):
        self.requests.append(request)
        return self.veto(request)


def test_a_veto_fails_the_request_keeps_it_in_history_and_grants_nothing(bank) -> None:
    core = bank.core
    vetoer = Validator(lambda r: "no Friday shares" if r.recipient == "daniel" else None)
    with plugin_registered(core, vetoer, name="fridays"):
        result = share(core, "daniel", requester=bank.admin)
        assert (result.ok, result.status) == (False, "failed")
        assert result.reason == "fridays: no Friday shares"
        assert share(core, "sofia", requester=bank.admin).ok  # a veto is per request

    request = ShareRequest.get_by_id(result.request_id)
    assert (request.status, request.reason) == ("failed", "fridays: no Friday shares")
    assert core.sharing.status(result.request_id, actor=None).reason == "fridays: no Friday shares"
    [event] = core.history.query(None, HistoryFilter(user="daniel"))
    assert (event["event"], event["status"], event["reason"]) == (
        "share",
        "failed",
        "fridays: no Friday shares",
    )
    assert event["request_id"] == result.request_id
    assert not Grant.select().where(Grant.user == bank.daniel.id).exists()
    assert not core.access.can("daniel", bank.lead, "read")


def test_a_validator_sees_the_request_and_whether_it_is_a_renewal(bank) -> None:
    core = bank.core
    validator = Validator()
    with plugin_registered(core, validator, name="watcher"):
        first = share(core, "sofia", requester=bank.admin, access="edit", duration="3d")
        bank.core.clock.advance(timedelta(hours=1))
        second = share(core, "sofia", requester=bank.admin, duration="1d")
    assert (first.outcome, second.outcome) == ("granted", "renewed")
    assert [r.renewal for r in validator.requests] == [False, True]
    asked = validator.requests[0]
    assert asked.record == RecordRef(EntityType.LEAD, bank.lead.id)
    assert (asked.recipient, asked.requester, asked.access, asked.duration) == (
        "sofia",
        "admin",
        Access.EDIT,
        "3d",
    )
    assert asked.expires_at - asked.starts_at == timedelta(days=3)
    assert asked.request_id == first.request_id
    assert validator.requests[1].request_id == second.request_id


def test_a_vetoed_renewal_leaves_the_grant_as_it_was(bank) -> None:
    core = bank.core
    first = share(core, "sofia", requester=bank.admin, duration="3d")
    approval = Validator(lambda r: "renewals need approval" if r.renewal else None)
    with plugin_registered(core, approval, name="approvals"):
        again = share(core, "sofia", requester=bank.admin, duration="30d")
    assert (again.ok, again.reason) == (False, "approvals: renewals need approval")
    grant = core.sharing.grants(user=bank.sofia, actor=None)
    assert [(g["id"], g["expires_at"]) for g in grant] == [(first.grant["id"], first.grant["expires_at"])]


def _boom(request):
    raise RuntimeError("policy server down")


@pytest.mark.parametrize(
    ("veto", "reason"),
    [
        (_boom, "strict: share check failed (RuntimeError)"),
        (lambda request: True, "strict: share check returned an invalid answer"),
        (lambda request: "   ", "strict: share check returned an invalid answer"),
    ],
    ids=["raises", "true", "blank"],
)
def test_a_validator_that_fails_refuses_the_share(bank, veto, reason) -> None:
    core = bank.core
    with plugin_registered(core, Validator(veto), name="strict"):
        result = share(core, "sofia", requester=bank.admin)
        assert not result.ok
        assert result.reason == reason
        assert host_errors(core, "strict")[0].startswith("sharetui_validate_share: ")
    assert not Grant.select().exists()
    assert errors_of("strict")[0]["hook"] == "sharetui_validate_share"


# -- lifecycle events ---------------------------------------------------------------------


class Recorder:
    """Listens to every lifecycle hook; notes whether a transaction was still open."""

    def __init__(self, core) -> None:
        self.core = core
        self.events: list[ShareEvent] = []
        self.in_transaction: list[bool] = []

    def _note(self, event: ShareEvent) -> None:
        self.events.append(event)
        self.in_transaction.append(self.core.db.transaction_depth() > 0)

    @hookimpl
    def sharetui_share_granted(self, event):
        self._note(event)

    @hookimpl
    def sharetui_share_renewed(self, event):
        self._note(event)

    @hookimpl
    def sharetui_share_revoked(self, event):
        self._note(event)

    @hookimpl
    def sharetui_share_expired(self, event):
        self._note(event)

    @hookimpl
    def sharetui_share_expiring_soon(self, event):
        self._note(event)

    @hookimpl
    def sharetui_share_request_failed(self, event):
        self._note(event)

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(e.kind, e.user) for e in self.events]

    def take(self) -> list[tuple[str, str | None]]:
        kinds = self.kinds()
        self.events.clear()
        return kinds


def test_each_lifecycle_event_is_delivered_once_after_commit(bank, clock) -> None:
    core = bank.core
    rec = Recorder(core)
    with plugin_registered(core, rec, name="recorder"):
        granted = share(core, "sofia", requester=bank.admin, duration="2d")
        assert rec.take() == [("granted", "sofia")]
        assert share(core, "sofia", requester=bank.admin, duration="2d").outcome == "renewed"
        assert rec.take() == [("renewed", "sofia")]
        core.sharing.revoke("lead", bank.lead.id, "sofia", requester=bank.admin)
        [revoked] = rec.events
        assert (revoked.kind, revoked.reason) == ("revoked", "revoked by admin")
        assert revoked.grant["id"] == granted.grant["id"] and revoked.grant["state"] == "revoked"
        rec.take()

        context = share(core, "daniel", requester=bank.priya, context=bank.meeting.id)
        assert rec.take() == [("granted", "daniel")]
        core.records.delete_activity(bank.meeting.id, actor=bank.admin)
        [ended] = rec.events
        assert (ended.kind, ended.user, ended.reason) == (
            "revoked",
            "daniel",
            f"activity {bank.meeting.id} deleted",
        )
        assert ended.grant["id"] == context.grant["id"]
        rec.take()

        failed = share(core, "nobody", requester=bank.admin)
        [event] = rec.events
        assert (event.kind, event.request_id, event.grant) == ("request_failed", failed.request_id, None)
        assert event.reason == "unknown user 'nobody'"
        rec.take()
        core.sharing.revoke("lead", bank.lead.id, "kenji", requester=bank.admin)
        assert rec.take() == [("request_failed", "kenji")]

        tomas = share(core, "tomas", requester=bank.admin, duration="2d")
        rec.take()
        core.expiry.sweep()
        assert rec.take() == []  # not due yet
        clock.advance(timedelta(days=1, hours=1))
        assert core.expiry.sweep().as_dict() == {"expired": 0, "expiring_soon": 1}
        [soon] = rec.events
        assert (soon.kind, soon.user, soon.reason) == ("expiring_soon", "tomas", "expires soon")
        assert soon.grant["id"] == tomas.grant["id"]
        rec.take()
        core.expiry.sweep()
        assert rec.take() == []  # once per grant
        clock.advance(timedelta(days=1))
        assert core.expiry.sweep().as_dict() == {"expired": 1, "expiring_soon": 0}
        [expired] = rec.events
        assert (expired.kind, expired.user, expired.grant["state"]) == ("expired", "tomas", "expired")
        assert expired.at == clock.now()
        rec.take()
        core.expiry.sweep()
        assert rec.take() == []

    assert not any(rec.in_transaction), "an event was delivered inside a transaction"


def test_events_wait_for_the_outer_transaction_to_commit(bank) -> None:
    core = bank.core
    rec = Recorder(core)
    with plugin_registered(core, rec, name="recorder"):
        with core.db.atomic():
            assert share(core, "sofia", requester=bank.admin).ok
            assert share(core, "nobody", requester=bank.admin).status == "failed"
            assert rec.events == []  # not yet: the transaction may still roll back
        assert rec.kinds() == [("granted", "sofia"), ("request_failed", "nobody")]
    assert rec.in_transaction == [False, False]


def test_events_of_a_rolled_back_transaction_are_never_delivered(bank) -> None:
    core = bank.core
    rec = Recorder(core)
    with plugin_registered(core, rec, name="recorder"):
        with core.db.atomic() as txn:
            assert share(core, "sofia", requester=bank.admin).ok
            txn.rollback()

        class Abandon(Exception):
            pass

        with pytest.raises(Abandon), core.db.atomic():
            assert share(core, "tomas", requester=bank.admin).ok
            raise Abandon

        assert rec.events == []
        assert not Grant.select().exists()
        # The next committed change delivers its own event only, never the abandoned ones.
        assert share(core, "leila", requester=bank.admin).ok
        assert rec.kinds() == [("granted", "leila")]


def test_a_listener_that_raises_does_not_break_the_share(bank) -> None:
    core = bank.core

    def explode(event):
        raise RuntimeError("listener down")

    rec = Recorder(core)
    with (
        plugin_registered(core, rec, name="recorder"),
        plugin_registered(core, SimpleNamespace(sharetui_share_granted=hookimpl(explode)), name="loud"),
    ):
        result = share(core, "sofia", requester=bank.admin)
        assert result.ok
        assert rec.kinds() == [("granted", "sofia")]
        assert host_errors(core, "loud")[0].startswith("sharetui_share_granted: RuntimeError: listener down")
    assert core.access.can("sofia", bank.lead, "read")
    assert [e["hook"] for e in errors_of("loud")] == ["sharetui_share_granted"]


class Poke:
    """A plugin trigger ``poke`` and an action that shares the lead with daniel
    and then (when ``fail``) raises; listens to grants and finished runs."""

    def __init__(self, core, *, fail: bool) -> None:
        self.core = core
        self.fail = fail
        self.granted: list[ShareEvent] = []
        self.runs: list[tuple[dict, bool]] = []

    @hookimpl
    def sharetui_register_triggers(self, register):
        register("poke", "somebody poked a lead", entity="lead")

    @hookimpl
    def sharetui_register_actions(self, register):
        def run(ctx, config):
            result = ctx.services.shares.share(ctx.record, "daniel", duration="1d")
            assert result.ok, result.reason
            if self.fail:
                raise RuntimeError("failed after sharing")
            return Outcome.succeeded("shared")

        register("share_with_daniel", "share the lead with daniel", run)

    @hookimpl
    def sharetui_share_granted(self, event):
        self.granted.append(event)

    @hookimpl
    def sharetui_automation_run_finished(self, run):
        self.runs.append((run, self.core.db.transaction_depth() > 0))


def _poke(bank, plugin: Poke) -> list:
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
    core.automations.fire("poke", RecordRef(EntityType.LEAD, bank.lead.id))
    return core.automations.process_pending()


def test_an_automation_run_is_reported_once_after_it_committed(bank) -> None:
    plugin = Poke(bank.core, fail=False)
    with plugin_registered(bank.core, plugin, name="poke"):
        [report] = _poke(bank, plugin)
    assert report.status == "succeeded"
    [(run, inside)] = plugin.runs
    assert (run["id"], run["status"], inside) == (report.id, "succeeded", False)
    assert [e.user for e in plugin.granted] == ["daniel"]


def test_an_event_of_a_failed_action_is_never_delivered(bank) -> None:
    plugin = Poke(bank.core, fail=True)
    with plugin_registered(bank.core, plugin, name="poke"):
        [report] = _poke(bank, plugin)
    assert report.status == "failed"
    assert not Grant.select().exists()  # the action's share was rolled back ...
    assert plugin.granted == []  # ... so nobody may hear it was granted


# -- triggers and actions -----------------------------------------------------------------


def _run_ok(ctx, config):
    return Outcome.succeeded("ok")


class Types:
    def __init__(self, action: str = "ping", trigger: str = "pinged") -> None:
        self.action, self.trigger = action, trigger

    @hookimpl
    def sharetui_register_actions(self, register):
        register(self.action, "Ping someone", _run_ok, config={"who": ConfigField(str, required=True)})

    @hookimpl
    def sharetui_register_triggers(self, register):
        register(self.trigger, "Pinged", config={"loud": ConfigField(bool)}, entity="lead")


def test_registered_triggers_and_actions_carry_their_plugin_and_go_away_afterwards(core) -> None:
    host = core.plugins
    builtin_actions, builtin_triggers = dict(host.actions), dict(host.triggers)
    with plugin_registered(core, Types(), name="pinger"):
        action, trigger = host.actions["ping"], host.triggers["pinged"]
        assert (action.plugin, action.description) == ("pinger", "Ping someone")
        assert inspect.unwrap(action.run) is _run_ok  # run by the engine through the host's guard
        assert action.config["who"].required
        assert (trigger.plugin, trigger.entity, list(trigger.config)) == ("pinger", "lead", ["loud"])
        assert host.plugins["pinger"].errors == []
        # Automations can use them at once.
        definition = core.automations.validate(
            {"name": "p", "trigger": {"type": "pinged"}, "actions": [{"type": "ping", "who": "ruth"}]}
        )
        assert (definition.trigger_type, definition.actions[0]["type"]) == ("pinged", "ping")
    assert "ping" not in host.actions and "pinged" not in host.triggers
    assert (host.actions, host.triggers) == (builtin_actions, builtin_triggers)


@pytest.mark.parametrize(
    ("register", "error"),
    [
        (lambda r: r("bad name!", "x", _run_ok), "ValueError: action name 'bad name!' must be a word"),
        (lambda r: r("", "x", _run_ok), "ValueError: action name '' must be a word"),
        (lambda r: r(42, "x", _run_ok), "ValueError: action name 42 must be a word"),
        (lambda r: r("ping", "x", "not callable"), "TypeError: action 'ping' needs a run function"),
        (lambda r: r("ping", "x"), "TypeError: action 'ping' needs a run function"),
        (
            lambda r: r("ping", "x", _run_ok, config={"who": str}),
            "TypeError: config key 'who' must be a ConfigField",
        ),
    ],
    ids=["punctuation", "empty", "not-a-string", "run-not-callable", "no-run", "config-not-a-field"],
)
def test_an_invalid_action_registration_is_recorded(core, register, error) -> None:
    plugin = SimpleNamespace(sharetui_register_actions=hookimpl(_calling(register)))
    with plugin_registered(core, plugin, name="clumsy"):
        [message] = host_errors(core, "clumsy")
        assert message.startswith(f"sharetui_register_actions: {error}"), message
        assert not [a for a in core.plugins.actions.values() if a.plugin == "clumsy"]
    assert "ping" not in core.plugins.actions


def _calling(fn: Callable[[Callable[..., Any]], Any]) -> Callable[..., Any]:
    def sharetui_register_actions(register):
        fn(register)

    return sharetui_register_actions


def test_an_invalid_trigger_registration_is_recorded(core) -> None:
    def bad(register):
        register("fine_one", "registered before the mistake")
        register("bad-name", "hyphens are not allowed")

    with plugin_registered(core, SimpleNamespace(sharetui_register_triggers=hookimpl(bad)), name="clumsy"):
        [message] = host_errors(core, "clumsy")
        assert message.startswith("sharetui_register_triggers: ValueError: trigger name 'bad-name'")
        assert core.plugins.triggers["fine_one"].plugin == "clumsy"
        assert "bad-name" not in core.plugins.triggers
    assert "fine_one" not in core.plugins.triggers


def test_two_plugins_registering_one_name_the_second_is_an_error_and_the_first_wins(core) -> None:
    host = core.plugins
    with plugin_registered(core, Types(), name="first"), plugin_registered(core, Types(), name="second"):
        assert host.actions["ping"].plugin == "first"
        assert host.triggers["pinged"].plugin == "first"
        assert host.plugins["first"].errors == []
        actions, triggers = sorted(host.plugins["second"].errors)
        assert actions.startswith(
            "sharetui_register_actions: ValueError: action 'ping' is already registered by first"
        )
        assert triggers.startswith(
            "sharetui_register_triggers: ValueError: trigger 'pinged' is already registered by first"
        )
    assert "ping" not in host.actions and "pinged" not in host.triggers


TYPES_MODULE = """
from sharetui import hookimpl
from sharetui.sdk import Outcome

def run(ctx, config):
    return Outcome.succeeded("{name}")

@hookimpl
def sharetui_register_actions(register):
    register("{action}", "from {name}", run)
"""


def test_of_two_loaded_plugins_registering_one_name_the_first_loaded_wins(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "a_first", TYPES_MODULE.format(name="a_first", action="ping"))
    write_plugin(plugins, "b_second", TYPES_MODULE.format(name="b_second", action="ping"))
    host = PluginHost.load(plugin_dirs=[plugins], entry_points=False)
    with temporary_core(tmp_path / "db", plugins=host) as core:
        assert core.plugins.actions["ping"].plugin == "a_first"
        assert core.plugins.plugins["a_first"].errors == []
        assert "already registered by a_first" in core.plugins.plugins["b_second"].errors[0]


def test_a_plugin_registered_later_overrides_a_built_in_action(core) -> None:
    host = core.plugins
    before = {name: a.plugin for name, a in host.actions.items()}
    assert before["notify"] == "builtin-automation"
    with plugin_registered(core, Types(action="notify", trigger="new_lead"), name="mine"):
        assert host.actions["notify"].plugin == "mine"
        assert host.triggers["new_lead"].plugin == "mine"
        assert {n: a.plugin for n, a in host.actions.items() if n != "notify"} == {
            n: p for n, p in before.items() if n != "notify"
        }
        assert host.plugins["mine"].errors == [] and host.plugins["builtin-automation"].errors == []


def test_a_loaded_plugin_overrides_one_built_in_trigger_and_keeps_the_others(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    write_plugin(
        plugins,
        "mine",
        """
        from sharetui import hookimpl

        @hookimpl
        def sharetui_register_triggers(register):
            register("new_lead", "my own new-lead trigger", entity="lead")
        """,
    )
    host = PluginHost.load(plugin_dirs=[plugins], entry_points=False)
    with temporary_core(tmp_path / "db", plugins=host) as core:
        triggers = core.plugins.triggers
        assert triggers["new_lead"].plugin == "mine"
        assert triggers["new_opportunity"].plugin == "builtin-automation"
        assert len(triggers) == 12
        assert core.plugins.plugins["builtin-automation"].errors == []


def test_plugin_registered_restores_an_overridden_built_in_action(core) -> None:
    with plugin_registered(core, Types(action="notify"), name="mine"):
        assert core.plugins.actions["notify"].plugin == "mine"
    assert core.plugins.actions["notify"].plugin == "builtin-automation"


SCHEMA = {
    "who": ConfigField(str, required=True),
    "count": ConfigField(int, default=1),
    "access": ConfigField(str, choices=("read", "edit")),
    "days": ConfigField(list, choices=("mon", "tue")),
    "window": ConfigField(str, check=lambda v: None if v.endswith("h") else "write hours, e.g. 8h"),
    "loud": ConfigField(bool),
}


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        ({"who": "ruth"}, []),
        ({"who": "ruth", "count": 3, "access": "edit", "days": ["tue"], "window": "8h", "loud": True}, []),
        (
            {"who": "ruth", "colour": "red"},
            ["colour: unknown key (known: access, count, days, loud, who, window)"],
        ),
        ({}, ["who: required"]),
        ({"who": None}, ["who: required"]),
        ({"who": "ruth", "count": "3"}, ["count: expected int, got str"]),
        ({"who": "ruth", "count": True}, ["count: expected int, got true/false"]),
        ({"who": 7}, ["who: expected str, got int"]),
        ({"who": "ruth", "access": "write"}, ["access: 'write' is not one of read, edit"]),
        ({"who": "ruth", "days": ["mon", "sun"]}, ["days: 'sun' is not one of mon, tue"]),
        ({"who": "ruth", "window": "2d"}, ["window: write hours, e.g. 8h"]),
        (
            {"colour": "red", "count": "x", "access": "write"},
            [
                "colour: unknown key (known: access, count, days, loud, who, window)",
                "who: required",
                "count: expected int, got str",
                "access: 'write' is not one of read, edit",
            ],
        ),
    ],
    ids=[
        "minimal",
        "everything",
        "unknown-key",
        "missing-required",
        "required-none",
        "wrong-type",
        "bool-for-int",
        "int-for-str",
        "bad-choice",
        "bad-choice-in-list",
        "check",
        "several",
    ],
)
def test_validate_config_names_the_key_of_each_problem(config, errors) -> None:
    assert validate_config(SCHEMA, config) == errors


def test_validate_config_accepts_a_union_of_types() -> None:
    schema = {"to": ConfigField((str, list), required=True)}
    assert validate_config(schema, {"to": "ruth"}) == []
    assert validate_config(schema, {"to": ["ruth"]}) == []
    assert validate_config(schema, {"to": 3}) == ["to: expected str or list, got int"]
    assert validate_config({}, {"x": 1}) == ["x: unknown key (known: none)"]


# -- sharetui.testing -----------------------------------------------------------------------


def test_temporary_core_is_migrated_frozen_and_has_only_the_default_plugins(
    tmp_path, monkeypatch: pytest.MonkeyPatch, install
) -> None:
    # Plugins lying around on this machine are not picked up.
    write_plugin(tmp_path / "env-plugins", "stray", VETO)
    monkeypatch.setenv("SHARETUI_PLUGINS_DIR", str(tmp_path / "env-plugins"))
    write_plugin(tmp_path / "plugins", "stray_cwd", VETO)
    monkeypatch.chdir(tmp_path)
    install({"installed": VETO})

    with temporary_core(tmp_path / "t") as core:
        assert sorted(core.plugins.plugins) == BUILTINS
        assert core.plugins.core is core
        assert migrations.applied(core.db)
        assert not core.users.any_exist()
        assert core.now() == parse_instant(DEFAULT_NOW)
        assert core.now() == parse_instant(DEFAULT_NOW)  # frozen: it does not move by itself
        core.clock.advance(timedelta(hours=2))
        assert core.now() == parse_instant(DEFAULT_NOW) + timedelta(hours=2)
        company = small_company(core)
        assert share(core, "daniel", requester=company.admin).ok  # no stray veto
    assert (tmp_path / "t" / "sharetui-test.db").exists()

    with temporary_core(now="2026-07-01T12:00:00Z") as core:
        assert core.now() == parse_instant("2026-07-01T12:00:00Z")
        assert migrations.applied(core.db)


def test_small_company_builds_the_company(tmp_path) -> None:
    with temporary_core(tmp_path) as core:
        company = small_company(core)
        assert [u.username for u in core.users.list(actor=None)] == [
            "admin",
            "daniel",
            "priya",
            "ruth",
            "sofia",
        ]
        assert (company.admin.role, company.manager.role) == ("admin", "sales_manager")
        assert dict(core.users.groups_of(company.daniel)).keys() == {"Sales"}
        assert company.lead.entity is EntityType.LEAD and company.opportunity.entity is EntityType.OPPORTUNITY
        lead = core.records.get(company.lead)
        assert lead.owner_id == company.owner.id and company.owner.username == "priya"
        assert core.records.get(company.opportunity).owner_id == company.owner.id
        meeting = core.records.activity(company.meeting)
        assert (meeting.lead_id, meeting.owner_id) == (company.lead.id, company.daniel.id)
        # The story the docs tell: daniel sees the lead only once it is shared with him.
        assert not core.access.can("daniel", company.lead, "read")
        assert core.access.can("ruth", company.lead, "edit")
        result = core.sharing.share(
            "lead", company.lead.id, "daniel", requester=company.owner, context=company.meeting
        )
        assert result.ok, result.reason
        assert core.access.can("daniel", company.lead, "read")

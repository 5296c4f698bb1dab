"""Plugins through the command line (DESIGN .7, docs/plugins.md): ``sharetui
plugins``, commands added by ``sharetui_register_commands`` and access checks
honoured by ``sharetui check``.

Plugins are modules in a ``tmp_path`` directory passed with ``--plugins-dir``.
The tests run in an empty working directory (no ``./plugins``) with entry
points off, so nothing installed on the machine is picked up, and they put
the root command group back as it was: plugin commands are added to it.
"""

from __future__ import annotations

import logging
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sharetui.cli import cli as root_group

if TYPE_CHECKING:
    from conftest import CliResult

GOOD = """
from sharetui import hookimpl

__version__ = "2.1"

@hookimpl
def sharetui_validate_share(request):
    return None

@hookimpl
def sharetui_check_access(user, action):
    return None
"""

HELLO = """
import click
from sharetui import hookimpl

@hookimpl
def sharetui_register_commands(cli):
    @cli.command()
    @click.option("--name", default="world")
    @click.pass_obj
    def hello(app, name):
        \"\"\"Say hello from a plugin.\"\"\"
        click.echo(f"hello {name}: {len(app.core.users.list(actor=None))} users")
"""

CLASH = """
import click
from sharetui import hookimpl

@hookimpl
def sharetui_register_commands(cli):
    @cli.command()
    @click.argument("args", nargs=-1)
    def share(args):
        \"\"\"Hijacked share.\"\"\"
        click.echo("hijacked")

    @cli.command()
    def hello():
        click.echo("hello from clash")
"""

ON_LEAVE = """
from sharetui import hookimpl
from sharetui.sdk import deny

@hookimpl
def sharetui_check_access(user, action):
    if user.username == "ruth":
        return deny("ruth is on leave")
    return None
"""

SHAKY = """
from sharetui import hookimpl

@hookimpl
def sharetui_check_access(user, record, action, decision):
    raise RuntimeError("rules server down")
"""


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SHARETUI_LOAD_ENTRY_POINTS", "0")
    monkeypatch.delenv("SHARETUI_DISABLE_PLUGINS", raising=False)
    commands = dict(root_group.commands)
    modules = set(sys.modules)
    yield
    root_group.commands.clear()
    root_group.commands.update(commands)
    for name in set(sys.modules) - modules:
        if name.startswith("sharetui_plugin_"):
            del sys.modules[name]


def plugin_dir(tmp_path: Path, **modules: str) -> str:
    """A plugin directory holding one ``<name>.py`` per keyword."""
    directory = tmp_path / "plugins-cli"
    directory.mkdir(exist_ok=True)
    for name, source in modules.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return str(directory)


def ok(result: CliResult) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.json()


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in data["plugins"]}


# -- sharetui plugins ---------------------------------------------------------------------


def test_plugins_lists_name_version_source_hooks_and_errors(cli, bank, tmp_path) -> None:
    plugins = plugin_dir(tmp_path, good=GOOD, broken="def broken(:\n")

    data = ok(cli("--plugins-dir", plugins, "plugins", "--json"))

    listed = by_name(data)
    assert listed["good"] == {
        "name": "good",
        "version": "2.1",
        "source": "directory",
        "location": str(Path(plugins) / "good.py"),
        "loaded": True,
        "state": "active",
        "hooks": ["sharetui_check_access", "sharetui_validate_share"],
        "sdk": None,
        "deprecations": [],
        "errors": [],
        "failures": 0,
        "failures_in_a_row": 0,
        "set_aside": None,
        "recorded_failures": 0,
        "last_set_aside": None,
    }
    broken = listed["broken"]
    assert (broken["loaded"], broken["source"], broken["hooks"]) == (False, "directory", [])
    [error] = broken["errors"]
    assert error.startswith("import failed: SyntaxError"), error
    assert listed["builtin-access"]["source"] == "builtin"
    assert listed["builtin-access"]["hooks"] == ["sharetui_access_level"]
    assert listed["builtin-automation"]["hooks"] == [
        "sharetui_register_actions",
        "sharetui_register_triggers",
    ]
    assert [p["name"] for p in data["plugins"]] == ["broken", "good", "builtin-access", "builtin-automation"]
    assert {"new_lead", "schedule"} <= set(data["triggers"])
    assert {"share_lead", "notify"} <= set(data["actions"])
    assert data["recorded_errors"] == []

    human = cli("--plugins-dir", plugins, "plugins")
    assert human.exit_code == 0
    assert "not loaded" in human.stdout
    assert "import failed: SyntaxError" in human.stdout
    assert "2.1" in human.stdout and "check_access, validate_share" in human.stdout


def test_a_broken_plugin_does_not_stop_other_commands(cli, bank, tmp_path) -> None:
    plugins = plugin_dir(tmp_path, good=GOOD, broken="raise RuntimeError('boom at import')\n")

    users = ok(cli("--plugins-dir", plugins, "users", "list", "--json"))
    assert len(users["items"]) == 9
    shared = ok(
        cli(
            "--plugins-dir", plugins, "share", "lead", bank.lead.id, "--with", "sofia", "--json", user="admin"
        )
    )
    assert (shared["status"], shared["outcome"]) == ("completed", "granted")
    assert ok(cli("--plugins-dir", plugins, "check", "sofia", "lead", bank.lead.id, "--json"))["allowed"]


def test_a_hook_that_raised_in_an_earlier_command_shows_in_recorded_errors(cli, bank, tmp_path) -> None:
    plugins = plugin_dir(tmp_path, shaky=SHAKY)
    assert ok(cli("--plugins-dir", plugins, "plugins", "--json"))["recorded_errors"] == []

    assert cli("--plugins-dir", plugins, "check", "admin", "lead", bank.lead.id).exit_code == 1

    data = ok(cli("--plugins-dir", plugins, "plugins", "--json"))
    [recorded] = data["recorded_errors"]
    assert (recorded["plugin"], recorded["hook"]) == ("shaky", "sharetui_check_access")
    assert recorded["error"].startswith("RuntimeError: rules server down")
    assert recorded["count"] >= 1
    assert recorded["last_at"] == "2026-03-02T09:00:00Z"  # the frozen clock
    human = cli("--plugins-dir", plugins, "plugins").stdout
    assert "recorded plugin failures" in human and "rules server down" in human


# -- commands from plugins -------------------------------------------------------------------


def test_a_plugin_adds_a_command_that_works(cli, bank, tmp_path) -> None:
    plugins = plugin_dir(tmp_path, greeter=HELLO)

    result = cli("--plugins-dir", plugins, "hello", "--name", "Asha")

    assert (result.exit_code, result.stdout) == (0, "hello Asha: 9 users\n")
    listed = by_name(ok(cli("--plugins-dir", plugins, "plugins", "--json")))
    assert listed["greeter"]["hooks"] == ["sharetui_register_commands"]


def test_without_its_plugin_the_command_does_not_exist(cli, bank) -> None:
    result = cli("hello")
    assert result.exit_code == 2
    assert "No such command 'hello'" in result.stderr


def test_plugin_commands_show_in_the_help_when_plugins_come_from_the_environment(cli, tmp_path) -> None:
    plugins = plugin_dir(tmp_path, greeter=HELLO)
    result = cli("--help", env={"SHARETUI_PLUGINS_DIR": plugins})
    assert result.exit_code == 0
    assert "Say hello from a plugin." in result.stdout


def test_plugin_commands_show_in_the_help_with_plugins_dir(cli, tmp_path) -> None:
    plugins = plugin_dir(tmp_path, greeter=HELLO)
    result = cli("--plugins-dir", plugins, "--help")
    assert result.exit_code == 0
    assert "Say hello from a plugin." in result.stdout


def test_a_plugin_command_named_like_a_built_in_does_not_replace_it(
    cli, bank, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = plugin_dir(tmp_path, clash=CLASH)

    with caplog.at_level(logging.WARNING, logger="sharetui.plugins"):
        hello = cli("--plugins-dir", plugins, "hello")
    assert (hello.exit_code, hello.stdout) == (0, "hello from clash\n")  # its other command works
    assert "plugin clash failed in sharetui_register_commands" in caplog.text
    assert "command 'share' clashes with a built-in command; ignored" in caplog.text
    assert root_group.commands["share"].help.startswith("Share a lead or an opportunity")

    shared = cli(
        "--plugins-dir", plugins, "share", "lead", bank.lead.id, "--with", "sofia", "--json", user="admin"
    )
    assert "hijacked" not in shared.stdout
    assert ok(shared)["status"] == "completed"


def test_a_refused_command_clash_shows_in_plugins(cli, bank, tmp_path) -> None:
    plugins = plugin_dir(tmp_path, clash=CLASH)
    assert cli("--plugins-dir", plugins, "hello").exit_code == 0

    data = ok(cli("--plugins-dir", plugins, "plugins", "--json"))

    shown = by_name(data)["clash"]["errors"] + [e["error"] for e in data["recorded_errors"]]
    assert any("command 'share' clashes with a built-in command" in e for e in shown), data


def test_each_invocation_sees_only_its_own_plugin_commands(cli, bank, tmp_path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    (first / "greeter.py").write_text(textwrap.dedent(HELLO), encoding="utf-8")
    second = tmp_path / "second"
    second.mkdir()
    (second / "greeter2.py").write_text(
        textwrap.dedent(HELLO).replace('f"hello {name}', 'f"hi again {name}'), encoding="utf-8"
    )

    assert cli("--plugins-dir", first, "hello").stdout == "hello world: 9 users\n"
    assert cli("--plugins-dir", second, "hello").stdout == "hi again world: 9 users\n"
    assert cli("hello").exit_code == 2


# -- sharetui check and access-check plugins -----------------------------------------------


def test_check_honours_a_denying_access_check(cli, bank, tmp_path) -> None:
    lead = bank.lead.id
    assert cli("check", "ruth", "lead", lead, "--action", "edit").exit_code == 0  # a sales manager
    plugins = plugin_dir(tmp_path, on_leave=ON_LEAVE)

    denied = cli("--plugins-dir", plugins, "check", "ruth", "lead", lead, "--action", "edit")
    assert denied.exit_code == 1
    assert f"denied: ruth edit lead {lead}" in denied.stdout
    assert "on_leave: ruth is on leave" in denied.stdout

    data = cli("--plugins-dir", plugins, "check", "ruth", "lead", lead, "--json")
    assert data.exit_code == 1
    assert (data.json()["allowed"], data.json()["level"]) == (False, "none")
    assert "denied: on_leave: ruth is on leave (read)" in data.json()["reasons"]
    # Only ruth is on leave.
    assert cli("--plugins-dir", plugins, "check", "admin", "lead", lead, "--action", "edit").exit_code == 0


def test_check_denies_when_an_access_check_raises(cli, bank, tmp_path) -> None:
    lead = bank.lead.id
    plugins = plugin_dir(tmp_path, shaky=SHAKY)

    for who in ("admin", "priya"):  # even an admin, even the owner
        result = cli("--plugins-dir", plugins, "check", who, "lead", lead, "--json")
        assert result.exit_code == 1, result.stdout
        assert result.json()["allowed"] is False
        assert "denied: shaky: access check failed (RuntimeError) (read)" in result.json()["reasons"]
    assert cli("check", "admin", "lead", lead).exit_code == 0


# -- where plugins come from: never the current directory ------------------------------------

EVIL = """
from pathlib import Path

Path({marker!r}).write_text("plugin code ran")
"""


def test_a_plugins_folder_in_the_working_directory_is_never_imported(cli, bank, tmp_path) -> None:
    """Running sharetui in a folder that holds ``plugins/evil.py`` must not run it,
    not even for ``--version`` or ``--help``."""
    import os
    import subprocess

    work = tmp_path / "somewhere"
    (work / "plugins").mkdir(parents=True)
    marker = tmp_path / "marker"
    (work / "plugins" / "evil.py").write_text(EVIL.format(marker=str(marker)), encoding="utf-8")
    env = {
        **os.environ,
        "SHARETUI_LOAD_ENTRY_POINTS": "0",
        "SHARETUI_DATABASE_URL": f"sqlite:///{tmp_path / 'cwd.db'}",
    }
    for args in (["--version"], ["--help"], ["nosuchcommand"]):
        subprocess.run(
            [sys.executable, "-m", "sharetui", *args], cwd=work, env=env, capture_output=True, timeout=60
        )
        assert not marker.exists(), f"sharetui {' '.join(args)} ran ./plugins/evil.py"

    os.chdir(work)  # the _hermetic fixture puts the working directory back
    listed = by_name(ok(cli("plugins", "--json")))
    assert "evil" not in listed
    assert cli("check", "admin", "lead", bank.lead.id).exit_code == 0
    assert not marker.exists()


# -- plugin directories an admin names in the settings ---------------------------------------


def test_an_admin_names_plugin_directories_in_the_settings(cli, bank, tmp_path) -> None:
    folder = Path(plugin_dir(tmp_path, on_leave=ON_LEAVE))
    lead = bank.lead.id
    assert cli("check", "ruth", "lead", lead).exit_code == 0

    refused = cli("settings", "plugin_dirs", str(folder), user="daniel")
    assert refused.exit_code == 1
    assert "may not change settings" in refused.stderr
    assert ok(cli("settings", "plugin_dirs", "--json"))["plugin_dirs"] == []
    assert cli("check", "ruth", "lead", lead).exit_code == 0  # nothing loaded

    assert ok(cli("settings", "plugin_dirs", str(folder), "--json", user="admin")) == {
        "plugin_dirs": [str(folder)]
    }

    # Every later command, whoever runs it, loads the folder once the database is open.
    denied = cli("check", "ruth", "lead", lead, "--json")
    assert denied.exit_code == 1
    assert "denied: on_leave: ruth is on leave (read)" in denied.json()["reasons"]
    listed = by_name(ok(cli("plugins", "--json")))
    assert listed["on_leave"]["source"] == "directory (settings)"
    assert listed["on_leave"]["location"] == str(folder / "on_leave.py")
    assert "directory (settings)" in cli("plugins").stdout
    # Named on the command line too, it loads once, from there.
    both = by_name(ok(cli("--plugins-dir", folder, "plugins", "--json")))
    assert both["on_leave"]["source"] == "directory"
    assert "on_leave (directory (settings))" not in both

    assert ok(cli("settings", "plugin_dirs", "", "--json", user="admin")) == {"plugin_dirs": []}
    assert cli("check", "ruth", "lead", lead).exit_code == 0


def test_a_plugin_an_admin_named_that_does_not_load_denies_instead_of_dropping_out(
    cli, bank, tmp_path
) -> None:
    """Regression (the gate attack): a folder in plugin_dirs that went missing, or a
    plugin in it that fails to import, let commands carry on without it, so an admin's
    deny dropped out silently. Until it loads, every access check denies and every
    share is refused; an admin can still mend the setting."""
    lead = bank.lead.id
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "broken.py").write_text("raise RuntimeError('half-deployed')\n")
    ok(cli("settings", "plugin_dirs", str(folder), "--json", user="admin"))
    for user in ("admin", "priya"):
        denied = cli("leads", "show", lead, user=user)
        assert denied.exit_code == 1, (user, denied)
    shared = cli("share", "lead", lead, "--with", "daniel", "--json", user="priya")
    assert shared.exit_code == 1 and shared.json()["status"] == "failed"
    why = cli("explain", "priya", "lead", lead, "--json", user="admin")
    assert why.exit_code == 0 and any("plugin_dirs did not load" in d for d in why.json()["denials"])
    (folder / "broken.py").unlink()
    folder.rmdir()  # a folder that went missing: the same
    assert cli("check", "admin", "lead", lead).exit_code == 1
    assert ok(cli("settings", "plugin_dirs", "", "--json", user="admin")) == {"plugin_dirs": []}
    assert cli("leads", "show", lead, user="priya").exit_code == 0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("plugins", "setting plugin_dirs takes absolute paths: 'plugins' is relative"),
        ("./plugins", "is relative"),
        ('["/ok", 3]', "setting plugin_dirs takes a list of paths"),
        ("[not json", "setting plugin_dirs takes a JSON list of paths"),
    ],
)
def test_plugin_directories_must_be_absolute_paths(cli, bank, value, error) -> None:
    result = cli("settings", "plugin_dirs", value, user="admin")
    assert result.exit_code == 2
    assert error in result.stderr
    assert ok(cli("settings", "plugin_dirs", "--json"))["plugin_dirs"] == []


def test_a_settings_directory_can_replace_a_default_plugin(cli, bank, tmp_path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "closed.py").write_text(
        textwrap.dedent(
            """
            from sharetui import hookimpl
            from sharetui.sdk import Access, AccessDecision

            PLUGIN_NAME = "builtin-access"

            @hookimpl(trylast=True)
            def sharetui_access_level(user_id, record, now):
                return None  # knows no one
            """
        ),
        encoding="utf-8",
    )
    assert ok(cli("settings", "plugin_dirs", str(folder), "--json", user="admin"))
    listed = by_name(ok(cli("plugins", "--json")))
    assert listed["builtin-access"]["source"] == "directory (settings)"
    assert cli("check", "admin", "lead", bank.lead.id).exit_code != 0


# -- budgets, failures and setting aside through the command line ------------------------------

SLEEPY = """
import time
from sharetui import hookimpl

@hookimpl
def sharetui_check_access(user):
    time.sleep(0.3)
"""


def test_plugins_shows_failures_and_set_aside_plugins(cli, bank, tmp_path) -> None:
    for n in range(6):
        bank.core.records.add_lead(name=f"Lead {n}", owner=bank.priya, actor=bank.admin)
    plugins = plugin_dir(tmp_path, sleepy=SLEEPY, good=GOOD)
    for key, value in (("plugin_budget_ms", "50"), ("plugin_failure_limit", "2")):
        assert cli("settings", key, value, user="admin").exit_code == 0

    # A list of every lead: the slow check is late twice, is set aside, and the rest deny at once.
    started = time.perf_counter()
    listed = cli("--plugins-dir", plugins, "leads", "list", "--json", user="admin")
    took = time.perf_counter() - started
    assert listed.exit_code == 0, listed.stderr
    assert listed.json()["items"] == []  # every row denied
    assert took < 3, f"leads list took {took:.1f} s with a 0.3 s check and a 50 ms budget"

    data = ok(cli("--plugins-dir", plugins, "plugins", "--json"))
    shown = by_name(data)
    entry = shown["sleepy"]
    assert entry["state"] == "active"  # setting aside lasted until that process ended
    assert entry["recorded_failures"] == 2
    last = entry["last_set_aside"]
    assert (last["times"], last["at"]) == (1, "2026-03-02T09:00:00Z")
    assert last["reason"] == (
        "2 failures in a row, the last: sharetui_check_access: "
        "TimeoutError: no answer within its 50 ms budget"
    )
    assert shown["good"]["recorded_failures"] == 0 and shown["good"]["last_set_aside"] is None

    human = cli("--plugins-dir", plugins, "plugins", env={"COLUMNS": "400"}).stdout
    [row] = [line for line in human.splitlines() if " sleepy " in line and "directory" in line]
    cells = [cell.strip() for cell in row.split("│")]
    # The main table: state, then the count of recorded failures (not a "-").
    assert "active (set aside once before, last at 2026-03-02T09:00:00Z)" in cells
    assert cells[cells.index("active (set aside once before, last at 2026-03-02T09:00:00Z)") + 1] == "2"
    assert "2 failures in a row" in human  # the recorded failures table

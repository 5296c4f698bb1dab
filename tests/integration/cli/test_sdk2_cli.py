"""The SDK 2 faces: `plugins new` scaffolds a package whose tests pass as generated,
`plugins` shows the SDK each plugin targets and deprecations, and `automations test`
warns when a trigger or action's plugin is missing or set aside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from sharetui import hookimpl
from sharetui.host import PluginHost
from sharetui.sdk import hookspecs

ROOT = Path(__file__).resolve().parents[3]


def test_plugins_new_makes_a_package_whose_tests_pass(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARETUI_")}
    made = subprocess.run(
        [sys.executable, "-m", "sharetui", "plugins", "new", "closed-deals", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    package = tmp_path / "closed-deals"
    assert sorted(p.name for p in package.iterdir()) == [
        "README.md",
        "pyproject.toml",
        "sharetui_closed_deals.py",
        "tests",
    ]
    assert 'closed-deals = "sharetui_closed_deals"' in (package / "pyproject.toml").read_text()
    # Bare `pytest`, as the "cd x && pytest" (python -m pytest would put the
    # folder on sys.path and hide a missing pythonpath setting).
    runner = Path(sys.executable).with_name("pytest")
    command = [str(runner)] if runner.exists() else [sys.executable, "-m", "pytest"]
    tested = subprocess.run(
        [*command, "-q", "-p", "no:cacheprovider"],
        cwd=package,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout
    again = subprocess.run(
        [sys.executable, "-m", "sharetui", "plugins", "new", "closed-deals", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert again.returncode == 2 and "already exists" in again.stderr


def test_plugins_shows_the_sdk_a_plugin_targets(cli, bank):
    listed = cli("--plugins-dir", str(ROOT / "plugins" / "score_threshold"), "plugins", "--json")
    assert listed.exit_code == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["sdk_version"] == hookspecs.SDK_VERSION
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["score-threshold"]["sdk"] == "2"
    human = cli("--plugins-dir", str(ROOT / "plugins" / "score_threshold"), "plugins").stdout
    assert f"SDK {hookspecs.SDK_VERSION}" in human


def test_a_renamed_hook_still_works_with_a_deprecation_warning(monkeypatch):
    monkeypatch.setattr(hookspecs, "RENAMED_HOOKS", {"sharetui_share_given": "sharetui_share_granted"})

    class Old:
        heard = []

        @hookimpl
        def sharetui_share_given(self, event):
            self.heard.append(event)

    host = PluginHost.load(entry_points=False)
    with pytest.warns(DeprecationWarning, match="sharetui_share_given was renamed sharetui_share_granted"):
        assert host.register(Old(), name="old")
    info = host.plugins["old"]
    assert info.hooks == ["sharetui_share_granted"]
    assert info.notes and "rename your function" in info.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        host.call("sharetui_share_granted", event="e")
    assert Old.heard == ["e"]


TRIGGER_PLUGIN = """
from sharetui import hookimpl

@hookimpl
def sharetui_register_triggers(register):
    register("poked", "poked", entity="lead")
"""

AUTOMATION = """
name = "on poke"
[trigger]
type = "poked"
[[actions]]
type = "notify"
to = "priya"
message = "poked"
"""


def test_automations_test_warns_when_the_triggers_plugin_is_missing(cli, bank, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "poker.py").write_text(TRIGGER_PLUGIN)
    (tmp_path / "a.toml").write_text(AUTOMATION)
    added = cli(
        "--plugins-dir", str(plugins), "automations", "add", str(tmp_path / "a.toml"), "--json", user="admin"
    )
    assert added.exit_code == 0, added.stderr
    ident = str(json.loads(added.stdout)["id"])
    fine = cli(
        "--plugins-dir", str(plugins), "automations", "test", ident, "--lead", str(bank.lead.id), user="admin"
    )
    assert fine.exit_code == 0 and "warning" not in fine.stderr
    (plugins / "poker.py").write_text("raise ImportError('broken on purpose')\n")
    broken = cli(
        "--plugins-dir", str(plugins), "automations", "test", ident, "--lead", str(bank.lead.id), user="admin"
    )
    assert "warning: trigger 'poked' is not registered: the plugin that adds it is missing" in broken.stderr


def test_a_renamed_argument_still_reaches_an_implementation_that_takes_the_old_name(monkeypatch):
    from sharetui.sdk import hookspec

    class Spec:
        @hookspec(warn_on_impl_args={"record": DeprecationWarning("record was renamed view")})
        def sharetui_probe(self, view, record):
            """A hook whose argument ``record`` was renamed ``view``."""

    monkeypatch.setattr(hookspecs, "RENAMED_ARGUMENTS", {"sharetui_probe": {"record": "view"}})

    class Old:
        @hookimpl
        def sharetui_probe(self, record):
            return f"old got {record}"

    class New:
        @hookimpl
        def sharetui_probe(self, view):
            return f"new got {view}"

    host = PluginHost.load(entry_points=False)
    host.pm.add_hookspecs(Spec)
    with pytest.warns(DeprecationWarning, match="record was renamed view"):
        assert host.register(Old(), name="old")
    assert host.register(New(), name="new")
    answers = dict(host.call("sharetui_probe", view="lead 1"))
    assert answers == {"old": "old got lead 1", "new": "new got lead 1"}

"""``sharetui plugins new NAME``: a plugin package that installs, loads and tests as
generated (a pyproject with the entry point, the module, passing tests, a README)."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from sharetui.errors import UsageError

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "sharetui-{name}"
version = "0.1.0"
description = "A sharetui plugin: {name}"
dependencies = ["sharetui"]

# sharetui finds installed plugins through this entry point (group "sharetui").
[project.entry-points.sharetui]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""

MODULE = '''\
"""sharetui plugin {name}: sales users reach closed leads read-only through a share.

Edit this to do what you need; the guide is docs/plugins.md of sharetui.
"""

from __future__ import annotations

from sharetui import hookimpl
from sharetui.sdk import Access, AccessDecision, RecordView, UserInfo, Verdict, deny

PLUGIN_NAME = "{name}"
SDK_VERSION = "{sdk_major}"  # the sharetui SDK this plugin was written for
__version__ = "0.1.0"


@hookimpl
def sharetui_check_access(
    user: UserInfo, action: str, decision: AccessDecision, view: RecordView | None
) -> Verdict | None:
    """Deny editing a Closed record to someone whom only a share lets edit it."""
    if action == "edit" and view is not None and view.stage == "Closed":
        if decision.only_via_share(Access.EDIT):
            return deny("closed records are read-only through a share")
    return None
'''

TEST = '''\
"""Tests for the {name} plugin, with sharetui.testing."""

from __future__ import annotations

import {module} as plugin

from sharetui.testing import company, plugin_registered, temporary_core


def test_a_share_may_read_but_not_edit_a_closed_lead(tmp_path):
    with temporary_core(tmp_path) as core:
        people = company(core)  # admin, ruth, nadia, priya, daniel, sofia, wei; lead, closed_lead, ...
        core.sharing.share(
            "lead", people.closed_lead.id, "daniel", requester=people.admin, duration="7d", access="edit"
        )
        with plugin_registered(core, plugin):
            assert core.access.can("daniel", people.closed_lead, "read")
            assert not core.access.can("daniel", people.closed_lead, "edit")
            assert core.access.can("priya", people.closed_lead, "edit")  # the owner still edits
'''

README = """\
# sharetui-{name}

A sharetui plugin. As generated, sales users reach Closed leads read-only
through a share.

    python -m pytest                       # run its tests
    sharetui --plugins-dir . plugins       # lists {name} (tests/ is not a plugin: no __init__.py)
    pip install -e . && sharetui plugins   # or install it: source "entry point"

Edit `{module}.py`; the hooks, types and services are described in sharetui's
docs/plugins.md.
"""


def scaffold(name: str, where: Path, sdk_major: str) -> Path:
    """Write the package for plugin ``name`` into ``where/name``; returns that folder.
    Refuses a bad name or a folder that exists (nothing is written then)."""
    if not _NAME.match(name):
        raise UsageError(
            f"plugin name {name!r}: use lowercase letters, digits, '-' and '_', starting with a letter"
        )
    module = "sharetui_" + name.replace("-", "_")
    if keyword.iskeyword(module):  # pragma: no cover - the prefix makes this impossible
        raise UsageError(f"plugin name {name!r} makes no Python module name")
    target = where / name
    if target.exists():
        raise UsageError(f"{target} already exists: choose another name or folder")
    values = {"name": name, "module": module, "sdk_major": sdk_major}
    (target / "tests").mkdir(parents=True)
    (target / "pyproject.toml").write_text(PYPROJECT.format(**values), encoding="utf-8")
    (target / f"{module}.py").write_text(MODULE.format(**values), encoding="utf-8")
    (target / "tests" / f"test_{module.removeprefix('sharetui_')}.py").write_text(
        TEST.format(**values), encoding="utf-8"
    )
    (target / "README.md").write_text(README.format(**values), encoding="utf-8")
    return target

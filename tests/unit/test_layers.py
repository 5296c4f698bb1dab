"""The layers hold (docs/architecture.md): what each layer may import, checked on the
running code as well as by the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(statement: str, watched: tuple[str, ...]) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_sdk_stands_alone_in_a_fresh_interpreter() -> None:
    """A plugin author's ``import sharetui.sdk`` (and ``from sharetui import hookimpl``)
    loads neither the store, nor the core, nor the plugin host."""
    watched = ("peewee", "psycopg", "sharetui.db", "sharetui.core", "sharetui.host", "click", "textual")
    assert _loaded_after("import sharetui.sdk", watched) == []
    assert _loaded_after("from sharetui import hookimpl", watched) == []


def test_the_domain_is_a_leaf() -> None:
    watched = ("peewee", "sharetui.db", "sharetui.core", "sharetui.sdk", "sharetui.host")
    statement = "import sharetui.domain.ids, sharetui.domain.roles, sharetui.domain.records"
    statement += ", sharetui.domain.durations, sharetui.domain.schedules, sharetui.domain.time"
    assert _loaded_after(statement, watched) == []


def test_the_core_loads_no_plugin_runtime_no_data_tools_and_no_faces() -> None:
    watched = (
        "sharetui.host",
        "sharetui.default_plugins",
        "sharetui.ops",
        "sharetui.cli",
        "textual",
        "click",
    )
    assert _loaded_after("import sharetui.core.service", watched) == []


@pytest.mark.skipif(
    shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
    reason="import-linter is in the test extra",
)
def test_the_import_contracts_are_kept() -> None:
    """``lint-imports`` reads the contracts from pyproject.toml; a broken one fails here
    with the import chain that breaks it."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:]

"""Meta-tests (datasette's habit): every hook is documented, described and tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from sharetui.sdk import hookspecs

ROOT = Path(__file__).resolve().parents[3]
HOOKS = sorted(
    name for name, fn in vars(hookspecs).items() if name.startswith("sharetui_") and inspect.isfunction(fn)
)
DOCS = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def _test_sources() -> str:
    files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/test_*.py")]
    return "\n".join(p.read_text(encoding="utf-8") for p in files if p.name != Path(__file__).name)


TESTS = _test_sources()


def test_there_are_hooks():
    assert len(HOOKS) >= 13


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_section_in_the_plugin_guide(hook):
    assert re.search(rf"^### `{hook}`$", DOCS, re.MULTILINE), f"docs/plugins.md has no section for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    assert hook in TESTS, f"no test mentions {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_says_firstresult_and_thread(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "firstresult" in doc, f"{hook}: say whether it is firstresult"
    assert "thread" in doc, f"{hook}: say on which thread it is called"
    assert "Returns" in doc or "Return" in doc, f"{hook}: say what to return"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_typed(hook):
    signature = inspect.signature(getattr(hookspecs, hook))
    assert signature.return_annotation is not inspect.Signature.empty
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())

"""The plugin guide cannot drift from the code: every code block in
docs/plugins.md is a file under docs/examples/ (which the suite runs, see
pyproject's testpaths), each hook has a section with an example and a test, and
the quick start works verbatim in a folder of its own."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sharetui.sdk import hookspecs

ROOT = Path(__file__).resolve().parents[3]
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
FENCE = re.compile(r"(?:<!-- file: (?P<path>[^ ]+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```\n", re.DOTALL)
COMMANDS = {"sh"}  # shell commands are run by test_the_quick_start_works_verbatim
HOOKS = sorted(n for n, f in vars(hookspecs).items() if n.startswith("sharetui_") and inspect.isfunction(f))
BLOCKS = list(FENCE.finditer(GUIDE))


def test_the_guide_has_code_blocks():
    assert len(BLOCKS) > 20


@pytest.mark.parametrize("match", BLOCKS, ids=lambda m: m.group("path") or m.group("lang"))
def test_every_code_block_is_a_file_under_docs_examples(match):
    if match.group("lang") in COMMANDS:
        return
    path = match.group("path")
    body = match.group("body")[:200]
    assert path, f"a ```{match.group('lang')} block has no <!-- file: docs/examples/... --> line:\n{body}"
    assert path.startswith("docs/examples/")
    assert (ROOT / path).read_text(encoding="utf-8").rstrip() == match.group("body").rstrip(), (
        f"docs/plugins.md shows {path} other than it is: copy the file into the guide"
    )


def _section(hook: str) -> str:
    start = GUIDE.index(f"### `{hook}`")
    end = GUIDE.find("\n## ", start)
    nxt = GUIDE.find("\n### ", start + 1)
    return GUIDE[start : min(x for x in (end, nxt) if x != -1)]


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_section_says_signature_when_thread_example_and_test(hook):
    text = _section(hook)
    assert "**Signature:**" in text and "**When:**" in text and "**Thread:**" in text
    if "Example and test: above" in " ".join(text.split()):
        return
    files = re.findall(r"<!-- file: (docs/examples/hooks/[^ ]+) -->", text)
    examples = [f for f in files if not Path(f).name.startswith("test_")]
    tests = [f for f in files if Path(f).name.startswith("test_")]
    assert examples and tests, f"{hook}: show an example and its test"
    assert any(hook in (ROOT / f).read_text() for f in examples)


def test_the_quick_start_works_verbatim(tmp_path):
    """The quick start's folder, made as the guide says, tests green with pytest and
    loads with --plugins-dir plugins without loading its tests."""
    folder = tmp_path / "closed-leads"
    shutil.copytree(ROOT / "docs" / "examples" / "quickstart", folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARETUI_")}
    env["SHARETUI_LOAD_ENTRY_POINTS"] = "0"
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert tested.returncode == 0 and "1 passed" in tested.stdout, tested.stdout + tested.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "sharetui", "--plugins-dir", "plugins", "plugins", "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert plugins["closed-leads"]["state"] == "active" and plugins["closed-leads"]["errors"] == []
    assert plugins["closed-leads"]["sdk"] == "2"
    assert not any(p["errors"] for p in plugins.values()), plugins
    assert "warning" not in listed.stderr.lower()

"""What the terminal UI draws from data (DESIGN §9, last bullet): control sequences are
shown as escapes, never sent to the terminal; data is never read as markup; the CSV
export neutralises formula cells.

Rich's ``Text`` strips a few control codes (bell, backspace, CR) but keeps ``ESC`` and
the C1 controls, and Textual writes the text it is given: a lead named
``Mira\\x1b]0;pwned\\x07`` retitled the terminal from the Leads list and the record
screen. Each story reads what would reach the terminal: the text of every segment
the screen's compositor draws, and the bytes a driver would write for it.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Awaitable, Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from sharetui.core.service import Core
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.ops.loader import Loader
from sharetui.tui.app import ShareTuiApp, make_app
from sharetui.tui.screens.automation import AutomationScreen
from sharetui.tui.screens.record import RecordScreen

SAMPLE_DATA = Path(__file__).resolve().parents[3] / "sample_data"
SIZE = (160, 40)
ATTACK = "Mira\x1b]0;pwned\x07 \x1b[8mhidden\x1b[0m \x9b2J \u202eevil [b]loud[/b]"
SHOWN = "Mira\\x1b]0;pwned\\x07 \\x1b[8mhidden\\x1b[0m \\x9b2J \\u202eevil [b]loud[/b]"
EXECUTABLE = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def demo(core: Core) -> Core:
    """The demo bank; lead 3 renamed to the attack, with a custom field and an activity
    note that carry control sequences too."""
    Loader(core).load(SAMPLE_DATA, actor=None)
    admin = core.users.get("admin")
    lead = RecordRef(EntityType.LEAD, 3)
    core.records.update_record(
        lead, actor=admin, values={"name": ATTACK}, fields={"k\x1b[31m": "v\x1b]8;;http://evil.test\x07"}
    )
    core.records.post_activity(lead, type="Email Sent", actor=admin, note="first\nsecond\x1b[2J")
    core.automations.process_pending()
    return core


def run(app: ShareTuiApp, story: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await story(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[Any]) -> None:
    app = pilot.app
    for _ in range(40):
        await app.workers.wait_for_complete()
        await pilot.pause()
        measured = not any(t._require_update_dimensions for t in app.screen.query(DataTable))
        if measured and all(worker.is_finished for worker in app.workers):
            return
    raise AssertionError("workers kept running")


def drawn_text(app: ShareTuiApp) -> str:
    """The text of every segment on the screen (styles aside: only data could put an ESC here)."""
    return "".join(segment.text for strip in app.screen._compositor.render_strips() for segment in strip)


def driver_bytes(app: ShareTuiApp) -> str:
    """What a driver writes to the terminal for the whole screen: text and Textual's own
    escape sequences for cursor moves and colours."""
    console = Console(file=StringIO(), force_terminal=True, color_system="truecolor", legacy_windows=False)
    return app.screen._compositor.render_update(full=True).render_segments(console)


def assert_nothing_executable(app: ShareTuiApp) -> str:
    text = drawn_text(app)
    assert not [c for c in EXECUTABLE if c in text], repr(text)
    written = driver_bytes(app)
    assert "\x1b]0;pwned" not in written and "\x1b[8m" not in written and "\x9b" not in written
    return text


def test_the_leads_list_shows_escapes(demo: Core) -> None:
    """The name cell is cut to fit (22 characters) and shown with its escapes."""
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        text = assert_nothing_executable(app)
        assert "Mira\\x1b]0;pwned\\x07" in text

    run(app, story)


def test_the_record_screen_shows_escapes_and_never_reads_data_as_markup(demo: Core) -> None:
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        app.push_screen(RecordScreen(RecordRef(EntityType.LEAD, 3)))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RecordScreen) and screen.data is not None
        fields = str(screen.query_one("#fields", Static).render())
        assert f"Lead 3: {SHOWN}" in fields  # "[b]loud[/b]" as written, not bold
        assert "k\\x1b[31m v\\x1b]8;;http://evil.test\\x07" in fields
        screen.query_one("#tabs").active = "tab-activities"
        await settle(pilot)
        table = screen.query_one("#activities", DataTable)
        notes = [str(table.get_row_at(i)[5]) for i in range(table.row_count)]
        assert "first↵second\\x1b[2J" in notes  # one line per row: the line break is marked
        text = assert_nothing_executable(app)
        assert SHOWN[:40] in text

    run(app, story)


def test_the_automation_screen_shows_escapes(demo: Core) -> None:
    """An automation's name, description and action text are data: shown, never markup
    (a "[/]" in them used to be read as markup)."""
    admin = demo.users.get("admin")
    definition = demo.automations.validate(
        {
            "name": "Auto\x1b]0;pwned\x07 [/]",
            "description": "desc\x1b[8m",
            "trigger": {"type": "new_lead"},
            "actions": [{"type": "notify", "to": "priya", "message": "hi\x1b[8m [b]x"}],
        }
    )
    row = demo.automations.add(definition, actor=admin)
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        app.push_screen(AutomationScreen(row.id))
        await settle(pilot)
        definition_text = str(app.screen.query_one("#definition", Static).render())
        assert "Auto\\x1b]0;pwned\\x07 [/]" in definition_text
        assert "message=hi\\x1b[8m [b]x" in definition_text
        assert_nothing_executable(app)

    run(app, story)


def test_the_history_export_neutralises_formula_cells(
    demo: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E in the History section (the TUI's export) writes the CSV through the same
    function as ``history --csv``: a recipient typed as a formula starts with ``'``."""
    monkeypatch.chdir(tmp_path)
    priya = demo.users.get("priya")
    typed = '=HYPERLINK("http://evil.test","click")'
    assert demo.sharing.share("lead", 1, typed, requester=priya, duration="1d").status == "failed"
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("E")  # asks where, suggesting a file name
        await settle(pilot)
        answer = app.screen.query_one(Input)
        answer.value = str(tmp_path / Path(answer.value).name)
        await pilot.press("enter")
        await settle(pilot)

    run(app, story)
    [path] = tmp_path.glob("sharetui-history-*.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["user"] for r in rows if r["status"] == "failed"] == ["'" + typed]
    assert not [c for r in rows for c in r.values() if c and c[0] in "=+-@\t\r"]

"""Pilot stories for the terminal UI: each presses the keys a person would and
checks both what the screen shows and what the database now holds.

The demo bank (``sample_data``) is loaded at the frozen test clock, so its
relative times ("-2d", "+3h") fall at fixed instants after T0 (2026-03-02 09:00 UTC).
Every story runs in a sync test through ``asyncio.run`` (no async pytest plugin
is installed); an exception inside the app makes ``run_test`` raise and the test fail.
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
from textual.widgets import Button, DataTable, Input, Select, Static, TextArea

from sharetui.core.history import HistoryFilter
from sharetui.core.service import Core
from sharetui.db.models import AutomationRun, Grant, HistoryEvent, Lead
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.ops.loader import Loader
from sharetui.tui.app import ShareTuiApp, make_app
from sharetui.tui.bindings import KEYS
from sharetui.tui.screens.automation import TEMPLATE, AutomationEditor, AutomationScreen
from sharetui.tui.screens.help import HelpScreen
from sharetui.tui.screens.modals import (
    ActAsModal,
    ConfirmModal,
    EditRecordModal,
    ErrorModal,
    PostActivityModal,
    PromptModal,
    RenewModal,
    ShareModal,
)
from sharetui.tui.screens.record import RecordScreen

SAMPLE_DATA = Path(__file__).resolve().parents[3] / "sample_data"
SIZE = (120, 40)


def lead(ident: int) -> RecordRef:
    return RecordRef(EntityType.LEAD, ident)


# In the demo bank: L001 is priya's with an open meeting A005 owned by sofia and no
# share; L003 is priya's, shared with daniel (edit, 14 days from -2d, context A003)
# and has one open task T008 owned by priya; L006 is daniel's own lead.
L001, L003, L006 = lead(1), lead(3), lead(6)


@pytest.fixture
def demo(core: Core) -> Core:
    """The ``core`` fixture (frozen clock at T0) with the Example Bank loaded."""
    Loader(core).load(SAMPLE_DATA, actor=None)
    return core


# -- driving the app ---------------------------------------------------------------------


def run(app: ShareTuiApp, story: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    """Run ``story`` against ``app`` headless, after the first load has finished."""

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await story(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[Any]) -> None:
    """Let key handlers, thread workers and what they call back into run to the end.

    A worker hands its result back with ``call_from_thread``, which may start the
    next worker (a share reloads the record): wait until a pause leaves none running.
    """
    app = pilot.app
    for _ in range(20):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if all(worker.is_finished for worker in app.workers):
            return
    raise AssertionError("workers kept running")


async def until(pilot: Pilot[Any], condition: Callable[[], bool], tries: int = 60) -> None:
    """Wait (bounded: ~3 s) for ``condition``, for what runs on a timer."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
        await settle(pilot)
    assert condition(), "the screen never reached the expected state"


async def press(pilot: Pilot[Any], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await press(pilot, *["space" if ch == " " else ch for ch in text])


async def press_ok(pilot: Pilot[Any]) -> None:
    """Press the dialog's default button (a click could land on a toast over it)."""
    pilot.app.screen.query_one("#ok", Button).press()
    await settle(pilot)


def record_notifications(app: ShareTuiApp) -> list[str]:
    """Every ``notify`` from now on as ``"title: message"`` (toasts time out; this list does not)."""
    seen: list[str] = []
    original = app.notify

    def notify(message: str, *, title: str = "", **kwargs: Any) -> None:
        seen.append(f"{title}: {message}")
        original(message, title=title, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return seen


# -- reading the screen ------------------------------------------------------------------


def text_of(widget: Static) -> str:
    return str(widget.render())


def cells(table: DataTable[Any]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def leads_table(app: ShareTuiApp) -> DataTable[Any]:
    return app.query_one("#leads").query_one(DataTable)


def listed_ids(app: ShareTuiApp) -> list[int]:
    return [int(row[0]) for row in cells(leads_table(app))]


def visible_ids(core: Core, user: str, **kwargs: Any) -> list[int]:
    return [row.id for row in core.access.visible(user, "lead", limit=100, **kwargs).rows]


def offered(app: ShareTuiApp) -> set[str]:
    """Actions the footer offers now (bindings whose ``check_action`` allows them)."""
    return {b.binding.action for b in app.active_bindings.values() if b.enabled}


def palette(app: ShareTuiApp) -> list[str]:
    return [command.title for command in app.get_system_commands(app.screen)]


def counts() -> tuple[int, int, int]:
    return Grant.select().count(), HistoryEvent.select().count(), AutomationRun.select().count()


async def open_lead(pilot: Pilot[Any], lead_id: int) -> RecordScreen:
    """Put the cursor on ``lead_id`` in the Leads list and press enter."""
    app = pilot.app
    view = app.query_one("#leads")
    table = leads_table(app)
    table.focus()
    table.move_cursor(row=view.row_ids.index(lead_id))
    await press(pilot, "enter")
    await until(pilot, lambda: isinstance(app.screen, RecordScreen) and bool(app.screen.data))
    screen = app.screen
    assert isinstance(screen, RecordScreen)
    assert screen.ref == lead(lead_id)
    return screen


async def act_as(pilot: Pilot[Any], username: str) -> None:
    """ctrl+u, type the name, enter."""
    await press(pilot, "ctrl+u")
    assert isinstance(pilot.app.screen, ActAsModal)
    await type_text(pilot, username)
    await press(pilot, "enter")


def share_rows(screen: RecordScreen) -> list[tuple[str, str, str]]:
    """(user, access, time left) of each share on the record screen."""
    return [(r[1], r[2], r[5]) for r in cells(screen.query_one("#shares", DataTable))]


# -- stories -----------------------------------------------------------------------------


def test_share_a_lead_for_three_days(demo: Core) -> None:
    """priya shares her lead with daniel; the preview guards the duration."""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 1)
        assert share_rows(screen) == []
        await press(pilot, "s")
        modal = app.screen
        assert isinstance(modal, ShareModal)
        modal.query_one("#user", Select).value = "daniel"
        preview = modal.query_one("#preview", Static)
        duration = modal.query_one("#duration", Input)
        duration.focus()

        # Typing shows when the share would end...
        duration.value = ""
        await type_text(pilot, "3d")
        assert "expires 2026-03-05 09:00" in text_of(preview)
        # ...and what is wrong with a duration it cannot read; then Share does nothing.
        duration.value = "3 parsecs"
        await settle(pilot)
        assert preview.has_class("invalid")
        assert "unknown unit 'parsecs'" in text_of(preview)
        before = counts()
        await pilot.click("#ok")
        await settle(pilot)
        assert app.screen is modal
        assert counts() == before
        assert not demo.access.can("daniel", L001, "read")

        duration.value = "3d"
        await settle(pilot)
        assert not preview.has_class("invalid")
        duration.focus()
        await press(pilot, "enter")  # enter in the duration box submits too

        assert app.screen is screen
        assert share_rows(screen) == [("daniel", "read", "3d 00:00:00")]
        assert demo.access.can("daniel", L001, "read")
        assert not demo.access.can("daniel", L001, "edit")

    run(app, story)


def test_renew_then_revoke_with_confirmation(demo: Core) -> None:
    """priya renews daniel's share of L003 for 7 days, then revokes it after confirming."""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 3)
        assert share_rows(screen) == [("daniel", "edit", "12d 00:00:00")]

        await press(pilot, "n")
        modal = app.screen
        assert isinstance(modal, RenewModal)
        assert "daniel" in modal.title_text
        assert modal.query_one("#access", Select).value == "edit"
        modal.query_one("#duration", Input).value = "7d"
        await press_ok(pilot)
        assert share_rows(screen) == [("daniel", "edit", "7d 00:00:00")]
        renewed = demo.history.query(None, HistoryFilter(record=L003, event="renewed"))
        assert [(h["user"], h["status"]) for h in renewed] == [("daniel", "completed")]

        await press(pilot, "x")
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert "daniel" in confirm.question
        await press(pilot, "escape")  # changing one's mind keeps the share
        assert share_rows(screen) == [("daniel", "edit", "7d 00:00:00")]
        await press(pilot, "x")
        await press(pilot, "y")
        assert app.screen is screen
        assert share_rows(screen) == []
        assert not demo.access.can("daniel", L003, "read")
        revoked = demo.history.query(None, HistoryFilter(record=L003, event="revoked"))
        assert [h["user"] for h in revoked] == ["daniel"]
        assert not screen.check_action("revoke", ())

    run(app, story)


def test_act_as_a_sales_user_offers_only_what_he_may_do(demo: Core) -> None:
    """After ctrl+u daniel: his list is what the core lets him see; a lead shared
    with him read-only offers neither edit nor share (keys, footer and palette),
    his own lead offers both. priya, the owner, is offered them on her lead."""
    priya = demo.users.get("priya")
    assert demo.sharing.share("lead", 1, "daniel", requester=priya, duration="2d", access="read").ok
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        assert not any(title.startswith("Lead:") for title in palette(app))
        await open_lead(pilot, 1)
        assert {"edit_record", "share"} <= offered(app)
        assert {"Lead: share", "Lead: revoke", "Lead: edit"} <= set(palette(app))

        await act_as(pilot, "daniel")  # leaves the record for the list
        assert "as daniel (sales)" in app.sub_title
        expected = visible_ids(demo, "daniel")
        assert 1 in expected and 3 in expected and 6 in expected and 2 not in expected
        assert listed_ids(app) == expected
        reach = {int(r[0]): r[2] for r in cells(leads_table(app))}  # id, name, your access, ...
        assert reach[1].startswith("shared read") and reach[6] == "own"

        screen = await open_lead(pilot, 1)
        assert screen.perms.level == "read"
        for action in ("edit_record", "share", "post_activity", "revoke", "renew"):
            assert not screen.check_action(action, ()), action
        assert not {"edit_record", "share"} & offered(app)
        titles = palette(app)
        assert "Lead: share" not in titles and "Lead: edit" not in titles
        await press(pilot, "e")  # a key the footer does not offer does nothing
        assert app.screen is screen
        assert Lead.get_by_id(1).stage == "qualified"
        await press(pilot, "escape")

        screen = await open_lead(pilot, 6)
        assert screen.check_action("edit_record", ()) and screen.check_action("share", ())
        assert {"edit_record", "share"} <= offered(app)

    run(app, story)


def test_a_share_runs_out_when_the_clock_moves(demo: Core) -> None:
    """A one-hour share: daniel sees the lead, then +1 hour takes it away."""
    priya = demo.users.get("priya")
    assert demo.sharing.share("lead", 1, "daniel", requester=priya, duration="1h", access="read").ok
    app = make_app(demo, acting="daniel", demo=True, poll_seconds=0)
    said = record_notifications(app)

    async def story(pilot: Pilot[Any]) -> None:
        assert 1 in listed_ids(app)
        screen = await open_lead(pilot, 1)
        assert share_rows(screen) == [("daniel", "read", "01:00:00")]

        await press(pilot, "t")
        assert "2026-03-02 10:00 UTC (frozen)" in app.sub_title
        assert any("1 share(s) expired" in line for line in said)
        assert share_rows(screen) == []  # the record screen reloaded: the share is gone
        assert screen.perms.level == "none"
        assert not demo.access.can("daniel", L001, "read")
        expired = demo.history.query(None, HistoryFilter(record=L001, event="expired"))
        assert [h["user"] for h in expired] == ["daniel"]

        await press(pilot, "escape")
        assert 1 not in listed_ids(app)
        assert listed_ids(app) == visible_ids(demo, "daniel")

    run(app, story)


def test_posting_a_meeting_fires_the_automation(demo: Core) -> None:
    """A Meeting Scheduled owned by sofia: the automation shares the lead with her."""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)
    said = record_notifications(app)
    assert not demo.access.can("sofia", L001, "read")

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 1)
        activities = screen.query_one("#activities", DataTable).row_count
        await press(pilot, "p")
        modal = app.screen
        assert isinstance(modal, PostActivityModal)
        modal.query_one("#type", Select).value = "Meeting Scheduled"
        await settle(pilot)
        modal.query_one("#owner", Select).value = "sofia"
        modal.query_one("#note", Input).value = "Call about the fixed rate"
        await press_ok(pilot)

        assert app.screen is screen
        # priya may not read runs (DESIGN §9): she hears that one ran, not what it did.
        assert any("1 automation run(s)" in line for line in said), said
        assert not any("Meeting owner gets the lead" in line for line in said), said
        assert screen.query_one("#activities", DataTable).row_count == activities + 1
        assert share_rows(screen) == [("sofia", "edit", "14d 00:00:00")]
        assert demo.access.can("sofia", L001, "edit")

    run(app, story)


def test_complete_the_open_task(demo: Core) -> None:
    """k completes the one open task on L003 (T008, priya's)."""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)
    task_id = demo.records.tasks_of(L003)[0].id

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 3)
        assert screen.check_action("complete_task", ())
        assert cells(screen.query_one("#tasks", DataTable))[0][4] == "-"
        await press(pilot, "k")
        assert cells(screen.query_one("#tasks", DataTable))[0][4] == "2026-03-02 09:00 UTC"
        assert demo.records.task(task_id).completed_at is not None
        assert not screen.check_action("complete_task", ())

    run(app, story)


def test_edit_the_stage_of_a_lead(demo: Core) -> None:
    """priya moves L001 to 'converted'. (A reader is not offered edit: see the act-as story.)"""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 1)
        assert "stage qualified" in text_of(screen.query_one("#fields", Static))
        await press(pilot, "e")
        modal = app.screen
        assert isinstance(modal, EditRecordModal)
        assert modal.query_one("#f-stage", Select).value == "qualified"
        modal.query_one("#f-stage", Select).value = "converted"
        await press_ok(pilot)
        assert app.screen is screen
        assert "stage converted" in text_of(screen.query_one("#fields", Static))
        assert Lead.get_by_id(1).stage == "converted"

    run(app, story)


VALID_AUTOMATION = TEMPLATE.replace('"New automation"', '"Evaluators read the lead"').replace(
    '"Meeting Scheduled"', '"Loan Evaluation"'
)


def test_automations_create_publish_pause_dry_run_and_trace(demo: Core) -> None:
    """As admin: a new automation through the editor, its status keys, a dry run
    that changes nothing, and the runs and trace of one that has run."""
    priya = demo.users.get("priya")
    demo.records.post_activity(lead(9), type="Meeting Scheduled", owner="daniel", actor=priya)
    assert len(demo.automations.process_pending()) == 1  # a run to look at
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)
    said = record_notifications(app)

    def statuses() -> dict[str, str]:
        return {a["name"]: a["status"] for a in demo.automations.list(actor=None)}

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "3")
        table = app.query_one("#automations").query_one(DataTable)
        assert table.row_count == 6

        await press(pilot, "N")
        editor = app.screen
        assert isinstance(editor, AutomationEditor)
        area = editor.query_one(TextArea)
        validation = editor.query_one("#validation", Static)
        area.text = VALID_AUTOMATION.replace('access = "read"', 'access = "write"')
        await settle(pilot)
        assert "13: actions[0].access: 'write' is not one of read, edit" in text_of(validation)
        await press(pilot, "ctrl+s")
        assert app.screen is editor
        assert len(statuses()) == 6

        area.text = VALID_AUTOMATION
        await settle(pilot)
        assert "✓ valid" in text_of(validation)
        await press(pilot, "ctrl+s")
        assert not isinstance(app.screen, AutomationEditor)
        assert statuses()["Evaluators read the lead"] == "draft"
        assert table.row_count == 7

        names = [row[1] for row in cells(table)]
        mine = names.index("Evaluators read the lead")
        table.move_cursor(row=mine)
        await press(pilot, "P")
        assert statuses()["Evaluators read the lead"] == "published"
        assert cells(table)[mine][2] == "published"
        table.move_cursor(row=mine)  # the reload loses the cursor: see the xfail test below
        await press(pilot, "z")
        assert statuses()["Evaluators read the lead"] == "paused"
        assert any("Evaluators read the lead is paused" in line for line in said)

        table.move_cursor(row=names.index("Meeting owner gets the lead"))
        before = counts()
        await press(pilot, "d")
        prompt = app.screen
        assert isinstance(prompt, PromptModal)
        prompt.query_one(Input).value = "lead one"
        await press(pilot, "enter")  # a worker raises SharetuiError: a notification, no dialog
        assert any("not done: write the record as 'lead 5'" in line for line in said), said
        assert not isinstance(app.screen, (PromptModal, ErrorModal))
        said.clear()
        await press(pilot, "d")
        app.screen.query_one(Input).value = "lead ²"  # a digit to str.isdigit, not to int()
        await press(pilot, "enter")
        assert any("not done: write the record as 'lead 5'" in line for line in said), said
        assert not isinstance(app.screen, (PromptModal, ErrorModal))
        await press(pilot, "d")
        app.screen.query_one(Input).value = "lead 1"
        await press(pilot, "enter")
        dialog = app.screen
        assert isinstance(dialog, ErrorModal)
        assert dialog.title_text == "Dry run of 'Meeting owner gets the lead' on lead 1"
        assert "share_lead: succeeded — would share lead 1 with sofia (edit, 14d" in dialog.message
        assert dialog.message.endswith("(dry run: nothing was changed)")
        assert counts() == before
        assert not demo.access.can("sofia", L001, "read")
        await press(pilot, "escape")

        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, AutomationScreen)
        await until(pilot, lambda: screen.query_one("#runs", DataTable).row_count > 0)
        runs = cells(screen.query_one("#runs", DataTable))
        assert [(r[2], r[3]) for r in runs] == [("lead 9", "succeeded")]
        trace = text_of(screen.query_one("#trace", Static))
        assert "share_lead: succeeded — shared lead 9 with daniel (edit, 14d" in trace
        assert "Meeting owner gets the lead" in text_of(screen.query_one("#definition", Static))

    run(app, story)


def test_the_cursor_stays_on_the_automation_after_a_status_change(demo: Core) -> None:
    """Pause one automation, change your mind, publish it again: both keys act on it."""
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)
    name = "Personal Loan opportunities to the team lead"

    def status(of: str) -> str:
        return {a["name"]: a["status"] for a in demo.automations.list(actor=None)}[of]

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "3")
        table = app.query_one("#automations").query_one(DataTable)
        row = [r[1] for r in cells(table)].index(name)
        table.move_cursor(row=row)
        await press(pilot, "z")
        assert status(name) == "paused"
        await press(pilot, "P")
        assert status(name) == "published"
        assert table.cursor_row == row

    run(app, story)


def test_history_filters_and_csv_export(demo: Core, tmp_path: Path) -> None:
    """Section 4 is a ledger of requests, narrowed by status and source; E asks where
    to write what is shown as CSV, suggesting a file in the user's folders."""
    priya = demo.users.get("priya")
    assert demo.sharing.share("lead", 1, "ben", requester=priya, duration="1d").status == "failed"
    demo.records.post_activity(lead(9), type="Meeting Scheduled", owner="daniel", actor=priya)
    demo.automations.process_pending()
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)
    said = record_notifications(app)

    def shown() -> list[list[str]]:
        return cells(app.query_one("#history").query_one(DataTable))

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "4")
        assert len(shown()) == len(demo.history.query(None, HistoryFilter(requests_only=True)))

        app.query_one("#lv-status", Select).value = "failed"
        await settle(pilot)
        failed = demo.history.query(None, HistoryFilter(status="failed"), newest_first=True)
        assert [(h["event"], h["user"]) for h in failed] == [("share", "ben")]
        assert [r[1] for r in shown()] == ["failed"] * len(failed)
        assert [r[9] for r in shown()] == [h["reason"] or "" for h in failed]

        app.query_one("#lv-status", Select).clear()
        app.query_one("#lv-source", Select).value = "automation"
        await settle(pilot)
        automated = demo.history.query(None, HistoryFilter(source="automation", requests_only=True))
        assert automated
        assert [r[7] for r in shown()] == ["automation"] * len(automated)

        await press(pilot, "E")
        prompt = app.screen
        assert isinstance(prompt, PromptModal)
        suggested = Path(prompt.query_one(Input).value)
        assert suggested.name == "sharetui-history-20260302-090000.csv"
        assert suggested.parent == app.session.export_folder()
        target = tmp_path / "out" / "history.csv"
        prompt.query_one(Input).value = str(target)
        await press(pilot, "enter")
        with target.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        expected = demo.history.query(None, HistoryFilter(source="automation"), limit=None)
        assert [int(r["id"]) for r in rows] == [h["id"] for h in expected]
        assert {r["source"] for r in rows} == {"automation"}
        assert any(line.startswith("history exported: ") for line in said)

    run(app, story)


def _add_leads(core: Core, count: int) -> None:
    admin = core.users.get("admin")
    for i in range(count):
        core.records.add_lead(name=f"Extra {i:03d}", owner="priya", actor=admin, company="Extra Ltd")


def test_filter_as_you_type_and_cycle_the_sort(demo: Core) -> None:
    """The filter narrows after its debounce; o steps through the sortable columns, O
    reverses (test_power: header clicks, paging in a sort)."""
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        status = app.query_one("#leads").query_one("#list-status", Static)
        assert listed_ids(app) == visible_ids(demo, "admin") == list(range(1, 51))

        await press(pilot, "slash")
        assert isinstance(app.focused, Input)
        await type_text(pilot, "demir")
        expected = visible_ids(demo, "admin", search="demir")
        assert 0 < len(expected) < 50
        await until(pilot, lambda: listed_ids(app) == expected)
        await press(pilot, "enter")  # back to the table
        assert app.focused is leads_table(app)

        app.query_one("#leads").query_one("#filter", Input).value = ""
        await until(pilot, lambda: len(listed_ids(app)) == 50)

        await press(pilot, "o")
        assert listed_ids(app) == visible_ids(demo, "admin", sort="name")
        assert cells(leads_table(app))[0][1] == "Ahmed Farouk"
        assert "sort name A→Z" in text_of(status)
        await press(pilot, "O")
        assert listed_ids(app) == visible_ids(demo, "admin", sort="-name")
        assert cells(leads_table(app))[0][1] == "Zainab Hussain"
        assert "sort name Z→A" in text_of(status)
        for sort in ("owner", "stage", "company", "id"):  # "your access" is no sort
            await press(pilot, "o")
            assert listed_ids(app) == visible_ids(demo, "admin", sort=sort), sort
        await press(pilot, "O")
        assert listed_ids(app) == list(range(50, 0, -1))
        assert "sort id ↓" in text_of(status)

    run(app, story)


def test_page_down_and_up_from_the_filter_box(demo: Core) -> None:
    """More than 100 visible leads come a page at a time (keyset paging)."""
    _add_leads(demo, 60)
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        status = app.query_one("#leads").query_one("#list-status", Static)
        assert listed_ids(app) == list(range(1, 101))
        assert "more: PgDn" in text_of(status)
        await press(pilot, "slash")
        await press(pilot, "pagedown")  # one screen down within the page (test_power)...
        assert listed_ids(app) == list(range(1, 101))
        await page_down_to_next_page(pilot)  # ...and on, past its last row, to page 2
        assert listed_ids(app) == list(range(101, 111))
        assert text_of(status).startswith("page 2 · 10 shown")
        await press(pilot, "pageup")
        assert listed_ids(app) == list(range(1, 101))

    run(app, story)


def test_page_down_from_the_list_itself(demo: Core) -> None:
    """The list opens with the table focused; PageDown there should fetch page 2."""
    _add_leads(demo, 60)
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        assert app.focused is leads_table(app)
        assert listed_ids(app) == list(range(1, 101))
        await page_down_to_next_page(pilot)
        assert listed_ids(app) == list(range(101, 111))

    run(app, story)


async def page_down_to_next_page(pilot: Pilot[Any]) -> None:
    """PgDn moves a screen at a time; press it until the list shows its next page."""
    view = pilot.app.query_one("#leads")
    pages = len(view.page_starts)
    for _ in range(20):
        await press(pilot, "pagedown")
        if len(view.page_starts) > pages:
            return
    raise AssertionError("PgDn never reached the next page")


def test_the_access_column_fits_at_80_columns(demo: Core) -> None:
    """At 80x24 the list shows "your access" without scrolling sideways."""
    app = make_app(demo, acting="daniel", demo=True, poll_seconds=0)

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            table = leads_table(app)
            assert table.row_count > 0
            assert table.virtual_size.width <= table.scrollable_content_region.width

    asyncio.run(main())


def test_a_failing_worker_is_reported_and_the_app_goes_on(
    demo: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused share becomes a notification; a crash in a worker an error dialog.
    (A SharetuiError raised in a worker is in the automations story: a bad dry-run answer.)"""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 1)
        await press(pilot, "s")
        app.screen.query_one("#user", Select).value = "daniel"
        # daniel leaves the bank while the dialog is open
        demo.users.deactivate("daniel", actor=demo.users.get("admin"))
        await press_ok(pilot)
        # The dialog comes back with the refusal in it (and daniel no longer on offer).
        again = app.screen
        assert isinstance(again, ShareModal)
        # priya may not list users: the refusal does not say he is deactivated (H7).
        problem = text_of(again.query_one("#problem", Static))
        assert "'daniel' is not a user who may receive shares" in problem and "deactivated" not in problem
        assert again.query_one("#user", Select).value is Select.NULL
        await press(pilot, "escape")
        assert app.screen is screen
        assert share_rows(screen) == []

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(app.session, "share", broken)
        await press(pilot, "s")
        app.screen.query_one("#user", Select).value = "sofia"
        await press_ok(pilot)
        dialog = app.screen
        assert isinstance(dialog, ErrorModal)
        assert dialog.message == "RuntimeError: the database went away"
        await press(pilot, "enter")
        assert app.screen is screen
        assert not demo.access.can("sofia", L001, "read")
        await press(pilot, "escape")  # the app still answers keys
        assert not isinstance(app.screen, RecordScreen)

    run(app, story)


def help_table_text(app: ShareTuiApp, width: int | None = None) -> str:
    """The help screen's key table as text, at ``width`` or as wide as it is drawn."""
    static = app.screen.query_one(Static)
    console = Console(file=StringIO(), width=width or static.content_region.width, record=True)
    console.print(static.content)
    return console.export_text()


def test_help_lists_every_binding_id(core: Core) -> None:
    """? shows the one registry: every binding id of KEYS, under its description."""
    app = make_app(core, demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = help_table_text(app, width=200)
        assert [k.id for k in KEYS if k.id not in text] == []
        assert [k.description for k in KEYS if k.description not in text] == []
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)

    run(app, story)


def test_help_shows_each_binding_id_in_full(core: Core) -> None:
    """The ids are for remapping keys, so the dialog must show them whole."""
    app = make_app(core, demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "question_mark")
        text = help_table_text(app)
        assert [k.id for k in KEYS if k.id not in text] == []

    run(app, story)


def test_an_empty_database_explains_how_to_load_the_demo(core: Core) -> None:
    """No users yet: the app opens, says how to load the demo, and lists nothing."""
    app = make_app(core, demo=True, poll_seconds=0)
    said = record_notifications(app)

    async def story(pilot: Pilot[Any]) -> None:
        assert app.session.user is None
        assert "as nobody" in app.sub_title
        assert any(
            line.startswith("empty database:") and "sharetui load sample_data" in line for line in said
        )
        status = app.query_one("#leads").query_one("#list-status", Static)
        assert "no users yet" in text_of(status)
        assert leads_table(app).row_count == 0
        await press(pilot, "4")
        assert app.query_one("#history").query_one(DataTable).row_count == 0

    run(app, story)

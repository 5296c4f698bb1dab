"""Pilot stories for the power user's complaints (issue 16): each one presses the
keys of a complaint and checks that what stood in the way is gone."""

from __future__ import annotations

from typing import Any

from test_flows import (
    L001,
    L003,
    cells,
    demo,  # noqa: F401 - the fixture
    leads_table,
    listed_ids,
    offered,
    open_lead,
    page_down_to_next_page,
    press,
    press_ok,
    record_notifications,
    run,
    settle,
    text_of,
    type_text,
    until,
)
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static, TabbedContent, TextArea
from textual.widgets.data_table import ColumnKey

from sharetui.core.access import Page
from sharetui.core.service import Core
from sharetui.db.models import Lead, Opportunity
from sharetui.tui.app import make_app
from sharetui.tui.screens.automation import AutomationEditor, AutomationScreen
from sharetui.tui.screens.modals import (
    ConfirmModal,
    EditRecordModal,
    InfoModal,
    PromptModal,
    RenewModal,
    ShareModal,
)
from sharetui.tui.screens.record import RecordScreen


def test_unsaved_automation_edits_are_not_lost_on_escape(demo: Core) -> None:  # noqa: F811
    """e, type, esc: the editor asks; Cancel keeps the edits; Discard leaves."""
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "3")
        await press(pilot, "e")
        editor = app.screen
        assert isinstance(editor, AutomationEditor)
        area = editor.query_one(TextArea)
        area.text = area.text + "\n# my edit\n"
        await settle(pilot)
        await press(pilot, "escape")
        assert isinstance(app.screen, ConfirmModal)
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await press(pilot, "enter")  # enter on the focused Cancel keeps editing
        assert app.screen is editor
        assert "# my edit" in area.text
        await press(pilot, "escape")
        await press(pilot, "y")
        assert not isinstance(app.screen, AutomationEditor)

        # Unchanged: esc leaves without asking.
        await press(pilot, "e")
        assert isinstance(app.screen, AutomationEditor)
        await press(pilot, "escape")
        assert not isinstance(app.screen, (AutomationEditor, ConfirmModal))

    run(app, story)


def test_dry_run_accepts_the_record_shown_and_reports_without_alarm(demo: Core) -> None:  # noqa: F811
    """d then enter runs on the suggested record; the report is not a red error."""
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "3")
        await press(pilot, "d")
        prompt = app.screen
        assert isinstance(prompt, PromptModal)
        assert prompt.query_one(Input).value == "lead 1"
        await press(pilot, "enter")
        report = app.screen
        assert isinstance(report, InfoModal)
        assert report.message.endswith("(dry run: nothing was changed)")
        assert report.query_one(".dialog").has_class("info")
        assert not report.query_one(".dialog").has_class("error")

    run(app, story)


def test_automation_detail_keys_and_the_footer_follow_the_status(demo: Core) -> None:  # noqa: F811
    """On a draft the footer offers P Publish, on a published one z Pause; in the
    detail screen d, e, P and z work."""
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "3")
        view = app.query_one("#automations")
        table = view.query_one(DataTable)
        statuses = [row[2] for row in cells(table)]
        draft = next((i for i, s in enumerate(statuses) if s != "published"), None)
        published = statuses.index("published")
        table.move_cursor(row=published)
        await settle(pilot)
        assert "pause" in offered(app) and "publish" not in offered(app)
        if draft is not None:
            table.move_cursor(row=draft)
            await settle(pilot)
            assert "publish" in offered(app) and "pause" not in offered(app)

        table.move_cursor(row=published)
        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, AutomationScreen)
        await until(pilot, lambda: screen.status == "published")
        assert {"pause", "dry_run", "edit_automation"} <= offered(app)
        await press(pilot, "z")
        await until(pilot, lambda: screen.status == "paused")
        assert "publish" in offered(app)
        await press(pilot, "P")
        await until(pilot, lambda: screen.status == "published")
        await press(pilot, "d")
        assert isinstance(app.screen, PromptModal)
        await press(pilot, "escape")
        await press(pilot, "e")
        assert isinstance(app.screen, AutomationEditor)

    run(app, story)


def test_share_dialog_checks_live_keeps_input_and_offers_only_fitting_contexts(
    demo: Core,  # noqa: F811
) -> None:
    """Default duration from settings; the context list follows the recipient; a
    failed check keeps the dialog, in product words."""
    demo.settings.set("default_duration", "10d", actor=None)
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await open_lead(pilot, 1)
        await press(pilot, "s")
        modal = app.screen
        assert isinstance(modal, ShareModal)
        assert modal.query_one("#duration", Input).value == "10d"
        hint = modal.query_one("#context-hint", Static)
        context = modal.query_one("#context", Select)
        modal.query_one("#user", Select).value = "daniel"
        await settle(pilot)
        assert "none of this lead's activities is owned by daniel" in text_of(hint)
        assert context._options[1:] == []
        modal.query_one("#user", Select).value = "sofia"
        await settle(pilot)
        offered_ids = [value for _, value in context._options[1:]]
        assert offered_ids and text_of(hint) == ""
        activities = demo.records.activities_of(L001)
        owned_by_sofia = {a.id for a in activities if a.owner_id and a.owner.username == "sofia"}
        assert set(offered_ids) == owned_by_sofia

        modal.query_one("#until", Checkbox).value = True
        await settle(pilot)
        await press_ok(pilot)
        assert app.screen is modal  # kept, with what was entered
        problem = text_of(modal.query_one("#problem", Static))
        assert "needs a context activity" in problem and "--" not in problem
        assert modal.query_one("#user", Select).value == "sofia"
        context.value = offered_ids[0]
        await settle(pilot)
        assert text_of(modal.query_one("#problem", Static)) == ""  # live
        await press_ok(pilot)
        assert isinstance(app.screen, RecordScreen)
        assert demo.access.can("sofia", L001, "read")

    run(app, story)


def test_a_refused_share_comes_back_with_what_was_entered(demo: Core) -> None:  # noqa: F811
    """The core refuses (daniel already holds his cap of one lead): the dialog returns
    with the values and the reason."""
    demo.settings.set("share_cap_leads", 1, actor=None)
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await open_lead(pilot, 1)
        await press(pilot, "s")
        modal = app.screen
        assert isinstance(modal, ShareModal)
        modal.query_one("#user", Select).value = "daniel"
        modal.query_one("#duration", Input).value = "5d"
        await press_ok(pilot)
        await until(pilot, lambda: isinstance(app.screen, ShareModal) and app.screen is not modal)
        again = app.screen
        assert isinstance(again, ShareModal)
        assert again.query_one("#user", Select).value == "daniel"
        assert again.query_one("#duration", Input).value == "5d"
        assert "Not done" in text_of(again.query_one("#problem", Static))

    run(app, story)


def test_renew_has_its_own_dialog_and_says_when_access_goes_down(demo: Core) -> None:  # noqa: F811
    """n on daniel's edit share: access and duration only; renewing as read warns."""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)
    said = record_notifications(app)

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 3)
        await press(pilot, "n")
        modal = app.screen
        assert isinstance(modal, RenewModal)
        assert not modal.query("#user")
        assert str(modal.query_one("#ok", Button).label) == "Renew"
        modal.query_one("#access", Select).value = "read"
        await settle(pilot)
        assert "access goes down from edit to read" in text_of(modal.query_one("#preview", Static))
        await press_ok(pilot)
        assert app.screen is screen
        assert any("renewed with less access" in s and "daniel" in s for s in said), said
        assert not demo.access.can("daniel", L003, "edit")

    run(app, story)


def test_revoke_confirmation_focuses_cancel(demo: Core) -> None:  # noqa: F811
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await open_lead(pilot, 3)
        await press(pilot, "x")
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "enter")
        assert demo.access.can("daniel", L003, "read")

    run(app, story)


def test_edit_offers_stages_and_checks_the_amount_as_typed(demo: Core) -> None:  # noqa: F811
    """Stage is a choice; an empty or wrong amount keeps the dialog with a message;
    amounts read 380,000 in the list, the record and the dialog alike."""
    opp = Opportunity.select().order_by(Opportunity.id).first()
    Opportunity.update(amount=380000).where(Opportunity.id == opp.id).execute()
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "2")
        table = app.query_one("#opportunities").query_one(DataTable)
        assert "380,000" in cells(table)[0]
        await press(pilot, "enter")
        await until(pilot, lambda: isinstance(app.screen, RecordScreen) and bool(app.screen.data))
        screen = app.screen
        assert "amount 380,000" in text_of(screen.query_one("#fields", Static))
        await press(pilot, "e")
        modal = app.screen
        assert isinstance(modal, EditRecordModal)
        assert isinstance(modal.query_one("#f-stage"), Select)
        amount = modal.query_one("#f-amount", Input)
        assert amount.value == "380,000"
        amount.value = ""
        await settle(pilot)
        assert "Write an amount" in text_of(modal.query_one("#problem", Static))
        await press_ok(pilot)
        assert app.screen is modal
        amount.value = "lots"
        await settle(pilot)
        assert "must be a number" in text_of(modal.query_one("#problem", Static))
        amount.value = "410,500"
        modal.query_one("#f-stage", Select).value = "won"
        await settle(pilot)
        await press_ok(pilot)
        assert app.screen is screen
        row = Opportunity.get_by_id(opp.id)
        assert (row.amount, row.stage) == (410500.0, "won")

    run(app, story)


def test_page_down_moves_one_screen_then_to_the_next_page(demo: Core) -> None:  # noqa: F811
    for i in range(150):
        demo.records.add_lead(name=f"Lead {i:03d}", owner="priya", actor=None)
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        table = leads_table(app)
        view = app.query_one("#leads")
        start = table.cursor_row
        await press(pilot, "pagedown")
        step = table.cursor_row - start
        assert 10 < step < 60, step  # one screen, not a page of 100
        assert len(view.page_starts) == 1
        while len(view.page_starts) == 1:
            await press(pilot, "pagedown")
        assert table.cursor_row == 0
        await press(pilot, "pageup")
        assert len(view.page_starts) == 1 and table.cursor_row == len(view.row_ids) - 1

    run(app, story)


def test_escape_leaves_the_filter_and_keys_reach_the_list(demo: Core) -> None:  # noqa: F811
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        view = app.query_one("#leads")
        await press(pilot, "slash")
        assert app.focused is view.query_one("#filter", Input)
        await press(pilot, "escape")
        assert app.focused is leads_table(app)
        await press(pilot, "o")
        assert view.query_one("#filter", Input).value == ""
        assert view.sort == "name"

    run(app, story)


def test_share_revoke_renew_from_the_list(demo: Core) -> None:  # noqa: F811
    """s on a row opens that record with the share dialog; x asks to revoke."""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        view = app.query_one("#leads")
        table = leads_table(app)
        table.move_cursor(row=view.row_ids.index(3))
        await press(pilot, "s")
        await until(pilot, lambda: isinstance(app.screen, ShareModal))
        await press(pilot, "escape")
        assert isinstance(app.screen, RecordScreen) and app.screen.ref == L003
        await press(pilot, "escape")
        table.move_cursor(row=view.row_ids.index(3))
        await press(pilot, "n")
        await until(pilot, lambda: isinstance(app.screen, RenewModal))
        await press(pilot, "escape")
        await press(pilot, "escape")
        table.move_cursor(row=view.row_ids.index(3))
        await press(pilot, "x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))

    run(app, story)


def test_tab_switches_a_records_tabs_and_keys_wait_for_loading(demo: Core) -> None:  # noqa: F811
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        screen = await open_lead(pilot, 3)
        tabs = screen.query_one("#tabs", TabbedContent)
        assert tabs.active == "tab-shares"
        await press(pilot, "tab")
        assert tabs.active == "tab-timeline"
        await press(pilot, "shift+tab")
        await press(pilot, "shift+tab")
        assert tabs.active == "tab-history"

        # A key pressed while the record loads runs once it has loaded.
        await press(pilot, "escape")
        screen = RecordScreen(L003)
        app.push_screen(screen)
        assert screen.data is None
        screen.action_share()  # as a key would, before the record is there
        await until(pilot, lambda: isinstance(app.screen, ShareModal))

    run(app, story)


def test_the_palette_finds_a_record_by_id_or_name(demo: Core) -> None:  # noqa: F811
    """What the palette offers is what the acting user may read."""
    name = Lead.get_by_id(3).name
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        session = app.session
        by_name = session.find_records(name[:6].lower())
        assert (L003, name) in by_name
        assert session.find_records("lead 3")[0] == (L003, name)
        assert (L003, name) in session.find_records("3")
        app.session.act_as("daniel")
        readable = {ref.id for ref, _ in session.find_records("a", 50) if ref.entity.value == "lead"}
        assert readable <= {r.id for r in demo.access.visible("daniel", "lead", limit=1000).rows}

    run(app, story)


def _header_offset(table: DataTable[Any], key: str) -> tuple[int, int]:
    """Where to click on the header of the column ``key`` (its first cell of text)."""
    x = 0
    for column in table.ordered_columns:
        if column.key.value == key:
            return (x + table.cell_padding, 0)
        x += column.get_render_width(table)
    raise AssertionError(f"no column {key}")


def _header(table: DataTable[Any], key: str) -> str:
    return table.columns[ColumnKey(key)].label.plain


def test_a_header_click_sorts_by_its_column_and_a_second_reverses(demo: Core) -> None:  # noqa: F811
    """Clicks on the company header sort by company (▲), then the other way (▼), in the
    order the core gives; a column that sorts nothing says so; the filter keeps the sort
    and PgDn walks on past the first page in it."""
    admin = demo.users.get("admin")
    for i in range(60):
        demo.records.add_lead(name=f"Extra {i:03d}", owner="priya", actor=admin, company=f"extra {i % 7}")
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    def core_page(sort: str, after: str | None = None, search: str | None = None) -> Page:
        return demo.access.visible("admin", "lead", limit=100, sort=sort, after=after, search=search)

    async def story(pilot: Pilot[Any]) -> None:
        view = app.query_one("#leads")
        table = leads_table(app)
        status = view.query_one("#list-status", Static)
        assert _header(table, "id") == "id ▲" and _header(table, "company") == "company"

        await pilot.click(table, offset=_header_offset(table, "company"))
        await settle(pilot)
        first = core_page("company")
        assert view.sort == "company" and listed_ids(app) == [r.id for r in first.rows]
        assert _header(table, "company") == "company ▲" and _header(table, "id") == "id"
        assert "sort company A→Z" in text_of(status)
        companies = [row[5] for row in cells(table)]
        assert companies.index("extra 0") < companies.index("Fjordline Shipping UK")  # case ignored

        await page_down_to_next_page(pilot)  # on past the last row, to page 2 in the same sort
        assert listed_ids(app) == [r.id for r in core_page("company", first.next_cursor).rows]
        assert text_of(status).startswith("page 2 ·") and "sort company A→Z" in text_of(status)
        await press(pilot, "pageup")
        await press(pilot, "pageup")
        await press(pilot, "pageup")
        await press(pilot, "pageup")
        assert listed_ids(app) == [r.id for r in first.rows]

        await pilot.click(table, offset=_header_offset(table, "company"))
        await settle(pilot)
        assert view.sort == "-company" and _header(table, "company") == "company ▼"
        assert listed_ids(app) == [r.id for r in core_page("-company").rows]

        await press(pilot, "slash")
        await type_text(pilot, "extra")
        filtered = core_page("-company", search="extra")
        await until(pilot, lambda: listed_ids(app) == [r.id for r in filtered.rows])
        assert view.sort == "-company" and "sort company Z→A" in text_of(status)
        await press(pilot, "enter")

        notes = record_notifications(app)
        await pilot.click(table, offset=_header_offset(table, "access"))
        await settle(pilot)
        assert view.sort == "-company" and any("does not sort by your access" in n for n in notes)

    run(app, story)


def test_o_steps_through_the_columns_and_shift_o_reverses_case_insensitively(demo: Core) -> None:  # noqa: F811
    """For a keyboard: o sorts by the next column, O the other way; lower-case names
    sort among the others ("aaron" first, "zed" last), as the core orders them."""
    admin = demo.users.get("admin")
    for name in ("zed lower", "aaron lower", "Zoe Upper"):
        demo.records.add_lead(name=name, owner="priya", actor=admin)
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        view = app.query_one("#leads")
        table = leads_table(app)
        await press(pilot, "o")
        names = [row[1] for row in cells(table)]
        assert view.sort == "name" and names[0] == "aaron lower" and names[-2:] == ["zed lower", "Zoe Upper"]
        assert _header(table, "name") == "name ▲"
        await press(pilot, "O")
        assert view.sort == "-name" and [row[1] for row in cells(table)][:2] == ["Zoe Upper", "zed lower"]
        assert _header(table, "name") == "name ▼"
        await press(pilot, "o")
        assert view.sort == "owner" and _header(table, "owner") == "owner ▲"
        owners = [row[3] for row in cells(table)]
        assert owners == sorted(owners)
        assert listed_ids(app) == [
            r.id for r in demo.access.visible("admin", "lead", limit=100, sort="owner").rows
        ]

    run(app, story)


def test_history_reads_like_a_ledger(demo: Core) -> None:  # noqa: F811
    """One row per request, newest first by time, with duration and who asked; enter
    opens what became of it with the full reason; a day range narrows rows and chart."""
    from sharetui.core.history import HistoryFilter
    from sharetui.tui.widgets.ledger import LedgerView

    priya = demo.users.get("priya")
    failed = demo.sharing.share("lead", 1, "ben", requester=priya, duration="1d")
    assert failed.status == "failed"
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "4")
        ledger = app.query_one("#history").query_one(LedgerView)
        table = ledger.query_one(DataTable)
        requests = demo.history.query(None, HistoryFilter(requests_only=True))
        assert table.row_count == len(requests)  # one row per request, not two
        times = [r.at for r in ledger.rows]
        assert times == sorted(times, reverse=True)
        first = cells(table)[0]
        assert first[1] == "failed" and first[5] == "1d" and first[8] == "priya"
        status = text_of(ledger.query_one(".ledger-status", Static))
        assert f"{len(requests)} requests, newest first" in status

        table.focus()
        table.move_cursor(row=0)
        await press(pilot, "enter")
        detail = ledger.query_one(".ledger-detail", Static)
        assert detail.display
        assert failed.reason and failed.reason in text_of(detail)  # whole, however long

        granted = next(i for i, r in enumerate(ledger.rows) if r.status == "completed")
        table.move_cursor(row=granted)
        await settle(pilot)
        assert "granted" in text_of(detail)
        await press(pilot, "escape")
        assert not detail.display

        ledger.query_one("#lv-since", Input).value = "2026-03-01"
        await settle(pilot)
        assert all(r.at and r.at.date().isoformat() >= "2026-03-01" for r in ledger.rows)
        label = text_of(ledger.query_one("#lv-label-granted", Static))
        assert label.startswith("granted ")
        ledger.query_one("#lv-since", Input).value = "March"
        await settle(pilot)
        assert "YYYY-MM-DD" in text_of(ledger.query_one(".ledger-status", Static))

    run(app, story)


def test_the_ledger_pages_past_any_size_and_shows_waiting_requests(demo: Core) -> None:  # noqa: F811
    """More requests than a page: PgDn walks on to older ones; a request still being
    decided shows as processing; a sales user's ledger keeps to what the gate allows."""
    from sharetui.core.history import HistoryFilter
    from sharetui.db.models import ShareRequest
    from sharetui.tui.widgets.ledger import PAGE, LedgerView

    priya = demo.users.get("priya")
    for i in range(PAGE + 5):
        demo.sharing.share("lead", 1, "daniel", requester=priya, duration=f"{i + 1}h")
    ShareRequest.create(
        action="share",
        status="processing",
        entity_type="lead",
        entity_id=1,
        recipient_name="sofia",
        requester_id=priya.id,
        source="manual",
        created_at=demo.db_now(),
    )
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await press(pilot, "4")
        ledger = app.query_one("#history").query_one(LedgerView)
        table = ledger.query_one(DataTable)
        assert cells(table)[0][1] == "processing"
        seen = {r.id for r in ledger.rows}
        table.focus()
        while len(ledger.pages) == 1:
            await press(pilot, "pagedown")
        seen |= {r.id for r in ledger.rows}
        total = len(demo.history.query(None, HistoryFilter(requests_only=True), limit=None))
        assert len(seen - {0}) == total

        app.session.act_as("daniel")
        ledger.reload(keep_page=False)
        await settle(pilot)
        mine = {r.id for r in ledger.rows}
        allowed = {
            h["id"]
            for h in demo.history.query(
                demo.users.get("daniel"), HistoryFilter(requests_only=True), limit=None
            )
        }
        assert mine - {0} <= allowed

    run(app, story)


def test_a_records_timeline_and_the_expiring_soon_panel(demo: Core) -> None:  # noqa: F811
    """The Timeline tab draws every share of the record, ended ones too; the home
    screen counts shares ending within 24 h and 7 days: everyone's for an admin,
    only his own for a sales user."""
    from sharetui.tui.widgets.timeline import TimelineView

    priya = demo.users.get("priya")
    assert demo.sharing.share("lead", 3, "sofia", requester=priya, duration="5h").ok
    assert demo.sharing.revoke("lead", 3, "sofia", requester=priya).ok
    assert demo.sharing.share("lead", 1, "daniel", requester=priya, duration="3h").ok
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        panel = text_of(app.query_one("#expiring", Static))
        soon = demo.views.expiring_soon(None)
        assert "everyone's" in panel and f"{soon.day} in 24 h" in panel and f"{soon.week} in 7 days" in panel
        assert soon.day >= 1

        screen = await open_lead(pilot, 3)
        timeline = screen.query_one(TimelineView)
        rows = cells(timeline.query_one(DataTable))
        states = {(r[0], r[4].split()[0]) for r in rows}
        assert ("sofia", "revoked") in states and ("daniel", "active") in states
        assert "▼" in str(list(timeline.query_one(DataTable).columns.values())[-1].label)

        await press(pilot, "escape")
        app.session.act_as("daniel")
        app.refresh_views()
        await settle(pilot)
        panel = text_of(app.query_one("#expiring", Static))
        assert "your shares" in panel
        mine = demo.views.expiring_soon(demo.users.get("daniel"))
        assert all(s.user == "daniel" for s in mine.shares) and mine.day == 1

    run(app, story)


def test_a_60_by_15_terminal_stays_usable(demo: Core) -> None:  # noqa: F811
    """Every section number is on the bar, ? Help and q Quit lead the footer, and
    the help keeps its key column whole."""
    import asyncio

    from rich.console import Console

    from sharetui.tui.screens.help import HelpScreen
    from sharetui.tui.widgets.footer import AppFooter

    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def main() -> None:
        async with app.run_test(size=(60, 15)) as pilot:
            await settle(pilot)
            bar = text_of(app.query_one("#section-bar", Static))
            assert "6 Plug" in bar and len(bar.rstrip()) <= 58
            footer = app.screen.query_one(AppFooter)
            actions = [k.action for k in footer.query("FooterKey")]
            assert actions[:2] == ["help", "quit"], actions
            await press(pilot, "question_mark")
            assert isinstance(app.screen, HelpScreen)
            static = app.screen.query_one(Static)
            console = Console(width=static.content_region.width, record=True)
            console.print(static.content)
            assert "ctrl+u" in console.export_text()

    asyncio.run(main())


def test_a_select_searches_from_the_first_letter(demo: Core) -> None:  # noqa: F811
    """In the share dialog, typing 'so' on the closed user picker opens it on sofia."""
    app = make_app(demo, acting="priya", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await open_lead(pilot, 1)
        await press(pilot, "s")
        modal = app.screen
        assert isinstance(modal, ShareModal)
        picker = modal.query_one("#user", Select)
        assert picker.has_focus and not picker.expanded
        await press(pilot, "s", "o")
        assert picker.expanded
        await press(pilot, "enter")
        assert picker.value == "sofia"

    run(app, story)


def test_the_expiring_soon_panel_shows_as_many_shares_as_the_height_lets_after_a_resize(
    demo: Core,  # noqa: F811
) -> None:
    """How many of the soonest shares the panel lists depends on the terminal's height
    (none below 20 rows, one below 30, three from 30): a resize lays it out again, and a
    panel laid out before the terminal's size was known does not stay wrong."""
    import asyncio

    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)
    soonest = demo.views.expiring_soon(None).shares

    def listed() -> int:
        return len(text_of(app.query_one("#expiring", Static)).splitlines()) - 1

    async def main() -> None:
        async with app.run_test(size=(100, 18)) as pilot:
            await settle(pilot)
            assert listed() == 0
            await pilot.resize_terminal(100, 24)
            await settle(pilot)
            assert listed() == 1 and soonest[0].name in text_of(app.query_one("#expiring", Static))
            await pilot.resize_terminal(100, 34)
            await settle(pilot)
            assert listed() == min(3, len(soonest))

    asyncio.run(main())

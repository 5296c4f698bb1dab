"""The Leads and Opportunities lists: a window of one keyset page over the
visible records, never the whole table. Filter as you type, sort, page."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import Worker, get_current_worker

from sharetui.core.access import Page
from sharetui.core.views import ExpiringSoon
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.sorts import SORT_COLUMNS, TEXT_SORTS
from sharetui.errors import SharetuiError
from sharetui.tui.base import db_work
from sharetui.tui.bindings import bindings
from sharetui.tui.errors import ReportsWorkerErrors
from sharetui.tui.text import amount_text, data_text
from sharetui.tui.widgets import is_current_section, set_status
from sharetui.tui.widgets.table import Cell, CellTable, cell

__all__ = ["Cell", "RecordsTable", "RecordsView", "cell"]

PAGE_SIZE = 100
# The filter waits this long after a keystroke for the next one before it searches: long
# enough not to search for every letter of a word typed fast, short enough that the rows
# (a few ms of indexed search and one paint later) come within 200 ms of the last key.
FILTER_DEBOUNCE = 0.08
# The columns a list shows, by key, with their headers; a column whose key is one of the
# record's sorts (sharetui.domain.sorts) sorts the list when its header is clicked.
COLUMN_LABELS = {"access": "your access"}


class RecordsTable(CellTable):
    """The list's table (see :class:`CellTable`)."""


def _cut(value: str | None, width: int) -> Cell | Text:
    """Long names are shortened so the access column fits at 80 columns."""
    text = value or ""
    return cell(text if len(text) <= width else text[: width - 1] + "…")


def sort_label(sort: str) -> str:
    """``name A→Z``, ``owner Z→A``, ``amount ↑``, ``id ↓``: how the status line names a sort."""
    column, desc = sort.lstrip("-"), sort.startswith("-")
    if column in TEXT_SORTS or column == "owner":
        return f"{column} {'Z→A' if desc else 'A→Z'}"
    return f"{column} {'↓' if desc else '↑'}"


def _compact_reach(reach: str) -> str:
    """``shared edit until 2026-12-05 09:00 UTC`` → ``shared edit → 12-05 09:00`` (zone in the header;
    the record shows the exact expiry and a countdown)."""
    if reach.startswith("shared ") and " until " in reach:
        head, when = reach.split(" until ", 1)
        return f"{head} → {when[5:16]}"
    return reach


class RecordsView(ReportsWorkerErrors, Vertical):
    """A list of leads or opportunities the acting user can see."""

    BINDINGS = bindings("list")

    class Opened(Message):
        def __init__(self, ref: RecordRef, then: str | None = None) -> None:
            """``then``: the record screen's action to run once it shows (s, x, n on a list)."""
            super().__init__()
            self.ref = ref
            self.then = then

    def __init__(self, entity: EntityType, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entity = entity
        self.sort = "id"
        self.search = ""
        self.view: str | None = None  # a saved view picked from the bar
        self.page_starts: list[str | None] = [None]  # cursors of the pages before this one
        self.next_cursor: str | None = None
        self.row_ids: list[int] = []
        self.narrow = False
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        if self.entity is EntityType.LEAD:  # the home screen
            yield Static("", id="expiring", classes="expiring")
        with Horizontal(classes="list-bar"):
            yield Select[str]([], prompt="views: all", id="view", classes="view-picker", compact=True)
            yield Input(placeholder="filter as you type (/)", id="filter")
            yield Static("", id="list-status", classes="list-status")
        table = RecordsTable(id="records", cursor_type="row", zebra_stripes=True)
        yield table

    NARROW = 100  # below this many columns, the least important columns give way

    def _columns(self) -> list[str]:
        """The keys of the columns shown, in order."""
        base = ["id", "name", "access", "owner", "stage"]
        if self.narrow:
            return base
        return base + (["company"] if self.entity is EntityType.LEAD else ["type", "amount"])

    def _sortable(self) -> list[str]:
        """The shown columns the list can sort by, in the order ``o`` steps through them."""
        return [c for c in self._columns() if c in SORT_COLUMNS[self.entity]]

    def _set_columns(self, sort: str) -> None:
        """(Re)make the table's columns, the one ``sort`` orders by with ▲ or ▼: done as
        the rows of a new sort are shown, so the arrow and the rows change together."""
        table = self.query_one(DataTable)
        table.clear(columns=True)
        column, desc = sort.lstrip("-"), sort.startswith("-")
        for key in self._columns():
            label = COLUMN_LABELS.get(key, key)
            if key == column:
                label += " ▼" if desc else " ▲"
            table.add_column(label, key=key)
        self._header_sort = sort

    _header_sort: str | None = None  # the sort the headers show

    def on_mount(self) -> None:
        self._load_views()
        self._fit_picker()
        self.narrow = self.app.size.width < self.NARROW
        self._set_columns(self.sort)
        if is_current_section(self):
            self.reload()

    def _fit_picker(self) -> None:
        """Below 80 columns the filter needs the bar: the picker steps aside (V still saves)."""
        self.query_one("#view", Select).display = self.app.size.width >= 80

    def on_resize(self) -> None:
        self._fit_picker()
        if self._expiring_soon is not None:  # how many of the soonest fit depends on the height
            self._show_expiring(self._expiring_soon)
        narrow = self.app.size.width < self.NARROW
        if narrow != self.narrow:
            self.narrow = narrow
            self._set_columns(self.sort)
            self.reload()

    # -- loading -------------------------------------------------------------------------
    def reload(self, *, keep_page: bool = True) -> None:
        """Read the list again (the page shown, or the first) and, on the home screen,
        the "expiring soon" panel: something may have changed (a change seen, the clock,
        another acting user)."""
        self._reload_list(keep_page=keep_page)
        if self.entity is EntityType.LEAD:
            self._load_expiring()

    def _reload_list(self, *, keep_page: bool = True) -> None:
        """Read the list (another page, sort, filter or view): the panel stays as it is."""
        if not keep_page:
            self.page_starts = [None]
        self._widths = self._text_widths()
        self._load(self.page_starts[-1])

    def _text_widths(self) -> dict[str, int]:
        """How wide a name, a company or a type may be: a share of the terminal, so
        wide terminals show them whole and 80 columns still shows the access column."""
        width = self.app.size.width
        if width < 80:  # the access column stays on screen at 60 columns
            return {"name": 14, "company": 16, "type": 10}
        return {"name": max(22, width // 4), "company": max(24, width // 4), "type": max(14, width // 8)}

    _widths: dict[str, int] = {"name": 22, "company": 24, "type": 14}

    @db_work(exit_on_error=False, exclusive=True, group="records")
    def _load(self, after: str | None) -> None:
        session = self.session
        user = session.user
        if user is None:
            self.app.call_from_thread(self._show_empty)
            return
        worker = get_current_worker()
        sort = self.sort
        if self.view is not None:
            page = session.view_page(self.entity, self.view, after=after, limit=PAGE_SIZE, sort=sort)
        else:
            page = session.page(
                self.entity, after=after, limit=PAGE_SIZE, search=self.search or None, sort=sort
            )
        owners = session.owners({r.values["owner_id"] for r in page.rows})
        rows = self._cells(page, owners)
        self.app.call_from_thread(self._show_unless_replaced, worker, page, rows, user.username, sort)

    @db_work(exit_on_error=False, exclusive=True, group="expiring")
    def _load_expiring(self) -> None:
        session = self.session
        if session.user is None:
            return
        worker = get_current_worker()
        soon = session.expiring_soon()
        self.app.call_from_thread(self._show_expiring_unless_replaced, worker, soon)

    def _show_unless_replaced(
        self, worker: Worker[None], page: Page, rows: list[tuple[int, list[Any]]], who: str, sort: str
    ) -> None:
        # A newer load (the filter changed again, another page) cancelled this one while
        # its query ran: its rows are stale. Checked here, on the UI thread, where the
        # cancelling happens, so no order of events lets old rows replace new ones.
        if not worker.is_cancelled:
            self._show(page, rows, who, sort)

    _expiring_shown: Text | None = None
    _expiring_soon: ExpiringSoon | None = None  # what the panel shows, for a resize to lay out again

    def _show_expiring_unless_replaced(self, worker: Worker[None], soon: ExpiringSoon) -> None:
        if not worker.is_cancelled:
            self._show_expiring(soon)

    def _show_expiring(self, soon: ExpiringSoon) -> None:
        """The home screen's "expiring soon" panel: counts, then the soonest few."""
        self._expiring_soon = soon
        panel = self.query_one("#expiring", Static)
        whose = "everyone's shares" if soon.everyone else "your shares"
        head = Text.assemble(
            ("Expiring soon", "bold"),
            f" ({whose}): ",
            (f"{soon.day} in 24 h", "bold red" if soon.day else "dim"),
            " · ",
            (f"{soon.week} in 7 days", "bold yellow" if soon.week else "dim"),
        )
        lines = [head]
        room = 3 if self.app.size.height >= 30 else 1 if self.app.size.height >= 20 else 0
        for share in soon.shares[:room]:
            left = share.expires_at - soon.now
            hours = int(left.total_seconds() // 3600)
            when = f"in {hours // 24}d {hours % 24}h" if hours >= 24 else f"in {hours}h"
            lines.append(
                Text.assemble(
                    ("  " + when.ljust(9), "red" if hours < 24 else "yellow"),
                    data_text(f" {share.record} {share.name}"),
                    data_text(f" · {share.user} {share.access}", "dim"),
                )
            )
        text = Text("\n").join(lines)
        if text != self._expiring_shown:  # a refresh that changed nothing lays nothing out
            self._expiring_shown = text
            panel.update(text)

    def _show_empty(self) -> None:
        self.query_one(DataTable).clear()
        self.query_one("#list-status", Static).update("no users yet: sharetui load sample_data")

    def _cells(self, page: Page, owners: dict[int, str]) -> list[tuple[int, list[Any]]]:
        """The table's rows for a page (built in the worker: no widget is touched)."""
        rows = []
        for row in page.rows:
            v = row.values
            reach = cell(
                _compact_reach(row.reach),
                style="green" if row.reach == "own" else "cyan" if row.reach.startswith("shared") else "",
            )
            # How the user reaches a record comes right after its name: it stays on
            # screen at 80 columns, where the company may be cut.
            cells: list[Any] = [
                cell(str(v["id"])),
                _cut(v["name"], self._widths["name"]),
                reach,
                cell(owners.get(v["owner_id"], "?")),
                cell(v["stage"]),
            ]
            if self.narrow:
                pass
            elif self.entity is EntityType.LEAD:
                cells += [_cut(v["company"], self._widths["company"])]
            else:
                cells += [_cut(v["type"], self._widths["type"]), cell(amount_text(v["amount"]))]
            rows.append((v["id"], cells))
        return rows

    def _show(self, page: Page, rows: list[tuple[int, list[Any]]], who: str, sort: str) -> None:
        table = self.query_one(RecordsTable)
        row_before = table.cursor_row
        if sort != self._header_sort:
            self._set_columns(sort)
        if self._cursor_at is not None:  # a page turned by PgDn/PgUp: top or bottom
            row_before = self._cursor_at if self._cursor_at >= 0 else len(rows) - 1
            self._cursor_at = None
        # The whole page in one go: its cells know their widths, so the table measures
        # them without drawing, and the paint draws only the rows on screen.
        table.set_rows((str(ident), cells) for ident, cells in rows)
        self.row_ids = [ident for ident, _ in rows]
        if rows:
            table.move_cursor(row=min(max(row_before, 0), len(rows) - 1))
        self.next_cursor = page.next_cursor
        number = len(self.page_starts)
        more = " · more: PgDn" if page.next_cursor else ""
        back = " · PgUp" if number > 1 else ""
        found = f"{len(page.rows)} shown" if page.rows else "nothing visible"
        set_status(
            self.query_one("#list-status", Static),
            f"page {number} · {found} · sort {sort_label(sort)} · as {who}{more}{back}",
        )

    # -- keys ---------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_cycle_sort(self) -> None:
        """``o``: sort by the next sortable column shown, ascending."""
        columns = self._sortable()
        column = self.sort.lstrip("-")
        at = columns.index(column) if column in columns else -1
        self._sort_by(columns[(at + 1) % len(columns)])

    def action_reverse_sort(self) -> None:
        """``O``: the same column the other way."""
        self._sort_by(self.sort[1:] if self.sort.startswith("-") else f"-{self.sort}")

    def _sort_by(self, sort: str) -> None:
        """Sort by ``sort`` from the first page; the filter and any picked view stay."""
        self.sort = sort
        self._reload_list(keep_page=False)

    _cursor_at: int | None = None  # where the cursor goes on the page being loaded (-1: last row)

    def _screenful(self) -> int:
        table = self.query_one(DataTable)
        return max(1, table.scrollable_content_region.height - 1)  # the header row stays

    def action_next_page(self) -> None:
        """One screen down; past the last loaded row, the next page from its top."""
        table = self.query_one(DataTable)
        last = len(self.row_ids) - 1
        if table.cursor_row < last:
            table.move_cursor(row=min(last, table.cursor_row + self._screenful()))
        elif self.next_cursor:
            self.page_starts.append(self.next_cursor)
            self._cursor_at = 0
            self._reload_list()

    def action_prev_page(self) -> None:
        """One screen up; above the first row, the previous page from its bottom."""
        table = self.query_one(DataTable)
        if table.cursor_row > 0:
            table.move_cursor(row=max(0, table.cursor_row - self._screenful()))
        elif len(self.page_starts) > 1:
            self.page_starts.pop()
            self._cursor_at = -1
            self._reload_list()

    def _selected_ref(self) -> RecordRef | None:
        table = self.query_one(DataTable)
        if self.row_ids and 0 <= table.cursor_row < len(self.row_ids):
            return RecordRef(self.entity, self.row_ids[table.cursor_row])
        return None

    def action_open_record(self, then: str | None = None) -> None:
        ref = self._selected_ref()
        if ref is not None:
            self.post_message(self.Opened(ref, then))

    def action_share_row(self) -> None:
        self.action_open_record("share")

    def action_revoke_row(self) -> None:
        self.action_open_record("revoke")

    def action_renew_row(self) -> None:
        self.action_open_record("renew")

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        """A click on a sortable column's header sorts by it; a second click reverses."""
        event.stop()
        column = str(event.column_key.value)
        if column not in SORT_COLUMNS[self.entity]:
            label = COLUMN_LABELS.get(column, column)
            self.notify(f"the list does not sort by {label}: click another column's header", timeout=3)
            return
        self._sort_by(f"-{column}" if self.sort == column else column)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_record()

    # -- saved views ---------------------------------------------------------------------
    def _load_views(self, pick: str | None = None) -> None:
        """Fill the picker with the acting user's views and the shared ones."""
        names = self.session.view_names(self.entity) if self.session.user is not None else []
        picker = self.query_one("#view", Select)
        picker.set_options([(name, name) for name in names])
        if pick in names:
            picker.value = pick

    @on(Select.Changed, "#view")
    def _view_picked(self, event: Select.Changed) -> None:
        picked = None if event.value is Select.NULL else str(event.value)
        if picked == self.view:
            return
        self.view = picked
        search = ""
        if picked is not None:  # the view's filter and sort (a header or o sorts it another way)
            search, self.sort = self.session.view_settings(self.entity, picked)
        self.search = search
        box = self.query_one("#filter", Input)
        with box.prevent(Input.Changed):
            box.value = search
        self._reload_list(keep_page=False)

    def action_save_view(self) -> None:
        """Save what the list shows (its filter, sort and any picked view's conditions)
        as a view of the acting user's."""
        from sharetui.tui.screens.modals import PromptModal

        def save(name: str | None) -> None:
            if not name:
                return
            try:
                saved = self.session.save_view(
                    self.entity, name, search=self.search, sort=self.sort, like=self.view
                )
            except SharetuiError as exc:
                self.app.notify(f"Not saved: {exc.message}", severity="error")
                return
            self.app.notify(f"Saved the view {saved!r}")
            self._load_views(pick=saved)

        self.app.push_screen(
            PromptModal("Save this list as a view named", placeholder="e.g. hot dental leads"), save
        )

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        value = event.value.strip()

        def apply() -> None:
            if value != self.search:
                self.search = value
                if self.view is not None:  # typing leaves the view: a plain filter again
                    self.view = None
                    picker = self.query_one("#view", Select)
                    with picker.prevent(Select.Changed):
                        picker.clear()
                self._reload_list(keep_page=False)

        self._debounce = self.set_timer(FILTER_DEBOUNCE, apply)

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_leave_filter(self) -> None:
        """esc in the filter: back to the list (the filter stays as typed)."""
        self.query_one(DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_filter":
            return self.query_one("#filter", Input).has_focus
        return True

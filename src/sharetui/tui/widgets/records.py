"""The Leads and Opportunities lists: a window of one keyset page over the
visible records, never the whole table. Filter as you type, sort, page."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from sharetui.core.access import Page, RecordRef
from sharetui.core.roles import EntityType
from sharetui.tui.bindings import bindings
from sharetui.tui.errors import ReportsWorkerErrors

PAGE_SIZE = 100
SORTS = ["id", "name", "-name", "-id"]
SORT_LABELS = {"id": "id ↑", "-id": "id ↓", "name": "name A→Z", "-name": "name Z→A"}


def _cut(value: str | None, width: int) -> Text:
    """Long names are shortened so the access column fits at 80 columns."""
    text = value or ""
    return Text(text if len(text) <= width else text[: width - 1] + "…")


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
        def __init__(self, ref: RecordRef) -> None:
            super().__init__()
            self.ref = ref

    def __init__(self, entity: EntityType, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entity = entity
        self.sort = "id"
        self.search = ""
        self.page_starts: list[str | None] = [None]  # cursors of the pages before this one
        self.next_cursor: str | None = None
        self.row_ids: list[int] = []
        self.narrow = False
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="list-bar"):
            yield Input(placeholder="filter as you type (/)", id="filter")
            yield Static("", id="list-status", classes="list-status")
        table = DataTable(id="records", cursor_type="row", zebra_stripes=True)
        yield table

    NARROW = 100  # below this many columns, the least important columns give way

    def _columns(self) -> list[str]:
        base = ["id", "name", "your access", "owner", "stage"]
        if self.narrow:
            return base
        return base + (["company"] if self.entity is EntityType.LEAD else ["type", "amount"])

    def on_mount(self) -> None:
        self.narrow = self.app.size.width < self.NARROW
        self.query_one(DataTable).add_columns(*self._columns())
        self.reload()

    def on_resize(self) -> None:
        narrow = self.app.size.width < self.NARROW
        if narrow != self.narrow:
            self.narrow = narrow
            table = self.query_one(DataTable)
            table.clear(columns=True)
            table.add_columns(*self._columns())
            self.reload()

    # -- loading -------------------------------------------------------------------------
    def reload(self, *, keep_page: bool = True) -> None:
        if not keep_page:
            self.page_starts = [None]
        self._load(self.page_starts[-1])

    @work(thread=True, exit_on_error=False, exclusive=True, group="records")
    def _load(self, after: str | None) -> None:
        session = self.app.session  # type: ignore[attr-defined]
        if session.user is None:
            self.app.call_from_thread(self._show_empty)
            return
        page = session.page(
            self.entity, after=after, limit=PAGE_SIZE, search=self.search or None, sort=self.sort
        )
        owners = session.owners({r.values["owner_id"] for r in page.rows})
        self.app.call_from_thread(self._show, page, owners)

    def _show_empty(self) -> None:
        self.query_one(DataTable).clear()
        self.query_one("#list-status", Static).update("no users yet: sharetui load sample_data")

    def _show(self, page: Page, owners: dict[int, str]) -> None:
        table = self.query_one(DataTable)
        row_before = table.cursor_row
        table.clear()
        self.row_ids = []
        for row in page.rows:
            v = row.values
            reach = Text(
                _compact_reach(row.reach),
                style="green" if row.reach == "own" else "cyan" if row.reach.startswith("shared") else "",
            )
            # How the user reaches a record comes right after its name: it stays on
            # screen at 80 columns, where the company may be cut.
            cells: list[Any] = [
                Text(str(v["id"])),
                _cut(v["name"], 22),
                reach,
                Text(owners.get(v["owner_id"], "?")),
                Text(v["stage"] or ""),
            ]
            if self.narrow:
                pass
            elif self.entity is EntityType.LEAD:
                cells += [_cut(v["company"], 24)]
            else:
                cells += [_cut(v["type"], 14), Text(f"{v['amount']:,.0f}")]
            table.add_row(*cells, key=str(v["id"]))
            self.row_ids.append(v["id"])
        if self.row_ids:
            table.move_cursor(row=min(max(row_before, 0), len(self.row_ids) - 1))
        self.next_cursor = page.next_cursor
        number = len(self.page_starts)
        more = " · more: PgDn" if page.next_cursor else ""
        back = " · PgUp" if number > 1 else ""
        found = f"{len(page.rows)} shown" if page.rows else "nothing visible"
        who = self.app.session.user.username if self.app.session.user else "-"  # type: ignore[attr-defined]
        self.query_one("#list-status", Static).update(
            f"page {number} · {found} · sort {SORT_LABELS[self.sort]} · as {who}{more}{back}"
        )

    # -- keys ---------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.reload(keep_page=False)

    def action_next_page(self) -> None:
        if self.next_cursor:
            self.page_starts.append(self.next_cursor)
            self.reload()

    def action_prev_page(self) -> None:
        if len(self.page_starts) > 1:
            self.page_starts.pop()
            self.reload()

    def action_open_record(self) -> None:
        table = self.query_one(DataTable)
        if self.row_ids and 0 <= table.cursor_row < len(self.row_ids):
            self.post_message(self.Opened(RecordRef(self.entity, self.row_ids[table.cursor_row])))

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_record()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        value = event.value.strip()

        def apply() -> None:
            if value != self.search:
                self.search = value
                self.reload(keep_page=False)

        self._debounce = self.set_timer(0.15, apply)

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_page":
            return bool(self.next_cursor)
        if action == "prev_page":
            return len(self.page_starts) > 1
        return True

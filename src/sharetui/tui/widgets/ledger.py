"""The share history as a ledger: one row per request with its outcome, newest
first by time, a page at a time; enter shows what became of the request (its
lifecycle) and its full reason; a chart counts shares granted, expired and
revoked per day over the selected range (Textual's ``Sparkline``).

The page and the chart load apart: turning a page reads one keyset page (the
chart's range has not changed, so it is not counted again), while a new filter
or a change seen elsewhere reads both, each in its own worker, so the rows show
as soon as they are read, however long the count of a large range takes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Sparkline, Static
from textual.worker import Worker, get_current_worker

from sharetui.core.history import CHART_EVENTS, STATUSES, HistoryFilter
from sharetui.core.views import HistoryRow, LedgerPage
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Source
from sharetui.domain.time import display_zone, local_text
from sharetui.tui.base import db_work
from sharetui.tui.errors import ReportsWorkerErrors
from sharetui.tui.text import line
from sharetui.tui.widgets import set_status
from sharetui.tui.widgets.select import SearchSelect
from sharetui.tui.widgets.table import CellTable, cell

PAGE = 100
CHART_DAYS = timedelta(days=30)  # the chart's range when no "from" day is chosen
OUTCOME = {"share": "granted", "renew": "renewed", "revoke": "revoked"}
OUTCOME_STYLE = {"failed": "red", "processing": "yellow", "revoked": "magenta", "renewed": "cyan"}
CHART_STYLE = {"granted": "green", "expired": "yellow", "revoked": "red"}


def outcome(row: HistoryRow) -> str:
    """What a request came to: granted, renewed, revoked, failed, or processing."""
    if row.status in ("failed", "processing"):
        return row.status
    return OUTCOME.get(row.event, row.event)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def parse_day(text: str) -> date | None:
    """``2026-03-02`` (or blank: None); ValueError names what to write."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"write a day as YYYY-MM-DD, not {text!r}") from None


def days(flt: HistoryFilter, counts: dict[str, dict[str, int]], now: datetime | None = None) -> list[str]:
    """Every day of the chart: the filter's range (else the last 30 days), or the days with counts."""
    since = flt.since or (now - CHART_DAYS if now else None)
    first = since.date() if since else (date.fromisoformat(min(counts)) if counts else None)
    last = (flt.until - timedelta(days=1)).date() if flt.until else None
    if last is None and now is not None:
        last = now.date()
    if last is None and counts:
        last = date.fromisoformat(max(counts))
    if first is None or last is None or last < first:
        return sorted(counts)
    span = min((last - first).days, 366)
    return [(first + timedelta(days=i)).isoformat() for i in range(span + 1)]


class LedgerView(ReportsWorkerErrors, Vertical):
    """The ledger of every record (``record`` None) or of one record."""

    def __init__(self, record: RecordRef | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.record = record
        self.rows: list[HistoryRow] = []
        self.pages: list[tuple[datetime, int] | None] = [None]  # keys of the pages shown so far
        self.next: tuple[datetime, int] | None = None
        self.users_filled = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="filters"):
            yield SearchSelect([], prompt="any user", id="lv-user", type_to_search=True)
            yield Select([(s, s) for s in STATUSES], prompt="any status", id="lv-status")
            yield Select([(s.value, s.value) for s in Source], prompt="any source", id="lv-source")
            if self.record is None:
                yield Select(
                    [("leads", "lead"), ("opportunities", "opportunity")], prompt="any record", id="lv-entity"
                )
            yield Input(placeholder="from YYYY-MM-DD", id="lv-since", classes="day")
            yield Input(placeholder="to YYYY-MM-DD", id="lv-until", classes="day")
        with Horizontal(classes="chart"):
            for event in CHART_EVENTS:
                with Vertical(classes="series"):
                    yield Static("", id=f"lv-label-{event}", classes="series-label")
                    yield Sparkline([], id=f"lv-chart-{event}", classes=f"spark-{event}")
        # On a record the table keeps the id its History tab always had (#history).
        ident = "history" if self.record else None
        yield CellTable(id=ident, classes="ledger", cursor_type="row", zebra_stripes=True)
        yield Static("", classes="ledger-detail")
        yield Static("", classes="list-status ledger-status")

    def on_mount(self) -> None:
        columns = ["at", "outcome", "record", "user", "access", "for", "expires", "source", "by", "reason"]
        if self.record is not None:
            columns.remove("record")
        self.query_one(DataTable).add_columns(*columns)
        self.query_one(".ledger-detail", Static).display = False

    # -- the filter ----------------------------------------------------------------------
    def _value(self, ident: str) -> str | None:
        found = self.query(f"#{ident}")
        if not found:
            return None
        widget = found.first()
        if isinstance(widget, Select):
            return None if widget.value is Select.NULL else str(widget.value)
        assert isinstance(widget, Input)
        return widget.value.strip() or None

    def filter(self) -> HistoryFilter:
        """The chosen filter; ValueError if a day cannot be read."""
        since = parse_day(self._value("lv-since") or "")
        until = parse_day(self._value("lv-until") or "")
        return HistoryFilter(
            record=self.record,
            user=self._value("lv-user"),
            status=self._value("lv-status"),
            source=self._value("lv-source"),
            entity=self._value("lv-entity"),
            since=datetime.combine(since, datetime.min.time(), UTC) if since else None,
            until=datetime.combine(until, datetime.min.time(), UTC) + timedelta(days=1) if until else None,
        )

    def reload(self, *, keep_page: bool = True) -> None:
        """Read the page shown (or the first, ``keep_page`` False) and count the chart
        again: the filter changed, or the history may have (a change seen elsewhere)."""
        try:
            flt = self.filter()
        except ValueError as exc:
            self._say(Text(str(exc), style="red"))
            return
        if not keep_page:
            self.pages = [None]
        self._load(flt, self.pages[-1])
        self._count(flt)

    def _turn(self) -> None:
        """Read the page ``self.pages`` ends with: the filter, and so the chart, stay."""
        try:
            flt = self.filter()
        except ValueError as exc:
            self._say(Text(str(exc), style="red"))
            return
        self._load(flt, self.pages[-1])

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.reload(keep_page=False)

    @on(Input.Changed, ".day")
    def _day_typed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            parse_day(event.value)
        except ValueError as exc:
            event.input.set_class(True, "invalid")
            self._say(Text(str(exc), style="red"))
            return
        event.input.set_class(False, "invalid")
        self.reload(keep_page=False)

    @on(Input.Submitted, ".day")
    def _day_done(self) -> None:
        self.query_one(DataTable).focus()

    # -- loading ---------------------------------------------------------------------------
    @db_work(exit_on_error=False, exclusive=True, group="ledger")
    def _load(self, flt: HistoryFilter, before: tuple[datetime, int] | None) -> None:
        session = self.session
        worker = get_current_worker()
        if session.user is None:  # nobody acting (an empty database): nothing to show
            self.app.call_from_thread(self._show_unless_replaced, worker, LedgerPage((), None), [], [])
            return
        page = session.ledger(flt, before=before, limit=PAGE)
        zone = display_zone()
        rows = [self._cells(h, zone) for h in page.rows]  # built here: no widget is touched
        users = [] if self.users_filled else session.user_filter_choices()
        self.app.call_from_thread(self._show_unless_replaced, worker, page, rows, users)

    @db_work(exit_on_error=False, exclusive=True, group="ledger-chart")
    def _count(self, flt: HistoryFilter) -> None:
        session = self.session
        worker = get_current_worker()
        counts: dict[str, dict[str, int]] = {}
        if session.user is not None:
            # The chart covers the chosen range, or the last 30 days: a whole history
            # of millions of rows would cost more to count than anyone reads from it.
            since = flt if flt.since else replace(flt, since=session.now() - CHART_DAYS)
            counts = session.history_per_day(since)
        self.app.call_from_thread(self._chart_unless_replaced, worker, flt, counts)

    def _cells(self, h: HistoryRow, zone: tzinfo | None) -> list[Any]:
        what = outcome(h)
        cells = [
            cell(local_text(h.at, zone=zone)),
            cell(what, OUTCOME_STYLE.get(what, "green")),
            cell(h.record),
            cell(h.user or "-"),
            cell(h.access or "-"),
            cell(h.duration or "-"),
            cell(local_text(h.expires_at, zone=zone)),
            cell(h.source),
            cell(h.by or "-"),
            cell(h.reason or ""),
        ]
        if self.record is not None:
            del cells[2]
        return cells

    def _show_unless_replaced(
        self, worker: Worker[None], page: LedgerPage, rows: list[list[Any]], users: list[str]
    ) -> None:
        # A newer load (another page, another filter) cancelled this one while it read:
        # its rows are stale. Checked on the UI thread, where the cancelling happens.
        if not worker.is_cancelled:
            self._show(page, rows, users)

    def _chart_unless_replaced(
        self, worker: Worker[None], flt: HistoryFilter, counts: dict[str, dict[str, int]]
    ) -> None:
        if not worker.is_cancelled:
            self._chart(flt, counts)

    def _show(self, page: LedgerPage, rows: list[list[Any]], users: list[str]) -> None:
        table = self.query_one(CellTable)
        cursor = table.cursor_row if self._cursor_at is None else self._cursor_at
        self._cursor_at = None
        self.rows = list(page.rows)
        self.next = page.next
        table.set_rows((None, cells) for cells in rows)
        if self.rows:
            table.move_cursor(row=min(max(cursor, 0), len(self.rows) - 1))
        if users and not self.users_filled:
            self.users_filled = True
            self.query_one("#lv-user", Select).set_options([(u, u) for u in users])
        number = len(self.pages)
        parts = [
            f"page {number}",
            plural(len(self.rows), "request") + ", newest first" if self.rows else "no requests match",
            "enter: what became of it",
        ]
        if self.next:
            parts.append("PgDn: older")
        if number > 1:
            parts.append("PgUp: newer")
        self._say(" · ".join(parts))

    def _chart(self, flt: HistoryFilter, counts: dict[str, dict[str, int]]) -> None:
        span = days(flt, counts, self.session.now())
        for event in CHART_EVENTS:
            series = [float(counts.get(day, {}).get(event, 0)) for day in span]
            total = int(sum(series))
            label = Text.assemble((event, CHART_STYLE[event]), f" {total} ")
            if span:
                label.append(f"{span[0][5:]} to {span[-1][5:]}", style="dim")
            self.query_one(f"#lv-label-{event}", Static).update(label)
            self.query_one(f"#lv-chart-{event}", Sparkline).data = series or [0.0]

    def clear(self) -> None:
        """Show nothing (the record can no longer be read)."""
        self.rows = []
        self.query_one(DataTable).clear()
        self.query_one(".ledger-detail", Static).display = False

    def _say(self, text: str | Text) -> None:
        set_status(self.query_one(".ledger-status", Static), text)

    # -- keys ------------------------------------------------------------------------------
    def current(self) -> HistoryRow | None:
        table = self.query_one(DataTable)
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            return self.rows[table.cursor_row]
        return None

    @on(DataTable.RowSelected)
    def _expand(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.current()
        if row is not None:
            self._lifecycle(row)

    @on(DataTable.RowHighlighted)
    def _moved(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        detail = self.query_one(".ledger-detail", Static)
        if detail.display:  # the open detail follows the cursor
            row = self.current()
            if row is not None:
                self._lifecycle(row)

    @db_work(exit_on_error=False, exclusive=True, group="ledger-detail")
    def _lifecycle(self, row: HistoryRow) -> None:
        rows = self.session.lifecycle(row)
        self.app.call_from_thread(self._show_lifecycle, row, rows)

    def _show_lifecycle(self, row: HistoryRow, rows: list[HistoryRow]) -> None:
        lines = [
            line(
                (f"request {row.request_id or '-'}", "b"),
                " · ",
                (f"{outcome(row)}", OUTCOME_STYLE.get(outcome(row), "green")),
                " · ",
                (row.record, ""),
                " · for ",
                (row.user or "-", "b"),
                " · asked by ",
                (row.by or "-", ""),
            )
        ]
        if row.reason:
            lines.append(line(("reason ", "dim"), (row.reason, "red" if row.status == "failed" else "")))
        for h in rows:
            if h.event in OUTCOME:  # the request rows themselves
                continue
            lines.append(
                line(
                    ("  " + local_text(h.at), "dim"),
                    "  ",
                    (h.event.replace("_", " "), CHART_STYLE.get(h.event, "")),
                    "  ",
                    (f"{h.access or ''}", ""),
                    (f"  until {local_text(h.expires_at)}" if h.expires_at else "", "dim"),
                    (f"  — {h.reason}" if h.reason else "", ""),
                )
            )
        detail = self.query_one(".ledger-detail", Static)
        detail.update(Text("\n").join(lines))
        detail.display = True
        self.screen.refresh_bindings()  # esc now closes the detail

    def close_detail(self) -> bool:
        """esc: close the detail pane (True if one was open)."""
        detail = self.query_one(".ledger-detail", Static)
        if detail.display:
            detail.display = False
            self.screen.refresh_bindings()
            return True
        return False

    _cursor_at: int | None = None  # where the cursor goes on the page being read

    def older(self) -> None:
        table = self.query_one(DataTable)
        last = len(self.rows) - 1
        if table.cursor_row < last:
            step = max(1, table.scrollable_content_region.height - 1)
            table.move_cursor(row=min(last, table.cursor_row + step))
        elif self.next:
            self.pages.append(self.next)
            self._cursor_at = 0  # the new page from its top (moved there when it shows)
            self._turn()

    def newer(self) -> None:
        table = self.query_one(DataTable)
        if table.cursor_row > 0:
            step = max(1, table.scrollable_content_region.height - 1)
            table.move_cursor(row=max(0, table.cursor_row - step))
        elif len(self.pages) > 1:
            self.pages.pop()
            self._turn()

    def export_filter(self) -> HistoryFilter:
        return replace(self.filter(), record=self.record)

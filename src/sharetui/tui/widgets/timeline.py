"""A record's shares over time: one row per share (who, access, from and to, how it
ended) with a bar on a common time axis, drawn by Rich's ``Bar`` (eighths of a
cell); the axis header marks now. Active shares are green, expired ones grey,
revoked ones red; until-completed shares are marked ``⧗``.

Every cell is a :class:`~sharetui.tui.widgets.table.Cell`, a bar too: the one
line of block characters ``Bar`` draws, in its style. So a record with hundreds
of shares is put in the table at once, measured by the cells' known widths,
and only the rows on screen are drawn."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from rich.bar import Bar
from rich.console import Console, ConsoleOptions
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from sharetui.core.views import Timeline, TimelineBar
from sharetui.domain.time import display_zone, local_text
from sharetui.tui.base import UsesApp
from sharetui.tui.widgets.table import Cell, CellTable, cell

# The axis: its start, its span in seconds, its width in cells; the zone times are shown
# in, and how Rich draws a bar that wide.
Scale = tuple[datetime, float, int, tzinfo | None, Console, ConsoleOptions]
STATE_COLOR = {"active": "green", "expired": "grey50", "revoked": "red"}
MIN_BAR = 12


def axis(start: datetime, end: datetime, now: datetime, width: int) -> Text:
    """The bar column's header: the span's first and last day with ``▼`` at now."""
    line = [" "] * width
    span = (end - start).total_seconds() or 1.0
    at = int((now - start).total_seconds() / span * (width - 1))
    left, right = local_text(start)[5:10], local_text(end)[5:10]
    for i, ch in enumerate(left[: width // 2]):
        line[i] = ch
    for i, ch in enumerate(right[: width // 2]):
        line[width - len(right) + i] = ch
    if 0 <= at < width:
        line[at] = "▼"
    return Text("".join(line))


def bar_cell(bar: Bar, console: Console, options: ConsoleOptions) -> Cell:
    """``bar`` as a cell: the line Rich's ``Bar`` draws (its block characters, padded to
    its width, in its style), drawn by the table as one segment."""
    line = next(iter(bar.__rich_console__(console, options)))
    return Cell(line.text, bar.style)


def _cells(b: TimelineBar, scale: Scale) -> tuple[Any, ...]:
    """One share's row: who, access, from, to, how it stands, and its bar on the axis."""
    start, span, width, zone, console, options = scale
    color = STATE_COLOR.get(b.state, "white")
    begin = (b.starts_at - start).total_seconds() / span * width
    stop = max(begin + 0.5, (b.ends_at - start).total_seconds() / span * width)
    return (
        cell(b.user),
        cell(b.access),
        cell(local_text(b.starts_at, zone=zone)[:16]),
        cell(local_text(b.ends_at, zone=zone)[:16]),
        cell(b.state + (" ⧗" if b.until_completed else ""), color),
        bar_cell(Bar(width, begin, stop, width=width, color=color), console, options),
    )


@dataclass(frozen=True, slots=True)
class Drawing:
    """A timeline ready to show: the bar column's width and header, the rows and the
    hint. Built by :func:`drawing` off the UI thread (the record screen's worker)."""

    width: int
    axis: Text | None  # None: never shared
    rows: list[tuple[None, tuple[Any, ...]]]
    hint: str


def drawing(timeline: Timeline, width: int, console: Console) -> Drawing:
    """The rows and header of ``timeline`` with bars ``width`` cells wide (no widget is
    touched: a worker may build it)."""
    bars = timeline.bars
    now = timeline.now
    if not bars:
        return Drawing(width, None, [], "never shared")
    start = min(min(b.starts_at for b in bars), now)
    end = max(max(b.ends_at for b in bars), now)
    span = (end - start).total_seconds() or 1.0
    scale = (start, span, width, display_zone(), console, console.options.update_width(width))
    rows = [(None, _cells(bar, scale)) for bar in bars]
    counts = {s: sum(1 for b in bars if b.state == s) for s in STATE_COLOR}
    hint = (
        f"{counts['active']} active · {counts['expired']} expired · {counts['revoked']} revoked"
        + (" · older shares not shown" if timeline.more else "")
        + " · ▼ now · ⧗ until the activity is completed"
    )
    return Drawing(width, axis(start, end, now, width), rows, hint)


class TimelineView(UsesApp, Vertical):
    """Shows a :class:`~sharetui.core.views.Timeline` (loaded by the record screen)."""

    def compose(self) -> ComposeResult:
        yield Static("", classes="hint timeline-hint")
        yield CellTable(classes="timeline", cursor_type="row")

    def bar_width(self) -> int:
        return max(MIN_BAR, self.app.size.width - 78)

    def show(self, timeline: Timeline | Drawing) -> None:
        """Show ``timeline``, or a :class:`Drawing` of it made for this view's bar width."""
        picture = (
            timeline
            if isinstance(timeline, Drawing)
            else drawing(timeline, self.bar_width(), self.app.console)
        )
        table = self.query_one(CellTable)
        table.clear(columns=True)
        if picture.axis is not None:
            table.add_column("user")
            table.add_column("access")
            table.add_column("from")
            table.add_column("to")
            table.add_column("state")
            table.add_column(picture.axis, width=picture.width)
            table.set_rows(picture.rows)
        self.query_one(".timeline-hint", Static).update(picture.hint)

"""A record's shares over time: one row per share (who, access, from and to, how it
ended) with a bar on a common time axis, drawn as Rich's ``Bar`` draws it (eighths
of a cell); the axis header marks now. Active shares are green, expired ones
grey, revoked ones red; until-completed shares are marked ``⧗``.

Every cell is a :class:`~sharetui.tui.widgets.table.Cell` (a bar too: one line of
block characters in one style), so a record with hundreds of shares is put in
the table at once, measured by the cells' known widths, and only the rows on
screen are drawn."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from rich.bar import BEGIN_BLOCK_ELEMENTS, END_BLOCK_ELEMENTS, FULL_BLOCK
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from sharetui.core.views import Timeline, TimelineBar
from sharetui.domain.time import display_zone, local_text
from sharetui.tui.base import UsesApp
from sharetui.tui.widgets.table import Cell, CellTable, cell

Scale = tuple[datetime, float, int, tzinfo | None]  # the axis: start, span (s), width (cells); the zone
STATE_COLOR = {"active": "green", "expired": "grey50", "revoked": "red"}
BAR_STYLE = {state: Style(color=color, bgcolor="default") for state, color in STATE_COLOR.items()}
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


def bar_text(width: int, begin: float, end: float) -> str:
    """A bar from ``begin`` to ``end`` (in cells, of ``width``) as ``rich.bar.Bar`` draws
    it: block characters in eighths of a cell, padded with spaces to ``width``."""
    begin, end = max(begin, 0), min(end, width)
    if begin >= end:
        return " " * width
    prefix_eighths = int(width * 8 * begin / width)
    prefix = " " * (prefix_eighths // 8)
    if prefix_eighths % 8:
        prefix += BEGIN_BLOCK_ELEMENTS[prefix_eighths % 8]
    body_eighths = int(width * 8 * end / width)
    body = FULL_BLOCK * (body_eighths // 8)
    if body_eighths % 8:
        body += END_BLOCK_ELEMENTS[body_eighths % 8]
    return prefix + body[len(prefix) :] + " " * (width - len(body))


def _cells(b: TimelineBar, scale: Scale) -> tuple[Any, ...]:
    """One share's row: who, access, from, to, how it stands, and its bar on the axis."""
    start, span, width, zone = scale
    color = STATE_COLOR.get(b.state, "white")
    begin = (b.starts_at - start).total_seconds() / span * width
    stop = max(begin + 0.5, (b.ends_at - start).total_seconds() / span * width)
    return (
        cell(b.user),
        cell(b.access),
        cell(local_text(b.starts_at, zone=zone)[:16]),
        cell(local_text(b.ends_at, zone=zone)[:16]),
        cell(b.state + (" ⧗" if b.until_completed else ""), color),
        Cell(bar_text(width, begin, stop), BAR_STYLE.get(b.state) or Style(color=color, bgcolor="default")),
    )


class TimelineView(UsesApp, Vertical):
    """Shows a :class:`~sharetui.core.views.Timeline` (loaded by the record screen)."""

    def compose(self) -> ComposeResult:
        yield Static("", classes="hint timeline-hint")
        yield CellTable(classes="timeline", cursor_type="row")

    def bar_width(self) -> int:
        return max(MIN_BAR, self.app.size.width - 78)

    def show(self, timeline: Timeline) -> None:
        table = self.query_one(CellTable)
        table.clear(columns=True)
        bars = timeline.bars
        now = timeline.now
        width = self.bar_width()
        if not bars:
            self.query_one(".timeline-hint", Static).update("never shared")
            return
        start = min(min(b.starts_at for b in bars), now)
        end = max(max(b.ends_at for b in bars), now)
        span = (end - start).total_seconds() or 1.0
        table.add_column("user")
        table.add_column("access")
        table.add_column("from")
        table.add_column("to")
        table.add_column("state")
        table.add_column(axis(start, end, now, width), width=width)
        scale = (start, span, width, display_zone())
        table.set_rows((None, _cells(bar, scale)) for bar in bars)
        counts = {s: sum(1 for b in bars if b.state == s) for s in STATE_COLOR}
        hint = (
            f"{counts['active']} active · {counts['expired']} expired · {counts['revoked']} revoked"
            + (" · older shares not shown" if timeline.more else "")
            + " · ▼ now · ⧗ until the activity is completed"
        )
        self.query_one(".timeline-hint", Static).update(hint)

"""A record's shares over time: one row per share (who, access, from and to, how it
ended) with a bar on a common time axis, drawn by Rich's ``Bar`` (half-cell
precision); the axis header marks now. Active shares are green, expired ones
grey, revoked ones red; until-completed shares are marked ``⧗``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.bar import Bar
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from sharetui.core.views import Timeline, TimelineBar
from sharetui.domain.time import local_text
from sharetui.tui.base import UsesApp
from sharetui.tui.text import data_text
from sharetui.tui.widgets.table import Table

Scale = tuple[datetime, float, int]  # the axis: its start, its span in seconds, its width in cells
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


def _cells(b: TimelineBar, scale: Scale) -> tuple[Any, ...]:
    """One share's row: who, access, from, to, how it stands, and its bar on the axis."""
    start, span, width = scale
    color = STATE_COLOR.get(b.state, "white")
    begin = (b.starts_at - start).total_seconds() / span * width
    stop = max(begin + 0.5, (b.ends_at - start).total_seconds() / span * width)
    return (
        data_text(b.user),
        data_text(b.access),
        data_text(local_text(b.starts_at)[:16]),
        data_text(local_text(b.ends_at)[:16]),
        Text(b.state + (" ⧗" if b.until_completed else ""), style=color),
        Bar(width, begin, stop, width=width, color=color),
    )


class TimelineView(UsesApp, Vertical):
    """Shows a :class:`~sharetui.core.views.Timeline` (loaded by the record screen)."""

    _filling = 0  # counts timelines shown, so a late rest of an older one is dropped

    def _add_rest(self, filling: int, bars: tuple[TimelineBar, ...], scale: Scale) -> None:
        if filling == self._filling:
            table = self.query_one(DataTable)
            for bar in bars:
                table.add_row(*_cells(bar, scale))

    def compose(self) -> ComposeResult:
        yield Static("", classes="hint timeline-hint")
        yield Table(classes="timeline", cursor_type="row")

    def bar_width(self) -> int:
        return max(MIN_BAR, self.app.size.width - 78)

    def show(self, timeline: Timeline) -> None:
        table = self.query_one(DataTable)
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
        scale = (start, span, width)
        # What fits on screen first; the rest right after that paint (a table measures
        # every cell it is given, and a record may have hundreds of shares).
        first = max(table.size.height, 20)
        for bar in bars[:first]:
            table.add_row(*_cells(bar, scale))
        self._filling += 1
        if bars[first:]:
            self.call_after_refresh(self._add_rest, self._filling, bars[first:], scale)
        counts = {s: sum(1 for b in bars if b.state == s) for s in STATE_COLOR}
        hint = (
            f"{counts['active']} active · {counts['expired']} expired · {counts['revoked']} revoked"
            + (" · older shares not shown" if timeline.more else "")
            + " · ▼ now · ⧗ until the activity is completed"
        )
        self.query_one(".timeline-hint", Static).update(hint)

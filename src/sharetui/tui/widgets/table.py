"""The tables every view uses.

:class:`Table` is a ``DataTable`` that repaints once it has measured.
``DataTable`` measures the rows added since its last idle moment when it next
goes idle. A paint that lands in between (a busy machine, a worker handing rows
back while the screen refreshes) is cached under the same key the measured
table then asks for, so the table kept header-wide columns ("dani" for
"daniel") until the cursor moved (Textual issue #4470). :class:`Table` drops
those drawings when a measurement changed a column's width.

:class:`CellTable` is the table of the long lists (the record lists, the
history ledger, a record's timeline): its cells are :class:`Cell` values that
know their width and draw as one segment, and :meth:`CellTable.set_rows`
replaces a whole page at once. What it draws is what ``DataTable`` draws,
segment for segment (a test compares the two): only the work is less.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, zip_longest
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual._types import SegmentLines
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import DuplicateKey, Row, RowKey

from sharetui.tui.text import data_text


class Table(DataTable[Any]):
    """A ``DataTable`` whose drawings never outlive its column widths."""

    def _widths(self) -> list[int]:
        return [column.get_render_width(self) for column in self.ordered_columns]

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        before = self._widths()
        self._measure_rows(new_rows)
        if self._widths() != before:
            # Every render cache is keyed on the update count: a new count is a clean slate.
            self._update_count += 1
            self.refresh()

    def _measure_rows(self, new_rows: Iterable[RowKey]) -> None:
        """What ``DataTable`` does when it goes idle after rows were added."""
        DataTable._update_dimensions(self, new_rows)


class Cell:
    """One line of plain text in a table cell, drawn as one segment (never markup).

    Rich's ``Text`` lays out words, wraps and justifies: measuring and drawing a
    page of 100 rows of ``Text`` cells took most of the time a PageDown costs
    (~90 µs to measure and ~200 µs to draw each cell). A cell of a list is one
    short line, so it knows its width up front and draws as one segment, which
    the table pads, crops and styles as before.
    """

    __slots__ = ("style", "text", "width")

    def __init__(self, text: str, style: str | Style = "") -> None:
        self.text = text
        self.style = (Style.parse(style) if style else None) if isinstance(style, str) else style
        self.width = cell_len(text)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Cell({self.text!r})"

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Segment(self.text, self.style)


def cell(value: str | None, style: str = "") -> Cell | Text:
    """A table cell for ``value``: a :class:`Cell`, or a ``Text`` for what is not one
    printable line (control characters, tabs, newlines, bidi controls), with those shown
    as escapes: ``Text`` alone would keep ``ESC`` and let the terminal act on it."""
    text = value or ""
    return Cell(text, style) if text.isprintable() else data_text(text, style)


class CellTable(Table):
    """A table of :class:`Cell` values, drawn straight to segments and measured by
    their known widths.

    ``DataTable`` draws every cell through Rich (``Styled(Padding(cell))``) and
    measures every new cell through the console (a terminal-size system call per
    cell): new rows after a PageDown cost ~100 µs a cell, most of the page's time.
    A :class:`Cell` that fits its column becomes the same segments directly (the
    same padding, styles and cache key as ``DataTable._render_cell``, whose
    internals this follows: Textual is pinned exactly, and a test compares the
    two drawings). Anything else is drawn and measured by ``DataTable`` itself.
    """

    _style_memo: Style | None = None
    _drawing = False
    _drawing_memo: dict[Any, Any] = {}  # each drawing sets its own

    def set_rows(self, rows: Iterable[tuple[str | None, Sequence[Any]]]) -> None:
        """Replace every row with ``rows`` (``(key, cells)`` pairs) at once.

        The same as :meth:`clear` and an :meth:`add_row` per row (the same keys,
        cursor and highlight message), without the per-row bookkeeping: one
        update, measured on the next idle moment.
        """
        self.clear()
        keys = [column.key for column in self.ordered_columns]
        locations, data, meta, new = self._row_locations, self._data, self.rows, self._new_rows
        for index, (key, cells) in enumerate(rows):
            if len(cells) > len(keys):
                raise ValueError("More values provided than there are columns.")
            row_key = RowKey(key)
            if row_key in locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            locations[row_key] = index
            data[row_key] = dict(zip_longest(keys, cells))
            meta[row_key] = Row(row_key, 1, None, False)
            new.add(row_key)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if self.row_count and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # as the first add_row after a clear does
        self._update_count += 1
        self.check_idle()

    def _measure_rows(self, new_rows: Iterable[RowKey]) -> None:
        """Column widths from the cells' known widths (``DataTable`` asks the console
        for each cell's measure); anything but plain cells is measured as before."""
        rows = [key for key in new_rows if key in self._row_locations]
        columns = self.ordered_columns
        keys = [column.key for column in columns]
        widths = [column.content_width for column in columns]
        data = self._data
        for row_key in rows:
            row = self.rows[row_key]
            if row.label is not None or row.height != 1:
                DataTable._update_dimensions(self, rows)
                return
            values = data[row_key]
            for index, key in enumerate(keys):
                value = values.get(key)
                if value is None:
                    continue
                if not isinstance(value, Cell):
                    DataTable._update_dimensions(self, rows)
                    return
                if value.width > widths[index]:
                    widths[index] = value.width
        for column, width in zip(columns, widths, strict=True):
            column.content_width = width
        total_width = sum(column.get_render_width(self) for column in self.columns.values())
        header_height = self.header_height if self.show_header else 0
        self.virtual_size = Size(
            total_width + self._row_label_column_width, self._total_row_height + header_height
        )

    def render_lines(self, crop: Region) -> list[Strip]:
        # ``rich_style`` walks every ancestor's CSS and DataTable asks for it once per
        # line, with the zebra stripes' styles and the column widths: within one
        # drawing none of them can change, so each is worked out once.
        self._style_memo = None
        self._drawing_memo: dict[Any, Any] = {}
        self._drawing = True
        try:
            return super().render_lines(crop)
        finally:
            self._drawing = False
            self._style_memo = None
            self._drawing_memo = {}

    def _memo(self, key: Any, make: Any) -> Any:
        memo = self._drawing_memo
        if key not in memo:
            memo[key] = make()
        return memo[key]

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> tuple[SegmentLines, SegmentLines]:
        """A data row's line as ``DataTable._render_line_in_row`` draws it (its code,
        for a row cursor and no labels or fixed rows or columns), with the styles and
        widths it looks up for every line looked up once a drawing."""
        row_index = self._row_locations.get(row_key)
        if (
            not self._drawing
            or row_index is None
            or self.cursor_type != "row"
            or self.fixed_rows
            or self.fixed_columns
            or (self._labelled_row_exists and self.show_row_labels)
        ):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        show_cursor = self.show_cursor
        cache_key = (
            row_key,
            line_no,
            base_style,
            cursor_location,
            hover_location,
            "row",
            show_cursor,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._row_render_cache.get(cache_key)
        if cached is not None:
            return cached
        if self.zebra_stripes:
            stripe = "datatable--odd-row" if row_index % 2 else "datatable--even-row"
            row_style = self._memo(stripe, lambda: self.get_component_styles(stripe).rich_style)
        else:
            row_style = base_style
        widths = self._memo("widths", lambda: [c.get_render_width(self) for c in self.ordered_columns])
        on_cursor = cursor_location.row == row_index
        hovered = hover_location.row == row_index
        render_cell = self._render_cell
        scrollable_row = [
            render_cell(row_index, index, row_style, width, cursor=on_cursor, hover=hovered)[line_no]
            for index, width in enumerate(widths)
        ]
        remaining_space = max(0, self.size.width - sum(widths))
        extend_style, _ = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hovered,
            on_cursor,
            show_cursor,
            self._show_hover_cursor,
            False,
            False,
        )
        extend_style = row_style + extend_style
        extend_style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        scrollable_row.append([Segment(" " * remaining_space, extend_style)])
        row_pair: tuple[SegmentLines, SegmentLines] = ([], scrollable_row)
        self._row_render_cache[cache_key] = row_pair
        return row_pair

    @property
    def rich_style(self) -> Style:
        if not self._drawing:
            return super().rich_style
        if self._style_memo is None:
            self._style_memo = super().rich_style
        return self._style_memo

    def _settings(self) -> tuple[Any, ...]:
        """What every cell's drawing reads from the table's reactives, read once a drawing."""
        return (
            self.cell_padding,
            bool(self.fixed_rows or self.fixed_columns),
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        settings = self._memo("settings", self._settings) if self._drawing else self._settings()
        pad, fixed, show_cursor, show_hover_cursor, fg_css, bg_css = settings
        if row_index < 0 or column_index < 0 or fixed:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        value = self._data.get(row_key, {}).get(column_key)
        if not isinstance(value, Cell) or self.rows[row_key].height != 1 or value.width > width - 2 * pad:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        lines = self._cell_render_cache.get(key)
        if lines is None:
            component_style, post_style = self._get_styles_to_render_cell(
                False, False, False, hover, cursor, show_cursor, show_hover_cursor, fg_css, bg_css
            )
            pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
            plain = pre + post_style if post_style else pre
            text_style = pre + value.style if value.style else pre
            if post_style:
                text_style = text_style + post_style
            # The segments DataTable's drawing simplifies to: the padding, the text and
            # the fill, with neighbours of the same style joined.
            after = " " * (width - pad - value.width)
            if text_style is plain:
                line = [Segment(" " * pad + value.text + after, plain)]
            else:
                line = [Segment(" " * pad, plain)] if pad else []
                line.append(Segment(value.text, text_style))
                if after:
                    line.append(Segment(after, plain))
            lines = [line]
            self._cell_render_cache[key] = lines
        return lines

    def render_line(self, y: int) -> Strip:
        if not self._drawing:
            return super().render_line(y)
        width, scroll_x, scroll_y, fixed_height = self._memo("line", self._line_settings)
        if y >= fixed_height:
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + width, self.rich_style)

    def _line_settings(self) -> tuple[int, int, int, int]:
        """What ``DataTable.render_line`` works out for every line: the width, the scroll
        offset and the height of the rows that do not scroll (the header)."""
        fixed = sum(self.get_row_height(self._row_locations.get_key(i)) for i in range(self.fixed_rows))
        if self.show_header:
            fixed += self.get_row_height(self._header_row_key)
        scroll_x, scroll_y = self.scroll_offset
        return self.size.width, scroll_x, scroll_y, fixed

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """A data row's line as ``DataTable._render_line`` makes it (its code, with the
        width and the column widths looked up once a drawing); when the row is as wide
        as the table (nothing to crop or pad), its segments simplified into one strip."""
        if not self._drawing:
            return super()._render_line(y, x1, x2, base_style)
        width = self._memo("line", self._line_settings)[0]
        try:
            row_key, y_offset_in_row = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        if row_key not in self._row_locations:  # the header
            return super()._render_line(y, x1, x2, base_style)
        widths = self._memo("widths", lambda: [c.get_render_width(self) for c in self.ordered_columns])
        cursor, hover = self.cursor_coordinate, self.hover_coordinate
        cache_key = (
            y,
            x1,
            x2,
            width,
            cursor,
            hover,
            base_style,
            self.cursor_type,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._line_cache.get(cache_key)
        if cached is not None:
            return cached
        fixed, scrollable = self._render_line_in_row(
            row_key, y_offset_in_row, base_style, cursor_location=cursor, hover_location=hover
        )
        if fixed:
            return super()._render_line(y, x1, x2, base_style)
        segments = list(chain.from_iterable(scrollable))
        if x1 == 0 and x2 == width and sum(widths) <= width:
            strip = Strip(Segment.simplify(segments), width)
        else:  # wider than the table, or scrolled sideways: cropped as DataTable crops
            strip = Strip(line_crop(segments, x1, x2, width)).adjust_cell_length(width, base_style).simplify()
        self._line_cache[cache_key] = strip
        return strip

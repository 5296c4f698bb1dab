"""The table every view uses: a ``DataTable`` that repaints once it has measured.

``DataTable`` measures the rows added since its last idle moment when it next
goes idle. A paint that lands in between (a busy machine, a worker handing rows
back while the screen refreshes) is cached under the same key the measured
table then asks for, so the table kept header-wide columns ("dani" for
"daniel") until the cursor moved (Textual issue #4470). :class:`Table` drops
those drawings when a measurement changed a column's width.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class Table(DataTable[Any]):
    """A ``DataTable`` whose drawings never outlive its column widths."""

    def _widths(self) -> list[int]:
        return [column.get_render_width(self) for column in self.ordered_columns]

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        before = self._widths()
        super()._update_dimensions(new_rows)
        if self._widths() != before:
            # Every render cache is keyed on the update count: a new count is a clean slate.
            self._update_count += 1
            self.refresh()

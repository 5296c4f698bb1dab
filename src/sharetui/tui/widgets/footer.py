"""The footer: Textual's, which at small widths (``compact``) puts '? Help' and
'q Quit' first and leaves out the demo clock and act-as keys (still in the help
and the palette), so what gets a person unstuck is never cut off."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

FIRST_WHEN_NARROW = ("help", "quit")
LEFT_OUT_WHEN_NARROW = ("advance_clock", "act_as")


def _left_out(item: object) -> bool:
    return isinstance(item, FooterKey) and item.action.startswith(LEFT_OUT_WHEN_NARROW)


class AppFooter(Footer):
    def compose(self) -> ComposeResult:
        items = list(super().compose())
        if self.compact:
            first = [i for i in items if isinstance(i, FooterKey) and i.action in FIRST_WHEN_NARROW]
            rest = [i for i in items if i not in first and not _left_out(i)]
            items = first + rest
            self.styles.grid_size_columns = len(items)
        yield from items


__all__ = ["AppFooter"]

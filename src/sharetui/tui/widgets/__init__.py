"""Widgets of the main screen's sections."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static


def is_current_section(view: Any) -> bool:
    """Whether ``view`` is the section on screen now.

    A section loads when it is shown (``action_show_section`` reloads it), not
    at start: loading every hidden section at once made the first screen wait
    for the user list, the history and the opportunities of a large company.
    """
    return getattr(view.app, "section", view.id) == view.id


def set_status(status: Static, text: str | Text) -> None:
    """Show ``text`` (plain, never markup) in a one-line status as wide as its text.

    Laid out again only when its width changes: a status that says "page 3" after
    "page 2" needs a repaint, and a layout would arrange the whole screen again
    on every page turned.
    """
    line = text if isinstance(text, Text) else Text(text)
    shown = status.content
    same_width = isinstance(shown, Text) and cell_len(shown.plain) == cell_len(line.plain)
    status.update(line, layout=not same_width)

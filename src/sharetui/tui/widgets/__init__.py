"""Widgets of the main screen's sections."""

from __future__ import annotations

from typing import Any


def is_current_section(view: Any) -> bool:
    """Whether ``view`` is the section on screen now.

    A section loads when it is shown (``action_show_section`` reloads it), not
    at start: loading every hidden section at once made the first screen wait
    for the user list, the history and the opportunities of a large company.
    """
    return getattr(view.app, "section", view.id) == view.id

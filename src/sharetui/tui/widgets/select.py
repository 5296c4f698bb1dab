"""A ``Select`` whose type-to-search starts at the first letter: Textual's only
searches once the list is open, so a letter typed on the closed, focused Select
did nothing until enter opened it."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.widgets import Select
from textual.widgets._select import SelectOverlay


class SearchSelect(Select[Any]):
    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        return bool(self._type_to_search and character is not None and character.isprintable())

    async def _on_key(self, event: events.Key) -> None:
        if self.expanded or not self._type_to_search or not (event.character and event.is_printable):
            return
        event.stop()
        event.prevent_default()
        self.action_show_overlay()  # the list opens, focused, and searches this first letter
        # After the list has taken focus (taking it starts a new search).
        overlay = self.query_one(SelectOverlay)
        self.call_after_refresh(overlay.post_message, events.Key(event.key, event.character))


__all__ = ["SearchSelect"]

"""Every key binding, from the one registry."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from sharetui.tui.bindings import KEYS

SCOPES = {
    "app": "Anywhere",
    "list": "Lead and opportunity lists",
    "record": "A lead or opportunity",
    "automations": "Automations",
    "history": "History",
}


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="sharetui.help_close")]

    def compose(self) -> ComposeResult:
        # Narrow terminals keep the key column whole and leave out the ids.
        wide = self.app.size.width >= 90
        table = Table(title="Keys (remap by id with SHARETUI_KEYMAP)", expand=True, show_edge=False)
        table.add_column("where", style="dim", ratio=2)
        table.add_column("key", style="bold", no_wrap=True, min_width=9)
        table.add_column("does", ratio=3)
        if wide:
            table.add_column("id", style="dim", no_wrap=True, min_width=28)
        for scope, label in SCOPES.items():
            for key in (k for k in KEYS if k.scope == scope):
                display = {"question_mark": "?", "slash": "/"}.get(key.key, key.key)
                table.add_row(label, display, key.description, *([key.id] if wide else []))
                label = ""
        table.add_row("Anywhere", "ctrl+p", "Command palette (noun: verb)", *([""] if wide else []))
        with VerticalScroll(classes="dialog help"):
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)

"""One automation: its definition and its runs with their traces; and the
editor, which validates a TOML definition as you type, exactly as
``sharetui automations add`` does."""

from __future__ import annotations

import json

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, TextArea

from sharetui.core.views import AutomationView, RunRow
from sharetui.domain.roles import Role
from sharetui.domain.text import visible
from sharetui.domain.time import iso, local_text
from sharetui.errors import SharetuiError
from sharetui.tui.base import db_work
from sharetui.tui.bindings import bindings
from sharetui.tui.errors import ReportsWorkerErrors
from sharetui.tui.screens.modals import ConfirmModal
from sharetui.tui.text import data_text, detail_text, line
from sharetui.tui.widgets.footer import AppFooter
from sharetui.tui.widgets.table import Table

TEMPLATE = """name = "New automation"
description = ""
status = "draft"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Meeting Scheduled"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "7d"
access = "read"
"""


def leave_unless_unsaved(screen: Screen[None], saved_text: str) -> None:
    """Close ``screen``; with TOML edits not saved, only once the user says to discard them."""
    if screen.query_one(TextArea).text == saved_text:
        screen.dismiss(None)
        return

    def answered(discard: bool | None) -> None:
        if discard:
            screen.dismiss(None)

    screen.app.push_screen(
        ConfirmModal("Discard your unsaved changes to this automation?", yes="Discard"), answered
    )


class AutomationScreen(ReportsWorkerErrors, Screen[None]):
    # The list's keys work here too, on the automation shown.
    BINDINGS = [Binding("escape", "back", "Back", id="sharetui.automation_back"), *bindings("automations")]

    def __init__(self, automation_id: int) -> None:
        super().__init__()
        self.automation_id = automation_id
        self.runs: tuple[RunRow, ...] = ()
        self.status: str | None = None  # None until loaded

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static("loading…", id="definition", classes="fields")
            yield Table(id="runs", cursor_type="row")
            yield Static("", id="trace", classes="trace")
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one("#runs", DataTable).add_columns("run", "at", "record", "status", "reason")
        self._load()

    @db_work(exit_on_error=False, exclusive=True)
    def _load(self) -> None:
        view = self.session.automation(self.automation_id)
        self.app.call_from_thread(self._show, view)

    def reload(self) -> None:
        self._load()

    def _show(self, view: AutomationView) -> None:
        self.status = view.status
        self.refresh_bindings()
        # Text, not markup: names, descriptions and values are data (see tui/text.py).
        trigger = ", ".join(f"{k}={v}" for k, v in view.trigger.items())
        lines = [
            line((view.name, "b"), f"  ({view.status})  ", (view.description, "")),
            line(("trigger", "dim"), " ", (trigger, "")),
        ]
        if view.schedule is not None:
            lines.append(
                line(
                    ("schedule", "dim"),
                    " ",
                    (f"{view.schedule.description}; next {iso(view.schedule.next_at)}", ""),
                )
            )
        for c in view.conditions:
            lines.append(line(("if", "dim"), " ", (f"{c['field']} {c['op']} {c['value']!r}", "")))
        for i, a in enumerate(view.actions):
            config = ", ".join(f"{k}={v}" for k, v in a.items() if k != "type")
            lines.append(line((f"{i}.", "dim"), " ", (f"{a['type']} {config}", "")))
        self.query_one("#definition", Static).update(Text("\n").join(lines))
        self.runs = view.runs
        table = self.query_one("#runs", DataTable)
        table.clear()
        for r in view.runs:
            table.add_row(
                Text(str(r.id)),
                Text(local_text(r.started_at)),
                data_text(r.record or "-"),
                Text(r.status, style={"failed": "red", "skipped": "yellow"}.get(r.status, "green")),
                data_text(r.reason or ""),
            )
        self._trace(0)

    @on(DataTable.RowHighlighted, "#runs")
    def _highlight(self, event: DataTable.RowHighlighted) -> None:
        self._trace(event.cursor_row)

    def _trace(self, index: int) -> None:
        if not self.runs or index >= len(self.runs):
            self.query_one("#trace", Static).update("no runs yet")
            return
        run = self.runs[index]
        trace = run.trace
        data = json.dumps(trace.get("trigger", {}).get("data", {}), default=str)
        lines = [line((f"run {run.id}", "b"), " trigger data: ", (data, ""))]
        for c in trace.get("conditions", []):
            holds = "holds" if c["result"] else "false"
            condition = f"{c['field']} {c['op']} {c['value']!r}: actual {c['actual']!r} → {holds}"
            lines.append(detail_text(f"  if {condition}"))
        for a in trace.get("actions", []):
            step = f"{a['step']}. {a['type']}: {a['status']} — {a['message']} ({a['ms']} ms)"
            lines.append(detail_text(f"  {step}"))
        self.query_one("#trace", Static).update(Text("\n").join(lines))

    def action_back(self) -> None:
        leave_unless_unsaved(self, self.saved_text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "new_automation":
            return False  # a new one is made from the list
        if action in ("edit_automation", "publish", "pause"):
            user = self.session.user
            if self.status is None or user is None or user.role != Role.ADMIN.value:
                return False
            if action == "publish":
                return self.status != "published"
            if action == "pause":
                return self.status == "published"
        if action == "dry_run":
            return self.status is not None
        return True

    def action_edit_automation(self) -> None:
        self.tui.open_automation_editor(self.automation_id)

    def action_publish(self) -> None:
        self.tui.set_automation_status(self.automation_id, "published")

    def action_pause(self) -> None:
        self.tui.set_automation_status(self.automation_id, "paused")

    def action_dry_run(self) -> None:
        self.tui.ask_dry_run(self.automation_id)


class AutomationEditor(ReportsWorkerErrors, Screen[None]):
    """Create or edit an automation as TOML, validated live; ctrl+s saves."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="sharetui.automation_save", priority=True),
        Binding("escape", "back", "Cancel", id="sharetui.automation_cancel"),
    ]

    def __init__(self, automation_id: int | None, text: str | None) -> None:
        super().__init__()
        self.automation_id = automation_id
        self.text = text or TEMPLATE
        self.saved_text = self.text

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static(
                "Edit the definition; it is checked as you type (the same checks as the TOML files).",
                classes="hint",
            )
            yield TextArea(self.text, language=None, id="toml", show_line_numbers=True)
            with Horizontal(id="validation-bar"):
                yield Static("", id="validation")
        yield AppFooter()

    def on_mount(self) -> None:
        self._validate(self.text)
        self.query_one(TextArea).focus()

    @on(TextArea.Changed)
    def _changed(self, event: TextArea.Changed) -> None:
        self._validate(event.text_area.text)

    def _validate(self, text: str) -> bool:
        try:
            definition = self.session.check_automation(text)
        except SharetuiError as exc:
            self.query_one("#validation", Static).update(detail_text(f"✗ {exc.message}", "red"))
            return False
        self.query_one("#validation", Static).update(
            f"[green]✓ valid[/]: {definition.trigger_type} → {len(definition.actions)} action(s), "
            f"{definition.status}"
        )
        return True

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        if self._validate(text):
            self._save(text)

    @db_work(exit_on_error=False, group="automation-save")
    def _save(self, text: str) -> None:
        ident, name = self.session.save_automation(self.automation_id, text)
        self.app.call_from_thread(self._saved, ident, name)

    def _saved(self, ident: int, name: str) -> None:
        self.notify(visible(f"saved automation {ident}: {name}"), markup=False)
        self.dismiss(None)

    def action_back(self) -> None:
        leave_unless_unsaved(self, self.saved_text)

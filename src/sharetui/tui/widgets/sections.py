"""The Automations, History, Users and Plugins sections."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from sharetui.core.access.gate import Capability
from sharetui.core.history import HistoryFilter
from sharetui.core.views import AutomationRow, UserRow
from sharetui.domain.roles import Role
from sharetui.domain.time import local_text
from sharetui.tui.base import UsesApp, db_work
from sharetui.tui.bindings import bindings
from sharetui.tui.errors import ReportsWorkerErrors
from sharetui.tui.screens.modals import PromptModal
from sharetui.tui.text import data_text
from sharetui.tui.widgets import is_current_section
from sharetui.tui.widgets.ledger import LedgerView
from sharetui.tui.widgets.table import Table


class AutomationsView(ReportsWorkerErrors, Vertical):
    BINDINGS = bindings("automations")

    class Opened(Message):
        def __init__(self, automation_id: int | None) -> None:
            super().__init__()
            self.automation_id = automation_id

    def compose(self) -> ComposeResult:
        yield Static(
            "Automations: trigger → conditions → actions. Enter opens one; N makes a new one (admins).",
            classes="hint",
        )
        yield Table(id="automations", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("id", "name", "status", "trigger", "last run")
        self.items: list[AutomationRow] = []
        if is_current_section(self):
            self.reload()

    def reload(self) -> None:
        self._load()

    @db_work(exit_on_error=False, exclusive=True, group="automations")
    def _load(self) -> None:
        allowed = self.session.may(Capability.READ_AUTOMATIONS)
        items = self.session.automations() if allowed else []
        self.app.call_from_thread(self._show, items, allowed)

    def _show(self, items: list[AutomationRow], allowed: bool = True) -> None:
        if not allowed:
            self.query_one(".hint", Static).update(
                "Only admins and sales managers see automations and their runs."
            )
        table = self.query_one(DataTable)
        current = self._current()
        self.items = items
        table.clear()
        for a in items:
            status = Text(a.status, style={"published": "green", "paused": "yellow"}.get(a.status, "dim"))
            trigger = a.trigger + (f" · {a.schedule.description}" if a.schedule else "")
            last = a.last_run
            table.add_row(
                data_text(str(a.id)),
                data_text(a.name),
                status,
                data_text(trigger),
                data_text(f"{last.status} {local_text(last.started_at)}" if last else "-"),
                key=str(a.id),
            )
        if current is not None:  # keep the cursor on the same automation after a rebuild
            ids = [a.id for a in items]
            if current.id in ids:
                table.move_cursor(row=ids.index(current.id))

    def _current(self) -> AutomationRow | None:
        table = self.query_one(DataTable)
        if self.items and 0 <= table.cursor_row < len(self.items):
            return self.items[table.cursor_row]
        return None

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        current = self._current()
        if current:
            self.post_message(self.Opened(current.id))

    @on(DataTable.RowHighlighted)
    def _moved(self) -> None:
        # The footer offers P Publish on a draft and z Pause on a published one.
        self.screen.refresh_bindings()

    def _is_admin(self) -> bool:
        user = self.session.user
        return user is not None and user.role == Role.ADMIN.value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("new_automation", "edit_automation", "publish", "pause"):
            if not self._is_admin():
                return False
            current = self._current()
            if action == "publish":
                return current is not None and current.status != "published"
            if action == "pause":
                return current is not None and current.status == "published"
            if action == "edit_automation":
                return current is not None
        if action == "dry_run":
            return self._current() is not None
        return True

    def action_new_automation(self) -> None:
        self.tui.open_automation_editor(None)

    def action_edit_automation(self) -> None:
        current = self._current()
        if current:
            self.tui.open_automation_editor(current.id)

    def action_publish(self) -> None:
        current = self._current()
        if current:
            self.tui.set_automation_status(current.id, "published")

    def action_pause(self) -> None:
        current = self._current()
        if current:
            self.tui.set_automation_status(current.id, "paused")

    def action_dry_run(self) -> None:
        current = self._current()
        if current:
            self.tui.ask_dry_run(current.id)


class HistoryView(ReportsWorkerErrors, Vertical):
    """The ledger of all records the acting user may see, exported to CSV."""

    BINDINGS = bindings("history")

    def compose(self) -> ComposeResult:
        yield LedgerView(id="ledger")

    @property
    def ledger(self) -> LedgerView:
        return self.query_one(LedgerView)

    def on_mount(self) -> None:
        if is_current_section(self):
            self.reload()

    def reload(self) -> None:
        self.ledger.reload()

    def filter(self) -> HistoryFilter:
        return self.ledger.filter()

    def action_older(self) -> None:
        self.ledger.older()

    def action_newer(self) -> None:
        self.ledger.newer()

    def action_close_detail(self) -> None:
        self.ledger.close_detail()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_detail":
            return bool(self.ledger.query_one(".ledger-detail", Static).display)
        return True

    def action_export_csv(self) -> None:
        try:
            flt = self.filter()
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        stamp = self.session.now().strftime("%Y%m%d-%H%M%S")
        suggestion = str(self.session.export_folder() / f"sharetui-history-{stamp}.csv")

        def chosen(text: str | None) -> None:
            if text:
                self._export(flt, Path(text).expanduser())

        question = "Write the filtered history to which CSV file?"
        self.app.push_screen(PromptModal(question, value=suggestion), chosen)

    @db_work(exit_on_error=False, group="history-export")
    def _export(self, flt: HistoryFilter, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        count = self.session.export_history(flt, path)
        rows = f"{count} row" + ("" if count == 1 else "s")
        self.app.call_from_thread(self.notify, f"{rows} → {path}", title="history exported")


class UsersView(ReportsWorkerErrors, Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="users-hint", classes="hint")
        yield Table(id="users", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("username", "name", "role", "active", "sales groups")
        if is_current_section(self):
            self.reload()

    def reload(self) -> None:
        self._load()

    @db_work(exit_on_error=False, exclusive=True, group="users")
    def _load(self) -> None:
        session = self.session
        allowed = session.may(Capability.READ_USERS)
        rows = session.users() if allowed else []
        self.app.call_from_thread(self._show, rows, allowed)

    def _show(self, rows: list[UserRow], admin: bool) -> None:
        self.query_one("#users-hint", Static).update(
            "Users and their sales groups. ctrl+u acts as one of them."
            if admin
            else "Only admins and sales managers see the user list."
        )
        table = self.query_one(DataTable)
        table.clear()
        for u in rows:
            table.add_row(
                data_text(u.username),
                data_text(u.name),
                data_text(u.role),
                data_text("yes" if u.active else "no", style="" if u.active else "red"),
                data_text(", ".join(f"{m.group} ({m.level})" for m in u.groups)),
            )


class PluginsView(UsesApp, Vertical):
    def compose(self) -> ComposeResult:
        yield Static("Loaded plugins, their hooks and errors (see docs/plugins.md).", classes="hint")
        yield Table(id="plugins", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("plugin", "version", "source", "hooks", "errors")
        self.reload()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for p in self.session.plugins():
            table.add_row(
                data_text(p.name),
                data_text(p.version or "-"),
                data_text(p.source),
                data_text(", ".join(h.removeprefix("sharetui_") for h in p.hooks) or "-"),
                data_text("; ".join(p.errors) or "-", style="red" if p.errors else ""),
            )

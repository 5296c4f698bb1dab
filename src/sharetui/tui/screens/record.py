"""A lead or an opportunity: fields, active shares with a live countdown,
activities, tasks, and the record's share history filtered by user, status
and source. Actions are offered only when the acting user may do them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static, TabbedContent, TabPane

from sharetui.core.history import STATUSES, HistoryFilter
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType, Source
from sharetui.domain.time import from_db, local_text
from sharetui.errors import SharetuiError
from sharetui.tui.bindings import bindings
from sharetui.tui.errors import ReportsWorkerErrors
from sharetui.tui.screens.modals import ConfirmModal, EditRecordModal, PostActivityModal, ShareModal
from sharetui.tui.session import Permissions
from sharetui.tui.widgets.table import Table

EDITABLE = {
    "lead": ("name", "email", "phone", "company", "stage", "source"),
    "opportunity": ("name", "type", "stage", "amount"),
}


def remaining(expires_at: str | None, now: Any) -> str:
    """``2d 03:14:05`` until expiry, or ``expired``."""
    end = from_db(expires_at.replace("Z", "+00:00")) if expires_at else None
    if end is None:
        return "-"
    left = end - now
    if left <= timedelta(0):
        return "expired"
    days, rest = divmod(int(left.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{seconds:02d}"


class RecordScreen(ReportsWorkerErrors, Screen[None]):
    BINDINGS = bindings("record")

    def __init__(self, ref: RecordRef) -> None:
        super().__init__()
        self.ref = ref
        self.data: dict[str, Any] = {}
        self.perms = Permissions()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="record"):
            yield Static("loading…", id="fields", classes="fields")
            with TabbedContent(id="tabs"):
                with TabPane("Shares", id="tab-shares"):
                    yield Table(id="shares", cursor_type="row")
                with TabPane("Activities", id="tab-activities"):
                    yield Table(id="activities", cursor_type="row")
                with TabPane("Tasks", id="tab-tasks"):
                    yield Table(id="tasks", cursor_type="row")
                with TabPane("History", id="tab-history"):
                    with Horizontal(classes="filters"):
                        yield Select([], prompt="any user", id="h-user")
                        yield Select([(s, s) for s in STATUSES], prompt="any status", id="h-status")
                        yield Select([(s.value, s.value) for s in Source], prompt="any source", id="h-source")
                    yield Table(id="history", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#shares", DataTable).add_columns(
            "grant", "user", "access", "context", "expires", "time left", "source"
        )
        self.query_one("#activities", DataTable).add_columns(
            "id", "type", "owner", "status", "occurred", "note"
        )
        self.query_one("#tasks", DataTable).add_columns("id", "subject", "owner", "due", "done")
        self.query_one("#history", DataTable).add_columns(
            "at", "event", "status", "user", "access", "ctx", "expires", "source", "by", "reason"
        )
        self.set_interval(1.0, self._tick)
        self.reload()

    # -- loading ----------------------------------------------------------------------
    def reload(self) -> None:
        self._load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="record")
    def _load(self) -> None:
        session = self.app.session  # type: ignore[attr-defined]
        data = session.record(self.ref)
        history = session.history(self._history_filter()) if data["permissions"].read else []
        self.app.call_from_thread(self._show, data, history)

    def _history_filter(self) -> HistoryFilter:
        def value(ident: str) -> str | None:
            try:
                v = self.query_one(ident, Select).value
            except Exception:  # noqa: BLE001 - before the widgets exist
                return None
            return None if v is Select.NULL else str(v)

        return HistoryFilter(
            record=self.ref, user=value("#h-user"), status=value("#h-status"), source=value("#h-source")
        )

    def _show(self, data: dict[str, Any], history: list[dict[str, Any]]) -> None:
        self.data = data
        self.perms = data["permissions"]
        kind = "Lead" if self.ref.entity is EntityType.LEAD else "Opportunity"
        fields = [
            f"[b]{kind} {data['id']}: {data['name']}[/b]   owner [b]{data['owner']}[/b]   "
            f"your access [b]{self.perms.level}[/b]"
        ]
        keys = [k for k in EDITABLE[data["entity"]] if k != "name"]
        fields.append("   ".join(f"[dim]{k}[/dim] {data.get(k) or '-'}" for k in keys))
        if data.get("fields"):
            fields.append("   ".join(f"[dim]{k}[/dim] {v}" for k, v in data["fields"].items()))
        self.query_one("#fields", Static).update("\n".join(fields))
        now = self.app.session.core.now()  # type: ignore[attr-defined]
        shares = self.query_one("#shares", DataTable)
        shares.clear()
        for g in data["shares"]:
            shares.add_row(
                Text(str(g["id"])),
                Text(g["user"]),
                Text(g["access"]),
                Text(str(g["context"] or "-")),
                Text(local_text(g["expires_at"])),
                Text(remaining(g["expires_at"], now)),
                Text(g["source"]),
                key=str(g["id"]),
            )
        acts = self.query_one("#activities", DataTable)
        acts.clear()
        for a in data["activities"]:
            acts.add_row(
                Text(str(a["id"])),
                Text(a["type"]),
                Text(a["owner"] or "-"),
                Text(a["status"]),
                Text(local_text(a["occurred_at"])),
                Text(a["note"] or ""),
                key=str(a["id"]),
            )
        tasks = self.query_one("#tasks", DataTable)
        tasks.clear()
        for t in data["tasks"]:
            tasks.add_row(
                Text(str(t["id"])),
                Text(t["subject"]),
                Text(t["owner"]),
                Text(local_text(t["due_at"])),
                Text(local_text(t["completed_at"])),
                key=str(t["id"]),
            )
        self._show_history(history)
        users = sorted({h["user"] for h in history if h["user"]} | {g["user"] for g in data["shares"]})
        user_select = self.query_one("#h-user", Select)
        current = user_select.value
        user_select.set_options([(u, u) for u in users])
        if current is not Select.NULL and current in users:
            user_select.value = current
        self.app.sub_title = self.app.header_text()  # type: ignore[attr-defined]
        self.refresh_bindings()

    def _show_history(self, history: list[dict[str, Any]]) -> None:
        table = self.query_one("#history", DataTable)
        table.clear()
        for h in history:
            table.add_row(
                Text(local_text(h["at"])),
                Text(h["event"]),
                Text(h["status"]),
                Text(h["user"] or "-"),
                Text(h["access"] or "-"),
                Text(str(h["context"] or "-")),
                Text(local_text(h["expires_at"])),
                Text(h["source"]),
                Text(h["requester"] or "-"),
                Text(h["reason"] or ""),
            )

    @on(Select.Changed, ".filters Select")
    def _filter(self) -> None:
        self._load_history()

    @work(thread=True, exit_on_error=False, exclusive=True, group="record-history")
    def _load_history(self) -> None:
        if not self.perms.read:
            return
        history = self.app.session.history(self._history_filter())  # type: ignore[attr-defined]
        self.app.call_from_thread(self._show_history, history)

    def _tick(self) -> None:
        """The live countdown; when a share runs out, reload (it no longer gives access)."""
        if not self.data:
            return
        now = self.app.session.core.now()  # type: ignore[attr-defined]
        shares = self.query_one("#shares", DataTable)
        lapsed = False
        for index, g in enumerate(self.data["shares"]):
            left = remaining(g["expires_at"], now)
            lapsed |= left == "expired"
            if index < shares.row_count:
                shares.update_cell_at((index, 5), Text(left, style="red" if left == "expired" else ""))
        if lapsed:
            self.reload()

    # -- what is on offer -------------------------------------------------------------------
    def _selected(self, table_id: str) -> dict[str, Any] | None:
        key = {"#shares": "shares", "#tasks": "tasks", "#activities": "activities"}[table_id]
        rows = self.data.get(key) or []
        table = self.query_one(table_id, DataTable)
        if not rows or not (0 <= table.cursor_row < len(rows)):
            return None
        return rows[table.cursor_row]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.data:
            return action == "back"
        user = self.app.session.user  # type: ignore[attr-defined]
        if action == "share":
            return self.perms.share
        if action in ("revoke", "renew"):
            return self.perms.share and bool(self.data.get("shares"))
        if action in ("post_activity", "edit_record"):
            return self.perms.edit
        if action == "complete_task":
            open_tasks = [t for t in self.data.get("tasks", []) if not t["completed_at"]]
            mine = user is not None and any(t["owner"] == user.username for t in open_tasks)
            return bool(open_tasks) and (self.perms.edit or mine)
        return True

    # -- actions ----------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss(None)

    def _share_modal(self, title: str, preset: dict[str, Any] | None = None) -> ShareModal:
        session = self.app.session  # type: ignore[attr-defined]
        owner = self.data["owner"]
        users = [(u, n) for u, n in session.sales_users() if u != owner]
        activities = [
            (f"{a['id']} {a['type']} ({a['owner'] or 'no owner'})", a["id"]) for a in self.data["activities"]
        ]
        return ShareModal(
            title=title,
            users=users,
            now=session.core.now(),
            is_lead=self.ref.entity is EntityType.LEAD,
            activities=activities,
            preset=preset,
        )

    def action_share(self) -> None:
        self.app.push_screen(self._share_modal(f"Share {self.ref}"), self._do_share)

    def action_renew(self) -> None:
        grant = self._selected("#shares")
        if grant is None:
            self.notify("Pick a share in the Shares tab", severity="warning")
            return
        preset = {
            "user": grant["user"],
            "access": grant["access"],
            "context": grant["context"] or None,
            "until": grant["until_completed"],
            "duration": "7d",
        }
        if preset["context"] is None:
            preset.pop("context")
        self.app.push_screen(
            self._share_modal(f"Renew {grant['user']}'s share of {self.ref}", preset), self._do_share
        )

    def _do_share(self, result: dict[str, Any] | None) -> None:
        if result:
            self._run_share(result)

    @work(thread=True, exit_on_error=False, group="record-change")
    def _run_share(self, result: dict[str, Any]) -> None:
        session = self.app.session  # type: ignore[attr-defined]
        outcome, runs = session.share(
            self.ref,
            result["user"],
            result["duration"],
            result["access"],
            result["context"],
            result["until_completed"],
        )
        self.app.call_from_thread(self._after_request, outcome, runs)

    def _after_request(self, outcome: Any, runs: list[Any]) -> None:
        if outcome.status == "completed":
            grant = outcome.grant or (outcome.grants[0] if outcome.grants else {})
            verb = outcome.outcome or "done"
            self.notify(
                f"{verb}: {grant.get('user', '')} {grant.get('access', '')} "
                f"until {local_text(grant.get('expires_at'))}"
                if verb != "revoked"
                else f"revoked {grant.get('user', '')}'s share",
                title=f"request {outcome.request_id}",
            )
        else:
            self.notify(
                outcome.reason or "failed",
                title=f"request {outcome.request_id} failed",
                severity="error",
                timeout=8,
            )
        self._say_runs(runs)
        self.reload()

    def _say_runs(self, runs: list[Any]) -> None:
        for report in runs:
            self.notify(report.summary(), title="automation", timeout=8)

    def action_revoke(self) -> None:
        grant = self._selected("#shares")
        if grant is None:
            self.notify("Pick a share in the Shares tab", severity="warning")
            return
        ctx = f" (context activity {grant['context']})" if grant["context"] else ""

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._run_revoke(grant)

        self.app.push_screen(
            ConfirmModal(
                f"Revoke {grant['user']}'s {grant['access']} share of {self.ref}{ctx}?", yes="Revoke"
            ),
            confirmed,
        )

    @work(thread=True, exit_on_error=False, group="record-change")
    def _run_revoke(self, grant: dict[str, Any]) -> None:
        outcome = self.app.session.revoke(self.ref, grant["user"], grant["context"])  # type: ignore[attr-defined]
        self.app.call_from_thread(self._after_request, outcome, [])

    def action_post_activity(self) -> None:
        session = self.app.session  # type: ignore[attr-defined]
        modal = PostActivityModal(session.activity_types(self.ref.entity), session.sales_users())
        self.app.push_screen(modal, self._do_post)

    def _do_post(self, result: dict[str, Any] | None) -> None:
        if result:
            self._run_post(result)

    @work(thread=True, exit_on_error=False, group="record-change")
    def _run_post(self, result: dict[str, Any]) -> None:
        act, runs = self.app.session.post_activity(  # type: ignore[attr-defined]
            self.ref, result["type"], result["owner"], result["note"]
        )
        self.app.call_from_thread(self._after_change, f"posted activity {act.id} ({result['type']})", runs)

    def _after_change(self, message: str, runs: list[Any]) -> None:
        self.notify(message)
        if not runs:
            self.notify("no automation ran", severity="information", timeout=3)
        self._say_runs(runs)
        self.reload()

    def action_complete_task(self) -> None:
        task = self._selected("#tasks")
        open_tasks = [t for t in self.data.get("tasks", []) if not t["completed_at"]]
        if task is None or task["completed_at"]:
            task = open_tasks[0] if len(open_tasks) == 1 else None
        if task is None:
            self.notify("Pick an open task in the Tasks tab", severity="warning")
            return
        self._run_complete(task["id"])

    @work(thread=True, exit_on_error=False, group="record-change")
    def _run_complete(self, task_id: int) -> None:
        _task, runs = self.app.session.complete_task(task_id)  # type: ignore[attr-defined]
        self.app.call_from_thread(self._after_change, f"completed task {task_id}", runs)

    def action_edit_record(self) -> None:
        values = {k: self.data.get(k) for k in EDITABLE[self.data["entity"]]}
        self.app.push_screen(EditRecordModal(f"Edit {self.ref}", values), self._do_edit)

    def _do_edit(self, changes: dict[str, Any] | None) -> None:
        if changes:
            self._run_edit(changes)

    @work(thread=True, exit_on_error=False, group="record-change")
    def _run_edit(self, changes: dict[str, Any]) -> None:
        _row, runs = self.app.session.edit_record(self.ref, changes)  # type: ignore[attr-defined]
        self.app.call_from_thread(self._after_change, f"saved {', '.join(changes)}", runs)


__all__ = ["RecordScreen", "SharetuiError"]

"""A lead or an opportunity: fields, active shares with a live countdown,
activities, tasks, and the record's share history filtered by user, status
and source. Actions are offered only when the acting user may do them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane

from sharetui.core.records import LEAD_FIELDS, LEAD_STAGES, OPP_FIELDS, OPP_STAGES
from sharetui.core.views import GrantRow, Permissions, RecordView, ShareOutcome, Timeline
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.text import visible
from sharetui.domain.time import local_text
from sharetui.errors import SharetuiError, UsageError
from sharetui.tui.base import db_work
from sharetui.tui.bindings import bindings
from sharetui.tui.errors import ReportsWorkerErrors
from sharetui.tui.screens.modals import (
    ConfirmModal,
    EditRecordModal,
    PostActivityModal,
    RenewModal,
    ShareModal,
)
from sharetui.tui.text import amount_text, data_text, line
from sharetui.tui.widgets.footer import AppFooter
from sharetui.tui.widgets.ledger import LedgerView
from sharetui.tui.widgets.table import Table
from sharetui.tui.widgets.timeline import Drawing, TimelineView, drawing

if TYPE_CHECKING:
    pass

# The fields shown under the name (and edited with it), in their usual order.
STANDARD = {EntityType.LEAD: LEAD_FIELDS, EntityType.OPPORTUNITY: OPP_FIELDS}
STAGES = {EntityType.LEAD: list(LEAD_STAGES), EntityType.OPPORTUNITY: list(OPP_STAGES)}
# Actions a key may ask for before the record has loaded: they run once it has.
DEFERRABLE = ("share", "revoke", "renew", "post_activity", "complete_task", "edit_record")
Row = TypeVar("Row")


def remaining(expires_at: datetime | None, now: datetime) -> str:
    """``2d 03:14:05`` until expiry, or ``expired``."""
    if expires_at is None:
        return "-"
    left = expires_at - now
    if left <= timedelta(0):
        return "expired"
    days, rest = divmod(int(left.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{seconds:02d}"


class RecordScreen(ReportsWorkerErrors, Screen[None]):
    BINDINGS = bindings("record")

    def __init__(self, ref: RecordRef, then: str | None = None) -> None:
        """``then``: an action to run once the record is shown (``s`` on a list)."""
        super().__init__()
        self.ref = ref
        self.data: RecordView | None = None  # None until the first load
        self.perms = Permissions()
        self.default_duration = "7d"
        self.pending: str | None = then if then in DEFERRABLE else None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="record"):
            yield Static("loading…", id="fields", classes="fields")
            with TabbedContent(id="tabs"):
                with TabPane("Shares", id="tab-shares"):
                    yield Table(id="shares", cursor_type="row")
                with TabPane("Timeline", id="tab-timeline"):
                    yield TimelineView(id="timeline")
                with TabPane("Activities", id="tab-activities"):
                    yield Table(id="activities", cursor_type="row")
                with TabPane("Tasks", id="tab-tasks"):
                    yield Table(id="tasks", cursor_type="row")
                with TabPane("History", id="tab-history"):
                    yield LedgerView(self.ref, id="record-ledger")
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one("#shares", DataTable).add_columns(
            "grant", "user", "access", "context", "expires", "time left", "source"
        )
        self.query_one("#activities", DataTable).add_columns(
            "id", "type", "owner", "status", "occurred", "note"
        )
        self.query_one("#tasks", DataTable).add_columns("id", "subject", "owner", "due", "done")
        self.set_interval(1.0, self._tick)
        self.reload()

    # -- loading ----------------------------------------------------------------------
    def reload(self) -> None:
        self._load(self.query_one(TimelineView).bar_width())

    @db_work(exit_on_error=False, exclusive=True, group="record")
    def _load(self, bar_width: int) -> None:
        session = self.session
        data = session.record(self.ref)
        self.default_duration = session.default_duration()
        timeline = None
        if data.permissions.read:  # its rows and bars are built here, off the UI thread
            timeline = drawing(session.timeline(self.ref), bar_width, self.app.console)
        self.app.call_from_thread(self._show, data, timeline)

    def _show(self, data: RecordView, timeline: Timeline | Drawing | None = None) -> None:
        self.data = data
        self.perms = data.permissions
        kind = "Lead" if self.ref.entity is EntityType.LEAD else "Opportunity"
        name, owner = (data.name, data.owner) if self.perms.read else ("(you may not read it)", "-")
        # Text, not markup: the name, the values and the custom keys are data (a name like
        # "[b]" shows as written) and their control characters show as escapes.
        fields = [
            line(
                (f"{kind} {data.id}: {name}", "b"),
                "   owner ",
                (owner, "b"),
                "   your access ",
                (self.perms.level, "b"),
            )
        ]
        keys = [k for k in STANDARD[data.entity] if k != "name"]
        standard = {k: amount_text(v) if k == "amount" else v for k, v in data.standard.items()}
        fields.append(Text("   ").join(line((k, "dim"), " ", (standard.get(k) or "-", "")) for k in keys))
        if data.custom:
            fields.append(Text("   ").join(line((k, "dim"), " ", (v, "")) for k, v in data.custom.items()))
        self.query_one("#fields", Static).update(Text("\n").join(fields))
        now = self.session.now()
        shares = self.query_one("#shares", DataTable)
        shares.clear()
        for g in data.shares:
            shares.add_row(
                data_text(str(g.id)),
                data_text(g.user),
                data_text(g.access),
                data_text(str(g.context or "-")),
                data_text(local_text(g.expires_at)),
                data_text(remaining(g.expires_at, now)),
                data_text(g.source),
                key=str(g.id),
            )
        acts = self.query_one("#activities", DataTable)
        acts.clear()
        for a in data.activities:
            acts.add_row(
                data_text(str(a.id)),
                data_text(a.type),
                data_text(a.owner or "-"),
                data_text(a.status),
                data_text(local_text(a.occurred_at)),
                data_text(a.note),
                key=str(a.id),
            )
        tasks = self.query_one("#tasks", DataTable)
        tasks.clear()
        for t in data.tasks:
            tasks.add_row(
                data_text(str(t.id)),
                data_text(t.subject),
                data_text(t.owner),
                data_text(local_text(t.due_at)),
                data_text(local_text(t.completed_at)),
                key=str(t.id),
            )
        if self.perms.read:
            self.query_one(LedgerView).reload()
        else:  # a share ran out while the record was open: none of its history either
            self.query_one(LedgerView).clear()
        if timeline is not None:
            self.query_one(TimelineView).show(timeline)
        self.tui.sub_title = self.tui.header_text()
        self.refresh_bindings()
        if self.pending is not None:  # a key pressed while the record was loading
            action, self.pending = self.pending, None
            if self.check_action(action, ()):
                getattr(self, f"action_{action}")()
            else:
                self.notify(f"{action.replace('_', ' ')} is not offered on {self.ref}", severity="warning")

    def _tick(self) -> None:
        """The live countdown; when a share runs out, reload (it no longer gives access)."""
        if self.data is None:
            return
        now = self.session.now()
        shares = self.query_one("#shares", DataTable)
        lapsed = False
        for index, g in enumerate(self.data.shares):
            left = remaining(g.expires_at, now)
            lapsed |= left == "expired"
            if index < shares.row_count:
                shares.update_cell_at((index, 5), Text(left, style="red" if left == "expired" else ""))
        if lapsed:
            self.reload()

    # -- what is on offer -------------------------------------------------------------------
    def _selected(self, table_id: str, rows: Sequence[Row]) -> Row | None:
        """The row of ``rows`` under the cursor of the table that shows them."""
        table = self.query_one(table_id, DataTable)
        if not rows or not (0 <= table.cursor_row < len(rows)):
            return None
        return rows[table.cursor_row]

    def _selected_grant(self) -> GrantRow | None:
        return self._selected("#shares", self.data.shares) if self.data else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.data is None:
            # Loading: a key is remembered and run once the record is shown, never dropped.
            return action in ("back", "next_tab", "prev_tab") or action in DEFERRABLE
        user = self.session.user
        if action == "share":
            return self.perms.share
        if action in ("revoke", "renew"):
            return self.perms.share and bool(self.data.shares)
        if action in ("post_activity", "edit_record"):
            return self.perms.edit
        if action == "complete_task":
            open_tasks = [t for t in self.data.tasks if t.open]
            mine = user is not None and any(t.owner == user.username for t in open_tasks)
            return bool(open_tasks) and (self.perms.edit or mine)
        return True

    # -- actions ----------------------------------------------------------------------------
    def action_back(self) -> None:
        if self.query_one(LedgerView).close_detail():
            return
        self.dismiss(None)

    def _deferred(self, action: str) -> bool:
        """Whether ``action`` waits for the record (it is remembered and run when shown)."""
        if self.data is None:
            self.pending = action
            return True
        return False

    def action_next_tab(self) -> None:
        self._switch_tab(1)

    def action_prev_tab(self) -> None:
        self._switch_tab(-1)

    def _switch_tab(self, step: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        panes = [pane.id for pane in tabs.query(TabPane) if pane.id]
        if tabs.active in panes:
            tabs.active = panes[(panes.index(tabs.active) + step) % len(panes)]
            pane = tabs.get_pane(tabs.active)
            tables = pane.query(DataTable)
            if tables:
                tables.first().focus()

    def _share_modal(self, preset: dict[str, Any] | None = None, error: str | None = None) -> ShareModal:
        session = self.session
        assert self.data is not None  # offered only once the record is shown
        owner = self.data.owner
        users = [(u, n) for u, n in session.sales_users() if u != owner]
        activities = [
            (a.id, f"{a.id} {a.type} ({a.owner or 'no owner'}, {a.status})", a.owner)
            for a in self.data.activities
        ]
        return ShareModal(
            title=f"Share {self.ref}",
            users=users,
            now=session.now(),
            is_lead=self.ref.entity is EntityType.LEAD,
            activities=activities,
            default_duration=self.default_duration,
            preset=preset,
            error=error,
        )

    def action_share(self) -> None:
        if self._deferred("share"):
            return
        self._open_share()

    def _open_share(self, preset: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.app.push_screen(self._share_modal(preset, error), self._do_share)

    def action_renew(self) -> None:
        if self._deferred("renew"):
            return
        grant = self._selected_grant()
        if grant is None:
            self.notify("Pick a share in the Shares tab", severity="warning")
            return
        self._open_renew(grant)

    def _open_renew(
        self, grant: GrantRow, error: str | None = None, values: dict[str, Any] | None = None
    ) -> None:
        values = values or {}
        modal = RenewModal(
            title=f"Renew {grant.user}'s share of {self.ref}"
            + (f" (context activity {grant.context})" if grant.context else ""),
            now=self.session.now(),
            access=values.get("access", grant.access),
            default_duration=values.get("duration", self.default_duration),
            error=error,
        )

        def renewed(result: dict[str, Any] | None) -> None:
            if result:
                request = {
                    "user": grant.user,
                    "duration": result["duration"],
                    "access": result["access"],
                    "context": grant.context,
                    "until_completed": grant.until_completed,
                }
                self._run_share(request, lambda why: self._open_renew(grant, why, result))

        self.app.push_screen(modal, renewed)

    def _do_share(self, result: dict[str, Any] | None) -> None:
        if result:
            self._run_share(result, lambda why: self._open_share(_preset(result), why))

    @db_work(exit_on_error=False, group="record-change")
    def _run_share(self, result: dict[str, Any], again: Callable[[str], None] | None = None) -> None:
        outcome, runs = self.session.share(
            self.ref,
            result["user"],
            result["duration"],
            result["access"],
            result["context"],
            result["until_completed"],
        )
        self.app.call_from_thread(self._after_request, outcome, runs, again)

    def _after_request(
        self, outcome: ShareOutcome, runs: list[str], again: Callable[[str], None] | None = None
    ) -> None:
        if outcome.ok:
            grant = outcome.grant
            user, access = (grant.user, grant.access) if grant else ("", "")
            verb = outcome.outcome or "done"
            if verb == "revoked":
                self.notify(f"revoked {user}'s share", title=f"request {outcome.request_id}")
            elif outcome.lowered:
                self.notify(
                    f"renewed with less access: {user} now has read (was {outcome.previous_access}) "
                    f"until {local_text(grant.expires_at if grant else None)}",
                    title=f"request {outcome.request_id}",
                    severity="warning",
                    timeout=10,
                )
            else:
                self.notify(
                    f"{verb}: {user} {access} until {local_text(grant.expires_at if grant else None)}",
                    title=f"request {outcome.request_id}",
                )
        else:
            self.notify(
                visible(outcome.reason or "failed"),  # a plugin's or a person's words: data
                title=f"request {outcome.request_id} failed",
                severity="error",
                timeout=8,
                markup=False,
            )
            if again is not None:
                # The dialog comes back with what was entered and the refusal written in it.
                again(f"Not done: {visible(outcome.reason or 'failed')}")
        self._say_runs(runs)
        self.reload()

    def _say_runs(self, notes: list[str]) -> None:
        for note in notes:
            self.notify(visible(note), title="automation", timeout=8, markup=False)

    def action_revoke(self) -> None:
        if self._deferred("revoke"):
            return
        grant = self._selected_grant()
        if grant is None:
            self.notify("Pick a share in the Shares tab", severity="warning")
            return
        ctx = f" (context activity {grant.context})" if grant.context else ""

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._run_revoke(grant)

        self.app.push_screen(
            ConfirmModal(f"Revoke {grant.user}'s {grant.access} share of {self.ref}{ctx}?", yes="Revoke"),
            confirmed,
        )

    @db_work(exit_on_error=False, group="record-change")
    def _run_revoke(self, grant: GrantRow) -> None:
        outcome = self.session.revoke(self.ref, grant.user, grant.context)
        self.app.call_from_thread(self._after_request, outcome, [])

    def action_post_activity(self) -> None:
        if self._deferred("post_activity"):
            return
        session = self.session
        modal = PostActivityModal(session.activity_types(self.ref.entity), session.sales_users())
        self.app.push_screen(modal, self._do_post)

    def _do_post(self, result: dict[str, Any] | None) -> None:
        if result:
            self._run_post(result)

    @db_work(exit_on_error=False, group="record-change")
    def _run_post(self, result: dict[str, Any]) -> None:
        act_id, runs = self.session.post_activity(self.ref, result["type"], result["owner"], result["note"])
        self.app.call_from_thread(self._after_change, f"posted activity {act_id} ({result['type']})", runs)

    def _after_change(self, message: str, runs: list[str]) -> None:
        self.notify(visible(message), markup=False)  # names an activity type: data
        if not runs:
            self.notify("no automation ran", severity="information", timeout=3)
        self._say_runs(runs)
        self.reload()

    def action_complete_task(self) -> None:
        if self._deferred("complete_task"):
            return
        tasks = self.data.tasks if self.data else ()
        task = self._selected("#tasks", tasks)
        open_tasks = [t for t in tasks if t.open]
        if task is None or not task.open:
            task = open_tasks[0] if len(open_tasks) == 1 else None
        if task is None:
            self.notify("Pick an open task in the Tasks tab", severity="warning")
            return
        self._run_complete(task.id)

    @db_work(exit_on_error=False, group="record-change")
    def _run_complete(self, task_id: int) -> None:
        runs = self.session.complete_task(task_id)
        self.app.call_from_thread(self._after_change, f"completed task {task_id}", runs)

    def action_edit_record(self) -> None:
        if self._deferred("edit_record"):
            return
        self._open_edit()

    def _open_edit(self, error: str | None = None, typed: dict[str, str] | None = None) -> None:
        assert self.data is not None  # offered only once the record is shown
        data = self.data
        values = {k: data.name if k == "name" else data.standard.get(k) for k in STANDARD[data.entity]}
        modal = EditRecordModal(f"Edit {self.ref}", values, {"stage": STAGES[data.entity]}, error, typed)

        def edited(changes: dict[str, str] | None) -> None:
            if changes:
                self._run_edit(changes)

        self.app.push_screen(modal, edited)

    @db_work(exit_on_error=False, group="record-change")
    def _run_edit(self, changes: dict[str, str]) -> None:
        try:
            runs = self.session.edit_record(self.ref, changes)
        except UsageError as exc:
            # A value the core refuses: the dialog again, with the reason in it. (Not
            # being allowed to edit at all is reported as any refusal is.)
            self.app.call_from_thread(self._open_edit, f"Not saved: {exc.message}", changes)
            return
        self.app.call_from_thread(self._after_change, f"saved {', '.join(changes)}", runs)


def _preset(result: dict[str, Any]) -> dict[str, Any]:
    """What the share dialog showed, to show it again after a refusal."""
    preset = {k: result[k] for k in ("user", "duration", "access") if result.get(k)}
    if result.get("context") is not None:
        preset["context"] = result["context"]
    preset["until"] = bool(result.get("until_completed"))
    return preset


__all__ = ["RecordScreen", "SharetuiError"]

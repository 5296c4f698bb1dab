"""The sharetui terminal UI. Build it with :func:`make_app` (the CLI, the tests
and the snapshot app all do)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from sharetui.core.service import Core
from sharetui.core.views import UserRow
from sharetui.domain.ids import as_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType, Role
from sharetui.domain.text import visible
from sharetui.domain.time import local_text
from sharetui.errors import SharetuiError
from sharetui.tui.base import db_work
from sharetui.tui.bindings import bindings, user_keymap
from sharetui.tui.commands import RecordFinder
from sharetui.tui.screens.automation import AutomationEditor, AutomationScreen
from sharetui.tui.screens.help import HelpScreen
from sharetui.tui.screens.modals import ActAsModal, ErrorModal, InfoModal, PromptModal
from sharetui.tui.screens.record import RecordScreen
from sharetui.tui.session import Session
from sharetui.tui.widgets.footer import AppFooter
from sharetui.tui.widgets.records import RecordsView
from sharetui.tui.widgets.sections import AutomationsView, HistoryView, PluginsView, UsersView

if TYPE_CHECKING:
    from sharetui.core.events.worker import TickReport

WATCH_WAIT_SECONDS = 0.25  # how long one wait for a change lasts (and so how soon quitting ends it)
LAPSE_POLL_SECONDS = 15.0  # the clock ends shares without a write: looked for this often

NARROW = 80  # below this many columns: short section names, a compact footer
SHORT_SECTIONS = {
    "leads": "Leads",
    "opportunities": "Opps",
    "automations": "Autos",
    "history": "Hist",
    "users": "Users",
    "plugins": "Plug",
}
SECTIONS = {
    "leads": "Leads",
    "opportunities": "Opportunities",
    "automations": "Automations",
    "history": "History",
    "users": "Users",
    "plugins": "Plugins",
}


class ShareTuiApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "sharetui"
    BINDINGS = bindings("app")
    COMMANDS = App.COMMANDS | {RecordFinder}

    def __init__(self, session: Session, *, poll_seconds: float = 2.0, story: Any = None) -> None:
        super().__init__()
        self.session = session
        self.section = "leads"
        self.poll_seconds = poll_seconds
        self._token: tuple[int | None, int] | None = None
        self.changes_seen = 0  # other connections' commits noticed (tests, benchmarks)
        self.story = story
        self.story_runner: Any = None
        if story is not None:
            from sharetui.ops.stories import StoryRunner

            self.story_events: list[Any] = []
            self.story_runner = StoryRunner(session.core, story, self.story_events.append)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="section-bar")
        with ContentSwitcher(initial="leads"):
            yield RecordsView(EntityType.LEAD, id="leads")
            yield RecordsView(EntityType.OPPORTUNITY, id="opportunities")
            yield AutomationsView(id="automations")
            yield HistoryView(id="history")
            yield UsersView(id="users")
            yield PluginsView(id="plugins")
        yield AppFooter()

    def on_mount(self) -> None:
        keymap = user_keymap()
        if keymap:
            self.set_keymap(keymap)
        self.fit_to_width()
        if self.session.user is None:
            self.notify(
                "This database has no users yet: load the demo company with "
                "`sharetui load sample_data`, or run `sharetui demo`.",
                title="empty database",
                timeout=15,
            )
        if self.poll_seconds:
            # Other processes' changes arrive through the watcher (LISTEN/NOTIFY on
            # PostgreSQL, PRAGMA data_version on SQLite) within a fraction of a second;
            # the slow poll only catches shares the clock ended with nothing written.
            self._watch()
            if not self.session.frozen:
                self.set_interval(max(self.poll_seconds, LAPSE_POLL_SECONDS), self._poll)
        self.query_one("#leads", RecordsView).query_one("DataTable").focus()

    # -- header ---------------------------------------------------------------------------
    def header_text(self) -> str:
        user = self.session.user
        who = f"{user.username} ({user.role})" if user else "nobody"
        clock = local_text(self.session.now())
        frozen = " (frozen)" if self.session.frozen else ""
        story = ""
        if self.story_runner is not None:
            done, total = self.story_runner.position, len(self.story.steps)
            story = f" · story {done}/{total}" + (" (space: next)" if done < total else " (told)")
        identity = self.session.identity_text()
        if identity:  # team mode: mode, login, acting user and any impersonation
            return f"{identity} · {clock}{story}"
        return f"as {who} · {clock}{frozen}{story}"

    # -- a story, step by step (sharetui demo --script NAME --tui) ---------------------------
    def action_story_step(self) -> None:
        if self.story_runner is not None and self.story_runner.position < len(self.story.steps):
            self._story_step()

    @db_work(exclusive=True, exit_on_error=False, group="story")
    def _story_step(self) -> None:
        start = len(self.story_events)
        step = self.story_runner.step()
        if step is not None and step.action == "act_as":
            self.session.user = self.story_runner.actor
        events = self.story_events[start:]
        self.call_from_thread(self._show_story_events, events)

    def _show_story_events(self, events: list[Any]) -> None:
        for event in events:
            severity = "error" if event.kind in ("expect_failed", "error", "refused") else "information"
            self.notify(
                visible(event.text),
                title=f"step {event.step} · {event.actor or '-'}",
                severity=severity,
                timeout=12,
                markup=False,
            )
        self.refresh_views()

    def _refresh_header(self) -> None:
        self.sub_title = self.header_text()
        parts = []
        labels = SHORT_SECTIONS if self.size.width < NARROW else SECTIONS
        for index, (name, label) in enumerate(labels.items(), start=1):
            if not self.check_action("show_section", (name,)):
                continue
            style = "reverse bold" if name == self.section else "dim" if name != self.section else ""
            parts.append(f"[{style}] {index} {label} [/]")
        self.query_one("#section-bar", Static).update(" ".join(parts))

    def on_resize(self) -> None:
        self.fit_to_width()

    def fit_to_width(self) -> None:
        """Small terminals: short section names; footers compact, without the palette hint,
        so '? Help' and 'q Quit' stay on screen."""
        narrow = self.size.width < NARROW
        for screen in self.screen_stack:
            for footer in screen.query(Footer):
                if footer.compact != narrow:
                    footer.compact = narrow
                    footer.show_command_palette = not narrow
                    footer.refresh(recompose=True)
        if self.is_mounted:
            self._refresh_header()

    # -- sections ------------------------------------------------------------------------
    def action_show_section(self, name: str) -> None:
        if name not in SECTIONS:
            return
        if isinstance(self.screen, (RecordScreen, AutomationScreen)):
            self.pop_screen()
        self.section = name
        switcher = self.query_one(ContentSwitcher)
        switcher.current = name
        view = switcher.query_one(f"#{name}")
        if hasattr(view, "reload"):
            view.reload()
        tables = view.query("DataTable")
        if tables:
            tables.first().focus()
        self._refresh_header()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("advance_clock",):
            return self.session.frozen
        if action == "story_step":
            return self.story_runner is not None and self.story_runner.position < len(self.story.steps)
        if action == "show_section" and parameters and parameters[0] == "users":
            user = self.session.user
            return user is not None and user.role == Role.ADMIN.value
        return True

    def refresh_views(self) -> None:
        """Reload what is on screen (after a change, a clock move or another process's change)."""
        self._refresh_header()
        screen = self.screen
        if isinstance(screen, (RecordScreen, AutomationScreen)):
            screen.reload()
        view = self.query_one(ContentSwitcher).query_one(f"#{self.section}")
        if hasattr(view, "reload"):
            view.reload()
        self.refresh_bindings()

    def action_refresh(self) -> None:
        self.refresh_views()

    # -- records ---------------------------------------------------------------------------
    @on(RecordsView.Opened)
    def _open_record(self, event: RecordsView.Opened) -> None:
        self.open_record(event.ref, event.then)

    def open_record(self, ref: RecordRef, then: str | None = None) -> None:
        """Show ``ref``; ``then`` an action of the record screen to run once it shows."""
        self.push_screen(RecordScreen(ref, then), lambda _: self.refresh_views())
        self.call_after_refresh(self.fit_to_width)

    # -- acting as --------------------------------------------------------------------------
    def action_act_as(self) -> None:
        self._load_users_for_act_as()

    @db_work(exit_on_error=False, exclusive=True, group="act-as")
    def _load_users_for_act_as(self) -> None:
        users = self.session.act_as_choices()
        self.call_from_thread(self._pick_user, users)

    def _pick_user(self, users: list[UserRow]) -> None:
        current = self.session.user.username if self.session.user else None
        self.push_screen(ActAsModal(users, current), self._switch_user)

    def _switch_user(self, username: str | None) -> None:
        if username:
            self._do_switch(username)

    @db_work(exit_on_error=False, exclusive=True, group="act-as")
    def _do_switch(self, username: str) -> None:
        user = self.session.act_as(username)
        self.call_from_thread(self._switched, user.username, user.role)

    def _switched(self, username: str, role: str) -> None:
        self.notify(f"acting as {username} ({role})")
        if isinstance(self.screen, (RecordScreen, AutomationScreen)):
            self.pop_screen()
        if self.section == "users" and role != Role.ADMIN.value:
            self.action_show_section("leads")
        self.refresh_views()

    # -- time -------------------------------------------------------------------------
    def action_advance_clock(self, seconds: int) -> None:
        self._advance(int(seconds))

    @db_work(exit_on_error=False, exclusive=True, group="clock")
    def _advance(self, seconds: int) -> None:
        report = self.session.advance_clock(seconds)
        self.call_from_thread(self._advanced, report)

    def _advanced(self, report: TickReport) -> None:
        parts = []
        if report.expired:
            parts.append(f"{report.expired} share(s) expired")
        if report.warned:
            parts.append(f"{report.warned} expiring soon")
        if report.runs:
            parts.append(f"{report.runs} automation run(s)")
        self.notify("; ".join(parts) or "nothing fell due", title=f"clock → {local_text(self.session.now())}")
        for line in report.summaries:
            self.notify(visible(line), title="automation", timeout=8, markup=False)
        self.refresh_views()

    @db_work(exit_on_error=False, exclusive=True, group="watch")
    def _watch(self) -> None:
        """Wait for other connections' commits and refresh what is on screen, at most
        once per wait (a burst of changes is one refresh)."""
        worker = get_current_worker()
        watcher = self.session.watcher()
        try:
            while not worker.is_cancelled:
                if watcher.wait(WATCH_WAIT_SECONDS) and not worker.is_cancelled:
                    self.changes_seen += 1
                    self.call_from_thread(self.refresh_views)
        finally:
            watcher.close()

    def _poll(self) -> None:
        self._check_changes()

    @db_work(exit_on_error=False, exclusive=True, group="poll")
    def _check_changes(self) -> None:
        token = self.session.change_token()
        if token != self._token:
            first = self._token is None
            self._token = token
            if not first:
                self.call_from_thread(self.refresh_views)

    # -- automations --------------------------------------------------------------------
    @on(AutomationsView.Opened)
    def _open_automation(self, event: AutomationsView.Opened) -> None:
        if event.automation_id is not None:
            self.push_screen(AutomationScreen(event.automation_id), lambda _: self.refresh_views())
            self.call_after_refresh(self.fit_to_width)

    def open_automation_editor(self, automation_id: int | None) -> None:
        text = None if automation_id is None else self.session.automation_source(automation_id)
        self.push_screen(AutomationEditor(automation_id, text), lambda _: self.refresh_views())

    def set_automation_status(self, automation_id: int, status: str) -> None:
        self._set_status(automation_id, status)

    @db_work(exit_on_error=False, group="automation-status")
    def _set_status(self, automation_id: int, status: str) -> None:
        name, now = self.session.set_automation_status(automation_id, status)
        self.call_from_thread(self.notify, f"{name} is {now}")
        self.call_from_thread(self.refresh_views)

    def ask_dry_run(self, automation_id: int) -> None:
        def answered(text: str | None) -> None:
            if text:
                self._dry_run(automation_id, text)

        self.push_screen(
            PromptModal("Dry run on which record? (lead 5, opp 3)", "lead 5 or opp 3", value="lead 1"),
            answered,
        )

    @db_work(exit_on_error=False, group="dry-run")
    def _dry_run(self, automation_id: int, text: str) -> None:
        parts = text.replace(":", " ").split()
        record_id = as_id(parts[1]) if len(parts) == 2 else None
        if record_id is None:
            raise SharetuiError(f"write the record as 'lead 5' or 'opp 3', not {text!r}")
        ref = RecordRef(EntityType.parse(parts[0]), record_id)
        report = self.session.dry_run(automation_id, ref)
        lines = [f"{report.status}" + (f": {report.reason}" if report.reason else "")]
        for c in report.trace.get("conditions", []):
            lines.append(f"if {c['field']} {c['op']} {c['value']!r}: {c['actual']!r} → {c['result']}")
        for a in report.trace.get("actions", []):
            lines.append(f"{a['step']}. {a['type']}: {a['status']} — {a['message']}")
        lines.append("(dry run: nothing was changed)")
        self.call_from_thread(
            self.push_screen, InfoModal(f"Dry run of {report.automation!r} on {ref}", "\n".join(lines))
        )

    # -- help, palette, errors ------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, label in SECTIONS.items():
            if self.check_action("show_section", (name,)) and name != self.section:
                yield SystemCommand(
                    f"{label}: show", f"Go to {label}", lambda n=name: self.action_show_section(n)
                )
        yield SystemCommand("User: act as…", "Switch the acting user", self.action_act_as)
        if self.session.frozen:
            yield SystemCommand(
                "Clock: +1 hour", "Move the demo clock forward", lambda: self.action_advance_clock(3600)
            )
            yield SystemCommand(
                "Clock: +1 day", "Move the demo clock forward", lambda: self.action_advance_clock(86400)
            )
        if isinstance(screen, RecordScreen):
            noun = "Lead" if screen.ref.entity is EntityType.LEAD else "Opportunity"
            for action, verb in (
                ("share", "share"),
                ("revoke", "revoke"),
                ("renew", "renew"),
                ("post_activity", "post activity"),
                ("complete_task", "complete task"),
                ("edit_record", "edit"),
            ):
                if screen.check_action(action, ()):
                    yield SystemCommand(
                        f"{noun}: {verb}", f"{verb} {screen.ref}", getattr(screen, f"action_{action}")
                    )
        if self.section == "history":
            view = self.query_one("#history", HistoryView)
            yield SystemCommand(
                "History: export CSV", "Write the filtered history to a CSV file", view.action_export_csv
            )
        if self.section == "automations":
            view = self.query_one("#automations", AutomationsView)
            for action, verb in (
                ("new_automation", "new"),
                ("edit_automation", "edit"),
                ("publish", "publish"),
                ("pause", "pause"),
                ("dry_run", "dry run"),
            ):
                if view.check_action(action, ()):
                    yield SystemCommand(f"Automation: {verb}", verb, getattr(view, f"action_{action}"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.show_worker_error(event.worker.error)

    def show_worker_error(self, error: BaseException | None) -> None:
        """The one place a failed worker becomes something a person reads, never a traceback."""
        if isinstance(error, SharetuiError):
            self.notify(visible(error.message), title="not done", severity="error", timeout=8, markup=False)
        else:
            self.push_screen(ErrorModal("Something went wrong", f"{type(error).__name__}: {error}"))
        self.refresh_views()


def make_app(
    core: Core, *, acting: str | None = None, demo: bool = False, poll_seconds: float = 2.0, story: Any = None
) -> ShareTuiApp:
    """The one factory: the CLI, the tests and the snapshot app build the TUI here."""
    return ShareTuiApp(Session(core, acting, demo=demo), poll_seconds=poll_seconds, story=story)

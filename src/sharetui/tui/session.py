"""What the UI asks of the core, in one place. Every method here reads or writes
the database and is called from a thread worker, never from the UI thread (but
:attr:`frozen`, :meth:`now` and :meth:`plugins`, which do not).

It answers with core's typed views (:mod:`sharetui.core.views`) and runs no SQL
and no rule of its own: who may do what is core's answer, carried in the views.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sharetui.clock import FrozenClock
from sharetui.core.access import Page
from sharetui.core.access.gate import Capability
from sharetui.core.automations import runs_not_shown
from sharetui.core.history import HistoryFilter
from sharetui.core.service import Core
from sharetui.core.views import (
    Actor,
    AutomationRow,
    AutomationView,
    ExpiringSoon,
    HistoryRow,
    LedgerPage,
    Permissions,
    PluginRow,
    RecordView,
    ShareOutcome,
    Timeline,
    UserRow,
    share_outcome,
)
from sharetui.domain.ids import as_id
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.errors import SharetuiError, UsageError

if TYPE_CHECKING:
    from sharetui.core.automations import RunReport
    from sharetui.core.automations.definitions import Definition
    from sharetui.core.events.outbox import ChangeWatcher
    from sharetui.core.events.worker import TickReport


class Session:
    def __init__(self, core: Core, acting: str | None = None, *, demo: bool = False) -> None:
        self.core = core
        self.demo = demo
        self._user_id: int | None = None
        if core.team.is_team:  # the login decides; only an admin may act as another (DESIGN §8)
            self.user = core.team.identify(acting)
        else:
            self.user = core.users.acting(acting) if core.users.any_exist() else None

    def end_thread(self) -> None:
        """Close the calling thread's connection (a worker thread that is done with it)."""
        self.core.close()

    # -- who and when -------------------------------------------------------------------
    @property
    def user(self) -> Actor | None:
        """The acting user as they are now: an open TUI follows a role change or a
        deactivation made meanwhile (by another process), so the gate never answers
        from a stale role."""
        return None if self._user_id is None else self.core.users.get(self._user_id)

    @user.setter
    def user(self, user: Actor | None) -> None:
        self._user_id = None if user is None else user.id

    @property
    def frozen(self) -> bool:
        return isinstance(self.core.clock, FrozenClock)

    def now(self) -> datetime:
        """The core's clock (the demo's frozen one, or the system's), aware UTC."""
        return self.core.now()

    def identity_text(self) -> str:
        """Mode, login, acting user and any impersonation, for the header."""
        team = self.core.team
        if not team.is_team:
            return ""
        return team.describe(self.user).header()

    def act_as(self, username: str) -> Actor:
        if self.core.team.is_team:  # an admin impersonating, recorded as "admin as daniel"
            user = self.core.team.identify(username)
            if user is None:
                raise UsageError("no user to act as")
            self.user = user
            return user
        user = self.core.users.get(username)
        if not user.active:
            raise UsageError(f"{user.username} is deactivated")
        self.user = user
        return user

    def advance_clock(self, seconds: int) -> TickReport:
        """Demo mode: move the frozen clock, then let due work happen (expiry, reminders, schedules)."""
        assert isinstance(self.core.clock, FrozenClock)
        self.core.clock.advance(timedelta(seconds=seconds))
        return self.run_due_work()

    def run_due_work(self) -> TickReport:
        from sharetui.core.events.worker import Worker

        return Worker(self.core, name="tui", viewer=self.user).tick()

    def watcher(self) -> ChangeWatcher:
        """Waits for other connections' commits (use from one worker thread)."""
        return self.core.outbox.watcher()

    def change_token(self) -> tuple[int | None, int]:
        """Changes when anything another process (or the clock) could show does."""
        return self.core.outbox.change_token()

    # -- saved views ----------------------------------------------------------------
    def view_names(self, entity: EntityType) -> list[str]:
        """The acting user's views of ``entity`` and the shared ones, by name."""
        if self.user is None:
            return []
        return list(dict.fromkeys(v.name for v in self.core.saved_views.list(actor=self.user, entity=entity)))

    def view_settings(self, entity: EntityType, name: str) -> tuple[str, str]:
        """The search and the sort of the view ``name``, as the list takes them on."""
        assert self.user is not None
        view = self.core.saved_views.get(name, entity, actor=self.user)
        return view.search, view.sort

    def view_page(self, entity: EntityType, name: str, *, after: str | None, limit: int, sort: str) -> Page:
        """A page of the view ``name`` for the acting user: what they may read, filtered."""
        assert self.user is not None
        view = self.core.saved_views.get(name, entity, actor=self.user)
        return self.core.saved_views.page(view, actor=self.user, after=after, limit=limit, sort=sort)

    def save_view(self, entity: EntityType, name: str, *, search: str, sort: str, like: str | None) -> str:
        """Save the list's filter as the acting user's view ``name`` (with the conditions
        of the view ``like`` when one is picked); its name as stored."""
        assert self.user is not None
        views = self.core.saved_views
        conditions = list(views.get(like, entity, actor=self.user).conditions) if like else []
        return views.add(name, entity, actor=self.user, search=search, sort=sort, conditions=conditions).name

    # -- lists ------------------------------------------------------------------------
    def page(
        self, entity: EntityType, *, after: str | None, limit: int, search: str | None, sort: str
    ) -> Page:
        assert self.user is not None
        return self.core.access.visible(self.user, entity, after=after, limit=limit, search=search, sort=sort)

    def find_records(self, text: str, limit: int = 8) -> list[tuple[RecordRef, str]]:
        """Records the acting user may read whose id is ``text`` (``12``, ``lead 12``,
        ``opp 3``) or whose name or other searched fields hold it: (ref, name) pairs."""
        if self.user is None:
            return []
        words = text.replace(":", " ").split()
        found: list[tuple[RecordRef, str]] = []
        ident = as_id(words[-1]) if words else None
        kinds = list(EntityType)
        if len(words) == 2 and ident is not None:
            try:
                kinds = [EntityType.parse(words[0])]
            except SharetuiError:
                ident = None
        if ident is not None and len(words) <= 2:
            for entity in kinds:
                try:
                    view = self.record(RecordRef(entity, ident))
                except SharetuiError:  # missing and unreadable look alike
                    continue
                if view.permissions.read:
                    found.append((view.ref, view.name))
        for entity in EntityType:
            page = self.page(entity, after=None, limit=limit, search=text, sort="id")
            found += [(RecordRef(entity, row.id), str(row.values["name"])) for row in page.rows]
        seen: set[RecordRef] = set()
        return [(ref, name) for ref, name in found if not (ref in seen or seen.add(ref))]

    def owners(self, ids: set[int]) -> dict[int, str]:
        """Usernames by id, for a page of records (one prepared query: this is on every page)."""
        return self.core.users.usernames(ids)

    # -- a record ----------------------------------------------------------------------
    def permissions(self, ref: RecordRef) -> Permissions:
        return self.core.views.permissions(self.user, ref)

    def record(self, ref: RecordRef) -> RecordView:
        return self.core.views.record(self.user, ref)

    def history(self, flt: HistoryFilter, limit: int = 200, before: int | None = None) -> list[HistoryRow]:
        return self.core.views.history(self.user, flt, limit=limit, before=before)

    def ledger(
        self, flt: HistoryFilter, *, before: tuple[datetime, int] | None = None, limit: int = 100
    ) -> LedgerPage:
        """A page of the ledger (one row per request), newest first, as the acting user may see it."""
        return self.core.views.ledger(self.user, flt, before=before, limit=limit)

    def lifecycle(self, row: HistoryRow) -> list[HistoryRow]:
        return self.core.views.lifecycle(self.user, row)

    def history_per_day(self, flt: HistoryFilter) -> dict[str, dict[str, int]]:
        return self.core.views.history_per_day(self.user, flt)

    def timeline(self, ref: RecordRef) -> Timeline:
        """Every share of ``ref`` over time (for those who may see its share metadata)."""
        return self.core.views.timeline(self.user, ref)

    def expiring_soon(self) -> ExpiringSoon:
        """Shares ending in the next 24 h and 7 days: the acting user's, or everyone's for admins."""
        return self.core.views.expiring_soon(self.user)

    def export_folder(self) -> Path:
        """Where an export is suggested: the user's documents folder, else their data folder."""
        from platformdirs import user_data_path, user_documents_path

        documents = user_documents_path()
        return documents if documents.is_dir() else user_data_path("sharetui")

    def export_history(self, flt: HistoryFilter, path: Path) -> int:
        """Every event matching ``flt`` that the acting user may see, to a CSV file at
        ``path``, as the CLI's export writes it. Returns how many rows."""
        with path.open("w", newline="", encoding="utf-8") as fh:
            return self.core.history.write_csv(self.user, flt, fh)

    def sales_users(self) -> list[tuple[str, str]]:
        return self.core.views.sales_users()

    def users(self) -> list[UserRow]:
        """The user list (admins and sales managers)."""
        return self.core.views.users(self.user)

    def act_as_choices(self) -> list[UserRow]:
        team = self.core.team
        if (
            team.is_team
            and not (team.identity and team.identity.impersonator)
            and (self.user is None or self.user.role != "admin")
        ):
            return []  # team mode: only admins impersonate
        return self.core.views.act_as_choices()

    def may(self, capability: Capability) -> bool:
        """Whether the acting user's role may do ``capability`` (the gate's answer), so a
        screen never offers what it would refuse."""
        return self.core.gate.allows(self.user, capability)

    def user_filter_choices(self) -> list[str]:
        """Usernames the history filter offers: everyone for those who may read the
        user list, else only the acting user."""
        if self.user is None or self.core.gate.allows(self.user, Capability.READ_USERS):
            return [u.username for u in self.core.users.act_as_choices()]
        return [self.user.username]

    def default_duration(self) -> str:
        """The ``default_duration`` setting: what the share dialog starts with."""
        return str(self.core.settings.get("default_duration"))

    def activity_types(self, entity: EntityType) -> list[tuple[str, bool]]:
        return self.core.views.activity_types(entity)

    # -- changes ------------------------------------------------------------------------
    def share(
        self,
        ref: RecordRef,
        recipient: str,
        duration: str,
        access: str,
        context: int | None,
        until_completed: bool,
    ) -> tuple[ShareOutcome, list[str]]:
        result = self.core.sharing.share(
            ref.entity,
            ref.id,
            recipient,
            requester=self.user,
            duration=duration,
            access=access,
            context=context,
            until_completed=until_completed,
        )
        return share_outcome(result), self._runs()

    def revoke(self, ref: RecordRef, user: str, context: int | None) -> ShareOutcome:
        result = self.core.sharing.revoke(ref.entity, ref.id, user, requester=self.user, context=context)
        return share_outcome(result)

    def post_activity(
        self, ref: RecordRef, type_name: str, owner: str | None, note: str
    ) -> tuple[int, list[str]]:
        """Post an activity; returns its id and the automation runs it set off."""
        act = self.core.records.post_activity(
            ref, type=type_name, actor=self.user, owner=owner or None, note=note
        )
        return act.id, self._runs()

    def complete_task(self, task_id: int) -> list[str]:
        self.core.records.complete_task(task_id, actor=self.user)
        return self._runs()

    def edit_record(self, ref: RecordRef, values: dict[str, str]) -> list[str]:
        self.core.records.update_record(ref, actor=self.user, values=values)
        return self._runs()

    def _runs(self) -> list[str]:
        """Run the automations a change set off (embedded mode) and say what they did,
        as far as the acting user may read runs (DESIGN §9)."""
        if self.core.team.is_team:
            return []  # team mode: `sharetui worker` processes events (DESIGN §4), as in the CLI
        automations = self.core.automations
        shown, hidden = automations.visible_reports(self.user, automations.process_pending())
        return [r.summary() for r in shown] + ([runs_not_shown(hidden)] if hidden else [])

    # -- automations --------------------------------------------------------------------
    def automations(self) -> list[AutomationRow]:
        return self.core.views.automations(self.user)

    def automation(self, automation_id: int) -> AutomationView:
        return self.core.views.automation(automation_id, self.user)

    def automation_source(self, automation_id: int) -> str | None:
        """The TOML an automation was written in (``None``: made some other way)."""
        return self.core.automations.get(automation_id).source_text or None

    def check_automation(self, text: str) -> Definition:
        """Parse and check a definition as ``sharetui automations add`` does
        (:class:`~sharetui.errors.SharetuiError` says what is wrong)."""
        return self.core.automations.parse(text, "editor")

    def save_automation(self, automation_id: int | None, text: str) -> tuple[int, str]:
        """Add (``automation_id`` None) or replace an automation; returns its id and name."""
        service = self.core.automations
        definition = service.parse(text, "editor")
        if automation_id is None:
            row = service.add(definition, actor=self.user)
        else:
            row = service.update(automation_id, definition, actor=self.user)
        return row.id, row.name

    def set_automation_status(self, automation_id: int, status: str) -> tuple[str, str]:
        """Publish, pause or draft an automation; returns its name and new status."""
        row = self.core.automations.set_status(automation_id, status, actor=self.user)
        return row.name, row.status

    def dry_run(self, automation_id: int, ref: RecordRef) -> RunReport:
        """What the automation would do on ``ref`` now; changes nothing."""
        return self.core.automations.test(automation_id, ref, actor=self.user)

    # -- plugins --------------------------------------------------------------------------
    def plugins(self) -> list[PluginRow]:
        return self.core.views.plugins()

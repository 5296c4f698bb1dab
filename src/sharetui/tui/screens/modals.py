"""Modal dialogs: share, confirm, post activity, edit a record, act as, prompt, error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from sharetui.core.views import UserRow
from sharetui.domain.durations import parse_duration
from sharetui.domain.time import local_text
from sharetui.errors import InvalidDuration
from sharetui.tui.text import detail_text

ESCAPE = [Binding("escape", "cancel", "Cancel", id="sharetui.modal_cancel")]


class _Modal(ModalScreen[Any]):
    BINDINGS = ESCAPE

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class ShareModal(_Modal):
    """Share (or renew) a record: user, duration with live validation and expiry preview,
    access, optional context activity, until-completed."""

    def __init__(
        self,
        *,
        title: str,
        users: list[tuple[str, str]],
        now: datetime,
        is_lead: bool,
        activities: list[tuple[str, int]],
        preset: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.users = users
        self.now = now
        self.is_lead = is_lead
        self.activities = activities
        self.preset = preset or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label("Share with (type to search)")
            yield Select(
                [(f"{u} — {n}", u) for u, n in self.users],
                prompt="pick a sales user",
                id="user",
                type_to_search=True,
                value=self.preset.get("user", Select.NULL),
            )
            yield Label("For how long (30m, 2h, 3d, 2w, 6mo, 1y, 1d12h)")
            yield Input(value=self.preset.get("duration", "7d"), id="duration")
            yield Static("", id="preview", classes="hint")
            yield Label("Access")
            yield Select(
                [("read", "read"), ("edit", "edit")],
                value=self.preset.get("access", "read"),
                id="access",
                allow_blank=False,
            )
            if self.is_lead:
                yield Label("In the context of activity (optional)")
                yield Select(
                    [(label, ident) for label, ident in self.activities],
                    prompt="no context",
                    id="context",
                    value=self.preset.get("context", Select.NULL),
                )
                yield Checkbox(
                    "until the activity is completed", id="until", value=self.preset.get("until", False)
                )
            with Horizontal(classes="buttons"):
                yield Button("Share", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._preview(self.query_one("#duration", Input).value)
        self.query_one("#user", Select).focus()

    @on(Input.Changed, "#duration")
    def _duration_changed(self, event: Input.Changed) -> None:
        self._preview(event.value)

    def _preview(self, text: str) -> bool:
        preview = self.query_one("#preview", Static)
        try:
            duration = parse_duration(text)
            duration.check_bounds(self.now)
        except InvalidDuration as exc:
            preview.update(f"[red]{exc.message}[/]")
            preview.set_class(True, "invalid")
            return False
        preview.set_class(False, "invalid")
        preview.update(f"{duration.words} — expires {local_text(duration.end_from(self.now))}")
        return True

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted, "#duration")
    def _submit(self) -> None:
        user = self.query_one("#user", Select).value
        duration = self.query_one("#duration", Input).value
        if user is Select.NULL:
            self.notify("Pick who to share with", severity="warning")
            return
        if not self._preview(duration):
            self.notify("Fix the duration first", severity="warning")
            return
        result: dict[str, Any] = {
            "user": user,
            "duration": duration,
            "access": self.query_one("#access", Select).value,
            "context": None,
            "until_completed": False,
        }
        if self.is_lead:
            ctx = self.query_one("#context", Select).value
            result["context"] = ctx if isinstance(ctx, int) else None  # the activity's id, or no context
            result["until_completed"] = self.query_one("#until", Checkbox).value
        self.dismiss(result)


class ConfirmModal(_Modal):
    BINDINGS = [*ESCAPE, Binding("y", "yes", "Yes", id="sharetui.modal_yes")]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-title")
            with Horizontal(classes="buttons"):
                yield Button(self.yes, variant="error", id="ok")
                yield Button("Cancel", id="cancel")

    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self.dismiss(True)


class PostActivityModal(_Modal):
    def __init__(self, types: list[tuple[str, bool]], users: list[tuple[str, str]]) -> None:
        super().__init__()
        self.types = types
        self.users = users

    def on_mount(self) -> None:
        self.query_one("#type", Select).focus()

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label("Post an activity", classes="dialog-title")
            yield Label("Type")
            yield Select(
                [(n + ("" if owner else " (no owner)"), n) for n, owner in self.types],
                prompt="activity type",
                id="type",
            )
            yield Label("Activity owner (types that capture one)")
            yield Select([(f"{u} — {n}", u) for u, n in self.users], prompt="no owner", id="owner")
            yield Label("Note")
            yield Input(id="note")
            with Horizontal(classes="buttons"):
                yield Button("Post", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Select.Changed, "#type")
    def _type_changed(self, event: Select.Changed) -> None:
        captures = dict(self.types).get(event.value, True) if isinstance(event.value, str) else True
        owner = self.query_one("#owner", Select)
        owner.disabled = not captures
        if not captures:
            owner.clear()

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted, "#note")
    def _submit(self) -> None:
        kind = self.query_one("#type", Select).value
        if kind is Select.NULL:
            self.notify("Pick an activity type", severity="warning")
            return
        owner = self.query_one("#owner", Select).value
        self.dismiss(
            {
                "type": kind,
                "owner": None if owner is Select.NULL else owner,
                "note": self.query_one("#note", Input).value,
            }
        )


class EditRecordModal(_Modal):
    def __init__(self, title: str, values: dict[str, Any]) -> None:
        super().__init__()
        self.title_text = title
        self.values = values

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            for key, value in self.values.items():
                yield Label(key)
                yield Input(value="" if value is None else str(value), id=f"f-{key}")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        changed = {}
        for key, old in self.values.items():
            new = self.query_one(f"#f-{key}", Input).value
            if new != ("" if old is None else str(old)):
                changed[key] = new
        self.dismiss(changed)


class ActAsModal(_Modal):
    """Pick the acting user: type to narrow the list, enter to choose."""

    def __init__(self, users: list[UserRow], current: str | None) -> None:
        super().__init__()
        self.users = [u for u in users if u.active]
        self.current = current

    def on_mount(self) -> None:
        self.query_one("#who", Input).focus()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Act as", classes="dialog-title")
            yield Input(placeholder="type a name", id="who")
            yield OptionList(*self._options(""), id="users")

    def _options(self, text: str) -> list[Option]:
        text = text.lower()
        return [
            Option(f"{u.username:<10} {u.role:<14} {u.name}", id=u.username)
            for u in self.users
            if text in u.username.lower() or text in u.name.lower() or text in u.role
        ]

    @on(Input.Changed, "#who")
    def _narrow(self, event: Input.Changed) -> None:
        options = self.query_one("#users", OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        if options.option_count:
            options.highlighted = 0

    @on(Input.Submitted, "#who")
    def _enter(self) -> None:
        options = self.query_one("#users", OptionList)
        if options.highlighted is not None and options.option_count:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class PromptModal(_Modal):
    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            yield Input(placeholder=self.placeholder, id="answer")

    @on(Input.Submitted, "#answer")
    def _done(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class ErrorModal(_Modal):
    BINDINGS = [*ESCAPE, Binding("enter", "cancel", "Close", id="sharetui.modal_close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(detail_text(self.message))  # an exception's text may echo data
            with Horizontal(classes="buttons"):
                yield Button("Close", id="cancel")

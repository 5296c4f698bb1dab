"""Modal dialogs: share, confirm, post activity, edit a record, act as, prompt, error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
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
from sharetui.tui.text import amount_text, detail_text
from sharetui.tui.widgets.select import SearchSelect

ESCAPE = [Binding("escape", "cancel", "Cancel", id="sharetui.modal_cancel")]


def show_duration(preview: Static, text: str, now: datetime, note: str = "") -> bool:
    """Show in ``preview`` what duration ``text`` means from ``now`` (its words and end,
    then ``note``), or why it is not one; whether it is."""
    try:
        duration = parse_duration(text)
        duration.check_bounds(now)
    except InvalidDuration as exc:
        preview.update(Text(exc.message, style="red"))
        preview.set_class(True, "invalid")
        return False
    preview.set_class(False, "invalid")
    preview.update(f"{duration.words} — expires {local_text(duration.end_from(now))}{note}")
    return True


class _Modal(ModalScreen[Any]):
    BINDINGS = ESCAPE

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class ShareModal(_Modal):
    """Share a record: user, duration with live validation and expiry preview, access,
    optional context activity, until-completed.

    Every check that needs no database runs as the user types, in the product's words,
    and a failed check keeps the dialog and what was entered. ``activities`` are
    ``(id, label, owner)``: a context activity must be owned by the recipient, so the
    list offers only the chosen recipient's activities (or says why there are none).
    """

    def __init__(
        self,
        *,
        title: str,
        users: list[tuple[str, str]],
        now: datetime,
        is_lead: bool,
        activities: list[tuple[int, str, str | None]],
        default_duration: str = "7d",
        preset: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.users = users
        self.now = now
        self.is_lead = is_lead
        self.activities = activities
        self.default_duration = default_duration
        self.preset = preset or {}
        self.error = error

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label("Share with (type to search)")
            yield SearchSelect(
                [(f"{u} — {n}", u) for u, n in self.users],
                prompt="pick a sales user",
                id="user",
                type_to_search=True,
                # A recipient who left meanwhile is no longer on offer.
                value=self.preset["user"] if self.preset.get("user") in dict(self.users) else Select.NULL,
            )
            yield Label("For how long (30m, 2h, 3d, 2w, 6mo, 1y, 1d12h)")
            yield Input(value=self.preset.get("duration", self.default_duration), id="duration")
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
                yield Select([], prompt="no context", id="context")
                yield Static("", id="context-hint", classes="hint")
                yield Checkbox(
                    "until the activity is completed", id="until", value=self.preset.get("until", False)
                )
            yield Static(detail_text(self.error or ""), id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Share", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._preview(self.query_one("#duration", Input).value)
        if self.is_lead:
            self._offer_contexts(self.preset.get("context"))
        self.query_one("#user", Select).focus()

    def _recipient(self) -> str | None:
        value = self.query_one("#user", Select).value
        return value if isinstance(value, str) else None

    def _offer_contexts(self, keep: int | None = None) -> None:
        """Only the recipient's own activities can be a share's context."""
        user = self._recipient()
        select = self.query_one("#context", Select)
        hint = self.query_one("#context-hint", Static)
        if keep is None and isinstance(select.value, int):
            keep = select.value
        fitting = [(label, ident) for ident, label, owner in self.activities if user and owner == user]
        select.set_options(fitting)
        if keep is not None and keep in [ident for _, ident in fitting]:
            select.value = keep
        if user is None:
            hint.update("pick the recipient first: a context must be one of their activities")
        elif not self.activities:
            hint.update("this lead has no activities")
        elif not fitting:
            hint.update(detail_text(f"none of this lead's activities is owned by {user}"))
        else:
            hint.update("")
        self._check()

    @on(Select.Changed, "#user")
    def _user_changed(self) -> None:
        if self.is_lead:
            self._offer_contexts()
        else:
            self._check()

    @on(Select.Changed, "#context")
    @on(Checkbox.Changed, "#until")
    def _context_changed(self) -> None:
        self._check()

    @on(Input.Changed, "#duration")
    def _duration_changed(self, event: Input.Changed) -> None:
        self._preview(event.value)
        self._check()

    def _preview(self, text: str) -> bool:
        return show_duration(self.query_one("#preview", Static), text, self.now)

    def problem(self) -> str | None:
        """What keeps the share from being asked for, in the product's words (None: nothing)."""
        if self._recipient() is None:
            return "Pick who to share with."
        if not self._preview(self.query_one("#duration", Input).value):
            return "Fix the duration first."
        if self.is_lead:
            until = self.query_one("#until", Checkbox).value
            if until and not isinstance(self.query_one("#context", Select).value, int):
                return "'Until the activity is completed' needs a context activity."
        return None

    def _check(self) -> None:
        """Live: once a first problem was shown, it follows what is entered (a refusal
        from the core, passed in as ``error``, stays until the next try)."""
        if self._checking:
            self._say(self.problem() or self.error or "")

    _checking = False

    def _say(self, text: str) -> None:
        self.query_one("#problem", Static).update(Text(text, style="red"))

    def values(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "user": self._recipient(),
            "duration": self.query_one("#duration", Input).value,
            "access": self.query_one("#access", Select).value,
            "context": None,
            "until_completed": False,
        }
        if self.is_lead:
            ctx = self.query_one("#context", Select).value
            result["context"] = ctx if isinstance(ctx, int) else None  # the activity's id, or no context
            result["until_completed"] = self.query_one("#until", Checkbox).value
        return result

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted, "#duration")
    def _submit(self) -> None:
        problem = self.problem()
        if problem:
            self._checking = True
            self._say(problem)
            return
        self.dismiss(self.values())


class RenewModal(_Modal):
    """Renew one share: only its access and a new duration (counted from now)."""

    def __init__(
        self, *, title: str, now: datetime, access: str, default_duration: str, error: str | None = None
    ) -> None:
        super().__init__()
        self.title_text = title
        self.now = now
        self.access = access
        self.default_duration = default_duration
        self.error = error

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label("For how long from now (30m, 2h, 3d, 2w, 6mo, 1y, 1d12h)")
            yield Input(value=self.default_duration, id="duration")
            yield Static("", id="preview", classes="hint")
            yield Label("Access")
            yield Select(
                [("read", "read"), ("edit", "edit")], value=self.access, id="access", allow_blank=False
            )
            yield Static(detail_text(self.error or ""), id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Renew", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._preview(self.query_one("#duration", Input).value)
        self.query_one("#duration", Input).focus()

    @on(Input.Changed, "#duration")
    def _duration_changed(self, event: Input.Changed) -> None:
        self._preview(event.value)

    @on(Select.Changed, "#access")
    def _access_changed(self) -> None:
        self._preview(self.query_one("#duration", Input).value)

    def _preview(self, text: str) -> bool:
        lower = self.query_one("#access", Select).value == "read" and self.access == "edit"
        note = "; access goes down from edit to read" if lower else ""
        return show_duration(self.query_one("#preview", Static), text, self.now, note)

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted, "#duration")
    def _submit(self) -> None:
        duration = self.query_one("#duration", Input).value
        if not self._preview(duration):
            self.query_one("#problem", Static).update(Text("Fix the duration first.", style="red"))
            return
        self.dismiss({"duration": duration, "access": self.query_one("#access", Select).value})


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

    def on_mount(self) -> None:
        # A destructive question: enter on what has focus must be the safe answer.
        self.query_one("#cancel", Button).focus()

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


def amount_problem(text: str) -> str | None:
    """Why ``text`` is not an amount (None: it is one). Thousands separators are allowed."""
    cleaned = text.replace(",", "").replace("_", "").strip()
    if not cleaned:
        return "Write an amount (0 for none)."
    try:
        number = float(cleaned)
    except ValueError:
        return f"The amount must be a number such as 380,000 or 1250.50, not {text.strip()!r}."
    if number != number or number in (float("inf"), float("-inf")):
        return "The amount must be a finite number."
    return None


class EditRecordModal(_Modal):
    """Edit a record's standard fields. ``choices`` turns a field into a pick list (the
    stage); the amount is checked as it is typed; a failed check keeps the dialog."""

    def __init__(
        self,
        title: str,
        values: dict[str, Any],
        choices: dict[str, list[str]] | None = None,
        error: str | None = None,
        typed: dict[str, str] | None = None,
    ) -> None:
        """``typed``: what was entered before a refused save, shown again."""
        super().__init__()
        self.title_text = title
        self.values = values
        self.choices = choices or {}
        self.error = error
        self.typed = typed or {}

    @staticmethod
    def shown(key: str, value: Any) -> str:
        if value is None:
            return ""
        if key == "amount" and isinstance(value, (int, float)):
            return amount_text(value)
        return str(value)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            for key, stored in self.values.items():
                yield Label(key)
                value = self.typed.get(key, stored)
                if key in self.choices:
                    options = list(self.choices[key])
                    if value and value not in options:
                        options.insert(0, str(value))
                    yield SearchSelect(
                        [(o, o) for o in options],
                        value=str(value) if value else Select.NULL,
                        prompt=f"pick a {key}",
                        id=f"f-{key}",
                        type_to_search=True,
                    )
                else:
                    yield Input(value=self.shown(key, value), id=f"f-{key}")
            yield Static(detail_text(self.error or ""), id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def _value(self, key: str) -> str:
        widget = self.query_one(f"#f-{key}")
        if isinstance(widget, Select):
            return "" if widget.value is Select.NULL else str(widget.value)
        assert isinstance(widget, Input)
        return widget.value

    def problem(self) -> str | None:
        if "amount" in self.values:
            return amount_problem(self._value("amount"))
        return None

    @on(Input.Changed)
    def _live(self) -> None:
        problem = self.problem()
        self.query_one("#problem", Static).update(Text(problem or "", style="red"))
        self.query_one("#ok", Button).disabled = problem is not None

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted)
    def _submit(self) -> None:
        if self.problem():
            self._live()
            return
        changed = {}
        for key, old in self.values.items():
            new = self._value(key)
            if new != self.shown(key, old):
                changed[key] = new.replace(",", "").strip() if key == "amount" else new
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
    """One question. ``value`` is a suggestion written in the box (enter accepts it);
    ``placeholder`` only shows while the box is empty."""

    def __init__(self, question: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.value = value

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="answer")

    @on(Input.Submitted, "#answer")
    def _done(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class ErrorModal(_Modal):
    BINDINGS = [*ESCAPE, Binding("enter", "cancel", "Close", id="sharetui.modal_close")]
    KIND = "error"

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes=f"dialog {self.KIND}"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(detail_text(self.message))  # an exception's text may echo data
            with Horizontal(classes="buttons"):
                yield Button("Close", id="cancel")


class InfoModal(ErrorModal):
    """A result to read (a dry run's report): the error dialog's shape, not its colour."""

    KIND = "info"

"""What every command shares: the application context (where the database is,
who is acting), the common options and argument types, and how results print.

Command modules import from here, never from :mod:`sharetui.cli.main`, which adds
them to the root group.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import click

from sharetui.domain.ids import MAX_ID
from sharetui.errors import SharetuiError, UsageError

F = TypeVar("F", bound=Callable[..., Any])


class AppContext:
    """What every command shares: where the database is and who is acting.

    The database is opened (and migrated) only when a command needs it.
    """

    def __init__(
        self, db: str | None, acting: str | None, plugins_dirs: tuple[str, ...] = (), host: Any = None
    ) -> None:
        self.db_option = db
        self.acting_name = acting
        self.plugins_dirs = plugins_dirs
        self._host = host
        self.embedded = True  # process automation events after the command (off for the worker)
        self.migrate = True  # apply missing migrations when opening (off for doctor, which only looks)

    def process_automations(self) -> list[Any]:
        """Embedded mode: run the automations that the command's changes triggered."""
        if "core" not in self.__dict__ or self.core.team.is_team:
            return []  # team mode: `sharetui worker` processes events (DESIGN §4)
        return self.core.automations.process_pending()

    def after_command(self) -> None:
        if not self.embedded or "core" not in self.__dict__:
            return
        from sharetui.core.automations import runs_not_shown
        from sharetui.domain.text import visible

        try:
            shown, hidden = self.core.automations.visible_reports(self.actor, self.process_automations())
            for report in shown:
                click.echo(f"note: {visible(report.summary(), one_line=True)}", err=True)
            if hidden:
                click.echo(f"note: {runs_not_shown(hidden)}", err=True)
        except SharetuiError as exc:
            click.echo(f"warning: automations: {visible(exc.message, one_line=True)}", err=True)

    def close(self) -> None:
        """Let go of the database when the command ends, however it ends. A process
        would drop the connection at exit anyway; a program (or a test) that runs
        commands in-process would otherwise keep one open per command."""
        core = self.__dict__.pop("core", None)
        self.__dict__.pop("actor", None)
        if core is not None:
            from sharetui.runtime import release

            release(core)

    @property
    def host(self):
        """The plugin host, loaded once: directories, entry points, defaults."""
        if self._host is None:
            from sharetui.host import PluginHost

            self._host = PluginHost.from_environment(self.plugins_dirs)
        return self._host

    @cached_property
    def url(self) -> str:
        from sharetui.config import database_url

        return database_url(self.db_option)

    @cached_property
    def shown_url(self) -> str:
        """The database URL fit to print: without its password."""
        from sharetui.config import redact_url

        return redact_url(self.url)

    def check_database_exists(self) -> None:
        """Refuse (exit 2, creating nothing) a SQLite file that does not exist, unless the
        running command is one that creates databases (:data:`CREATING_COMMANDS`): a
        mistyped ``--db`` must not leave a new empty database and its folders behind."""
        from sharetui.config import sqlite_file

        path = sqlite_file(self.url)
        if path is None or path.exists() or running_command() in CREATING_COMMANDS:
            return
        raise UsageError(f"no database at {path} (create one with sharetui init)")

    @cached_property
    def core(self):
        from sharetui.clock import clock_from_env
        from sharetui.runtime import OperationalError, open_core

        self.check_database_exists()
        try:
            core = open_core(self.url, clock_from_env(), plugins=self.host, migrate=self.migrate)
            core.db.connect(reuse_if_open=True)  # a database that cannot be opened says so here
        except OperationalError as exc:
            if is_disk_full(exc):
                raise UsageError(DISK_FULL) from None
            raise UsageError(f"cannot open database {self.shown_url}: {first_line(exc)}") from None
        # Team mode: the server's clock, and the login decides who acts (DESIGN §8), before
        # any command reads or writes (a sales login writes share metadata through functions).
        core.team.start_session(os.environ.get("SHARETUI_NOW"))
        if core.team.is_team and running_command() not in IDENTITY_FREE_COMMANDS:
            self.__dict__["core"] = core
            _ = self.actor
        return core

    def require_on_the_database_as_is(self, capability: Any) -> None:
        """Ask the gate whether the acting user may do ``capability`` (a
        :class:`~sharetui.core.access.gate.Capability`) to the database as it stands,
        without migrating it, then let go of it: for ``backup`` and ``restore``, which
        work on the file itself. A database with no users yet is the system's. On
        PostgreSQL both only print the ``pg_dump``/``pg_restore`` commands to run, with
        the server's own permissions: nothing to ask."""
        from sharetui.config import sqlite_file

        path = sqlite_file(self.url)
        if path is None or not path.exists():
            return
        self.migrate = False
        core = self.core
        try:
            if "users" in core.db.get_tables():
                name = self.acting_name or os.environ.get("SHARETUI_USER", "").strip() or None
                core.gate.require(core.users.acting_as_is(name), capability)
        finally:
            from sharetui.runtime import release

            release(core)
            self.__dict__.pop("core", None)
            self.__dict__.pop("actor", None)

    @cached_property
    def actor(self):
        """The acting user; ``None`` (the system) only while no user exists."""
        name = self.acting_name or os.environ.get("SHARETUI_USER", "").strip() or None
        if self.core.team.is_team:
            return self.core.team.identify(name)
        return self.core.users.acting(name)


pass_app = click.make_pass_decorator(AppContext)

# The commands that may create the database they are pointed at (DESIGN .7): every
# other command on a SQLite file that does not exist exits 2 and creates nothing.
# ``demo`` makes its own database in a temporary folder.
# Team mode: commands the setup role runs before (or without) any identity.
IDENTITY_FREE_COMMANDS = frozenset({"init", "team init", "team worker-login", "doctor"})

CREATING_COMMANDS = frozenset({"init", "load", "users add", "demo", "generate", "restore"})


def running_command() -> str:
    """The command being run, without the program name (``users add``; ``""`` outside one)."""
    ctx = click.get_current_context(silent=True)
    return " ".join(ctx.command_path.split()[1:]) if ctx is not None else ""


DISK_FULL = (
    "the disk is full (database or disk is full): nothing was saved; "
    "free some space (or raise the database's size limit) and try again"
)


def is_disk_full(exc: BaseException) -> bool:
    """Whether a store error (or one it followed, such as the "cannot rollback - no
    transaction is active" peewee raises after SQLite gave up the transaction) is a
    full disk: SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100) or ENOSPC."""
    from sharetui.runtime import is_disk_full as store_says_full

    return store_says_full(exc)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def database_error_line(exc: BaseException) -> str:
    """The one line the CLI prints for a store error it did not expect."""
    if is_disk_full(exc):
        return DISK_FULL
    return f"database: {one_line(first_line(exc))}"


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(fn)


def out(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    from sharetui.cli.output import print_json

    if as_json:
        print_json(data)
    else:
        human()


def out_with_runs(app: AppContext, as_json: bool, data: dict[str, Any], human: Callable[[], None]) -> None:
    """Print a change's result and what the automations it triggered did (embedded mode)."""
    from sharetui.cli.output import say
    from sharetui.core.automations import runs_not_shown

    runs, hidden = app.core.automations.visible_reports(app.actor, app.process_automations())
    data = {**data, "automation_runs": [r.as_dict() for r in runs]}
    if hidden:
        data["automation_runs_not_shown"] = hidden

    def both() -> None:
        human()
        for report in runs:
            say(f"  → {report.summary()}", "cyan")
        if hidden:
            say(f"  → {runs_not_shown(hidden)}", "cyan")

    out(as_json, data, both)


def parse_fields(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--field k=v`` pairs; values that read as JSON numbers/booleans become those
    (``NaN``, ``Infinity`` and ``1e400`` stay text: JSON has no such numbers)."""
    import json
    import math

    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--field takes key=value, not {pair!r}")
        try:
            parsed = json.loads(value)
            number = isinstance(parsed, (int, bool)) or (isinstance(parsed, float) and math.isfinite(parsed))
            fields[key.strip()] = parsed if number or parsed is None else value
        except ValueError:
            fields[key.strip()] = value
    return fields


def parse_when(value: str | None, core) -> Any:
    """A time: ISO-8601, or an offset from now such as ``+2d`` or ``-3h``."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith(("+", "-")):
        from sharetui.domain.durations import offset_from

        return offset_from(core.now(), text)
    from sharetui.clock import parse_instant

    return parse_instant(text)


ENTITY = click.Choice(["lead", "opp", "opportunity"], case_sensitive=False)
ID = click.IntRange(1, MAX_ID)  # record, activity and task ids


def one_line(message: str, longest: int = 120) -> str:
    """An error message as one readable line: echoed input (a 10 MB argument, say)
    is cut in the middle, word by word and then as a whole, and line breaks become spaces."""
    from sharetui.domain.text import visible

    words = []
    for word in message.replace("\r", " ").replace("\n", " ").split(" "):
        words.append(word if len(word) <= longest else f"{word[:80]}…{word[-20:]} ({len(word)} characters)")
    line = " ".join(words)
    line = line if len(line) <= 1000 else f"{line[:700]} … {line[-200:]}"
    return visible(line, one_line=True)  # echoed input never drives the terminal (DESIGN §9)


class Group(click.Group):
    """Lists commands in the order they were added, as DESIGN .7 does."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

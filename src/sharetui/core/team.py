"""Identity and time in each mode (DESIGN §8).

- **personal** (SQLite) and **postgresql** (a PostgreSQL database never ``team init``-ed):
  ``--as``/``SHARETUI_USER`` choose the acting user, ``SHARETUI_NOW`` freezes the clock.
- **team**: the acting user is the one linked to ``session_user``; only an admin may act
  as someone else (impersonation, recorded as "admin as daniel"); the server's clock
  decides, and ``SHARETUI_NOW`` is refused unless the database was made with
  ``sharetui init --test-clock``. Sessions that are not the setup role or a worker write
  grants, share requests, history and the outbox through the database's functions
  (:mod:`sharetui.core.sharing.team_writes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sharetui.clock import parse_instant
from sharetui.db import team as team_sql
from sharetui.db.connection import is_sqlite
from sharetui.db.models import User
from sharetui.errors import UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core


@dataclass(frozen=True)
class Identity:
    """Who is acting, and who vouches for it."""

    mode: str  # personal | postgresql | team
    login: str | None  # the PostgreSQL login (session_user); None on SQLite
    user: User | None  # the acting user; None: the system (no users yet, the setup role, a worker)
    impersonator: User | None = None  # the admin acting as ``user``
    test_clock: bool = False

    @property
    def acting_name(self) -> str:
        if self.user is None:
            return "the system"
        if self.impersonator is not None:
            return f"{self.impersonator.username} as {self.user.username}"
        return self.user.username

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "login": self.login,
            "acting_user": self.user.username if self.user else None,
            "impersonated_by": self.impersonator.username if self.impersonator else None,
            "test_clock": self.test_clock,
        }

    def header(self) -> str:
        """One line for the TUI header and ``doctor``."""
        parts = [f"{self.mode} mode"]
        if self.login:
            parts.append(f"login {self.login}")
        parts.append(f"acting {self.acting_name}")
        if self.test_clock:
            parts.append("test clock")
        return " · ".join(parts)


class TeamService:
    """What mode the database is in, whose login this is, and whose clock rules."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._config: dict[str, str] | None = None
        # True once a team login that is neither the setup role nor a worker acts: its
        # writes to share metadata and the outbox go through the database's functions.
        self.routed = False
        self.identity: Identity | None = None

    # -- the setup ---------------------------------------------------------------------
    @property
    def config(self) -> dict[str, str]:
        if self._config is None:
            self._config = {} if is_sqlite() else team_sql.config(self.core.db)
        return self._config

    def forget(self) -> None:
        """Read ``team_config`` again (after ``team init`` or ``init --test-clock``)."""
        self._config = None

    @property
    def mode(self) -> str:
        if is_sqlite():
            return "personal"
        return "team" if self.config.get("mode") == "team" else "postgresql"

    @property
    def is_team(self) -> bool:
        return self.mode == "team"

    @property
    def functions_version(self) -> int:
        """The version of the functions ``team init`` installed (0: before versions)."""
        value = self.config.get("functions", "0")
        return int(value) if value.isdigit() else 0

    functions_wanted = team_sql.FUNCTIONS_VERSION

    @property
    def functions_current(self) -> bool:
        """Whether this database has this sharetui's team functions (else: run ``team init``)."""
        return self.functions_version >= self.functions_wanted

    @property
    def locks_recipient_rows(self) -> bool:
        """Whether a recipient's share lock is their users row, taken through the database's
        function (team mode), rather than an advisory lock (db/locks.py). A team database
        whose functions predate sharetui_hold_recipient (team init not run again after an
        upgrade; doctor says so) keeps the advisory lock meanwhile."""
        return self.is_team and self.functions_current

    @property
    def test_clock(self) -> bool:
        return self.config.get("test_clock") == "on"

    @property
    def prefix(self) -> str:
        return self.config.get("role_prefix", team_sql.DEFAULT_PREFIX)

    def login(self) -> str | None:
        return None if is_sqlite() else team_sql.session_login(self.core.db)

    def groups(self) -> list[str]:
        """The sharetui groups this login is in (``admin``, ``sales``, ``worker`` …)."""
        login = self.login()
        return [] if login is None else team_sql.login_groups(self.core.db, login, self.prefix)

    def is_setup_role(self) -> bool:
        return not is_sqlite() and team_sql.is_setup_role(self.core.db, self.config)

    def is_worker(self) -> bool:
        return "worker" in self.groups()

    # -- setting up (the setup role; admins for logins) --------------------------------
    def _require_postgresql(self, what: str) -> None:
        if is_sqlite():
            raise UsageError(
                f"{what} needs a PostgreSQL database: a SQLite file is personal mode, and whoever "
                "can open it administers it (see README, Security model)"
            )

    def init(self, prefix: str = team_sql.DEFAULT_PREFIX) -> team_sql.Names:
        """``sharetui team init``: group roles, row security, grants; idempotent."""
        self._require_postgresql("sharetui team init")
        self.core.migrate()
        names = team_sql.init_team(self.core.db, prefix)
        self.forget()
        return names

    def set_test_clock(self) -> None:
        """``sharetui init --test-clock``: a session may set its own time (tests only)."""
        self._require_postgresql("--test-clock")
        team_sql.set_test_clock(self.core.db)
        self.forget()

    def require_team(self, what: str) -> None:
        self._require_postgresql(what)
        if not self.is_team:
            raise UsageError(f"{what} needs team mode: run `sharetui team init` as the setup role first")

    def login_exists(self, login: str) -> bool:
        row = self.core.db.execute_sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
        return row is not None

    def link_login(self, user: User, login: str, *, password: str | None) -> bool:
        """Create ``login`` (when no such role exists) or link it to ``user``; the group
        follows the user's role and LOGIN their active flag. Returns whether it was created."""
        self.require_team("--login")
        name = team_sql.check_login(login)
        create = not self.login_exists(name)
        if password and not create:
            raise UsageError(
                f"login {name} exists: sharetui sets no password on an existing login "
                "(its owner or a superuser does); leave out --password-file"
            )
        team_sql.link_login(self.core.db, user.id, name, create=create, password=password)
        return create

    def add_worker_login(self, login: str, *, password: str | None) -> bool:
        """A LOGIN role in the worker group (the setup role runs it)."""
        self.require_team("a worker login")
        return team_sql.add_worker_login(self.core.db, login, self.prefix, password)

    def row_security(self) -> dict[str, tuple[bool, bool]]:
        return {} if is_sqlite() else team_sql.row_security(self.core.db)

    # -- time ----------------------------------------------------------------------------
    def start_session(self, frozen: str | None) -> None:
        """Team mode: the server's clock rules. ``frozen`` (``SHARETUI_NOW``) is refused
        unless this is a test-clock database, where it becomes the session's time."""
        if not self.is_team:
            return
        text = (frozen or "").strip()
        if text:
            if not self.test_clock:
                raise UsageError(
                    "SHARETUI_NOW is refused in team mode: the database server's clock decides "
                    "(only a database made with `sharetui init --test-clock` takes it)"
                )
            at = parse_instant(text)
            team_sql.set_session(self.core.db, "now", at.isoformat())
        self.core.clock = team_sql.ServerClock(self.core.db)

    # -- who -----------------------------------------------------------------------------
    def identify(self, name: str | None) -> User | None:
        """The acting user in team mode for ``--as``/``SHARETUI_USER`` ``name`` (or none).

        Raises :class:`UsageError` (exit 2) for a login linked to no active user and for
        ``name`` from anyone but an admin."""
        login = self.login()
        linked = User.get_or_none(User.login == login)
        trusted = self.is_setup_role() or self.is_worker()
        if linked is None or not linked.active:
            if not self.core.users.any_exist() or (trusted and not name):
                self.identity = Identity("team", login, None, test_clock=self.test_clock)
                self.routed = False
                return None
            why = (
                "is linked to no sharetui user"
                if linked is None
                else f"belongs to {linked.username}, who is deactivated"
            )
            raise UsageError(
                f"login {login} {why}: an admin links it with "
                f"`sharetui users add NAME --role R --login {login}`"
            )
        self.routed = not trusted
        user, impersonator = linked, None
        if name and name.strip().lower() != linked.username:
            if linked.role != "admin":
                raise UsageError(
                    f"login {login} is {linked.username} ({linked.role}): only admins may act as "
                    "another user (--as, SHARETUI_USER, act-as) in team mode"
                )
            user = self.core.users.get(name)
            if not user.active:
                raise UsageError(f"user {user.username} is deactivated")
            impersonator = linked
            team_sql.set_session(self.core.db, "act_as", user.username)
            self.routed = True  # the database records "admin as daniel"
        elif impersonator is None:
            team_sql.set_session(self.core.db, "act_as", "")
        self.identity = Identity("team", login, user, impersonator, self.test_clock)
        return user

    def describe(self, acting: User | None) -> Identity:
        """The identity to show (doctor, the TUI header) in any mode."""
        if self.identity is not None and self.is_team:
            return self.identity
        return Identity(self.mode, self.login(), acting, test_clock=self.test_clock)


__all__ = ["Identity", "TeamService"]

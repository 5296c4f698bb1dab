"""Settings stored in the database, with defaults (caps, durations, sharing policy)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharetui.db.models import Setting
from sharetui.db.sql import Statement
from sharetui.domain.durations import parse_duration
from sharetui.domain.roles import DEFAULT_SHARE_CAP
from sharetui.errors import UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core
    from sharetui.db.models import User

DEFAULTS: dict[str, Any] = {
    "share_cap_leads": DEFAULT_SHARE_CAP,
    "share_cap_opportunities": DEFAULT_SHARE_CAP,
    "default_duration": "90d",
    "owners_can_share": True,
    "expiring_soon_window": "24h",
    "automation_daily_limit": 50,
    "run_retention_days": 90,
    "schedule_max_records": 10000,
    "plugin_dirs": [],
    "plugin_budget_ms": 200,
    "plugin_action_budget_ms": 2000,
    "plugin_failure_limit": 5,
    "run_trace_max_bytes": 65536,
    "max_input_bytes": 256 * 1024 * 1024,
}

DESCRIPTIONS = {
    "share_cap_leads": "distinct leads one user may hold active shares on",
    "share_cap_opportunities": "distinct opportunities one user may hold active shares on",
    "default_duration": "duration of a share when none is given",
    "owners_can_share": "sales users may share and revoke the records they own",
    "expiring_soon_window": "how long before expiry the 'expiring soon' notice fires",
    "automation_daily_limit": "loop guard: runs of one automation per record per 24 hours",
    "run_retention_days": "how long automation runs and their traces are kept",
    "schedule_max_records": "records one schedule firing may run on",
    "plugin_dirs": "folders (absolute paths) every sharetui on this database loads plugins from",
    "plugin_budget_ms": "time one access check, share check or rule-set call may take; later denies",
    "plugin_action_budget_ms": "time one plugin action or event listener call may take; later fails",
    "plugin_failure_limit": "failures in a row after which a plugin is set aside until restart",
    "run_trace_max_bytes": "most bytes of trace stored per automation run (the longest parts are cut first)",
    "max_input_bytes": "largest input file (batch JSON, automation, lead file, sample data file) in bytes",
}


# Upper bounds where a larger number breaks date arithmetic (now - retention days), or
# would let one run store what the cap is there to prevent, or where a larger input would
# be read whole into memory (4 GiB).
_MOST = {
    "run_retention_days": 36_500,
    "plugin_budget_ms": 60_000,
    "plugin_action_budget_ms": 600_000,
    "plugin_failure_limit": 1_000,
    "run_trace_max_bytes": 64 * 1024 * 1024,
    "max_input_bytes": 4 * 1024**3,
}
# Lower bounds above 1: a trace shorter than this cannot say what each step did, and an
# input limit below 1 KiB refuses any real file.
_LEAST = {"run_trace_max_bytes": 4096, "max_input_bytes": 1024}
# Bounds of calendar units hardly depend on the start; a share checks its own again.
_SOME_START = datetime(2026, 1, 1, tzinfo=UTC)


def _paths(key: str, value: Any) -> list[str]:
    """Folders as a JSON list of strings, or one text of them joined with ``os.pathsep``
    (as ``SHARETUI_PLUGINS_DIR``); each must be absolute (after ``~``), so it names
    the same folder whatever directory sharetui runs in. Empty: none."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise UsageError(f"setting {key} takes a JSON list of paths, not {text!r}") from None
        else:
            value = text.split(os.pathsep)
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"setting {key} takes a list of paths, not {value!r}")
    paths: list[str] = []
    for item in value:
        if not item.strip():
            continue
        path = Path(item.strip()).expanduser()
        if not path.is_absolute():
            raise UsageError(f"setting {key} takes absolute paths: {item.strip()!r} is relative")
        if str(path) not in paths:
            paths.append(str(path))
    return paths


def _coerce(key: str, value: Any) -> Any:
    default = DEFAULTS[key]
    if isinstance(default, list):
        return _paths(key, value)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise UsageError(f"setting {key} takes true or false, not {value!r}")
    if isinstance(default, int):
        try:
            number = int(str(value).strip())
        except ValueError:
            raise UsageError(f"setting {key} takes a whole number, not {value!r}") from None
        if number < _LEAST.get(key, 1):
            raise UsageError(f"setting {key} must be at least {_LEAST.get(key, 1)}")
        if number > _MOST.get(key, 1_000_000_000):
            raise UsageError(f"setting {key} must be at most {_MOST.get(key, 1_000_000_000)}")
        return number
    text = str(value).strip()
    # Readable and within a share's bounds (1 minute to 5 years), so no share or
    # sweep that uses it later fails on it.
    parse_duration(text).check_bounds(_SOME_START)
    return text


# Read on every share (the cap, the default duration): compiled once.
_GET = Statement("SELECT value FROM settings WHERE key = ?", reads=("settings",))


class Settings:
    """Read and change settings; values are validated by their default's type."""

    def __init__(self, core: Core) -> None:
        self.core = core
        # (outermost transaction, values read in it): a batch of shares or automation runs
        # reads the cap and the loop-guard limit once, not per item. Settings cannot change
        # under a transaction's snapshot on SQLite; set() drops the memo.
        self._memo: tuple[Any, dict[str, Any]] = (None, {})

    def get(self, key: str) -> Any:
        if key not in DEFAULTS:
            raise UsageError(f"unknown setting {key!r}: known are {', '.join(DEFAULTS)}")
        db = self.core.db
        outer = db._state.transactions[0] if db.transaction_depth() else None
        memo = self._memo
        if outer is not None and memo[0] is outer and key in memo[1]:
            return memo[1][key]
        row = _GET.one((key,))
        value = DEFAULTS[key] if row is None else json.loads(row[0])
        if outer is not None:
            if memo[0] is not outer:
                memo = self._memo = (outer, {})
            memo[1][key] = value
        return value

    def all(self) -> dict[str, Any]:
        stored = {row.key: row.value for row in Setting.select()}
        return {key: stored.get(key, default) for key, default in DEFAULTS.items()}

    def visible(self, actor: User | None, key: str | None = None) -> dict[str, Any]:
        """Every setting (or one) for ``actor`` to read: admins and sales managers (DESIGN §9)."""
        from sharetui.core.access.gate import Capability

        self.core.gate.require(actor, Capability.READ_SETTINGS)
        return self.all() if key is None else {key: self.get(key)}

    def set(self, key: str, value: Any, *, actor: User | None) -> Any:
        """Change a setting (admins; DESIGN §9)."""
        from sharetui.core.access.gate import Capability

        self.core.gate.require(actor, Capability.CHANGE_SETTINGS)
        if key not in DEFAULTS:
            raise UsageError(f"unknown setting {key!r}: known are {', '.join(DEFAULTS)}")
        coerced = _coerce(key, value)
        self._memo = (None, {})
        with self.core.db.atomic():
            Setting.insert(key=key, value=coerced).on_conflict(
                conflict_target=[Setting.key], update={Setting.value: coerced}
            ).execute()
            self.core.outbox.emit("setting.changed", None, None, {"key": key, "value": coerced})
        return coerced

    def share_cap(self, entity: str) -> int:
        return int(self.get("share_cap_leads" if entity == "lead" else "share_cap_opportunities"))

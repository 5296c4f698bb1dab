"""sharetui plugin: every share lifecycle event appended to a JSON-lines file.

One line per event — granted, renewed, revoked, expired, expiring_soon and
request_failed — written after the change committed, so the file never holds
an event the database does not.

Configuration (environment): ``SHARETUI_AUDIT_LOG`` — the file (default
``audit.jsonl`` in sharetui's user data directory). Parent folders are created.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from platformdirs import user_data_path

from sharetui import hookimpl
from sharetui.sdk import ShareEvent

PLUGIN_NAME = "audit-log"
__version__ = "0.1.0"

_lock = threading.Lock()


def audit_path() -> Path:
    configured = os.environ.get("SHARETUI_AUDIT_LOG", "").strip()
    if configured:
        return Path(configured).expanduser()
    return user_data_path("sharetui", appauthor=False) / "audit.jsonl"


def write(event: ShareEvent) -> None:
    path = audit_path()
    line = json.dumps(event.as_dict(), ensure_ascii=False, sort_keys=True) + "\n"
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write() of one line in append mode: lines from several processes never interleave.
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line)


@hookimpl
def sharetui_share_granted(event: ShareEvent) -> None:
    write(event)


@hookimpl
def sharetui_share_renewed(event: ShareEvent) -> None:
    write(event)


@hookimpl
def sharetui_share_revoked(event: ShareEvent) -> None:
    write(event)


@hookimpl
def sharetui_share_expired(event: ShareEvent) -> None:
    write(event)


@hookimpl
def sharetui_share_expiring_soon(event: ShareEvent) -> None:
    write(event)


@hookimpl
def sharetui_share_request_failed(event: ShareEvent) -> None:
    write(event)

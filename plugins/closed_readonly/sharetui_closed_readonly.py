"""sharetui plugin: closed records are read-only for people who reach them only
through a share.

A lead or an opportunity whose stage is closed ("Closed", "Closed Won", "Closed
Lost", "Won", "Lost"; any case) may still be read through a share, but not
edited. Owners, group members, managers and admins edit as before. Drop this file
into a folder and run ``sharetui --plugins-dir FOLDER``.
"""

from __future__ import annotations

from sharetui import hookimpl
from sharetui.sdk import Access, AccessDecision, RecordView, UserInfo, Verdict, deny

PLUGIN_NAME = "closed-readonly"
SDK_VERSION = "2"  # the SDK this plugin was written for (`sharetui plugins` shows it)
__version__ = "0.1.0"

CLOSED_STAGES = frozenset({"closed", "closed won", "closed lost", "won", "lost"})


def is_closed(view: RecordView) -> bool:
    return view.stage.strip().lower() in CLOSED_STAGES


@hookimpl
def sharetui_check_access(
    user: UserInfo, action: str, decision: AccessDecision, view: RecordView | None
) -> Verdict | None:
    """Deny editing a closed record to someone whom only a share lets edit it."""
    if action != "edit" or view is None or not is_closed(view):
        return None
    if decision.only_via_share(Access.EDIT):
        return deny(f"{view.ref} is {view.stage}: read-only through a share")
    return None

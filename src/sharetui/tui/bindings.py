"""One registry of key bindings: it feeds the footer, the help screen and the
command palette, and users remap keys by binding id (``SHARETUI_KEYMAP``, a
TOML file of ``id = "key"`` lines)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    id: str
    key: str
    action: str
    description: str
    scope: str  # where it applies: app, list, record, automations, history, modal
    show: bool = True
    priority: bool = False  # before the focused widget's own binding for the key


KEYS: list[Key] = [
    # anywhere
    # Sections are on the section bar under the header, so the footer keeps room
    # for the keys that apply to what is on screen.
    Key("sharetui.leads", "1", "show_section('leads')", "Leads", "app", show=False),
    Key("sharetui.opportunities", "2", "show_section('opportunities')", "Opportunities", "app", show=False),
    Key("sharetui.automations", "3", "show_section('automations')", "Automations", "app", show=False),
    Key("sharetui.history", "4", "show_section('history')", "History", "app", show=False),
    Key("sharetui.users", "5", "show_section('users')", "Users", "app", show=False),
    Key("sharetui.plugins", "6", "show_section('plugins')", "Plugins", "app", show=False),
    Key("sharetui.act_as", "ctrl+u", "act_as", "Act as", "app"),
    Key("sharetui.clock_hour", "t", "advance_clock(3600)", "+1h", "app"),
    Key("sharetui.clock_day", "T", "advance_clock(86400)", "+1d", "app"),
    Key("sharetui.refresh", "ctrl+r", "refresh", "Refresh", "app", show=False),
    Key("sharetui.story_next", "space", "story_step", "Next step", "app"),  # only while a story plays
    Key("sharetui.help", "question_mark", "help", "Help", "app"),
    Key("sharetui.quit", "q", "quit", "Quit", "app"),
    # record lists
    Key("sharetui.filter", "slash", "focus_filter", "Filter", "list"),
    Key("sharetui.sort", "o", "cycle_sort", "Sort", "list"),  # by the next column; a header click too
    Key("sharetui.sort_reverse", "O", "reverse_sort", "Reverse the sort", "list", show=False),
    Key("sharetui.open", "enter", "open_record", "Open", "list"),
    Key("sharetui.list_share", "s", "share_row", "Share", "list"),
    Key("sharetui.list_revoke", "x", "revoke_row", "Revoke", "list"),
    Key("sharetui.list_renew", "n", "renew_row", "Renew", "list"),
    Key("sharetui.save_view", "V", "save_view", "Save view", "list"),
    Key("sharetui.leave_filter", "escape", "leave_filter", "To the list", "list", show=False),
    # Priority: one screen at a time, and on to the next page of the list past its end.
    Key("sharetui.next_page", "pagedown", "next_page", "Screen down", "list", show=False, priority=True),
    Key("sharetui.prev_page", "pageup", "prev_page", "Screen up", "list", show=False, priority=True),
    # a record
    Key("sharetui.share", "s", "share", "Share", "record"),
    Key("sharetui.revoke", "x", "revoke", "Revoke", "record"),
    Key("sharetui.renew", "n", "renew", "Renew", "record"),
    Key("sharetui.post_activity", "p", "post_activity", "Post activity", "record"),
    Key("sharetui.complete_task", "k", "complete_task", "Complete task", "record"),
    Key("sharetui.edit", "e", "edit_record", "Edit", "record"),
    Key("sharetui.back", "escape", "back", "Back", "record"),
    Key("sharetui.next_tab", "tab", "next_tab", "Next tab", "record", show=False, priority=True),
    Key("sharetui.prev_tab", "shift+tab", "prev_tab", "Prev tab", "record", show=False, priority=True),
    # automations
    Key("sharetui.automation_new", "N", "new_automation", "New", "automations"),
    Key("sharetui.automation_edit", "e", "edit_automation", "Edit", "automations"),
    Key("sharetui.automation_publish", "P", "publish", "Publish", "automations"),
    Key("sharetui.automation_pause", "z", "pause", "Pause", "automations"),
    Key("sharetui.automation_test", "d", "dry_run", "Dry run", "automations"),
    # history
    Key("sharetui.export", "E", "export_csv", "Export CSV", "history"),
    Key("sharetui.history_older", "pagedown", "older", "Older", "history", show=False, priority=True),
    Key("sharetui.history_newer", "pageup", "newer", "Newer", "history", show=False, priority=True),
    Key("sharetui.history_close", "escape", "close_detail", "Close detail", "history"),
]


def bindings(scope: str) -> list[Binding]:
    return [
        Binding(k.key, k.action, k.description, show=k.show, id=k.id, priority=k.priority)
        for k in KEYS
        if k.scope == scope
    ]


def user_keymap() -> dict[str, str]:
    """``SHARETUI_KEYMAP``: a TOML file mapping binding ids to keys."""
    path = os.environ.get("SHARETUI_KEYMAP", "").strip()
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    known = {k.id for k in KEYS}
    return {k: str(v) for k, v in data.items() if k in known and isinstance(v, str)}

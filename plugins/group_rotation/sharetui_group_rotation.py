"""sharetui plugin: an automation action that shares the record with the next
member of a sales group, in turn (round robin).

Action ``share_with_group_rotation``; configuration:

- ``group`` (required): the sales group whose members take turns;
- ``duration`` (default ``7d``) and ``access`` (``read`` or ``edit``, default ``read``);
- ``skip_owner`` (default true): the record's owner never takes a turn.

Members are the group's active ``sales`` users, in username order. The turn
pointer is kept in the plugin's state and moves only when a share succeeds, in
the same transaction, so a retried run never skips anyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharetui import hookimpl
from sharetui.sdk import ActionContext, ConfigField, Outcome, Services, choice, duration, group

PLUGIN_NAME = "group-rotation"
SDK_VERSION = "2"  # the SDK this plugin was written for (`sharetui plugins` shows it)
__version__ = "0.1.0"


CONFIG = {
    "group": ConfigField(group, required=True, help="sales group whose members take turns"),
    "duration": ConfigField(duration, default="7d", help="how long each share lasts"),
    "access": ConfigField(choice("read", "edit"), default="read"),
    "skip_owner": ConfigField(bool, default=True, help="the record's owner never takes a turn"),
}


def members(services: Services, group: str, owner: str | None, skip_owner: bool) -> list[str]:
    """The group's active sales users who may take a turn, in username order."""
    out = []
    for username in services.users.members(group):
        user = services.users.get(username)
        if user is None or not user.active or user.role != "sales":
            continue
        if skip_owner and username == owner:
            continue
        out.append(username)
    return out


def run(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
    if ctx.record is None:
        return Outcome.skipped("the trigger has no record to share")
    group = config["group"]
    record = ctx.services.records.get(ctx.record)
    if record is None:
        return Outcome.skipped(f"{ctx.record} does not exist")
    candidates = members(ctx.services, group, record.owner, config.get("skip_owner", True))
    if not candidates:
        return Outcome.failed(f"sales group {group!r} has no active sales member to take a turn")
    key = f"turn:{group}"
    turn = int(ctx.plugin_state.get(key, 0)) if ctx.plugin_state is not None else 0
    recipient = candidates[turn % len(candidates)]
    duration = config.get("duration", "7d")
    access = config.get("access", "read")
    if ctx.dry_run:
        return Outcome.succeeded(
            f"would share {ctx.record} with {recipient} ({access}, {duration})", recipient=recipient
        )
    result = ctx.services.shares.share(ctx.record, recipient, duration=duration, access=access)
    if not result.ok:
        return Outcome.failed(f"share with {recipient} failed: {result.reason}", request_id=result.request_id)
    if ctx.plugin_state is not None:
        ctx.plugin_state.set(key, turn + 1)
    return Outcome.succeeded(
        f"shared {ctx.record} with {recipient} ({access}, {duration})",
        recipient=recipient,
        request_id=result.request_id,
    )


@hookimpl
def sharetui_register_actions(register) -> None:
    register(
        "share_with_group_rotation",
        "Share the record with the next member of a sales group, in turn",
        run,
        config=CONFIG,
    )

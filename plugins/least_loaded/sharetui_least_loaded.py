"""sharetui plugin: an automation action that shares the record with the member of a
sales group who holds the fewest active shares.

Action ``share_with_least_loaded``; configuration:

- ``group`` (required): the sales group to choose from;
- ``duration`` (default ``7d``) and ``access`` (``read`` or ``edit``, default ``read``);
- ``skip_owner`` (default true): the record's owner is never chosen;
- ``on_behalf_of`` (default ``trigger``): who asks for the share, as for the built-in
  share actions: the person whose change fired the run, or the ``automation``.

The load of a member is the number of records of the same kind (leads or
opportunities) they hold active, unexpired shares on; ties go to the first
username. Members are the group's active ``sales`` users.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharetui import hookimpl
from sharetui.sdk import ActionContext, ConfigField, Outcome, Services, choice, duration, group

PLUGIN_NAME = "least-loaded"
SDK_VERSION = "2"  # the SDK this plugin was written for (`sharetui plugins` shows it)
__version__ = "0.1.0"

CONFIG = {
    "group": ConfigField(group, required=True, help="the sales group to choose from"),
    "duration": ConfigField(duration, default="7d", help="how long the share lasts"),
    "access": ConfigField(choice("read", "edit"), default="read"),
    "skip_owner": ConfigField(bool, default=True, help="the record's owner is never chosen"),
    "on_behalf_of": ConfigField(choice("trigger", "automation"), default="trigger"),
}


def loads(services: Services, members: list[str], entity: Any) -> dict[str, int]:
    """Each member's number of records shared with them now, of ``entity``'s kind."""
    return {name: services.shares.count_active(name, entity) for name in members}


def candidates(services: Services, group_name: str, owner: str | None, skip_owner: bool) -> list[str]:
    out = []
    for name in services.users.members(group_name):  # in username order
        info = services.users.get(name)
        if info is None or not info.active or info.role != "sales" or (skip_owner and name == owner):
            continue
        out.append(name)
    return out


def run(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
    if ctx.record is None:
        return Outcome.skipped("the trigger has no record to share")
    record = ctx.services.records.get(ctx.record)
    if record is None:
        return Outcome.skipped(f"{ctx.record} does not exist")
    members = candidates(ctx.services, config["group"], record.owner, config.get("skip_owner", True))
    if not members:
        return Outcome.failed(f"sales group {config['group']!r} has no active sales member to share with")
    load = loads(ctx.services, members, ctx.record.entity)
    chosen = min(members, key=lambda name: (load[name], name))
    access, lasts = config.get("access", "read"), config.get("duration", "7d")
    if ctx.dry_run:
        return Outcome.succeeded(
            f"would share {ctx.record} with {chosen} ({load[chosen]} shares)", user=chosen
        )
    result = ctx.services.shares.share(
        ctx.record, chosen, access=access, duration=lasts, on_behalf_of=config.get("on_behalf_of", "trigger")
    )
    if not result.ok:
        return Outcome.failed(f"share with {chosen} failed: {result.reason}", request_id=result.request_id)
    return Outcome.succeeded(
        f"shared {ctx.record} with {chosen}, who held {load[chosen]} shares ({access}, {lasts})",
        user=chosen,
        loads=load,
        request_id=result.request_id,
    )


@hookimpl
def sharetui_register_actions(register) -> None:
    register(
        "share_with_least_loaded",
        "Share the record with the member of a sales group who holds the fewest shares",
        run,
        config=CONFIG,
    )

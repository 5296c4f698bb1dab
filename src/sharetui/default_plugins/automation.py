"""Built-in automation triggers and actions (DESIGN .4), registered like any plugin."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access, EntityType
from sharetui.errors import UsageError
from sharetui.sdk.markers import hookimpl
from sharetui.sdk.types import ActionContext, ConfigField, Outcome, duration_problem

PLUGIN_NAME = "builtin-automation"


def _cron_problem(value: str) -> str | None:
    from sharetui.domain.schedules import parse_schedule

    try:
        parse_schedule(value, "UTC")
    except UsageError as exc:
        return exc.message.removeprefix("cron: ")
    return None


def _zone_problem(value: str) -> str | None:
    from sharetui.domain.schedules import parse_schedule

    try:
        parse_schedule("@daily", value)
    except UsageError as exc:
        return exc.message.removeprefix("timezone: ")
    return None


def _where_problem(value: list[Any]) -> str | None:
    from sharetui.core.automations.definitions import FIELD_ROOTS, OPERATORS

    for i, cond in enumerate(value):
        keys = set(cond) if isinstance(cond, dict) else set()
        if not isinstance(cond, dict) or keys - {"field", "op", "value"} or {"field", "value"} - keys:
            return f"entry {i} must be a table with field, op and value"
        field = cond["field"]
        if not isinstance(field, str) or "." not in field or field.split(".", 1)[0] not in FIELD_ROOTS:
            return f"entry {i}: field {field!r}: write e.g. lead.stage (roots: {', '.join(FIELD_ROOTS)})"
        if cond.get("op", "=") not in OPERATORS:
            return f"entry {i}: op {cond.get('op')!r} is not one of {' '.join(OPERATORS)}"
    return None


ACTIVITY_TYPES = ConfigField(list, help="activity type names to react to (default: all)")


def activity_type_matches(config: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """The activity triggers' filter: the event's activity is of one of the configured
    ``activity_types`` (all types when none are named)."""
    types = config.get("activity_types")
    return not types or (event.get("activity") or {}).get("type") in types


def describe_activity_types(config: Mapping[str, Any]) -> str:
    types = config.get("activity_types")
    return f"activity type in {', '.join(map(str, types))}" if types else "any activity type"


# name -> (description, entity, extra config)
TRIGGERS: dict[str, tuple[str, str, dict[str, ConfigField]]] = {
    "new_lead": ("A lead was created", "lead", {}),
    "lead_update": ("A lead's fields changed", "lead", {}),
    "new_activity_on_lead": ("An activity was posted on a lead", "lead", {"activity_types": ACTIVITY_TYPES}),
    "activity_update_on_lead": ("An activity on a lead changed", "lead", {"activity_types": ACTIVITY_TYPES}),
    "new_opportunity": ("An opportunity was created", "opportunity", {}),
    "opportunity_update": ("An opportunity's fields changed", "opportunity", {}),
    "new_activity_on_opportunity": (
        "An activity was posted on an opportunity",
        "opportunity",
        {"activity_types": ACTIVITY_TYPES},
    ),
    "activity_update_on_opportunity": (
        "An activity on an opportunity changed",
        "opportunity",
        {"activity_types": ACTIVITY_TYPES},
    ),
    "task_created_on_opportunity": ("A task was added to an opportunity", "opportunity", {}),
    "task_completed_on_opportunity": ("A task on an opportunity was completed", "opportunity", {}),
    "task_reminder_for_opportunity": ("A task's reminder on an opportunity is due", "opportunity", {}),
    "schedule": (
        "A cron schedule fired; runs once for each record its filter selects",
        "",
        {
            "cron": ConfigField(str, required=True, help="5 fields or @daily-style", check=_cron_problem),
            "timezone": ConfigField(str, default="UTC", check=_zone_problem),
            "entity": ConfigField(str, required=True, choices=("lead", "opportunity")),
            "where": ConfigField(list, default=[], check=_where_problem),
            "misfire": ConfigField(str, default="latest_once", choices=("latest_once", "skip", "all")),
        },
    ),
}


@hookimpl(trylast=True)
def sharetui_register_triggers(register) -> None:
    for name, (description, entity, config) in TRIGGERS.items():
        if "activity_types" in config:
            register(
                name,
                description,
                config=config,
                entity=entity or None,
                matches=activity_type_matches,
                describe=describe_activity_types,
            )
        else:
            register(name, description, config=config, entity=entity or None)


# -- actions ----------------------------------------------------------------------------
# Who makes the request (DESIGN §9): the person whose change fired the run, who must be
# allowed to share the record, or the automation itself (an admin's deliberate choice).
ON_BEHALF_OF = ConfigField(
    str,
    default="trigger",
    choices=("trigger", "automation"),
    help="trigger: the person whose change fired the run must be allowed to share the record; "
    "automation: the automation shares whoever fired it",
)
SHARE_CONFIG = {
    "share_with": ConfigField(
        str, required=True, help="owner_in_trigger, owner_of_created_activity, or a username"
    ),
    "duration": ConfigField(str, default="7d", check=duration_problem),
    "access": ConfigField(str, default="read", choices=("read", "edit")),
    "on_behalf_of": ON_BEHALF_OF,
}


def resolve_user(ctx: ActionContext, who: str) -> tuple[str | None, str | None]:
    """(username, None) or (None, why not) for ``owner_in_trigger``,
    ``owner_of_created_activity`` (an earlier create_activity step's) or a username."""
    if who == "owner_of_created_activity":
        created = ctx.trigger_data.get("created_activity") or {}
        if not created:
            return None, "no earlier create_activity step of this run created an activity"
        return (
            (created.get("owner"), None)
            if created.get("owner")
            else (None, "the created activity has no owner")
        )
    if who != "owner_in_trigger":
        return who, None
    owner = ctx.trigger_data.get("owner_in_trigger")
    if owner:
        return owner, None
    return None, ctx.trigger_data.get("owner_missing_reason") or "the trigger has no owner"


def _requester(ctx: ActionContext, config: Mapping[str, Any]) -> tuple[str, str | None]:
    """(``on_behalf_of``, the username the request is made by or None for the automation)."""
    mode = config.get("on_behalf_of", "trigger")
    return mode, (ctx.acting_for if mode == "trigger" else None)


def _for_whom(requester: str | None) -> str:
    return f" for {requester}" if requester else " as the automation"


def _share(ctx: ActionContext, config: Mapping[str, Any], entity: EntityType) -> Outcome:
    data = ctx.trigger_data
    record_id = (
        (data.get("lead") or {}).get("id")
        if entity is EntityType.LEAD
        else ((data.get("opportunity") or {}).get("id"))
    )
    if not record_id:
        return Outcome.skipped(f"the trigger has no {entity.value} to share")
    user, why = resolve_user(ctx, config["share_with"])
    if user is None:
        return Outcome.skipped(f"nobody to share with: {why}")
    context = None
    until_completed = bool(config.get("until_completed", False))
    in_context = config.get("context", "trigger")
    activity = (
        data.get("created_activity") if in_context == "created_activity" else data.get("activity")
    ) or {}
    # The share is made in the activity's context when it goes to that activity's
    # owner (LeadSquared's "owner in trigger"); a named other user gets a plain share.
    if (
        entity is EntityType.LEAD
        and in_context != "none"
        and activity.get("id")
        and activity.get("lead_id") == record_id
        and activity.get("owner") == user
    ):
        context = activity["id"]
    if in_context == "created_activity" and context is None:
        return Outcome.skipped(
            "context = created_activity needs an earlier create_activity step on this lead, "
            "owned by the user shared with"
        )
    if until_completed and context is None:
        return Outcome.skipped(
            "until_completed needs an activity trigger on the lead, shared with that activity's owner"
        )
    mode, requester = _requester(ctx, config)
    ref = RecordRef(entity, record_id)
    result = ctx.services.shares.share(
        ref,
        user,
        duration=config.get("duration", "7d"),
        access=config.get("access", "read"),
        context=context,
        until_completed=until_completed,
        on_behalf_of=mode,  # type: ignore[arg-type]
    )
    # A dry run shares too (and rolls back), so it knows whether it would renew.
    renewed = result.outcome == "renewed"
    verb = ("renew" if renewed else "share") if ctx.dry_run else ("renewed" if renewed else "shared")
    verb = f"would {verb}" if ctx.dry_run else verb
    # A renewal that lowers the access says so (a toast reading "shared … read" hid that
    # an edit share had just become read-only).
    before = result.previous_access
    lowered = before is not None and before > Access.parse(config.get("access", "read"))
    summary = (
        f"{verb} {entity.short} {record_id} with {user} "
        f"({config.get('access', 'read')}, {config.get('duration', '7d')}"
        + (f", context activity {context}" if context else "")
        + (", until completed" if until_completed else "")
        + ")"
        + (f" with less access: {before.label} → read" if lowered and before is not None else "")
        + _for_whom(requester)
    )
    if not result.ok:
        return Outcome.failed(
            f"share of {entity.short} {record_id} with {user} failed: {result.reason}",
            request_id=result.request_id,
            requester=requester,
        )
    return Outcome.succeeded(
        summary,
        request_id=result.request_id,
        outcome=result.outcome,
        user=user,
        entity=entity.value,
        entity_id=record_id,
        requester=requester,
    )


def share_lead(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
    return _share(ctx, config, EntityType.LEAD)


def share_opportunity(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
    return _share(ctx, config, EntityType.OPPORTUNITY)


def revoke_share(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
    entity = EntityType.parse(config.get("entity") or (ctx.record.entity.value if ctx.record else "lead"))
    record_id = (ctx.trigger_data.get(entity.value) or {}).get("id")
    if not record_id:
        return Outcome.skipped(f"the trigger has no {entity.value}")
    user, why = resolve_user(ctx, config["user"])
    if user is None:
        return Outcome.skipped(f"nobody to revoke: {why}")
    context = None
    if config.get("context", "all") == "trigger":
        context = (ctx.trigger_data.get("activity") or {}).get("id")
    mode, requester = _requester(ctx, config)
    result = ctx.services.shares.revoke(
        RecordRef(entity, record_id),
        user,
        context=context,
        all_contexts=config.get("context", "all") == "all",
        on_behalf_of=mode,  # type: ignore[arg-type]
    )
    if not result.ok:
        return Outcome.failed(
            f"revoke on {entity.short} {record_id} for {user} failed: {result.reason}",
            request_id=result.request_id,
            requester=requester,
        )
    return Outcome.succeeded(
        f"{'would revoke' if ctx.dry_run else 'revoked'} {user}'s share of {entity.short} {record_id}"
        + _for_whom(requester),
        request_id=result.request_id,
        requester=requester,
    )


def _round_robin(ctx: ActionContext, group: str) -> tuple[str | None, str | None]:
    """The next active sales member of ``group`` after the one picked last time, in
    username order (the pointer is kept per group, in the run's transaction)."""
    members = sorted(
        name
        for name in ctx.services.users.members(group)
        if (user := ctx.services.users.get(name)) is not None and user.active and user.role == "sales"
    )
    if not members:
        return None, f"sales group {group!r} has no active sales members"
    key = f"round_robin:{group}"
    last = ctx.plugin_state.get(key) if ctx.plugin_state is not None else None
    following = [m for m in members if last is None or m > last]
    chosen = following[0] if following else members[0]
    if ctx.plugin_state is not None:
        ctx.plugin_state.set(key, chosen)
    return chosen, None


def create_activity(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
    """Post an activity on the trigger's record (or its lead), owned by the trigger's
    owner, a named user or the next member of a sales group; later steps of the run can
    share with its owner in its context (``owner_of_created_activity``,
    ``context = "created_activity"``)."""
    data = ctx.trigger_data
    on = config.get("on", "record")
    if on == "lead":
        lead_id = (data.get("lead") or {}).get("id")
        target = RecordRef(EntityType.LEAD, lead_id) if lead_id else None
    else:
        target = ctx.record
    if target is None:
        return Outcome.skipped(
            f"the trigger has no {'lead' if on == 'lead' else 'record'} to add an activity to"
        )
    who = config["owner"]
    if who == "round_robin":
        if not config.get("group"):
            return Outcome.failed("owner = round_robin needs group = the sales group to take turns in")
        owner, why = _round_robin(ctx, config["group"])
    else:
        owner, why = resolve_user(ctx, who)
    if owner is None:
        return Outcome.skipped(f"no owner for the activity: {why}")
    note = _render(config.get("note", ""), data)
    fields = {
        key: _render(value, data) if isinstance(value, str) else value
        for key, value in (config.get("fields") or {}).items()
    }
    mode, requester = _requester(ctx, config)
    act = ctx.services.records.post_activity(
        target,
        type=config["activity_type"],
        owner=owner,
        note=note,
        fields=fields,
        status=config.get("status", "open"),
        on_behalf_of=mode,  # type: ignore[arg-type]
    )
    created = {
        "id": act.id,
        "type": act.type,
        "owner": act.owner,
        "status": act.status,
        "note": act.note,
        "lead_id": target.id if target.entity is EntityType.LEAD else None,
        "opportunity_id": target.id if target.entity is EntityType.OPPORTUNITY else None,
    }
    verb = "would create" if ctx.dry_run else "created"
    return Outcome.succeeded(
        f"{verb} {act.type!r} activity{'' if ctx.dry_run else f' {act.id}'} on {target.entity.short} "
        f"{target.id} owned by {act.owner}" + _for_whom(requester),
        activity_id=act.id,
        owner=act.owner,
        requester=requester,
        provides={"created_activity": created},
    )


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_NOT_YOURS = "(not yours to read)"


def _render(template: str, data: Mapping[str, Any], hidden: frozenset[str] = frozenset()) -> str:
    """``template`` with ``{root.key}`` filled from the trigger's data; the roots in
    ``hidden`` (records the reader may not read) are never filled in."""
    flat = _Fields()
    for root, value in data.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                if not isinstance(inner, dict):
                    flat[f"{root}.{key}"] = _NOT_YOURS if root in hidden else inner
    return re.sub(r"\{([a-z_]+\.[a-z_]+)\}", lambda m: _text(flat[m.group(1)]), template)


def _text(value: Any) -> str:
    """A filled-in value as people write it: an amount of 380000.0 reads 380000."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _record_roots(data: Mapping[str, Any]) -> dict[str, RecordRef]:
    """The trigger data's roots that are (or belong to) a record, with that record."""
    roots: dict[str, RecordRef] = {}
    for root in ("lead", "opportunity"):
        ident = (data.get(root) or {}).get("id") if isinstance(data.get(root), dict) else None
        if ident:
            roots[root] = RecordRef(EntityType.parse(root), ident)
    for root in ("activity", "task"):
        item = data.get(root) if isinstance(data.get(root), dict) else None
        if item and item.get("opportunity_id"):
            roots[root] = RecordRef(EntityType.OPPORTUNITY, item["opportunity_id"])
        elif item and item.get("lead_id"):
            roots[root] = RecordRef(EntityType.LEAD, item["lead_id"])
    return roots


def _hidden_from(ctx: ActionContext, username: str, roots: Mapping[str, RecordRef]) -> frozenset[str]:
    return frozenset(root for root, ref in roots.items() if not ctx.services.records.can(username, ref))


def notify(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
    targets = config["to"] if isinstance(config["to"], list) else [config["to"]]
    names: list[str] = []
    for target in targets:
        if target == "record_owner":
            record = ctx.services.records.get(ctx.record) if ctx.record else None
            if record is not None and record.owner:
                names.append(record.owner)
            continue
        name, _ = resolve_user(ctx, target)
        if name:
            names.append(name)
    found = (ctx.services.users.get(name) for name in dict.fromkeys(names))
    users = [u.username for u in found if u is not None and u.active]
    if not users:
        return Outcome.skipped(f"nobody to notify among {', '.join(map(str, targets))}")
    message = _render(config["message"], ctx.trigger_data)
    if not ctx.dry_run:
        # Each reader gets the message filled in with what they may read (DESIGN §9):
        # a lead's name never reaches someone who may read only its opportunity.
        roots = _record_roots(ctx.trigger_data)
        for user in users:
            hidden = _hidden_from(ctx, user, roots)
            ctx.services.notifications.send(
                [user], _render(config["message"], ctx.trigger_data, hidden), ctx.record
            )
    verb = "would notify" if ctx.dry_run else "notified"
    return Outcome.succeeded(f"{verb} {', '.join(users)}: {message}")


@hookimpl(trylast=True)
def sharetui_register_actions(register) -> None:
    register(
        "share_lead",
        "Share the trigger's lead with a user for a time",
        share_lead,
        config={
            **SHARE_CONFIG,
            "until_completed": ConfigField(bool, default=False),
            "context": ConfigField(
                str,
                default="trigger",
                choices=("trigger", "created_activity", "none"),
                help="the activity the share is made in: the trigger's, the one an earlier "
                "create_activity step made, or none",
            ),
        },
    )
    register(
        "share_opportunity",
        "Share the trigger's opportunity with a user for a time",
        share_opportunity,
        config=SHARE_CONFIG,
    )
    register(
        "revoke_share",
        "Revoke a user's share of the trigger's record",
        revoke_share,
        config={
            "user": ConfigField(str, required=True, help="owner_in_trigger, or a username"),
            "entity": ConfigField(str, choices=("lead", "opportunity")),
            "context": ConfigField(str, default="all", choices=("all", "trigger", "none")),
            "on_behalf_of": ON_BEHALF_OF,
        },
    )
    register(
        "create_activity",
        "Post an activity on the trigger's record (or its lead) for an owner",
        create_activity,
        config={
            "activity_type": ConfigField(str, required=True, help="an activity type of the record"),
            "owner": ConfigField(
                str, required=True, help="owner_in_trigger, a username, or round_robin (with group)"
            ),
            "group": ConfigField(str, help="the sales group round_robin takes turns in"),
            "on": ConfigField(
                str, default="record", choices=("record", "lead"), help="the trigger's record, or its lead"
            ),
            "note": ConfigField(str, default="", help="text; {lead.name}-style fields are filled in"),
            "fields": ConfigField(dict, default={}, help="custom fields; text values are templates"),
            "status": ConfigField(str, default="open", choices=("open", "completed")),
            "on_behalf_of": ON_BEHALF_OF,
        },
    )
    register(
        "notify",
        "Send a notification to users",
        notify,
        config={
            "to": ConfigField((str, list), required=True, help="usernames, owner_in_trigger or record_owner"),
            "message": ConfigField(str, required=True, help="text; {lead.name}-style fields are filled in"),
        },
    )


__all__ = ["RecordRef"]

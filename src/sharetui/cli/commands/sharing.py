"""``share``, ``revoke``, ``status``, ``shares``, ``history``, ``check``,
``explain``, ``sweep``, ``api`` and ``settings`` commands."""

from __future__ import annotations

import sys
from typing import Any

import click

from sharetui.cli.context import ENTITY, ID, AppContext, json_option, out, pass_app
from sharetui.errors import UsageError


def _print_result(result, as_json: bool) -> None:
    from sharetui.cli.output import say
    from sharetui.domain.time import local_text

    def human() -> None:
        if result.status == "failed":
            say(f"request {result.request_id} failed: {result.reason}", "red")
            return
        grants = [result.grant] if result.grant else result.grants
        for g in grants:
            ctx = f" in context of activity {g['context']}" if g["context"] else ""
            if result.outcome == "revoked":
                say(
                    f"request {result.request_id} completed: revoked {g['user']}'s {g['access']} share "
                    f"of {g['entity']} {g['entity_id']}{ctx}"
                )
            else:
                say(
                    f"request {result.request_id} completed: {result.outcome} {g['access']} access to "
                    f"{g['entity']} {g['entity_id']} for {g['user']}{ctx} until {local_text(g['expires_at'])}"
                )
        if not grants:
            say(f"request {result.request_id}: {result.status}")

    out(as_json, result.as_dict(), human)
    if result.status == "failed":
        sys.exit(1)


@click.command()
@click.argument("entity", type=ENTITY)
@click.argument("ident", metavar="ID")
@click.option("--with", "recipient", required=True, metavar="USER", help="The sales user to share with.")
@click.option("--for", "duration", metavar="DUR", help="30m, 2h, 3d, 2w, 6mo, 1y, 1d12h … (default 90d).")
@click.option("--access", default="read", show_default=True, type=click.Choice(["read", "edit"]))
@click.option("--context", metavar="ACT", help="The activity this lead share is made in.")
@click.option("--until-completed", is_flag=True, help="End the share when the context activity is completed.")
@json_option
@pass_app
def share(
    app: AppContext,
    entity: str,
    ident: str,
    recipient: str,
    duration: str | None,
    access: str,
    context: str | None,
    until_completed: bool,
    as_json: bool,
) -> None:
    """Share a lead or an opportunity with a sales user for a time (re-sharing renews)."""
    result = app.core.sharing.share(
        entity,
        ident,
        recipient,
        requester=app.actor,
        duration=duration,
        access=access,
        context=context,
        until_completed=until_completed,
    )
    _print_result(result, as_json)


@click.command()
@click.argument("entity", type=ENTITY)
@click.argument("ident", metavar="ID")
@click.option("--user", "user", required=True, metavar="USER")
@click.option("--context", metavar="ACT", help="Revoke the share made in this activity's context.")
@click.option("--all-contexts", is_flag=True, help="Revoke every share of this user on the record.")
@json_option
@pass_app
def revoke(
    app: AppContext,
    entity: str,
    ident: str,
    user: str,
    context: str | None,
    all_contexts: bool,
    as_json: bool,
) -> None:
    """End a share early (one context, or all of them)."""
    result = app.core.sharing.revoke(
        entity, ident, user, requester=app.actor, context=context, all_contexts=all_contexts
    )
    _print_result(result, as_json)


@click.command()
@click.argument("request_id")
@json_option
@pass_app
def status(app: AppContext, request_id: str, as_json: bool) -> None:
    """The status of a share or revoke request."""
    from sharetui.cli.output import say

    result = app.core.sharing.status(request_id, actor=app.actor)
    out(
        as_json,
        result.as_dict(),
        lambda: say(
            f"request {result.request_id} ({result.action}): {result.status}"
            + (f" — {result.reason}" if result.reason else "")
            + (f" — {result.outcome}" if result.outcome else "")
        ),
    )


@click.command()
@click.option("--user", metavar="USER")
@click.option("--entity", type=ENTITY)
@click.option("--all", "include_all", is_flag=True, help="Include expired and revoked shares.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10000))
@json_option
@pass_app
def shares(
    app: AppContext, user: str | None, entity: str | None, include_all: bool, limit: int, as_json: bool
) -> None:
    """Shares that give access now (or all of them with --all)."""
    from sharetui.cli.output import table
    from sharetui.domain.roles import EntityType
    from sharetui.domain.time import local_text

    core = app.core
    rows = core.sharing.grants(
        actor=app.actor,
        user=core.users.get(user) if user else None,
        entity=EntityType.parse(entity) if entity else None,
        include_ended=include_all,
        limit=limit,
    )
    out(
        as_json,
        {"items": rows},
        lambda: table(
            "shares" if include_all else "active shares",
            ["grant", "record", "user", "access", "context", "starts", "expires", "state", "source"],
            [
                (
                    g["id"],
                    f"{g['entity']} {g['entity_id']}",
                    g["user"],
                    g["access"],
                    g["context"] or "-",
                    local_text(g["starts_at"]),
                    local_text(g["expires_at"]),
                    g["state"],
                    g["source"],
                )
                for g in rows
            ],
        ),
    )


@click.command()
@click.argument("entity", type=ENTITY, required=False)
@click.argument("ident", metavar="ID", required=False, type=ID)
@click.option("--all", "everything", is_flag=True, help="History across all records.")
@click.option("--user", metavar="USER")
@click.option("--status", type=click.Choice(["processing", "completed", "failed"]))
@click.option("--source", type=click.Choice(["api", "automation", "manual", "plugin"]))
@click.option(
    "--event",
    type=click.Choice(
        ["share", "renew", "revoke", "granted", "renewed", "revoked", "expired", "expiring_soon"]
    ),
)
@click.option("--type", "entity_filter", type=ENTITY, help="With --all: only leads or opportunities.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100000))
@click.option("--csv", "as_csv", is_flag=True, help="Export every matching row as CSV.")
@json_option
@pass_app
def history(
    app: AppContext,
    entity: str | None,
    ident: int | None,
    everything: bool,
    user: str | None,
    status: str | None,
    source: str | None,
    event: str | None,
    entity_filter: str | None,
    limit: int,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Share history of a record, or of everything with --all."""
    from sharetui.cli.output import table
    from sharetui.core.history import HistoryFilter, requested_by
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType
    from sharetui.domain.time import local_text

    core = app.core
    if everything == (entity is not None):
        raise UsageError("give a record (history lead 5) or --all")
    if entity is not None and ident is None:
        raise UsageError("give the record's id: history lead ID")
    record = None
    if entity is not None:
        record = RecordRef(EntityType.parse(entity), ident)  # type: ignore[arg-type]
    flt = HistoryFilter(
        record=record,
        entity=EntityType.parse(entity_filter).value if entity_filter else None,
        user=user,
        status=status,
        source=source,
        event=event,
    )
    if as_csv:
        from sharetui.cli.output import data_stream

        core.history.write_csv(app.actor, flt, data_stream())  # type: ignore[arg-type]
        return
    rows = core.history.query(app.actor, flt, limit=limit)
    out(
        as_json,
        {"items": rows},
        lambda: table(
            f"history of {record}" if record else "history",
            ["at", "event", "status", "record", "user", "access", "ctx", "expires", "source", "by", "reason"],
            [
                (
                    local_text(r["at"]),
                    r["event"],
                    r["status"],
                    f"{r['entity']} {r['entity_id']}",
                    r["user"] or "-",
                    r["access"] or "-",
                    r["context"] or "-",
                    local_text(r["expires_at"]),
                    r["source"],
                    requested_by(r) or "-",
                    r["reason"] or "",
                )
                for r in rows
            ],
        ),
    )


@click.command()
@click.argument("user")
@click.argument("entity", type=ENTITY)
@click.argument("ident", metavar="ID", type=ID)
@click.option("--action", default="read", show_default=True, type=click.Choice(["read", "edit"]))
@json_option
@pass_app
def check(app: AppContext, user: str, entity: str, ident: int, action: str, as_json: bool) -> None:
    """May USER read (or edit) the record? Exit 0 if allowed, 1 if denied."""
    from sharetui.cli.output import say
    from sharetui.domain.roles import Access

    decision = app.core.access.explain(user, (entity, ident), actor=app.actor)
    need = Access.parse(action)
    allowed = decision.allows(need)
    reasons = decision.reasons + [f"denied: {d}" for d in decision.denials]
    data = {
        "allowed": allowed,
        "level": decision.level.label,
        "reasons": reasons,
        "action": action,
        "user": decision.user,
        "entity": decision.record.entity.value,
        "entity_id": ident,
    }

    def human() -> None:
        verdict = "allowed" if allowed else "denied"
        say(
            f"{verdict}: {decision.user} {action} {decision.record} (level {decision.level.label})",
            "green" if allowed else "red",
        )
        for r in reasons:
            say(f"  - {r}")

    out(as_json, data, human)
    if not allowed:
        sys.exit(1)


@click.command()
@click.argument("user")
@click.argument("entity", type=ENTITY)
@click.argument("ident", metavar="ID", type=ID)
@json_option
@pass_app
def explain(app: AppContext, user: str, entity: str, ident: int, as_json: bool) -> None:
    """Every source of USER's access to the record."""
    from sharetui.cli.output import say

    decision = app.core.access.explain(user, (entity, ident), actor=app.actor)

    def human() -> None:
        say(f"{decision.user} has {decision.level.label} access to {decision.record}", "bold")
        for r in decision.reasons:
            say(f"  + {r}")
        for d in decision.denials:
            say(f"  - denied: {d}", "red")

    out(as_json, decision.as_dict(), human)


@click.command()
@json_option
@pass_app
def sweep(app: AppContext, as_json: bool) -> None:
    """Expire due shares now and send due 'expiring soon' notices."""
    from sharetui.cli.output import say

    if app.core.team.routed:  # team mode: a person's login writes no history in bulk
        raise UsageError(
            f"in team mode sharetui sweep runs as a worker login (or the setup role), not as "
            f"{app.core.team.login()}: shares end by the server's clock whether or not it runs"
        )
    result = app.core.expiry.sweep()
    out(
        as_json,
        result.as_dict(),
        lambda: say(f"expired {result.expired} share(s); {result.warned} 'expiring soon' notice(s)"),
    )


@click.command()
@click.argument("verb", type=click.Choice(["share", "revoke", "status"]))
@click.argument("file", required=False, default="-")
@json_option
@pass_app
def api(app: AppContext, verb: str, file: str, as_json: bool) -> None:
    """Batch JSON API (LeadSquared-shaped). Reads FILE, or stdin for '-' or none.

    Prints one JSON array with a result per item (always JSON; --json is
    accepted for symmetry); exit 1 if any item failed.
    """
    from sharetui.cli.output import print_json
    from sharetui.core.sharing.batch import BatchAPI, load_items
    from sharetui.ops.input_files import limit_of, read_input

    items = load_items(read_input(file, limit_of(app.core)))  # bounded: never /dev/zero whole
    batch = BatchAPI(app.core)
    if verb == "share":
        results = batch.share(items, requester=app.actor)
    elif verb == "revoke":
        results = batch.revoke(items, requester=app.actor)
    else:
        results = batch.status(items, actor=app.actor)
    print_json(results)
    if any(r.get("status") not in ("completed", "processing") for r in results):
        sys.exit(1)


@click.command()
@click.argument("key", required=False)
@click.argument("value", required=False)
@json_option
@pass_app
def settings(app: AppContext, key: str | None, value: str | None, as_json: bool) -> None:
    """Show settings, or set KEY to VALUE (admins)."""
    from sharetui.cli.output import say, table
    from sharetui.core.records.settings import DESCRIPTIONS

    core = app.core
    if value is not None:
        stored = core.settings.set(key, value, actor=app.actor)  # type: ignore[arg-type]
        out(as_json, {key: stored}, lambda: say(f"{key} = {stored}"))
        return
    values: dict[str, Any] = core.settings.visible(app.actor, key)
    out(
        as_json,
        values,
        lambda: table(
            "settings",
            ["key", "value", "meaning"],
            [(k, v, DESCRIPTIONS.get(k, "")) for k, v in values.items()],
        ),
    )

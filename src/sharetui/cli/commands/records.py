"""``leads``, ``opps``, ``activity`` and ``task`` commands."""

from __future__ import annotations

from typing import Any

import click

from sharetui.cli.commands.imports import leads_import
from sharetui.cli.context import (
    ID,
    AppContext,
    json_option,
    out,
    out_with_runs,
    parse_fields,
    parse_when,
    pass_app,
)
from sharetui.domain.roles import EntityType
from sharetui.domain.sorts import sort_orders
from sharetui.errors import UsageError


def _list_records(
    app: AppContext,
    entity: str,
    limit: int,
    after: str | None,
    search: str | None,
    sort: str | None,
    as_json: bool,
    view_name: str | None = None,
) -> None:
    from sharetui.cli.output import table
    from sharetui.core.records.saved_views import DEFAULT_COLUMNS
    from sharetui.domain.time import iso, local_text

    core = app.core
    actor = app.actor
    if actor is None:
        raise UsageError("no users yet: add the first admin with `sharetui users add NAME --role admin`")
    kind = EntityType.parse(entity)
    cols = list(DEFAULT_COLUMNS[kind])
    if view_name is not None:
        if search is not None:
            raise UsageError("--view has its own search: leave out --search (or save another view)")
        view = core.saved_views.get(view_name, kind, actor=actor)
        page = core.saved_views.page(view, actor=actor, after=after, limit=limit, sort=sort)
        cols = list(view.columns)
    else:
        page = core.access.visible(actor, kind, after=after, limit=limit, search=search, sort=sort or "id")
    owners = core.users.usernames([r.values["owner_id"] for r in page.rows])
    items = []
    for row in page.rows:
        item = {k: v for k, v in row.values.items() if k not in ("owner_id", "updated_at")}
        if "updated_at" in cols:
            item["updated_at"] = iso(row.values["updated_at"])
        item["owner"] = owners.get(row.values["owner_id"])
        item["access"] = row.level.label
        item["reach"] = row.reach
        items.append(item)
    data: dict[str, Any] = {"items": items, "next_cursor": page.next_cursor, "user": actor.username}
    if view_name is not None:
        data["view"] = view.as_dict()

    def human() -> None:
        caption = f"as {actor.username}" + (f" · view {view.name}" if view_name is not None else "")
        if page.next_cursor:
            caption += f" · more: --after {page.next_cursor}"
        table(
            "leads" if kind is EntityType.LEAD else "opportunities",
            cols,
            [[_cell(i, c) for c in cols] for i in items],
            caption=caption,
        )

    def _cell(item: dict[str, Any], column: str) -> Any:
        if column == "access":
            return item["reach"]
        if column == "updated_at":
            return local_text(item["updated_at"])
        return item.get(column, "")

    out(as_json, data, human)


def _show_record(app: AppContext, entity: str, ident: int, as_json: bool) -> None:
    from sharetui.cli.output import kv, table
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType
    from sharetui.domain.time import local_text

    core = app.core
    kind = EntityType.parse(entity)
    ref = RecordRef(kind, ident)
    data = core.records.detail(ref, actor=app.actor)

    def human() -> None:
        pairs = [(k, v) for k, v in data.items() if k not in ("activities", "tasks", "shares", "fields")]
        pairs += [(f"fields.{k}", v) for k, v in (data["fields"] or {}).items()]
        kv(f"{kind.value} {ident}: {data['name']}", pairs)
        if data["activities"]:
            table(
                "activities",
                ["id", "type", "owner", "status", "occurred"],
                [
                    (a["id"], a["type"], a["owner"] or "-", a["status"], local_text(a["occurred_at"]))
                    for a in data["activities"]
                ],
            )
        if data["tasks"]:
            table(
                "tasks",
                ["id", "subject", "owner", "due", "done"],
                [
                    (
                        t["id"],
                        t["subject"],
                        t["owner"],
                        local_text(t["due_at"]),
                        local_text(t["completed_at"]),
                    )
                    for t in data["tasks"]
                ],
            )
        table(
            "active shares",
            ["grant", "user", "access", "context", "expires", "source"],
            [
                (
                    g["id"],
                    g["user"],
                    g["access"],
                    g["context"] or "-",
                    local_text(g["expires_at"]),
                    g["source"],
                )
                for g in data["shares"]
            ],
        )

    out(as_json, data, human)


def _list_options(entity: EntityType):
    def decorate(fn):
        fn = click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))(fn)
        fn = click.option("--after", metavar="CURSOR", help="The next_cursor of the previous page.")(fn)
        fn = click.option("--search", metavar="TEXT", help="Filter by name (and company/email or type).")(fn)
        fn = click.option(
            "--sort",
            type=click.Choice(sort_orders(entity)),
            help="Sort by a column, -COLUMN descending; text ignores case, ties go by id (default: id).",
        )(fn)
        fn = click.option(
            "--view",
            "view_name",
            metavar="NAME",
            help="A saved view (`sharetui views list`): its filter and columns.",
        )(fn)
        return json_option(fn)

    return decorate


# -- leads -------------------------------------------------------------------------
@click.group()
def leads() -> None:
    """Leads."""


leads.add_command(leads_import)


@leads.command("add")
@click.option("--name", required=True)
@click.option("--owner", required=True, metavar="USER")
@click.option("--email", default="")
@click.option("--phone", default="")
@click.option("--company", default="")
@click.option("--stage", default="new", show_default=True)
@click.option("--source", default="")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A custom field.")
@json_option
@pass_app
def leads_add(
    app: AppContext, name: str, owner: str, fields: tuple[str, ...], as_json: bool, **values: Any
) -> None:
    """Add a lead."""
    from sharetui.cli.output import say
    from sharetui.core.records import record_dict

    lead = app.core.records.add_lead(
        name=name, owner=owner, actor=app.actor, fields=parse_fields(fields), **values
    )
    out_with_runs(app, as_json, record_dict(lead), lambda: say(f"added lead {lead.id}: {lead.name}"))


@leads.command("list")
@_list_options(EntityType.LEAD)
@pass_app
def leads_list(
    app: AppContext,
    limit: int,
    after: str | None,
    search: str | None,
    sort: str | None,
    view_name: str | None,
    as_json: bool,
) -> None:
    """Leads the acting user can see, a page at a time."""
    _list_records(app, "lead", limit, after, search, sort, as_json, view_name)


@leads.command("show")
@click.argument("ident", metavar="ID", type=ID)
@json_option
@pass_app
def leads_show(app: AppContext, ident: int, as_json: bool) -> None:
    """A lead with its activities, tasks and active shares."""
    _show_record(app, "lead", ident, as_json)


def _update(
    app: AppContext,
    entity: str,
    ident: int,
    values: dict[str, Any],
    fields: tuple[str, ...],
    owner: str | None,
    as_json: bool,
) -> None:
    from sharetui.cli.output import say
    from sharetui.core.records import record_dict

    clean = {k: v for k, v in values.items() if v is not None}
    row = app.core.records.update_record(
        (entity, ident), actor=app.actor, values=clean, fields=parse_fields(fields), owner=owner
    )
    out_with_runs(app, as_json, record_dict(row), lambda: say(f"updated {entity} {ident}"))


@leads.command("update")
@click.argument("ident", metavar="ID", type=ID)
@click.option("--name")
@click.option("--email")
@click.option("--phone")
@click.option("--company")
@click.option("--stage")
@click.option("--source")
@click.option("--owner", metavar="USER")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE")
@json_option
@pass_app
def leads_update(
    app: AppContext, ident: int, owner: str | None, fields: tuple[str, ...], as_json: bool, **values: Any
) -> None:
    """Change a lead's fields (needs edit access; a read share is not enough)."""
    _update(app, "lead", ident, values, fields, owner, as_json)


# -- opportunities ---------------------------------------------------------------------
@click.group()
def opps() -> None:
    """Opportunities."""


@opps.command("add")
@click.option("--lead", "lead_id", required=True, type=ID)
@click.option("--name", required=True)
@click.option("--type", "opp_type", required=True)
@click.option("--owner", required=True, metavar="USER")
@click.option("--stage", default="prospecting", show_default=True)
@click.option("--amount", default="0")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE")
@json_option
@pass_app
def opps_add(
    app: AppContext,
    lead_id: int,
    name: str,
    opp_type: str,
    owner: str,
    stage: str,
    amount: str,
    fields: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add an opportunity on a lead."""
    from sharetui.cli.output import say
    from sharetui.core.records import record_dict

    opp = app.core.records.add_opportunity(
        lead=lead_id,
        name=name,
        type=opp_type,
        owner=owner,
        actor=app.actor,
        stage=stage,
        amount=amount,
        fields=parse_fields(fields),
    )
    out_with_runs(app, as_json, record_dict(opp), lambda: say(f"added opportunity {opp.id}: {opp.name}"))


@opps.command("list")
@_list_options(EntityType.OPPORTUNITY)
@pass_app
def opps_list(
    app: AppContext,
    limit: int,
    after: str | None,
    search: str | None,
    sort: str | None,
    view_name: str | None,
    as_json: bool,
) -> None:
    """Opportunities the acting user can see, a page at a time."""
    _list_records(app, "opportunity", limit, after, search, sort, as_json, view_name)


@opps.command("show")
@click.argument("ident", metavar="ID", type=ID)
@json_option
@pass_app
def opps_show(app: AppContext, ident: int, as_json: bool) -> None:
    """An opportunity with its activities, tasks and active shares."""
    _show_record(app, "opportunity", ident, as_json)


@opps.command("update")
@click.argument("ident", metavar="ID", type=ID)
@click.option("--name")
@click.option("--type", "type")
@click.option("--stage")
@click.option("--amount")
@click.option("--owner", metavar="USER")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE")
@json_option
@pass_app
def opps_update(
    app: AppContext, ident: int, owner: str | None, fields: tuple[str, ...], as_json: bool, **values: Any
) -> None:
    """Change an opportunity's fields (needs edit access)."""
    _update(app, "opportunity", ident, values, fields, owner, as_json)


# -- activities ------------------------------------------------------------------------
@click.group()
def activity() -> None:
    """Activities and activity types."""


@activity.group("types")
def activity_types() -> None:
    """Activity types."""


@activity_types.command("add")
@click.argument("name")
@click.option("--opp", is_flag=True, help="The type applies to opportunities (default: leads).")
@click.option("--no-owner", is_flag=True, help="Its form does not capture an activity owner.")
@json_option
@pass_app
def activity_types_add(app: AppContext, name: str, opp: bool, no_owner: bool, as_json: bool) -> None:
    """Add an activity type (admins)."""
    from sharetui.cli.output import say

    row = app.core.records.add_activity_type(
        name, entity="opportunity" if opp else "lead", captures_owner=not no_owner, actor=app.actor
    )
    data = {"id": row.id, "name": row.name, "entity": row.entity, "captures_owner": bool(row.captures_owner)}
    out(as_json, data, lambda: say(f"added activity type {row.name!r} on {row.entity}s"))


@activity_types.command("list")
@json_option
@pass_app
def activity_types_list(app: AppContext, as_json: bool) -> None:
    """List activity types."""
    from sharetui.cli.output import table

    rows = [
        {"id": t.id, "name": t.name, "entity": t.entity, "captures_owner": bool(t.captures_owner)}
        for t in app.core.records.activity_types()
    ]
    out(
        as_json,
        {"items": rows},
        lambda: table(
            "activity types",
            ["id", "name", "on", "captures owner"],
            [(r["id"], r["name"], r["entity"], "yes" if r["captures_owner"] else "no") for r in rows],
        ),
    )


def _target(lead: int | None, opp: int | None) -> tuple[str, int]:
    if (lead is None) == (opp is None):
        raise UsageError("give exactly one of --lead ID or --opp ID")
    return ("lead", lead) if lead is not None else ("opportunity", opp)  # type: ignore[return-value]


@activity.command("post")
@click.option("--lead", type=ID)
@click.option("--opp", type=ID)
@click.option("--type", "type_name", required=True)
@click.option("--owner", metavar="USER", help="The activity owner (types that capture one).")
@click.option("--note", default="")
@click.option("--status", type=click.Choice(["open", "completed"]), default="open", show_default=True)
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE")
@json_option
@pass_app
def activity_post(
    app: AppContext,
    lead: int | None,
    opp: int | None,
    type_name: str,
    owner: str | None,
    note: str,
    status: str,
    fields: tuple[str, ...],
    as_json: bool,
) -> None:
    """Post an activity on a lead or an opportunity."""
    from sharetui.cli.output import say
    from sharetui.core.records import activity_dict

    act = app.core.records.post_activity(
        _target(lead, opp),
        type=type_name,
        actor=app.actor,
        owner=owner,
        note=note,
        status=status,
        fields=parse_fields(fields),
    )
    out_with_runs(app, as_json, activity_dict(act), lambda: say(f"posted activity {act.id} ({type_name})"))


@activity.command("update")
@click.argument("ident", metavar="ID", type=ID)
@click.option("--status", type=click.Choice(["open", "completed"]))
@click.option("--note")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE")
@json_option
@pass_app
def activity_update(
    app: AppContext, ident: int, status: str | None, note: str | None, fields: tuple[str, ...], as_json: bool
) -> None:
    """Change an activity; completing it ends its until-completed shares."""
    from sharetui.cli.output import say
    from sharetui.core.records import activity_dict

    act = app.core.records.update_activity(
        ident, actor=app.actor, status=status, note=note, fields=parse_fields(fields)
    )
    out_with_runs(app, as_json, activity_dict(act), lambda: say(f"updated activity {act.id} ({act.status})"))


@activity.command("delete")
@click.argument("ident", metavar="ID", type=ID)
@json_option
@pass_app
def activity_delete(app: AppContext, ident: int, as_json: bool) -> None:
    """Delete an activity; shares made in its context end."""
    from sharetui.cli.output import say

    ended = app.core.records.delete_activity(ident, actor=app.actor)
    out(
        as_json,
        {"id": ident, "deleted": True, "shares_ended": ended},
        lambda: say(f"deleted activity {ident}; {ended} share(s) ended"),
    )


# -- tasks -----------------------------------------------------------------------------
@click.group()
def task() -> None:
    """Tasks."""


@task.command("add")
@click.option("--opp", type=ID)
@click.option("--lead", type=ID)
@click.option("--owner", required=True, metavar="USER")
@click.option("--subject", required=True)
@click.option("--due", metavar="TIME", help="ISO-8601, or an offset such as +2d.")
@click.option("--reminder", metavar="TIME", help="ISO-8601, or an offset such as +1d.")
@json_option
@pass_app
def task_add(
    app: AppContext,
    opp: int | None,
    lead: int | None,
    owner: str,
    subject: str,
    due: str | None,
    reminder: str | None,
    as_json: bool,
) -> None:
    """Add a task on an opportunity (or a lead)."""
    from sharetui.cli.output import say
    from sharetui.core.records import task_dict

    core = app.core
    row = core.records.add_task(
        _target(lead, opp),
        owner=owner,
        subject=subject,
        actor=app.actor,
        due_at=parse_when(due, core),
        reminder_at=parse_when(reminder, core),
    )
    out_with_runs(app, as_json, task_dict(row), lambda: say(f"added task {row.id}: {row.subject}"))


@task.command("complete")
@click.argument("ident", metavar="ID", type=ID)
@json_option
@pass_app
def task_complete(app: AppContext, ident: int, as_json: bool) -> None:
    """Mark a task completed."""
    from sharetui.cli.output import say
    from sharetui.core.records import task_dict

    row = app.core.records.complete_task(ident, actor=app.actor)
    out_with_runs(app, as_json, task_dict(row), lambda: say(f"completed task {row.id}"))

"""``views``: saved, named list filters of leads and opportunities ("smart views")."""

from __future__ import annotations

import json

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app
from sharetui.domain.sorts import all_sort_orders
from sharetui.errors import UsageError

_ENTITY = click.option(
    "--entity",
    default="lead",
    show_default=True,
    metavar="lead|opp",
    help="Leads or opportunities.",
)


@click.group()
def views() -> None:
    """Saved views: a name for a list's search, field conditions, sort and columns.

    \b
    sharetui views add hot --search dental --where 'lead.fields.score >= 80'
    sharetui leads list --view hot
    """


def _actor(app: AppContext):  # the store's User, which the faces do not import by name
    if app.actor is None:
        raise UsageError("no users yet: add the first admin with `sharetui users add NAME --role admin`")
    return app.actor


@views.command("add")
@click.argument("name")
@_ENTITY
@click.option("--search", metavar="TEXT", help="The list's search term (name, company, email or type).")
@click.option(
    "--where",
    "conditions",
    multiple=True,
    metavar="'FIELD OP VALUE'",
    help="A condition, e.g. 'lead.stage = qualified' or 'opportunity.amount >= 10000' (repeatable).",
)
@click.option(
    "--sort",
    type=click.Choice(all_sort_orders()),
    default="id",
    show_default=True,
    help="A column, -COLUMN descending (type and amount: opportunities; company and source: leads).",
)
@click.option("--columns", metavar="A,B,...", help="The columns to show, in order.")
@click.option("--shared", is_flag=True, help="Show it to everyone (admins only).")
@click.option("--replace", is_flag=True, help="Overwrite a view of the same name.")
@json_option
@pass_app
def views_add(
    app: AppContext,
    name: str,
    entity: str,
    search: str | None,
    conditions: tuple[str, ...],
    sort: str,
    columns: str | None,
    shared: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Save a view of leads (or, with --entity opp, opportunities)."""
    from sharetui.cli.output import say
    from sharetui.core.records.saved_views import parse_condition

    parsed = [parse_condition(c) for c in conditions]
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns is not None else None
    if cols is not None and not cols:
        raise UsageError("--columns: name at least one column")
    view = app.core.saved_views.add(
        name,
        entity,
        actor=_actor(app),
        search=search,
        conditions=parsed,
        sort=sort,
        columns=cols,
        shared=shared,
        replace=replace,
    )
    whose = "shared" if view.shared else "your"
    out(as_json, view.as_dict(), lambda: say(f"saved {whose} {view.entity.value} view {view.name!r}"))


@views.command("list")
@click.option("--entity", default=None, metavar="lead|opp", help="Only views of leads or opportunities.")
@json_option
@pass_app
def views_list(app: AppContext, entity: str | None, as_json: bool) -> None:
    """Your views and the shared ones."""
    from sharetui.cli.output import table

    found = app.core.saved_views.list(actor=_actor(app), entity=entity)
    data = {"items": [v.as_dict() for v in found]}

    def human() -> None:
        table(
            "saved views",
            ["name", "of", "whose", "search", "conditions", "sort", "columns"],
            [
                (
                    v.name,
                    v.entity.short,
                    "shared" if v.shared else v.owner,
                    v.search or "-",
                    "; ".join(f"{c['field']} {c['op']} {json.dumps(c['value'])}" for c in v.conditions)
                    or "-",
                    v.sort,
                    ",".join(v.columns),
                )
                for v in found
            ],
        )

    out(as_json, data, human)


def _condition_text(cond: dict) -> str:
    return f"{cond['field']} {cond['op']} {json.dumps(cond['value'], ensure_ascii=False)}"


@views.command("remove")
@click.argument("name")
@_ENTITY
@click.option("--shared", is_flag=True, help="Remove the shared view of that name (admins only).")
@json_option
@pass_app
def views_remove(app: AppContext, name: str, entity: str, shared: bool, as_json: bool) -> None:
    """Remove one of your views (or, as an admin, a shared one)."""
    from sharetui.cli.output import say

    view = app.core.saved_views.remove(name, entity, actor=_actor(app), shared=shared)
    out(as_json, view.as_dict(), lambda: say(f"removed {view.entity.value} view {view.name!r}"))

"""``automations``, ``worker`` and ``notifications`` commands."""

from __future__ import annotations

import logging
import signal
import sys

import click

from sharetui.cli.context import ID, AppContext, json_option, out, pass_app
from sharetui.errors import UsageError


@click.group()
def automations() -> None:
    """Automations: trigger -> conditions -> actions (admins create, edit, publish, pause)."""


def _read(app: AppContext, path: str) -> str:
    """An automation file, at most ``max_input_bytes`` of it (never /dev/zero whole)."""
    from sharetui.ops.input_files import limit_of, read_text

    return read_text(path, limit_of(app.core))


@automations.command("list")
@json_option
@pass_app
def automations_list(app: AppContext, as_json: bool) -> None:
    """Automations with their status and last run."""
    from sharetui.cli.output import table
    from sharetui.domain.time import local_text

    items = app.core.automations.list(actor=app.actor)
    out(
        as_json,
        {"items": items},
        lambda: table(
            "automations",
            ["id", "name", "status", "trigger", "last run"],
            [
                (
                    a["id"],
                    a["name"],
                    a["status"],
                    a["trigger"]["type"]
                    + (f" — {a['schedule']['description']}" if a.get("schedule") else "")
                    + (f" ({a['trigger_filter']})" if a.get("trigger_filter") else ""),
                    f"{a['last_run']['status']} {local_text(a['last_run']['started_at'])}"
                    if a["last_run"]
                    else "-",
                )
                for a in items
            ],
        ),
    )


@automations.command("show")
@click.argument("ident", metavar="ID")
@json_option
@pass_app
def automations_show(app: AppContext, ident: str, as_json: bool) -> None:
    """An automation's trigger, conditions and actions."""
    from sharetui.cli.output import kv, table
    from sharetui.core.automations import automation_dict
    from sharetui.domain.time import local_text

    core = app.core
    row = core.automations.show(ident, actor=app.actor)
    data = automation_dict(row)
    if row.trigger_type == "schedule":
        data["schedule"] = core.automations.describe_schedule(row)

    def human() -> None:
        trigger = data["trigger"]
        pairs = [
            ("name", data["name"]),
            ("description", data["description"]),
            ("status", data["status"]),
            ("trigger", ", ".join(f"{k}={v}" for k, v in trigger.items())),
        ]
        if data.get("schedule"):
            pairs += [
                ("schedule", data["schedule"]["description"]),
                ("next run", local_text(data["schedule"]["next"])),
            ]
        pairs += [
            ("window", f"{local_text(data['starts_at'])} .. {local_text(data['ends_at'])}"),
            ("created by", data["created_by"]),
        ]
        kv(f"automation {data['id']}", pairs)
        table(
            "conditions (all must hold)",
            ["field", "op", "value"],
            [(c["field"], c["op"], c["value"]) for c in data["conditions"]],
        )
        table(
            "actions",
            ["step", "type", "config"],
            [
                (i, a["type"], ", ".join(f"{k}={v}" for k, v in a.items() if k != "type"))
                for i, a in enumerate(data["actions"])
            ],
        )

    out(as_json, data, human)


@automations.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_app
def automations_add(app: AppContext, file: str, as_json: bool) -> None:
    """Add an automation from a TOML file (validated; errors name the key and line)."""
    from sharetui.cli.output import say
    from sharetui.core.automations import automation_dict

    core = app.core
    row = core.automations.add(core.automations.parse(_read(app, file), file), actor=app.actor)
    out(as_json, automation_dict(row), lambda: say(f"added automation {row.id}: {row.name} ({row.status})"))


@automations.command("update")
@click.argument("ident", metavar="ID")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_app
def automations_update(app: AppContext, ident: str, file: str, as_json: bool) -> None:
    """Replace an automation's definition from a TOML file."""
    from sharetui.cli.output import say
    from sharetui.core.automations import automation_dict

    core = app.core
    row = core.automations.update(ident, core.automations.parse(_read(app, file), file), actor=app.actor)
    out(as_json, automation_dict(row), lambda: say(f"updated automation {row.id}: {row.name} ({row.status})"))


def _set_status(app: AppContext, ident: str, status: str, as_json: bool) -> None:
    from sharetui.cli.output import say
    from sharetui.core.automations import automation_dict

    row = app.core.automations.set_status(ident, status, actor=app.actor)
    out(as_json, automation_dict(row), lambda: say(f"automation {row.id} ({row.name}) is {row.status}"))


@automations.command("publish")
@click.argument("ident", metavar="ID")
@json_option
@pass_app
def automations_publish(app: AppContext, ident: str, as_json: bool) -> None:
    """Publish: the automation runs on events from now on."""
    _set_status(app, ident, "published", as_json)


@automations.command("pause")
@click.argument("ident", metavar="ID")
@json_option
@pass_app
def automations_pause(app: AppContext, ident: str, as_json: bool) -> None:
    """Pause: the automation stops running."""
    _set_status(app, ident, "paused", as_json)


@automations.command("runs")
@click.argument("ident", metavar="ID")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@json_option
@pass_app
def automations_runs(app: AppContext, ident: str, limit: int, as_json: bool) -> None:
    """An automation's runs, newest first, with what each step did."""
    from sharetui.cli.output import table
    from sharetui.domain.time import local_text

    runs = app.core.automations.runs(ident, actor=app.actor, limit=limit)
    out(
        as_json,
        {"items": runs},
        lambda: table(
            "runs",
            ["run", "at", "record", "for", "status", "what happened"],
            [
                (
                    r["id"],
                    local_text(r["started_at"]),
                    r["record"] or "-",
                    r["trace"].get("acting_for") or "-",
                    r["status"],
                    "\n".join(
                        f"{a['step']}. {a['type']}: {a['status']} — {a['message']}"
                        for a in r["trace"].get("actions", [])
                    )
                    or (r["reason"] or ""),
                )
                for r in runs
            ],
        ),
    )


@automations.command("test")
@click.argument("ident", metavar="ID")
@click.option("--lead", "lead_id", type=ID)
@click.option("--opp", "opp_id", type=ID)
@json_option
@pass_app
def automations_test(
    app: AppContext, ident: str, lead_id: int | None, opp_id: int | None, as_json: bool
) -> None:
    """Dry run on a record: what would happen now. Changes nothing."""
    from sharetui.cli.output import say, table
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType

    if (lead_id is None) == (opp_id is None):
        raise UsageError("give exactly one of --lead ID or --opp ID")
    record = (
        RecordRef(EntityType.LEAD, lead_id)
        if lead_id is not None
        else RecordRef(EntityType.OPPORTUNITY, opp_id)
    )
    report = app.core.automations.test(ident, record, actor=app.actor)
    for warning in report.trace.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)

    def human() -> None:
        say(
            f"dry run of {report.automation!r} on {record}: {report.status}"
            + (f" — {report.reason}" if report.reason else ""),
            "bold",
        )
        person = report.trace.get("acting_for")
        say(
            f"acting for {person}, as if their change had fired it"
            if person
            else "acting as the automation (no person fired it)",
            "dim",
        )
        if report.trace.get("conditions"):
            table(
                "conditions",
                ["field", "op", "value", "actual", "holds"],
                [
                    (c["field"], c["op"], c["value"], c["actual"], "yes" if c["result"] else "no")
                    for c in report.trace["conditions"]
                ],
            )
        for a in report.trace.get("actions", []):
            say(f"  {a['step']}. {a['type']}: {a['status']} — {a['message']}")
        say("nothing was changed", "dim")

    out(as_json, report.as_dict(), human)


@click.command()
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05, 3600),
    help="Seconds between passes when idle.",
)
@json_option
@pass_app
def worker(app: AppContext, once: bool, interval: float, as_json: bool) -> None:
    """Process events, schedules, reminders and expiry until SIGINT/SIGTERM."""
    from sharetui.cli.output import print_json, say
    from sharetui.core.events.worker import Worker

    if interval != interval:  # NaN passes click's FloatRange: every comparison with it is false
        raise UsageError("--interval takes a number of seconds, not nan")
    app.embedded = False
    core = app.core
    if core.team.is_team:
        # Team mode: the worker is a login in the worker group, which passes row security;
        # a person's login would see (and process) only what that person may (DESIGN §8).
        login = core.team.login()
        groups = core.team.groups()
        if "worker" not in groups and not core.team.is_setup_role():
            article = "an" if groups and groups[0][0] in "aeiou" else "a"
            kind = f"{article} {groups[0]} login" if groups else "not a worker login"
            raise UsageError(
                f"sharetui worker runs as a login in {core.team.prefix}worker; {login} is {kind} "
                "(make one with `sharetui team worker-login NAME`)"
            )
        click.echo(f"worker running as login {login}", err=True)
    if not as_json:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    # A lost database connection is made again with backoff (logged as sharetui.worker);
    # a single pass gives up after a few attempts (about 30 s) instead of waiting forever.
    w = Worker(app.core, max_reconnects=5 if once else None, viewer=app.actor)
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: w.stop())
    try:
        total = w.run(interval=interval, once=once)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        print_json(total.as_dict())
    elif once:
        say(
            f"events {total.events}, runs {total.runs}, schedules {total.schedules}, "
            f"reminders {total.reminders}, expired {total.expired}, expiring soon {total.warned}"
            + ("" if total.lease else " (another worker holds the lease)")
        )


@click.command()
@click.option("--user", metavar="USER", help="Whose notifications (default: the acting user).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@json_option
@pass_app
def notifications(app: AppContext, user: str | None, limit: int, as_json: bool) -> None:
    """Notifications sent by automations."""
    from sharetui.cli.output import table
    from sharetui.domain.time import local_text

    who = app.core.users.get(user) if user else app.actor
    if who is None:
        raise UsageError("no users yet")
    items = app.core.notifications.of_user(who, actor=app.actor, limit=limit)
    out(
        as_json,
        {"user": who.username, "items": items},
        lambda: table(
            f"notifications for {who.username}",
            ["at", "record", "message"],
            [(local_text(i["at"]), i["record"] or "-", i["message"]) for i in items],
        ),
    )

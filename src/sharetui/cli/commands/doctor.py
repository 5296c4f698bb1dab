"""``sharetui doctor``: is this database sound, and what is this sharetui running as?

It changes nothing: it neither migrates the database nor processes the outbox.
Exit 0 when every check passes, 1 when something is wrong (each problem is
listed), 2 for bad usage (a database that does not exist, say).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app
from sharetui.errors import SharetuiError

PERSONAL_NOTE = (
    "a SQLite file is not a boundary between people: whoever can open the file administers it "
    "(reads and changes everything in it, whatever their role). --as and SHARETUI_USER choose whose "
    "access to look through; they prove nobody's identity. Keep the file where only its owner can "
    "read it; for several people, use team mode on PostgreSQL."
)
TEAM_NOTE = (
    "team mode: PostgreSQL authenticates the login; sharetui acts as the sharetui user linked to it, "
    "and --as / SHARETUI_USER are for admins only."
)
PLAIN_POSTGRESQL_WARNING = (
    "this PostgreSQL database is not in team mode: every login reads and writes every table, and "
    "--as / SHARETUI_USER pick anyone, so it protects nothing between people. Run `sharetui team init` "
    "as the role that owns the tables (see docs/team.md)."
)
TEST_CLOCK_WARNING = (
    "this is a test database (sharetui init --test-clock): a session may set its own time with "
    "SHARETUI_NOW, so shares do not end by the server's clock alone. Never use it for real data."
)


@click.command()
@click.option(
    "--stuck-after",
    "stuck_minutes",
    default=15,
    show_default=True,
    type=click.IntRange(1, 100_000),
    metavar="MINUTES",
    help="An outbox event still unprocessed after this long counts as stuck.",
)
@json_option
@pass_app
def doctor(app: AppContext, stuck_minutes: int, as_json: bool) -> None:
    """Check the database and report the mode, acting user, clock, plugins and schema.

    Checks: SQLite's integrity_check and foreign_key_check and the search index (PostgreSQL
    does these itself: reported as skipped); the sharing invariants (at most one active
    grant per record, user and context; history for every grant; grants' users, records
    and requests exist; the share cap); no outbox event unprocessed for longer than
    --stuck-after minutes. Changes nothing. Exit 1 when something is wrong.
    """
    from sharetui.core.integrity import (
        check_integrity,
        database_login,
        schema_status,
        store_checks,
        stuck_events,
    )
    from sharetui.domain.time import iso

    app.embedded = False  # a diagnosis: no automations run
    app.migrate = False  # and the schema is reported as found, not upgraded first
    core = app.core
    problems: list[str] = []
    report: dict[str, Any] = {"database": app.shown_url}

    # -- where, and as whom ------------------------------------------------------------
    login = database_login(core)
    warnings: list[str] = []
    report["mode"] = core.team.mode
    if login is None:
        report["mode_note"] = PERSONAL_NOTE
    else:
        report["login"] = login
        report["mode_note"] = TEAM_NOTE if core.team.is_team else PLAIN_POSTGRESQL_WARNING
        if not core.team.is_team:
            warnings.append(PLAIN_POSTGRESQL_WARNING)
    if core.team.test_clock:
        report["test_database"] = True
        warnings.append(TEST_CLOCK_WARNING)

    current, latest = schema_status(core)
    report["schema"] = {"version": current, "latest": latest}
    schema_ok = current == latest
    if current < latest:
        problems.append(f"schema version {current}, this sharetui's is {latest}: run sharetui init")
    elif current > latest:
        problems.append(f"schema version {current} was made by a newer sharetui (this one knows {latest})")

    if not current:
        report["acting"] = {"user": None, "via": "no schema yet"}
    elif current < latest:  # the users table may lack what this sharetui reads (users.login)
        report["acting"] = {"user": None, "via": "not resolved: the schema is older than this sharetui"}
    else:
        report["acting"] = _acting(app, problems)

    frozen = os.environ.get("SHARETUI_NOW", "").strip()
    source = "SHARETUI_NOW" if frozen else "system"
    if core.team.is_team:
        source = "server (test clock: SHARETUI_NOW)" if frozen else "server"
    report["clock"] = {"overridden": bool(frozen), "source": source, "now": iso(core.now())}
    if core.team.is_team:
        rls = core.team.row_security()
        report["row_security"] = {t: {"enabled": on, "forced": forced} for t, (on, forced) in rls.items()}
        off = [t for t, (on, forced) in rls.items() if not (on and forced)]
        checks_rls = {
            "name": "row security",
            "status": "problem" if off else "ok",
            "detail": f"off or not forced on {', '.join(off)}: run sharetui team init"
            if off
            else f"on and forced on {len(rls)} tables",
        }
        if not off and not core.team.functions_current:
            checks_rls = {
                "name": "row security",
                "status": "problem",
                "detail": f"the database's team functions are version {core.team.functions_version}, "
                f"this sharetui's are {core.team.functions_wanted}: run sharetui team init again",
            }
    else:
        checks_rls = None

    report["plugins"] = _plugins(app, problems, current > 0)

    # -- checks ------------------------------------------------------------------------
    checks = [c.as_dict() for c in store_checks(core)]
    if checks_rls is not None:
        checks.append(checks_rls)
    problems += [f"{c['name']}: {c['detail']}" for c in checks if c["status"] == "problem"]
    # A person's login in team mode sees only some rows: the invariants would be judged on
    # a part of the data (a share of theirs whose record they may no longer read, say).
    partial_view = core.team.is_team and not (core.team.is_setup_role() or core.team.is_worker())
    if schema_ok and partial_view:
        checks.append(
            {
                "name": "sharing invariants",
                "status": "skipped",
                "detail": "row security shows this login part of the data: run doctor as the setup role",
            }
        )
    elif schema_ok:
        invariants = check_integrity(core)
        status = "problem" if invariants else "ok"
        checks.append({"name": "sharing invariants", "status": status, "detail": "; ".join(invariants)})
        problems += invariants
        stuck = stuck_events(core, timedelta(minutes=stuck_minutes))
        trouble = stuck.problem()
        checks.append(
            {
                "name": "outbox",
                "status": "problem" if trouble else "ok",
                "detail": trouble
                or f"{stuck.waiting:,} event(s) waiting, none for more than {stuck_minutes} minute(s)",
            }
        )
        report["outbox"] = {
            "waiting": stuck.waiting,
            "stuck": stuck.count,
            "stuck_after_minutes": stuck_minutes,
            "first_stuck_event": stuck.first_id,
            "oldest_stuck_at": stuck.oldest_at,
        }
        if trouble:
            problems.append(trouble)
    else:
        checks.append(
            {"name": "sharing invariants", "status": "skipped", "detail": "the schema is not this sharetui's"}
        )
    report["checks"] = checks
    report["warnings"] = warnings
    report["problems"] = problems
    report["ok"] = not problems

    out(as_json, report, lambda: _human(report))
    if problems:
        raise SystemExit(1)


def _acting(app: AppContext, problems: list[str]) -> dict[str, Any]:
    """Who ``--as`` / ``SHARETUI_USER`` (or the default) resolves to."""
    from_env = os.environ.get("SHARETUI_USER", "").strip()
    name = app.acting_name or from_env or None
    via = "--as" if app.acting_name else "SHARETUI_USER" if from_env else "default (the first active admin)"
    team = app.core.team
    try:
        if team.is_team:
            via = "login" if not name else f"login, impersonating ({via})"
            user = team.identify(name)
            identity = team.describe(user)
            if user is None:
                system = "the system (setup role, worker, or no users yet)"
                return {"user": None, "via": system, "resolved": True}
            out = {"user": user.username, "role": user.role, "via": via, "resolved": True}
            out.update(identity.as_dict())
            return out
        user = app.core.users.acting(name)
    except SharetuiError as exc:
        problems.append(f"acting user ({via} {name or ''}): {exc.message}".replace("  ", " "))
        return {"user": name, "via": via, "resolved": False, "error": exc.message}
    if user is None:
        return {"user": None, "via": "the system (no users yet)", "resolved": True}
    return {"user": user.username, "role": user.role, "via": via, "resolved": True}


def _plugins(app: AppContext, problems: list[str], has_schema: bool) -> list[dict[str, Any]]:
    from sharetui.host.state import stored_errors

    items = []
    for info in app.host.info():
        item = info.as_dict()
        items.append(item)
        for error in info.errors:
            problems.append(f"plugin {info.name}: {error}")
    if has_schema:
        try:
            failures = stored_errors()
        except Exception:  # noqa: BLE001 - an old schema without the table: nothing recorded
            failures = []
        by_plugin: dict[str, int] = {}
        for failure in failures:
            by_plugin[failure["plugin"]] = by_plugin.get(failure["plugin"], 0) + int(failure["count"])
        for item in items:
            item["recorded_failures"] = by_plugin.get(item["name"], 0)
        for plugin, count in sorted(by_plugin.items()):
            problems.append(f"plugin {plugin}: {count:,} recorded failure(s) (see sharetui plugins)")
    return items


def _human(report: dict[str, Any]) -> None:
    from sharetui.cli.output import kv, say, table

    acting = report["acting"]
    who = acting.get("user") or "-"
    if acting.get("role"):
        who += f" ({acting['role']})"
    clock = report["clock"]
    pairs = [
        ("database", report["database"]),
        ("mode", report["mode"] + (f" (login {report['login']})" if report.get("login") else "")),
        ("schema", f"version {report['schema']['version']} (latest {report['schema']['latest']})"),
        ("acting as", f"{who} — via {acting['via']}"),
        ("clock", f"{clock['now']} ({_clock_source(clock)})"),
        (
            "plugins",
            ", ".join(
                p["name"] + ("" if p["loaded"] else " (not loaded)") + (" (errors)" if p["errors"] else "")
                for p in report["plugins"]
            ),
        ),
    ]
    if acting.get("impersonated_by"):
        pairs.insert(4, ("impersonation", f"{acting['impersonated_by']} as {acting['user']}"))
    kv("sharetui doctor", pairs)
    say(f"note: {report['mode_note']}", "dim" if report["mode"] == "team" else "yellow")
    for warning in report.get("warnings", []):
        say(f"warning: {warning}", "yellow")
    table(
        "checks",
        ["check", "result", "detail"],
        [(c["name"], c["status"], c["detail"] or "-") for c in report["checks"]],
    )
    if report["problems"]:
        say(f"{len(report['problems'])} problem(s):", "bold red")
        for problem in report["problems"]:
            say(f"  - {problem}", "red")
    else:
        say("no problems found", "bold green")


def _clock_source(clock: dict[str, Any]) -> str:
    if clock["source"] == "SHARETUI_NOW":
        return "frozen by SHARETUI_NOW"
    return clock["source"]

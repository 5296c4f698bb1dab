"""``sharetui plugins``: what is loaded, from where, with which hooks, which SDK it
targets, whether it is still called, and how often it failed; ``plugins new``
scaffolds a plugin package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app


@click.group(invoke_without_command=True)
@json_option
@pass_app
@click.pass_context
def plugins(ctx: click.Context, app: AppContext, as_json: bool) -> None:
    """List plugins: name, version, source, SDK, hooks, state, failures and errors.

    `sharetui plugins new NAME` makes a new plugin package."""
    if ctx.invoked_subcommand is not None:
        return
    _list(app, as_json)


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "where",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to make the package folder (default: here).",
)
@json_option
def new(name: str, where: Path, as_json: bool) -> None:
    """Make a plugin package NAME: pyproject with the entry point, module, tests, README.

    Then: cd NAME && python -m pytest"""
    from sharetui.cli.commands.plugin_scaffold import scaffold
    from sharetui.cli.output import say
    from sharetui.sdk import SDK_VERSION

    target = scaffold(name, where, SDK_VERSION.split(".")[0])
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    out(
        as_json,
        {"plugin": name, "path": str(target), "files": files},
        lambda: say(f"made {target}: cd {target} && python -m pytest"),
    )


def _list(app: AppContext, as_json: bool) -> None:
    from sharetui.cli.output import table
    from sharetui.host.state import stored_errors, stored_failures
    from sharetui.sdk import SDK_VERSION

    host = app.host
    try:
        _ = app.core  # binds the host: settings directories load, registration errors show
        host.add_commands(click.get_current_context().find_root().command)  # type: ignore[arg-type]
        stored = stored_errors()
        recorded = stored_failures()
    except Exception:  # noqa: BLE001 - listing plugins must work without a database
        stored, recorded = [], None
    infos = host.info()
    last_stored: dict[str, dict[str, Any]] = {}
    for e in stored:  # newest first
        last_stored.setdefault(e["plugin"], e)

    def entry(info: Any) -> dict[str, Any]:
        data = info.as_dict()
        mine = (recorded or {}).get(info.name, {})
        # Every process's failures, this one's included; without a database, this one's.
        data["recorded_failures"] = mine.get("failures", 0) if recorded is not None else info.failures
        data["last_set_aside"] = mine.get("last_set_aside")
        return data

    entries = [entry(i) for i in infos]
    data = {
        "sdk_version": SDK_VERSION,
        "plugins": entries,
        "triggers": sorted(host.triggers),
        "actions": sorted(host.actions),
        "recorded_errors": stored,
    }

    def state(e: dict[str, Any]) -> str:
        if e["set_aside"]:
            return f"set aside since {e['set_aside']['at'] or 'start'}"
        last = e["last_set_aside"]
        if e["state"] == "active" and last:
            times = "once" if last["times"] == 1 else f"{last['times']} times"
            return f"active (set aside {times} before, last at {last['at']})"
        return str(e["state"])

    def errors(e: dict[str, Any]) -> str:
        lines = list(e["errors"]) + [f"deprecated: {n}" for n in e["deprecations"]]
        last = last_stored.get(e["name"])
        if last is not None and not any(last["error"] in line for line in lines):
            lines.append(
                f"last recorded: {last['hook']}: {last['error']} ({last['count']}x, {last['last_at']})"
            )
        return "\n".join(lines) or "-"

    def targets(e: dict[str, Any]) -> str:
        if e["sdk"]:
            return e["sdk"]
        return "-" if e["source"] != "builtin" else SDK_VERSION.split(".")[0]

    def human() -> None:
        table(
            f"plugins (SDK {SDK_VERSION})",
            ["name", "version", "source", "sdk", "hooks", "state", "failures", "errors"],
            [
                (
                    e["name"],
                    e["version"] or "-",
                    e["source"] if not e["location"] else f"{e['source']}: {e['location']}",
                    targets(e),
                    ", ".join(h.removeprefix("sharetui_") for h in e["hooks"]) or "-",
                    state(e),
                    str(e["recorded_failures"]),
                    errors(e),
                )
                for e in entries
            ],
        )
        if stored:
            table(
                "recorded plugin failures",
                ["plugin", "hook", "error", "count", "last"],
                [(e["plugin"], e["hook"], e["error"], e["count"], e["last_at"]) for e in stored],
            )
        click.echo(f"triggers: {', '.join(sorted(host.triggers)) or '-'}")
        click.echo(f"actions: {', '.join(sorted(host.actions)) or '-'}")

    out(as_json, data, human)

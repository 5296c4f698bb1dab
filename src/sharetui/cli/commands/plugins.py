"""``sharetui plugins``: what is loaded, from where, with which hooks, whether it is
still called, and how often it failed."""

from __future__ import annotations

from typing import Any

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app


@click.command()
@json_option
@pass_app
def plugins(app: AppContext, as_json: bool) -> None:
    """List plugins: name, version, source, hooks, state, failures and errors."""
    from sharetui.cli.output import table
    from sharetui.host.state import stored_errors, stored_failures

    host = app.host
    try:
        _ = app.core  # binds the host: settings directories load, registration errors show
        host.add_commands(click.get_current_context().find_root().command)  # type: ignore[arg-type]
        stored = stored_errors()
        recorded = stored_failures()
    except Exception:  # noqa: BLE001 - listing plugins must work without a database
        stored, recorded = [], None
    infos = host.info()

    def entry(info: Any) -> dict[str, Any]:
        data = info.as_dict()
        mine = (recorded or {}).get(info.name, {})
        # Every process's failures, this one's included; without a database, this one's.
        data["recorded_failures"] = mine.get("failures", 0) if recorded is not None else info.failures
        data["last_set_aside"] = mine.get("last_set_aside")
        return data

    entries = [entry(i) for i in infos]
    data = {
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

    def human() -> None:
        table(
            "plugins",
            ["name", "version", "source", "hooks", "state", "failures", "errors"],
            [
                (
                    e["name"],
                    e["version"] or "-",
                    e["source"] if not e["location"] else f"{e['source']}: {e['location']}",
                    ", ".join(h.removeprefix("sharetui_") for h in e["hooks"]) or "-",
                    state(e),
                    str(e["recorded_failures"]),
                    "\n".join(e["errors"]) or "-",
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

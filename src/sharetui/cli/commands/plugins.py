"""``sharetui plugins``: what is loaded, from where, with which hooks and errors."""

from __future__ import annotations

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app


@click.command()
@json_option
@pass_app
def plugins(app: AppContext, as_json: bool) -> None:
    """List plugins: name, version, source, hooks, and load or call errors."""
    from sharetui.cli.output import table
    from sharetui.host.state import stored_errors

    host = app.host
    try:
        _ = app.core  # binds the host, so registration errors show too
        host.add_commands(click.get_current_context().find_root().command)  # type: ignore[arg-type]
        stored = stored_errors()
    except Exception:  # noqa: BLE001 - listing plugins must work without a database
        stored = []
    infos = host.info()
    data = {
        "plugins": [i.as_dict() for i in infos],
        "triggers": sorted(host.triggers),
        "actions": sorted(host.actions),
        "recorded_errors": stored,
    }

    def human() -> None:
        table(
            "plugins",
            ["name", "version", "source", "hooks", "errors"],
            [
                (
                    i.name + ("" if i.loaded else " (not loaded)"),
                    i.version or "-",
                    i.source if not i.location else f"{i.source}: {i.location}",
                    ", ".join(h.removeprefix("sharetui_") for h in sorted(i.hooks)) or "-",
                    "\n".join(i.errors) or "-",
                )
                for i in infos
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

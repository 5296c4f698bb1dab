"""Stored plugin errors (a plugin's private state lives in :mod:`sharetui.core.facade`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sharetui.db.models import PluginError

if TYPE_CHECKING:
    from sharetui.core.service import Core


def record_plugin_error(core: Core, plugin: str, hook: str, error: str) -> None:
    """Count a plugin failure; ``sharetui plugins`` shows stored failures."""
    now = core.db_now()
    PluginError.insert(
        plugin=plugin, hook=hook, error=error[:2000], count=1, first_at=now, last_at=now
    ).on_conflict(
        conflict_target=[PluginError.plugin, PluginError.hook, PluginError.error],
        update={PluginError.count: PluginError.count + 1, PluginError.last_at: now},
    ).execute()


def stored_failures() -> dict[str, dict[str, Any]]:
    """Per plugin, from every process that used this database: ``failures`` (failed
    calls and registrations recorded) and ``last_set_aside`` (``reason``, ``at``,
    ``times``; None if it never was). Setting aside lasts until a process ends, so
    this is what happened, not what the next process will do."""
    from peewee import fn

    from sharetui.domain.time import iso
    from sharetui.host.calls import SET_ASIDE

    out: dict[str, dict[str, Any]] = {}
    totals = (
        PluginError.select(PluginError.plugin, fn.SUM(PluginError.count))
        .where(PluginError.hook != SET_ASIDE)
        .group_by(PluginError.plugin)
        .tuples()
    )
    for plugin, total in totals:
        out.setdefault(plugin, {"failures": 0, "last_set_aside": None})["failures"] = int(total or 0)
    asides = PluginError.select().where(PluginError.hook == SET_ASIDE).order_by(PluginError.last_at)
    for row in asides:
        entry = out.setdefault(row.plugin, {"failures": 0, "last_set_aside": None})
        times = row.count + (entry["last_set_aside"] or {}).get("times", 0)
        entry["last_set_aside"] = {"reason": row.error, "at": iso(row.last_at), "times": times}
    return out


def stored_errors(limit: int = 200) -> list[dict[str, Any]]:
    from sharetui.domain.time import iso

    rows = PluginError.select().order_by(PluginError.last_at.desc()).limit(limit)
    return [
        {
            "plugin": r.plugin,
            "hook": r.hook,
            "error": r.error,
            "count": r.count,
            "first_at": iso(r.first_at),
            "last_at": iso(r.last_at),
        }
        for r in rows
    ]

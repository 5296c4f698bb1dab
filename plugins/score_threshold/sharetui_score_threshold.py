"""sharetui plugin: the trigger ``lead_score_crossed`` — a lead's score rose to or past
a threshold.

Each automation on the trigger names its own ``threshold`` (a number, default 80)
and runs only when the lead's custom field ``score`` goes from below it to at least
it: ``threshold = 80`` runs once when the score goes 75 -> 85, not again at 90.

How it works: ``sharetui_record_changed`` hears every committed change of a lead; when
its score rose, it fires the trigger with ``{"before": old, "after": new}`` (the run
trace keeps that data), and the trigger's filter ``matches`` compares each
automation's threshold with it. No state, no helper automation.

    [trigger]
    type = "lead_score_crossed"
    threshold = 80
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharetui import hookimpl
from sharetui.sdk import ConfigField, EntityType, RecordChange, Services, number

PLUGIN_NAME = "score-threshold"
SDK_VERSION = "2"  # the SDK this plugin was written for (`sharetui plugins` shows it)
__version__ = "0.1.0"

TRIGGER = "lead_score_crossed"
FIELD = "score"
DEFAULT_THRESHOLD = 80


def _score(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def matches(config: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """The score went from below the automation's threshold to at least it."""
    threshold = config.get("threshold", DEFAULT_THRESHOLD)
    data = event.get("event") or {}
    before, after = _score(data.get("before")), _score(data.get("after"))
    return after is not None and after >= threshold and (before is None or before < threshold)


def describe(config: Mapping[str, Any]) -> str:
    return f"score crosses {config.get('threshold', DEFAULT_THRESHOLD)}"


@hookimpl
def sharetui_register_triggers(register) -> None:
    register(
        TRIGGER,
        "A lead's score rose to or past a threshold",
        config={"threshold": ConfigField(number, default=DEFAULT_THRESHOLD, help="the score to cross")},
        entity="lead",
        matches=matches,
        describe=describe,
    )


@hookimpl
def sharetui_record_changed(change: RecordChange, services: Services) -> None:
    if change.record.entity is not EntityType.LEAD or f"fields.{FIELD}" not in change.changed:
        return
    before = _score(change.before.fields.get(FIELD)) if change.before else None
    after = _score(change.after.fields.get(FIELD)) if change.after else None
    if after is not None and (before is None or after > before):
        services.fire(TRIGGER, change.record, {"before": before, "after": after})

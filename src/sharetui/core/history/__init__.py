"""The share history: every request and lifecycle event, filtered and exported."""

from sharetui.core.history.service import (
    CHART_EVENTS,
    EVENTS,
    FIELDS,
    STATUSES,
    HistoryFilter,
    HistoryService,
    event_dict,
    requested_by,
)

__all__ = [
    "CHART_EVENTS",
    "EVENTS",
    "FIELDS",
    "STATUSES",
    "HistoryFilter",
    "HistoryService",
    "event_dict",
    "requested_by",
]

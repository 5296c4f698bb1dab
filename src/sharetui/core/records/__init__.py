"""Leads, opportunities, activities and tasks; users and sales groups; settings."""

from sharetui.core.records.activities import activity_dict
from sharetui.core.records.service import (
    LEAD_FIELDS,
    LEAD_STAGES,
    OPP_FIELDS,
    OPP_STAGES,
    RecordService,
    record_dict,
)
from sharetui.core.records.tasks import task_dict

__all__ = [
    "LEAD_FIELDS",
    "LEAD_STAGES",
    "OPP_FIELDS",
    "OPP_STAGES",
    "RecordService",
    "activity_dict",
    "record_dict",
    "task_dict",
]

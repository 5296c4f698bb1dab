"""Who may read or edit a record, and the pages of records a user may see."""

from sharetui.core.access.service import (
    AccessService,
    Decision,
    Page,
    VisibleRow,
    grant_dict,
)
from sharetui.domain.records import RecordLike, RecordRef, as_record

__all__ = [
    "AccessService",
    "Decision",
    "Page",
    "RecordLike",
    "RecordRef",
    "VisibleRow",
    "as_record",
    "grant_dict",
]

"""Record references: a lead or an opportunity, by type and id."""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

from sharetui.domain.roles import EntityType


class RecordRef(NamedTuple):
    """A lead or an opportunity, by type and id."""

    entity: EntityType
    id: int

    def __str__(self) -> str:
        return f"{self.entity.short} {self.id}"


@runtime_checkable
class HasRef(Protocol):
    """Anything that knows which record it is (the stored lead and opportunity rows do)."""

    @property
    def record_ref(self) -> RecordRef: ...


RecordLike = RecordRef | HasRef | tuple[str, int]


def as_record(record: RecordLike) -> RecordRef:
    """``record`` as a :class:`RecordRef`: a ref, a row with ``record_ref``, or ``(entity, id)``."""
    if isinstance(record, RecordRef):
        return record
    ref = getattr(record, "record_ref", None)
    if isinstance(ref, RecordRef):
        return ref
    entity, ident = record  # type: ignore[misc]
    return RecordRef(EntityType.parse(entity), int(ident))


__all__ = ["HasRef", "RecordLike", "RecordRef", "as_record"]

"""Fresh-eyes review of a1494c7 (the default rule set answering a batch's records from
one read per user and kind, and a chunk's recipient locks taken at its start).

On PostgreSQL the access memo is read once, at the first question about one of the
batch's records, and is only dropped when *this* session changes a row: another
session's commit in the meantime (a lead reassigned away from its owner) is not seen,
where the statement-at-a-time rule (``_LEVEL_SQL``) would see it."""

from __future__ import annotations

from typing import Any

import pytest

from sharetui.db.models import Grant

from .test_batch_memo_pg import _after_first, _other, _share
from .test_concurrency import PG

pytestmark = pytest.mark.skipif(not PG, reason="PostgreSQL batches")


def _owners_company(core: Any) -> tuple[Any, Any, list[Any], list[int]]:
    admin = core.users.add("admin", role="admin", actor=None)
    owner = core.users.add("olga", role="sales", actor=admin)
    sellers = [core.users.add(n, role="sales", actor=admin) for n in ("sam", "sue")]
    assert core.settings.get("owners_can_share")
    leads = [core.records.add_lead(name=f"L{n}", owner=owner, actor=admin).id for n in range(2)]
    return admin, owner, sellers, leads


def test_an_owner_cannot_share_a_lead_reassigned_away_while_the_chunk_runs(core, db_url, monkeypatch) -> None:
    """olga owns two leads and shares both in one batch API call. After her first item,
    an admin's session reassigns the second lead to the admin and commits. olga may no
    longer read that lead (no group, no grant): the one-statement rule refuses it; the
    batch's access memo (read at her first item) still says she owns it."""
    admin, owner, _sellers, leads = _owners_company(core)
    other = _other(db_url)

    def reassign() -> None:
        other.execute("UPDATE leads SET owner_id = %s WHERE id = %s", (admin.id, leads[1]))

    _after_first(monkeypatch, core.sharing, "process_share", reassign)
    try:
        results = _share(core, owner, (leads[0], "sam"), (leads[1], "sue"))
    finally:
        other.close()
    assert results[0]["outcome"] == "granted", results[0]
    # What the rule says now, outside any batch: olga may not read the lead.
    assert not core.gate.can_read(owner, _ref(leads[1]))
    assert results[1]["status"] == "failed", results[1]
    assert not Grant.select().where((Grant.entity_id == leads[1]) & (Grant.state == "active")).exists()


def _ref(lead_id: int) -> Any:
    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType

    return RecordRef(EntityType.LEAD, lead_id)

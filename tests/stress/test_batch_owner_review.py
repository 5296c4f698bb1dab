"""A second fresh-eyes review of issue 17's PostgreSQL batches (FRESH_LEVEL, require_edit
from one decision; docs/security-review.md, finding B5): the record's owner a batch looked
up at its start went stale when another session reassigned the record meanwhile."""

from __future__ import annotations

import pytest

from sharetui.db.models import Grant
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType

from .test_batch_memo_pg import _after_first, _other, _share
from .test_concurrency import PG

pg_only = pytest.mark.skipif(not PG, reason="PostgreSQL batches")


@pg_only
def test_an_owner_cannot_share_a_lead_reassigned_to_a_group_mate_while_the_chunk_runs(
    core, db_url, monkeypatch
) -> None:
    """olga (sales, owners_can_share) owns two leads and shares both in one batch API call.
    After her first item another session reassigns the second lead to sue, a member of
    olga's sales group, and commits. olga still reads it (group) but no longer owns it:
    a sales user who is not the owner may not share. The rule set's facts are read fresh
    (FRESH_LEVEL: owner sue), but _share_refusal takes the owner from the chunk's
    ("owner", ...) memo filled by facts.prefetch at the chunk's start (olga) and lets
    her share as the owner."""
    admin = core.users.add("admin", role="admin", actor=None)
    olga = core.users.add("olga", role="sales", actor=admin)
    sue = core.users.add("sue", role="sales", actor=admin)
    for name in ("sam", "tom"):
        core.users.add(name, role="sales", actor=admin)
    core.users.join(olga, "east", "view", actor=admin)
    core.users.join(sue, "east", "view", actor=admin)
    assert core.settings.get("owners_can_share")
    leads = [core.records.add_lead(name=f"L{n}", owner=olga, actor=admin).id for n in range(2)]
    other = _other(db_url)

    def reassign() -> None:
        other.execute("UPDATE leads SET owner_id = %s WHERE id = %s", (sue.id, leads[1]))

    _after_first(monkeypatch, core.sharing, "process_share", reassign)
    try:
        results = _share(core, olga, (leads[0], "sam"), (leads[1], "tom"))
    finally:
        other.close()
    assert results[0]["outcome"] == "granted", results[0]
    ref = RecordRef(EntityType.LEAD, leads[1])
    assert core.gate.can_read(olga, ref)  # through the group, as the batch saw
    # Outside a batch the same share is refused: olga is not the owner any more.
    alone = core.sharing.share("lead", leads[1], "sam", requester=olga, duration="1h")
    assert alone.outcome != "granted", alone
    assert results[1]["status"] == "failed", results[1]
    assert not Grant.select().where((Grant.entity_id == leads[1]) & (Grant.state == "active")).exists()

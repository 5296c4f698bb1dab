"""Fresh-eyes reviews of issue 17's PostgreSQL batches (docs/security-review.md, findings
B4 and B5): a lead reassigned by another session while a batch API chunk runs.

B4 (review of a1494c7): the default rule set answered a batch's records from one read at
the batch's first question, dropped only when *this* session changed a row, so another
session's commit meanwhile (a lead reassigned away from its owner) went unseen, where the
statement-at-a-time rule (``_LEVEL_SQL``) would see it.

B5 (review of d50b12d): the share's owner checks took the record's owner from the memo
``facts.prefetch`` filled at the chunk's start, so a lead reassigned to a group mate
meanwhile was still the first owner's to share."""

from __future__ import annotations

from typing import Any

import pytest

from sharetui.db.models import Grant
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType

from .test_batch_memo_pg import _after_first, _other, _share
from .test_concurrency import PG

pytestmark = pytest.mark.skipif(not PG, reason="PostgreSQL batches")


def _owners_company(core: Any, *, group: bool = False) -> tuple[Any, Any, dict[str, Any], list[int]]:
    """An admin, olga (sales) owning two leads, and sam, sue and tom (sales); ``group``:
    olga and sue in one sales group, at view level."""
    admin = core.users.add("admin", role="admin", actor=None)
    owner = core.users.add("olga", role="sales", actor=admin)
    sellers = {n: core.users.add(n, role="sales", actor=admin) for n in ("sam", "sue", "tom")}
    if group:
        core.users.join(owner, "east", "view", actor=admin)
        core.users.join(sellers["sue"], "east", "view", actor=admin)
    assert core.settings.get("owners_can_share")
    leads = [core.records.add_lead(name=f"L{n}", owner=owner, actor=admin).id for n in range(2)]
    return admin, owner, sellers, leads


def _share_both_while_the_second_is_reassigned(
    core: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, owner: Any, leads: list[int], to: Any
) -> list[dict[str, Any]]:
    """``owner`` shares both leads in one batch API call (with sam, then tom); after the
    first item another session reassigns the second lead to ``to`` and commits."""
    other = _other(db_url)

    def reassign() -> None:
        other.execute("UPDATE leads SET owner_id = %s WHERE id = %s", (to.id, leads[1]))

    _after_first(monkeypatch, core.sharing, "process_share", reassign)
    try:
        results = _share(core, owner, (leads[0], "sam"), (leads[1], "tom"))
    finally:
        other.close()
    assert results[0]["outcome"] == "granted", results[0]
    return results


def _shared(lead_id: int) -> bool:
    return Grant.select().where((Grant.entity_id == lead_id) & (Grant.state == "active")).exists()


def test_an_owner_cannot_share_a_lead_reassigned_away_while_the_chunk_runs(core, db_url, monkeypatch) -> None:
    """The second lead goes to the admin: olga may no longer read it (no group, no grant),
    and the one-statement rule refuses it; the batch's access memo (read at her first
    item) still said she owned it."""
    admin, owner, _sellers, leads = _owners_company(core)
    results = _share_both_while_the_second_is_reassigned(core, db_url, monkeypatch, owner, leads, admin)
    # What the rule says now, outside any batch: olga may not read the lead.
    assert not core.gate.can_read(owner, _ref(leads[1]))
    assert results[1]["status"] == "failed", results[1]
    assert not _shared(leads[1])


def test_an_owner_cannot_share_a_lead_reassigned_to_a_group_mate_while_the_chunk_runs(
    core, db_url, monkeypatch
) -> None:
    """The second lead goes to sue, in olga's sales group: olga still reads it (group) but
    no longer owns it, and a sales user who is not the owner may not share. The rule set's
    facts were read fresh (owner sue), but the owner checks took the owner from the
    chunk's memo (olga) and let her share as the owner."""
    _admin, olga, sellers, leads = _owners_company(core, group=True)
    sue = sellers["sue"]
    results = _share_both_while_the_second_is_reassigned(core, db_url, monkeypatch, olga, leads, sue)
    assert core.gate.can_read(olga, _ref(leads[1]))  # through the group, as the batch saw
    # Outside a batch the same share is refused: olga is not the owner any more.
    alone = core.sharing.share("lead", leads[1], "sam", requester=olga, duration="1h")
    assert alone.outcome != "granted", alone
    assert results[1]["status"] == "failed", results[1]
    assert not _shared(leads[1])


def _ref(lead_id: int) -> RecordRef:
    return RecordRef(EntityType.LEAD, lead_id)

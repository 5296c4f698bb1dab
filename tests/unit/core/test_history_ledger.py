"""The history ledger (issue 16): one row per request, newest first by time,
keyset-paged on (at, id); requests still waiting; per-day counts; all gated."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sharetui.core.history import HistoryFilter
from sharetui.core.service import Core
from sharetui.db.models import ShareRequest
from sharetui.ops.loader import Loader

SAMPLE_DATA = Path(__file__).resolve().parents[3] / "sample_data"


def test_the_ledger_pages_by_time_and_shows_what_waits(core: Core) -> None:
    Loader(core).load(SAMPLE_DATA, actor=None)
    priya = core.users.get("priya")
    for i in range(7):
        core.sharing.share("lead", 1, "daniel", requester=priya, duration=f"{i + 1}h")
    ShareRequest.create(
        action="share",
        status="processing",
        entity_type="lead",
        entity_id=1,
        recipient_name="sofia",
        requester_id=priya.id,
        source="manual",
        created_at=core.db_now(),
    )
    everything = core.history.query(None, HistoryFilter(requests_only=True), limit=None)
    seen, before, pages = [], None, 0
    while True:
        page = core.views.ledger(None, HistoryFilter(), before=before, limit=3)
        seen += list(page.rows)
        pages += 1
        before = page.next
        if before is None:
            break
    assert seen[0].status == "processing" and seen[0].user == "sofia"
    done = [r for r in seen if r.status != "processing"]
    assert sorted(r.id for r in done) == sorted(h["id"] for h in everything)
    keys = [(r.at, r.id) for r in done]
    assert keys == sorted(keys, reverse=True)
    assert pages >= len(everything) // 3

    # daniel sees only rows the gate lets him see, the waiting one included only if so.
    daniel = core.users.get("daniel")
    allowed = {h["id"] for h in core.history.query(daniel, HistoryFilter(requests_only=True), limit=None)}
    mine = core.views.ledger(daniel, HistoryFilter(), limit=1000).rows
    assert {r.id for r in mine if r.id} <= allowed

    # lifecycle: the request and its grant's rows
    granted = next(r for r in done if r.event == "share" and r.status == "completed")
    events = [r.event for r in core.views.lifecycle(None, granted)]
    assert "granted" in events


def test_per_day_counts_granted_expired_revoked(core: Core) -> None:
    Loader(core).load(SAMPLE_DATA, actor=None)
    now = core.now()
    counts = core.views.history_per_day(None, HistoryFilter())
    total = sum(c["granted"] for c in counts.values())
    assert total == len(core.history.query(None, HistoryFilter(event="granted"), limit=None))
    today = core.views.history_per_day(None, HistoryFilter(since=now - timedelta(days=1)))
    assert set(today) <= {(now - timedelta(days=1)).date().isoformat(), now.date().isoformat()}
    daniel = core.users.get("daniel")
    his = core.views.history_per_day(daniel, HistoryFilter())
    assert sum(c["granted"] for c in his.values()) <= total


def test_the_timeline_is_gated_and_draws_ended_shares(core: Core) -> None:
    import pytest

    from sharetui.domain.records import RecordRef
    from sharetui.domain.roles import EntityType
    from sharetui.errors import NotReadable

    Loader(core).load(SAMPLE_DATA, actor=None)
    priya = core.users.get("priya")
    for i in range(3):
        assert core.sharing.share("lead", 1, "sofia", requester=priya, duration=f"{i + 1}h").ok
    assert core.sharing.revoke("lead", 1, "sofia", requester=priya).ok
    ref = RecordRef(EntityType.LEAD, 1)
    timeline = core.views.timeline(priya, ref)
    assert [b.state for b in timeline.bars if b.user == "sofia"] == ["revoked"]
    with pytest.raises(NotReadable):
        core.views.timeline(core.users.get("wei"), ref)

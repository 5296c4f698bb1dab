"""Deciding set-based changes nothing but the speed: a batch API chunk and a worker's
batch of events, decided with their rows held and written set-based (db/batching.py),
leave exactly the rows that deciding them one statement at a time leaves, id for id, in
every table they write: requests, grants, history, the outbox, runs, steps; on SQLite
and on PostgreSQL.

The scenarios make the items and events interact the ways a batch must get right: one
recipient reaching the share cap inside the batch, the same record and user shared twice
(a renewal of a grant the batch itself made), a grant that expired unswept, refusals of
every kind, shares in an activity's context, automations whose loop guard trips inside
the batch, a failing step, a chain of steps handing an activity on.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_URL, SAMPLE_DATA, T0, fresh_store
from sharetui.clock import FrozenClock
from sharetui.core.sharing import batch as batch_api
from sharetui.core.sharing.batch import BatchAPI, load_items
from sharetui.db import batching
from sharetui.runtime import open_core

TABLES = (
    "share_requests",
    "grants",
    "history",
    "outbox",
    "automation_runs",
    "automation_steps",
    "activities",
)


def dump(core) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a share or a run writes, timings taken out of traces."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        order = "rowid" if not PG_URL else "run_id, step" if table == "automation_steps" else "id"
        cursor = core.db.execute_sql(f"SELECT * FROM {table} ORDER BY {order}")
        names = [d[0] for d in cursor.description]
        rows = []
        for row in cursor.fetchall():
            values = dict(zip(names, row, strict=True))
            values.pop("duration_ms", None)
            values.pop("batch_id", None)  # a fresh uuid each batch
            for key in ("trace", "outcome"):
                if table.startswith("automation") and isinstance(values.get(key), str):
                    values[key] = _untimed(json.loads(values[key]))
            rows.append(tuple(sorted(values.items())))
        out[table] = rows
    return out


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "ms"}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@contextmanager
def company(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if PG_URL:
        # Ids drawn from the sequences one at a time (as a statement run at once draws
        # them), so that both ways give the same ids; blocks leave gaps.
        monkeypatch.setattr(batching.Batch, "id_block", 1)
    with fresh_store(path) as url, _company(url) as made:
        yield made


@contextmanager
def _company(url: str) -> Iterator[Any]:
    clock = FrozenClock(T0)
    core = open_core(url, clock)
    try:
        u = core.users
        admin = u.add("admin", role="admin", actor=None)
        for name in ("priya", "daniel", "sofia", "kenji"):
            u.add(name, role="sales", actor=admin)
        u.add("ruth", role="sales_manager", actor=admin)
        u.add("retired", role="sales", actor=admin)
        u.deactivate("retired", actor=admin)
        core.settings.set("share_cap_leads", 3, actor=admin)
        r = core.records
        r.add_activity_type("Meeting Scheduled", actor=admin)
        leads = [r.add_lead(name=f"Lead {i}", owner="priya", actor=admin).id for i in range(8)]
        opp = r.add_opportunity(
            name="Loan", type="Personal Loan", lead=leads[0], owner="kenji", actor=admin
        ).id
        meeting = r.post_activity(("lead", leads[1]), type="Meeting Scheduled", owner="daniel", actor=admin)
        # A grant that has run out but was never swept: the batch renews it by ending it first.
        core.sharing.share("lead", leads[7], "kenji", requester=admin, duration="1h")
        clock.advance(timedelta(hours=2))
        core.automations.process_pending()
        yield core, admin, leads, opp, meeting.id
    finally:
        core.close()


def share_items(leads: list[int], opp: int, meeting: int) -> list[dict[str, Any]]:
    def item(user: Any, lead: int, **more: Any) -> dict[str, Any]:
        return {"UserId": user, "Entity": 1, "EntityId": lead, "DurationInMinutes": 1440, **more}

    return [
        item("daniel", leads[0]),
        item("daniel", leads[1], ContextEntityId=meeting, AccessType=2),
        item("daniel", leads[2]),
        item("daniel", leads[3]),  # over the cap of 3: refused, with the count
        item("daniel", leads[1]),  # no context: a fresh grant beside the context one
        item("sofia", leads[0], AccessType=2),
        item("sofia", leads[0], AccessType=1, DurationInMinutes=60),  # renews the grant just made
        item("priya", leads[2]),  # the owner
        item("nobody", leads[2]),
        item("retired", leads[2]),
        item("ruth", leads[2]),  # not a sales user
        item("sofia", 99_999),  # no such lead
        {"UserId": "kenji", "Entity": 5, "EntityId": opp},  # kenji owns it
        {"UserId": "sofia", "Entity": 5, "EntityId": opp, "DurationInMinutes": 600},
        item("kenji", leads[7]),  # renews over the grant that expired unswept
        item(3, leads[4]),  # daniel by id
        item("sofia", leads[1], ContextEntityId=meeting),  # the meeting is daniel's
        item("kenji", leads[5], DurationInMinutes=10),
        item("kenji", leads[6]),
    ]


class _NeverRaised(Exception):
    pass


def run_batch(
    path: Path, deferred: bool, monkeypatch: pytest.MonkeyPatch, *, strict: bool = True
) -> tuple[list[Any], Any]:
    if deferred and strict:  # no falling back to one statement at a time: a failed write fails the test
        monkeypatch.setattr(batch_api, "DeferredWriteFailed", _NeverRaised)
    elif not deferred:
        monkeypatch.setattr(batch_api, "deferred_writes", lambda db, **_: nullcontext())
    with company(path, monkeypatch) as (core, admin, leads, opp, meeting):
        items = share_items(leads, opp, meeting)
        results = BatchAPI(core).share(load_items(json.dumps(items)), requester=admin)
        # The same items again: all renewals, refusals and the cap, over the batch's own grants.
        again = BatchAPI(core).share(load_items(json.dumps(items)), requester=admin)
        return [results, again], dump(core)
    monkeypatch.undo()


def test_a_batch_api_chunk_decided_set_based_leaves_the_rows_one_at_a_time_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deferred = run_batch(tmp_path / "deferred.db", True, monkeypatch)
    one_by_one = run_batch(tmp_path / "plain.db", False, monkeypatch)
    assert deferred[0] == one_by_one[0]
    assert deferred[1] == one_by_one[1]
    outcomes = [r["outcome"] or r["reason"] for r in deferred[0][0]]
    assert outcomes.count("granted") >= 8 and "renewed" in outcomes
    assert any("the cap is 3" in (r["reason"] or "") for r in deferred[0][0])


AUTOMATIONS = {
    "chain": """
        name = "Meeting chain"
        status = "published"
        [trigger]
        type = "new_activity_on_lead"
        activity_types = ["Meeting Scheduled"]
        [[actions]]
        type = "create_activity"
        activity_type = "Meeting Scheduled"
        owner = "sofia"
        note = "follow-up for {lead.name}"
        [[actions]]
        type = "share_lead"
        share_with = "owner_of_created_activity"
        context = "created_activity"
        duration = "2d"
        """,
    "updates": """
        name = "Stage changes"
        status = "published"
        [trigger]
        type = "lead_update"
        [[actions]]
        type = "share_lead"
        share_with = "kenji"
        duration = "3d"
        on_behalf_of = "automation"
        [[actions]]
        type = "share_lead"
        share_with = "nobody"
        on_behalf_of = "automation"
        """,
}


def run_events(path: Path, deferred: bool, monkeypatch: pytest.MonkeyPatch, *, strict: bool = True) -> Any:
    from sharetui.core.automations import queue

    if deferred and strict:  # no falling back to one statement at a time: a failed write fails the test
        monkeypatch.setattr(queue, "DeferredWriteFailed", _NeverRaised)
    elif not deferred:
        monkeypatch.setattr(queue, "deferred_writes", lambda db, **_: nullcontext())
    with company(path, monkeypatch) as (core, admin, leads, _opp, _meeting):
        core.settings.set("automation_daily_limit", 2, actor=admin)
        meeting_share = (SAMPLE_DATA / "automations" / "01_meeting_share.toml").read_text()
        for toml in (meeting_share, *AUTOMATIONS.values()):
            core.automations.add(core.automations.parse(textwrap.dedent(toml), "x.toml"), actor=admin)
        core.automations.process_pending()
        post: Callable[..., Any] = core.records.post_activity
        for lead in leads[:6]:
            post(("lead", lead), type="Meeting Scheduled", owner="daniel", actor=admin)
        for stage in ("contacted", "qualified", "converted"):  # the third trips the loop guard
            core.records.update_record(("lead", leads[2]), values={"stage": stage}, actor=admin)
        post(("lead", leads[3]), type="Meeting Scheduled", owner="kenji", actor=admin)
        post(("lead", leads[3]), type="Meeting Scheduled", owner="kenji", actor=admin)  # renews
        reports = core.automations.process_pending()
        shown = [(r.automation, r.status, r.reason) for r in reports]
        monkeypatch.undo()
        return shown, dump(core)


def test_a_batch_of_events_decided_set_based_leaves_the_rows_one_at_a_time_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deferred = run_events(tmp_path / "deferred.db", True, monkeypatch)
    one_by_one = run_events(tmp_path / "plain.db", False, monkeypatch)
    assert deferred[0] == one_by_one[0]
    for table in TABLES:
        assert deferred[1][table] == one_by_one[1][table], table
    statuses = [status for _, status, _ in deferred[0]]
    assert "succeeded" in statuses and "failed" in statuses
    assert any("loop guard" in (reason or "") for _, _, reason in deferred[0])


def test_when_the_set_based_write_fails_the_work_is_done_again_one_statement_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's first write fails: its transaction rolls back and the chunk (and the
    worker's batch) is decided again without deferring, to the same rows."""
    from sharetui.db import batching

    failing = {"batch": 1, "events": 1}
    real_write = batching.Batch._write

    def write_once_failing(self: Any, low: int, high: int) -> None:
        key = "events" if self.held.get("automation_runs") else "batch"
        if failing[key]:
            failing[key] -= 1
            raise RuntimeError("disk says no")
        real_write(self, low, high)

    monkeypatch.setattr(batching.Batch, "_write", write_once_failing)
    retried = run_batch(tmp_path / "retried.db", True, pytest.MonkeyPatch(), strict=False)
    retried_events = run_events(tmp_path / "retried-events.db", True, pytest.MonkeyPatch(), strict=False)
    monkeypatch.undo()
    assert failing == {"batch": 0, "events": 0}
    plain = run_batch(tmp_path / "plain.db", False, monkeypatch)
    plain_events = run_events(tmp_path / "plain-events.db", False, monkeypatch)
    if PG_URL:  # the attempt rolled back had drawn ids from the sequences: what each row says
        retried, plain = _without_ids(retried), _without_ids(plain)
        retried_events, plain_events = _without_ids(retried_events), _without_ids(plain_events)
    assert retried == plain
    assert retried_events == plain_events


_ID_KEYS = {"id", "request_id", "grant_id", "run_id", "automation_run_id", "event_id"}


def _without_ids(value: Any) -> Any:
    """``value`` less every id a row has or names (in JSON text too)."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in _ID_KEYS}
    if isinstance(value, (list, tuple)):
        kept = [
            _without_ids(v)
            for v in value
            if not (isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) and v[0] in _ID_KEYS)
        ]
        return tuple(kept) if isinstance(value, tuple) else kept
    if isinstance(value, str) and value.startswith("{"):
        try:
            return _without_ids(json.loads(value))
        except ValueError:
            return value
    return value

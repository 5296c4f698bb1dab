"""The core's hot paths after the benchmark work (issue 7): compiled statements
instead of Peewee queries, batches of items and events per transaction, and
grant lookups that use the user's own index. Each test pins a behaviour that
the faster path must keep: the same rows and answers as before, the same
all-or-nothing promises, and query plans that do not read every live grant.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from conftest import PG_URL
from sharetui import hookimpl
from sharetui.core.access import grant_dict
from sharetui.core.records import activity_dict, record_dict, task_dict
from sharetui.core.sharing.batch import BatchAPI
from sharetui.db.models import (
    Activity,
    AutomationRun,
    Grant,
    HistoryEvent,
    Lead,
    Opportunity,
    OutboxEvent,
    ShareRequest,
    Task,
)
from sharetui.db.sql import USER_LIVE_GRANT, Statement
from sharetui.domain.durations import MAX_DURATION, MIN_DURATION, parse_duration, shift
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType
from sharetui.domain.time import to_db
from sharetui.errors import InvalidDuration
from sharetui.testing import plugin_registered

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="SQLite query plans")


def lead_ref(lead) -> RecordRef:
    return RecordRef(EntityType.LEAD, lead.id)


def fields(row) -> dict:
    return {name: getattr(row, name) for name in type(row)._meta.fields}


def add(core, toml: str, actor):
    return core.automations.add(core.automations.parse(textwrap.dedent(toml)), actor=actor)


# -- the share path writes what the stored rows say ----------------------------------------


def test_a_share_and_its_renewal_answer_exactly_what_is_stored(bank, clock) -> None:
    """The share path builds its answer, history and event from what it wrote instead
    of reading them back: each must equal what the database holds."""
    core = bank.core
    first = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.priya, duration="2d")
    stored = Grant.get_by_id(first.grant["id"])
    assert first.outcome == "granted" and first.grant == grant_dict(stored, core.now())

    clock.advance(timedelta(hours=3))
    again = core.sharing.share(
        "lead", bank.lead.id, "daniel", requester=bank.admin, duration="1w", access="edit"
    )
    renewed = Grant.get_by_id(first.grant["id"])
    assert again.outcome == "renewed" and again.grant == grant_dict(renewed, core.now())
    assert again.grant["starts_at"] == first.grant["starts_at"]  # a renewal keeps the start
    assert renewed.access == 2 and renewed.request_id == again.request_id and renewed.warned_at is None

    request = ShareRequest.get_by_id(again.request_id)
    assert (request.status, request.outcome, request.grant_id) == ("completed", "renewed", stored.id)
    rows = list(
        HistoryEvent.select().where(HistoryEvent.request_id == again.request_id).order_by(HistoryEvent.id)
    )
    assert [r.event for r in rows] == ["renew", "renewed"]
    for row in rows:
        assert (row.user_id, row.user_name, row.grant_id) == (bank.daniel.id, "daniel", stored.id)
        assert (row.starts_at, row.expires_at) == (renewed.starts_at, renewed.expires_at)
        assert (row.requester_name, row.duration, row.access) == ("admin", "1w", 2)
    event = OutboxEvent.select().where(OutboxEvent.topic == "share.renewed").get()
    assert event.payload == {
        "grant_id": stored.id,
        "user_id": bank.daniel.id,
        "access": "edit",
        "context": None,
        "expires_at": again.grant["expires_at"],
        "source": "manual",
        "request_id": again.request_id,
    }


def test_a_request_is_returned_as_it_was_recorded(bank) -> None:
    core = bank.core
    parsed = core.sharing.parse_share("lead", bank.lead.id, " Daniel ", duration=90, access="edit")
    with core.db.atomic():
        request = core.sharing.open_share_request(parsed, requester=bank.admin, source="api", batch_id="b1")
    stored = ShareRequest.get_by_id(request.id)
    assert fields(request) == fields(stored)


def test_share_recipients_are_found_as_users_get_finds_them(bank) -> None:
    """Any case, surrounding spaces, a numeric id; unknown names and NUL fail cleanly."""
    core = bank.core
    by_case = core.sharing.share("lead", bank.lead.id, "  DANIEL ", requester=bank.admin)
    assert by_case.ok and by_case.grant["user"] == "daniel"
    by_id = core.sharing.share("lead", bank.lead.id, str(bank.sofia.id), requester=bank.admin)
    assert by_id.ok and by_id.grant["user"] == "sofia"
    unknown = core.sharing.share("lead", bank.lead.id, "nobody", requester=bank.admin)
    assert not unknown.ok and unknown.reason == "unknown user 'nobody'"


def test_context_refusals_read_the_activity_in_one_statement(bank) -> None:
    core = bank.core
    other = core.records.add_lead(name="Other", owner=bank.priya, actor=bank.admin)
    wrong_lead = core.sharing.share("lead", other.id, "daniel", requester=bank.admin, context=bank.meeting.id)
    assert wrong_lead.reason == f"activity {bank.meeting.id} is not an activity of lead {other.id}"
    wrong_owner = core.sharing.share(
        "lead", bank.lead.id, "sofia", requester=bank.admin, context=bank.meeting.id
    )
    assert wrong_owner.reason == f"activity {bank.meeting.id} owned by daniel, not by sofia"
    missing = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.admin, context=99999)
    assert missing.reason == f"activity 99999 is not an activity of lead {bank.lead.id}"


# -- the cap and the lists read the user's grants through the user's index -------------------


@sqlite_only
def test_user_grant_lookups_never_scan_every_live_grant(bank) -> None:
    """Without statistics SQLite chose the sweeper's (state, expires_at) index for
    ``state = 'active' AND expires_at > ?`` and read every live grant of the company
    on each share (the cap) and each visible page; on a million leads that was ~160 ms."""
    from sharetui.core.sharing.share import _CAP_SQL

    now = to_db(bank.core.now())
    shared_branch = Statement(
        f"SELECT id FROM leads r WHERE r.id IN (SELECT entity_id FROM grants WHERE user_id = ? "
        f"AND entity_type = ? AND {USER_LIVE_GRANT}) ORDER BY r.id LIMIT 51"
    )
    for statement, params in (
        (_CAP_SQL, (1, bank.daniel.id, "lead", now)),
        (shared_branch, (bank.daniel.id, "lead", now)),
    ):
        plan = " | ".join(
            row[-1] for row in bank.core.db.execute_sql("EXPLAIN QUERY PLAN " + statement.sql(), params)
        )
        assert "grants_state_expires_at" not in plan, plan
        assert "grants_user_id_entity_type" in plan, plan


@sqlite_only
def test_a_records_active_grants_are_read_by_the_records_index(bank) -> None:
    """``AccessService.active_grants`` (the plugin facade's ``shares.active``, which the
    built-in share action asked before every share) read every live grant of the company
    through (state, expires_at): ~100 ms a call on a million leads, ten events a second."""
    captured: list[str] = []
    original = bank.core.db.execute_sql

    def capture(sql, params=None):
        if sql.lstrip().upper().startswith("SELECT") and '"grants"' in sql:
            plan = original("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            captured.append(" | ".join(row[-1] for row in plan))
        return original(sql, params)

    bank.core.db.execute_sql = capture
    try:
        for user in (None, bank.daniel.id):
            bank.core.access.active_grants(lead_ref(bank.lead), user_id=user, now=bank.core.now())
    finally:
        del bank.core.db.execute_sql
    assert len(captured) == 2
    for plan in captured:
        assert "grants_state_expires_at" not in plan, plan


def test_the_cap_still_counts_only_live_grants(bank, clock) -> None:
    core = bank.core
    core.settings.set("share_cap_leads", 1, actor=None)
    first = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.admin, duration="1h")
    other = core.records.add_lead(name="Other", owner=bank.priya, actor=bank.admin)
    refused = core.sharing.share("lead", other.id, "daniel", requester=bank.admin)
    assert first.ok and not refused.ok and "the cap is 1" in (refused.reason or "")
    clock.advance(timedelta(hours=2))  # the first grant lapsed (unswept): it no longer counts
    assert core.sharing.share("lead", other.id, "daniel", requester=bank.admin).ok


# -- the batch API decides items in chunks, each item all or nothing ---------------------------


def _items(leads, user: str = "daniel") -> list[dict]:
    return [{"UserId": user, "Entity": 1, "EntityId": lead.id, "DurationInMinutes": 60} for lead in leads]


def test_an_item_that_raises_rolls_back_alone_and_the_items_before_it_are_kept(bank, monkeypatch) -> None:
    core = bank.core
    leads = [core.records.add_lead(name=f"L{i}", owner=bank.priya, actor=bank.admin) for i in range(4)]
    real = core.sharing.process_share

    def third_breaks(request, parsed, requester):
        if parsed.entity_id == leads[2].id:
            raise RuntimeError("disk on fire")
        return real(request, parsed, requester)

    monkeypatch.setattr(core.sharing, "process_share", third_breaks)
    with pytest.raises(RuntimeError, match="disk on fire"):
        BatchAPI(core).share(_items(leads), requester=bank.admin)
    shared = {g.entity_id for g in Grant.select()}
    assert shared == {leads[0].id, leads[1].id}
    # The broken item left nothing (not even its request); the one after it never started.
    assert {r.entity_id for r in ShareRequest.select()} == {leads[0].id, leads[1].id}
    assert core.db.transaction_depth() == 0


def test_a_crash_mid_chunk_leaves_each_item_done_or_not_started(bank, monkeypatch) -> None:
    core = bank.core
    leads = [core.records.add_lead(name=f"L{i}", owner=bank.priya, actor=bank.admin) for i in range(3)]
    real = core.sharing.process_share

    def killed(request, parsed, requester):
        if parsed.entity_id == leads[1].id:
            raise KeyboardInterrupt  # stands for kill -9: nothing after it runs
        return real(request, parsed, requester)

    monkeypatch.setattr(core.sharing, "process_share", killed)
    with pytest.raises(KeyboardInterrupt):
        BatchAPI(core).share(_items(leads), requester=bank.admin)
    processing = ShareRequest.select().where(ShareRequest.status == "processing").count()
    assert processing == 0
    done = {r.entity_id for r in ShareRequest.select()}
    assert done <= {leads[0].id} and {g.entity_id for g in Grant.select()} == done


def test_a_batch_longer_than_a_chunk_answers_every_item_in_order(bank, monkeypatch) -> None:
    core = bank.core
    monkeypatch.setattr("sharetui.core.sharing.batch.CHUNK", 5)  # three chunks, the last one short
    n = 12
    leads = [core.records.add_lead(name=f"L{i}", owner=bank.priya, actor=bank.admin) for i in range(n)]
    items = _items(leads)
    items[5]["UserId"] = "nobody"  # a refused item is an answer, not an error
    results = BatchAPI(core).share(items, requester=bank.admin)
    assert [r["index"] for r in results] == list(range(n))
    assert [r["status"] for r in results].count("failed") == 1 and results[5][
        "reason"
    ] == "unknown user 'nobody'"
    assert Grant.select().count() == n - 1


# -- durations: the fixed-length fast path agrees with calendar arithmetic ---------------------


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_fixed_durations_end_and_bound_as_calendar_arithmetic_says(monkeypatch, zone: str) -> None:
    monkeypatch.setenv("SHARETUI_TZ", zone)
    starts = [
        datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # Europe's spring-forward night
        datetime(2027, 2, 28, 23, 59, tzinfo=UTC),  # five years later spans 2028's leap day
        datetime(2097, 3, 1, 12, 0, tzinfo=UTC),  # five years later spans 2100, no leap day
    ]
    texts = [
        "1m",
        "90",
        "59m",
        "2h",
        "1d",
        "1d12h",
        "2w",
        "260w",
        "1824d",
        "1825d",
        "1826d",
        "1827d",
        "2000d",
    ]
    for start in starts:
        for text in texts:
            d = parse_duration(text)
            assert d.end_from(start) == shift(start, d.delta), (text, start)
            slow_end = shift(start, d.delta)
            slow_ok = start + MIN_DURATION <= slow_end <= shift(start, MAX_DURATION)
            try:
                d.check_bounds(start)
                fast_ok = True
            except InvalidDuration:
                fast_ok = False
            assert fast_ok == slow_ok, (text, start, zone)


# -- posting an activity and processing its event -------------------------------------------


def test_a_posted_activity_is_returned_as_stored(bank) -> None:
    core = bank.core
    act = core.records.post_activity(
        lead_ref(bank.lead),
        type=" Meeting Scheduled ",
        owner="DANIEL",
        actor=bank.priya,
        fields={"room": "B2", "n": 3},
        note="bring the deck",
    )
    stored = Activity.get_by_id(act.id)
    assert fields(act) == fields(stored)
    event = (
        OutboxEvent.select()
        .where(OutboxEvent.topic == "activity.created")
        .order_by(OutboxEvent.id.desc())
        .get()
    )
    assert event.payload == {
        "activity_id": act.id,
        "type": "Meeting Scheduled",
        "owner_id": bank.daniel.id,
        "actor_id": bank.priya.id,
    }


def test_posting_still_refuses_what_it_refused(bank) -> None:
    from sharetui.errors import NotFound, NotReadable, UsageError

    core = bank.core
    core.users.deactivate("sofia", actor=bank.admin)
    with pytest.raises(UsageError, match="activity owner sofia is deactivated"):
        core.records.post_activity(
            lead_ref(bank.lead), type="Meeting Scheduled", owner="sofia", actor=bank.admin
        )
    with pytest.raises(NotFound, match="unknown user 'ghost'"):
        core.records.post_activity(
            lead_ref(bank.lead), type="Meeting Scheduled", owner="ghost", actor=bank.admin
        )
    with pytest.raises(NotFound, match="unknown activity type 'Lunch'"):
        core.records.post_activity(lead_ref(bank.lead), type="Lunch", actor=bank.admin)
    with pytest.raises(NotReadable, match="no lead 424242 you may read"):
        core.records.post_activity(("lead", 424242), type="Meeting Scheduled", actor=bank.admin)
    by_id = core.records.post_activity(
        lead_ref(bank.lead), type="Meeting Scheduled", owner=str(bank.daniel.id), actor=bank.admin
    )
    assert by_id.owner_id == bank.daniel.id


def test_trigger_data_is_what_the_record_activity_and_task_dicts_say(bank, clock) -> None:
    """Conditions read the trigger data: built in one statement each, it must equal the
    dicts the rest of the product shows."""
    core = bank.core
    opp = core.records.add_opportunity(
        lead=bank.lead.id, name="Demir home loan", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    task = core.records.add_task(
        RecordRef(EntityType.OPPORTUNITY, opp.id),
        owner="daniel",
        subject="Call back",
        actor=bank.admin,
        due_at=clock.now() + timedelta(days=1),
    )
    clock.advance(timedelta(days=3))
    data = core.automations.trigger_data(
        "task_created_on_opportunity",
        RecordRef(EntityType.OPPORTUNITY, opp.id),
        {"activity_id": bank.meeting.id, "task_id": task.id},
    )
    now = core.now()
    for key, row in (("opportunity", Opportunity.get_by_id(opp.id)), ("lead", Lead.get_by_id(bank.lead.id))):
        want = record_dict(row)
        want["owner_id"] = row.owner_id
        want["days_since_update"] = (now - row.updated_at.replace(tzinfo=UTC)).days
        want["days_since_created"] = (now - row.created_at.replace(tzinfo=UTC)).days
        assert data[key] == want
    act = Activity.get_by_id(bank.meeting.id)
    assert data["activity"] == {**activity_dict(act), "captures_owner": True}
    assert data["task"] == task_dict(Task.get_by_id(task.id))
    assert data["owner_in_trigger"] == "daniel"


MEETING_SHARE = """
    name = "meeting owner gets the lead"
    status = "published"
    [trigger]
    type = "new_activity_on_lead"
    activity_types = ["Meeting Scheduled"]
    [[actions]]
    type = "share_lead"
    share_with = "owner_in_trigger"
    duration = "14d"
    access = "edit"
"""


def test_events_in_one_batch_each_commit_or_roll_back_alone(bank, monkeypatch) -> None:
    """Events are decided many per transaction: one that raises rolls back alone, is
    marked failed with its error kept (team-mode attack T4: one undecidable event must
    not stop the queue for everyone), and the events around it commit."""
    from sharetui.db.models import PluginError

    core = bank.core
    add(core, MEETING_SHARE, bank.admin)
    core.automations.process_pending()
    leads = [core.records.add_lead(name=f"L{i}", owner=bank.priya, actor=bank.admin) for i in range(3)]
    core.automations.process_pending()
    acts = [
        core.records.post_activity(lead_ref(lead), type="Meeting Scheduled", owner="daniel", actor=bank.admin)
        for lead in leads
    ]
    real = core.automations.process_event

    def second_breaks(event):
        if event.payload.get("activity_id") == acts[1].id:
            raise RuntimeError("plugin bug")
        return real(event)

    monkeypatch.setattr(core.automations, "process_event", second_breaks)
    core.automations.process_pending()
    shared = {g.entity_id for g in Grant.select().where(Grant.source == "automation")}
    assert shared == {leads[0].id, leads[2].id}
    assert not OutboxEvent.select().where(OutboxEvent.processed_at.is_null()).exists()
    assert any("plugin bug" in e.error for e in PluginError.select())
    monkeypatch.setattr(core.automations, "process_event", real)
    assert core.automations.process_pending() == []  # the failed event is not decided again
    assert AutomationRun.select().count() == 2


class PausesTheOther:
    """A test action that pauses the automation named in its config."""

    def __init__(self, core, admin) -> None:
        self.core, self.admin = core, admin

    @hookimpl
    def sharetui_register_actions(self, register) -> None:
        from sharetui.sdk import ConfigField, Outcome

        def run(ctx, config):
            self.core.automations.set_status(config["name"], "paused", actor=self.admin)
            return Outcome.succeeded(f"paused {config['name']}")

        register(
            "pause_automation", "Pause an automation", run, config={"name": ConfigField(str, required=True)}
        )


def test_an_automation_paused_by_an_earlier_event_in_the_batch_does_not_run_on_later_ones(bank) -> None:
    core = bank.core
    with plugin_registered(core, PausesTheOther(core, bank.admin), name="pauser"):
        add(
            core,
            """
            name = "pauser"
            status = "published"
            [trigger]
            type = "new_lead"
            [[actions]]
            type = "pause_automation"
            name = "sharer"
            """,
            bank.admin,
        )
        sharer = add(
            core,
            """
            name = "sharer"
            status = "published"
            [trigger]
            type = "new_lead"
            [[actions]]
            type = "share_lead"
            share_with = "daniel"
            """,
            bank.admin,
        )
        core.automations.process_pending()
        first = core.records.add_lead(name="First", owner=bank.priya, actor=bank.admin)
        second = core.records.add_lead(name="Second", owner=bank.priya, actor=bank.admin)
        core.automations.process_pending()  # both events in one batch
    ran_on = [r["record"] for r in core.automations.runs(sharer.id, actor=None)]
    # For the first event both were candidates before the pause (as one event at a time did);
    # for the second the pause is seen.
    assert ran_on == [f"lead {first.id}"]
    assert second.id not in {g.entity_id for g in Grant.select()}


# -- the sweeper visits each batch's grants only ------------------------------------------------


def test_a_sweep_in_small_batches_expires_each_due_grant_once(bank, clock) -> None:
    """Each batch's grants are picked once (a temporary table on SQLite, locked ids on
    PostgreSQL) and every statement of the batch works on exactly those."""
    core = bank.core
    leads = [core.records.add_lead(name=f"L{i}", owner=bank.priya, actor=bank.admin) for i in range(10)]
    for i, lead in enumerate(leads):
        core.sharing.share("lead", lead.id, "daniel", requester=bank.admin, duration=f"{i + 1}h")
    keeps = core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.admin, duration="3d")
    clock.advance(timedelta(hours=10, minutes=30))
    result = core.expiry.sweep(batch_size=3)
    assert result.expired == 10
    expired = list(Grant.select().where(Grant.state == "expired"))
    assert {g.entity_id for g in expired} == {lead.id for lead in leads}
    assert all(g.ended_at == g.expires_at and g.ended_reason == "expired" for g in expired)
    rows = list(HistoryEvent.select().where(HistoryEvent.event == "expired"))
    assert sorted(r.grant_id for r in rows) == sorted(g.id for g in expired)
    events = list(OutboxEvent.select().where(OutboxEvent.topic == "share.expired"))
    assert sorted(e.payload["grant_id"] for e in events) == sorted(g.id for g in expired)
    assert Grant.get_by_id(keeps.grant["id"]).state == "active"
    assert core.expiry.sweep(batch_size=3).expired == 0


def test_settings_are_read_once_per_transaction_and_fresh_in_the_next(core) -> None:
    """Shares and runs read the cap and the loop-guard limit once per transaction."""
    from sharetui.db.models import Setting

    with core.db.atomic():
        assert core.settings.get("share_cap_leads") == 2000
        core.settings.set("share_cap_leads", 5, actor=None)  # a change made here is seen here
        assert core.settings.get("share_cap_leads") == 5
    # Changed behind the service's back (another process): the next transaction sees it.
    Setting.update(value=7).where(Setting.key == "share_cap_leads").execute()
    with core.db.atomic():
        assert core.settings.get("share_cap_leads") == 7
    assert core.settings.get("share_cap_leads") == 7


@sqlite_only
@pytest.mark.parametrize(
    ("sort", "index"), [("id", "leads_owner_id_id"), ("name", "leads_owner_id_name_nocase_id")]
)
def test_a_sales_users_page_merges_keys_from_covering_indexes(bank, sort: str, index: str) -> None:
    """Each branch of a sales user's page reads only its owner's index entries (the
    sort key); the page's rows are fetched once, by id. Reading whole rows in every
    branch made a first page ~20 ms on a million leads."""
    from sharetui.core.access.listing import _merged_page_sql, list_order

    select = "r.id, r.name, r.owner_id"
    order = list_order(EntityType.LEAD, sort)
    sql, params = _merged_page_sql(
        bank.priya.id, EntityType.LEAD, select, "", [], order, 51, to_db(bank.core.now())
    )
    plan = " | ".join(row[-1] for row in bank.core.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
    assert f"COVERING INDEX {index}" in plan, plan
    rows = bank.core.db.execute_sql(sql, params).fetchall()
    assert [r[0] for r in rows] == [bank.lead.id]


def test_pages_in_both_sorts_walk_the_visible_set_exactly_once(bank) -> None:
    core = bank.core
    for i in range(30):
        owner = (bank.priya, bank.tomas, bank.daniel)[i % 3]
        core.records.add_lead(name=f"Lead {i % 7} {i}", owner=owner, actor=bank.admin)
    for i in range(5):
        lead = core.records.add_lead(name=f"Shared {i}", owner=bank.daniel, actor=bank.admin)
        core.sharing.share("lead", lead.id, "leila", requester=bank.admin)
    expected = {r.id for r in Lead.select() if core.access.can(bank.leila.id, lead_ref(r), "read")}
    for sort in ("id", "-id", "name", "-name"):
        seen: list[int] = []
        after = None
        while True:
            page = core.access.visible(bank.leila.id, "lead", after=after, limit=4, sort=sort)
            seen += [row.id for row in page.rows]
            after = page.next_cursor
            if after is None:
                break
        assert len(seen) == len(set(seen)) and set(seen) == expected, sort
        names = [Lead.get_by_id(i).name for i in seen]
        if sort.endswith("name"):
            assert names == sorted(names, reverse=sort.startswith("-"))
        else:
            assert seen == sorted(seen, reverse=sort.startswith("-"))

"""Who may read or edit what (DESIGN .1, .3), through ``core.access``.

The bank (conftest): admin, ruth (sales_manager), nadia (marketing); in
Pre-Sales priya (manage), tomas (modify), leila (view), kenji (own); in Sales
daniel (manage) and sofia (modify). ``bank.lead`` belongs to priya and
``bank.meeting`` on it belongs to daniel.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sharetui.db.models import Grant, HistoryEvent, Lead
from sharetui.domain.roles import Access, GroupLevel
from sharetui.errors import PermissionDenied

# -- helpers -------------------------------------------------------------------


def share(bank, lead, user, *, access: str = "read", duration: str = "14d", context=None):
    result = bank.core.sharing.share(
        "lead", lead.id, user, requester=bank.admin, access=access, duration=duration, context=context
    )
    assert result.ok, result.reason
    return result


def lead_of(bank, owner, name: str, **values):
    return bank.core.records.add_lead(name=name, owner=owner, actor=bank.admin, **values)


def visible_ids(core, user, **kwargs) -> list[int]:
    return [row.id for row in core.access.visible(user, "lead", limit=1000, **kwargs).rows]


# -- roles and ownership ---------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "level"),
    [("admin", Access.EDIT), ("ruth", Access.EDIT), ("nadia", Access.READ), ("daniel", Access.NONE)],
)
def test_each_role_has_its_default_reach_on_a_lead_it_does_not_own(bank, who, level) -> None:
    access = bank.core.access
    assert access.level(who, bank.lead) == level
    assert access.can(who, bank.lead, "read") is (level >= Access.READ)
    assert access.can(who, bank.lead, "edit") is (level >= Access.EDIT)


def test_role_reach_covers_every_record_not_just_one(bank) -> None:
    other = lead_of(bank, bank.sofia, "Ewa Nowak")
    access = bank.core.access
    assert access.can("nadia", other, "read") and not access.can("nadia", other, "edit")
    assert access.can("ruth", other, "edit")
    reasons = access.explain("nadia", other, actor=None).reasons
    assert reasons == ["role marketing: read on all records"]


def test_the_owner_edits_their_own_record(bank) -> None:
    access = bank.core.access
    assert access.level(bank.priya, bank.lead) == Access.EDIT
    assert access.can(bank.priya, bank.lead, "edit")
    assert "owner of lead" in access.explain("priya", bank.lead, actor=None).reasons[0]


def test_a_sales_user_with_no_link_to_the_record_has_nothing(bank) -> None:
    decision = bank.core.access.explain("daniel", bank.lead, actor=None)
    assert decision.level == Access.NONE
    assert not decision.allows(Access.READ)
    assert decision.reasons == ["no role, ownership, group or active share gives access"]


# -- sales groups ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "level"),
    [
        ("tomas", Access.EDIT),  # modify
        ("leila", Access.READ),  # view
        ("kenji", Access.NONE),  # own: own records only
    ],
)
def test_each_group_level_reaches_a_fellow_members_record(bank, member, level) -> None:
    access = bank.core.access
    assert access.level(member, bank.lead) == level
    assert access.can(member, bank.lead, "read") is (level >= Access.READ)
    assert access.can(member, bank.lead, "edit") is (level >= Access.EDIT)


def test_manage_level_edits_members_records_and_the_reason_names_the_group(bank) -> None:
    toms_lead = lead_of(bank, bank.tomas, "Lukas Becker")
    access = bank.core.access
    assert access.level(bank.priya, toms_lead) == Access.EDIT
    assert access.explain("priya", toms_lead, actor=None).reasons == [
        "sales group Pre-Sales (manage) with owner tomas: edit"
    ]
    # view reads tomas's lead too, and an 'own' member's records are readable by others
    kenjis_lead = lead_of(bank, bank.kenji, "Kwame Asante")
    assert access.level(bank.leila, toms_lead) == Access.READ
    assert access.level(bank.tomas, kenjis_lead) == Access.EDIT
    assert access.level(bank.leila, kenjis_lead) == Access.READ


def test_group_access_never_crosses_groups(bank) -> None:
    core = bank.core
    daniels_lead = lead_of(bank, bank.daniel, "Yusuf Demir")
    access = core.access
    # Managers of one group reach nothing in the other.
    assert access.level(bank.daniel, bank.lead) == Access.NONE
    assert access.level(bank.priya, daniels_lead) == Access.NONE
    assert access.level(bank.tomas, daniels_lead) == Access.NONE
    # Someone in both groups gets each group's level only for that group's records.
    omar = core.users.add(
        "omar", role="sales", groups={"Pre-Sales": "view", "Sales": "own"}, actor=bank.admin
    )
    assert access.level(omar, bank.lead) == Access.READ
    assert access.level(omar, daniels_lead) == Access.NONE
    assert set(visible_ids(core, omar)) == {bank.lead.id}


def test_leaving_a_group_ends_its_access_at_once(bank) -> None:
    core = bank.core
    assert core.access.can(bank.leila, bank.lead, "read")
    core.users.leave("leila", "Pre-Sales", actor=bank.manager)
    assert not core.access.can(bank.leila, bank.lead, "read")


def test_a_groups_manage_level_edits_records_but_never_changes_membership(bank) -> None:
    """Regression (DESIGN §9): priya, at manage level in Pre-Sales, put daniel into her
    group with `users join` and so gained edit on his leads, never expiring and never in
    the share history. Only admins and sales managers change membership."""
    core = bank.core
    daniels = core.records.add_lead(name="Daniel's own", owner="daniel", actor=bank.admin)
    for change in (
        lambda: core.users.join("daniel", "Pre-Sales", "own", actor=bank.priya),
        lambda: core.users.join("priya", "Sales", "manage", actor=bank.priya),
        lambda: core.users.leave("leila", "Pre-Sales", actor=bank.priya),
        lambda: core.users.join("kenji", "Pre-Sales", "manage", actor=bank.marketing),
    ):
        with pytest.raises(PermissionDenied):
            change()
    assert not core.access.can(bank.priya, daniels, "edit")
    assert dict(core.users.groups_of(bank.daniel)) == {"Sales": GroupLevel.MANAGE}
    core.users.join("daniel", "Pre-Sales", "own", actor=bank.manager)  # a sales manager may
    assert dict(core.users.groups_of(bank.daniel))["Pre-Sales"] is GroupLevel.OWN


# -- shares --------------------------------------------------------------------------


def test_a_read_share_allows_reading_but_not_editing(bank) -> None:
    access = bank.core.access
    assert not access.can(bank.daniel, bank.lead, "read")
    share(bank, bank.lead, "daniel", access="read")
    assert access.can(bank.daniel, bank.lead, "read")
    assert not access.can(bank.daniel, bank.lead, "edit")
    assert access.level(bank.daniel, bank.lead) == Access.READ


def test_an_edit_share_allows_editing(bank) -> None:
    access = bank.core.access
    share(bank, bank.lead, "daniel", access="edit")
    assert access.can(bank.daniel, bank.lead, "edit")
    assert access.level(bank.daniel, bank.lead) == Access.EDIT
    # ... and the record service honours it
    bank.core.records.update_record(bank.lead, actor=bank.daniel, values={"stage": "qualified"})
    assert Lead.get_by_id(bank.lead.id).stage == "qualified"


def test_a_share_raises_a_group_reader_to_edit_and_both_reasons_show(bank) -> None:
    access = bank.core.access
    share(bank, bank.lead, "leila", access="edit", duration="3d")
    decision = access.explain("leila", bank.lead, actor=None)
    assert decision.level == Access.EDIT
    assert decision.reasons[0] == "sales group Pre-Sales (view) with owner priya: read"
    assert decision.reasons[1].startswith("shared edit until 2026-03-05T09:00:00Z (grant ")
    assert len(decision.grants) == 1


def test_access_ends_at_expiry_without_any_sweep(bank, clock) -> None:
    """Expiry is checked at read time: the sweeper never runs in this test."""
    core = bank.core
    grant_id = share(bank, bank.lead, "daniel", access="edit", duration="3d").grant["id"]
    clock.advance(timedelta(days=3) - timedelta(minutes=1))
    assert core.access.can(bank.daniel, bank.lead, "edit")
    assert bank.lead.id in visible_ids(core, bank.daniel)

    clock.advance(timedelta(minutes=2))  # one minute past expiry
    assert not core.access.can(bank.daniel, bank.lead, "read")
    assert core.access.level(bank.daniel, bank.lead) == Access.NONE
    decision = core.access.explain("daniel", bank.lead, actor=None)
    assert decision.grants == []
    assert bank.lead.id not in visible_ids(core, bank.daniel)
    # Nothing swept: the grant row is still 'active', yet gives nothing.
    assert Grant.get_by_id(grant_id).state == "active"
    assert not HistoryEvent.select().where(HistoryEvent.event == "expired").exists()


def test_a_grant_expiring_exactly_now_gives_nothing(bank, clock) -> None:
    core = bank.core
    result = share(bank, bank.lead, "daniel", duration="2h")
    clock.advance(timedelta(hours=2))
    assert result.grant["expires_at"] == clock.now().isoformat().replace("+00:00", "Z")
    assert not core.access.can(bank.daniel, bank.lead, "read")
    assert core.access.level(bank.daniel, bank.lead) == Access.NONE
    assert core.access.active_grants(bank.lead) == []
    assert visible_ids(core, bank.daniel) == []


def test_after_a_share_expires_the_group_level_remains(bank, clock) -> None:
    share(bank, bank.lead, "leila", access="edit", duration="1d")
    assert bank.core.access.level(bank.leila, bank.lead) == Access.EDIT
    clock.advance(timedelta(days=1))
    assert bank.core.access.level(bank.leila, bank.lead) == Access.READ


# -- deactivated users ------------------------------------------------------------------


def test_a_deactivated_user_has_nothing_and_loses_their_shares(bank) -> None:
    core = bank.core
    share(bank, bank.lead, "daniel", access="edit")
    own = lead_of(bank, bank.daniel, "Jonas Weber")
    assert core.access.can(bank.daniel, own, "edit")

    ended = core.users.deactivate("daniel", actor=bank.admin)

    assert ended == 1
    assert not core.access.can(bank.daniel, bank.lead, "read")
    assert not core.access.can(bank.daniel, own, "read")  # not even their own record
    decision = core.access.explain("daniel", own, actor=None)
    assert decision.level == Access.NONE
    assert decision.denials == ["daniel is deactivated"]
    page = core.access.visible("daniel", "lead")
    assert page.rows == [] and page.next_cursor is None
    grant = Grant.get(Grant.user == bank.daniel.id)
    assert grant.state == "revoked"
    assert grant.ended_reason == "user daniel deactivated"
    revoked = HistoryEvent.get((HistoryEvent.grant_id == grant.id) & (HistoryEvent.event == "revoked"))
    assert revoked.reason == "user daniel deactivated"
    # Reactivating does not bring the share back.
    core.users.activate("daniel", actor=bank.admin)
    assert core.access.can(bank.daniel, own, "edit")
    assert not core.access.can(bank.daniel, bank.lead, "read")


@pytest.mark.parametrize("who", ["ruth", "nadia", "tomas"])
def test_deactivation_removes_role_and_group_access_too(bank, who) -> None:
    core = bank.core
    assert core.access.can(who, bank.lead, "read")
    core.users.deactivate(who, actor=bank.admin)
    assert core.access.level(who, bank.lead) == Access.NONE
    assert core.access.visible(who, "lead").rows == []


def test_deactivation_does_not_relabel_an_already_expired_share_as_revoked(bank, clock) -> None:
    core = bank.core
    expired = share(bank, bank.lead, "daniel", duration="1d").grant["id"]
    clock.advance(timedelta(days=2))  # the share has run out; no sweep yet
    assert core.users.deactivate("daniel", actor=bank.admin) == 0
    events = [e.event for e in HistoryEvent.select().where(HistoryEvent.grant_id == expired)]
    assert "revoked" not in events


# -- visible(): the list a user sees ---------------------------------------------------------


def test_visible_lists_exactly_own_group_and_active_shares_with_how_each_is_reached(bank, clock) -> None:
    core = bank.core
    own = lead_of(bank, bank.daniel, "Jonas Weber")
    sofias = lead_of(bank, bank.sofia, "Ewa Nowak")
    shared = lead_of(bank, bank.priya, "Aisling Byrne")
    lapsed = lead_of(bank, bank.priya, "Niamh Kelly")
    revoked = lead_of(bank, bank.tomas, "Mateo Garcia")
    lead_of(bank, bank.kenji, "Camille Dubois")  # not reachable at all
    share(bank, shared, "daniel", access="read", duration="14d")
    share(bank, lapsed, "daniel", duration="1h")
    share(bank, revoked, "daniel", duration="14d")
    core.sharing.revoke("lead", revoked.id, "daniel", requester=bank.admin)
    clock.advance(timedelta(hours=1))  # 'lapsed' has expired, unswept

    page = core.access.visible("daniel", "lead")
    reach = {row.id: (row.reach, row.level) for row in page.rows}
    assert reach == {
        own.id: ("own", Access.EDIT),
        sofias.id: ("group (edit)", Access.EDIT),
        shared.id: ("shared read until 2026-03-16 09:00 UTC", Access.READ),
    }
    assert page.next_cursor is None
    # visible() agrees with can() for every lead
    for lead in Lead.select():
        assert (lead.id in reach) is core.access.can(bank.daniel, lead, "read"), lead.name


def test_reach_text_for_group_readers_roles_and_edit_shares(bank) -> None:
    core = bank.core
    rows = {r.id: r.reach for r in core.access.visible("leila", "lead").rows}
    assert rows == {bank.lead.id: "group (read)"}
    share(bank, bank.lead, "leila", access="edit", duration="2d")
    rows = {r.id: r.reach for r in core.access.visible("leila", "lead").rows}
    assert rows == {bank.lead.id: "shared edit until 2026-03-04 09:00 UTC"}
    assert [r.reach for r in core.access.visible("nadia", "lead").rows] == ["role (read)"]
    assert [r.reach for r in core.access.visible("ruth", "lead").rows] == ["role (edit)"]
    # Nobody in kenji's reach: 'own' members do not see their group's records.
    assert core.access.visible("kenji", "lead").rows == []


def test_reach_names_the_expiry_of_the_share_that_gives_the_level(bank) -> None:
    core = bank.core
    meeting2 = core.records.post_activity(
        ("lead", bank.lead.id), type="Loan Evaluation", owner=bank.daniel, actor=bank.admin
    )
    share(bank, bank.lead, "daniel", access="read", duration="30d", context=bank.meeting.id)
    share(bank, bank.lead, "daniel", access="edit", duration="7d", context=meeting2.id)
    (row,) = core.access.visible("daniel", "lead").rows
    # Edit access ends on 9 March, not on 1 April.
    assert row.reach == "shared edit until 2026-03-09 09:00 UTC"


NAMES = [
    "Delta Foods",
    "Alpha Bakery",
    "Echo Dental",
    "Bravo Motors",
    "Delta Foods",
    "Charlie Cafe",
    "Foxtrot Farms",
    "Golf Garage",
    "Hotel Lina",
    "India Imports",
    "Juliet Joinery",
    "Kilo Kitchens",
]


@pytest.fixture
def many(bank):
    """Twelve Pre-Sales leads (two share a name) visible to leila through her group."""
    owners = [bank.priya, bank.tomas, bank.kenji]
    return [lead_of(bank, owners[i % 3], name) for i, name in enumerate(NAMES)] + [bank.lead]


def walk(core, user, *, limit: int, sort: str, search: str | None = None):
    pages, cursor = [], None
    while True:
        page = core.access.visible(user, "lead", after=cursor, limit=limit, sort=sort, search=search)
        assert len(page.rows) <= limit
        pages.append([r.id for r in page.rows])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 50, "paging does not terminate"


@pytest.mark.parametrize("sort", ["id", "-id", "name", "-name"])
@pytest.mark.parametrize("user", ["leila", "admin"])
def test_keyset_pages_cover_everything_once_in_order(bank, many, sort, user) -> None:
    core = bank.core
    pages = walk(core, user, limit=4, sort=sort)
    flat = [i for p in pages for i in p]
    assert len(pages) == 4  # 13 rows in pages of 4: 4 + 4 + 4 + 1
    assert len(flat) == len(set(flat)) == 13  # no duplicates, no gaps
    assert set(flat) == {lead.id for lead in many}
    # Same order as one big page of the same sort.
    assert flat == [r.id for r in core.access.visible(user, "lead", limit=1000, sort=sort).rows]
    by_id = {lead.id: lead for lead in Lead.select()}
    if sort in ("id", "-id"):
        assert flat == sorted(flat, reverse=sort == "-id")
    else:
        keys = [(by_id[i].name, i) for i in flat]
        assert keys == sorted(keys, reverse=sort == "-name")


def test_the_last_full_page_has_no_next_cursor(bank, many) -> None:
    page = bank.core.access.visible("leila", "lead", limit=13)
    assert len(page.rows) == 13 and page.next_cursor is None
    page = bank.core.access.visible("leila", "lead", limit=12)
    assert len(page.rows) == 12 and page.next_cursor is not None


def test_search_filters_by_name_company_or_email_and_pages_too(bank, many) -> None:
    core = bank.core
    rows = core.access.visible("leila", "lead", search="DEMIR").rows
    assert [r.id for r in rows] == [bank.lead.id]  # name "Mira Demir", case-insensitive
    rows = core.access.visible("leila", "lead", search="textiles").rows
    assert [r.id for r in rows] == [bank.lead.id]  # company "Demir Textiles"
    delta = [lead.id for lead in many if lead.name == "Delta Foods"]
    pages = walk(core, "leila", limit=1, sort="name", search="delta")
    assert pages == [[delta[0]], [delta[1]]]
    assert core.access.visible("leila", "lead", search="nothing like it").rows == []
    # Search never widens what a user can see.
    assert core.access.visible("kenji", "lead", search="delta").rows == []


def test_a_share_shows_up_in_the_list_and_leaves_it_when_revoked(bank) -> None:
    core = bank.core
    assert visible_ids(core, "daniel") == []
    share(bank, bank.lead, "daniel")
    assert visible_ids(core, "daniel") == [bank.lead.id]
    core.sharing.revoke("lead", bank.lead.id, "daniel", requester=bank.priya)
    assert visible_ids(core, "daniel") == []


def test_posting_an_activity_asks_the_rule_set_once_and_still_refuses_as_before(bank, monkeypatch) -> None:
    """``require_edit`` decides read and edit from one decision: a reader is refused with
    PermissionDenied, someone who may not read with NotReadable, an editor posts."""
    from sharetui.errors import NotReadable

    core = bank.core
    calls: list[int] = []
    decide = core.access.decide

    def counting(user_id, record, now=None):
        calls.append(user_id)
        return decide(user_id, record, now)

    monkeypatch.setattr(core.access, "decide", counting)
    core.records.post_activity(
        ("lead", bank.lead.id), type="Loan Evaluation", owner=bank.kenji, actor=bank.priya
    )
    assert calls == [bank.priya.id]
    with pytest.raises(PermissionDenied, match="may not edit"):
        core.records.post_activity(("lead", bank.lead.id), type="Email Sent", actor=bank.leila)  # view level
    with pytest.raises(NotReadable, match="you may read"):
        core.records.post_activity(("lead", bank.lead.id), type="Email Sent", actor=bank.sofia)  # other group
    with pytest.raises(NotReadable, match="you may read"):
        core.records.post_activity(("lead", 99_999), type="Email Sent", actor=bank.admin)

"""Lists sort by any sortable column (``sharetui.domain.sorts``), case-insensitively,
and keyset pages walk each sort exactly once, on both stores.

The bank (conftest): leila (sales, Pre-Sales at view level) sees her own leads, those of
Pre-Sales' priya, kenji and tomas, and what is shared with her while the share lasts;
daniel's and sofia's (Sales) she sees only through a live share.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sharetui.db.connection import is_sqlite
from sharetui.db.models import Lead, Opportunity, SavedView, User
from sharetui.domain.roles import EntityType
from sharetui.domain.sorts import SORT_COLUMNS, TEXT_SORTS, sort_orders
from sharetui.errors import UsageError

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Names that differ only in case, in punctuation, or not at all (ties go by id), and
# two with a non-ASCII capital, which neither store folds (ASCII letters only).
LEADS = [
    # name, company, stage, source, owner
    ("zeta", "Acme", "new", "web", "priya"),
    ("Zulu", "acme", "Qualified", "Web", "kenji"),
    ("alpha", "", "qualified", "", "tomas"),
    ("Alpha", "Bravo Ltd", "NEW", "referral", "leila"),
    ("ALPHA", "bravo ltd", "won", "Referral", "priya"),
    ("beta-2", "_under", "contacted", "event", "kenji"),
    ("beta_1", "Under", "Contacted", "EVENT", "daniel"),  # shared with leila
    ("Beta 3", "charlie", "new", "web", "sofia"),  # shared with leila, expired
    ("Élodie", "Ünal", "new", "web", "tomas"),
    ("élodie", "ünal", "new", "web", "daniel"),  # not visible to leila
    ("mike", "Acme", "won", "web", "sofia"),  # not visible to leila
    ("Mike", "acme", "won", "", "leila"),
]
OPPS = [
    # name, type, stage, amount, owner
    ("Home loan", "Home Loan", "prospecting", 250000.0, "priya"),
    ("home Loan 2", "home loan", "Won", 250000.0, "kenji"),
    ("Car", "auto", "lost", 0.0, "leila"),
    ("car", "Auto", "won", 1200.5, "daniel"),  # shared with leila
    ("Boat", "marine", "Proposal", 99.99, "sofia"),  # not visible to leila
    ("boat", "Marine", "proposal", 1200.5, "tomas"),
]


@pytest.fixture
def world(bank):
    """The leads and opportunities above, with updated_at out of id order (and tied),
    a live share of daniel's records with leila and an expired one of sofia's."""
    core = bank.core
    admin = bank.admin
    leads = []
    for name, company, stage, source, owner in LEADS:
        lead = core.records.add_lead(name=name, company=company, source=source, owner=owner, actor=admin)
        # Stored as an import may store it: a face offers lower-case stages only.
        Lead.update(stage=stage).where(Lead.id == lead.id).execute()
        leads.append(lead.id)
    opps = []
    for name, kind, stage, amount, owner in OPPS:
        opp = core.records.add_opportunity(
            lead=bank.lead.id, name=name, type=kind, stage=stage, amount=amount, owner=owner, actor=admin
        )
        opps.append(opp.id)
    base = core.db_now()
    for model, ids in ((Lead, leads), (Opportunity, opps)):
        for i, ident in enumerate(ids):
            # Later ids changed earlier, every third record at the same moment.
            when = base - timedelta(hours=len(ids) - i if i % 3 else 0)
            model.update(updated_at=when).where(model.id == ident).execute()
    by_name = dict(zip([row[0] for row in LEADS], leads, strict=True))
    opp_by_name = dict(zip([row[0] for row in OPPS], opps, strict=True))
    live = core.sharing.share("lead", by_name["beta_1"], "leila", requester=admin, duration="30d")
    gone = core.sharing.share("lead", by_name["Beta 3"], "leila", requester=admin, duration="1d")
    opp_live = core.sharing.share("opp", opp_by_name["car"], "leila", requester=admin, duration="30d")
    assert live.ok and gone.ok and opp_live.ok
    core.clock.advance(timedelta(days=2))  # the one-day share has expired (decided at read time)
    return bank


def _key(entity: EntityType, column: str, row: Any, usernames: dict[int, str]) -> Any:
    if column == "id":
        return ()
    if column == "owner":
        return usernames[row.owner_id]
    if column == "updated":
        return row.updated_at
    value = getattr(row, column)
    return value.translate(_ASCII_LOWER) if column in TEXT_SORTS else value


def expected(core, user: str, entity: EntityType, sort: str) -> list[int]:
    """The visible records in ``sort`` order, worked out in Python: ``sorted`` on (the
    value with ASCII letters lower-cased, id), reversed for ``-column``."""
    model = Lead if entity is EntityType.LEAD else Opportunity
    usernames = {u.id: u.username for u in User.select()}
    column = sort.lstrip("-")
    rows = [r for r in model.select() if core.access.can(user, (entity.value, r.id), "read")]
    rows.sort(key=lambda r: (_key(entity, column, r, usernames), r.id), reverse=sort.startswith("-"))
    return [r.id for r in rows]


def walk(core, user: str, entity: EntityType, sort: str, limit: int) -> list[list[int]]:
    pages: list[list[int]] = []
    after = None
    while True:
        page = core.access.visible(user, entity, after=after, limit=limit, sort=sort)
        assert len(page.rows) <= limit
        pages.append([row.id for row in page.rows])
        after = page.next_cursor
        if after is None:
            return pages
        assert len(pages) < 100, "paging does not end"


CASES = [(entity, sort) for entity in EntityType for sort in sort_orders(entity)]


@pytest.mark.parametrize(("entity", "sort"), CASES, ids=[f"{e.short}:{s}" for e, s in CASES])
def test_every_sort_pages_the_visible_records_once_in_order(world, entity: EntityType, sort: str) -> None:
    """For an admin (every record) and for leila (own, group and a live share, not the
    expired one), pages of 2 and of 5 follow one another without a gap or a repeat, in
    the order Python's ``sorted`` gives, and agree with one big page."""
    core = world.core
    for user in ("admin", "leila"):
        want = expected(core, user, entity, sort)
        assert want, (user, entity)
        whole = [row.id for row in core.access.visible(user, entity, limit=1000, sort=sort).rows]
        assert whole == want, (user, sort)
        for limit in (2, 5):
            pages = walk(core, user, entity, sort, limit)
            flat = [i for page in pages for i in page]
            assert flat == want, (user, sort, limit)
            assert all(len(page) == limit for page in pages[:-1])


def test_leila_sees_her_own_group_and_live_shares_and_not_the_expired_one(world) -> None:
    core = world.core
    names = {row.values["name"] for row in core.access.visible("leila", "lead", limit=1000, sort="name").rows}
    assert {"Mike", "alpha", "beta_1"} <= names  # her own, tomas's (group), daniel's (live share)
    assert not names & {"Beta 3", "mike", "élodie"}  # the expired share, and sofia's and daniel's others


def test_text_sorts_ignore_case_and_break_ties_by_id(world) -> None:
    """ "zeta" comes before "Zulu"; "alpha", "Alpha" and "ALPHA" are one name to the sort,
    in id order (reversed with the sort); "É" is not "é" (ASCII letters are folded,
    on both stores)."""
    core = world.core
    rows = core.access.visible("admin", "lead", limit=1000, sort="name").rows
    names = [row.values["name"] for row in rows]
    assert names.index("zeta") < names.index("Zulu")
    assert names[:4] == ["alpha", "Alpha", "ALPHA", "Beta 3"]
    assert names[-2:] == ["Élodie", "élodie"]
    down = [row.values["name"] for row in core.access.visible("admin", "lead", limit=1000, sort="-name").rows]
    assert down == names[::-1]


def test_the_owner_sort_goes_by_username(world) -> None:
    core = world.core
    rows = core.access.visible("leila", "opp", limit=1000, sort="owner").rows
    usernames = {u.id: u.username for u in User.select()}
    owners = [usernames[row.values["owner_id"]] for row in rows]
    assert owners == sorted(owners) and owners[0] == "daniel"  # through the live share


@pytest.mark.parametrize("sort", ["owner", "email", "-", "--name", "Name", "amount", "", None])
def test_a_sort_the_list_does_not_have_is_refused_naming_the_ones_it_has(world, sort) -> None:
    """Leads have no amount; opportunities have no company or source."""
    core = world.core
    if sort == "owner":  # a valid one, for contrast
        assert core.access.visible("leila", "lead", sort=sort).rows
        return
    with pytest.raises(UsageError, match="unknown sort") as caught:
        core.access.visible("leila", "lead", sort=sort)
    assert "id, name, company, stage, source, owner, updated" in str(caught.value)
    with pytest.raises(UsageError, match="an opportunity list sorts by id, name, type, stage, amount"):
        core.access.visible("admin", "opp", sort="company")


def test_a_cursor_from_another_sort_goes_on_from_its_record_in_the_new_sort(world) -> None:
    """A cursor names only the last row's id: in another sort it goes on after that
    row's place in the new order (nothing breaks, nothing is read twice in one sort)."""
    core = world.core
    first = core.access.visible("admin", "lead", limit=3, sort="company")
    rest = core.access.visible("admin", "lead", after=first.next_cursor, limit=1000, sort="company")
    want = expected(core, "admin", EntityType.LEAD, "company")
    assert [r.id for r in first.rows + rest.rows] == want


def test_saved_views_keep_any_sort_and_page_in_it(world) -> None:
    """A view with conditions reads the list in batches: in its sort too."""
    core = world.core
    view = core.saved_views.add(
        "by company",
        "lead",
        actor=world.leila,
        conditions=[{"field": "lead.stage", "op": "!=", "value": "won"}],
        sort="-company",
    )
    assert view.sort == "-company"
    kept = [
        i for i in expected(core, "leila", EntityType.LEAD, "-company") if Lead.get_by_id(i).stage != "won"
    ]
    ids: list[int] = []
    after = None
    while True:
        page = core.saved_views.page(view, actor=world.leila, after=after, limit=2)
        ids += [row.id for row in page.rows]
        after = page.next_cursor
        if after is None:
            break
    assert ids == kept
    with pytest.raises(UsageError, match="unknown sort"):
        core.saved_views.add("x", "opp", actor=world.leila, sort="source")


def test_every_sort_fits_a_saved_views_sort_column() -> None:
    width = SavedView.sort.max_length
    assert all(len(sort) <= width for entity in EntityType for sort in sort_orders(entity)), width


def test_every_sortable_column_is_not_null(core) -> None:
    """The keyset comparisons take no COALESCE: a NULL key would drop out of every
    comparison and its row out of every page. A nullable sort column needs one (and an
    index on the same expression)."""
    for entity, columns in SORT_COLUMNS.items():
        model = Lead if entity is EntityType.LEAD else Opportunity
        for column in columns:
            field = {"owner": "owner", "updated": "updated_at"}.get(column, column)
            assert not model._meta.fields[field].null, (entity, column)
        stored = {c.name: c.null for c in core.db.get_columns(entity.table)}
        for column in columns:
            assert stored[{"owner": "owner_id", "updated": "updated_at"}.get(column, column)] is False


def _first_page_plan(core, entity: EntityType, sort: str, monkeypatch) -> str:
    """The plan of the SQL an admin's first page runs."""
    from sharetui.core.access import listing

    seen: list[tuple[str, list[Any]]] = []

    class Recorded(listing.Statement):
        def all(self, params=()):  # type: ignore[no-untyped-def]
            seen.append((self.sql(), list(params)))
            return super().all(params)

    with monkeypatch.context() as m:
        m.setattr(listing, "Statement", Recorded)
        core.access.visible("admin", entity, limit=100, sort=sort)
    sql, params = next((s, p) for s, p in seen if f"FROM {entity.table}" in s or "users o" in s)
    if is_sqlite():
        return " | ".join(row[-1] for row in core.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
    with core.db.atomic():
        # A handful of rows costs less to sort than to read through an index: switched
        # off, the planner shows whether an index can give the order at all.
        core.db.execute_sql("SET LOCAL enable_sort = off")
        core.db.execute_sql("SET LOCAL enable_seqscan = off")
        return " | ".join(row[0] for row in core.db.execute_sql("EXPLAIN (COSTS OFF) " + sql, params))


@pytest.mark.parametrize(("entity", "sort"), CASES, ids=[f"{e.short}:{s}" for e, s in CASES])
def test_an_admins_first_page_reads_an_index_in_every_sort(
    world, entity: EntityType, sort: str, monkeypatch
) -> None:
    """No sort makes an admin's page sort the whole table: each walks an index (by the
    key's own expression: lower(name) in the C collation on PostgreSQL, NOCASE on
    SQLite), forwards or backwards. The owner sort walks users by username and each
    owner's records by (owner_id, id); PostgreSQL sorts only within one owner."""
    plan = _first_page_plan(world.core, entity, sort, monkeypatch)
    column = sort.lstrip("-")
    table = entity.table
    index = {
        "id": None,
        "updated": f"{table}_updated_at_id",
        "amount": f"{table}_amount_id",
    }.get(column, f"{table}_{column}_nocase_id")
    if is_sqlite():
        assert "TEMP B-TREE" not in plan, plan
    else:  # at most an incremental sort of each owner's records
        steps = plan.split(" | ")
        nodes = [steps[0]] + [step.split("->", 1)[1].strip() for step in steps if "->" in step]
        assert not any(node.startswith("Sort") for node in nodes), plan
    if column == "owner":
        assert ("INDEX users_username" if is_sqlite() else "users_username_c_id") in plan, plan
        assert "(owner_id=?)" in plan if is_sqlite() else "Index Cond: (owner_id = o.id)" in plan, plan
    elif index is not None:
        assert index in plan, plan


def test_a_deep_admin_page_starts_at_its_cursor_even_among_equal_keys(world, monkeypatch) -> None:
    """Past a cursor, an admin's page reads the rest of the cursor's key (by id) and the
    keys after it, each as a range of the sort's index that starts at the cursor: not
    one range from the key on, which steps over every row of that key before the cursor
    (a third of a million leads have no company)."""
    from sharetui.core.access import listing
    from sharetui.core.access.listing import encode_cursor

    core = world.core
    seen: list[str] = []

    class Recorded(listing.Statement):
        def all(self, params=()):  # type: ignore[no-untyped-def]
            seen.append(self.sql())
            return super().all(params)

    monkeypatch.setattr(listing, "Statement", Recorded)
    acme = [r.id for r in Lead.select().where(Lead.company.in_(["Acme", "acme"])).order_by(Lead.id)]
    want = expected(core, "admin", EntityType.LEAD, "company")
    after = want[want.index(acme[1]) + 1 :]
    page = core.access.visible("admin", "lead", after=encode_cursor([acme[1]]), limit=1000, sort="company")
    assert [r.id for r in page.rows] == after
    sql = next(s for s in seen if "UNION ALL" in s)
    if is_sqlite():
        plan = " | ".join(
            r[-1]
            for r in core.db.execute_sql(
                "EXPLAIN QUERY PLAN " + sql, ["acme", acme[1], 1001, "acme", 1001, 1001]
            )
        )
        assert "INDEX leads_company_nocase_id (company=? AND id>?)" in plan, plan
        assert "INDEX leads_company_nocase_id (company>?)" in plan, plan
    else:
        with core.db.atomic():
            core.db.execute_sql("SET LOCAL enable_seqscan = off")
            params = ["acme", acme[1], 1001, "acme", 1001, 1001]
            plan = " | ".join(r[0] for r in core.db.execute_sql("EXPLAIN (COSTS OFF) " + sql, params))
        assert "Index Cond: ((lower((name)::text) = " not in plan  # the company index, not the name one
        assert plan.count("leads_company_nocase_id") == 2, plan
        assert "AND (id > " in plan, plan

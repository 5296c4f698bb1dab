"""Saved views ("smart views", issue 19): names for a list's filter, always gated.

The bank (conftest): admin, ruth (sales_manager), nadia (marketing); in Pre-Sales
priya (manage), tomas (modify), leila (view), kenji (own); in Sales daniel (manage)
and sofia (modify).
"""

from __future__ import annotations

import random

import pytest

from sharetui.core.automations.definitions import evaluate
from sharetui.core.records.saved_views import parse_condition
from sharetui.db.models import Lead, SavedView
from sharetui.errors import NotFound, PermissionDenied, UsageError

STAGES = ["new", "contacted", "qualified", "won", "lost"]


@pytest.fixture
def company(bank):
    """Sixty leads over five owners, with stages and scores, and a few shares."""
    rnd = random.Random(19)
    owners = [bank.priya, bank.kenji, bank.daniel, bank.sofia, bank.tomas]
    for i in range(60):
        bank.core.records.add_lead(
            name=f"{rnd.choice(['Dental', 'Bakery', 'Garage'])} {i:02d}",
            owner=rnd.choice(owners),
            stage=rnd.choice(STAGES),
            fields={"score": rnd.randint(0, 100)},
            actor=bank.admin,
        )
    for lead_id in rnd.sample(range(2, 62), 8):
        bank.core.sharing.share(
            "lead", lead_id, bank.kenji, requester=bank.admin, access="read", duration="7d"
        )
    return bank


def every_visible(core, user, **kwargs):
    rows, cursor = [], None
    while True:
        page = core.access.visible(user, "lead", after=cursor, limit=17, **kwargs)
        rows += page.rows
        cursor = page.next_cursor
        if cursor is None:
            return rows


def every_in_view(core, view, user, limit=7):
    rows, cursor = [], None
    while True:
        page = core.saved_views.page(view, actor=user, after=cursor, limit=limit)
        rows += page.rows
        cursor = page.next_cursor
        if cursor is None:
            return rows


def test_parse_condition_reads_toml_values():
    assert parse_condition("lead.fields.score >= 80") == {
        "field": "lead.fields.score",
        "op": ">=",
        "value": 80,
    }
    assert parse_condition('lead.stage in ["won", "lost"]')["value"] == ["won", "lost"]
    assert parse_condition("lead.stage = qualified")["value"] == "qualified"
    assert parse_condition("lead.name contains Dental")["op"] == "contains"
    with pytest.raises(UsageError, match="FIELD OP VALUE"):
        parse_condition("lead.stage")


@pytest.mark.parametrize(
    "who", ["admin", "manager", "marketing", "priya", "kenji", "leila", "daniel", "sofia"]
)
def test_a_views_list_is_the_filtered_visible_list_for_each_role(company, who):
    core, user = company.core, getattr(company, who)
    conditions = [parse_condition("lead.fields.score >= 40"), parse_condition('lead.stage in ["new", "won"]')]
    view = core.saved_views.add("hot", "lead", actor=user, search="dental", conditions=conditions, sort="-id")
    expected = [
        r.id
        for r in every_visible(core, user, search="dental", sort="-id")
        if all(evaluate(c, {"lead": _lead_data(core, r.id)})[0] for c in conditions)
    ]
    got = every_in_view(core, view, user)
    assert [r.id for r in got] == expected
    assert {r.id for r in got} <= {r.id for r in every_visible(core, user)}


def _lead_data(core, lead_id):
    row = Lead.get_by_id(lead_id)
    return {"stage": row.stage, "fields": row.fields}


def test_a_view_without_conditions_pages_like_the_list(company):
    core = company.core
    view = core.saved_views.add("by name", "lead", actor=company.kenji, sort="name")
    assert [r.id for r in every_in_view(core, view, company.kenji)] == [
        r.id for r in every_visible(core, company.kenji, sort="name")
    ]


def test_a_shared_view_shows_each_viewer_only_what_they_may_read(company):
    core = company.core
    view = core.saved_views.add(
        "won", "lead", actor=company.admin, conditions=[parse_condition("lead.stage = won")], shared=True
    )
    admin_rows = {r.id for r in every_in_view(core, view, company.admin)}
    kenji_view = core.saved_views.get("won", "lead", actor=company.kenji)
    kenji_rows = {r.id for r in every_in_view(core, kenji_view, company.kenji)}
    assert kenji_rows < admin_rows
    assert kenji_rows == {
        r.id for r in every_visible(core, company.kenji) if _lead_data(core, r.id)["stage"] == "won"
    }


def test_own_views_come_before_shared_ones_and_others_views_stay_private(company):
    core = company.core
    core.saved_views.add("mine", "lead", actor=company.admin, search="garage", shared=True)
    core.saved_views.add("mine", "lead", actor=company.kenji, search="dental")
    core.saved_views.add("secret", "lead", actor=company.priya, search="bakery")
    assert core.saved_views.get("mine", "lead", actor=company.kenji).search == "dental"
    assert core.saved_views.get("mine", "lead", actor=company.sofia).search == "garage"
    names = [(v.name, v.shared) for v in core.saved_views.list(actor=company.kenji)]
    assert names == [("mine", False), ("mine", True)]
    with pytest.raises(NotFound):
        core.saved_views.get("secret", "lead", actor=company.kenji)


def test_only_admins_share_or_remove_shared_views(company):
    core = company.core
    for who in ("manager", "marketing", "kenji"):
        with pytest.raises(PermissionDenied):
            core.saved_views.add("all", "lead", actor=getattr(company, who), shared=True)
    core.saved_views.add("all", "lead", actor=company.admin, shared=True)
    with pytest.raises(PermissionDenied):
        core.saved_views.remove("all", "lead", actor=company.kenji, shared=True)
    with pytest.raises(NotFound):
        core.saved_views.remove("all", "lead", actor=company.kenji)
    core.saved_views.remove("all", "lead", actor=company.admin, shared=True)
    assert SavedView.select().count() == 0


def test_a_deactivated_user_has_no_views(company):
    core = company.core
    core.saved_views.add("mine", "lead", actor=company.kenji)
    core.users.deactivate("kenji", actor=company.admin)
    kenji = core.users.get("kenji")
    with pytest.raises(PermissionDenied):
        core.saved_views.list(actor=kenji)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " "}, "needs a name"),
        ({"name": "x" * 81}, "at most 80"),
        ({"name": "a\x1bb"}, "control characters"),
        ({"conditions": [{"field": "opportunity.amount", "op": ">", "value": 1}]}, "read its lead"),
        ({"conditions": [{"field": "lead.stage", "op": "~", "value": "x"}]}, "is not one of"),
        ({"conditions": [{"field": "lead.stage", "op": "in", "value": "won"}]}, "needs a list"),
        ({"conditions": [{"field": "lead.stage", "op": "=", "value": {"a": 1}}]}, "text, a number"),
        ({"sort": "amount"}, "unknown sort"),  # an opportunity list's, not a lead list's
        ({"columns": ["id", "amount"]}, "amount"),
        ({"columns": ["id", "id"]}, "a column twice"),
        ({"search": "a\x00b"}, "NUL"),
    ],
)
def test_bad_views_are_refused_and_nothing_is_written(bank, kwargs, message):
    args = {"name": "v", "entity": "lead", "actor": bank.kenji, **kwargs}
    with pytest.raises(UsageError, match=message):
        bank.core.saved_views.add(args.pop("name"), args.pop("entity"), **args)
    assert SavedView.select().count() == 0


def test_a_name_is_taken_until_replaced(bank):
    views = bank.core.saved_views
    views.add("v", "lead", actor=bank.kenji, search="a")
    with pytest.raises(UsageError, match="exists"):
        views.add("v", "lead", actor=bank.kenji, search="b")
    assert views.add("v", "lead", actor=bank.kenji, search="b", replace=True).search == "b"
    assert views.add("v", "opp", actor=bank.kenji).entity.value == "opportunity"
    assert SavedView.select().count() == 2


def test_opportunity_views_filter_by_amount(bank):
    r = bank.core.records
    for amount in (500, 5000, 50000):
        r.add_opportunity(
            lead=bank.lead.id,
            name=f"deal {amount}",
            type="Home Loan",
            owner=bank.priya,
            amount=amount,
            actor=bank.admin,
        )
    view = bank.core.saved_views.add(
        "big", "opp", actor=bank.priya, conditions=[parse_condition("opportunity.amount >= 5000")]
    )
    names = [row.values["name"] for row in bank.core.saved_views.page(view, actor=bank.priya).rows]
    assert names == ["deal 5000", "deal 50000"]
    assert bank.core.saved_views.page(view, actor=bank.kenji).rows == []

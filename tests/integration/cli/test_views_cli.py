"""``sharetui views`` and ``leads list --view`` / ``opps list --view`` (issue 19)."""

from __future__ import annotations


def test_save_a_view_and_list_through_it(bank, cli):
    r = bank.core.records
    r.add_lead(name="Hot Dental", owner=bank.kenji, stage="qualified", fields={"score": 90}, actor=bank.admin)
    r.add_lead(
        name="Cold Dental", owner=bank.kenji, stage="qualified", fields={"score": 10}, actor=bank.admin
    )
    r.add_lead(name="Hot Garage", owner=bank.priya, stage="qualified", fields={"score": 95}, actor=bank.admin)
    added = cli(
        "views",
        "add",
        "hot",
        "--where",
        "lead.fields.score >= 80",
        "--columns",
        "id,name,owner",
        "--json",
        user="kenji",
    )
    assert added.exit_code == 0, added.stderr
    assert added.json()["conditions"] == [{"field": "lead.fields.score", "op": ">=", "value": 80}]

    listed = cli("leads", "list", "--view", "hot", "--json", user="kenji")
    assert listed.exit_code == 0, listed.stderr
    assert [i["name"] for i in listed.json()["items"]] == ["Hot Dental"]  # not priya's: kenji cannot read it
    assert listed.json()["view"]["name"] == "hot"

    human = cli("leads", "list", "--view", "hot", user="kenji")
    assert "Hot Dental" in human.stdout and "company" not in human.stdout and "view hot" in human.stdout

    # priya reads her own and kenji's (she manages Pre-Sales), but kenji's view is his alone.
    assert cli("leads", "list", "--view", "hot", user="priya").exit_code == 2


def test_views_list_and_remove(bank, cli):
    assert (
        cli(
            "views", "add", "deals", "--entity", "opp", "--where", "opportunity.amount > 1000", user="priya"
        ).exit_code
        == 0
    )
    assert cli("views", "add", "team", "--shared", "--search", "demir", user="admin").exit_code == 0
    listed = cli("views", "list", "--json", user="priya").json()["items"]
    assert [(v["name"], v["entity"], v["shared"]) for v in listed] == [
        ("team", "lead", True),
        ("deals", "opportunity", False),
    ]
    shown = cli("leads", "list", "--view", "team", "--json", user="priya").json()["items"]
    assert [i["name"] for i in shown] == ["Mira Demir"]
    assert cli("leads", "list", "--view", "team", "--json", user="kenji").json()["items"] == []

    refused = cli("views", "remove", "team", "--shared", user="priya")
    assert refused.exit_code == 1 and "may not" in refused.stderr
    assert cli("views", "remove", "deals", "--entity", "opp", user="priya").exit_code == 0
    assert cli("views", "remove", "team", "--shared", user="admin").exit_code == 0
    assert cli("views", "list", "--json", user="priya").json()["items"] == []


def test_bad_view_input_is_exit_2_and_writes_nothing(bank, cli):
    for args in (
        ["views", "add", "x", "--where", "lead.stage"],
        ["views", "add", "x", "--where", "opportunity.amount > 1"],
        ["views", "add", "x", "--columns", "id,amount"],
        ["views", "add", "x", "--columns", ","],
    ):
        result = cli(*args, user="kenji")
        assert result.exit_code == 2, (args, result.stderr)
    assert cli("views", "list", "--json", user="kenji").json()["items"] == []
    assert cli("views", "add", "x", user="kenji").exit_code == 0
    both = cli("leads", "list", "--view", "x", "--search", "a", user="kenji")
    assert both.exit_code == 2 and "own search" in both.stderr


def test_lists_and_views_sort_by_any_column_of_their_record(bank, cli):
    """``--sort`` takes each list's own columns (text ignores case); a view keeps one, and
    a sort of the other record type is exit 2 naming the valid ones."""
    r = bank.core.records
    for name, company in (("Zulu", "beta"), ("zeta", "Alpha"), ("Able", "alpha")):
        r.add_lead(name=name, company=company, owner=bank.kenji, actor=bank.admin)
    by_company = cli("leads", "list", "--sort", "company", "--json", user="kenji").json()["items"]
    assert [i["name"] for i in by_company] == ["zeta", "Able", "Zulu"]  # alpha, Alpha (by id), beta
    by_name = cli("leads", "list", "--sort", "-name", "--json", user="kenji").json()["items"]
    assert [i["name"] for i in by_name] == ["Zulu", "zeta", "Able"]
    assert cli("opps", "list", "--sort", "-amount", "--json", user="kenji").exit_code == 0
    refused = cli("leads", "list", "--sort", "amount", user="kenji")
    assert refused.exit_code == 2 and "--sort" in refused.stderr and refused.stdout == ""

    added = cli("views", "add", "by-company", "--sort", "-company", "--json", user="kenji")
    assert added.exit_code == 0, added.stderr
    assert added.json()["sort"] == "-company"
    listed = cli("leads", "list", "--view", "by-company", "--json", user="kenji").json()["items"]
    assert [i["name"] for i in listed] == ["Zulu", "Able", "zeta"]
    wrong = cli("views", "add", "x", "--entity", "opp", "--sort", "company", user="kenji")
    assert wrong.exit_code == 2 and "an opportunity list sorts by id, name, type" in wrong.stderr

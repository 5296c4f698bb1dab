"""Loading the Example Bank sample data (sample_data/README.md): everything is
checked before anything is written, a second load adds nothing, shares that
ran out in the past are expired on load, and a broken file names itself and
the bad record and loads nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import SAMPLE_DATA
from sharetui.core.history import HistoryFilter
from sharetui.db.models import (
    Activity,
    ActivityType,
    Grant,
    HistoryEvent,
    Lead,
    Opportunity,
    OutboxEvent,
    ShareRequest,
    Task,
    User,
)
from sharetui.domain.records import as_record
from sharetui.domain.roles import Access
from sharetui.errors import DataFileError
from sharetui.ops.loader import Loader

MODELS = {
    "users": User,
    "activity_types": ActivityType,
    "leads": Lead,
    "opportunities": Opportunity,
    "activities": Activity,
    "tasks": Task,
    "shares": ShareRequest,
}


def sample(name: str) -> list[dict[str, Any]]:
    return json.loads((SAMPLE_DATA / f"{name}.json").read_text(encoding="utf-8"))


def table_counts() -> dict[str, int]:
    return {name: model.select().count() for name, model in MODELS.items()} | {
        "grants": Grant.select().count(),
        "history": HistoryEvent.select().count(),
        "outbox": OutboxEvent.select().count(),
    }


def lead(ref: str) -> Lead:
    return Lead.get(Lead.ref == ref)


def opp(ref: str) -> Opportunity:
    return Opportunity.get(Opportunity.ref == ref)


def activity(ref: str) -> Activity:
    return Activity.get(Activity.ref == ref)


@pytest.fixture
def loaded(core):
    report = Loader(core).load(SAMPLE_DATA, actor=None)
    return core, report


def test_loading_the_sample_bank_creates_every_record(loaded) -> None:
    core, report = loaded
    expected = {name: len(sample(name)) for name in MODELS}
    automations = len(list((SAMPLE_DATA / "automations").glob("*.toml")))
    assert report.created == {**expected, "automations": automations}
    assert report.existing == {}
    # Sample automations act only on what happens after loading: none ran on the load itself.
    assert core.automations.process_pending() == []
    counts = table_counts()
    assert {name: counts[name] for name in MODELS} == expected
    assert counts["grants"] == len(sample("shares"))
    # Records keep their refs and owners; times are relative to the clock.
    assert lead("L003").owner.username == "priya"
    assert opp("O004").lead_id == lead("L011").id
    assert activity("A003").owner.username == "daniel" and activity("A003").lead_id == lead("L003").id
    assert str(activity("A003").occurred_at) == "2026-03-03 09:00:00"  # "+1d" from the frozen clock
    assert [g for g, _ in core.users.groups_of(core.users.get("wei"))] == ["Sales"]


def test_a_second_load_creates_nothing(loaded) -> None:
    core, first = loaded
    before = table_counts()
    again = Loader(core).load(SAMPLE_DATA, actor=None)
    assert again.created == {}
    assert again.existing == first.created
    assert again.expired == 0
    assert table_counts() == before


def test_shares_that_ran_out_in_the_past_are_expired_on_load(loaded) -> None:
    core, report = loaded
    assert report.expired == 2
    assert report.as_dict()["expired_on_load"] == 2
    by_story = {(g.entity_type, g.entity_id, g.user.username): g for g in Grant.select()}
    l015 = by_story[("lead", lead("L015").id, "jamal")]
    o005 = by_story[("opportunity", opp("O005").id, "leila")]
    for grant in (l015, o005):
        assert grant.state == "expired"
        (event,) = HistoryEvent.select().where(
            (HistoryEvent.grant_id == grant.id) & (HistoryEvent.event == "expired")
        )
        assert event.at == grant.expires_at  # when it ran out, not when loaded
    assert l015.context_activity_id == activity("A023").id
    # 40 days ago for 30 days: it ended 10 days before the load.
    assert core.now().replace(tzinfo=None) - l015.expires_at == timedelta(days=10)
    assert not core.access.can("jamal", lead("L015"), "read")
    assert not core.access.can("leila", ("opportunity", opp("O005").id), "read")
    others = [g for g in Grant.select() if g.id not in (l015.id, o005.id)]
    assert len(others) == 6 and {g.state for g in others} == {"active"}


def test_the_sample_stories_hold_after_loading(loaded, clock) -> None:
    core, _ = loaded
    access = core.access
    # Pre-sales -> sales hand-off: daniel edits L003 through the share in A003's context.
    assert access.can("daniel", lead("L003"), "edit")
    reasons = access.explain("daniel", lead("L003"), actor=None).reasons
    assert reasons[0].startswith(f"shared edit in context of activity {activity('A003').id} until ")
    # ... but L001 and L009 are not shared yet.
    assert not access.can("daniel", lead("L009"), "read")
    # Loan evaluation: arjun reads L005 until A007 is completed.
    assert access.level("arjun", lead("L005")) == Access.READ
    core.records.update_activity(activity("A007").id, status="completed", actor=core.users.get("arjun"))
    assert not access.can("arjun", lead("L005"), "read")
    # Home Loans -> Personal Loans: jamal reads O003.
    assert access.level("jamal", ("opportunity", opp("O003").id)) == Access.READ
    # One lead, two contexts: sofia edits L012 now.
    assert len(access.explain("sofia", lead("L012"), actor=None).grants) == 2
    assert access.level("sofia", lead("L012")) == Access.EDIT
    # Group vs share: wei edits L020 for 3 days (shared a day ago), then reads it through Sales.
    assert access.level("wei", lead("L020")) == Access.EDIT
    assert not access.can("wei", lead("L003"), "read")  # no Pre-Sales access
    # Pre-Sales levels: tomas edits, leila reads, kenji has nothing on priya's L001.
    assert [access.level(u, lead("L001")) for u in ("tomas", "leila", "kenji")] == [
        Access.EDIT,
        Access.READ,
        Access.NONE,
    ]
    # ben has left: inactive, no access even to the two leads he still owns.
    ben = core.users.get("ben")
    assert ben.active is False
    owned = list(Lead.select().where(Lead.owner == ben.id))
    assert sorted(x.ref for x in owned) == ["L028", "L042"]
    assert not any(access.can(ben, x, "read") for x in owned)

    clock.advance(timedelta(days=2))
    assert access.level("wei", lead("L020")) == Access.READ


def test_loaded_shares_are_in_history_as_made_by_their_requesters(loaded) -> None:
    core, _ = loaded
    rows = core.history.query(None, HistoryFilter(record=as_record(lead("L003"))), limit=None)
    assert [(r["event"], r["user"], r["requester"]) for r in rows] == [
        ("share", "daniel", "priya"),
        ("granted", "daniel", "priya"),
    ]
    assert rows[1]["starts_at"] == "2026-02-28T09:00:00Z"  # "started": "-2d"
    assert rows[1]["expires_at"] == "2026-03-14T09:00:00Z"  # + 14d


# -- broken copies ----------------------------------------------------------------------


def _edit(name: str, change: Callable[[list[dict[str, Any]]], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / f"{name}.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")

    return apply


def _set(index: int, **values: Any) -> Callable[[list[dict[str, Any]]], None]:
    return lambda data: data[index].update(values)


def _garble(name: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / f"{name}.json"
        path.write_text(
            path.read_text(encoding="utf-8").replace('"role": "sales"', '"role" "sales"', 1), encoding="utf-8"
        )

    return apply


BROKEN: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "unknown lead owner": (
        _edit("leads", _set(6, owner="nobody")),
        ["leads.json", "record 6 (L007)", "unknown owner 'nobody'"],
    ),
    "bad JSON": (_garble("users"), ["users.json", "invalid JSON at line"]),
    "unknown activity type": (
        _edit("activities", _set(2, type="Coffee Chat")),
        ["activities.json", "record 2 (A003)", "unknown activity type 'Coffee Chat'"],
    ),
    "unknown role": (
        _edit("users", _set(4, role="intern")),
        ["users.json", "record 4 (tomas)", "unknown role 'intern'"],
    ),
    "opportunity on an unknown lead": (
        _edit("opportunities", _set(0, lead="L999")),
        ["opportunities.json", "record 0 (O001)", "unknown lead 'L999'"],
    ),
    "unreadable time": (
        _edit("tasks", _set(1, due="next tuesday")),
        ["tasks.json", "record 1 (T002)", "due"],
    ),
    "duplicate ref": (
        _edit("leads", _set(1, ref="L001")),
        ["leads.json", "record 1 (L001)", "appears twice"],
    ),
    "share with an unknown duration": (
        _edit("shares", _set(3, **{"for": "3 parsecs"})),
        ["shares.json", "record 3", "parsecs"],
    ),
    "a share the rules refuse": (
        _edit("shares", _set(0, **{"with": "priya"})),
        ["shares.json", "record 0", "share refused", "priya owns lead"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_a_broken_file_names_file_and_record_and_loads_nothing(core, tmp_path, case: str) -> None:
    root = tmp_path / "sample_data"
    shutil.copytree(SAMPLE_DATA, root)
    breaks, words = BROKEN[case]
    breaks(root)
    before = table_counts()

    with pytest.raises(DataFileError) as caught:
        Loader(core).load(root, actor=None)

    message = str(caught.value)
    for word in words:
        assert word in message, message
    assert table_counts() == before  # events too: they roll back with the records
    assert before["users"] == before["leads"] == before["outbox"] == 0


def test_a_broken_file_on_top_of_a_loaded_bank_changes_nothing(loaded, tmp_path) -> None:
    core, _ = loaded
    root = tmp_path / "more"
    root.mkdir()
    (root / "leads.json").write_text(
        json.dumps(
            [
                {"ref": "L900", "name": "New Lead", "owner": "priya"},
                {"ref": "L901", "name": "Bad Lead", "owner": "ghost"},
            ]
        ),
        encoding="utf-8",
    )
    before = table_counts()
    with pytest.raises(DataFileError, match=r"leads.json record 1 \(L901\): unknown owner 'ghost'"):
        Loader(core).load(root, actor=None)
    assert table_counts() == before
    assert not Lead.select().where(Lead.ref == "L900").exists()


def test_an_error_found_while_writing_also_names_file_and_record(core, tmp_path) -> None:
    root = tmp_path / "sample_data"
    shutil.copytree(SAMPLE_DATA, root)
    # A002 is an "Email Sent" activity, a type whose form has no activity owner.
    _edit("activities", _set(1, owner="daniel"))(root)
    with pytest.raises(DataFileError) as caught:
        Loader(core).load(root, actor=None)
    assert User.select().count() == 0
    assert "activities.json" in str(caught.value) and "A002" in str(caught.value)


def test_a_directory_without_sample_files_is_refused(core, tmp_path) -> None:
    with pytest.raises(DataFileError, match="no sample data files"):
        Loader(core).load(tmp_path, actor=None)
    with pytest.raises(DataFileError, match="not a directory"):
        Loader(core).load(tmp_path / "missing", actor=None)

"""The views core builds for the faces (``core.views``): typed, frozen, and no wider
than what the acting user may see; the rules stay in the services they come from."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sharetui.core.history import HistoryFilter
from sharetui.core.views import GrantRow, Permissions, RecordView
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import EntityType


def lead_ref(bank: Any) -> RecordRef:
    return RecordRef(EntityType.LEAD, bank.lead.id)


def texts(value: Any) -> list[str]:
    """Every string a view carries, however deep (to prove what it does not carry)."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value):
        return [t for f in dataclasses.fields(value) for t in texts(getattr(value, f.name))]
    if isinstance(value, dict | tuple | list) or hasattr(value, "items"):
        items = value.items() if hasattr(value, "items") else enumerate(value)
        return [t for k, v in items for t in texts(k) + texts(v)]
    return []


def test_the_owner_sees_the_whole_record_typed_and_frozen(bank: Any) -> None:
    core, ref = bank.core, lead_ref(bank)
    core.sharing.share(
        "lead", ref.id, "daniel", requester=bank.admin, duration="2d", access="edit", context=bank.meeting.id
    )
    view = core.views.record(bank.priya, ref)
    assert (view.ref, view.name, view.owner) == (ref, "Mira Demir", "priya")
    assert view.standard["company"] == "Demir Textiles" and "name" not in view.standard
    assert [(a.type, a.owner) for a in view.activities] == [("Meeting Scheduled", "daniel")]
    (grant,) = view.shares
    assert isinstance(grant, GrantRow)
    assert (grant.user, grant.access, grant.context) == ("daniel", "edit", bank.meeting.id)
    assert grant.expires_at == datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # aware, from the frozen clock
    assert view.permissions.read and view.permissions.edit and view.permissions.level == "edit"
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.name = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.standard["company"] = "changed"  # type: ignore[index]


def test_a_record_the_user_may_not_read_carries_none_of_its_data(bank: Any) -> None:
    """kenji (Pre-Sales at ``own``) reaches none of priya's records: opened anyway, the
    view holds the ref and his permissions, and not one field, activity, task or share."""
    core, ref = bank.core, lead_ref(bank)
    core.sharing.share("lead", ref.id, "daniel", requester=bank.admin, duration="2d")
    core.records.add_task(ref, owner=bank.priya, subject="Call Mira back", actor=bank.admin)
    assert not core.access.can(bank.kenji, ref, "read")

    view = core.views.record(bank.kenji, ref)
    assert view == RecordView.unreadable(ref, view.permissions)
    assert not view.permissions.read and view.permissions.level == "none"
    assert (view.activities, view.tasks, view.shares) == ((), (), ())
    carried = " ".join(texts(view))
    for secret in ("Mira", "Demir", "priya", "daniel", "Call Mira", "Meeting"):
        assert secret not in carried, carried


def test_who_may_share_is_asked_of_sharing_may_share_only(bank: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    core, ref = bank.core, lead_ref(bank)
    for user in (bank.admin, bank.manager, bank.marketing, bank.priya, bank.kenji, bank.sofia):
        assert core.views.permissions(user, ref).share is core.sharing.may_share(user, ref), user.username
    asked: list[tuple[str, RecordRef]] = []

    def may_share(user: Any, record: RecordRef) -> bool:
        asked.append((user.username, record))
        return user.username == "sofia"  # not the rule: proves the view asks, never decides

    monkeypatch.setattr(core.sharing, "may_share", may_share)
    assert core.views.permissions(bank.sofia, ref).share
    assert not core.views.permissions(bank.admin, ref).share
    assert asked == [("sofia", ref), ("admin", ref)]
    assert core.views.permissions(None, ref) == Permissions()
    assert len(asked) == 2  # nobody acting: nothing to ask


def test_history_and_users_come_back_as_typed_rows(bank: Any) -> None:
    core, ref = bank.core, lead_ref(bank)
    core.sharing.share("lead", ref.id, "daniel", requester=bank.admin, duration="1d")
    rows = core.views.history(None, HistoryFilter(record=ref))
    assert [r.id for r in rows] == [e["id"] for e in core.history.query(None, HistoryFilter(record=ref))][
        ::-1
    ]
    assert all(isinstance(r.at, datetime) and r.at.tzinfo is not None for r in rows)
    assert {(r.event, r.user, r.requester) for r in rows} >= {("share", "daniel", "admin")}
    users = {u.username: u for u in core.views.users(None)}
    assert [(m.group, m.level) for m in users["priya"].groups] == [("Pre-Sales", "manage")]
    assert ("daniel", "daniel") in core.views.sales_users()
    assert "ruth" not in {name for name, _ in core.views.sales_users()}


def test_the_change_token_moves_with_a_change_and_with_a_lapsed_share(bank: Any, clock: Any) -> None:
    core, ref = bank.core, lead_ref(bank)
    start = core.outbox.change_token()
    assert core.outbox.change_token() == start  # nothing happened
    core.sharing.share("lead", ref.id, "daniel", requester=bank.admin, duration="1h")
    shared = core.outbox.change_token()
    assert shared != start
    clock.advance(timedelta(hours=1))  # the share ran out; no sweep has recorded it yet
    assert core.outbox.change_token() == (shared[0], shared[1] + 1)

"""Access checks read the record: a frozen view, loaded once per batch of checks."""

from __future__ import annotations

import types

import pytest

from sharetui import hookimpl
from sharetui.domain.roles import EntityType
from sharetui.sdk import RecordView, deny
from sharetui.testing import plugin_registered


class ClosedReadOnly:
    """Sales users may not edit leads whose stage is Closed; remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[RecordView | None] = []

    @hookimpl
    def sharetui_check_access(self, user, action, view):
        self.seen.append(view)
        if view is not None and user.role == "sales" and action == "edit" and view.stage == "Closed":
            return deny("closed leads are read-only")
        return None


def test_a_check_gets_the_record_with_owner_stage_and_fields(bank):
    core = bank.core
    core.records.update_record(bank.lead, actor=bank.admin, values={"stage": "Closed"}, fields={"score": 91})
    plugin = ClosedReadOnly()
    with plugin_registered(core, plugin, name="closed"):
        assert core.access.can("priya", bank.lead, "read")
        assert not core.access.can("priya", bank.lead, "edit")
        assert core.access.can("admin", bank.lead, "edit")
    view = plugin.seen[0]
    assert view.owner == "priya" and view.stage == "Closed" and view.name == "Mira Demir"
    assert view.values["company"] == "Demir Textiles" and view.fields["score"] == 91
    with pytest.raises(TypeError):
        view.fields["score"] = 0  # read-only
    assert isinstance(view.values, types.MappingProxyType)


def test_a_list_loads_the_views_of_its_page_in_one_query(bank, monkeypatch):
    core = bank.core
    for i in range(30):
        core.records.add_lead(name=f"Lead {i}", owner=bank.priya, actor=bank.admin)
    import sharetui.core.access.listing as listing

    calls: list[int] = []
    real = listing.load_record_views

    def counting(entity, ids):
        ids = list(ids)
        calls.append(len(ids))
        return real(entity, ids)

    monkeypatch.setattr(listing, "load_record_views", counting)
    plugin = ClosedReadOnly()
    with plugin_registered(core, plugin, name="closed"):
        page = core.access.visible("priya", EntityType.LEAD, limit=20)
    assert len(page.rows) == 20
    assert calls == [20]  # one batch, not one query per row
    assert {v.ref.id for v in plugin.seen if v is not None} == {r.id for r in page.rows}


def test_no_view_is_loaded_when_no_check_asks_for_one(bank, monkeypatch):
    import sharetui.core.access.service as service

    monkeypatch.setattr(service, "load_record_view", lambda ref: pytest.fail("loaded a view"))

    class Plain:
        @hookimpl
        def sharetui_check_access(self, user, action):
            return None

    with plugin_registered(bank.core, Plain(), name="plain"):
        assert bank.core.access.can("priya", bank.lead, "edit")

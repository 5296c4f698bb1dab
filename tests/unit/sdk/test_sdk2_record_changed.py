"""sharetui_record_changed: created and updated records reach plugins after commit,
with before/after views, who changed them, and services acting for that person."""

from __future__ import annotations

import pytest

from sharetui import hookimpl
from sharetui.errors import UsageError
from sharetui.testing import as_user, company, plugin_registered


class Listener:
    def __init__(self) -> None:
        self.changes = []
        self.in_transaction = []

    @hookimpl
    def sharetui_record_changed(self, change, services):
        self.changes.append(change)
        self.in_transaction.append(services.now() is not None and _depth(services) > 0)


def _depth(services) -> int:
    return services._core.db.transaction_depth()


def test_changes_arrive_after_commit_with_before_after_and_who(core):
    core = core
    people = company(core)
    listener = Listener()
    with plugin_registered(core, listener, name="listener"):
        core.records.update_record(
            people.lead, actor=people.priya, values={"stage": "Qualified"}, fields={"score": 85}
        )
        lead = core.records.add_lead(name="New one", owner=people.priya, actor=people.priya)
    updated, created = listener.changes
    assert updated.kind == "updated" and updated.by == "priya"
    assert (updated.before.stage, updated.after.stage) == ("new", "Qualified")
    assert updated.changed == ("stage", "fields.score")
    assert updated.crossed("score", 80) and not updated.crossed("score", 30)
    assert created.kind == "created" and created.before is None and created.after.ref.id == lead.id
    assert listener.in_transaction == [False, False]


def test_a_change_that_rolls_back_is_never_heard_of(core):
    core = core
    people = company(core)
    listener = Listener()
    with plugin_registered(core, listener, name="listener"), pytest.raises(UsageError), core.db.atomic():
        core.records.update_record(people.lead, actor=people.priya, values={"stage": "Lost"})
        raise UsageError("changed my mind")
    assert listener.changes == []
    assert core.records.get(people.lead).stage == "new"


def test_services_act_for_a_person(core):
    people = company(core)
    view = as_user(core, "priya").records.update(people.lead, fields={"score": 99})
    assert view.fields["score"] == 99
    with pytest.raises(Exception, match="may"):
        as_user(core, "wei").records.update(people.lead, fields={"score": 1})


def test_share_listeners_and_run_listeners_may_take_the_services(core):
    people = company(core)
    seen = []

    class Listener:
        @hookimpl
        def sharetui_share_granted(self, event, services):
            seen.append(services.records.get(event.record).name)

    with plugin_registered(core, Listener(), name="listener"):
        core.sharing.share("lead", people.lead.id, "daniel", requester=people.priya)
    assert seen == ["Mira Demir"]

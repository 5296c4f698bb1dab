"""Saved views in the TUI (issue 19): a picker on the Leads and Opportunities bars, and
V saves what the list shows as a view. A view shows only what the viewer may read."""

from __future__ import annotations

from typing import Any

from test_flows import (
    demo,  # noqa: F401 - the fixture
    listed_ids,
    press,
    record_notifications,
    run,
    settle,
    type_text,
    until,
)
from textual.pilot import Pilot
from textual.widgets import Input, Select

from sharetui.core.records.saved_views import parse_condition
from sharetui.core.service import Core
from sharetui.tui.app import make_app
from sharetui.tui.screens.modals import PromptModal


def _expected(core: Core, user: str, name: str) -> list[int]:
    viewer = core.users.get(user)
    view = core.saved_views.get(name, "lead", actor=viewer)
    return [row.id for row in core.saved_views.page(view, actor=viewer, limit=1000).rows]


def test_the_view_picker_shows_a_views_list_for_the_viewer(demo: Core) -> None:  # noqa: F811
    admin = demo.users.get("admin")
    demo.saved_views.add(
        "qualified", "lead", actor=admin, conditions=[parse_condition("lead.stage = qualified")], shared=True
    )
    app = make_app(demo, acting="kenji", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        everything = listed_ids(app)
        picker = app.query_one("#view", Select)
        assert [str(label) for label, _ in picker._options if _ is not Select.NULL] == ["qualified"]
        picker.value = "qualified"
        expected = _expected(demo, "kenji", "qualified")
        await until(pilot, lambda: listed_ids(app) == expected)
        assert expected and set(expected) < set(everything)  # kenji's qualified leads only
        # Typing in the filter leaves the view: a plain filter again.
        app.query_one("#filter", Input).focus()
        await type_text(pilot, "a")
        await until(pilot, lambda: app.query_one("#view", Select).value is Select.NULL)

    run(app, story)


def test_v_saves_the_list_as_a_view(demo: Core) -> None:  # noqa: F811
    app = make_app(demo, acting="kenji", demo=True, poll_seconds=0)
    said = record_notifications(app)

    async def story(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.query_one("#filter", Input).focus()
        await type_text(pilot, "an")
        await until(pilot, lambda: app.query_one("#filter", Input).value == "an")
        await press(pilot, "escape")
        await press(pilot, "V")
        assert isinstance(app.screen, PromptModal)
        await type_text(pilot, "my an")
        await press(pilot, "enter")
        await settle(pilot)
        view = demo.saved_views.get("my an", "lead", actor=demo.users.get("kenji"))
        assert view.search == "an" and not view.shared
        assert any("Saved the view 'my an'" in line for line in said), said
        assert app.query_one("#view", Select).value == "my an"
        # The same name again is refused in words, and nothing changes.
        await press(pilot, "V")
        await type_text(pilot, "my an")
        await press(pilot, "enter")
        await settle(pilot)
        assert any("Not saved:" in line and "exists" in line for line in said), said

    run(app, story)


def test_a_picked_view_brings_its_sort_which_a_header_or_a_key_changes(demo: Core) -> None:  # noqa: F811
    """A view saved in a sort lists in it (the header shows which); O reverses it while
    the view stays picked, and V saves the list as it is sorted now."""
    from textual.widgets import DataTable
    from textual.widgets.data_table import ColumnKey

    admin = demo.users.get("admin")
    demo.saved_views.add(
        "by company",
        "lead",
        actor=admin,
        conditions=[parse_condition("lead.stage = qualified")],
        sort="-company",
    )
    app = make_app(demo, acting="admin", demo=True, poll_seconds=0)

    async def story(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        table = app.query_one("#leads").query_one(DataTable)
        app.query_one("#view", Select).value = "by company"
        expected = _expected(demo, "admin", "by company")
        await until(pilot, lambda: listed_ids(app) == expected)
        assert table.columns[ColumnKey("company")].label.plain == "company ▼"
        table.focus()
        await press(pilot, "O")
        view = demo.saved_views.get("by company", "lead", actor=admin)
        upward = [row.id for row in demo.saved_views.page(view, actor=admin, limit=1000, sort="company").rows]
        assert listed_ids(app) == upward and upward == expected[::-1]
        assert app.query_one("#view", Select).value == "by company"
        await press(pilot, "V")
        await type_text(pilot, "upward")
        await press(pilot, "enter")
        await settle(pilot)
        assert demo.saved_views.get("upward", "lead", actor=admin).sort == "company"

    run(app, story)

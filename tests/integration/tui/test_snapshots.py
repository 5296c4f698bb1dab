"""How the terminal UI looks, at fixed terminal sizes (pytest-textual-snapshot).

Deterministic by construction: the frozen test clock (2026-03-02 09:00 UTC), the
demo bank loaded at that instant, no polling, and every screenshot taken after
all thread workers have finished. Regenerate with ``--snapshot-update`` and look
at the SVGs under ``__snapshots__/`` before committing them.

Skipped on PostgreSQL: the pictures are the same, but the SVGs were made on
SQLite and a sequence may hand out different ids there.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from sharetui.core.service import Core
from sharetui.ops.loader import Loader
from sharetui.tui.app import ShareTuiApp, make_app

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip()),
    reason="snapshots are recorded on SQLite",
)

SAMPLE_DATA = Path(__file__).resolve().parents[3] / "sample_data"
Compare = Callable[..., bool]


@pytest.fixture
def demo(core: Core) -> Core:
    """The ``core`` fixture (frozen clock at T0) with the Example Bank loaded."""
    Loader(core).load(SAMPLE_DATA, actor=None)
    return core


def app_as(core: Core, username: str) -> ShareTuiApp:
    app = make_app(core, acting=username, demo=True, poll_seconds=0)
    app.animation_level = "none"  # a tab underline caught mid-slide would differ under load
    return app


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until no thread worker is running and what they handed back is laid out.

    A DataTable measures new rows when it next goes idle; a screenshot taken
    before that (it happens on a busy machine) shows header-wide columns; so does
    one taken in the same turn as the measurement, before the repaint.
    """
    app = pilot.app
    quiet = 0
    for _ in range(40):
        await app.workers.wait_for_complete()
        await pilot.pause()
        measured = not any(t._require_update_dimensions for t in app.screen.query(DataTable))
        # Twice in a row: the pause after a measurement lets the widths it found repaint.
        quiet = quiet + 1 if measured and all(worker.is_finished for worker in app.workers) else 0
        if quiet == 2:
            return
    raise AssertionError("the app never settled")


def keys(*pressed: str, lead: int | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A ``run_before``: optionally open lead ``lead`` from the list, then press
    ``pressed``, settling after each step so the picture shows finished work."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        if lead is not None:
            view = pilot.app.query_one("#leads")
            view.query_one(DataTable).move_cursor(row=view.row_ids.index(lead))
            await pilot.press("enter")
            await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def test_leads_as_admin_at_80x24(demo: Core, snap_compare: Compare) -> None:
    """At 80x24 the admin's Leads list keeps the section bar (Users included, for
    an admin), the filter and status line, the footer keys and the first rows:
    id, name, "your access", owner and stage all fit; the company column gives
    way below 100 columns (see test_the_access_column_fits_at_80_columns)."""
    assert snap_compare(app_as(demo, "admin"), terminal_size=(80, 24), run_before=keys())


def test_leads_as_admin_at_160x50(demo: Core, snap_compare: Compare) -> None:
    """At 160x50 every column fits, "your access" reads "role (edit)" for the
    admin, and the 50 demo leads fill the height."""
    assert snap_compare(app_as(demo, "admin"), terminal_size=(160, 50), run_before=keys())


def test_leads_as_a_sales_user_show_how_he_reaches_each(demo: Core, snap_compare: Compare) -> None:
    """daniel's list holds only what he may see, and the "your access" column says
    how: own, through his sales group, or a time-limited share with its end."""
    assert snap_compare(app_as(demo, "daniel"), terminal_size=(120, 40), run_before=keys())


def test_a_lead_with_an_active_share_shows_the_countdown(demo: Core, snap_compare: Compare) -> None:
    """L003 as its owner priya: fields, then the Shares tab with daniel's edit share
    in the context of A003 and 12 days left (the live countdown at the frozen clock)."""
    assert snap_compare(app_as(demo, "priya"), terminal_size=(120, 40), run_before=keys(lead=3))


def test_the_share_dialog(demo: Core, snap_compare: Compare) -> None:
    """s on priya's L001: the share dialog with the user picker, the default 7d
    duration and its expiry preview, access, context activity and until-completed."""
    assert snap_compare(app_as(demo, "priya"), terminal_size=(120, 40), run_before=keys("s", lead=1))


def test_the_automations_section(demo: Core, snap_compare: Compare) -> None:
    """Section 3 as admin: the five demo automations, all published, with their
    trigger (the schedule one described in words, running past the right edge) and
    the admin's automation keys in the footer (no Publish: the first is published)."""
    assert snap_compare(app_as(demo, "admin"), terminal_size=(120, 40), run_before=keys("3"))


def test_the_history_section(demo: Core, snap_compare: Compare) -> None:
    """Section 4 as admin: the ledger, one row per request newest first by time,
    with duration and who asked; the filters with the day range; the per-day chart
    of shares granted, expired and revoked; and the Export CSV key."""
    assert snap_compare(app_as(demo, "admin"), terminal_size=(120, 40), run_before=keys("4"))


def test_the_help_screen(demo: Core, snap_compare: Compare) -> None:
    """? opens every key from the one registry, grouped by where it applies, with
    the ids users remap in SHARETUI_KEYMAP, each shown in full."""
    assert snap_compare(app_as(demo, "priya"), terminal_size=(120, 40), run_before=keys("question_mark"))


def test_a_history_row_opened_shows_its_lifecycle(demo: Core, snap_compare: Compare) -> None:
    """Enter on the fourth ledger row (daniel's edit share of L003): the detail pane
    under the ledger with the request, who asked and what became of it."""
    assert snap_compare(
        app_as(demo, "admin"), terminal_size=(120, 40), run_before=keys("4", "down", "down", "down", "enter")
    )


def test_a_records_timeline(demo: Core, snap_compare: Compare) -> None:
    """L012 as admin, the Timeline tab: sofia's two shares as bars on one axis with
    the now marker; the until-completed one marked."""
    assert snap_compare(app_as(demo, "admin"), terminal_size=(120, 40), run_before=keys("tab", lead=12))


def test_the_renew_dialog(demo: Core, snap_compare: Compare) -> None:
    """n on L003 as priya: only access and a new duration, the button says Renew."""
    assert snap_compare(app_as(demo, "priya"), terminal_size=(120, 40), run_before=keys("n", lead=3))


def test_leads_at_60x15(demo: Core, snap_compare: Compare) -> None:
    """The smallest terminal: short section names, the expiring-soon count, the
    list with its access column, and a footer that starts with ? Help and q Quit."""
    assert snap_compare(app_as(demo, "admin"), terminal_size=(60, 15), run_before=keys())

"""The business-hours check: share-only access outside business hours is denied."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sharetui_business_hours as plugin

from sharetui.testing import plugin_registered, small_company, temporary_core

MONDAY_10 = "2026-03-02T10:00:00Z"


@pytest.fixture
def company(tmp_path, monkeypatch):
    for key in ("SHARETUI_BUSINESS_HOURS", "SHARETUI_BUSINESS_DAYS", "SHARETUI_BUSINESS_TZ"):
        monkeypatch.delenv(key, raising=False)
    with temporary_core(tmp_path, now=MONDAY_10) as core:
        bank = small_company(core)
        core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.owner, duration="30d")
        with plugin_registered(core, plugin):
            yield bank


def test_shared_access_is_allowed_inside_business_hours(company):
    assert company.core.access.can("daniel", company.lead, "read")


@pytest.mark.parametrize(
    ("offset", "why"),
    [
        (timedelta(hours=8), "Monday 18:00"),
        (timedelta(days=5), "Saturday 10:00"),
        (timedelta(hours=-2), "08:00"),
    ],
)
def test_shared_access_is_denied_outside_business_hours(company, offset, why):
    company.core.clock.advance(offset)
    assert not company.core.access.can("daniel", company.lead, "read"), why
    decision = company.core.access.explain("daniel", company.lead, actor=None)
    assert any("business hours" in d for d in decision.denials)


def test_owners_groups_and_roles_are_never_restricted(company):
    company.core.clock.advance(timedelta(days=5))  # Saturday
    assert company.core.access.can("priya", company.lead, "edit")  # owner
    assert company.core.access.can("admin", company.lead, "edit")  # role


def test_time_zone_and_days_are_configurable(company, monkeypatch):
    monkeypatch.setenv("SHARETUI_BUSINESS_TZ", "Asia/Tokyo")  # Monday 10:00 UTC is 19:00 in Tokyo
    assert not company.core.access.can("daniel", company.lead, "read")
    monkeypatch.setenv("SHARETUI_BUSINESS_HOURS", "09:00-20:00")
    assert company.core.access.can("daniel", company.lead, "read")
    monkeypatch.setenv("SHARETUI_BUSINESS_DAYS", "tue-fri")
    assert not company.core.access.can("daniel", company.lead, "read")


def test_bad_configuration_fails_closed_and_is_recorded(company, monkeypatch):
    monkeypatch.setenv("SHARETUI_BUSINESS_HOURS", "nine to five")
    assert not company.core.access.can("daniel", company.lead, "read")
    errors = company.core.plugins.plugins["business-hours"].errors
    assert any("SHARETUI_BUSINESS_HOURS" in e for e in errors)


def test_parse_reads_day_ranges_and_lists():
    hours = plugin.parse("08:30-12:00", "mon,wed-thu", "Europe/London")
    assert hours.days == frozenset({0, 2, 3})
    with pytest.raises(ValueError, match="BUSINESS_TZ"):
        plugin.parse("09:00-17:00", "mon-fri", "Mars/Olympus")

"""Config field types: number, duration, user, group, choice, list_of, optional with
default, each validated in the product's "key: what is wrong" format."""

from __future__ import annotations

import re

from sharetui.sdk import ConfigField, choice, duration, group, list_of, number, user, validate_config
from sharetui.testing import as_user, company

SCHEMA = {
    "threshold": ConfigField(number, default=80),
    "ratio": ConfigField(float),
    "lasts": ConfigField(duration, default="7d"),
    "who": ConfigField(user),
    "team": ConfigField(group),
    "access": ConfigField(choice("read", "edit"), default="read"),
    "watchers": ConfigField(list_of(user)),
    "limits": ConfigField(list_of(number)),
}


def test_valid_values_pass_and_ints_are_numbers():
    assert validate_config(SCHEMA, {"threshold": 80, "ratio": 2, "lasts": "1d12h", "limits": [1, 2.5]}) == []
    assert validate_config(SCHEMA, {}) == []  # every key optional here


def test_each_type_says_what_is_wrong():
    errors = validate_config(
        SCHEMA,
        {
            "threshold": "80",
            "ratio": True,
            "lasts": "3 parsecs",
            "access": "write",
            "limits": [1, "two"],
            "extra": 1,
        },
    )
    assert (
        errors[0]
        == "extra: unknown key (known: access, lasts, limits, ratio, team, threshold, watchers, who)"
    )
    assert "threshold: expected a number, got text" in errors
    assert "ratio: expected float, got true/false" in errors
    assert any(e.startswith("lasts: ") for e in errors)
    assert "access: 'write' is not one of read, edit" in errors
    assert "limits: entry 1: expected a number, got text" in errors


def test_users_and_groups_are_looked_up_when_services_are_given(core):
    company(core)
    users = as_user(core, None).users
    assert validate_config(SCHEMA, {"who": "daniel", "team": "Sales", "watchers": ["wei"]}, users) == []
    assert validate_config(SCHEMA, {"who": "dan", "team": "Sails", "watchers": ["wei", "x"]}, users) == [
        "who: no user named 'dan'",
        "team: no sales group named 'Sails'",
        "watchers: entry 1: no user named 'x'",
    ]


def test_an_automation_file_is_checked_against_them(core):
    import pytest

    from sharetui.errors import UsageError
    from sharetui.testing import plugin_registered

    people = company(core)
    import sharetui_least_loaded as plugin

    expected = re.escape("actions[0].group: no sales group named 'Sails'")
    with plugin_registered(core, plugin), pytest.raises(UsageError, match=expected):
        core.automations.validate(
            {
                "name": "x",
                "trigger": {"type": "new_lead"},
                "actions": [{"type": "share_with_least_loaded", "group": "Sails"}],
            }
        )
    assert people.admin

"""Regression: a tampered ``--after`` cursor ended in an OverflowError traceback
(``leads list --after <garbage>``). A cursor is input: whatever it holds, a bad
one is exit 2 with one ``error:`` line, and the decoder never lets anything
reach the database that the database cannot take."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharetui.core.access.listing import decode_cursor, encode_cursor
from sharetui.domain.ids import MAX_ID
from sharetui.errors import UsageError


def packed(raw: str | bytes) -> str:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def storable(values: list[Any]) -> bool:
    """What the list queries can bind: ids SQLite and PostgreSQL hold, texts they store."""
    for v in values:
        if type(v) is int:
            if not 0 <= v <= MAX_ID:
                return False
        elif isinstance(v, str):
            v.encode("utf-8")  # raises on a lone surrogate
            if "\x00" in v:
                return False
        else:
            return False
    return 1 <= len(values) <= 2


def decodes_or_refuses(cursor: str) -> None:
    try:
        values = decode_cursor(cursor)
    except UsageError as exc:
        assert exc.exit_code == 2 and "cursor" in exc.message
        return
    assert isinstance(values, list) and storable(values), values


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_any_text_as_a_cursor_decodes_to_storable_values_or_is_refused(text: str) -> None:
    decodes_or_refuses(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_packed_as_a_cursor_decode_or_are_refused(data: bytes) -> None:
    decodes_or_refuses(packed(data))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_packed_as_a_cursor_decodes_or_is_refused(value: Any) -> None:
    decodes_or_refuses(packed(json.dumps(value)))


@pytest.mark.parametrize(
    "raw",
    [
        "[99999999999999999999]",  # the tester's OverflowError: too big for SQLite's INTEGER
        f"[{MAX_ID + 1}]",
        '["Mira Demir", 99999999999999999999]',
        "[1e400]",
        "[-1]",
        "[true]",
        '["\\ud800", 1]',  # a lone surrogate: no UTF-8 for the database
        '["a\\u0000b", 1]',
        "[" * 50_000 + "]" * 50_000,  # RecursionError in json
        "[1, 2, 3]",
        "{}",
    ],
)
def test_known_bad_cursors_are_refused(raw: str) -> None:
    with pytest.raises(UsageError, match="bad cursor"):
        decode_cursor(packed(raw))


def test_cursors_the_lists_make_round_trip() -> None:
    for values in ([1], [MAX_ID], ["Élodie Ünal", 7], ["", 0]):
        assert decode_cursor(encode_cursor(values)) == values


@pytest.mark.parametrize(
    "cursor",
    [
        packed("[99999999999999999999]"),
        packed('["x", 99999999999999999999]'),
        packed('["\\ud800", 1]'),
        "garbage!",
        "é",
        "A" * 10_000,
    ],
)
@pytest.mark.parametrize("sort", ["id", "name"])
def test_leads_list_with_a_tampered_cursor_is_exit_2_with_one_line(bank, cli, cursor: str, sort: str) -> None:
    result = cli("leads", "list", "--sort", sort, "--after", cursor)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cursor" in lines[0], result.stderr

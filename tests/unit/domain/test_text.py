"""Text from outside and text going out (``sharetui.domain.text``): what cannot be
stored is named, and what a terminal would act on is shown as an escape."""

from __future__ import annotations

import json

import pytest

from sharetui.domain.text import NEWLINE_MARK, find_text_problem, text_problem, visible

ATTACK = "Mira\x1b]0;pwned\x07 \x1b[8mhidden\x1b[0m"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (ATTACK, "Mira\\x1b]0;pwned\\x07 \\x1b[8mhidden\\x1b[0m"),  # OSC retitle, CSI conceal
        ("a\x9b2Jb", "a\\x9b2Jb"),  # the one-character CSI of C1
        ("bell\x07 backspace\x08 del\x7f", "bell\\x07 backspace\\x08 del\\x7f"),
        ("Trojan \u202eevil\u202c \u2066x\u2069 \u200f", "Trojan \\u202eevil\\u202c \\u2066x\\u2069 \\u200f"),
        ("line\u2028sep", "line\\u2028sep"),
        ("over\rwrite", "over\\x0dwrite"),  # a lone CR would go back and overwrite the line
        ("two\r\nlines\nhere\tand tab", "two\nlines\nhere\tand tab"),  # line breaks and tabs stay
        ("undecodable \udce9", "undecodable \\udce9"),
        ("Tomás Ortega 👩‍💻 中文", "Tomás Ortega 👩‍💻 中文"),  # ordinary text as it is (ZWJ included)
    ],
)
def test_visible_shows_what_a_terminal_would_act_on(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert not any(c in visible(raw) for c in "\x1b\x07\x9b\x7f\u202e\r")


def test_one_line_marks_line_breaks_and_keeps_plain_text_as_it_is() -> None:
    assert visible("call back\r\nafter\nlunch\tplease", one_line=True) == (
        f"call back{NEWLINE_MARK}after{NEWLINE_MARK}lunch please"
    )
    plain = "Amara Okonkwo"
    assert visible(plain) is plain and visible(plain, one_line=True) is plain


def test_text_problem_names_nul_and_lone_surrogates() -> None:
    assert text_problem("fine, Café ☕") is None
    assert text_problem("a\x00b") == "contains a NUL character"
    assert text_problem(json.loads('"x\\ud800"')) == "is not UTF-8 text (it holds the lone surrogate \\ud800)"
    assert text_problem(json.loads('"\\ud83d\\ude00"')) is None  # a pair is an emoji


def test_find_text_problem_names_the_path_of_keys_and_values() -> None:
    item = json.loads('{"UserId": "sofia", "fields": {"city": "Leeds", "tags": ["ok", "b\\u0000d"]}}')
    assert find_text_problem(item) == "fields.tags[1] contains a NUL character"
    assert find_text_problem(json.loads('{"ok": 1, "k\\udfff": 2}'), "fields") == (
        "fields[key 1] is not UTF-8 text (it holds the lone surrogate \\udfff)"
    )
    assert find_text_problem({"a": [1, 2.5, None, True, {"b": "c"}]}) is None
    # Nested as deep as a parser allows: no recursion, no RecursionError.
    deep: list[object] = ["\x00"]
    for _ in range(50_000):
        deep = [deep]
    assert find_text_problem(deep) is not None
    assert find_text_problem(deep).endswith("[0] contains a NUL character")  # type: ignore[union-attr]

"""Text from outside and text going out: what input may hold, and how output shows
what a terminal would otherwise execute (DESIGN §9: "output never carries terminal
control sequences from data").

Input: text that no database stores is refused before anything is written. Python
hands over undecodable bytes (argv, ``surrogateescape``) and JSON's ``"\\ud800"``
escapes as lone surrogates, which neither SQLite nor PostgreSQL can encode, and
PostgreSQL refuses the NUL character in text. :func:`text_problem` names either;
:func:`find_text_problem` walks a parsed document (objects, arrays, keys and values)
and also refuses numbers that are not finite: Python's ``json`` reads ``NaN``,
``Infinity`` and ``1e999``, which it would then write back as JSON no other parser
takes (``--json`` output, the HTTP API's replies).

Output: :func:`visible` rewrites the characters a terminal acts on instead of
showing them as Python writes them in a string literal, so they are seen, never
run: ``ESC`` becomes ``\\x1b``, a right-to-left override ``\\u202e``. Rewritten are
the C0 controls (except tab and line feed), DEL, the C1 controls (``\\x9b`` is a
one-byte CSI), the bidirectional formatting characters (overrides, embeddings,
isolates and marks, which reorder or hide text: "Trojan Source"), the line and
paragraph separators, and lone surrogates. A ``\\r\\n`` pair counts as one line
break. Everything else, accents, emoji and joiners included, is shown as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

# What a terminal executes or what reorders or hides text, but tab and line feed.
_UNSAFE = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 (but \t \n), DEL, C1
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff"  # lone surrogates (undecodable input): unprintable, unencodable
)
_MULTILINE = re.compile(f"\r\n|[{_UNSAFE}]")
_ONE_LINE = re.compile(f"\r\n|[{_UNSAFE}\t\n]")
NEWLINE_MARK = "↵"
"""What a line break shows as where a value must stay on one line (a table cell of the TUI)."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r\n" or char == "\n":
        return NEWLINE_MARK
    if char == "\t":
        return " "
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape_keeping_lines(match: re.Match[str]) -> str:
    return "\n" if match.group() == "\r\n" else _escape(match)


def visible(text: str, *, one_line: bool = False) -> str:
    """``text`` with every character a terminal would act on written out as an escape.

    Args:
        text: text from data (a record's name, a note, a reason).
        one_line: also show line breaks as ``↵`` and tabs as spaces, for places that
            are one line high (the TUI's table cells); otherwise they are kept, and a
            Rich table lays a multi-line value out on several lines of its cell.

    Returns:
        ``text`` itself when it holds nothing to rewrite (the common case, checked
        first with :meth:`str.isprintable`, which is false for everything rewritten).
    """
    if text.isprintable():
        return text
    if one_line:
        return _ONE_LINE.sub(_escape, text)
    return _MULTILINE.sub(_escape_keeping_lines, text)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None: a lone surrogate (input that
    was not UTF-8, or a ``\\ud800`` JSON escape) or a NUL character."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start]
            return f"is not UTF-8 text (it holds the lone surrogate \\u{ord(bad):04x})"
    return None


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters (the last one ``…``): an error that repeats a
    caller's input repeats a bounded part of it, however long the input was."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


NOT_FINITE = "is not a finite number (JSON has no NaN or Infinity)"


def find_text_problem(value: Any, path: str = "") -> str | None:
    """The first text in ``value`` (a parsed JSON or TOML document: objects, arrays,
    keys and values) that :func:`text_problem` refuses, or number that is not finite
    (NaN, an infinity), named by its path, e.g. ``fields.city contains a NUL
    character``; None when all of it can be stored.

    ``path`` names ``value`` itself (``""`` at the top); a key that cannot be stored
    is named by its position, ``fields[key 2]``, since the key itself cannot be shown.
    """
    found = locate_text_problem(value, path)
    if found is None:
        return None
    where, problem = found
    return f"{where or 'the value'} {problem}"


def locate_text_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """:func:`find_text_problem` as ``(path, problem)``, for callers that place the path
    themselves (an automation file names its line). Walked without recursion: the
    deepest nesting a parser hands over is no problem here. Paths are spelled out only
    for the part found (a batch checks thousands of values that are all fine)."""
    # (where the parent is, the key or index under it, the value); the parent's place is
    # itself such a triple, or the path given for the top.
    stack: list[tuple[Any, Any, Any]] = [(None, None, value)]
    while stack:
        node = stack.pop()
        item = node[2]
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return _spelled(node, path), problem
        elif isinstance(item, float) and not math.isfinite(item):
            return _spelled(node, path), NOT_FINITE
        elif isinstance(item, Mapping):
            inner: list[tuple[Any, Any, Any]] = []
            for position, (key, child) in enumerate(item.items()):
                problem = text_problem(key) if isinstance(key, str) else None
                if problem:
                    where = _spelled(node, path)
                    return (f"{where}[key {position}]" if where else f"key {position}"), problem
                inner.append((node, key, child))
            stack.extend(reversed(inner))
        elif isinstance(item, (list, tuple)):
            stack.extend((node, [i], child) for i, child in reversed(list(enumerate(item))))
    return None


def _spelled(node: tuple[Any, Any, Any], top: str) -> str:
    """The path of a value :func:`locate_text_problem` walked to: ``a.b[2].c``."""
    parts: list[Any] = []
    while node[0] is not None:
        parts.append(node[1])
        node = node[0]
    where = top
    for part in reversed(parts):
        # An index into a list is kept as [index]; a key is a key.
        where = f"{where}[{part[0]}]" if isinstance(part, list) else f"{where}.{part}" if where else str(part)
    return where

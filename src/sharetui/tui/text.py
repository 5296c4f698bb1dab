"""Data as the TUI shows it: Rich ``Text``, never markup, with every character a
terminal would act on shown as an escape (DESIGN §9; :func:`sharetui.domain.text.visible`).

Rich's ``Text`` strips a few control codes (bell, backspace, CR) but keeps ``ESC``
and the C1 controls, and Textual writes what it is given: a name holding
``\\x1b]0;title\\x07`` would retitle the terminal. Every value from the database
that the TUI draws goes through :func:`data_text` (one line: a table cell) or
:func:`detail_text` (line breaks kept: a record's fields).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from sharetui.domain.text import visible


def data_text(value: Any, style: str = "") -> Text:
    """``value`` as a one-line ``Text`` (a table cell): line breaks show as ``↵``."""
    text = "" if value is None else str(value)
    return Text(visible(text, one_line=True), style=style)


def detail_text(value: Any, style: str = "") -> Text:
    """``value`` as ``Text`` that keeps its line breaks (a record's fields, a trace)."""
    text = "" if value is None else str(value)
    return Text(visible(text), style=style)


def line(*parts: str | tuple[Any, str]) -> Text:
    """One line of a detail view from pieces: a plain string is the screen's own words,
    a ``(value, style)`` pair is data (made visible) in that style."""
    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            out.append_text(detail_text(part[0], part[1]))
        else:
            out.append(part)
    return out


def amount_text(value: float | int | None) -> str:
    """An amount as every screen shows it: ``380,000``, or ``1,250.50`` when it has cents."""
    if value is None:
        return "-"
    number = float(value)
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


__all__ = ["amount_text", "data_text", "detail_text", "line"]

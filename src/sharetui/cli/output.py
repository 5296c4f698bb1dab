"""Printing: one JSON document with ``--json``, rich tables otherwise.

Everything printed here may hold data (a lead's name, a note, a plugin's reason),
and data never drives the terminal (DESIGN §9): every string goes through
:func:`sharetui.domain.text.visible` first, so an ``ESC`` in a name prints as the
four characters ``\\x1b`` and a right-to-left override as ``\\u202e``; line breaks
stay line breaks (a multi-line note takes several lines of its cell). Strings
become ``Text`` before Rich sees them, never markup: a name like ``[bold]`` is
shown as written. ``--json`` keeps the data exact: ``json.dumps`` already writes
C0 controls as ``\\u001b``; :func:`print_json` escapes the rest the same way (the
C1 controls, bidirectional controls, line separators and lone surrogates, which
it would otherwise write raw), so the document decodes to the same values.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sharetui.domain.text import visible


def console() -> Console:
    # Piped output is not cut to 80 columns: rows stay whole for grep and less.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
    return Console(file=sys.stdout, soft_wrap=False, highlight=False, width=width)


def err_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def shown(value: Any, style: str = "") -> Text:
    """``value`` as Rich ``Text`` a terminal shows and never executes (see the module doc)."""
    return Text(visible("" if value is None else str(value)), style=style)


# What json.dumps(ensure_ascii=False) leaves raw and a terminal may act on. In a JSON
# document they can only stand inside strings, where a \uXXXX escape means the same.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(data: Any) -> str:
    """``data`` as the one JSON document ``--json`` prints (exact, and terminal-safe)."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return _JSON_UNSAFE.sub(_json_escape, text) if _JSON_UNSAFE.search(text) else text


def print_json(data: Any) -> None:
    sys.stdout.write(json_text(data) + "\n")


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None
) -> None:
    # Titles and captions as Text (a title holds data: "lead 7: <its name>"), in the styles
    # Rich gives title and caption strings.
    t = Table(
        title=None if title is None else shown(title, "table.title"),
        caption=None if caption is None else shown(caption, "table.caption"),
        header_style="bold",
        expand=False,
    )
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[shown(v) for v in row])
    console().print(t)


def say(message: str, style: str | None = None) -> None:
    console().print(shown(message, style or ""))


def kv(title: str, pairs: Sequence[tuple[str, Any]]) -> None:
    t = Table(title=shown(title, "bold"), show_header=False, box=None, title_justify="left")
    t.add_column(style="dim")
    t.add_column(overflow="fold")
    for key, value in pairs:
        t.add_row(shown(key), shown("-" if value in (None, "") else value))
    console().print(t)


class _VisibleWriter:
    """A text stream that writes what it is given through :func:`visible` (a CSV export
    printed on a terminal); ``\\r\\n`` and ``\\n`` line ends stay line ends."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(visible(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def data_stream() -> IO[str]:
    """Standard output for a data export (CSV): as it is into a file or a pipe, and with
    control characters shown, not executed, when it is a terminal."""
    return sys.stdout if not sys.stdout.isatty() else _VisibleWriter(sys.stdout)  # type: ignore[return-value]

"""Printing: one JSON document with ``--json``, rich tables otherwise."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def console() -> Console:
    # Piped output is not cut to 80 columns: rows stay whole for grep and less.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
    return Console(file=sys.stdout, soft_wrap=False, highlight=False, width=width)


def err_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None
) -> None:
    t = Table(title=title, caption=caption, header_style="bold", expand=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[Text("" if v is None else str(v)) for v in row])
    console().print(t)


def say(message: str, style: str | None = None) -> None:
    console().print(Text(message, style=style or ""))


def kv(title: str, pairs: Sequence[tuple[str, Any]]) -> None:
    t = Table(title=title, show_header=False, box=None, title_justify="left", title_style="bold")
    t.add_column(style="dim")
    t.add_column(overflow="fold")
    for key, value in pairs:
        t.add_row(key, Text("-" if value in (None, "") else str(value)))
    console().print(t)

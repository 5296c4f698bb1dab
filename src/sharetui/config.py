"""Where the database lives and which settings are in force.

Environment overrides: ``SHARETUI_DATABASE_URL`` (or ``--db``), ``SHARETUI_NOW``,
``SHARETUI_USER``, ``SHARETUI_TZ`` (display time zone; default the machine's).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_path

APP_NAME = "sharetui"


def default_database_path() -> Path:
    """The embedded default: ``sharetui.db`` in the user's data directory."""
    return user_data_path(APP_NAME, appauthor=False) / "sharetui.db"


def normalize_database_url(value: str) -> str:
    """Turn what a user typed into a database URL.

    A URL with a scheme is kept; a bare path (``./crm.db``) becomes a SQLite URL.
    """
    text = value.strip()
    if "://" in text:
        return text
    if text == ":memory:":
        return "sqlite:///:memory:"
    return sqlite_url(Path(text).expanduser().resolve())


def sqlite_url(path: Path) -> str:
    """``sqlite:///`` + the path, with ``%``, ``?`` and ``#`` escaped: unescaped, a URL parser
    reads them as an escape, a query and a fragment, and another file would be opened."""
    text = str(path).replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    return "sqlite:///" + text


def database_url(cli_value: str | None = None, environ: dict[str, str] | None = None) -> str:
    """The database URL in force: ``--db``, then ``SHARETUI_DATABASE_URL``, then the default."""
    env = os.environ if environ is None else environ
    chosen = cli_value or env.get("SHARETUI_DATABASE_URL", "").strip()
    if chosen:
        return normalize_database_url(chosen)
    return sqlite_url(default_database_path())

"""Where the database lives and which settings are in force.

Environment overrides: ``SHARETUI_DATABASE_URL`` (or ``--db``), ``SHARETUI_NOW``,
``SHARETUI_USER``, ``SHARETUI_TZ`` (display time zone; default the machine's).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

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


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names, as :func:`sharetui.db.connect` opens it;
    ``None`` for an in-memory database or a URL that is not SQLite.

    ``sqlite:///relative.db`` is relative to the working directory and
    ``sqlite:////absolute.db`` absolute, as SQLAlchemy and peewee read them.
    """
    if not url.lower().startswith("sqlite:"):
        return None
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc == ":memory:" or path in ("/:memory:", ":memory:"):
        return None
    target = path[1:] if path.startswith("/") else path
    return Path(target).expanduser() if target else None


_SECRET_PARAMS = frozenset({"password", "passfile", "sslpassword"})
# scheme://user:password@ — up to the last '@' before any query: a password with an
# unescaped '/' or '@' in it is still covered (a URL parser would read a path or a host).
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/?#]*):[^?#]*@")


def redact_url(url: str) -> str:
    """``url`` fit to print: a password in it (``user:secret@host``, ``?password=``)
    becomes ``***``. Every message, log line and JSON document that names the
    database names it through here: messages never carry a password (DESIGN .9).
    Malformed URLs are redacted too (they are the ones error messages echo)."""
    if url.lower().startswith(("sqlite:", "file:")):
        return url  # a file path; its ':' and '@' are no credentials
    text = _USERINFO.sub(lambda m: f"{m['head']}{m['user']}:***@", url, count=1)
    head, sep, query = text.partition("?")
    if sep:
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
        text = f"{head}?{query}{fragment}"
    return text

"""sharetui: time-limited sharing of CRM leads and opportunities, from the terminal.

Plugin authors write ``from sharetui import hookimpl``; the types they receive
and return live in :mod:`sharetui.sdk`.
"""

from __future__ import annotations

from sharetui._peewee import import_peewee

import_peewee()  # before anything imports peewee: without psycopg unless PostgreSQL is opened

from sharetui.sdk.markers import hookimpl  # noqa: E402

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]

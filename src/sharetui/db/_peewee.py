"""Import peewee without its PostgreSQL driver; load the driver when PostgreSQL is opened.

peewee imports psycopg at import time when it is installed: ~0.2 s, a fifth of
the time the TUI takes to show its first screen, spent on every command even
on SQLite. :func:`import_peewee` (called first thing by ``sharetui.db``)
imports peewee with psycopg hidden, so peewee records it as absent;
:func:`enable_psycopg` (called by ``connect`` for a PostgreSQL URL) imports
psycopg and sets what peewee would have set at import. This follows peewee's
module (the names ``psycopg``, ``TransactionStatus``, ``Json_pg3``,
``Jsonb_pg3`` and ``Psycopg3Adapter.txn_*``), pinned in pyproject; the
PostgreSQL test suite runs through it.
"""

from __future__ import annotations

import sys


def import_peewee() -> None:
    if "peewee" in sys.modules or "psycopg" in sys.modules:
        return
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # `import psycopg` now raises ImportError
    try:
        import peewee  # noqa: F401
    finally:
        del sys.modules["psycopg"]


def enable_psycopg() -> None:
    """Give peewee psycopg (3) if it was imported without it. Without psycopg
    installed, peewee's own error says the driver is missing."""
    import peewee

    if peewee.psycopg is not None:
        return
    try:
        import psycopg
        from psycopg.pq import TransactionStatus
        from psycopg.types.json import Json, Jsonb
    except ImportError:
        return
    peewee.TransactionStatus = TransactionStatus
    peewee.Json_pg3 = Json
    peewee.Jsonb_pg3 = Jsonb
    adapter = peewee.Psycopg3Adapter
    adapter.txn_idle = TransactionStatus.IDLE
    adapter.txn_inerror = TransactionStatus.INERROR
    adapter.txn_unknown = TransactionStatus.UNKNOWN
    peewee.psycopg = psycopg

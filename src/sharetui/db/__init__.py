"""The store: one Peewee ``DatabaseProxy``, models, numbered migrations and prepared
statements. Peewee is imported here first, without its PostgreSQL driver (see
:mod:`sharetui.db._peewee`); the layers above take peewee's names from here."""

from sharetui.db._peewee import import_peewee

import_peewee()  # before anything imports peewee: without psycopg unless PostgreSQL is opened

from peewee import (  # noqa: E402
    SQL,
    Case,
    Database,
    DatabaseError,
    IntegrityError,
    OperationalError,
    fn,
)

from sharetui.db.connection import Dialect, connect, database, dialect, is_sqlite  # noqa: E402

__all__ = [
    "SQL",
    "Case",
    "Database",
    "DatabaseError",
    "Dialect",
    "IntegrityError",
    "OperationalError",
    "connect",
    "database",
    "dialect",
    "fn",
    "is_sqlite",
]

"""The store: one Peewee ``DatabaseProxy``, models and numbered migrations."""

from sharetui.db.connection import Dialect, connect, database, dialect, is_sqlite

__all__ = ["Dialect", "connect", "database", "dialect", "is_sqlite"]

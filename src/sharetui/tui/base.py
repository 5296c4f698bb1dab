"""The one typed way from a screen or widget to the app and its session.

Textual types ``self.app`` as a plain ``App``: what sharetui's app adds (the
session, the error handler, the helpers screens call) is unknown to a type
checker there. Screens and widgets mix in :class:`UsesApp` and write
``self.tui`` and ``self.session``; the cast is made here, once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from textual import work

if TYPE_CHECKING:
    from textual.app import App

    from sharetui.tui.app import ShareTuiApp
    from sharetui.tui.session import Session


class InApp(Protocol):
    """A screen or widget: anything Textual gives an ``app``."""

    @property
    def app(self) -> App[Any]: ...


def tui_app(node: InApp) -> ShareTuiApp:
    """The running app, typed: ``make_app`` builds the only kind there is."""
    return cast("ShareTuiApp", node.app)


class UsesApp:
    """Mixed into every screen and widget that needs the app or the session."""

    @property
    def tui(self: InApp) -> ShareTuiApp:
        """The running app."""
        return tui_app(self)

    @property
    def session(self: InApp) -> Session:
        """What the UI asks of the core (from a worker: every call reads the database)."""
        return tui_app(self).session


_Method = TypeVar("_Method", bound=Callable[..., Any])


def db_work(**options: Any) -> Callable[[_Method], _Method]:
    """Textual's ``@work(thread=True, **options)`` for a method that goes through the
    session, closing the worker thread's own connection when the method ends.

    The store keeps a connection per thread and every worker is a new thread: without
    this, each finished worker's connection stayed open until garbage collection, on
    PostgreSQL a server backend for every page turned (a test run reached the server's
    100 connections)."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def run(self: InApp, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            finally:
                tui_app(self).session.end_thread()

        return cast("_Method", work(thread=True, **options)(run))

    return decorate

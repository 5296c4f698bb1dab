"""sharetui: time-limited sharing of CRM leads and opportunities, from the terminal.

Plugin authors write ``from sharetui import hookimpl``; the types they receive
and return, and the services they may use, live in :mod:`sharetui.sdk`. The
marker is loaded on first use, so importing any part of sharetui (the domain
types, say) does not load the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sharetui.sdk.markers import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        from sharetui.sdk.markers import hookimpl

        return hookimpl
    raise AttributeError(f"module 'sharetui' has no attribute {name!r}")

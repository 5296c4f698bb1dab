"""sharetui: time-limited sharing of CRM leads and opportunities, from the terminal.

Plugin authors write ``from sharetui import hookimpl``; the types they receive
and return live in :mod:`sharetui.sdk`.
"""

from __future__ import annotations

from sharetui.sdk.markers import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]

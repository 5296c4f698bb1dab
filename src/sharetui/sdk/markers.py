"""The pluggy markers. Plugin authors write ``from sharetui import hookimpl``."""

from __future__ import annotations

import pluggy

PROJECT = "sharetui"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

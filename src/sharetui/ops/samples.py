"""Where the demo company (``sample_data/``) is."""

from __future__ import annotations

import os
from pathlib import Path

from sharetui.errors import UsageError


def sample_data_dir() -> Path:
    """``SHARETUI_SAMPLE_DATA``, else the checkout's ``sample_data/``, else ``./sample_data``."""
    candidates = []
    env = os.environ.get("SHARETUI_SAMPLE_DATA", "").strip()
    if env:
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[3] / "sample_data")
    candidates.append(Path.cwd() / "sample_data")
    for path in candidates:
        if (path / "users.json").is_file():
            return path
    raise UsageError("cannot find sample_data/: run from the sharetui checkout or set SHARETUI_SAMPLE_DATA")

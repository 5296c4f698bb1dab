"""The access-invariant machine of ``tests/unit/core/test_invariants.py``, run longer: longer
step sequences (50 by default, against 25 in the fast run), batch after batch of
examples until the time budget is spent.

``SHARETUI_STRESS_SECONDS`` is the budget (default 55 s; a batch that has
started finishes); ``SHARETUI_INVARIANT_STEPS`` the steps per example. A batch is
ten examples on SQLite and two on PostgreSQL, where one example of 50 steps takes
about half a minute (every step checks every pair, each check a round trip): a batch
of ten there overran a 55 s budget by five minutes.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter

import pytest

from unit.core.test_invariants import run_machine  # tests/ is on sys.path (conftest.py)

BATCH = 2 if os.environ.get("SHARETUI_TEST_DATABASE_URL", "").strip() else 10


def test_access_agrees_with_the_model_over_long_runs(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("sharetui.plugins"), "disabled", True)
    budget = float(os.environ.get("SHARETUI_STRESS_SECONDS", 55))
    steps = int(os.environ.get("SHARETUI_INVARIANT_STEPS", 50))
    total: Counter[str] = Counter()
    batches = 0
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        # Each batch draws fresh random examples (no example database, no fixed seed).
        total.update(run_machine(db_url, examples=BATCH, steps=steps))
        batches += 1
    with capsys.disabled():
        print(
            f"\ninvariant cases tried (long, {batches} batches): "
            + ", ".join(f"{k} {v}" for k, v in sorted(total.items()))
        )
    assert total["examples"] >= BATCH
    assert total["share completed"] and total["revoke completed"] and total["steps checked in full"]

"""The HTTP API under load (issue 18): 50 concurrent clients for 30 s on loopback
against a real ``sharetui serve``; every request is answered, and the grants,
requests and history rows agree with the replies (nothing lost or duplicated).

``SHARETUI_STRESS_HTTP_SECONDS`` sets how long (default 30); the integration suite
runs the same check for 3 s. The figures are printed (``-s``).
"""

from __future__ import annotations

import os

from serving import check_load, running_server

SECONDS = float(os.environ.get("SHARETUI_STRESS_HTTP_SECONDS", "30"))
CLIENTS = 50


def test_fifty_clients_for_thirty_seconds(bank, db_url, tmp_path) -> None:
    keys = [bank.core.keys.create(actor=who) for who in (bank.priya, bank.admin, bank.manager)]
    with running_server(db_url, "2026-03-02T09:00:00Z", tmp_path) as server:
        result = check_load(bank, server, keys, clients=CLIENTS, seconds=SECONDS)
    rate = result.answered / result.seconds
    print(
        f"\nhttp load: {CLIENTS} clients, {result.seconds:.1f} s, {result.answered} requests answered, "
        f"{rate:.0f}/s, p99 {result.p99() * 1000:.0f} ms"
    )

"""The HTTP API's benchmark: ``sharetui serve`` on 127.0.0.1 under 50 concurrent clients.

- ``http_share``: requests a second that a real ``sharetui serve`` process answers on a
  scratch copy of the company, 50 clients (threads, one keep-alive connection and the
  admin's key each) posting LeadSquared-shaped one-item Share bodies for 30 s (5 s
  with ``--quick``). Every pair (record, user) is fresh, as in ``share_api``, so each
  request is a grant; all must be answered 200. Reported.
- ``http_share_p99``: the 99th percentile of those requests' latency, in ms. Reported.

The clients run in this process and share the machine's cores with the server, as a
script on the same host would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from benchmarks.core_bench import product, raw_writer, share_item_sets
from benchmarks.harness import Bench, Figure, benchmark, reported

CLIENTS = 50
SHARE = "/v2/EntityAccess.svc/Share"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load(
    base: str, key: tuple[str, str], bodies: list[Any], seconds: float
) -> tuple[int, list[float], float]:
    """(answered 200, latencies in s, seconds) of ``CLIENTS`` clients posting ``bodies``."""
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    clock: dict[str, float] = {}
    next_body = iter(range(10**9))

    def go() -> None:
        clock["stop"] = time.monotonic() + seconds
        clock["start"] = time.perf_counter()

    ready = threading.Barrier(CLIENTS, action=go)

    def client() -> None:
        headers = {"x-LSQ-AccessKey": key[0], "x-LSQ-SecretKey": key[1]}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            ready.wait()
            while time.monotonic() < clock["stop"]:
                with lock:
                    body = bodies[next(next_body) % len(bodies)]
                t0 = time.perf_counter()
                try:
                    reply = http.post(SHARE, json=body)
                    ok = reply.status_code == 200
                except httpx.HTTPError as exc:
                    ok, reply = False, exc
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        failures.append(str(getattr(reply, "text", reply))[:200])

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"http_share: {len(failures)} requests not answered 200, e.g. {failures[0]}")
    return len(latencies), latencies, time.perf_counter() - clock["start"]


@benchmark("http_share")
def http_share(bench: Bench) -> list[Figure]:
    import httpx

    seconds = 5.0 if bench.quick else 30.0
    with bench.scratch_copy("http_share") as path:
        con = raw_writer(path)

        def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return con.execute(sql, params).fetchall()

        items = share_item_sets(rows, sets=1, size=3_000 if bench.quick else 20_000, true="1", p="?")[0]
        admin = rows("SELECT id FROM users WHERE role = 'admin' AND active = 1 ORDER BY id", ())[0][0]
        con.close()
        bodies = [[{**item, "EntityType": 3}] for item in items]
        url = f"sqlite:///{path}"
        with product(url) as core:
            key = core.keys.create(actor=core.users.get(admin), label="benchmark")
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "sharetui", "--db", url, "serve", "--port", str(port)],
            env=bench.env(),
            cwd=bench.cache_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/openapi.json", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("http_share: sharetui serve did not start")
                time.sleep(0.2)
            answered, latencies, took = _load(base, (key.access_key, key.secret_key), bodies, seconds)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    notes = (
        f"{CLIENTS} clients for {seconds:g} s on 127.0.0.1, {answered:,} one-item shares, "
        f"{os.cpu_count()} CPUs"
    )
    return [
        reported("http_share", answered / took, "requests/s", notes=notes),
        reported("http_share_p99", p99, "ms", notes=notes),
    ]

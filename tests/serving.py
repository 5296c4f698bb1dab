"""Helpers for the HTTP API's tests: a real ``sharetui serve`` process on 127.0.0.1 at a
free port, and a bounded load of concurrent clients (the integration tests, the
stress test and the benchmark share them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SHARE = "/v2/EntityAccess.svc/Share"
REVOKE = "/v2/EntityAccess.svc/Revoke"
STATUS = "/v2/EntityAccess.svc/Status/Get"
HISTORY = "/v2/EntityAccess.svc/History/Get"
ACTIVITY = "/v2/ProspectActivity.svc/Create"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_server(db_url: str, now: str | None, tmp: Path, *args: str) -> Iterator[Server]:
    """``sharetui serve`` on 127.0.0.1 at a free port, until the block ends (SIGTERM)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARETUI_")}
    env.update(SHARETUI_DATABASE_URL=db_url, SHARETUI_TZ="UTC")
    if now:
        env["SHARETUI_NOW"] = now
    log = tmp / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sharetui", "serve", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,  # no ./plugins of the checkout
        )
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sharetui serve exited {process.returncode}:\n{server.log_text()}")
            try:
                if httpx.get(server.base + "/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sharetui serve did not answer in 30 s:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class LoadResult:
    """What the clients sent and got back."""

    sent: int = 0
    answered: int = 0
    unanswered: list[str] = field(default_factory=list)
    by_status: dict[int, int] = field(default_factory=dict)
    request_ids: list[int] = field(default_factory=list)
    bodies_answered: set[int] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def share_load(
    base: str,
    keys: list[tuple[str, str]],
    bodies: list[list[dict[str, Any]]],
    *,
    clients: int,
    seconds: float,
) -> LoadResult:
    """``clients`` threads, each with its own connection and key, sending the share
    bodies round-robin for ``seconds``; every request's answer (or its absence) is
    counted, and the request ids of the successes kept."""
    result = LoadResult()
    lock = threading.Lock()
    clock: dict[str, float] = {}

    def go() -> None:  # when every client is ready: making 50 clients takes a while
        clock["stop"] = time.monotonic() + seconds
        clock["started"] = time.perf_counter()

    ready = threading.Barrier(clients, action=go)

    def client(n: int) -> None:
        access, secret = keys[n % len(keys)]
        headers = {"x-LSQ-AccessKey": access, "x-LSQ-SecretKey": secret}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            ready.wait()
            i = n
            while time.monotonic() < clock["stop"]:
                which = i % len(bodies)
                body = bodies[which]
                i += clients
                t0 = time.perf_counter()
                with lock:
                    result.sent += 1
                try:
                    reply = http.post(SHARE, json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        result.unanswered.append(repr(exc))
                    continue
                took = time.perf_counter() - t0
                data = reply.json()
                with lock:
                    result.answered += 1
                    result.bodies_answered.add(which)
                    result.latencies.append(took)
                    result.by_status[reply.status_code] = result.by_status.get(reply.status_code, 0) + 1
                    if data.get("Message", {}).get("Id"):
                        result.request_ids += [int(x) for x in data["Message"]["Id"].split(",")]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - clock["started"]
    return result


def counts() -> dict[str, int]:
    """Rows that shares, requests and history write (read in the test's own process)."""
    from sharetui.db.models import Grant, HistoryEvent, OutboxEvent, ShareRequest

    return {
        "grants": Grant.select().count(),
        "requests": ShareRequest.select().count(),
        "history": HistoryEvent.select().count(),
        "outbox": OutboxEvent.select().count(),
    }


def check_load(bank: Any, server: Server, keys: list[Any], *, clients: int, seconds: float) -> LoadResult:
    """``clients`` clients sharing 20 leads with three users for ``seconds``: every request
    answered 200, one request id per reply and none twice, and the rows written agree
    with the replies (requests, two history rows each, one grant per pair)."""
    from sharetui.db.models import ShareRequest

    core = bank.core
    leads = [
        core.records.add_lead(name=f"Load {n}", owner=bank.priya, actor=bank.admin).id for n in range(20)
    ]
    bodies = [
        [
            {
                "UserId": user,
                "Entity": 1,
                "EntityType": 3,
                "EntityId": lead,
                "AccessType": 1,
                "DurationInMinutes": 60,
            }
        ]
        for lead in leads
        for user in ("daniel", "sofia", "kenji")
    ]
    before = counts()
    result = share_load(
        server.base, [(k.access_key, k.secret_key) for k in keys], bodies, clients=clients, seconds=seconds
    )
    assert result.unanswered == [] and result.answered == result.sent > 0, result.unanswered[:3]
    assert result.by_status == {200: result.answered}, result.by_status
    ids = result.request_ids
    assert len(ids) == len(set(ids)) == result.answered  # one request per reply, none twice
    after = counts()
    assert after["requests"] - before["requests"] == result.answered
    # Each share writes two history rows (the request and granted/renewed), and every
    # (lead, user) pair holds exactly one grant however often it was shared.
    assert after["history"] - before["history"] == 2 * result.answered
    assert after["grants"] - before["grants"] == len(result.bodies_answered)
    done = ShareRequest.select().where(ShareRequest.id.in_(ids), ShareRequest.status == "completed").count()
    assert done == len(ids)
    return result

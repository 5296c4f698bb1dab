"""The HTTP API against what a fresh-eyes attacker tried (docs/security-review.md,
"HTTP API attack"): each test names the finding it holds shut. A real ``sharetui
serve`` process, called with httpx, as in test_http_api.py."""

from __future__ import annotations

import time

import httpx
import pytest

from serving import ACTIVITY, HISTORY, SHARE, STATUS, counts, running_server

NOW = "2026-03-02T09:00:00Z"


@pytest.fixture
def world(bank):
    core = bank.core
    keys = {who: core.keys.create(actor=getattr(bank, who)) for who in ("priya", "kenji", "admin", "daniel")}
    return bank, keys


@pytest.fixture
def server(world, db_url, tmp_path):
    with running_server(db_url, NOW, tmp_path) as srv:
        yield srv


def client(server, key) -> httpx.Client:
    return httpx.Client(
        base_url=server.base, params={"accessKey": key.access_key, "secretKey": key.secret_key}, timeout=30
    )


def test_a_trailing_slash_is_a_logged_404_never_a_redirect_carrying_the_secret(world, server) -> None:
    """H5: Starlette redirected ``/Status/Get/`` with 307 to the Host header's server,
    secretKey in Location."""
    _bank, keys = world
    with client(server, keys["priya"]) as http:
        reply = http.get(STATUS + "/", params={"id": 1}, headers={"Host": "evil.test"})
    assert reply.status_code == 404, reply.headers
    assert "location" not in reply.headers
    assert reply.json()["ExceptionType"] == "MXAPINotFoundException"
    time.sleep(0.3)
    assert f"key=- GET {STATUS}/ 404" in server.log_text()
    assert keys["priya"].secret_key not in server.log_text()

"""docs/api.md's curl examples, run as written against a real ``sharetui serve`` on
127.0.0.1 at a free port: the guide cannot drift from the server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from serving import running_server

DOC = ROOT / "docs" / "api.md"
_EXAMPLE = re.compile(r"<!-- example: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    return _EXAMPLE.findall(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_an_example_for_every_call() -> None:
    names = [name for name, _ in examples()]
    assert names == ["share-lead", "share-opportunity", "status", "revoke", "activity", "history", "openapi"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_every_curl_example_in_docs_api_md_works(bank, db_url, tmp_path) -> None:
    core = bank.core
    opp = core.records.add_opportunity(
        lead=bank.lead.id, name="Home loan", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    key = core.keys.create(actor=bank.priya)
    with running_server(db_url, "2026-03-02T09:00:00Z", tmp_path) as server:
        env = {
            **os.environ,
            "API": server.base,
            "ACCESS": key.access_key,
            "SECRET": key.secret_key,
            "LEAD": str(bank.lead.id),
            "ACTIVITY": str(bank.meeting.id),
            "OPP": str(opp.id),
        }
        for name, script in examples():
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, (name, done.stderr)
            reply = json.loads(done.stdout)
            if name == "openapi":
                assert reply["openapi"].startswith("3."), reply
                continue
            assert reply["Status"] == "Success", (name, reply)
            if name == "share-lead":
                env["REQUEST"] = reply["Message"]["Id"]
            if name == "history":
                events = [row["event"] for row in reply["History"]]
                assert {"granted", "revoked"} <= set(events), events

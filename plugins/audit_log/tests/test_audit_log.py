"""The audit sink: one JSON line per share lifecycle event, after commit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sharetui_audit_log as plugin

from sharetui.testing import plugin_registered, small_company, temporary_core


@pytest.fixture
def audited(tmp_path, monkeypatch):
    log = tmp_path / "logs" / "audit.jsonl"
    monkeypatch.setenv("SHARETUI_AUDIT_LOG", str(log))
    with temporary_core(tmp_path / "db") as core:
        bank = small_company(core)
        with plugin_registered(core, plugin):
            yield bank, log


def lines(log):
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def test_every_lifecycle_event_is_one_line(audited):
    bank, log = audited
    core = bank.core
    core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.owner, duration="2d")
    core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.owner, duration="2d", access="edit")
    core.sharing.share("lead", bank.lead.id, "nobody", requester=bank.owner, duration="2d")
    core.sharing.revoke("lead", bank.lead.id, "daniel", requester=bank.owner)
    core.sharing.share("opp", bank.opportunity.id, "sofia", requester=bank.owner, duration="1d")
    core.clock.advance(timedelta(hours=1))
    core.expiry.sweep()  # expiring soon (within 24 h)
    core.clock.advance(timedelta(days=1))
    core.expiry.sweep()  # expired
    kinds = [line["kind"] for line in lines(log)]
    assert kinds == ["granted", "renewed", "request_failed", "revoked", "granted", "expiring_soon", "expired"]
    expired = lines(log)[-1]
    assert expired["entity"] == "opportunity" and expired["user"] == "sofia"
    assert expired["grant"]["state"] == "expired"
    # The owner (a sales user) may not list users: the refusal does not say why (H7).
    assert lines(log)[2]["reason"] == "'nobody' is not a user who may receive shares (an active sales user)"


def test_nothing_is_written_for_a_rolled_back_change(audited):
    bank, log = audited

    class Boom(Exception):
        pass

    with pytest.raises(Boom), bank.core.db.atomic():
        bank.core.sharing.share("lead", bank.lead.id, "daniel", requester=bank.owner, duration="2d")
        raise Boom
    assert lines(log) == []
    assert bank.core.sharing.grants(actor=None) == []

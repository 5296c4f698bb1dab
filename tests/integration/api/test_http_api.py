"""The HTTP API (DESIGN §10) as a LeadSquared script meets it: a real ``sharetui serve``
process on 127.0.0.1, called with httpx, on SQLite or (with
``SHARETUI_TEST_DATABASE_URL``) PostgreSQL. Every call acts as its key's user under
the section 9 gate; bad keys get 401; bad bodies 400/413 with nothing written."""

from __future__ import annotations

import textwrap
import time
from typing import Any

import httpx
import pytest

from serving import ACTIVITY, HISTORY, REVOKE, SHARE, STATUS, check_load, counts, running_server
from sharetui.db.models import Grant
from sharetui.errors import UsageError

NOW = "2026-03-02T09:00:00Z"  # the test clock (conftest's T0)


@pytest.fixture
def world(bank):
    """The bank, an opportunity of priya's, and keys for priya (owner), kenji (may not
    read priya's lead) and the admin."""
    core = bank.core
    opp = core.records.add_opportunity(
        lead=bank.lead.id, name="Home loan", type="Home Loan", owner=bank.priya, actor=bank.admin
    )
    keys = {who: core.keys.create(actor=getattr(bank, who)) for who in ("priya", "kenji", "admin", "daniel")}
    return bank, opp, keys


@pytest.fixture
def server(world, db_url, tmp_path):
    with running_server(db_url, NOW, tmp_path) as srv:
        yield srv


def client(server, key) -> httpx.Client:
    """Keys as query parameters, as LeadSquared's examples pass them."""
    return httpx.Client(
        base_url=server.base, params={"accessKey": key.access_key, "secretKey": key.secret_key}, timeout=30
    )


def lead_share_body(bank) -> list[dict[str, Any]]:
    """LeadSquared's published "Share a Lead" body, ids adapted."""
    return [
        {
            "UserId": "daniel",
            "Entity": 1,
            "EntityType": 3,
            "EntityId": str(bank.lead.id),
            "ContextEntity": 1,
            "ContextEntityId": str(bank.meeting.id),
            "AccessType": 2,
            "DurationInMinutes": 30,
        }
    ]


def test_leadsquared_bodies_share_revoke_and_report(world, server) -> None:
    bank, opp, keys = world
    with client(server, keys["priya"]) as http:
        shared = http.post(SHARE, json=lead_share_body(bank))
        assert shared.status_code == 200, shared.text
        assert shared.json()["Status"] == "Success"
        request_id = shared.json()["Message"]["Id"]

        status = http.get(STATUS, params={"id": request_id}).json()
        assert status["Status"] == "Success" and status["ShareStatus"] == 6 and status["ErrorMessage"] is None
        [req] = status["Requests"]
        assert req["grant"]["user"] == "daniel" and req["grant"]["access"] == "edit"

        # LeadSquared's "Share an Opportunity" body, ids adapted.
        opp_body = [
            {"UserId": "kenji", "Entity": 5, "EntityType": 3, "EntityId": str(opp.id), "AccessType": 2,
             "DurationInMinutes": 30}
        ]  # fmt: skip
        assert http.post(SHARE, json=opp_body).json()["Status"] == "Success"

        revoke_body = [{k: v for k, v in lead_share_body(bank)[0].items() if k != "DurationInMinutes"}]
        revoked = http.post(REVOKE, json=revoke_body)
        assert revoked.status_code == 200 and revoked.json()["Status"] == "Success", revoked.text

        history = http.get(HISTORY, params={"entity": 1, "entityId": bank.lead.id}).json()
        events = [(row["event"], row["source"]) for row in history["History"]]
        assert ("granted", "api") in events and ("revoked", "api") in events
        assert history["Message"]["Count"] == len(history["History"])

    # Headers work as well as query parameters; a refused request is 422 with its reason.
    headers = {"x-LSQ-AccessKey": keys["priya"].access_key, "x-LSQ-SecretKey": keys["priya"].secret_key}
    again = httpx.post(server.base + REVOKE, json=revoke_body, headers=headers)
    assert again.status_code == 422
    assert again.json()["Status"] == "Error" and "no active share" in again.json()["ExceptionMessage"]
    grants = Grant.select().where(Grant.entity_id == bank.lead.id, Grant.entity_type == "lead")
    assert [g.state for g in grants] == ["revoked"]


def test_wrong_revoked_and_deactivated_keys_get_401(world, server) -> None:
    bank, _opp, keys = world
    priya = keys["priya"]
    before = counts()
    tries = [
        {},
        {"accessKey": priya.access_key},
        {"accessKey": priya.access_key, "secretKey": "sk_wrong"},
        {"accessKey": "ak_nobody", "secretKey": priya.secret_key},
        {"accessKey": keys["kenji"].access_key, "secretKey": priya.secret_key},
    ]
    for params in tries:
        reply = httpx.post(server.base + SHARE, params=params, json=lead_share_body(bank))
        assert reply.status_code == 401, (params, reply.text)
        assert (
            reply.json()["Status"] == "Error"
            and reply.json()["ExceptionType"] == "MXUnAuthorizedAccessException"
        )
    assert counts() == before
    with client(server, priya) as http:
        assert http.get(STATUS, params={"id": 1}).status_code in (200, 404)  # the key works
        bank.core.keys.revoke(priya.id, actor=bank.priya)
        assert http.post(SHARE, json=lead_share_body(bank)).status_code == 401  # at once
    with client(server, keys["daniel"]) as http:
        assert http.get(HISTORY, params={"entity": 1, "entityId": bank.lead.id}).status_code in (200, 404)
        bank.core.users.deactivate("daniel", actor=bank.admin)
        assert http.get(HISTORY, params={"entity": 1, "entityId": bank.lead.id}).status_code == 401


def test_a_record_the_key_user_may_not_read_answers_as_section_9(world, server) -> None:
    """kenji (Pre-Sales, own records only) may not read priya's lead: every call about
    it answers exactly as for a lead that does not exist, 404 with the CLI's words."""
    bank, _opp, keys = world
    with client(server, keys["priya"]) as http:
        priya_request = http.post(SHARE, json=lead_share_body(bank)).json()["Message"]["Id"]
    with client(server, keys["kenji"]) as http:
        for lead in (bank.lead.id, 999_999):
            body = [{**lead_share_body(bank)[0], "EntityId": str(lead)}]
            reply = http.post(SHARE, json=body)
            assert reply.status_code == 404, reply.text
            assert reply.json()["ExceptionMessage"] == f"no lead {lead} you may read"
            hist = http.get(HISTORY, params={"entity": 1, "entityId": lead})
            assert (
                hist.status_code == 404 and hist.json()["ExceptionMessage"] == f"no lead {lead} you may read"
            )
            act = http.post(ACTIVITY, json={"RelatedProspectId": lead, "ActivityEvent": "Email Sent"})
            assert act.status_code == 404 and act.json()["ExceptionMessage"] == f"no lead {lead} you may read"
        theirs = http.get(STATUS, params={"id": priya_request})
        assert theirs.status_code == 404
        assert theirs.json()["ExceptionMessage"] == f"no request {priya_request} you may read"
        missing = http.get(STATUS, params={"id": 999_999})
        assert missing.json()["ExceptionMessage"] == "no request 999999 you may read"


def test_what_the_key_user_may_read_but_not_change_is_refused_with_the_reason(world, server) -> None:
    """leila may read priya's lead (Pre-Sales, view) but not share it: 422 with the CLI's
    reason, the failed request kept; marketing may read it but not post on it: 403."""
    bank, _opp, _keys = world
    core = bank.core
    leila = core.keys.create(actor=bank.leila)
    nadia = core.keys.create(actor=bank.marketing)
    with client(server, leila) as http:
        reply = http.post(SHARE, json=lead_share_body(bank))
        assert reply.status_code == 422, reply.text
        assert reply.json()["ExceptionMessage"].startswith(f"leila may not share lead {bank.lead.id}")
        status = http.get(STATUS, params={"id": reply.json()["Message"]["Id"]}).json()
        assert status["ShareStatus"] == 7 and "may not share" in status["ErrorMessage"]
    with client(server, nadia) as http:
        body = {"RelatedProspectId": bank.lead.id, "ActivityEvent": "Email Sent"}
        reply = http.post(ACTIVITY, json=body)
        assert reply.status_code == 403 and reply.json()["ExceptionType"] == "MXPermissionDeniedException"
        assert http.get(HISTORY, params={"entity": 1, "entityId": bank.lead.id}).status_code == 200


def test_malformed_and_oversized_bodies_write_nothing(world, server) -> None:
    bank, _opp, keys = world
    before = counts()
    good = lead_share_body(bank)[0]
    with client(server, keys["priya"]) as http:
        cases = [
            (b"[{", 400, "not valid JSON"),
            (b"\xff\xfe", 400, "UTF-8"),
            (b"[]", 400, "no items"),
            (b'"share"', 400, "array"),
            # The second item is bad: the good first one is not written either.
            (
                httpx.Request("POST", "/", json=[good, {**good, "EntityType": 2}]).read(),
                400,
                "EntityType must be 3",
            ),
            (
                httpx.Request("POST", "/", json=[good, {**good, "ContextEntity": 4}]).read(),
                400,
                "ContextEntity",
            ),
            (b"[" + b" " * (1024 * 1024) + b"]", 413, "larger than"),
        ]
        for body, code, fragment in cases:
            reply = http.post(SHARE, content=body, headers={"Content-Type": "application/json"})
            assert reply.status_code == code, (body[:40], reply.text)
            assert reply.json()["Status"] == "Error" and fragment in reply.json()["ExceptionMessage"], (
                reply.text
            )
        bad_activity = http.post(
            ACTIVITY, json={"RelatedProspectId": bank.lead.id, "ActivityEvent": "x", "Colour": 1}
        )
        assert bad_activity.status_code == 400 and "Colour" in bad_activity.json()["ExceptionMessage"]
        assert http.get(STATUS, params={"id": "one"}).status_code == 400
        assert http.get("/v2/Nowhere.svc").status_code == 404
        assert http.get(SHARE).status_code == 405
    assert counts() == before


def test_posting_an_activity_fires_automations(world, server) -> None:
    """Another system's event, posted through the API, shares the lead as the published
    automation says (the server runs automations after each change)."""
    bank, _opp, keys = world
    core = bank.core
    definition = core.automations.parse(
        textwrap.dedent(
            """
            name = "Evaluator reads the lead"
            status = "published"
            [trigger]
            type = "new_activity_on_lead"
            activity_types = ["Loan Evaluation"]
            [[actions]]
            type = "share_lead"
            share_with = "owner_in_trigger"
            duration = "7d"
            access = "read"
            """
        ),
        "api.toml",
    )
    core.automations.add(definition, actor=bank.admin)
    body = {
        "RelatedProspectId": str(bank.lead.id),
        "ActivityEvent": "Loan Evaluation",
        "ActivityNote": "Your Activity Note",
        "ActivityDateTime": "2026-03-02 08:13:44",
        "ActivityOwnerEmail": "",
        "ActivityOwner": "sofia",
        "Fields": [{"SchemaName": "amount", "Value": "250000"}],
    }
    with client(server, keys["priya"]) as http:
        reply = http.post(ACTIVITY, json=body)
        assert reply.status_code == 200 and reply.json()["Status"] == "Success", reply.text
        activity_id = int(reply.json()["Message"]["Id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = http.get(HISTORY, params={"entity": 1, "entityId": bank.lead.id}).json()["History"]
            shared = [r for r in rows if r["event"] == "granted" and r["source"] == "automation"]
            if shared:
                break
            time.sleep(0.2)
        assert shared and shared[0]["user"] == "sofia" and shared[0]["context"] == activity_id, rows


def test_activities_on_opportunities_batches_and_leadsquared_codes(world, server) -> None:
    """The opportunity activity body (RelatedProspectId + RelatedOpportunityId), the
    activity type by its numeric id, the owner by email, and a two-item share whose ids
    Status/Get takes back joined by commas."""
    bank, opp, keys = world
    core = bank.core
    core.users.add("olga", role="sales", email="Olga@Bank.test", actor=bank.admin)
    [follow_up] = [t for t in core.records.activity_types() if t.name == "Follow-up Call"]
    [loan] = [t for t in core.records.activity_types() if t.name == "Loan Evaluation"]
    with client(server, keys["priya"]) as http:
        on_opp = {
            "RelatedProspectId": str(bank.lead.id),
            "RelatedOpportunityId": str(opp.id),
            "ActivityEvent": follow_up.id,
            "ActivityNote": "Your Activity Note",
            "ActivityDateTime": "2026-03-01 12:13:44",
            "Fields": [{"SchemaName": "mx_Custom_1", "Value": "123123123"}],
        }
        reply = http.post(ACTIVITY, json=on_opp)
        assert reply.status_code == 200, reply.text
        assert reply.json()["Message"]["RelatedId"] == str(bank.lead.id)
        wrong_lead = http.post(ACTIVITY, json={**on_opp, "RelatedProspectId": "999"})
        assert wrong_lead.status_code == 404
        by_email = {
            "RelatedProspectId": bank.lead.id,
            "ActivityEvent": loan.id,
            "ActivityOwnerEmail": "olga@bank.test",
        }
        made = http.post(ACTIVITY, json=by_email)
        assert made.status_code == 200, made.text
        detail = core.records.detail(("lead", bank.lead.id), actor=bank.admin)
        [posted] = [a for a in detail["activities"] if a["id"] == int(made.json()["Message"]["Id"])]
        assert posted["owner"] == "olga"
        unknown = http.post(ACTIVITY, json={**by_email, "ActivityOwnerEmail": "ghost@bank.test"})
        assert unknown.status_code == 400

        plain = {k: v for k, v in lead_share_body(bank)[0].items() if not k.startswith("Context")}
        two = [*lead_share_body(bank), {**plain, "UserId": "sofia"}]
        shared = http.post(SHARE, json=two)
        assert shared.status_code == 200, shared.text
        ids = shared.json()["Message"]["Id"].split(",")
        assert len(ids) == 2
        status = http.get(STATUS, params={"id": ",".join(ids)}).json()
        assert status["ShareStatus"] == 6 and [r["request_id"] for r in status["Requests"]] == [
            int(i) for i in ids
        ]


def test_logs_carry_key_ids_never_secrets(world, server) -> None:
    bank, _opp, keys = world
    priya = keys["priya"]
    with client(server, priya) as http:
        http.post(SHARE, json=lead_share_body(bank))
        http.get(STATUS, params={"id": "x"})
    httpx.get(server.base + STATUS, params={"id": 1, "accessKey": priya.access_key, "secretKey": "sk_guess"})
    httpx.post(server.base + SHARE, content=b"{", headers={"x-LSQ-SecretKey": priya.secret_key})
    time.sleep(0.3)
    text = server.log_text()
    assert f"key={priya.id} POST {SHARE} 200" in text
    assert f"key=- GET {STATUS} 401" in text
    for secret in (priya.secret_key, "sk_guess", *(k.secret_key for k in keys.values())):
        assert secret not in text
    assert "secretKey" not in text


def test_openapi_and_loopback_only_by_default(world, server, cli) -> None:
    doc = httpx.get(server.base + "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and SHARE in doc["paths"] and ACTIVITY in doc["paths"]
    assert "loopback only" in server.log_text()
    refused = cli("serve", "--host", "0.0.0.0", "--port", "1")
    assert refused.exit_code == 2 and "--allow-remote" in refused.stderr
    memory = cli("--db", "sqlite:///:memory:", "serve", "--port", "1")
    assert memory.exit_code == 2 and "in-memory" in memory.stderr
    from sharetui.api.server import check_address

    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert "loopback only" in check_address(host, allow_remote=False)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.test"):
        with pytest.raises(UsageError, match="--allow-remote"):
            check_address(host, allow_remote=False)
        assert "OTHER MACHINES" in check_address(host, allow_remote=True)


def test_fifty_clients_for_a_few_seconds_lose_and_duplicate_nothing(world, server) -> None:
    """The short version of the load test (tests/stress/test_http_load.py runs 30 s)."""
    bank, _opp, keys = world
    seconds = 3.0
    check_load(bank, server, [keys["priya"], keys["admin"]], clients=50, seconds=seconds)

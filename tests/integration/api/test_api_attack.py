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


def test_activity_input_outside_what_can_be_shown_or_stored_is_refused(world, server) -> None:
    """H2: a time at the edge of datetime crashed ``leads show`` east of UTC; H3: NaN and
    1e999 were stored and echoed as invalid JSON; H10: any length was echoed back and a
    note had no limit. Each is a 400 now, with nothing written."""
    bank, keys = world
    base = {"RelatedProspectId": bank.lead.id, "ActivityEvent": "Email Sent"}
    before = counts()
    with client(server, keys["priya"]) as http:
        for when in ("9999-12-31 23:59:59", "0001-01-01 00:00:00", "1899-12-31 23:59:59"):
            reply = http.post(ACTIVITY, json={**base, "ActivityDateTime": when})
            assert reply.status_code == 400, reply.text
            assert "between the years 1900 and 8999" in reply.json()["ExceptionMessage"]
        for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
            body = b'{"RelatedProspectId": %d, "ActivityEvent": "Email Sent", "Fields": ' % bank.lead.id
            body += b'[{"SchemaName": "amount", "Value": ' + raw + b"}]}"
            reply = http.post(ACTIVITY, content=body, headers={"Content-Type": "application/json"})
            assert reply.status_code == 400, (raw, reply.text)
            assert "not a finite number" in reply.json()["ExceptionMessage"]
        share = (
            b'[{"UserId": "daniel", "Entity": 1, "EntityId": %d, "DurationInMinutes": NaN}]' % bank.lead.id
        )
        reply = http.post(SHARE, content=share, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400 and "not a finite number" in reply.json()["ExceptionMessage"]
        huge = "x" * 100_000
        for body in (
            {**base, "ActivityOwner": huge},
            {**base, "ActivityEvent": huge},
            {**base, "Colour" + huge: 1},
        ):
            reply = http.post(ACTIVITY, json=body)
            assert reply.status_code == 400 and len(reply.text) < 1000, reply.text[:300]
        reply = http.post(SHARE, json=[{"UserId": "daniel", "Entity": 1, "EntityId": huge}])
        assert reply.status_code == 400 and len(reply.text) < 1000, reply.text[:300]
        reply = http.post(ACTIVITY, json={**base, "ActivityNote": "n" * 10_001})
        assert reply.status_code == 400 and "at most 10000" in reply.json()["ExceptionMessage"]
        reply = http.get(HISTORY, params={"entity": 1, "entityId": bank.lead.id, "limit": 0})
        assert reply.status_code == 400 and "from 1 to" in reply.json()["ExceptionMessage"]
    assert counts() == before


def test_an_activity_owner_is_looked_up_only_for_a_caller_who_may_post_on_the_record(world, server) -> None:
    """H6: ``ActivityOwnerEmail`` was resolved before the record's check, so any key told
    which emails belong to active users. Now the record answers first, and unknown and
    deactivated owners answer alike."""
    bank, keys = world
    core = bank.core
    core.users.add("olga", role="sales", email="olga@bank.test", actor=bank.admin)
    core.users.add("otto", role="sales", email="otto@bank.test", actor=bank.admin)
    core.users.deactivate("otto", actor=bank.admin)
    with client(server, keys["kenji"]) as http:  # may not read priya's lead
        answers = {
            http.post(
                ACTIVITY,
                json={
                    "RelatedProspectId": bank.lead.id,
                    "ActivityEvent": "Loan Evaluation",
                    "ActivityOwnerEmail": e,
                },
            ).text
            for e in ("olga@bank.test", "otto@bank.test", "ghost@bank.test")
        }
        assert len(answers) == 1 and f"no lead {bank.lead.id} you may read" in answers.pop()
    with client(server, keys["priya"]) as http:

        def owner_reply(**owner: str) -> tuple[int, str]:
            body = {"RelatedProspectId": bank.lead.id, "ActivityEvent": "Loan Evaluation", **owner}
            reply = http.post(ACTIVITY, json=body)
            return reply.status_code, reply.json()["ExceptionMessage"]

        assert owner_reply(ActivityOwnerEmail="otto@bank.test") == owner_reply(
            ActivityOwnerEmail="x@bank.test"
        )
        assert owner_reply(ActivityOwnerEmail="otto@bank.test")[0] == 400
        gone, unknown = owner_reply(ActivityOwner="otto"), owner_reply(ActivityOwner="nobody")
        assert gone[0] == unknown[0] == 400
        assert gone[1].replace("otto", "?") == unknown[1].replace("nobody", "?")


def test_a_partly_written_batch_says_so_and_ambiguous_items_are_refused(world, server) -> None:
    """H12: a batch whose good items were written and whose failures were all
    "unreadable" answered 404, as if nothing happened; ``ContextEntityId: 0`` with
    ``ContextEntity: 1`` silently meant "no context"."""
    bank, keys = world
    good = {
        "UserId": "daniel",
        "Entity": 1,
        "EntityType": 3,
        "EntityId": bank.lead.id,
        "DurationInMinutes": 30,
    }
    with client(server, keys["priya"]) as http:
        reply = http.post(SHARE, json=[good, {**good, "EntityId": 999_999}])
        assert reply.status_code == 207, reply.text
        body = reply.json()
        assert body["Status"] == "Partial"
        assert [r["Status"] for r in body["Results"]] == ["completed", "failed"]
        assert body["Message"]["Id"] == ",".join(r["Id"] for r in body["Results"])
        assert "no lead 999999 you may read" in body["ExceptionMessage"]
        status = http.get(STATUS, params={"id": body["Results"][0]["Id"]}).json()
        assert status["ShareStatus"] == 6

        both_bad = http.post(SHARE, json=[{**good, "EntityId": 999_998}, {**good, "EntityId": 999_999}])
        assert both_bad.status_code == 404 and len(both_bad.json()["Results"]) == 2

        before = counts()
        zero = http.post(SHARE, json=[{**good, "ContextEntity": 1, "ContextEntityId": 0}])
        assert zero.status_code == 400 and "ContextEntityId" in zero.json()["ExceptionMessage"]
        assert counts() == before


def test_sharing_with_user_ids_tells_a_sales_key_nothing_of_roles_or_active_flags(world, server) -> None:
    """H7: sharing with ids 1, 2, 3... answered "user admin is admin", "user ben is
    deactivated". To a key whose user may not list users, every recipient who cannot
    receive shares gets the same words, and neither they nor the history name the user."""
    bank, keys = world
    core = bank.core
    core.users.deactivate("daniel", actor=bank.admin)
    ids = [bank.admin.id, bank.marketing.id, bank.daniel.id, 999_999]
    item = {"Entity": 1, "EntityType": 3, "EntityId": bank.lead.id, "DurationInMinutes": 30}
    with client(server, keys["priya"]) as http:
        reasons = []
        for ident in ids:
            reply = http.post(SHARE, json=[{**item, "UserId": ident}])
            assert reply.status_code == 422, reply.text
            reasons.append(reply.json()["ExceptionMessage"].replace(str(ident), "ID"))
        assert len(set(reasons)) == 1, reasons
        rows = http.get(HISTORY, params={"entity": 1, "entityId": bank.lead.id}).json()["History"]
        named = {row["user"] for row in rows if row["status"] == "failed"}
        assert named == {str(i) for i in ids}, named
    with client(server, keys["admin"]) as http:  # an admin may list users: told why
        reply = http.post(SHARE, json=[{**item, "UserId": bank.marketing.id}])
        assert reply.status_code == 422 and "is marketing" in reply.json()["ExceptionMessage"]

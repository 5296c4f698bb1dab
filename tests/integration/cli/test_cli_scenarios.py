"""Stories told entirely through the command line (DESIGN .3, .7).

The company is built with ``users add``, ``activity types add``, ``leads add``
and ``activity post`` (or ``load sample_data``); ids come from ``--json``.
Every command runs at the frozen test clock (2026-03-02 09:00 UTC).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import CliResult

SAMPLE_DATA = Path(__file__).resolve().parents[3] / "sample_data"
NOW = "2026-03-02T09:00:00Z"


def ok(result: CliResult) -> Any:
    """Assert success and return the JSON document."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr == ""
    return result.json()


def failed(result: CliResult) -> dict[str, Any]:
    """Assert a failed request: exit 1, ``status: failed`` with a reason, no grant."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    data = result.json()
    assert data["status"] == "failed"
    assert data["reason"]
    assert "grant" not in data
    return data


def one_line_error(result: CliResult, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    line = result.stderr.rstrip("\n")
    assert line.startswith("error: ") and "\n" not in line, result.stderr
    return line


# -- building the company through the CLI -------------------------------------------------
USERS = [
    ("admin", "admin", None),
    ("ruth", "sales_manager", None),
    ("nadia", "marketing", None),
    ("priya", "sales", "Pre-Sales:manage"),
    ("kenji", "sales", "Pre-Sales:own"),
    ("leila", "sales", "Pre-Sales:view"),
    ("tomas", "sales", "Pre-Sales:modify"),
    ("daniel", "sales", "Sales:manage"),
    ("sofia", "sales", "Sales:modify"),
    ("arjun", "sales", "Personal Loans:own"),
]


@dataclass
class Company:
    cli: Callable[..., CliResult]
    users: dict[str, int]
    lead: int  # "Mira Demir", owned by priya (Pre-Sales)
    meeting: int  # Meeting Scheduled on that lead, owned by daniel (Sales)

    def add_lead(self, name: str, owner: str) -> int:
        return ok(self.cli("leads", "add", "--name", name, "--owner", owner, "--json"))["id"]

    def post(
        self,
        lead: int,
        type_name: str,
        owner: str | None,
        *,
        user: str = "admin",
        fields: tuple[str, ...] = (),
    ) -> int:
        args = ["activity", "post", "--lead", lead, "--type", type_name, "--json"]
        if owner:
            args += ["--owner", owner]
        for f in fields:
            args += ["--field", f]
        return ok(self.cli(*args, user=user))["id"]

    def share(self, entity: str, ident: int, who: str, *extra: Any, user: str | None = None) -> CliResult:
        return self.cli("share", entity, ident, "--with", who, *extra, "--json", user=user)

    def check(
        self,
        who: str,
        ident: int,
        action: str = "read",
        entity: str = "lead",
        env: dict[str, str] | None = None,
    ) -> int:
        return self.cli("check", who, entity, ident, "--action", action, env=env).exit_code

    def lead_ids(self, user: str, env: dict[str, str] | None = None) -> list[int]:
        data = ok(self.cli("leads", "list", "--json", "--limit", 1000, user=user, env=env))
        return [i["id"] for i in data["items"]]

    def history(self, *args: Any) -> list[dict[str, Any]]:
        return ok(self.cli("history", *args, "--json"))["items"]

    def all_grants(self, *args: Any) -> list[dict[str, Any]]:
        return ok(self.cli("shares", "--all", "--json", *args))["items"]


@pytest.fixture
def company(cli) -> Company:
    ids = {}
    for username, role, group in USERS:
        args = ["users", "add", username, "--role", role, "--json"]
        if group:
            args += ["--group", group]
        ids[username] = ok(cli(*args))["id"]
    for args in (
        ["Meeting Scheduled"],
        ["Loan Evaluation"],
        ["Credit Evaluation"],
    ):
        ok(cli("activity", "types", "add", *args, "--json"))
    new_lead = ["leads", "add", "--name", "Mira Demir", "--company", "Demir Textiles", "--owner", "priya"]
    lead = ok(cli(*new_lead, "--json"))["id"]
    new_meeting = ["activity", "post", "--lead", lead, "--type", "Meeting Scheduled", "--owner", "daniel"]
    meeting = ok(cli(*new_meeting, "--json", user="priya"))["id"]
    return Company(cli, ids, lead, meeting)


# -- the pre-sales -> sales hand-off -----------------------------------------------------
def test_presales_hands_a_lead_to_sales_in_the_meeting_context(company: Company) -> None:
    c = company
    assert c.check("daniel", c.lead) == 1  # another group: no access before the share
    assert c.lead not in c.lead_ids("daniel")

    res = ok(
        c.share(
            "lead", c.lead, "daniel", "--context", c.meeting, "--for", "14d", "--access", "edit", user="priya"
        )
    )
    assert res["status"] == "completed" and res["reason"] is None and res["outcome"] == "granted"
    assert isinstance(res["request_id"], int)
    grant = res["grant"]
    assert {k: grant[k] for k in ("entity", "entity_id", "user", "access", "context", "state", "source")} == {
        "entity": "lead",
        "entity_id": c.lead,
        "user": "daniel",
        "access": "edit",
        "context": c.meeting,
        "state": "active",
        "source": "manual",
    }
    assert grant["starts_at"] == NOW
    assert grant["expires_at"] == "2026-03-16T09:00:00Z"

    assert c.check("daniel", c.lead, "read") == 0
    assert c.check("daniel", c.lead, "edit") == 0
    verdict = ok(c.cli("check", "daniel", "lead", c.lead, "--action", "edit", "--json"))
    assert verdict["allowed"] is True and verdict["level"] == "edit"
    assert any(f"grant {grant['id']}" in r for r in verdict["reasons"])

    explained = ok(c.cli("explain", "daniel", "lead", c.lead, "--json"))
    assert explained["level"] == "edit"
    assert [g["id"] for g in explained["grants"]] == [grant["id"]]
    assert any(
        f"context of activity {c.meeting}" in r and f"grant {grant['id']}" in r for r in explained["reasons"]
    )

    listed = ok(c.cli("leads", "list", "--json", user="daniel"))
    assert listed["user"] == "daniel"
    [item] = [i for i in listed["items"] if i["id"] == c.lead]
    assert item["reach"].startswith("shared edit")
    assert item["access"] == "edit" and item["owner"] == "priya"

    # The share is daniel's alone: kenji (Pre-Sales, own) still sees nothing.
    assert c.check("kenji", c.lead) == 1


# -- loan evaluation, until completed -------------------------------------------------------
def test_until_completed_share_ends_when_its_activity_is_completed(company: Company) -> None:
    c = company
    evaluation = c.post(c.lead, "Loan Evaluation", "arjun", user="priya", fields=("amount=275000",))
    res = ok(
        c.share(
            "lead", c.lead, "arjun", "--context", evaluation, "--until-completed", "--for", "7d", user="priya"
        )
    )
    grant = res["grant"]
    assert grant["until_completed"] is True and grant["access"] == "read"
    assert grant["expires_at"] == "2026-03-09T09:00:00Z"
    # A share in another context, without --until-completed, must survive.
    ok(c.share("lead", c.lead, "daniel", "--context", c.meeting, user="priya"))
    assert c.check("arjun", c.lead) == 0

    done = ok(c.cli("activity", "update", evaluation, "--status", "completed", "--json", user="arjun"))
    assert done["status"] == "completed"

    assert c.check("arjun", c.lead) == 1
    assert c.check("daniel", c.lead) == 0
    active = ok(c.cli("shares", "--json"))["items"]
    assert [(g["user"], g["context"]) for g in active] == [("daniel", c.meeting)]
    [ended] = [g for g in c.all_grants() if g["id"] == grant["id"]]
    assert ended["state"] == "revoked"

    revoked = [e for e in c.history("lead", c.lead) if e["event"] == "revoked"]
    assert len(revoked) == 1
    assert revoked[0]["user"] == "arjun" and revoked[0]["grant_id"] == grant["id"]
    assert f"activity {evaluation}" in revoked[0]["reason"]
    assert "completed" in revoked[0]["reason"]

    # Completing the meeting does not end daniel's share: it was not until-completed.
    ok(c.cli("activity", "update", c.meeting, "--status", "completed", "--json"))
    assert c.check("daniel", c.lead) == 0


# -- one lead, one user, two activities --------------------------------------------------
def test_one_lead_shared_with_one_user_under_two_activities(company: Company) -> None:
    c = company
    meeting = c.post(c.lead, "Meeting Scheduled", "sofia", user="priya")
    credit = c.post(c.lead, "Credit Evaluation", "sofia", user="priya")
    a = ok(c.share("lead", c.lead, "sofia", "--context", meeting, "--for", "3mo", user="priya"))["grant"]
    b = ok(
        c.share(
            "lead", c.lead, "sofia", "--context", credit, "--for", "6mo", "--access", "edit", user="priya"
        )
    )["grant"]
    assert a["id"] != b["id"]
    assert (a["context"], a["expires_at"]) == (meeting, "2026-06-02T09:00:00Z")
    assert (b["context"], b["expires_at"]) == (credit, "2026-09-02T09:00:00Z")
    explained = ok(c.cli("explain", "sofia", "lead", c.lead, "--json"))
    assert sorted(g["id"] for g in explained["grants"]) == sorted([a["id"], b["id"]])

    # Without a context, revoke names what is there instead of guessing.
    vague = failed(c.cli("revoke", "lead", c.lead, "--user", "sofia", "--json", user="priya"))
    assert "--all-contexts" in vague["reason"]
    assert c.check("sofia", c.lead, "edit") == 0

    res = ok(c.cli("revoke", "lead", c.lead, "--user", "sofia", "--context", meeting, "--json", user="priya"))
    assert res["status"] == "completed" and res["outcome"] == "revoked"
    assert res["grant"]["id"] == a["id"] and res["grant"]["state"] == "revoked"
    assert c.check("sofia", c.lead, "read") == 0  # the other context still holds
    assert c.check("sofia", c.lead, "edit") == 0
    explained = ok(c.cli("explain", "sofia", "lead", c.lead, "--json"))
    assert [g["id"] for g in explained["grants"]] == [b["id"]]

    res = ok(c.cli("revoke", "lead", c.lead, "--user", "sofia", "--all-contexts", "--json", user="priya"))
    assert res["status"] == "completed"
    assert res["grant"]["id"] == b["id"]
    assert c.check("sofia", c.lead) == 1

    again = failed(
        c.cli("revoke", "lead", c.lead, "--user", "sofia", "--all-contexts", "--json", user="priya")
    )
    assert "no active share" in again["reason"]
    revoked = c.history("lead", c.lead, "--event", "revoked")
    assert [e["grant_id"] for e in revoked] == [a["id"], b["id"]]
    assert {e["user"] for e in revoked} == {"sofia"}


def test_revoking_several_contexts_at_once_lists_every_grant(company: Company) -> None:
    c = company
    meeting = c.post(c.lead, "Meeting Scheduled", "sofia", user="priya")
    credit = c.post(c.lead, "Credit Evaluation", "sofia", user="priya")
    ids = {
        ok(c.share("lead", c.lead, "sofia", "--context", ctx, user="priya"))["grant"]["id"]
        for ctx in (meeting, credit)
    }
    res = ok(c.cli("revoke", "lead", c.lead, "--user", "sofia", "--all-contexts", "--json", user="priya"))
    assert {g["id"] for g in res["grants"]} == ids
    assert {g["state"] for g in res["grants"]} == {"revoked"}
    status = ok(c.cli("status", res["request_id"], "--json"))
    assert status["status"] == "completed" and {g["id"] for g in status["grants"]} == ids


# -- read is not edit --------------------------------------------------------------------------
def test_a_read_share_does_not_allow_edit(company: Company) -> None:
    c = company
    ok(c.share("lead", c.lead, "daniel", "--access", "read", user="priya"))
    assert c.check("daniel", c.lead, "read") == 0
    assert c.check("daniel", c.lead, "edit") == 1
    verdict = c.cli("check", "daniel", "lead", c.lead, "--action", "edit", "--json")
    assert verdict.exit_code == 1
    assert verdict.json()["allowed"] is False and verdict.json()["level"] == "read"

    refused = c.cli("leads", "update", c.lead, "--name", "Hijacked", user="daniel")
    one_line_error(refused, 1)
    assert ok(c.cli("leads", "show", c.lead, "--json"))["name"] == "Mira Demir"

    renewed = ok(c.share("lead", c.lead, "daniel", "--access", "edit", user="priya"))
    assert renewed["outcome"] == "renewed" and renewed["grant"]["access"] == "edit"
    updated = ok(c.cli("leads", "update", c.lead, "--name", "Mira Demir-Kaya", "--json", user="daniel"))
    assert updated["name"] == "Mira Demir-Kaya"
    assert ok(c.cli("leads", "show", c.lead, "--json", user="daniel"))["your_access"] == "edit"


# -- expiry at read time -------------------------------------------------------------------------
def test_access_ends_at_expiry_before_any_sweep(company: Company, clock) -> None:
    c = company
    grant = ok(c.share("lead", c.lead, "daniel", "--for", "2h", user="priya"))["grant"]
    assert grant["expires_at"] == "2026-03-02T11:00:00Z"
    just_before = {"SHARETUI_NOW": "2026-03-02T10:59:00Z"}
    at_expiry = {"SHARETUI_NOW": "2026-03-02T11:00:00Z"}
    assert c.check("daniel", c.lead, env=just_before) == 0
    assert c.check("daniel", c.lead, env=at_expiry) == 1  # expires <= now gives nothing
    assert c.check("daniel", c.lead, env={"SHARETUI_NOW": "2026-03-05T00:00:00Z"}) == 1
    assert c.lead not in c.lead_ids("daniel", env=at_expiry)
    assert c.cli("leads", "show", c.lead, user="daniel", env=just_before).exit_code == 0
    assert c.cli("leads", "show", c.lead, user="daniel", env=at_expiry).exit_code == 1
    assert ok(c.cli("shares", "--json", env=at_expiry))["items"] == []
    # Nothing was swept yet, and the grant says what it is: expired (decided at read time).
    [stored] = ok(c.cli("shares", "--all", "--json", env=at_expiry))["items"]
    assert stored["state"] == "expired"
    assert (
        ok(c.cli("status", str(grant["request_id"]), "--json", env=at_expiry))["grant"]["state"] == "expired"
    )
    assert not [e for e in c.history("lead", c.lead) if e["event"] == "expired"]

    clock.advance(timedelta(hours=3))
    assert ok(c.cli("sweep", "--json"))["expired"] == 1
    assert ok(c.cli("sweep", "--json"))["expired"] == 0
    events = c.history("lead", c.lead)
    expired = [e for e in events if e["event"] == "expired"]
    assert len(expired) == 1
    assert expired[0]["grant_id"] == grant["id"] and expired[0]["user"] == "daniel"
    assert expired[0]["at"] == "2026-03-02T11:00:00Z"
    assert not [e for e in events if e["event"] == "revoked"]
    assert [e["grant_id"] for e in c.history("lead", c.lead, "--event", "expired")] == [grant["id"]]
    assert c.history("lead", c.lead, "--event", "revoked") == []
    assert c.all_grants()[0]["state"] == "expired"


# -- renew on re-share ------------------------------------------------------------------------
def test_resharing_renews_the_same_grant_from_now(company: Company, clock) -> None:
    c = company
    first = ok(c.share("lead", c.lead, "daniel", "--for", "7d", user="priya"))
    assert first["outcome"] == "granted"
    assert first["grant"]["expires_at"] == "2026-03-09T09:00:00Z"

    clock.advance(timedelta(days=2))
    second = ok(c.share("lead", c.lead, "daniel", "--for", "7d", "--access", "edit", user="priya"))
    assert second["outcome"] == "renewed"
    assert second["request_id"] != first["request_id"]
    assert second["grant"]["id"] == first["grant"]["id"]
    assert second["grant"]["expires_at"] == "2026-03-11T09:00:00Z"  # counted from the moved clock
    assert second["grant"]["access"] == "edit"
    assert len(c.all_grants("--user", "daniel")) == 1
    renewed = c.history("lead", c.lead, "--event", "renewed")
    assert [e["grant_id"] for e in renewed] == [first["grant"]["id"]]
    assert c.check("daniel", c.lead, "edit", env={"SHARETUI_NOW": "2026-03-10T09:00:00Z"}) == 0


# -- every failure rule --------------------------------------------------------------------------
def _other_lead_activity(c: Company) -> int:
    other = c.add_lead("Owen Hart", "kenji")
    return c.post(other, "Meeting Scheduled", "daniel", user="kenji")


FAILURES: list[tuple[str, Callable[[Company], tuple[list[Any], str | None]], str]] = [
    ("unknown recipient", lambda c: (["lead", c.lead, "--with", "ghost"], None), "unknown user 'ghost'"),
    ("inactive recipient", lambda c: (["lead", c.lead, "--with", "ben"], None), "deactivated"),
    (
        "marketing recipient",
        lambda c: (["lead", c.lead, "--with", "nadia"], None),
        "only sales users receive shares",
    ),
    (
        "admin recipient",
        lambda c: (["lead", c.lead, "--with", "ruth"], None),
        "only sales users receive shares",
    ),
    ("recipient owns the record", lambda c: (["lead", c.lead, "--with", "priya"], None), "priya owns lead"),
    (
        "requester may not share",
        lambda c: (["lead", c.lead, "--with", "daniel"], "tomas"),  # reads and edits via Pre-Sales
        "tomas may not share",
    ),
    (
        "marketing may not share",
        lambda c: (["lead", c.lead, "--with", "daniel"], "nadia"),
        "nadia may not share",
    ),
    (
        "record does not exist",
        lambda c: (["lead", 999, "--with", "daniel"], None),
        "no lead 999 you may read",
    ),
    (
        "requester may not read the record",  # answers like a missing record (DESIGN §9)
        lambda c: (["lead", c.lead, "--with", "daniel"], "kenji"),
        "you may read",
    ),
    (
        "opportunity does not exist",
        lambda c: (["opp", 999, "--with", "daniel"], None),
        "no opportunity 999 you may read",
    ),
    (
        "context activity on another lead",
        lambda c: (["lead", c.lead, "--with", "daniel", "--context", _other_lead_activity(c)], None),
        "is not an activity of lead",
    ),
    (
        "context activity owned by someone else",
        lambda c: (["lead", c.lead, "--with", "sofia", "--context", c.meeting], None),
        "owned by daniel, not by sofia",
    ),
    (
        "context activity missing",
        lambda c: (["lead", c.lead, "--with", "daniel", "--context", 999], None),
        "activity 999 is not an activity of lead",
    ),
    ("duration too long", lambda c: (["lead", c.lead, "--with", "daniel", "--for", "6y"], None), "too long"),
    ("duration too short", lambda c: (["lead", c.lead, "--with", "daniel", "--for", "0"], None), "too short"),
]


def test_each_failure_rule_fails_the_request(company: Company) -> None:
    """Every refusal in DESIGN .3: exit 1, ``failed`` with a reason, the same from ``status``,
    no grant made, and the request kept in history."""
    c = company
    ok(c.cli("users", "add", "ben", "--role", "sales", "--group", "Sales:own", "--json"))
    ok(c.cli("users", "deactivate", "ben", "--json"))
    request_ids = []
    for name, build, reason in FAILURES:
        args, user = build(c)
        result = c.cli("share", *args, "--json", user=user)
        assert result.exit_code == 1, (name, result.stdout, result.stderr)
        data = result.json()
        assert (data["status"], data["action"]) == ("failed", "share"), name
        assert reason in (data["reason"] or ""), (name, data["reason"])
        assert "grant" not in data, name
        status = ok(c.cli("status", data["request_id"], "--json"))
        assert (status["status"], status["reason"], status["action"]) == ("failed", data["reason"], "share")
        assert "grant" not in status, name
        request_ids.append(data["request_id"])
    assert c.all_grants() == []  # a failed request changes no grant...
    kept = c.history("--all", "--status", "failed")  # ...and stays in history
    assert [e["request_id"] for e in kept] == request_ids
    assert {e["event"] for e in kept} == {"share"}


def test_revoke_failures_are_failed_requests(company: Company) -> None:
    c = company
    grant = ok(c.share("lead", c.lead, "daniel", "--context", c.meeting, user="priya"))["grant"]
    cases = [
        (["lead", 999, "--user", "daniel"], None, "no lead 999 you may read"),
        (["opp", 999, "--user", "daniel"], None, "no opportunity 999 you may read"),
        (["lead", c.lead, "--user", "ghost"], None, "unknown user 'ghost'"),
        (["lead", c.lead, "--user", "daniel", "--context", c.meeting], "kenji", "you may read"),
        (["lead", c.lead, "--user", "daniel", "--context", c.meeting], "tomas", "tomas may not revoke"),
        (["lead", c.lead, "--user", "daniel", "--all-contexts"], "nadia", "nadia may not revoke"),
        (["lead", c.lead, "--user", "sofia", "--all-contexts"], None, "no active share"),
        (["lead", c.lead, "--user", "daniel"], None, "without a context"),
    ]
    for args, user, reason in cases:
        data = failed(c.cli("revoke", *args, "--json", user=user))
        assert data["action"] == "revoke" and reason in data["reason"], (args, data["reason"])
        status = ok(c.cli("status", data["request_id"], "--json"))
        assert (status["status"], status["reason"]) == ("failed", data["reason"])
    assert [(g["id"], g["state"]) for g in c.all_grants()] == [(grant["id"], "active")]
    assert c.check("daniel", c.lead) == 0
    assert len(c.history("--all", "--status", "failed", "--event", "revoke")) == len(cases)


def test_the_share_cap_counts_distinct_records_per_recipient(company: Company) -> None:
    c = company
    assert ok(c.cli("settings", "share_cap_leads", "2", "--json")) == {"share_cap_leads": 2}
    assert ok(c.cli("settings", "share_cap_leads", "--json")) == {"share_cap_leads": 2}
    second = c.add_lead("Second Lead", "priya")
    third = c.add_lead("Third Lead", "priya")
    ok(c.share("lead", c.lead, "daniel", user="priya"))
    ok(c.share("lead", second, "daniel", user="priya"))

    refused = failed(c.share("lead", third, "daniel", user="priya"))
    assert "cap is 2" in refused["reason"]
    assert ok(c.cli("status", refused["request_id"], "--json"))["reason"] == refused["reason"]
    assert c.check("daniel", third) == 1

    # Renewing a record already held is not a new record; other recipients have their own cap.
    assert ok(c.share("lead", second, "daniel", "--for", "30d", user="priya"))["outcome"] == "renewed"
    ok(c.share("lead", third, "sofia", user="priya"))
    # A second context on a record already held does not count twice.
    ok(c.share("lead", c.lead, "daniel", "--context", c.meeting, user="priya"))

    ok(c.cli("revoke", "lead", second, "--user", "daniel", "--json", user="priya"))
    assert ok(c.share("lead", third, "daniel", user="priya"))["outcome"] == "granted"


# -- sales groups ------------------------------------------------------------------------------
# (user, owner of the lead) -> (may read, may edit)
GROUP_ACCESS = {
    ("kenji", "priya"): (False, False),  # own: own records only
    ("kenji", "kenji"): (True, True),
    ("leila", "priya"): (True, False),  # view
    ("leila", "kenji"): (True, False),
    ("tomas", "priya"): (True, True),  # modify
    ("tomas", "kenji"): (True, True),
    ("priya", "kenji"): (True, True),  # manage
    ("priya", "tomas"): (True, True),
    ("sofia", "daniel"): (True, True),  # modify in Sales
    ("daniel", "sofia"): (True, True),  # manage in Sales
    ("daniel", "priya"): (False, False),  # never across groups
    ("priya", "daniel"): (False, False),
    ("tomas", "daniel"): (False, False),
    ("leila", "sofia"): (False, False),
    ("arjun", "kenji"): (False, False),
    ("admin", "kenji"): (True, True),  # roles
    ("ruth", "kenji"): (True, True),
    ("nadia", "kenji"): (True, False),
}


def test_sales_group_levels_through_check(company: Company) -> None:
    c = company
    leads = {"priya": c.lead}
    for owner in ("kenji", "tomas", "daniel", "sofia"):
        leads[owner] = c.add_lead(f"{owner.title()}'s lead", owner)
    got = {}
    for user, owner in GROUP_ACCESS:
        # One check per pair: its exit status answers "edit?", its level answers "read?".
        result = c.cli("check", user, "lead", leads[owner], "--action", "edit", "--json")
        verdict = result.json()
        assert result.exit_code == (0 if verdict["allowed"] else 1)
        got[user, owner] = (verdict["level"] in ("read", "edit"), verdict["allowed"])
    assert got == GROUP_ACCESS
    # Reading is also what check answers by default, and what leads list shows.
    assert c.check("leila", leads["priya"]) == 0 and c.check("kenji", leads["priya"]) == 1
    for user in ("kenji", "leila", "daniel", "nadia"):
        visible = set(c.lead_ids(user))
        for (who, owner), (read, _) in GROUP_ACCESS.items():
            if who == user:
                assert (leads[owner] in visible) is read, (user, owner)


def test_explain_names_the_sales_group(company: Company) -> None:
    explained = ok(company.cli("explain", "leila", "lead", company.lead, "--json"))
    assert explained["level"] == "read"
    assert any("sales group Pre-Sales (view)" in r and "priya" in r for r in explained["reasons"])
    row = [
        i
        for i in ok(company.cli("leads", "list", "--json", user="leila"))["items"]
        if i["id"] == company.lead
    ]
    assert row[0]["reach"] == "group (read)"
    # A share lifts leila to edit for a while; the group keeps her at read afterwards.
    ok(company.share("lead", company.lead, "leila", "--for", "1d", "--access", "edit", user="priya"))
    assert company.check("leila", company.lead, "edit") == 0
    later = {"SHARETUI_NOW": "2026-03-04T09:00:00Z"}
    assert company.check("leila", company.lead, "edit", env=later) == 1
    assert company.check("leila", company.lead, "read", env=later) == 0


# -- history filters and CSV ------------------------------------------------------------------
def test_history_filters_and_csv_export(company: Company) -> None:
    c = company
    other = c.add_lead("Second Lead", "priya")
    ok(c.share("lead", c.lead, "daniel", "--context", c.meeting, user="priya"))
    failed(c.share("lead", c.lead, "ghost", user="priya"))
    batch = json.dumps([{"UserId": "sofia", "Entity": 1, "EntityId": other, "DurationInMinutes": 60}])
    ok(c.cli("api", "share", input=batch))
    ok(c.cli("revoke", "lead", c.lead, "--user", "daniel", "--context", c.meeting, "--json", user="priya"))

    everything = c.history("--all")
    assert {e["event"] for e in everything} == {"share", "granted", "revoke", "revoked"}
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)

    by_daniel = c.history("--all", "--user", "daniel")
    assert by_daniel and {e["user"] for e in by_daniel} == {"daniel"}
    assert {e["event"] for e in by_daniel} == {"share", "granted", "revoke", "revoked"}

    fails = c.history("--all", "--status", "failed")
    assert [(e["user"], e["event"]) for e in fails] == [("ghost", "share")]

    api = c.history("--all", "--source", "api")
    assert api and {e["source"] for e in api} == {"api"}
    assert {e["entity_id"] for e in api} == {other} and {e["user"] for e in api} == {"sofia"}
    assert {e["source"] for e in c.history("--all", "--source", "manual")} == {"manual"}
    assert c.history("--all", "--source", "automation") == []

    revoked = c.history("--all", "--event", "revoked")
    assert len(revoked) == 1 and revoked[0]["user"] == "daniel" and revoked[0]["context"] == c.meeting

    per_record = c.history("lead", other)
    assert per_record and {e["entity_id"] for e in per_record} == {other}
    assert c.history("lead", c.lead, "--source", "api") == []
    assert [e["id"] for e in c.history("--all", "--type", "lead")] == [e["id"] for e in everything]

    for args in (["--all"], ["--all", "--user", "daniel"], ["lead", c.lead, "--status", "failed"]):
        rows = c.history(*args)
        exported = c.cli("history", *args, "--csv")
        assert exported.exit_code == 0
        reader = csv.DictReader(io.StringIO(exported.stdout))
        assert rows and reader.fieldnames == list(rows[0])
        assert list(reader) == [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
    assert len(list(csv.DictReader(io.StringIO(c.cli("history", "--all", "--csv").stdout)))) == len(
        everything
    )


# -- the batch API ------------------------------------------------------------------------------
def test_batch_share_revoke_and_status(company: Company) -> None:
    c = company
    opp = ok(
        c.cli(
            "opps",
            "add",
            "--lead",
            c.lead,
            "--name",
            "Demir Home Loan",
            "--type",
            "Home Loan",
            "--owner",
            "priya",
            "--json",
        )
    )["id"]
    items = [
        {
            "UserId": "daniel",
            "Entity": 1,
            "EntityId": c.lead,
            "ContextEntityId": c.meeting,
            "AccessType": 2,
            "DurationInMinutes": 120,
        },
        {"UserId": c.users["sofia"], "Entity": 1, "EntityId": c.lead, "AccessType": 1},
        {"UserId": "priya", "Entity": 1, "EntityId": c.lead},  # owns it
        {"UserId": "ghost", "Entity": 5, "EntityId": opp},
        {"UserId": str(c.users["daniel"]), "Entity": 5, "EntityId": opp, "DurationInMinutes": "3d"},
        {"UserId": 9999, "Entity": 1, "EntityId": c.lead},
    ]
    r = c.cli("api", "share", input=json.dumps(items))
    assert r.exit_code == 1  # some items failed
    results = r.json()
    assert [x["index"] for x in results] == list(range(len(items)))
    assert [x["status"] for x in results] == [
        "completed",
        "completed",
        "failed",
        "failed",
        "completed",
        "failed",
    ]
    first, by_id, owner, ghost, opp_share, unknown_id = results
    assert first["grant"]["user"] == "daniel" and first["grant"]["access"] == "edit"
    assert first["grant"]["context"] == c.meeting
    assert first["grant"]["expires_at"] == "2026-03-02T11:00:00Z"
    assert first["grant"]["source"] == "api"
    assert by_id["grant"]["user"] == "sofia" and by_id["grant"]["access"] == "read"
    assert by_id["grant"]["expires_at"] == "2026-05-31T09:00:00Z"  # the 90-day default
    assert "owns" in owner["reason"]
    assert "ghost" in ghost["reason"]
    assert opp_share["grant"]["entity"] == "opportunity" and opp_share["grant"]["user"] == "daniel"
    assert opp_share["grant"]["expires_at"] == "2026-03-05T09:00:00Z"
    assert "9999" in unknown_id["reason"]
    assert len({x["request_id"] for x in results}) == len(items)
    assert c.check("sofia", c.lead) == 0 and c.check("daniel", opp, entity="opp") == 0

    all_good = c.cli("api", "share", input=json.dumps([{"UserId": "tomas", "Entity": 5, "EntityId": opp}]))
    assert ok(all_good)[0]["status"] == "completed"

    revoked = c.cli(
        "api",
        "revoke",
        input=json.dumps(
            [
                {"UserId": "daniel", "Entity": 1, "EntityId": c.lead, "ContextEntityId": c.meeting},
                {"UserId": c.users["sofia"], "Entity": 1, "EntityId": c.lead},
            ]
        ),
    )
    assert [x["status"] for x in ok(revoked)] == ["completed", "completed"]
    assert c.check("daniel", c.lead) == 1 and c.check("sofia", c.lead) == 1
    nothing_left = c.cli(
        "api",
        "revoke",
        input=json.dumps([{"UserId": "daniel", "Entity": 1, "EntityId": c.lead, "AllContexts": True}]),
    )
    assert nothing_left.exit_code == 1 and nothing_left.json()[0]["status"] == "failed"

    ids = [first["request_id"], {"RequestId": owner["request_id"]}, 424242]
    status = c.cli("api", "status", input=json.dumps(ids))
    assert status.exit_code == 1
    s_first, s_owner, s_missing = status.json()
    assert (s_first["status"], s_first["grant"]["id"]) == ("completed", first["grant"]["id"])
    assert (s_owner["status"], s_owner["reason"]) == ("failed", owner["reason"])
    assert s_missing["status"] == "unknown" and s_missing["request_id"] == 424242
    assert [x["status"] for x in ok(c.cli("api", "status", input=json.dumps([by_id["request_id"]])))] == [
        "completed"
    ]


def test_batch_reads_a_file(company: Company, tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"UserId": "daniel", "Entity": 1, "EntityId": company.lead}]))
    [result] = ok(company.cli("api", "share", path))
    assert result["grant"]["user"] == "daniel"
    assert company.check("daniel", company.lead) == 0


# -- sample data ---------------------------------------------------------------------------------
def test_load_is_idempotent_and_lists_page_without_duplicates(cli) -> None:
    first = ok(cli("load", SAMPLE_DATA, "--json"))
    assert first["created"]["leads"] == 50 and first["created"]["users"] == 19
    second = ok(cli("load", SAMPLE_DATA, "--json"))
    assert sum(second["created"].values()) == 0
    assert second["already_present"] == first["created"]
    assert len(ok(cli("users", "list", "--json"))["items"]) == 19

    pagings = [
        ("admin", 10, "id"),
        ("daniel", 3, "id"),
        ("priya", 4, "-name"),
        ("nadia", 7, "name"),
        ("leila", 5, "-id"),
        ("priya", 3, "company"),
        ("admin", 7, "-owner"),
        ("leila", 4, "updated"),
    ]
    for user, limit, sort in pagings:
        listed = ok(cli("leads", "list", "--json", "--limit", 1000, "--sort", sort, user=user))
        everything = [i["id"] for i in listed["items"]]
        seen: list[int] = []
        after = None
        for _ in range(100):
            args = ["leads", "list", "--json", "--limit", limit, "--sort", sort]
            page = ok(cli(*args, *(["--after", after] if after else []), user=user))
            assert len(page["items"]) <= limit
            seen += [i["id"] for i in page["items"]]
            after = page["next_cursor"]
            if after is None:
                break
        assert len(seen) == len(set(seen)), (user, sort)
        assert seen == everything, (user, sort)
        if user in ("admin", "nadia"):
            assert len(seen) == 50
        else:
            assert 0 < len(seen) < 50  # a sales user sees their groups and shares, not the whole bank
        if sort == "id":
            assert seen == sorted(seen)


def test_sample_stories_after_load(cli) -> None:
    ok(cli("load", SAMPLE_DATA, "--json"))
    active = ok(cli("shares", "--json"))["items"]
    ended = ok(cli("shares", "--all", "--json"))["items"]
    assert len(active) == 6 and len(ended) == 8
    assert {g["state"] for g in ended} - {g["state"] for g in active} == {"expired"}
    sofia = [g for g in active if g["user"] == "sofia"]
    assert len(sofia) == 2 and len({g["context"] for g in sofia}) == 2
    lead = sofia[0]["entity_id"]
    first = min(sofia, key=lambda g: g["id"])
    ok(cli("revoke", "lead", lead, "--user", "sofia", "--context", first["context"], "--json"))
    assert cli("check", "sofia", "lead", lead).exit_code == 0
    ok(cli("revoke", "lead", lead, "--user", "sofia", "--all-contexts", "--json"))
    assert cli("check", "sofia", "lead", lead).exit_code == 1


# -- shares, users, opportunities, tasks, activity delete ----------------------------------------
def test_shares_lists_active_and_all(company: Company) -> None:
    c = company
    opp = ok(
        c.cli(
            "opps",
            "add",
            "--lead",
            c.lead,
            "--name",
            "Loan",
            "--type",
            "Home Loan",
            "--owner",
            "priya",
            "--json",
        )
    )["id"]
    lead_grant = ok(c.share("lead", c.lead, "daniel", "--context", c.meeting, user="priya"))["grant"]
    opp_grant = ok(c.share("opp", opp, "sofia", "--access", "edit", user="priya"))["grant"]
    short = ok(c.share("lead", c.lead, "tomas", "--for", "1h", user="priya"))["grant"]
    ok(c.cli("revoke", "opp", opp, "--user", "sofia", "--json"))

    later = {"SHARETUI_NOW": "2026-03-02T12:00:00Z"}
    active = ok(c.cli("shares", "--json", env=later))["items"]
    assert [g["id"] for g in active] == [lead_grant["id"]]
    everything = ok(c.cli("shares", "--all", "--json", env=later))["items"]
    assert [g["id"] for g in everything] == [short["id"], opp_grant["id"], lead_grant["id"]]  # newest first
    states = {g["id"]: g["state"] for g in everything}
    # The short share ran out at 10:00 and was never swept: it says expired (read time).
    assert states == {short["id"]: "expired", opp_grant["id"]: "revoked", lead_grant["id"]: "active"}
    assert set(everything[0]) >= {
        "id",
        "entity",
        "entity_id",
        "user",
        "access",
        "context",
        "starts_at",
        "expires_at",
        "state",
        "source",
    }
    assert [g["id"] for g in ok(c.cli("shares", "--all", "--entity", "opp", "--json"))["items"]] == [
        opp_grant["id"]
    ]
    assert [g["id"] for g in ok(c.cli("shares", "--user", "daniel", "--json"))["items"]] == [lead_grant["id"]]


def test_users_list(company: Company) -> None:
    items = ok(company.cli("users", "list", "--json"))["items"]
    assert [u["username"] for u in items] == sorted(u for u, _, _ in USERS)
    by_name = {u["username"]: u for u in items}
    assert by_name["leila"]["groups"] == {"Pre-Sales": "view"}
    assert by_name["nadia"]["role"] == "marketing" and by_name["nadia"]["groups"] == {}
    assert all(u["active"] for u in items)
    assert by_name["daniel"]["id"] == company.users["daniel"]
    # Only admins add users once the first one exists (the system added the first).
    one_line_error(company.cli("users", "add", "mallory", "--role", "admin", user="priya"), 1)
    assert "mallory" not in {u["username"] for u in ok(company.cli("users", "list", "--json"))["items"]}
    ok(company.cli("users", "deactivate", "kenji", "--json"))
    assert {u["username"]: u["active"] for u in ok(company.cli("users", "list", "--json"))["items"]}[
        "kenji"
    ] is False


def test_opportunities_and_tasks(company: Company, clock) -> None:
    c = company
    ok(c.cli("users", "add", "hannah", "--role", "sales", "--group", "Home Loans:manage", "--json"))
    opp = ok(
        c.cli(
            "opps",
            "add",
            "--lead",
            c.lead,
            "--name",
            "Demir Home Loan",
            "--type",
            "Home Loan",
            "--owner",
            "hannah",
            "--amount",
            "250000",
            "--field",
            "term_years=25",
            "--json",
        )
    )
    assert (opp["lead_id"], opp["owner"], opp["type"], opp["amount"]) == (
        c.lead,
        "hannah",
        "Home Loan",
        250000.0,
    )
    assert opp["fields"] == {"term_years": 25}

    task = ok(
        c.cli(
            "task",
            "add",
            "--opp",
            opp["id"],
            "--owner",
            "daniel",
            "--subject",
            "Call back",
            "--due",
            "+2d",
            "--reminder",
            "+1d",
            "--json",
        )
    )
    assert task["due_at"] == "2026-03-04T09:00:00Z" and task["reminder_at"] == "2026-03-03T09:00:00Z"
    assert task["opportunity_id"] == opp["id"] and task["completed_at"] is None

    shown = ok(c.cli("opps", "show", opp["id"], "--json"))
    assert shown["name"] == "Demir Home Loan" and shown["your_access"] == "edit"
    assert [t["id"] for t in shown["tasks"]] == [task["id"]]
    assert shown["shares"] == []
    # daniel owns the task but has no standing access to the opportunity.
    one_line_error(c.cli("opps", "show", opp["id"], user="daniel"), 1)
    assert c.check("daniel", opp["id"], entity="opp") == 1
    grant = ok(c.share("opp", opp["id"], "daniel", "--for", "3d", user="hannah"))["grant"]
    assert [g["id"] for g in ok(c.cli("opps", "show", opp["id"], "--json", user="daniel"))["shares"]] == [
        grant["id"]
    ]

    clock.advance(timedelta(hours=5))
    done = ok(c.cli("task", "complete", task["id"], "--json", user="daniel"))
    assert done["completed_at"] == "2026-03-02T14:00:00Z"
    one_line_error(c.cli("task", "complete", task["id"]), 2)  # already completed
    assert ok(c.cli("opps", "show", opp["id"], "--json"))["tasks"][0]["completed_at"] == done["completed_at"]


def test_deleting_an_activity_ends_its_context_shares(company: Company) -> None:
    c = company
    in_meeting = ok(
        c.share("lead", c.lead, "daniel", "--context", c.meeting, "--access", "edit", user="priya")
    )["grant"]
    plain = ok(c.share("lead", c.lead, "daniel", "--for", "1d", user="priya"))["grant"]
    res = ok(c.cli("activity", "delete", c.meeting, "--json", user="priya"))
    assert res == {"id": c.meeting, "deleted": True, "shares_ended": 1}

    assert c.check("daniel", c.lead, "edit") == 1  # the edit share went with the meeting
    assert c.check("daniel", c.lead, "read") == 0  # the plain share stays
    states = {g["id"]: g["state"] for g in c.all_grants()}
    assert states == {in_meeting["id"]: "revoked", plain["id"]: "active"}
    [event] = c.history("lead", c.lead, "--event", "revoked")
    assert event["grant_id"] == in_meeting["id"] and f"activity {c.meeting} deleted" in event["reason"]
    shown = ok(c.cli("leads", "show", c.lead, "--json"))
    assert c.meeting not in [a["id"] for a in shown["activities"]]
    # A deleted activity is no context for a new share.
    gone = failed(c.share("lead", c.lead, "daniel", "--context", c.meeting, user="priya"))
    assert f"activity {c.meeting} is not an activity of lead {c.lead}" in gone["reason"]

"""The worker login decides automation shares in team mode: the share cap's lock on the
recipient must not need a privilege the worker lacks (it may not write ``users``)."""

from __future__ import annotations

from pathlib import Path

from .conftest import TeamDb

AUTOMATION = """
name = "Meeting owner gets the lead"
status = "published"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Meeting"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "7d"
access = "edit"
"""


def test_an_automation_share_is_granted_by_the_worker_login(team: TeamDb, tmp_path: Path) -> None:
    team.add_user("daniel", "sales")
    team.add_user("kenji", "sales")
    team.ok("boss", "activity", "types", "add", "Meeting")
    spec = tmp_path / "meeting.toml"
    spec.write_text(AUTOMATION)
    team.ok("boss", "automations", "add", str(spec))
    lead = team.ok("daniel", "leads", "add", "--name", "Acme", "--owner", "daniel", "--json").json()
    team.ok("daniel", "activity", "post", "--lead", lead["id"], "--type", "Meeting", "--owner", "kenji")
    login = f"{team.tag}_worker1"
    team.ok(None, "team", "worker-login", login)
    team.logins["worker1"] = login
    ran = team.cli("worker1", "worker", "--once")
    assert ran.exit_code == 0, ran.stderr
    runs = team.ok("boss", "automations", "runs", "1", "--json").json()["items"]
    assert [r["status"] for r in runs] == ["succeeded"], runs
    assert team.ok("kenji", "leads", "show", lead["id"]).exit_code == 0
    grants = team.connect().execute("SELECT user_id, access, source, state FROM grants").fetchall()
    assert len(grants) == 1 and grants[0][1:] == (2, "automation", "active")
    history = team.ok("daniel", "history", "lead", lead["id"], "--json").json()["items"]
    assert {h["event"] for h in history} >= {"share", "granted"}

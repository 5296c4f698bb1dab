"""Scripted demo stories: every shipped story holds its expectations; bad
stories are refused before anything runs; timelines record as JSON lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sharetui.clock import FrozenClock
from sharetui.host import PluginHost
from sharetui.ops.loader import Loader
from sharetui.ops.stories import StoryError, StoryRunner, list_stories, load_story
from sharetui.runtime import open_core

ROOT = Path(__file__).resolve().parents[3]
DEMOS = ROOT / "sample_data" / "demos"
STORIES = sorted(p.stem for p in DEMOS.glob("*.toml"))
SHIPPED = {
    "presales_handoff",
    "loan_evaluation",
    "home_to_personal_loans",
    "two_activities",
    "task_reminder",
    "share_cap",
    "business_hours",
    "group_vs_share",
}


def run_story(name: str, db_url: str):
    story = load_story(DEMOS / f"{name}.toml")
    dirs = [ROOT / "plugins" / p for p in story.plugins]
    core = open_core(
        db_url, FrozenClock(story.start), plugins=PluginHost.load(plugin_dirs=dirs, entry_points=False)
    )
    Loader(core).load(ROOT / "sample_data", actor=None)
    core.automations.process_pending()
    for key, value in story.settings.items():
        core.settings.set(key, value, actor=None)
    events = []
    failures = StoryRunner(core, story, events.append).run()
    return core, events, failures


def test_every_story_the_issue_names_is_shipped():
    assert set(STORIES) >= SHIPPED
    listed = {name: title for name, title, _ in list_stories(DEMOS)}
    assert all(listed[name] for name in SHIPPED)


@pytest.mark.parametrize("name", STORIES)
def test_each_story_holds_its_expectations(name, db_url, monkeypatch):
    for key in ("SHARETUI_BUSINESS_HOURS", "SHARETUI_BUSINESS_DAYS", "SHARETUI_BUSINESS_TZ"):
        monkeypatch.delenv(key, raising=False)
    core, events, failures = run_story(name, db_url)
    assert failures == []
    kinds = {e.kind for e in events}
    assert "expect" in kinds and "expect_failed" not in kinds
    core.close()


def test_a_broken_expectation_fails_the_story(tmp_path, db_url):
    text = (
        (DEMOS / "presales_handoff.toml")
        .read_text(encoding="utf-8")
        .replace(
            'expect = { user = "daniel", lead = "L001", access = "edit", automation_runs = 1 }',
            'expect = { user = "daniel", lead = "L001", access = "read" }',
        )
    )
    (tmp_path / "broken.toml").write_text(text, encoding="utf-8")
    story = load_story(tmp_path / "broken.toml")
    core = open_core(db_url, FrozenClock(story.start))
    Loader(core).load(ROOT / "sample_data", actor=None)
    events = []
    failures = StoryRunner(core, story, events.append).run()
    assert failures == ["step 5 (expect): daniel has edit access to lead 1, expected read"]
    assert any(e.kind == "expect_failed" for e in events)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[[steps]]\nfly = "away"', "step 1: unknown action 'fly'"),
        ('[[steps]]\nshare = { lead = "L001" }', "step 1: share: missing with"),
        ('[[steps]]\nsay = "hi"\n[[steps]]\nadvance = "3 parsecs"', "step 2: advance: duration '3 parsecs'"),
        ('[[steps]]\nshare = { lead = "L001", opp = "O001", with = "daniel" }', "exactly one of lead or opp"),
        (
            '[[steps]]\nexpect = { user = "daniel", lead = "L001", access = "admin" }',
            "must be none, read or edit",
        ),
        ('[[steps]]\nact_as = "priya"\nshare = { lead = "L001", with = "x" }', "more than one action"),
        ("title = 'x'", "needs [[steps]]"),
        ("steps = [", "not valid TOML"),
    ],
)
def test_a_bad_story_is_refused_naming_file_step_and_problem(tmp_path, body, problem):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(StoryError) as caught:
        load_story(path)
    assert str(path) in caught.value.message and problem in caught.value.message


def test_the_cli_lists_runs_and_records_a_story(cli, tmp_path):
    listed = cli("demo", "--list")
    assert listed.exit_code == 0 and "presales_handoff" in listed.stdout
    record = tmp_path / "timeline.jsonl"
    told = cli("demo", "--script", "presales_handoff", "--record", str(record))
    assert told.exit_code == 0, told.stderr
    assert "every expectation held" in told.stdout
    assert "shared lead 1 with daniel (edit, 14d" in told.stdout
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["step"] == 1 and {"at", "kind", "actor", "text", "data"} <= set(lines[0])
    assert any(line["kind"] == "automation" for line in lines)
    assert lines[-1]["kind"] == "history"


def test_the_cli_refuses_a_bad_story_before_anything_runs(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\n[[steps]]\nshare = { lead = "L001" }\n', encoding="utf-8")
    result = cli("demo", "--script", str(bad))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {bad}: step 1: share: missing with"
    assert cli("demo", "--script", "no_such_story").exit_code == 2
    assert cli("demo", "--record", str(tmp_path / "x.jsonl")).exit_code == 2


def test_a_failing_story_exits_1(cli, tmp_path):
    text = (
        (DEMOS / "presales_handoff.toml")
        .read_text(encoding="utf-8")
        .replace('access = "none" }\n\n[[steps]]\nhistory', 'access = "edit" }\n\n[[steps]]\nhistory')
    )
    path = tmp_path / "wrong.toml"
    path.write_text(text, encoding="utf-8")
    result = cli("demo", "--script", str(path))
    assert result.exit_code == 1
    assert "expectation(s) failed" in result.stdout


def test_a_story_plays_step_by_step_in_the_tui(db_url):
    from sharetui.tui.app import make_app

    story = load_story(DEMOS / "presales_handoff.toml")
    core = open_core(db_url, FrozenClock(story.start))
    Loader(core).load(ROOT / "sample_data", actor=None)
    core.automations.process_pending()
    app = make_app(core, demo=True, story=story, poll_seconds=0)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(5):
                await pilot.press("space")
                for _ in range(50):
                    await app.workers.wait_for_complete()
                    await pilot.pause()
                    if not any(not w.is_finished for w in app.workers):
                        break
            assert app.story_runner.position == 5
            assert app.session.user.username == "priya"  # step 1 acted as priya
            assert "story 5/" in app.sub_title
            assert (
                core.access.level("daniel", ("lead", 1)).label == "edit"
            )  # the meeting fired the automation

    asyncio.run(main())


def test_a_story_tells_only_its_own_records(db_url):
    """The demo bank's other tasks and shares move as the clock does; a story's
    timeline says only what happened to the records it is about (issue 16)."""
    _, events, failures = run_story("task_reminder", db_url)
    assert failures == []
    texts = [e.text for e in events]
    # Only T001's reminder (on O001) is this story's; T002-T007 fall due meanwhile.
    assert [t for t in texts if "reminder(s) fell due" in t] == ["1 task reminder(s) fell due"]
    assert [t for t in texts if t.startswith("automation ")] == [
        "automation 'Task owner can read the opportunity' succeeded: "
        "shared opp 1 with daniel (read, 2d) for admin"
    ]
    assert [t for t in texts if "expir" in t and "share(s)" in t] == [
        "1 share(s) expiring soon",
        "1 share(s) expired",
    ]


def test_the_sample_automations_succeed_on_the_sample_data(db_url):
    """A week of the demo bank: no run fails. Each task reminder shares its opportunity
    with the task's owner (the sample tasks belong to people without access to it)."""
    from datetime import timedelta

    from sharetui.core.events.worker import Worker
    from sharetui.db.models import Task

    core = open_core(db_url, FrozenClock(load_story(DEMOS / "task_reminder.toml").start))
    Loader(core).load(ROOT / "sample_data", actor=None)
    runs = list(core.automations.process_pending())
    for _ in range(8):
        core.clock.set(core.now() + timedelta(days=1))
        runs.extend(Worker(core, name="test").tick().reports)
    assert runs and not [r.summary() for r in runs if r.status == "failed"]
    reminded = {r.record for r in runs if r.automation == "Task owner can read the opportunity"}
    pending = Task.select().where(Task.opportunity.is_null(False) & Task.completed_at.is_null())
    assert reminded == {f"opportunity {t.opportunity_id}" for t in pending}
    assert all(r.status == "succeeded" for r in runs if r.automation == "Task owner can read the opportunity")


@pytest.mark.parametrize("name", ["x" * 5000, "../../etc/passwd", "demos/../task_reminder"])
def test_a_story_name_that_is_no_story_is_refused(cli, name):
    result = cli("demo", "--script", name)
    assert result.exit_code == 2 and "no story named" in result.stderr

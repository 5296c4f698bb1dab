"""Child processes for the stress tests, and the helpers the tests share.

Run as a script (``python tests/stress/child.py COMMAND ...``) so that each
child is a real, separate process with its own connection, like a second
user's terminal or a second worker:

``writer``  shares, revokes and posts activities through the Python API (and,
            in the ``cli`` flavour, mostly through ``sharetui`` subprocesses)
            for a number of seconds, logging one JSON line per operation.
``sweep``   runs the expiry sweep with a small batch size (many commits, so a
            kill lands between and inside batches).

Nothing here asserts; the tests read the logs and the database.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

CHILD = Path(__file__).resolve()

# Kept short: the stress tests build this company themselves.
SALES = tuple(f"seller{n}" for n in range(8))
ACTIVITY_TYPE = "Evaluation"
AUTOMATION_TOML = """
name = "Evaluator edits the lead"
description = "Share the lead with the activity owner for 7 days, edit"
status = "published"

[trigger]
type = "new_activity_on_lead"
activity_types = ["Evaluation"]

[[actions]]
type = "share_lead"
share_with = "owner_in_trigger"
duration = "7d"
access = "edit"
"""


def build_company(core: Any, *, leads: int) -> tuple[Any, list[Any], list[int]]:
    """An admin, eight sales users, the ``Evaluation`` activity type, the published
    automation (with the loop guard lifted, so every activity shares) and ``leads``
    leads owned by the admin (any seller may receive them). Returns (admin, sellers, lead ids)."""
    import textwrap

    admin = core.users.add("admin", role="admin", name="Asha Rao", actor=None)
    sellers = [core.users.add(name, role="sales", actor=admin) for name in SALES]
    core.records.add_activity_type(ACTIVITY_TYPE, actor=admin)
    core.settings.set("automation_daily_limit", 1_000_000, actor=None)
    definition = core.automations.parse(textwrap.dedent(AUTOMATION_TOML), "stress.toml")
    core.automations.add(definition, actor=admin)
    with core.db.atomic():
        ids = [core.records.add_lead(name=f"Lead {n}", owner=admin, actor=admin).id for n in range(leads)]
    core.automations.process_pending()  # the set-up's own events: the queue starts empty
    return admin, sellers, ids


def cli_command(url: str, *args: str) -> list[str]:
    """``sharetui --db URL ARGS`` with the interpreter running the tests."""
    return [sys.executable, "-m", "sharetui", "--db", url, *args]


def child_env(now: str) -> dict[str, str]:
    """The environment of a child: the clock frozen at ``now``, nothing from the user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARETUI_")}
    env["SHARETUI_NOW"] = now
    env["SHARETUI_TZ"] = "UTC"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def problems_in_stderr(text: str) -> list[str]:
    """Lines of a command's stderr that a user must never see (a lock, a traceback, a raw
    database error). ``note:`` lines (embedded automation runs) and ``error:`` refusals are fine."""
    bad = []
    for line in text.splitlines():
        low = line.lower()
        if (
            "locked" in low
            or "traceback" in low
            or "operationalerror" in low
            or "error: database" in low
            or "deadlock" in low
            or "could not serialize" in low
        ):
            bad.append(line)
    return bad


# -- writer ---------------------------------------------------------------------------------------


class Writer:
    """One process's share of the concurrent load."""

    def __init__(self, ns: argparse.Namespace) -> None:
        from sharetui.clock import FrozenClock, parse_instant
        from sharetui.runtime import open_core

        self.ns = ns
        self.url = ns.url
        self.now = ns.now
        self.core = open_core(ns.url, FrozenClock(parse_instant(ns.now)))
        self.rng = random.Random(ns.seed)
        self.admin = self.core.users.get("admin")
        self.leads = [int(x) for x in ns.leads.split(",")]
        self.mine: list[tuple[int, str]] = []  # (lead, user) this writer shared: revoke candidates
        self.log = open(ns.log, "a", encoding="utf-8")  # noqa: SIM115 - closed in run()

    def write(self, entry: dict[str, Any]) -> None:
        entry["writer"] = self.ns.name
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    def run(self) -> None:
        deadline = time.monotonic() + self.ns.seconds
        cli_share = self.ns.flavour == "cli"
        try:
            while time.monotonic() < deadline:
                op = self.rng.choices(("share", "revoke", "activity"), weights=(5, 3, 3))[0]
                via_cli = cli_share and self.rng.random() < 0.8
                entry: dict[str, Any] = {"op": op, "via": "cli" if via_cli else "api"}
                started = time.monotonic()
                try:
                    if via_cli:
                        self.cli_op(op, entry)
                    else:
                        self.api_op(op, entry)
                except Exception as exc:  # noqa: BLE001 - what reaches the user is the finding
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                    entry["traceback"] = traceback.format_exc()
                entry["seconds"] = round(time.monotonic() - started, 3)
                entry["at"] = round(time.time(), 3)
                self.write(entry)
                if self.ns.embedded and not via_cli:
                    self.process(entry)
            if self.ns.embedded:
                self.process({"op": "drain"})
        finally:
            self.log.close()
            self.core.close()

    def process(self, after: dict[str, Any]) -> None:
        """Embedded mode: run the automations the change triggered, as the CLI does."""
        entry: dict[str, Any] = {"op": "process", "via": "api"}
        try:
            entry["runs"] = [r.id for r in self.core.automations.process_pending()]
        except Exception as exc:  # noqa: BLE001
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc()
        if entry.get("runs") or "error" in entry or after.get("op") == "drain":
            self.write(entry)

    def pick_revoke(self) -> tuple[int, str, bool]:
        if self.mine and self.rng.random() < 0.8:
            lead, user = self.mine.pop(self.rng.randrange(len(self.mine)))
        else:
            lead, user = self.rng.choice(self.leads), self.rng.choice(SALES)
        return lead, user, self.rng.random() < 0.5

    def api_op(self, op: str, entry: dict[str, Any]) -> None:
        core = self.core
        if op == "share":
            lead, user = self.rng.choice(self.leads), self.rng.choice(SALES)
            days = self.rng.randint(1, 30)
            access = self.rng.choice(("read", "edit"))
            entry.update(lead=lead, user=user, duration=f"{days}d", access=access)
            result = core.sharing.share(
                "lead", lead, user, requester=self.admin, duration=f"{days}d", access=access
            )
            self.record_result(entry, result.as_dict())
            if result.ok:
                self.mine.append((lead, user))
        elif op == "revoke":
            lead, user, all_contexts = self.pick_revoke()
            entry.update(lead=lead, user=user, all_contexts=all_contexts)
            result = core.sharing.revoke("lead", lead, user, requester=self.admin, all_contexts=all_contexts)
            self.record_result(entry, result.as_dict())
        else:
            lead, owner = self.rng.choice(self.leads), self.rng.choice(SALES)
            entry.update(lead=lead, user=owner)
            act = core.records.post_activity(
                ("lead", lead), type=ACTIVITY_TYPE, owner=owner, actor=self.admin
            )
            entry.update(ok=True, activity_id=act.id)

    @staticmethod
    def record_result(entry: dict[str, Any], result: dict[str, Any]) -> None:
        entry.update(
            ok=result["status"] == "completed",
            request_id=result["request_id"],
            status=result["status"],
            outcome=result.get("outcome"),
            reason=result.get("reason"),
            grant_id=(result.get("grant") or {}).get("id"),
            grant_ids=[g["id"] for g in result.get("grants") or []],
        )

    def cli_op(self, op: str, entry: dict[str, Any]) -> None:
        if op == "share":
            lead, user = self.rng.choice(self.leads), self.rng.choice(SALES)
            days = self.rng.randint(1, 30)
            entry.update(lead=lead, user=user, duration=f"{days}d", access="edit")
            args = ["share", "lead", str(lead), "--with", user, "--for", f"{days}d", "--access", "edit"]
        elif op == "revoke":
            lead, user, all_contexts = self.pick_revoke()
            entry.update(lead=lead, user=user, all_contexts=all_contexts)
            args = ["revoke", "lead", str(lead), "--user", user] + (
                ["--all-contexts"] if all_contexts else []
            )
        else:
            lead, owner = self.rng.choice(self.leads), self.rng.choice(SALES)
            entry.update(lead=lead, user=owner)
            args = ["activity", "post", "--lead", str(lead), "--type", ACTIVITY_TYPE, "--owner", owner]
        proc = subprocess.run(
            cli_command(self.url, *args, "--json"),
            capture_output=True,
            text=True,
            env=child_env(self.now),
            cwd=self.ns.cwd,
            timeout=120,
        )
        entry.update(exit_code=proc.returncode, stderr=proc.stderr[-2000:])
        try:
            data = json.loads(proc.stdout) if proc.stdout.strip() else None
        except json.JSONDecodeError:
            data = None
            entry["stdout"] = proc.stdout[-2000:]
        if op == "activity":
            entry.update(ok=proc.returncode == 0, activity_id=(data or {}).get("id"))
            entry["runs"] = [r["id"] for r in (data or {}).get("automation_runs", [])]
        elif isinstance(data, dict) and "request_id" in data:
            self.record_result(entry, data)
        if entry.get("ok") and op == "share":
            self.mine.append((entry["lead"], entry["user"]))


# -- sweep ------------------------------------------------------------------------------------------


def sweep(ns: argparse.Namespace) -> None:
    from sharetui.clock import FrozenClock, parse_instant
    from sharetui.runtime import open_core

    core = open_core(ns.url, FrozenClock(parse_instant(ns.now)))
    print("ready", flush=True)
    result = core.expiry.sweep(batch_size=ns.batch)
    print(json.dumps(result.as_dict()), flush=True)
    core.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="child")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("writer")
    w.add_argument("--url", required=True)
    w.add_argument("--now", required=True)
    w.add_argument("--name", required=True)
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--seconds", type=float, required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--leads", required=True, help="comma-separated lead ids")
    w.add_argument("--flavour", choices=("api", "cli"), default="api")
    w.add_argument("--embedded", action="store_true", help="process events after each change")
    w.add_argument("--cwd", default=".")
    s = sub.add_parser("sweep")
    s.add_argument("--url", required=True)
    s.add_argument("--now", required=True)
    s.add_argument("--batch", type=int, required=True)
    ns = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints where a stuck child is
    if ns.command == "writer":
        Writer(ns).run()
    else:
        sweep(ns)


if __name__ == "__main__":
    main()

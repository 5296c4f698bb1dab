"""Team mode's cost: the same reads as a sales login under row security and as the
table owner (figure ``rls_overhead``).

On a team-mode copy of the company in a scratch database (``worker_bench.team_copy``:
``team init``, a test clock at the benchmark's now, logins linked to sales users; all
dropped afterwards): each measured sales user reads in a session of their own login, as
a person would, and the table owner reads in its own session, each keeping its plans
(an earlier version switched one session between them with ``SET SESSION
AUTHORIZATION``, which made both re-plan at every switch). The figure is timed once each
session has loaded the page a dozen times, as a session open a while has; the first
loads, which plan the policies anew, are timed apart and given in the note.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from benchmarks.core_bench import NOW, PAGE, page_cases, paired_runs, product
from benchmarks.harness import NOW_ISO, Bench, Figure, at_most_ratio, benchmark

# Page loads per session before the figure is timed (see rls_overhead).
WARM_UP = 12


@benchmark("rls_overhead")
def rls_overhead(bench: Bench) -> list[Figure]:
    from benchmarks.worker_bench import _replace, team_copy
    from sharetui.db.connection import database
    from sharetui.domain.roles import EntityType

    now = NOW.replace(tzinfo=None)
    with team_copy(bench, "rls") as copy:
        if copy is None:
            return []

        def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return copy.poll.execute(sql, params).fetchall()

        cases = page_cases(rows, users=3, true="true", p="%s", now=now)
        logins = {uid: login for uid, login, _leads in copy.posters}
        for case in cases:
            if case.user_id not in logins:
                logins[case.user_id] = login = f"{copy.tag}_u{case.user_id}"
                copy.core.team.link_login(copy.core.users.get(case.user_id), login, password=None)
        owner = copy.core  # the setup role: it owns the tables, row security does not apply
        sessions: dict[int, Any] = {}
        with ExitStack() as stack:
            for case in cases:
                login_url = _replace(copy.url, login=logins[case.user_id])
                core = sessions[case.user_id] = stack.enter_context(product(login_url))
                core.team.start_session(NOW_ISO)  # the test clock, as the setup role's

            def pages(core_of: Callable[[int], Any]) -> list[list[int]]:
                out = []
                for c in cases:
                    core = core_of(c.user_id)
                    database.initialize(core.db)  # statements run on the bound store: this session's
                    page = core.access.visible(c.user_id, EntityType.LEAD, limit=PAGE)
                    out.append([r.id for r in page.rows])
                return out

            def as_login() -> list[list[int]]:
                return pages(sessions.__getitem__)

            def as_owner() -> list[list[int]]:
                return pages(lambda _user: owner)

            if as_login() != as_owner():
                raise RuntimeError("rls_overhead: a sales login's page differs from the owner's")
            # A session's first pages plan every statement anew: psycopg prepares a statement
            # at its fifth run, PostgreSQL plans a prepared one for its values five times
            # more. Row security's policies make that planning dearer. Those first pages are
            # timed apart (the note); the figure is a session that has been open a while.
            cold, cold_base = paired_runs(as_login, as_owner, repeats=WARM_UP, warmup=0)
            times, base_times = paired_runs(as_login, as_owner, repeats=bench.repeats, warmup=0)
    value = statistics.median(times) * 1000 / len(cases)
    base = statistics.median(base_times) * 1000 / len(cases)
    sees = ", ".join(f"{c.visible:,}" for c in cases)
    first = sum(cold) / sum(cold_base)
    notes = (
        f"first visible page of leads, mean over {len(cases)} sales users who see {sees} leads; "
        "value: each in a session of their own login, row security on; baseline: the same calls in "
        "the table owner's session (team mode on a copy of the company); timed once each session "
        f"loaded the page {WARM_UP + 1} times; loads 2 to {WARM_UP + 1} took {first:.2f}x the owner's"
    )
    return [at_most_ratio("rls_overhead", value, base, "ms", 1.5, notes)]

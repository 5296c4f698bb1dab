"""Team mode's cost: the same reads as a sales login under row security and as the
table owner (figure ``rls_overhead``).

Everything happens in one transaction on the cached PostgreSQL company that is rolled
back at the end: ``team init`` (roles, policies, functions), a login for each measured
sales user, ``SET SESSION AUTHORIZATION`` to read as that login. The cached schema and
the cluster's roles are left as they were. The database's clock is set to the
benchmark's (a test clock), so the policies and the core agree on which shares are live.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.core_bench import _CASES, NOW, PAGE, page_cases, paired_runs, product
from benchmarks.harness import Bench, Figure, at_most_ratio, benchmark


@benchmark("rls_overhead")
def rls_overhead(bench: Bench) -> list[Figure]:
    url = bench.pg_company_url()
    if url is None:
        return []
    from sharetui.db import team as team_sql
    from sharetui.domain.roles import EntityType

    now = NOW.replace(tzinfo=None)
    tag = f"bench{uuid.uuid4().hex[:8]}"
    with product(url) as core:
        db = core.db

        def rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return db.execute_sql(sql, params).fetchall()

        key = f"postgres:{url}"
        if key not in _CASES:
            _CASES[key] = page_cases(rows, users=5, true="true", p="%s", now=now)
        cases = _CASES[key][:3]
        with db.atomic() as txn:
            team_sql.init_team(db, f"{tag}_")
            team_sql.set_test_clock(db)
            logins = {}
            for case in cases:
                login = f"{tag}_u{case.user_id}"
                db.execute_sql(f'CREATE ROLE "{login}" LOGIN')
                db.execute_sql("UPDATE users SET login = %s WHERE id = %s", (login, case.user_id))
                # The users trigger moves only logins sharetui_link_login linked (team-mode
                # attack T8): this login joins the sales group here, as linking would.
                db.execute_sql(f'GRANT "{tag}_sales" TO "{login}"')
                logins[case.user_id] = login
            db.execute_sql("SELECT set_config('sharetui.now', %s, false)", (NOW.isoformat(),))

            def page(user_id: int) -> list[int]:
                return [r.id for r in core.access.visible(user_id, EntityType.LEAD, limit=PAGE).rows]

            owner = db.execute_sql("SELECT current_user::text").fetchone()[0]

            def pages_as(role_of: Callable[[int], str]) -> list[list[int]]:
                # Each page between the same two statements, whoever reads it: the figure
                # compares the reads, not the switching.
                out = []
                for case in cases:
                    db.execute_sql(f'SET SESSION AUTHORIZATION "{role_of(case.user_id)}"')
                    try:
                        out.append(page(case.user_id))
                    finally:
                        db.execute_sql("RESET SESSION AUTHORIZATION")
                return out

            def as_login() -> list[list[int]]:
                return pages_as(logins.__getitem__)

            def as_owner() -> list[list[int]]:
                return pages_as(lambda _user: owner)

            if as_login() != as_owner():
                raise RuntimeError("rls_overhead: a sales login's page differs from the owner's")
            times, base_times = paired_runs(as_login, as_owner, repeats=bench.repeats)
            txn.rollback()  # the roles, policies and functions go with it
    value = statistics.median(times) * 1000 / len(cases)
    base = statistics.median(base_times) * 1000 / len(cases)
    sees = ", ".join(f"{c.visible:,}" for c in cases)
    notes = (
        f"first visible page of leads, mean over {len(cases)} sales users who see {sees} leads; "
        "value: as their own login with row security on; baseline: the same call as the table owner "
        "(each switched to with SET SESSION AUTHORIZATION and back)"
    )
    return [at_most_ratio("rls_overhead", value, base, "ms", 1.5, notes)]

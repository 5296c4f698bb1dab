"""``generate``: fill the database with a large, realistic company."""

from __future__ import annotations

from typing import Any

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app

COUNT = click.IntRange(min=0)


@click.command()
@click.option("--leads", type=COUNT, required=True, metavar="N", help="Leads to add.")
@click.option("--opportunities", type=COUNT, required=True, metavar="N", help="Opportunities to add.")
@click.option("--users", type=COUNT, required=True, metavar="N", help="Users to add (mostly sales).")
@click.option("--grants", type=COUNT, required=True, metavar="N", help="Active lead shares to add.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same company.")
@json_option
@pass_app
def generate(
    app: AppContext, leads: int, opportunities: int, users: int, grants: int, seed: int, as_json: bool
) -> None:
    """Add a large, realistic company: users in sales groups, leads, opportunities,
    activities, tasks and shares (for demos and benchmarks).

    An import like `load`: no automation runs on what it adds. About 6% of the
    shares are already past expiry, for the next `sweep`; one ended share per
    ten active ones is added as history.
    """
    from sharetui.ops.generator import check_counts
    from sharetui.ops.generator import generate as run

    check_counts(leads=leads, opportunities=opportunities, users=users, grants=grants)
    core = app.core
    with _StageBars() as progress:
        report = run(
            core,
            leads=leads,
            opportunities=opportunities,
            users=users,
            grants=grants,
            seed=seed,
            progress=progress,
            actor=app.actor,
        )
    out(as_json, report.as_dict(), lambda: _summary(report))


class _StageBars:
    """One rich progress bar per stage, on stderr (drawn only on a terminal)."""

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from sharetui.cli.output import err_console

        console = err_console()
        self.bar = Progress(
            TextColumn("{task.description:<15}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.tasks: dict[str, Any] = {}
        self.bar.__enter__()
        return self.update

    def update(self, stage: str, done: int, total: int) -> None:
        task = self.tasks.get(stage)
        if task is None:
            task = self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]


def _summary(report) -> None:
    from sharetui.cli.output import say, table

    table("generated", ["table", "rows"], [(name, f"{n:,}") for name, n in report.counts.items()])
    say("users: " + ", ".join(f"{n:,} {role}" for role, n in report.users_by_role.items()))
    say(
        "grants: "
        + ", ".join(f"{n:,} {state.replace('_', ' ')}" for state, n in report.grants_by_state.items())
    )
    table(
        "stages",
        ["stage", "rows", "seconds", "rows/s"],
        [
            (
                name,
                f"{rows:,}" if rows else "",
                f"{seconds:.2f}",
                f"{rows / seconds:,.0f}" if rows and seconds else "",
            )
            for name, (rows, seconds) in report.stages.items()
        ],
    )
    say(f"{report.rows:,} rows in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)", "bold")

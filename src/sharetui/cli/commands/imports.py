"""``leads import FILE``: many leads at once, from CSV, JSON Lines or JSON."""

from __future__ import annotations

from typing import Any

import click

from sharetui.cli.context import AppContext, json_option, out, pass_app
from sharetui.ops.imports import FORMATS, import_leads

# Events processed per call in embedded mode: the counts are kept, not a report per run.
_RUNS_BATCH = 10_000


@click.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS, case_sensitive=False),
    help="csv, jsonl or json (default: from the extension, else from the first character).",
)
@json_option
@pass_app
def leads_import(app: AppContext, file: str, fmt: str | None, as_json: bool) -> None:
    """Import leads from FILE ('-' reads stdin).

    \b
    CSV: a header row with the columns name, owner (a username), email, phone,
    company, stage, source, ref, and custom fields as fields.KEY columns.
    JSON Lines: one object per line with those keys ("fields": {...}).
    JSON: an array of such objects.

    Every row is checked first: any problem (each named by its line) and
    nothing is imported (exit 2). Rows whose ref is already a lead's are
    skipped, so importing the same file again adds nothing. Automations on
    new_lead run for the imported leads, as for `leads add`.
    """
    from sharetui.cli.output import say
    from sharetui.ops.imports import LeadFile
    from sharetui.ops.input_files import limit_of

    core = app.core
    source = LeadFile(file, fmt.lower() if fmt else None, limit=limit_of(core))
    with _Bars() as progress:
        report = import_leads(
            core, source, actor=app.actor, where=source.where, source=source.name, progress=progress
        )
        runs = _process_automations(app, progress)
    data = {"file": source.name, "format": source.format, **report.as_dict(), "automation_runs": runs}

    def human() -> None:
        ids = f" (ids {report.first_id}-{report.last_id})" if report.created else ""
        skipped = f"; {report.skipped:,} already present (same ref), skipped" if report.skipped else ""
        say(f"imported {report.created:,} lead(s){ids}{skipped} in {report.seconds:.1f} s")
        if runs:
            say("automations: " + ", ".join(f"{n:,} {status}" for status, n in sorted(runs.items())), "cyan")

    out(as_json, data, human)


def _process_automations(app: AppContext, progress: Any) -> dict[str, int]:
    """Embedded mode: run the automations the new leads trigger; count runs by status."""
    counts: dict[str, int] = {}
    automations = app.core.automations
    events = 0
    while True:
        done, reports = automations.process_pending_counted(limit=_RUNS_BATCH)
        events += done
        progress("events", events, None)
        for r in reports:
            counts[r.status] = counts.get(r.status, 0) + 1
        if done < _RUNS_BATCH:
            return counts


class _Bars:
    """Progress on stderr, drawn only on a terminal: rows checked, leads written, indexes
    rebuilt, the commit, then the events processed in embedded mode."""

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
            TextColumn("{task.description:<8}"),
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

    def update(self, stage: str, done: int, total: int | None) -> None:
        task = self.tasks.get(stage)
        if task is None:
            task = self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

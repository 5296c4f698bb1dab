"""``sharetui`` / ``sharetui tui`` and ``sharetui demo``: the terminal UI."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from sharetui.cli.context import AppContext, pass_app


@click.command()
@pass_app
def tui(app: AppContext) -> None:
    """The terminal UI on the configured database (the default command)."""
    from sharetui.tui.app import make_app

    core = app.core
    make_app(core, acting=app.acting_name).run()


STYLES = {
    "say": "italic",
    "act_as": "bold",
    "automation": "magenta",
    "share": "green",
    "refused": "red",
    "expired": "yellow",
    "notice": "yellow",
    "clock": "bold blue",
    "expect": "green",
    "expect_failed": "bold red",
    "error": "bold red",
    "check": "cyan",
}


@click.command()
@click.option(
    "--script", metavar="NAME", help="Run a story from sample_data/demos (or a .toml path) and print it."
)
@click.option("--list", "list_stories_", is_flag=True, help="List the shipped stories.")
@click.option(
    "--record", "record", type=click.Path(dir_okay=False), help="Also write the timeline as JSON lines."
)
@click.option(
    "--tui", "in_tui", is_flag=True, help="With --script: play the story in the TUI, a step per key."
)
@click.option("--keep", is_flag=True, help="Keep the demo database afterwards and say where it is.")
@click.option("--as", "acting", metavar="USER", help="Start acting as this user.")
@pass_app
def demo(
    app: AppContext,
    script: str | None,
    list_stories_: bool,
    record: str | None,
    in_tui: bool,
    keep: bool,
    acting: str | None,
) -> None:
    """The TUI on a fresh demo bank with a frozen clock (t: +1 hour, T: +1 day),
    or a scripted story (--script) told as a timeline; --list lists them.

    Never touches your own database: the demo lives in a temporary file.
    """
    import os

    from sharetui.clock import FrozenClock, clock_from_env
    from sharetui.errors import UsageError
    from sharetui.ops.loader import Loader
    from sharetui.ops.samples import sample_data_dir
    from sharetui.ops.stories import find_story, list_stories, load_story
    from sharetui.runtime import open_core

    app.embedded = False
    source = sample_data_dir()
    if list_stories_:
        from sharetui.cli.output import table

        table(
            "demo stories (sharetui demo --script NAME)",
            ["name", "story"],
            [
                (name, f"{title}: {description}" if description else title)
                for name, title, description in list_stories(source / "demos")
            ],
        )
        return
    if (record or in_tui) and not script:
        raise UsageError("--record and --tui go with --script NAME")
    story = (
        load_story(find_story(source / "demos", script)) if script else None
    )  # checked before anything runs
    folder = Path(tempfile.mkdtemp(prefix="sharetui-demo-"))
    if story is not None:
        clock = FrozenClock(story.start)
        host = _story_host(app, story, source)
    else:
        clock = clock_from_env()
        if not isinstance(clock, FrozenClock):
            clock = FrozenClock(clock.now().replace(second=0, microsecond=0))
        host = app.host
    failures: list[str] = []
    try:
        core = open_core(f"sqlite:///{folder / 'demo.db'}", clock, plugins=host)
        Loader(core).load(source, actor=None)
        core.automations.process_pending()
        for key, value in story.settings.items() if story else []:
            core.settings.set(key, value, actor=None)
        who = acting or app.acting_name or os.environ.get("SHARETUI_USER") or None
        if story is not None and not in_tui:
            failures = _tell(core, story, record)
        else:
            from sharetui.tui.app import make_app

            make_app(core, acting=who, demo=True, story=story).run()
        core.close()
    finally:
        if keep:
            click.echo(f"demo database kept: {folder / 'demo.db'}", err=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if failures:
        raise SystemExit(1)


def _story_host(app: AppContext, story, source: Path):
    """Default plugins plus the example plugins the story names (from plugins/)."""
    from sharetui.errors import UsageError
    from sharetui.host import PluginHost

    dirs = []
    for name in story.plugins:
        folder = source.parent / "plugins" / name
        if not folder.is_dir():
            raise UsageError(f"{story.path}: plugin {name!r} is not in {source.parent / 'plugins'}")
        dirs.append(folder)
    return PluginHost.load(plugin_dirs=dirs, entry_points=False)


def _tell(core, story, record: str | None) -> list[str]:
    """Run a story and print its timeline; returns the failed expectations."""
    import json

    from rich.console import Console
    from rich.text import Text

    from sharetui.domain.text import visible
    from sharetui.domain.time import display_zone
    from sharetui.ops.stories import StoryRunner

    console = Console(highlight=False, soft_wrap=True)
    console.print(Text(visible(story.title), style="bold underline"))
    if story.description:
        console.print(Text(visible(story.description), style="dim"))
    sink = open(record, "w", encoding="utf-8") if record else None  # noqa: SIM115 - closed below
    try:

        def emit(event) -> None:
            when = event.at.astimezone(display_zone()).strftime("%a %d %b %H:%M")  # local, as the text
            line = Text(f"{when}  ", style="dim")
            line.append(f"{visible(event.actor or '-'):<7} ", style="bold")
            line.append(visible(event.text), style=STYLES.get(event.kind, ""))
            console.print(line)
            if sink is not None:
                sink.write(json.dumps(event.as_dict(), ensure_ascii=False, default=str) + "\n")

        failures = StoryRunner(core, story, emit).run()
    finally:
        if sink is not None:
            sink.close()
    if failures:
        console.print(Text(f"{len(failures)} expectation(s) failed:", style="bold red"))
        for f in failures:
            console.print(Text(f"  {visible(f)}", style="red"))
    else:
        console.print(Text("every expectation held", style="bold green"))
    return failures

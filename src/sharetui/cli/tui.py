"""``sharetui`` / ``sharetui tui`` and ``sharetui demo``: the terminal UI."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from sharetui.cli.main import AppContext, cli, pass_app


@cli.command()
@pass_app
def tui(app: AppContext) -> None:
    """The terminal UI on the configured database (the default command)."""
    from sharetui.tui.app import make_app

    core = app.core
    make_app(core, acting=app.acting_name).run()


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the demo database afterwards and say where it is.")
@click.option("--as", "acting", metavar="USER", help="Start acting as this user.")
@pass_app
def demo(app: AppContext, keep: bool, acting: str | None) -> None:
    """The TUI on a fresh demo bank with a frozen clock (t: +1 hour, T: +1 day).

    Never touches your own database: the demo lives in a temporary file.
    """
    import os

    from sharetui.clock import FrozenClock, clock_from_env
    from sharetui.core.loader import Loader
    from sharetui.core.service import open_core
    from sharetui.samples import sample_data_dir
    from sharetui.tui.app import make_app

    source = sample_data_dir()
    folder = Path(tempfile.mkdtemp(prefix="sharetui-demo-"))
    clock = clock_from_env()
    if not isinstance(clock, FrozenClock):
        clock = FrozenClock(clock.now().replace(second=0, microsecond=0))
    app.embedded = False
    try:
        core = open_core(f"sqlite:///{folder / 'demo.db'}", clock, plugins=app.host)
        Loader(core).load(source)
        make_app(
            core, acting=acting or app.acting_name or os.environ.get("SHARETUI_USER") or None, demo=True
        ).run()
        core.close()
    finally:
        if keep:
            click.echo(f"demo database kept: {folder / 'demo.db'}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

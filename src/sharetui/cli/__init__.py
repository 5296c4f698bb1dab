"""The command line (DESIGN .7). Thin: parses, calls the core, prints.

Importing it never imports Textual, so commands start fast.
"""

from sharetui.cli.main import cli, main

__all__ = ["cli", "main"]

"""The Textual terminal UI: a thin face over the same services as the CLI."""

import click

from sharetui import hookimpl

PLUGIN_NAME = "example-hello"


@hookimpl
def sharetui_register_commands(cli):
    @cli.command()
    @click.argument("name")
    def hello(name):
        """Say hello."""
        click.echo(f"hello {name}")

import click
import example_commands as plugin
from click.testing import CliRunner


def test_the_command_is_added_to_the_group():
    group = click.Group("sharetui")
    plugin.sharetui_register_commands(group)
    result = CliRunner().invoke(group, ["hello", "priya"])
    assert result.output == "hello priya\n"

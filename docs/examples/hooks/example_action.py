from sharetui import hookimpl
from sharetui.sdk import ConfigField, Outcome

PLUGIN_NAME = "example-tag"


def run(ctx, config):
    """Set a custom field ``tag`` on the trigger's record, as the person the run acts for."""
    if ctx.record is None:
        return Outcome.skipped("no record to tag")
    if ctx.dry_run:
        return Outcome.succeeded(f"would tag {ctx.record} {config['tag']!r}")
    ctx.services.records.update(ctx.record, fields={"tag": config["tag"]})
    return Outcome.succeeded(f"tagged {ctx.record} {config['tag']!r}", tag=config["tag"])


@hookimpl
def sharetui_register_actions(register):
    register("tag_record", "Set the record's tag", run, config={"tag": ConfigField(str, required=True)})

from sharetui import hookimpl
from sharetui.sdk import ConfigField, number

PLUGIN_NAME = "example-deal-won"


def matches(config, event):
    """Only deals at least min_amount big."""
    return event["opportunity"]["amount"] >= config.get("min_amount", 0)


def describe(config):
    return f"amount at least {config.get('min_amount', 0)}"


@hookimpl
def sharetui_register_triggers(register):
    register(
        "deal_won",
        "An opportunity moved to stage Won",
        config={"min_amount": ConfigField(number, default=0, help="only deals at least this big")},
        entity="opportunity",
        matches=matches,
        describe=describe,
    )


@hookimpl
def sharetui_record_changed(change, services):
    if change.record.entity == "opportunity" and "stage" in change.changed and change.after.stage == "Won":
        services.fire("deal_won", change.record, {"previous_stage": change.before.stage})

from sharetui import hookimpl

PLUGIN_NAME = "example-stage-watch"


@hookimpl
def sharetui_record_changed(change, services):
    """Tell a record's owner when someone else moves its stage."""
    if change.kind != "updated" or "stage" not in change.changed:
        return
    owner = change.after.owner
    if owner and owner != change.by:
        message = f"{change.by or 'sharetui'} moved {change.after.name} to {change.after.stage}"
        services.notifications.send([owner], message, change.record)

from sharetui import hookimpl
from sharetui.sdk import allow, deny

PLUGIN_NAME = "example-check-access"


@hookimpl
def sharetui_check_access(user, record, action, decision, view):
    """Marketing may fix typos in leads; nobody edits a lead marked do_not_touch."""
    if view is not None and action == "edit" and view.fields.get("do_not_touch"):
        return deny("marked do_not_touch")
    if user.role == "marketing" and action == "edit" and record.entity == "lead":
        return allow("marketing may fix typos")
    return None

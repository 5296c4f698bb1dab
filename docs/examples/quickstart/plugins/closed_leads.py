from sharetui import hookimpl
from sharetui.sdk import deny

PLUGIN_NAME = "closed-leads"
SDK_VERSION = "2"


@hookimpl
def sharetui_check_access(user, record, action, view):
    """Sales users may not edit leads whose stage is Closed."""
    closed = view is not None and view.stage == "Closed"
    if user.role == "sales" and action == "edit" and record.entity == "lead" and closed:
        return deny("closed leads are read-only for sales")
    return None

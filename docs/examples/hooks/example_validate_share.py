from datetime import timedelta

from sharetui import hookimpl
from sharetui.sdk import Access

PLUGIN_NAME = "example-short-edit-shares"


@hookimpl
def sharetui_validate_share(request):
    """Edit shares last at most 30 days."""
    if request.access == Access.EDIT and request.expires_at - request.starts_at > timedelta(days=30):
        return "edit shares may last at most 30 days"
    return None

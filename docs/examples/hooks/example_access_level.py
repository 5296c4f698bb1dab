from sharetui import hookimpl
from sharetui.sdk import Access, AccessDecision

PLUGIN_NAME = "example-lockout"

LOCKED_OUT = {}  # user id -> UserInfo: people under investigation reach nothing


@hookimpl(tryfirst=True)
def sharetui_access_level(user_id, record, now):
    """Replace the rules for locked-out users; leave everyone else to the built-in rules."""
    user = LOCKED_OUT.get(user_id)
    if user is None:
        return None
    return AccessDecision(Access.NONE, {}, now, user)

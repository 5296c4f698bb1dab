"""The plugin SDK: hook specifications, the types hooks receive and return, and
the plugin host. Guide: ``docs/plugins.md``.

    from sharetui import hookimpl
    from sharetui.sdk import deny, Access

    @hookimpl
    def sharetui_check_access(user, record, action, decision):
        if user.username == "intern" and action == "edit":
            return deny("interns read only")
"""

from sharetui.sdk import types as _types
from sharetui.sdk.markers import hookimpl, hookspec
from sharetui.sdk.types import *  # noqa: F403 - the public types, listed once in types.__all__

__all__ = [*_types.__all__, "hookimpl", "hookspec"]

"""The plugin SDK: hook specifications, the types hooks receive and return, and
the facade of services plugins may use. It stands alone: it imports only
``sharetui.domain`` (and pluggy), never the core, the store or the plugin host.
Guide: ``docs/plugins.md``.

    from sharetui import hookimpl
    from sharetui.sdk import deny, Access

    @hookimpl
    def sharetui_check_access(user, record, action, decision):
        if user.username == "intern" and action == "edit":
            return deny("interns read only")
"""

from sharetui.sdk import facade as _facade
from sharetui.sdk import types as _types
from sharetui.sdk.facade import *  # noqa: F403 - the services, listed once in facade.__all__
from sharetui.sdk.hookspecs import SDK_VERSION
from sharetui.sdk.markers import hookimpl, hookspec
from sharetui.sdk.types import *  # noqa: F403 - the public types, listed once in types.__all__

__all__ = [*_types.__all__, *_facade.__all__, "SDK_VERSION", "hookimpl", "hookspec"]

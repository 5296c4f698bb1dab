"""The plugin SDK: hook specifications, the types hooks receive and return, and
the plugin host. Guide: ``docs/plugins.md``.

    from sharetui import hookimpl
    from sharetui.sdk import deny, Access

    @hookimpl
    def sharetui_check_access(user, record, action, decision):
        if user.username == "intern" and action == "edit":
            return deny("interns read only")
"""

from sharetui.sdk.markers import hookimpl, hookspec
from sharetui.sdk.types import (
    Access,
    AccessDecision,
    ActionContext,
    ActionType,
    ConfigField,
    EntityType,
    Outcome,
    RecordRef,
    ShareEvent,
    ShareRequestInfo,
    TriggerType,
    UserInfo,
    Verdict,
    allow,
    deny,
    duration_problem,
    validate_config,
)

__all__ = [
    "Access",
    "AccessDecision",
    "ActionContext",
    "ActionType",
    "ConfigField",
    "EntityType",
    "Outcome",
    "RecordRef",
    "ShareEvent",
    "ShareRequestInfo",
    "TriggerType",
    "UserInfo",
    "Verdict",
    "allow",
    "deny",
    "duration_problem",
    "hookimpl",
    "hookspec",
    "validate_config",
]

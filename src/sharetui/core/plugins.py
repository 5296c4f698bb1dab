"""What the core asks of the plugin runtime.

The core never imports the runtime (``sharetui.host``); it is handed one that
answers this Protocol (:func:`sharetui.runtime.open_core` wires them). Every
call here is isolated by the runtime: a plugin that fails is recorded against
its name, and access checks and share validators fail closed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sharetui.domain.records import RecordRef
from sharetui.sdk.facade import RecordView
from sharetui.sdk.types import (
    AccessDecision,
    ActionType,
    RecordChange,
    ShareEvent,
    ShareRequestInfo,
    TriggerType,
    UserInfo,
)

if TYPE_CHECKING:
    from sharetui.core.service import Core


# The name of the built-in rule set (the default ``sharetui_access_level``): while it
# decides, SQL can filter lists by the same rules; a plugin's rule set cannot be.
BUILTIN_RULE_SET = "builtin-access"


class PluginRuntime(Protocol):
    triggers: Mapping[str, TriggerType]
    actions: Mapping[str, ActionType]

    def attach(self, core: Core) -> None:
        """Bind to ``core`` (build the registries)."""
        ...

    # -- access ------------------------------------------------------------------
    def rule_set(self) -> str:
        """The plugin whose ``sharetui_access_level`` decides (``builtin-access`` unless replaced)."""
        ...

    def access_level(self, user_id: int, record: RecordRef, now: datetime) -> AccessDecision | None:
        """The rule set's decision; None when there is no such user."""
        ...

    def has_access_checks(self) -> bool: ...

    def wants_record_view(self) -> bool:
        """Whether an access check reads the record (its ``view`` parameter)."""
        ...

    def check_access(
        self,
        user: UserInfo,
        record: RecordRef,
        action: str,
        decision: AccessDecision,
        view: RecordView | None = None,
    ) -> Iterator[tuple[str, str]]:
        """Every access check's ``("allow"|"deny", reason)``, in call order; ``view`` is
        the record as checks that ask for it get it."""
        ...

    # -- shares ------------------------------------------------------------------
    def has_share_validators(self) -> bool: ...

    def validate_share(self, request: ShareRequestInfo) -> str | None:
        """The first veto's reason, or None."""
        ...

    def listens_to(self, kind: str) -> bool:
        """Whether any plugin listens to the lifecycle event ``kind``."""
        ...

    def emit(self, event: ShareEvent) -> None:
        """Deliver a committed lifecycle event to the plugins that listen."""
        ...

    def emit_record_change(self, change: RecordChange) -> None:
        """Deliver a committed record change to ``sharetui_record_changed``."""
        ...

    # -- anything else -----------------------------------------------------------
    def plugin_problem(self, plugin: str) -> str | None:
        """Why ``plugin`` will not be called (set aside, not loaded), or None."""
        ...

    def implements(self, hook_name: str) -> bool: ...

    def call(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Every implementation's non-None answer, as ``(plugin, answer)``."""
        ...

    def record_error(self, plugin: str, hook: str, error: str) -> None:
        """Remember a failure of ``plugin`` in ``hook``."""
        ...

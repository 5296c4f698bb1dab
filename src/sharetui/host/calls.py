"""Calling hooks in isolation.

Pluggy stops at the first exception, so the host calls each implementation
itself: a plugin that raises or returns nonsense is recorded against its name
and the rest go on. Access checks and share validators fail closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access
from sharetui.host.loading import PluginInfo, short_error
from sharetui.sdk.types import AccessDecision, ShareEvent, ShareRequestInfo, UserInfo, Verdict

if TYPE_CHECKING:
    from sharetui.core.service import Core

log = logging.getLogger("sharetui.plugins")

LIFECYCLE_HOOKS = {
    "granted": "sharetui_share_granted",
    "renewed": "sharetui_share_renewed",
    "revoked": "sharetui_share_revoked",
    "expired": "sharetui_share_expired",
    "expiring_soon": "sharetui_share_expiring_soon",
    "request_failed": "sharetui_share_request_failed",
}
BUILTIN_RULE_SET = "builtin-access"

Impl = tuple[str, Callable[..., Any], tuple[str, ...]]


def sound_decision(answer: Any) -> bool:
    """An ``AccessDecision`` whose level and sources are ``Access`` levels and whose user
    is a ``UserInfo`` (or None): what ``sharetui_access_level`` must answer."""
    return (
        isinstance(answer, AccessDecision)
        and isinstance(answer.level, Access)
        and isinstance(answer.sources, Mapping)
        and all(isinstance(k, str) and isinstance(v, Access) for k, v in answer.sources.items())
        and (answer.user is None or isinstance(answer.user, UserInfo))
    )


class IsolatedCalls:
    """The calling half of :class:`~sharetui.host.PluginHost`."""

    pm: Any
    plugins: dict[str, PluginInfo]
    core: Core | None
    _access_checks: list[Impl]
    _level_impls: list[Impl]
    _share_validators: list[Impl]

    def _impls(self, hook_name: str) -> list[Impl]:
        caller = getattr(self.pm.hook, hook_name)
        # pluggy's call order: the reverse of its list (tryfirst first, trylast last).
        return [
            (impl.plugin_name, impl.function, tuple(impl.argnames))
            for impl in reversed(caller.get_hookimpls())
            if not (impl.wrapper or impl.hookwrapper)
        ]

    def _impls_in_load_order(self, hook_name: str) -> list[Impl]:
        """Registration hooks run in load order, defaults (trylast) last: the first wins."""
        caller = getattr(self.pm.hook, hook_name)
        impls = sorted(caller.get_hookimpls(), key=lambda impl: (impl.trylast, -impl.tryfirst))
        return [
            (i.plugin_name, i.function, tuple(i.argnames)) for i in impls if not (i.wrapper or i.hookwrapper)
        ]

    def _refresh_impls(self) -> None:
        self._access_checks = self._impls("sharetui_check_access")
        self._level_impls = self._impls("sharetui_access_level")
        self._share_validators = self._impls("sharetui_validate_share")

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name``."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def record_error(self, plugin: str, hook: str, error: str) -> None:
        """Remember a failure of ``plugin`` in ``hook`` (shown by ``sharetui plugins``)."""
        message = f"{hook}: {error}"
        info = self.plugins.get(plugin)
        if info is not None and message not in info.errors:
            info.errors.append(message)
        log.warning("plugin %s failed in %s: %s", plugin, hook, error)
        if self.core is not None:
            try:
                from sharetui.host.state import record_plugin_error

                record_plugin_error(self.core, plugin, hook, error)
            except Exception:
                log.debug("could not store plugin error", exc_info=True)

    def _answers(self, hook_name: str, kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Each implementation's non-``None`` answer, in call order; a failure is
        recorded against its plugin and skipped."""
        for plugin, fn, argnames in self._impls(hook_name):
            try:
                value = fn(**{a: kwargs[a] for a in argnames})
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                self.record_error(plugin, hook_name, short_error(exc))
                continue
            if value is not None:
                yield plugin, value

    def call(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a hook, isolated. Returns ``(plugin, result)``
        pairs for those that returned something other than ``None``."""
        return list(self._answers(hook_name, kwargs))

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """firstresult hooks: the first non-``None`` answer, skipping failures."""
        return next((value for _, value in self._answers(hook_name, kwargs)), None)

    # -- access ------------------------------------------------------------------------
    def rule_set(self) -> str:
        """The plugin whose ``sharetui_access_level`` decides (the built-in rules unless replaced)."""
        return self._level_impls[0][0] if self._level_impls else BUILTIN_RULE_SET

    def access_level(self, user_id: int, record: RecordRef, now: datetime) -> AccessDecision | None:
        """The rule set's decision (``sharetui_access_level``, firstresult).

        With only the built-in rules loaded they are called directly (the hot
        path). A plugin's answer that is not a sound ``AccessDecision`` is
        recorded and denies (fail closed). None: no such user.
        """
        impls = self._level_impls
        if len(impls) == 1:
            return impls[0][1](user_id=user_id, record=record, now=now)
        kwargs = {"user_id": user_id, "record": record, "now": now}
        for plugin, answer in self._answers("sharetui_access_level", kwargs):
            if sound_decision(answer):
                return answer
            self.record_error(
                plugin, "sharetui_access_level", f"returned {answer!r:.200}, not an AccessDecision"
            )
            return self._denied(user_id, record, now)
        return None

    @staticmethod
    def _denied(user_id: int, record: RecordRef, now: datetime) -> AccessDecision:
        """No access at all, for the user the built-in rules know (None: no such user)."""
        from sharetui.default_plugins.access import sharetui_access_level as builtin

        return AccessDecision(Access.NONE, {}, now, builtin(user_id=user_id, record=record, now=now).user)

    def has_access_checks(self) -> bool:
        return bool(self._access_checks)

    def check_access(
        self, user: UserInfo, record: RecordRef, action: str, decision: AccessDecision
    ) -> Iterator[tuple[str, str]]:
        """Ask every access check; yield ``("allow"|"deny", reason)``.

        An implementation that raises or returns something that is not a
        ``Verdict`` (or ``None``) denies: access checks fail closed.
        """
        kwargs = {"user": user, "record": record, "action": action, "decision": decision}
        for plugin, fn, argnames in self._access_checks:
            try:
                value = fn(**{a: kwargs[a] for a in argnames})
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                self.record_error(plugin, "sharetui_check_access", short_error(exc))
                yield ("deny", f"{plugin}: access check failed ({type(exc).__name__})")
                continue
            if value is None:
                continue
            if isinstance(value, Verdict) and value.kind in ("allow", "deny"):
                yield (value.kind, f"{plugin}: {value.reason}")
            else:
                self.record_error(
                    plugin, "sharetui_check_access", f"returned {value!r}, not allow()/deny()/None"
                )
                yield ("deny", f"{plugin}: access check returned nonsense")

    # -- shares ------------------------------------------------------------------------
    def has_share_validators(self) -> bool:
        """Whether any plugin implements ``sharetui_validate_share`` (else the share path skips it)."""
        return bool(self._share_validators)

    def validate_share(self, request: ShareRequestInfo) -> str | None:
        """Ask every ``sharetui_validate_share``; the first veto's reason, or None.

        A check that raises or answers with something that is not a string
        refuses the request (fail closed).
        """
        for plugin, fn, argnames in self._share_validators:
            try:
                value = fn(**{a: request for a in argnames})
            except Exception as exc:  # noqa: BLE001 - isolate plugins
                self.record_error(plugin, "sharetui_validate_share", short_error(exc))
                return f"{plugin}: share check failed ({type(exc).__name__})"
            if value is None:
                continue
            if isinstance(value, str) and value.strip():
                return f"{plugin}: {value.strip()}"
            self.record_error(plugin, "sharetui_validate_share", f"returned {value!r}, not a reason or None")
            return f"{plugin}: share check returned an invalid answer"
        return None

    def listens_to(self, kind: str) -> bool:
        """Whether any plugin listens to the lifecycle event ``kind``."""
        return self.implements(LIFECYCLE_HOOKS[kind])

    def emit(self, event: ShareEvent) -> None:
        """Deliver a lifecycle event to every plugin that listens (the core calls this
        after the event's transaction committed)."""
        self.call(LIFECYCLE_HOOKS[event.kind], event=event)

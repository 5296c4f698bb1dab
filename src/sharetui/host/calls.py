"""Calling hooks in isolation: every failure is the plugin's, and it fails closed.

Pluggy stops at the first exception, so the host calls each implementation
itself (:mod:`sharetui.host.isolation` says how: any ``BaseException``, a
budget per call, a timer on the main thread and worker threads elsewhere). A
plugin that raises, returns nonsense or answers late is recorded against its
name and the rest go on. What a failure means for each hook, and what setting
the plugin aside means:

- ``sharetui_check_access``: a failed or late call denies; set aside, the
  plugin is not called and every check it would have made denies.
- ``sharetui_access_level`` (a plugin's rule set): the user gets no access;
  set aside, every decision denies.
- ``sharetui_validate_share``: the share is refused; set aside, every share is.
- an action: the step fails and its writes roll back; set aside, the step fails
  without calling it.
- lifecycle listeners and every other hook: recorded, the others still run;
  set aside, the plugin is not called.

Setting a plugin aside never widens access: a deny plugin that keeps crashing
keeps denying. The built-in plugins are our own code: they have no budget and
are never set aside.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sharetui.core.plugins import BUILTIN_RULE_SET
from sharetui.domain.records import RecordRef
from sharetui.domain.roles import Access
from sharetui.host.isolation import ALARM, Call, CallPool, Limits, PluginFailure, users_interrupt
from sharetui.host.loading import BUILTIN, PluginInfo, short_error
from sharetui.sdk import hookspecs
from sharetui.sdk.facade import RecordView
from sharetui.sdk.types import (
    AccessDecision,
    ActionContext,
    Outcome,
    RecordChange,
    ShareEvent,
    ShareRequestInfo,
    UserInfo,
    Verdict,
)

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
SET_ASIDE = "set aside"
"""The ``hook`` under which a plugin's setting aside is stored with the other failures."""

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


def _current_names(hook: str, plugin: str, fn: Callable[..., Any], argnames: tuple[str, ...]) -> Impl:
    """An implementation that takes an argument under a name it had in an older SDK
    (``hookspecs.RENAMED_ARGUMENTS``) is called with the current name's value."""
    renamed = hookspecs.RENAMED_ARGUMENTS.get(hook)
    if not renamed or not set(argnames) & set(renamed):
        return plugin, fn, argnames
    old_of = {renamed.get(name, name): name for name in argnames}

    @functools.wraps(fn)
    def called_with_old_names(**kwargs: Any) -> Any:
        return fn(**{old_of[key]: value for key, value in kwargs.items()})

    return plugin, called_with_old_names, tuple(renamed.get(name, name) for name in argnames)


class IsolatedCalls:
    """The calling half of :class:`~sharetui.host.PluginHost`."""

    pm: Any
    plugins: dict[str, PluginInfo]
    unloadable: list[str]
    core: Core | None
    limits: Limits
    _pool: CallPool
    _lock: Any
    _access_checks: list[Impl]
    _check_wants_view: bool = False
    _level_impls: list[Impl]
    _level_builtin: list[bool]
    _share_validators: list[Impl]
    _guards: dict[tuple[str, str, Callable[..., Any]], Callable[..., Any]]

    def _impls(self, hook_name: str) -> list[Impl]:
        caller = getattr(self.pm.hook, hook_name)
        # pluggy's call order: the reverse of its list (tryfirst first, trylast last).
        return [
            _current_names(hook_name, impl.plugin_name, impl.function, tuple(impl.argnames))
            for impl in reversed(caller.get_hookimpls())
            if not (impl.wrapper or impl.hookwrapper)
        ]

    def _impls_in_load_order(self, hook_name: str) -> list[Impl]:
        """Registration hooks run in load order, defaults (trylast) last: the first wins."""
        caller = getattr(self.pm.hook, hook_name)
        impls = sorted(caller.get_hookimpls(), key=lambda impl: (impl.trylast, -impl.tryfirst))
        return [
            _current_names(hook_name, i.plugin_name, i.function, tuple(i.argnames))
            for i in impls
            if not (i.wrapper or i.hookwrapper)
        ]

    def _refresh_impls(self) -> None:
        self._access_checks = self._impls("sharetui_check_access")
        self._check_wants_view = any("view" in argnames for _, _, argnames in self._access_checks)
        self._level_impls = self._impls("sharetui_access_level")
        self._level_builtin = [self._builtin(plugin) for plugin, _, _ in self._level_impls]
        self._share_validators = self._impls("sharetui_validate_share")

    def _builtin(self, plugin: str) -> bool:
        info = self.plugins.get(plugin)
        return info is not None and info.source == BUILTIN

    def plugin_problem(self, plugin: str) -> str | None:
        """Why ``plugin`` will not be called in this process, or None when it will be."""
        info = self.plugins.get(plugin)
        if info is None:
            return "is not loaded"
        if info.set_aside is not None:
            return f"is set aside until restart ({info.set_aside})"
        if not info.loaded:
            return f"is {info.state} ({'; '.join(info.errors) or 'no reason recorded'})"
        return None

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name``."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    # -- failures ------------------------------------------------------------------------
    def record_error(self, plugin: str, hook: str, error: str) -> None:
        """Remember a failure of ``plugin`` in ``hook`` (shown by ``sharetui plugins``);
        the ``plugin_failure_limit``-th in a row sets the plugin aside."""
        message = f"{hook}: {error}"
        info = self.plugins.get(plugin)
        if info is not None and message not in info.errors:
            info.errors.append(message)
        log.warning("plugin %s failed in %s: %s", plugin, hook, error)
        self._store_error(plugin, hook, error)
        if info is None:
            return
        info.failures += 1
        info.failures_in_a_row += 1
        if (
            info.set_aside is None
            and info.failures_in_a_row >= self.limits.failure_limit
            and info.source != BUILTIN
        ):
            self._set_aside(info, f"{hook}: {error}")

    def _set_aside(self, info: PluginInfo, last: str) -> None:
        with self._lock:
            if info.set_aside is not None:
                return
            reason = f"{info.failures_in_a_row} failures in a row, the last: {last}"
            info.set_aside = reason
            if self.core is not None:
                from sharetui.domain.time import iso

                info.set_aside_at = iso(self.core.now())
        info.errors.append(f"set aside until restart: {reason}")
        log.error("plugin %s is set aside until restart: %s", info.name, reason)
        self._store_error(info.name, SET_ASIDE, reason)

    def _store_error(self, plugin: str, hook: str, error: str) -> None:
        if self.core is None:
            return
        try:
            from sharetui.host.state import record_plugin_error

            record_plugin_error(self.core, plugin, hook, error)
        except Exception:
            log.debug("could not store plugin error", exc_info=True)

    def _answered(self, plugin: str) -> None:
        """A sound answer in time: the failures in a row start again from none."""
        info = self.plugins.get(plugin)
        if info is not None and info.failures_in_a_row:
            info.failures_in_a_row = 0

    # -- the two ways to call ------------------------------------------------------------
    def _call_bounded(
        self, plugin: str, hook: str, fn: Callable[..., Any], kwargs: dict[str, Any], budget_ms: int
    ) -> tuple[Any, str | None]:
        """Call a hook that gets only data within ``budget_ms``: on the main thread
        under the alarm, elsewhere on a worker thread.

        Returns ``(answer, None)``, or ``(None, what went wrong)`` once that is
        recorded: it raised (any ``BaseException``), was late (cut short, or its
        answer, if it ever comes, dropped), could not be run, or its plugin is
        set aside.
        """
        info = self.plugins.get(plugin)
        if info is not None and info.set_aside is not None:
            return None, "not run: plugin set aside until restart"
        call = Call(fn, kwargs)
        if ALARM.usable():
            finished: bool | None = ALARM.run(call, budget_ms / 1000)
        else:
            finished = self._pool.run(call, budget_ms / 1000)
        if finished:
            if call.error is None:
                return call.value, None
            self.record_error(plugin, hook, short_error(call.error))
            return None, f"failed ({type(call.error).__name__})"
        if finished is None:
            self.record_error(plugin, hook, "not run: every plugin thread is still busy with late calls")
            return None, "not run: no free plugin thread"
        self.record_error(plugin, hook, f"TimeoutError: no answer within its {budget_ms} ms budget")
        return None, f"took longer than {budget_ms} ms"

    def _call_here(
        self, plugin: str, hook: str, fn: Callable[..., Any], kwargs: dict[str, Any], budget_ms: int
    ) -> tuple[Any, str | None]:
        """Call a hook that works in the caller's transaction on the caller's thread.

        As :meth:`_call_bounded`, but the call cannot be cut short: an answer
        later than ``budget_ms`` is recorded and dropped when it comes.
        """
        info = self.plugins.get(plugin)
        if info is not None and info.set_aside is not None:
            return None, "not run: plugin set aside until restart"
        started = time.perf_counter()
        try:
            value = fn(**kwargs)
        except BaseException as exc:
            if users_interrupt(exc):
                raise
            self.record_error(plugin, hook, short_error(exc))
            return None, f"failed ({type(exc).__name__})"
        if (time.perf_counter() - started) * 1000 > budget_ms:
            self.record_error(plugin, hook, f"TimeoutError: answered after its {budget_ms} ms budget")
            return None, f"took longer than {budget_ms} ms"
        return value, None

    def _answers(self, hook_name: str, kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Each implementation's non-``None`` answer, in call order, each a bounded
        call within the action budget; a failure is recorded and skipped."""
        budget = self.limits.action_ms
        for plugin, fn, argnames in self._impls(hook_name):
            value, failed = self._call_bounded(
                plugin, hook_name, fn, {a: kwargs[a] for a in argnames}, budget
            )
            if failed is not None:
                continue
            self._answered(plugin)
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
        path). A plugin's rule set reads the database in the caller's
        transaction, so it runs on the caller's thread: an answer that fails, is
        not a sound ``AccessDecision`` or comes later than the check budget is
        recorded and denies (fail closed); so does a rule set that is set aside.
        None: no such user.
        """
        impls = self._level_impls
        builtin = self._level_builtin
        if len(impls) == 1 and builtin[0]:
            return impls[0][1](user_id=user_id, record=record, now=now)
        kwargs = {"user_id": user_id, "record": record, "now": now}
        for (plugin, fn, argnames), ours in zip(impls, builtin, strict=True):
            args = {a: kwargs[a] for a in argnames}
            if ours:
                answer = fn(**args)
            else:
                answer, failed = self._call_here(
                    plugin, "sharetui_access_level", fn, args, self.limits.check_ms
                )
                if failed is not None:
                    return self._denied(user_id, record, now)
            if answer is None:
                if not ours:
                    self._answered(plugin)
                continue
            if sound_decision(answer):
                if not ours:
                    self._answered(plugin)
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
        return bool(self._access_checks or self.unloadable)

    def wants_record_view(self) -> bool:
        """Whether an access check asks for the record's ``view`` (then the core loads
        it, once per batch of checks)."""
        return self._check_wants_view

    def check_access(
        self,
        user: UserInfo,
        record: RecordRef,
        action: str,
        decision: AccessDecision,
        view: RecordView | None = None,
    ) -> Iterator[tuple[str, str]]:
        """Ask every access check; yield ``("allow"|"deny", reason)``.

        Each is a bounded call within the check budget. One that raises
        (anything), answers late, returns something that is not a ``Verdict`` (or
        ``None``), or is set aside denies: access checks fail closed.
        """
        for problem in self.unloadable:
            yield ("deny", f"a plugin an admin named in plugin_dirs did not load ({problem})")
        kwargs = {"user": user, "record": record, "action": action, "decision": decision, "view": view}
        budget = self.limits.check_ms
        for plugin, fn, argnames in self._access_checks:
            value, failed = self._call_bounded(
                plugin, "sharetui_check_access", fn, {a: kwargs[a] for a in argnames}, budget
            )
            if failed is not None:
                yield ("deny", f"{plugin}: access check {failed}")
                continue
            if value is None:
                self._answered(plugin)
                continue
            if isinstance(value, Verdict) and value.kind in ("allow", "deny"):
                self._answered(plugin)
                yield (value.kind, f"{plugin}: {value.reason}")
            else:
                self.record_error(
                    plugin, "sharetui_check_access", f"returned {value!r:.200}, not allow()/deny()/None"
                )
                yield ("deny", f"{plugin}: access check returned nonsense")

    # -- shares ------------------------------------------------------------------------
    def has_share_validators(self) -> bool:
        """Whether any plugin implements ``sharetui_validate_share`` (else the share path skips it)."""
        return bool(self._share_validators or self.unloadable)

    def validate_share(self, request: ShareRequestInfo) -> str | None:
        """Ask every ``sharetui_validate_share``; the first veto's reason, or None.

        Each is a bounded call within the check budget, so a slow one holds
        the share's transaction (and SQLite's write lock) no longer than that. One
        that raises, answers late or with something that is not a string, or is
        set aside refuses the request (fail closed), as does a plugin an admin
        named in ``plugin_dirs`` that did not load.
        """
        if self.unloadable:
            return f"a plugin an admin named in plugin_dirs did not load ({self.unloadable[0]})"
        budget = self.limits.check_ms
        for plugin, fn, argnames in self._share_validators:
            value, failed = self._call_bounded(
                plugin, "sharetui_validate_share", fn, {a: request for a in argnames}, budget
            )
            if failed is not None:
                return f"{plugin}: share check {failed}"
            if value is None:
                self._answered(plugin)
                continue
            if isinstance(value, str) and value.strip():
                self._answered(plugin)
                return f"{plugin}: {value.strip()}"
            self.record_error(
                plugin, "sharetui_validate_share", f"returned {value!r:.200}, not a reason or None"
            )
            return f"{plugin}: share check returned an invalid answer"
        return None

    def listens_to(self, kind: str) -> bool:
        """Whether any plugin listens to the lifecycle event ``kind``."""
        return self.implements(LIFECYCLE_HOOKS[kind])

    def emit(self, event: ShareEvent) -> None:
        """Deliver a lifecycle event to every plugin that listens (the core calls this
        after the event's transaction committed), each within the action budget."""
        self.call(LIFECYCLE_HOOKS[event.kind], event=event, services=self.system_services())

    def system_services(self) -> Any:
        """The services facade acting as the system, for the event hooks (None before
        the host is bound to a core)."""
        if self.core is None:
            return None
        from sharetui.core.facade import Acting, PluginServices
        from sharetui.domain.roles import Source

        return PluginServices(self.core, Acting(source=Source.PLUGIN))

    def emit_record_change(self, change: RecordChange) -> None:
        """Deliver a committed record change to every ``sharetui_record_changed``, each a
        bounded call within the action budget, with services acting for ``change.by``."""
        if self.core is None:
            return
        from sharetui.core.facade import Acting, PluginServices
        from sharetui.domain.roles import Source

        person = self.core.users.find(change.by) if change.by else None
        services = PluginServices(self.core, Acting(source=Source.PLUGIN, on_behalf_of=person))
        self.call("sharetui_record_changed", change=change, services=services)

    # -- trigger filters -----------------------------------------------------------------
    def guarded_filter(
        self, plugin: str, trigger: str, matches: Callable[[Any, Any], bool]
    ) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
        """A trigger's ``matches(config, event)`` as the engine calls it: on the caller's
        thread, in the event's transaction. One that raises (anything), answers with
        something other than ``True``/``False``, is late or is set aside **does not
        match** (the automation does not run: a broken filter never runs everything) and
        the failure is recorded against the plugin."""
        if self._builtin(plugin):
            return matches

        @functools.wraps(matches)
        def guarded(config: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
            hook = f"trigger {trigger}: matches"
            answer, failed = self._call_here(
                plugin, hook, lambda: matches(config, event), {}, self.limits.check_ms
            )
            if failed is not None:
                return False
            if not isinstance(answer, bool):
                self.record_error(plugin, hook, f"returned {answer!r:.200}, not True or False")
                return False
            self._answered(plugin)
            return answer

        return guarded

    def guarded_describe(
        self, plugin: str, trigger: str, describe: Callable[[Any], str]
    ) -> Callable[[Mapping[str, Any]], str]:
        """A trigger's ``describe(config)``: a failure is recorded and shows as ``?``."""
        if self._builtin(plugin):
            return describe

        @functools.wraps(describe)
        def guarded(config: Mapping[str, Any]) -> str:
            try:
                text = describe(config)
            except BaseException as exc:
                if users_interrupt(exc):
                    raise
                self.record_error(plugin, f"trigger {trigger}: describe", short_error(exc))
                return "?"
            return text if isinstance(text, str) else "?"

        return guarded

    # -- actions -----------------------------------------------------------------------
    def guarded_action(
        self, plugin: str, name: str, run: Callable[[ActionContext, Mapping[str, Any]], Outcome]
    ) -> Callable[[ActionContext, Mapping[str, Any]], Outcome]:
        """``run`` as the automation engine calls it: on the caller's thread, in the
        run's transaction, and failing the way the engine understands.

        An ``Exception`` passes through unchanged (the engine rolls the step back
        and fails it, or retries a lock conflict). Anything else the action raises,
        an answer later than the action budget, and a set-aside plugin raise
        :class:`PluginFailure`, which the engine treats the same way. The same
        ``run`` gets the same guard each time it is registered.
        """
        key = (plugin, name, run)
        guard = self._guards.get(key)
        if guard is None:
            guard = self._guards[key] = self._guard(plugin, run)
        return guard

    def _guard(
        self, plugin: str, run: Callable[[ActionContext, Mapping[str, Any]], Outcome]
    ) -> Callable[[ActionContext, Mapping[str, Any]], Outcome]:
        @functools.wraps(run)
        def guarded(ctx: ActionContext, config: Mapping[str, Any]) -> Outcome:
            info = self.plugins.get(plugin)
            if info is not None and info.set_aside is not None:
                raise PluginFailure(f"plugin {plugin} is set aside until restart ({info.set_aside})")
            started = time.perf_counter()
            try:
                outcome = run(ctx, config)
            except Exception:
                raise
            except BaseException as exc:
                if users_interrupt(exc):
                    raise
                raise PluginFailure(short_error(exc)) from exc
            budget = self.limits.action_ms
            if (time.perf_counter() - started) * 1000 > budget and not self._builtin(plugin):
                raise PluginFailure(f"answered after its {budget} ms budget")
            if isinstance(outcome, Outcome):
                self._answered(plugin)
            return outcome

        return guarded

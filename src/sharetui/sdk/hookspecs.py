"""Hook specifications: everything a sharetui plugin can implement.

Every hook is called by the plugin host, which calls each implementation on
its own: one plugin raising (anything: ``SystemExit`` and a ``KeyboardInterrupt``
it raises itself included), returning nonsense or taking longer than its budget
is recorded against that plugin's name and never stops the others or the
program. Access checks, the rule set and share validators **fail closed**: such
a failure denies or refuses. A plugin that fails ``plugin_failure_limit``
times in a row (default 5) is set aside until the process ends; a set-aside
access check or rule set still denies, a set-aside validator still refuses.
Implementations may accept any subset of a hook's parameters, by name.

Budgets (settings): ``plugin_budget_ms`` (default 200) for access checks, the
rule set and share validators; ``plugin_action_budget_ms`` (default 2000) for
actions and event hooks. Late answers are dropped.

Threads: hooks that get only data — access checks, share validators and the
event hooks — are *bounded calls*: on the main thread (the CLI, the ``sharetui
worker`` loop) they run in place under a timer that raises inside them when the
budget runs out (a ``BaseException``: do not swallow it); on any other thread (a
TUI thread worker) they run on one of the host's worker threads while the
caller waits at most the budget, and a late call runs on unheeded. Access
checks and share validators use only their arguments (not the database) and
stay cheap; event hooks, after commit, may use the ``services`` they get. The rule set
and actions work in the caller's transaction and run on its thread: their
budget is checked when they return. Registration hooks run on the loading
thread. Do not touch the UI from a hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sharetui.sdk.markers import hookspec

SDK_VERSION = "2.0"
"""The version of these hook specifications and of the types and services plugins
get. The major number changes when something is removed or changes meaning; a
plugin says what it was written for with a module-level ``SDK_VERSION = "2"``,
which ``sharetui plugins`` shows.

Versioning policy: within a major version nothing a plugin uses goes away. A hook
that is renamed keeps working under its old name until the next major version
(:data:`RENAMED_HOOKS`: the host calls the old implementation as the new hook and
warns with a ``DeprecationWarning``, shown by ``sharetui plugins``). A renamed
argument stays in the specification under its old name too, with pluggy's
``warn_on_impl_args`` warning whoever still takes it, and the host hands it the
current argument's value (:data:`RENAMED_ARGUMENTS`). New arguments are added
freely: implementations take any subset, by name.
"""

RENAMED_HOOKS: dict[str, str] = {}
"""Old hook name -> the current one, for implementations written against an older SDK."""

RENAMED_ARGUMENTS: dict[str, dict[str, str]] = {}
"""Hook -> {old argument name: current name}. The specification keeps the old name
(with ``warn_on_impl_args``) until the next major version; the host hands an
implementation that takes the old name the current argument's value."""

if TYPE_CHECKING:
    import click

    from sharetui.sdk.facade import RecordView, Services
    from sharetui.sdk.types import (
        AccessDecision,
        ActionType,
        RecordChange,
        RecordRef,
        ShareEvent,
        ShareRequestInfo,
        TriggerType,
        UserInfo,
        Verdict,
    )


@hookspec
def sharetui_register_triggers(register: Callable[..., TriggerType]) -> None:
    """Register trigger types that can start automations.

    Args:
        register: ``register(name, description, *, config=None, entity=None)``.
            ``config`` maps each configuration key to a ``ConfigField``; an
            automation using the trigger is validated against it when saved.
            ``entity`` is ``"lead"`` or ``"opportunity"``, the record the
            trigger's events are about. Names are unique: registering a name
            twice is recorded as an error of the second plugin.

    Returns: nothing (the return value is ignored).
    Not firstresult. Called once, when plugins are loaded (or a plugin is
    registered later), on the loading thread.
    """


@hookspec
def sharetui_register_actions(register: Callable[..., ActionType]) -> None:
    """Register action types that automations can run.

    Args:
        register: ``register(name, description, run, *, config=None)``.
            ``run(ctx: ActionContext, config: dict) -> Outcome`` does the work
            (or, when ``ctx.dry_run``, only says what it would do) and returns
            ``Outcome.succeeded/failed/skipped``. ``config`` is the schema, as
            for triggers. A ``run`` that raises (anything) or returns later
            than ``plugin_action_budget_ms`` gives a failed outcome, and what
            it wrote rolls back. ``run`` is called on the thread running the
            automation, inside the run's transaction. The services it gets
            share and revoke as ``ctx.acting_for``, the person whose change
            fired the run (DESIGN §9), unless it passes
            ``on_behalf_of="automation"``.

    Returns: nothing. Not firstresult. Called once, when plugins are loaded
    (or a plugin is registered later), on the loading thread.
    """


@hookspec(firstresult=True)
def sharetui_access_level(user_id: int, record: RecordRef, now: Any) -> AccessDecision | None:
    """Compute the access a user has to a record: the rule set itself.

    Args:
        user_id: the user's id. record: the lead or opportunity. now: the
            clock's time (aware UTC); grants that expire at or before it give
            nothing.

    Returns: an ``AccessDecision`` with ``level``, ``sources``, ``now`` and
    ``user`` (a ``UserInfo``, or ``None`` when there is no such user), or
    ``None`` to leave the answer to the next implementation. The default
    plugin (roles, ownership, sales groups, active unexpired grants) is
    registered ``trylast``, so a plugin that answers replaces it entirely.

    An answer that raises, is not a sound ``AccessDecision``, or comes later
    than ``plugin_budget_ms`` (default 200 ms; it cannot be cut short, so it
    is judged when it returns) denies: the user gets no access. A rule set
    that is set aside denies every decision.

    firstresult: the first non-``None`` answer wins. Called for every access
    check (the hot path: keep it to one indexed query), on the caller's thread,
    in its transaction.
    """


@hookspec
def sharetui_check_access(
    user: UserInfo, record: RecordRef, action: str, decision: AccessDecision, view: RecordView | None
) -> Verdict | None:
    """Allow or deny one action (``"read"`` or ``"edit"``) on a record.

    Args:
        user: who asks. record: the lead or opportunity. action: what they want.
        decision: what the built-in rules decided (``level``, ``sources``,
            ``now`` — use ``decision.now``, never the system clock).
        view: the record, read-only (a ``RecordView``: ``owner``, ``stage``,
            ``name``, the standard fields in ``values``, the custom ones in
            ``fields``), or ``None`` when the record does not exist. Loaded only
            when an implementation names this parameter, once per batch of
            checks (a list loads its whole page in one query).

    Returns: ``deny(reason)``, ``allow(reason)`` or ``None`` (no opinion). A deny
    always wins; an allow grants the action even where the built-in rules do
    not. An implementation that raises (anything), returns anything else, or
    does not answer within ``plugin_budget_ms`` (default 200 ms) **denies**
    (fail closed) and the failure is recorded against the plugin; set aside
    after repeated failures, it denies every check without being called.

    Not firstresult: every implementation is asked. Called for every access
    check, list row and CLI/TUI action, as a bounded call (in place on the
    main thread, else on a host worker thread): keep it cheap and pure (use
    only its arguments).
    """


@hookspec
def sharetui_validate_share(request: ShareRequestInfo) -> str | None:
    """Veto a share or a renewal before it is granted.

    Returns: a reason (a non-empty string) to refuse; the request fails with
    ``"<plugin>: <reason>"`` and is kept in history. ``None`` to let it pass.
    An implementation that raises (anything), answers with anything else or
    not within ``plugin_budget_ms`` (default 200 ms) refuses the request too
    (fail closed); set aside, it refuses every request.

    Not firstresult: every implementation is asked. Called while the share's
    transaction is open, after the built-in rules passed, as a bounded call
    (in place on the main thread, else on a host worker thread): the share
    waits at most the budget. Use only the request.
    """


@hookspec
def sharetui_share_granted(event: ShareEvent, services: Services) -> None:
    """A share was granted.

    Args: event — a ``ShareEvent`` (kind, record, user, at, source,
    request_id, reason, grant); services — the typed facade (``Services``),
    acting as the system, as in every event hook below (take it only if you
    need it). Returns nothing (ignored). Not firstresult.
    Called after the transaction committed, once per grant, as a bounded call
    (in place on the main thread, else on a host worker thread) within
    ``plugin_action_budget_ms`` (default 2000 ms). The same holds for every
    event hook below.
    """


@hookspec
def sharetui_share_renewed(event: ShareEvent, services: Services) -> None:
    """A share was renewed (re-shared: new access and expiry).

    Args: event — a ``ShareEvent``. Returns nothing. Not firstresult. Called
    after commit, as a bounded call (main thread or a host worker thread).
    """


@hookspec
def sharetui_share_revoked(event: ShareEvent, services: Services) -> None:
    """A share was revoked: by a request, a deactivation, a role change, or its
    context activity being deleted or completed (``event.reason`` says which).

    Args: event — a ``ShareEvent``. Returns nothing. Not firstresult. Called
    after commit, once per grant, as a bounded call (main thread or a host
    worker thread).
    """


@hookspec
def sharetui_share_expired(event: ShareEvent, services: Services) -> None:
    """A share expired and the sweeper recorded it (expired shares grant
    nothing even before this).

    Args: event — a ``ShareEvent``. Returns nothing. Not firstresult. Called
    after the sweep's batch committed, once per grant, as a bounded call (main
    thread or a host worker thread).
    """


@hookspec
def sharetui_share_expiring_soon(event: ShareEvent, services: Services) -> None:
    """A share will expire within the configured window (default 24 h).

    Args: event — a ``ShareEvent``. Returns nothing. Not firstresult. Sent
    once per grant by the sweeper, after commit, as a bounded call (main thread
    or a host worker thread).
    """


@hookspec
def sharetui_share_request_failed(event: ShareEvent, services: Services) -> None:
    """A share or revoke request failed; ``event.reason`` says why.

    Args: event — a ``ShareEvent`` (``grant`` is None). Returns nothing. Not
    firstresult. Called after commit, as a bounded call (main thread or a host
    worker thread).
    """


@hookspec
def sharetui_record_changed(change: RecordChange, services: Services) -> None:
    """A lead or an opportunity was created, updated or deleted.

    Args:
        change: a ``RecordChange``: ``kind`` (``created``, ``updated``,
            ``deleted``), ``record``, ``before`` and ``after`` (``RecordView``),
            ``changed`` (field names), ``by`` (who made it) and ``at``.
        services: the typed facade (``sharetui.sdk.Services``), acting for
            ``change.by``: ``services.triggers.fire(trigger, record, data)`` queues
            your own trigger's event, whose automations act for that person.

    Returns: nothing (ignored). Not firstresult. Called after the change's
    transaction committed (never for a change that rolled back; an automation
    step's changes only once its step succeeded), once per change, as a bounded
    call (in place on the main thread, else on a host worker thread) within
    ``plugin_action_budget_ms``. A failure is recorded; it never undoes the
    change. Work that must not be lost belongs in an automation, not here.
    Bulk writes (imports, loads, generated data) are not reported row by row.
    """


@hookspec
def sharetui_automation_run_finished(run: dict[str, Any], services: Services) -> None:
    """An automation run finished.

    Args: run — its id, automation, status (``succeeded``, ``failed`` or
    ``skipped``), trace and timing; services — the typed facade, acting as
    the system. Returns nothing. Not firstresult. Called
    after the run committed, as a bounded call (main thread or a host worker
    thread) within ``plugin_action_budget_ms``.
    """


@hookspec
def sharetui_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``sharetui`` command line.

    Args:
        cli: the root ``click.Group``; add commands with ``@cli.command()``.
            A command named like a built-in one is refused and recorded.

    Returns: nothing. Not firstresult. Called once, when a command that is not
    built in is looked up or the help is shown, on the main thread.
    """

"""The ASGI app: LeadSquared's paths on Starlette, each call checked for a key and run
as the key's user through the core's services (:mod:`sharetui.api.operations`).

- **Keys** come as LeadSquared sends them: ``accessKey``/``secretKey`` query
  parameters, or the ``x-LSQ-AccessKey``/``x-LSQ-SecretKey`` headers. A missing,
  unknown or revoked key, a wrong secret and a deactivated user all get the same
  401, so a caller learns nothing of which keys exist.
- **Bodies** are read up to a limit (413 past it, from ``Content-Length`` or while
  reading); a body that is not the JSON asked for gets 400. Both before anything
  is written.
- **Key checks that cost scrypt** (a key not yet remembered, a wrong or unknown
  one: every 401) run on :data:`~sharetui.core.access.keys.KDF_SLOTS` threads of
  their own, so a burst of bad keys queues there and never holds the threads that
  serve remembered keys.
- **Blocking work** (Peewee) runs in a fixed pool of threads, each with its own
  database connection (Peewee keeps one per thread), never on the event loop.
- **Automations**: after a call that changed something, a background thread runs
  the automations the change triggered, as embedded mode does after a command
  (off with ``automations=False`` when ``sharetui worker`` does it).
- **Logs** name the key by its id and the path without its query string: never a
  secret.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sharetui.api import operations
from sharetui.api.openapi import openapi_document
from sharetui.api.operations import Reply, error
from sharetui.core.access.keys import KDF_SLOTS
from sharetui.domain.text import shorten, visible
from sharetui.errors import NotReadable, PermissionDenied, Refused, SharetuiError

if TYPE_CHECKING:
    from sharetui.core.service import Core

log = logging.getLogger("sharetui.api")

DEFAULT_MAX_BODY = 1024 * 1024  # bytes: 10,000 share items of LeadSquared's shape fit
DEFAULT_THREADS = 8
UNAUTHORIZED = "invalid accessKey or secretKey, or an inactive user"
MAX_ECHO = 500  # characters of an input error's message
FAULT = "the request failed on the server; see its log"


class BodyTooLarge(Exception):
    pass


class AutomationPump:
    """Runs the automations pending changes triggered, on a thread of its own, when
    kicked (and every few seconds, for changes made meanwhile by others)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sharetui-api-automations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=5)
            self._wake.clear()
            try:
                self.core.automations.process_pending()
            except Exception:
                log.exception("automations: processing pending events failed")
        self.core.close()  # this thread's connection


def credentials(request: Request) -> tuple[str | None, str | None]:
    """The key pair as LeadSquared takes it: query parameters, else headers."""
    q, h = request.query_params, request.headers
    access = q.get("accessKey") or h.get("x-lsq-accesskey")
    secret = q.get("secretKey") or h.get("x-lsq-secretkey")
    return access, secret


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or :class:`BodyTooLarge` as soon as it (or its ``Content-Length``) passes
    ``limit`` bytes: an oversized body is never held whole."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _json(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status)


def create_app(
    core: Core,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    threads: int = DEFAULT_THREADS,
    automations: bool = True,
) -> Starlette:
    """The app over ``core``. Its thread pool and automation thread live as long as the
    app's lifespan (uvicorn runs it)."""
    state: dict[str, Any] = {}

    def blocking(fn: Callable[..., Reply], *args: Any) -> Reply:
        """One call in a pool thread: the store's errors a caller caused become replies."""
        try:
            return fn(*args)
        except NotReadable as exc:
            return error(404, "MXEntityNotFoundException", exc.message)
        except PermissionDenied as exc:
            return error(403, "MXPermissionDeniedException", exc.message)
        except Refused as exc:
            return error(422, "MXRequestRefusedException", exc.message)
        except SharetuiError as exc:  # UsageError and the rest: bad input
            # Cut: a message may repeat the caller's input, which may be a megabyte long.
            return error(400, "MXInvalidInputException", shorten(exc.message, MAX_ECHO))

    async def in_pool(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(state["pool"], fn, *args)

    def call(
        path: str, work: Callable[..., Reply], access: Any, secret: Any, arg: Any, caller: Any = None
    ) -> tuple[Any, Reply | None]:
        """The work as the key's user: one trip to a pool thread for a remembered key.
        Any other key answers ``(None, None)`` and is checked (scrypt) on the KDF
        threads first, then comes back with its ``caller``."""
        if caller is None:
            caller = core.keys.remembered(access, secret)
            if caller is None:
                return None, None
        try:
            return caller.key_id, blocking(work, core, caller.user, arg)
        except Exception:
            log.exception("key=%s %s failed", caller.key_id, path)
            return caller.key_id, error(500, "MXInternalServerException", FAULT)

    def endpoint(path: str, work: Callable[..., Reply], *, takes_body: bool) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            key_id: int | None = None
            try:
                body = await read_body(request, max_body) if takes_body else b""
                arg: Any = body if takes_body else dict(request.query_params)
                access, secret = credentials(request)
                key_id, maybe = await in_pool(call, path, work, access, secret, arg)
                if maybe is None:  # not a remembered key: scrypt, on the KDF threads only
                    caller = await asyncio.get_running_loop().run_in_executor(
                        state["kdf"], core.keys.authenticate, access, secret
                    )
                    if caller is None:
                        maybe = error(401, "MXUnAuthorizedAccessException", UNAUTHORIZED)
                    else:
                        key_id, maybe = await in_pool(call, path, work, access, secret, arg, caller)
                assert maybe is not None
                reply = maybe
                if reply.wrote and state.get("pump") is not None:
                    state["pump"].kick()
            except BodyTooLarge:
                reply = error(413, "MXRequestTooLargeException", f"the body is larger than {max_body} bytes")
            except Exception:
                log.exception("key=%s %s %s failed", key_id, request.method, path)
                reply = error(500, "MXInternalServerException", FAULT)
            log.info(
                "key=%s %s %s %d %.1fms",
                key_id if key_id is not None else "-",
                request.method,
                path,  # the route's own path: never the query string (it may hold secretKey)
                reply.status,
                (time.perf_counter() - started) * 1000,
            )
            return _json(reply)

        return handle

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document())

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        if code == 405:
            reply = error(405, "MXMethodNotAllowedException", f"{request.method} is not allowed here")
        else:
            reply = error(404, "MXAPINotFoundException", "no such API: see /openapi.json")
        # Logged like every call: the path only (never the query string, where secretKey may be).
        log.info(
            "key=- %s %s %d", request.method, visible(request.url.path[:200], one_line=True), reply.status
        )
        return _json(reply)

    @asynccontextmanager
    async def lifespan(_: Starlette):
        state["pool"] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sharetui-api")
        # Keys that need scrypt (new, wrong, unknown) are checked here, apart from the
        # work: a burst of bad keys queues on these threads, not on the pool's.
        state["kdf"] = ThreadPoolExecutor(max_workers=KDF_SLOTS, thread_name_prefix="sharetui-api-kdf")
        await in_pool(core.keys.prepare)
        if automations:
            state["pump"] = AutomationPump(core)
            state["pump"].start()
        try:
            yield
        finally:
            if state.get("pump") is not None:
                state["pump"].stop()
            state["kdf"].shutdown(wait=True)
            state["pool"].shutdown(wait=True)

    ea = "/v2/EntityAccess.svc"
    calls: list[tuple[str, str, Callable[..., Reply]]] = [
        ("POST", f"{ea}/Share", operations.share),
        ("POST", f"{ea}/Revoke", operations.revoke),
        ("GET", f"{ea}/Status/Get", operations.status),
        ("GET", f"{ea}/History/Get", operations.history),
        ("POST", "/v2/ProspectActivity.svc/Create", operations.post_activity),
    ]
    routes = [
        Route(path, endpoint(path, work, takes_body=method == "POST"), methods=[method])
        for method, path, work in calls
    ]
    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})
    # No redirect for a trailing slash: Starlette's 307 names the Host header's server in
    # Location and repeats the query string, secretKey and all, to wherever that points.
    app.router.redirect_slashes = False
    return app


__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_THREADS", "create_app", "credentials"]

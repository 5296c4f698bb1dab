"""Running the app: uvicorn on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import TYPE_CHECKING

from sharetui.api.app import DEFAULT_MAX_BODY, DEFAULT_THREADS, create_app
from sharetui.errors import UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine alone."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_address(host: str, *, allow_remote: bool) -> str:
    """The line that says where the API listens; refuses a non-loopback address
    unless ``allow_remote`` (:class:`UsageError`)."""
    if is_loopback(host):
        return "loopback only: reachable from this machine alone"
    if not allow_remote:
        raise UsageError(
            f"{host} is not a loopback address: other machines could call the API. "
            "Pass --allow-remote to mean it (and put a TLS proxy in front: keys travel in every request)"
        )
    return "REACHABLE FROM OTHER MACHINES (--allow-remote); use TLS in front of it"


def serve(
    core: Core,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_remote: bool = False,
    threads: int = DEFAULT_THREADS,
    max_body: int = DEFAULT_MAX_BODY,
    automations: bool = True,
) -> None:
    """Serve the API over ``core`` until interrupted (SIGINT/SIGTERM end it cleanly)."""
    import uvicorn

    reach = check_address(host, allow_remote=allow_remote)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    shown = f"[{host}]" if ":" in host else host
    print(f"sharetui serve: http://{shown}:{port} ({reach})", file=sys.stderr, flush=True)
    app = create_app(core, max_body=max_body, threads=threads, automations=automations)
    # access_log off: uvicorn's access log prints the query string, where accessKey and
    # secretKey may be; the app logs each request itself with the key's id only.
    config = uvicorn.Config(
        app, host=host, port=port, access_log=False, log_config=None, lifespan="on", server_header=False
    )
    uvicorn.Server(config).run()


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "check_address", "is_loopback", "serve"]

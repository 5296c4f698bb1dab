"""The HTTP API (DESIGN §10): LeadSquared's entity-access calls over the core's services.

An edge like the CLI and the TUI: it checks a key, then calls the same services with
the key's user as the actor; the gate decides (DESIGN §9). ``sharetui serve`` runs it.
"""

from sharetui.api.app import create_app
from sharetui.api.server import serve

__all__ = ["create_app", "serve"]

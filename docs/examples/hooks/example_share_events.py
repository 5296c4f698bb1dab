from sharetui import hookimpl

PLUGIN_NAME = "example-share-log"

LOG = []  # (kind, record, user, reason): where a real plugin would write to a file or a queue


def _keep(event):
    LOG.append((event.kind, str(event.record), event.user, event.reason))


@hookimpl
def sharetui_share_granted(event):
    _keep(event)


@hookimpl
def sharetui_share_renewed(event):
    _keep(event)


@hookimpl
def sharetui_share_revoked(event):
    _keep(event)


@hookimpl
def sharetui_share_expired(event):
    _keep(event)


@hookimpl
def sharetui_share_expiring_soon(event):
    _keep(event)


@hookimpl
def sharetui_share_request_failed(event):
    _keep(event)

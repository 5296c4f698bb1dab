"""Errors a user can cause, each with a message they can act on.

The CLI maps them to exit codes: :class:`UsageError` and its subclasses to 2
(bad usage or input, nothing changed), :class:`Refused` to 1 (a request that
was understood but refused, such as a failed share or a denied check).
"""

from __future__ import annotations


class SharetuiError(Exception):
    """Root of every error sharetui raises on purpose. ``str(e)`` is for users."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(SharetuiError):
    """Bad usage or bad input: nothing was changed."""


class NotFound(UsageError):
    """A named user, record, activity or request does not exist."""


class InvalidDuration(UsageError):
    """A duration that cannot be read, or is out of the allowed range."""


class DataFileError(UsageError):
    """A sample-data or input file that cannot be loaded; names file and record."""


class PermissionDenied(SharetuiError):
    """The acting user may not do this."""

    exit_code = 1


class Refused(SharetuiError):
    """A well-formed request that was refused (recorded where it applies)."""

    exit_code = 1


class NotReadable(Refused):
    """A record (or something of it) the acting user may not read, or that does not
    exist: the two answer alike, so a user learns nothing of what they may not read."""

"""Record, user, activity and request ids: the one place text and numbers become ids."""

from __future__ import annotations

from typing import Any

from sharetui.errors import UsageError

# The largest id a record, user, activity or request can have: ids are signed 64-bit
# integers in both databases, and SQLite cannot even look up a larger one.
MAX_ID = 2**63 - 1


def as_id(text: str) -> int | None:
    """The id ``text`` spells in ASCII digits (``str.isdigit`` also takes "²", which
    ``int`` refuses), or None when it spells none or one beyond :data:`MAX_ID`."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def parse_id(value: Any, what: str) -> int:
    """``value`` (an int, or text of ASCII digits with an optional sign) as an id.

    Raises:
        UsageError: naming ``what`` when ``value`` is not a whole number from 1 to
            :data:`MAX_ID`.
    """
    if isinstance(value, bool):
        raise UsageError(f"{what} must be a whole number, not {value!r}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        digits = text[1:] if text[:1] in ("+", "-") else text
        if not (digits.isascii() and digits.isdigit()):
            raise UsageError(f"{what} must be a whole number, not {value!r}")
        if len(digits) > 4000:  # more digits than int() reads
            raise UsageError(f"{what} must be at most {MAX_ID}")
        number = int(text)
    if number < 1:
        raise UsageError(f"{what} must be a positive whole number, not {value!r}")
    if number > MAX_ID:
        raise UsageError(f"{what} must be at most {MAX_ID}, not {value!r}")
    return number

"""Reading input files with a bound: batch JSON (``api``), automation TOML
(``automations add``), sample data (``load``), lead files (``leads import``) and
demo stories.

The largest input is the setting ``max_input_bytes`` (default 256 MiB). A larger
input is refused before it is read whole, so ``sharetui api share /dev/zero``
ends with one error line instead of eating the machine's memory:

- a regular file is refused on its size, before a byte is read;
- anything else (stdin, a pipe, ``/dev/zero``, a ``/proc`` file that says it has
  size 0) is read up to ``limit + 1`` bytes at most, and refused if that many came.

Every refusal is a :class:`~sharetui.errors.DataFileError` (exit 2) naming the
input and the setting, so the user knows what to raise.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path
from typing import IO, Any

from sharetui.core.records.settings import DEFAULTS
from sharetui.errors import DataFileError

DEFAULT_LIMIT: int = DEFAULTS["max_input_bytes"]
STDIN = "-"


def limit_of(core: Any) -> int:
    """The ``max_input_bytes`` setting of ``core``'s database (the default without one)."""
    if core is None:
        return DEFAULT_LIMIT
    return int(core.settings.get("max_input_bytes"))


def too_large(name: str, limit: int, size: int | None = None) -> DataFileError:
    """The error for an input over ``limit`` bytes (``size`` when known)."""
    what = f"is {size:,} bytes, larger than" if size is not None else "is larger than"
    return DataFileError(
        f"{name} {what} the largest input allowed ({limit:,} bytes, setting max_input_bytes; "
        "an admin may raise it: sharetui settings max_input_bytes N)"
    )


def input_name(source: str | Path) -> str:
    return "stdin" if str(source) == STDIN else str(source)


def read_input(source: str | Path, limit: int) -> bytes:
    """All of ``source`` (a path, or ``-`` for stdin) as bytes, at most ``limit`` of them.

    Raises:
        DataFileError: the input cannot be opened or is larger than ``limit``.
    """
    name = input_name(source)
    if str(source) == STDIN:
        stream: Any = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream put in place of stdin (tests)
            stream = io.BytesIO(sys.stdin.read(limit + 1).encode("utf-8", "surrogateescape"))
        data = stream.read(limit + 1)
    else:
        with open_input(source, limit) as fh:
            data = fh.read(limit + 1)
    if len(data) > limit:
        raise too_large(name, limit)
    return data


def read_text(source: str | Path, limit: int) -> str:
    """:func:`read_input` decoded as UTF-8 (strictly: a BOM is kept, bad bytes refused)."""
    data = read_input(source, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFileError(f"{input_name(source)}: not UTF-8 text (line {line})") from None


def open_input(source: str | Path, limit: int) -> IO[bytes]:
    """``source`` opened for reading bytes, never yielding more than ``limit + 1`` of
    them; a regular file larger than ``limit`` is refused before it is read.

    Raises:
        DataFileError: it cannot be opened (missing, a folder, no permission) or is too large.
    """
    name = input_name(source)
    try:
        fh = open(source, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    except OSError as exc:
        raise DataFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fh.fileno())
        if stat.S_ISDIR(mode.st_mode):
            raise DataFileError(f"cannot read {name}: Is a directory")
        if stat.S_ISREG(mode.st_mode) and mode.st_size > limit:
            raise too_large(name, limit, mode.st_size)
    except BaseException:
        fh.close()
        raise
    return bounded(fh, limit, name)


def bounded(stream: IO[bytes], limit: int, name: str, *, owned: bool = True) -> IO[bytes]:
    """A buffered reader over ``stream`` that reads at most ``limit + 1`` bytes from it
    and raises :func:`too_large` once more than ``limit`` came. Closing it closes
    ``stream`` only when ``owned`` (not stdin, not a caller's stream)."""
    return io.BufferedReader(_Bounded(stream, limit, name, owned), buffer_size=1 << 16)


class _Bounded(io.RawIOBase):
    def __init__(self, stream: IO[bytes], limit: int, name: str, owned: bool) -> None:
        self.stream = stream
        self.limit = limit
        self.name = name
        self.owned = owned
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        room = self.limit + 1 - self.count  # never ask for more than one byte past the limit
        want = min(len(view), room)
        if want <= 0:
            raise too_large(self.name, self.limit)
        read = getattr(self.stream, "readinto", None)
        if read is not None:
            got = read(view[:want]) or 0
        else:
            chunk = self.stream.read(want)
            got = len(chunk)
            view[:got] = chunk
        self.count += got
        if self.count > self.limit:
            raise too_large(self.name, self.limit)
        return got

    def close(self) -> None:
        if not self.closed and self.owned:
            self.stream.close()
        super().close()


__all__ = ["DEFAULT_LIMIT", "bounded", "limit_of", "open_input", "read_input", "read_text", "too_large"]

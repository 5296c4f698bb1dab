"""Bounded input (``sharetui.ops.input_files``): a regular file over the limit is
refused on its size, anything else after at most ``limit + 1`` bytes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sharetui.errors import DataFileError
from sharetui.ops.input_files import read_input, read_text
from sharetui.ops.lead_files import LeadFile


class Endless(io.RawIOBase):
    """A stream that never ends (like /dev/zero or `yes`), counting what was taken from it."""

    def __init__(self, line: bytes) -> None:
        self.line = line
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        for i in range(len(view)):
            view[i] = self.line[(self.taken + i) % len(self.line)]
        self.taken += len(view)
        return len(view)


def test_an_endless_stream_is_read_to_one_byte_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    endless = Endless(b"name,owner\n")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(endless)))
    with pytest.raises(DataFileError, match=r"stdin is larger than the largest input allowed \(2,000 bytes"):
        read_input("-", 2000)
    assert endless.taken < 2000 + 8192 * 2  # stdin's own buffer may read ahead, no further

    rows = Endless(b"A,priya\n")
    source = LeadFile(io.BufferedReader(rows), "csv", limit=5000)
    with pytest.raises(DataFileError, match="larger than the largest input allowed"):
        list(source)
    assert rows.taken <= 5001 + 8192  # the buffered reader over it asks for 8 KiB at a time


def test_a_regular_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 3000)
    with pytest.raises(DataFileError, match=r"big.json is 3,000 bytes, larger than .*max_input_bytes"):
        read_input(big, 2999)
    assert read_input(big, 3000) == b" " * 3000


def test_read_text_names_the_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_bytes(b'name = "x"\n\ndescription = "Caf\xe9"\n')
    with pytest.raises(DataFileError, match=r"a.toml: not UTF-8 text \(line 3\)"):
        read_text(path, 1000)
    with pytest.raises(DataFileError, match=r"cannot read .*nowhere"):
        read_text(tmp_path / "nowhere", 1000)
    with pytest.raises(DataFileError, match="Is a directory"):
        read_text(tmp_path, 1000)

"""Reading lead files for ``sharetui leads import FILE``: :class:`LeadFile` reads CSV,
JSON Lines and JSON arrays lazily, remembering where each row came from, so an error
can say ``line 7``. The rows it yields go to :func:`sharetui.ops.imports.import_leads`,
which checks them all before it writes any.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sharetui.errors import DataFileError
from sharetui.ops.input_files import DEFAULT_LIMIT, bounded, open_input

TEXT_KEYS = ("email", "phone", "company", "stage", "source")
IMPORT_KEYS = frozenset(("ref", "name", "owner", "fields", *TEXT_KEYS))
FORMATS = ("csv", "jsonl", "json")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_MAX_SHOWN = 5  # problems named in the one-line error; all are kept on the exception


class LeadImportError(DataFileError):
    """Rows that cannot be imported; ``problems`` lists every one, in row order."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        shown = "; ".join(problems[:_MAX_SHOWN])
        more = len(problems) - _MAX_SHOWN
        head = f"{source}: " if source else ""
        tail = f" (and {more} more problem{'s' if more > 1 else ''}; nothing imported)" if more > 0 else ""
        super().__init__(f"{head}{shown}{tail or ' (nothing imported)'}")
        self.problems = problems


# -- reading files ---------------------------------------------------------------------------------
class LeadFile:
    """Rows of a CSV, JSON Lines or JSON file (or stdin, ``-``), read lazily.

    CSV: a header row naming the columns (``name``, ``owner``, ``email``,
    ``phone``, ``company``, ``stage``, ``source``, ``ref``; custom fields as
    ``fields.KEY`` columns, or one ``fields`` column holding a JSON object).
    Empty cells count as not given. ``fields.KEY`` values that read as JSON
    numbers or booleans become those, as with ``--field``.
    JSON Lines: one object per line. JSON: an array of objects.

    Iterating yields one mapping per row; :meth:`where` names the row for errors.
    The format comes from the file's extension, else from its first character.
    """

    def __init__(
        self, source: str | Path | IO[bytes], fmt: str | None = None, *, limit: int = DEFAULT_LIMIT
    ) -> None:
        self.source = source
        self.limit = limit  # bytes read at most (setting max_input_bytes): never /dev/zero whole
        self.name = "stdin" if source == "-" else getattr(source, "name", None) or str(source)
        if fmt is not None and fmt not in FORMATS:
            raise DataFileError(f"unknown import format {fmt!r}: use {', '.join(FORMATS)}")
        if fmt is None and isinstance(source, (str, Path)) and source != "-":
            fmt = _EXTENSIONS.get(Path(source).suffix.lower())
        self.format = fmt
        self._lines: list[int] = []
        self._unit = "line"

    def where(self, index: int) -> str:
        """``line N`` (CSV, JSON Lines) or ``record N`` (JSON, 1-based) of row ``index``."""
        if index < len(self._lines):
            return f"{self._unit} {self._lines[index]}"
        return f"row {index + 1}"

    def __iter__(self) -> Iterator[Any]:
        with self._open() as raw:
            head = raw.peek(64)[:64] if hasattr(raw, "peek") else b""
            fmt = self.format or _sniff(head)
            self.format = fmt
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="", errors="strict")
            try:
                if fmt == "csv":
                    yield from self._csv(text)
                elif fmt == "jsonl":
                    yield from self._jsonl(text)
                else:
                    yield from self._json(text)
            except UnicodeDecodeError:
                raise DataFileError(f"{self.name}: not UTF-8 text{self._bad_line()}") from None
            finally:
                text.detach()

    def _open(self) -> Any:
        """The input as a buffered stream that yields at most ``limit + 1`` bytes (and
        raises once more came); a regular file over the limit is refused unread."""
        if not isinstance(self.source, (str, Path)) or self.source == "-":
            stream: Any = sys.stdin.buffer if self.source == "-" else self.source
            return bounded(stream, self.limit, self.name, owned=False)
        path = Path(self.source)
        if not path.exists():
            raise DataFileError(f"{path}: no such file")
        return open_input(path, self.limit)

    def _bad_line(self) -> str:
        """`` (line N)``: where a file first stops being UTF-8, found again from its start
        (only once reading failed; stdin cannot be read twice, so it is not named)."""
        if not isinstance(self.source, (str, Path)) or self.source == "-":
            return ""
        decoder = codecs.getincrementaldecoder("utf-8")()
        line, newline = 1, b"\n"
        try:
            with open_input(self.source, self.limit) as raw:
                while chunk := raw.read(1 << 16):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:  # exc.object: the chunk after a cut-off character
                        return f" (line {line + exc.object.count(newline, 0, exc.start)})"
                    line += chunk.count(newline)
        except (OSError, DataFileError):
            return ""
        return ""

    def _csv(self, text: IO[str]) -> Iterator[Any]:
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataFileError(f"{self.name} line 1: {exc}") from None
        header = [h.strip() for h in header]
        plain: list[tuple[int, str]] = []
        custom: list[tuple[int, str]] = []
        problems = []
        for i, col in enumerate(header):
            if col.startswith("fields.") and col != "fields.":
                custom.append((i, col.removeprefix("fields.")))
            elif col in IMPORT_KEYS:
                plain.append((i, col))
            else:
                problems.append(f"unknown column {col!r}" if col else f"column {i + 1} has no name")
        if len({c for c in header}) != len(header):
            problems.append("a column appears twice")
        if problems:
            known = ", ".join(sorted(IMPORT_KEYS)) + ", fields.KEY"
            raise LeadImportError([f"line 1: {p} (columns: {known})" for p in problems], self.name)
        width = len(header)
        lines = self._lines
        line = 1
        try:
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not cells:
                    continue  # a blank line
                lines.append(start)
                if len(cells) > width:
                    yield _Bad(f"{len(cells)} cells, the header has {width}")
                    continue
                row: dict[str, Any] = {key: cells[i] for i, key in plain if i < len(cells) and cells[i]}
                if "fields" in row:
                    row["fields"] = _json_cell(row["fields"])
                if custom:
                    extra = {key: _cell_value(cells[i]) for i, key in custom if i < len(cells) and cells[i]}
                    if "fields" not in row:
                        row["fields"] = extra
                    elif extra:
                        yield _Bad("give custom fields as fields.KEY columns or as a fields column, not both")
                        continue
                yield row
        except csv.Error as exc:
            raise DataFileError(f"{self.name} line {reader.line_num}: {exc}") from None

    def _jsonl(self, text: IO[str]) -> Iterator[Any]:
        lines = self._lines
        for number, line in enumerate(text, 1):
            if not line.strip():
                continue
            lines.append(number)
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield _Bad(f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            except ValueError:  # a number with more digits than int() reads
                yield _Bad("invalid JSON: a number has too many digits")
                continue
            yield item if isinstance(item, dict) else _Bad("not a JSON object")

    def _json(self, text: IO[str]) -> Iterator[Any]:
        self._unit = "record"
        try:
            data = json.load(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{self.name}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        except ValueError:  # a number with more digits than int() reads
            raise DataFileError(f"{self.name}: invalid JSON: a number has too many digits") from None
        if not isinstance(data, list):
            raise DataFileError(f"{self.name}: must hold a JSON array of lead objects")
        self._lines.extend(range(1, len(data) + 1))
        for item in data:
            yield item if isinstance(item, dict) else _Bad("not a JSON object")


def _sniff(head: bytes) -> str:
    text = head.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        return "jsonl"
    return "csv"


def _cell_value(text: str) -> Any:
    """A ``fields.KEY`` cell: JSON numbers and booleans become those (as ``--field`` does)."""
    if text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1) and len(text) < 20:
        return int(text)  # the common case, without the JSON parser (007 stays text, as in JSON)
    if text[:1] in "-0123456789tf":
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        if isinstance(parsed, (int, float, bool)):
            return parsed
    return text


def _json_cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _Bad("the fields column must hold a JSON object")


class _Bad:
    """A value a reader already knows is wrong, with why."""

    def __init__(self, why: str) -> None:
        self.why = why

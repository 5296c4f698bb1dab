"""Run traces kept to a size: :func:`cap_trace` cuts a trace (or one step's entry) to at
most ``max_bytes`` of stored JSON, largest parts first.

A trace repeats what a run saw: each condition's value and actual value, the trigger's
data, what each action returned. An admin's ``in`` list of two million items made every
run store about 21 MB. The cut keeps what a reader needs (which conditions held, what
each step did and why) and shortens the bulk: it walks down into whichever part holds
most of the bytes and cuts that part (a long string, a long list, a dict of many keys),
again until the trace fits. Each cut ends in a marker saying how much went
(``"…(cut: 20,999,000 more bytes)"``) and the trace says ``"truncated": true``.

Sizes are counted as the stored text is written (``json.dumps(..., sort_keys=True,
ensure_ascii=False)``, UTF-8), from the leaves up, so the trace is serialised once
more only when it has to be cut.
"""

from __future__ import annotations

from typing import Any

from sharetui.core.automations.reports import _json

# A part smaller than this is never worth cutting; a cut leaves at least this much of it.
_WORTH_CUTTING = 256
_KEEP_AT_LEAST = 96
# Lists of plain values longer than this are measured in one go and cut as a whole,
# never walked into (a two-million-item ``in`` list).
_LONG_LIST = 64
# Cuts tried before falling back to the skeleton (each usually removes most of the excess).
_MAX_CUTS = 200
# The parts of a trace (and of a step's entry) a reader needs: never cut, walked through.
_SKELETON_KEYS = ("step", "type", "status", "field", "op", "result", "acting_for", "dry_run", "ms")


def _bytes(value: Any) -> int:
    return len(_json(value).encode())


def cut_marker(more: int) -> str:
    """The text that ends a cut: how many bytes of it were left out."""
    return f"…(cut: {more:,} more bytes)"


def cut_text(text: str, limit: int) -> str:
    """``text`` in at most about ``limit`` characters, ending in a marker when cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + cut_marker(len(text[limit:].encode()))


def brief(value: Any, limit: int = 200) -> str:
    """``repr(value)`` in at most about ``limit`` characters (for a run's reason)."""
    return cut_text(repr(value), limit)


def _plain_list(value: Any) -> bool:
    """A long list of plain values: measured and cut as one part, never walked into."""
    return (
        isinstance(value, list | tuple)
        and len(value) > _LONG_LIST
        and not isinstance(value[0], dict | list | tuple)
    )


class _Sizes:
    """Bytes of each part of a JSON value as stored, by ``id`` of the part."""

    def __init__(self, root: Any) -> None:
        self.of: dict[int, int] = {}
        self.measure(root)

    def measure(self, value: Any) -> int:
        if isinstance(value, dict):
            # {"k": v, "k2": v2}: braces, ": " per item, ", " between items.
            size = 2 + 2 * max(len(value) - 1, 0)
            for key, item in value.items():
                size += _bytes(str(key)) + 2 + self.measure(item)
        elif isinstance(value, list | tuple) and not _plain_list(value):
            size = 2 + 2 * max(len(value) - 1, 0) + sum(self.measure(item) for item in value)
        else:  # a scalar, or a long list of plain values measured in one go
            size = _bytes(value)
        if isinstance(value, dict | list | tuple | str):
            self.of[id(value)] = size
        return size


def _children(value: Any) -> list[tuple[Any, Any]]:
    """(key or index, child) of a container that may be walked into."""
    if isinstance(value, dict):
        return [(k, v) for k, v in value.items() if k not in _SKELETON_KEYS]
    if isinstance(value, list | tuple) and not _plain_list(value):
        return list(enumerate(value))
    return []


def _pick(value: Any, sizes: _Sizes, skeleton: bool) -> tuple[list[Any], Any] | None:
    """The path to the part to cut next (and the part): walk into the biggest child while
    it holds at least half the bytes (always, through the skeleton), else cut here."""
    size = sizes.of.get(id(value), 0)
    kids = sorted(
        ((k, v) for k, v in _children(value) if sizes.of.get(id(v), 0) >= _WORTH_CUTTING),
        key=lambda kv: sizes.of.get(id(kv[1]), 0),
        reverse=True,
    )
    for key, child in kids:
        if not skeleton and sizes.of[id(child)] * 2 < size:
            break  # the bytes are spread out: cut this part as a whole
        found = _pick(child, sizes, skeleton and _is_skeleton_child(value, key))
        if found is not None:
            return [key, *found[0]], found[1]
        if not skeleton:
            break
    if skeleton or size < _WORTH_CUTTING or not isinstance(value, dict | list | tuple | str):
        return None
    return [], value


def _is_skeleton_child(parent: Any, key: Any) -> bool:
    """The trace's conditions and actions lists and their entries are walked through,
    never cut whole (readers index them)."""
    return (isinstance(parent, dict) and key in ("conditions", "actions", "trigger")) or isinstance(
        parent, list | tuple
    )


def _shorten(value: Any, target: int, size: int) -> Any:
    """``value`` cut to about ``target`` bytes, ending in a marker of what went."""
    if isinstance(value, str):
        encoded = value.encode()
        room = max(target - 40, 0)
        kept = encoded[:room].decode(errors="ignore")
        while kept and _bytes(kept) > room:
            kept = kept[: max(len(kept) - max(len(kept) // 10, 1), 0)]
        return kept + cut_marker(size - _bytes(kept))
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        used = 2
        for key, item in value.items():
            cost = _bytes(str(key)) + 4 + _bytes(item)
            if used + cost + 48 > target:
                break
            out[key] = item
            used += cost
        out["…"] = cut_marker(size - used)
        return out
    items: list[Any] = []
    used = 2
    for item in value:
        cost = _bytes(item) + 2
        if used + cost + 44 > target:
            break
        items.append(item)
        used += cost
    items.append(cut_marker(size - used))
    return items


def _replace(root: Any, path: list[Any], new: Any) -> Any:
    if not path:
        return new
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, tuple):  # JSON has no tuples: a list does as well
        raise TypeError("cannot cut inside a tuple")
    parent[path[-1]] = new
    return root


def _copy(value: Any) -> Any:
    """A copy the cuts may change: containers are copied, long lists of plain values
    (cut whole, never changed in place) and scalars are shared."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not _plain_list(value):
        return [_copy(v) for v in value]
    return value


def _skeleton(trace: dict[str, Any], max_bytes: int, size: int) -> dict[str, Any]:
    """The last resort: what each condition and step came to, in as many entries as fit."""
    out: dict[str, Any] = {
        k: trace[k] for k in _SKELETON_KEYS if k in trace and not isinstance(trace[k], dict)
    }
    if isinstance(trace.get("trigger"), dict):
        out["trigger"] = {"type": trace["trigger"].get("type")}
    out["truncated"] = True
    out["cut"] = cut_marker(size)
    for name, keys in (("conditions", ("field", "op", "result")), ("actions", ("step", "type", "status"))):
        entries = trace.get(name)
        if not isinstance(entries, list):
            continue
        out[name] = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            short = {k: entry[k] for k in keys if k in entry}
            if isinstance(entry.get("message"), str):
                short["message"] = entry["message"][:200]
            if _bytes(out) + _bytes(short) + 2 > max_bytes:
                break
            out[name].append(short)
    return out


def cap_trace(trace: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], str]:
    """``trace`` as stored, at most ``max_bytes`` of UTF-8 JSON: (the trace, its text).

    A trace that fits is returned as it is. Otherwise a cut copy, largest parts first,
    with ``"truncated": true``; ``trace`` itself is left unchanged.
    """
    text = _json(trace)
    if len(text) * 4 <= max_bytes or len(text.encode()) <= max_bytes:
        return trace, text
    original = len(text.encode())
    del text  # may be tens of megabytes
    cut = _copy(trace)
    cut["truncated"] = True
    for _ in range(_MAX_CUTS):
        sizes = _Sizes(cut)
        total = sizes.of[id(cut)]
        if total <= max_bytes:
            break
        found = _pick(cut, sizes, skeleton=True)
        if found is None:
            break
        path, part = found
        size = sizes.of[id(part)]
        target = max(size - (total - max_bytes), _KEEP_AT_LEAST)
        try:
            cut = _replace(cut, path, _shorten(part, target, size))
        except TypeError:
            break
    text = _json(cut)
    if len(text.encode()) > max_bytes:
        cut = _skeleton(trace, max_bytes, original)
        text = _json(cut)
    return cut, text


__all__ = ["brief", "cap_trace", "cut_marker", "cut_text"]

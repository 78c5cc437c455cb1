"""`json.dumps(obj, indent=2, default=str)`, the same text at about four times the speed.

The standard library writes indented JSON with its pure-Python encoder (the C one does not indent before Python
3.13): a nest of generators, one `yield` per token, which costs more than parsing the dump it describes (a whole
10,000-Service node is 100,000 backends). This writes the same characters with one function call per container,
strings through the C `encode_basestring_ascii`, and hands the text out in batches so a big document is never
one string. The output is byte-for-byte the standard library's (tests/cli/test_jsonout.py).
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _enc_str
from typing import Any

_BATCH = 8192
_BATCH_CHARS = 1 << 17


class Mapped:
    """A JSON array of `fn(item)` for each of `items`, made as it is written: a whole dump's entries then never
    exist as dicts side by side. With `text`, `fn(item, indent)` returns the item's JSON text itself (for items of
    one fixed shape, e.g. backends, whose writer is held equal to writing their dict)."""

    __slots__ = ("fn", "items", "text")

    def __init__(self, items: list[Any], fn: Callable[..., Any], text: bool = False) -> None:
        self.items = items
        self.fn = fn
        self.text = text


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == float("inf"):
        return "Infinity"
    if o == -float("inf"):
        return "-Infinity"
    return float.__repr__(o)


def _key(k: Any) -> str:
    """A dict key as json writes it: a string as itself, None, booleans and numbers as their JSON in quotes."""
    if isinstance(k, str):
        return str(_enc_str(k))
    if k is None or isinstance(k, (bool, int, float)):
        return '"' + str(_scalar(k)) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


def _scalar(o: Any) -> str | None:
    """The JSON of a non-container value as json.JSONEncoder writes it (None for a container)."""
    if isinstance(o, str):
        return str(_enc_str(o))
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        return _float(o)
    if isinstance(o, (list, tuple, dict)):
        return None
    return str(_enc_str(str(o)))  # default=str


def write_json(obj: Any, write: Callable[[str], Any], nl: str = "\n") -> None:
    """`obj` as `json.dumps(obj, indent=2, default=str)` would print it (no trailing newline), through `write`;
    `nl` is the newline and indentation it starts at (deeper: `obj` as an item nested in a bigger document)."""
    out: list[str] = []
    enc_str = _enc_str

    def flush() -> None:
        write("".join(out))
        out.clear()

    def value(o: Any, nl: str) -> None:
        cls = o.__class__
        if cls is dict:
            if not o:
                out.append("{}")
                return
            inner = nl + "  "
            sep = "{" + inner
            for k, v in o.items():
                ks = enc_str(k) if k.__class__ is str else _key(k)
                vc = v.__class__
                if vc is str:
                    out.append(sep + ks + ": " + enc_str(v))
                elif vc is int:
                    out.append(sep + ks + ": " + int.__repr__(v))
                elif v is None:
                    out.append(sep + ks + ": null")
                elif vc is dict or vc is list:
                    out.append(sep + ks + ": ")
                    value(v, inner)
                elif vc is Mapped:
                    out.append(sep + ks + ": ")
                    mapped(v, inner)
                else:
                    s = _scalar(v)
                    if s is None:
                        out.append(sep + ks + ": ")
                        value(v, inner)
                    else:
                        out.append(sep + ks + ": " + s)
                sep = "," + inner
            out.append(nl + "}")
            return
        if cls is list or cls is tuple or (cls is not dict and isinstance(o, (list, tuple))):
            if not o:
                out.append("[]")
                return
            inner = nl + "  "
            sep = "[" + inner
            for v in o:
                vc = v.__class__
                if vc is str:
                    out.append(sep + enc_str(v))
                elif vc is dict or vc is list:
                    out.append(sep)
                    value(v, inner)
                elif vc is Mapped:
                    out.append(sep)
                    mapped(v, inner)
                else:
                    s = _scalar(v)
                    if s is None:
                        out.append(sep)
                        value(v, inner)
                    else:
                        out.append(sep + s)
                sep = "," + inner
                if len(out) >= _BATCH:
                    flush()
            out.append(nl + "]")
            return
        if isinstance(o, dict):
            value(dict(o), nl)
            return
        s = _scalar(o)
        out.append(s if s is not None else "null")

    def mapped(m: Mapped, nl: str) -> None:
        if not m.items:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "[" + inner
        fn = m.fn
        size = 0
        for item in m.items:
            if m.text:  # (the item's text not copied onto its separator: a whole entry's is kilobytes)
                text = fn(item, inner)
                out.append(sep)
                out.append(text)
                size += len(text)
                if size > _BATCH_CHARS:  # big items' texts (a whole entry each): 128 Ki characters at a time
                    flush()
                    size = 0
            else:
                out.append(sep)
                value(fn(item), inner)
            sep = "," + inner
            if len(out) >= _BATCH:
                flush()
        out.append(nl + "]")

    if obj.__class__ is Mapped:
        mapped(obj, nl)
    else:
        value(obj, nl)
    flush()

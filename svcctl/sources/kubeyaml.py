"""The block-style YAML subset kubectl and client-go write kubeconfigs in, read without importing PyYAML.

Importing `yaml` costs every live command ≈ 35 ms here (≈ 90 M instructions: the reader's and resolver's
regexes are compiled at import), more than reading the file. kubeconfigs are nearly always written by kubectl,
client-go or a cloud CLI in one regular shape: block mappings and sequences, plain or simply quoted one-line
scalars, comments, `{}` and `[]` (or JSON). `load_simple` reads exactly that and gives what `yaml.safe_load` gives; on
anything else (flow collections, anchors, tags, block scalars, multi-line or escaped scalars, tabs, CR, non-ASCII,
a plain scalar PyYAML might resolve to a number, a date or a float, any doubt) it returns None, and the caller
hands the text to PyYAML, which also words the error of a malformed file.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_simple"]

# YAML 1.1 words PyYAML's resolver turns into booleans and null (its only resolvers for a letter-led scalar)
_BOOL = {w: v for v, ws in ((True, ("yes", "true", "on")), (False, ("no", "false", "off")))
         for base in ws for w in (base, base.capitalize(), base.upper())}
_NULL = ("null", "Null", "NULL", "~")
_KEY_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")
# first characters of a plain scalar read as a string (or a bool/null word); '-' only before '-' or a letter
_PLAIN_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_/")


class _Unsure(Exception):
    """Outside the subset: PyYAML decides."""


def load_simple(text: str) -> Any:
    """`yaml.safe_load(text)` for the subset (see the module), or None when the text is outside it (and then
    the caller must use PyYAML: None is never an answer here, an empty document included)."""
    if not text.isascii() or "\r" in text or "\t" in text or any(c < " " and c != "\n" for c in text) \
            or "\x7f" in text:
        return None
    if text.lstrip(" \n").startswith("{"):
        return _json(text)
    try:
        lines = _lines(text)
        if not lines:
            return None  # an empty document: PyYAML's None, which the caller reads as {}
        value, i = _block(lines, 0, lines[0][0])
        if i != len(lines) or lines[0][0] != 0 or not isinstance(value, dict):
            return None
        return value
    except _Unsure:
        return None


def _no_float(text: str) -> Any:
    raise _Unsure  # PyYAML's YAML 1.1 reads `1e5` as a string and `NaN` as a string, JSON as floats


def _json(text: str) -> Any:
    """A kubeconfig written as JSON (`kubectl config view -o json`): JSON is the flow subset of YAML, and read
    the same by both but for floats and `\\u` escapes (surrogate pairs), which PyYAML is left to read."""
    import json

    if "\\u" in text:
        return None
    try:
        doc = json.loads(text, parse_float=_no_float, parse_constant=_no_float)
    except (ValueError, _Unsure):
        return None
    return doc if isinstance(doc, dict) else None


# a logical line: (indent, kind, key, rest) with kind "-" (a sequence entry's dash), "k" (key: rest), "s" (a
# scalar after a dash)
_Line = tuple[int, str, str, str]


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    for raw in text.split("\n"):
        body = raw.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        if raw.rstrip(" ") in ("---", "...") or body[0] in "%&*!|>?{[@`'\"," and not body.startswith(("{}", "[]")):
            raise _Unsure
        col = len(raw) - len(body)
        while body.startswith("- ") or body == "-":  # `- - x`, `- key: v`: a dash, then its content further in
            out.append((col, "-", "", ""))
            rest = body[1:].lstrip(" ")
            col += len(body) - len(rest)
            body = rest
            if not body:
                break
        if not body or body.startswith("#"):
            continue
        key, sep, rest = _split_key(body)
        if sep:
            out.append((col, "k", key, rest))
        elif out and out[-1][1] == "-" and out[-1][0] < col:
            out.append((col, "s", "", body))
        else:
            raise _Unsure
    return out


def _split_key(body: str) -> tuple[str, bool, str]:
    """`key: rest` / `key:` with a plain identifier-like key; (body, False, "") for anything else."""
    if body[0] not in _KEY_START:
        return body, False, ""
    n = 1
    while n < len(body) and body[n] in _KEY_CHARS:
        n += 1
    if n < len(body) and body[n] == ":" and (n + 1 == len(body) or body[n + 1] == " "):
        key = body[:n]
        if key in _BOOL or key in _NULL:
            raise _Unsure  # a bool or null key
        return key, True, body[n + 1:].strip(" ")
    if ":" in body and ": " in body.split(" #", 1)[0] or body.endswith(":"):
        raise _Unsure  # a key of another shape (quoted, spaced, …)
    return body, False, ""


def _block(lines: list[_Line], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][0] != indent:
        raise _Unsure
    if lines[i][1] == "-":
        return _sequence(lines, i, indent)
    if lines[i][1] == "k":
        return _mapping(lines, i, indent)
    raise _Unsure


def _mapping(lines: list[_Line], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and lines[i][1] == "k":
        _, _, key, rest = lines[i]
        i += 1
        if rest and not rest.startswith("#"):
            out[key] = _scalar(rest)
            continue
        if i < len(lines) and (lines[i][0] > indent or (lines[i][0] == indent and lines[i][1] == "-")):
            out[key], i = _block(lines, i, lines[i][0])
        else:
            out[key] = None
    if i < len(lines) and lines[i][0] >= indent:
        raise _Unsure  # something at this indent that is no key, or deeper where nothing may be
    return out, i


def _sequence(lines: list[_Line], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and lines[i][1] == "-":
        i += 1
        if i < len(lines) and lines[i][0] > indent:
            if lines[i][1] == "s":
                out.append(_scalar(lines[i][3]))
                i += 1
                if i < len(lines) and lines[i][0] > indent:
                    raise _Unsure
            else:
                item, i = _block(lines, i, lines[i][0])
                out.append(item)
        else:
            out.append(None)
    if i < len(lines) and lines[i][0] > indent:
        raise _Unsure
    return out, i


def _scalar(rest: str) -> Any:
    """One value after `key: ` or `- `."""
    if rest[0] == '"':
        end = rest.find('"', 1)
        if end < 0 or "\\" in rest[:end]:
            raise _Unsure
        _tail(rest[end + 1:])
        return rest[1:end]
    if rest[0] == "'":
        out, p = [], 1
        while True:
            q = rest.find("'", p)
            if q < 0:
                raise _Unsure
            out.append(rest[p:q])
            if rest.startswith("''", q):
                out.append("'")
                p = q + 2
                continue
            _tail(rest[q + 1:])
            return "".join(out)
    if rest.startswith(("{}", "[]")):
        _tail(rest[2:])
        return {} if rest[0] == "{" else []
    text = rest.split(" #", 1)[0].rstrip(" ")
    if ": " in text or text.endswith(":"):
        raise _Unsure  # PyYAML: mapping values are not allowed here
    if text in _BOOL:
        return _BOOL[text]
    if text in _NULL:
        return None
    if text.isdigit() and (text == "0" or text[0] != "0"):
        return int(text)
    if text[0] in _PLAIN_START or (text[0] == "-" and len(text) > 1 and (text[1] == "-" or text[1].isalpha())):
        return text
    raise _Unsure  # a number, date, float or indicator PyYAML resolves its own way


def _tail(rest: str) -> None:
    """After a quoted scalar or `{}` / `[]`: nothing, or spaces and a comment."""
    if rest and not (rest[0] == " " and rest.lstrip(" ")[:1] in ("", "#")):
        raise _Unsure

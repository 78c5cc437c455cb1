"""A service entry's JSON text (`ServiceEntry.to_json()` as the JSON writer prints it) straight from its fields:
a whole 10,000-Service node is 10,000 entries and 100,000 backends, and a dict per entry plus the writer's turn
per key, and a text per backend built field by field, were most of its `rules -o json`.

Entries and backends whose fields have the types the model gives them are written here; anything else (a
field of another type) goes through the general writer, so the text is the writer's either way
(tests/cli/test_entry_json.py holds them equal on every mode's dumps and on odd values).
"""

from __future__ import annotations

from fractions import Fraction
from json.encoder import encode_basestring_ascii as _enc
from typing import TYPE_CHECKING

from svcctl.dataplane.model import format_share

if TYPE_CHECKING:
    from svcctl.dataplane.model import Backend, ServiceEntry

# (numerator, denominator, indentation) -> the backend text around its address, port and chain
_PLAIN: dict[tuple[int, int, str], tuple[str, str, str, str]] = {}
_LISTS = (("path", "path"), ("masquerade", "masquerade"), ("sourceRanges", "source_ranges"), ("notes", "notes"))


def _plain_parts(p: Fraction, nl: str) -> tuple[str, str, str, str]:
    key = (p.numerator, p.denominator, nl)
    hit = _PLAIN.get(key)
    if hit is None:
        i = "," + nl + "  "
        hit = ("{" + nl + '  "ip": ', i + '"port": ',
               i + '"probability": ' + float.__repr__(float(p)) + i + '"share": ' + _enc(format_share(p) or "") + i
               + '"state": "active"' + i + '"chain": ', nl + "}")
        if len(_PLAIN) < 4096:
            _PLAIN[key] = hit
    return hit


def backend_text(b: Backend, nl: str) -> str:
    """`b.json_text(nl)`; an iptables backend (a share, an endpoint chain, nothing else) from a cached frame."""
    return _backends_text([b], nl)[0]


# indentation -> id of a share -> (the share, its frame): a dump's shares are a few cached Fractions (the walk's
# cascades), each looked up by identity, not by its numerator and denominator (two property calls)
_BY_ID: dict[str, dict[int, tuple[Fraction, str]]] = {}


def _backends_text(backends: list[Backend], nl: str) -> list[str]:
    """Each backend's `json_text(nl)`, the iptables ones from their share's frame."""
    frames = _BY_ID.get(nl)
    if frames is None:
        frames = {}
        if len(_BY_ID) < 64:
            _BY_ID[nl] = frames
    if backends and backends[0].weight is not None:  # IPVS real servers
        return _ipvs_texts(backends, nl)
    out = []
    for b in backends:
        p = b.probability
        if (p.__class__ is Fraction and b.weight is None and b.active_conns is None and b.local is None
                and b.draining is False and b.connections is None and b.state == "" and b.node == ""
                and b.ip.__class__ is str and b.port.__class__ is int and b.chain.__class__ is str and b.chain):
            hit = frames.get(id(p))
            if hit is None or hit[0] is not p:
                a, m, c, z = _plain_parts(p, nl)
                hit = (p, a.replace("%", "%%") + "%s" + m + "%d" + c + "%s" + z.replace("%", "%%"))
                if len(frames) < 4096:
                    frames[id(p)] = hit
            out.append(hit[1] % (_enc(b.ip), b.port, _enc(b.chain)))
        else:
            out.append(b.json_text(nl))
    return out


def _ipvs_texts(backends: list[Backend], nl: str) -> list[str]:
    """Each backend's `json_text(nl)`; an IPVS real server (no chain, node or state word; a weight and counters)
    as its address, then the text of the fields after it, reused while a backend's fields are the very objects of
    the one before (the fast reader's few ints and shares)."""
    out = []
    head = "{" + nl + '  "ip": '
    tail = ""
    lp: object = _NONE
    lport = lw = la = li = ld = lp
    enc, empty = _enc, _EMPTY
    for b in backends:
        if not (b.chain is empty and b.node is empty and b.state is empty and b.local is None
                and b.connections is None and b.ip.__class__ is str):
            out.append(b.json_text(nl))
            continue
        if not (b.port is lport and b.probability is lp and b.weight is lw and b.active_conns is la
                and b.inactive_conns is li and b.draining is ld):
            p = b.probability
            new = b.json_tail(nl)
            if new is None:
                lport = lp = lw = la = li = ld = _NONE
                out.append(b.json_text(nl))
                continue
            tail = new
            lport, lp, lw, la, li, ld = b.port, p, b.weight, b.active_conns, b.inactive_conns, b.draining
        out.append(head + enc(b.ip) + tail)
    return out


_NONE = object()
_MASQ_TEXT: dict[tuple[str, ...], str] = {}  # (indentation, *an entry's masquerade words) -> their list's text
_EMPTY = ""  # the one empty str: a backend's field is it, or not plainly empty (then the general writer)


def _str_list(items: object, nl: str) -> str | None:
    """A list of strings as the writer prints it at indentation `nl`; None when it is not one."""
    if items.__class__ is not list:
        return None
    inner = nl + "  "
    if len(items) > 1:
        # the strings joined and encoded in one call, the separator's escape then made the writer's separator:
        # when no item holds the separator or a backslash, its escape is the only `\u001f` in the text
        try:
            joined = "\x1f".join(items)
        except TypeError:
            return None
        if joined.count("\x1f") == len(items) - 1 and "\\" not in joined:  # (a str subclass encodes as a str)
            return "[" + inner + _enc(joined).replace("\\u001f", '",' + inner + '"') + nl + "]"
    out = []
    for s in items:
        if s.__class__ is not str:
            return None
        out.append(_enc(s))
    return "[" + inner + ("," + inner).join(out) + nl + "]"


def _masq_list(items: object, nl: str) -> str | None:
    """`_str_list` of an entry's masquerade words: the same one or two in every entry of a dump, so cached."""
    if items.__class__ is not list:
        return None
    key = (nl, *items)
    try:
        text = _MASQ_TEXT.get(key)
    except TypeError:  # an unhashable item: not words
        return _str_list(items, nl)
    if text is None:
        text = _str_list(items, nl)
        if text is not None and len(_MASQ_TEXT) < 256 and all(w.__class__ is str for w in key):
            _MASQ_TEXT[key] = text
    return text


def entry_text(e: ServiceEntry, nl: str) -> str:
    """`e.to_json()` as the JSON writer prints it at indentation `nl`."""
    text = entry_text_with(e, nl, None)
    return _general(e, nl) if text is None else text


def entry_text_with(e: ServiceEntry, nl: str, backends: str | None) -> str | None:
    """`entry_text(e, nl)`, with `backends` (when given) the text of its backends array's items (each backend's
    text, as `entry_text` joins them) written in place of `e.backends`'s; None where `entry_text` takes the
    general writer (a field of another type)."""
    name, aff, rev = e.name, e.affinity_seconds, e.revnat
    if not (e.protocol.__class__ is str and e.address.__class__ is str and e.port.__class__ is int
            and e.kind.__class__ is str and e.no_endpoints.__class__ is bool and e.backends.__class__ is list
            and (name is None or name.__class__ is str) and (aff is None or aff.__class__ is int)
            and e.no_local_endpoints.__class__ is bool and e.kind_known.__class__ is bool
            and (e.scheduler is None or e.scheduler.__class__ is str) and e.scope.__class__ is str
            and (rev is None or rev.__class__ is int)):
        return None
    inner = nl + "  "
    i = "," + inner
    parts = ["{" + inner + '"name": ' + ("null" if name is None else _enc(name)) + i + '"protocol": ' +
             _enc(e.protocol) + i + '"address": ' + _enc(e.address) + i + '"port": ' + int.__repr__(e.port) + i +
             '"kind": ' + _enc(e.kind) + i + '"backends": ']
    if backends is not None:
        parts += ("[" + inner + "  ", backends, inner + "]")
    elif e.backends:
        bnl = inner + "  "
        parts += ("[" + bnl, ("," + bnl).join(_backends_text(e.backends, bnl)), inner + "]")
    else:
        parts.append("[]")
    parts.append(i + '"noEndpoints": ' + ("true" if e.no_endpoints else "false") + i + '"affinitySeconds": ' +
                 ("null" if aff is None else int.__repr__(aff)))
    if e.no_local_endpoints:
        parts.append(i + '"noLocalEndpoints": true')
    if e.scheduler:
        parts.append(i + '"scheduler": ' + _enc(e.scheduler))
    for key, attr in _LISTS:
        items = getattr(e, attr)
        if items:
            text = _masq_list(items, inner) if key == "masquerade" else _str_list(items, inner)
            if text is None:
                return None
            parts.append(i + '"' + key + '": ' + text)
    if e.scope:
        parts.append(i + '"scope": ' + _enc(e.scope))
    if e.flags:
        text = _str_list(e.flags, inner)
        if text is None:
            return None
        parts.append(i + '"flags": ' + text)
    if rev is not None:
        parts.append(i + '"revNAT": ' + int.__repr__(rev))
    if not e.kind_known:
        parts.append(i + '"kindKnown": false')
    parts.append(nl + "}")
    return "".join(parts)


def _general(e: ServiceEntry, nl: str) -> str:
    from svcctl.dataplane.model import Backend
    from svcctl.render.jsonout import Mapped, write_json

    out: list[str] = []
    write_json(e.to_json(backends=Mapped(e.backends, Backend.json_text, text=True)), out.append, nl)
    return "".join(out)

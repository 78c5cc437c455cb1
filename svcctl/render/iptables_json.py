"""A whole iptables dump's entries as JSON text (`rules -o json`) with the backends the walk left unmade
(`iptables.LeftBackends`): each backends array written from the scan's parts of the endpoint chains (with their
names) and shares, by list slicing (in C, no Python step or Backend per backend: a 10,000-Service node has 100,000),
into the frame of a backend's text that `entry_json._plain_parts` makes once per share. The text is what
`entry_text` writes of the entry with its Backends made (tests/dataplane/test_iptables_fast.py holds them equal
through the command's writer). The scan leaves only names and addresses that JSON writes as they are (printable
ASCII, ASCII digits: iptables._EP_SHAPE); a DNAT not `a.b.c.d:port` makes the Backends and takes `entry_text`.
"""

from __future__ import annotations

from fractions import Fraction
from json.encoder import encode_basestring_ascii as _enc
from operator import itemgetter
from typing import TYPE_CHECKING

from svcctl.render.entry_json import _plain_parts, entry_text, entry_text_with

if TYPE_CHECKING:
    from svcctl.dataplane.iptables import Left, LeftBackends
    from svcctl.dataplane.model import ServiceEntry

__all__ = ["entry_json"]

_IP, _PORT, _NAME = itemgetter(0), itemgetter(1), itemgetter(3)
# a scanned port's text -> its JSON (the int's: no leading zero)
_PORT_TEXT: dict[str, str] = {}
# (id of a cascade's list of shares, indentation) -> (the list, each share's text from the port to the chain, the
# text before the first address, the text between backends) : a dump's Services share a few cascades (1/n each)
_FRAMES: dict[tuple[int, str], tuple[list[Fraction], list[str], str, str, str, str]] = {}


def entry_json(left: LeftBackends, e: ServiceEntry, nl: str) -> str:
    """`entry_text` of the entry at indentation `nl`, its backends written from what the walk left of them."""
    parts = left.records.get(id(e))
    if parts is not None and not e.backends:
        items = _items(parts, nl + "    ")
        if items is not None:
            name, path = e.name, e.path
            if (e.no_endpoints is False and e.affinity_seconds is None and e.no_local_endpoints is False
                    and e.scheduler is None and not e.source_ranges and not e.notes and not e.scope
                    and not e.flags and e.revnat is None and e.kind_known is True and len(path) == 1
                    and (name is None or name.__class__ is str) and e.address.__class__ is str
                    and e.port.__class__ is int and path[0].__class__ is str and e.masquerade.__class__ is list):
                form = _form(e, nl)
                if form is not None:
                    a, b, c, d, f, z = form
                    return "".join((a, "null" if name is None else _enc(name), b, _enc(e.address), c,
                                    int.__repr__(e.port), d, items, f, _enc(path[0]), z))
            text = entry_text_with(e, nl, items)
            if text is not None:
                return text
    return entry_text(left.entry(e), nl)


# (indentation, protocol, kind, masquerade words) -> the text of an entry of that shape around its name, address,
# port, backends and the one chain of its path (`_form`); None: the stand-ins did not fall in place
_FORMS: dict[tuple[str, ...], tuple[str, str, str, str, str, str] | None] = {}


def _form(e: ServiceEntry, nl: str) -> tuple[str, str, str, str, str, str] | None:
    """`entry_text_with`'s text of a plain entry (no notes, verdicts, affinity, source ranges, scope, flags; one
    chain in its path) like `e`, cut at its name's, address's, port's, backends' and chain's places: made once per
    shape from a stand-in entry, by `entry_text_with` itself."""
    key = (nl, e.protocol, e.kind, *e.masquerade)
    try:
        hit = _FORMS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable word: not words
        return None
    else:
        return hit
    hit = None
    if all(w.__class__ is str for w in key):
        from svcctl.dataplane.model import ServiceEntry

        stand_in = ServiceEntry("\x01", e.protocol, "\x02", 0, e.kind, path=["\x03"], masquerade=list(e.masquerade))
        text = entry_text_with(stand_in, nl, "\x04")
        port = "," + nl + '  "port": '
        if text is not None and all(text.count(m) == 1 for m in ('"\\u0001"', '"\\u0002"', '"\\u0003"', "\x04")):
            a, rest = text.split('"\\u0001"')
            b, rest = rest.split('"\\u0002"')
            d, rest = rest.split("\x04")
            f, z = rest.split('"\\u0003"')
            if d.startswith(port + "0,"):
                hit = (a, b, port, d[len(port) + 1:], f, z)
    if len(_FORMS) < 256:
        _FORMS[key] = hit
    return hit


def _items(left: Left, nl: str) -> str | None:
    """The backends array's items (each backend's `json_text(nl)`, joined as `entry_text` joins them); None when
    an address or chain name is not one the frame takes as it is."""
    eps, shares = left
    ips = list(map(_IP, eps))
    if "" in ips:  # a DNAT of another form (the scan reads only names and addresses JSON writes as they are)
        return None
    names = list(map(_NAME, eps))
    try:
        ports = list(map(_PORT_TEXT.__getitem__, map(_PORT, eps)))
    except KeyError:
        ports = [_port_text(p) for p in map(_PORT, eps)]
    frame = _frame(shares, nl)
    _, cs, first, between, mid, last = frame
    n = len(ips)
    out = [between, "", mid, "", "", ""] * n
    out[0] = first
    out[1::6] = ips
    out[3::6] = ports
    out[4::6] = cs
    out[5::6] = names
    out.append(last)
    return "".join(out)


def _port_text(port: str) -> str:
    text = int.__repr__(int(port))
    if len(_PORT_TEXT) < 65536:
        _PORT_TEXT[port] = text
    return text


def _frame(shares: list[Fraction], nl: str) -> tuple[list[Fraction], list[str], str, str, str, str]:
    """The texts around a backend's address, port and chain name (`_plain_parts`, with the quotes the address's
    and name's JSON add), for a cascade of shares at indentation `nl`, made once per cascade."""
    key = (id(shares), nl)
    hit = _FRAMES.get(key)
    if hit is not None and hit[0] is shares:
        return hit
    cs = []
    for p in shares:
        _a, _m, c, _z = _plain_parts(p, nl)
        cs.append(c + '"')
    a, m, _c, z = _plain_parts(shares[0], nl)
    hit = (shares, cs, a + '"', '"' + z + "," + nl + a + '"', '"' + m, '"' + z)
    if len(_FRAMES) < 4096:
        _FRAMES[key] = hit
    return hit

"""A whole iptables dump's entries as JSON text (`rules -o json`) with the backends the walk left unmade
(`iptables.LeftBackends`): each backends array written from the scan's parts of the endpoint chains, their names
and shares, by list slicing (in C, no Python step or Backend per backend: a 10,000-Service node has 100,000),
into the frame of a backend's text that `entry_json._plain_parts` makes once per share. The text is what
`entry_text` writes of the entry with its Backends made (tests/dataplane/test_iptables_fast.py holds them equal
through the command's writer); parts the frame cannot take as they are (a DNAT not `a.b.c.d:port`, a chain name
JSON escapes) make the Backends and take `entry_text`.
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

_IP, _PORT = itemgetter(0), itemgetter(1)
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
            text = entry_text_with(e, nl, items)
            if text is not None:
                return text
    return entry_text(left.entry(e), nl)


def _items(left: Left, nl: str) -> str | None:
    """The backends array's items (each backend's `json_text(nl)`, joined as `entry_text` joins them); None when
    an address or chain name is not one the frame takes as it is."""
    eps, names, shares = left
    ips = list(map(_IP, eps))
    chains = " ".join(names)
    # (a DNAT of another form; a name JSON escapes; digits not ASCII, which `\d` matches)
    if "" in ips or _enc(chains) != '"' + chains + '"' or not " ".join(ips).isascii():
        return None
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

"""A plain IPv4 `ipvsadm -Ln` table checked whole in one cheap pass, its entries left in the text: for a writer
that needs nothing of a whole table but each virtual server's JSON (`rules -o json`, render/ipvs_json.py), which
then reads one window of virtual servers at a time and drops it (no model of 100,000 real servers held at once).

The check is what the fast reader's regex (`ipvs._FL_LINE`) accepts, done without a regex step per line: each
window's text with its digits made `9` is split into lines, and each distinct line shape (a table of 100,000
real servers has a few dozen) is matched once; the digits' values are then checked by searches with a literal
first character (no octet past 255 or with a leading zero, no port past 65,535). A table that passes parses
without an error and exactly as `ipvs._read_listing_fast` reads it (a number with a leading zero elsewhere is
the writer's to notice); anything else (None) is read the ordinary way, so a damaged table's error is still the
general reader's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PlainTable", "plain_table"]

_BANNER = re.compile(r"IP Virtual Server version \d+\.\d+\.\d+ \(size=\d+\)")
_HEAD = ("Prot LocalAddress:Port Scheduler Flags\n"
         "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
_UNUSUAL = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# a line's shape with its digits made 9: ipvs._FL_LINE's two alternatives
_SHAPE = re.compile(r"(?:TCP|UDP|SCTP) +9{1,3}(?:\.9{1,3}){3}:9{1,5} [a-z]+(?: persistent 9{1,10})? *"
                    r"|  -> 9{1,3}(?:\.9{1,3}){3}:9{1,5} +(?:Masq|Local|Tunnel|Route) +-?9{1,20} +9{1,20} +9{1,20} *")
_NINES = str.maketrans("0123456789", "9999999999")
# (after the shapes: an octet follows `.`, or the space after `->` or after the protocol, whose names all end in P;
# one search each, led by that literal: an alternation of them is tried at every position)
_OCTET = r"(?:0\d\d?|25[6-9]|2[6-9]\d|[3-9]\d\d)"  # not what ipaddress takes: a leading zero, or past 255
_BAD_OCTETS = (re.compile(rf"\.{_OCTET}(?!\d)"), re.compile(rf"-> {_OCTET}\."), re.compile(rf"P +{_OCTET}\."))
_BIG_PORT = re.compile(r":(?:6553[6-9]|655[4-9]\d|65[6-9]\d\d|6[6-9]\d{3}|[7-9]\d{4})(?!\d)")
_VS_START = re.compile(r"\n(?=TCP|UDP|SCTP)")
WINDOW = 1 << 18  # characters per window of virtual servers (a window's JSON is about four times its text)


@dataclass(slots=True)
class PlainTable:
    """The table's text, where each window of whole virtual servers starts (the last item is the text's end),
    and the whole table's counts."""

    text: str
    starts: list[int]
    virtual_servers: int
    real_servers: int

    @property
    def windows(self) -> list[tuple[int, int]]:
        s = self.starts
        return [(s[i], s[i + 1]) for i in range(len(s) - 1)]


def plain_table(text: str, window: int | None = None) -> PlainTable | None:
    """The table checked and cut into windows, or None when it is not a plain IPv4 table of ipvsadm's own
    printing with at least one virtual server (then the ordinary readers read it)."""
    window = window or WINDOW
    nl = text.find("\n")
    if nl < 0 or not _BANNER.fullmatch(text, 0, nl) or not text.startswith(_HEAD, nl + 1) or not text.endswith("\n"):
        return None
    pos = nl + 1 + len(_HEAD)
    n = len(text)
    if pos >= n or text.startswith("  -> ", pos) or any(ch in text for ch in _UNUSUAL):
        return None  # no virtual server, or a real server before any
    shapes: set[str] = set()
    starts = [pos]
    lines = 0
    while pos < n:
        end = n if pos + window >= n else (_VS_START.search(text, pos + window) or _End(n)).end()
        part = text[pos:end]
        sp = part.translate(_NINES).split("\n")
        sp.pop()  # (after the window's last newline; a blank line is a shape no line has)
        shapes.update(sp)
        lines += part.count("\n")
        starts.append(end)
        pos = end
    if not all(_SHAPE.fullmatch(s) for s in shapes):
        return None
    first = starts[0]
    if any(bad.search(text, first) for bad in _BAD_OCTETS) or _BIG_PORT.search(text, first):
        return None
    reals = text.count("\n  -> ", first - 1)
    return PlainTable(text, starts, lines - reals, reals)


class _End:
    """A stand-in match at the text's end (no virtual server after the window's size: the rest is one window)."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def end(self) -> int:
        return self.n

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

A big table file (`rules --ipvsadm FILE -o json`, sources/node.py) is checked the same way as it is streamed
(`plain_file`): its windows are read again, one at a time, when they are written, so the table is never held
whole (at 10,000 Services the text alone is 7 MiB, a third of the memory budget of 3x the file with the
interpreter's floor of ~17 MiB); each window's CRC-32 from the check is compared when it is read again, so a file
changed in between is an error, not a mixed answer.
"""

from __future__ import annotations

import re
import zlib

from svcctl.errors import InputError
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern

__all__ = ["PlainTable", "plain_file", "plain_table"]

_BANNER = LazyPattern(r"IP Virtual Server version \d+\.\d+\.\d+ \(size=\d+\)")
_HEAD = ("Prot LocalAddress:Port Scheduler Flags\n"
         "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
_UNUSUAL = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# a line's shape with its digits made 9: ipvs._FL_LINE's two alternatives
_SHAPE = LazyPattern(r"(?:TCP|UDP|SCTP) +9{1,3}(?:\.9{1,3}){3}:9{1,5} [a-z]+(?: persistent 9{1,10})? *"
                    r"|  -> 9{1,3}(?:\.9{1,3}){3}:9{1,5} +(?:Masq|Local|Tunnel|Route) +-?9{1,20} +9{1,20} +9{1,20} *")
_NINES = str.maketrans("0123456789", "9999999999")
# (after the shapes: an octet follows `.`, or the space after `->` or after the protocol, whose names all end in P;
# one search each, led by that literal: an alternation of them is tried at every position)
_OCTET = r"(?:0\d\d?|25[6-9]|2[6-9]\d|[3-9]\d\d)"  # not what ipaddress takes: a leading zero, or past 255
_BAD_OCTETS = (re.compile(rf"\.{_OCTET}(?!\d)"), re.compile(rf"-> {_OCTET}\."), re.compile(rf"P +{_OCTET}\."))
_BIG_PORT = LazyPattern(r":(?:6553[6-9]|655[4-9]\d|65[6-9]\d\d|6[6-9]\d{3}|[7-9]\d{4})(?!\d)")
_VS_START = LazyPattern(r"\n(?=TCP|UDP|SCTP)")
# characters per window of virtual servers: a window's JSON is about four times its text, and (with the writer's
# batches) what a table streamed from its file holds at once: 32 Ki, 20.4 MB at 10,000 Services; 256 Ki was 28 MB
WINDOW = 1 << 15


@dataclass(slots=True)
class PlainTable:
    """The table's text, where each window of whole virtual servers starts (the last item is the text's end),
    and the whole table's counts; a table checked from its file (`plain_file`) has no text but the file's path,
    its windows' CRC-32s by their byte offsets, and `head`, the file's text up to the end of the first window
    (what the mode detection reads)."""

    text: str
    starts: list[int]
    virtual_servers: int
    real_servers: int
    path: str | None = None
    crcs: dict[int, int] = field(default_factory=dict)  # a window's start -> the CRC-32 of its bytes
    head: str = ""

    @property
    def windows(self) -> list[tuple[int, int]]:
        s = self.starts
        return [(s[i], s[i + 1]) for i in range(len(s) - 1)]

    def part(self, span: tuple[int, int]) -> tuple[str, int, int]:
        """(text, start, end) of a window: the table's own text, or the window read again from the file."""
        if self.path is None:
            return self.text, span[0], span[1]
        with open(self.path, "rb") as fh:
            fh.seek(span[0])
            data = fh.read(span[1] - span[0])
        if zlib.crc32(data) != self.crcs[span[0]]:
            raise InputError("the file changed while it was being read", source=self.path,
                             hint="read a copy that nothing writes to")
        return data.decode("ascii"), 0, len(data)


class _Check:
    """The whole table's checks, one window of whole virtual servers at a time (all of them are per line)."""

    __slots__ = ("shapes", "lines", "reals")

    def __init__(self) -> None:
        self.shapes: set[str] = set()
        self.lines = self.reals = 0

    def add(self, part: str) -> bool:
        """Take one window (whole lines, starting at a virtual server); False when it cannot be of the table."""
        if any(ch in part for ch in _UNUSUAL) or any(bad.search(part) for bad in _BAD_OCTETS) or \
                _BIG_PORT.search(part):
            return False
        sp = part.translate(_NINES).split("\n")
        sp.pop()  # (after the window's last newline; a blank line is a shape no line has)
        self.shapes.update(sp)
        self.lines += part.count("\n")
        self.reals += part.count("\n  -> ")
        return True

    def shaped(self) -> bool:
        return all(_SHAPE.fullmatch(s) for s in self.shapes)


def _opening(text: str) -> int | None:
    """Where the first virtual server starts after the banner and the heading, or None when the text does not
    open as a plain table of ipvsadm's own printing."""
    nl = text.find("\n")
    if nl < 0 or not _BANNER.fullmatch(text, 0, nl) or not text.startswith(_HEAD, nl + 1):
        return None
    pos = nl + 1 + len(_HEAD)
    return None if pos >= len(text) or text.startswith("  -> ", pos) else pos


def plain_table(text: str, window: int | None = None) -> PlainTable | None:
    """The table checked and cut into windows, or None when it is not a plain IPv4 table of ipvsadm's own
    printing with at least one virtual server (then the ordinary readers read it)."""
    window = window or WINDOW
    pos = _opening(text)
    if pos is None or not text.endswith("\n"):
        return None
    n = len(text)
    check = _Check()
    starts = [pos]
    while pos < n:
        end = n if pos + window >= n else (_VS_START.search(text, pos + window) or _End(n)).end()
        if not check.add(text[pos:end]):
            return None
        starts.append(end)
        pos = end
    if not check.shaped():
        return None
    return PlainTable(text, starts, check.lines - check.reals, check.reals)


def plain_file(path: str, window: int | None = None) -> PlainTable | None:
    """`plain_table` of a file's text, streamed: the file is checked a window at a time and not kept (its
    windows are read again as they are written: `PlainTable.part`). None when it is not such a table, not
    ASCII, or its first window has no real server (the mode detection reads only `head`, and asks for one)."""
    window = window or WINDOW
    check = _Check()
    with open(path, "rb") as fh:
        buf = fh.read(window + 8192)  # (the banner and heading in the first read, however small the window)
        try:
            first = buf.decode("ascii")
        except UnicodeDecodeError:
            return None
        pos = _opening(first)
        if pos is None:
            return None
        starts, crcs = [pos], {}
        at, buf = pos, buf[pos:]  # the file offset of buf's first byte: always a virtual server's line
        head = ""
        while buf:
            more = fh.read(window)
            if more:
                buf += more
                # up to the last virtual server begun (its real servers may go on in the next read)
                cut = max(buf.rfind(b"\nTCP "), buf.rfind(b"\nUDP "), buf.rfind(b"\nSCTP ")) + 1
                if cut <= 0:
                    continue  # one virtual server longer than the window: read on
            else:
                if not buf.endswith(b"\n"):
                    return None
                cut = len(buf)
            part_b, buf = buf[:cut], buf[cut:]
            try:
                part = part_b.decode("ascii")
            except UnicodeDecodeError:
                return None
            if not check.add(part):
                return None
            if not head:
                if "\n  -> " not in part:
                    return None
                head = first[:pos] + part
            crcs[at] = zlib.crc32(part_b)
            at += cut
            starts.append(at)
    if not check.shaped() or len(starts) < 2:
        return None
    return PlainTable("", starts, check.lines - check.reals, check.reals, path=path, crcs=crcs, head=head)


class _End:
    """A stand-in match at the text's end (no virtual server after the window's size: the rest is one window)."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def end(self) -> int:
        return self.n

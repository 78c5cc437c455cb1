"""A checked plain IPVS table's entries as JSON text (`rules -o json` of a whole table), straight from the text a
window of virtual servers at a time, with no Backend made for a real server: what `entry_text` writes of the
entries `parse_ipvsadm` makes, character for character (tests/cli/test_ipvs_json.py), without the model of a
whole table (100,000 real servers) held at once.

A virtual server whose real servers all forward by Masq with weights above 0, scheduled by rr (or wrr with one
weight), is written from two texts made by the ordinary code once per shape and cached: its entry's
(`ipvs.entry_of` and `entry_text` of a stand-in address, port and backends) and a real server's (`Backend.json_text`
of stand-in fields), with the real server lines' fields put in their holes by list slicing (in C, no Python step
per real server). Every other virtual server is read into entries by the fast reader and written by
`entry_text`.
"""

from __future__ import annotations

from fractions import Fraction

from svcctl.dataplane.ipvs import entry_of, plain_entries
from svcctl.dataplane.ipvs_plain import PlainTable
from svcctl.dataplane.model import Backend
from svcctl.lazyre import LazyPattern
from svcctl.render.entry_json import entry_text

__all__ = ["window_text"]

_BLOCK = LazyPattern(r"(TCP|UDP|SCTP) +([0-9.]+):(\d+) ([a-z]+)(?: persistent (\d+))? *\n((?:  -> [^\n]*\n)*)")
_ADDR, _PORT = "\x01", 99999  # stand-ins: the address's JSON is `"\u0001"`; no real port is 99999
_HOLES = LazyPattern(r'\\u0001|99999|"backends": \[\]')
_RS_HOLES = LazyPattern(r"\\u0001|9999[1-5]")
_ADDRS = LazyPattern(r"-> (\S+)")
_LEADING_ZERO = LazyPattern(r" 0\d")
_SHARED: dict[tuple[str, str, str, int, str], tuple[str, str, list[str], str] | None] = {}


def window_text(table: PlainTable, span: tuple[int, int], nl: str) -> str:
    """The entries of the table's virtual servers in `span` (a window of whole ones), each at indentation `nl`,
    joined as the JSON writer separates array items."""
    text, start, end = table.part(span)
    out = []
    for proto, vip, vport, sched, pers, block in _BLOCK.findall(text, start, end):
        out.append(_vs_text(proto, vip, vport, sched, pers, block, nl))
    return ("," + nl).join(out)


def _vs_text(proto: str, vip: str, vport: str, sched: str, pers: str, block: str, nl: str) -> str:
    if block and (sched == "rr" or sched == "wrr") and _number(vport):
        addrs = _ADDRS.findall(block)
        n = len(addrs)
        first = addrs[0]
        port = first[first.rindex(":") + 1:]
        tail = block[len(first) + 5:block.index("\n")].lstrip(" ")  # `Masq    1      0          0         `
        if block.count(" " + tail + "\n") == n and block.count(":" + port + " ") == n:
            fields = tail.split()  # every real server has this port, forwarding, weight and counters
            if len(fields) == 4 and fields[0] == "Masq":
                texts = _shared(proto, sched, pers, n, nl)
                w = fields[1]
                if texts is not None and _number(port) and _weight(w) and _number(fields[2]) and _number(fields[3]):
                    form, head, piece, close = texts
                    rest = "".join((piece[2], port, piece[4], w, piece[6], fields[2], piece[8], fields[3], piece[10]))
                    backends = head + piece[0].join(addrs).replace(":" + port, rest) + close
                    return form % (vip, vport, backends, vip, vport)
        else:
            toks = block.replace(":", " ").split()  # per real server: ->, ip, port, forward, weight, active, inactive
            ws = toks[4::7]
            weights = set(ws)
            fwds = set(toks[3::7])
            nums = " " + " ".join(toks[2::7] + toks[5::7] + toks[6::7])
            if (len(fwds) == 1 and "Masq" in fwds and all(_weight(x) for x in weights)
                    and (sched == "rr" or len(weights) == 1) and _LEADING_ZERO.search(nums) is None):
                texts = _shared(proto, sched, pers, n, nl)
                if texts is not None:
                    form, head, piece, close = texts
                    parts = piece * n
                    parts[0] = head
                    parts[1::11] = toks[1::7]
                    parts[3::11] = toks[2::7]
                    parts[5::11] = ws
                    parts[7::11] = toks[5::7]
                    parts[9::11] = toks[6::7]
                    return form % (vip, vport, "".join(parts) + close, vip, vport)
    entries = plain_entries(f"{proto}  {vip}:{vport} {sched}" + (f" persistent {pers}" if pers else "") + "\n"
                            + block)
    return ("," + nl).join(entry_text(e, nl) for e in entries)


def _number(t: str) -> bool:
    """Printed as JSON as it is (int() of it prints the same): no leading zero."""
    return t[0] != "0" or t == "0"


def _weight(t: str) -> bool:
    """A weight above 0 printed as JSON as it is (weight 0 and below is draining: the ordinary writer's)."""
    return t[0] != "0" and t[0] != "-"


def _shared(proto: str, sched: str, pers: str, n: int, nl: str) -> tuple[str, str, list[str], str] | None:
    """The entry's %-format (holes: address, port, backends, address, port) and the backends array's pieces
    (`_frame`) for a virtual server of this shape, made once; None when the stand-ins do not fall in place."""
    key = (proto, sched, pers, n, nl)
    if key in _SHARED:
        return _SHARED[key]
    form = _entry_template(proto, sched, int(pers) if pers else None, n, nl)
    frame = _frame(n, nl + "    ")
    hit = None if form is None or frame is None else (form, *frame)
    if len(_SHARED) < 4096:
        _SHARED[key] = hit
    return hit


def _entry_template(proto: str, sched: str, persistent: int | None, n: int, nl: str) -> str | None:
    """`entry_text` of the entry of such a virtual server as a %-format with holes for its address, port,
    backends array, address and port (the path), in that order; None when the stand-ins are not so."""
    reals = [Backend(f"10.0.0.{i % 250 + 1}", 1, None, "", 1, 0, 0) for i in range(n)]
    e = entry_of(proto, _ADDR, _PORT, sched, persistent, reals)
    e.backends = []
    text = entry_text(e, nl)
    if _HOLES.findall(text) != ["\\u0001", "99999", '"backends": []', "\\u0001", "99999"]:
        return None
    return _HOLES.sub(lambda m: '"backends": %s' if m.group(0).startswith('"') else "%s", text.replace("%", "%%"))


def _frame(n: int, bnl: str) -> tuple[str, list[str], str] | None:
    """A real server's `json_text(bnl)` of a share 1/n cut at its ip, port, weight and counters, as the pieces
    of the backends array: the first real server's opening piece, one real server's 11 slots (pieces, with
    empty holes at 1, 3, 5, 7, 9) and the array's close; None when the stand-ins are not each once, in order."""
    b = Backend(_ADDR, 99991, Fraction(1, n), "", 99992, 99993, 99994)
    text = b.json_text(bnl)
    if [m.group(0) for m in _RS_HOLES.finditer(text)] != ["\\u0001", "99991", "99992", "99993", "99994"]:
        return None
    p = _RS_HOLES.split(text)
    return "[" + bnl + p[0], ["," + bnl + p[0], "", p[1], "", p[2], "", p[3], "", p[4], "", p[5]], bnl[:-2] + "]"

"""kube-proxy's IPVS mode, read from `ipvsadm -Ln` (also `--stats`, `--rate`, `-S -n`, `-Lnc`) and its glue.

The formats are ipvsadm's own (`print_title` / `print_service_entry` / `print_conn` in ipvsadm.c): a banner
`IP Virtual Server version 1.2.1 (size=4096)`, the service line `TCP  10.0.1.175:80 rr [persistent 10800]`
(`FWM  <mark>` for firewall marks, `[addr]:port` for IPv6) and one `  -> %-28s %-7s %-6d %-10u %-10u` line per
real server. Only numeric output (`-n`) can be matched to Services: a listing with names is refused.

Shares follow the kernel schedulers: `rr` picks every real server with weight > 0 in turn (1/n each), `wrr`
in proportion to weight; weight 0 is never picked (kube-proxy's graceful termination: `draining`). Every other
scheduler decides per connection from load or from a hash of the source, so its shares are unknown (None).

kube-proxy's IPVS mode also needs every service address bound to the dummy link `kube-ipvs0` and listed in the
`KUBE-CLUSTER-IP` ipset (its iptables rules match that set); what is missing becomes structured flags on the
entry (`ServiceEntry.glue`), which `svcctl.analysis.glue` turns into findings.
"""

from __future__ import annotations

import ipaddress
import re
from fractions import Fraction
from typing import TYPE_CHECKING

from svcctl.dataplane.ints import Ints
from svcctl.dataplane.model import (
    GLUE_NOT_IN_IPSET,
    GLUE_VIP_NOT_BOUND,
    Backend,
    Flow,
    NodeRules,
    ServiceEntry,
)
from svcctl.errors import InputError
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern

if TYPE_CHECKING:
    from svcctl.dataplane.ipvs_plain import PlainTable

__all__ = [
    "parse_ipvsadm", "parse_ipvsadm_connections", "parse_ipset", "parse_ip_addr",
    "looks_like_ipvsadm", "is_ipvs_connection_list", "IPSet", "NOTE_NOT_BOUND", "NOTE_NOT_IN_IPSET",
]

BANNER = LazyPattern(r"^IP Virtual Server version \d+\.\d+\.\d+ \(size=\d+\)$")
HEADER_LIST = "Prot LocalAddress:Port Scheduler Flags"
HEADER_RS = LazyPattern(r"^\s*-> RemoteAddress:Port(\s+Forward (TunnelInfo\s+)?Weight ActiveConn InActConn)?\s*$")
PROTOCOLS = ("TCP", "UDP", "SCTP")
FORWARDS = {"Masq": "Masq", "Local": "Local", "Tunnel": "Tunnel", "Route": "Route"}
SHARE_SCHEDULERS = ("rr", "wrr")
SOURCE_HASH_SCHEDULERS = {"sh": "a hash of the source address", "mh": "a Maglev hash of the source address",
                          "dh": "a hash of the destination address"}

NOTE_NOT_BOUND = "is not bound to kube-ipvs0"
NOTE_NOT_IN_IPSET = "is missing from the KUBE-CLUSTER-IP ipset"

# the fast reader of plain `ipvsadm -Ln` tables (`_read_listing_fast`; tests/dataplane/test_ipvs_fast.py holds it
# equal to the general reader)
FAST = True

_NUM_HINT = "run `ipvsadm -Ln` (with -n): names cannot be matched to Services"
_FORMAT_HINT = "give the output of `ipvsadm -Ln` (or `ipvsadm -Ln --stats`, `ipvsadm -S -n`)"


def is_ipvs_connection_list(text: str) -> bool:
    """`ipvsadm -Lnc` output (read it with parse_ipvsadm_connections, not parse_ipvsadm)."""
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "") == "IPVS connection entries"


def looks_like_ipvsadm(text: str) -> bool:
    """Any ipvsadm listing: -L[n] (plain, --stats, --rate, -c) or -S."""
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        return bool(BANNER.match(s) or s.startswith("Prot LocalAddress:Port") or s == "IPVS connection entries"
                    or re.match(r"^-A (-t|-u|-f|--sctp-service|--tcp-service|--udp-service|--fwmark-service) ", s))
    return False


# --------------------------------------------------------------------------- addresses


_ADDRPORT = LazyPattern(r"\[([0-9a-fA-F:.]+)\]:(\d{1,10})|([0-9.]+):(\d{1,10})")  # int() refuses 4300+ digits
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_V4 = LazyPattern(rf"{_OCTET}(?:\.{_OCTET}){{3}}")  # exactly what ipaddress.IPv4Address accepts


def _split_addrport(s: str) -> tuple[str, int] | None:
    """`10.0.1.175:80` / `[fd00::1]:80` → (ip, port); None when not numeric.

    A dotted quad is checked by one regex (ipaddress' own parse was most of a whole IPVS table's parse)."""
    m = _ADDRPORT.fullmatch(s)
    if not m:
        return None
    ip = m.group(1) or m.group(3)
    if m.group(3) is None or not _V4.fullmatch(ip):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return None
    port = int(m.group(2) or m.group(4))
    return (ip, port) if port <= 65535 else None


def _need_numeric(s: str, source: str, line: int) -> tuple[str, int]:
    ap = _split_addrport(s)
    if ap is not None:
        return ap
    if re.fullmatch(r"\[?[A-Za-z0-9_.:-]+\]?:[A-Za-z0-9_-]+", s):
        raise InputError(f"{s!r} is a name, not an address: this listing was made without -n", hint=_NUM_HINT,
                         source=source, line=line)
    raise InputError(f"not an address:port: {s!r}", hint=_FORMAT_HINT, source=source, line=line)


_SUFFIX = {"K": 1000, "M": 1000_000, "G": 1000_000_000, "T": 1000_000_000_000}


def _largenum(tok: str, source: str, line: int) -> int:
    """ipvsadm's print_largenum: plain up to 99,999,999, then K/M/G/T (rounded down)."""
    m = re.fullmatch(r"(\d{1,20})([KMGT]?)", tok)
    if not m:
        raise InputError(f"not a counter: {tok!r}", hint=_FORMAT_HINT, source=source, line=line)
    return int(m.group(1)) * _SUFFIX.get(m.group(2), 1)


# --------------------------------------------------------------------------- ipvsadm -Ln and friends


@dataclass(slots=True)  # a whole table holds one per virtual server: 50,000s
class _VS:
    protocol: str
    address: str
    port: int
    fwmark: int = 0
    scheduler: str | None = None
    sched_flags: list[str] = field(default_factory=list)
    persistent: int | None = None
    notes: list[str] = field(default_factory=list)
    reals: list[Backend] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)  # Masq/Route/Tunnel/Local, parallel to reals
    ipv6: bool = False
    line: int = 0


_SVC_LIST = LazyPattern(r"^(?P<proto>TCP|UDP|SCTP) +(?P<addr>\S+) (?P<sched>[a-z]+)(?P<rest>.*)$")
_FWM_LIST = LazyPattern(r"^FWM  (?P<mark>\d{1,10})(?P<v6> IPv6)? (?P<sched>[a-z]+)(?P<rest>.*)$")
_REST = LazyPattern(r"^(?: \((?P<flags>[^)]*)\))?(?: persistent (?P<pers>\d{1,10})(?: mask (?P<mask>\S+))?"
                   r"(?: pe (?P<pe>\S+))?(?P<ops> ops)?)?\s*$")
_RS_LIST = LazyPattern(r"^\s*-> (?P<addr>\S+)\s+(?P<fwd>Masq|Local|Tunnel|Route)(?:\s+(?P<tun>[a-z]+(?::\d+)?(?:,\S+)?))?\s+(?P<w>-?\d{1,20})\s+"
                      r"(?P<act>\d{1,20})\s+(?P<inact>\d{1,20})\s*$")


def parse_ipvsadm(text: str, source: str, *, ipset_text: str | None = None, ip_addr_text: str | None = None,
                  iptables_text: str | None = None, only: set[str] | None = None,
                  as_text: bool = False) -> NodeRules:
    """`ipvsadm -Ln` (or --stats / --rate / -S -n) → NodeRules (mode "ipvs"), checked against the glue if given.

    ipset_text: `ipset list` (classifies NodePort / external / LB entries, checks KUBE-CLUSTER-IP);
    ip_addr_text: `ip addr show kube-ipvs0` (every service address must be bound there);
    iptables_text: `iptables-save` (checks that the KUBE-CLUSTER-IP match-set rule exists);
    only: addresses (`VIP`, `VIP:port`, `[v6]:port`, `:nodePort`) to keep: the virtual servers of other addresses
    are skipped before parsing (IPVS entries carry no names, so names alone cannot filter);
    as_text: the caller needs only the entries' JSON: a plain table without glue is checked and left in its text
    (`rules.deferred`, written by render/ipvs_json.py), no entry made."""
    if "\x00" in text[:8192]:
        raise InputError("binary data, not ipvsadm output", source=source)
    if only:
        cut = prefilter(text, only)
        if cut is not None:
            try:
                rules = parse_ipvsadm(cut[0], source, ipset_text=ipset_text, ip_addr_text=ip_addr_text,
                                      iptables_text=iptables_text)
            except InputError:
                pass  # a damaged dump: the whole parse below says where
            else:
                rules.stats.extra["virtualServers"], rules.stats.extra["realServers"] = cut[1], cut[2]
                rules.stats.rules = cut[1] + cut[2]
                rules.notes = [n for n in rules.notes if not n.startswith("IPVS has no virtual servers")]
                rules.notes.append("only the virtual servers of the addresses asked about were read; counts are "
                                   "for the whole table")
                return rules
    if left_as_text(as_text, only, ipset_text, ip_addr_text, iptables_text):
        from svcctl.dataplane.ipvs_plain import plain_table

        table = plain_table(text)
        if table is not None:
            return deferred_rules(table, source)
    vss, fmt = _read_vss(text, source)
    rules = NodeRules(mode="ipvs", source=source)
    rules.stats.extra["virtualServers"] = len(vss)
    rules.stats.extra["realServers"] = sum(len(v.reals) for v in vss)
    rules.stats.rules = len(vss) + sum(len(v.reals) for v in vss)
    if not vss:
        rules.notes.append("IPVS has no virtual servers: kube-proxy is not in IPVS mode or has not synced")
    if fmt in ("stats", "rate"):
        rules.notes.append(f"`--{fmt}` output has no scheduler or weights: shares are unknown; give plain "
                           "`ipvsadm -Ln` for them")
    sets = parse_ipset(ipset_text, "ipset") if ipset_text is not None else None
    bound = set(parse_ip_addr(ip_addr_text, "ip addr")) if ip_addr_text is not None else None
    for v in vss:
        rules.services.append(_entry(v, sets, bound))
    if iptables_text is not None and vss:  # with no Service the ipsets are empty and kube-proxy writes no
        _check_iptables(iptables_text, rules)  # match-set rules (proxier.go: `if !…isEmpty()`)
    return rules


def _read_vss(text: str, source: str) -> tuple[list[_VS], str]:
    """The virtual servers of an ipvsadm listing or `-S -n` dump, and which format it is."""
    if FAST:
        fast = _read_save_fast(text) if text.startswith("-A ") else _read_listing_fast(text)
        if fast is not None:
            return fast, "save" if text.startswith("-A ") else "list"
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise InputError("empty ipvsadm output", hint=_FORMAT_HINT, source=source)
    head = lines[first].strip()
    if head == "IPVS connection entries":
        raise InputError("this is a connection list (`ipvsadm -Lnc`), not the virtual server table",
                         hint="give `ipvsadm -Ln` output for the virtual server table",
                         source=source, line=first + 1)
    if head.startswith("-A ") or head.startswith("-a "):
        return _parse_save(lines, source), "save"
    return _parse_listing(lines, first, source)


# `ipvsadm -Ln` as ipvsadm prints it (print_service_entry: `%s %s` + ` persistent %u`; a real server
# `  -> %-28s %-7s %-6d %-10u %-10u`), IPv4 virtual and real servers: one line each, read in bulk
_FL_V4 = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_FL_LINE = LazyPattern(rf"(?:(TCP|UDP|SCTP) +({_FL_V4}):(\d{{1,5}}) ([a-z]+)(?: persistent (\d{{1,10}}))?"
                      rf"|  -> ({_FL_V4}):(\d{{1,5}}) +(Masq|Local|Tunnel|Route) +(-?\d{{1,20}}) +(\d{{1,20}}) +"
                      r"(\d{1,20})) *\n")
_FL_HEAD = ("Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
_FL_UNUSUAL = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_FL_CHUNK = 1 << 18  # the text read a window at a time: a window's tuples, not a whole table's, exist at once
_INTS = Ints()
_FORWARD_WORDS = {w: w for w in FORWARDS}


# `ipvsadm -S -n` as ipvsadm writes it (`-A -t|-u ADDR:PORT -s SCHED [-p N]`, `-a … -r ADDR:PORT -m|-g|-i -w N`)
_FS_LINE = LazyPattern(rf"(?:-A -([tu]) (({_FL_V4}):(\d{{1,5}})) -s ([a-z]+)(?: -p (\d{{1,10}}))?"
                      rf"|-a -([tu]) ({_FL_V4}:\d{{1,5}}) -r ({_FL_V4}):(\d{{1,5}}) -([mgi]) -w (\d{{1,10}})) *\n")
_FS_PROTO = {"t": "TCP", "u": "UDP"}
_FS_FWD = {"m": "Masq", "g": "Route", "i": "Tunnel"}


def _read_save_fast(text: str) -> list[_VS] | None:
    """`ipvsadm -S -n` of IPv4 TCP/UDP virtual servers in ipvsadm's own option order, read a window of lines
    per regex call; None for anything else, which `_parse_save` then reads (and reports)."""
    if not text.endswith("\n") or any(ch in text for ch in _FL_UNUSUAL):
        return None
    pos, n, line = 0, len(text), 1
    vss: list[_VS] = []
    by_key: dict[tuple[str, str], _VS] = {}
    ints, find_all, count = _INTS, _FS_LINE.findall, text.count
    while pos < n:
        end = text.find("\n", min(pos + _FL_CHUNK, n - 1)) + 1 or n
        rows = find_all(text, pos, end)
        if len(rows) != count("\n", pos, end):
            return None  # a line of another shape
        for t_vs, vaddr, vip, vport, sched, pers, t_rs, raddr, rip, rport, fwd, w in rows:
            if t_vs:
                port = ints[vport]
                key = (_FS_PROTO[t_vs], vaddr)
                if port > 65535 or key in by_key:
                    return None
                v = by_key[key] = _VS(key[0], vip, port, line=line)
                v.scheduler = sched
                if pers:
                    v.persistent = int(pers)
                vss.append(v)
            else:
                v2 = by_key.get((_FS_PROTO[t_rs], raddr))
                port = ints[rport]
                if v2 is None or port > 65535:
                    return None
                v2.reals.append(Backend(rip, port, None, "", ints[w]))
                v2.forwards.append(_FS_FWD[fwd])
            line += 1
        pos = end
    return vss


def _read_listing_fast(text: str) -> list[_VS] | None:
    """A plain `ipvsadm -Ln` of IPv4 virtual servers (rr/wrr/… with or without `persistent`), every line of
    ipvsadm's own shape, read a window of lines per regex call; None for anything else (other formats, IPv6,
    firewall marks, flags, blank lines, no final newline), which the general reader then reads."""
    nl = text.find("\n")
    if nl < 0 or not BANNER.match(text[:nl]) or not text.startswith(_FL_HEAD, nl + 1) or not text.endswith("\n"):
        return None
    if any(ch in text for ch in _FL_UNUSUAL):
        return None
    pos, n = nl + 1 + len(_FL_HEAD), len(text)
    line = 4  # the first virtual server's line
    vss: list[_VS] = []
    cur: _VS | None = None
    ints, words, find_all, count = _INTS, _FORWARD_WORDS, _FL_LINE.findall, text.count
    while pos < n:
        end = text.find("\n", min(pos + _FL_CHUNK, n - 1)) + 1 or n
        rows = find_all(text, pos, end)
        if len(rows) != count("\n", pos, end):
            return None  # a line of another shape
        for proto, vip, vport, sched, pers, rip, rport, fwd, w, act, inact in rows:
            if proto:
                port = ints[vport]
                if port > 65535:
                    return None
                cur = _VS(proto, vip, port, line=line)
                cur.scheduler = sched
                if pers:
                    cur.persistent = int(pers)
                vss.append(cur)
            else:
                if cur is None:
                    return None
                port = ints[rport]
                if port > 65535:
                    return None
                cur.reals.append(Backend(rip, port, None, "", ints[w], ints[act], ints[inact]))
                cur.forwards.append(words[fwd])
            line += 1
        pos = end
    return vss


def left_as_text(as_text: bool, only: set[str] | None, ipset_text: str | None, ip_addr_text: str | None,
                 iptables_text: str | None) -> bool:
    """Whether a plain table may be left in its text (or file) for the JSON writer: only its JSON is wanted, the
    whole of it, with no glue to check it against (`parse_ipvsadm`'s `as_text`), and the fast readers are on."""
    return as_text and FAST and not only and ipset_text is None and ip_addr_text is None and iptables_text is None


def deferred_rules(table: PlainTable, source: str) -> NodeRules:
    """The rules of a checked plain table left in its text or file for the JSON writer: only its counts."""
    rules = NodeRules(mode="ipvs", source=source, deferred=table)
    rules.stats.extra["virtualServers"] = table.virtual_servers
    rules.stats.extra["realServers"] = table.real_servers
    rules.stats.rules = table.virtual_servers + table.real_servers
    return rules


def plain_entries(vs_text: str) -> list[ServiceEntry]:
    """The entries of whole virtual servers cut from a plain table that `ipvs_plain.plain_table` passed (their
    lines, from a virtual server's to its last real server's), as `parse_ipvsadm` makes them without glue."""
    vss = _read_listing_fast(_PLAIN_BANNER + _FL_HEAD + vs_text)
    if vss is None:
        raise ValueError("not virtual servers of a checked plain table")
    return [_entry(v, None, None) for v in vss]


def entry_of(protocol: str, address: str, port: int, scheduler: str, persistent: int | None,
             reals: list[Backend]) -> ServiceEntry:
    """The entry `parse_ipvsadm` makes (without glue) of a virtual server whose real servers all forward by Masq."""
    v = _VS(protocol, address, port, scheduler=scheduler, persistent=persistent, reals=reals,
            forwards=["Masq"] * len(reals))
    return _entry(v, None, None)


_PLAIN_BANNER = "IP Virtual Server version 1.2.1 (size=4096)\n"
_VS_LINE = LazyPattern(r"(?m)^(?:TCP|UDP|SCTP|FWM) |^-A ")


def prefilter(text: str, only: set[str]) -> tuple[str, int, int] | None:
    """The table cut down to the virtual servers (and their real servers) of the addresses in `only`, with the
    whole table's virtual- and real-server counts; None when `only` names no address (nothing to cut by)."""
    wanted: list[str] = []
    ports: list[str] = []
    for o in only:
        if "/" in o:
            continue
        if o.startswith(":") and o[1:].isdigit():
            ports.append(o[1:])
        elif o.startswith("["):
            host, _, port = o[1:].partition("]")
            wanted.append(f"[{host}]{port}" if port else f"[{host}]:")
        elif o.count(":") == 1:
            wanted.append(o)
        elif o:
            wanted.append(f"[{o}]:" if ":" in o else f"{o}:")
    if not wanted and not ports:
        return None
    save = bool(re.match(r"\s*-[Aa] ", text))
    vss = len(_VS_LINE.findall(text))
    reals = text.count("\n  -> ") - (1 if "\n  -> RemoteAddress:Port" in text else 0) if not save else \
        len(re.findall(r"(?m)^-a ", text))
    keep_lines: dict[int, str] = {}

    def add_hits(needle: str) -> None:
        pos = text.find(needle)
        while pos >= 0:
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            line = text[start:end]
            fields = line.split()
            addr = fields[1] if not save and len(fields) > 1 else (fields[2] if len(fields) > 2 else "")
            hit = any(addr == w or (w.endswith(":") and addr.startswith(w)) for w in wanted) or any(
                addr.rpartition(":")[2] == p for p in ports)
            if hit and (fields[:1] and fields[0] in (*PROTOCOLS, "-A", "-a")):
                if save:
                    keep_lines[start] = line
                else:
                    # the virtual server line and its `  -> ` real server lines
                    stop = start
                    nxt = end
                    while True:
                        stop = nxt
                        if not text.startswith("\n  -> ", nxt):
                            break
                        nxt = text.find("\n", nxt + 1)
                        nxt = len(text) if nxt < 0 else nxt
                    keep_lines[start] = text[start:stop]
            pos = text.find(needle, end)

    for w in wanted:
        add_hits(w if w.startswith("[") else w)
    for p in ports:
        add_hits(f":{p} ")
    if save:
        head = ""
    else:
        first_vs = _VS_LINE.search(text)
        head = text[:first_vs.start()] if first_vs else text
    body = "\n".join(keep_lines[k] for k in sorted(keep_lines))
    return head + body + "\n", vss, max(0, reals)


def _parse_listing(lines: list[str], first: int, source: str) -> tuple[list[_VS], str]:
    i = first
    if BANNER.match(lines[i].strip()):
        i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        return [], "list"
    header = lines[i].rstrip()
    cols = header.split()
    if _SVC_LIST.match(header.strip()) or _FWM_LIST.match(header.strip()):
        # a header-less excerpt (`ipvsadm -Ln | grep -A3 VIP`): plain listing lines, read as they are
        return _parse_rows(lines, i, "list", source), "list"
    if header.strip() == HEADER_LIST:
        fmt = "list"
    elif cols[:2] == ["Prot", "LocalAddress:Port"] and cols[2:] == ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]:
        fmt = "stats"
    elif cols[:2] == ["Prot", "LocalAddress:Port"] and cols[2:] == ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]:
        fmt = "rate"
    elif cols[:2] == ["Prot", "LocalAddress:Port"] and cols[2:] == ["Weight", "PersistConn", "ActiveConn", "InActConn"]:
        fmt = "persistent-conn"
    elif cols[:2] == ["Prot", "LocalAddress:Port"] and cols[2:] == ["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"]:
        fmt = "thresholds"
    else:
        raise InputError(f"not ipvsadm output: expected the header {HEADER_LIST!r}, found {header.strip()[:80]!r}",
                         hint=_FORMAT_HINT, source=source, line=i + 1)
    i += 1
    if i >= len(lines) or not HEADER_RS.match(lines[i]):
        raise InputError("not ipvsadm output: the `  -> RemoteAddress:Port` header line is missing",
                         hint=_FORMAT_HINT, source=source, line=i + 1)
    i += 1
    return _parse_rows(lines, i, fmt, source), fmt


def _parse_rows(lines: list[str], i: int, fmt: str, source: str) -> list[_VS]:
    """Virtual server and real server lines from line index `i` on."""
    vss: list[_VS] = []
    cur: _VS | None = None
    for n in range(i, len(lines)):
        raw = lines[n]
        lineno = n + 1
        if not raw.strip():
            continue
        if raw.lstrip().startswith("->"):
            if cur is None:
                raise InputError("real server line before any virtual service", source=source, line=lineno)
            b, fwd = _real_server(raw, fmt, cur, source, lineno)
            cur.reals.append(b)
            cur.forwards.append(fwd)
            continue
        cur = _service_line(raw.rstrip(), fmt, source, lineno)
        vss.append(cur)
    return vss


def _service_line(s: str, fmt: str, source: str, lineno: int) -> _VS:
    if fmt in ("list", "persistent-conn", "thresholds"):  # these print the scheduler on the service line
        m = _SVC_LIST.match(s) or _FWM_LIST.match(s)
        if not m:
            if re.match(r"^(TCP|UDP|SCTP)\s+\S+\s*$", s):
                raise InputError(f"truncated service line (no scheduler): {s!r}", hint=_FORMAT_HINT,
                                 source=source, line=lineno)
            raise InputError(f"not an ipvsadm service line: {s[:80]!r}", hint=_FORMAT_HINT, source=source,
                             line=lineno)
        rest = _REST.match(m["rest"])
        if not rest:
            raise InputError(f"unexpected service options: {m['rest'].strip()[:80]!r}", hint=_FORMAT_HINT,
                             source=source, line=lineno)
        if "mark" in m.groupdict() and m.groupdict().get("mark"):
            v = _VS("FWM", "", 0, fwmark=int(m["mark"]), ipv6=bool(m["v6"]), line=lineno)
        else:
            ip, port = _need_numeric(m["addr"], source, lineno)
            v = _VS(m["proto"], ip, port, ipv6=":" in ip, line=lineno)
        v.scheduler = m["sched"]
        if rest["flags"]:
            v.sched_flags = [f.strip() for f in rest["flags"].split(",") if f.strip()]
        if rest["pers"]:
            v.persistent = int(rest["pers"])
            if rest["mask"]:
                v.notes.append(f"persistence granularity: clients grouped by mask {rest['mask']}")
        if rest["pe"]:
            v.notes.append(f"persistence engine {rest['pe']}")
        if rest["ops"]:
            v.notes.append("one-packet scheduling (ops): every UDP datagram is scheduled on its own")
        return v
    toks = s.split()
    if toks and toks[0] == "FWM":
        if len(toks) < 2 or not toks[1].isdecimal() or len(toks[1]) > 10:
            raise InputError(f"not an ipvsadm service line: {s[:80]!r}", source=source, line=lineno)
        v = _VS("FWM", "", 0, fwmark=int(toks[1]), line=lineno)
        nums = toks[3:] if len(toks) > 2 and toks[2] == "IPv6" else toks[2:]
        v.ipv6 = len(toks) > 2 and toks[2] == "IPv6"
    elif toks and toks[0] in PROTOCOLS and len(toks) >= 2:
        ip, port = _need_numeric(toks[1], source, lineno)
        v = _VS(toks[0], ip, port, ipv6=":" in ip, line=lineno)
        nums = toks[2:]
    else:
        raise InputError(f"not an ipvsadm service line: {s[:80]!r}", hint=_FORMAT_HINT, source=source, line=lineno)
    if fmt in ("stats", "rate"):
        if len(nums) != 5:
            raise InputError(f"expected 5 counters on the service line, found {len(nums)}", hint=_FORMAT_HINT,
                             source=source, line=lineno)
        vals = [_largenum(x, source, lineno) for x in nums]
        v.notes.append(_counters_words(fmt, vals))
    elif nums:
        raise InputError(f"unexpected columns on the service line: {' '.join(nums)[:60]!r}", source=source,
                         line=lineno)
    return v


def _counters_words(fmt: str, vals: list[int]) -> str:
    if fmt == "stats":
        return (f"{vals[0]} connections, {vals[1]} packets in / {vals[2]} out, {vals[3]} bytes in / {vals[4]} out "
                "since the counters were reset")
    return f"{vals[0]} connections/s, {vals[1]} packets/s in / {vals[2]} out, {vals[3]} bytes/s in / {vals[4]} out"


def _real_server(raw: str, fmt: str, v: _VS, source: str, lineno: int) -> tuple[Backend, str]:
    if fmt == "list":
        m = _RS_LIST.match(raw)
        if not m:
            toks = raw.split()
            if len(toks) >= 2:
                _need_numeric(toks[1], source, lineno)
            raise InputError(f"not an ipvsadm real server line (want address, forward, weight, active, "
                             f"inactive): {raw.strip()[:80]!r}", hint=_FORMAT_HINT, source=source, line=lineno)
        ip, port = _need_numeric(m["addr"], source, lineno)
        b = Backend(ip=ip, port=port, weight=int(m["w"]), active_conns=int(m["act"]),
                    inactive_conns=int(m["inact"]))
        return b, m["fwd"]
    toks = raw.split()
    if len(toks) < 2 or toks[0] != "->":
        raise InputError(f"not an ipvsadm real server line: {raw.strip()[:80]!r}", source=source, line=lineno)
    ip, port = _need_numeric(toks[1], source, lineno)
    nums = toks[2:]
    want = 5 if fmt in ("stats", "rate") else 4
    if len(nums) != want:
        raise InputError(f"expected {want} columns after the address, found {len(nums)}", hint=_FORMAT_HINT,
                         source=source, line=lineno)
    b = Backend(ip=ip, port=port)
    if fmt == "persistent-conn":
        b.weight = int(nums[0])
        b.active_conns, b.inactive_conns = int(nums[2]), int(nums[3])
    elif fmt == "thresholds":
        b.active_conns, b.inactive_conns = int(nums[2]), int(nums[3])
    else:
        vals = [_largenum(x, source, lineno) for x in nums]
        v.notes.append(f"{b.address}: " + _counters_words(fmt, vals))
    return b, ""


# `ipvsadm -S -n` (also what `ipvsadm-save -n` writes)
_SAVE_SVC_OPTS = {"-t": "TCP", "--tcp-service": "TCP", "-u": "UDP", "--udp-service": "UDP",
                  "--sctp-service": "SCTP", "-f": "FWM", "--fwmark-service": "FWM"}
_SAVE_FWD = {"-m": "Masq", "--masquerading": "Masq", "-g": "Route", "--gatewaying": "Route", "-i": "Tunnel",
             "--ipip": "Tunnel"}


def _parse_save(lines: list[str], source: str) -> list[_VS]:
    vss: dict[tuple[str, str], _VS] = {}
    order: list[_VS] = []
    for n, raw in enumerate(lines):
        lineno = n + 1
        toks = raw.split()
        if not toks:
            continue
        if toks[0] not in ("-A", "-a") or len(toks) < 3 or toks[1] not in _SAVE_SVC_OPTS:
            raise InputError(f"not an `ipvsadm -S -n` line: {raw.strip()[:80]!r}", hint=_FORMAT_HINT,
                             source=source, line=lineno)
        proto = _SAVE_SVC_OPTS[toks[1]]
        key = (proto, toks[2])
        opts = toks[3:]
        if toks[0] == "-A":
            if proto == "FWM":
                if not toks[2].isdecimal() or len(toks[2]) > 10:
                    raise InputError(f"bad firewall mark {toks[2]!r}", source=source, line=lineno)
                v = _VS("FWM", "", 0, fwmark=int(toks[2]), line=lineno)
            else:
                ip, port = _need_numeric(toks[2], source, lineno)
                v = _VS(proto, ip, port, ipv6=":" in ip, line=lineno)
            it = iter(range(len(opts)))
            for j in it:
                o = opts[j]
                arg = opts[j + 1] if j + 1 < len(opts) else None
                if o in ("-s", "--scheduler") and arg:
                    v.scheduler = arg
                    next(it, None)
                elif o in ("-p", "--persistent"):
                    if arg and arg.isdecimal() and len(arg) <= 10:
                        v.persistent = int(arg)
                        next(it, None)
                    else:
                        v.persistent = 300  # ipvsadm's default persistence timeout
                elif o in ("-M", "--netmask") and arg:
                    v.notes.append(f"persistence granularity: clients grouped by mask {arg}")
                    next(it, None)
                elif o in ("-b", "--sched-flags") and arg:
                    v.sched_flags = arg.split(",")
                    next(it, None)
                elif o == "-6":
                    v.ipv6 = True
                elif o in ("pe", "--pe") and arg:
                    v.notes.append(f"persistence engine {arg}")
                    next(it, None)
                elif o in ("ops", "-o", "--ops"):
                    v.notes.append("one-packet scheduling (ops): every UDP datagram is scheduled on its own")
                else:
                    raise InputError(f"unknown ipvsadm option {o!r}", source=source, line=lineno)
            v.scheduler = v.scheduler or "wlc"  # ipvsadm's default scheduler
            vss[key] = v
            order.append(v)
            continue
        v2 = vss.get(key)
        if v2 is None:
            raise InputError(f"real server for a virtual service not defined before: {toks[2]}", source=source,
                             line=lineno)
        rip: tuple[str, int] | None = None
        weight = 1
        fwd = "Route"  # ipvsadm's default forwarding method
        j = 0
        while j < len(opts):
            o = opts[j]
            if o in ("-r", "--real-server") and j + 1 < len(opts):
                rip = _need_numeric(opts[j + 1], source, lineno)
                j += 2
            elif o in ("-w", "--weight") and j + 1 < len(opts) and opts[j + 1].lstrip("-").isdecimal() \
                    and len(opts[j + 1]) <= 10:
                weight = int(opts[j + 1])
                j += 2
            elif o in _SAVE_FWD:
                fwd = _SAVE_FWD[o]
                j += 1
            elif o in ("-x", "--u-threshold", "-y", "--l-threshold", "--tun-type", "--tun-port",
                       "--tun-nocsum", "--tun-csum", "--tun-remcsum") and j + 1 < len(opts):
                j += 2
            else:
                raise InputError(f"unknown ipvsadm option {o!r}", source=source, line=lineno)
        if rip is None:
            raise InputError("real server line without -r", source=source, line=lineno)
        v2.reals.append(Backend(ip=rip[0], port=rip[1], weight=weight))
        v2.forwards.append(fwd)
    return order


# --------------------------------------------------------------------------- shares, kinds, glue


def _shares(v: _VS) -> list[str]:
    notes: list[str] = []
    sched = v.scheduler or ""
    # one pass to find the draining real servers (weight 0; kube-proxy's usual table has none), a second to set
    # the shares: a whole table is 100,000s of real servers
    drained_rs = [b for b in v.reals if b.draining or (b.weight is not None and b.weight <= 0)]
    for b in drained_rs:
        if b.weight is not None and b.weight <= 0:
            b.draining = True
    live = [b for b in v.reals if not b.draining] if drained_rs else v.reals
    if sched in SHARE_SCHEDULERS:
        if sched == "rr":
            share, zero = _one_in(len(live)) if live else _ZERO, _ZERO  # one Fraction each (immutable)
            if drained_rs:
                for b in v.reals:
                    b.probability = zero if b.draining else share
            else:
                for b in v.reals:
                    b.probability = share
        else:
            total = sum(b.weight or 0 for b in live)
            for b in v.reals:
                b.probability = Fraction(b.weight or 0, total) if (not b.draining and total) else Fraction(0)
    elif sched:
        for b in v.reals:
            b.probability = Fraction(0) if b.draining else None
        if sched in SOURCE_HASH_SCHEDULERS:
            notes.append(f"scheduler {sched}: the real server is chosen from {SOURCE_HASH_SCHEDULERS[sched]}, "
                         "so each client sticks to one; shares depend on the clients")
        else:
            notes.append(f"scheduler {sched}: the real server is chosen per connection from current load, "
                         "so shares depend on load")
    drained = [b.address for b in drained_rs]
    if drained:
        notes.append("weight 0 (draining, kube-proxy's graceful termination): " + ", ".join(drained)
                     + " gets no new connections; existing ones continue")
    return notes


_ZERO = Fraction(0)
_ONE_IN: dict[int, Fraction] = {}


def _one_in(n: int) -> Fraction:
    """Fraction(1, n), made once for each n (a whole table has 10,000s of virtual servers of a few sizes)."""
    f = _ONE_IN.get(n)
    if f is None:
        f = Fraction(1, n)
        if len(_ONE_IN) < 4096:
            _ONE_IN[n] = f
    return f


@dataclass
class IPSet:
    name: str
    type: str = ""
    members: list[str] = field(default_factory=list)


def parse_ipset(text: str | None, source: str) -> dict[str, IPSet]:
    """`ipset list` (or `ipset save`) → sets by name. Members kept as printed: `10.0.0.1,tcp:443`."""
    out: dict[str, IPSet] = {}
    if not text:
        return out
    cur: IPSet | None = None
    in_members = False
    for n, raw in enumerate(text.splitlines()):
        s = raw.strip()
        if not s:
            in_members = False
            continue
        if s.startswith("Name: "):
            cur = IPSet(s[6:].strip())
            out[cur.name] = cur
            in_members = False
        elif s.startswith("create "):  # ipset save
            parts = s.split()
            cur = IPSet(parts[1], parts[2] if len(parts) > 2 else "")
            out[cur.name] = cur
        elif s.startswith("add ") and len(s.split()) >= 3:
            parts = s.split()
            out.setdefault(parts[1], IPSet(parts[1])).members.append(parts[2])
        elif cur is not None and s.startswith("Type: "):
            cur.type = s[6:].strip()
        elif cur is not None and s == "Members:":
            in_members = True
        elif cur is not None and in_members:
            cur.members.append(s.split()[0])
        elif cur is not None and re.match(r"^(Revision|Header|Size in memory|References|Number of entries):", s):
            continue
        else:
            raise InputError(f"not `ipset list` output: unexpected {s[:80]!r}", source=source, line=n + 1,
                             hint="give the output of `ipset list`")
    return out


def parse_ip_addr(text: str | None, source: str) -> list[str]:
    """Addresses on kube-ipvs0 from `ip addr show kube-ipvs0` (or `ip -br addr`, or a full `ip addr`)."""
    if not text:
        return []
    addrs: list[str] = []
    has_headers = bool(re.search(r"(?m)^\d+: \S+:", text))
    in_link = not has_headers
    for n, raw in enumerate(text.splitlines()):
        if not raw.strip():
            continue
        m = re.match(r"^\d+: ([^:@\s]+)(?:@\S+)?:", raw)
        if m:
            in_link = m.group(1) == "kube-ipvs0"
            continue
        toks = raw.split()
        if not raw[0].isspace() and len(toks) >= 2 and not toks[0].startswith(("inet", "link/")):
            if toks[0] == "kube-ipvs0":  # ip -br addr
                addrs += [t.split("/")[0] for t in toks[2:]]
            continue
        if not in_link:
            continue
        if toks[0] in ("inet", "inet6") and len(toks) >= 2:
            addrs.append(toks[1].split("/")[0])
        elif toks[0].startswith("link/") or toks[0] in ("valid_lft", "altname"):
            continue
        else:
            raise InputError(f"not `ip addr show` output: unexpected {raw.strip()[:80]!r}", source=source,
                             line=n + 1, hint="give the output of `ip addr show kube-ipvs0`")
    if has_headers and not addrs and "kube-ipvs0" not in text:
        raise InputError("no kube-ipvs0 link in this `ip addr` output", source=source,
                         hint="kube-proxy in IPVS mode binds every service address to the dummy link kube-ipvs0")
    return addrs


def ipset_member(ip: str, proto: str, port: int) -> str:
    return f"{ip},{proto.lower()}:{port}"


def _classify(v: _VS, sets: dict[str, IPSet] | None) -> str:
    if sets is None or v.protocol == "FWM":
        return "ClusterIP"
    prefix = "KUBE-6-" if v.ipv6 else "KUBE-"

    def has(name: str) -> bool:
        st = sets.get(prefix + name)
        if st is None:
            return False
        mem = ipset_member(v.address, v.protocol, v.port)
        return mem in st.members or any(m.lower() == mem for m in st.members)

    if has("CLUSTER-IP"):
        return "ClusterIP"
    if has("LOAD-BALANCER") or has("LOAD-BALANCER-LOCAL") or has("LOAD-BALANCER-FW"):
        return "LoadBalancer"
    if has("EXTERNAL-IP") or has("EXTERNAL-IP-LOCAL"):
        return "ExternalIP"
    p = v.protocol
    for name in (f"NODE-PORT-{p}", f"NODE-PORT-LOCAL-{p}"):
        st = sets.get(prefix + name) or sets.get(prefix + name + "-HASH")
        if st is not None and any(m in (str(v.port), f"{p.lower()}:{v.port}") or m.endswith(f",{p.lower()}:{v.port}")
                                  for m in st.members):
            return "NodePort"
    return "ClusterIP"


def _entry(v: _VS, sets: dict[str, IPSet] | None, bound: set[str] | None) -> ServiceEntry:
    glue: list[str] = []
    notes = list(v.notes) + _shares(v)
    if v.sched_flags:
        notes.append("scheduler flags: " + ", ".join(v.sched_flags))
    other = set(v.forwards)  # (in C: a whole table is 100,000s of real servers, all Masq from kube-proxy)
    other.discard("Masq")
    other.discard("")
    forwards = sorted(other)
    if forwards:
        notes.append("forwarding " + "/".join(forwards) + " (kube-proxy uses Masq): real servers outside "
                     "kube-proxy's control?")
    if v.protocol == "FWM":
        notes.append(f"firewall-mark service {v.fwmark}: matches packets marked {v.fwmark} by iptables, not an "
                     "address; kube-proxy does not create these")
    kind = _classify(v, sets)
    known = sets is not None and _in_a_set(v, sets)
    if (sets is None and bound is not None and v.protocol != "FWM" and v.address not in bound
            and 30000 <= v.port <= 32767):
        kind = "NodePort"
        notes.append("taken for a NodePort: its address is not on kube-ipvs0 and the port is in the default "
                     "NodePort range 30000-32767 (give `ipset list` to be sure)")
    elif not known and v.protocol != "FWM":
        notes.append(KIND_UNKNOWN_NOTE)
    # a firewall-mark service has no address or protocol of its own: address "fwmark N", protocol "FWM"
    entry = ServiceEntry(name=None, protocol=v.protocol,
                         address=v.address if v.protocol != "FWM" else f"fwmark {v.fwmark}", port=v.port, kind=kind,
                         backends=v.reals, affinity_seconds=v.persistent, scheduler=v.scheduler,
                         path=[f"IPVS {v.protocol} {'[' + v.address + ']' if v.ipv6 else v.address}:{v.port}"
                               if v.protocol != "FWM" else f"IPVS FWM {v.fwmark}"])
    if not v.reals:
        entry.no_endpoints = True
        notes.append("virtual server without real servers: connections to it fail (no endpoints)")
    elif all(b.draining for b in v.reals):
        entry.no_endpoints = True
        notes.append("every real server has weight 0: new connections fail until one is ready")
    if v.persistent is not None:
        notes.append(f"persistent {v.persistent}: a client keeps its real server for {v.persistent}s "
                     "(sessionAffinity ClientIP)")
    if v.protocol != "FWM" and kind != "NodePort":
        if bound is not None and v.address not in bound:
            glue.append(GLUE_VIP_NOT_BOUND)
            notes.append(f"{v.address} {NOTE_NOT_BOUND}: the node does not accept packets for it, so IPVS never "
                         "sees them")
        if sets is not None and kind == "ClusterIP":
            prefix = "KUBE-6-" if v.ipv6 else "KUBE-"
            st = sets.get(prefix + "CLUSTER-IP")
            mem = ipset_member(v.address, v.protocol, v.port)
            if st is None or mem not in st.members:
                glue.append(GLUE_NOT_IN_IPSET)
                notes.append(f"{mem} {NOTE_NOT_IN_IPSET}: kube-proxy's iptables rules do not masquerade or "
                             "accept its traffic")
    entry.notes = notes
    entry.kind_known = known or v.protocol == "FWM"
    entry.glue = glue
    return entry


KIND_UNKNOWN_NOTE = ("kind not known (no `ipset list`, no cluster data): a virtual server address is consistent "
                     "with a ClusterIP, an externalIP or a load-balancer IP (bound to kube-ipvs0), or a node address "
                     "taking a NodePort")


def _in_a_set(v: _VS, sets: dict[str, IPSet]) -> bool:
    """Whether kube-proxy's ipsets name this virtual server (then `_classify` is certain, not a default)."""
    prefix = "KUBE-6-" if v.ipv6 else "KUBE-"
    mem = ipset_member(v.address, v.protocol, v.port)
    for name, st in sets.items():
        if not name.startswith(prefix):
            continue
        if "NODE-PORT" in name:
            p = v.protocol
            if any(m in (str(v.port), f"{p.lower()}:{v.port}") or m.endswith(f",{p.lower()}:{v.port}")
                   for m in st.members):
                return True
        elif mem in st.members or any(m.lower() == mem for m in st.members):
            return True
    return False


def _check_iptables(text: str, rules: NodeRules) -> None:
    if not re.search(r"--match-set KUBE-(6-)?CLUSTER-IP dst,dst", text):
        rules.notes.append("iptables has no `--match-set KUBE-CLUSTER-IP dst,dst` rule: kube-proxy's IPVS glue "
                           "(KUBE-SERVICES in the nat table) is missing")
    if "KUBE-LOOP-BACK" not in text:
        rules.notes.append("iptables has no KUBE-LOOP-BACK masquerade rule: hairpin traffic will not be "
                           "masqueraded")


# --------------------------------------------------------------------------- ipvsadm -Lnc


_CONN = LazyPattern(r"^(?P<proto>\S+)\s+(?P<exp>\d+:\d\d)\s+(?P<state>\S+)\s+(?P<src>\S+)\s+(?P<vip>\S+)\s+"
                   r"(?P<dst>\S+)(?:\s+(?P<pe>\S+)\s+(?P<pedata>\S+))?\s*$")


def parse_ipvsadm_connections(text: str, source: str) -> list[Flow]:
    """`ipvsadm -Lnc` → one Flow per connection (persistence templates, state NONE, are left out)."""
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        return []
    if lines[first].strip() != "IPVS connection entries":
        raise InputError("not `ipvsadm -Lnc` output: the `IPVS connection entries` line is missing",
                         hint="give the output of `ipvsadm -Lnc`", source=source, line=first + 1)
    i = first + 1
    if i < len(lines) and lines[i].split()[:2] == ["pro", "expire"]:
        i += 1
    flows: list[Flow] = []
    for n in range(i, len(lines)):
        raw = lines[n]
        if not raw.strip():
            continue
        m = _CONN.match(raw.strip())
        if not m:
            raise InputError(f"not an ipvsadm connection line: {raw.strip()[:80]!r}", source=source, line=n + 1,
                             hint="give the output of `ipvsadm -Lnc`")
        src = _need_numeric(m["src"], source, n + 1)
        vip = _need_numeric(m["vip"], source, n + 1)
        dst = _need_numeric(m["dst"], source, n + 1)
        if m["state"] == "NONE":
            continue
        flows.append(Flow(protocol=m["proto"].upper(), src=src[0], sport=src[1], dst=vip[0], dport=vip[1],
                          backend_ip=dst[0], backend_port=dst[1], state=m["state"],
                          assured=m["state"] == "ESTABLISHED"))
    return flows

"""One Service from a big dump file, streamed: a bytes-level pre-filter in front of the parsers.

Reading a 240 MB iptables-save whole to answer about ten rules costs seconds and half a gigabyte. Here the file
is read in fixed-size chunks (memory stays flat in the dump's size) and searched with `bytes.find` for the
Service's own needles (its name as kube-proxy writes it in comments, its addresses, its chain-name hashes); only
the lines found, and the chains they jump to, are kept. The kept text is a small, well-formed dump of the same
format, and the ordinary parsers (with their own `only=` cut) read it: this module never interprets a rule.

It steps aside (returns None: the file is read whole, as before) whenever it cannot be sure the cut is
faithful: a small file, no needle to search by, input that does not start like a machine-written dump (pasted
text, CRLF, a listing format), an iptables dump holding IPVS glue, a table without COMMIT, a block reaching past
a chunk it could not follow. A parse error in the cut text is re-read whole too, so errors cite real lines.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable

from svcctl.lazyre import LazyPattern

STREAM_MIN_BYTES = 1 << 20  # smaller files are read whole: it costs less than the passes
CHUNK = 4 << 20
MAPPED = True  # search a mapped window of the file in place (off: read chunks into a buffer)
MAX_PASSES = 5
_HEAD = 65536  # bytes checked for the dump's shape before streaming

# chains every Service's rules pass through, whose rules are all Services': keep the matching lines only
_SHARED_CHAINS = frozenset({b"KUBE-SERVICES", b"KUBE-NODEPORTS", b"KUBE-EXTERNAL-SERVICES", b"KUBE-PROXY-FIREWALL",
                            b"KUBE-FORWARD", b"KUBE-POSTROUTING", b"KUBE-PROXY-CANARY", b"KUBE-FIREWALL"})
_BUILTIN_TARGETS = frozenset({b"ACCEPT", b"DROP", b"REJECT", b"RETURN", b"DNAT", b"SNAT", b"MASQUERADE", b"MARK",
                              b"LOG", b"CONNMARK", b"NOTRACK", b"CT", b"REDIRECT", b"QUEUE", b"NFQUEUE"})
_JUMP = LazyPattern(rb" -[jg] (\S+)")
# chains the parsers recognise by name (their rules only set a mark): not fetched
_KNOWN_BY_NAME = frozenset({b"KUBE-MARK-MASQ", b"KUBE-MARK-DROP"})
_COMMENT_NAME = LazyPattern(rb'--comment "([^"/ ]+/[^": ]+):')
_JUMP_TO_SERVICE = LazyPattern(rb" -[jg] KUBE-(?:SVC|SVL|EXT|FW|XLB)-|has no endpoints")


class _GiveUp(Exception):
    """The cut could not be made faithfully: read the file whole."""


def read_scoped(path: str, key: str, only: set[str]) -> tuple[str, str] | None:
    """(cut text, note) for dump `key` at `path` restricted to `only`, or None to read the file whole."""
    if key not in ("iptables", "ip6tables", "ipvs", "nftables"):
        return None
    try:
        size = os.path.getsize(path)
        if size < STREAM_MIN_BYTES or not os.path.isfile(path):
            return None
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
        if b"\r" in head or b"\x00" in head:
            return None
        if key == "ipvs":
            text = _ipvs(path, head, only)
        elif key == "nftables":
            text = _nft(path, head, only)
        else:
            text = _iptables(path, head, only)
    except (_GiveUp, OSError):
        return None
    if text is None:
        return None
    return text, (f"only the rules of the Service asked about were read, streamed from the {size / 1e6:.0f} MB "
                  "file: the counts are those rules', the whole dump was not counted")


# --------------------------------------------------------------------------- the scan


Buf = bytearray | mmap.mmap  # a chunk read into a buffer, or a mapped window of the file
Block = Callable[[Buf, int, int, int], tuple[int, int, bool]]


Search = tuple[bytes, Block, dict[int, bytes]]


def _scan(path: str, searches: list[Search], on_partial: Callable[[bytes, int], None] | None = None,
          heads: dict[int, bytes] | None = None, stop: int | None = None,
          discover: Callable[[list[bytes]], list[Search]] | None = None, start: int = 0) -> int:
    """One pass over the file: every line holding a needle, widened by its `block`, into its dict by file offset.

    `block(buf, line_start, line_end)` → (start, end, whole): the span to keep around one hit. A span cut by a
    chunk's edge (`whole` False there) goes to `on_partial` with the hit's line and its file offset, or gives
    the cut up. A needle
    starting with a newline matches at a line's start (the line is the one after it). `heads` collects the
    lines starting with `*` (iptables-save's table headers) with a memchr-speed search for that one byte.
    `stop`: scan only the file's first `stop` bytes; `start`: from this offset (a line's start) on. `discover(new blocks)` may add searches as hits come in;
    they are searched from the next chunk on, and the offset where the first was added is returned (the part
    before it is for the caller to scan again for them; the file's size when nothing was added).

    The file is searched through a window of it mapped in turn (`MAPPED`: no copy of its bytes into a buffer,
    ≈ 20 ms against 35 ms for a 47 MB dump; the window, a chunk's size, is all of it resident at once), or
    read in chunks into one buffer where it cannot be mapped."""
    searches = list({s[0]: s for s in searches if s[0]}.values())
    if MAPPED:
        try:
            return _scan_mapped(path, searches, on_partial, heads, stop, discover, start)
        except (OSError, ValueError):
            pass  # not mappable here: read it in chunks
    added_at: int | None = None
    buf = bytearray(CHUNK)  # one buffer for the whole pass: no allocation (and page faults) per chunk
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        base = start  # file offset of buf[0]
        held = 0  # bytes of a partial line carried at buf's start
        while True:
            room = len(buf) - held
            if stop is not None:
                room = max(0, min(room, stop - base - held))
            got = fh.readinto(view[held:held + room]) if room else 0
            filled = held + (got or 0)
            if filled == 0:
                break
            last = not got
            end = filled if last else buf.rfind(b"\n", 0, filled) + 1
            if end == 0:  # one line longer than the buffer: grow it and read on
                view.release()
                buf.extend(bytes(len(buf)))
                view = memoryview(buf)
                held = filled
                continue
            found = _hits(buf, 0, end, base, last, searches, heads, on_partial)
            held = filled - end
            buf[:held] = buf[end:filled]
            base += end
            if discover is not None and found:
                added_at = _discover(discover, found, searches, base, added_at)
            if last:
                break
        view.release()
    return base if added_at is None else added_at


def _scan_mapped(path: str, searches: list[Search], on_partial: Callable[[bytes, int], None] | None,
                 heads: dict[int, bytes] | None, stop: int | None,
                 discover: Callable[[list[bytes]], list[Search]] | None, start: int) -> int:
    """`_scan` through a mapped window: the bytes of [base, the window's last full line) searched in place."""
    added_at: int | None = None
    gran = mmap.ALLOCATIONGRANULARITY
    window = max(gran, -(-CHUNK // gran) * gran)
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        limit = size if stop is None else min(size, stop)
        base = start  # file offset of the next byte to search
        while base < limit:
            at = base - base % gran  # the window's file offset (mapped at the granularity)
            length = min(window, size - at)
            mm = mmap.mmap(fh.fileno(), length, access=mmap.ACCESS_READ, offset=at)
            try:
                filled = min(length, limit - at)
                last = at + filled >= limit
                lo = base - at
                end = filled if last else mm.rfind(b"\n", lo, filled) + 1
                if end <= lo:  # one line longer than the window: widen it and map again
                    window *= 2
                    continue
                found = _hits(mm, lo, end, at, last, searches, heads, on_partial)
            finally:
                mm.close()
            base = at + end
            if discover is not None and found:
                added_at = _discover(discover, found, searches, base, added_at)
            if last:
                break
    return base if added_at is None else added_at


def _discover(discover: Callable[[list[bytes]], list[Search]], found: list[bytes], searches: list[Search],
              base: int, added_at: int | None) -> int | None:
    """Add the searches the new blocks ask for (in place); where the first were added, which the pass ends at."""
    more = [x for x in discover(found) if x[0] not in {y[0] for y in searches}]
    if more:
        searches += more
        added_at = base if added_at is None else added_at
    return added_at


def _hits(buf: Buf, lo: int, end: int, base: int, last: bool, searches: list[Search],
          heads: dict[int, bytes] | None, on_partial: Callable[[bytes, int], None] | None) -> list[bytes]:
    """The blocks around the needles' hits in buf[lo:end) (buf[0] at file offset `base`) into their dicts; the
    new ones returned."""
    if heads is not None:
        pos = buf.find(b"*", lo, end)
        while pos >= 0:
            if (pos == 0 and base == 0) or (pos > 0 and buf[pos - 1] == 10):
                le = buf.find(b"\n", pos, end)
                heads[base + pos] = bytes(buf[pos:le if le >= 0 else end]).strip()
            pos = buf.find(b"*", pos + 1, end)
    found: list[bytes] = []
    for nd, block, keep in searches:
        skip = 1 if nd.startswith(b"\n") else 0
        pos = buf.find(nd, lo, end)
        while pos >= 0:
            pos += skip
            ls = buf.rfind(b"\n", 0, pos) + 1 if not skip else pos
            le = buf.find(b"\n", pos, end)
            le = end if le < 0 else le + 1
            s, e, whole = block(buf, ls, le, end)
            if not whole and ((s == 0 and base > 0) or (e >= end and not last)):
                if on_partial is None:
                    raise _GiveUp
                on_partial(bytes(buf[ls:le]), base + ls)
            prev = keep.get(base + s)
            if prev is None or len(prev) < e - s:
                keep[base + s] = bytes(buf[s:e])
                found.append(keep[base + s])
            pos = buf.find(nd, max(e - skip, pos + 1), end)
    return found


def _line_block(buf: Buf, ls: int, le: int, end: int) -> tuple[int, int, bool]:
    return ls, le, True


# --------------------------------------------------------------------------- iptables-save


def _iptables_needles(only: set[str]) -> list[bytes] | None:
    """What to search for: kube-proxy writes the Service's name into the comment of every entry rule
    (KUBE-SERVICES, KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES…), so with a name the addresses add nothing; without
    one, the addresses (`-d VIP/32`) or the NodePort (`--dport N`). The chains behind are fetched by name."""
    names = [o for o in only if "/" in o]
    if names:
        from svcctl.dataplane.hashes import port_proto_hash, spn_variants

        out_named: list[bytes] = []
        for o in names:
            out_named.append(b'--comment "' + o.encode())
            ns, rest = o.split("/", 1)
            svc, _, port = rest.partition(":")
            if port:  # a port named: its chains' hash finds them where comments were left out
                out_named += [port_proto_hash(spn, proto).encode() for spn in spn_variants(ns, svc, port)
                              for proto in ("tcp", "udp", "sctp")]
        return out_named
    out: list[bytes] = []
    for o in only:
        if o.startswith(":"):
            if not o[1:].isdigit():
                return None
            out.append(b"--dport " + o[1:].encode() + b" ")
            continue
        host = o
        if host.startswith("["):
            host = host[1:].partition("]")[0]
        elif host.count(":") == 1:
            host = host.partition(":")[0]
        if len(host) < 3:
            return None
        out.append(host.encode() + b"/")
    return out or None


def _rule_chain(line: bytes) -> bytes | None:
    if line.startswith(b"["):
        close = line.find(b"] ")
        line = line[close + 2:] if close >= 0 else line
    if not line.startswith(b"-A "):
        return None
    end = line.find(b" ", 3)
    return line[3:end if end >= 0 else len(line)].rstrip(b"\n")


def _chain_block(buf: Buf, ls: int, le: int, end: int) -> tuple[int, int, bool]:
    """A per-Service chain's rules are contiguous in iptables-save: keep them all around the hit."""
    chain = _rule_chain(bytes(buf[ls:le]))
    if chain is None or chain in _SHARED_CHAINS:
        return ls, le, True
    needle = b"-A " + chain + b" "
    s, e = ls, le
    while s > 0:
        p = buf.rfind(b"\n", 0, s - 1) + 1
        if not _starts_rule(buf, p, needle):
            break
        s = p
    while e < end and _starts_rule(buf, e, needle):
        n = buf.find(b"\n", e, end)
        e = end if n < 0 else n + 1
    return s, e, s > 0 and e < end


def _at(buf: bytes | Buf, pos: int, prefix: bytes) -> bool:
    """`buf.startswith(prefix, pos)`, for a mapped window too (mmap has no startswith)."""
    return buf[pos:pos + len(prefix)] == prefix


def _starts_rule(buf: bytes | Buf, pos: int, needle: bytes) -> bool:
    if _at(buf, pos, needle):
        return True
    if _at(buf, pos, b"["):
        close = buf.find(b"] ", pos, pos + 48)
        return close >= 0 and _at(buf, close + 2, needle)
    return False


def _iptables(path: str, head: bytes, only: set[str]) -> str | None:
    first = head.split(b"\n", 1)[0]
    if not (first.startswith(b"# Generated by ip") or first.startswith(b"*")):
        return None  # pasted, a listing (`iptables -L`), or something else: the parsers judge it whole
    needles = _iptables_needles(only)
    if needles is None:
        return None
    heads: dict[int, bytes] = {}
    keep: dict[int, bytes] = {}
    partial: set[bytes] = set()

    def cut_chain(line: bytes, _off: int) -> None:  # a chain's block crossed a chunk edge: fetch it by name
        chain = _rule_chain(line)
        if chain is not None:
            partial.add(chain)

    by_name = any("/" in o for o in only)
    named: set[bytes] = set()

    def names_in(blocks: list[bytes]) -> list[Search]:
        """Asked by address only: the entry rules' comments name the Service; its rules are found by that."""
        out: list[Search] = []
        for b in blocks:
            for m in _COMMENT_NAME.finditer(b):
                if m.group(1) not in named:
                    named.add(m.group(1))
                    out.append((b'--comment "' + m.group(1) + b":", _chain_block, keep))
        return out

    searches: list[Search] = [(n, _chain_block, keep) for n in needles]
    upto = _scan(path, searches, cut_chain, heads, discover=None if by_name else names_in)
    late: list[Search] = [(b'--comment "' + n + b":", _chain_block, keep) for n in sorted(named)]
    if late and upto:
        _scan(path, late, cut_chain, stop=upto)  # the part read before the names were known
    if not any(_JUMP_TO_SERVICE.search(v) for v in keep.values()):
        # no rule of this Service leads anywhere: not programmed, or another mode's (IPVS) glue. A confident
        # answer about absence needs the whole dump, which the parsers read as before.
        return None
    spans = _table_spans(path, heads)
    nat = next(((a, b) for a, b, name in spans if name == b"*nat"), None)
    if nat is not None:
        entries = [off for off, v in keep.items() if nat[0] < off < nat[1] and _rule_chain(v) == b"KUBE-SERVICES"]
        if entries:
            # KUBE-SERVICES ends with its jump to KUBE-NODEPORTS: search on from this Service's entry only
            found = _find_forward(path, min(entries), nat[1], b"-j KUBE-NODEPORTS", b"-A KUBE-SERVICES ")
            if found is not None:
                keep[found[0]] = found[1]
    fetched: set[bytes] = set()
    for _ in range(MAX_PASSES):
        have = {c for v in keep.values() for c in (_rule_chain(ln) for ln in v.splitlines()) if c}
        want = ({t for v in keep.values() for t in _JUMP.findall(v)} - _BUILTIN_TARGETS - _SHARED_CHAINS - fetched
                - _KNOWN_BY_NAME)
        # a chain found by a hit was kept whole (its block); chains only jumped to are fetched by name
        want -= {c for c in have if c not in _SHARED_CHAINS and c not in partial}
        want |= partial - fetched
        if not want:
            break
        fetched |= want
        fetch: list[Search] = [(b"-A " + t + b" ", _line_block, keep) for t in sorted(want)]
        _scan(path, fetch)
    else:
        return None
    return _assemble_tables(head, spans, keep)


def _table_spans(path: str, heads: dict[int, bytes]) -> list[tuple[int, int, bytes]]:
    """(start, end, `*name`) of each table from its header's offset; each table must end in COMMIT (checked by
    reading the few bytes before the next header, and the file's tail): a truncated dump is read whole."""
    size = os.path.getsize(path)
    offs = sorted(heads)
    spans: list[tuple[int, int, bytes]] = []
    with open(path, "rb") as fh:
        for i, off in enumerate(offs):
            end = offs[i + 1] if i + 1 < len(offs) else size
            fh.seek(max(off, end - 4096))
            tail = fh.read(end - max(off, end - 4096))
            lines = [ln.strip() for ln in tail.split(b"\n")]
            meaningful = [ln for ln in lines if ln and not ln.startswith(b"#")]
            if not meaningful or meaningful[-1] != b"COMMIT":
                raise _GiveUp  # truncated table: the whole parse says where
            spans.append((off, end, heads[off]))
    return spans


def _find_forward(path: str, start: int, end: int, needle: bytes, prefix: bytes) -> tuple[int, bytes] | None:
    """The first line in [start, end) holding `needle` and starting with `prefix`, reading on from `start`."""
    with open(path, "rb") as fh:
        fh.seek(start)
        base, carry = start, b""
        while base < end:
            data = fh.read(min(CHUNK, end - base - len(carry)))
            if not data:
                return None
            buf = carry + data
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                carry = buf
                continue
            carry, buf = buf[cut:], buf[:cut]
            pos = buf.find(needle)
            while pos >= 0:
                ls = buf.rfind(b"\n", 0, pos) + 1
                le = buf.find(b"\n", pos) + 1
                if _starts_rule(buf, ls, prefix):
                    return base + ls, buf[ls:le]
                pos = buf.find(needle, le)
            base += len(buf)
    return None


def _assemble_tables(head: bytes, spans: list[tuple[int, int, bytes]], keep: dict[int, bytes]) -> str | None:
    """The kept rules inside their tables' `*name` … `COMMIT` lines, in file order."""
    out: list[bytes] = []
    for line in head.split(b"\n")[:3]:
        if line.startswith(b"#"):
            out.append(line + b"\n")
    items = sorted(keep.items())
    for start, end, name in spans:
        if name not in (b"*nat", b"*filter"):
            continue
        out.append(name + b"\n")
        seen_end = start
        for off, block in items:
            if start < off < end and off >= seen_end:
                out.append(block)
                seen_end = off + len(block)
        out.append(b"COMMIT\n")
    return b"".join(out).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- ipvsadm -Ln


def _ipvs_needles(only: set[str]) -> list[bytes] | None:
    out: list[bytes] = []
    for o in only:
        if "/" in o:
            continue  # IPVS entries carry no names
        if o.startswith(":") and o[1:].isdigit():
            out.append(o.encode() + b" ")
        elif o.startswith("[") or o.count(":") == 1:
            out.append(o.encode() + (b"" if o.endswith(":") else b" "))
        elif o:
            out.append((f"[{o}]:" if ":" in o else f"{o}:").encode())
    return out or None


def _vs_block(buf: Buf, ls: int, le: int, end: int) -> tuple[int, int, bool]:
    """A virtual server line and its `  -> ` real server lines."""
    e = le
    while e < end and _at(buf, e, b"  -> "):
        n = buf.find(b"\n", e, end)
        e = end if n < 0 else n + 1
    return ls, e, e < end


def _ipvs(path: str, head: bytes, only: set[str]) -> str | None:
    if not head.startswith(b"IP Virtual Server version"):
        return None  # `ipvsadm -Sn`, --stats/--rate, pasted: read whole
    lines = head.split(b"\n", 3)
    if len(lines) < 4 or not lines[1].startswith(b"Prot ") or b"RemoteAddress" not in lines[2]:
        return None
    if b"Conns" in lines[1] or b"CPS" in lines[1]:
        return None
    needles = _ipvs_needles(only)
    if needles is None:
        return None
    keep: dict[int, bytes] = {}
    vs: list[Search] = [(n, _vs_block, keep) for n in needles]
    _scan(path, vs)
    out = [ln + b"\n" for ln in lines[:3]]
    for _off, block in sorted(keep.items()):
        if block.startswith((b"TCP ", b"UDP ", b"SCTP ", b"FWM ")):
            out.append(block)
    return b"".join(out).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- nft list table ip kube-proxy
#
# nft prints a table's sets and maps first, then its chains in the order they were made: kube-proxy's shared
# chains (filter-*, nat-*, services, …) come before the first per-Service chain. That head (the "prelude", a few
# percent of the file: the big maps' elements) is read and cut here; past it only the Service's own chains (found
# by `-ns/svc/` in their names), any chain a kept rule jumps to, and any base chain are kept. Base chains are
# found by `;` (nft prints it only in a base chain's `type … hook … priority …; policy …;` line), a memchr-speed
# search that also finds any other table's base chains: then (`nft list ruleset`), as with `nft -a` handles or
# a prelude over PRELUDE_MAX, the file is read whole.

PRELUDE_MAX = 48 << 20
_NFT_HEAD = LazyPattern(rb"table (?:ip|ip6) kube-proxy \{\n")
_NFT_FIRST_SVC_CHAIN = LazyPattern(rb"\n\tchain (?:service|external|local|endpoint|firewall)-[A-Z2-7]{8}-")
_NFT_PER_SERVICE = LazyPattern(rb"(?:service|external|local|endpoint|firewall|affinity)-[A-Z2-7]{8}-")
_NFT_BLOCK = LazyPattern(rb"\t(chain|set|map) (\S+) \{\n")
_NFT_TARGET = LazyPattern(rb"(?:jump|goto) ([^\s,;}]+)")
_NFT_VERDICT_NAME = LazyPattern(rb"(?:goto|jump) (?:service|external|local|firewall|endpoint)-[A-Z2-7]{8}-"
                               rb"([^/\s,}]+)/([^/\s,}]+)/")
_NFT_FILTERED = frozenset({b"cluster-ips", b"service-ips", b"service-nodeports", b"no-endpoint-services",
                           b"no-endpoint-nodeports", b"firewall-ips", b"hairpin-connections"})
_ELEMS = b"elements = {"


class _NftAsk:
    """What one Service is searched by in an nft listing; names found from addresses (and back) as it goes."""

    def __init__(self, only: set[str]) -> None:
        self.names: set[bytes] = set()
        self.addrs: set[bytes] = set()
        self.ports: set[bytes] = set()
        for o in only:
            if "/" in o:
                self.names.add(o.split(":", 1)[0].encode())
                continue
            if o.startswith(":") and o[1:].isdigit():
                self.ports.add(o[1:].encode())
                continue
            host = o
            if host.startswith("["):
                host, _, rest = host[1:].partition("]")
                port = rest.lstrip(":")
            elif host.count(":") == 1:
                host, _, port = host.partition(":")
            else:
                port = ""
            if port.isdigit():
                self.ports.add(port.encode())  # as the parser's own cut: a port given also selects NodePorts
            if len(host) < 3:
                raise _GiveUp
            self.addrs.add(host.encode())

    def name_needles(self) -> list[bytes]:
        return [b"-" + n + b"/" for n in sorted(self.names)]

    def elements(self, name: bytes, block: bytes) -> list[bytes] | None:
        """The elements of set/map `block` that may be this Service's (a superset of the parser's own choice,
        which cuts them exactly), or None when the block has no elements."""
        head = block.find(_ELEMS)
        if head < 0:
            return None
        close = block.find(b"}", head)
        if close < 0:
            raise _GiveUp
        inner = block[head + len(_ELEMS):close]
        if b'"' in inner and inner.count(b'"') % 2:
            raise _GiveUp
        found: dict[int, bytes] = {}

        def take(nd: bytes, exact: Callable[[bytes, int, bytes], bool] | None = None) -> None:
            p = inner.find(nd)
            while p >= 0:
                s = inner.rfind(b",", 0, p) + 1
                e = inner.find(b",", p)
                e = len(inner) if e < 0 else e
                if exact is None or exact(inner, p, nd):
                    found.setdefault(s, inner[s:e].strip())
                p = inner.find(nd, max(e, p + 1))

        for a in self.addrs:
            take(a, _bounded)
        for n in self.names:
            take(b"-" + n + b"/")
            take(b'"' + n + b'"')
            take(b'"' + n + b":")
        if b"type inet_proto" in block[:head]:  # (proto . port) keys: NodePorts
            for port in self.ports:
                for proto in (b"tcp", b"udp", b"sctp"):
                    take(proto + b" . " + port, _leads_element)
        return [found[k] for k in sorted(found)]

    def learn(self, elems: list[bytes]) -> bool:
        """Names from the chains the elements jump to; addresses (an element's first word) from the verdict
        elements that name the Service, by chain or comment."""
        grown = False
        for e in elems:
            for m in _NFT_VERDICT_NAME.finditer(e):
                n = m.group(1) + b"/" + m.group(2)
                if n not in self.names:
                    self.names.add(n)
                    grown = True
            if b" : " in e and any(b"-" + n + b"/" in e or b'"' + n + b'"' in e or b'"' + n + b":" in e
                                   for n in self.names):
                a = e.split(b" ", 1)[0]
                if a[:1].isalnum() and a not in self.addrs and a not in (b"tcp", b"udp", b"sctp"):
                    self.addrs.add(a)
                    grown = True
        return grown


def _bounded(buf: bytes, p: int, nd: bytes) -> bool:
    """An address at p, not a part of a longer one."""
    before = buf[p - 1:p] if p else b""
    after = buf[p + len(nd):p + len(nd) + 1]
    return not (before.isalnum() or before in (b".", b":")) and not (after.isalnum() or after in (b".", b":"))


def _leads_element(buf: bytes, p: int, nd: bytes) -> bool:
    """`proto . port` as an element's key (not a longer port)."""
    s = buf.rfind(b",", 0, p) + 1
    return not buf[s:p].strip() and not buf[p + len(nd):p + len(nd) + 1].isdigit()


def _nft_blocks(pre: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """(start, end, kind, name) of each block of the prelude; one-tab lines that are no block: kind b"" ."""
    out: list[tuple[int, int, bytes, bytes]] = []
    pos = pre.find(b"\n") + 1
    while pos < len(pre):
        le = pre.find(b"\n", pos)
        if le < 0:
            raise _GiveUp
        if le == pos:
            pos += 1
            continue
        m = _NFT_BLOCK.match(pre, pos)
        if m is not None:
            end = pre.find(b"\n\t}\n", le - 1)
            if end < 0:
                raise _GiveUp
            out.append((pos, end + 4, m.group(1), m.group(2)))
            pos = end + 4
            continue
        if not pre.startswith(b"\t", pos) or pre.startswith(b"\t\t", pos) or pre.startswith(b"\t}", pos):
            raise _GiveUp  # something not laid out as `nft list` prints a table
        if pre[le - 1:le] == b"{":
            raise _GiveUp  # a flowtable, counter, ct helper … block: read whole
        out.append((pos, le + 1, b"", b""))
        pos = le + 1
    return out


def _nft_block(buf: Buf, ls: int, le: int, end: int) -> tuple[int, int, bool]:
    """The `\\tchain NAME {` … `\\t}` block around a hit."""
    s = ls
    while _at(buf, s, b"\t\t") or _at(buf, s, b"\n"):
        if s == 0:
            return 0, le, False
        s = buf.rfind(b"\n", 0, s - 1) + 1
    if not _at(buf, s, b"\t") or _at(buf, s, b"\t}"):
        raise _GiveUp
    e = buf.find(b"\n\t}\n", max(s, ls - 1), end)
    if e < 0:
        return s, end, False
    return s, e + 4, True


def _nft(path: str, head: bytes, only: set[str]) -> str | None:
    if not _NFT_HEAD.match(head) or b"# handle " in head:
        return None
    ask = _NftAsk(only)
    pre, cut_at = _nft_prelude(path)
    blocks = _nft_blocks(pre)
    for s, e, _kind, name in blocks:
        if name == b"nodeport-ips":
            elems = ask.elements(name, pre[s:e]) or []
            if any(_bounded(el, el.find(a), a) for a in ask.addrs for el in elems if a in el):
                return None  # a node address takes every NodePort: every Service may be asked about
    sets = [(s, e, name) for s, e, kind, name in blocks if kind in (b"set", b"map") and name in _NFT_FILTERED]
    chosen: dict[int, list[bytes] | None] = {}
    for _ in range(4):  # addresses -> the names they jump to -> those names' other addresses
        chosen = {s: ask.elements(name, pre[s:e]) for s, e, name in sets}
        if not any([ask.learn(v) for v in chosen.values() if v]):
            break
    needles = ask.name_needles()
    out: list[bytes] = [pre[:pre.find(b"\n") + 1]]
    have: set[bytes] = set()
    for s, e, kind, name in blocks:
        block = pre[s:e]
        if kind and _NFT_PER_SERVICE.match(name) and not any(nd in name + b"/" for nd in needles):
            continue  # another Service's chain or set
        if s in chosen:
            block = _cut_elements(block, chosen[s])
        if kind == b"chain":
            have.add(name)
        out.append(block)
    keep: dict[int, bytes] = {}
    if cut_at is not None:
        _nft_scan(path, cut_at, [*needles, b";"], keep)
        bases = [off for off, v in keep.items() if b";" in v]  # base chains past the prelude: this table's?
        if bases and _nft_find(path, cut_at, max(bases), b"\n}\n"):
            return None  # no: another table (`nft list ruleset`), which the whole parse reads too
        for _ in range(MAX_PASSES):
            names = have | {m.group(2) for b in keep.values() if (m := _NFT_BLOCK.match(b))}
            want = {t for b in [*out, *keep.values()] for t in _NFT_TARGET.findall(b)} - names
            if not want:
                break
            before = len(keep)
            _nft_scan(path, cut_at, [b"\tchain " + t + b" {\n" for t in sorted(want)], keep)
            if len(keep) == before:
                break  # jumped to, but no such chain in the file: the parser says so, as for the whole dump
            have |= want
        else:
            return None
        _nft_check_tail(path)
    if not keep and not any(chosen.values()):
        return None  # nothing of this Service here: a confident answer about absence needs the whole dump
    last = 0
    for off in sorted(keep):
        if off >= last:
            out.append(b"\n" + keep[off])
            last = off + len(keep[off])
    out.append(b"}\n")
    return b"".join(out).decode("utf-8", errors="replace")


def _nft_prelude(path: str) -> tuple[bytes, int | None]:
    """The file up to its first per-Service chain (all of it when there is none), and that chain's offset."""
    parts: list[bytes] = []
    size = 0
    with open(path, "rb") as fh:
        while size < PRELUDE_MAX:
            data = fh.read(CHUNK)
            if not data:
                return b"".join(parts), None
            parts.append(data)
            size += len(data)
            joined = b"".join(parts) if len(parts) > 1 else data
            m = _NFT_FIRST_SVC_CHAIN.search(joined, max(0, size - len(data) - 64))
            if m is not None:
                return joined[:m.start() + 1], m.start() + 1
            parts = [joined]
    raise _GiveUp


def _cut_elements(block: bytes, kept: list[bytes] | None) -> bytes:
    """The set/map block with only the `kept` elements (no `elements` line when none is)."""
    if kept is None:
        return block
    head = block.find(_ELEMS)
    close = block.find(b"}", head)
    ls = block.rfind(b"\n", 0, head) + 1
    le = block.find(b"\n", close) + 1
    line = block[ls:head] + _ELEMS + b" " + b",\n\t\t\t     ".join(kept) + b" }\n" if kept else b""
    return block[:ls] + line + block[le:]


def _nft_scan(path: str, start: int, needles: list[bytes], keep: dict[int, bytes]) -> None:
    """One pass from `start`: the chain blocks holding any needle, into `keep` by offset; a block cut by a
    chunk's edge is read again whole from the file."""
    partial: list[int] = []
    _scan(path, [(nd, _nft_block, keep) for nd in needles], lambda _line, off: partial.append(off), start=start)
    for off in partial:
        _nft_reread(path, off, keep)


def _nft_find(path: str, start: int, end: int, needle: bytes) -> bool:
    """Whether `needle` occurs in the file's bytes [start, end)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        carry = b""
        while start < end:
            data = fh.read(min(CHUNK, end - start))
            if not data:
                return False
            if needle in carry + data:
                return True
            carry = data[-len(needle):]
            start += len(data)
    return False


def _nft_reread(path: str, off: int, keep: dict[int, bytes]) -> None:
    """The block around the hit at `off`, read from the file around it (its pieces in `keep` replaced)."""
    window = 1 << 20
    with open(path, "rb") as fh:
        lo = max(0, off - window)
        fh.seek(lo)
        data = bytearray(fh.read(2 * window))
    ls = off - lo
    le = data.find(b"\n", ls)
    s, e, whole = _nft_block(data, ls, len(data) if le < 0 else le + 1, len(data))
    if not whole or (s == 0 and lo > 0):
        raise _GiveUp
    start, end = lo + s, lo + e
    for k in [k for k in keep if start <= k < end]:
        del keep[k]
    keep[start] = bytes(data[s:e])


def _nft_check_tail(path: str) -> None:
    """The table must be closed (its last lines `\t}` and `}`): a truncated listing is read whole."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    lines = [ln for ln in tail.split(b"\n") if ln.strip()]
    if len(lines) < 2 or lines[-1] != b"}" or lines[-2] != b"\t}":
        raise _GiveUp

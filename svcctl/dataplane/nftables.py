"""kube-proxy's nftables mode, read from `nft list table ip kube-proxy` / `nft list ruleset` / `nft -j …`.

The packet is followed the way kube-proxy lays it out (pkg/proxy/nftables/proxier.go): the `services` chain looks
`daddr . l4proto . dport` up in the `service-ips` verdict map (and `proto . dport` in `service-nodeports`), which
sends it to a `service-…` / `external-…` / `local-…` chain; that picks an endpoint with `numgen random mod N`,
either through a verdict map of `endpoint-…` chains (layout A, kube-proxy ≈1.29–1.35) or straight in a
`dnat … to numgen random mod N map { i : ip . port }` (layout B, ≈1.36+). Shares are exact: each map key is 1/N.

Text and JSON are both reduced to one neutral form (tables → chains of rule text, sets/maps with parsed
elements); JSON rule expressions are rendered back into nft's own syntax so one interpreter serves both, and the
two listings of one ruleset give the same `NodeRules`.

The iptables-nft backend (`table ip nat` with KUBE-* chains, `meta random & 2147483647 < …`) is iptables mode:
it is refused with an InputError that says to give `iptables-save` output instead.
"""

from __future__ import annotations

import json
import operator
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from fractions import Fraction
from itertools import repeat
from typing import Any

from svcctl.dataplane.ints import Ints
from svcctl.dataplane.model import EXTERNAL_OR_LB_NOTE, Backend, NodeRules, RuleStats, ServiceEntry, Walk
from svcctl.errors import InputError
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern

__all__ = ["parse_nft", "looks_like_nft", "is_iptables_nft", "spn_from_chain"]

# kube-proxy-shaped fast paths for whole listings: block-at-a-time reading, chains walked from their text
# (tests/dataplane/test_nftables_fast.py holds them equal to the general reader and walk)
FAST = True

_IPTABLES_NFT_HINT = ("this is iptables mode on the nf_tables backend; use --iptables-save with `iptables-save` "
                      "output (iptables-nft-save on older systems)")
# kube-proxy's own iptables chains (kubelet's KUBE-FIREWALL / KUBE-KUBELET-CANARY exist in every mode)
_KUBE_PROXY_IPT = ("KUBE-SERVICES", "KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-", "KUBE-NODEPORTS",
                   "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-PROXY-CANARY")
_BASE_PREFIXES = ("service-", "external-", "local-", "endpoint-", "firewall-")
_MAX_DEPTH = 16


# --------------------------------------------------------------------------- neutral form


@dataclass(slots=True)  # a whole node's maps hold an element per Service port
class _Elem:
    key: tuple[str, ...]
    value: str | None = None  # verdict ("goto x", "drop") or data ("10.0.0.1 . 80")
    comment: str | None = None


@dataclass
class _Set:
    name: str
    is_map: bool = False
    type: str = ""
    flags: list[str] = field(default_factory=list)
    timeout: int | None = None
    elements: list[_Elem] = field(default_factory=list)
    comment: str | None = None


@dataclass(slots=True)  # slots: a whole listing holds a rule per line and a chain per endpoint (a third less memory)
class _Rule:
    text: str  # nft syntax without the trailing comment
    comment: str | None = None
    line: int | None = None


class _Chain:
    """A chain; one the fast reader left as its lines' place in the listing (`lazy`: start, length, first line
    number and rule count packed in one int, `src` the listing) makes its `_Rule`s only when they are asked for:
    a whole node has a chain per endpoint, which the fast walk reads from its text."""

    __slots__ = ("name", "_rules", "hook", "comment", "lazy", "src", "jumps", "reached", "apart")

    def __init__(self, name: str, rules: list[_Rule] | None = None, hook: str | None = None,
                 comment: str | None = None, lazy: int = 0, src: str = "") -> None:
        self.name = name
        self._rules = rules
        self.hook = hook  # "nat prerouting" etc. for base chains
        self.comment = comment
        self.lazy = lazy
        self.src = src
        self.jumps: tuple[str, ...] | None = None  # a fast-walked chain's jump targets, for `_reachable`
        self.reached = False  # `_reachable`'s mark (not a set of every chain's name: 550,000 at 50,000 Services)
        self.apart: range | None = None  # a fast-walked chain's jumps to `_Table.plain` chains, as their indexes

    @property
    def rules(self) -> list[_Rule]:
        if self._rules is None:
            self._rules = []
            if self.lazy:
                start, length, line, _ = _unpack(self.lazy)
                add = _chain_line(self)
                for k, raw in enumerate(self.src[start:start + length].split("\n")[:-1]):
                    add(line + k, raw.strip())
                self.lazy = 0
        return self._rules

    def count(self) -> int:
        """How many rules it holds (without making a lazy chain's rules)."""
        return self.lazy >> 120 if self.lazy else len(self.rules)


def _pack(start: int, length: int, line: int, count: int) -> int:
    return start | length << 40 | line << 80 | count << 120


def _unpack(v: int) -> tuple[int, int, int, int]:
    m = (1 << 40) - 1
    return v & m, v >> 40 & m, v >> 80 & m, v >> 120


@dataclass
class _Table:
    family: str
    name: str
    chains: dict[str, _Chain] = field(default_factory=dict)
    sets: dict[str, _Set] = field(default_factory=dict)
    # the fast reader's count of the chains' rules (a lazy chain's lines are its rules, made or not)
    n_rules: int | None = None
    # endpoint chains of plain rules kept out of `chains` (a whole listing's `rules -o json`: `_Plain`)
    plain: _Plain | None = None

    def chain(self, name: str) -> _Chain:
        if name not in self.chains:
            self.chains[name] = _Chain(name)
        return self.chains[name]

    def get(self, name: str) -> _Chain | None:
        """The chain of that name, one of `plain` made for the asking (a lazy chain, not kept)."""
        c = self.chains.get(name)
        if c is None and self.plain is not None:
            i = self.plain.find(name)
            if i >= 0:
                return self.plain.chain(i)
        return c


class _Plain:
    """A table's endpoint chains of plain rules kept as arrays, not as `_Chain`s: where each one's body starts in
    the listing (`starts`, in the listing's order: an index is a chain), and the hashes of their names, sorted,
    each with its chain's index (20 bytes a chain, where a `_Chain`, its name and its slot in `_Table.chains` are
    ~300: a whole node's 100,000s of endpoint chains were most of the memory of its `rules -o json` beyond the
    text). A name is found by its hash (bisect) and checked against the text; the hashes are distinct (else the
    reader keeps every chain in `chains`), so a chain is found by its own name only. A service chain's endpoint
    chains are looked for first where kube-proxy lists them, after it (`at`). A chain's first line number is
    counted from the start of its run of chains (`marks`, `mark_lines`) when it is made; `reached` is
    `_reachable`'s mark of each, `masq_only` the fast walk's (its one jump is to mark-for-masquerade)."""

    __slots__ = ("src", "starts", "hashes", "order", "marks", "mark_lines", "reached", "masq_only")

    def __init__(self, src: str) -> None:
        self.src = src
        self.starts, self.hashes, self.order = array("q"), array("q"), array("i")
        self.marks, self.mark_lines = array("q"), array("q")
        self.reached = self.masq_only = bytearray()

    def add_run(self, heads: list[re.Match[str]], pos: int, line: int) -> None:
        """A run of endpoint chains (their heads' matches) starting at `pos`, on line `line`."""
        self.hashes.extend(map(hash, map(_NAME_OF, heads)))
        self.starts.extend(map(re.Match.end, heads))
        self.marks.append(pos)
        self.mark_lines.append(line)

    def done(self) -> bool:
        """The hashes sorted; False when two chains have one (a chain listed twice: the general reader's)."""
        h = self.hashes
        self.order = array("i", sorted(range(len(h)), key=h.__getitem__))
        self.hashes = h = array("q", map(h.__getitem__, self.order))
        self.reached, self.masq_only = bytearray(len(h)), bytearray(len(h))
        return len(h) < 2 or all(map(int.__ne__, h[1:], h[:-1]))

    def __len__(self) -> int:
        return len(self.starts)

    def at(self, i: int, name: str) -> bool:
        """Chain i is the chain of that name."""
        if i >= len(self.starts):
            return False
        bs = self.starts[i] - len(name)
        return self.src.startswith(name, bs - 3) and self.src.startswith("\tchain ", bs - 10)

    def find(self, name: str) -> int:
        """The index of the chain of that name, or -1."""
        h = hash(name)
        hs = self.hashes
        k = bisect_left(hs, h)
        if k < len(hs) and hs[k] == h and self.at(self.order[k], name):
            return self.order[k]
        return -1

    def after(self, pos: int) -> int:
        """The index of the first chain after `pos`."""
        return bisect_left(self.starts, pos)

    def end(self, i: int) -> int:
        """Where chain i's body ends (its closing line's start)."""
        return self.src.find("\n\t}\n", self.starts[i] - 1) + 1

    def rows(self, i: int) -> int:
        return 2 if self.masq_only[i] else self.src.count("\n", self.starts[i], self.end(i))

    def name(self, i: int) -> str:
        bs = self.starts[i]
        return self.src[self.src.rfind("\tchain ", 0, bs) + 7:bs - 3]

    def chain(self, i: int) -> _Chain:
        bs, be = self.starts[i], self.end(i)
        k = bisect_left(self.marks, bs) - 1
        line = self.mark_lines[k] + self.src.count("\n", self.marks[k], bs)
        return _Chain(self.name(i), None, None, None, _pack(bs, be - bs, line, self.rows(i)), self.src)

    def unreached(self) -> list[str]:
        r = self.reached
        out = []
        i = r.find(0)
        while i >= 0:
            out.append(self.name(i))
            i = r.find(0, i + 1)
        return out


_NAME_OF = operator.itemgetter(1)


# --------------------------------------------------------------------------- helpers shared with others


_CHAIN_RE = LazyPattern(r"^(?:service|external|local|firewall|endpoint|affinity)-[A-Z2-7]{8}-"
                       r"(?P<ns>[^/]+)/(?P<svc>[^/]+)/(?P<proto>tcp|udp|sctp)/(?P<port>[^/_]*)(?:__.*)?$")


def spn_from_chain(chain: str) -> tuple[str, str] | None:
    """`service-ULMVA6XW-ns1/svc1/tcp/p80` → ("ns1/svc1:p80", "TCP"); unnamed port → "ns1/svc1"."""
    m = _CHAIN_RE.match(chain)
    if not m:
        return None
    spn = f"{m['ns']}/{m['svc']}" + (f":{m['port']}" if m["port"] else "")
    return spn, m["proto"].upper()


def is_iptables_nft(text: str) -> bool:
    """`nft list ruleset` of a node whose kube-proxy runs in iptables mode with iptables-nft."""
    if re.search(r"\bchain KUBE-(SERVICES|SVC-|SEP-|NODEPORTS|POSTROUTING|MARK-MASQ)", text):
        return True
    if "meta random & 2147483647 <" in text:
        return True
    return bool(re.search(r'"chain":\s*"KUBE-(SERVICES|SVC-|SEP-|NODEPORTS|POSTROUTING)', text))


def looks_like_nft(text: str) -> bool:
    """nft output or input of any kind (list text, `nft -j` JSON, `nft -f` transaction)."""
    head = text.lstrip()[:4096]
    if head.startswith("{") and '"nftables"' in head:
        return True
    if re.search(r"(?m)^\s*table (ip|ip6|inet|arp|bridge|netdev) \S+ \{", head):
        return True
    return bool(re.search(r"(?m)^\s*add (table|chain|rule|map|set|element) (ip|ip6|inet) ", head))


# --------------------------------------------------------------------------- text reader


_QUOTED = r'"(?:[^"\\]|\\.)*"'
_TRAIL_COMMENT = LazyPattern(r'\s+comment (' + _QUOTED + r')\s*$')
_HANDLE = LazyPattern(r"\s+# handle \d+\s*$")


def _unquote(s: str) -> str:
    return s[1:-1].replace('\\"', '"') if s.startswith('"') and s.endswith('"') else s


def _split_comment(text: str) -> tuple[str, str | None]:
    if "# handle" in text:
        text = _HANDLE.sub("", text)
    text = text.strip()
    m = _TRAIL_COMMENT.search(text) if "comment" in text else None
    if m:
        return text[: m.start()].strip(), _unquote(m.group(1))
    return text, None


def _split_top(s: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside quotes and braces."""
    if '"' not in s and "{" not in s and "[" not in s and "(" not in s:
        return [x.strip() for x in s.split(sep) if x.strip()]
    out: list[str] = []
    cur: list[str] = []
    depth, quote = 0, False
    for ch in s:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "{[(":
            depth += 1
        elif not quote and ch in "}])":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [x.strip() for x in out if x.strip()]


_ELEM_NOISE = LazyPattern(r"\s+(?:timeout|expires) \S+")


def _parse_elem(raw: str, is_map: bool) -> _Elem:
    comment = None
    m = re.search(r"\s*comment (" + _QUOTED + ")", raw)
    if m:
        comment = _unquote(m.group(1))
        raw = raw[: m.start()] + raw[m.end():]
    value = None
    if is_map and " : " in raw:
        raw, value = raw.split(" : ", 1)
        value = value.strip()
    raw = _ELEM_NOISE.sub("", raw).strip()
    key = tuple(p.strip() for p in raw.split(" . "))
    return _Elem(key, value, comment)


def _duration(s: str) -> int | None:
    """nft durations: `3h`, `10800s`, `1d2h3m4s`, `500ms` → whole seconds."""
    s = s.strip().rstrip(";").strip()
    if s.isdecimal() and len(s) <= 18:
        return int(s)
    total = 0.0
    found = False
    for num, unit in re.findall(r"(\d+)(ms|d|h|m|s)", s):
        found = True
        total += int(num) * {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return int(total) if found else None


def _read_text(text: str, source: str, compact: bool = False) -> list[_Table]:
    if FAST:
        fast = _read_listing_fast(text, compact)
        if fast is not None:
            return fast
    return _read_text_general(text, source)


# `nft list` of tables as nft prints them, read a block at a time (`_read_listing_fast`)
_FT_TABLE = LazyPattern(r"table ([^\s{}]+) ([^\s{}\"]+) \{\n")
# a table's items: a block's first line (its end is the first line that is exactly a tab and `}`), a comment or
# flags line; what makes a chain's body more than rules (quotes: comments; base-chain, policy and comment lines;
# a rule line not indented by exactly two tabs)
_FT_HEAD = LazyPattern(r"\t(chain|set|map) ([^\s\"{}]+) \{\n|\t(?:comment|flags) [^\n]*\n")
# a chain of plain rule lines (each two tabs, then no brace or quote, and not what `_FT_NOT_PLAIN` marks): what the
# block step below keeps lazy, read by one regex match (a whole node's endpoint chains: 100,000s)
_FT_PLAIN_CHAIN = LazyPattern(r'\tchain ([^\s"{}]+) \{\n((?:\t\t(?!\s|type |policy |devices =|comment )[^\n{}"]+\n)+)\t\}\n')
# the same for an ASCII listing (`str.isascii`, which nft's own listings are), `\s` spelled as the characters it
# matches there: a class of bytes, not a Unicode category per character (a third of the match's time)
_FT_WS = r"\t\n\x0b\x0c\r\x1c-\x1f "
_FT_PLAIN_CHAIN_ASCII = LazyPattern(_FT_PLAIN_CHAIN.pattern.replace(r"[^\s", f"[^{_FT_WS}").replace(
    r"(?!\s|", f"(?![{_FT_WS}]|"))
_FT_HEAD_ASCII = LazyPattern(_FT_HEAD.pattern.replace(r"[^\s", f"[^{_FT_WS}"))
# a run of such chains, each maybe followed by a blank line, checked by one match (possessive: nothing to go back
# to), and each chain's head in it (a rule line holds no brace: every `\tchain NAME {` in a run is a chain's head)
_FT_PLAIN_RUN = LazyPattern(rf"(?:{_FT_PLAIN_CHAIN.pattern}\n?)++")
_FT_PLAIN_RUN_ASCII = LazyPattern(rf"(?:{_FT_PLAIN_CHAIN_ASCII.pattern}\n?)++")
_FT_CHAIN_HEAD = LazyPattern(r'\tchain ([^\s"{}]+) \{\n')
_FT_CHAIN_HEAD_ASCII = LazyPattern(_FT_CHAIN_HEAD.pattern.replace(r"[^\s", f"[^{_FT_WS}"))
_FT_NOT_PLAIN = LazyPattern(r"\n\t\t(?:\s|type |policy |devices =|comment )")
# what the general reader reads otherwise: other line ends (`splitlines` splits on them too) and `nft -a` handles
_FT_UNUSUAL = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "# handle ")


_FT_LONE_CLOSE = LazyPattern(r"^[^\S\n]*\}[^\S\n]*$", re.M)  # a line `}` once stripped (`str.strip`'s whitespace is `\s`)


def _lone_close(text: str, start: int, end: int) -> bool:
    """A line of text[start:end] (start at a line's start) is `}` once stripped (`_FT_LONE_CLOSE` finds one):
    each `}`'s line looked at, not a regex tried at every line of a 10,000-line map or a Service's vmap."""
    i = text.find("}", start, end)
    while i >= 0:
        line_end = text.find("\n", i, end)
        if text[text.rfind("\n", start - 1, i) + 1:end if line_end < 0 else line_end].strip() == "}":
            return True
        i = text.find("}", i + 1, end)
    return False


def _braces_close_at_end(body: str) -> bool:
    """The general reader's brace depth over a block's lines ends the block at its last line, as the block
    regex did (a rule with an unbalanced brace or a lone `}` inside would end it elsewhere)."""
    depth = 1
    for raw in body.split("\n")[:-1]:
        s = raw.strip()
        if s == "}" and depth == 1:
            return False
        depth += s.count("{") - s.count("}")
    return depth == 1


def _read_listing_fast(text: str, compact: bool = False) -> list[_Table] | None:
    """`nft list table|ruleset` text as nft itself prints it (tab indents, one block after another) read with one
    regex step per chain or set, each chain kept as its lines' place in the text (`_Chain.lazy`); None for
    anything else (handles, CRLF, other blocks, damage), which the general reader then reads (and reports).

    compact: a run of chains of plain rules is checked by one match, and its endpoint chains are kept in
    `_Table.plain`, not as `_Chain`s (for a writer that looks them up through `_Table.get` only)."""
    if any(ch in text for ch in _FT_UNUSUAL):
        return None
    tables: list[_Table] = []
    pos, n, line = 0, len(text), 1
    table_rx = _FT_TABLE.match
    if text.isascii():  # (only the set used is compiled: they are LazyPatterns)
        head_rx, plain_rx = _FT_HEAD_ASCII.match, _FT_PLAIN_CHAIN_ASCII.match
        run_rx, heads = _FT_PLAIN_RUN_ASCII.match, _FT_CHAIN_HEAD_ASCII.finditer
    else:
        head_rx, plain_rx = _FT_HEAD.match, _FT_PLAIN_CHAIN.match
        run_rx, heads = _FT_PLAIN_RUN.match, _FT_CHAIN_HEAD.finditer
    count, find = text.count, text.find
    # where a chain stops being plain rules, found in one pass (a literal-led regex, then quotes by memchr);
    # a chain is plain when none of these falls in it
    marks = [m.start() for m in _FT_NOT_PLAIN.finditer(text)]
    q = find('"')
    while q >= 0:
        marks.append(q)
        q = find('"', q + 1)
    marks.sort()
    marks.append(n + 1)
    mi = 0
    while pos < n:
        if text[pos] == "\n":
            pos, line = pos + 1, line + 1
            continue
        m = table_rx(text, pos)
        if m is None:
            return None
        table = _Table(m.group(1), m.group(2))
        tables.append(table)
        chains = table.chains
        n_rules = 0
        plain = _Plain(text) if compact else None  # the endpoint chains of plain rules kept apart
        pos, line = m.end(), line + 1
        while True:
            ch = text[pos:pos + 1]
            if ch == "\n":
                pos, line = pos + 1, line + 1
                continue
            if ch == "}" and text[pos + 1:pos + 2] in ("\n", ""):
                pos, line = pos + 2, line + 1
                table.n_rules = n_rules
                if plain is not None and len(plain):
                    table.plain = plain
                    if not plain.done() or any(c.startswith("endpoint-") and plain.find(c) >= 0 for c in chains):
                        return None  # a chain listed twice (or two names of one hash): the general reader's
                break
            if plain is not None and (run := run_rx(text, pos)) is not None:  # a run of plain chains: one match
                end = run.end()
                n_rules += count("\n\t\t", pos, end)
                ms = list(heads(text, pos, end))
                if all(map(str.startswith, map(_NAME_OF, ms), repeat("endpoint-"))):  # (kube-proxy's runs)
                    plain.add_run(ms, pos, line)
                else:
                    last = pos
                    for h in ms:
                        hs, bs = h.span()
                        line += count("\n", last, hs)
                        last = hs
                        name = h.group(1)
                        if name.startswith("endpoint-"):
                            plain.add_run([h], hs, line)
                            continue
                        be = find("\n\t}\n", bs - 1) + 1
                        c = _Chain(name, None, None, None, bs | (be - bs) << 40 | (line + 1) << 80
                                   | count("\n", bs, be) << 120, text)
                        if chains.setdefault(name, c) is not c:
                            return None
                    pos = last
                line += count("\n", pos, end)
                pos = end
                continue
            if plain_rx(text, pos) is not None:  # a run of chains of plain rule lines: one regex step each
                while True:
                    m = plain_rx(text, pos)
                    if m is None:
                        break
                    bs, be = m.span(2)
                    rows = count("\n", bs, be)
                    c = _Chain(m.group(1), None, None, None, bs | (be - bs) << 40 | (line + 1) << 80 | rows << 120,
                               text)
                    if chains.setdefault(c.name, c) is not c:
                        return None
                    n_rules += rows
                    pos, line = m.end(), line + rows + 2
                    if text[pos:pos + 1] == "\n":
                        pos, line = pos + 1, line + 1
                continue
            m = head_rx(text, pos)
            if m is None:
                return None
            kind = m.group(1)
            if kind is None:  # a comment or flags line of the table
                pos, line = m.end(), line + 1
                continue
            name = m.group(2)
            bs = m.end()
            close = find("\n\t}\n", bs - 1)
            if close < 0:
                return None
            be = close + 1  # the body: bs … be; then the block's closing line
            rows = count("\n", bs, be)
            if rows and count("\n\t\t", bs - 1, be - 1) != rows:
                return None  # a line not indented by two tabs before the block's end
            if find("{", bs, be) >= 0 or find("}", bs, be) >= 0:
                # the line-by-line depth ends at 1 only with as many `}` as `{`; it can stop early only at a lone
                # `}` line: only a block with one is walked line by line (a Service's vmap, a map of 10,000 lines)
                if count("{", bs, be) != count("}", bs, be):
                    return None
                if _lone_close(text, bs, be) and not _braces_close_at_end(text[bs:be]):
                    return None
            if kind == "chain":
                while marks[mi] < bs - 1:
                    mi += 1
                if rows and marks[mi] >= be:  # rules only: kept as their place in the text
                    c = _Chain(name, None, None, None, bs | (be - bs) << 40 | (line + 1) << 80 | rows << 120, text)
                    n_rules += rows
                else:
                    c = _Chain(name)
                if chains.setdefault(name, c) is not c:
                    return None  # a chain listed twice: its rules add up, as the general reader does
                if not c.lazy:
                    c._rules = []
                    add = _chain_line(c)
                    for k, raw in enumerate(text[bs:be].split("\n")[:-1]):
                        add(line + 1 + k, raw.strip())
                    n_rules += len(c._rules)
            else:
                if name in table.sets:
                    return None
                table.sets[name] = _set_from_text(name, kind == "map",
                                                  [(0, raw.strip()) for raw in text[bs:be].split("\n")[:-1]])
            pos, line = be + 3, line + rows + 2
            if text[pos:pos + 1] == "\n":  # the blank line nft prints between blocks
                pos, line = pos + 1, line + 1
    return tables


def _read_text_general(text: str, source: str) -> list[_Table]:
    tables: list[_Table] = []
    lines = text.splitlines()
    if "# handle " in text:  # `nft -a list …`
        lines = [_HANDLE.sub("", ln) for ln in lines]
    i = 0
    n = len(lines)
    table: _Table | None = None
    while i < n:
        raw = lines[i]
        line = raw.strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if table is None:
            m = re.match(r"^table (\S+) (\S+) \{$", line)
            if m:
                table = _Table(m.group(1), m.group(2))
                tables.append(table)
                continue
            if line.startswith("add ") or line.startswith(("flush ", "delete ", "destroy ")):
                i = _read_transaction(lines, i - 1, tables, source)
                continue
            raise InputError(f"not nft output: unexpected {line[:80]!r}", source=source, line=i,
                             hint="give `nft list table ip kube-proxy`, `nft list ruleset` or `nft -j list …`")
        if line == "}":
            table = None
            continue
        m = _BLOCK_RE.match(line)
        if m:
            kind, name = m.group(1), _unquote(m.group(2))
            body: list[tuple[int, str]] = []
            # a chain's lines go straight into its rules (no list of a whole dump's lines beside the text's)
            chain_line = _chain_line(table.chain(name)) if kind == "chain" else None
            depth = 1
            while i < n:
                raw_line = lines[i]
                s = raw_line.strip()
                if s and not raw_line[:1].isspace():
                    # nft indents everything inside a table: a line at column 0 here was spliced in
                    raise InputError(f"not nft output: {s[:60]!r} inside {kind} {name} is not part of an nft "
                                     "listing", source=source, line=i + 1,
                                     hint="give the unmodified output of `nft list table ip kube-proxy`")
                i += 1
                opens = s.count("{") - s.count("}")
                if s == "}" and depth == 1:
                    depth = 0
                    break
                depth += opens
                if chain_line is not None:
                    chain_line(i, s)
                else:
                    body.append((i, s))
            if depth != 0:
                raise InputError(f"truncated nft listing: {kind} {name} is not closed", source=source, line=i)
            if kind != "chain":
                table.sets[name] = _set_from_text(name, kind == "map", body)
            continue
        if line.startswith("comment ") or line.startswith("flags "):
            continue
        m = re.match(r"^(\S+)(?: \S+)* \{$", line)  # flowtable, counter, quota, ct helper …: skip the block
        if m:
            depth = 1
            while i < n and depth:
                s = lines[i].strip()
                i += 1
                depth += s.count("{") - s.count("}")
            continue
        if not any(x.strip() for x in lines[i:]):
            raise InputError(f"truncated nft listing: it ends in the middle of table {table.name} ({line[:60]!r})",
                             source=source, line=i)
        raise InputError(f"not nft output: unexpected {line[:80]!r} in table {table.name}", source=source, line=i)
    if table is not None:
        raise InputError(f"truncated nft listing: table {table.family} {table.name} is not closed",
                         source=source, line=n)
    return tables


_BLOCK_RE = LazyPattern(r"^(chain|set|map) (\S+) \{$")


def _chain_line(chain: _Chain) -> Callable[[int, str], None]:
    """What reads one line of `chain`'s body (stripped) into it."""
    def add(lineno: int, s: str) -> None:
        if not s:
            return
        if s.startswith("type ") and " hook " in s:
            m = re.match(r"type (\S+) hook (\S+)", s)
            chain.hook = f"{m.group(1)} {m.group(2)}" if m else s
            return
        if s.startswith("comment ") and s.count('"') == 2 and s.endswith('"'):
            chain.comment = _unquote(s[len("comment "):])
            return
        if s.startswith("policy ") or s.startswith("devices ="):
            return
        text, comment = _split_comment(s)
        chain.rules.append(_Rule(text, comment, lineno))

    return add


def _set_attribute(st: _Set, s: str) -> bool:
    """One `type` / `flags` / `timeout` / `comment` statement of a set or map (`nft list` or transaction
    form) into `st`; False when `s` is none of them."""
    if s.startswith(("type ", "typeof ")):
        st.type = s.split(" ", 1)[1].strip().rstrip(";")
    elif s.startswith("flags "):
        st.flags = [f.strip() for f in s[6:].split(",")]
    elif s.startswith("timeout "):
        st.timeout = _duration(s[8:])
    elif s.startswith("comment "):
        st.comment = _unquote(s[8:].strip())
    else:
        return False
    return True


def _set_from_text(name: str, is_map: bool, body: list[tuple[int, str]]) -> _Set:
    st = _Set(name, is_map)
    joined: list[str] = []
    collecting = False
    for _, s in body:
        if collecting:
            joined.append(s)
            if "}" in s:
                collecting = False
            continue
        if _set_attribute(st, s):
            continue
        if s.startswith("elements = {"):
            joined.append(s[len("elements = {"):])
            collecting = "}" not in s
    if joined:
        inner = " ".join(joined)
        inner = inner[: inner.rfind("}")] if "}" in inner else inner
        if FAST and _ELEM_PLAIN.search(inner) is None:
            st.elements = _plain_elems(inner, is_map)
        else:
            st.elements = [_parse_elem(e, is_map) for e in _split_top(inner)]
    return st


_ELEM_PLAIN = LazyPattern(r'["{}\[\](]|timeout|expires')


def _plain_elems(inner: str, is_map: bool) -> list[_Elem]:
    """`_parse_elem` of each element, for elements with no comment, timeout, quote or bracket (a whole node's
    maps: `10.96.0.16 . tcp . 80 : goto service-…`): what it does to them, without its regexes."""
    out: list[_Elem] = []
    for raw in inner.split(","):
        raw = raw.strip()
        if not raw:
            continue
        value = None
        if is_map and " : " in raw:
            raw, value = raw.split(" : ", 1)
            value = value.strip()
        out.append(_Elem(tuple(p.strip() for p in raw.strip().split(" . ")), value))
    return out


# `nft -f` input / knftables transaction style: "add rule ip kube-proxy CHAIN …"
_TX = LazyPattern(r"^(add|flush|delete|destroy) (table|chain|rule|set|map|element) (ip|ip6|inet) (\S+)(?: (.*))?$")


def _read_transaction(lines: list[str], start: int, tables: list[_Table], source: str) -> int:
    by_key = {(t.family, t.name): t for t in tables}
    i = start
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        m = _TX.match(line)
        if not m:
            raise InputError(f"not an nft transaction line: {line[:80]!r}", source=source, line=i)
        verb, what, fam, tname, rest = m.groups()
        rest = rest or ""
        t = by_key.get((fam, tname))
        if t is None:
            t = _Table(fam, tname)
            by_key[(fam, tname)] = t
            tables.append(t)
        if what == "table":
            continue
        name, _, tail = rest.partition(" ")
        if what == "chain":
            if verb == "delete":
                t.chains.pop(name, None)
                continue
            c = t.chain(name)
            if verb == "flush":
                c.rules.clear()
            hm = re.search(r"type (\S+) hook (\S+)", tail)
            if hm:
                c.hook = f"{hm.group(1)} {hm.group(2)}"
            cm = re.search(r"comment (" + _QUOTED + ")", tail)
            if cm:
                c.comment = _unquote(cm.group(1))
        elif what == "rule":
            text, comment = _split_comment(tail)
            t.chain(name).rules.append(_Rule(text, comment, i))
        elif what in ("set", "map"):
            if verb == "delete":
                t.sets.pop(name, None)
                continue
            st = t.sets.get(name) or _Set(name, what == "map")
            t.sets[name] = st
            if verb == "flush":
                st.elements.clear()
            for part in tail.strip(" {}").split(";"):
                _set_attribute(st, part.strip())
        elif what == "element":
            st = t.sets.get(name) or _Set(name, ":" in tail.replace("::", ""))
            t.sets[name] = st
            inner = tail.strip()
            inner = inner[inner.find("{") + 1: inner.rfind("}")]
            elems = [_parse_elem(e, st.is_map) for e in _split_top(inner)]
            if verb == "delete":
                keys = {e.key for e in elems}
                st.elements = [e for e in st.elements if e.key not in keys]
            else:
                st.elements.extend(elems)
    return i


# --------------------------------------------------------------------------- JSON reader


def _read_json(text: str, source: str) -> list[_Table]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed nft JSON: {e.msg}", source=source, line=e.lineno) from None
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError("JSON without an `nftables` list: not `nft -j` output", source=source)
    tables: dict[tuple[str, str], _Table] = {}

    def table(obj: dict[str, Any]) -> _Table:
        key = (str(obj.get("family", "")), str(obj.get("table") or obj.get("name") or ""))
        if key not in tables:
            tables[key] = _Table(*key)
        return tables[key]

    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        kind, obj = next(iter(item.items()))
        if not isinstance(obj, dict):
            continue
        try:
            if kind == "table":
                table(obj)
            elif kind == "chain":
                c = table(obj).chain(str(obj["name"]))
                if "hook" in obj:
                    c.hook = f"{obj.get('type', '')} {obj['hook']}"
                if obj.get("comment"):
                    c.comment = str(obj["comment"])
            elif kind == "rule":
                text = " ".join(_render_stmt(s) for s in obj.get("expr", []))
                c = table(obj).chain(str(obj["chain"]))
                c.rules.append(_Rule(text.strip(), obj.get("comment")))
            elif kind in ("set", "map"):
                st = _Set(str(obj["name"]), kind == "map")
                typ = obj.get("type", "")
                st.type = " . ".join(typ) if isinstance(typ, list) else str(typ)
                if kind == "map":
                    st.type += f" : {obj.get('map', '')}"
                fl = obj.get("flags", [])
                st.flags = [str(f) for f in (fl if isinstance(fl, list) else [fl])]
                if "timeout" in obj:
                    st.timeout = int(obj["timeout"])
                st.comment = obj.get("comment")
                for el in obj.get("elem", []) or []:
                    st.elements.append(_json_elem(el, kind == "map"))
                table(obj).sets[st.name] = st
        except (KeyError, TypeError, ValueError, OverflowError) as e:  # OverflowError: int(1e999)
            raise InputError(f"unexpected nft JSON {kind} object ({e})", source=source) from None
    return list(tables.values())


def _json_elem(e: Any, is_map: bool) -> _Elem:
    value = None
    if is_map and isinstance(e, list) and len(e) == 2:
        e, v = e
        value = _render(v)
    comment = None
    if isinstance(e, dict) and "elem" in e:
        comment = e["elem"].get("comment")
        e = e["elem"].get("val")
    key = tuple(_render(x) for x in e["concat"]) if isinstance(e, dict) and "concat" in e else (_render(e),)
    return _Elem(key, value, comment)


_VERDICTS = ("accept", "drop", "continue", "return")


def _render(x: Any) -> str:
    """An nft JSON expression in nft's own list syntax (the subset kube-proxy uses)."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return "{ " + ", ".join(_render(i) for i in x) + " }"
    if not isinstance(x, dict) or not x:
        return str(x)
    k, v = next(iter(x.items()))
    if k == "payload":
        return f"{v.get('protocol', '')} {v.get('field', '')}".strip()
    if k == "meta":
        return f"meta {v['key']}"
    if k == "ct":
        return f"ct {v['key']}"
    if k == "fib":
        flags = v.get("flags", [])
        flags = flags if isinstance(flags, list) else [flags]
        return f"fib {' . '.join(flags)} {v.get('result', '')}".strip()
    if k == "concat":
        return " . ".join(_render(i) for i in v)
    if k == "prefix":
        return f"{_render(v['addr'])}/{v['len']}"
    if k == "range":
        return f"{_render(v[0])}-{_render(v[1])}"
    if k == "set":
        if isinstance(v, list):
            return "{ " + ", ".join(_map_item(i) for i in v) + " }"
        return _render(v)
    if k == "elem":
        return _render(v.get("val"))
    if k == "numgen":
        out = f"numgen {v.get('mode', 'random')} mod {v.get('mod')}"
        return out + (f" offset {v['offset']}" if v.get("offset") else "")
    if k == "map":
        return f"{_render(v['key'])} map {_render(v['data'])}"
    if k in ("jump", "goto"):
        return f"{k} {v['target']!s}"
    if k in _VERDICTS:
        return str(k)
    if k in ("&", "|", "^", "<<", ">>"):
        return f" {k} ".join(_render(i) for i in v)
    return f"{k} {json.dumps(v)}"


def _map_item(i: Any) -> str:
    if isinstance(i, list) and len(i) == 2:
        return f"{_render(i[0])} : {_render(i[1])}"
    return _render(i)


def _render_stmt(s: Any) -> str:
    if not isinstance(s, dict) or not s:
        return str(s)
    k, v = next(iter(s.items()))
    if k == "match":
        op = v.get("op", "==")
        left, right = _render(v["left"]), _render(v["right"])
        if isinstance(v["right"], dict) and "set" in v["right"] and isinstance(v["right"]["set"], list):
            right = "{ " + ", ".join(_render(i) for i in v["right"]["set"]) + " }"
        return f"{left} {right}" if op in ("==", "in") else f"{left} {op} {right}"
    if k == "vmap":
        return f"{_render(v['key'])} vmap {_render(v['data'])}"
    if k in ("dnat", "snat"):
        fam = f" {v['family']}" if v.get("family") else ""
        addr = v.get("addr")
        if isinstance(addr, dict) and "map" in addr:
            return f"{k}{fam} to {_render(addr)}"
        a = _render(addr) if addr is not None else ""
        if ":" in a and not a.startswith("["):
            a = f"[{a}]"
        return f"{k}{fam} to {a}" + (f":{_render(v['port'])}" if "port" in v else "")
    if k == "mangle":
        return f"{_render(v['key'])} set {_render(v['value'])}"
    if k == "set":
        return f"{v.get('op', 'add')} {v.get('set', '')} {{ {_render(v.get('elem'))} }}"
    if k == "masquerade":
        flags = v.get("flags") if isinstance(v, dict) else None
        flags = " ".join(flags) if isinstance(flags, list) else (flags or "")
        return f"masquerade {flags}".strip()
    if k == "reject":
        return "reject"
    if k == "counter":
        return f"counter packets {v.get('packets', 0)} bytes {v.get('bytes', 0)}" if isinstance(v, dict) else "counter"
    if k in ("jump", "goto"):
        return f"{k} {v['target']!s}"
    if k in _VERDICTS:
        return str(k)
    return f"{k} {json.dumps(v)}"


# --------------------------------------------------------------------------- interpreter


@dataclass(slots=True)
class _Walk(Walk):
    no_local: bool = False
    dropped: str | None = None
    policy_local: bool = False
    apart: array[int] = field(default_factory=lambda: array("i"))  # the `_Plain` chains put on `path`, by index


_COUNTER = LazyPattern(r"\s*\bcounter packets \d+ bytes \d+")
_MASQ_MARK = LazyPattern(r"^(?P<cond>.*?)\s*(?:jump mark-for-masquerade|(?:meta )?mark set (?:meta )?mark (?:\||or) \S+)$")
_AFF_CHECK = LazyPattern(r"^ip6? saddr @(?P<set>\S+) goto (?P<target>\S+)$")
_AFF_UPDATE = LazyPattern(r"(?:update|add) @(?P<set>\S+) \{ ip6? saddr \}")
_NUMGEN_VMAP = LazyPattern(r"^(?P<cond>.*?)\s*numgen random mod (?P<n>\d{1,10})(?: offset (?P<off>\d{1,10}))? vmap \{ (?P<items>.*) \}$")
_NUMGEN_DNAT = LazyPattern(r"^(?P<cond>.*?)\s*dnat(?: ip6?)? to numgen random mod (?P<n>\d+)(?: offset (?P<off>\d+))? "
                          r"map \{ (?P<items>.*) \}$")
_DNAT = LazyPattern(r"^(?P<cond>.*?)\s*dnat(?: ip6?)? to (?:\[(?P<ip6>[0-9a-fA-F:.]+)\]|(?P<ip>[0-9.]+))(?::(?P<port>\d+))?$")
_GOTO = LazyPattern(r"^(?P<cond>.*?)\s*(?P<verb>goto|jump) (?P<target>\S+)$")
_FINAL = LazyPattern(r"^(?P<cond>.*?)\s*(?P<verdict>drop|reject(?: with .*)?)$")
_L4ONLY = LazyPattern(r"^(?:meta l4proto (?:tcp|udp|sctp|\{[^}]*\}))?$")


# a rule's condition in words: the first pattern that matches the whole condition
_COND_WORDS = (
    (LazyPattern(r"ip6? daddr @cluster-ips ip6? saddr != (\S+)"),
     "traffic to a ClusterIP from outside the pod network (source not in {0})"),
    (LazyPattern(r"ip6? daddr (\S+) ip6? saddr != (\S+)"),
     "traffic to {0} from outside the pod network (source not in {1})"),
    (LazyPattern(r"ip6? saddr (\S+/\d+)"), "traffic from {0}"),
    (LazyPattern(r"ip6? saddr (\S+)"), "hairpin traffic from the endpoint {0} to itself"),
)


def _cond_words(cond: str) -> str:
    for rx, words in _COND_WORDS:
        m = rx.fullmatch(cond)
        if m:
            return words.format(*m.groups())
    if cond == "fib saddr type local":
        return "traffic from the node itself"
    if not cond:
        return "all traffic"
    return f"traffic matching `{cond}`"


def _numgen_range(m: re.Match[str], chain: str, w: _Walk) -> tuple[int, int] | None:
    """`numgen random mod N [offset O]` as (N, O); None, noted, for mod 0, which never matches."""
    n = int(m["n"])
    if n == 0:
        w.notes.append(f"{chain}: numgen mod 0 never matches")
        return None
    return n, int(m["off"] or 0)


class _Interp:
    def __init__(self, t: _Table) -> None:
        self.t = t
        self.ipx = "ip6" if t.family == "ip6" else "ip"

    def walk(self, chain: str, prob: Fraction, w: _Walk, depth: int = 0, local: bool = False,
             stack: tuple[str, ...] = ()) -> None:
        if depth > _MAX_DEPTH or chain in stack:
            w.notes.append(f"chain loop or too deep at {chain}")
            return
        added = chain not in w.path
        if added:
            w.path.append(chain)
        c = self.t.chains.get(chain)
        if c is None and self.t.plain is not None and (i := self.t.plain.find(chain)) >= 0:
            c = self.t.plain.chain(i)
            if added:
                w.apart.append(i)
        if c is None:
            w.notes.append(f"chain {chain} is referenced but does not exist")
            w.dropped = w.dropped or "missing chain"
            return
        if c.lazy and FAST and self._fast_walk(c, prob, w, depth, local, stack):
            return
        stack = (*stack, chain)
        for rule in c.rules:
            text = (_COUNTER.sub("", rule.text) if "counter" in rule.text else rule.text).strip()
            if not text:
                continue
            # each pattern needs its keyword: test that first (a big dump has hundreds of thousands of rules)
            has_at = "@" in text
            m = _MASQ_MARK.match(text) if "mark" in text else None
            if m:
                phrase = _cond_words(m["cond"].strip()) + " is masqueraded"
                if chain.startswith("external-") and not m["cond"].strip():
                    phrase = "all traffic to this external address or NodePort is masqueraded (externalTrafficPolicy: Cluster)"
                if phrase not in w.masquerade:
                    w.masquerade.append(phrase)
                continue
            m = _AFF_CHECK.match(text) if has_at else None
            if m:
                self._affinity(m["set"], w)
                continue
            m = _AFF_UPDATE.search(text) if has_at else None
            if m:
                self._affinity(m["set"], w)
                continue
            numgen = "numgen" in text
            m = _NUMGEN_VMAP.match(text) if numgen else None
            if m:
                if (ng := _numgen_range(m, chain, w)) is None:
                    continue
                n, off = ng
                counts: dict[str, int] = {}
                order: list[str] = []
                for item in _split_top(m["items"]):
                    im = re.match(r"^(\d{1,10})(?:-(\d{1,10}))? : (?:goto|jump) (\S+)$", item)
                    if not im:
                        w.notes.append(f"{chain}: unreadable numgen entry {item!r}")
                        continue
                    lo = int(im.group(1))
                    hi = int(im.group(2) or lo)
                    k = max(0, min(hi, off + n - 1) - max(lo, off) + 1)  # |[lo, hi] ∩ [off, off+n)|, no loop
                    if im.group(3) not in counts:
                        order.append(im.group(3))
                    counts[im.group(3)] = counts.get(im.group(3), 0) + k
                covered = sum(counts.values())
                if covered < n:
                    w.notes.append(f"{chain}: numgen mod {n} maps only {covered} values; the rest fall through")
                for target in order:
                    self.walk(target, prob * Fraction(counts[target], n), w, depth + 1, local, stack)
                if _L4ONLY.match(m["cond"].strip()) and covered >= n:
                    return
                continue
            m = _NUMGEN_DNAT.match(text) if numgen else None
            if m:
                if (ng := _numgen_range(m, chain, w)) is None:
                    continue
                n, off = ng
                for item in _split_top(m["items"]):
                    im = re.match(r"^(\d+) : (\S+) \. (\d+)$", item)
                    if not im:
                        w.notes.append(f"{chain}: unreadable dnat map entry {item!r}")
                        continue
                    if not off <= int(im.group(1)) < off + n:
                        continue
                    self._add_backend(w, im.group(2), int(im.group(3)), prob / n, chain, local)
                if _L4ONLY.match(m["cond"].strip()):
                    return
                continue
            m = _DNAT.match(text) if "dnat" in text else None
            if m:
                ip = m["ip6"] or m["ip"]
                port = int(m["port"]) if m["port"] else 0
                self._add_backend(w, ip, port, prob, chain, local)
                if _L4ONLY.match(m["cond"].strip()):
                    return
                continue
            m = _GOTO.match(text) if ("goto" in text or "jump" in text) else None
            if m:
                cond = m["cond"].strip()
                target = m["target"]
                if not cond:
                    if target.startswith("local-"):
                        w.policy_local = True
                    self.walk(target, prob, w, depth + 1, local or target.startswith("local-"), stack)
                    if m["verb"] == "goto":
                        return
                else:
                    why = f" ({rule.comment})" if rule.comment else ""
                    w.notes.append(f"{_cond_words(cond)} goes to {target}{why}")
                continue
            m = _FINAL.match(text)
            if m:
                if not m["cond"].strip():
                    if rule.comment and "no local endpoints" in rule.comment:
                        w.no_local = True
                    w.dropped = m["verdict"].split()[0]
                    if rule.comment:
                        w.notes.append(rule.comment)
                    return
                continue

    def _fast_walk(self, c: _Chain, prob: Fraction, w: _Walk, depth: int, local: bool,
                   stack: tuple[str, ...]) -> bool:
        """A chain of kube-proxy's own shape walked from its text (one regex), as the general walk would walk
        its rules; False (nothing done) for any other chain, which the general walk then reads."""
        v = c.lazy
        start = v & _M40
        text, end, name = c.src, start + (v >> 40 & _M40), c.name
        if name.startswith("endpoint-"):
            m = _FW_ENDPOINT.fullmatch(text, start, end)
            if m is None:
                return False
            c.jumps = _MASQ_JUMP
            self._endpoint(w, m, prob, name, local, set())
            return True
        if not name.startswith("service-"):
            return False
        m = _FW_SERVICE.fullmatch(text, start, end)
        if m is None:
            return False
        targets: list[str] | None = None
        pairs: list[tuple[str, int]] | None = None
        if m["n_vmap"] is not None:  # layout A: a share of the endpoint chains each
            n = int(m["n_vmap"])
            targets = _vmap_targets(m["vmap"], n)
            if targets is None:
                return False
        elif m["n_map"] is not None:  # layout B: the endpoints straight in a dnat map
            n = int(m["n_map"])
            pairs = _map_pairs(m["map"], n)
            if pairs is None:
                return False
        masq = w.masquerade
        m_vip = m["vip"]
        if m_vip is not None:
            phrase = f"traffic to {m['vip']} from outside the pod network (source not in {m['pods']}) is masqueraded"
            if phrase not in masq:
                masq.append(phrase)
            c.jumps = (*_MASQ_JUMP, *targets) if targets else _MASQ_JUMP
        else:
            c.jumps = tuple(targets) if targets else ()
        if targets is not None:
            seen = {(b.ip, b.port) for b in w.backends}
            share = _share(prob, n)
            inner = (*stack, name)
            chains, path, backends, ep_rx, ints = self.t.chains, w.path, w.backends, _FW_ENDPOINT.fullmatch, _INTS
            plain = self.t.plain
            on_path, masq_had = set(path), set(masq)  # what the general walk finds by scanning the lists
            is_local = True if local else None
            safe = depth + 1 <= _MAX_DEPTH and set(inner).isdisjoint(targets)  # no loop, not too deep
            canon: list[str] | None = []  # the targets as the chains' own names (the vmap text's copies are not kept)
            # endpoint chains kept apart (`_Plain`): looked for first where kube-proxy lists them, after this chain,
            # each after the one before; `apart` their indexes while they are one run of them, walked fast
            j = plain.after(end) if plain is not None else 0
            apart: range | None = range(j, j + len(targets))
            run = _endpoint_run(plain, j, targets) if plain is not None and safe and not seen else None
            if run is not None and on_path.isdisjoint(targets):  # kube-proxy's: the run of them at once
                assert plain is not None
                srcs, ips, ports = run
                k = len(targets)
                path += targets
                for phrase in [f"hairpin traffic from the endpoint {s} to itself is masqueraded" for s in srcs]:
                    if phrase not in masq_had:
                        masq.append(phrase)
                        masq_had.add(phrase)
                backends += map(Backend, ips, ports, repeat(share, k), targets, repeat(None, k), repeat(None, k),
                                repeat(None, k), repeat(is_local, k))
                plain.masq_only[j:j + k] = b"\x01" * k
                w.apart.extend(apart)  # type: ignore[arg-type]  # (a range: not None)
                targets = []  # (walked)
                canon = None
            for target in targets:
                ep = chains.get(target)
                m = None
                if ep is not None:
                    apart = None
                    ep_name = ep.name
                    if ep.lazy and safe and target.startswith("endpoint-"):
                        v = ep.lazy
                        start = v & _M40
                        m = ep_rx(ep.src, start, start + (v >> 40 & _M40))
                elif plain is not None and ((i := j) if plain.at(j, target) else (i := plain.find(target))) >= 0:
                    ep_name = target  # (an endpoint chain kept apart: its name held by no one)
                    canon = None  # (`_reachable` reads this chain's jumps from `apart` or from its text)
                    if i != j:
                        apart = None
                    j = i + 1
                    if safe:
                        start = plain.starts[i]
                        m = ep_rx(plain.src, start, plain.end(i))
                        if m is not None:
                            plain.masq_only[i] = 1
                            if ep_name not in on_path:
                                w.apart.append(i)
                else:
                    apart = None
                if m is None:
                    apart = None
                if canon is not None:
                    canon.append(target if ep is None else ep_name)
                if m is None:  # not an endpoint chain of kube-proxy's shape: the general walk
                    self.walk(target, share, w, depth + 1, local, inner)
                    seen = {(b.ip, b.port) for b in backends}
                    on_path, masq_had = set(path), set(masq)
                    continue
                # the endpoint chain's two rules: its hairpin masquerade and its DNAT
                if ep_name not in on_path:
                    path.append(ep_name)
                    on_path.add(ep_name)
                if ep is not None:
                    ep.jumps = _MASQ_JUMP
                src, ip6, ip4, port_s = m.groups()
                phrase = f"hairpin traffic from the endpoint {src} to itself is masqueraded"
                if phrase not in masq_had:
                    masq.append(phrase)
                    masq_had.add(phrase)
                ip = ip4 or ip6
                port = ints[port_s]
                key = (ip, port)
                if key in seen:
                    self._add_backend(w, ip, port, share, ep_name, local)
                    continue
                seen.add(key)
                backends.append(Backend(ip, port, share, ep_name, None, None, None, is_local))
            c.apart = apart if canon is None else None
            if canon is None:  # (jumps to chains kept apart: `apart`, or `_reachable` reads them from the text)
                c.jumps = (_MASQ_JUMP if m_vip is not None else ()) if apart is not None else None
            else:
                c.jumps = (*_MASQ_JUMP, *canon) if m_vip is not None else tuple(canon)
        elif pairs is not None:
            share = _share(prob, n)
            for ip, port in pairs:
                self._add_backend(w, ip, port, share, name, local)
        else:
            self._add_backend(w, m["ip4"] or m["ip6"], _int(m["port"]), prob, name, local)  # one endpoint
        return True

    def _endpoint(self, w: _Walk, m: re.Match[str], prob: Fraction, name: str, local: bool,
                  seen: set[tuple[str, int]]) -> None:
        """An endpoint chain of kube-proxy's shape: its hairpin masquerade and its backend (`seen`: the walk's
        backends so far, as (ip, port))."""
        phrase = f"hairpin traffic from the endpoint {m['src']} to itself is masqueraded"
        if phrase not in w.masquerade:
            w.masquerade.append(phrase)
        ip, port = m["ip4"] or m["ip6"], _int(m["port"])
        if (ip, port) in seen:
            self._add_backend(w, ip, port, prob, name, local)
            return
        seen.add((ip, port))
        w.backends.append(Backend(ip, port, prob, name, None, None, None, True if local else None))

    def _affinity(self, set_name: str, w: _Walk) -> None:
        st = self.t.sets.get(set_name)
        if st is not None and st.timeout is not None:
            w.affinity = st.timeout
        elif w.affinity is None:
            w.affinity = 0
            w.notes.append(f"affinity set {set_name} has no timeout in this listing")
        if st is not None and st.elements:
            ep = set_name.rsplit("__", 1)[-1] if "__" in set_name else set_name
            ip, _, port = ep.rpartition("/")
            ip = ip.replace(".", ":") if ip.count(".") != 3 else ip
            where = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            note = (f"{len(st.elements)} client(s) currently pinned to {where} by @{set_name}: "
                    + ", ".join(e.key[0] for e in st.elements[:5]) + (" …" if len(st.elements) > 5 else ""))
            if note not in w.notes:
                w.notes.append(note)

    @staticmethod
    def _add_backend(w: _Walk, ip: str, port: int, prob: Fraction, chain: str, local: bool) -> None:
        for b in w.backends:
            if b.ip == ip and b.port == port:
                b.probability = (b.probability or Fraction(0)) + prob
                return
        w.backends.append(Backend(ip=ip, port=port, probability=prob, chain=chain if chain.startswith("endpoint-") else "",
                                  local=True if local else None))


# kube-proxy's per-Service chains as nft lists them (pkg/proxy/nftables/proxier.go): an endpoint chain's hairpin
# masquerade and DNAT; a service chain's masquerade of traffic from outside the pod network, then its endpoints
# (a numgen vmap of endpoint chains, a numgen dnat map, or one dnat)
_FW_IP = r"[0-9a-fA-F.:]+"
_FW_DNAT = r"meta l4proto (?:tcp|udp|sctp) dnat to (?:\[(?P<ip6>[0-9a-fA-F:.]+)\]|(?P<ip4>[0-9.]+)):(?P<port>\d{1,5})\n"
_FW_ENDPOINT = LazyPattern(rf"\t\tip6? saddr (?P<src>{_FW_IP}) jump mark-for-masquerade\n\t\t{_FW_DNAT}")
_FW_SERVICE = LazyPattern(
    rf"(?:\t\tip6? daddr (?P<vip>{_FW_IP}) ip6? saddr != (?P<pods>[0-9a-fA-F.:/]+) jump mark-for-masquerade\n)?\t\t(?:"
    r"numgen random mod (?P<n_vmap>[1-9]\d{0,9}) vmap \{ (?P<vmap>[^\n{}@\"()\[\]]*) \}\n"
    r"|meta l4proto (?:tcp|udp|sctp) dnat (?:ip6? )?to numgen random mod (?P<n_map>[1-9]\d{0,9}) map "
    r"\{ (?P<map>[^\n{}@\"()\[\]]*) \}\n"
    rf"|{_FW_DNAT})")
# an endpoint chain of that shape as nft lists it, head to closing line (`_endpoint_run`; `_FT_WS` for ASCII)
_FW_EP_BLOCK = LazyPattern(r'\tchain (endpoint-[^\s"{}]*) \{\n' + _FW_ENDPOINT.pattern + r"\t\}\n")
_FW_EP_BLOCK_ASCII = LazyPattern(_FW_EP_BLOCK.pattern.replace(r"[^\s", f"[^{_FT_WS}"))
_FW_VMAP_ITEMS = LazyPattern(r"\d{1,10} : (?:goto|jump) [^\s,{}]+(?:, \d{1,10} : (?:goto|jump) [^\s,{}]+)*")
_FW_MAP_ITEM = LazyPattern(r"(\d{1,10}) : ([^\s,]+) \. (\d{1,5})(?:, |$)")
_MASQ_JUMP = ("mark-for-masquerade",)
_M40 = (1 << 40) - 1
_INTS = Ints()
_SHARES: dict[tuple[int, int, int], Fraction] = {}


def _int(s: str) -> int:
    """int(s), one object for each port number (a whole node has 100,000 backends on a few ports)."""
    return _INTS[s]


def _share(prob: Fraction, n: int) -> Fraction:
    """prob / n, one Fraction for each (every Service of n endpoints has the same shares)."""
    key = (prob.numerator, prob.denominator, n)
    v = _SHARES.get(key)
    if v is None:
        v = prob * Fraction(1, n)
        if len(_SHARES) < 4096:
            _SHARES[key] = v
    return v


def _endpoint_run(plain: _Plain, j: int, targets: list[str]) -> tuple[list[str], list[str], list[int]] | None:
    """The kept-apart chains j, j+1, … when they are the targets, in order, each an endpoint chain of kube-proxy's
    shape (`_FW_ENDPOINT`) with its own backend: their hairpin sources, backend addresses and ports (one regex
    call for them all, not a lookup and a match per chain); None otherwise. (The chains from j's head to the end
    of j+k-1 are those k and chains of other names: a chain of the block's shape and name prefix is kept apart,
    and names are the chains', once each; the k matches named as the targets are them.)"""
    k = len(targets)
    if not k or j + k > len(plain) or not plain.at(j, targets[0]):
        return None
    src = plain.src
    start, stop = plain.starts[j] - len(targets[0]) - 10, plain.end(j + k - 1) + 3
    rows = (_FW_EP_BLOCK_ASCII if src.isascii() else _FW_EP_BLOCK).findall(src, start, stop)
    if [r[0] for r in rows] != targets:
        return None
    ips = [r[3] or r[2] for r in rows]
    ports = list(map(_INTS.__getitem__, [r[4] for r in rows]))
    if len(set(zip(ips, ports, strict=True))) != k:
        return None  # (an endpoint twice: its shares add up, as the walk below does)
    return [r[1] for r in rows], ips, ports


def _vmap_targets(items: str, n: int) -> list[str] | None:
    """`0 : goto a, 1 : goto b, …` with the keys 0…n-1 in order and each target once (what the general walk
    reads as a 1/n share each, in this order); None otherwise."""
    if "jump" not in items:  # kube-proxy's gotos: the targets by a literal-led findall, the rest by one compare
        out = (_FW_GOTO_TARGET_ASCII if items.isascii() else _FW_GOTO_TARGET).findall(items)
        if len(out) != n or ", ".join(map(str.__add__, _goto_heads(n), out)) != items:
            return None
    else:
        if _FW_VMAP_ITEMS.fullmatch(items) is None:
            return None
        parts = items.split(", ")
        out = [p.rpartition(" ")[2] for p in parts]
        if len(out) != n or [p.partition(" ")[0] for p in parts] != _keys(n):
            return None
    return out if len(set(out)) == n else None


_FW_GOTO_TARGET = LazyPattern(r" : goto ([^\s,{}]+)")
_FW_GOTO_TARGET_ASCII = LazyPattern(_FW_GOTO_TARGET.pattern.replace(r"[^\s", f"[^{_FT_WS}"))  # (as `_FT_WS` says)
_HEADS: dict[int, list[str]] = {}


def _goto_heads(n: int) -> list[str]:
    """["0 : goto ", "1 : goto ", …] for n items."""
    v = _HEADS.get(n)
    if v is None:
        v = [f"{i} : goto " for i in range(n)]
        if len(_HEADS) < 1024:
            _HEADS[n] = v
    return v


_KEYS: dict[int, list[str]] = {}


def _keys(n: int) -> list[str]:
    """["0", "1", …, str(n-1)]."""
    v = _KEYS.get(n)
    if v is None:
        v = [str(i) for i in range(n)]
        if len(_KEYS) < 1024:
            _KEYS[n] = v
    return v


def _map_pairs(items: str, n: int) -> list[tuple[str, int]] | None:
    """`0 : ip . port, 1 : …` with keys 0…n-1 in order; None otherwise."""
    out: list[tuple[str, int]] = []
    pos = 0
    for m in _FW_MAP_ITEM.finditer(items):
        if m.start() != pos or m.group(1) != str(len(out)):
            return None
        out.append((m.group(2), _int(m.group(3))))
        pos = m.end()
    if pos != len(items) or len(out) != n:
        return None
    return out


def _verdict_target(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "", None
    m = re.match(r"^(goto|jump) (\S+)$", value)
    if m:
        return m.group(1), m.group(2)
    return value.split()[0], None


def _port(s: str) -> int | None:
    return int(s) if s.isdecimal() and len(s) <= 5 and int(s) <= 65535 else None


def _key3(e: _Elem) -> tuple[str, str, int] | None:
    """`addr . proto . port` element key, None when it is not one."""
    if len(e.key) != 3:
        return None
    port = _port(e.key[2])
    return None if port is None else (e.key[0], _proto(e.key[1]), port)


def _key2(e: _Elem) -> tuple[str, int] | None:
    if len(e.key) != 2:
        return None
    port = _port(e.key[1])
    return None if port is None else (_proto(e.key[0]), port)


def _proto(p: str) -> str:
    return {"6": "TCP", "17": "UDP", "132": "SCTP"}.get(p, p.upper())


_JUMP_TARGET = LazyPattern(r"\b(?:goto|jump) ([^\s,}]+)")


def _reachable(t: _Table) -> set[str]:
    """Marks the table's chains the base chains reach (`_Chain.reached`); returns the names reached that are no
    chain of the table."""
    missing: set[str] = set()
    chains, plain = t.chains, t.plain
    todo = [c for c, ch in chains.items() if ch.hook]
    masq = chains.get(_MASQ_JUMP[0])
    while todo:
        c = todo.pop()
        ch = chains.get(c)
        if ch is None and plain is not None and (i := plain.find(c)) >= 0:  # an endpoint chain kept apart
            if plain.reached[i]:
                continue
            plain.reached[i] = 1
            if plain.masq_only[i]:  # (walked as kube-proxy's: its one jump is mark-for-masquerade)
                if masq is None or not masq.reached:
                    todo.append(_MASQ_JUMP[0])
                continue
            start, end = plain.starts[i], plain.end(i)
            if plain.src.find("vmap @", start, end) < 0:  # (as for a lazy chain below)
                todo += _JUMP_TARGET.findall(plain.src, start, end)
                continue
            ch = plain.chain(i)
        elif ch is None:
            if c in missing:
                continue
            missing.add(c)
        elif ch.reached:
            continue
        else:
            ch.reached = True
        if ch is not None and ch.jumps is not None and ch.lazy and FAST:
            if ch.jumps is not _MASQ_JUMP or masq is None or not masq.reached:  # (an endpoint's: marked already)
                todo += ch.jumps
            if ch.apart is not None and plain is not None:  # a run of endpoint chains kept apart, walked fast
                run = ch.apart
                plain.reached[run.start:run.stop] = b"\x01" * len(run)
                if run and (masq is None or not masq.reached):  # (their one jump)
                    todo.append(_MASQ_JUMP[0])
            continue
        if ch is not None and ch.lazy and FAST:
            start, length, _, _ = _unpack(ch.lazy)
            if ch.src.find("vmap @", start, start + length) < 0:  # each rule's jumps, from the chain's text
                todo += _JUMP_TARGET.findall(ch.src, start, start + length)
                continue
        for r in (ch or _Chain(c)).rules:
            if "goto" in r.text or "jump" in r.text:
                todo += _JUMP_TARGET.findall(r.text)
            if "vmap @" not in r.text:
                continue
            for m in re.finditer(r"vmap @(\S+)", r.text):
                st = t.sets.get(m.group(1))
                for e in st.elements if st else []:
                    _, tgt = _verdict_target(e.value)
                    if tgt:
                        todo.append(tgt)
    return missing


def _services_rules(t: _Table) -> list[str]:
    """The `services` chain's rules, with helper chains it jumps to (early kube-proxy's `nodeports`) inlined."""
    out: list[str] = []
    for r in t.chains.get("services", _Chain("services")).rules:
        m = _GOTO.match(r.text)
        if m and not m["target"].startswith(_BASE_PREFIXES) and m["target"] in t.chains:
            out += [f"{m['cond'].strip()} {x.text}".strip() for x in t.chains[m["target"]].rules]
        else:
            out.append(r.text)
    return out


def _rules_to_entries(t: _Table, rules: NodeRules, later: Walks | None = None) -> None:
    """The table's entries into `rules.services`; with `later`, each entry is a shell (its name, address, port,
    kind and what the maps say of it) whose walk `later` makes when it is written."""
    it = _Interp(t)
    ipx = it.ipx
    cluster_ips = {e.key[0] for e in t.sets["cluster-ips"].elements} if "cluster-ips" in t.sets else set()
    services_rules = _services_rules(t)
    global_masq: list[str] = []
    for r in services_rules:
        m = _MASQ_MARK.match(r)
        if m:
            global_masq.append(_cond_words(m["cond"].strip()) + " is masqueraded")
    hairpin = any("@hairpin-connections" in r.text and "masquerade" in r.text
                  for r in t.chains.get("masquerading", _Chain("")).rules)
    nodeport_addrs: list[str] = []
    nodeport_via = ""
    for r in services_rules:
        if "vmap @service-nodeports" in r:
            if "fib daddr type local" in r:
                nodeport_addrs, nodeport_via = [""], "any local address of the node (fib daddr type local)"
            else:
                m = re.search(rf"{ipx} daddr @(\S+)", r)
                if m and m.group(1) in t.sets:
                    nodeport_addrs = [e.key[0] for e in t.sets[m.group(1)].elements]
                    nodeport_via = f"the addresses in @{m.group(1)}"
                    rules.nodeport_addresses = list(nodeport_addrs)
    firewall: dict[tuple[str, str, int], list[str]] = {}
    fw_path: dict[tuple[str, str, int], str] = {}
    for e in t.sets.get("firewall-ips", _Set("")).elements:
        k3 = _key3(e)
        if k3 is None:
            continue
        _, tgt = _verdict_target(e.value)
        ranges: list[str] = []
        for fr in (t.get(tgt or "") or _Chain("")).rules:
            m = re.match(rf"^{ipx} saddr != (?:\{{ (.*) \}}|(\S+)) drop$", fr.text)
            if m:
                ranges = _split_top(m.group(1)) if m.group(1) else [m.group(2)]
        key = k3
        firewall[key] = ranges
        fw_path[key] = tgt or ""

    entries: dict[tuple[str, str, int], ServiceEntry] = {}

    def add_entry(addr: str, proto: str, port: int, kind: str, target: str | None, via: list[str]) -> None:
        if later is not None:
            named = spn_from_chain(target) if target else None
            shell = ServiceEntry(name=named[0] if named else None, protocol=proto, address=addr, port=port,
                                 kind="LoadBalancer" if (addr, proto, port) in firewall else kind)
            ch = t.chains.get(target or "")
            later.pending[id(shell)] = (fill, kind, target if ch is None else ch.name, via,  # (the chain's own name)
                                        t.chains if t.plain is not None else None)
            entries[(addr, proto, port)] = shell
            rules.services.append(shell)
            return
        fill(None, addr, proto, port, kind, target, via, ())

    def fill(entry: ServiceEntry | None, addr: str, proto: str, port: int, kind: str, target: str | None,
             via: list[str], verdicts: Iterable[bool]) -> ServiceEntry:
        """The entry walked (a shell made whole: what was said of it since, its later notes and the no-endpoint
        maps' verdicts, kept)."""
        w = _Walk()
        if target:
            it.walk(target, Fraction(1), w)
        named = spn_from_chain(target) if target and entry is None else None  # (a shell's name is kept below)
        shell = entry
        entry = ServiceEntry(name=named[0] if named else None, protocol=proto, address=addr, port=port, kind=kind,
                             backends=w.backends, affinity_seconds=w.affinity or None,
                             path=via + w.path, masquerade=list(w.masquerade), notes=list(w.notes),
                             policy_local=w.policy_local, no_local_endpoints=w.no_local)
        if kind == "ClusterIP":
            entry.masquerade = global_masq + entry.masquerade
        if hairpin:
            entry.masquerade.append("hairpin traffic (an endpoint reaching itself through the service) is "
                                    "masqueraded via @hairpin-connections")
        if not w.backends:
            entry.no_endpoints = not w.no_local
            if w.dropped and w.dropped != "missing chain":
                done = {"drop": "dropped", "reject": "rejected"}.get(w.dropped, w.dropped)
                entry.notes.append(f"traffic is {done} in {entry.path[-1] if entry.path else target}")
        key = (addr, proto, port)
        if key in firewall:
            entry.source_ranges = firewall[key]
            entry.path.insert(0, fw_path[key])
            entry.kind = "LoadBalancer"
        if kind == "ExternalIP" and key not in firewall:
            entry.notes.append(EXTERNAL_OR_LB_NOTE)
        if shell is not None:
            if w.apart and later is not None:
                later.kept_apart[id(shell)] = w.apart
            entry.name = shell.name
            entry.notes += shell.notes
            for drop in verdicts:  # the no-endpoint maps' verdicts, in order (see below)
                if drop:
                    entry.no_local_endpoints, entry.no_endpoints = True, False
                else:
                    entry.no_endpoints = True
            return entry
        entries[key] = entry
        rules.services.append(entry)
        return entry

    for e in t.sets.get("service-ips", _Set("")).elements:
        k3 = _key3(e)
        if k3 is None:
            rules.notes.append(f"unreadable @service-ips element {' . '.join(e.key)!r}")
            continue
        addr, proto, port = k3
        _, target = _verdict_target(e.value)
        kind = "ClusterIP" if (target or "").startswith("service-") or addr in cluster_ips else "ExternalIP"
        add_entry(addr, proto, port, kind, target, _VIA_IPS)
    for e in t.sets.get("service-nodeports", _Set("")).elements:
        k2 = _key2(e)
        if k2 is None:
            rules.notes.append(f"unreadable @service-nodeports element {' . '.join(e.key)!r}")
            continue
        proto, port = k2
        _, target = _verdict_target(e.value)
        for addr in nodeport_addrs or [""]:
            add_entry(addr, proto, port, "NodePort", target, _VIA_NODEPORTS)
            if nodeport_via:
                rules.services[-1].notes.append(f"NodePort accepted on {nodeport_via}")

    # no-endpoint maps are consulted in the filter hooks (priority dstnat-10), before any DNAT
    for mapname, kind_np in (("no-endpoint-services", False), ("no-endpoint-nodeports", True)):
        for e in t.sets.get(mapname, _Set("")).elements:
            k2 = _key2(e) if kind_np else None
            k3 = None if kind_np else _key3(e)
            if k2 is not None:
                addrs = nodeport_addrs or [""]
                proto, port = k2
            elif k3 is not None:
                addrs = [k3[0]]
                proto, port = k3[1], k3[2]
            else:
                rules.notes.append(f"unreadable @{mapname} element {' . '.join(e.key)!r}")
                continue
            verdict, target = _verdict_target(e.value)
            action = "rejected" if target == "reject-chain" or verdict == "reject" else (
                "dropped" if verdict == "drop" else f"sent to {e.value}")
            for addr in addrs:
                key = (addr, proto, port)
                entry = entries.get(key)
                if entry is None:
                    kind = "NodePort" if kind_np else ("ClusterIP" if addr in cluster_ips else "ExternalIP")
                    entry = ServiceEntry(name=e.comment, protocol=proto, address=addr, port=port, kind=kind,
                                         path=["filter hooks", f"@{mapname}"])
                    entries[key] = entry
                    rules.services.append(entry)
                entry.name = entry.name or e.comment
                if later is not None and id(entry) in later.pending:  # (a shell's: replayed on its walk)
                    later.verdicts.setdefault(id(entry), []).append(verdict == "drop")
                if verdict == "drop":
                    # kube-proxy writes "drop" here only for a Local traffic policy without local endpoints
                    # (internalTrafficPolicy for the ClusterIP, externalTrafficPolicy for the others); a Service
                    # with no endpoints at all gets "goto reject-chain" (nftables/proxier.go)
                    entry.no_local_endpoints = True
                    entry.no_endpoints = False
                    entry.notes.append(f"new connections are {action} by @{mapname}: no local endpoints")
                else:
                    entry.no_endpoints = True
                    entry.notes.append(f"new connections are {action} by @{mapname}: the service has no endpoints")
    if later is not None:
        entries.clear()  # (held by the walks' closure otherwise; a shell's walk looks nothing up)


_VIA_IPS = ["services", "@service-ips"]  # (each entry's path is a new list made from these)
_VIA_NODEPORTS = ["services", "@service-nodeports"]


def _stats(t: _Table, stats: RuleStats, services: list[ServiceEntry],
           kept_apart: dict[int, array[int]] | None = None) -> None:
    """The table's counts; `kept_apart`: id of an entry -> the `t.plain` chains of its path (not in its `path`)."""
    plain = t.plain
    stats.rules += t.n_rules if t.n_rules is not None else sum(c.count() for c in t.chains.values())
    stats.chains += len(t.chains) + (len(plain) if plain is not None else 0)
    apart = kept_apart or {}
    ex = stats.extra
    ex["sets"] = ex.get("sets", 0) + sum(1 for s in t.sets.values() if not s.is_map)
    ex["maps"] = ex.get("maps", 0) + sum(1 for s in t.sets.values() if s.is_map)
    ex["mapElements"] = ex.get("mapElements", 0) + sum(len(s.elements) for s in t.sets.values() if s.is_map)
    ex["setElements"] = ex.get("setElements", 0) + sum(len(s.elements) for s in t.sets.values() if not s.is_map)
    # a service port's chains (those of its entries' paths, each once), by name in the order names first appear;
    # a set per name only where a name has more than one entry (a set of ~11 chains each for 50,000 Services
    # was 35 MB at the end of a whole listing's JSON)
    many: dict[str, set[str | int]] = {}
    seen: set[str] = set()
    for s in services:
        if s.name:
            if s.name in seen:
                many[s.name] = set()
            seen.add(s.name)
    for s in services:
        if s.name in many:
            many[s.name].update(c for c in s.path if c.startswith(_BASE_PREFIXES))
            many[s.name].update(apart.get(id(s), ()))  # (an index of `plain`: never equal to a name)
    tc = t.chains
    done: set[str] = set()
    for s in services:
        name = s.name
        if not name or name in done:
            continue
        chains: set[str | int] = many[name] if name in many else {c for c in s.path if c.startswith(_BASE_PREFIXES)}
        done.add(name)
        k = 0
        for c in chains:
            ch = tc.get(c) if isinstance(c, str) else None
            if ch is not None:
                k += ch.lazy >> 120 if ch.lazy else len(ch.rules)  # `count()`, inline: 100,000s of chains
        if plain is not None:
            ids = apart.get(id(s), ()) if name not in many else [c for c in chains if isinstance(c, int)]
            for i in ids:
                k += plain.rows(i)
        stats.per_service[name] = stats.per_service.get(name, 0) + k


def parse_nft(text: str, source: str, only: set[str] | None = None, as_text: bool = False) -> NodeRules:
    """kube-proxy's nftables tables (text, JSON or `nft -f` style) → NodeRules (mode "nftables").

    `only`: names (`ns/svc`, `ns/svc:port`) and/or addresses (`VIP`, `VIP:port`, `:nodePort`), as for
    `parse_iptables_save`: the text is cut down to the chains and map elements those name before it is parsed,
    so one Service costs a few scans of the text instead of reading every chain of a big node.

    `as_text`: the caller writes the entries' JSON and needs nothing else of them: they are walked as they are
    written (`rules.deferred`, a `Walks`), with the counts made after the last."""
    stripped = text.lstrip()
    if not stripped:
        raise InputError("empty nft dump", source=source)
    if "\x00" in text[:8192]:
        raise InputError("binary data, not nft output", source=source)
    partial = bool(only) and not stripped.startswith("{")
    if partial and only:
        try:
            return _parse_nft(prefilter(text, only), source, len(_ANY_CHAIN.findall(text)))
        except (InputError, ValueError):
            pass  # a damaged dump: the whole parse below says where
    try:
        return _parse_nft(text, source, None, as_text)
    except ValueError as e:  # int() refuses numbers of more than 4300 digits (sys.get_int_max_str_digits)
        if "Exceeds the limit" not in str(e):
            raise
        raise InputError("a number thousands of digits long: not nft output", source=source) from None


def _count(t: _Table, rules: NodeRules, mine: list[ServiceEntry], kept_apart: dict[int, array[int]] | None = None
           ) -> None:
    """The table's counts and the chains nothing reaches (after its entries' walks: they mark what they read)."""
    _stats(t, rules.stats, mine, kept_apart)
    _reachable(t)
    names = [c for c, ch in t.chains.items() if not ch.reached and c.startswith(_BASE_PREFIXES)]
    if t.plain is not None:
        names += t.plain.unreached()  # (all endpoint chains)
    rules.unreferenced_chains += sorted(names)


class Walks:
    """A whole listing's entries walked as they are written (`NodeDumps.entries_as_text`: `rules -o json`), each
    made, written and dropped in turn: `rules.services` holds their shells (name, address, port, kind, what the
    maps say; after its walk, its path), not 100,000 backends and their masquerade phrases at once. The counts
    and unreferenced chains need every walk: `finish` makes them after the last (the JSON has them after the
    entries)."""

    def __init__(self) -> None:
        # id of a shell -> (its walk, kind, target chain, the path to it, its table's chains kept apart); the
        # no-endpoint maps' verdicts on it
        self.pending: dict[int, tuple[Callable[..., ServiceEntry], str, str | None, list[str],
                                      dict[str, _Chain] | None]] = {}
        self.verdicts: dict[int, list[bool]] = {}
        self.tables: list[tuple[_Table, list[ServiceEntry]]] = []
        self.kept_apart: dict[int, array[int]] = {}  # id of a shell -> the `_Plain` chains of its path

    def entry(self, e: ServiceEntry) -> ServiceEntry:
        """The entry `e` stands for, walked (once; the shell keeps the walk's path for the counts: the chains
        kept apart as their indexes, not as 10 names an entry made from the text)."""
        p = self.pending.pop(id(e), None)
        if p is None:
            return e
        fill, kind, target, via, chains = p
        full = fill(e, e.address, e.protocol, e.port, kind, target, via, self.verdicts.pop(id(e), ()))
        # (an endpoint chain of no `chains` is one kept apart, its index in `kept_apart`, or missing: not counted)
        e.path = full.path if chains is None else [c for c in full.path if c in chains or not c.startswith("endpoint-")]
        return full

    def finish(self, rules: NodeRules) -> None:
        for e in rules.services:  # (any not written)
            self.entry(e)
        for t, mine in self.tables:
            _count(t, rules, mine, self.kept_apart)
        self.tables = []
        self.kept_apart = {}


def _parse_nft(text: str, source: str, total_chains: int | None, as_text: bool = False) -> NodeRules:
    stripped = text.lstrip()
    walked = as_text and FAST and total_chains is None
    tables = _read_json(text, source) if stripped.startswith("{") else _read_text(text, source, walked)
    kp = [t for t in tables if t.name == "kube-proxy"]
    # (a listing's chain names are its text's: without "KUBE-" in it, none of its 100,000s of names is looked at)
    iptables_nft = ((stripped.startswith("{") or "KUBE-" in text)
                    and any(c.startswith(_KUBE_PROXY_IPT) for t in tables for c in t.chains)) or is_iptables_nft(
        text[:65536])
    if not kp:
        if iptables_nft:
            raise InputError("no kube-proxy nftables table: " + _IPTABLES_NFT_HINT, source=source,
                             hint="kube-proxy's KUBE-* chains in `table ip nat` mean --proxy-mode=iptables")
        names = ", ".join(f"{t.family} {t.name}" for t in tables) or "none"
        raise InputError(f"no `kube-proxy` table in this nft dump (tables: {names})", source=source,
                         hint="run `nft list table ip kube-proxy` (and ip6) on the node")
    rules = NodeRules(mode="nftables", source=source)
    later = Walks() if walked else None
    rules.deferred = later
    if iptables_nft:
        rules.notes.append("the ruleset also holds iptables-nft KUBE-* chains (stale iptables-mode rules?)")
    for t in kp:
        before = len(rules.services)
        _rules_to_entries(t, rules, later)
        mine = rules.services[before:]
        if later is not None:
            later.tables.append((t, mine))
        else:
            _count(t, rules, mine)
        if "services" not in t.chains:
            rules.notes.append(f"table {t.family} kube-proxy has no `services` chain: kube-proxy has not synced")
    if total_chains is not None:
        rules.stats.chains = total_chains
        rules.notes.append("only the chains of the Service asked about were read; the chain count is for the "
                           "whole dump, the rule count for those chains")
    kinds = {k: i for i, k in enumerate(("ClusterIP", "ExternalIP", "LoadBalancer", "NodePort"))}
    rules.services.sort(key=lambda e: (kinds.get(e.kind, 9), _addr_key(e.address), e.port, e.protocol))
    return rules


_DOTTED = LazyPattern(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")


def _addr_key(a: str) -> tuple[int, bytes]:
    if _DOTTED.fullmatch(a):  # what ip_address makes of a plain dotted quad, without building one
        return (4, bytes(map(int, a.split("."))))
    import ipaddress

    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return (9, a.encode())
    return (ip.version, ip.packed)


# --------------------------------------------------------------------------- one Service only

_PER_SERVICE = r"(?:service|external|local|endpoint|firewall|affinity)-[A-Z2-7]{8}"
_ANY_CHAIN = LazyPattern(r"(?m)^[ \t]*chain \S+ \{$|^add chain ")
_CLOSE_LINE = LazyPattern(r"(?m)^[ \t]*\}$")
_FILTERED_SETS = frozenset({"cluster-ips", "service-ips", "service-nodeports", "no-endpoint-services",
                            "no-endpoint-nodeports", "firewall-ips", "hairpin-connections"})


def _only_terms(only: set[str]) -> tuple[set[str], set[str], set[str]]:
    """`only` split into addresses, `ns/svc` names and NodePorts."""
    addrs: set[str] = set()
    names: set[str] = set()
    ports: set[str] = set()
    for o in only:
        if "/" in o:
            names.add(o.split(":", 1)[0])
        elif o.startswith(":") and o[1:].isdigit():
            ports.add(o[1:])
        elif o.startswith("["):
            addrs.add(o[1:].partition("]")[0])
        elif o.count(":") == 1:
            addrs.add(o.partition(":")[0])
        elif o:
            addrs.add(o)
    return addrs, names, ports


class _ElemFilter:
    """Whether one set/map element belongs to the Services asked about (by address, chain, comment, NodePort)."""

    def __init__(self, addrs: set[str], names: set[str], ports: set[str]) -> None:
        alts = [rf"(?<![\w.:]){re.escape(a)}(?![\w.:])" for a in sorted(addrs)]
        alts += [re.escape(f"-{n}/") for n in sorted(names)]
        alts += [re.escape(f'"{n}"') for n in sorted(names)] + [re.escape(f'"{n}:') for n in sorted(names)]
        alts += [rf"^(?:tcp|udp|sctp|6|17|132) \. {p}(?!\d)" for p in sorted(ports)]
        self.pattern = re.compile("|".join(alts)) if alts else None

    def __call__(self, elem: str) -> bool:
        return self.pattern is not None and self.pattern.search(elem.strip()) is not None


def prefilter(text: str, only: set[str]) -> str:
    """The dump cut down to what the Services in `only` need: the shared chains and sets, their own chains,
    and only their elements of the big maps (service-ips, cluster-ips, no-endpoint-…).

    Every scan is a C-speed `str.find` or `re.sub` over the text; Python only sees the few hits."""
    addrs, names, ports = _only_terms(only)
    ports |= {o.rpartition(":")[2] for o in only if "/" not in o and o.rpartition(":")[2].isdigit()}
    node_ips = re.search(r"(?m)^[ \t]*set nodeport-ips \{$|^add element \S+ \S+ nodeport-ips ", text)
    node_ips_text = text[node_ips.start():text.find("}", node_ips.start())] if node_ips else ""
    if any(re.search(rf"(?<![\w.:]){re.escape(a)}(?![\w.:])", node_ips_text) for a in addrs):
        return text  # a node address: it takes every NodePort, so every Service may be asked about
    # an address or a NodePort names its Service through the chain its map element jumps to
    heads = [f"{a} . " for a in addrs] + [f"{p} . {n} " for p in ("tcp", "udp", "sctp") for n in ports]
    for head in heads:
        pos = text.find(head)
        while pos >= 0:
            before = text[max(0, pos - 2):pos]
            if not before or before[-1] in " \t{," and before != ". ":
                m = _ELEM_TARGET.match(text, pos + len(head))
                named = spn_from_chain(m.group(1)) if m else None
                if named:
                    names.add(named[0].split(":", 1)[0])
            pos = text.find(head, pos + 1)
    keep = "|".join(re.escape(f"-{n}/") for n in sorted(names))
    lookahead = f"(?!{keep})" if keep else ""
    if re.search(r"(?m)^add ", text[:65536]):
        text = re.sub(rf"(?m)^(?:add|flush|delete|destroy) (?:chain|rule|set|map) \S+ \S+ {_PER_SERVICE}{lookahead}"
                      r"[^\n]*\n?", "", text)
    else:
        text = re.sub(rf"(?ms)^([ \t]*)(?:chain|set|map) {_PER_SERVICE}{lookahead}[^\n]*\{{$.*?^\1\}}\n?", "",
                      text)
    return _filter_elements(text, addrs, names, ports)


_ELEM_TARGET = LazyPattern(r"(?:\S+ \. \d+ )?(?:comment \"[^\"]*\" )?: (?:goto|jump) ([^\s,}]+)")


_PROTOS = frozenset({"tcp", "udp", "sctp", "6", "17", "132"})


def _filter_elements(text: str, addrs: set[str], names: set[str], ports: set[str]) -> str:
    # listing: `set|map NAME {` … `elements = { a, b, … }`; transaction: `add element FAMILY TABLE NAME { … }`
    spans: list[tuple[int, int, list[str], bool]] = []  # (start, end, elements, listing)
    for m in re.finditer(r"(?m)^[ \t]*(?:(?:set|map) (\S+) \{$|add element \S+ \S+ (\S+) \{)", text):
        name = m.group(1) or m.group(2)
        if name not in _FILTERED_SETS:
            continue
        if m.group(2):
            end = text.find("\n", m.end())
            end = len(text) if end < 0 else end + 1
            close = text.rfind("}", m.end(), end)
            if close >= 0:
                spans.append((m.start(), end, _split_top(text[m.end():close]), False))
            continue
        head = text.find("elements = {", m.end())
        nxt = _CLOSE_LINE.search(text, m.end())
        if head < 0 or nxt is None or head > nxt.start():
            continue
        close = text.find("}", head)
        if close >= 0:
            spans.append((head, close + 1, _split_top(text[head + len("elements = {"):close]), True))
    # elements kept by name or NodePort give the addresses that select the Service's cluster-ips element
    by_name = _ElemFilter(set(), names, ports)
    for _, _, elems, _ in spans:
        for e in elems:
            first = e.split(" ", 1)[0]
            if ":" in e.replace("::", "") and first not in _PROTOS and by_name(e):
                addrs.add(first)  # (a NodePort element's first word is its protocol: no address)
    wanted = _ElemFilter(addrs, names, ports)
    out: list[str] = []
    pos = 0
    for start, end, elems, listing in spans:
        kept = [e for e in elems if wanted(e)]
        out.append(text[pos:start])
        if listing and kept:
            out.append("elements = { " + ",\n\t\t\t     ".join(kept) + " }")
        elif kept:
            out.append(text[start:end])
        pos = end
    out.append(text[pos:])
    return "".join(out)

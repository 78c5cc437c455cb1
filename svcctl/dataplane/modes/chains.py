"""What a node's dumps say about how Services are proxied there, in words: mode detection that names what it found.

Each kube-proxy mode leaves its own chains (pkg/proxy/{iptables,ipvs,nftables}/proxier.go):
- iptables mode: KUBE-SVC-/KUBE-SEP-/KUBE-EXT-/KUBE-SVL- chains and KUBE-NODEPORTS;
- IPVS mode: KUBE-IPVS-FILTER, KUBE-IPVS-OUT-FILTER, KUBE-NODE-PORT, KUBE-LOAD-BALANCER (present even when no
  Service is programmed; its KUBE-CLUSTER-IP match-set rule only appears once the ipset has members);
- nftables mode: `table ip kube-proxy` / `table ip6 kube-proxy`.
kubelet writes KUBE-FIREWALL, KUBE-KUBELET-CANARY (and in old versions KUBE-MARK-DROP) whatever the proxy, so those
alone mean kube-proxy's rules are absent: it is not running, or a replacement handles Services.
Before 1.24 iptables mode wrote KUBE-XLB- chains (traffic policy Local), now KUBE-SVL-/KUBE-EXT-: such chains
beside current ones are leftovers of an older kube-proxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcctl.lazyre import LazyPattern

if TYPE_CHECKING:
    from svcctl.dataplane.dumps import NodeDumps
    from svcctl.dataplane.model import NodeRules

IPVS_CHAINS = ("KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER")
IPTABLES_MODE_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-SVL-", "KUBE-FW-", "KUBE-NODEPORTS",
                          "KUBE-XLB-")
KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-MARK-DROP", "KUBE-IPTABLES-HINT")
OLD_IPTABLES_PREFIXES = ("KUBE-XLB-",)
LEGACY_WARNING = "# Warning: iptables-legacy tables present"

# `:KUBE-X - [0:0]` (iptables-save), `Chain KUBE-X (…)` (iptables -L), `-A KUBE-X …`; at a line's start, found
# after a newline (a literal first character lets the regex engine skip ahead; `^` with re.M tries every position
# and was twice as slow), the first line matched on its own
_CHAIN_NAME = LazyPattern(r"(?::|Chain |-A )(KUBE-[A-Z0-9-]+)")
_CHAIN_NAME_NL = LazyPattern(r"\n(?::|Chain |-A )(KUBE-[A-Z0-9-]+)")
# the per-Service chains' prefixes: a summary keeps which of them appear, not their names (110,000 at 10,000 Services)
_PER_SERVICE = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-SVL-", "KUBE-FW-")
_LAST: list[tuple[str, frozenset[str], frozenset[str]]] = []
_PREFIX_RES = [(p, (LazyPattern(r"(?::|Chain |-A )" + p), LazyPattern(r"\n(?::|Chain |-A )" + p))) for p in _PER_SERVICE]
# one scan for the names and the rarer per-Service prefixes (a search for an absent prefix reads the whole dump):
# every KUBE-* name but the 100,000s of KUBE-SVC-/KUBE-SEP- ones, which are only looked for
_MANY = ("KUBE-SVC-", "KUBE-SEP-")
_FEW = tuple(p for p in _PER_SERVICE if p not in _MANY)
_NOT_MANY = r"(?!" + "|".join(p[5:] for p in _MANY) + ")"
_SOME_NAME = LazyPattern(r"(?::|Chain |-A )(KUBE-" + _NOT_MANY + r"[A-Z0-9-]+)")
_SOME_NAME_NL = LazyPattern(r"\n(?::|Chain |-A )(KUBE-" + _NOT_MANY + r"[A-Z0-9-]+)")


def kube_chains(text: str) -> set[str]:
    """Every KUBE-* chain an iptables-save or `iptables -L` text declares or appends to."""
    found = set(_CHAIN_NAME_NL.findall(text))
    m = _CHAIN_NAME.match(text)
    if m:
        found.add(m.group(1))
    return found


def _summary(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(the KUBE-* chains other than per-Service ones, the per-Service prefixes that appear) of a text — all mode
    detection and the notes ask. Kept for the last text asked about (by identity): they ask up to six times about
    the same dump, each scan of a 10,000-Service dump a tenth of a second; the names themselves are not kept (a
    set of 110,000 strings held through the parse was a tenth of a whole dump's memory)."""
    if _LAST and _LAST[0][0] is text:
        return _LAST[0][1], _LAST[0][2]
    some = set(_SOME_NAME_NL.findall(text))
    m = _SOME_NAME.match(text)
    if m:
        some.add(m.group(1))
    prefixes = {p for p in _FEW if any(n.startswith(p) for n in some)}
    names = {n for n in some if not n.startswith(_FEW)}  # the per-Service ones are never listed, only looked for
    prefixes |= {p for p, rx in _PREFIX_RES if p in _MANY and (rx[0].match(text) or rx[1].search(text))}
    _LAST[:] = [(text, frozenset(names), frozenset(prefixes))]
    return _LAST[0][1], _LAST[0][2]


_GLUE: list[tuple[str, bool]] = []


def cluster_ip_set(text: str) -> bool:
    """Whether the text names IPVS mode's KUBE-CLUSTER-IP ipset; kept for the last text asked about (by identity):
    mode detection asks twice per mode about the same dump, each search of a 10,000-Service dump 15 ms."""
    if _GLUE and _GLUE[0][0] is text:
        return _GLUE[0][1]
    _GLUE[:] = [(text, "KUBE-CLUSTER-IP" in text)]
    return _GLUE[0][1]


def ipvs_chains(text: str) -> list[str]:
    """The IPVS-mode-only chains present (kube-proxy --proxy-mode=ipvs wrote this iptables ruleset)."""
    found, _ = _summary(text)
    return [c for c in IPVS_CHAINS if c in found]


def kube_proxy_absent(text: str) -> str | None:
    """A sentence when an iptables text holds tables but none of kube-proxy's chains (of any mode), else None."""
    if not text or text.isspace():  # not `text.strip()`: a copy of the whole dump, at the parse's peak
        return None
    chains, prefixes = _summary(text)
    if prefixes or any(c not in KUBELET_CHAINS for c in chains):
        return None
    seen = f" (only kubelet's {', '.join(sorted(chains))})" if chains else ""
    return (f"no kube-proxy chains in this dump{seen}: kube-proxy is not running on this node, or a replacement "
            "(Cilium, Calico eBPF, kube-router, …) handles Services; give that dataplane's own listing")


def old_layout(text: str) -> str | None:
    """A sentence when an iptables dump holds chains of an older kube-proxy's layout."""
    chains, prefixes = _summary(text)
    old = sorted(c for c in chains if c.startswith(OLD_IPTABLES_PREFIXES))
    if not old:
        return None
    current = bool(prefixes & {"KUBE-SVL-", "KUBE-EXT-"})
    shown = ", ".join(old[:3]) + (f" (+{len(old) - 3} more)" if len(old) > 3 else "")
    if current:
        return (f"{len(old)} KUBE-XLB- chain(s) of kube-proxy before 1.24 beside the current KUBE-SVL-/KUBE-EXT- "
                f"layout: leftovers of an older kube-proxy ({shown})")
    return f"the layout of kube-proxy before 1.24 (KUBE-XLB- chains: {shown}): an old kube-proxy, or stale rules"


def legacy_and_nft(text: str) -> bool:
    """iptables-nft prints this warning (save and -L forms) when legacy tables also exist on the node."""
    return LEGACY_WARNING in text[:65536]


def legacy_and_nft_of(dumps: NodeDumps) -> bool:
    """Whether either iptables family's dump carries iptables-nft's legacy-tables warning."""
    return any(legacy_and_nft(dumps.get(k) or "") for k in ("iptables", "ip6tables"))


def name_what_was_found(parts: list[NodeRules], texts: list[str]) -> None:
    """Notes that name what an iptables dump is when it is not a current kube-proxy's iptables mode: no
    kube-proxy chains at all (not running, or replaced), or an older kube-proxy's layout."""
    given = [t for t in texts if t and not t.isspace()]
    for part, text in zip(parts, given, strict=False):
        absent = kube_proxy_absent(text)
        if absent and not part.services:
            part.proxy_absent = absent
            part.notes = [absent, *(n for n in part.notes if not n.startswith("no KUBE-SERVICES chain"))]
        old = old_layout(text)
        if old:
            part.notes.append(old)
    if len(parts) > 1 and any(p.proxy_absent for p in parts) and not all(p.proxy_absent for p in parts):
        for p in parts:
            p.proxy_absent = ""

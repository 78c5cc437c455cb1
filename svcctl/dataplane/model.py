"""One model of what a node does with a packet, whatever mode kube-proxy runs in.

Parsers for iptables-save, ipvsadm and nft all produce `NodeRules`: per service entry (an address:port:protocol
a packet can be sent to), the backends it can reach and each one's share. Shares are exact `Fraction`s so that
1/3 stays 1/3 and a cascade 1/3, 1/2, 1 can be checked against 1/n.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from json.encoder import encode_basestring_ascii as _enc
from typing import Any, Protocol, runtime_checkable

from svcctl.jsonput import put
from svcctl.lazydc import dataclass, field

ENTRY_KINDS = ("ClusterIP", "NodePort", "ExternalIP", "LoadBalancer")
# ServiceEntry.glue flags (IPVS: a virtual server is reached only when its VIP is bound and in the ipset)
GLUE_VIP_NOT_BOUND = "vip-not-bound"  # the address is not on kube-ipvs0
GLUE_NOT_IN_IPSET = "not-in-ipset"  # the address:port is not in KUBE-CLUSTER-IP


@dataclass(slots=True)  # a whole dump holds 100,000 of them, twice while it is walked: 128 bytes each, not 224
class Backend:
    ip: str
    port: int
    probability: Fraction | None = None  # None: depends on load or source (lc, wlc, sh, mh)
    chain: str = ""  # KUBE-SEP-… / endpoint-… chain, when there is one
    weight: int | None = None  # IPVS
    active_conns: int | None = None  # IPVS
    inactive_conns: int | None = None  # IPVS
    local: bool | None = None  # reached through a KUBE-SVL / local- chain
    draining: bool = False  # IPVS weight 0: graceful termination
    connections: int | None = None  # iptables-save -c: new connections DNATed here (the counter's packets)
    state: str = ""  # the dataplane's own word (Cilium: active | terminating | quarantined | maintenance)
    node: str = ""  # the node the backend runs on, when the dataplane says (Cilium's nodeName)

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"

    @property
    def effective_state(self) -> str:
        """The dataplane's state word; kube-proxy modes have only active and draining (IPVS weight 0)."""
        return self.state or ("terminating" if self.draining else "active")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ip": self.ip,
            "port": self.port,
            "probability": float(self.probability) if self.probability is not None else None,
            "share": format_share(self.probability),
            "state": self.effective_state,
        }
        put(out, node=self.node, chain=self.chain, weight=self.weight)
        if self.active_conns is not None:
            out["activeConns"] = self.active_conns
            out["inactiveConns"] = self.inactive_conns
        return put(out, local=self.local, draining=self.draining or None, connections=self.connections)

    def json_text(self, nl: str) -> str:
        """`to_json()` as indented JSON text at indentation `nl` (a newline and spaces), the characters the JSON
        writer makes of that dict (tests/cli/test_jsonout.py holds them equal): a whole dump has 100,000 backends,
        and writing each dict key by key was a third of its `rules -o json`."""
        tail = self.json_tail(nl)
        if tail is None:
            import json  # a field of an unexpected type: the JSON module's own text of the dict, as deep as `nl`

            return json.dumps(self.to_json(), indent=2, default=str).replace("\n", nl)
        return f'{{{nl}  "ip": {_enc(self.ip)}' + tail

    def json_tail(self, nl: str) -> str | None:
        """`json_text(nl)` after the address (its text from `, "port"` to the closing brace), or None when a field
        has a type the model does not give it (then `json_text` is the JSON module's). Without a chain or node of
        its own (IPVS, nftables' dnat maps) it is a few cached texts for a whole dump."""
        w, a, ia, c, loc = self.weight, self.active_conns, self.inactive_conns, self.connections, self.local
        if not (self.ip.__class__ is str and self.port.__class__ is int and self.chain.__class__ is str
                and self.node.__class__ is str and self.state.__class__ is str and self.draining.__class__ is bool
                and (w is None or w.__class__ is int) and (a is None or a.__class__ is int)
                and (ia is None or ia.__class__ is int) and (c is None or c.__class__ is int)
                and (loc is None or loc.__class__ is bool)):
            return None
        p = self.probability
        tkey: tuple[Any, ...] | None = None
        if not self.chain and not self.node and (p is None or p.__class__ is Fraction):
            # no chain or node of its own (IPVS, nftables' dnat maps): the text after the address repeats
            tkey = (nl, self.port, None if p is None else (p.numerator, p.denominator), self.state, self.draining,
                    w, a, ia, loc, c)
            tail = _TAIL_TEXT.get(tkey)
            if tail is not None:
                return tail
        i = "," + nl + "  "
        if p is None:
            prob = share = "null"
        elif p.__class__ is Fraction:
            key = (p.numerator, p.denominator)
            hit = _SHARE_TEXT.get(key)
            if hit is None:
                hit = (float.__repr__(float(p)), _enc(format_share(p) or ""))
                if len(_SHARE_TEXT) < 4096:
                    _SHARE_TEXT[key] = hit
            prob, share = hit
        else:
            prob, share = float.__repr__(float(p)), _enc(format_share(p) or "")
        text = (f'{i}"port": {self.port}{i}"probability": {prob}{i}"share": {share}'
                f'{i}"state": {_enc(self.state or ("terminating" if self.draining else "active"))}')
        if self.node:
            text += f'{i}"node": {_enc(self.node)}'
        if self.chain:
            text += f'{i}"chain": {_enc(self.chain)}'
        if w is not None:
            text += f'{i}"weight": {w}'
        if a is not None:
            text += f'{i}"activeConns": {a}{i}"inactiveConns": {"null" if ia is None else ia}'
        if loc is not None:
            text += f'{i}"local": {"true" if loc else "false"}'
        if self.draining:
            text += f'{i}"draining": true'
        if c is not None:
            text += f'{i}"connections": {c}'
        text += nl + "}"
        if tkey is not None and len(_TAIL_TEXT) < 4096:
            _TAIL_TEXT[tkey] = text
        return text


# (numerator, denominator) -> a share's JSON texts (its float, its "n/d"): a dump repeats the same few shares
_SHARE_TEXT: dict[tuple[int, int], tuple[str, str]] = {}
# a backend's text after its address, by everything it is made of (`Backend.json_text`), for backends without a
# chain or node: 100,000 IPVS real servers are a few such texts
_TAIL_TEXT: dict[tuple[Any, ...], str] = {}


def format_share(p: Fraction | None) -> str | None:
    """1/3 as "1/3", a whole 1 as "1"; None (load- or source-dependent) stays None."""
    if p is None:
        return None
    return f"{p.numerator}/{p.denominator}" if p.denominator != 1 else str(p.numerator)


# the note a parser leaves on an external entry it cannot tell from a load-balancer IP (nftables keeps both in
# one map); the Service can tell, and `ServiceEntry.name_load_balancer` takes the note back
EXTERNAL_OR_LB_NOTE = "an external or load-balancer IP (nftables does not tell them apart)"


@dataclass(slots=True)  # a whole dump holds one per Service port and entry kind: 10,000s
class ServiceEntry:
    """One address:port a packet can be sent to, and where it goes from there."""

    name: str | None  # "ns/svc:port" (kube-proxy's service port name), None when unknown
    protocol: str  # TCP | UDP | SCTP
    address: str  # VIP, node IP ("" = any local address for NodePorts), external or LB IP
    port: int
    kind: str = "ClusterIP"  # one of ENTRY_KINDS
    backends: list[Backend] = field(default_factory=list)
    no_endpoints: bool = False  # REJECT / DROP "has no endpoints"
    no_local_endpoints: bool = False  # DROP "has no local endpoints"
    affinity_seconds: int | None = None
    scheduler: str | None = None  # IPVS
    path: list[str] = field(default_factory=list)  # chains / maps followed, in order
    masquerade: list[str] = field(default_factory=list)  # when traffic is marked for SNAT, in words
    source_ranges: list[str] = field(default_factory=list)  # loadBalancerSourceRanges (KUBE-FW / firewall)
    notes: list[str] = field(default_factory=list)  # anything else a user should be told
    policy_local: bool = False  # reached via KUBE-SVL / local- (traffic policy Local)
    # False when the parser could not tell the kind (IPVS without `ipset list`): `kind` is then a guess that the
    # cluster's Services settle (svcctl.analysis.ways.classify_entries)
    kind_known: bool = True
    scope: str = ""  # Cilium two-scope services: "internal" (in-cluster traffic) or "external"
    flags: list[str] = field(default_factory=list)  # the dataplane's own flags (Cilium bpf lb list, Calico)
    revnat: int | None = None  # Cilium reverse-NAT id (bpf lb list)
    # what the entry needs besides its rules and lacks, as structured flags (GLUE_*); analysis makes findings
    glue: list[str] = field(default_factory=list)

    def name_load_balancer(self) -> None:
        """The Service says this external entry is one of its load-balancer IPs."""
        self.kind = "LoadBalancer"
        self.notes = [n for n in self.notes if n != EXTERNAL_OR_LB_NOTE]

    def to_json(self, backends: Any = None) -> dict[str, Any]:
        """The entry as JSON; `backends`: what to put in its place instead of the list of their dicts (the JSON
        writer's lazily rendered array)."""
        out: dict[str, Any] = {
            "name": self.name,
            "protocol": self.protocol,
            "address": self.address,
            "port": self.port,
            "kind": self.kind,
            "backends": [b.to_json() for b in self.backends] if backends is None else backends,
            "noEndpoints": self.no_endpoints,
            "affinitySeconds": self.affinity_seconds,
        }
        return put(out, noLocalEndpoints=self.no_local_endpoints or None, scheduler=self.scheduler, path=self.path,
                   masquerade=self.masquerade, sourceRanges=self.source_ranges, notes=self.notes, scope=self.scope,
                   flags=self.flags, revNAT=self.revnat, kindKnown=None if self.kind_known else False)


@dataclass
class RuleStats:
    """How much kube-proxy is writing on this node."""

    rules: int = 0
    chains: int = 0
    per_service: dict[str, int] = field(default_factory=dict)  # "ns/svc:port" -> rules
    extra: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"rules": self.rules, "chains": self.chains, "perService": self.per_service, **self.extra}


@dataclass(slots=True)  # one per Service chain walked (10,000 held while a dump is followed)
class Walk:
    """What following one entry's chains has found so far: every rule-based mode's walk extends it."""

    backends: list[Backend] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # chains followed, in order
    masquerade: list[str] = field(default_factory=list)  # when traffic is marked for SNAT, in words
    notes: list[str] = field(default_factory=list)
    affinity: int | None = None  # session affinity seconds


@runtime_checkable
class WalkedEntries(Protocol):
    """`NodeRules.deferred` of entries walked as they are written (nftables.Walks): `services` holds shells, each
    made whole by `entry` as it is written; `finish` makes what needs every walk (counts, unreferenced chains)."""

    def entry(self, e: ServiceEntry) -> ServiceEntry: ...

    def finish(self, rules: NodeRules) -> None: ...


class EntriesInText(Protocol):
    """`NodeRules.deferred` of a whole table left in its checked text (ipvs_plain.PlainTable): `services` is
    empty, and the writer reads the entries a window at a time."""

    @property
    def windows(self) -> list[tuple[int, int]]: ...


@dataclass
class NodeRules:
    mode: str  # iptables | ipvs | nftables
    services: list[ServiceEntry] = field(default_factory=list)
    stats: RuleStats = field(default_factory=RuleStats)
    source: str = ""  # where the rules came from (file name, "node", "netns X", "pod kube-system/kube-proxy-x")
    backend: str = ""  # "legacy" | "nf_tables" for iptables mode
    notes: list[str] = field(default_factory=list)
    # chains that exist but nothing jumps to from the entry points (stale after partial syncs)
    unreferenced_chains: list[str] = field(default_factory=list)
    # chains whose kube-proxy name matches no current Service port or endpoint (needs cluster data)
    orphan_chains: list[str] = field(default_factory=list)
    # iptables mode: whether the KUBE-NODEPORTS jump takes 127.0.0.0/8 (False: `! -d 127.0.0.0/8`, kube-proxy
    # runs with --iptables-localhost-nodeports=false); None when the dump does not say
    localhost_nodeports: bool | None = None
    # the addresses NodePorts are accepted on when kube-proxy's nodePortAddresses restricts them (per-address
    # KUBE-NODEPORTS jumps, nft @nodeport-ips); empty: every local address
    nodeport_addresses: list[str] = field(default_factory=list)
    # what the input held, as "ipv4:nat", "ipv6:filter", … (empty: not tracked): a Service missing from a
    # family or table the dump does not hold is not missing from the node
    tables: set[str] = field(default_factory=set)
    # why no kube-proxy rules are in the dump at all (not running, or a replacement): a Service absent from
    # the rules is then not "not programmed" by kube-proxy
    proxy_absent: str = ""
    inputs: list[dict[str, Any]] = field(default_factory=list)  # pasted files: sections read, lines skipped
    # what a reader left for the JSON writer (NodeDumps.entries_as_text): the entries in their text, or walked as
    # they are written
    deferred: EntriesInText | WalkedEntries | None = field(default=None, repr=False, compare=False)

    def holds(self, family: str, table: str) -> bool:
        return not self.tables or f"{family}:{table}" in self.tables

    def merge(self, other: NodeRules) -> None:
        """Fold another family's rules (ip6tables-save beside iptables-save) into these: entries, counts, chains,
        notes and sources add up; what the first family says about NodePorts stays, the second fills gaps."""
        self.services.extend(other.services)
        self.stats.rules += other.stats.rules
        self.stats.chains += other.stats.chains
        for k, v in other.stats.per_service.items():
            self.stats.per_service[k] = self.stats.per_service.get(k, 0) + v
        for k, n in other.stats.extra.items():
            self.stats.extra[k] = self.stats.extra.get(k, 0) + n
        self.unreferenced_chains.extend(other.unreferenced_chains)
        self.tables |= other.tables
        self.orphan_chains.extend(other.orphan_chains)
        self.notes.extend(n for n in other.notes if n not in self.notes)
        self.nodeport_addresses.extend(a for a in other.nodeport_addresses if a not in self.nodeport_addresses)
        if self.localhost_nodeports is None:
            self.localhost_nodeports = other.localhost_nodeports
        self.backend = self.backend or other.backend
        self.source = f"{self.source}, {other.source}"

    def lookup(self, address: str, port: int, protocol: str = "TCP") -> list[ServiceEntry]:
        proto = protocol.upper()
        return [s for s in self.services if s.address == address and s.port == port
                and s.protocol in (proto, "ANY")]

    def by_name(self, spn_prefix: str) -> list[ServiceEntry]:
        """Entries whose service port name is `ns/svc` or starts with `ns/svc:`."""
        return [s for s in self.services
                if s.name is not None and (s.name == spn_prefix or s.name.startswith(spn_prefix + ":"))]

    def to_json(self, services: Any = None) -> dict[str, Any]:
        """The node's rules as JSON; `services`: what to put in place of the list of the entries' dicts (the JSON
        writer's lazily made array, so a whole dump's entries are never all dicts at once)."""
        from svcctl import API_VERSION

        out: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "NodeRules",
            "mode": self.mode,
            "source": self.source,
            "services": [s.to_json() for s in self.services] if services is None else services,
            "summary": self.stats.to_json(),
        }
        # tables: what the dump held ("ipv4:nat", …): a missing family or table is not judged
        return put(out, backend=self.backend, unreferencedChains=self.unreferenced_chains,
                   orphanChains=self.orphan_chains, notes=self.notes, tables=sorted(self.tables), inputs=self.inputs)


@dataclass
class Flow:
    """One conntrack / `ipvsadm -Lnc` entry: a connection to a VIP and the endpoint it was sent to."""

    protocol: str
    src: str
    sport: int
    dst: str  # original destination (the VIP)
    dport: int
    backend_ip: str  # reply source = where DNAT sent it
    backend_port: int
    state: str = ""
    snat: bool = False  # reply dst != original src: masqueraded
    assured: bool = False

    @property
    def dnat(self) -> bool:
        return (self.backend_ip, self.backend_port) != (self.dst, self.dport)

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "src": self.src, "sport": self.sport, "dst": self.dst,
                "dport": self.dport, "backendIP": self.backend_ip, "backendPort": self.backend_port,
                "state": self.state, "snat": self.snat, "assured": self.assured}


@dataclass(frozen=True)
class Scope:
    """What a one-Service parse keeps (the fast path): service port names (`ns/name`, `ns/name:port`) and
    addresses (`ip`, `ip:port`, `[v6]:port`, `:nodePort`). An empty scope keeps nothing; None keeps all."""

    names: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()

    @classmethod
    def of(cls, keys: Iterable[str]) -> Scope:
        ks = set(keys)
        names = frozenset(k for k in ks if "/" in k)
        return cls(names, frozenset(ks - names))

    @property
    def keys(self) -> set[str]:
        """The parsers' key set."""
        return set(self.names | self.addresses)

    def holds(self, e: ServiceEntry) -> bool:
        """Whether entry `e` is one of the scope's: by its service port name or its address[:port]."""
        return in_scope(e, self.keys)


def in_scope(e: ServiceEntry, keys: Iterable[str]) -> bool:
    """Whether `e` is named by one of `keys` (`ns/svc`, `ns/svc:port`, `VIP`, `VIP:port`, `[v6]:port`)."""
    for o in keys:
        if e.name is not None and (e.name == o or e.name.startswith(o + ":")):
            return True
        if e.address == o or f"{e.address}:{e.port}" == o or f"[{e.address}]:{e.port}" == o:
            return True
    return False

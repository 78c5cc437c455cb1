"""Targeted node reads in kube-proxy's nftables mode: the Service's own chains and map elements, not the table.

`nft list table ip kube-proxy` holds every Service's chains and every element of the big maps. One Service
needs (names from pkg/proxy/nftables/proxier.go, recomputed in svcctl/dataplane/hashes.py):
- its elements, asked for by key with `nft get element ip kube-proxy MAP { KEY }`: `service-ips` and
  `cluster-ips` for each of its addresses, `service-nodeports` for its NodePort, `firewall-ips` with
  loadBalancerSourceRanges, `no-endpoint-services` / `no-endpoint-nodeports` when it has no endpoints;
- its chains, `nft list chain ip kube-proxy service-…` (and `external-…`, `firewall-…`), then every chain those
  jump to (its `endpoint-…` chains);
- two small shared chains whose rules the answer depends on (`services`: how NodePorts are matched;
  `masquerading`), a few lines whatever the node holds.
Each answer is a `table ip kube-proxy { … }` block in `nft list` syntax; they are merged into one table (one
`map` block per map, its elements together) and read by the ordinary parser. An element or chain that is not
there where the API says it should be is confirmed by one whole `nft list table` before anything is concluded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from svcctl.dataplane.hashes import nft_service_chains, service_port_name
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern
from svcctl.model import EndpointSlice, Service
from svcctl.sources.targeted_base import Exec, ReadFailed, TargetedRead, pick, planned, run_round

MAX_ROUNDS = 4
SHARED_CHAINS = ("services", "masquerading")
# the node addresses NodePorts are accepted on (the `services` chain matches `ip daddr @nodeport-ips`): a few
# elements whatever the node holds, listed for a Service with a NodePort
SHARED_SETS = ("nodeport-ips",)
_AFFINITY_REF = LazyPattern(r"@(affinity-[A-Z2-7]{8}-[A-Za-z0-9_./:-]{1,240})")
MAPS = ("service-ips", "cluster-ips", "service-nodeports", "firewall-ips", "no-endpoint-services",
        "no-endpoint-nodeports")
_PER_SERVICE = LazyPattern(r"(?:service|external|local|firewall|endpoint|affinity)-[A-Z2-7]{8}-[A-Za-z0-9_./:-]{1,240}"
                          r"(?:\.\.\.)?")
_ADDR = LazyPattern(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*")
_PROTO = {"tcp", "udp", "sctp"}


def allowed(argv: list[str]) -> bool:
    """The nftables targeted shapes: `nft list chain ip|ip6 kube-proxy CHAIN` (a per-Service chain, or
    `services` / `masquerading`), `nft list set ip|ip6 kube-proxy SET` (`nodeport-ips`, or a Service's
    `affinity-…` set), and `nft get element ip|ip6 kube-proxy MAP { KEY }` for one of kube-proxy's
    service maps, KEY `ADDR . PROTO . PORT`, `PROTO . PORT` or (cluster-ips) `ADDR`."""
    if len(argv) < 6 or argv[0] != "nft" or argv[3] not in ("ip", "ip6") or argv[4] != "kube-proxy":
        return False
    if argv[1:3] == ["list", "chain"]:
        return len(argv) == 6 and (argv[5] in SHARED_CHAINS or bool(_PER_SERVICE.fullmatch(argv[5])))
    if argv[1:3] == ["list", "set"]:  # nodeport-ips, or a Service's session-affinity set
        return len(argv) == 6 and (argv[5] in SHARED_SETS or (argv[5].startswith("affinity-")
                                                               and bool(_PER_SERVICE.fullmatch(argv[5]))))
    if argv[1:3] != ["get", "element"] or argv[5] not in MAPS or len(argv) < 9 or argv[6] != "{" or argv[-1] != "}":
        return False
    key = argv[7:-1]
    if argv[5] == "cluster-ips":
        return len(key) == 1 and bool(_ADDR.fullmatch(key[0]))
    if len(key) == 3:
        return key[0] in _PROTO and key[1] == "." and key[2].isdecimal()
    return (len(key) == 5 and bool(_ADDR.fullmatch(key[0])) and key[1] == key[3] == "." and key[2] in _PROTO
            and key[4].isdecimal())


@dataclass
class Element:
    map: str
    key: list[str]
    what: str
    alt: Element | None = None  # the no-endpoints element kube-proxy writes instead (slices unknown)
    needs_eps: bool = False
    optional: bool = False  # written only in some node states (no local endpoint): absent says nothing

    def argv(self, fam: str) -> list[str]:
        return ["nft", "get", "element", fam, "kube-proxy", self.map, "{", *self.key, "}"]


@dataclass
class FamilyPlan:
    fam: str  # ip | ip6
    key: str  # NodeDumps key: nftables | nftables6
    chains: list[str] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)


def plan(services: Iterable[tuple[Service, list[EndpointSlice] | None]]) -> list[FamilyPlan]:
    fams = {"ip": FamilyPlan("ip", "nftables"), "ip6": FamilyPlan("ip6", "nftables6")}
    for one in planned(services, "ip", "ip6"):
        svc, has_eps, fam_of, families = one.service, one.has_eps, one.family_of, one.families
        fw = bool(svc.load_balancer_source_ranges and svc.load_balancer_ips)
        for p in svc.ports:
            proto = p.protocol.lower()
            spn = service_port_name(svc.meta.namespace, svc.meta.name, p.name)
            chains = nft_service_chains(svc.meta.namespace, svc.meta.name, proto, p.name)
            port = str(p.port)
            for f in families:
                fp = fams[f]
                for ip in (ip for ip in svc.cluster_ips if fam_of.get(ip) == f):
                    fp.elements.append(Element("cluster-ips", [ip], f"the cluster-ips element of {spn} ({ip})"))
                addrs = [(ip, "cluster IP") for ip in svc.cluster_ips if fam_of.get(ip) == f]
                addrs += [(ip, "external IP") for ip in svc.external_ips if fam_of.get(ip) == f]
                addrs += [(ip, "load-balancer IP") for ip in svc.load_balancer_ips if fam_of.get(ip) == f]
                for ip, kind in addrs:
                    key = [ip, ".", proto, ".", port]
                    pick(fp.elements, has_eps, Element("service-ips", key, f"the {kind} element of {spn} ({ip}:{port})"),
                          Element("no-endpoint-services", key, f"the no-endpoints element of {spn} ({ip})"))
                    if kind == "cluster IP" and has_eps and svc.internal_traffic_policy == "Local":
                        # no endpoint on this node: its cluster IP is a `drop` element of no-endpoint-services
                        # instead (proxier.go: internalTrafficFilterVerdict)
                        fp.elements[-1].alt = Element("no-endpoint-services", key,
                                                      f"the no-local-endpoints element of {spn} ({ip})")
                    if fw and kind == "load-balancer IP":
                        pick(fp.elements, has_eps, Element("firewall-ips", key, f"the firewall element of {spn} ({ip})"),
                              None)
                if p.node_port:
                    key = [proto, ".", str(p.node_port)]
                    pick(fp.elements, has_eps, Element("service-nodeports", key, f"the NodePort element of {spn}"),
                          Element("no-endpoint-nodeports", key, f"the no-endpoints NodePort element of {spn}"))
                    fp.sets += [s for s in SHARED_SETS if s not in fp.sets]
                if svc.external_traffic_policy == "Local" and has_eps is not False:
                    # no endpoint on this node: kube-proxy also drops external traffic (a `drop` element of the
                    # no-endpoint maps, beside the Service's own elements)
                    drops = [Element("no-endpoint-services", [ip, ".", proto, ".", port], "", optional=True)
                             for ip, kind in addrs if kind != "cluster IP"]
                    if p.node_port:
                        drops.append(Element("no-endpoint-nodeports", [proto, ".", str(p.node_port)], "",
                                             optional=True))
                    fp.elements += drops
                if has_eps is not False:
                    want = ["service-"]
                    if p.node_port or svc.external_ips or svc.load_balancer_ips:
                        want.append("external-")
                    if fw:
                        want.append("firewall-")
                    fp.chains += [chains[w] for w in want if chains[w] not in fp.chains]
    out = []
    for fp in fams.values():
        if fp.elements:
            fp.chains = [*SHARED_CHAINS, *fp.chains]
            out.append(fp)
    return out


def _inner(out: str) -> list[str]:
    """The lines inside `table FAM kube-proxy { … }`."""
    lines = out.rstrip("\n").splitlines()
    if not lines or not re.match(r"^table ip6? kube-proxy \{$", lines[0].strip()) or lines[-1].strip() != "}":
        raise ReadFailed("an answer that is not `nft list` output")
    return lines[1:-1]


def read_targeted(execute: Exec, services: Iterable[tuple[Service, list[EndpointSlice] | None]],
                  read: TargetedRead | None = None) -> TargetedRead:
    read = read or TargetedRead()
    for fp in plan(services):
        chains: dict[str, list[str]] = {}
        maps: dict[str, tuple[str, list[str]]] = {}  # name -> (type line, elements)
        found: list[Element] = []
        failed: list[Element] = []
        sets: dict[str, list[str]] = {}
        todo, elems, set_todo = list(fp.chains), list(fp.elements), list(fp.sets)
        for _ in range(MAX_ROUNDS):
            if not todo and not elems and not set_todo:
                break
            argvs = [["nft", "list", "chain", fp.fam, "kube-proxy", c] for c in todo]
            argvs += [["nft", "list", "set", fp.fam, "kube-proxy", s] for s in set_todo]
            argvs += [e.argv(fp.fam) for e in elems]
            results = run_round(execute, argvs, read, allowed)
            alts: list[Element] = []
            for i, (out, _err, rc) in enumerate(results):
                if rc > 1:
                    raise ReadFailed(f"`{' '.join(argvs[i])}` exited with {rc}")
                if i < len(todo):
                    if rc == 0:
                        chains[todo[i]] = _inner(out)
                    continue
                if i < len(todo) + len(set_todo):
                    if rc == 0:  # (absent: an older kube-proxy without nodeport-ips, an affinity set gone)
                        sets[set_todo[i - len(todo)]] = _inner(out)
                    continue
                e = elems[i - len(todo) - len(set_todo)]
                if rc == 0:
                    inner = _inner(out)
                    typ = next((ln for ln in inner if ln.strip().startswith(("type ", "flags "))), "")
                    got = "".join(ln.strip() for ln in inner if "elements = {" in ln or ln.startswith("\t\t\t"))
                    m = re.search(r"elements = \{ (.*) \}", got)
                    if m is None:
                        raise ReadFailed(f"`{' '.join(argvs[i])}` did not answer like nft get element")
                    entry = maps.setdefault(e.map, (typ, []))
                    if m.group(1) not in entry[1]:
                        entry[1].append(m.group(1))
                    found.append(e)
                elif e.optional:
                    pass
                elif e.alt is not None:
                    e.alt.what = f"{e.what} (nor its no-endpoints element)"
                    alts.append(e.alt)
                else:
                    failed.append(e)
            nxt: list[str] = []
            nxt_sets: list[str] = []
            for lines in chains.values():
                for ln in lines:
                    for t in re.findall(r"(?:goto|jump) ([^\s,}]+)", ln):
                        if t not in chains and t not in nxt and _PER_SERVICE.fullmatch(t):
                            nxt.append(t)
                    for t in _AFFINITY_REF.findall(ln):
                        if t not in sets and t not in set_todo and t not in nxt_sets:
                            nxt_sets.append(t)
            todo, elems, set_todo = nxt, alts, nxt_sets
        no_eps = any(e.map.startswith("no-endpoint-") and not e.optional for e in found)
        missing = [e for e in failed if not (e.needs_eps and no_eps)]
        if missing:
            read.missing[fp.key] = missing[0].what
        body = [f"table {fp.fam} kube-proxy {{"]
        for name, (typ, elements) in maps.items():
            body += [f"\tmap {name} {{" if name != "cluster-ips" else f"\tset {name} {{", typ,
                     "\t\telements = { " + ", ".join(elements) + " }", "\t}"]
        for lines in sets.values():
            body += lines
        for lines in chains.values():
            body += lines
        body.append("}")
        read.texts[fp.key] = "\n".join(body) + "\n"
    return read

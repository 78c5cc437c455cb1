"""From where: how the source of a request changes what kube-proxy does with it.

`--from IP|NS/POD|node/NAME` (default: a Pod on the traced node). kube-proxy's rules (pkg/proxy/iptables and
nftables proxier.go) make the source matter in four places:

* loadBalancerSourceRanges: a load-balancer IP (not a NodePort, not an externalIP) accepts only those sources
  (KUBE-FW-… / nft `firewall-ips`); everything else is dropped by KUBE-PROXY-FIREWALL / the firewall chain.
* externalTrafficPolicy Local, for NodePort / external / LB IPs: the EXT chain sends traffic from the pod
  network (the "local traffic detector", a CIDR in the rules) and from the node's own addresses to the cluster
  set (KUBE-SVC), the latter masqueraded; everyone else goes to this node's endpoints only (KUBE-SVL) with the
  client address kept. internalTrafficPolicy Local narrows the ClusterIP to local endpoints whatever the source.
* masquerade (SNAT to the node): ClusterIP traffic from outside the pod network (`! -s <pod CIDR>`, or every
  packet with --masquerade-all), all external traffic under ETP Cluster, node-originated traffic under ETP Local.
* hairpin: a Pod reaching its own Service may be sent to itself; that connection is masqueraded (KUBE-SEP's
  `-s <endpoint> -j KUBE-MARK-MASQ`, nft @hairpin-connections) so the reply comes back through the node.

Pure logic: the command resolves the source (a Pod's IP and node, the node's addresses, the pod CIDRs).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from svcctl.dataplane.model import ServiceEntry
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern
from svcctl.model import Service

LOCAL_POD, REMOTE_POD, NODE, OUTSIDE = "pod on the node", "pod on another node", "the node itself", "outside"
_SHORT_CIRCUIT = LazyPattern(r"traffic from (\S+/\d+) goes to")
_MASQ_UNLESS = LazyPattern(r"(?:not from|source not in) (\S+/\d+)")


@dataclass
class Source:
    """Where the request starts."""

    raw: str
    kind: str  # pod | node | ip | default
    ip: str | None = None
    node: str | None = None  # the node the source runs on (a Pod's node; the node itself)
    pod: str | None = None  # ns/name
    host_network: bool = False
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"from": self.raw, "kind": self.kind, "ip": self.ip, "node": self.node, "pod": self.pod,
                "label": self.label}


def parse_from(raw: str) -> tuple[str, str, str]:
    """`node/NAME` → ("node", "", NAME); `NS/POD` → ("pod", NS, POD); an IP → ("ip", "", IP); else ValueError."""
    text = raw.strip()
    try:
        return "ip", "", str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    kind, sep, name = text.partition("/")
    if sep and kind == "node" and name:
        return "node", "", name
    if sep and kind and name and "/" not in name:
        return "pod", kind, name
    raise ValueError(f"--from: {raw!r} is not an IP address, NS/POD or node/NAME")


def _in(ip: str | None, cidrs: list[str]) -> bool:
    if not ip:
        return False
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for c in cidrs:
        try:
            if a in ipaddress.ip_network(c.lstrip("!"), strict=False):
                return True
        except ValueError:
            continue
    return False


def short_circuit_cidrs(entry: ServiceEntry) -> list[str]:
    """The pod network the EXT chain short-circuits to the cluster set (ETP Local), from the rules."""
    return [m.group(1) for n in entry.notes if (m := _SHORT_CIRCUIT.search(n))]


def masquerade_exempt_cidrs(entry: ServiceEntry) -> list[str]:
    """The pod network whose ClusterIP traffic is not masqueraded (`! -s CIDR`), from the rules."""
    return [m.group(1) for n in entry.masquerade if (m := _MASQ_UNLESS.search(n))]


def where_is(source: Source, node: str | None, node_addresses: set[str], pod_cidrs: list[str]) -> str:
    """Which of kube-proxy's source classes the source falls in, seen from `node`."""
    if source.kind == "default":
        return LOCAL_POD
    if source.kind == "node":
        return NODE if (node is None or source.node == node) else OUTSIDE
    if source.kind == "pod":
        if source.host_network:
            return NODE if source.node == node else OUTSIDE
        return LOCAL_POD if source.node == node or node is None else REMOTE_POD
    if source.ip in node_addresses:
        return NODE
    if _in(source.ip, pod_cidrs):
        return LOCAL_POD if source.node == node and node else REMOTE_POD
    return OUTSIDE


@dataclass
class SourceJudgement:
    """What kube-proxy does with a packet from this source on this way in."""

    where: str
    allowed: bool = True
    uses: str = "cluster"  # cluster | local
    masquerade: bool | None = None  # None: depends on what the source IP is
    summary: str = ""
    details: list[str] = field(default_factory=list)
    hairpin: bool = False


def judge_source(source: Source, where: str, service: Service, entry: ServiceEntry | None, external: bool,
                 etp_local: bool, itp_local: bool, backend_ips: set[str],
                 clusterip_entry: ServiceEntry | None = None) -> SourceJudgement:
    """The source hop for one way in: firewall, which endpoint set, masquerade, hairpin."""
    who = source.label or where
    j = SourceJudgement(where)
    # ---- firewall: load-balancer IPs only
    ranges = (entry.source_ranges if entry is not None and entry.source_ranges
              else service.load_balancer_source_ranges)
    if entry is not None and entry.kind == "LoadBalancer" and ranges and not any(
            r in ("0.0.0.0/0", "::/0") for r in ranges):
        if source.ip is None:
            j.details.append(f"loadBalancerSourceRanges {', '.join(ranges)}: only sources in them get through "
                             "(give --from IP to judge one)")
        elif _in(source.ip, ranges):
            j.details.append(f"{source.ip} is in loadBalancerSourceRanges ({', '.join(ranges)}): allowed")
        else:
            j.allowed = False
            j.details.append(f"{source.ip} is outside loadBalancerSourceRanges ({', '.join(ranges)}): dropped "
                             "(KUBE-PROXY-FIREWALL / the nft firewall chain)")
    # ---- which endpoint set, and masquerade
    ref = clusterip_entry or entry
    pod_net = masquerade_exempt_cidrs(ref) if ref is not None else []
    masq_all = ref is not None and any("all traffic is masqueraded" in m for m in ref.masquerade)
    if not external:
        j.uses = "local" if itp_local else "cluster"
        if itp_local:
            j.details.append("internalTrafficPolicy Local: only this node's endpoints, from any source")
        if masq_all:
            j.masquerade, why = True, "kube-proxy runs with --masquerade-all"
        elif where in (LOCAL_POD, REMOTE_POD):
            j.masquerade, why = False, "a Pod source is in the pod network, which ClusterIP rules leave alone"
        elif pod_net:
            j.masquerade, why = True, f"the source is not in {', '.join(pod_net)} (`! -s` in the ClusterIP rule)"
        else:
            j.masquerade, why = True, "the source is outside the pod network"
    elif etp_local:
        if where in (LOCAL_POD, REMOTE_POD):
            j.uses, j.masquerade = "cluster", False
            why = ("externalTrafficPolicy Local short-circuits pod traffic to the cluster set"
                   + (f" (source in {', '.join(short_circuit_cidrs(entry))})" if entry and short_circuit_cidrs(entry)
                      else "") + ", not masqueraded")
        elif where == NODE:
            j.uses, j.masquerade = "cluster", True
            why = "externalTrafficPolicy Local: traffic from the node itself is masqueraded and sent to the cluster set"
        else:
            j.uses, j.masquerade = "local", False
            why = ("externalTrafficPolicy Local: traffic from outside goes only to this node's endpoints, "
                   "client address kept (no SNAT)")
    else:
        j.uses, j.masquerade = "cluster", True
        why = "externalTrafficPolicy Cluster: all external traffic is masqueraded (the client address is lost)"
    if j.allowed:
        j.details.append(f"masquerade: {'yes' if j.masquerade else 'no'}: {why}")
    # ---- hairpin
    if source.ip and source.ip in backend_ips and where in (LOCAL_POD, REMOTE_POD):
        j.hairpin = True
        j.details.append(f"hairpin: {source.ip} is itself a backend; a connection that picks it is masqueraded "
                         "so the reply returns through the node")
    verdict = "dropped" if not j.allowed else ("this node's endpoints" if j.uses == "local" else "the cluster set")
    j.summary = f"from {who} ({where}): " + (verdict if not j.allowed else f"to {verdict}, "
                                             f"{'masqueraded' if j.masquerade else 'source address kept'}")
    return j

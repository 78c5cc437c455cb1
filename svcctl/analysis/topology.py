"""Which endpoints one node's kube-proxy uses for one Service port, computed the way kube-proxy computes them.

A pure model of `pkg/proxy/endpointslicecache.go` (turning EndpointSlices into endpoints) and
`pkg/proxy/topology.go` (`CategorizeEndpoints`, `topologyModeFromHints`, `availableForTopology`), Kubernetes
v1.37, with `pkg/proxy/serviceport.go` for which sets a port uses. Every rule below names the Go it follows, so
it can be checked line by line:

* slices: only those labelled `kubernetes.io/service-name` with this Service's name, of this node's IP family
  (one proxier per family); a slice port joins the Service port by name AND protocol (ServicePortName); ports
  with port 0 / none are ignored; an endpoint without addresses is skipped; only `addresses[0]` is used;
  `ready`/`serving` absent count as true, `terminating` absent as false; the same IP:port seen twice keeps the
  first copy unless a later one is not terminating (`!exists || !terminating`).
* topology mode (cluster endpoints only): among READY endpoints, PreferSameNode when every one has node hints
  and one names this node (PreferSameTrafficDistribution is GA and locked on since 1.35); else PreferSameZone
  when every one has zone hints and one names this node's zone; else none. One ready endpoint without a hint
  turns topology off for the whole Service on every node.
* cluster set: ready endpoints available for the mode; if empty, serving+terminating ones, topology ignored.
* local set: ready endpoints on this node (hints ignored); if none, serving+terminating ones on this node.
* which set: `UsesClusterEndpoints = !ITPLocal || ExternallyAccessible`, `UsesLocalEndpoints = ITPLocal ||
  (ETPLocal && ExternallyAccessible)`; ETPLocal only for NodePort/LoadBalancer or externalIPs Services;
  ExternallyAccessible = nodePort, an externalIP or a VIP-mode LB IP of this family.
* verdicts the proxiers write (pkg/proxy/iptables|nftables/proxier.go): no usable endpoint anywhere → REJECT;
  a Local policy with endpoints elsewhere but none here → DROP ("has no local endpoints").
"""

from __future__ import annotations

import ipaddress
from typing import Any

from svcctl.lazydc import dataclass, field
from svcctl.model import EndpointSlice, Node, Service, ServicePort

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ZONE_LABEL = "topology.kubernetes.io/zone"
PREFER_SAME_NODE, PREFER_SAME_ZONE = "PreferSameNode", "PreferSameZone"


@dataclass
class NodeEndpoint:
    """One endpoint of one service port as kube-proxy holds it (pkg/proxy/endpoint.go BaseEndpointInfo)."""

    ip: str
    port: int
    pod: str | None  # ns/name of the targetRef, when it is one
    node: str
    zone: str
    ready: bool
    serving: bool
    terminating: bool
    zone_hints: frozenset[str] = frozenset()
    node_hints: frozenset[str] = frozenset()
    local: bool = False  # nodeName == this node

    @property
    def key(self) -> tuple[str, int]:
        return (self.ip, self.port)

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass
class PortPolicy:
    """What serviceport.go derives from the Service for one port and IP family."""

    externally_accessible: bool
    external_local: bool  # ExternalPolicyLocal
    internal_local: bool  # InternalPolicyLocal

    @property
    def uses_cluster(self) -> bool:
        return not self.internal_local or self.externally_accessible

    @property
    def uses_local(self) -> bool:
        return self.internal_local or (self.external_local and self.externally_accessible)


@dataclass
class Selection:
    """CategorizeEndpoints' answer for one port on one node, with the reasons in words."""

    node: str | None
    zone: str
    endpoints: list[NodeEndpoint]  # every endpoint of the port (this family), any state, kube-proxy's order
    policy: PortPolicy
    topology_mode: str = ""  # "" | PreferSameNode | PreferSameZone
    topology_why: str = ""  # why that mode (or why hints were ignored); "" when no endpoint has hints
    cluster: list[NodeEndpoint] | None = None  # None: the port never uses Cluster policy
    local: list[NodeEndpoint] | None = None  # None: the port never uses Local policy
    cluster_terminating_fallback: bool = False
    local_terminating_fallback: bool = False
    has_any_endpoints: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def all_reachable(self) -> list[NodeEndpoint]:
        seen: dict[tuple[str, int], NodeEndpoint] = {}
        for e in [*(self.cluster or []), *(self.local or [])]:
            seen.setdefault(e.key, e)
        return sorted(seen.values(), key=_sort_key)

    def used_for(self, external: bool, local_source: bool = False) -> tuple[list[NodeEndpoint], bool]:
        """The endpoints a packet entering this way uses, and whether it is the local set.

        ClusterIP (external=False): the local set with ITP Local, else the cluster set. NodePort / external /
        LB IP: with ETP Local, the cluster set for a source on this node (a Pod here, or the node itself: the
        EXT chain's short-circuit) and the local set for everyone else; with ETP Cluster, the cluster set."""
        if not external:
            if self.policy.internal_local:
                return list(self.local or []), True
            return list(self.cluster or []), False
        if self.policy.external_local and not local_source:
            return list(self.local or []), True
        return list(self.cluster or []), False

    def verdict_for(self, external: bool, local_source: bool = False) -> str:
        """"accept" | "drop" | "reject", the way the proxiers write it for this way in."""
        eps, local = self.used_for(external, local_source)
        if eps:
            return "accept"
        if not self.has_any_endpoints:
            return "reject"
        return "drop" if local else "reject"

    def describe(self, external: bool = False, local_source: bool = False) -> str:
        """ "worker-1 uses 2 of 5 endpoints: hints for zone a" """
        eps, local = self.used_for(external, local_source)
        who = self.node or "this node"
        total = len(self.endpoints)
        why: list[str] = []
        if local:
            why.append("traffic policy Local: only its own endpoints")
            if self.local_terminating_fallback:
                why.append("none ready, so serving terminating ones")
        else:
            if self.topology_mode == PREFER_SAME_ZONE:
                why.append(f"hints for zone {self.zone}")
            elif self.topology_mode == PREFER_SAME_NODE:
                why.append(f"hints for node {self.node}")
            if self.cluster_terminating_fallback:
                why.append("none ready, so serving terminating ones")
            elif not self.topology_mode and 0 < len(eps) < total:
                why.append("the ready ones")
        if not eps:
            v = self.verdict_for(external, local_source)
            why.append("it drops new connections (no local endpoint)" if v == "drop"
                       else "it rejects new connections (no usable endpoint)")
        return f"{who} uses {len(eps)} of {total} endpoint(s)" + (": " + "; ".join(why) if why else "")

    def to_json(self) -> dict[str, Any]:
        def j(eps: list[NodeEndpoint] | None) -> list[str] | None:
            return None if eps is None else [e.address for e in eps]

        return {"node": self.node, "zone": self.zone, "topologyMode": self.topology_mode,
                "topologyWhy": self.topology_why, "cluster": j(self.cluster), "local": j(self.local),
                "clusterTerminatingFallback": self.cluster_terminating_fallback,
                "localTerminatingFallback": self.local_terminating_fallback,
                "hasAnyEndpoints": self.has_any_endpoints}


def _sort_key(e: NodeEndpoint) -> str:
    return f"{e.ip}:{e.port}"  # kube-proxy orders endpoints by their "ip:port" string


def _family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def _canonical(ip: str) -> str:
    if ":" not in ip:  # IPv4: a valid address is already canonical, an invalid one is returned as it is
        return ip
    try:
        return str(ipaddress.ip_address(ip))  # ParseIPSloppy(...).String()
    except ValueError:
        return ip


def port_policy(service: Service, port: ServicePort, family: str = "IPv4") -> PortPolicy:
    """serviceport.go newBaseServiceInfo + pkg/api/v1/service ExternalPolicyLocal / InternalPolicyLocal."""
    ext_ips = [ip for ip in service.external_ips if _family_of(ip) == family]
    lb_vips = [ip for ip, mode in service.load_balancer_ingress if mode in ("", "VIP") and _family_of(ip) == family]
    accessible = bool(port.node_port) or bool(ext_ips) or bool(lb_vips)
    svc_accessible = service.type in ("LoadBalancer", "NodePort") or (
        service.type == "ClusterIP" and bool(service.external_ips))
    return PortPolicy(accessible, svc_accessible and service.external_traffic_policy == "Local",
                      service.internal_traffic_policy == "Local")


def slice_endpoints(service: Service, port: ServicePort, slices: list[EndpointSlice], node: str | None,
                    family: str = "IPv4", zones: dict[str, str] | None = None) -> list[NodeEndpoint]:
    """endpointslicecache.go endpointInfoByServicePort + addEndpoints, for one port and family."""
    out: dict[tuple[str, int], NodeEndpoint] = {}
    proto = port.protocol.upper()
    for sl in slices:
        if sl.address_type != family:
            continue
        if sl.meta.labels.get(SERVICE_NAME_LABEL) != service.meta.name or (
                sl.meta.namespace and sl.meta.namespace != service.meta.namespace):
            continue
        for sp in sl.ports:
            if sp.name != port.name or sp.protocol.upper() != proto or not sp.port:
                continue
            number = int(sp.port)
            for ep in sl.endpoints:
                if not ep.addresses:
                    continue
                ip = _canonical(ep.addresses[0])
                pod = (f"{ep.target_namespace or sl.meta.namespace}/{ep.target_name}"
                       if ep.target_name and ep.target_kind in ("Pod", "") else None)
                terminating = ep.terminating is True
                # positionally, no hints' sets built when there are none (check -A: every endpoint of the cluster)
                ne = NodeEndpoint(ip, number, pod, ep.node_name,
                                  ep.zone or (zones.get(ep.node_name, "") if zones else ""), ep.ready is not False,
                                  ep.serving is not False, terminating,
                                  frozenset(ep.zone_hints) if ep.zone_hints else _NO_HINTS,
                                  frozenset(ep.node_hints) if ep.node_hints else _NO_HINTS,
                                  bool(node) and ep.node_name == node)
                key = (ip, number)
                if key not in out or not terminating:
                    out[key] = ne
    return sorted(out.values(), key=_sort_key)


_NO_HINTS: frozenset[str] = frozenset()


def topology_mode(endpoints: list[NodeEndpoint], node: str | None, zone: str) -> tuple[str, str]:
    """topology.go topologyModeFromHints, with the reason in words ("" when no endpoint has any hint)."""
    ready = [e for e in endpoints if e.ready]
    if not ready:
        return "", ""
    any_hints = any(e.zone_hints or e.node_hints for e in endpoints)
    all_node = all(e.node_hints for e in ready)
    all_zone = all(e.zone_hints for e in ready)
    if all_node:
        if node and any(node in e.node_hints for e in ready):
            return PREFER_SAME_NODE, f"every ready endpoint has a node hint and one names {node}"
        node_why = f"node hints name no endpoint for {node or 'this node'}"
    else:
        node_why = ""
    if all_zone:
        if any(zone in e.zone_hints for e in ready):
            return PREFER_SAME_ZONE, (f"every ready endpoint has a zone hint and some name zone {zone}"
                                      + (f" ({node_why})" if node_why else ""))
        if not zone:
            return "", (f"hints ignored: node {node or '?'} has no {ZONE_LABEL} label")
        return "", f"hints ignored: no ready endpoint is hinted for zone {zone}: every node uses every endpoint"
    if any_hints:
        unhinted = [e for e in ready if not e.zone_hints]
        return "", (f"hints ignored: {len(unhinted)} ready endpoint(s) have no zone hint "
                    f"(e.g. {unhinted[0].address}), which turns topology off for the whole Service")
    return "", ""


def categorize(endpoints: list[NodeEndpoint], policy: PortPolicy, node: str | None, zone: str) -> Selection:
    """topology.go CategorizeEndpoints."""
    sel = Selection(node, zone, endpoints, policy)
    if not endpoints:
        return sel
    if policy.uses_cluster:
        sel.topology_mode, sel.topology_why = topology_mode(endpoints, node, zone)
        mode = sel.topology_mode
        cluster = [e for e in endpoints if e.ready and (
            mode == "" or (mode == PREFER_SAME_NODE and node in e.node_hints)
            or (mode == PREFER_SAME_ZONE and zone in e.zone_hints))]
        if not cluster:
            cluster = [e for e in endpoints if e.serving and e.terminating]
            sel.cluster_terminating_fallback = bool(cluster)
        sel.cluster = cluster
        sel.has_any_endpoints = bool(cluster)
    if not policy.uses_local:
        return sel
    local_ready = False
    local_term = False
    for e in endpoints:
        if e.ready:
            sel.has_any_endpoints = True
            local_ready = local_ready or e.local
        elif e.serving and e.terminating:
            sel.has_any_endpoints = True
            local_term = local_term or e.local
    if local_ready:
        sel.local = [e for e in endpoints if e.local and e.ready]
    elif local_term:
        sel.local = [e for e in endpoints if e.local and e.serving and e.terminating]
        sel.local_terminating_fallback = True
    else:
        sel.local = []
    return sel


def node_zone(nodes: dict[str, Node | None] | list[Node], node: str | None) -> str:
    """The zone kube-proxy on `node` sees: its Node's topology.kubernetes.io/zone label ("" when unknown)."""
    if not node:
        return ""
    n = nodes.get(node) if isinstance(nodes, dict) else next((x for x in nodes if x.meta.name == node), None)
    return n.meta.labels.get(ZONE_LABEL, "") if n is not None else ""


def has_hints(slices: list[EndpointSlice]) -> bool:
    """Whether any endpoint carries hints: only then does the node's zone matter (and need reading)."""
    return any(e.zone_hints or e.node_hints for sl in slices for e in sl.endpoints)


def select(service: Service, port: ServicePort, slices: list[EndpointSlice], node: str | None, zone: str = "",
           family: str = "IPv4") -> Selection:
    """The whole computation for one port: slices → endpoints → CategorizeEndpoints."""
    eps = slice_endpoints(service, port, slices, node, family)
    return categorize(eps, port_policy(service, port, family), node, zone)


def topology_requested(service: Service) -> str:
    """What the Service asks of the EndpointSlice controller's hints ("" = nothing): the annotation wins
    (service.kubernetes.io/topology-aware-hints, deprecated, before topology-mode), else trafficDistribution."""
    ann = service.meta.annotations
    for key in ("service.kubernetes.io/topology-aware-hints", "service.kubernetes.io/topology-mode"):
        if key in ann:
            return f"{key}={ann[key]}" if ann[key].lower() == "auto" else ""
    return f"trafficDistribution {service.traffic_distribution}" if service.traffic_distribution else ""


def why_no_hints(service: Service, endpoints: list[NodeEndpoint], nodes: list[Node],
                 events: list[tuple[str, str]]) -> list[str]:
    """Why the EndpointSlice controller set no hints although the Service asks for them: its Events first
    (TopologyAwareHintsDisabled), then the conditions of the heuristic in use (staging/src/k8s.io/endpointslice
    topologycache for Auto, trafficdist for trafficDistribution) that the inputs can show."""
    asked = topology_requested(service)
    if not asked or any(e.zone_hints or e.node_hints for e in endpoints):
        return []
    out: list[str] = []
    disabled = [m for reason, m in events if reason == "TopologyAwareHintsDisabled"]
    if disabled:
        out.append(f"{asked}, but no endpoint has hints: the EndpointSlice controller says "
                   f"\"{disabled[-1]}\" (Event TopologyAwareHintsDisabled)")
        return out
    ready = [e for e in endpoints if e.ready]
    if asked.startswith("trafficDistribution"):
        nozone = [e for e in ready if not e.zone]
        if nozone:
            out.append(f"{asked}, but {len(nozone)} ready endpoint(s) have no zone (their Node has no "
                       "topology.kubernetes.io/zone label), so they get no hint and topology is off")
        else:
            out.append(f"{asked}, but no endpoint has hints: the EndpointSlice controller has not set them "
                       "(is the value valid for its version? PreferSameZone/PreferSameNode need 1.33+)")
        return out
    # the Auto heuristic: nodes (not control-plane, Ready) need a zone and allocatable CPU; more than one zone;
    # every ready endpoint with a zone; no more zones than ready endpoints
    workers = [n for n in nodes if n.ready and not any(
        k in n.meta.labels for k in ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"))]
    zones = {n.zone for n in workers if n.zone}
    reasons: list[str] = []
    if any(not n.zone for n in workers):
        reasons.append("a Ready node has no topology.kubernetes.io/zone label (InsufficientNodeInfo)")
    if workers and len(zones) == 1:
        reasons.append("every Ready node is in one zone (NodesReadyInOneZoneOnly)")
    if any(not e.zone for e in ready):
        reasons.append("a ready endpoint has no zone (NoZoneSpecified)")
    if zones and len(zones) > len(ready):
        reasons.append(f"{len(zones)} zones but {len(ready)} ready endpoint(s) (InsufficientNumberOfEndpoints)")
    out.append(f"{asked}, but no endpoint has hints" + (": " + "; ".join(reasons) if reasons else
               ": the Auto heuristic's other conditions (allocatable CPU per zone, the overload threshold) "
               "are not in the input"))
    return out


@dataclass
class ProxyView:
    """What kube-proxy on `node` should program for one service port, with the reason behind it: one
    `Selection` (topology.CategorizeEndpoints) per IP family the Service has."""

    all_endpoints: list[NodeEndpoint]  # every endpoint of the port, any state, every family
    cluster: list[NodeEndpoint]  # used for Cluster traffic policy (topology applied)
    local: list[NodeEndpoint]  # used for Local traffic policy on `node`
    fallback_terminating: bool = False  # no ready endpoint: serving+terminating used instead
    notes: list[str] = field(default_factory=list)
    selections: dict[str, Selection] = field(default_factory=dict)  # IP family -> selection

    def selection_for(self, address: str) -> Selection | None:
        """The selection of `address`'s family (the first one for "" / unknown)."""
        fam = "IPv6" if ":" in address else "IPv4"
        if address and fam in self.selections:
            return self.selections[fam]
        return next(iter(self.selections.values()), None)

    def want(self, address: str, external: bool, local_source: bool = False) -> tuple[list[NodeEndpoint], bool]:
        """The endpoints a packet to `address` (this way in) uses on the node, and whether that is the local set."""
        sel = self.selection_for(address)
        if sel is None:
            return [], False
        return sel.used_for(external, local_source)

"""One request, hop by hop: target → DNS → Service → node rules → endpoints → drift → selected endpoint.

Pure logic. The command gathers the pieces (cluster objects, node rules, DNS answers, conntrack flows, probe
answers) and this module judges each hop. kube-proxy's own view of endpoints is modelled here (which endpoints
it would program: ready first, serving+terminating as fallback, only this node's for traffic policy Local), so
drift between the API and the node is a comparison of two sets, not a guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from fractions import Fraction
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from svcctl.analysis.drift import EntryDrift, Unprogrammed
from svcctl.analysis.glue import glue_findings
from svcctl.analysis.source import Source, SourceJudgement, judge_source
from svcctl.analysis.topology import NodeEndpoint, port_policy
from svcctl.analysis.topology import ProxyView as ProxyView  # re-exported: it was defined here
from svcctl.analysis.topology import select as topology_select
from svcctl.analysis.ways import Way, localhost_nodeport
from svcctl.dataplane import modes
from svcctl.dataplane.model import Backend, Flow, NodeRules, ServiceEntry, format_share
from svcctl.errors import InputError
from svcctl.findings import Severity, Verdict, verdict_of, worst
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern
from svcctl.model import EndpointSlice, Finding, Service, ServicePort, put

if TYPE_CHECKING:  # a DNS hop's report: the DNS analysis is imported by the hop that makes one
    from svcctl.analysis.dns import DNSReport

OK = Verdict.OK
WARNING = Verdict.WARNING
BROKEN = Verdict.BROKEN
SKIPPED = Verdict.SKIPPED
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"

# ------------------------------------------------------------------------------------------------ target


@dataclass
class Target:
    """What the user typed, understood."""

    raw: str
    kind: str  # service | dns | ip
    namespace: str | None = None
    name: str | None = None  # Service name when known
    host: str | None = None  # DNS name or IP as typed
    ip: str | None = None
    port: int | None = None
    scheme: str | None = None
    path: str | None = None
    protocol: str | None = None  # TCP | UDP | SCTP when the target says (`:53/udp`, `udp://`), else None


_PROTO_SUFFIX = LazyPattern(r"(.+)/(tcp|udp|sctp)", re.IGNORECASE)
_SCHEME_PROTOCOL = {"udp": "UDP", "tcp": "TCP", "sctp": "SCTP", "http": "TCP", "https": "TCP"}


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def parse_target(raw: str, cluster_domain: str = "cluster.local") -> Target:
    """`name`, `ns/name`, a DNS name, `VIP[:port]`, `[v6]:port`, or a URL; `…:port/udp` (or /tcp, /sctp)
    and `udp://…` name the protocol. A port outside 1–65535 or a malformed IP is a usage error (exit 2)."""
    _check_target(raw.strip())
    t = _parse_target(raw, cluster_domain)
    if t.port is not None and not 0 < t.port < 65536:
        raise InputError(f"port {t.port} in {raw!r} is out of range (1–65535)")
    return t


def _check_target(text: str) -> None:
    """What parsing would misread: an IP-looking host that is no IP, a URL whose port is no port."""
    if "://" in text:
        u = urlsplit(text)
        try:
            u.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            raise InputError(f"the port in {text!r} is not a port (1–65535)") from None
        host = u.hostname or ""
    else:
        host = re.sub(r"/(?:tcp|udp|sctp)$", "", text, flags=re.I)
        m = re.fullmatch(r"\[([^\]]*)\](?::(\d+))?", host)
        if m or host.startswith("["):
            if not m or not is_ip(m.group(1)) or ":" not in m.group(1):
                raise InputError(f"{text!r} is not an IPv6 address in brackets", hint="use [IPv6]:port")
            return
        host = re.sub(r":\d+$", "", host)
    if re.fullmatch(r"[0-9.]+", host) and host.count(".") == 3 and not is_ip(host):
        raise InputError(f"{host!r} is not a valid IP address")


def _parse_target(raw: str, cluster_domain: str = "cluster.local") -> Target:
    text = raw.strip()
    m = _PROTO_SUFFIX.fullmatch(text)
    # `IP/udp`, `IP:53/udp`, `name:53/udp`: a protocol suffix (but `ns/udp`, a Service named udp, is not)
    if m and "://" not in text and (re.search(r":\d+$", m.group(1)) or is_ip(m.group(1).strip("[]"))):
        t = _parse_target(m.group(1), cluster_domain)
        t.raw, t.protocol = raw, m.group(2).upper()
        return t
    if "://" in text:
        u = urlsplit(text)
        host = u.hostname or ""
        try:
            url_port = u.port
        except ValueError:
            url_port = None
        if url_port is None:
            url_port = {"http": 80, "https": 443}.get(u.scheme)
        t = _parse_target(host, cluster_domain)
        t.raw, t.port, t.scheme, t.path = raw, url_port, u.scheme, u.path or "/"
        t.protocol = _SCHEME_PROTOCOL.get(u.scheme.lower())
        return t
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::(\d+))?", text)
    if m and is_ip(m.group(1)):
        return Target(raw, "ip", host=m.group(1), ip=m.group(1), port=int(m.group(2)) if m.group(2) else None)
    if is_ip(text):
        return Target(raw, "ip", host=text, ip=text)
    m = re.fullmatch(r"([0-9.]+):(\d+)", text)
    if m and is_ip(m.group(1)):
        return Target(raw, "ip", host=m.group(1), ip=m.group(1), port=int(m.group(2)))
    port: int | None = None
    m = re.fullmatch(r"(.+?):(\d+)", text)
    if m:
        text, port = m.group(1), int(m.group(2))
    if "/" in text:
        ns_part, _, name_part = text.partition("/")
        return Target(raw, "service", namespace=ns_part, name=name_part, port=port)
    if "." not in text.rstrip("."):
        return Target(raw, "service", name=text, port=port)
    # a DNS name: svc.ns, svc.ns.svc, svc.ns.svc.<domain>, pod.svc.ns.svc.<domain>
    labels = text.rstrip(".").split(".")
    suffix = ["svc", *cluster_domain.split(".")]
    name: str | None = None
    ns: str | None = None
    if len(labels) >= 2 and labels[2:] in ([], ["svc"], suffix):
        name, ns = labels[0], labels[1]
    elif len(labels) >= 3 and labels[3:] in (["svc"], suffix):
        name, ns = labels[1], labels[2]  # a Pod record: hostname.svc.ns.svc.<domain>
    return Target(raw, "dns", namespace=ns, name=name, host=text, port=port)


# ------------------------------------------------------------------------------------------------ kube-proxy's view


ExpectedBackend = NodeEndpoint  # an endpoint as kube-proxy holds it (svcctl.analysis.topology)


def _family(ip: str) -> int:
    return 6 if ":" in ip else 4


def proxy_view(service: Service, port: ServicePort, slices: list[EndpointSlice], node: str | None,
               zone: str = "") -> ProxyView:
    """kube-proxy's endpointslicecache + topology.CategorizeEndpoints for one port, per IP family, on `node`
    (in zone `zone`, from its Node's label): see svcctl.analysis.topology for the rules."""
    families = [f for f in (service.ip_families or []) if f in ("IPv4", "IPv6")]
    if not families:
        families = sorted({_fam_name(ip) for ip in service.cluster_ips if ip and ip != "None"}) or ["IPv4"]
    for sl in slices:  # a family the slices have but ipFamilies does not list still shows its endpoints
        if sl.address_type in ("IPv4", "IPv6") and sl.address_type not in families:
            families.append(sl.address_type)
    sels = {f: topology_select(service, port, slices, node, zone, f) for f in families}
    eps = [e for sel in sels.values() for e in sel.endpoints]
    cluster = [e for sel in sels.values() for e in (sel.cluster or [])]
    local = [e for sel in sels.values() for e in (sel.local or [])]
    notes: list[str] = []
    fallback = any(sel.cluster_terminating_fallback for sel in sels.values())
    if fallback:
        notes.append("no ready endpoint: kube-proxy falls back to serving, terminating endpoints")
    for sel in sels.values():
        if sel.topology_why and sel.topology_why not in notes:
            notes.append(f"topology: {sel.topology_why}")
    if not any(sel.topology_why for sel in sels.values()) and (
            service.meta.annotations.get("service.kubernetes.io/topology-mode")
            or service.meta.annotations.get("service.kubernetes.io/topology-aware-hints")
            or service.traffic_distribution):
        notes.append("topology-aware routing is asked for, but no endpoint has hints: every node uses every "
                     "endpoint")
    return ProxyView(eps, cluster, local, fallback, notes, sels)


def _fam_name(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


# ------------------------------------------------------------------------------------------------ hops


@dataclass
class Hop:
    name: str  # dns | service | node-rules | endpoints | drift | selected
    verdict: Verdict
    summary: str
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"hop": self.name, "verdict": self.verdict.value, "summary": self.summary, "details": self.details,
                **({"data": self.data} if self.data else {})}


@dataclass
class TraceBackend:
    ip: str
    port: int
    probability: Fraction | None
    pod: str | None
    ready: bool | None
    node: str = ""
    chain: str = ""
    weight: int | None = None
    observed: int | None = None  # connections seen (conntrack / probe)
    state: str = ""  # "ready" | "not ready" | "terminating" | "unknown (no such endpoint)"
    dataplane_state: str = ""  # the replacement's own word (Cilium: active, terminating, quarantined, ...)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ip": self.ip, "port": self.port,
            "probability": float(self.probability) if self.probability is not None else None,
            "share": format_share(self.probability),
            "pod": self.pod, "ready": self.ready,
        }
        return put(out, node=self.node, chain=self.chain, weight=self.weight, observed=self.observed,
                   state=self.state, dataplaneState=self.dataplane_state)


@dataclass
class PortTrace:
    port: int
    protocol: str
    name: str
    target_port: int | str
    entries: list[ServiceEntry] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    backends: list[TraceBackend] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    way: Way | None = None  # the way in the target named (NodePort on a node address, externalIP, …)

    @property
    def verdict(self) -> Verdict:
        """The worst of its hops and of its findings (an error finding makes the port broken)."""
        return worst([*(h.verdict for h in self.hops), verdict_of(f.severity for f in self.findings)])

    def to_json(self) -> dict[str, Any]:
        out = {"port": self.port, "protocol": self.protocol, "name": self.name, "targetPort": self.target_port,
               "verdict": self.verdict.value, "hops": [h.to_json() for h in self.hops],
               "backends": [b.to_json() for b in self.backends]}
        if self.way is not None:
            out["wayIn"] = self.way.to_json()
        return out


def _share(p: Fraction | None) -> str:
    return format_share(p) or "share depends on load/source"


def _entries_for_port(service: Service | None, port: ServicePort | None, target: Target,
                      rules: NodeRules, way: Way | None = None) -> list[ServiceEntry]:
    """The rules' entries a request to this port can enter by: ClusterIP first, then NodePort/external/LB.
    With a way in named (`10.0.0.11:31443`), only that way's entries: the rules of the way the packet takes."""
    proto = (port.protocol if port else target.protocol or "").upper()
    if service is None or port is None:
        if target.ip is None:
            return []
        return [e for e in rules.services if e.address == target.ip
                and (target.port is None or e.port == target.port)
                and (not proto or e.protocol in (proto, "ANY"))]
    out: list[ServiceEntry] = []
    if rules.mode == "kube-router":
        from svcctl.analysis.replacement import name_dsr_marks

        name_dsr_marks(rules, service)
    addrs = set(service.cluster_ips) - {"None", ""}
    spn = f"{service.meta.namespace}/{service.meta.name}"
    external = set(service.external_ips) | set(service.load_balancer_ips)
    for e in rules.services:
        if e.protocol != proto and e.protocol != "ANY":  # ANY: a Cilium frontend without protocol
            continue
        if e.kind == "ClusterIP" and e.address in external and e.port == port.port:
            # Calico's NAT dump does not say which addresses are external: the Service does
            e.kind = "LoadBalancer" if e.address in service.load_balancer_ips else "ExternalIP"
            out.append(e)
        elif e.kind == "ClusterIP" and e.address in addrs and e.port == port.port:
            out.append(e)
        elif e.kind == "NodePort" and port.node_port and e.port == port.node_port:
            if e.name is None or e.name.startswith(spn):
                out.append(e)
        elif e.kind in ("ExternalIP", "LoadBalancer") and e.port == port.port and (
                e.address in service.external_ips or e.address in service.load_balancer_ips):
            if e.kind == "ExternalIP" and e.address in service.load_balancer_ips:
                e.name_load_balancer()
            out.append(e)
    if way is not None:
        if way.kind == "NodePort":
            # "" is "any local address"; a per-address entry (nodePortAddresses, IPVS) must be this address
            out = [e for e in out if e.kind == "NodePort" and e.address in ("", way.address)
                   or e.kind == "NodePort" and way.loopback and e.address.startswith("127.")]
        elif way.kind == "ClusterIP":
            out = [e for e in out if e.kind == "ClusterIP" and e.address == way.address]
        else:
            out = [e for e in out if e.kind != "ClusterIP" and e.kind != "NodePort" and e.address == way.address]
    return out


def _unnamed_dsr_marks(service: Service | None, rules: NodeRules) -> list[str]:
    """The marks of firewall-mark services left unnamed on a kube-router node, when the Service is DSR."""
    from svcctl.dataplane.kube_router import ANNOTATION_DSR, DSR_TUNNEL

    if service is None or rules.mode != "kube-router" or service.meta.annotations.get(ANNOTATION_DSR) != DSR_TUNNEL:
        return []
    return [e.address.removeprefix("fwmark ") for e in rules.services if e.address.startswith("fwmark ")]


def _not_programmed_hint(mode: str) -> str:
    if modes.is_replacement(mode):
        from svcctl.analysis.replacement import SYNC_HINT

        return SYNC_HINT[mode]
    return "check kube-proxy is running and syncing on this node (its logs, sync_proxy_rules_last_timestamp_seconds)"


def _entry_drift(e: ServiceEntry, want: list[ExpectedBackend], local: bool,
                 by_key: dict[tuple[str, int], ExpectedBackend], label: str, node: str | None, rules: NodeRules,
                 reported: set[tuple[str, str]], topology: str = "") -> tuple[list[str], list[Finding]]:
    """One entry's backends against the endpoints kube-proxy should program for it. A backend already
    reported through another entry (the same KUBE-SEP chain) is not reported twice. `topology`: the
    selection's topology mode in words, when hints narrowed the cluster set."""
    want_keys = {w.key for w in want}
    have_keys = {(b.ip, b.port) for b in e.backends}
    drift = EntryDrift(reported)
    lines, found, add = drift.lines, drift.found, drift.add

    for b in e.backends:
        if (b.ip, b.port) not in want_keys:
            ex = by_key.get((b.ip, b.port))
            why = ("its endpoint is not ready" if ex and not ex.ready else
                   "it is on another node (traffic policy Local)" if ex and local else
                   f"topology hints leave it out on this node ({topology})" if ex and topology else
                   "no such endpoint exists in the API")
            lines.append(f"stale: {b.address} is in the rules but {why}")
            add("StaleBackend", b.address, Finding(
                "StaleBackend", Severity.ERROR, f"{label}: node {node or '?'} still sends traffic to {b.address}, but {why}",
                pod=ex.pod if ex else None,
                evidence=f"{b.chain or 'backend'} → {b.address} in {rules.source or rules.mode}",
                hint="kube-proxy has not synced since the endpoint changed: check its logs and sync metrics"))
    drift.unprogrammed(label, want, have_keys, e.no_endpoints, Unprogrammed(
        lambda w: "ready", "the rules", f"node {node or '?'}'s rules", f"{rules.mode} rules list",
        "kube-proxy has not programmed it yet, or is not syncing", "the node rejects",
        "(the node still says \"has no endpoints\")", "REJECT \"has no endpoints\" while the EndpointSlice is ready",
        "kube-proxy has not synced since the endpoint became ready"))
    if local and not want and not e.no_local_endpoints and e.backends:
        lines.append(f"{e.kind}: traffic policy Local but no local endpoint in the API")
    return lines, found


def _not_in_dump(service: Service | None, target: Target, rules: NodeRules, view: ProxyView | None) -> str | None:
    """Why a Service absent from the rules may still be programmed in what the dump left out, else None.

    One family's dump cannot show the other family's rules; a nat-only `iptables-save -t nat` cannot show the
    filter table's REJECT for a Service with no endpoints. No kube-proxy chains at all cannot show whether
    kube-proxy would program it (not running, or a replacement proxies Services)."""
    if rules.proxy_absent:
        return rules.proxy_absent
    ips = [target.ip] if target.ip else [ip for ip in (service.cluster_ips if service else []) if ip not in ("", "None")]
    fams = sorted({"ipv6" if ":" in ip else "ipv4" for ip in ips})
    if not fams or not rules.tables:
        return None
    held = [f for f in fams if rules.holds(f, "nat")]
    if not held:
        names = " or ".join("IPv6" if f == "ipv6" else "IPv4" for f in fams)
        give = "ip6tables-save" if fams == ["ipv6"] else "iptables-save"
        return f"the {rules.mode} dump holds no {names} rules (give `{give}` too)"
    no_endpoints = view is None or not view.cluster
    if no_endpoints and not any(rules.holds(f, "filter") for f in held):
        return ("the dump holds only the nat table: a Service without endpoints is REJECTed in the filter "
                "table (give the whole `iptables-save`)")
    return None


def way_addr(way: Way | None) -> str:
    return way.address if way is not None else "*"


def _judge_source(service: Service | None, port: ServicePort | None, rules: NodeRules, main: ServiceEntry,
                  source: Source | None, where: str, view: ProxyView | None
                  ) -> tuple[SourceJudgement, ServiceEntry | None] | None:
    """The source hop, when it matters: a --from was given, or the way in is external and its answer depends
    on the source (externalTrafficPolicy Local, loadBalancerSourceRanges)."""
    if source is None or service is None or port is None:
        return None
    external = main.kind != "ClusterIP"
    etp_local = port_policy(service, port).external_local
    ranges = bool(main.source_ranges or (main.kind == "LoadBalancer" and service.load_balancer_source_ranges))
    if source.kind == "default" and not (external and (etp_local or ranges)):
        return None
    cip = next((e for e in rules.services if e.kind == "ClusterIP" and e.address in service.cluster_ips
                and e.port == port.port and e.protocol == port.protocol.upper()), None)
    backend_ips = {b.ip for e in (main, cip) if e is not None for b in e.backends}
    return judge_source(source, where, service, main, external, etp_local,
                        service.internal_traffic_policy == "Local", backend_ips, cip), cip


def _health_checked(service: Service | None, e: ServiceEntry, way: Way | None) -> bool:
    """An external entry a load balancer health-checks: LoadBalancer, ETP Local, a healthCheckNodePort, and
    the packet comes from the load balancer (its IP or NodePort; not an externalIP, not a NodePort traced
    directly)."""
    if service is None or e.kind == "ClusterIP" or e.kind == "ExternalIP":
        return False
    if way is not None and way.kind == "NodePort":
        return False
    return (service.type == "LoadBalancer" and service.external_traffic_policy == "Local"
            and bool(service.health_check_node_port))


def judge_port(
    service: Service | None,
    port: ServicePort | None,
    target: Target,
    rules: NodeRules | None,
    view: ProxyView | None,
    node: str | None,
    pod_codes: dict[str, list[str]] | None = None,
    flows: list[Flow] | None = None,
    probe: Counter[tuple[str, int]] | None = None,
    probe_errors: int = 0,
    way: Way | None = None,
    source: Source | None = None,
    source_where: str = "",
) -> PortTrace:
    """The node-rules, endpoints, drift and selected-endpoint hops for one service port (entered by `way`
    when the target named one: then the rules judged are that way's), for a request from `source` (which
    kube-proxy source class `source_where` names: svcctl.analysis.source)."""
    pt = PortTrace(port.port if port else (target.port or 0),
                   port.protocol if port else (target.protocol or "TCP"),
                   port.name if port else "", port.target_port if port else 0, way=way)
    pod_codes = pod_codes or {}
    spn = (f"{service.meta.namespace}/{service.meta.name}" + (f":{port.name}" if port and port.name else "")
           if service else None)
    label = spn or f"{target.ip}:{target.port}"
    by_key: dict[tuple[str, int], ExpectedBackend] = {e.key: e for e in view.all_endpoints} if view else {}

    # ---- node rules
    entries: list[ServiceEntry] = []
    judged: tuple[SourceJudgement, ServiceEntry | None] | None = None
    unseen: str | None = None
    unproxied = service is not None and service.headless  # kube-proxy writes nothing for it
    proxy_name = service.meta.labels.get(PROXY_NAME_LABEL) if service is not None else None
    if unproxied:
        pt.hops.append(Hop("node-rules", SKIPPED, "headless Service: no VIP, so kube-proxy writes no rules; "
                                                  "clients connect to the Pod IPs DNS returns"))
    elif proxy_name is not None:
        unproxied = True
        pt.hops.append(Hop("node-rules", SKIPPED, f"kube-proxy ignores this Service ({PROXY_NAME_LABEL}="
                                                  f"{proxy_name}): the proxy named there programs it"))
    elif way is not None and way.lb_proxy:
        pt.hops.append(Hop("node-rules", SKIPPED, f"{way.label}: kube-proxy writes no rule for it; the load "
                                                  "balancer takes the packet and forwards it to a node",
                           list(way.notes)))
    elif rules is None:
        pt.hops.append(Hop("node-rules", SKIPPED, "no node rules given (use --iptables-save/--ipvsadm/--nft, "
                                                  "--netns, --local-node, a snapshot with node dumps, or --node)"))
    elif way is not None and way.kind == "NodePort" and way.loopback and not localhost_nodeport(
            rules.mode, way.address, rules.localhost_nodeports)[0]:
        why = localhost_nodeport(rules.mode, way.address, rules.localhost_nodeports)[1]
        pt.hops.append(Hop("node-rules", BROKEN, f"{way.label}: not accepted in {rules.mode} mode", [why]))
        pt.findings.append(Finding(
            "NodePortNotOnLocalhost", Severity.ERROR,
            f"{label}: {way.address}:{way.number} is refused or unanswered on node {node or '?'}: {why}",
            evidence=f"kube-proxy {rules.mode} mode ({rules.source or 'the node'})",
            hint=f"connect to a node address instead (NodePort {way.number} on its InternalIP)"))
    else:
        entries = _entries_for_port(service, port, target, rules, way)
        pt.entries = entries
        clusterip = [e for e in entries if e.kind == "ClusterIP"] or entries
        unseen = _not_in_dump(service, target, rules, view) if not entries else None
        if unseen:
            pt.hops.append(Hop("node-rules", SKIPPED, f"skipped: {unseen}"))
        elif not entries and (marks := _unnamed_dsr_marks(service, rules)):
            # a DSR Service and firewall-mark services no address was matched to: one of them may be it
            pt.hops.append(Hop("node-rules", WARNING, f"{label}: cannot tell which firewall-mark service is it",
                               [f"firewall-mark service(s) {', '.join(marks)} match no address by kube-router's "
                                "hash (a mark moved by a collision, or another kube-router version)"]))
            pt.findings.append(Finding(
                "FirewallMarkUnmatched", Severity.WARNING,
                f"{label}: kube-router serves it through a firewall mark (DSR) and node {node or '?'}'s "
                f"firewall-mark services {', '.join(marks)} are not matched to its addresses",
                evidence=f"{len(rules.services)} service entries read from {rules.source or 'the node'}",
                hint="give the node's `iptables-save -t mangle` (--iptables-save FILE): its MARK rules name each "
                     "mark's address"))
        elif not entries:
            pt.hops.append(Hop("node-rules", BROKEN, f"{label} is not in this node's {rules.mode} rules"))
            pt.findings.append(Finding(
                "ServiceNotProgrammed", Severity.ERROR,
                f"{label}: no {rules.mode} rule on node {node or '?'} sends "
                f"{target.ip or (service.cluster_ip if service else '?')}:{pt.port} anywhere",
                evidence=f"{len(rules.services)} service entries read from {rules.source or 'the node'}",
                hint=_not_programmed_hint(rules.mode),
            ))
        else:
            main = clusterip[0]
            details = [f"way in: {way.label}"] if way is not None else []
            if way is not None and way.kind == "NodePort" and way.loopback:
                details.append(localhost_nodeport(rules.mode, way.address, rules.localhost_nodeports)[1])
            details += [f"entry: {e.kind} {e.address or '*'}:{e.port}/{e.protocol}"
                       + (f" via {' → '.join(e.path)}" if e.path else "") for e in entries]
            for e in entries:
                details += [f"{e.kind}: {m}" for m in e.masquerade]
                details += [f"{e.kind}: {n}" for n in e.notes]
                if e.affinity_seconds:
                    details.append(f"{e.kind}: session affinity: a client sticks to its backend for "
                                   f"{e.affinity_seconds}s")
                if e.source_ranges:
                    details.append(f"{e.kind}: only from {', '.join(e.source_ranges)}")
            mode = modes.find(rules.mode)
            if mode is not None:
                details += mode.trace_details(main)
            verdict = OK
            # what the mode needs besides its rules (IPVS: a virtual server is only reached when its VIP is
            # bound and in the ipset)
            glue = glue_findings(NodeRules(rules.mode, entries, source=rules.source))
            if glue:
                verdict = BROKEN
                pt.findings += glue
            main_at = f"{main.address or (way.address if way else '*')}:{main.port}"
            summary = (f"{way.label if way is not None else f'{main.kind} {main_at}/{main.protocol}'}"
                       f" → {len(main.backends)} backend(s) [{rules.mode}]")
            if main.no_endpoints:
                verdict = BROKEN
                summary = f"{main_at} has no endpoints: the node rejects the connection"
                pt.findings.append(Finding(
                    "NoEndpointsReject", Severity.ERROR,
                    f"{label}: node {node or '?'} rejects connections to {main_at} "
                    "(\"has no endpoints\")",
                    evidence="; ".join(main.path) or "REJECT rule in filter KUBE-SERVICES",
                    hint="the Service has no ready endpoints on this node's view; see the endpoints hop",
                ))
            judged = _judge_source(service, port, rules, main, source, source_where, view)
            shown = main.backends
            if judged is not None:
                j, cip = judged
                hop_verdict = OK
                if not j.allowed:
                    verdict = hop_verdict = BROKEN
                    pt.findings.append(Finding(
                        "SourceNotAllowed", Severity.ERROR,
                        f"{label}: {source.ip if source else '?'} may not reach {main_at}: "
                        "outside loadBalancerSourceRanges",
                        evidence=f"source ranges {', '.join(main.source_ranges or (service.load_balancer_source_ranges if service else []))}",
                        hint="add the client's range to spec.loadBalancerSourceRanges, or call from an allowed "
                             "source"))
                elif (j.uses == "cluster" and main.kind != "ClusterIP" and cip is not None
                      and (main.policy_local or main.no_local_endpoints)):
                    shown = cip.backends  # the EXT chain's short-circuit to the cluster chain
                    details.append(f"from {j.where}: the external chain short-circuits to the cluster set "
                                   f"({len(shown)} backend(s), as for the ClusterIP)")
                pt.hops.insert(0, Hop("source", hop_verdict, j.summary, j.details,
                                      {"source": source.to_json() if source else None, "class": j.where,
                                       "uses": j.uses, "masquerade": j.masquerade}))
            for e in entries:
                if e.no_local_endpoints and e is main and judged is not None and judged[0].uses == "cluster":
                    # this source is short-circuited to the cluster set; only traffic from outside is dropped
                    verdict = WARNING if verdict == OK else verdict
                    pt.findings.append(Finding(
                        "NoLocalEndpoints", Severity.WARNING,
                        f"{label}: {e.kind} {e.address or way_addr(way)}:{e.port} on node {node or '?'} has no local "
                        f"endpoint: traffic from {judged[0].where} is sent to the cluster set, traffic from "
                        "outside the node is dropped",
                        evidence="DROP \"has no local endpoints\" (filter table, external traffic only)",
                        hint="run a ready Pod on this node, or use externalTrafficPolicy Cluster"))
                    continue
                if e.no_local_endpoints:
                    checked = _health_checked(service, e, way)
                    if checked:  # the load balancer's health check takes the node out: by design
                        pt.findings.append(Finding(
                            "HealthCheckTakesNodeOut", Severity.INFO,
                            f"{label}: {e.kind} {e.address or '*'}:{e.port} has no local endpoint on node "
                            f"{node or '?'}, so its healthCheckNodePort {service.health_check_node_port if service else ''}"
                            " answers 503 and the load balancer sends this node nothing (externalTrafficPolicy "
                            "Local, by design)",
                            evidence="DROP \"has no local endpoints\" for traffic from outside the node",
                            hint="nothing to fix when the load balancer health-checks this node; traffic sent to "
                                 "the NodePort directly is dropped here"))
                        continue
                    verdict = BROKEN if e is main else (WARNING if verdict == OK else verdict)
                    pt.findings.append(Finding(
                        "NoLocalEndpoints", Severity.ERROR if e is main else Severity.WARNING,
                        f"{label}: {e.kind} {e.address or '*'}:{e.port} drops traffic on node {node or '?'}: "
                        "traffic policy Local and no endpoint on this node",
                        evidence="DROP \"has no local endpoints\"",
                        hint="run a ready Pod on this node, or use traffic policy Cluster",
                    ))
            if shown is not main.backends:
                summary = (f"{way.label if way is not None else f'{main.kind} {main_at}/{main.protocol}'}"
                           f" → {len(shown)} backend(s) [{rules.mode}]")
            pt.hops.append(Hop("node-rules", verdict, summary, details))
            for b in shown:
                ex = by_key.get((b.ip, b.port))
                pt.backends.append(TraceBackend(
                    b.ip, b.port, b.probability, ex.pod if ex else None,
                    ex.ready if ex else None, ex.node if ex else "", b.chain, b.weight,
                    state=("terminating" if ex and ex.terminating else "ready" if ex and ex.ready
                           else "not ready" if ex else "unknown (no such endpoint in the API)"),
                    dataplane_state=b.effective_state if modes.is_replacement(rules.mode) else "",
                ))

    # ---- endpoints
    if view is None:
        pt.hops.append(Hop("endpoints", SKIPPED, "no cluster data: backends not mapped to Pods"))
    else:
        ready = [e for e in view.all_endpoints if e.ready]
        notready = [e for e in view.all_endpoints if not e.ready]
        details = [f"{e.ip}:{e.port} {e.pod or '(no Pod)'} on {e.node or '?'}: "
                   + ("ready" if e.ready else "terminating" if e.terminating else "not ready")
                   + (f" — {', '.join(pod_codes[e.pod])}" if e.pod and pod_codes.get(e.pod) else "")
                   for e in view.all_endpoints]
        for pod, codes in sorted(pod_codes.items()):
            if not any(e.pod == pod for e in view.all_endpoints) and codes:
                details.append(f"{pod}: expected but absent — {', '.join(codes)}")
        details += view.notes
        if rules is not None and service is not None and modes.is_replacement(rules.mode):
            from svcctl.analysis.replacement import view_notes

            details += view_notes(rules.mode, service, view, rules)
        verdict = OK if ready else BROKEN
        if ready and (notready or any(pod_codes.values())):
            verdict = WARNING
        summary = f"{len(ready)} ready, {len(notready)} not ready endpoint(s) for port {pt.name or pt.port}"
        sel = view.selection_for(way.address if way else (service.cluster_ip if service else ""))
        data: dict[str, Any] = {}
        if sel is not None and node:
            uses = sel.describe(external=way.external if way else False,
                                local_source=judged is not None and judged[0].uses == "cluster")
            summary += f"; {uses}"
            data["selection"] = sel.to_json()
        pt.hops.append(Hop("endpoints", verdict, summary, details, data))

    # ---- drift: every entry a request can come in by, against the endpoints kube-proxy should use for it
    if rules is not None and view is not None and entries:
        main = ([e for e in entries if e.kind == "ClusterIP"] or entries)[0]
        drift: list[str] = []
        reported: set[tuple[str, str]] = set()
        for e in [main, *(x for x in entries if x is not main and x.kind != "ClusterIP")]:
            if modes.is_replacement(rules.mode):  # each dataplane's own policy rules and backend states
                from svcctl.analysis.replacement import entry_drift, entry_is_local, want_for

                local = entry_is_local(rules.mode, e, e.kind == "ClusterIP", service)  # by the way in
                where = label if e is main else f"{label} ({e.kind} {e.address or '*'}:{e.port})"
                lines, found = entry_drift(rules.mode, e, want_for(rules.mode, e, view, local), local, by_key,
                                           where, node, rules, reported)
                drift += lines
                pt.findings += found
                continue
            # ClusterIP follows internalTrafficPolicy; NodePort, external and LB IPs externalTrafficPolicy (the
            # rules' backends of an ETP Local entry are those for a source outside the node)
            fam_addr = e.address or (e.backends[0].ip if e.backends else (way.address if way else ""))
            want, local = view.want(fam_addr, external=e.kind != "ClusterIP")
            sel = view.selection_for(fam_addr)
            topo = (f"{sel.topology_mode}, zone {sel.zone}" if sel and sel.topology_mode == "PreferSameZone"
                    else f"{sel.topology_mode}, node {sel.node}" if sel and sel.topology_mode else "")
            where = label if e is main else f"{label} ({e.kind} {e.address or '*'}:{e.port})"
            lines, found = _entry_drift(e, want, local, by_key, where, node, rules, reported, topo)
            drift += lines
            pt.findings += found
        pt.hops.append(Hop("drift", BROKEN if drift else OK,
                           "node rules match the API" if not drift else f"{len(drift)} difference(s) "
                           "between the node and the API", drift))
    elif unproxied:
        pt.hops.append(Hop("drift", SKIPPED, "kube-proxy writes no rules for this Service: nothing to compare"))
    elif unseen:
        pt.hops.append(Hop("drift", SKIPPED, f"skipped: {unseen}"))
    elif rules is None or view is None:
        pt.hops.append(Hop("drift", SKIPPED, "needs both node rules and cluster data"))

    # ---- selected endpoint: conntrack and probe
    vips = {e.address for e in entries if e.address} | ({target.ip} if target.ip else set())
    if service is not None:
        vips |= set(service.cluster_ips) - {"None", ""}
    ports = {e.port for e in entries} | {pt.port}
    if flows is not None:
        mine = [f for f in flows if f.dst in vips and f.dport in ports and f.protocol.upper() == pt.protocol]
        counts = Counter((f.backend_ip, f.backend_port) for f in mine)
        details = []
        for (ip, p), n in counts.most_common():
            ex = by_key.get((ip, p))
            details.append(f"{n} flow(s) → {ip}:{p} {ex.pod if ex else ''}".rstrip())
            for tb in pt.backends:
                if (tb.ip, tb.port) == (ip, p):
                    tb.observed = (tb.observed or 0) + n
        pt.hops.append(Hop("selected", OK,  # no flow right now is no fault: nothing may be calling
                           f"conntrack: {len(mine)} live flow(s) to this port" if mine else
                           "conntrack: no live flow to this port right now", details,
                           {"flows": {f"{i}:{p}": n for (i, p), n in counts.items()}}))
    if probe is not None:
        total = sum(probe.values())
        details = []
        for (ip, p), n in probe.most_common():
            hit = next((tb for tb in pt.backends if (tb.ip, tb.port) == (ip, p)), None)
            exp = f" (predicted {_share(hit.probability)})" if hit else " (not a predicted backend!)"
            details.append(f"{ip}:{p} answered {n}/{total}{exp}")
            if hit:
                hit.observed = n
        verdict = OK if total and not probe_errors else (BROKEN if not total else WARNING)
        unexpected = [k for k in probe if not any((tb.ip, tb.port) == k for tb in pt.backends)]
        if unexpected and pt.backends:
            verdict = WARNING
        pt.hops.append(Hop("selected", verdict,
                           f"probe: {total} answered, {probe_errors} failed", details))
    if flows is None and probe is None:
        pt.hops.append(Hop("selected", SKIPPED, "not observed (--conntrack FILE or --probe N shows where "
                                                "connections went)"))
    return pt


# ------------------------------------------------------------------------------------------------ whole trace


@dataclass
class Trace:
    target: Target
    service: Service | None
    node: str | None
    mode: str | None
    dns: DNSReport | None = None  # from the DNS hop
    pre_hops: list[Hop] = field(default_factory=list)  # dns, service
    ports: list[PortTrace] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    endpoint_counts: dict[str, int | None] | None = None  # the endpoints report's ready / expected (the story)

    @property
    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for p in self.ports:
            out += p.findings
        return out

    @property
    def verdict(self) -> Verdict:
        """The one model of every command: the worst of the hops and of the findings, so any error finding
        (a not-ready Pod the selector names, too) makes the trace broken, as `endpoints` and `check` say."""
        hops = [*self.pre_hops, *(h for p in self.ports for h in p.hops)]
        return worst([*(h.verdict for h in hops), verdict_of(f.severity for f in self.all_findings)])

    @property
    def broken(self) -> bool:
        return self.verdict is Verdict.BROKEN

    def to_json(self) -> dict[str, Any]:
        from svcctl import API_VERSION

        svc: dict[str, Any] | None = None
        if self.service is not None:
            s = self.service
            svc = {"namespace": s.meta.namespace, "name": s.meta.name, "type": s.type,
                   "clusterIPs": s.cluster_ips, "selector": s.selector,
                   "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol,
                              "targetPort": p.target_port, "nodePort": p.node_port} for p in s.ports],
                   "sessionAffinity": s.session_affinity,
                   "externalTrafficPolicy": s.external_traffic_policy,
                   "internalTrafficPolicy": s.internal_traffic_policy}
        return {
            "apiVersion": API_VERSION,
            "kind": "Trace",
            "target": self.target.raw,
            "verdict": self.verdict.value,
            "service": svc,
            "dns": self.dns.to_json() if self.dns is not None else None,
            "node": {"name": self.node, "mode": self.mode},
            "hops": [h.to_json() for h in self.pre_hops],
            "ports": [p.to_json() for p in self.ports],
            "findings": [f.to_json() for f in self.all_findings],
            "notes": self.notes,
            "summary": _story(self),
        }


def _story(tr: Trace) -> str:
    from svcctl.analysis.story import sentence

    return sentence(tr)


def stale_service_drift(pt: PortTrace, rules: NodeRules, target: Target, node: str | None) -> None:
    """The API has no Service at this address, yet the node still sends it somewhere: rules kube-proxy has not
    removed (not syncing, or stopped since the Service was deleted or its address or port changed)."""
    live = [e for e in rules.services if e.address == target.ip and e.port == pt.port
            and e.protocol == pt.protocol and e.backends]
    if not live:
        # nothing routes it and nothing should: ServiceNotFound is the answer, not ServiceNotProgrammed
        pt.findings = [f for f in pt.findings if f.code != "ServiceNotProgrammed"]
        for h in pt.hops:
            if h.name == "node-rules" and h.verdict == BROKEN:
                h.verdict, h.summary = SKIPPED, (f"no rule sends {target.ip}:{pt.port}/{pt.protocol} anywhere, and "
                                                 "no Service in the API has this address")
        return
    names = sorted({e.name for e in live if e.name})
    n = len({(b.ip, b.port) for e in live for b in e.backends})
    msg = (f"node {node or '?'} still sends {target.ip}:{pt.port}/{pt.protocol} to {n} backend(s)"
           + (f" (its rules name {', '.join(names)})" if names else "")
           + ", but no Service in the API has this address")
    pt.hops = [h for h in pt.hops if h.name != "drift"]
    pt.hops.insert(max(0, len(pt.hops) - 1), Hop("drift", BROKEN, msg, [
        f"{e.kind} {e.address}:{e.port}/{e.protocol} via {' → '.join(e.path) or '?'}" for e in live]))
    pt.findings.append(Finding(
        "StaleService", Severity.ERROR, msg,
        evidence="; ".join(f"{e.kind} entry {e.address}:{e.port}/{e.protocol}" for e in live),
        hint="kube-proxy has not synced since the Service was deleted or changed: check that it runs on this "
             "node and its logs (sync_proxy_rules_last_timestamp_seconds)"))


def service_hop(service: Service) -> Hop:
    s = service
    details = [f"type {s.type}"]
    if s.type == "ExternalName":
        return Hop("service", OK, f"ExternalName → {s.external_name}: DNS answers a CNAME, no VIP, no proxying",
                   details)
    if s.headless:
        details.append("headless (clusterIP: None): DNS returns Pod IPs directly; no VIP, no kube-proxy rules")
    else:
        details.append("ClusterIP(s): " + ", ".join(s.cluster_ips))
    for p in s.ports:
        details.append(f"port {p.name or '-'} {p.port}/{p.protocol} → targetPort {p.target_port}"
                       + (f", nodePort {p.node_port}" if p.node_port else ""))
    details.append("selector: " + (", ".join(f"{k}={v}" for k, v in sorted(s.selector.items()))
                                   if s.selector else "none (endpoints managed by hand)"))
    if s.session_affinity == "ClientIP":
        details.append(f"session affinity ClientIP, {s.affinity_timeout}s")
    if s.external_traffic_policy == "Local" and s.type in ("NodePort", "LoadBalancer"):
        details.append("externalTrafficPolicy Local: external traffic only to this node's endpoints")
    if s.internal_traffic_policy == "Local":
        details.append("internalTrafficPolicy Local: in-cluster traffic only to this node's endpoints")
    if PROXY_NAME_LABEL in s.meta.labels:
        details.append("labelled service.kubernetes.io/service-proxy-name: kube-proxy ignores this Service")
    vip = "headless" if s.headless else ",".join(s.cluster_ips)
    verdict = OK
    if not s.ports and s.type != "ExternalName":
        verdict = BROKEN
        details.append("the Service has no ports")
    return Hop("service", verdict, f"{s.meta.key} {s.type} {vip}", details)


def pick_ports(service: Service, target: Target, port_flag: str | None) -> list[ServicePort]:
    """--port by number or name; else the port in the target; else every port. A protocol in the target
    (`:53/udp`, `udp://`, --protocol) keeps only that protocol's ports; without one, each protocol of the port
    number is its own entry."""
    want = port_flag if port_flag is not None else (str(target.port) if target.port else None)
    ports = [p for p in service.ports if target.protocol is None or p.protocol.upper() == target.protocol]
    if want is None:
        return ports
    return [p for p in ports
            if str(p.port) == want or p.name == want or (p.node_port and str(p.node_port) == want)]


def judge_health_check(service: Service, way: Way, slices: list[EndpointSlice], node: str | None) -> PortTrace:
    """`healthCheckNodePort`: kube-proxy's own HTTP server answers it (no rule proxies it). It answers 200
    while the node has a local ready endpoint of the Service and 503 otherwise (terminating endpoints are not
    counted, pkg/proxy/healthcheck), so a load balancer takes the node out."""
    pt = PortTrace(way.number, "TCP", "healthCheckNodePort", way.number, way=way)
    local: set[str] = set()
    for p in service.ports:
        local |= {e.ip for e in proxy_view(service, p, slices, node).all_endpoints
                  if node and e.node == node and e.ready}
    details = [f"way in: {way.label}",
               "served by kube-proxy's health check server on the node (externalTrafficPolicy Local), not "
               "by a rule: it counts the node's local ready endpoints"]
    if node is None:
        pt.hops.append(Hop("node-rules", SKIPPED, "which node? the answer depends on its local endpoints",
                           details))
        return pt
    if local:
        pt.hops.append(Hop("node-rules", OK, f"{way.label}: answers 200 ({len(local)} local ready endpoint(s) "
                                             f"on {node}): the load balancer sends traffic here", details))
    else:
        pt.hops.append(Hop("node-rules", OK, f"{way.label}: answers 503 (no local ready endpoint on {node}): "
                                             "the load balancer takes this node out, by design", details))
        pt.findings.append(Finding(
            "HealthCheckTakesNodeOut", Severity.INFO,
            f"{service.meta.key}: node {node} has no local ready endpoint, so its health check "
            f"(:{way.number}) answers 503 and the load balancer sends it nothing",
            evidence=f"externalTrafficPolicy Local; no ready endpoint with nodeName {node}",
            hint="expected with externalTrafficPolicy Local; run a Pod on this node if it should take traffic"))
    return pt


def flows_summary(flows: list[Flow]) -> dict[str, int]:
    return dict(Counter(f"{f.backend_ip}:{f.backend_port}" for f in flows))


def backend_from(entry: ServiceEntry, ip: str, port: int) -> Backend | None:
    return next((b for b in entry.backends if b.ip == ip and b.port == port), None)


def drift_findings(service: Service, slices: list[EndpointSlice], rules: NodeRules,
                   node: str | None, zone: str = "") -> list[Finding]:
    """Findings where the node's rules and the API disagree about `service` (used by `svcctl check`)."""
    if service.type == "ExternalName" or service.headless or not service.selector and not slices:
        return []
    if PROXY_NAME_LABEL in service.meta.labels:
        return []
    target = Target(service.meta.key, "service", service.meta.namespace, service.meta.name)
    out: list[Finding] = []
    for port in service.ports:
        view = proxy_view(service, port, slices, node, zone)
        out += judge_port(service, port, target, rules, view, node).findings
    return out

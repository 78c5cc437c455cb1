"""The orchestration behind `svcctl trace`: gather every piece of one request's path (the Service, the node's
rules, DNS, endpoints, NetworkPolicy, conntrack, probes) and judge each hop into a Trace; no click, no App."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from svcctl.analysis.source import Source
from svcctl.analysis.trace import (
    BROKEN,
    SKIPPED,
    Hop,
    PortTrace,
    ProxyView,
    Target,
    Trace,
    is_ip,
    judge_health_check,
    judge_port,
    parse_target,
    pick_ports,
    proxy_view,
    service_hop,
)
from svcctl.analysis.ways import Way, find_ways, is_loopback
from svcctl.dataplane.model import Flow, NodeRules
from svcctl.errors import ForbiddenError, InputError, NotFoundError
from svcctl.findings import Severity
from svcctl.model import EndpointSlice, Finding, PodRef, Service
from svcctl.ops.context import Context
from svcctl.sources.base import NodeDumps

if TYPE_CHECKING:  # the DNS analysis (9 dataclasses) is imported by the DNS hop, which a trace of a VIP skips
    from svcctl.analysis.dns import DNSQuery


def fleet_service(app: Context, raw_target: str, cluster_domain: str) -> Service:
    """The one Service --all-nodes judges on every node."""
    target = parse_target(raw_target, cluster_domain)
    if target.kind == "ip" and target.ip:
        ways = _ways_for_ip(app, target)
        if not ways:
            raise NotFoundError(_no_way_message(target))
        return ways[0].service
    if not target.name:
        raise InputError(f"cannot tell which Service {raw_target!r} names", hint="use ns/name or VIP:port")
    return app.source.get_service(target.namespace or app.ns, target.name)


def _ways_for_ip(app: Context, target: Target) -> list[Way]:
    """The Service ports `target` (an IP, maybe with port and protocol) enters by. The Nodes are read only
    when no Service has the IP itself (a node address takes every nodePort)."""
    assert target.ip is not None
    services = app.source.list_services(None)
    ways = find_ways(services, target.ip, target.port, target.protocol)
    if not ways and not is_loopback(target.ip):
        nodes = app.source.list_nodes()
        ways = find_ways(services, target.ip, target.port, target.protocol, nodes=nodes)
        if not ways:  # an address of the node read (--netns, --local-node) that its Node object does not list
            from svcctl.sources.node import read_own_addresses

            own = read_own_addresses(app)
            if target.ip in own:
                ways = find_ways(services, target.ip, target.port, target.protocol, nodes=nodes, own_addresses=own,
                                 own_node=app.node_inputs.node)
    elif not ways:
        ways = find_ways(services, target.ip, target.port, target.protocol, nodes=[],
                         own_node=app.node_inputs.node)
    owners = sorted({w.service.meta.key for w in ways})
    if len(owners) > 1:
        raise InputError(f"{target.raw} enters {len(owners)} Services: {', '.join(owners[:6])}"
                         + (" …" if len(owners) > 6 else ""),
                         hint="give the port (NODE_IP:NODE_PORT) or the protocol (:PORT/udp, --protocol)")
    return ways


def _no_way_message(target: Target) -> str:
    at = f"{target.ip}:{target.port}" if target.port else target.ip
    proto = f"/{target.protocol}" if target.protocol else ""
    return (f"no Service has {at}{proto} as a ClusterIP, externalIP or load-balancer IP, nor is it a node "
            "address with such a nodePort")


def _choose_node(app: Context, service: Service | None, from_pod: str | None,
                 ways: list[Way] | None = None, from_node: str | None = None) -> tuple[str | None, str]:
    """The node whose rules to read, and why that one."""
    ni = app.node_inputs
    if ni.node:
        return ni.node, "--node"
    if from_node:
        return from_node, "--from node/NAME"
    way_node = next((w.node for w in ways or [] if w.node), None)
    if way_node and app.has_cluster:
        # a packet to a node's address is handled by that node's kube-proxy rules (given ones are taken as its)
        return way_node, f"the traced address is {way_node}'s"
    if from_pod and app.has_cluster:
        ref = PodRef.parse(from_pod, app.ns)
        pod = app.source.get_pod(ref.namespace, ref.name)
        if pod is None:
            raise NotFoundError(f'pod "{ref.name}" not found in namespace "{ref.namespace}"')
        return pod.node_name or None, f"node of Pod {pod.key}"
    if ni.files or ni.netns or ni.local:
        return None, "node input given on the command line"
    if app.has_cluster:
        from svcctl.sources.base import RecordedDumps

        snap_nodes = app.source.dumps if isinstance(app.source, RecordedDumps) else None
        if snap_nodes is not None and len(snap_nodes) == 1:
            return next(iter(snap_nodes)), "the only node with dumps in the snapshot"
        import os
        import socket

        own = os.environ.get("NODE_NAME") or os.environ.get("KUBE_NODE_NAME")
        if own:
            return own, "$NODE_NAME (where svcctl runs)"
        if not app.snapshot:  # svcctl runs on a node: its host name is the Node's name
            host = socket.gethostname()
            if host and app.source.get_nodes([host]).get(host) is not None:
                return host, "this host is a node of the cluster"
    return None, ""


def build_trace(app: Context, raw_target: str, *, port_flag: str | None = None, protocol: str | None = None,
                from_pod: str | None = None, from_: str | None = None,
                cluster_domain: str = "cluster.local", dns_server: str | None = None,
                resolv_conf: str | None = None, no_dns: bool = False, dns_timeout: float = 2.0,
                probe_count: int | None = None, probe_http: bool = True, from_ip: str | None = None,
                dns_anyway: bool = False) -> Trace:
    target = parse_target(raw_target, cluster_domain)
    if port_flag is not None and port_flag.isdigit() and not 0 < int(port_flag) < 65536:
        raise InputError(f"--port {port_flag} is out of range (1–65535)")
    if protocol:
        if target.protocol and target.protocol != protocol.upper():
            raise InputError(f"{raw_target!r} says {target.protocol} but --protocol says {protocol.upper()}")
        target.protocol = protocol.upper()
    if from_ip is not None and not is_ip(from_ip):
        raise InputError(f"--from {from_ip!r} is not an IP address", hint="--from-pod NS/POD names a Pod")
    service: Service | None = None
    ways: list[Way] = []
    cluster = app.has_cluster
    if cluster:
        if target.kind == "ip" and target.ip:
            ways = _ways_for_ip(app, target)
            service = ways[0].service if ways else None
        elif target.name:
            service = app.source.get_service(target.namespace or app.ns, target.name)
        elif target.kind == "dns":
            raise InputError(f"cannot tell which Service {target.host!r} names",
                             hint=f"use <svc>.<ns>.svc.{cluster_domain}, ns/name, or VIP:port")
    elif target.kind != "ip":
        raise InputError(f"{raw_target!r} names a Service but no cluster was given",
                         hint="with node input only, trace VIP:port (e.g. 10.0.1.175:80), or add --snapshot/--kubeconfig")

    from_node = from_[5:] if from_ and from_.startswith("node/") else None
    node, node_why = _choose_node(app, service, from_pod, ways, from_node)
    tr = Trace(target, service, node, None)
    if node_why:
        tr.notes.append(f"node {node or '(given input)'}: {node_why}")

    # ---- the client's Egress to the cluster DNS, judged before the DNS hop sends anything
    gate, pre = None, None
    if service is not None and cluster and from_pod:  # ExternalName too: its whole path is the DNS lookup
        from svcctl.ops.policy_dns import dns_policy_gate

        gate, pre = dns_policy_gate(app.source, from_pod, app.ns)
        if gate is not None and gate.finding is not None:
            tr.findings.append(gate.finding)

    # ---- DNS hop
    if no_dns or target.kind == "ip":
        tr.pre_hops.append(Hop("dns", SKIPPED, "skipped: TARGET was an IP" if target.kind == "ip" else
                               "skipped (--no-dns)"))
    elif service is not None and gate is not None and gate.blocks and not dns_anyway:
        tr.pre_hops.append(gate.hop())  # the client could get no answer: no query, no timeout to wait out
    elif service is not None:
        hop = _dns_hop(app, tr, service, target, cluster_domain, dns_server, resolv_conf, dns_timeout, from_pod)
        if gate is not None and gate.finding is not None:  # --dns-anyway: asked from where svcctl runs
            hop.verdict = BROKEN
            hop.details.append(f"the client's Egress blocks DNS: {gate.finding.message}")
        tr.pre_hops.append(hop)

    # ---- Service hop
    if service is not None:
        tr.pre_hops.append(service_hop(service))
    elif target.kind == "ip":
        tr.pre_hops.append(Hop("service", SKIPPED if not cluster else BROKEN,
                               "no cluster data: the Service behind this IP is unknown" if not cluster
                               else _no_way_message(target)))
        if cluster:
            tr.findings.append(Finding("ServiceNotFound", Severity.ERROR, _no_way_message(target),
                                       hint="list Services with `svcctl endpoints -A` (NodePorts: -o wide)"))

    # ---- node rules
    rules: NodeRules | None = None
    flows: list[Flow] | None = None
    rules_skipped: str | None = None
    dumps: NodeDumps | None = None
    ni = app.node_inputs
    if node is None and app.has_cluster and not app.snapshot and not (ni.files or ni.netns or ni.local):
        # live, and nothing says which node: the other hops still stand, the node hop asks
        rules_skipped = "which node? give --node NAME or --from-pod POD (or a dump file)"
    elif app.snapshot and node is not None and not ni.any_given and app.source.node_dumps(node) is None:
        # the other hops need only cluster objects: a snapshot without this node's dumps still traces
        rules_skipped = f"the snapshot has no node dumps for {node} (nodes/{node}/iptables-save.txt …)"
    else:
        try:
            dumps = app.node_dumps(node, only=_only_keys(service, target),
                                   services=[(service, None)] if service is not None else None)
        except ForbiddenError as e:  # RBAC refused kube-proxy exec: the other hops still stand
            rules_skipped = e.message
            tr.findings.append(Finding("CheckSkipped", Severity.WARNING, f"node rules skipped: {e.message}",
                                       hint=e.hint or ""))
    if dumps:

        rules = app.load_rules(dumps, mode=app.node_inputs.mode,
                               only=_only_keys(service, target) | {w.address for w in ways})
        tr.mode = rules.mode if rules else None
        if rules is not None and service is not None and any(not e.kind_known for e in rules.services):
            # IPVS without `ipset list`: the Service says what each of its virtual servers is
            from svcctl.analysis.ways import classify_entries

            classify_entries(rules.services, [service], {w.address for w in ways if w.kind == "NodePort"})
        if rules is not None:  # the rule counts are not shown in a trace: their note does not apply
            tr.notes += [n for n in rules.notes if not n.startswith("only the rules of the Service")]
            if rules.proxy_absent:
                tr.findings.append(Finding("ProxyModeUnknown", Severity.WARNING, "no kube-proxy rules on this node",
                                           evidence=rules.proxy_absent,
                                           hint="is kube-proxy running here? if a replacement proxies Services, "
                                                "give its listing (--cilium, --calico-nat)"))
        if rules is None:
            tr.findings.append(Finding("ProxyModeUnknown", Severity.WARNING,
                                       "the node's dumps show no kube-proxy rules in any mode",
                                       evidence=", ".join(sorted(dumps.texts)),
                                       hint="is kube-proxy running here? pass --mode if detection is wrong"))
        ct = dumps.get("conntrack")
        if ct is not None:
            from svcctl.dataplane.conntrack import parse_conntrack

            flows = parse_conntrack(ct, dumps.origins.get("conntrack", "conntrack"))
        conns = dumps.get("ipvs-conns")
        if conns is not None and conns.strip():
            # IPVS keeps its own connection table (`ipvsadm -Lnc`); conntrack may list the same connections
            # again, so IPVS's table is used alone
            from svcctl.dataplane.ipvs import parse_ipvsadm_connections

            flows = parse_ipvsadm_connections(conns, dumps.origins.get("ipvs-conns", "ipvsadm -Lnc"))
    elif service is not None and not (service.headless or service.type == "ExternalName"):
        tr.notes.append("no node rules: pass --iptables-save/--ipvsadm/--nft FILE, --netns, --local-node, or "
                        "--node with a snapshot that has node dumps")

    # ---- endpoints analysis (why-not codes per Pod)
    pod_codes: dict[str, list[str]] = {}
    slices: list[EndpointSlice] = []
    no_endpoints_input = ""  # the input holds neither EndpointSlices nor v1 Endpoints: why
    if service is not None and service.type != "ExternalName":
        from svcctl.ops.endpoints import analyze_service

        report = analyze_service(app.source, service.meta.namespace, service.meta.name, why_not=True)
        for f in report.findings:
            if f.pod:
                pod_codes.setdefault(f.pod, []).append(f.code)
            if f.severity == Severity.ERROR or f.pod is None:
                tr.findings.append(f)
        tr.endpoint_counts = dict(report.counts)
        slices = report.slices  # the slices analysed (v1 Endpoints standing in when the input has no slices)
        if report.basis == "":
            no_endpoints_input = report.basis_absent or "the input has no EndpointSlices"
        elif report.basis != "EndpointSlices":
            tr.notes.append(f"endpoints read from the {report.basis}: the input has no EndpointSlices")
    zone = _node_zone(app, node, slices)
    if service is not None and slices:
        tr.notes += _why_no_hints(app, service, slices, node)
    src, src_where = _resolve_source(app, from_, from_pod, node, ways) if service is not None else (None, "")

    # ---- ports
    view: ProxyView | None = None
    judged: list[tuple[PortTrace, ProxyView]] = []  # (port, its endpoints) for the policy hop
    if service is not None and ways:
        if port_flag is not None:
            ways = [w for w in ways if w.port is not None and port_flag in (str(w.port.port), w.port.name)
                    or w.port is None and port_flag == str(w.number)] or ways
        for w in ways:
            if w.port is None:  # the health check: kube-proxy itself answers, no proxied port
                tr.ports.append(judge_health_check(service, w, slices, node))
                continue
            view = proxy_view(service, w.port, slices, node, zone) if not no_endpoints_input else None
            probe_counts, probe_errors = _probe(app, rules, service, w.number, target, probe_count, probe_http,
                                                view)
            tr.ports.append(judge_port(service, w.port, target, rules, view, node, pod_codes, flows,
                                       probe_counts, probe_errors, way=w, source=src, source_where=src_where))
            if view is not None:
                judged.append((tr.ports[-1], view))
    elif service is not None:
        ports = pick_ports(service, target, port_flag)
        if not ports and service.ports:
            raise InputError(f"{service.meta.key} has no port {port_flag or target.port}"
                             + (f"/{target.protocol}" if target.protocol else ""),
                             hint="ports: " + ", ".join(f"{p.name or '-'}={p.port}/{p.protocol}"
                                                        for p in service.ports))
        for p in ports:
            view = proxy_view(service, p, slices, node, zone) if not no_endpoints_input else None
            probe_counts, probe_errors = _probe(app, rules, service, p.port, target, probe_count, probe_http, view)
            tr.ports.append(judge_port(service, p, target, rules, view, node, pod_codes, flows,
                                       probe_counts, probe_errors, source=src, source_where=src_where))
            if view is not None:
                judged.append((tr.ports[-1], view))
    else:
        # no Service known: each (port, protocol) the rules have for this address is its own entry, never merged
        seen: list[tuple[int, str | None]]
        if rules is not None:
            seen = sorted({(e.port, e.protocol) for e in rules.services if e.address == target.ip
                           and (target.port is None or e.port == target.port)
                           and (target.protocol is None or e.protocol == target.protocol)},
                          key=lambda k: (k[0], k[1] != "TCP", k[1] or ""))
        else:
            seen = []
        if not seen:
            seen = [(target.port or 0, target.protocol)]
        for port, proto in seen:
            t = Target(target.raw, target.kind, host=target.host, ip=target.ip, port=port or None, protocol=proto)
            probe_counts, probe_errors = _probe(app, rules, None, port, t, probe_count, probe_http, None)
            pt = judge_port(None, None, t, rules, None, node, pod_codes, flows, probe_counts, probe_errors)
            if cluster and rules is not None:
                from svcctl.analysis.trace import stale_service_drift

                stale_service_drift(pt, rules, t, node)
            tr.ports.append(pt)
    if no_endpoints_input:
        for pt in tr.ports:
            for h in pt.hops:
                if h.name in ("endpoints", "drift") and h.verdict == SKIPPED:
                    h.summary = f"skipped: {no_endpoints_input}"
    if service is not None and judged:
        from svcctl.ops.policy import add_policy_hops

        add_policy_hops(app.source, tr, service, judged, from_pod=from_pod, from_ip=from_ip, default_ns=app.ns,
                        rules_text="".join(dumps.texts.values()) if dumps else "", from_node=from_node,
                        pre=pre)
    if rules_skipped:
        for pt in tr.ports:
            for h in pt.hops:
                if h.name == "node-rules" and h.verdict == SKIPPED:
                    h.summary = f"skipped: {rules_skipped}"
    return tr


def _resolve_source(app: Context, from_: str | None, from_pod: str | None, node: str | None,
                    ways: list[Way]) -> tuple[Source, str]:
    """The request's source as kube-proxy classes it seen from `node`: a Pod here or elsewhere, the node
    itself, or outside. The default is a Pod on the traced node."""
    from svcctl.analysis.source import Source, parse_from, where_is

    raw = from_ or (from_pod if from_pod else None)
    if raw is None:
        src = Source("", "default", node=node, label=f"a Pod on {node}" if node else "a Pod on the node")
        return src, where_is(src, node, set(), [])
    kind, ns, name = parse_from(raw if "/" in raw or from_ else f"{app.ns}/{raw}")
    node_obj = app.source.get_nodes([node]).get(node) if node and app.has_cluster else None
    addrs = {a for typ in ("InternalIP", "ExternalIP") for a in (node_obj.addresses.get(typ, []) if node_obj else [])}
    addrs |= {w.address for w in ways if w.kind in ("NodePort", "HealthCheckNodePort")}
    if kind == "pod":
        pod = app.source.get_pod(ns or app.ns, name) if app.has_cluster else None
        if pod is None:
            raise NotFoundError(f'pod "{name}" not found in namespace "{ns or app.ns}"')
        src = Source(raw, "pod", ip=pod.pod_ip or None, node=pod.node_name or None, pod=pod.key,
                     host_network=pod.host_network,
                     label=f"Pod {pod.key} on {pod.node_name or '?'} ({pod.pod_ip or 'no IP'})")
        return src, where_is(src, node, addrs, [])
    if kind == "node":
        n = app.source.get_nodes([name]).get(name) if app.has_cluster else None
        ip = n.internal_ips[0] if n is not None and n.internal_ips else None
        src = Source(raw, "node", ip=ip, node=name, label=f"node {name}")
        return src, where_is(src, node, addrs, [])
    # an IP: a Pod IP (in some Node's podCIDR), one of the node's addresses, or outside
    cidrs: list[str] = []
    owner: str | None = None
    if app.has_cluster:
        import ipaddress

        for n in app.source.list_nodes():
            for c in n.pod_cidrs:
                cidrs.append(c)
                try:
                    if ipaddress.ip_address(name) in ipaddress.ip_network(c, strict=False):
                        owner = n.meta.name
                except ValueError:
                    continue
    src = Source(raw, "ip", ip=name, node=owner, label=name)
    return src, where_is(src, node, addrs, cidrs)


def _why_no_hints(app: Context, service: Service, slices: list[EndpointSlice], node: str | None) -> list[str]:
    """When the Service asks for topology but no endpoint has hints: why the EndpointSlice controller set none
    (its TopologyAwareHintsDisabled Events, else the heuristic's conditions the input shows)."""
    from svcctl.analysis.topology import has_hints, slice_endpoints, topology_requested, why_no_hints
    from svcctl.errors import SvcctlError

    if not topology_requested(service) or has_hints(slices):
        return []
    eps = [e for p in service.ports for fam in ("IPv4", "IPv6")
           for e in slice_endpoints(service, p, slices, node, fam)]
    try:
        events = [(e.reason, e.message) for e in app.source.list_events(service.meta.namespace, "Service",
                                                                         [service.meta.name])]
        nodes = app.source.list_nodes() if not topology_requested(service).startswith("trafficDistribution") \
            else []
    except SvcctlError as err:
        return [f"topology asked for but no endpoint has hints (why not: {err.message})"]
    return why_no_hints(service, eps, nodes, events)


def _node_zone(app: Context, node: str | None, slices: list[EndpointSlice]) -> str:
    """The zone label of the traced node's Node, read only when an endpoint has hints (it decides which
    endpoints that node's kube-proxy uses)."""
    from svcctl.analysis.topology import has_hints, node_zone

    if not node or not app.has_cluster or not has_hints(slices):
        return ""
    return node_zone(app.source.get_nodes([node]), node)


def _only_keys(service: Service | None, target: Target) -> set[str]:
    """What the parsers may keep (the fast path): this Service's name and addresses, or the IP traced."""
    if service is None:
        return {target.ip} if target.ip else set()
    keys = {service.meta.key}
    keys |= {ip for ip in (*service.cluster_ips, *service.external_ips, *service.load_balancer_ips)
             if ip and ip != "None"}
    return keys


def _dns_hop(app: Context, tr: Trace, service: Service, target: Target, cluster_domain: str, dns_server: str | None,
             resolv_conf: str | None, timeout: float, from_pod: str | None) -> Hop:
    from svcctl.analysis.dns import summary as dns_summary
    from svcctl.ops.dns import dns_hop

    name = target.host if target.kind == "dns" and target.host else service.meta.name
    querying_ns = (from_pod.rpartition("/")[0] if from_pod and "/" in from_pod else None) or (
        target.namespace if target.kind == "service" and target.namespace else app.ns)
    live = app.snapshot is None
    report = dns_hop(app.source, service, name, querying_ns, cluster_domain, dns_server,
                     resolv_conf, live or dns_server is not None, timeout)
    tr.dns = report
    tr.findings += report.findings
    details = [f"expect {e.name} {e.type} {e.data}" + (f"  ({e.why})" if e.why else "")
               for e in report.expected]
    details += [_fmt_query(q) for q in report.queries]
    details += list(report.notes)
    return Hop("dns", report.verdict, dns_summary(report), details)


def _fmt_query(q: DNSQuery) -> str:
    d = q.to_json()
    ans = ", ".join(f"{a.get('data')} (ttl {a.get('ttl')})" for a in d.get("answers", []) if isinstance(a, dict))
    return f"asked {d.get('server', '?')}: {d.get('name')} {d.get('type')} → {d.get('rcode')} {ans}".rstrip()


def _probe(app: Context, rules: NodeRules | None, service: Service | None, port: int, target: Target,
           count: int | None, http: bool, view: ProxyView | None) -> tuple[Counter[tuple[str, int]] | None, int]:
    """Opt-in: connect `count` times and attribute each answer to a backend (conntrack first, else HTTP body)."""
    if not count:
        return None, 0
    ip = target.ip or (service.cluster_ip if service and service.cluster_ip not in ("", "None") else None)
    if ip is None:
        return None, 0
    from svcctl.sources.probe import probe

    netns = app.node_inputs.netns
    app.terminal.status(f"probing {ip}:{port} with {count} {'HTTP GETs' if http else 'TCP connects'}"
                        + (f" inside netns {netns}" if netns else "") + " (opt-in --probe)")
    attempts = probe(ip, port, count, http=http, netns=netns, path=target.path or "/")
    ok = [a for a in attempts if a.ok]
    counts: Counter[tuple[str, int]] = Counter()
    by_sport: dict[int, tuple[str, int]] = {}
    if netns or app.node_inputs.local:
        from svcctl.dataplane.conntrack import parse_conntrack
        from svcctl.sources.node import read_conntrack

        text = read_conntrack(app.node_inputs)
        if text is not None:
            for f in parse_conntrack(text, "conntrack"):
                if f.dst == ip and f.dport == port:
                    by_sport[f.sport] = (f.backend_ip, f.backend_port)
    pods_by_name: dict[str, tuple[str, int]] = {}
    for e in view.all_endpoints if view is not None else []:
        if e.pod:
            pods_by_name[e.pod.split("/", 1)[1]] = (e.ip, e.port)
    unknown = 0
    for a in ok:
        key = by_sport.get(a.sport) or pods_by_name.get(a.body)
        if key is None:
            unknown += 1
        else:
            counts[key] += 1
    if unknown:
        app.terminal.warn(f"{unknown} probe answer(s) could not be attributed to a backend "
                          "(no conntrack entry and the body named no known Pod)")
    return counts, len(attempts) - len(ok)

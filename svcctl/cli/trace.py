"""`svcctl trace TARGET`: gather every piece of one request's path, judge each hop, render."""

from __future__ import annotations

from collections import Counter

import click

from svcctl.analysis.trace import (
    BROKEN,
    OK,
    SKIPPED,
    WARNING,
    Hop,
    Target,
    Trace,
    judge_port,
    parse_target,
    pick_ports,
    proxy_view,
    service_hop,
)
from svcctl.cli.app import App, complete_services, get_app, global_options, node_options, output_options
from svcctl.cli.fleet import fleet_options, run_fleet
from svcctl.dataplane.model import Flow, NodeRules
from svcctl.errors import ExitStatus, ForbiddenError, InputError, NotFoundError
from svcctl.model import Finding, Service
from svcctl.sources.base import NodeDumps


@click.command("trace")
@click.argument("target", shell_complete=complete_services)
@click.option("--port", "port_flag", metavar="PORT", help="Service port by number or name (default: every port).")
@click.option("--from-pod", metavar="POD", help="Trace from this Pod: its node's rules, its namespace's DNS search.")
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--dns-server", metavar="IP[:PORT]", help="Query this DNS server (default: the kube-dns Service, "
              "live only).")
@click.option("--resolv-conf", metavar="FILE", help="A Pod's /etc/resolv.conf contents to resolve with.")
@click.option("--no-dns", is_flag=True, help="Skip the DNS hop.")
@click.option("--dns-timeout", type=float, default=2.0, show_default=True)
@click.option("--probe", "probe_count", type=click.IntRange(1, 10000), metavar="N",
              help="Opt-in: send N connections (HTTP GETs) to VIP:port from here (or inside --netns) and report who "
                   "answered.")
@click.option("--probe-tcp", is_flag=True, help="Probe with bare TCP connects instead of HTTP GETs.")
@fleet_options
@global_options
@output_options()
@node_options
def command(target: str, port_flag: str | None, from_pod: str | None, cluster_domain: str,
            dns_server: str | None, resolv_conf: str | None, no_dns: bool, dns_timeout: float,
            probe_count: int | None, probe_tcp: bool, all_nodes: bool, parallel: int) -> int:
    """Follow one request from the name a client typed to the Pod that answers.

    \b
    TARGET is a Service (`name`, `ns/name`), a DNS name (`hostnames.default.svc.cluster.local`),
    `VIP:port`, or a URL (`http://hostnames.default:80/`). Hops: DNS → Service → node rules
    (iptables, IPVS or nftables) → endpoints → drift → selected endpoint (conntrack, --probe).
    Exit 1 when any hop is broken.

    \b
    Examples:
      svcctl trace hostnames --snapshot demo
      svcctl trace 10.0.1.175:80 --iptables-save node.txt
      svcctl trace http://hostnames.default/ --netns node1 --probe 200
    """
    app = get_app()
    if all_nodes:
        return run_fleet(app, [_fleet_service(app, target, cluster_domain)], parallel)
    tr = build_trace(app, target, port_flag=port_flag, from_pod=from_pod, cluster_domain=cluster_domain,
                     dns_server=dns_server, resolv_conf=resolv_conf, no_dns=no_dns, dns_timeout=dns_timeout,
                     probe_count=probe_count, probe_http=not probe_tcp)
    from svcctl.render.trace import render_trace

    render_trace(app, tr)
    return int(ExitStatus.PROBLEMS if tr.broken else ExitStatus.OK)


def _fleet_service(app: App, raw_target: str, cluster_domain: str) -> Service:
    """The one Service --all-nodes judges on every node."""
    target = parse_target(raw_target, cluster_domain)
    if target.kind == "ip" and target.ip:
        svc = _find_service_by_ip(app, target.ip)
        if svc is None:
            raise NotFoundError(f"no Service has the IP {target.ip}")
        return svc
    if not target.name:
        raise InputError(f"cannot tell which Service {raw_target!r} names", hint="use ns/name or VIP:port")
    return app.source.get_service(target.namespace or app.ns, target.name)


def _find_service_by_ip(app: App, ip: str) -> Service | None:
    for s in app.source.list_services(None):
        if ip in s.cluster_ips or ip in s.external_ips or ip in s.load_balancer_ips:
            return s
    return None


def _choose_node(app: App, service: Service | None, from_pod: str | None) -> tuple[str | None, str]:
    """The node whose rules to read, and why that one."""
    ni = app.node_inputs
    if ni.node:
        return ni.node, "--node"
    if from_pod and app.has_cluster:
        ns, _, name = from_pod.rpartition("/")
        pod = app.source.get_pod(ns or app.ns, name)
        if pod is None:
            raise NotFoundError(f'pod "{name}" not found in namespace "{ns or app.ns}"')
        return pod.node_name or None, f"node of Pod {pod.key}"
    if ni.files or ni.netns or ni.local:
        return None, "node input given on the command line"
    if app.has_cluster:
        snap_nodes = getattr(app.source, "dumps", None)
        if isinstance(snap_nodes, dict) and len(snap_nodes) == 1:
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


def build_trace(app: App, raw_target: str, *, port_flag: str | None = None, from_pod: str | None = None,
                cluster_domain: str = "cluster.local", dns_server: str | None = None,
                resolv_conf: str | None = None, no_dns: bool = False, dns_timeout: float = 2.0,
                probe_count: int | None = None, probe_http: bool = True) -> Trace:
    target = parse_target(raw_target, cluster_domain)
    service: Service | None = None
    cluster = app.has_cluster
    if cluster:
        if target.kind == "ip" and target.ip:
            service = _find_service_by_ip(app, target.ip)
        elif target.name:
            service = app.source.get_service(target.namespace or app.ns, target.name)
        elif target.kind == "dns":
            raise InputError(f"cannot tell which Service {target.host!r} names",
                             hint=f"use <svc>.<ns>.svc.{cluster_domain}, ns/name, or VIP:port")
    elif target.kind != "ip":
        raise InputError(f"{raw_target!r} names a Service but no cluster was given",
                         hint="with node input only, trace VIP:port (e.g. 10.0.1.175:80), or add --snapshot/--kubeconfig")

    node, node_why = _choose_node(app, service, from_pod)
    tr = Trace(target, service, node, None)
    if node_why:
        tr.notes.append(f"node {node or '(given input)'}: {node_why}")

    # ---- DNS hop
    if no_dns or target.kind == "ip":
        tr.pre_hops.append(Hop("dns", SKIPPED, "skipped: TARGET was an IP" if target.kind == "ip" else
                               "skipped (--no-dns)"))
    elif service is not None:
        tr.pre_hops.append(_dns_hop(app, tr, service, target, cluster_domain, dns_server, resolv_conf,
                                    dns_timeout, from_pod))

    # ---- Service hop
    if service is not None:
        tr.pre_hops.append(service_hop(service))
    elif target.kind == "ip":
        tr.pre_hops.append(Hop("service", SKIPPED if not cluster else BROKEN,
                               "no cluster data: the Service behind this IP is unknown" if not cluster
                               else f"no Service has the IP {target.ip}"))
        if cluster:
            tr.findings.append(Finding("ServiceNotFound", "error", f"no Service has the IP {target.ip}",
                                       hint="list Services with `svcctl endpoints -A`"))

    # ---- node rules
    rules: NodeRules | None = None
    flows: list[Flow] | None = None
    rules_skipped: str | None = None
    dumps: NodeDumps | None = None
    ni = app.node_inputs
    if node is None and app.has_cluster and not app.snapshot and not (ni.files or ni.netns or ni.local):
        # live, and nothing says which node: the other hops still stand, the node hop asks
        rules_skipped = "which node? give --node NAME or --from-pod POD (or a dump file)"
    else:
        try:
            dumps = app.node_dumps(node)
        except ForbiddenError as e:  # RBAC refused kube-proxy exec: the other hops still stand
            rules_skipped = e.message
            tr.findings.append(Finding("CheckSkipped", "warning", f"node rules skipped: {e.message}",
                                       hint=e.hint or ""))
    if dumps:
        from svcctl.dataplane import load_node_rules

        rules = load_node_rules(dumps, mode=app.node_inputs.mode, only=_only_keys(service, target))
        tr.mode = rules.mode if rules else None
        if rules is not None:
            tr.notes += rules.notes
        if rules is None:
            tr.findings.append(Finding("ProxyModeUnknown", "warning",
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
    slices = []
    if service is not None and service.type != "ExternalName":
        from svcctl.analysis.endpoints import analyze_service

        report = analyze_service(app.source, service.meta.namespace, service.meta.name, why_not=True)
        for f in report.findings:
            if f.pod:
                pod_codes.setdefault(f.pod, []).append(f.code)
            if f.severity == "error" or f.pod is None:
                tr.findings.append(f)
        slices = app.source.list_endpoint_slices(service.meta.namespace, service.meta.name)

    # ---- ports
    if service is not None:
        ports = pick_ports(service, target, port_flag)
        if not ports and service.ports:
            raise InputError(f"{service.meta.key} has no port {port_flag or target.port}",
                             hint="ports: " + ", ".join(f"{p.name or '-'}={p.port}" for p in service.ports))
        for p in ports:
            view = proxy_view(service, p, slices, node)
            probe_counts, probe_errors = _probe(app, rules, service, p.port, target, probe_count, probe_http, view)
            tr.ports.append(judge_port(service, p, target, rules, view, node, pod_codes, flows,
                                       probe_counts, probe_errors))
    else:
        if target.port is None and rules is not None:
            ports_seen = sorted({e.port for e in rules.services if e.address == target.ip})
        else:
            ports_seen = [target.port] if target.port else []
        if not ports_seen:
            ports_seen = [0]
        for port in ports_seen:
            t = Target(target.raw, target.kind, host=target.host, ip=target.ip, port=port or None)
            probe_counts, probe_errors = _probe(app, rules, None, port, t, probe_count, probe_http, None)
            tr.ports.append(judge_port(None, None, t, rules, None, node, pod_codes, flows, probe_counts,
                                       probe_errors))
    if rules_skipped:
        for pt in tr.ports:
            for h in pt.hops:
                if h.name == "node-rules" and h.verdict == SKIPPED:
                    h.summary = f"skipped: {rules_skipped}"
    return tr


def _only_keys(service: Service | None, target: Target) -> set[str]:
    """What the parsers may keep (the fast path): this Service's name and addresses, or the IP traced."""
    if service is None:
        return {target.ip} if target.ip else set()
    keys = {service.meta.key}
    keys |= {ip for ip in (*service.cluster_ips, *service.external_ips, *service.load_balancer_ips)
             if ip and ip != "None"}
    return keys


def _dns_hop(app: App, tr: Trace, service: Service, target: Target, cluster_domain: str, dns_server: str | None,
             resolv_conf: str | None, timeout: float, from_pod: str | None) -> Hop:
    from svcctl.analysis.dns import summary as dns_summary
    from svcctl.sources.dns import dns_hop

    name = target.host if target.kind == "dns" and target.host else service.meta.name
    querying_ns = (from_pod.rpartition("/")[0] if from_pod and "/" in from_pod else None) or (
        target.namespace if target.kind == "service" and target.namespace else app.ns)
    live = app.snapshot is None
    report = dns_hop(app.source, service, name, querying_ns, cluster_domain, dns_server,
                     resolv_conf, live or dns_server is not None, timeout)
    tr.dns = report
    errors = [f for f in report.findings if f.severity == "error"]
    tr.findings += report.findings
    details = [f"expect {e.name} {e.type} {e.data}" + (f"  ({e.why})" if getattr(e, "why", "") else "")
               for e in report.expected]
    details += [_fmt_query(q) for q in report.queries]
    details += list(report.notes)
    verdict = BROKEN if errors else (WARNING if any(f.severity == "warning" for f in report.findings) else OK)
    return Hop("dns", verdict, dns_summary(report), details)


def _fmt_query(q: object) -> str:
    d = q.to_json() if hasattr(q, "to_json") else q
    if isinstance(d, dict):
        ans = ", ".join(f"{a.get('data')} (ttl {a.get('ttl')})" for a in d.get("answers", []) if isinstance(a, dict))
        return f"asked {d.get('server', '?')}: {d.get('name')} {d.get('type')} → {d.get('rcode')} {ans}".rstrip()
    return str(q)


def _probe(app: App, rules: NodeRules | None, service: Service | None, port: int, target: Target,
           count: int | None, http: bool, view: object) -> tuple[Counter[tuple[str, int]] | None, int]:
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

        text = read_conntrack(app)
        if text is not None:
            for f in parse_conntrack(text, "conntrack"):
                if f.dst == ip and f.dport == port:
                    by_sport[f.sport] = (f.backend_ip, f.backend_port)
    pods_by_name: dict[str, tuple[str, int]] = {}
    for e in getattr(view, "all_endpoints", []) or []:
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


__all__ = ["command", "build_trace", "OK", "BROKEN"]

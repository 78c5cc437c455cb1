"""`svcctl rules [SERVICE]`: what a node's kube-proxy rules do, per service port."""

from __future__ import annotations

import re

import click

from svcctl.analysis.trace import is_ip
from svcctl.cli.app import (
    App,
    complete_services,
    exit_status,
    fail_on_option,
    get_app,
    global_options,
    node_options,
    output_options,
)
from svcctl.dataplane.model import NodeRules
from svcctl.errors import InputError
from svcctl.findings import Verdict
from svcctl.model import Service, ServicePort


def service_keys(service: str, namespace: str) -> set[str]:
    """SERVICE as the parser's `only` keys: `VIP`, `VIP:port`, `[v6]:port`, `ns/name[:port]`, `name`."""
    s = service.strip()
    m = re.search(r":(\d+)$", s)
    if m and not 0 < int(m.group(1)) < 65536:
        raise InputError(f"port {m.group(1)} in {service!r} is out of range (1–65535)")
    if re.fullmatch(r"[0-9.]+(?::\d+)?", s) and s.split(":")[0].count(".") == 3 and not is_ip(s.split(":")[0]):
        raise InputError(f"{s.split(':')[0]!r} is not a valid IP address")
    if s.startswith("["):
        host, _, port = s[1:].partition("]")
        port = port.lstrip(":")
        if not is_ip(host) or (port and not port.isdigit()):
            raise InputError(f"not an address: {service!r}", hint="use [IPv6]:port")
        return {f"[{host}]:{port}"} if port else {host}
    if is_ip(s):
        return {s}
    host, _, port = s.rpartition(":")
    if host and is_ip(host) and port.isdigit():
        return {f"{host}:{port}"}
    if "/" in s:
        return {s}
    return {f"{namespace}/{s}"}


def _namespace(app: App) -> str:
    if app.namespace:
        return app.namespace
    if app.snapshot:
        return app.source.default_namespace()
    return "default"


def _service_ports(app: App, only: set[str] | None) -> list[tuple[str, ServicePort, list[str]]]:
    """(service port name, port, addresses) of the Services named in `only` (`ns/name[:port]` keys), or of every
    Service when `only` is None; empty when no cluster or snapshot was given or it cannot say."""
    if not app.has_cluster or not (app.snapshot or app.kubeconfig or app.context):
        return []
    from svcctl.errors import SvcctlError

    wanted: list[tuple[Service, str]] = []
    if only is None:
        try:
            wanted = [(svc, "") for svc in app.source.list_services(None)]
        except SvcctlError as err:
            app.terminal.debug(f"Services not read: {err.message}")
    else:
        for key in sorted(k for k in only if "/" in k):
            ns, rest = key.split("/", 1)
            name, _, port_name = rest.partition(":")
            try:
                wanted.append((app.source.get_service(ns, name), port_name))
            except SvcctlError:
                continue
    out: list[tuple[str, ServicePort, list[str]]] = []
    for svc, port_name in wanted:
        addrs = [a for a in (*svc.cluster_ips, *svc.external_ips, *svc.load_balancer_ips) if a and a != "None"]
        for p in svc.ports:
            if not port_name or p.name == port_name:
                out.append((f"{svc.meta.key}:{p.name}" if p.name else svc.meta.key, p, addrs))
    return out


def _address_keys(ports: list[tuple[str, ServicePort, list[str]]]) -> dict[str, str]:
    """`address[:port]` (and `:nodePort`) -> service port name: what makes IPVS entries findable by name."""
    out: dict[str, str] = {}
    for spn, p, addrs in ports:
        for a in addrs:
            out[f"[{a}]:{p.port}" if ":" in a else f"{a}:{p.port}"] = spn
            out.setdefault(a, spn)
        if p.node_port:
            out[f":{p.node_port}"] = spn
    return out


def _name_entries(rules: NodeRules, ports: list[tuple[str, ServicePort, list[str]]]) -> None:
    """IPVS virtual servers (and iptables rules without comments) carry no names: take them from the Services,
    matched by address, port and protocol (kube-dns serves 53 twice)."""
    by_addr: dict[tuple[str, int, str], str] = {}
    for spn, p, addrs in ports:
        for a in addrs:
            by_addr[(a, p.port, p.protocol.upper())] = spn
        if p.node_port:
            by_addr.setdefault(("", p.node_port, p.protocol.upper()), spn)
    for e in rules.services:
        if e.name is None:
            protos = ("TCP", "UDP", "SCTP") if e.protocol == "ANY" else (e.protocol,)  # Cilium without protocols
            e.name = next((n for p in protos if (n := by_addr.get((e.address, e.port, p)) or (
                by_addr.get(("", e.port, p)) if e.kind == "NodePort" else None))), None)


def _flag_orphans(app: App, rules: NodeRules) -> None:
    """Chains whose names kube-proxy would compute for no current Service port or endpoint (recomputed from
    the cluster's Services and EndpointSlices: `portProtoHash`, `servicePortEndpointChainName`)."""
    if not (app.snapshot or app.kubeconfig or app.context):
        return
    from svcctl.analysis.endpoints import absent_from
    from svcctl.dataplane.iptables import orphan_chains
    from svcctl.errors import SvcctlError

    lacking = absent_from(app.source, "services") or absent_from(app.source, "endpointslices")
    if lacking:  # a snapshot without them (a Retina capture, a sysdump) cannot say which chains are current
        rules.notes.append(f"skipped: the chain-ownership check (stale KUBE-SVC/SEP chains): {lacking}")
        return
    try:
        services = app.source.list_services(None)
        from svcctl.sources.base import BulkSlices

        src = app.source
        slices = src.list_all_endpoint_slices(None) if isinstance(src, BulkSlices) else getattr(src, "slices", [])
    except SvcctlError as err:
        app.terminal.debug(f"chain owners not checked: {err.message}")
        return
    chains = set(rules.unreferenced_chains)
    for e in rules.services:
        chains.update(e.path)
        chains.update(b.chain for b in e.backends if b.chain)
    rules.orphan_chains = orphan_chains(chains, services, slices)
    if rules.orphan_chains:
        shown = ", ".join(rules.orphan_chains[:5]) + (f" (+{len(rules.orphan_chains) - 5} more)"
                                                      if len(rules.orphan_chains) > 5 else "")
        rules.notes.append(f"{len(rules.orphan_chains)} chain(s) belong to no current Service port or endpoint "
                           f"(their names match none kube-proxy would write today): {shown}")


@click.command("rules")
@click.argument("service", required=False, shell_complete=complete_services)
@fail_on_option
@global_options
@output_options()
@node_options
def command(service: str | None, fail_on: str) -> int:
    """What kube-proxy's rules on one node do with a packet, per service port.

    \b
    For each Service address:port: the backends it reaches and each one's share (exact fractions: iptables mode
    picks at random, not round-robin), session affinity, when traffic is masqueraded, and what happens when a
    Service has no (local) endpoints. The summary says how many rules and chains kube-proxy writes.
    SERVICE (optional) is `name`, `ns/name`, `ns/name:port`, `VIP` or `VIP:port`; exit 1 when it is not in
    the node's rules.

    \b
    Examples:
      svcctl rules --iptables-save node.txt
      svcctl rules hostnames --snapshot demo
      svcctl rules 10.0.1.175:80 --iptables-save node.txt -o json
      svcctl rules --netns node1 -o wide
    """
    from svcctl.render.rules import render_rules

    app = get_app()
    only = service_keys(service, _namespace(app)) if service else None
    named = _service_ports(app, only) if only else []
    if named and only is not None:
        only |= set(_address_keys(named))
    dumps = app.node_dumps(app.node_inputs.node, only=only)
    if dumps is None or not dumps:
        raise InputError("no node rules to read",
                         hint="give --iptables-save FILE (or --ipvsadm / --nft), --netns NAME, --local-node, "
                              "or --snapshot with nodes/<node>/ dumps")
    app.terminal.debug(f"node dumps: {', '.join(f'{k} from {v}' for k, v in dumps.origins.items())}")
    rules = app.load_rules(dumps, mode=app.node_inputs.mode, only=only)
    if any(e.name is None for e in rules.services):
        _name_entries(rules, named if only is not None else _service_ports(app, None))
    if any(not e.kind_known for e in rules.services) and app.has_cluster and (
            app.snapshot or app.kubeconfig or app.context):
        # IPVS without `ipset list`: the cluster's Services say what each virtual server is
        from svcctl.analysis.ways import classify_entries
        from svcctl.errors import SvcctlError

        try:
            classify_entries(rules.services, app.source.list_services(None))
        except SvcctlError as err:
            app.terminal.debug(f"virtual server kinds not settled: {err.message}")
    if only is None and rules.mode == "iptables":
        _flag_orphans(app, rules)
    if only is not None:
        from svcctl.dataplane.iptables import _entry_in_only

        rules.services = [s for s in rules.services if _entry_in_only(s, only)]
        if not rules.services:
            app.terminal.warn(f"{service} is not in this node's rules ({rules.source})")
            if app.output in ("json", "yaml"):
                render_rules(app, rules)
            return exit_status(Verdict.BROKEN, fail_on)
    render_rules(app, rules)
    return exit_status(Verdict.OK, fail_on)

"""The orchestration behind `svcctl rules`: name the node's entries from the cluster's Services and flag chains
that belong to none."""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcctl.dataplane.model import NodeRules
from svcctl.errors import InputError
from svcctl.lazydc import dataclass
from svcctl.ops.context import Context

if TYPE_CHECKING:
    from svcctl.model import Service, ServicePort


def rules_namespace(app: Context) -> str:
    if app.namespace:
        return app.namespace
    if app.snapshot:
        return app.source.default_namespace()
    return "default"


# (service port name, port, addresses, the load-balancer IPs among them)
PortRow = tuple[str, "ServicePort", list[str], list[str]]


def _cluster_given(app: Context) -> bool:
    """Whether the user gave cluster data (a snapshot, a kubeconfig or a context): only then do the cluster's
    Services name, classify or map a node's entries."""
    return bool(app.has_cluster and (app.snapshot or app.kubeconfig or app.context))


def service_ports(app: Context, only: set[str] | None, found: list[Service] | None = None) -> list[PortRow]:
    """(service port name, port, addresses) of the Services named in `only` (`ns/name[:port]` keys), or of every
    Service when `only` is None; empty when no cluster or snapshot was given or it cannot say."""
    if not _cluster_given(app):
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
            if found is not None:  # the Service itself, for a targeted node read
                found.append(wanted[-1][0])
    out: list[PortRow] = []
    for svc, port_name in wanted:
        addrs = [a for a in (*svc.cluster_ips, *svc.external_ips, *svc.load_balancer_ips) if a and a != "None"]
        for p in svc.ports:
            if not port_name or p.name == port_name:
                out.append((f"{svc.meta.key}:{p.name}" if p.name else svc.meta.key, p, addrs,
                            [a for a in svc.load_balancer_ips if a]))
    return out


def address_keys(ports: list[PortRow]) -> dict[str, str]:
    """`address[:port]` (and `:nodePort`) -> service port name: what makes IPVS entries findable by name."""
    out: dict[str, str] = {}
    for spn, p, addrs, _ in ports:
        for a in addrs:
            out[f"[{a}]:{p.port}" if ":" in a else f"{a}:{p.port}"] = spn
            out.setdefault(a, spn)
        if p.node_port:
            out[f":{p.node_port}"] = spn
    return out


def name_entries(rules: NodeRules, ports: list[PortRow]) -> None:
    """IPVS virtual servers (and iptables rules without comments) carry no names: take them from the Services,
    matched by address, port and protocol (kube-dns serves 53 twice)."""
    by_addr: dict[tuple[str, int, str], str] = {}
    lb = {a for *_, lbs in ports for a in lbs}
    for spn, p, addrs, _ in ports:
        for a in addrs:
            by_addr[(a, p.port, p.protocol.upper())] = spn
        if p.node_port:
            by_addr.setdefault(("", p.node_port, p.protocol.upper()), spn)
    for e in rules.services:
        if e.kind == "ExternalIP" and e.address in lb:
            e.name_load_balancer()
        if e.name is None:
            protos = ("TCP", "UDP", "SCTP") if e.protocol == "ANY" else (e.protocol,)  # Cilium without protocols
            e.name = next((n for p in protos if (n := by_addr.get((e.address, e.port, p)) or (
                by_addr.get(("", e.port, p)) if e.kind == "NodePort" else None))), None)


def flag_orphans(app: Context, rules: NodeRules) -> None:
    """Chains whose names kube-proxy would compute for no current Service port or endpoint (recomputed from
    the cluster's Services and EndpointSlices: `portProtoHash`, `servicePortEndpointChainName`)."""
    if not (app.snapshot or app.kubeconfig or app.context):
        return
    from svcctl.analysis.ownership import orphan_chains
    from svcctl.errors import SvcctlError
    from svcctl.ops.endpoints import absent_from

    lacking = absent_from(app.source, "services") or absent_from(app.source, "endpointslices")
    if lacking:  # a snapshot without them (a Retina capture, a sysdump) cannot say which chains are current
        rules.notes.append(f"skipped: the chain-ownership check (stale KUBE-SVC/SEP chains): {lacking}")
        return
    try:
        services = app.source.list_services(None)
        from svcctl.sources.base import BulkSlices

        src = app.source
        slices = src.list_all_endpoint_slices(None) if isinstance(src, BulkSlices) else []
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


@dataclass
class RulesReport:
    rules: NodeRules
    missing: bool = False  # the one Service asked about is not in the node's rules


def _unnameable(app: Context, only: set[str], mode: str) -> None:
    """Rules that carry addresses, not Service names (IPVS, Cilium's service list, ...): a name no cluster data
    maps to addresses cannot be looked for, so its absence is not a finding (exit 2, not 'not in this node's
    rules')."""
    name = min(k for k in only if "/" in k)
    if _cluster_given(app):
        raise InputError(f"{name}: the cluster data gave no such Service (not found or not readable), and {mode} "
                         "rules name no Service",
                         hint="check the name and namespace (-n), or ask by address: svcctl rules VIP[:PORT]")
    raise InputError(f"{name}: {mode} rules name no Service, and no cluster data maps the name to its addresses",
                     hint="ask by address (svcctl rules VIP[:PORT] with the same node input), or add --snapshot "
                          "DIR or --kubeconfig so the name resolves")


def read_rules(app: Context, only: set[str] | None, as_text: bool = False) -> RulesReport:
    """`svcctl rules`: one node's rules read (scoped to `only`, the parser's keys of one Service, when given),
    entries named from the cluster's Services, and (iptables, whole node) chains that belong to none.

    as_text: only the rules' JSON is wanted; without cluster data (nothing then names, classifies or checks the
    entries) a whole dump's reader may leave them in the text for the writer (`NodeDumps.entries_as_text`)."""
    found: list[Service] = []
    named = service_ports(app, only, found) if only else []
    if named and only is not None:
        only |= set(address_keys(named))
    whole_json = as_text and only is None and not _cluster_given(app)
    dumps = app.node_dumps(app.node_inputs.node, only=only, services=[(s, None) for s in found] or None,
                           whole_json=whole_json)
    if dumps is None or not dumps:
        raise InputError("no node rules to read",
                         hint="give --iptables-save FILE (or --ipvsadm / --nft), --netns NAME, --local-node, "
                              "or --snapshot with nodes/<node>/ dumps")
    app.terminal.debug(f"node dumps: {', '.join(f'{k} from {v}' for k, v in dumps.origins.items())}")
    dumps.entries_as_text = whole_json
    rules = app.load_rules(dumps, mode=app.node_inputs.mode, only=only)
    if any(e.name is None or e.kind == "ExternalIP" for e in rules.services):
        name_entries(rules, named if only is not None else service_ports(app, None))
    if any(not e.kind_known for e in rules.services) and _cluster_given(app):
        # IPVS without `ipset list`: the cluster's Services say what each virtual server is
        from svcctl.analysis.ways import classify_entries
        from svcctl.errors import SvcctlError

        try:
            classify_entries(rules.services, app.source.list_services(None))
        except SvcctlError as err:
            app.terminal.debug(f"virtual server kinds not settled: {err.message}")
    if only is None and rules.mode == "iptables":
        flag_orphans(app, rules)
    if only is not None:
        from svcctl.dataplane.model import in_scope

        read, rules.services = rules.services, [s for s in rules.services if in_scope(s, only)]
        if not rules.services and read and all(e.name is None for e in read) and not named and \
                any("/" in k for k in only):
            _unnameable(app, only, rules.mode)
        return RulesReport(rules, missing=not rules.services)
    return RulesReport(rules)

"""The trace's policy hop, wired: read what it needs (sources.policy), judge it (analysis.policy), and put the
hop between the endpoints and the selected endpoint of each port."""

from __future__ import annotations

from svcctl.analysis.policy import PolicyInputError, client_endpoint, make_world, policy_hop
from svcctl.analysis.trace import ExpectedBackend, PortTrace, ProxyView, Trace
from svcctl.errors import InputError
from svcctl.model import Service
from svcctl.sources.base import ClusterSource
from svcctl.sources.policy import PolicyInputs, gather_policy_inputs

CNI_OWN_POLICY = {"cali-": "Calico", "CILIUM_": "Cilium"}  # chain names in the node's iptables/nft dumps
MODE_CNI = {"cilium": "Cilium", "calico-ebpf": "Calico"}
CNI_KINDS = {"Cilium": "CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy",
             "Calico": "projectcalico.org NetworkPolicy, GlobalNetworkPolicy"}


def add_policy_hops(source: ClusterSource, tr: Trace, service: Service, judged: list[tuple[PortTrace, ProxyView]], *,
                    from_pod: str | None, from_ip: str | None, default_ns: str, rules_text: str = "",
                    from_node: str | None = None, pre: PolicyInputs | None = None) -> None:
    """One policy hop per traced port. `pre`: what the DNS gate (ops.policy_dns) read already, reused; the
    client's Egress to the DNS is judged there, before the DNS hop."""
    if service.type == "ExternalName" or not judged:
        return
    keys = sorted({e.pod for _, v in judged for e in _used(v) if e.pod})
    inp = gather_policy_inputs(source, service, keys, from_pod=from_pod, from_ip=from_ip,
                               node=from_node or tr.node, default_ns=default_ns, pre=pre)
    try:
        world = make_world(inp.policies, inp.namespaces, inp.unreadable, inp.admin)
    except PolicyInputError as e:
        raise InputError(f"malformed policy: {e}") from None
    client = client_endpoint(world, inp.client, inp.client_ref, inp.client_ip, inp.node, inp.node_ips, from_node)
    notes: list[str] = []
    seen = {cni for marker, cni in CNI_OWN_POLICY.items() if marker in rules_text}
    seen |= {MODE_CNI[tr.mode]} if tr.mode in MODE_CNI else set()
    for cni in sorted(seen):
        notes.append(f"the node runs {cni}: its own policy kinds ({CNI_KINDS[cni]}) are not evaluated, only "
                     "NetworkPolicy" + (" and the AdminNetworkPolicy tiers" if world.admin else ""))
    refused = next((s.reason for s in source.skipped if s.resource == "adminnetworkpolicies"), None)
    if refused is not None:
        notes.append(f"AdminNetworkPolicies could not be read ({refused}): the admin tiers are not evaluated")
    for pt, view in judged:
        backends = [(e.ip, e.port, e.pod) for e in _used(view)]
        main = next((e for e in pt.entries if e.kind == "ClusterIP"), pt.entries[0] if pt.entries else None)
        src_hop = next((h for h in pt.hops if h.name == "source"), None)
        known = src_hop.data.get("masquerade") if src_hop is not None else None
        hop, findings, _ = policy_hop(world, service.meta.key, pt.name or str(pt.port), backends, inp.backends,
                                      client, pt.protocol, main.masquerade if main is not None else None,
                                      service.selector, known if isinstance(known, bool) else None)
        hop.details += notes
        at = next((i for i, h in enumerate(pt.hops) if h.name == "selected"), len(pt.hops))
        pt.hops.insert(at, hop)
        pt.findings += findings


def _used(view: ProxyView) -> list[ExpectedBackend]:
    """The endpoints a connection can land on: kube-proxy's cluster set (ready, or the terminating fallback)."""
    return view.cluster or [e for e in view.all_endpoints if e.ready]

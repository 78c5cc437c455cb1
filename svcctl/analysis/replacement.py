"""Drift and traffic-policy semantics on nodes where a kube-proxy replacement programs Services.

Each dataplane decides differently which endpoints a frontend may use, so the set the API implies is
computed per dataplane before it is compared with the agent's map:
- Cilium: traffic policies as kube-proxy (InternalLocal / Local flags, two scopes for mixed policies); keeps
  terminating backends in the map (state `terminating`, no new connections unless none is active);
  quarantined / maintenance backends get no new connections; topology hints only with
  `--enable-service-topology`.
- Calico eBPF: `internal-local` / `external-local` flags; a map without flags comes from a Calico that ignores
  internalTrafficPolicy Local; hints were applied per endpoint when felix built the map.
- kube-router: `kube-router.io/service.local: "true"` = externalTrafficPolicy Local with internal Cluster;
  no topology-aware routing; weight 0 = terminating (draining).
Findings: StaleBackend / EndpointNotProgrammed as for kube-proxy, BackendStateDrift when the map's state
disagrees with the endpoint's conditions, BackendQuarantined when a ready endpoint gets no new connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcctl.analysis.drift import EntryDrift, Unprogrammed
from svcctl.dataplane.model import ServiceEntry
from svcctl.findings import Severity
from svcctl.model import Finding

if TYPE_CHECKING:
    from svcctl.analysis.topology import NodeEndpoint as ExpectedBackend
    from svcctl.analysis.topology import ProxyView
    from svcctl.dataplane.model import NodeRules
    from svcctl.model import Service

AGENT = {"cilium": "the Cilium agent", "calico-ebpf": "Calico's felix", "kube-router": "kube-router"}
SYNC_HINT = {
    "cilium": "check the Cilium agent on this node (`cilium-dbg status`, its logs); its service map lags the API",
    "calico-ebpf": "check calico-node on this node (felix logs, `calico-node -bpf nat dump` again)",
    "kube-router": "check the kube-router Pod on this node (its logs, --ipvs-sync-period)",
}


def entry_is_local(mode: str, e: ServiceEntry, main: bool, service: Service | None) -> bool:
    """Whether traffic entering by `e` may only use this node's endpoints, by the dataplane's own rules."""
    itp = service is not None and service.internal_traffic_policy == "Local"
    etp = service is not None and service.external_traffic_policy == "Local"
    if mode == "cilium":
        if e.flags or e.scope:  # bpf lb list flags or the JSON's policies were read
            return e.policy_local
        return itp if main else etp
    if mode == "calico-ebpf":
        if main:  # without flags (older Calico) internalTrafficPolicy Local is ignored
            return "internal-local" in e.flags
        # older Calico prints no flags: trust the Service's externalTrafficPolicy for external frontends
        return "external-local" in e.flags or (not e.flags and etp)
    if mode == "kube-router":
        from svcctl.dataplane.kube_router import ANNOTATION_LOCAL

        annotated = service is not None and service.meta.annotations.get(ANNOTATION_LOCAL) == "true"
        return itp if main else (etp or annotated)
    return e.policy_local


def name_dsr_marks(rules: NodeRules, service: Service) -> None:
    """kube-router DSR: an `ipvsadm -Ln` firewall-mark service carries only its mark. Without the mangle rule
    that sets it, the Service's external addresses are hashed as kube-router does (dsr_fwmark); a mark that a
    collision moved is found only when the first candidate's mark is taken on the node (kube-router then
    hashes with `-1`, `-2`, …)."""
    from svcctl.dataplane.kube_router import (
        ANNOTATION_DSR,
        ANNOTATION_SKIP_LB_IPS,
        DSR_TUNNEL,
        dsr_fwmark,
        fwmark_of,
        name_fwmark_entry,
    )

    ann = service.meta.annotations
    if rules.mode != "kube-router" or ann.get(ANNOTATION_DSR) != DSR_TUNNEL:
        return
    open_marks = {int(e.address.removeprefix("fwmark ")): e for e in rules.services
                  if e.address.startswith("fwmark ")}
    if not open_marks:
        return
    taken = {m for e in rules.services if (m := fwmark_of(e)) is not None}  # named ones hold theirs too
    addrs = list(service.external_ips)
    if ann.get(ANNOTATION_SKIP_LB_IPS) != "true":
        addrs += service.load_balancer_ips
    for ip in addrs:
        for p in service.ports:
            for n in range(4):
                mark = dsr_fwmark(ip, p.protocol, p.port, n)
                e = open_marks.pop(mark, None)
                if e is not None:
                    how = ("kube-router's hash of the address, protocol and port"
                           + (f", retry {n} after a collision" if n else "")
                           + "; `iptables-save -t mangle` on the node shows the rule that sets it")
                    name_fwmark_entry(e, ip, p.protocol.upper(), p.port, how=how)
                    break
                if mark not in taken:  # kube-router stops at the first free candidate
                    break


def want_for(mode: str, e: ServiceEntry, view: ProxyView, local: bool) -> list[ExpectedBackend]:
    """The endpoints this dataplane should give new connections through `e`. kube-proxy's view (`view.cluster`)
    has topology hints applied; kube-router never applies them, Cilium only with --enable-service-topology (a
    flag the listings do not show: the map is judged against whichever of the two sets it matches)."""
    if local:
        return view.local
    if mode == "calico-ebpf":
        return view.cluster
    ready = [x for x in view.all_endpoints if x.ready]
    plain = ready or [x for x in view.all_endpoints if x.serving and x.terminating]
    if mode == "cilium":
        taking = {(b.ip, b.port) for b in e.backends if b.probability is None or b.probability > 0}
        if taking == {x.key for x in view.cluster}:
            return view.cluster
    return plain


def view_notes(mode: str, service: Service, view: ProxyView, rules: NodeRules) -> list[str]:
    """What this dataplane does with the Service's topology hints and traffic policies."""
    out: list[str] = []
    hinted = bool(service.meta.annotations.get("service.kubernetes.io/topology-mode")
                  or service.traffic_distribution)
    if mode == "cilium" and hinted:
        out.append("topology hints: Cilium only follows them with --enable-service-topology; otherwise every "
                   "endpoint is used")
    if mode == "calico-ebpf":
        if hinted:
            out.append("topology hints: Calico's felix applies them per endpoint when it builds the NAT map")
        if service.internal_traffic_policy == "Local" and not any(e.flags for e in rules.services):
            out.append("internalTrafficPolicy Local: this Calico (no NAT flags) ignores it; in-cluster "
                       "traffic uses every endpoint")
    if mode == "kube-router":
        from svcctl.dataplane.kube_router import ANNOTATION_DSR, ANNOTATION_LOCAL, ANNOTATION_SCHEDULER

        ann = service.meta.annotations
        if hinted:
            out.append("topology hints: kube-router has no topology-aware routing; every endpoint is used")
        if ann.get(ANNOTATION_LOCAL) == "true":
            out.append(f"{ANNOTATION_LOCAL}: external traffic only to this node's endpoints, in-cluster "
                       "traffic to all (externalTrafficPolicy Local, internal Cluster)")
        if ann.get(ANNOTATION_SCHEDULER):
            out.append(f"{ANNOTATION_SCHEDULER}: {ann[ANNOTATION_SCHEDULER]}")
        if ann.get(ANNOTATION_DSR):
            out.append(f"{ANNOTATION_DSR}: {ann[ANNOTATION_DSR]} (external IPs through firewall-mark virtual "
                       "servers, replies straight from the backend)")
    return out


def _api_state(ex: ExpectedBackend) -> str:
    return "active" if ex.ready else "terminating" if ex.terminating else "not ready"


def entry_drift(mode: str, e: ServiceEntry, want: list[ExpectedBackend], local: bool,
                by_key: dict[tuple[str, int], ExpectedBackend], label: str, node: str | None, rules: NodeRules,
                reported: set[tuple[str, str]]) -> tuple[list[str], list[Finding]]:
    """One frontend's backends (with their states) against the endpoints the dataplane should use."""
    agent = AGENT.get(mode, mode)
    hint = SYNC_HINT.get(mode, "check the dataplane agent on this node")
    want_keys = {w.key for w in want}
    have_keys = {(b.ip, b.port) for b in e.backends}
    drift = EntryDrift(reported)
    lines, add = drift.lines, drift.add
    where = f"node {node or '?'}"

    for b in e.backends:
        ex = by_key.get((b.ip, b.port))
        state = b.effective_state
        takes_new = b.probability is None or b.probability > 0
        evidence = f"{b.address} ({state}) in {rules.source or mode}"
        if ex is None:
            if not takes_new and state.startswith("terminating"):
                # draining its last connections: the API may already have dropped it (v1 Endpoints never list
                # terminating Pods), and it takes no new ones: worth knowing, not a fault
                add("StaleBackend", b.address, Finding(
                    "StaleBackend", Severity.INFO,
                    f"{label}: {where} keeps terminating backend {b.address} for its open connections; the API "
                    "lists no such endpoint", evidence=evidence,
                    hint="it goes once its connections close; if it stays, " + hint))
                continue
            lines.append(f"stale: {b.address} ({state}) is in {agent}'s map but no such endpoint exists in the API")
            add("StaleBackend", b.address, Finding(
                "StaleBackend", Severity.ERROR if takes_new else Severity.WARNING,
                f"{label}: {where} still has {b.address} in its service map, but no such endpoint exists in the "
                "API", evidence=evidence, hint=hint))
            continue
        if takes_new and (b.ip, b.port) not in want_keys:
            why = ("its endpoint is not ready" if not ex.ready and not (ex.serving and ex.terminating) else
                   "it is on another node (traffic policy Local)" if local else
                   "its endpoint is terminating while others are ready" if ex.terminating else
                   "the API does not list it for this port")
            lines.append(f"stale: {b.address} takes new connections but {why}")
            add("StaleBackend", b.address, Finding(
                "StaleBackend", Severity.ERROR, f"{label}: {where} sends new connections to {b.address}, but {why}",
                pod=ex.pod, evidence=evidence, hint=hint))
        if b.state:  # only dataplanes that print states (Cilium, kube-router's weight 0)
            api = _api_state(ex)
            if state == "active" and api == "terminating":
                lines.append(f"state: {b.address} is active in the map but its endpoint is terminating")
                add("BackendStateDrift", b.address, Finding(
                    "BackendStateDrift", Severity.ERROR,
                    f"{label}: {where} still gives new connections to {b.address}, whose endpoint is terminating",
                    pod=ex.pod, evidence=f"{evidence}; EndpointSlice: terminating", hint=hint))
            elif state.startswith("terminating") and api == "active":
                lines.append(f"state: {b.address} is terminating in the map but its endpoint is ready")
                add("BackendStateDrift", b.address, Finding(
                    "BackendStateDrift", Severity.WARNING,
                    f"{label}: {where} gives no new connections to {b.address} (terminating), but its endpoint "
                    "is ready", pod=ex.pod, evidence=f"{evidence}; EndpointSlice: ready", hint=hint))
            elif state in ("quarantined", "maintenance") and api == "active":
                why = ("Cilium's health checker found it unreachable" if state == "quarantined"
                       else "it was put in maintenance through the agent's API")
                lines.append(f"{state}: {b.address} is ready in the API but gets no new connections ({why})")
                add("BackendQuarantined", b.address, Finding(
                    "BackendQuarantined", Severity.WARNING,
                    f"{label}: {b.address} is ready but {where} sends it no new connections: {why}",
                    pod=ex.pod, evidence=evidence,
                    hint="check the backend's health from this node; `cilium-dbg service list` shows the state"))
    drift.unprogrammed(label, want, have_keys, e.no_endpoints, Unprogrammed(
        _api_state, f"{agent}'s map", f"{where}'s {mode} service map", "the map lists", hint,
        f"{agent} has no backend for", "(the frontend has no backends)",
        f"a frontend with no backends in {rules.source or mode} while the EndpointSlice is ready", hint))
    return lines, drift.found

"""svcctl's one vocabulary: severities, verdicts, `--fail-on`, and the registry of every finding code.

Every command judges the same way: a finding has a `Severity`; a hop, port, Service or whole answer has a
`Verdict` (the worst of its hops and of its findings: any error finding makes it broken); `--fail-on` says which
verdicts make the exit status 1. The registry (`FINDINGS`) is the one list of codes: the README's finding tables
are `readme_table(area)` and the tests check that every finding svcctl emits is registered with that severity.

Part of the model layer: it imports nothing of svcctl but the exit statuses.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable

from svcctl.errors import ExitStatus
from svcctl.lazydc import dataclass


class Severity(str, enum.Enum):
    """How bad one finding is. A str, so JSON/YAML documents and comparisons with "error" keep working."""

    ERROR = "error"  # a request fails, or a Pod the user expects is not a ready endpoint
    WARNING = "warning"  # works today, but fragile, inconsistent, or not fully checked
    INFO = "info"  # a deliberate configuration svcctl cannot judge

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 for the worst: sort findings with it."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Verdict(str, enum.Enum):
    """The judgement of a hop, a port, a Service or a whole answer."""

    OK = "ok"
    WARNING = "warning"
    BROKEN = "broken"
    SKIPPED = "skipped"  # a hop that could not be judged (no input for it); never worse than OK overall

    def __str__(self) -> str:
        return self.value

    @property
    def status(self) -> str:
        """The word `check` prints for a Service: healthy, warning or broken (a skipped Service is healthy)."""
        return "healthy" if self in (Verdict.OK, Verdict.SKIPPED) else self.value


_VERDICT_RANK = {Verdict.BROKEN: 0, Verdict.WARNING: 1, Verdict.OK: 2, Verdict.SKIPPED: 3}


def worst(verdicts: Iterable[Verdict | str]) -> Verdict:
    """The worst of `verdicts` (skipped counts as ok); OK when there are none."""
    out = Verdict.OK
    for v in verdicts:
        v = Verdict(v)
        if v is Verdict.SKIPPED:
            continue
        if _VERDICT_RANK[v] < _VERDICT_RANK[out]:
            out = v
    return out


def verdict_of(severities: Iterable[Severity | str]) -> Verdict:
    """Findings' verdict: broken with any error, warning with any warning, else ok (info never counts)."""
    seen = {Severity(s) for s in severities}
    if Severity.ERROR in seen:
        return Verdict.BROKEN
    return Verdict.WARNING if Severity.WARNING in seen else Verdict.OK


class FailOn(str, enum.Enum):
    """`--fail-on`: which verdicts make the exit status 1 (every judging command; default error)."""

    ERROR = "error"
    WARNING = "warning"
    NEVER = "never"

    def __str__(self) -> str:
        return self.value

    def fails(self, verdict: Verdict | str) -> bool:
        v = Verdict(verdict)
        if self is FailOn.NEVER:
            return False
        if self is FailOn.WARNING:
            return v in (Verdict.BROKEN, Verdict.WARNING)
        return v is Verdict.BROKEN


FAIL_ON_CHOICES = tuple(f.value for f in FailOn)


def exit_for(verdict: Verdict | str, fail_on: FailOn | str) -> ExitStatus:
    """The one exit model: PROBLEMS (1) when the verdict fails `--fail-on`, else OK (0)."""
    return ExitStatus.PROBLEMS if FailOn(fail_on).fails(verdict) else ExitStatus.OK


# ------------------------------------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class FindingCode:
    """One documented finding code: the severities it can have (the first is the usual one), what it means,
    the usual fix (a finding's own hint is more specific) and the rule that decides it."""

    code: str
    area: str  # endpoints | node | dns: which README table lists it
    severities: tuple[Severity, ...]
    meaning: str
    hint: str
    rule: str = ""  # what decides it: the Kubernetes code, spec or resolver behaviour (a finding's `where` is exact)

    @property
    def severity(self) -> Severity:
        return self.severities[0]

    @property
    def severity_text(self) -> str:
        return "/".join(s.value for s in self.severities)


AREAS = {
    "endpoints": "Endpoints",
    "node": "Node and drift",
    "policy": "NetworkPolicy",
    "dns": "DNS",
}

_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

# the deciding rules' sources, cited in the registry's `rule` (the README's "deciding rule" column)
_SYNC = "endpointslice_controller.go syncService"
_SHOULD = "endpointslice/util ShouldPodBeInEndpoints"
_REC = "endpointslice/reconciler.go reconcileByAddressType"
_READY = "endpointslice/utils.go podToEndpoint → IsPodReady"
_KUBELET = "kubelet status/generate.go GeneratePodReadyCondition → " + _READY
_PROXIES = "kube-proxy syncProxyRules (pkg/proxy/{iptables,nftables,ipvs}/proxier.go)"
_NP = "NetworkPolicy: a Pod a policy of that type selects is isolated; only the union of its rules admits"
_COREDNS = "CoreDNS plugin/kubernetes (the Kubernetes DNS specification)"
_RESOLV = "glibc res_search: the search list by ndots, each server in turn for `attempts` rounds"

_CODES: tuple[FindingCode, ...] = (
    # ---- endpoints: the EndpointSlice controller's rules, Pod by Pod
    FindingCode("ExternalName", "endpoints", (_I,), "type ExternalName: a DNS alias, never any endpoints",
                "nothing to fix: clients get a CNAME",
                rule=_SYNC + " (no slices for ExternalName); CoreDNS answers a CNAME"),
    FindingCode("NoSelector", "endpoints", (_I, _E), "no selector: endpoints are hand-made (error when there are none)",
                "create the EndpointSlice (or Endpoints) by hand, or give the Service a selector",
                rule=_SYNC + " (Selector == nil: no slices are managed)"),
    FindingCode("ProxyIgnored", "endpoints", (_I,),
                "label service.kubernetes.io/service-proxy-name: kube-proxy leaves it to another proxy",
                "check the proxy the label names",
                rule="kube-proxy lists only Services without the service-proxy-name label (cmd/kube-proxy/app/server.go)"),
    FindingCode("NoMatchingPods", "endpoints", (_E,), "the selector matches no Pod of the Service's namespace",
                "compare the selector with the Pods' labels (`kubectl get pods --show-labels`)",
                rule=_SYNC + " → podLister.Pods(ns).List(selector)"),
    FindingCode("NoReadyEndpoints", "endpoints", (_E,), "Pods are selected but none is a ready endpoint",
                "see each Pod's finding: why it is not ready",
                rule=_REC + ": no endpoint with conditions.ready"),
    FindingCode("TargetPortUndeclared", "endpoints", (_W,),
                "a numeric targetPort that no container of the selected Pods declares",
                "check the app listens on targetPort; declare it in the container's ports",
                rule="endpointslice/utils.go getEndpointPorts → FindPort: a numeric targetPort is used as is"),
    FindingCode("EndpointsTruncated", "endpoints", (_W,),
                "v1 Endpoints over capacity (1000): consumers of v1 Endpoints see a part",
                "move consumers to EndpointSlices",
                rule="endpoint/endpoints_controller.go maxCapacity (1000) and the over-capacity annotation"),
    FindingCode("SelectorMismatch", "endpoints", (_E, _I),
                "a Pod nearly matches the selector (missing key, differing or typo'd value)",
                "fix the Pod's labels or the Service's selector",
                rule=_SYNC + " → labels.Set(Spec.Selector).AsSelectorPreValidated(): every pair must match"),
    FindingCode("OtherNamespace", "endpoints", (_E, _I),
                "a Pod elsewhere matches the selector (error when the Service has none)",
                "a Service selects Pods of its own namespace only: deploy there, or use an ExternalName",
                rule=_SYNC + " → podLister.Pods(service.Namespace): other namespaces are never listed"),
    FindingCode("PodCompleted", "endpoints", (_W,), "phase Succeeded/Failed: never an endpoint",
                "its controller replaces it; a bare Pod must be recreated",
                rule=_SHOULD + " → isPodTerminal"),
    FindingCode("NoPodIP", "endpoints", (_E,), "no Pod IP yet: in no slice",
                "wait for the CNI to assign one, or look at the Pod's events",
                rule=_SHOULD + " (no podIP/podIPs)"),
    FindingCode("NodeMissing", "endpoints", (_E,), "the Pod's Node is not in the API: the controller skips the Pod",
                "delete the Pod so its controller recreates it on a live node",
                rule=_REC + " → nodeLister.Get (\"skipping Pod for Service, Node not found\")"),
    FindingCode("IPFamilyMismatch", "endpoints", (_E,), "the Pod has no IP of the Service's IP families",
                "align the Service's ipFamilies with the cluster's Pod networks",
                rule="endpointslice/utils.go getEndpointAddresses; " + _REC),
    FindingCode("PortNotFound", "endpoints", (_E,),
                "a named targetPort matches no container port (name and protocol): that port is left out",
                "name the container port as the Service's targetPort says",
                rule="endpointslice/utils.go getEndpointPorts → FindPort (name and protocol)"),
    FindingCode("Terminating", "endpoints", (_W,), "deletionTimestamp set: serving/terminating, never ready",
                "normal during a rollout; a Pod stuck here has a finalizer or a long grace period",
                rule=_READY + ": a terminating Pod is serving/terminating, never ready"),
    FindingCode("Unschedulable", "endpoints", (_E,), "PodScheduled=False: no node, no IP",
                "read the scheduler's message: resources, taints, affinity",
                rule="kube-scheduler PodScheduled=False → no Pod IP → " + _SHOULD),
    FindingCode("ContainerNotRunning", "endpoints", (_E,),
                "a container is waiting (CrashLoopBackOff, ImagePullBackOff, …) or terminated",
                "`kubectl logs` / `kubectl describe pod` for the container's reason",
                rule=_KUBELET),
    FindingCode("ReadinessProbeFailing", "endpoints", (_E,),
                "containers run but fail their readiness probe (kubelet Events)",
                "check the probe's path and port and the app's dependencies",
                rule="kubelet prober (readiness) → ContainersReady=False → " + _KUBELET),
    FindingCode("NodeNotReady", "endpoints", (_E,), "the Pod is not ready and its Node's Ready condition is not True",
                "check the node's kubelet and network",
                rule="nodelifecycle MarkPodsNotReady → " + _READY),
    FindingCode("ReadinessGatePending", "endpoints", (_E,), "a readinessGates condition is missing or False",
                "the controller that owns the gate (a load balancer controller) has not set it",
                rule=_KUBELET + " (every readinessGates condition True)"),
    FindingCode("NotReady", "endpoints", (_E,), "Ready is not True and nothing more specific can be proven",
                "`kubectl describe pod` for its conditions",
                rule=_READY),
    FindingCode("MissingFromSlices", "endpoints", (_E, _W),
                "a Pod that should be a ready endpoint is in no slice (controller lag or failure; a warning when "
                "the input has no Nodes to tell whether its Node is gone)",
                "check kube-controller-manager's endpointslice controller",
                rule=_REC + " (v1 Endpoints: endpoints_controller.go syncService)"),
    FindingCode("SliceOutOfDate", "endpoints", (_E, _W), "a slice's readiness or addresses disagree with the Pod",
                "the endpointslice controller is behind: check kube-controller-manager",
                rule=_REC),
    FindingCode("StaleSliceEndpoint", "endpoints", (_W,),
                "a slice lists a Pod that no longer matches (deleted or relabelled)",
                "the endpointslice controller is behind: check kube-controller-manager",
                rule=_REC),
    FindingCode("UnmanagedSlice", "endpoints", (_W,),
                "a slice of a selector Service not managed by the EndpointSlice controller",
                "find what writes it (its managed-by label); two writers fight",
                rule=_SYNC + " (manages only slices labelled managed-by endpointslice-controller.k8s.io)"),
    FindingCode("CheckSkipped", "endpoints", (_W, _I),
                "RBAC refused a read, or the input does not hold the kind: the check that needed it was skipped "
                "(see Partial input)",
                "grant svcctl's user get/list on that resource, or give an input that holds the kind",
                rule="svcctl: no finding rests on a kind the input lacks or a read RBAC refused"),
    # ---- node and drift: kube-proxy's rules against the API
    FindingCode("StaleBackend", "node", (_E, _W, _I),
                "the node's rules still send traffic to a backend that is no longer a ready endpoint "
                "(or no endpoint at all; a warning when the dataplane only keeps existing connections on it); "
                "info: a replacement keeps a terminating backend, taking no new connections, that the API no "
                "longer lists",
                "kube-proxy has not synced: check its logs and sync metrics",
                rule=_PROXIES + ": a backend per usable endpoint, no other"),
    FindingCode("StaleService", "node", (_E,),
                "the node still routes an address:port to backends, but no Service in the API has it (deleted or "
                "changed while kube-proxy was not syncing)",
                "kube-proxy has not synced since: check that it runs on this node and its logs",
                rule=_PROXIES + ": rules only for current Service ports"),
    FindingCode("EndpointNotProgrammed", "node", (_E,),
                "a ready endpoint the node's rules do not have (not yet programmed, or kube-proxy not syncing)",
                "kube-proxy has not synced: check its logs and sync metrics",
                rule=_PROXIES + ": every usable endpoint gets a backend"),
    FindingCode("ServiceNotProgrammed", "node", (_E,), "the Service's VIP:port is missing from the node's rules",
                "check kube-proxy is running and syncing on this node",
                rule=_PROXIES + ": every Service port gets its address:port rules"),
    FindingCode("FirewallMarkUnmatched", "node", (_W,),
                "kube-router serves the Service by DSR firewall marks and none of the node's unnamed "
                "firewall-mark services is kube-router's hash of its addresses: svcctl cannot tell which is it",
                "give the node's `iptables-save -t mangle`: its MARK rules name each mark's address",
                rule="kube-router proxy: a DSR Service is an IPVS firewall-mark service, marked by a hash of its address"),
    FindingCode("NoEndpointsReject", "node", (_E,),
                "the node rejects the VIP: `\"has no endpoints\"` REJECT (iptables), `no-endpoint-services` "
                "(nftables)",
                "the Service has no ready endpoints in this node's view: see the endpoints hop",
                rule=_PROXIES + ": REJECT \"has no endpoints\" / the no-endpoint-services map"),
    FindingCode("NoLocalEndpoints", "node", (_E, _W),
                "traffic policy Local and no endpoint on this node: `\"has no local endpoints\"` DROP",
                "run a ready Pod on this node, or use traffic policy Cluster",
                rule=_PROXIES + ": DROP \"has no local endpoints\" (traffic policy Local)"),
    FindingCode("ProxyModeUnknown", "node", (_W,), "the node's dumps show no kube-proxy rules in any mode",
                "is kube-proxy running there? pass --mode if detection is wrong",
                rule="svcctl mode detection: each mode's own chains, tables or services (dataplane/modes/)"),
    FindingCode("ServiceNotFound", "node", (_E,),
                "no Service has the traced IP:port as a ClusterIP, externalIP or load-balancer IP, and it is no "
                "node address with that nodePort (`check`: the named Service does not exist)",
                "list Services with `svcctl endpoints -A` (NodePorts: -o wide)",
                rule="the API's Services: ClusterIPs, externalIPs, load-balancer IPs and nodePorts"),
    FindingCode("NodePortNotOnLocalhost", "node", (_E,),
                "`127.0.0.1:nodePort` / `[::1]:nodePort` in a mode that does not accept it (nftables, IPVS, IPv6, "
                "or iptables with `--iptables-localhost-nodeports=false`)",
                "connect to a node address instead of localhost",
                rule="iptables proxier: --iptables-localhost-nodeports and route_localnet (IPv4); nftables and IPVS never"),
    FindingCode("SourceNotAllowed", "node", (_E,),
                "`--from` an address outside `loadBalancerSourceRanges`, to the load-balancer IP: "
                "KUBE-PROXY-FIREWALL / the nft firewall chain drops it",
                "add the client's range to loadBalancerSourceRanges, or trace from an allowed address",
                rule=_PROXIES + ": KUBE-PROXY-FIREWALL / firewall-check, from loadBalancerSourceRanges"),
    FindingCode("HealthCheckTakesNodeOut", "node", (_I,),
                "externalTrafficPolicy Local: the node has no local ready endpoint, so its healthCheckNodePort "
                "answers 503 and the load balancer leaves it out (by design)",
                "nothing to fix, unless every node is out: run ready Pods where the load balancer sends",
                rule="kube-proxy healthcheck/service_health.go hcHandler.ServeHTTP: 503 without a local endpoint"),
    FindingCode("VIPNotBound", "node", (_E,), "IPVS: a virtual server whose VIP is not on `kube-ipvs0`",
                "kube-proxy binds it on sync: check its logs",
                rule="ipvs/proxier.go syncService → netlinkHandle.EnsureAddressBind (kube-ipvs0)"),
    FindingCode("VIPNotInIPSet", "node", (_E,), "IPVS: a virtual server missing from the `KUBE-CLUSTER-IP` ipset",
                "kube-proxy fills the ipset on sync: check its logs",
                rule="ipvs/proxier.go syncProxyRules: every virtual server in the KUBE-CLUSTER-IP ipset"),
    FindingCode("BackendStateDrift", "node", (_E, _W),
                "Cilium / kube-router: a backend's state in the agent's map disagrees with its endpoint's conditions "
                "(active in the map but terminating in the API: error; terminating in the map but ready: warning)",
                "the agent has not synced the endpoint's state: check the agent's logs",
                rule="the agent's service map against the EndpointSlice conditions (ready, serving, terminating)"),
    FindingCode("BackendQuarantined", "node", (_W,),
                "Cilium: a ready endpoint the agent gives no new connections (quarantined by its health checker, "
                "or in maintenance)",
                "check the backend's health from the node; the agent's health checker marked it",
                rule="Cilium's health checker or the agent's API: backend state quarantined / maintenance"),
    FindingCode("NodeUnreadable", "node", (_W,),
                "`--all-nodes`: a node whose rules could not be read (exec failed, timed out); the others are "
                "still checked",
                "check the kube-proxy Pod on that node, and svcctl's RBAC for pods/exec",
                rule="svcctl --all-nodes: each node is read on its own; one not read is not judged"),
    # ---- NetworkPolicy: whether the policies let the request through (the trace's policy hop)
    FindingCode("PolicyDeniesIngress", "policy", (_E, _W),
                "no Ingress rule of the policies isolating the backend admits the client on the targetPort (the "
                "hint explains the AND/OR trap when it is the cause)",
                "add an Ingress rule admitting the client (namespaceSelector and podSelector in one peer = AND)",
                rule=_NP + " (peers OR'd, one peer's selectors AND'd)"),
    FindingCode("PolicyDeniesEgress", "policy", (_E, _W),
                "the client is isolated for Egress and no rule admits the backend on the targetPort",
                "add an Egress rule admitting the backend's Pods on the targetPort",
                rule=_NP),
    FindingCode("PolicyIsolatesService", "policy", (_W,),
                "`svcctl check`: no namespace's Pods can reach a Service that has endpoints (every backend's "
                "Ingress admits no Pod; ipBlocks, if any, are named)",
                "add an Ingress rule for the clients meant to reach it",
                rule=_NP + ", for each namespace's Pods"),
    FindingCode("PolicyDeniesDNS", "policy", (_E,),
                "the client's Egress admits no port 53/UDP to the cluster DNS (`kube-system/kube-dns`): lookups "
                "time out before any connection; the hint is the rule to add",
                "allow Egress to kube-system/kube-dns on 53/UDP and 53/TCP",
                rule=_NP + ", for the client's lookups to kube-system/kube-dns"),
    # ---- DNS: what CoreDNS answers against what the API implies
    FindingCode("DNSNameNotFound", "dns", (_E, _W, _I),
                "NXDOMAIN for the name (info when the Service exists but has no record of the asked type)",
                "check the name, the namespace and the search list",
                rule=_COREDNS),
    FindingCode("DNSMismatch", "dns", (_E,),
                "the answer differs from what the API says: which records are extra, which missing",
                "CoreDNS is behind the API, or another server answers: check CoreDNS's logs",
                rule=_COREDNS + ": records from the ClusterIPs and ready endpoints"),
    FindingCode("DNSTimeout", "dns", (_E, _W),
                "no answer within the timeout (a warning from outside the cluster, where ClusterIPs do not route)",
                "check the DNS Pods and the path to the server",
                rule=_RESOLV),
    FindingCode("DNSServerUnreachable", "dns", (_E, _W), "the server refused or could not be reached",
                "check the server's address and that CoreDNS runs",
                rule=_RESOLV),
    FindingCode("DNSServerFailure", "dns", (_E, _W), "SERVFAIL / REFUSED", "read CoreDNS's logs",
                rule=_RESOLV + " (SERVFAIL / REFUSED: the next server)"),
    FindingCode("DNSMalformedAnswer", "dns", (_E, _W), "the server answered garbage",
                "is the address a DNS server?",
                rule=_RESOLV),
    FindingCode("DNSOutage", "dns", (_E,),
                "the name failed and the control query (`kubernetes.default`) failed too: DNS itself is broken",
                "check the CoreDNS Pods and the kube-dns Service",
                rule="svcctl's control query: kubernetes.default.svc.<domain> resolves wherever DNS works"),
    FindingCode("DNSSearchPathSurprise", "dns", (_W, _I),
                "the name resolved through an unexpected search suffix, or to another namespace's Service",
                "use the fully qualified name",
                rule=_RESOLV + "; " + _COREDNS),
)

del _E, _W, _I, _SYNC, _SHOULD, _REC, _READY, _KUBELET, _PROXIES, _NP, _COREDNS, _RESOLV

FINDINGS: dict[str, FindingCode] = {c.code: c for c in _CODES}


def register(code: FindingCode) -> FindingCode:
    """Add a code (a new mode or check registers its own); a code is registered once."""
    if code.code in FINDINGS and FINDINGS[code.code] != code:
        raise ValueError(f"finding code {code.code} is already registered differently")
    FINDINGS[code.code] = code
    return code


def check_finding(code: str, severity: Severity) -> None:
    """In strict mode (SVCCTL_STRICT_FINDINGS=1, which the tests set): a registered code with a severity the
    registry does not allow for it is a bug and raises. Otherwise nothing is checked (never fail a user).
    Unregistered codes are found by tests/test_findings.py, which reads the source."""
    if os.environ.get("SVCCTL_STRICT_FINDINGS") != "1":
        return
    spec = FINDINGS.get(code)
    if spec is not None and severity not in spec.severities:
        raise ValueError(f"finding {code} with severity {severity.value}: the registry allows "
                         f"{spec.severity_text}")


def readme_table(area: str) -> str:
    """The README's finding table for one area, exactly (tests/test_findings.py compares them)."""
    lines = ["| code | severity | meaning | deciding rule | usual fix |", "| --- | --- | --- | --- | --- |"]
    for c in FINDINGS.values():
        if c.area == area:
            lines.append(f"| `{c.code}` | {c.severity_text} | {c.meaning} | {c.rule} | {c.hint} |")
    return "\n".join(lines)


__all__ = ["AREAS", "FAIL_ON_CHOICES", "FINDINGS", "FailOn", "FindingCode", "Severity", "Verdict",
           "check_finding", "exit_for", "readme_table", "register", "verdict_of", "worst"]

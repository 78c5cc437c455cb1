"""The EndpointSlice controller, modelled: what it should publish for a Service, and why each Pod is (not) there.

Pure logic over the typed model: nothing here reads. `svcctl.ops.endpoints.gather` reads one Service's objects
into a `Gathered` (a constant number of requests per Service) and `analyze` turns those objects into an
`EndpointsReport`: expected endpoints per Pod (the controller's rules, cited in each finding's `where`),
the slices as they are, and findings that explain every difference.

Severity policy (one place, so `check` and `trace` agree):
- error: a Pod the user expects (matches the selector, or is a near miss) is not a ready endpoint, or the
  Service has no ready endpoint at all;
- warning: things that work today but are fragile or inconsistent (Terminating during a rollout, stale or
  unmanaged slices, an undeclared numeric targetPort, truncated v1 Endpoints, a skipped check);
  PodCompleted is a warning too: a finished Pod never serves again and its controller replaces it; when
  nothing else is ready, NoReadyEndpoints carries the error;
- info: deliberate configurations svcctl cannot judge (ExternalName, selectorless Services with hand-made
  endpoints, `service-proxy-name` handing the Service to another proxy, Pods of the same labels elsewhere
  while the Service has Pods of its own).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import TypeVar

from svcctl.errors import ExitStatus
from svcctl.findings import FINDINGS, Severity, Verdict, verdict_of
from svcctl.lazydc import dataclass, field
from svcctl.model import (
    JSON,
    Condition,
    Container,
    ContainerStatus,
    Endpoints,
    EndpointSlice,
    Event,
    Finding,
    Node,
    Pod,
    Service,
    ServicePort,
)
from svcctl.selectors import labels_match, parse_selector, selector_string

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"

# checks a refused read skips; the first four leave the answer incomplete (warning), the rest only less precise
CHK_SLICES = "slices vs Pods"
CHK_PODS = "Pods behind the selector"
CHK_NODES = "Nodes of the Pods (NodeMissing, NodeNotReady, zone)"
CHK_V1 = "v1 Endpoints (truncation, hand-made endpoints)"
CHK_NEAR = "near misses (selector typos)"
CHK_ELSEWHERE = "Pods in other namespaces"
CHK_EVENTS = "probe-failure Events"
CHK_INTENT = "near-miss intent (other Services)"
CORE_CHECKS = (CHK_SLICES, CHK_PODS, CHK_NODES)

# `where` citations: the file/function of Kubernetes that decides each code.
W_SYNC = "pkg/controller/endpointslice/endpointslice_controller.go syncService"
W_SHOULD = "endpointslice/util/controller_utils.go ShouldPodBeInEndpoints"
W_RECONCILE = "endpointslice/reconciler.go reconcileByAddressType"
W_TO_ENDPOINT = "endpointslice/utils.go podToEndpoint → IsPodReady"
W_PORTS = "endpointslice/utils.go getEndpointPorts → FindPort"
W_ADDRS = "endpointslice/utils.go getEndpointAddresses / getAddressTypesForService"
W_KUBELET_READY = "pkg/kubelet/status/generate.go GeneratePodReadyCondition; " + W_TO_ENDPOINT

# Every code this module emits, with its usual severity and what it means: a view of the one registry.
CODES: dict[str, tuple[str, str]] = {c.code: (c.severity_text, c.meaning) for c in FINDINGS.values()
                                     if c.area == "endpoints"}

PortTuple = tuple[str, int, str]  # (name, port, protocol)
T = TypeVar("T")

# Pod relations to the Service
SELECTED, NEAR_MISS, ELSEWHERE = "selected", "near-miss", "other-namespace"
# Pod verdict states
READY, NOT_READY, TERMINATING, EXCLUDED, NOT_SELECTED = "ready", "not-ready", "terminating", "excluded", "not-selected"

_WAITING_NORMAL = {"ContainerCreating", "PodInitializing"}


# ------------------------------------------------------------------------------------------------ report types


@dataclass(slots=True)
class EndpointRow:
    """One endpoint as a slice publishes it (the actual state)."""

    pod: str | None  # "ns/name" from targetRef, None for hand-made endpoints
    ip: str
    ips: list[str]
    ports: list[PortTuple]
    node: str
    ready: bool
    serving: bool
    terminating: bool
    hostname: str = ""
    zone: str = ""
    slice: str = ""
    address_type: str = "IPv4"

    def to_json(self) -> JSON:
        return {"pod": self.pod, "ip": self.ip, "ips": self.ips,
                "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in self.ports],
                "node": self.node or None, "ready": self.ready, "serving": self.serving,
                "terminating": self.terminating, "hostname": self.hostname or None, "zone": self.zone or None,
                "slice": self.slice, "addressType": self.address_type}


@dataclass(slots=True)
class PodVerdict:
    """One candidate Pod: what the controller should publish for it, what the slices say, and why."""

    pod: str
    relation: str  # selected | near-miss | other-namespace
    state: str  # ready | not-ready | terminating | excluded | not-selected
    ip: str = ""
    ips: list[str] = field(default_factory=list)
    node: str = ""
    expected_in_slices: bool = False
    expected_ready: bool = False
    expected_serving: bool = False
    expected_terminating: bool = False
    expected_addresses: list[str] = field(default_factory=list)
    expected_ports: list[PortTuple] = field(default_factory=list)
    expected_hostname: str = ""
    expected_zone: str = ""
    expected_hints: tuple[list[str], list[str]] | None = field(default_factory=lambda: ([], []))
    in_slices: bool = False
    slice_ready: bool | None = None
    slices: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return ", ".join(dict.fromkeys(self.codes))

    def to_json(self) -> JSON:
        return {"pod": self.pod, "relation": self.relation, "state": self.state, "ip": self.ip or None,
                "node": self.node or None,
                "expected": {"inSlices": self.expected_in_slices, "ready": self.expected_ready,
                             "serving": self.expected_serving, "terminating": self.expected_terminating,
                             "addresses": self.expected_addresses,
                             "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in self.expected_ports],
                             "hostname": self.expected_hostname or None, "zone": self.expected_zone or None,
                             "hints": None if self.expected_hints is None else
                             {"forZones": self.expected_hints[0], "forNodes": self.expected_hints[1]}},
                "actual": {"inSlices": self.in_slices, "ready": self.slice_ready, "slices": self.slices},
                "codes": list(dict.fromkeys(self.codes))}


@dataclass
class EndpointsReport:
    service: Service
    endpoints: list[EndpointRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    pods: list[PodVerdict] = field(default_factory=list)
    ready: int = 0  # distinct ready endpoints in the slices (what kube-proxy routes to)
    not_ready: int = 0  # distinct endpoints in the slices that are not ready
    expected: int = 0  # Pods the user expects behind it (selected, not finished); hand-made endpoints if no selector
    why_not: bool = False
    skipped: list[str] = field(default_factory=list)  # checks not made (RBAC, or not in the input)
    notes: list[str] = field(default_factory=list)  # bounded searches that hit their cap
    basis: str = "EndpointSlices"  # what the endpoints were read from; "" = neither slices nor v1 Endpoints
    slices: list[EndpointSlice] = field(default_factory=list)  # what was compared (v1 Endpoints as slices)
    basis_absent: str = ""  # why there are no slices to show (the input lacks them), when basis is ""

    pods_known: bool = True  # False: Pods refused (RBAC) or not in the input, so `expected` is unknown

    @property
    def counts(self) -> dict[str, int | None]:
        """ready / notReady are None when the input holds neither EndpointSlices nor v1 Endpoints; expected is
        None when the Pods could not be seen."""
        known = bool(self.basis) or self.service.type == "ExternalName"
        return {"ready": self.ready if known else None, "notReady": self.not_ready if known else None,
                "expected": self.expected if self.pods_known or self.service.selector is None else None}

    @property
    def verdict(self) -> Verdict:
        return verdict_of(f.severity for f in self.findings)

    def exit_status(self) -> ExitStatus:
        return ExitStatus.PROBLEMS if any(f.severity == Severity.ERROR for f in self.findings) else ExitStatus.OK

    def findings_for(self, pod: str) -> list[Finding]:
        return [f for f in self.findings if f.pod == pod]

    def to_json(self) -> JSON:
        s = self.service
        return {
            "apiVersion": "svcctl/v1",
            "kind": "EndpointsReport",
            "service": {
                "namespace": s.meta.namespace, "name": s.meta.name, "type": s.type, "clusterIPs": s.cluster_ips,
                "selector": s.selector,
                "ports": [{"name": p.name or None, "port": p.port, "targetPort": p.target_port,
                           "protocol": p.protocol} for p in s.ports],
                "publishNotReadyAddresses": s.publish_not_ready_addresses,
            },
            "counts": self.counts,
            "endpoints": [e.to_json() for e in self.endpoints],
            "pods": [p.to_json() for p in self.pods],
            "findings": [f.to_json() for f in self.findings],
            "skippedChecks": self.skipped,
            "notes": self.notes,
            "basis": self.basis or None,
        }


@dataclass
class ServiceSummary:
    namespace: str
    name: str
    type: str
    selector: dict[str, str] | None
    ready: int | None  # None: the input holds no EndpointSlices (nor v1 Endpoints), or they were refused
    not_ready: int | None
    expected: int | None  # None: the Pods could not be read (RBAC) or are not in the input

    @property
    def problem(self) -> bool:
        """Pods are expected (or the Service is selectorless) yet nothing is ready: traffic fails."""
        return self.type != "ExternalName" and self.ready == 0 and (bool(self.expected) or self.selector is None)

    def to_json(self) -> JSON:
        return {"namespace": self.namespace, "name": self.name, "type": self.type, "selector": self.selector,
                "ready": self.ready, "notReady": self.not_ready, "expected": self.expected}


# ------------------------------------------------------------------------------------------------ gathering


@dataclass
class Gathered:
    """Everything one Service's analysis reads; built by `gather`, or by hand in tests."""

    service: Service
    slices: list[EndpointSlice] = field(default_factory=list)
    endpoints: Endpoints | None = None
    pods: list[Pod] = field(default_factory=list)  # same namespace, matching the selector
    near: list[Pod] = field(default_factory=list)  # same namespace, carrying a selector key, not selected
    elsewhere: list[Pod] = field(default_factory=list)  # other namespaces, matching the selector
    nodes: dict[str, Node | None] = field(default_factory=dict)  # absent key = could not be read
    events: list[Event] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)  # the namespace's Services (near-miss intent)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (check, resource, reason)
    absent: list[tuple[str, str, str]] = field(default_factory=list)  # (check, resource, why) not in the input
    basis: str = "EndpointSlices"  # what the slices are: EndpointSlices | v1 Endpoints | "" (neither in the input)
    why_not: bool = True
    capped: list[str] = field(default_factory=list)  # bounded searches that hit their cap
    all_nodes: list[Node] | None = None  # every Node, read only for topology-mode Auto (its CPU-by-zone gate)


# Near-miss searches read one bounded page each, so a namespace with 100,000 Pods carrying `app` costs the same
# as one with ten: enough to catch a typo'd label on a Deployment's Pods, never a namespace-sized read.
NEAR_MISS_CAP = 500


# ------------------------------------------------------------------------------------------------ controller model


def address_types(service: Service) -> list[str]:
    """getAddressTypesForService: spec.ipFamilies, else the ClusterIP's family, else both (headless)."""
    fams = [f for f in service.ip_families if f in ("IPv4", "IPv6")]
    if fams:
        return list(dict.fromkeys(fams))
    if service.cluster_ip and service.cluster_ip != "None":
        return [ip_family(service.cluster_ip) or "IPv4"]
    return ["IPv4", "IPv6"]


# an IPv4 octet as ipaddress accepts it: 1-3 ASCII digits, no leading zero, at most 255
_OCTETS = frozenset(str(i) for i in range(256))


def ip_family(ip: str) -> str | None:
    if ":" not in ip and ip.count(".") == 3:
        a, b, c, d = ip.split(".")
        if a in _OCTETS and b in _OCTETS and c in _OCTETS and d in _OCTETS:
            return "IPv4"  # what ipaddress accepts as IPv4, without building the address (twice per Pod in check -A)
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def find_port(pod: Pod, sp: ServicePort) -> int | None:
    """FindPort: a number is used as is; a name must match a container port's name AND protocol, in
    containers first, then restartable (sidecar) init containers."""
    if isinstance(sp.target_port, int):
        return sp.target_port
    for c in pod.containers + [c for c in pod.init_containers if c.restart_policy == "Always"]:
        for cp in c.ports:
            if cp.name == sp.target_port and cp.protocol == sp.protocol:
                return cp.container_port
    return None


def _serving_containers(pod: Pod) -> list[Container]:
    return pod.containers + [c for c in pod.init_containers if c.restart_policy == "Always"]


@dataclass(slots=True)
class Expected:
    """What podToEndpoint / getEndpointPorts would publish for one Pod (all address types)."""

    in_slices: bool
    exclusion: str | None = None  # PodCompleted | NoPodIP | NodeMissing | IPFamilyMismatch
    addresses: list[str] = field(default_factory=list)
    ports: list[PortTuple] = field(default_factory=list)
    missing_ports: list[ServicePort] = field(default_factory=list)
    ready: bool = False
    serving: bool = False
    terminating: bool = False
    hostname: str = ""  # ShouldSetHostname: spec.hostname when spec.subdomain names this Service
    zone: str = ""  # the Node's topology.kubernetes.io/zone
    node: str = ""  # endpoint.nodeName (pod.spec.nodeName)
    # hints the controller writes: (forZones, forNodes); None when the model cannot tell (topology-mode Auto
    # whose proportional allocation depends on every Node's CPU)
    hints: tuple[list[str], list[str]] | None = field(default_factory=lambda: ([], []))


CLOSE_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")
TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
TOPOLOGY_AWARE_HINTS = "service.kubernetes.io/topology-aware-hints"  # the deprecated spelling


def topology_auto(service: Service) -> bool:
    """endpointslice utils.go hintsEnabled: the deprecated annotation wins when both are present."""
    ann = service.meta.annotations
    val = ann[TOPOLOGY_AWARE_HINTS] if TOPOLOGY_AWARE_HINTS in ann else ann.get(TOPOLOGY_MODE)
    return val in ("Auto", "auto")


def expected_hints(service: Service, exp: Expected, auto_gate: str | None = None) -> tuple[list[str], list[str]] | None:
    """The hints the controller writes on one endpoint (endpointslice reconciler.go, trafficdist.ReconcileHints).

    trafficDistribution (ignored when topology-mode Auto is set) hints every *ready* endpoint with its own zone
    (when it has one) and, for PreferSameNode, its own node; not-ready endpoints get none. topology-mode Auto
    goes through the topology cache: `auto_gate` is the reason it gives no hints at all (insufficient Node
    information, one zone, an endpoint without a zone), else its CPU-proportional allocation decides, which
    this model does not predict (None)."""
    if topology_auto(service):
        if auto_gate is not None or not exp.ready:
            return [], []
        return None
    td = service.traffic_distribution
    if td not in CLOSE_DISTRIBUTIONS or not exp.ready:
        return [], []
    return ([exp.zone] if exp.zone else []), ([exp.node] if td == "PreferSameNode" and exp.node else [])


def auto_hints_gate(nodes: list[Node] | None, ready: list[Expected]) -> str | None:
    """Why topology-mode Auto gives no hints (topologycache SetNodes / getAllocations / AddHints), or None when
    it would allocate. `nodes` are all the API's Nodes (None: not read, so the gate is unknown: None)."""
    if nodes is None:
        return None
    zones: dict[str, float] = {}
    for n in nodes:
        if "node-role.kubernetes.io/control-plane" in n.meta.labels or not n.ready:
            continue
        cpu = _cpu_millis(n.raw.get("status", {}).get("allocatable", {}).get("cpu"))
        zone = n.meta.labels.get("topology.kubernetes.io/zone", "")
        if not zone or not cpu:
            return f"Insufficient Node information: Node {n.meta.name} has no zone or allocatable CPU"
        zones[zone] = zones.get(zone, 0) + cpu
    if len(zones) < 2:
        return "Nodes only ready in one zone"
    if len(zones) > len(ready):
        return f"Insufficient number of endpoints ({len(ready)} endpoints, {len(zones)} zones)"
    if any(not e.zone for e in ready):
        return "One or more endpoints do not have a zone specified"
    return None


def _cpu_millis(q: object) -> float:
    text = str(q or "")
    try:
        return float(text[:-1]) if text.endswith("m") else float(text) * 1000
    except ValueError:
        return 0.0


def expected_endpoint(service: Service, pod: Pod, nodes: dict[str, Node | None],
                      types: list[str] | None = None) -> Expected:
    """reconcileByAddressType for one Pod: ShouldPodBeInEndpoints, the Node lookup, podToEndpoint. `types`: the
    Service's address_types, when the caller has them (once per Service, not per Pod)."""
    if pod.phase in ("Failed", "Succeeded"):
        return Expected(False, "PodCompleted")
    if not pod.pod_ip and not pod.pod_ips:
        return Expected(False, "NoPodIP")
    ports: list[PortTuple] = []
    missing: list[ServicePort] = []
    if service.ports or not service.headless:
        for sp in service.ports:
            num = find_port(pod, sp)
            if num is None:
                missing.append(sp)
            else:
                ports.append((sp.name, num, sp.protocol))
    serving = pod.ready
    terminating = pod.terminating
    ready = service.publish_not_ready_addresses or (serving and not terminating)
    base = Expected(True, None, [], ports, missing, ready, serving, terminating, "", "", pod.node_name, ([], []))
    if pod.hostname and pod.subdomain == service.meta.name and pod.meta.namespace == service.meta.namespace:
        base.hostname = pod.hostname
    node = nodes.get(pod.node_name)
    if node is not None:
        base.zone = node.zone
    # nodeLister.Get(pod.Spec.NodeName): a Pod whose Node the API does not know is skipped (known absence only)
    # an unscheduled Pod (no spec.nodeName) looks up Node "": never found, so it is skipped the same way
    unscheduled = not pod.node_name
    if (unscheduled or (pod.node_name in nodes and nodes[pod.node_name] is None)) \
            and not service.publish_not_ready_addresses:
        base.in_slices, base.exclusion = False, "NodeMissing"
        return base
    if types is None:
        types = address_types(service)
    base.addresses = [ip for ip in (pod.pod_ips or [pod.pod_ip]) if ip_family(ip) in types]
    if not base.addresses:
        base.in_slices, base.exclusion = False, "IPFamilyMismatch"
    base.hints = expected_hints(service, base, None)  # Auto: not predicted until its gate is known (_auto_hints)
    return base


def slice_rows(slices: list[EndpointSlice]) -> list[EndpointRow]:
    rows: list[EndpointRow] = []
    for sl in sorted(slices, key=lambda s: s.meta.name):
        ports = [(p.name, int(p.port or 0), p.protocol) for p in sl.ports]
        for ep in sl.endpoints:
            pod = None
            if ep.target_kind == "Pod" and ep.target_name:
                pod = f"{ep.target_namespace or sl.meta.namespace}/{ep.target_name}"
            # SliceEndpoint.is_ready / is_serving / is_terminating, inline (every endpoint of check -A's cluster)
            ready = ep.ready is not False
            rows.append(EndpointRow(pod, ep.addresses[0] if ep.addresses else "", list(ep.addresses), ports,
                                    ep.node_name, ready, ep.serving is not False if ep.serving is not None else ready,
                                    bool(ep.terminating), ep.hostname, ep.zone, sl.meta.name, sl.address_type))
    return rows


class ReadyCounter:
    """Distinct endpoints (a dual-stack Pod is in two slices: counted once), ready and not, per service port.

    READY is counted per service port: the fewest ready endpoints any of the Service's ports has (a slice port
    matches by name and protocol, as kube-proxy matches them), so a Service whose only port no endpoint serves
    is 0 ready, not "3/3". Accumulates slice by slice (`add`), so a whole cluster's slices need not be kept."""

    def __init__(self) -> None:
        self.any: dict[str, bool] = {}
        self.by_port: dict[tuple[str, str], dict[str, bool]] = {}

    def add(self, rows: list[EndpointRow]) -> None:
        for r in rows:
            k = r.pod or r.ip
            self.any[k] = self.any.get(k, False) or r.ready
            for name, _, proto in r.ports:
                d = self.by_port.setdefault((name, proto), {})
                d[k] = d.get(k, False) or r.ready

    def counts(self, ports: list[tuple[str, str]] | None = None) -> tuple[int, int]:
        """(ready, not ready); `ports`: the Service's (name, protocol) pairs, None or [] to count any port."""
        total = len(self.any)
        if ports:
            ready = min(sum(1 for v in self.by_port.get(p, {}).values() if v) for p in ports)
        else:
            ready = sum(1 for v in self.any.values() if v)
        return ready, total - ready


def service_ports(service: Service) -> list[tuple[str, str]]:
    """The (name, protocol) pairs READY is counted over."""
    return [(p.name, p.protocol) for p in service.ports]


def count_rows(rows: list[EndpointRow], ports: list[tuple[str, str]] | None = None) -> tuple[int, int]:
    """Distinct endpoints, ready and not (per service port when `ports` is given: see ReadyCounter)."""
    c = ReadyCounter()
    c.add(rows)
    return c.counts(ports)


# ------------------------------------------------------------------------------------------------ explanations


def _describe(c: Condition, label: str) -> str:
    """`label=Status (Reason): message`, as evidence."""
    return f"{label}={c.status}" + (f" ({c.reason})" if c.reason else "") + (f": {c.message}" if c.message else "")


def _cond(pod: Pod, type_: str) -> str:
    c = pod.condition(type_)
    return _describe(c, type_) if c is not None else f"{type_} condition missing"


def _node_cond(node: Node) -> str:
    c = next((c for c in node.conditions if c.type == "Ready"), None)
    return _describe(c, f"node {node.meta.name} Ready") if c is not None else \
        f"node {node.meta.name} has no Ready condition"


def _probe_events(pod: Pod, events: list[Event]) -> list[Event]:
    mine = [e for e in events if e.involved_name == pod.meta.name and e.involved_kind == "Pod"
            and (not e.involved_namespace or e.involved_namespace == pod.meta.namespace)
            and e.reason == "Unhealthy" and e.message.startswith("Readiness probe failed")]
    # oldest first, undated first: the last one is the latest
    return sorted(mine, key=lambda e: e.last_timestamp.timestamp() if e.last_timestamp else float("-inf"))


def _container_problem(pod: Pod) -> tuple[str, str, str] | None:
    """(container description, reason, evidence) for the first container that is not running."""
    sidecars = {c.name for c in pod.init_containers if c.restart_policy == "Always"}
    for cs in pod.init_container_statuses:
        if cs.name in sidecars:
            continue  # judged with the regular containers below
        if cs.state == "waiting" and cs.reason and cs.reason not in _WAITING_NORMAL:
            return (f"init container {cs.name}", cs.reason, _cs_evidence(cs, "init container"))
        if cs.state == "terminated" and (cs.exit_code or 0) != 0:
            return (f"init container {cs.name}", cs.reason or "Error", _cs_evidence(cs, "init container"))
        if cs.state in ("waiting", "running"):
            return (f"init container {cs.name}", cs.reason or "Initializing", _cs_evidence(cs, "init container"))
    for cs in [s for s in pod.init_container_statuses if s.name in sidecars] + pod.container_statuses:
        kind = "sidecar container" if cs.name in sidecars else "container"
        if cs.state == "waiting":
            return (f"{kind} {cs.name}", cs.reason or "Waiting", _cs_evidence(cs, kind))
        if cs.state == "terminated":
            return (f"{kind} {cs.name}", cs.reason or "Terminated", _cs_evidence(cs, kind))
    return None


def _cs_evidence(cs: ContainerStatus, kind: str) -> str:
    text = f"{kind} {cs.name}: {cs.state}"
    if cs.reason:
        text += f" reason={cs.reason}"
    if cs.exit_code is not None:
        text += f" exitCode={cs.exit_code}"
    if cs.message:
        text += f" message={cs.message!r}"
    if cs.restart_count:
        text += f", restartCount={cs.restart_count}"
    if cs.last_terminated_reason:
        text += f", last terminated: {cs.last_terminated_reason}"
    return text


_CONTAINER_HINTS = {
    "CrashLoopBackOff": "the container keeps exiting: read `kubectl logs {pod} -c {c} --previous`",
    "ImagePullBackOff": "the image cannot be pulled: check the image name/tag and imagePullSecrets",
    "ErrImagePull": "the image cannot be pulled: check the image name/tag and imagePullSecrets",
    "InvalidImageName": "fix the image reference in the Pod template",
    "CreateContainerConfigError": "a referenced ConfigMap/Secret (key) is missing: `kubectl describe pod {pod}`",
    "CreateContainerError": "the runtime could not create the container: `kubectl describe pod {pod}`",
    "RunContainerError": "the runtime could not start the container: `kubectl describe pod {pod}`",
    "OOMKilled": "the container ran out of memory: raise its memory limit or fix the leak",
    "ContainerCreating": "the container is still being created (volumes, image pull): wait, or `kubectl describe pod {pod}`",
}


def explain_not_ready(pod: Pod, node: Node | None, events: list[Event], events_known: bool = True) -> Finding:
    """Why the Pod's Ready condition is not True, most specific proof first. `events_known`: False when the
    input holds no Events (a probe failure is then not provable, and its absence proves nothing)."""
    key = pod.key
    name = pod.meta.name
    sched = pod.condition("PodScheduled")
    if pod.phase == "Pending" and sched is not None and sched.status == "False":
        return Finding("Unschedulable", Severity.ERROR, "not scheduled, so no Pod IP and no endpoint: "
                       + (sched.message or sched.reason or "no node fits").replace("\n", " "), key,
                       _cond(pod, "PodScheduled"),
                       "free capacity or relax the Pod's requests, nodeSelector, affinity, taints/tolerations",
                       "kube-scheduler PodScheduled=False → no Pod IP → " + W_SHOULD)
    prob = _container_problem(pod)
    if prob is not None:
        who, reason, evidence = prob
        cname = who.rsplit(" ", 1)[-1]
        hint = _CONTAINER_HINTS.get(reason, "`kubectl describe pod {pod}` and `kubectl logs {pod} -c {c}`")
        return Finding("ContainerNotRunning", Severity.ERROR, f"{who} is not running: {reason}", key, evidence,
                       hint.format(pod=name, c=cname), W_KUBELET_READY)
    unready = [cs for cs in pod.container_statuses if not cs.ready]
    probes = _probe_events(pod, events)
    if unready and all(cs.state == "running" for cs in unready) and probes:
        last = probes[-1]
        total = sum(e.count for e in probes)
        when = f", last {last.last_timestamp.isoformat().replace('+00:00', 'Z')}" if last.last_timestamp else ""
        return Finding("ReadinessProbeFailing", Severity.ERROR,
                       f"readiness probe failing ({total}x): {last.message}", key,
                       f"Event {last.reason} x{total}{when}: {last.message}; "
                       + "; ".join(f"container {cs.name} running, ready=false" for cs in unready),
                       "the app answers its readiness probe with failure: check the probe path/port and the app's "
                       f"dependencies (`kubectl logs {name}`)",
                       "kubelet prober (readiness) → ContainersReady=False → " + W_KUBELET_READY)
    if node is not None and not node.ready:
        return Finding("NodeNotReady", Severity.ERROR, f"node {node.meta.name} is not Ready, so the Pod is marked not ready",
                       key, _node_cond(node) + "; " + _cond(pod, "Ready"),
                       f"fix the node (`kubectl describe node {node.meta.name}`, kubelet, network); its Pods are "
                       "rescheduled after the eviction timeout",
                       "pkg/controller/nodelifecycle MarkPodsNotReady → " + W_TO_ENDPOINT)
    pending_gates = []
    for gate in pod.readiness_gates:
        c = pod.condition(gate)
        if c is None:
            pending_gates.append(f"readinessGate {gate}: condition missing")
        elif c.status != "True":
            pending_gates.append(f"readinessGate {gate}: {gate}={c.status}" + (f" ({c.reason})" if c.reason else "")
                                 + (f": {c.message}" if c.message else ""))
    if pending_gates and all(cs.ready for cs in pod.container_statuses):
        return Finding("ReadinessGatePending", Severity.ERROR, "readiness gate not satisfied: " + pending_gates[0].split(":")[0]
                       .removeprefix("readinessGate "), key, "; ".join(pending_gates),
                       "the controller that owns the gate (e.g. a load balancer controller) has not set its "
                       "condition True: check that controller", W_KUBELET_READY)
    evidence = _cond(pod, "Ready")
    if unready:
        evidence += "; " + "; ".join(_cs_evidence(cs, "container") + ", ready=false" for cs in unready)
        if any(c.has_readiness_probe for c in pod.containers):
            evidence += ("; no readiness-probe Event found (Events expire after about an hour)" if events_known
                         else "; no readiness-probe Event could be read")
    return Finding("NotReady", Severity.ERROR, "Pod is not Ready", key, evidence,
                   f"`kubectl describe pod {name}` for the kubelet's view", W_TO_ENDPOINT)


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insert, delete, substitute, and swap two neighbours (ngnix) cost 1."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


_ASCII_DIGITS = str.maketrans("", "", "0123456789")


@functools.lru_cache(maxsize=65536)
def _no_digits(s: str) -> str:
    """`s` without its digits (str.isdigit's); cached: `check -A` compares each selector value with the same
    few hundred Pod label values of its namespace, once per Service."""
    if s.isascii():
        return s.translate(_ASCII_DIGITS)
    return "".join(c for c in s if not c.isdigit())


def looks_like_typo(want: str, have: str) -> bool:
    """hostname/hostnames, Web/web, fronted/frontend; not v1/v2 or web-1/web-2 (versions, instances)."""
    a, b = want.lower(), have.lower()
    if a == b:
        return True
    if _no_digits(a) == _no_digits(b):
        return False
    longest = max(len(a), len(b))
    if longest < 4:
        return False
    return edit_distance(a, b) <= (1 if longest < 8 else 2)


def label_diff(selector: dict[str, str], labels: dict[str, str]) -> tuple[list[str], list[tuple[str, str, str]], int]:
    """(missing keys, (key, wanted, has) differing, number of keys that match)."""
    missing = [k for k in sorted(selector) if k not in labels]
    differing = [(k, selector[k], labels[k]) for k in sorted(selector) if k in labels and labels[k] != selector[k]]
    return missing, differing, len(selector) - len(missing) - len(differing)


# ------------------------------------------------------------------------------------------------ analysis




def analyze(g: Gathered) -> EndpointsReport:
    """Pure: the report for the gathered objects; findings worst first, Service-level before per-Pod."""
    rep = _analyze(g)
    rep.findings.sort(key=lambda f: (f.severity.rank, f.pod is not None))
    return rep


def _analyze(g: Gathered) -> EndpointsReport:
    svc = g.service
    rep = EndpointsReport(svc, why_not=g.why_not)
    rep.basis = g.basis
    rep.slices = list(g.slices)
    if g.basis == "":
        rep.basis_absent = next((w for c, _, w in g.absent if c == CHK_SLICES), "")
    absent = _relevant_absences(g)
    rep.skipped = list(dict.fromkeys([c for c, _, _ in g.skipped] + [c for c, _, _ in absent]))
    rep.notes = list(g.capped)
    rep.endpoints = slice_rows(g.slices)
    rep.ready, rep.not_ready = count_rows(rep.endpoints, service_ports(svc))
    F = rep.findings
    skipped_checks = {c for c, _, _ in g.skipped} | {c for c, _, _ in g.absent}
    if g.basis == "":
        skipped_checks.add(CHK_SLICES)
    elif g.basis != "EndpointSlices":
        skipped_checks.discard(CHK_SLICES)  # v1 Endpoints stand in: the comparison is made with them
    for check, why, sev in absent:
        F.append(Finding("CheckSkipped", sev, f"skipped: {check}: {why}", None, why,
                         "give an input that holds them (`kubectl get svc,endpointslices,endpoints,pods,nodes,"
                         "events -A -o yaml`) for the full answer", "input"))

    for check, resource, reason in _dedupe(g.skipped):
        sev = Severity.WARNING if check in CORE_CHECKS else Severity.INFO
        F.append(Finding("CheckSkipped", sev, f"check skipped: {check} (cannot read {resource})", None, reason,
                         "grant read access (deploy/rbac.yaml, ClusterRole svcctl-reader) for the full answer",
                         "RBAC"))

    if svc.type == "ExternalName":
        F.append(Finding("ExternalName", Severity.INFO, f"ExternalName Service: a DNS CNAME to {svc.external_name}, no "
                         "endpoints by design", None, f"spec.type=ExternalName, externalName={svc.external_name}",
                         "nothing to fix; to route to Pods use type ClusterIP with a selector", W_SYNC))
        return rep
    if PROXY_NAME_LABEL in svc.meta.labels:
        F.append(Finding("ProxyIgnored", Severity.INFO, "kube-proxy ignores this Service: it is handed to "
                         f"{svc.meta.labels[PROXY_NAME_LABEL]!r}", None,
                         f"label {PROXY_NAME_LABEL}={svc.meta.labels[PROXY_NAME_LABEL]}",
                         "intended for an alternative proxy; remove the label if kube-proxy should serve it",
                         "cmd/kube-proxy/app/server.go Service informer (service-proxy-name DoesNotExist)"))
    if g.endpoints is not None and g.endpoints.truncated:
        F.append(Finding("EndpointsTruncated", Severity.WARNING, "v1 Endpoints hold only the first 1000 addresses; "
                         "EndpointSlices are complete", None, f"Endpoints annotation {OVER_CAPACITY}=truncated",
                         "make consumers read EndpointSlices (v1 Endpoints is deprecated)",
                         "pkg/controller/endpoint/endpoints_controller.go (maxCapacity)"))

    if svc.selector is None:
        _selectorless(g, rep)
        return rep

    sel = svc.selector
    sel_text = selector_string(sel)
    ns = svc.meta.namespace
    by_pod: dict[str, list[EndpointRow]] = {}
    for r in rep.endpoints:
        if r.pod:
            by_pod.setdefault(r.pod, []).append(r)
    nodes_known = CHK_NODES not in skipped_checks
    rep.pods_known = CHK_PODS not in skipped_checks
    parsed = parse_selector(sel_text)
    pods = sorted((p for p in g.pods if p.meta.namespace == ns and labels_match(p.meta.labels, parsed)),
                  key=lambda p: p.meta.name)
    rep.expected = sum(1 for p in pods if p.phase not in ("Succeeded", "Failed"))

    # ---- per selected Pod
    types = address_types(svc)
    exps = {p.key: expected_endpoint(svc, p, g.nodes if nodes_known else {}, types) for p in pods}
    if topology_auto(svc):
        _auto_hints(svc, g, list(exps.values()))
    verdicts = rep.pods
    for p in pods:
        key = p.key
        exp = exps[key]
        rows = by_pod.get(key)
        if rows is None:
            rows, slice_ready, in_slices = [], None, []
        elif len(rows) == 1:  # the common case: one row, no set to sort (the same values)
            slice_ready, in_slices = bool(rows[0].ready), [rows[0].slice]
        else:
            slice_ready, in_slices = any(r.ready for r in rows), sorted({r.slice for r in rows})
        # positionally (keywords and the defaults' factories were ≈ 1 µs a Pod: 100,000 Pods in check -A)
        v = PodVerdict(key, SELECTED, READY, p.pod_ip, list(p.pod_ips), p.node_name, exp.in_slices, exp.ready,
                       exp.serving, exp.terminating, exp.addresses, exp.ports, exp.hostname, exp.zone, exp.hints,
                       bool(rows), slice_ready, in_slices, [])
        verdicts.append(v)
        if exp.in_slices and exp.ready and not exp.terminating and not exp.missing_ports:
            continue  # ready and published: _judge_pod finds nothing (the state is READY)
        _judge_pod(g, rep, v, p, exp, g.nodes.get(p.node_name) if nodes_known else None, rows)

    # ---- TargetPortUndeclared: numeric targetPort nobody declares
    live = [p for p in pods if p.phase not in ("Succeeded", "Failed")]
    if live:
        # a workload's replicas share their container lists (sources/pod_pages): each distinct pair read once
        distinct = {(id(p.containers), id(p.init_containers)): p for p in live}
        declared = {(cp.container_port, cp.protocol) for p in distinct.values() for c in _serving_containers(p)
                    for cp in c.ports}
        for sp in svc.ports:
            if isinstance(sp.target_port, int) and (sp.target_port, sp.protocol) not in declared:
                decl = ", ".join(f"{n}/{pr}" for n, pr in sorted(declared)) or "none"
                F.append(Finding("TargetPortUndeclared", Severity.WARNING,
                                 f"port {sp.label}: targetPort {sp.target_port}/{sp.protocol} is declared by no "
                                 "container of the selected Pods", None,
                                 f"targetPort {sp.target_port}; containerPorts declared: {decl}",
                                 "check the targetPort: traffic goes to that port whether or not anything listens "
                                 "there (declare it as a containerPort to make it visible)",
                                 "endpointslice/utils.go FindPort (a numeric targetPort is used as is)"))

    # ---- near misses and other namespaces
    if g.why_not:
        _near_misses(g, rep, pods)
        _elsewhere(g, rep, pods)

    # ---- Service-level: nothing selected
    if not pods and CHK_PODS not in skipped_checks:
        near_names = [v.pod for v in rep.pods if v.relation == NEAR_MISS]
        near_txt = ", ".join(near_names[:5]) + (f" and {len(near_names) - 5} more" if len(near_names) > 5 else "")
        F.append(Finding("NoMatchingPods", Severity.ERROR, f"selector {sel_text} matches no Pod in namespace {ns}", None,
                         f"spec.selector {sel_text}; 0 Pods in {ns} carry all of these labels"
                         + (f"; near misses: {near_txt}" if near_txt else "")
                         + (f"; {len(g.elsewhere)} matching Pod(s) in other namespaces" if g.elsewhere else ""),
                         "fix the Service's selector or the Pods' labels (see SelectorMismatch/OtherNamespace)"
                         if (near_names or g.elsewhere) else "create the workload, or fix the selector",
                         W_SYNC + " → podLister.Pods(ns).List(selector)"))

    # ---- slices vs Pods (not when the slices could not be read: every Pod would look missing)
    if CHK_SLICES not in skipped_checks:
        if CHK_PODS in skipped_checks:
            _slices_alone(g, rep)
        else:
            _compare_slices(g, rep, pods, by_pod)

    if pods and rep.ready == 0 and not any(v.expected_ready and v.expected_in_slices
                                                  for v in rep.pods if v.relation == SELECTED):
        F.append(Finding("NoReadyEndpoints", Severity.ERROR, f"no ready endpoint: all {len(pods)} selected Pod(s) are "
                         "excluded or not ready", None,
                         f"{rep.not_ready} not-ready endpoint(s) in the {_basis_word(g)}" if g.basis else
                         "no selected Pod is ready (the input has no EndpointSlices or Endpoints to confirm it)",
                         "see the per-Pod findings", W_RECONCILE))
    return rep


def _events_known(g: Gathered) -> bool:
    """Events refused by RBAC: the evidence says they could not be read (absent Events read as none found)."""
    return not any(c == CHK_EVENTS for c, _, _ in g.skipped)


def _auto_hints(svc: Service, g: Gathered, exps: list[Expected]) -> None:
    """topology-mode Auto works per address type: an endpoint gets no hints when its family's gate is closed;
    when the gate is open (or unknown) the allocation is not predicted (hints None)."""
    gates: dict[str, str | None] = {}
    for fam in address_types(svc):
        ready = [e for e in exps if e.in_slices and e.ready and any(ip_family(a) == fam for a in e.addresses)]
        gates[fam] = auto_hints_gate(g.all_nodes, ready) if g.all_nodes is not None else None
    for e in exps:
        fams = {ip_family(a) for a in e.addresses}
        closed = [gates.get(f or "") is not None for f in fams]
        e.hints = expected_hints(svc, e, "closed") if closed and all(closed) else expected_hints(svc, e, None)


def _dedupe(items: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return list(dict.fromkeys(items))


def _relevant_absences(g: Gathered) -> list[tuple[str, str, Severity]]:
    """(check, why, severity) for the kinds the input lacks that this Service's answer needed, each once.

    The comparison with the slices is the core of the answer (warning when it cannot be made at all, info
    when v1 Endpoints stood in); Pods are too; Nodes and Events only sharpen a reason (info)."""
    from svcctl.analysis.partial import V1

    why = {c: w for c, _, w in g.absent}
    out: list[tuple[str, str, Severity]] = []
    if CHK_SLICES in why:
        if g.basis == V1:
            out.append((CHK_SLICES, why[CHK_SLICES] + "; the v1 Endpoints were compared instead (the endpoints "
                        "controller leaves out terminating Pods and lists one IP family)", Severity.INFO))
        elif g.service.selector is not None:
            out.append((CHK_SLICES, why[CHK_SLICES] + (" and no v1 Endpoints" if CHK_V1 in why else "")
                        + ": which Pods are endpoints cannot be seen", Severity.WARNING))
    if CHK_V1 in why and g.service.selector is None and not g.slices:
        out.append((CHK_V1, why[CHK_V1] + ": hand-made endpoints cannot be seen", Severity.WARNING))
    if CHK_PODS in why:
        out.append((CHK_PODS, why[CHK_PODS] + ": no Pod-level reasons, no missing or stale endpoints", Severity.WARNING))
    if CHK_NODES in why:
        out.append((CHK_NODES, why[CHK_NODES], Severity.INFO))
    # Events: no entry. An input without Events is common (they expire after an hour) and no finding rests on
    # their absence: without one, a not-ready Pod is NotReady, never ReadinessProbeFailing.
    return out


EMPTY_NAME = '""'


def _judge_pod(g: Gathered, rep: EndpointsReport, v: PodVerdict, p: Pod, exp: Expected, node: Node | None,
               rows: list[EndpointRow]) -> None:
    svc = g.service
    F = rep.findings
    key = p.key

    def add(f: Finding) -> None:
        F.append(f)
        v.codes.append(f.code)

    if not exp.in_slices:
        v.state = EXCLUDED
        if exp.exclusion == "PodCompleted":
            add(Finding("PodCompleted", Severity.WARNING, f"Pod has finished (phase {p.phase}) and is never an endpoint", key,
                        f"status.phase={p.phase}" + (f" reason={p.status_reason}" if p.status_reason else "")
                        + (f": {p.status_message}" if p.status_message else ""),
                        f"a finished Pod is replaced by its controller; delete it (`kubectl delete pod {p.meta.name}`) "
                        "or find why it failed", W_SHOULD + " → isPodTerminal"))
        elif exp.exclusion == "NoPodIP":
            sched = p.condition("PodScheduled")
            if p.phase == "Pending" and sched is not None and sched.status == "False":
                add(explain_not_ready(p, node, g.events, _events_known(g)))
            else:
                add(Finding("NoPodIP", Severity.ERROR, "Pod has no IP yet, so it is in no slice", key,
                            f"status.podIP empty, phase={p.phase or 'unknown'}; " + _cond(p, "PodScheduled")
                            + (f"; node {p.node_name}" if p.node_name else ""),
                            f"the sandbox/network is not set up: `kubectl describe pod {p.meta.name}` (CNI errors)",
                            W_SHOULD + " (no podIP/podIPs)"))
        elif exp.exclusion == "NodeMissing":
            add(Finding("NodeMissing", Severity.ERROR, (f"Pod's node {p.node_name} does not exist in the API" if p.node_name
                        else "Pod has an IP but no spec.nodeName (the controller looks up Node \"\")")
                        + ": the controller skips the Pod", key,
                        f"spec.nodeName={p.node_name or '(empty)'}; GET node {p.node_name or EMPTY_NAME}: not found",
                        "the node was deleted; the Pod garbage collector removes such Pods (delete it, its controller "
                        "recreates it), or set publishNotReadyAddresses to publish it anyway",
                        W_RECONCILE + " → nodeLister.Get (\"skipping Pod for Service, Node not found\")"))
        elif exp.exclusion == "IPFamilyMismatch":
            add(Finding("IPFamilyMismatch", Severity.ERROR, "Pod has no IP of the Service's families "
                        + "/".join(address_types(svc)), key,
                        f"Pod IPs {', '.join(p.pod_ips) or p.pod_ip}; Service ipFamilies "
                        f"{', '.join(svc.ip_families) or '(from clusterIP)'}",
                        "make the Service dual-stack (ipFamilyPolicy PreferDualStack) or give the Pods an IP of "
                        "its family", W_ADDRS + "; " + W_RECONCILE + " (endpoints without addresses are dropped)"))
        if exp.exclusion not in ("PodCompleted", "NoPodIP"):
            _ports_findings(svc, rep, v, p, exp, add)
        return

    if exp.terminating:
        v.state = TERMINATING
        if not svc.publish_not_ready_addresses:
            add(Finding("Terminating", Severity.WARNING, "Pod is terminating: kept as serving="
                        f"{str(exp.serving).lower()}, terminating=true, but not ready", key,
                        f"metadata.deletionTimestamp={p.meta.deletion_timestamp.isoformat().replace('+00:00', 'Z') if p.meta.deletion_timestamp else '?'}; "
                        + _cond(p, "Ready"),
                        "expected during a rollout or scale-down; kube-proxy uses it only when no endpoint is ready",
                        "endpointslice/utils.go podToEndpoint (ready = publishNotReadyAddresses || (serving && "
                        "!terminating))"))
    elif not exp.ready:
        v.state = NOT_READY
        add(explain_not_ready(p, node, g.events, _events_known(g)))
    else:
        v.state = READY
    _ports_findings(svc, rep, v, p, exp, add)


def _ports_findings(svc: Service, rep: EndpointsReport, v: PodVerdict, p: Pod, exp: Expected,
                    add: Callable[[Finding], None]) -> None:
    for sp in exp.missing_ports:
        named = [f"{c.name}:{cp.name or '-'}={cp.container_port}/{cp.protocol}"
                 for c in _serving_containers(p) for cp in c.ports]
        same_name = [f"{cp.name}/{cp.protocol}" for c in _serving_containers(p) for cp in c.ports
                     if cp.name == sp.target_port]
        why = (f"a port named {sp.target_port!r} exists only as {', '.join(same_name)} (protocol must be "
               f"{sp.protocol})" if same_name else f"no container port is named {sp.target_port!r}")
        add(Finding("PortNotFound", Severity.ERROR, f"Service port {sp.label} → targetPort {sp.target_port!r}: {why}; the Pod "
                    "gets no endpoint for that port", v.pod,
                    f"targetPort {sp.target_port!r}/{sp.protocol}; container ports: {', '.join(named) or 'none'}",
                    f"name a containerPort {sp.target_port!r} with protocol {sp.protocol} (in a container or a "
                    "restartPolicy: Always init container), or fix the Service's targetPort", W_PORTS))


def _near_misses(g: Gathered, rep: EndpointsReport, pods: list[Pod]) -> None:
    sel = g.service.selector or {}
    others_: list[Service] | None = None  # the namespace's other selector Services, once a Pod gets this far
    for p in sorted(g.near, key=lambda x: x.meta.name):
        if p.phase in ("Succeeded", "Failed") or p.meta.namespace != g.service.meta.namespace:
            continue
        missing, differing, matched = label_diff(sel, p.meta.labels)
        if not missing and not differing:
            continue
        typos = [(k, w, h) for k, w, h in differing if looks_like_typo(w, h)]
        if matched == 0 and not typos:
            continue  # shares a key but no value: another workload, not a near miss
        if len(typos) < len(differing) and pods:
            # a value that is not a typo (track=canary, name=checkout) names another workload on purpose; only
            # when the Service selects nothing at all are such Pods the likely intended ones (version=v2 vs v1)
            continue
        if others_ is None:
            others_ = [s for s in g.services if s.selector and s.meta.name != g.service.meta.name]
        intended = [s.meta.name for s in others_
                    if labels_match(p.meta.labels, parse_selector(selector_string(s.selector or {})))]
        parts = [f"{k}={h} (Service wants {k}={w}" + (", looks like a typo)" if (k, w, h) in typos else ")")
                 for k, w, h in differing]
        parts += [f"{k} missing (Service wants {k}={sel[k]})" for k in missing]
        sev = Severity.INFO if intended else Severity.ERROR
        msg = "Pod almost matches the selector: " + "; ".join(parts)
        if intended:
            msg += f" (selected by Service {', '.join(intended)} instead)"
        hint_bits = [f"{k}={w}" for k, w, _ in differing] + [f"{k}={sel[k]}" for k in missing]
        f = Finding("SelectorMismatch", sev, msg, p.key,
                    "Pod labels " + ", ".join(f"{k}={vv}" for k, vv in sorted(p.meta.labels.items()))
                    + f"; selector {selector_string(sel)}",
                    f"label the Pod template {' '.join(hint_bits)}, or change the Service's selector"
                    if not intended else "nothing to do if this Pod belongs to the other Service",
                    W_SYNC + " → labels.Set(Spec.Selector).AsSelectorPreValidated()")
        rep.findings.append(f)
        rep.pods.append(PodVerdict(p.key, NEAR_MISS, NOT_SELECTED, p.pod_ip, list(p.pod_ips), p.node_name,
                                   codes=["SelectorMismatch"]))


def _elsewhere(g: Gathered, rep: EndpointsReport, pods: list[Pod]) -> None:
    ns = g.service.meta.namespace
    for p in sorted(g.elsewhere, key=lambda x: (x.meta.namespace, x.meta.name)):
        if p.meta.namespace == ns or p.phase in ("Succeeded", "Failed"):
            continue
        sev = Severity.INFO if pods else Severity.ERROR
        rep.findings.append(Finding(
            "OtherNamespace", sev, f"Pod matches the selector but lives in namespace {p.meta.namespace}, not {ns}",
            p.key, f"Pod {p.key} labels match {selector_string(g.service.selector or {})}; Service in {ns}",
            f"a Service selects Pods of its own namespace only: deploy the Pods to {ns}, or create the Service in "
            f"{p.meta.namespace}" if not pods else "another workload with the same labels; nothing to do if intended",
            W_SYNC + " → podLister.Pods(service.Namespace)"))
        rep.pods.append(PodVerdict(p.key, ELSEWHERE, NOT_SELECTED, p.pod_ip, list(p.pod_ips), p.node_name,
                                   codes=["OtherNamespace"]))


def _slices_alone(g: Gathered, rep: EndpointsReport) -> None:
    """Pods could not be read (RBAC): the slices are the only evidence. A not-ready endpoint is still a
    problem found, never a silent pass, and no endpoint is called stale for want of its Pod."""
    pods_why = ("the input has no Pods" if any(c == CHK_PODS for c, _, _ in g.absent)
                else "the Pod itself could not be read")
    for sl in g.slices:
        for ep in sl.endpoints:
            if ep.is_ready or not ep.addresses:
                continue
            pod = (f"{ep.target_namespace or sl.meta.namespace}/{ep.target_name}"
                   if ep.target_kind == "Pod" and ep.target_name else None)
            terminating = ep.is_terminating
            rep.findings.append(Finding(
                "Terminating" if terminating else "NotReady", Severity.WARNING if terminating else Severity.ERROR,
                f"endpoint {', '.join(ep.addresses)} is {'terminating' if terminating else 'not ready'} in slice "
                f"{sl.meta.name} ({pods_why})", pod,
                f"slice {sl.meta.name}: ready={str(ep.is_ready).lower()}, serving={str(ep.is_serving).lower()}, "
                f"terminating={str(terminating).lower()}",
                "grant get/list on pods (deploy/rbac.yaml) for the reason, or `kubectl describe pod`",
                W_RECONCILE))
    if count_rows(rep.endpoints)[0] == 0 and g.slices:  # of any port: the Pods' ports are unseen here
        rep.findings.append(Finding("NoReadyEndpoints", Severity.ERROR, "no ready endpoint in the Service's slices", None,
                                    f"{rep.not_ready} not-ready endpoint(s) in the slices", "see the per-Pod findings",
                                    W_RECONCILE))


def _sorted_set(xs: list[T]) -> list[T]:
    """`sorted(set(xs))`, without the set and the sort for none or one (most Pods: one IP, one port)."""
    return list(xs) if len(xs) < 2 else sorted(set(xs))  # type: ignore[type-var]


def _compare_slices(g: Gathered, rep: EndpointsReport, pods: list[Pod],
                    by_pod: dict[str, list[EndpointRow]] | None = None) -> None:
    """The slices as they are against what the controller should have written; `by_pod`: rep.endpoints by Pod,
    when the caller has them."""
    svc = g.service
    F = rep.findings
    verdicts = {v.pod: v for v in rep.pods if v.relation == SELECTED}
    near = {p.key for p in g.near}
    for sl in sorted(g.slices, key=lambda s: s.meta.name):
        if sl.managed_by != CONTROLLER_NAME:
            F.append(Finding("UnmanagedSlice", Severity.WARNING,
                             f"EndpointSlice {sl.meta.name} is not managed by the EndpointSlice controller; kube-proxy "
                             "still routes to its endpoints", None,
                             f"label endpointslice.kubernetes.io/managed-by={sl.managed_by or '(none)'}, "
                             f"{len(sl.endpoints)} endpoint(s): "
                             + ", ".join(ep.addresses[0] for ep in sl.endpoints[:5] if ep.addresses),
                             "delete the hand-made slice, or drop the Service's selector if endpoints are managed by hand",
                             W_SYNC + " (lists only managed-by=" + CONTROLLER_NAME + ")"))
            continue
        for ep in sl.endpoints:
            if ep.target_kind != "Pod" or not ep.target_name:
                continue
            key = f"{ep.target_namespace or sl.meta.namespace}/{ep.target_name}"
            if key not in verdicts:
                why = "its labels no longer match the selector" if key in near else "no such Pod matches the selector (deleted?)"
                F.append(Finding("StaleSliceEndpoint", Severity.WARNING,
                                 f"slice {sl.meta.name} lists {key} ({', '.join(ep.addresses)}) but {why}", key,
                                 f"endpoint {', '.join(ep.addresses)} ready={ep.is_ready} targetRef Pod {key}",
                                 "the controller should remove it on its next sync; if it stays, check "
                                 "kube-controller-manager's logs", W_RECONCILE))
    if by_pod is None:
        by_pod = {}
        for r in rep.endpoints:
            if r.pod:
                by_pod.setdefault(r.pod, []).append(r)
    from svcctl.analysis.partial import V1, v1_primary_family

    v1 = g.basis == V1
    truncated = v1 and g.endpoints is not None and g.endpoints.truncated
    for v in verdicts.values():
        rows = by_pod.get(v.pod, [])
        expected_in = v.expected_in_slices
        if v1:  # the endpoints controller: no Node lookup, terminating Pods left out, one family
            expected_in = (expected_in or "NodeMissing" in v.codes) and (
                not v.expected_terminating or svc.publish_not_ready_addresses)
            fam = v1_primary_family(svc)
            v.expected_addresses = [a for a in v.expected_addresses if ip_family(a) == fam][:1]
            if not v.expected_addresses and expected_in:
                expected_in = False
        if expected_in and v.expected_ready and not rows:
            if truncated:
                continue  # over 1000 addresses: the v1 Endpoints hold only a part
            # without the Nodes, NodeMissing (the controller skipping the Pod on purpose) cannot be ruled out
            nodes_unseen = bool(v.node) and not v1 and any(c == CHK_NODES for c, _, _ in (*g.absent, *g.skipped))
            v.codes.append("MissingFromSlices")
            F.append(Finding("MissingFromSlices", Severity.WARNING if nodes_unseen else Severity.ERROR,
                             ("Pod should be a ready endpoint but is in no slice" if not v1 else
                              "Pod should be a ready endpoint but is not in the v1 Endpoints")
                             + (f" (or its Node {v.node} is gone: the input has no Nodes to tell)"
                                if nodes_unseen else ""), v.pod,
                             f"Pod {v.ip} ready; {_basis_word(g)} of {svc.meta.name}: "
                             + (", ".join(sorted({s.meta.name for s in g.slices})) or "none"),
                             "the controller has not caught up (lag) or is failing: check kube-controller-manager's "
                             "logs and Events on the Service",
                             W_RECONCILE if not v1 else "pkg/controller/endpoint/endpoints_controller.go syncService"))
        elif rows and not expected_in:
            why = ", ".join(c for c in v.codes if c in ("PodCompleted", "NoPodIP", "NodeMissing", "IPFamilyMismatch",
                                                         *(("Terminating",) if v1 else ())))
            v.codes.append("SliceOutOfDate")
            F.append(Finding("SliceOutOfDate", Severity.WARNING, f"a slice still lists a Pod the controller excludes ({why})",
                             v.pod, f"slice {', '.join(sorted({r.slice for r in rows}))} lists "
                             f"{', '.join(sorted({a for r in rows for a in r.ips}))} ready="
                             f"{str(any(r.ready for r in rows)).lower()}",
                             "the controller should drop it on its next sync; if it stays, check "
                             "kube-controller-manager's logs", W_RECONCILE))
        elif rows and expected_in:
            if len(rows) == 1:
                got_ready, got_addrs, got_ports = bool(rows[0].ready), _sorted_set(rows[0].ips), \
                    _sorted_set(rows[0].ports)
            else:
                got_ready = any(r.ready for r in rows)
                got_addrs = sorted({a for r in rows for a in r.ips})
                got_ports = sorted({pt for r in rows for pt in r.ports})
            problems = []
            if got_ready != v.expected_ready:
                problems.append(f"slice ready={str(got_ready).lower()}, Pod says ready={str(v.expected_ready).lower()}")
            if v.expected_addresses and got_addrs != sorted(v.expected_addresses):
                problems.append(f"slice addresses {', '.join(got_addrs)}, Pod IPs {', '.join(v.expected_addresses)}")
            ports_differ = got_ports != _sorted_set(v.expected_ports)
            if ports_differ:
                problems.append(f"slice ports {_fmt_ports(got_ports)}, expected {_fmt_ports(v.expected_ports)}")
            if problems:
                # traffic misses a Pod that should get it (or goes to the wrong port): error; the reverse: warning
                sev = Severity.ERROR if v.expected_ready and (not got_ready or ports_differ) else Severity.WARNING
                v.codes.append("SliceOutOfDate")
                F.append(Finding("SliceOutOfDate", sev, "the slice disagrees with the Pod: " + "; ".join(problems),
                                 v.pod, "; ".join(problems) + f" (slice {', '.join(sorted({r.slice for r in rows}))})",
                                 "the controller has not caught up (lag) or is failing: check kube-controller-manager",
                                 W_RECONCILE))


def _basis_word(g: Gathered) -> str:
    return "slices" if g.basis == "EndpointSlices" else "v1 Endpoints"


def _fmt_ports(ports: list[PortTuple]) -> str:
    return ",".join(f"{n + '=' if n else ''}{p}/{pr}" for n, p, pr in ports) or "none"


def _selectorless(g: Gathered, rep: EndpointsReport) -> None:
    svc = g.service
    rep.expected = rep.ready + rep.not_ready
    hand = [f"{r.ip} ({'ready' if r.ready else 'not ready'}, slice {r.slice})" for r in rep.endpoints]
    if not hand and g.endpoints is not None:
        hand = [f"{a} (v1 Endpoints, ready)" for a in g.endpoints.ready_addresses]
        hand += [f"{a} (v1 Endpoints, not ready)" for a in g.endpoints.not_ready_addresses]
    if not hand and g.basis == "":
        rep.findings.append(Finding("NoSelector", Severity.INFO, "no selector: endpoints are managed by hand, and the "
                                    "input holds neither EndpointSlices nor v1 Endpoints to show them", None,
                                    "spec.selector unset", "", W_SYNC + " (Selector == nil → no slices)"))
        return
    sev = Severity.INFO if rep.ready else Severity.ERROR
    msg = ("no selector: endpoints are managed by hand" if hand else
           "no selector and no hand-made endpoints: the Service has nowhere to send traffic")
    rep.findings.append(Finding("NoSelector", sev, msg, None,
                                "spec.selector unset; hand-made endpoints: " + (", ".join(hand) or "none"),
                                "add a selector, or create an EndpointSlice labelled kubernetes.io/service-name="
                                f"{svc.meta.name}" if not rep.ready else "nothing to fix if the endpoints are right",
                                W_SYNC + " (Selector == nil → no slices)"))


__all__ = ["CODES", "EndpointRow", "EndpointsReport", "Gathered", "PodVerdict", "ServiceSummary", "analyze",
           "expected_endpoint", "find_port"]

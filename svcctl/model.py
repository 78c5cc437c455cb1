"""The typed model of the cluster objects svcctl reasons about.

Every source (live API, snapshot file, demo) yields the API's JSON shape; `from_dict` turns it into these
dataclasses once, so analysis code never digs through nested dicts and never imports the kubernetes client.
Only the fields the controllers' rules look at are kept; `raw` keeps the original for `collect` and `-o yaml`.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, NamedTuple

from svcctl.findings import Severity, check_finding
from svcctl.jsonput import JSON as JSON  # re-exported: the model's readers and writers name them from here
from svcctl.jsonput import put as put
from svcctl.lazydc import dataclass, field


def _d(obj: Any) -> JSON:
    """A mapping field: absent/null is empty; any other type is malformed input, never silently ignored."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise TypeError(f"expected a mapping, found {type(obj).__name__} {str(obj)[:40]!r}")
    return obj


def _l(obj: Any) -> list[Any]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise TypeError(f"expected a list, found {type(obj).__name__} {str(obj)[:40]!r}")
    return obj


def _s(obj: Any) -> str:
    return obj if isinstance(obj, str) else ("" if obj is None else str(obj))


def _time(obj: Any) -> _dt.datetime | None:
    if not isinstance(obj, str) or not obj:
        return None
    try:
        return _dt.datetime.fromisoformat(obj.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(slots=True)
class ObjectMeta:
    """Slotted: check -A holds 100,000 Pods' and 10,000s of other objects' (a dict per object was ≈ 100 bytes)."""

    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    uid: str = ""
    deletion_timestamp: _dt.datetime | None = None
    creation_timestamp: _dt.datetime | None = None
    owner_kinds: list[str] = field(default_factory=list)
    resource_version: str = ""
    _key: str | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: JSON) -> ObjectMeta:
        return cls(
            name=_s(d.get("name")),
            namespace=_s(d.get("namespace")),
            labels={str(k): _s(v) for k, v in _d(d.get("labels")).items()},
            annotations={str(k): _s(v) for k, v in _d(d.get("annotations")).items()},
            uid=_s(d.get("uid")),
            deletion_timestamp=_time(d.get("deletionTimestamp")),
            creation_timestamp=_time(d.get("creationTimestamp")),
            owner_kinds=[_s(_d(o).get("kind")) for o in _l(d.get("ownerReferences"))],
            resource_version=_s(d.get("resourceVersion")),
        )

    @property
    def key(self) -> str:
        """`ns/name`: built once (check -A asks it millions of times; a name never changes once read)."""
        k = self._key
        if k is None:
            k = self._key = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return k


# --------------------------------------------------------------------------- Service


@dataclass(slots=True)
class ServicePort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str = 0  # int, or a named port; 0 = same as port
    node_port: int | None = None
    app_protocol: str | None = None

    @classmethod
    def from_dict(cls, d: JSON) -> ServicePort:
        tp = d.get("targetPort")
        target: int | str
        if isinstance(tp, int):
            target = tp
        elif isinstance(tp, str) and tp.isdigit():
            target = int(tp)
        elif isinstance(tp, str) and tp:
            target = tp
        else:
            target = int(d.get("port") or 0)
        np = d.get("nodePort")
        return cls(
            port=int(d.get("port") or 0),
            protocol=_s(d.get("protocol")) or "TCP",
            name=_s(d.get("name")),
            target_port=target,
            node_port=int(np) if isinstance(np, int) and np else None,
            app_protocol=d.get("appProtocol"),
        )

    @property
    def label(self) -> str:
        return f"{self.name or self.port}/{self.protocol}"


@dataclass(slots=True)
class Service:
    meta: ObjectMeta
    type: str = "ClusterIP"
    selector: dict[str, str] | None = None
    cluster_ip: str = ""
    cluster_ips: list[str] = field(default_factory=list)
    ip_families: list[str] = field(default_factory=list)
    ports: list[ServicePort] = field(default_factory=list)
    publish_not_ready_addresses: bool = False
    session_affinity: str = "None"
    affinity_timeout: int | None = None
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    external_ips: list[str] = field(default_factory=list)
    load_balancer_ips: list[str] = field(default_factory=list)
    load_balancer_source_ranges: list[str] = field(default_factory=list)
    external_name: str = ""
    traffic_distribution: str | None = None
    health_check_node_port: int | None = None
    # status.loadBalancer.ingress[] with an ip: (ip, ipMode); ipMode "" when unset (kube-proxy treats it as VIP)
    load_balancer_ingress: list[tuple[str, str]] = field(default_factory=list)
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: JSON) -> Service:
        spec = _d(d.get("spec"))
        status = _d(d.get("status"))
        sel = spec.get("selector")
        selector = {str(k): _s(v) for k, v in sel.items()} if isinstance(sel, dict) and sel else None
        cip = _s(spec.get("clusterIP"))
        cips = [_s(x) for x in _l(spec.get("clusterIPs"))] or ([cip] if cip else [])
        aff = _d(_d(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        ingress = [(_s(_d(i).get("ip")), _s(_d(i).get("ipMode")))
                   for i in _l(_d(status.get("loadBalancer")).get("ingress")) if _d(i).get("ip")]
        lb_ips = [ip for ip, _ in ingress]
        hc = spec.get("healthCheckNodePort")
        return cls(
            meta=ObjectMeta.from_dict(_d(d.get("metadata"))),
            type=_s(spec.get("type")) or "ClusterIP",
            selector=selector,
            cluster_ip=cip,
            cluster_ips=cips,
            ip_families=[_s(x) for x in _l(spec.get("ipFamilies"))],
            ports=[ServicePort.from_dict(_d(p)) for p in _l(spec.get("ports"))],
            publish_not_ready_addresses=bool(spec.get("publishNotReadyAddresses")),
            session_affinity=_s(spec.get("sessionAffinity")) or "None",
            affinity_timeout=int(aff) if isinstance(aff, int) else (10800 if spec.get("sessionAffinity") == "ClientIP" else None),
            external_traffic_policy=_s(spec.get("externalTrafficPolicy")) or "Cluster",
            internal_traffic_policy=_s(spec.get("internalTrafficPolicy")) or "Cluster",
            external_ips=[_s(x) for x in _l(spec.get("externalIPs"))],
            load_balancer_ips=lb_ips,
            load_balancer_source_ranges=[_s(x) for x in _l(spec.get("loadBalancerSourceRanges"))],
            external_name=_s(spec.get("externalName")),
            traffic_distribution=spec.get("trafficDistribution"),
            health_check_node_port=hc if isinstance(hc, int) and hc else None,
            load_balancer_ingress=ingress,
            raw=d,
        )

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    @property
    def key(self) -> str:
        return self.meta.key


# --------------------------------------------------------------------------- Pod


@dataclass(slots=True)
class ContainerPort:
    container_port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(slots=True)
class Container:
    name: str
    ports: list[ContainerPort] = field(default_factory=list)
    restart_policy: str | None = None  # "Always" on an init container = sidecar
    has_readiness_probe: bool = False

    @classmethod
    def from_dict(cls, d: JSON) -> Container:
        return cls(
            name=_s(d.get("name")),
            ports=[
                ContainerPort(int(_d(p).get("containerPort") or 0), _s(_d(p).get("protocol")) or "TCP",
                              _s(_d(p).get("name")))
                for p in _l(d.get("ports"))
            ],
            restart_policy=d.get("restartPolicy"),
            has_readiness_probe=bool(d.get("readinessProbe")),
        )


@dataclass(slots=True)
class ContainerStatus:
    name: str
    ready: bool = False
    started: bool | None = None
    restart_count: int = 0
    state: str = "unknown"  # waiting | running | terminated | unknown
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    last_terminated_reason: str = ""

    @classmethod
    def from_dict(cls, d: JSON) -> ContainerStatus:
        st = _d(d.get("state"))
        state, reason, message, exit_code = "unknown", "", "", None
        for k in ("waiting", "running", "terminated"):
            if k in st and st[k] is not None:
                state = k
                reason = _s(_d(st[k]).get("reason"))
                message = _s(_d(st[k]).get("message"))
                ec = _d(st[k]).get("exitCode")
                exit_code = ec if isinstance(ec, int) else None
                break
        last = _d(_d(d.get("lastState")).get("terminated"))
        return cls(
            name=_s(d.get("name")),
            ready=bool(d.get("ready")),
            started=d.get("started"),
            restart_count=int(d.get("restartCount") or 0),
            state=state,
            reason=reason,
            message=message,
            exit_code=exit_code,
            last_terminated_reason=_s(last.get("reason")),
        )


@dataclass(slots=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition: _dt.datetime | None = None

    @classmethod
    def from_dict(cls, d: JSON) -> Condition:
        return cls(_s(d.get("type")), _s(d.get("status")), _s(d.get("reason")), _s(d.get("message")),
                   _time(d.get("lastTransitionTime")))


class PodRef(NamedTuple):
    """One Pod named, whatever names it: a kube-proxy or agent Pod to exec in (with its container; None: the
    Pod's default), `--from-pod NS/POD`, an `ns/name` key. A tuple, so `ns, name, container = ref` reads it."""

    namespace: str
    name: str
    container: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str, default_namespace: str) -> PodRef:
        """`NS/POD` or `POD` (in `default_namespace`)."""
        ns, _, name = text.rpartition("/")
        return cls(ns or default_namespace, name)

    @classmethod
    def of(cls, pod: Pod, container: str | None = None, default_namespace: str = "default") -> PodRef:
        return cls(pod.meta.namespace or default_namespace, pod.meta.name, container)


@dataclass(slots=True)
class Pod:
    meta: ObjectMeta
    node_name: str = ""
    phase: str = ""
    pod_ip: str = ""
    pod_ips: list[str] = field(default_factory=list)
    host_ip: str = ""
    host_network: bool = False
    hostname: str = ""
    subdomain: str = ""
    containers: list[Container] = field(default_factory=list)
    init_containers: list[Container] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    container_statuses: list[ContainerStatus] = field(default_factory=list)
    init_container_statuses: list[ContainerStatus] = field(default_factory=list)
    readiness_gates: list[str] = field(default_factory=list)
    status_reason: str = ""
    status_message: str = ""
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: JSON) -> Pod:
        spec = _d(d.get("spec"))
        status = _d(d.get("status"))
        pip = _s(status.get("podIP"))
        pips = [_s(_d(x).get("ip")) for x in _l(status.get("podIPs")) if _d(x).get("ip")] or ([pip] if pip else [])
        return cls(
            meta=ObjectMeta.from_dict(_d(d.get("metadata"))),
            node_name=_s(spec.get("nodeName")),
            phase=_s(status.get("phase")),
            pod_ip=pip,
            pod_ips=pips,
            host_ip=_s(status.get("hostIP")),
            host_network=bool(spec.get("hostNetwork")),
            hostname=_s(spec.get("hostname")),
            subdomain=_s(spec.get("subdomain")),
            containers=[Container.from_dict(_d(c)) for c in _l(spec.get("containers"))],
            init_containers=[Container.from_dict(_d(c)) for c in _l(spec.get("initContainers"))],
            conditions=[Condition.from_dict(_d(c)) for c in _l(status.get("conditions"))],
            container_statuses=[ContainerStatus.from_dict(_d(c)) for c in _l(status.get("containerStatuses"))],
            init_container_statuses=[ContainerStatus.from_dict(_d(c))
                                     for c in _l(status.get("initContainerStatuses"))],
            readiness_gates=[_s(_d(g).get("conditionType")) for g in _l(spec.get("readinessGates"))],
            status_reason=_s(status.get("reason")),
            status_message=_s(status.get("message")),
            raw=d,
        )

    def condition(self, type_: str) -> Condition | None:
        for c in self.conditions:
            if c.type == type_:
                return c
        return None

    @property
    def ready(self) -> bool:
        c = self.condition("Ready")
        return c is not None and c.status == "True"

    @property
    def terminating(self) -> bool:
        return self.meta.deletion_timestamp is not None

    @property
    def key(self) -> str:
        return self.meta.key


# --------------------------------------------------------------------------- EndpointSlice / Endpoints


@dataclass(slots=True)
class SliceEndpoint:
    addresses: list[str]
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None
    node_name: str = ""
    hostname: str = ""
    zone: str = ""
    target_kind: str = ""
    target_name: str = ""
    target_namespace: str = ""
    zone_hints: list[str] = field(default_factory=list)  # hints.forZones[].name
    node_hints: list[str] = field(default_factory=list)  # hints.forNodes[].name

    @classmethod
    def from_dict(cls, d: JSON) -> SliceEndpoint:
        cond = _d(d.get("conditions"))
        tr = _d(d.get("targetRef"))
        hints = _d(d.get("hints"))
        return cls(
            addresses=[_s(a) for a in _l(d.get("addresses"))],
            ready=cond.get("ready"),
            serving=cond.get("serving"),
            terminating=cond.get("terminating"),
            node_name=_s(d.get("nodeName")),
            hostname=_s(d.get("hostname")),
            zone=_s(d.get("zone")),
            target_kind=_s(tr.get("kind")),
            target_name=_s(tr.get("name")),
            target_namespace=_s(tr.get("namespace")),
            zone_hints=[_s(_d(z).get("name")) for z in _l(hints.get("forZones")) if _d(z).get("name")],
            node_hints=[_s(_d(n).get("name")) for n in _l(hints.get("forNodes")) if _d(n).get("name")],
        )

    # kube-proxy treats a missing condition as true (endpointslicecache.go).
    @property
    def is_ready(self) -> bool:
        return self.ready is not False

    @property
    def is_serving(self) -> bool:
        return self.serving is not False if self.serving is not None else self.is_ready

    @property
    def is_terminating(self) -> bool:
        return bool(self.terminating)


@dataclass(slots=True)
class SlicePort:
    name: str = ""
    port: int | None = None
    protocol: str = "TCP"


@dataclass(slots=True)
class EndpointSlice:
    meta: ObjectMeta
    address_type: str = "IPv4"
    endpoints: list[SliceEndpoint] = field(default_factory=list)
    ports: list[SlicePort] = field(default_factory=list)
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: JSON) -> EndpointSlice:
        return cls(
            meta=ObjectMeta.from_dict(_d(d.get("metadata"))),
            address_type=_s(d.get("addressType")) or "IPv4",
            endpoints=[SliceEndpoint.from_dict(_d(e)) for e in _l(d.get("endpoints"))],
            ports=[
                SlicePort(_s(_d(p).get("name")), _opt_int(_d(p).get("port")), _s(_d(p).get("protocol")) or "TCP")
                for p in _l(d.get("ports"))
            ],
            raw=d,
        )

    @property
    def service_name(self) -> str:
        return self.meta.labels.get("kubernetes.io/service-name", "")

    @property
    def managed_by(self) -> str:
        return self.meta.labels.get("endpointslice.kubernetes.io/managed-by", "")


@dataclass(slots=True)
class Endpoints:
    """Legacy v1 Endpoints: read only for the over-capacity annotation and hand-made endpoints."""

    meta: ObjectMeta
    ready_addresses: list[str] = field(default_factory=list)
    not_ready_addresses: list[str] = field(default_factory=list)
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: JSON) -> Endpoints:
        ready: list[str] = []
        not_ready: list[str] = []
        for sub in _l(d.get("subsets")):
            ready += [_s(_d(a).get("ip")) for a in _l(_d(sub).get("addresses"))]
            not_ready += [_s(_d(a).get("ip")) for a in _l(_d(sub).get("notReadyAddresses"))]
        return cls(ObjectMeta.from_dict(_d(d.get("metadata"))), ready, not_ready, d)

    @property
    def truncated(self) -> bool:
        return self.meta.annotations.get("endpoints.kubernetes.io/over-capacity") == "truncated"


# --------------------------------------------------------------------------- Node / Event


@dataclass
class Node:
    meta: ObjectMeta
    addresses: dict[str, list[str]] = field(default_factory=dict)  # type -> addresses
    conditions: list[Condition] = field(default_factory=list)
    pod_cidrs: list[str] = field(default_factory=list)
    unschedulable: bool = False
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: JSON) -> Node:
        spec = _d(d.get("spec"))
        status = _d(d.get("status"))
        addrs: dict[str, list[str]] = {}
        for a in _l(status.get("addresses")):
            addrs.setdefault(_s(_d(a).get("type")), []).append(_s(_d(a).get("address")))
        cidrs = [_s(x) for x in _l(spec.get("podCIDRs"))] or ([_s(spec["podCIDR"])] if spec.get("podCIDR") else [])
        return cls(
            meta=ObjectMeta.from_dict(_d(d.get("metadata"))),
            addresses=addrs,
            conditions=[Condition.from_dict(_d(c)) for c in _l(status.get("conditions"))],
            pod_cidrs=cidrs,
            unschedulable=bool(spec.get("unschedulable")),
            raw=d,
        )

    @property
    def ready(self) -> bool:
        for c in self.conditions:
            if c.type == "Ready":
                return c.status == "True"
        return False

    @property
    def internal_ips(self) -> list[str]:
        return self.addresses.get("InternalIP", [])

    @property
    def zone(self) -> str:
        return self.meta.labels.get("topology.kubernetes.io/zone", "")


@dataclass(slots=True)
class Event:
    meta: ObjectMeta
    involved_kind: str = ""
    involved_name: str = ""
    involved_namespace: str = ""
    reason: str = ""
    message: str = ""
    type: str = "Normal"
    count: int = 1
    last_timestamp: _dt.datetime | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: JSON) -> Event:
        inv = _d(d.get("involvedObject") or d.get("regarding"))
        ts = (_time(d.get("lastTimestamp")) or _time(d.get("eventTime"))
              or _time(_d(d.get("series")).get("lastObservedTime")) or _time(d.get("firstTimestamp"))
              or _time(_d(d.get("metadata")).get("creationTimestamp")))
        return cls(
            meta=ObjectMeta.from_dict(_d(d.get("metadata"))),
            involved_kind=_s(inv.get("kind")),
            involved_name=_s(inv.get("name")),
            involved_namespace=_s(inv.get("namespace")),
            reason=_s(d.get("reason")),
            message=_s(d.get("message") or d.get("note")),
            type=_s(d.get("type")) or "Normal",
            count=int(d.get("count") or 1),
            last_timestamp=ts,
            raw=d,
        )


# --------------------------------------------------------------------------- findings


SEVERITIES = tuple(s.value for s in Severity)


@dataclass
class Finding:
    """One explained problem. `code` is stable and documented; `evidence` is what proves it."""

    code: str  # registered in svcctl.findings.FINDINGS
    severity: Severity
    message: str
    pod: str | None = None  # "ns/name"
    evidence: str = ""
    hint: str = ""
    where: str = ""  # which controller rule / source file decides it

    def __post_init__(self) -> None:
        if type(self.severity) is not Severity:  # the enum's own call costs ≈ 0.5 µs, for every finding made
            self.severity = Severity(self.severity)  # a str from JSON or an old caller becomes the enum
        check_finding(self.code, self.severity)

    def to_json(self) -> JSON:
        out: JSON = {"code": self.code, "severity": self.severity.value, "pod": self.pod, "message": self.message,
                     "evidence": self.evidence, "hint": self.hint}
        if self.where:
            out["where"] = self.where
        return out


def _opt_int(v: Any) -> int | None:
    """An optional integer field; garbage raises ValueError/TypeError, which readers turn into input errors."""
    return None if v is None else int(v)

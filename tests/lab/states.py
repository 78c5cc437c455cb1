"""A seeded generator of cluster states for the endpoint-model agreement test.

Each state is one namespace holding one Service and the Pods around it, drawn so that together the states
cover every rule svcctl's why-not model knows: phases, podIPs per family, Ready/ContainersReady, readiness gates,
terminating Pods (a finalizer keeps them), named and numeric targetPorts with protocols, sidecar init containers,
hostNetwork, publishNotReadyAddresses, a Pod on a Node that does not exist, ipFamilies/dual-stack, nil and empty
selectors, ExternalName, >100 endpoints (slice splitting), trafficDistribution and the topology-mode annotation
with zoned Nodes. The objects are plain API JSON; `ControlPlane.apply` writes them, status included.

Addresses: Pods 198.18.64.0/18 and 2001:db8:64::/64; hostNetwork Pods carry their Node's address.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Nodes the session creates once: two zones, one Node without a zone; "ghost" is never created.
NODES = {"lab-a1": ("zone-a", "198.18.10.1", "2001:db8:10::1"),
         "lab-a2": ("zone-a", "198.18.10.2", "2001:db8:10::2"),
         "lab-b1": ("zone-b", "198.18.10.3", "2001:db8:10::3"),
         "lab-nozone": (None, "198.18.10.4", "2001:db8:10::4")}
GHOST_NODE = "lab-ghost"
GATE = "svcctl.test/gate"
FINALIZER = "svcctl.test/hold"


def node_objects() -> list[JSON]:
    out = []
    for name, (zone, ip4, ip6) in NODES.items():
        labels = {"kubernetes.io/hostname": name}
        if zone:
            labels["topology.kubernetes.io/zone"] = zone
        out.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                    "status": {"addresses": [{"type": "InternalIP", "address": ip4},
                                             {"type": "InternalIP", "address": ip6},
                                             {"type": "Hostname", "address": name}],
                               "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                               "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                               "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                               "lastHeartbeatTime": "2026-12-01T00:00:00Z",
                                               "lastTransitionTime": "2026-12-01T00:00:00Z"}]}})
    return out


@dataclass
class State:
    """One namespace's worth of objects, and what was drawn (for the failure message)."""

    index: int
    namespace: str
    service: JSON
    pods: list[JSON] = field(default_factory=list)
    terminating: list[str] = field(default_factory=list)  # Pods to delete after creation (kept by a finalizer)
    traits: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.service["metadata"]["name"])

    def objects(self) -> list[JSON]:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        return [ns, self.service, *self.pods]


_PROTOCOLS = ("TCP", "TCP", "TCP", "UDP", "SCTP")
_PORT_NAMES = ("http", "metrics", "dns", "grpc")


def generate(seed: int, index: int) -> State:
    """State number `index` of the run seeded with `seed`: the same pair gives the same state."""
    rng = random.Random(seed * 1_000_003 + index)
    ns = f"lab-s{seed}-{index}"
    traits: list[str] = []
    svc_name = "svc"
    app = rng.choice(["web", "api", "db"])

    # ------------------------------------------------------------------ the Service
    kind = rng.choices(["cluster", "headless", "external", "nil-selector", "empty-selector"],
                       weights=[70, 12, 4, 5, 4])[0]
    traits.append(kind)
    spec: JSON = {}
    if kind == "external":
        spec = {"type": "ExternalName", "externalName": "example.invalid"}
    else:
        if kind == "headless":
            spec["clusterIP"] = "None"
        fam = rng.choices(["v4", "v6", "dual", "dual6"], weights=[55, 12, 25, 8])[0]
        traits.append(f"svc-{fam}")
        if fam == "v4":
            spec.update(ipFamilyPolicy="SingleStack", ipFamilies=["IPv4"])
        elif fam == "v6":
            spec.update(ipFamilyPolicy="SingleStack", ipFamilies=["IPv6"])
        elif fam == "dual":
            spec.update(ipFamilyPolicy="RequireDualStack", ipFamilies=["IPv4", "IPv6"])
        else:
            spec.update(ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv6", "IPv4"])
        if kind == "nil-selector":
            pass
        elif kind == "empty-selector":
            spec["selector"] = {}
        else:
            spec["selector"] = {"app": app} if rng.random() < 0.7 else {"app": app, "tier": "be"}
        nports = rng.choices([0, 1, 2, 3], weights=[3 if kind == "headless" else 0, 60, 28, 9])[0]
        ports = []
        used: set[tuple[int, str]] = set()
        for i in range(nports):
            proto = rng.choice(_PROTOCOLS)
            port = rng.choice([80, 443, 53, 8080, 9000 + i])
            while (port, proto) in used:
                port += 1
            used.add((port, proto))
            p: JSON = {"port": port, "protocol": proto}
            if nports > 1 or rng.random() < 0.3:
                p["name"] = _PORT_NAMES[i]
            if rng.random() < 0.35:
                p["targetPort"] = rng.choice(_PORT_NAMES[:3])
                traits.append("named-targetPort")
            elif rng.random() < 0.8:
                p["targetPort"] = rng.choice([8080, 9376, 5353])
            ports.append(p)
        if ports:
            spec["ports"] = ports
        if rng.random() < 0.15:
            spec["publishNotReadyAddresses"] = True
            traits.append("publishNotReady")
        if kind == "cluster" and rng.random() < 0.25:
            spec["trafficDistribution"] = rng.choice(["PreferClose", "PreferSameZone", "PreferSameNode"])
            traits.append(f"td-{spec['trafficDistribution']}")
    annotations: JSON = {}
    if kind == "cluster" and "trafficDistribution" not in spec and rng.random() < 0.06:
        annotations["service.kubernetes.io/topology-mode"] = "Auto"
        traits.append("topology-auto")
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": svc_name, "namespace": ns, **({"annotations": annotations} if annotations else {})},
               "spec": spec}
    state = State(index, ns, service, traits=traits)
    if kind == "external":
        return state

    # ------------------------------------------------------------------ the Pods
    npods = rng.choices([0, 1, 3, 6, 9, 104], weights=[4, 20, 35, 25, 12, 2])[0]
    if npods > 100:
        traits.append("slice-split")
    for i in range(npods):
        state.pods.append(_pod(rng, ns, f"p{i}", app, i, state))
    return state


def _pod(rng: random.Random, ns: str, name: str, app: str, i: int, state: State) -> JSON:
    labels = {"app": app}
    r = rng.random()
    if r < 0.12:
        labels = {"app": app + "x"}  # a near miss
    elif r < 0.5:
        labels["tier"] = "be"
    host_network = rng.random() < 0.05
    node = rng.choices([*NODES, GHOST_NODE, ""], weights=[25, 25, 25, 10, 6, 4])[0]
    if host_network and not node:
        node = "lab-a1"
    phase = rng.choices(["Running", "Pending", "Succeeded", "Failed"], weights=[82, 8, 5, 5])[0]
    fam = rng.choices(["v4", "v6", "dual", "none"], weights=[50, 12, 30, 8])[0]
    ip4 = f"198.18.{64 + (state.index % 60)}.{10 + i % 240}"
    ip6 = f"2001:db8:64::{state.index:x}:{i:x}"
    if host_network and node in NODES:
        ip4, ip6 = NODES[node][1], NODES[node][2]
    ips = {"v4": [ip4], "v6": [ip6], "dual": [ip4, ip6], "none": []}[fam]
    if phase == "Pending" and not node:
        ips = []
    ready = phase == "Running" and rng.random() < 0.7
    containers_ready = ready or (phase == "Running" and rng.random() < 0.3)
    gates = []
    conditions: list[JSON] = []
    if rng.random() < 0.1:
        gates = [{"conditionType": GATE}]
        gate_ok = rng.random() < 0.5
        conditions.append({"type": GATE, "status": "True" if gate_ok else "False"})
        if not gate_ok:
            ready = False
        state.traits.append("readiness-gate")
    conditions += [
        {"type": "PodScheduled", "status": "True" if node else "False"},
        {"type": "ContainersReady", "status": "True" if containers_ready else "False"},
        {"type": "Ready", "status": "True" if ready else "False"},
    ]

    def cports() -> list[JSON]:
        out = []
        for pname in rng.sample(_PORT_NAMES[:3], rng.randint(0, 3)):
            out.append({"name": pname, "containerPort": rng.choice([8080, 9376, 5353, 7000]),
                        "protocol": rng.choice(_PROTOCOLS)})
        return out

    spec: JSON = {"containers": [{"name": "app", "image": "registry.invalid/app:1", "ports": cports()}]}
    if rng.random() < 0.15:
        spec["initContainers"] = [{"name": "sidecar", "image": "registry.invalid/side:1",
                                   "restartPolicy": "Always", "ports": cports()}]
        state.traits.append("sidecar")
    if rng.random() < 0.05:
        spec.setdefault("initContainers", []).append({"name": "init", "image": "registry.invalid/init:1",
                                                      "ports": cports()})
    if gates:
        spec["readinessGates"] = gates
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
        seen: set[tuple[int, str]] = set()
        for c in spec["containers"] + spec.get("initContainers", []):
            kept = []
            for p in c["ports"]:
                if (p["containerPort"], p["protocol"]) not in seen:  # hostPorts must be unique per Pod
                    seen.add((p["containerPort"], p["protocol"]))
                    kept.append({**p, "hostPort": p["containerPort"]})
            c["ports"] = kept
        state.traits.append("hostNetwork")
    if rng.random() < 0.1:
        spec["hostname"] = name
        spec["subdomain"] = rng.choice(["svc", "other"])
    meta: JSON = {"name": name, "namespace": ns, "labels": labels}
    if rng.random() < 0.1 and phase == "Running":
        meta["finalizers"] = [FINALIZER]
        state.terminating.append(name)
        state.traits.append("terminating")
    status: JSON = {"phase": phase, "conditions": conditions}
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    if node in NODES:
        status["hostIP"] = NODES[node][1]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def probed_service(ns: str, name: str, target_port: int, subnet: str,
                   nodes: tuple[str, str, str] = ("lab-a1", "lab-a1", "lab-a1")) -> list[JSON]:
    """A Namespace and a Service whose three Pods have readiness probes, the third failing (not ready, with the
    kubelet's Unhealthy Event): the one-Service answer the live tests and the live benchmark ask about."""
    out: list[JSON] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                       {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                        "spec": {"selector": {"app": name},
                                 "ports": [{"port": 80, "targetPort": target_port, "protocol": "TCP"}]}}]
    for i, (node, ready) in enumerate(zip(nodes, (True, True, False), strict=True)):
        st = "True" if ready else "False"
        out.append({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"{name}-{i}", "namespace": ns, "labels": {"app": name}},
                    "spec": {"nodeName": node, "containers": [{
                        "name": name, "image": f"registry.invalid/{name}:1",
                        "ports": [{"containerPort": target_port}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": target_port}}}]},
                    "status": {"phase": "Running", "podIP": f"{subnet}.{10 + i}",
                               "podIPs": [{"ip": f"{subnet}.{10 + i}"}],
                               "conditions": [{"type": "Ready", "status": st},
                                              {"type": "ContainersReady", "status": st}],
                               "containerStatuses": [{"name": name, "ready": ready, "restartCount": 0,
                                                      "image": f"{name}:1", "imageID": "",
                                                      "state": {"running": {"startedAt": "2026-12-01T00:00:00Z"}}}]}})
    out.append({"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{name}-2.unhealthy", "namespace": ns},
                "involvedObject": {"kind": "Pod", "namespace": ns, "name": f"{name}-2", "apiVersion": "v1"},
                "reason": "Unhealthy", "type": "Warning", "count": 12,
                "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
                "firstTimestamp": "2026-12-01T00:00:00Z", "lastTimestamp": "2026-12-01T00:10:00Z",
                "source": {"component": "kubelet", "host": nodes[2]}})
    return out

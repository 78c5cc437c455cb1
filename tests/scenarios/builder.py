"""Compact builders for the endpoints scenarios: API-shaped dicts, as `kubectl get -o yaml` writes them.

Each scenario is a kubectl `kind: List`. The slices are written the way a healthy EndpointSlice controller
would write them for the Pods given (scenarios about drift pass explicit endpoints instead).
`python tests/scenarios/builder.py` (re)writes every scenario of tests/analysis/test_endpoints.py as
tests/scenarios/<name>.yaml; each file says in its header how to run it and which codes svcctl must name.
"""

from __future__ import annotations

import ipaddress
import zlib
from typing import Any

JSON = dict[str, Any]
T0 = "2026-11-20T09:00:00Z"
CONTROLLER = "endpointslice-controller.k8s.io"


def service(name: str, selector: dict[str, str] | None = None, *, ns: str = "default",
            ports: list[tuple[str, int, int | str, str]] | None = None, cluster_ip: str = "10.96.0.50",
            type_: str = "ClusterIP", families: list[str] | None = None, pnra: bool = False,
            labels: dict[str, str] | None = None, external_name: str | None = None) -> JSON:
    """ports: (name, port, targetPort, protocol)."""
    ports = ports if ports is not None else [("http", 80, 8080, "TCP")]
    spec: JSON = {"type": type_, "ports": [{"name": n, "port": p, "targetPort": t, "protocol": pr}
                                           for n, p, t, pr in ports]}
    if type_ == "ExternalName":
        spec = {"type": type_, "externalName": external_name or "example.com"}
    else:
        spec["clusterIP"] = cluster_ip
        spec["clusterIPs"] = [cluster_ip]
        spec["ipFamilies"] = families or (["IPv6"] if ":" in cluster_ip else ["IPv4"])
    if selector is not None:
        spec["selector"] = selector
    if pnra:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-svc-{ns}-{name}", "labels": labels or {},
                         "creationTimestamp": T0},
            "spec": spec}


def container(name: str = "app", ports: list[tuple[str, int, str]] | None = None, *, ready: bool = True,
              state: JSON | None = None, restart: str | None = None, probe: bool = True,
              restarts: int = 0) -> tuple[JSON, JSON]:
    """(spec, status) of one container; ports: (name, containerPort, protocol)."""
    spec: JSON = {"name": name, "image": f"registry.example/{name}:1"}
    if ports:
        spec["ports"] = [{"containerPort": p, "protocol": pr, **({"name": n} if n else {})} for n, p, pr in ports]
    if probe:
        spec["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": ports[0][1] if ports else 8080}}
    if restart:
        spec["restartPolicy"] = restart
    st: JSON = {"name": name, "ready": ready, "restartCount": restarts,
                "state": state or {"running": {"startedAt": T0}}, "image": spec["image"]}
    return spec, st


def pod(name: str, labels: dict[str, str], *, ns: str = "default", ip: str | list[str] | None = "10.244.1.10",
        node: str = "node-a", ready: bool = True, phase: str = "Running",
        containers: list[tuple[JSON, JSON]] | None = None, init: list[tuple[JSON, JSON]] | None = None,
        conditions: list[JSON] | None = None, gates: list[str] | None = None, deleting: bool = False,
        host_network: bool = False, reason: str | None = None, message: str | None = None,
        hostname: str | None = None, subdomain: str | None = None) -> JSON:
    containers = containers if containers is not None else [container(ports=[("http", 8080, "TCP")], ready=ready)]
    ips = [ip] if isinstance(ip, str) else (ip or [])
    conds = conditions if conditions is not None else [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": "True" if all(s["ready"] for _, s in containers) else "False"},
        {"type": "Ready", "status": "True" if ready else "False",
         **({} if ready else {"reason": "ContainersNotReady"})},
    ]
    meta: JSON = {"name": name, "namespace": ns, "uid": f"uid-pod-{ns}-{name}", "labels": labels,
                  "creationTimestamp": T0}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-20T09:30:00Z"
    spec: JSON = {"containers": [c for c, _ in containers]}
    if node:
        spec["nodeName"] = node
    if init:
        spec["initContainers"] = [c for c, _ in init]
    if gates:
        spec["readinessGates"] = [{"conditionType": g} for g in gates]
    if host_network:
        spec["hostNetwork"] = True
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    status: JSON = {"phase": phase, "conditions": conds, "containerStatuses": [s for _, s in containers]}
    if init:
        status["initContainerStatuses"] = [s for _, s in init]
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": i} for i in ips]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(name: str = "node-a", *, ip: str = "172.18.0.3", ready: str = "True", zone: str | None = "zone-a",
         reason: str = "KubeletReady", message: str = "kubelet is posting ready status") -> JSON:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **({"topology.kubernetes.io/zone": zone} if zone else {})}},
            "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}]}}


def _ready(p: JSON) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))


def endpoint(p: JSON, *, ready: bool | None = None, serving: bool | None = None,
             terminating: bool | None = None, family: str = "IPv4") -> JSON:
    ips = [x["ip"] for x in p["status"].get("podIPs", [])
           if (ipaddress.ip_address(x["ip"]).version == 6) == (family == "IPv6")]
    srv = _ready(p) if serving is None else serving
    term = ("deletionTimestamp" in p["metadata"]) if terminating is None else terminating
    rdy = (srv and not term) if ready is None else ready
    ep: JSON = {"addresses": ips, "conditions": {"ready": rdy, "serving": srv, "terminating": term},
                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"],
                              "uid": p["metadata"]["uid"]}}
    if p["spec"].get("nodeName"):
        ep["nodeName"] = p["spec"]["nodeName"]
    return ep


def endpoint_slice(svc: JSON, endpoints: list[JSON], *, name: str | None = None,
                   ports: list[tuple[str, int, str]] | None = None, managed_by: str = CONTROLLER,
                   family: str = "IPv4") -> JSON:
    """ports: (name, port, protocol); default: each Service port's numeric targetPort."""
    if ports is None:
        ports = [(p["name"], p["targetPort"], p["protocol"]) for p in svc["spec"].get("ports", [])
                 if isinstance(p["targetPort"], int)]
    meta = svc["metadata"]
    labels = {"kubernetes.io/service-name": meta["name"]}
    if managed_by:
        labels["endpointslice.kubernetes.io/managed-by"] = managed_by
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{meta['name']}-abcde", "namespace": meta["namespace"], "labels": labels,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                              "uid": meta["uid"], "controller": True}]},
            "addressType": family, "endpoints": endpoints,
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]}


def controller_slice(svc: JSON, pods: list[JSON], **kw: Any) -> JSON:
    """The slice a healthy controller writes for these Pods (those with an IP, not finished)."""
    family = kw.get("family", "IPv4")
    eps = [endpoint(p, family=family) for p in pods
           if p["status"].get("podIPs") and p["status"]["phase"] not in ("Succeeded", "Failed")]
    if svc["spec"].get("publishNotReadyAddresses"):
        for e in eps:
            e["conditions"]["ready"] = True
    return endpoint_slice(svc, [e for e in eps if e["addresses"]], **kw)


def event(p: JSON, reason: str, message: str, *, count: int = 1, last: str = "2026-11-20T09:14:42Z",
          type_: str = "Warning") -> JSON:
    m = p["metadata"]
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{m['name']}.{zlib.crc32((reason + message).encode()):08x}", "namespace": m["namespace"],
                         "creationTimestamp": T0},
            "involvedObject": {"kind": "Pod", "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                               "apiVersion": "v1"},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": T0, "lastTimestamp": last}


def v1_endpoints(svc: JSON, ready: list[str], *, annotations: dict[str, str] | None = None) -> JSON:
    meta = svc["metadata"]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "annotations": annotations or {}},
            "subsets": [{"addresses": [{"ip": i} for i in ready],
                         "ports": [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]}
                                   for p in svc["spec"].get("ports", []) if isinstance(p["targetPort"], int)]}]}


def namespace(name: str, labels: dict[str, str] | None = None) -> JSON:
    """A Namespace with the label the API server sets on every one (`kubernetes.io/metadata.name`)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}}}


def network_policy(ns: str, name: str, spec: JSON) -> JSON:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def as_list(objects: list[JSON]) -> JSON:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objects}


def render_scenario(name: str, service_key: str, expect: list[str], objects: list[JSON]) -> str:
    """The YAML file of one scenario, with a header saying how to run it and what svcctl must answer."""
    import yaml

    head = (f"# Scenario {name} (generated by tests/scenarios/builder.py from tests/analysis/test_endpoints.py; do not edit)\n"
            f"# svcctl endpoints {service_key} --why-not --snapshot tests/scenarios/{name}.yaml\n"
            f"# expect: {', '.join(expect) or 'no findings'}\n")
    return head + str(yaml.safe_dump(as_list(objects), sort_keys=False, width=120))


if __name__ == "__main__":  # pragma: no cover - regenerates the scenario files
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(here))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "analysis"))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "support"))
    from test_endpoints import SCENARIOS, scenario_text

    out = sys.argv[1] if len(sys.argv) > 1 else here
    for sc in SCENARIOS:
        with open(os.path.join(out, f"{sc.name}.yaml"), "w") as fh:
            fh.write(scenario_text(sc))
    print(f"wrote {len(SCENARIOS)} scenarios to {out}")

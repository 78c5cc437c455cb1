"""Generate a big cluster in memory: N Services × M Pods, one EndpointSlice and Endpoints per Service, Nodes,
and a few Events — the API's JSON shape, ready for FakeAPIServer(copy=False).

Every cluster contains the same `hostnames` Service in `default` (M Pods, the last one not ready, with a
readiness-probe Event), so questions about it can be compared across cluster sizes.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from typing import Any

JSON = dict[str, Any]
TS = "2026-11-20T09:00:00Z"


def _service(ns: str, name: str, ip: str) -> JSON:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "uid": f"svc-{ns}-{name}", "creationTimestamp": TS,
                     "labels": {"app": name}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "selector": {"app": name}, "sessionAffinity": "None",
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9376}]},
        "status": {"loadBalancer": {}},
    }


def _pod(ns: str, app: str, name: str, ip: str, node: str, ready: bool) -> JSON:
    cond = "True" if ready else "False"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"pod-{ns}-{name}", "creationTimestamp": TS,
                     "labels": {"app": app, "pod-template-hash": "632524106"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-632524106",
                                          "uid": f"rs-{ns}-{app}", "controller": True}]},
        "spec": {"nodeName": node, "restartPolicy": "Always",
                 "containers": [{"name": app, "image": "registry.k8s.io/serve_hostname",
                                 "ports": [{"containerPort": 9376, "protocol": "TCP"}],
                                 "readinessProbe": {"tcpSocket": {"port": 9376}, "periodSeconds": 5}}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "172.18.0.3",
                   "conditions": [{"type": "Ready", "status": cond, "lastTransitionTime": TS},
                                  {"type": "ContainersReady", "status": cond, "lastTransitionTime": TS},
                                  {"type": "PodScheduled", "status": "True", "lastTransitionTime": TS}],
                   "containerStatuses": [{"name": app, "ready": ready, "restartCount": 0, "image": "serve_hostname",
                                          "imageID": "", "started": True,
                                          "state": {"running": {"startedAt": TS}}}]},
    }


def _slice(ns: str, svc: str, pods: list[JSON]) -> JSON:
    eps = []
    for p in pods:
        ready = p["status"]["conditions"][0]["status"] == "True"
        eps.append({"addresses": [p["status"]["podIP"]],
                    "conditions": {"ready": ready, "serving": ready, "terminating": False},
                    "nodeName": p["spec"]["nodeName"],
                    "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
                                  "uid": p["metadata"]["uid"]}})
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": f"{svc}-abcde", "namespace": ns, "creationTimestamp": TS,
                     "labels": {"kubernetes.io/service-name": svc,
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc, "uid": f"svc-{ns}-{svc}",
                                          "controller": True}]},
        "endpoints": eps,
        "ports": [{"name": "http", "port": 9376, "protocol": "TCP"}],
    }


def _endpoints(ns: str, svc: str, pods: list[JSON]) -> JSON:
    ready = [p for p in pods if p["status"]["conditions"][0]["status"] == "True"]
    not_ready = [p for p in pods if p["status"]["conditions"][0]["status"] != "True"]

    def addr(p: JSON) -> JSON:
        return {"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],
                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns}}

    subset: JSON = {"ports": [{"name": "http", "port": 9376, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [addr(p) for p in ready]
    if not_ready:
        subset["notReadyAddresses"] = [addr(p) for p in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": svc, "namespace": ns, "creationTimestamp": TS}, "subsets": [subset]}


def _node(i: int) -> JSON:
    name = f"node-{i:04d}"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                              "topology.kubernetes.io/zone": f"zone-{i % 3}"}},
        "spec": {"podCIDR": f"10.{64 + i // 256}.{i % 256}.0/24", "podCIDRs": [f"10.{64 + i // 256}.{i % 256}.0/24"]},
        "status": {"addresses": [{"type": "InternalIP", "address": f"172.18.{i // 256}.{i % 256}"},
                                 {"type": "Hostname", "address": name}],
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }


def _event(ns: str, pod: str, i: int) -> JSON:
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{pod}.{i:016x}", "namespace": ns, "creationTimestamp": TS},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns, "apiVersion": "v1"},
        "reason": "Unhealthy", "message": "Readiness probe failed: dial tcp: connect: connection refused",
        "type": "Warning", "count": 12, "firstTimestamp": TS, "lastTimestamp": TS,
        "source": {"component": "kubelet", "host": "node-0000"},
    }


def gen_cluster(services: int, pods_per_service: int = 10, nodes: int = 100, namespaces: int = 10,
                crowd: str | None = None) -> list[JSON]:
    """Objects of a cluster with `services` Services (the first is default/hostnames) × `pods_per_service` Pods.

    `crowd`: put every other Service in this namespace instead of `team-*` (all their Pods carry `app`)."""
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of small dicts: the cyclic collector would rescan them over and over
    try:
        return _gen(services, pods_per_service, nodes, namespaces, crowd)
    finally:
        if gc_was_on:
            gc.enable()


def _gen(services: int, pods_per_service: int, nodes: int, namespaces: int, crowd: str | None) -> list[JSON]:
    out: list[JSON] = [_node(i) for i in range(nodes)]
    pod_n = 0
    for s in range(services):
        if s == 0:
            ns, name = "default", "hostnames"
        else:
            ns, name = crowd or f"team-{s % namespaces:03d}", f"svc-{s:05d}"
        out.append(_service(ns, name, f"10.{96 + s // 65536}.{(s // 256) % 256}.{s % 256}"))
        pods = []
        for j in range(pods_per_service):
            ip = f"10.{128 + pod_n // 65536}.{(pod_n // 256) % 256}.{pod_n % 256}"
            pods.append(_pod(ns, name, f"{name}-632524106-{j:05d}", ip, f"node-{pod_n % nodes:04d}",
                             ready=j != pods_per_service - 1))
            pod_n += 1
        out += pods
        out.append(_slice(ns, name, pods))
        out.append(_endpoints(ns, name, pods))
        out.append(_event(ns, pods[-1]["metadata"]["name"], s))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a generated cluster as one kind: List JSON document.")
    ap.add_argument("--services", type=int, default=3)
    ap.add_argument("--pods-per-service", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=100)
    a = ap.parse_args(argv)
    json.dump({"apiVersion": "v1", "kind": "List", "items": gen_cluster(a.services, a.pods_per_service, a.nodes)},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A node run by the real kube-proxy: the cluster objects for a `tests/support/netns.py` Lab, and a catalogue of Service
shapes with what each way in must do.

The Lab's four Pod namespaces are the node's Pods (pod0, pod1 ready; pod2 not ready; pod3 ready but terminating);
a fifth Pod lives on a second Node in another zone (its address routes nowhere: it is only ever the endpoint
kube-proxy must *not* use from this node). The client namespace `cl0` is outside the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
NODE_IP = "198.18.1.1"  # the lab node's bridge address: its InternalIP, so NodePorts listen there
NODE_IP6 = "2001:db8:1::1"
FAR_POD_IP = "198.18.3.10"
LB_IP = "198.18.200.10"
EXT_IP = "198.18.201.10"
LB_IP2 = "198.18.200.11"


@dataclass
class Shape:
    """One Service, the ways in to send packets through, and the Pods each must reach ("refused"/"timeout"
    for REJECT/DROP)."""

    name: str
    spec: JSON
    status: JSON = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # (way, address or None for the ClusterIP, port or None for the Service port, client or None for the node,
    #  expected answers)
    probes: list[tuple[str, str | None, int | None, str | None, frozenset[str]]] = field(default_factory=list)
    # the backends (pod names) svcctl must show for each entry kind, and whether the entry rejects/drops
    entries: dict[str, frozenset[str]] = field(default_factory=dict)


def _port(port: int = 80, target: int | str = 8080, proto: str = "TCP", name: str | None = None) -> JSON:
    p: JSON = {"port": port, "targetPort": target, "protocol": proto}
    if name:
        p["name"] = name
    return p


WEB = frozenset({"pod0", "pod1"})
S = frozenset


def shapes() -> list[Shape]:
    return [
        Shape("web", {"selector": {"app": "web"}, "ports": [_port()]},
              probes=[("ClusterIP", None, None, None, WEB), ("ClusterIP", None, None, "cl0", WEB)],
              entries={"ClusterIP": WEB}),
        Shape("np", {"type": "NodePort", "selector": {"app": "web"}, "ports": [_port()]},
              probes=[("NodePort", NODE_IP, None, "cl0", WEB), ("ClusterIP", None, None, None, WEB)],
              entries={"ClusterIP": WEB, "NodePort": WEB}),
        Shape("lb", {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [_port()],
                     "loadBalancerSourceRanges": ["198.18.2.0/24"]},
              status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}},
              probes=[("LoadBalancer", LB_IP, None, "cl0", WEB)],
              entries={"ClusterIP": WEB, "LoadBalancer": WEB}),
        Shape("ext", {"selector": {"app": "web"}, "ports": [_port()], "externalIPs": [EXT_IP]},
              probes=[("ExternalIP", EXT_IP, None, "cl0", WEB)],
              entries={"ClusterIP": WEB, "ExternalIP": WEB}),
        Shape("none", {"selector": {"app": "nothing"}, "ports": [_port()]},
              probes=[("ClusterIP", None, None, None, S({"refused"}))], entries={"ClusterIP": S()}),
        Shape("term", {"selector": {"app": "term"}, "ports": [_port()]},
              probes=[("ClusterIP", None, None, None, S({"pod3"}))], entries={"ClusterIP": S({"pod3"})}),
        Shape("lb-local-remote", {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                                  "selector": {"app": "far"}, "ports": [_port()]},
              status={"loadBalancer": {"ingress": [{"ip": LB_IP2}]}},
              probes=[("LoadBalancer", LB_IP2, None, "cl0", S({"dropped"})),
                      ("HealthCheck", NODE_IP, None, "cl0", S({"503"}))],
              entries={"ClusterIP": S({"far"}), "LoadBalancer": S()}),
        Shape("etp-local", {"type": "NodePort", "externalTrafficPolicy": "Local", "selector": {"app": "web"},
                            "ports": [_port()]},
              probes=[("NodePort", NODE_IP, None, "cl0", WEB)], entries={"ClusterIP": WEB, "NodePort": WEB}),
        Shape("etp-remote", {"type": "NodePort", "externalTrafficPolicy": "Local", "selector": {"app": "far"},
                             "ports": [_port()]},
              probes=[("NodePort", NODE_IP, None, "cl0", S({"dropped"}))],
              entries={"ClusterIP": S({"far"}), "NodePort": S()}),
        Shape("itp-local", {"internalTrafficPolicy": "Local", "selector": {"app": "far"}, "ports": [_port()]},
              probes=[("ClusterIP", None, None, None, S({"dropped"}))], entries={"ClusterIP": S()}),
        Shape("affinity", {"sessionAffinity": "ClientIP", "selector": {"app": "web"}, "ports": [_port()]},
              probes=[("ClusterIP", None, None, "cl0", WEB)], entries={"ClusterIP": WEB}),
        Shape("udp", {"selector": {"app": "web"}, "ports": [_port(53, 8080, "UDP", "dns"),
                                                           _port(53, 8080, "TCP", "dns-tcp")]},
              probes=[("ClusterIP", None, None, None, WEB), ("ClusterIP", None, None, "cl0", WEB)],
              entries={"ClusterIP": WEB}),
        Shape("sctp", {"selector": {"app": "web"}, "ports": [_port(9000, 8080, "SCTP")]},
              entries={"ClusterIP": WEB}),
        Shape("dual", {"selector": {"app": "web"}, "ports": [_port()], "ipFamilyPolicy": "RequireDualStack",
                       "ipFamilies": ["IPv4", "IPv6"]},
              probes=[("ClusterIP", None, None, None, WEB), ("ClusterIP", "@v6", None, None, WEB)],
              entries={"ClusterIP": WEB}),
        Shape("multi", {"selector": {"app": "web"}, "ports": [_port(80, "http", name="http"),
                                                             _port(81, 8080, name="alt")]},
              probes=[("ClusterIP", None, 80, None, WEB), ("ClusterIP", None, 81, None, WEB)],
              entries={"ClusterIP": WEB}),
        Shape("hinted", {"selector": {"hinted": "yes"}, "ports": [_port()], "trafficDistribution": "PreferClose"},
              probes=[("ClusterIP", None, None, None, S({"pod0"}))], entries={"ClusterIP": S({"pod0"})}),
    ]


def cluster_objects(ns: str, node: str, far_node: str, pods: list[tuple[str, str, str | None]],
                    port: int) -> list[JSON]:
    """Namespace, the two Nodes, and the Pods (`pods`: (name, ip, ip6) of the lab's Pod namespaces, pod0..pod3)."""
    out: list[JSON] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    for name, zone, ips in ((node, "zone-a", [NODE_IP, NODE_IP6]), (far_node, "zone-b", ["198.18.3.1"])):
        out.append({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                          "topology.kubernetes.io/zone": zone}},
                    "status": {"addresses": [{"type": "InternalIP", "address": ip} for ip in ips],
                               "allocatable": {"cpu": "2"},
                               "conditions": [{"type": "Ready", "status": "True"}]}})
    labels = {"pod0": {"app": "web", "hinted": "yes"}, "pod1": {"app": "web"}, "pod2": {"app": "web"},
              "pod3": {"app": "term"}}
    for name, ip, ip6 in [*pods, ("far", FAR_POD_IP, None)]:
        ready = name != "pod2"
        on = far_node if name == "far" else node
        lab = labels.get(name, {"app": "far", "hinted": "yes"})
        meta: JSON = {"name": name, "namespace": ns, "labels": lab}
        if name == "pod3":
            meta["finalizers"] = ["svcctl.test/hold"]
        out.append({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": on, "containers": [{"name": "web", "image": "registry.invalid/web:1",
                                                     "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": a} for a in (ip, ip6) if a],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                      {"type": "ContainersReady", "status": "True" if ready else "False"}]}})
    return out


def service_object(ns: str, shape: Shape) -> JSON:
    meta: JSON = {"name": shape.name, "namespace": ns}
    if shape.annotations:
        meta["annotations"] = shape.annotations
    obj: JSON = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": shape.spec}
    if shape.status:
        obj["status"] = shape.status
    return obj

"""Answers from partial input: v1 Endpoints standing in for absent EndpointSlices, and what each absence skips.

When a snapshot has no EndpointSlices (a `kubectl cluster-info dump` never has them) but has v1 Endpoints, the
Endpoints are what the cluster published. They come from another controller (pkg/controller/endpoint), which
differs from the EndpointSlice controller in ways the comparison must respect:
- terminating Pods are left out entirely unless publishNotReadyAddresses (slices keep them serving/terminating);
- one address per Pod, of the Service's first IP family (slices carry each family in its own slice);
- no Node lookup: a Pod whose Node is gone is still listed (the slice controller skips it);
- at most 1000 addresses (annotation endpoints.kubernetes.io/over-capacity=truncated);
- no serving/terminating conditions: an address is ready or not ready.
"""

from __future__ import annotations

from typing import Any

from svcctl.model import JSON, Endpoints, EndpointSlice, Service

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
V1 = "v1 Endpoints"


def _family(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def slices_from_endpoints(ep: Endpoints, service: Service) -> list[EndpointSlice]:
    """The v1 Endpoints as slice-shaped objects (one per subset and family), so kube-proxy's view, the counts
    and the comparison with Pods read one shape. Marked managed by the slice controller: they stand in for its
    output, they are not hand-made slices."""
    out: list[EndpointSlice] = []
    subsets: list[Any] = ep.raw.get("subsets") or [] if isinstance(ep.raw, dict) else []
    for i, sub in enumerate(subsets if isinstance(subsets, list) else []):
        if not isinstance(sub, dict):
            continue
        ports = [{"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP"}
                 for p in (sub.get("ports") or []) if isinstance(p, dict)]
        by_family: dict[str, list[JSON]] = {}
        for field_name, ready in (("addresses", True), ("notReadyAddresses", False)):
            for a in sub.get(field_name) or []:
                if not isinstance(a, dict) or not isinstance(a.get("ip"), str):
                    continue
                ref = a.get("targetRef") if isinstance(a.get("targetRef"), dict) else {}
                e: JSON = {"addresses": [a["ip"]],
                           "conditions": {"ready": ready, "serving": ready, "terminating": False}}
                if a.get("nodeName"):
                    e["nodeName"] = a["nodeName"]
                if a.get("hostname"):
                    e["hostname"] = a["hostname"]
                if ref:
                    e["targetRef"] = {"kind": ref.get("kind", ""), "name": ref.get("name", ""),
                                      "namespace": ref.get("namespace", "")}
                by_family.setdefault(_family(a["ip"]), []).append(e)
        for fam, eps in sorted(by_family.items()):
            out.append(EndpointSlice.from_dict({
                "kind": "EndpointSlice",
                "metadata": {"name": f"{ep.meta.name} (v1 Endpoints subset {i + 1})",
                             "namespace": ep.meta.namespace or service.meta.namespace,
                             "labels": {"kubernetes.io/service-name": service.meta.name,
                                        "endpointslice.kubernetes.io/managed-by": CONTROLLER_NAME}},
                "addressType": fam, "endpoints": eps, "ports": ports}))
    return out


def v1_primary_family(service: Service) -> str:
    """podToEndpointAddressForService: the Service's first IP family, else its ClusterIP's, else IPv4."""
    if service.ip_families:
        return service.ip_families[0]
    if service.cluster_ip and service.cluster_ip != "None":
        return _family(service.cluster_ip)
    return "IPv4"

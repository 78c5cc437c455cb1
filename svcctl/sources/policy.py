"""The reads the policy hop needs, and nothing more: one NetworkPolicy list per namespace involved (the
backends' for Ingress, the client's for Egress), those Namespaces' labels, the backend Pods (one list by the
Service's selector), the client Pod and its Node, the cluster DNS Pods when the client's Egress is judged, and
the AdminNetworkPolicy tiers when the cluster serves them. No cluster-wide NetworkPolicy read for one Service.
"""

from __future__ import annotations

from svcctl.errors import ClusterError, NotFoundError
from svcctl.lazydc import dataclass, field
from svcctl.model import JSON, Pod, PodRef, Service
from svcctl.sources.base import ClusterSource, selector_string
from svcctl.sources.prefetch import pod_json

DNS_NAMESPACE, DNS_SERVICE = "kube-system", "kube-dns"


@dataclass
class PolicyInputs:
    policies: dict[str, list[JSON] | None] = field(default_factory=dict)  # namespace -> items; None = unreadable
    namespaces: dict[str, JSON | None] = field(default_factory=dict)
    backends: dict[str, JSON] = field(default_factory=dict)  # "ns/name" -> Pod JSON
    client: JSON | None = None  # the --from-pod Pod
    client_ref: str | None = None
    client_ip: str | None = None  # --from IP
    node: str | None = None  # the node the client is on (or the chosen node)
    node_ips: list[str] = field(default_factory=list)  # that node's InternalIPs
    dns_pods: list[JSON] = field(default_factory=list)
    dns_ips: list[str] = field(default_factory=list)
    dns_service: Service | None = None  # kube-system/kube-dns: its ports give the DNS Pods' targetPorts
    admin_read: bool = False
    admin: tuple[list[JSON], list[JSON]] | None = None
    unreadable: str = ""  # why the NetworkPolicies could not be had (absent from a snapshot, refused)
    notes: list[str] = field(default_factory=list)


def gather_client_inputs(source: ClusterSource, from_pod: str, default_ns: str) -> PolicyInputs:
    """What the client's Egress to the cluster DNS needs, read before the DNS hop runs: the client Pod, its
    namespace's NetworkPolicies and labels, the kube-dns Service (its ports and selector) and its Pods, and the
    admin tiers. `gather_policy_inputs(pre=...)` reuses all of it: nothing is read twice."""
    inp = PolicyInputs()
    client = PodRef.parse(from_pod, default_ns)
    inp.client_ref = client.key
    inp.client = _raw(source.get_pod(client.namespace, client.name))
    if inp.client is not None:
        inp.node = str((inp.client.get("spec") or {}).get("nodeName") or "") or None
    inp.policies[client.namespace] = source.list_network_policies(client.namespace)
    inp.namespaces[client.namespace] = source.get_namespace(client.namespace)
    if inp.client is not None:
        try:
            dns = source.get_service(DNS_NAMESPACE, DNS_SERVICE)
        except (NotFoundError, ClusterError):  # no kube-dns Service (or unreadable): judged without its Pods
            dns = None
        if dns is not None:
            inp.dns_service = dns
            inp.dns_ips = [ip for ip in dns.cluster_ips if ip and ip != "None"]
            if dns.selector:
                inp.dns_pods = [pod_json(p) for p in source.list_pods(DNS_NAMESPACE, selector_string(dns.selector))]
                inp.namespaces.setdefault(DNS_NAMESPACE, source.get_namespace(DNS_NAMESPACE))
    inp.admin = source.list_admin_network_policies()
    inp.admin_read = True
    _set_unreadable(source, inp)
    return inp


def gather_policy_inputs(source: ClusterSource, service: Service, pod_keys: list[str], *, from_pod: str | None,
                         from_ip: str | None, node: str | None, default_ns: str,
                         pre: PolicyInputs | None = None) -> PolicyInputs:
    """Everything the policy hop reads; `pre` (gather_client_inputs' answer, when the DNS hop needed it first)
    is reused as is."""
    if pre is not None and from_pod:
        inp = pre
        inp.client_ip = from_ip
        inp.node = inp.node or node
    else:
        inp = PolicyInputs(client_ip=from_ip, node=node)
    ns = service.meta.namespace
    namespaces = [ns]
    if from_pod and pre is None:
        client = PodRef.parse(from_pod, default_ns)
        inp.client_ref = client.key
        inp.client = _raw(source.get_pod(client.namespace, client.name))
        if inp.client is not None:
            inp.node = str((inp.client.get("spec") or {}).get("nodeName") or "") or node
        namespaces.append(client.namespace)
    for n in dict.fromkeys(namespaces):
        if n not in inp.policies:
            inp.policies[n] = source.list_network_policies(n)
        if n not in inp.namespaces:
            inp.namespaces[n] = source.get_namespace(n)
    wanted = set(pod_keys)
    if service.selector and wanted:
        for p in source.list_pods(ns, selector_string(service.selector)):
            if p.key in wanted:
                inp.backends[p.key] = pod_json(p)
    for key in sorted(wanted - set(inp.backends)):
        ref = PodRef.parse(key, ns)
        raw = _raw(source.get_pod(ref.namespace, ref.name))
        if raw is not None:
            inp.backends[key] = raw
    if inp.node:
        got = source.get_nodes([inp.node]).get(inp.node)
        if got is not None:
            inp.node_ips = got.internal_ips
    if not inp.admin_read:
        inp.admin = source.list_admin_network_policies()
        inp.admin_read = True
    _set_unreadable(source, inp)
    return inp


def _set_unreadable(source: ClusterSource, inp: PolicyInputs) -> None:
    if any(v is None for v in inp.policies.values()):
        refused = next((s.reason for s in source.skipped if s.resource == "networkpolicies"), None)
        inp.unreadable = (f"cannot read networkpolicies: {refused}" if refused is not None else
                          "the snapshot has no NetworkPolicies (made without them: `svcctl collect` includes "
                          "them, `kubectl get` needs `networkpolicies,namespaces`)" if _is_snapshot(source) else
                          "the cluster serves no NetworkPolicies")


def _is_snapshot(source: ClusterSource) -> bool:
    return source.name.startswith("snapshot")


def _raw(pod: Pod | None) -> JSON | None:
    """The Pod's API JSON (the policy evaluation reads labels and IPs from it); None without a Pod."""
    return pod.raw if pod is not None else None

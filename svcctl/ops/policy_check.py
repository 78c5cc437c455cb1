"""`svcctl check`'s policy check, wired: per Service, which namespaces' Pods can reach it (Ingress of its
backends), and with --from-pod the whole connection from that one client. Reads are cached across Services:
one NetworkPolicy list and one Namespace GET per namespace, the admin tiers once. With `shared` (check -A from
lists read once), each namespace's parsed policy world and its reachability answers are kept across Services too:
a connection is judged once per (client namespace, backend class), not once per Pod per Service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcctl.analysis.policy import (
    PolicyInputError,
    PolicyReport,
    PolicyWorld,
    ReachMemo,
    client_endpoint,
    make_world,
    needs_namespace_labels,
    policy_hop,
    reachability,
)
from svcctl.analysis.trace import proxy_view
from svcctl.errors import InputError
from svcctl.model import JSON, Finding, PodRef, Service
from svcctl.sources.base import ClusterSource
from svcctl.sources.prefetch import pod_json

if TYPE_CHECKING:
    from svcctl.analysis.endpoints import Gathered


class PolicyChecker:
    def __init__(self, source: ClusterSource, from_pod: str | None, default_ns: str, shared: bool = False) -> None:
        self.source = source
        self.shared = shared
        self._worlds: dict[tuple[object, ...], tuple[PolicyWorld, ReachMemo]] = {}
        self.from_pod = from_pod
        self.default_ns = default_ns
        self._policies: dict[str, list[JSON] | None] = {}
        self._namespaces: dict[str, JSON | None] = {}
        self._admin: tuple[list[JSON], list[JSON]] | None | bool = False  # False: not read yet
        self._client: JSON | None = None
        self._client_read = False
        self._all_ns: list[str] | None = None
        self._dns: Finding | None | bool = False  # False: not judged yet; the client's DNS Egress, once

    def _ns(self, name: str) -> None:
        if name not in self._policies:
            self._policies[name] = self.source.list_network_policies(name)
        if name not in self._namespaces:
            self._namespaces[name] = self.source.get_namespace(name)

    def check(self, svc: Service, g: Gathered) -> PolicyReport:
        ns = svc.meta.namespace
        self._ns(ns)
        if self._admin is False:
            self._admin = self.source.list_admin_network_policies()
        admin = self._admin if not isinstance(self._admin, bool) else None
        if self._all_ns is None:
            self._all_ns = self.source.namespaces()
        client_ns = None
        if self.from_pod:
            ref = PodRef.parse(self.from_pod, self.default_ns)
            client_ns = ref.namespace
            if not self._client_read:
                pod = self.source.get_pod(ref.namespace, ref.name)
                self._client, self._client_read = (pod.raw if pod is not None else None), True
                if pod is None:
                    raise InputError(f'pod "{ref.name}" not found in namespace "{client_ns}"')
            self._ns(client_ns)
        wanted = {ns, *( [client_ns] if client_ns else [])}
        unreadable = _why(self.source) if any(self._policies[k] is None for k in wanted) else ""
        # the world is a function of these (the Namespaces read only grow); a new one when any changes
        wkey = (tuple(sorted(wanted)), unreadable, len(self._namespaces))
        known = self._worlds.get(wkey) if self.shared else None
        if known is not None:
            world, memo = known
        else:
            world = self._world(wanted, unreadable, admin)
            memo = {}
            if self.shared:
                self._worlds[wkey] = (world, memo)
        if self.shared and self._client is None:
            # Ingress reach reads of a backend only its class (namespace, labels, hostNetwork, container ports:
            # analysis.policy._reach_classes): the replicas of a workload share one JSON, built once, not per Pod
            # per Service (100,000 Pods' were ≈ 1 s)
            pods = {}
            templates: dict[tuple[object, ...], JSON] = {}  # this Service's only (kept across all, they were 10 MB)
            for pod in g.pods:
                tkey = (pod.meta.namespace, id(pod.meta.labels), id(pod.containers), id(pod.init_containers),
                        pod.host_network)
                tmpl = templates.get(tkey)
                if tmpl is None:
                    tmpl = templates[tkey] = pod_json(pod)
                pods[pod.key] = tmpl
        else:
            pods = {p.key: pod_json(p) for p in g.pods}
        ports = []
        for p in svc.ports:
            view = proxy_view(svc, p, g.slices, None)
            used = view.cluster or [e for e in view.all_endpoints if e.ready]
            ports.append((p.name or str(p.port), p.protocol, [(e.ip, e.port, e.pod) for e in used]))
        rep = reachability(world, svc.meta.key, ports, pods, self._all_ns, memo if self.shared else None)
        refused = next((s.reason for s in self.source.skipped if s.resource == "adminnetworkpolicies"), None)
        if refused is not None:
            rep.notes.append(f"AdminNetworkPolicies could not be read ({refused}): the admin tiers are not evaluated")
        if self._client is not None and not rep.skipped:
            client = client_endpoint(world, self._client, self.from_pod, None, None, [])
            for label, proto, bs in ports:
                _, found, _ = policy_hop(world, svc.meta.key, label, bs, pods, client, proto, None, svc.selector)
                rep.findings += found
            dns = self._dns_finding()
            if dns is not None and svc.meta.key != "kube-system/kube-dns":  # by name, every Service needs DNS
                rep.findings.append(dns)
        return rep

    def _world(self, wanted: set[str], unreadable: str,
               admin: tuple[list[JSON], list[JSON]] | None) -> PolicyWorld:
        try:
            world = make_world({k: v for k, v in self._policies.items() if k in wanted}, self._namespaces,
                               unreadable, admin)
        except PolicyInputError as e:
            raise InputError(f"malformed policy: {e}") from None
        if needs_namespace_labels(world):  # a namespaceSelector on more than the name: each Namespace's labels
            assert self._all_ns is not None
            for n in self._all_ns:
                if n not in self._namespaces:
                    self._namespaces[n] = self.source.get_namespace(n)
            world = make_world({k: v for k, v in self._policies.items() if k in wanted}, self._namespaces,
                               world.unreadable, admin)
        return world

    def _dns_finding(self) -> Finding | None:
        """PolicyDeniesDNS for the --from-pod client, judged once (the trace's gate before its DNS hop)."""
        if self._dns is False:
            from svcctl.ops.policy_dns import dns_policy_gate

            assert self.from_pod is not None
            gate, _ = dns_policy_gate(self.source, self.from_pod, self.default_ns)
            self._dns = gate.finding if gate is not None else None
        return None if isinstance(self._dns, bool) else self._dns


def _why(source: ClusterSource) -> str:
    refused = next((s.reason for s in source.skipped if s.resource == "networkpolicies"), None)
    if refused is not None:
        return f"cannot read networkpolicies: {refused}"
    return "the input has no NetworkPolicies" if source.name.startswith("snapshot") else "no NetworkPolicies served"

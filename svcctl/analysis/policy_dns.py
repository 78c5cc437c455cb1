"""The client's Egress to the cluster DNS, judged BEFORE the DNS hop sends anything.

A client whose Egress blocks port 53 never gets an answer: its lookups time out. Judging the policies first
lets the DNS hop say so at once (and name the policy) instead of waiting out its own query's timeout. The
destination is what the packet carries after kube-proxy's DNAT: a DNS Pod's IP on the kube-dns Service's
*targetPort* for 53/UDP and 53/TCP (CoreDNS may listen on another port, e.g. 1053, behind Service port 53), and
the rule the hint suggests selects the DNS Pods by the Service's own selector on those ports.
"""

from __future__ import annotations

from svcctl.analysis.policy import (
    DNS_RULE,
    NAME_LABEL,
    DNSEgress,
    Endpoint,
    PolicyWorld,
    dns_finding,
)
from svcctl.analysis.trace import Hop
from svcctl.findings import Verdict as HopVerdict
from svcctl.lazydc import dataclass, field
from svcctl.model import JSON, Finding, Service

DNS_PORT = 53


def dns_target_ports(dns: Service | None, dns_pods: list[JSON]) -> tuple[dict[str, int], list[str]]:
    """Protocol -> the DNS Pods' port behind the kube-dns Service's port 53 (a named targetPort resolves on the
    Pods' container ports, as the EndpointSlice controller does); notes say what could not be resolved."""
    if dns is None:
        return {"UDP": DNS_PORT, "TCP": DNS_PORT}, []
    out: dict[str, int] = {}
    notes: list[str] = []
    for p in dns.ports:
        proto = p.protocol.upper()
        if p.port != DNS_PORT or proto not in ("UDP", "TCP") or proto in out:
            continue
        tp = p.target_port
        if isinstance(tp, int):
            out[proto] = tp or p.port
            continue
        found = next((int(cp["containerPort"]) for pod in dns_pods for c in (pod.get("spec") or {}).get("containers")
                      or [] for cp in (c or {}).get("ports") or [] if isinstance(cp, dict)
                      and cp.get("name") == tp and str(cp.get("protocol") or "TCP").upper() == proto
                      and isinstance(cp.get("containerPort"), int)), None)
        if found is None:
            notes.append(f"kube-dns port {p.port}/{proto} targets the named port {tp!r}, which no DNS Pod in the "
                         f"input declares: judged on {p.port}")
            found = p.port
        out[proto] = found
    for proto in ("UDP", "TCP"):
        out.setdefault(proto, DNS_PORT)
    return out, notes


def dns_rule(dns: Service | None, ports: dict[str, int]) -> JSON:
    """The egress rule that admits the cluster DNS: its namespace AND its Pods (by the Service's selector) on
    the targetPorts."""
    if dns is None or not dns.selector:
        rule = dict(DNS_RULE)
    else:
        rule = {"to": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: dns.meta.namespace}},
                        "podSelector": {"matchLabels": dict(sorted(dns.selector.items()))}}]}
    rule["ports"] = [{"protocol": proto, "port": ports[proto]} for proto in ("UDP", "TCP")]
    return rule


@dataclass
class DNSGate:
    """What the client's Egress says about DNS, known before any query: the finding when it blocks."""

    finding: Finding | None
    egress: DNSEgress | None
    ports: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> bool:
        return self.finding is not None

    def hop(self) -> Hop:
        """The DNS hop when no query is sent because the client could not get an answer anyway."""
        assert self.finding is not None and self.egress is not None
        pols = ", ".join(self.egress.applies)
        on = ", ".join(f"{self.ports.get(p, DNS_PORT)}/{p}" for p in self.egress.protocols_denied)
        details = [*self.egress.details,
                   "no query sent: the client's lookups would time out (the PolicyDeniesDNS hint has the rule to add)",
                   "--dns-anyway sends the queries regardless (from where svcctl runs)", *self.notes]
        return Hop("dns", HopVerdict.BROKEN,
                   f"the client's Egress blocks DNS ({on} to the cluster DNS; isolated by {pols}): not queried",
                   details, {"queried": False, "egressBlockedBy": list(self.egress.applies),
                             "deniedProtocols": list(self.egress.protocols_denied),
                             "targetPorts": dict(sorted(self.ports.items()))})


def dns_gate(world: PolicyWorld, client: Endpoint, dns: Service | None, dns_pods: list[JSON],
             dns_ips: list[str]) -> DNSGate:
    ports, notes = dns_target_ports(dns, dns_pods)
    finding, res = dns_finding(world, client, dns_pods, dns_ips, ports, dns_rule(dns, ports))
    moved = sorted(f"{port}/{proto}" for proto, port in ports.items() if port != DNS_PORT)
    if finding is not None and moved:  # a policy's ports are the Pod's, after kube-proxy's translation
        finding.hint += f" (the DNS Pods listen on {', '.join(moved)} behind the Service's port {DNS_PORT})"
    return DNSGate(finding, res, ports, notes)

"""The client's Egress to the cluster DNS, read and judged before the trace's DNS hop runs (analysis.policy_dns):
a client whose policies block port 53 gets the answer at once, not after the hop's query times out."""

from __future__ import annotations

from svcctl.analysis.policy import PolicyInputError, client_endpoint, make_world
from svcctl.analysis.policy_dns import DNSGate, dns_gate
from svcctl.errors import InputError
from svcctl.sources.base import ClusterSource
from svcctl.sources.policy import PolicyInputs, gather_client_inputs


def dns_policy_gate(source: ClusterSource, from_pod: str, default_ns: str) -> tuple[DNSGate | None, PolicyInputs]:
    """The gate (None when the policies cannot be read or the client is no Pod) and what was read for it, which
    the policy hop reuses."""
    inp = gather_client_inputs(source, from_pod, default_ns)
    if inp.client is None or inp.unreadable:
        return None, inp
    try:
        world = make_world(inp.policies, inp.namespaces, inp.unreadable, inp.admin)
    except PolicyInputError as e:
        raise InputError(f"malformed policy: {e}") from None
    client = client_endpoint(world, inp.client, inp.client_ref, None, inp.node, [])
    return dns_gate(world, client, inp.dns_service, inp.dns_pods, inp.dns_ips), inp

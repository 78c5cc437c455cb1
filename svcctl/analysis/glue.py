"""Findings from what a node's entries need besides their rules and lack (`ServiceEntry.glue` flags, which the
dataplane parsers set): IPVS's VIP on kube-ipvs0 and its KUBE-CLUSTER-IP ipset membership."""

from __future__ import annotations

from collections.abc import Callable

from svcctl.dataplane.model import GLUE_NOT_IN_IPSET, GLUE_VIP_NOT_BOUND, NodeRules, ServiceEntry
from svcctl.findings import Severity
from svcctl.lazydc import dataclass
from svcctl.model import Finding


def _ipset_member(address: str, protocol: str, port: int) -> str:
    """The IPVS reader's ipset member text, imported only when an IPVS finding says it (not for other modes)."""
    from svcctl.dataplane.ipvs import ipset_member

    return ipset_member(address, protocol, port)


@dataclass(frozen=True)
class _Gap:
    """One glue flag's finding: its code, what is wrong and the evidence (from the entry and the dump's
    source), the fix and kube-proxy's code that writes the glue."""

    code: str
    problem: Callable[[ServiceEntry], str]
    evidence: Callable[[ServiceEntry, str], str]
    hint: str
    where: str


_GAPS = {
    GLUE_VIP_NOT_BOUND: _Gap(
        "VIPNotBound",
        lambda e: f"exists but {e.address} is not bound to kube-ipvs0: the node drops packets for it before IPVS "
                  "sees them",
        lambda e, source: f"`ip addr show kube-ipvs0` in {source} lacks {e.address}",
        "kube-proxy binds every service address to kube-ipvs0 on each sync: check its logs for netlink errors, "
        "or whether something (NetworkManager, a CNI) flushed the link",
        "pkg/proxy/ipvs/proxier.go (syncService: netlinkHandle.EnsureAddressBind)"),
    GLUE_NOT_IN_IPSET: _Gap(
        "VIPNotInIPSet",
        lambda e: "is missing from the KUBE-CLUSTER-IP ipset: kube-proxy's iptables rules (masquerade, accept) do "
                  "not apply to it",
        lambda e, source: f"`ipset list KUBE-CLUSTER-IP` lacks {_ipset_member(e.address, e.protocol, e.port)}",
        "kube-proxy re-adds ipset entries on each sync: check its logs for ipset errors",
        "pkg/proxy/ipvs/proxier.go (syncProxyRules: clusterIPSet)"),
}


def glue_findings(rules: NodeRules) -> list[Finding]:
    """VIPNotBound / VIPNotInIPSet (error) for every entry whose glue the parser found missing."""
    source = rules.source or "the node dump"
    return [Finding(gap.code, Severity.ERROR,
                    f"IPVS virtual server {e.address}:{e.port}/{e.protocol} {gap.problem(e)}",
                    evidence=gap.evidence(e, source), hint=gap.hint, where=gap.where)
            for e in rules.services for flag, gap in _GAPS.items() if flag in e.glue]

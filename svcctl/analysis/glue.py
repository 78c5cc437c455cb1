"""Findings from what a node's entries need besides their rules and lack (`ServiceEntry.glue` flags, which the
dataplane parsers set): IPVS's VIP on kube-ipvs0 and its KUBE-CLUSTER-IP ipset membership."""

from __future__ import annotations

from svcctl.dataplane.ipvs import ipset_member
from svcctl.dataplane.model import GLUE_NOT_IN_IPSET, GLUE_VIP_NOT_BOUND, NodeRules
from svcctl.findings import Severity
from svcctl.model import Finding


def glue_findings(rules: NodeRules) -> list[Finding]:
    """VIPNotBound / VIPNotInIPSet (error) for every entry whose glue the parser found missing."""
    out: list[Finding] = []
    for e in rules.services:
        if GLUE_VIP_NOT_BOUND in e.glue:
            out.append(Finding(
                "VIPNotBound", Severity.ERROR,
                f"IPVS virtual server {e.address}:{e.port}/{e.protocol} exists but {e.address} is not bound "
                "to kube-ipvs0: the node drops packets for it before IPVS sees them",
                evidence=f"`ip addr show kube-ipvs0` in {rules.source or 'the node dump'} lacks {e.address}",
                hint="kube-proxy binds every service address to kube-ipvs0 on each sync: check its logs "
                     "for netlink errors, or whether something (NetworkManager, a CNI) flushed the link",
                where="pkg/proxy/ipvs/proxier.go (syncService: netlinkHandle.EnsureAddressBind)"))
        if GLUE_NOT_IN_IPSET in e.glue:
            out.append(Finding(
                "VIPNotInIPSet", Severity.ERROR,
                f"IPVS virtual server {e.address}:{e.port}/{e.protocol} is missing from the KUBE-CLUSTER-IP "
                "ipset: kube-proxy's iptables rules (masquerade, accept) do not apply to it",
                evidence=f"`ipset list KUBE-CLUSTER-IP` lacks {ipset_member(e.address, e.protocol, e.port)}",
                hint="kube-proxy re-adds ipset entries on each sync: check its logs for ipset errors",
                where="pkg/proxy/ipvs/proxier.go (syncProxyRules: clusterIPSet)"))
    return out

"""Node dataplane: parsers of iptables-save, ipvsadm, nft and conntrack output into one model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcctl.errors import InputError

if TYPE_CHECKING:
    from svcctl.dataplane.model import NodeRules
    from svcctl.sources.base import NodeDumps

__all__ = ["detect_mode", "load_node_rules"]


def _has_kube_rules(text: str | None, marker: str) -> bool:
    return bool(text) and marker in (text or "")


def detect_mode(dumps: NodeDumps) -> str:
    """iptables | ipvs | nftables, from what the node's dumps contain (kube-proxy's own chains/tables)."""
    ipt = dumps.get("iptables") or ""
    ip6t = dumps.get("ip6tables") or ""
    ipvs = dumps.get("ipvs") or ""
    nft = dumps.get("nftables") or ""
    if nft and ("kube-proxy" in nft or "service-ips" in nft):
        return "nftables"
    # IPVS mode still writes iptables glue (KUBE-CLUSTER-IP ipset), but its Services are virtual servers
    if ipvs.strip() and ("->" in ipvs or "-A -" in ipvs or "Prot LocalAddress" in ipvs) and (
            "KUBE-SVC-" not in ipt or "KUBE-CLUSTER-IP" in ipt):
        return "ipvs"
    if "KUBE-SVC-" in ipt or "KUBE-SERVICES" in ipt or "KUBE-SVC-" in ip6t or "KUBE-SERVICES" in ip6t:
        return "iptables"
    if ipvs.strip():
        return "ipvs"
    if nft.strip():
        return "nftables"
    if ipt.strip() or ip6t.strip():
        return "iptables"
    raise InputError("no node rules to read", hint="give --iptables-save, --ipvsadm or --nft FILE, --netns NAME "
                     "or --local-node")


def load_node_rules(dumps: NodeDumps, mode: str | None = None, only: set[str] | None = None) -> NodeRules:
    """Parse whichever dumps `mode` needs (detected when None) into one NodeRules.

    `only`: service names / addresses to restrict an iptables parse to (fast path for one Service)."""
    from svcctl.dataplane.model import NodeRules

    mode = mode or detect_mode(dumps)
    if mode == "iptables":
        from svcctl.dataplane.iptables import parse_iptables_save

        parts = []
        for key in ("iptables", "ip6tables"):
            text = dumps.get(key)
            if text is not None and text.strip():
                parts.append(parse_iptables_save(text, dumps.origins.get(key, key), only=only))
        if not parts:
            raise InputError("iptables mode needs `iptables-save` output", hint="give --iptables-save FILE")
        rules = parts[0]
        for extra in parts[1:]:
            rules.services.extend(extra.services)
            rules.stats.rules += extra.stats.rules
            rules.stats.chains += extra.stats.chains
            for k, v in extra.stats.per_service.items():
                rules.stats.per_service[k] = rules.stats.per_service.get(k, 0) + v
            rules.unreferenced_chains.extend(extra.unreferenced_chains)
            rules.notes.extend(n for n in extra.notes if n not in rules.notes)
            rules.source = f"{rules.source}, {extra.source}"
    elif mode == "ipvs":
        from svcctl.dataplane import ipvs  # type: ignore[attr-defined,unused-ignore]

        text = dumps.get("ipvs")
        if not text:
            raise InputError("IPVS mode needs `ipvsadm -Ln` output", hint="give --ipvsadm FILE")
        rules = ipvs.parse_ipvsadm(text, dumps.origins.get("ipvs", "ipvsadm"))
    elif mode == "nftables":
        from svcctl.dataplane import nftables  # type: ignore[attr-defined,unused-ignore]

        text = dumps.get("nftables")
        if not text:
            raise InputError("nftables mode needs `nft list table ip kube-proxy` output", hint="give --nft FILE")
        rules = nftables.parse_nft(text, dumps.origins.get("nftables", "nft"))
    else:
        raise InputError(f"unknown kube-proxy mode {mode!r}", hint="one of iptables, ipvs, nftables")
    if not isinstance(rules, NodeRules):
        raise TypeError("parser returned something other than NodeRules")
    if not rules.source and dumps.node:
        rules.source = dumps.node
    return rules

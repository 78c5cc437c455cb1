"""kube-proxy's nftables mode: the `ip kube-proxy` (and `ip6 kube-proxy`) table, text or `nft -j` JSON."""

from __future__ import annotations

from collections.abc import Mapping

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.dataplane.modes.base import Dump, ProxyMode, Scope, keys_of


class NftablesMode(ProxyMode):
    name = "nftables"
    description = "kube-proxy's nftables mode"
    dumps = (
        Dump("nftables", "nft.txt", ("nft", "list", "table", "ip", "kube-proxy"),
             "`nft list table ip kube-proxy` output"),
        Dump("nftables6", None, ("nft", "list", "table", "ip6", "kube-proxy"), "the IPv6 table"),
        Dump("nftables-json", None, ("nft", "-j", "list", "table", "ip", "kube-proxy"), "the table as JSON"),
    )
    read_keys = ("nftables", "nftables6", "conntrack")  # kube-proxy writes one table per family
    picks = "nftables mode picks each new connection's backend at random (numgen random), not round-robin."
    probe_fallback = True  # iptables-save shows no kube-proxy chains: the table is in nftables
    fallback_rank = 0

    def present(self, texts: Mapping[str, str]) -> bool:
        nft = texts.get("nftables") or ""
        return "kube-proxy" in nft or "service-ips" in nft

    def has_text(self, texts: Mapping[str, str]) -> bool:
        text = texts.get("nftables")
        return not (text or " ").isspace()  # not `.strip()`: that copies a whole dump

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        from svcctl.dataplane.nftables import parse_nft

        text, origin = self.require(dumps, "nftables mode needs `nft list table ip kube-proxy` output",
                                    "give --nft FILE")
        text6 = dumps.get("nftables6")
        if text6 and "table ip6 kube-proxy" in text6 and "table ip6 kube-proxy" not in text:
            text = text.rstrip("\n") + "\n" + text6  # the IPv6 table, read apart on a live node
        rules = parse_nft(text, origin, only=keys_of(scope), as_text=dumps.entries_as_text)
        # kube-proxy's nftables mode writes one table per family, holding both NAT and filtering
        fams = [f for f, head in (("ipv4", "table ip kube-proxy"), ("ipv6", "table ip6 kube-proxy")) if head in text]
        rules.tables = {f"{f}:{t}" for f in fams for t in ("nat", "filter")}
        return rules

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        return ["nftables mode picks a backend with numgen random (not round-robin)"]


MODE = NftablesMode()

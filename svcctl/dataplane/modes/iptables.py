"""kube-proxy's iptables mode: `iptables-save` (and `ip6tables-save`), KUBE-SVC/KUBE-SEP chains."""

from __future__ import annotations

from collections.abc import Mapping

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.dataplane.modes.base import Dump, ProxyMode, Scope, keys_of
from svcctl.errors import InputError


class IptablesMode(ProxyMode):
    name = "iptables"
    description = "kube-proxy's iptables mode"
    dumps = (
        Dump("iptables", "iptables-save.txt", ("iptables-save",), "`iptables-save` output"),
        Dump("ip6tables", "ip6tables-save.txt", ("ip6tables-save",), "`ip6tables-save` output"),
    )
    read_keys = ("iptables", "ip6tables", "conntrack")
    picks = ("iptables mode picks each new connection's backend at random (statistic match), not round-robin: "
             "the shares are probabilities, and a short run can be uneven.")
    fallback_rank = 2

    @property
    def rules_keys(self) -> tuple[str, ...]:
        return ("iptables", "ip6tables")

    def present(self, texts: Mapping[str, str]) -> bool:
        from svcctl.dataplane.modes.chains import cluster_ip_set, ipvs_chains

        ipt = (texts.get("iptables") or "") + (texts.get("ip6tables") or "")
        # IPVS mode's iptables rules match the KUBE-CLUSTER-IP ipset (once it has members) and always have its
        # own chains (KUBE-IPVS-FILTER, KUBE-NODE-PORT, …), even with no virtual server
        if cluster_ip_set(ipt) or ipvs_chains(ipt):
            return False
        return "KUBE-SVC-" in ipt or "cluster IP" in ipt or "has no endpoints" in ipt

    def claims_iptables(self, ipt: str) -> bool:
        from svcctl.dataplane.modes.chains import cluster_ip_set

        return not cluster_ip_set(ipt) and ("KUBE-SVC-" in ipt or "KUBE-SERVICES" in ipt)

    def has_text(self, texts: Mapping[str, str]) -> bool:
        return any(not (texts.get(k) or " ").isspace() for k in ("iptables", "ip6tables"))

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        from svcctl.dataplane.iptables import parse_iptables_save

        parts = []
        given = [(key, text) for key in ("iptables", "ip6tables")
                 if (text := dumps.get(key)) and not text.isspace()]  # not `text.strip()`: that copies the dump
        # one family's dump for its JSON alone: its backends may be left for the writer (two are merged first)
        as_text = dumps.entries_as_text and len(given) == 1
        for key, text in given:
            part = parse_iptables_save(text, dumps.origins.get(key, key), only=keys_of(scope), as_text=as_text)
            if key == "ip6tables":
                part.tables = {"ipv6:" + t.split(":", 1)[1] for t in part.tables}
            parts.append(part)
        if not parts:
            raise InputError("iptables mode needs `iptables-save` output", hint="give --iptables-save FILE")
        from svcctl.dataplane.modes.chains import name_what_was_found

        name_what_was_found(parts, [dumps.get(k) or "" for k in ("iptables", "ip6tables")])
        rules = parts[0]
        for extra in parts[1:]:
            rules.merge(extra)
        return rules

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        return ["iptables mode picks a backend at random for each new connection (not round-robin); shares "
                "below are exact"]


MODE = IptablesMode()

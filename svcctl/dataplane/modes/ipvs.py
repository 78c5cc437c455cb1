"""kube-proxy's IPVS mode: `ipvsadm -Ln` virtual servers, and the glue that makes them reachable (the VIP on
kube-ipvs0, the KUBE-CLUSTER-IP ipset, iptables rules matching it)."""

from __future__ import annotations

from collections.abc import Mapping

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.dataplane.modes.base import Dump, ProxyMode, Scope, keys_of
from svcctl.errors import InputError


class IpvsMode(ProxyMode):
    name = "ipvs"
    description = "kube-proxy's IPVS mode"
    dumps = (
        Dump("ipvs", "ipvsadm.txt", ("ipvsadm", "-Ln"), "`ipvsadm -Ln` output"),
        Dump("ipvs-conns", "ipvsadm-conns.txt", ("ipvsadm", "-Lnc"), "`ipvsadm -Lnc`: IPVS's connection table"),
        Dump("ipset", "ipset.txt", ("ipset", "list"), "`ipset list` (the KUBE-CLUSTER-IP set)"),
        Dump("kube-ipvs0", "ip-addr-kube-ipvs0.txt", ("ip", "addr", "show", "kube-ipvs0"),
             "`ip addr show kube-ipvs0` (the bound VIPs)"),
    )
    read_keys = ("ipvs", "iptables", "kube-ipvs0", "ipset", "ipvs-conns", "conntrack")
    picks = "IPVS mode picks backends with the virtual server's scheduler (rr = round-robin by default)."
    fallback_rank = 1

    def present(self, texts: Mapping[str, str]) -> bool:
        from svcctl.dataplane.modes import find

        kube_router = find("kube-router")
        if kube_router is not None and kube_router.present(texts):
            return False  # the same listing, written by kube-router
        from svcctl.dataplane.modes.chains import cluster_ip_set, ipvs_chains

        ipvs = texts.get("ipvs") or ""
        ipt = (texts.get("iptables") or "") + (texts.get("ip6tables") or "")
        # (cluster_ip_set: kept for the iptables mode's question about the same text, a scan of the whole dump)
        glue = cluster_ip_set(ipt) or bool(ipvs_chains(ipt))
        # `isspace()`, not `strip()`: that copies a whole dump (37 MB at 50,000 Services, each time it is asked)
        return glue or bool(ipvs and not ipvs.isspace() and ("->" in ipvs or "-A -" in ipvs or "-a -" in ipvs))

    def claims_iptables(self, ipt: str) -> bool:
        return "KUBE-CLUSTER-IP" in ipt

    def has_text(self, texts: Mapping[str, str]) -> bool:
        text = texts.get("ipvs") or ""
        return bool(text) and not text.isspace()

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        from svcctl.dataplane.ipvs import deferred_rules, left_as_text, parse_ipvsadm
        from svcctl.dataplane.modes.chains import ipvs_chains

        if not dumps.texts.get("ipvs"):  # (not `get`: that reads a dump left in its file whole)
            found = ipvs_chains((dumps.get("iptables") or "") + (dumps.get("ip6tables") or ""))
            if found:
                raise InputError(f"the iptables rules are kube-proxy's IPVS mode ({', '.join(found)}): the Services "
                                 "are in IPVS's table, not in iptables", source=dumps.origins.get("iptables"),
                                 hint="give `ipvsadm -Ln` output too (--ipvsadm FILE)")
        table = dumps.in_file.get(self.rules_key)  # a plain table checked as its file was streamed
        if table is not None and left_as_text(dumps.entries_as_text, keys_of(scope), dumps.get("ipset"),
                                              dumps.get("kube-ipvs0"), dumps.get("iptables")):
            rules = deferred_rules(table, dumps.origins.get(self.rules_key, self.rules_key))
        else:
            text, origin = self.require(dumps, "IPVS mode needs `ipvsadm -Ln` output", "give --ipvsadm FILE")
            # the glue (kube-ipvs0 addresses, KUBE-CLUSTER-IP ipset, iptables rules) when the node gave it
            rules = parse_ipvsadm(text, origin, only=keys_of(scope), ipset_text=dumps.get("ipset"),
                                  ip_addr_text=dumps.get("kube-ipvs0"), iptables_text=dumps.get("iptables"),
                                  as_text=dumps.entries_as_text)
        missing = [what for key, what in (("kube-ipvs0", "VIP binding (no `ip addr show kube-ipvs0`)"),
                                          ("ipset", "KUBE-CLUSTER-IP ipset membership (no `ipset list`)"))
                   if dumps.get(key) is None]
        if missing:
            rules.notes.append("skipped: " + " and ".join(missing) + " checks: the node input lacks them")
        if not rules.services and rules.deferred is None and (scope is None or not scope.keys):
            found = ipvs_chains(dumps.get("iptables") or "")
            if found:
                rules.notes = [n for n in rules.notes if not n.startswith("IPVS has no virtual servers")]
                rules.notes.insert(0, f"IPVS mode (kube-proxy's {', '.join(found)} chains are in iptables) with no "
                                   "virtual servers: kube-proxy has programmed no Service on this node (not synced "
                                   "yet, or its IPVS state was flushed)")
        return rules

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        return [f"IPVS scheduler {entry.scheduler}"] if entry.scheduler else []



MODE = IpvsMode()

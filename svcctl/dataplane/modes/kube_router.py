"""kube-router's service proxy: IPVS virtual servers it programs (`ipvsadm -Ln`), told from kube-proxy's by
kube-router's own marks (its dummy interface, KUBE-ROUTER chains, firewall-mark DSR services)."""

from __future__ import annotations

from collections.abc import Mapping

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.dataplane.modes.base import Dump, ProxyMode, Scope, keys_of
from svcctl.errors import InputError


class KubeRouterMode(ProxyMode):
    name = "kube-router"
    description = "kube-router's IPVS service proxy"
    replacement = True
    dumps = (Dump("ipvs", "ipvsadm.txt", ("ipvsadm", "-Ln"), "`ipvsadm -Ln` output"),
             Dump("kube-ipvs0", "ip-addr-kube-ipvs0.txt", ("ip", "addr", "show", "kube-ipvs0"),
                  "`ip addr show` of the service interface"),
             Dump("mangle", "iptables-save-mangle.txt", ("iptables-save", "-t", "mangle"),
                  "kube-router's mangle rules (the firewall marks of DSR services)"))
    agent_commands = {"ipvs": ("ipvsadm", "-Ln"), "kube-dummy-if": ("ip", "addr", "show", "kube-dummy-if"),
                      "mangle": ("iptables-save", "-t", "mangle")}
    read_keys = ("ipvs", "kube-dummy-if", "mangle", "ipvs-conns", "conntrack")
    picks = ("kube-router's IPVS virtual servers pick backends with their scheduler (annotation "
             "kube-router.io/service.scheduler, rr by default).")

    def present(self, texts: Mapping[str, str]) -> bool:
        ipvs = texts.get("ipvs") or ""
        ipt = texts.get("iptables") or ""
        if not ipvs or ipvs.isspace() or "KUBE-CLUSTER-IP" in ipt:  # not strip(): a copy of the whole dump
            return False
        from svcctl.dataplane.kube_router import looks_like_kube_router

        return looks_like_kube_router(ipvs, texts.get("kube-ipvs0"), ipt)

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        from svcctl.dataplane.kube_router import parse_kube_router

        text = dumps.get("ipvs")
        if not text:
            raise InputError("kube-router mode needs `ipvsadm -Ln` output",
                             hint="give --ipvsadm FILE --mode kube-router")
        return parse_kube_router(text, dumps.origins.get("ipvs", "ipvs"), only=keys_of(scope),
                                 ip_addr_text=dumps.get("kube-ipvs0") or dumps.get("kube-dummy-if"),
                                 iptables_text=dumps.get("mangle") or dumps.get("iptables"))

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        return [f"kube-router IPVS scheduler {entry.scheduler or 'rr'}"]

    def summary(self, rules: NodeRules) -> str:
        st = rules.stats
        return (f"kube-router dataplane (no kube-proxy), from {rules.source}: "
                f"{st.extra.get('virtualServers', 0)} virtual servers, {st.extra.get('realServers', 0)} "
                "real servers")


MODE = KubeRouterMode()

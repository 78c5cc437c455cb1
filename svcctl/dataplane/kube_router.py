"""kube-router's service proxy: IPVS virtual servers it programs, read from `ipvsadm -Ln`.

The listing is ipvsadm's own (see ipvs.py); what differs is who wrote it and by which rules
(kube-router's pkg/controllers/proxy, not kube-proxy's):
- service addresses are bound to the dummy interface `kube-dummy-if` (not kube-ipvs0), and kube-router keeps
  no KUBE-CLUSTER-IP ipset;
- the scheduler comes from the Service annotation `kube-router.io/service.scheduler` (rr, lc, dh, sh, mh;
  default rr), its flags from `kube-router.io/service.schedflags`;
- `kube-router.io/service.dsr: tunnel` serves external IPs through firewall-mark (`FWM <mark>`) virtual servers
  whose real servers are reached by IPIP tunnel (Forward `Tunnel`): replies bypass the node (direct server
  return);
- `kube-router.io/service.local: "true"` sends external traffic (NodePorts, external IPs) only to this node's
  endpoints, like externalTrafficPolicy Local, while in-cluster traffic to the ClusterIP keeps every endpoint;
- there is no topology-aware routing: hints are ignored;
- a terminating endpoint is kept with weight 0 while its connections drain (graceful termination).
"""

from __future__ import annotations

import re

from svcctl.dataplane.model import NodeRules
from svcctl.errors import InputError

__all__ = ["parse_kube_router", "looks_like_kube_router", "ANNOTATION_LOCAL", "ANNOTATION_SCHEDULER",
           "ANNOTATION_DSR"]

ANNOTATION_LOCAL = "kube-router.io/service.local"
ANNOTATION_SCHEDULER = "kube-router.io/service.scheduler"
ANNOTATION_SCHEDFLAGS = "kube-router.io/service.schedflags"
ANNOTATION_DSR = "kube-router.io/service.dsr"
DUMMY_IF = "kube-dummy-if"


def looks_like_kube_router(ipvs_text: str, ip_addr_text: str | None = None, iptables_text: str | None = None) -> bool:
    """kube-router's own marks: its dummy interface, its iptables chains, or firewall-mark virtual servers
    with tunnel forwarding (DSR); kube-proxy makes none of these."""
    if ip_addr_text and DUMMY_IF in ip_addr_text:
        return True
    if iptables_text and "KUBE-ROUTER-" in iptables_text:
        return True
    return bool(re.search(r"^FWM\s+\d+", ipvs_text, re.M) and re.search(r"->\s+\S+\s+Tunnel\s", ipvs_text))


def parse_kube_router(text: str, source: str, only: set[str] | None = None,
                      ip_addr_text: str | None = None) -> NodeRules:
    """`ipvsadm -Ln` on a kube-router node → NodeRules (mode kube-router)."""
    from svcctl.dataplane.ipvs import parse_ip_addr, parse_ipvsadm

    rules = parse_ipvsadm(text, source)  # whole table: NodePorts carry no name or service address to filter by
    rules.mode = "kube-router"
    bound: set[str] | None = None
    if ip_addr_text is not None:
        if DUMMY_IF not in ip_addr_text and ip_addr_text.strip():
            raise InputError(f"not `ip addr show {DUMMY_IF}` output", source="ip addr",
                             hint=f"kube-router binds service addresses to {DUMMY_IF}")
        bound = set(parse_ip_addr(ip_addr_text.replace(DUMMY_IF, "kube-ipvs0"), "ip addr"))
    for e in rules.services:
        e.notes = [n.replace("kube-proxy does not create these", "kube-router's DSR services")
                   .replace("kube-proxy's graceful termination", "graceful termination")
                   .replace("(kube-proxy uses Masq): real servers outside kube-proxy's control?",
                            "(kube-router's DSR: replies go straight from the backend to the client)")
                   for n in e.notes
                   if "kube-ipvs0" not in n and "KUBE-CLUSTER-IP" not in n and "give `ipset list`" not in n]
        if e.protocol == "FWM":
            e.kind = "ExternalIP"
            e.notes.append("DSR (kube-router.io/service.dsr: tunnel): an external IP's traffic, marked by "
                           "kube-router's mangle rules")
        elif 30000 <= e.port <= 32767 and (bound is None or e.address not in bound):
            e.kind = "NodePort"
        for b in e.backends:
            if b.draining:
                b.state = "terminating"
        if bound is not None and e.protocol != "FWM" and e.kind != "NodePort" and e.address not in bound:
            e.notes.append(f"{e.address} is not bound to {DUMMY_IF}: the node does not accept packets for it")
    if only:
        from svcctl.dataplane.model import in_scope

        rules.services = [e for e in rules.services if e.kind == "NodePort" or in_scope(e, only)]
    rules.notes = [n for n in rules.notes if "kube-proxy" not in n] + [
        "kube-router's rules: scheduler from kube-router.io/service.scheduler, external traffic local only with "
        "kube-router.io/service.local, no topology-aware routing"]
    return rules

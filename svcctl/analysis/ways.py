"""Every way a packet can enter a Service, and which one an address:port names.

kube-proxy accepts a Service's traffic on its ClusterIPs (both families), on every node address at a
`nodePort`, on `spec.externalIPs` and on `status.loadBalancer.ingress[].ip` (only those with ipMode VIP or
unset: `ipMode: Proxy` addresses are left to the load balancer), and it answers its health check on
`healthCheckNodePort`. A trace of `10.0.0.11:31443` must find the Service through the Node whose address that
is, not look for a Service whose VIP it is. Pure logic: the command passes the Services, the Nodes and the
node's own addresses.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from svcctl.dataplane.model import ServiceEntry
from svcctl.lazydc import dataclass, field
from svcctl.model import Node, Service, ServicePort, put

CLUSTER_IP, NODE_PORT, EXTERNAL_IP, LOAD_BALANCER, HEALTH_CHECK = (
    "ClusterIP", "NodePort", "ExternalIP", "LoadBalancer", "HealthCheckNodePort")
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass
class Way:
    """One way in: which address:port/protocol of which Service port, and how it was recognised."""

    kind: str  # ClusterIP | NodePort | ExternalIP | LoadBalancer | HealthCheckNodePort
    service: Service
    port: ServicePort | None  # None for the health check (it belongs to the Service, not a port)
    address: str
    number: int  # the port number a client dials (port, nodePort or healthCheckNodePort)
    protocol: str
    label: str  # "NodePort 31443 on worker-1's InternalIP 10.0.0.11"
    node: str | None = None  # the node the address belongs to, when known
    notes: list[str] = field(default_factory=list)
    lb_proxy: bool = False  # a load-balancer ingress with ipMode Proxy: kube-proxy writes no rule for it

    @property
    def external(self) -> bool:
        """NodePort, external and LB IPs follow externalTrafficPolicy; the ClusterIP follows the internal one."""
        return self.kind != CLUSTER_IP

    @property
    def loopback(self) -> bool:
        return is_loopback(self.address)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "address": self.address, "port": self.number,
                               "protocol": self.protocol, "label": self.label}
        return put(out, node=self.node, notes=self.notes)


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def node_addresses(nodes: list[Node]) -> dict[str, list[tuple[str, str]]]:
    """address -> [(node name, address type)] for every InternalIP / ExternalIP of every Node."""
    out: dict[str, list[tuple[str, str]]] = {}
    for n in nodes:
        for typ in ("InternalIP", "ExternalIP"):
            for a in n.addresses.get(typ, []):
                if a:
                    out.setdefault(a, []).append((n.meta.name, typ))
    return out


def _proxied(s: Service) -> bool:
    return s.type != "ExternalName" and not s.headless and "service.kubernetes.io/service-proxy-name" \
        not in s.meta.labels


def find_ways(services: list[Service], ip: str, port: int | None, protocol: str | None,
              nodes: list[Node] | None = None, own_addresses: dict[str, str] | None = None,
              own_node: str | None = None) -> list[Way]:
    """Every Service port `ip[:port][/protocol]` enters by.

    `nodes`: the cluster's Node objects (their InternalIP/ExternalIP take NodePorts); `own_addresses`: the
    traced node's own addresses (address -> where it was read, e.g. "netns n1") when the node input shows them.
    A loopback address takes NodePorts too; whether the node's mode really accepts it is judged later
    (`localhost_nodeport`)."""
    proto = protocol.upper() if protocol else None
    by_node = node_addresses(nodes or [])
    own = own_addresses or {}
    out: list[Way] = []

    def want(number: int, p: str) -> bool:
        return (port is None or number == port) and (proto is None or p.upper() == proto)

    node_how: str | None = None
    node_name: str | None = None
    if is_loopback(ip):
        node_how = f"localhost ({ip})" if own_node is None else f"{own_node}'s localhost ({ip})"
        node_name = own_node
    elif ip in by_node:
        name, typ = by_node[ip][0]
        node_how, node_name = f"{name}'s {typ} {ip}", name
    elif ip in own:
        node_how, node_name = f"{own_node or 'the node'}'s address {ip} ({own[ip]})", own_node
    for s in services:
        if not _proxied(s):
            # no proxying, but a trace by VIP of a Service kube-proxy ignores still names it
            if ip in s.cluster_ips and s.type != "ExternalName":
                for p in s.ports:
                    if want(p.port, p.protocol):
                        out.append(Way(CLUSTER_IP, s, p, ip, p.port, p.protocol.upper(),
                                       f"ClusterIP {_ap(ip, p.port)}/{p.protocol.upper()}"))
            continue
        ingress_mode = dict(s.load_balancer_ingress)
        for p in s.ports:
            pp = p.protocol.upper()
            if ip in s.cluster_ips and want(p.port, pp):
                fam = "IPv6 " if ":" in ip and len(s.cluster_ips) > 1 else ("IPv4 " if len(s.cluster_ips) > 1
                                                                           else "")
                out.append(Way(CLUSTER_IP, s, p, ip, p.port, pp, f"{fam}ClusterIP {_ap(ip, p.port)}/{pp}"))
            if ip in s.external_ips and want(p.port, pp):
                out.append(Way(EXTERNAL_IP, s, p, ip, p.port, pp, f"externalIP {_ap(ip, p.port)}/{pp}"))
            if ip in ingress_mode and want(p.port, pp):
                mode = ingress_mode[ip]
                w = Way(LOAD_BALANCER, s, p, ip, p.port, pp, f"load-balancer IP {_ap(ip, p.port)}/{pp}"
                        + (" (ipMode Proxy)" if mode == "Proxy" else ""))
                if mode == "Proxy":
                    w.lb_proxy = True
                    w.notes.append("ipMode Proxy: kube-proxy writes no rule for this address, so packets to it "
                                   "go to the load balancer, which forwards them to a node (usually its NodePort)")
                out.append(w)
            if node_how is not None and p.node_port and want(p.node_port, pp):
                out.append(Way(NODE_PORT, s, p, ip, p.node_port, pp, f"NodePort {p.node_port}/{pp} on {node_how}",
                               node=node_name))
        # kube-proxy serves a health check only for LoadBalancer + ETP Local (apiservice.NeedsHealthCheck)
        hc = s.health_check_node_port if (s.type == "LoadBalancer" and s.external_traffic_policy == "Local") else None
        if node_how is not None and hc and want(hc, "TCP"):
            out.append(Way(HEALTH_CHECK, s, None, ip, hc, "TCP", f"healthCheckNodePort {hc} on {node_how}",
                           node=node_name))
    return out


def localhost_nodeport(mode: str, ip: str, iptables_localhost: bool | None = None) -> tuple[bool, str]:
    """Whether kube-proxy in `mode` accepts a NodePort on loopback address `ip`, and why.

    iptables mode: IPv4 yes when `localhostNodePorts` is on (the default; kube-proxy sets route_localnet=1),
    which its KUBE-NODEPORTS jump shows (`! -d 127.0.0.0/8` when off); IPv6 never. nftables mode: its
    nodeport rule matches `daddr != 127.0.0.0/8` (and `!= ::1`); IPVS mode: loopback addresses are never
    NodePort virtual servers (pkg/proxy/ipvs/netlink_linux.go isValidForSet)."""
    v6 = ":" in ip
    if mode == "iptables":
        if v6:
            return False, ("iptables mode never accepts NodePorts on ::1 (its KUBE-NODEPORTS jump has "
                           "`! -d ::1/128`)")
        if iptables_localhost is False:
            return False, ("the KUBE-NODEPORTS jump excludes 127.0.0.0/8: kube-proxy runs with "
                           "--iptables-localhost-nodeports=false")
        return True, ("iptables mode accepts NodePorts on 127.0.0.0/8: kube-proxy sets route_localnet=1 "
                      "(localhostNodePorts, the default)")
    if mode == "nftables":
        return False, ("nftables mode does not accept NodePorts on localhost (its nodeport rule matches "
                       f"`daddr != {'::1' if v6 else '127.0.0.0/8'}`); the alpha gate "
                       "KubeProxyNFTablesLocalhostNodePorts (1.37) adds a userspace listener for TCP that "
                       "the nft table does not show")
    if mode == "ipvs":
        return False, "IPVS mode never makes loopback addresses NodePort virtual servers"
    return True, ""


def _ap(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def classify_entries(entries: list[ServiceEntry], services: list[Service],
                     node_addresses: set[str] | None = None) -> int:
    """Settle the kind of entries the parser could not classify (IPVS virtual servers without `ipset list`)
    from the cluster's Services: a ClusterIP, an externalIP, a load-balancer IP, or a node address at a
    nodePort. Returns how many were settled; the others keep their guess and say so."""
    by_key: dict[tuple[str, int, str], str] = {}
    node_ports: dict[tuple[int, str], str] = {}
    for s in services:
        for p in s.ports:
            proto = p.protocol.upper()
            for ip in s.cluster_ips:
                if ip and ip != "None":
                    by_key.setdefault((ip, p.port, proto), CLUSTER_IP)
            for ip in s.external_ips:
                by_key.setdefault((ip, p.port, proto), EXTERNAL_IP)
            for ip in s.load_balancer_ips:
                by_key.setdefault((ip, p.port, proto), LOAD_BALANCER)
            if p.node_port:
                node_ports[(p.node_port, proto)] = s.meta.key
    settled = 0
    for e in entries:
        if e.kind_known:
            continue
        kind = by_key.get((e.address, e.port, e.protocol))
        if kind is None and (e.port, e.protocol) in node_ports and (
                node_addresses is None or e.address in node_addresses or not node_addresses):
            kind = NODE_PORT
        if kind is None:
            continue
        e.kind, e.kind_known = kind, True
        e.notes = [n for n in e.notes if not n.startswith(("kind not known", "taken for a NodePort"))]
        e.notes.append(f"kind {kind} from the cluster's Services")
        settled += 1
    return settled

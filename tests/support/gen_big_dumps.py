"""Big node dumps for the scale tests and benchmarks, streamed to files: iptables-save, `nft list table ip
kube-proxy` and `ipvsadm -Ln` for N Services × M endpoints.

iptables-save comes from tests/support/gen_dumps.py and ipvsadm from tests/support/gen_dumps_ipvs_nft.py (both already print
what the real tools print). The nft listing is printed here, in the real `nft list` layout of kube-proxy's
layout-A ruleset from `gen_dumps_ipvs_nft.nft_script` — loading 500,000 chains into a real nftables to list them
back takes minutes and gigabytes, so `test_scale.py` checks this printer against the real `nft list` on a small
ruleset instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from gen_dumps import GenCluster, GenEndpoint, GenPort, iptables_save_lines
from gen_dumps import GenService as IptService
from gen_dumps_ipvs_nft import (
    GenService,
    _ep_sort_key,
    big_services,
    ep_chain_base,
    gen_ipvsadm,
    svc_chain_base,
)

__all__ = ["write_iptables_save", "write_nft_listing", "write_ipvsadm", "nft_listing_lines", "service_for"]

POD_CIDR = "10.128.0.0/9"
SERVICE_CIDR = "10.96.0.0/12"

_MAPS = (
    '\tmap firewall-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n'
    '\t\tcomment "destinations that are subject to LoadBalancerSourceRanges"\n\t}\n\n'
    '\tmap no-endpoint-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n'
    '\t\tcomment "vmap to drop or reject packets to service nodeports with no endpoints"\n\t}\n\n'
    '\tmap no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n'
    '\t\tcomment "vmap to drop or reject packets to services with no endpoints"\n\t}\n'
)
_STATIC_CHAINS = (
    '\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment "NodePort traffic"\n\t}\n\n'
    '\tchain filter-prerouting-pre-dnat {\n\t\ttype filter hook prerouting priority dstnat - 10; policy accept;\n'
    '\t\tct state new jump firewall-check\n\t}\n\n'
    '\tchain filter-output-pre-dnat {\n\t\ttype filter hook output priority -110; policy accept;\n'
    '\t\tct state new jump firewall-check\n\t}\n\n'
    '\tchain filter-input {\n\t\ttype filter hook input priority filter; policy accept;\n'
    '\t\tct state new jump nodeport-endpoints-check\n\t\tct state new jump service-endpoints-check\n\t}\n\n'
    '\tchain filter-forward {\n\t\ttype filter hook forward priority filter; policy accept;\n'
    '\t\tct state new jump service-endpoints-check\n\t\tct state new jump cluster-ips-check\n\t}\n\n'
    '\tchain filter-output {\n\t\ttype filter hook output priority filter; policy accept;\n'
    '\t\tct state new jump service-endpoints-check\n\t\tct state new jump cluster-ips-check\n\t}\n\n'
    '\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n\n'
    '\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}\n\n'
    '\tchain nat-postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n'
    '\t\tjump masquerading\n\t}\n\n'
    '\tchain cluster-ips-check {\n\t\tip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"\n'
    f'\t\tip daddr {SERVICE_CIDR} drop comment "Drop traffic to unallocated ClusterIPs"\n\t}}\n\n'
    '\tchain firewall-check {\n\t\tip daddr . meta l4proto . th dport vmap @firewall-ips\n\t}\n\n'
    '\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark | 0x00004000\n\t}\n\n'
    '\tchain masquerading {\n\t\tmeta mark & 0x00004000 == 0x00000000 return\n\t\tmeta mark set meta mark ^ 0x00004000\n'
    '\t\tmasquerade fully-random\n\t}\n\n'
    '\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n'
    '\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n\t}\n\n'
    '\tchain service-endpoints-check {\n\t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services\n\t}\n\n'
    '\tchain nodeport-endpoints-check {\n'
    '\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports\n\t}\n\n'
    '\tchain reject-chain {\n\t\tcomment "helper for @no-endpoint-services / @no-endpoint-nodeports"\n\t\treject\n\t}'
)
_CONT = "\t\t\t     "  # nft's continuation indent inside `elements = { … }`


def nft_listing_lines(services: list[GenService]) -> Iterator[str]:
    """`nft list table ip kube-proxy` of kube-proxy's layout-A ruleset for these services (ClusterIPs only)."""
    yield "table ip kube-proxy {"
    yield '\tcomment "rules for kube-proxy"'
    yield "\tset cluster-ips {\n\t\ttype ipv4_addr\n\t\tcomment \"Active ClusterIPs\""
    vips = [s.cluster_ip for s in services]
    pairs = [", ".join(vips[i:i + 2]) for i in range(0, len(vips), 2)]
    yield from _elements(pairs)
    yield "\t}\n"
    yield _MAPS
    yield "\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n" \
          "\t\tcomment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\""
    yield from _elements([f"{s.cluster_ip} . {s.proto} . {s.port} : goto service-{svc_chain_base(s)}"
                          for s in services if s.endpoints])
    yield "\t}\n"
    yield _STATIC_CHAINS
    for s in services:
        if not s.endpoints:
            continue
        eps = sorted(s.endpoints, key=_ep_sort_key)
        items = ", ".join(f"{i} : goto endpoint-{ep_chain_base(s, ip, port)}" for i, (ip, port) in enumerate(eps))
        yield ""
        yield (f"\tchain service-{svc_chain_base(s)} {{\n"
               f"\t\tip daddr {s.cluster_ip} ip saddr != {POD_CIDR} jump mark-for-masquerade\n"
               f"\t\tnumgen random mod {len(eps)} vmap {{ {items} }}\n\t}}")
        for ip, port in eps:
            yield ""
            yield (f"\tchain endpoint-{ep_chain_base(s, ip, port)} {{\n"
                   f"\t\tip saddr {ip} jump mark-for-masquerade\n"
                   f"\t\tmeta {s.proto == 'tcp' and 'l4proto tcp' or 'l4proto ' + s.proto} dnat to {ip}:{port}\n\t}}")
    yield "}"


def _elements(items: list[str]) -> Iterator[str]:
    if not items:
        return
    for i, item in enumerate(items):
        head = "\t\telements = { " if i == 0 else _CONT
        yield head + item + (" }" if i == len(items) - 1 else ",")


def write_nft_listing(path: str, n_services: int, n_endpoints: int = 10) -> int:
    """Stream the listing to `path`; returns the number of lines."""
    n = 0
    with open(path, "w") as fh:
        for chunk in nft_listing_lines(big_services(n_services, n_endpoints)):
            fh.write(chunk + "\n")
            n += chunk.count("\n") + 1
    return n


def write_iptables_save(path: str, n_services: int, n_endpoints: int = 10) -> int:
    """gen_dumps.write_big's dump (same names and VIPs), with Pod IPs from 10.128.0.0/9 so that 50,000 Services
    × 10 endpoints fit (10.244.0.0/14 holds 262,144)."""
    services = []
    vips = ipaddress.ip_network("10.96.0.0/12").hosts()
    pods = ipaddress.ip_network(POD_CIDR).hosts()
    for i in range(n_services):
        eps = [GenEndpoint(str(next(pods))) for _ in range(n_endpoints)]
        services.append(IptService(f"ns{i % 100}", f"svc{i}", str(next(vips)), [GenPort("http", 80, 8080)], eps))
    n = 0
    with open(path, "w") as fh:
        for line in iptables_save_lines(GenCluster(services=services, cluster_cidr=POD_CIDR)):
            fh.write(line + "\n")
            n += 1
    return n


def write_ipvsadm(path: str, n_services: int, n_endpoints: int = 10) -> int:
    text = gen_ipvsadm(n_services, n_endpoints)
    with open(path, "w") as fh:
        fh.write(text)
    return text.count("\n")


def service_for(i: int, n_endpoints: int = 10) -> GenService:
    """The i-th Service of `big_services` (what the nft and ipvsadm dumps hold), without building them all."""
    return big_services(i + 1, n_endpoints)[i]

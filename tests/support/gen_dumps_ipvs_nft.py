"""Generators of kube-proxy IPVS and nftables dumps, for fixtures, the demo and benchmarks.

The nftables generator writes what kube-proxy would feed `nft -f` (its `add …` transaction style); the printed
form (`nft list table ip kube-proxy`) is obtained by loading that into a throwaway network namespace — see
`nft_list_via_netns` and `python tests/support/gen_dumps_ipvs_nft.py --demo` which rewrites the demo's nft.txt.

The ipvsadm generator prints byte-for-byte what ipvsadm 1.31's `print_service_entry` prints (`-Ln`, `--stats`,
`-S -n`), because IPVS cannot be loaded in every test environment.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_NODE = ROOT / "svcctl" / "data" / "demo" / "nodes" / "kind-worker"


@dataclass
class GenService:
    """One service port as kube-proxy sees it."""

    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    endpoints: list[tuple[str, int]] = field(default_factory=list)
    protocol: str = "TCP"
    node_port: int | None = None
    external_ips: list[str] = field(default_factory=list)
    lb_ips: list[str] = field(default_factory=list)
    source_ranges: list[str] = field(default_factory=list)
    affinity: int | None = None
    etp_local: bool = False
    local_endpoints: list[tuple[str, int]] = field(default_factory=list)  # subset of endpoints on this node
    scheduler: str = "rr"  # IPVS only
    weights: dict[str, int] = field(default_factory=dict)  # IPVS only: "ip:port" -> weight (default 1)

    @property
    def spn(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name}" if self.port_name else f"{self.namespace}/{self.name}"

    @property
    def proto(self) -> str:
        return self.protocol.lower()


# --------------------------------------------------------------------------- names


def hash_and_truncate(name: str) -> str:
    """kube-proxy nftables' hashAndTruncate (pkg/proxy/nftables/proxier.go)."""
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    out = digest[:8] + "-" + name
    if len(out) > 240:
        out = out[:237] + "..."
    return out


def svc_chain_base(s: GenService) -> str:
    return hash_and_truncate(f"{s.namespace}/{s.name}/{s.proto}/{s.port_name}")


def ep_chain_base(s: GenService, ip: str, port: int) -> str:
    return hash_and_truncate(f"{s.namespace}/{s.name}/{s.proto}/{s.port_name}__{ip.replace(':', '.')}/{port}")


def _ep_sort_key(ep: tuple[str, int]) -> str:
    ip, port = ep
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# --------------------------------------------------------------------------- the demo cluster


def demo_services() -> list[GenService]:
    """The demo `hostnames` cluster (svcctl/data/demo/cluster.yaml): ready endpoints only."""
    return [
        GenService("default", "hostnames", "default", "10.0.1.175", 80, [("10.244.0.5", 9376), ("10.244.0.6", 9376)]),
        GenService("default", "kubernetes", "https", "10.0.0.1", 443, [("172.18.0.2", 6443)]),
        GenService("kube-system", "kube-dns", "dns", "10.0.0.10", 53, [("10.244.0.2", 53)], protocol="UDP"),
        GenService("kube-system", "kube-dns", "dns-tcp", "10.0.0.10", 53, [("10.244.0.2", 53)]),
    ]


def big_services(n_services: int, n_endpoints: int) -> list[GenService]:
    out = []
    for i in range(n_services):
        vip = ipaddress.IPv4Address("10.96.0.0") + 16 + i
        eps = [(str(ipaddress.IPv4Address("10.128.0.0") + i * n_endpoints + j + 2), 8080)
               for j in range(n_endpoints)]
        out.append(GenService(f"ns{i % 50}", f"svc{i}", "http", str(vip), 80, eps))
    return out


# --------------------------------------------------------------------------- nftables


def nft_script(services: list[GenService], *, layout: str = "A", family: str = "ip",
               pod_cidr: str = "10.244.0.0/16", service_cidr: str = "10.0.0.0/16",
               nodeport_ips: list[str] | None = None, bare_single: bool = False,
               no_endpoints: list[GenService] | None = None) -> str:
    """kube-proxy's nftables transaction for these services, in `nft -f` input style.

    layout "A": per-endpoint chains with `numgen … vmap { … goto endpoint-… }` (kube-proxy ≈1.29–1.35);
    layout "B": `dnat ip to numgen random mod N map { i : ip . port }` straight in the service chain and a
    hairpin-connections set (≈1.36+). `bare_single`: one-endpoint services in layout B use a plain `dnat to`.
    """
    if layout not in ("A", "B"):
        raise ValueError("layout must be 'A' or 'B'")
    ipx = "ip" if family == "ip" else "ip6"
    addr_t = "ipv4_addr" if family == "ip" else "ipv6_addr"
    t = f"{family} kube-proxy"
    L: list[str] = []
    a = L.append
    a(f'add table {t} {{ comment "rules for kube-proxy" ; }}')
    a(f'add set {t} cluster-ips {{ type {addr_t} ; comment "Active ClusterIPs" ; }}')
    if nodeport_ips:
        a(f'add set {t} nodeport-ips {{ type {addr_t} ; comment "IPs that accept NodePort traffic" ; }}')
    if layout == "B":
        a(f'add set {t} hairpin-connections {{ type {addr_t} . {addr_t} . inet_proto . inet_service ; '
          f'comment "service hairpin connections" ; }}')
    for m, typ, cmt in (
        ("firewall-ips", f"{addr_t} . inet_proto . inet_service", "destinations that are subject to LoadBalancerSourceRanges"),
        ("no-endpoint-nodeports", "inet_proto . inet_service", "vmap to drop or reject packets to service nodeports with no endpoints"),
        ("no-endpoint-services", f"{addr_t} . inet_proto . inet_service", "vmap to drop or reject packets to services with no endpoints"),
        ("service-ips", f"{addr_t} . inet_proto . inet_service", "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
        ("service-nodeports", "inet_proto . inet_service", "NodePort traffic"),
    ):
        a(f'add map {t} {m} {{ type {typ} : verdict ; comment "{cmt}" ; }}')
    for c, spec in (
        ("filter-prerouting-pre-dnat", "type filter hook prerouting priority -110 ;"),
        ("filter-output-pre-dnat", "type filter hook output priority -110 ;"),
        ("filter-input", "type filter hook input priority 0 ;"),
        ("filter-forward", "type filter hook forward priority 0 ;"),
        ("filter-output", "type filter hook output priority 0 ;"),
        ("nat-prerouting", "type nat hook prerouting priority -100 ;"),
        ("nat-output", "type nat hook output priority -100 ;"),
        ("nat-postrouting", "type nat hook postrouting priority 100 ;"),
    ):
        a(f"add chain {t} {c} {{ {spec} }}")
    for c in ("cluster-ips-check", "firewall-check", "mark-for-masquerade", "masquerading", "services",
              "service-endpoints-check", "nodeport-endpoints-check"):
        a(f"add chain {t} {c}")
    a(f'add chain {t} reject-chain {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}')
    a(f"add rule {t} reject-chain reject")
    a(f'add rule {t} cluster-ips-check {ipx} daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"')
    a(f'add rule {t} cluster-ips-check {ipx} daddr {{ {service_cidr} }} drop comment "Drop traffic to unallocated ClusterIPs"')
    a(f"add rule {t} filter-prerouting-pre-dnat ct state new jump firewall-check")
    a(f"add rule {t} filter-output-pre-dnat ct state new jump firewall-check")
    a(f"add rule {t} filter-forward ct state new jump service-endpoints-check")
    a(f"add rule {t} filter-forward ct state new jump cluster-ips-check")
    a(f"add rule {t} filter-input ct state new jump nodeport-endpoints-check")
    a(f"add rule {t} filter-input ct state new jump service-endpoints-check")
    a(f"add rule {t} filter-output ct state new jump service-endpoints-check")
    a(f"add rule {t} filter-output ct state new jump cluster-ips-check")
    a(f"add rule {t} firewall-check {ipx} daddr . meta l4proto . th dport vmap @firewall-ips")
    a(f"add rule {t} mark-for-masquerade mark set mark or 0x4000")
    if layout == "A":
        a(f"add rule {t} masquerading mark and 0x4000 == 0 return")
        a(f"add rule {t} masquerading mark set mark xor 0x4000")
        a(f"add rule {t} masquerading masquerade fully-random")
    else:
        a(f"add rule {t} masquerading mark and 0x4000 != 0 mark set mark xor 0x4000 masquerade fully-random")
        a(f"add rule {t} masquerading ct status dnat {ipx} saddr . {ipx} daddr . meta l4proto . th dport "
          f"@hairpin-connections masquerade fully-random")
    a(f"add rule {t} nat-output jump services")
    a(f"add rule {t} nat-postrouting jump masquerading")
    a(f"add rule {t} nat-prerouting jump services")
    if layout == "B":
        a(f'add rule {t} services {ipx} daddr @cluster-ips {ipx} saddr != {pod_cidr} jump mark-for-masquerade '
          f'comment "masquerade clusterIP traffic from outside cluster"')
    a(f"add rule {t} services {ipx} daddr . meta l4proto . th dport vmap @service-ips")
    if nodeport_ips:
        a(f"add rule {t} services {ipx} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")
        a(f"add rule {t} nodeport-endpoints-check {ipx} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports")
        a(f"add element {t} nodeport-ips {{ {', '.join(nodeport_ips)} }}")
    else:
        lo = "ip daddr != 127.0.0.0/8" if family == "ip" else "ip6 daddr != ::1"
        a(f"add rule {t} services fib daddr type local {lo} meta l4proto . th dport vmap @service-nodeports")
        a(f"add rule {t} nodeport-endpoints-check fib daddr type local {lo} meta l4proto . th dport vmap @no-endpoint-nodeports")
    a(f"add rule {t} service-endpoints-check {ipx} daddr . meta l4proto . th dport vmap @no-endpoint-services")

    for s in services:
        base = svc_chain_base(s)
        svc = f"service-{base}"
        eps = sorted(s.endpoints, key=_ep_sort_key)
        a(f"add element {t} cluster-ips {{ {s.cluster_ip} }}")
        if not eps:
            a(f'add element {t} no-endpoint-services {{ {s.cluster_ip} . {s.proto} . {s.port} comment "{s.spn}" : goto reject-chain }}')
            continue
        a(f"add chain {t} {svc}")
        if layout == "A":
            a(f"add rule {t} {svc} {ipx} daddr {s.cluster_ip} {ipx} saddr != {pod_cidr} jump mark-for-masquerade")
        use_ep_chains = layout == "A" or s.affinity is not None
        if s.affinity is not None:
            for ip, port in eps:
                eb = ep_chain_base(s, ip, port)
                a(f"add set {t} affinity-{eb} {{ type {addr_t} ; flags dynamic,timeout ; timeout {s.affinity}s ; }}")
                a(f"add rule {t} {svc} {ipx} saddr @affinity-{eb} goto endpoint-{eb}")
        _dispatch(a, t, ipx, s, svc, eps, use_ep_chains, bare_single)
        if use_ep_chains:
            for ip, port in eps:
                eb = ep_chain_base(s, ip, port)
                ep = f"endpoint-{eb}"
                a(f"add chain {t} {ep}")
                if layout == "A":
                    a(f"add rule {t} {ep} {ipx} saddr {ip} jump mark-for-masquerade")
                if s.affinity is not None:
                    a(f"add rule {t} {ep} update @affinity-{eb} {{ {ipx} saddr }}")
                dst = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
                a(f"add rule {t} {ep} meta l4proto {s.proto} dnat to {dst}")
        if layout == "B":
            for ip, port in eps:
                a(f"add element {t} hairpin-connections {{ {ip} . {ip} . {s.proto} . {port} }}")
        a(f"add element {t} service-ips {{ {s.cluster_ip} . {s.proto} . {s.port} : goto {svc} }}")
        has_ext = bool(s.node_port or s.external_ips or s.lb_ips)
        if has_ext:
            ext = f"external-{base}"
            a(f"add chain {t} {ext}")
            target = svc
            if s.etp_local:
                loc = f"local-{base}"
                a(f'add rule {t} {ext} {ipx} saddr {pod_cidr} goto {svc} comment "short-circuit pod traffic"')
                a(f'add rule {t} {ext} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"')
                a(f'add rule {t} {ext} fib saddr type local goto {svc} comment "short-circuit local traffic"')
                a(f"add rule {t} {ext} goto {loc}")
                a(f"add chain {t} {loc}")
                leps = sorted(s.local_endpoints, key=_ep_sort_key)
                if leps:
                    _dispatch(a, t, ipx, s, loc, leps, use_ep_chains, bare_single)
                else:
                    a(f'add rule {t} {loc} drop comment "{s.spn} has no local endpoints"')
            else:
                a(f"add rule {t} {ext} jump mark-for-masquerade")
                a(f"add rule {t} {ext} goto {target}")
            for ip in s.external_ips + s.lb_ips:
                a(f"add element {t} service-ips {{ {ip} . {s.proto} . {s.port} : goto {ext} }}")
            if s.node_port:
                a(f"add element {t} service-nodeports {{ {s.proto} . {s.node_port} : goto {ext} }}")
            if s.source_ranges and s.lb_ips:
                fw = f"firewall-{base}"
                a(f"add chain {t} {fw}")
                a(f"add rule {t} {fw} {ipx} saddr != {{ {', '.join(s.source_ranges)} }} drop")
                for ip in s.lb_ips:
                    a(f"add element {t} firewall-ips {{ {ip} . {s.proto} . {s.port} : goto {fw} }}")
    for s in no_endpoints or []:
        a(f"add element {t} cluster-ips {{ {s.cluster_ip} }}")
        a(f'add element {t} no-endpoint-services {{ {s.cluster_ip} . {s.proto} . {s.port} comment "{s.spn}" : goto reject-chain }}')
        if s.node_port:
            a(f'add element {t} no-endpoint-nodeports {{ {s.proto} . {s.node_port} comment "{s.spn}" : goto reject-chain }}')
    # declare every chain and set before the rules that name them (one `nft -f` transaction)
    decl = [x for x in L if x.startswith(("add table", "add chain", "add set", "add map"))]
    rest = [x for x in L if not x.startswith(("add table", "add chain", "add set", "add map"))]
    return "\n".join(decl + rest) + "\n"


def _dispatch(a: object, t: str, ipx: str, s: GenService, chain: str, eps: list[tuple[str, int]],
              use_ep_chains: bool, bare_single: bool) -> None:
    add = a  # type: ignore[assignment]
    n = len(eps)
    if use_ep_chains:
        items = " , ".join(f"{i} : goto endpoint-{ep_chain_base(s, ip, port)}" for i, (ip, port) in enumerate(eps))
        add(f"add rule {t} {chain} numgen random mod {n} vmap {{ {items} }}")  # type: ignore[operator]
    elif n == 1 and bare_single:
        ip, port = eps[0]
        dst = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        add(f"add rule {t} {chain} meta l4proto {s.proto} dnat {ipx} to {dst}")  # type: ignore[operator]
    else:
        items = ", ".join(f"{i} : {ip} . {port}" for i, (ip, port) in enumerate(eps))
        add(f"add rule {t} {chain} meta l4proto {s.proto} dnat {ipx} to numgen random mod {n} map {{ {items} }}")  # type: ignore[operator]


def gen_nft_ruleset(n_services: int, n_endpoints: int, layout: str = "A") -> str:
    """A big kube-proxy nftables transaction (`nft -f` input) for benchmarks."""
    return nft_script(big_services(n_services, n_endpoints), layout=layout, pod_cidr="10.128.0.0/9",
                      service_cidr="10.96.0.0/12")


def nft_list_via_netns(script: str, family: str = "ip", json_out: bool = False) -> str:
    """Load `script` with the real `nft -f` into a throwaway netns and print the table back."""
    ns = f"svt-{os.getpid()}-gen"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True, check=True)
        cmd = ["ip", "netns", "exec", ns, "nft"] + (["-j"] if json_out else []) + \
              ["list", "table", family, "kube-proxy"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


# --------------------------------------------------------------------------- ipvsadm


def _largenum(i: int) -> str:
    if i < 100000000:
        return f"{i:9d}"
    if i < 1000000000:
        return f"{i // 1000:8d}K"
    if i < 100000000000:
        return f"{i // 1000000:8d}M"
    if i < 100000000000000:
        return f"{i // 1000000000:8d}G"
    return f"{i // 1000000000000:8d}T"


def _ap(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass
class VS:
    """One IPVS virtual service for the printer."""

    protocol: str  # TCP UDP SCTP or FWM
    address: str  # "" for FWM
    port: int
    scheduler: str = "rr"
    persistent: int | None = None
    fwmark: int = 0
    flags: str = ""  # "(mh-fallback,mh-port)" style
    reals: list[dict[str, object]] = field(default_factory=list)  # ip port fwd weight active inact stats
    stats: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    ipv6: bool = False


def _svc_name(v: VS, rule: bool) -> str:
    if v.fwmark:
        if rule:
            return f"-f {v.fwmark}" + (" -6" if v.ipv6 else "")
        return f"FWM  {v.fwmark}" + (" IPv6" if v.ipv6 else "")
    if rule:
        sw = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}[v.protocol]
        return f"{sw} {_ap(v.address, v.port)}"
    name = f"{v.protocol:<4} {_ap(v.address, v.port)}"  # "%-4s %s" in ipvsadm 1.31: "TCP  …", "SCTP …"
    return name if ":" in v.address else name[:33]


def print_ipvsadm(vss: list[VS], fmt: str = "list") -> str:
    """ipvsadm output: fmt "list" (-Ln), "stats" (-Ln --stats), "rate" (-Ln --rate), "save" (-S -n)."""
    out: list[str] = []
    if fmt != "save":
        out.append("IP Virtual Server version 1.2.1 (size=4096)")
    if fmt == "stats":
        out.append(f"{'Prot LocalAddress:Port':<33} {'Conns':>8} {'InPkts':>8} {'OutPkts':>8} {'InBytes':>8} {'OutBytes':>8}")
        out.append("  -> RemoteAddress:Port")
    elif fmt == "rate":
        out.append(f"{'Prot LocalAddress:Port':<33} {'CPS':>8} {'InPPS':>8} {'OutPPS':>8} {'InBPS':>8} {'OutBPS':>8}")
        out.append("  -> RemoteAddress:Port")
    elif fmt == "list":
        out.append("Prot LocalAddress:Port Scheduler Flags")
        out.append("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
    proto_num = {"TCP": 6, "UDP": 17, "SCTP": 132}
    # ipvs_cmp_services: fwmark, address family, protocol, address, port
    vss = sorted(vss, key=lambda v: (v.fwmark, v.ipv6, proto_num.get(v.protocol, 0),
                                     ipaddress.ip_address(v.address).packed if v.address else b"", v.port))
    for v in vss:
        name = _svc_name(v, fmt == "save")
        if fmt == "save":
            line = f"-A {name} -s {v.scheduler}"
            if v.persistent is not None:
                line += f" -p {v.persistent}"
            if v.flags:
                line += f" -b {v.flags.strip('()')}"
        elif fmt in ("stats", "rate"):
            line = f"{name:<33}" + "".join(_largenum(x) for x in v.stats)
        else:
            line = f"{name} {v.scheduler}"
            if v.flags:
                line += f" {v.flags}"
            if v.persistent is not None:
                line += f" persistent {v.persistent}"
        out.append(line)
        for r in sorted(v.reals, key=lambda r: (ipaddress.ip_address(str(r["ip"])), int(r["port"]))):  # type: ignore[call-overload]
            dname = _ap(str(r["ip"]), int(r["port"]))  # type: ignore[call-overload]
            if ":" not in str(r["ip"]):
                dname = dname[:28]
            fwd = str(r.get("fwd", "Masq"))
            w = int(r.get("weight", 1))  # type: ignore[call-overload]
            if fmt == "save":
                sw = {"Masq": "-m", "Tunnel": "-i", "Route": "-g", "Local": "-g"}[fwd]
                out.append(f"-a {name} -r {dname} {sw} -w {w}")
            elif fmt in ("stats", "rate"):
                st = r.get("stats", (0, 0, 0, 0, 0))
                if fmt == "rate":
                    c, i, o, ib, ob = st  # type: ignore[misc]
                    out.append(f"  -> {dname:<28} {c:8d} {i:8d} {o:8d}" + _largenum(ib) + _largenum(ob))
                else:
                    out.append(f"  -> {dname:<28}" + "".join(_largenum(int(x)) for x in st))  # type: ignore[union-attr]
            else:
                out.append(f"  -> {dname:<28} {fwd:<7} {w:<6d} {int(r.get('active', 0)):<10d} "  # type: ignore[call-overload]
                           f"{int(r.get('inactive', 0)):<10d}")  # type: ignore[call-overload]
    return "\n".join(out) + "\n"


def print_ipvsadm_service(v: VS) -> str:
    """What `ipvsadm -Ln -t|-u|--sctp-service ADDR:PORT` prints: ipvsadm.c's list_service is print_title (the two
    column-title lines, no `IP Virtual Server version` banner: that is list_all's) and print_service_entry."""
    return print_ipvsadm([v], "list").split("\n", 1)[1]


NO_SUCH_SERVICE = "No such service\n"  # list_service's stderr (ipvs_strerror(ESRCH)) for a missing one, exit 1


def services_to_vs(services: list[GenService]) -> list[VS]:
    out = []
    for s in services:
        if not s.endpoints:
            continue
        reals: list[dict[str, object]] = [{"ip": ip, "port": port, "weight": s.weights.get(_ap(ip, port), 1)}
                                          for ip, port in s.endpoints]
        out.append(VS(s.protocol, s.cluster_ip, s.port, scheduler=s.scheduler, persistent=s.affinity,
                      reals=reals, ipv6=":" in s.cluster_ip))
    # ipvsadm sorts services by (af, protocol, address, port) — ipvs_cmp_services
    proto_num = {"TCP": 6, "UDP": 17, "SCTP": 132}
    out.sort(key=lambda v: (v.ipv6, proto_num.get(v.protocol, 0), ipaddress.ip_address(v.address).packed, v.port))
    return out


def gen_ipvsadm(n_services: int, n_endpoints: int) -> str:
    """`ipvsadm -Ln` for N services × M endpoints (rr, Masq, weight 1)."""
    return print_ipvsadm(services_to_vs(big_services(n_services, n_endpoints)), "list")


def fixture_vss() -> list[VS]:
    """Every ipvsadm feature the parser reads, for tests/fixtures/ipvs."""
    M, K = 1000_000, 1000
    return [
        VS("TCP", "10.0.1.175", 80, reals=[
            {"ip": "10.244.0.5", "port": 9376, "active": 3, "inactive": 12, "stats": (1520, 9120, 8011, 731 * K, 1234 * M)},
            {"ip": "10.244.0.6", "port": 9376, "active": 2, "inactive": 15, "stats": (1519, 9001, 7990, 720 * K, 123_456_789_012)},
        ], stats=(3039, 18121, 16001, 1451 * K, 124_690_789_012)),
        VS("TCP", "10.0.0.1", 443, persistent=10800, reals=[{"ip": "172.18.0.2", "port": 6443, "active": 7}],
           stats=(120_000_000, 990_000_000, 2_000_000_000, 5_000_000_000_000, 150_000_000_000_000)),
        VS("UDP", "10.0.0.10", 53, reals=[{"ip": "10.244.0.2", "port": 53, "inactive": 4}]),
        VS("TCP", "10.0.5.5", 8080, scheduler="wrr", reals=[
            {"ip": "10.244.1.10", "port": 8080, "weight": 3, "active": 9},
            {"ip": "10.244.1.11", "port": 8080, "weight": 1, "active": 3},
            {"ip": "10.244.1.12", "port": 8080, "weight": 0, "active": 5, "inactive": 1},
        ]),
        VS("TCP", "10.0.6.6", 80, scheduler="lc", reals=[{"ip": "10.244.2.2", "port": 80}, {"ip": "10.244.2.3", "port": 80}]),
        VS("TCP", "10.0.7.7", 80, scheduler="sh", flags="(sh-fallback,sh-port)",
           reals=[{"ip": "10.244.3.2", "port": 80}, {"ip": "10.244.3.3", "port": 80}]),
        VS("TCP", "10.0.10.10", 80, scheduler="mh", reals=[{"ip": "10.244.3.4", "port": 80}]),
        VS("SCTP", "10.0.8.8", 3868, reals=[{"ip": "10.244.4.4", "port": 3868}]),
        VS("TCP", "10.0.9.9", 80),
        VS("TCP", "172.18.0.3", 30080, reals=[{"ip": "10.244.0.5", "port": 9376}, {"ip": "10.244.0.6", "port": 9376}]),
        VS("TCP", "10.0.11.11", 80, reals=[{"ip": "10.244.0.8", "port": 80, "weight": 0, "active": 2}]),
        VS("FWM", "", 0, fwmark=7, reals=[{"ip": "192.168.1.10", "port": 80, "fwd": "Route"}]),
        VS("TCP", "fd00:10:96::a", 80, ipv6=True, reals=[
            {"ip": "fd00:10:244:1:2:3:aa:bbbb", "port": 8080, "active": 1},
            {"ip": "fd00:10:244::6", "port": 8080},
        ]),
    ]


def fixture_conns() -> str:
    rows = [
        ("TCP", "14:58", "ESTABLISHED", "10.244.0.1:51234", "10.0.1.175:80", "10.244.0.5:9376"),
        ("TCP", "01:57", "FIN_WAIT", "10.244.0.1:51236", "10.0.1.175:80", "10.244.0.6:9376"),
        ("TCP", "00:59", "SYN_RECV", "172.18.0.1:40000", "10.0.0.1:443", "172.18.0.2:6443"),
        ("UDP", "04:59", "UDP", "10.244.0.9:33000", "10.0.0.10:53", "10.244.0.2:53"),
        ("TCP", "179:59", "NONE", "10.244.0.9:0", "10.0.0.1:443", "172.18.0.2:6443"),
        ("TCP", "14:59", "ESTABLISHED", "[fd00:10:244::9]:40100", "[fd00:10:96::a]:80", "[fd00:10:244::6]:8080"),
    ]
    out = ["IPVS connection entries", f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination"]
    for p, e, st, c, v, d in rows:
        out.append(f"{p:<3} {e:<6} {st:<11} {c:<18} {v:<18} {d}")
    return "\n".join(out) + "\n"


def write_ipvs_fixtures(dest: Path = ROOT / "tests" / "fixtures" / "ipvs") -> None:
    dest.mkdir(parents=True, exist_ok=True)
    vss = fixture_vss()
    (dest / "full.txt").write_text(print_ipvsadm(vss, "list"))
    (dest / "stats.txt").write_text(print_ipvsadm(vss, "stats"))
    (dest / "rate.txt").write_text(print_ipvsadm(vss, "rate"))
    (dest / "save.txt").write_text(print_ipvsadm(vss, "save"))
    (dest / "conns.txt").write_text(fixture_conns())


# --------------------------------------------------------------------------- nft fixtures


def fixture_services() -> list[GenService]:
    """Every nftables feature: multi-endpoint, affinity, LB with source ranges, ETP Local, NodePorts, UDP."""
    return demo_services() + [
        GenService("ns2", "web", "http", "10.0.2.2", 80,
                   [("10.244.1.3", 8080), ("10.244.1.4", 8080), ("10.244.2.9", 8080)],
                   node_port=30080, lb_ips=["203.0.113.7"], source_ranges=["192.0.2.0/24", "198.51.100.0/24"],
                   affinity=10800),
        GenService("ns3", "loc", "", "10.0.3.3", 443, [("10.244.1.5", 8443), ("10.244.2.6", 8443)],
                   node_port=30443, external_ips=["192.0.2.50"], etp_local=True,
                   local_endpoints=[("10.244.1.5", 8443)]),
        GenService("ns5", "nolocal", "http", "10.0.5.5", 80, [("10.244.2.7", 80)], node_port=30555,
                   etp_local=True, local_endpoints=[]),
    ]


def fixture_no_endpoints() -> list[GenService]:
    return [GenService("ns4", "empty", "p", "10.0.4.4", 80, [], node_port=30999)]


def fixture_services6() -> list[GenService]:
    return [
        GenService("default", "web6", "http", "fd00:10:96::10", 80,
                   [("fd00:10:244::5", 8080), ("fd00:10:244::6", 8080)]),
        GenService("default", "one6", "http", "fd00:10:96::11", 80, [("fd00:10:244::7", 8080)], affinity=600),
    ]


def fixture_scripts() -> dict[str, tuple[str, str]]:
    """name -> (nft -f script, family)."""
    return {
        "layout-a": (nft_script(fixture_services(), layout="A", nodeport_ips=["172.18.0.3"],
                                no_endpoints=fixture_no_endpoints()), "ip"),
        "layout-b": (nft_script(fixture_services(), layout="B", no_endpoints=fixture_no_endpoints(),
                                bare_single=True), "ip"),
        "ip6-a": (nft_script(fixture_services6(), layout="A", family="ip6", pod_cidr="fd00:10:244::/64",
                             service_cidr="fd00:10:96::/112"), "ip6"),
        "ip6-b": (nft_script(fixture_services6(), layout="B", family="ip6", pod_cidr="fd00:10:244::/64",
                             service_cidr="fd00:10:96::/112"), "ip6"),
    }


STALE_EXTRA = ("add chain ip kube-proxy service-OLDCHAIN-ns9/gone/tcp/http\n"
               "add rule ip kube-proxy service-OLDCHAIN-ns9/gone/tcp/http meta l4proto tcp dnat to 10.244.9.9:80\n")

IPTABLES_SAVE_SMALL = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-PM2QQW4DHQ4FJB4S - [0:0]
:KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SERVICES -d 10.0.1.175/32 -p tcp -m comment --comment "default/hostnames:default cluster IP" -m tcp --dport 80 -j KUBE-SVC-PM2QQW4DHQ4FJB4S
-A KUBE-SVC-PM2QQW4DHQ4FJB4S -m comment --comment "default/hostnames:default -> 10.244.0.5:9376" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-AAAAAAAAAAAAAAAA
-A KUBE-SVC-PM2QQW4DHQ4FJB4S -m comment --comment "default/hostnames:default -> 10.244.0.6:9376" -j KUBE-SEP-BBBBBBBBBBBBBBBB
-A KUBE-SEP-AAAAAAAAAAAAAAAA -p tcp -m tcp -j DNAT --to-destination 10.244.0.5:9376
-A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -m tcp -j DNAT --to-destination 10.244.0.6:9376
COMMIT
"""


def _netns_run(script_cmds: list[tuple[list[str], str | None]]) -> list[str]:
    ns = f"svt-{os.getpid()}-gen"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    outs = []
    try:
        for argv, stdin in script_cmds:
            r = subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, text=True, capture_output=True,
                               check=True)
            outs.append(r.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return outs


def write_nft_handles_fixture(dest: Path = ROOT / "tests" / "fixtures" / "nft") -> None:
    """`nft -a list table ip kube-proxy` (rule handles as `# handle N` comments)."""
    script = fixture_scripts()["layout-a"][0]
    (dest / "layout-a-handles.txt").write_text(
        _netns_run([(["nft", "-f", "-"], script), (["nft", "-a", "list", "table", "ip", "kube-proxy"], None)])[1])


KUBELET_IPTABLES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
"""


def write_nft_kubelet_fixture(dest: Path = ROOT / "tests" / "fixtures" / "nft") -> None:
    """`nft list ruleset` of an nftables-mode node: kube-proxy's table beside kubelet's iptables-nft chains."""
    script = fixture_scripts()["layout-b"][0]
    (dest / "ruleset-kubelet.txt").write_text(_netns_run([
        (["iptables-nft-restore"], KUBELET_IPTABLES), (["nft", "-f", "-"], script),
        (["nft", "list", "ruleset"], None)])[2])


def write_nft_fixtures(dest: Path = ROOT / "tests" / "fixtures" / "nft") -> None:
    """Load each generated ruleset with the real nft in a throwaway netns; keep what `nft list` prints."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, (script, fam) in fixture_scripts().items():
        (dest / f"{name}.nft").write_text(script)
        text, js = _netns_run([(["nft", "-f", "-"], script), (["nft", "list", "table", fam, "kube-proxy"], None),
                               (["nft", "-j", "list", "table", fam, "kube-proxy"], None)])[1:]
        (dest / f"{name}.txt").write_text(text)
        (dest / f"{name}.json").write_text(js)
    write_nft_handles_fixture(dest)
    both = fixture_scripts()["layout-a"][0] + fixture_scripts()["ip6-a"][0]
    other = "add table inet filter\nadd chain inet filter input { type filter hook input priority 0 ; }\n" \
            "add rule inet filter input tcp dport 22 accept\n"
    (dest / "ruleset.txt").write_text(_netns_run([(["nft", "-f", "-"], other + both),
                                                  (["nft", "list", "ruleset"], None)])[1])
    write_nft_kubelet_fixture(dest)
    stale = fixture_scripts()["layout-a"][0] + STALE_EXTRA
    (dest / "stale.txt").write_text(_netns_run([(["nft", "-f", "-"], stale),
                                                (["nft", "list", "table", "ip", "kube-proxy"], None)])[1])
    outs = _netns_run([(["iptables-nft-restore"], IPTABLES_SAVE_SMALL), (["nft", "list", "ruleset"], None),
                       (["nft", "-j", "list", "ruleset"], None)])
    (dest / "iptables-nft.txt").write_text(outs[1])
    (dest / "iptables-nft.json").write_text(outs[2])


def damage(text: str, how: int, where: float, what: str) -> str:
    """A near-miss of a good dump for robustness tests: cut (0), line dropped (1), char replaced (2), span doubled (3)."""
    i = int(where * len(text))
    lines = text.splitlines(True)
    if how == 0:
        return text[:i]
    if how == 1:
        j = int(where * len(lines))
        return "".join(lines[:j] + lines[j + 1:])
    if how == 2:
        return text[:i] + what + text[i + 1:]
    return text[:i] + text[i: i + 30] + text[i:]


# --------------------------------------------------------------------------- demo files


def demo_ipvsadm() -> str:
    return print_ipvsadm(services_to_vs(demo_services()), "list")


def demo_nft_script() -> str:
    return nft_script(demo_services(), layout="A", pod_cidr="10.244.0.0/16", service_cidr="10.0.0.0/16",
                      nodeport_ips=["172.18.0.3"])


def demo_ipset() -> str:
    members = []
    for s in demo_services():
        members.append(f"{s.cluster_ip},{s.proto}:{s.port}")
    body = "\n".join(sorted(members))
    return ("Name: KUBE-CLUSTER-IP\nType: hash:ip,port\nRevision: 6\n"
            "Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x4a7b9c31\n"
            f"Size in memory: 512\nReferences: 2\nNumber of entries: {len(members)}\nMembers:\n{body}\n\n"
            "Name: KUBE-LOOP-BACK\nType: hash:ip,port,ip\nRevision: 6\n"
            "Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1c2d3e4f\n"
            "Size in memory: 432\nReferences: 1\nNumber of entries: 3\nMembers:\n"
            "10.244.0.2,udp:53,10.244.0.2\n10.244.0.2,tcp:53,10.244.0.2\n"
            "10.244.0.5,tcp:9376,10.244.0.5\n")


def demo_ip_addr() -> str:
    vips = ["10.0.0.1", "10.0.0.10", "10.0.1.175"]
    lines = ["5: kube-ipvs0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN group default ",
             "    link/ether 9e:5f:02:c1:7a:4d brd ff:ff:ff:ff:ff:ff"]
    for v in vips:
        lines.append(f"    inet {v}/32 scope global kube-ipvs0")
        lines.append("       valid_lft forever preferred_lft forever")
    return "\n".join(lines) + "\n"


def write_demo() -> None:
    DEMO_NODE.mkdir(parents=True, exist_ok=True)
    (DEMO_NODE / "ipvsadm.txt").write_text(demo_ipvsadm())
    (DEMO_NODE / "ipset.txt").write_text(demo_ipset())
    (DEMO_NODE / "ip-addr-kube-ipvs0.txt").write_text(demo_ip_addr())
    (DEMO_NODE / "nft.txt").write_text(nft_list_via_netns(demo_nft_script()))


if __name__ == "__main__":
    if "--demo" in sys.argv:
        write_demo()
    elif "--ipvs-fixtures" in sys.argv:
        write_ipvs_fixtures()
    elif "--nft-fixtures" in sys.argv:
        write_nft_fixtures()
    elif "--nft" in sys.argv:
        sys.stdout.write(nft_script(demo_services(), layout=sys.argv[-1] if sys.argv[-1] in "AB" else "A"))
    else:
        sys.stdout.write(demo_ipvsadm())

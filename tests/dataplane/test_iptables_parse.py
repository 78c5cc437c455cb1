"""iptables-save parsing: kube-proxy's chain names, options in any order, every kind of service entry."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_dumps import (  # noqa: E402
    GenCluster,
    GenEndpoint,
    GenPort,
    GenService,
    demo_cluster,
    iptables_save,
    probability,
)

from svcctl.analysis.ownership import chain_owner, orphan_chains  # noqa: E402
from svcctl.dataplane import detect_mode, load_node_rules  # noqa: E402
from svcctl.dataplane.hashes import (  # noqa: E402
    endpoint_chain,
    hash_and_truncate,
    nft_endpoint_base,
    nft_service_base,
    service_chain,
    service_chains,
)
from svcctl.dataplane.iptables import (  # noqa: E402
    parse_iptables_save,
    parse_rule_text,
    probability_fraction,
)
from svcctl.dataplane.model import NodeRules, ServiceEntry  # noqa: E402
from svcctl.errors import InputError  # noqa: E402
from svcctl.model import EndpointSlice, Service  # noqa: E402
from svcctl.sources.base import NodeDumps  # noqa: E402

DEMO_DUMP = Path(__file__).resolve().parent.parent.parent / "svcctl" / "data" / "demo" / "nodes" / "kind-worker" / \
    "iptables-save.txt"


def one(rules: NodeRules, name: str, kind: str = "ClusterIP") -> ServiceEntry:
    found = [s for s in rules.services if s.name == name and s.kind == kind]
    assert len(found) == 1, [(s.name, s.kind) for s in rules.services]
    return found[0]


def shares(e: ServiceEntry) -> dict[str, Fraction | None]:
    return {b.address: b.probability for b in e.backends}


# ------------------------------------------------------------------ hashes (expectations from kube-proxy's tests)


def test_chain_names_match_kube_proxy() -> None:
    assert service_chain("default/kubernetes:https", "tcp") == "KUBE-SVC-NPX46M4PTMTKRN6Y"
    assert service_chain("ns1/svc1:p80", "TCP") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.1", 80) == "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert service_chains("ns5/svc5:p80", "tcp")["KUBE-FW-"] == "KUBE-FW-NUKIZ6OKUXPJNT4C"
    assert service_chains("ns2/svc2:p80", "tcp")["KUBE-EXT-"] == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"
    assert endpoint_chain("ns5/svc5:p80", "tcp", "10.180.0.3", 80) == "KUBE-SEP-I77PXRDZVX7PMWMN"


def test_nftables_names_match_kube_proxy() -> None:
    assert nft_service_base("ns1", "svc1", "tcp", "p80") == "ULMVA6XW-ns1/svc1/tcp/p80"
    assert nft_endpoint_base("ns1", "svc1", "tcp", "p80", "10.180.0.1", 80) == "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    long = hash_and_truncate("x" * 300)
    assert len(long) == 240 and long.endswith("...")
    v6 = nft_endpoint_base("ns1", "svc1", "tcp", "p80", "2001:db8::1", 80)
    assert v6.endswith("__2001.db8..1/80")


def test_ipv6_endpoint_chain_uses_brackets() -> None:
    assert endpoint_chain("a/b:c", "tcp", "2001:db8::1", 80) != endpoint_chain("a/b:c", "tcp", "2001:db8::1:80", 0)


# ------------------------------------------------------------------ probabilities


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 10, 33, 1000])
def test_cascade_gives_exact_equal_shares(n: int) -> None:
    eps = [GenEndpoint(f"10.244.{i // 250}.{i % 250 + 1}") for i in range(n)]
    c = GenCluster(services=[GenService("ns", "s", "10.96.0.5", [GenPort("p", 80, 8080)], eps)])
    e = one(parse_iptables_save(iptables_save(c), "gen"), "ns/s:p")
    assert len(e.backends) == n
    assert all(b.probability == Fraction(1, n) for b in e.backends)


def test_printed_probabilities_to_fractions() -> None:
    assert probability(3) == "0.33333333349"
    assert probability_fraction("0.33333333349") == Fraction(1, 3)
    assert probability_fraction("0.3333333333") == Fraction(1, 3)
    assert probability_fraction("0.33332999982") == Fraction(1, 3)  # old kube-proxy printed %0.5f
    assert probability_fraction("0.50000000000") == Fraction(1, 2)
    assert probability_fraction("0.30000000000") == Fraction(3, 10)  # not 1/k: kept as it is


def test_uneven_hand_written_cascade() -> None:
    text = """*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
-A KUBE-SERVICES -d 10.0.0.5/32 -p tcp -m comment --comment "x/y:p cluster IP" -m tcp --dport 80 -j KUBE-SVC-A
-A KUBE-SVC-A -m statistic --mode random --probability 0.25000000000 -j DNAT --to-destination 10.1.0.1:80
-A KUBE-SVC-A -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.1.0.2:80
-A KUBE-SVC-A -p tcp -j DNAT --to-destination 10.1.0.3:80
COMMIT
"""
    e = one(parse_iptables_save(text, "t"), "x/y:p")
    assert shares(e) == {"10.1.0.1:80": Fraction(1, 4), "10.1.0.2:80": Fraction(3, 8), "10.1.0.3:80": Fraction(3, 8)}


# ------------------------------------------------------------------ the demo dump


def test_demo_dump() -> None:
    rules = parse_iptables_save(DEMO_DUMP.read_text(), "demo")
    assert rules.backend == "nf_tables"
    e = one(rules, "default/hostnames:default")
    assert (e.address, e.port, e.protocol) == ("10.0.1.175", 80, "TCP")
    assert shares(e) == {"10.244.0.5:9376": Fraction(1, 2), "10.244.0.6:9376": Fraction(1, 2)}
    assert "traffic not from 10.244.0.0/16 is masqueraded" in e.masquerade
    assert e.path == ["KUBE-SVC-ODX2UBAZM7RQWOIU"]
    assert shares(one(rules, "default/kubernetes:https")) == {"172.18.0.2:6443": 1}
    dns = one(rules, "kube-system/kube-dns:dns")
    assert dns.protocol == "UDP" and shares(dns) == {"10.244.0.2:53": 1}
    assert one(rules, "kube-system/kube-dns:dns-tcp").protocol == "TCP"
    assert rules.unreferenced_chains == []
    assert rules.stats.rules == DEMO_DUMP.read_text().count("\n-A ")
    assert rules.stats.per_service["default/hostnames:default"] == 8  # 1 + SVC 3 + 2 SEP x 2


def test_demo_dump_is_what_the_generator_writes() -> None:
    assert DEMO_DUMP.read_text() == iptables_save(demo_cluster())


# ------------------------------------------------------------------ option order, comment styles, formats


KUBE_PROXY_ORDER = """*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
COMMIT
"""
SAVE_ORDER = """# Generated by iptables-save v1.8.7 (legacy) on Mon Jan  1 00:00:00 2024
*nat
:PREROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SEP-SXIVWICOYRO3J4NJ -s 10.180.0.1/32 -m comment --comment "ns1/svc1:p80" -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O ! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
COMMIT
"""


def test_option_order_does_not_matter() -> None:
    a = one(parse_iptables_save(KUBE_PROXY_ORDER, "a"), "ns1/svc1:p80")
    b = one(parse_iptables_save(SAVE_ORDER, "b"), "ns1/svc1:p80")
    for e in (a, b):
        assert (e.address, e.port, e.protocol) == ("172.30.0.41", 80, "TCP")
        assert shares(e) == {"10.180.0.1:80": 1}
        assert e.masquerade[0] == "traffic not from 10.0.0.0/8 is masqueraded"
    assert parse_iptables_save(SAVE_ORDER, "b").backend == "legacy"


def test_rule_options_parsed() -> None:
    r = parse_rule_text('KUBE-X ! -s 10.0.0.0/8 -d 1.2.3.4/32 -p tcp -m comment --comment "a b \\"c\\"" -m tcp '
                        "--dport 80 -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-Y --mask "
                        "255.255.255.255 --rsource -j DNAT --to-destination 1.1.1.1:80", "nat", 1, "t")
    assert r.chain == "KUBE-X" and r.target == "DNAT"
    assert r.opts["-s"] == "!10.0.0.0/8" and r.opts["-d"] == "1.2.3.4/32"
    assert r.comment == 'a b "c"'
    assert r.opts["--seconds"] == "10800" and "--rcheck" in r.opts and r.opts["--name"] == "KUBE-SEP-Y"
    assert r.target_opts["--to-destination"] == "1.1.1.1:80"
    r2 = parse_rule_text("KUBE-FW-X -m mark ! --mark 0x4000/0x4000 -j REJECT --reject-with icmp-port-unreachable",
                         "filter", 2, "t")
    assert r2.opts["--mark"] == "!0x4000/0x4000" and r2.target_opts["--reject-with"] == "icmp-port-unreachable"


def test_old_comment_style_and_unnamed_port() -> None:
    """Old kube-proxy: SVC→SEP rules carry only `"ns/svc"`, the unnamed port's name is `ns/svc` (or `ns/svc:`)."""
    spn = "ns/old:"
    svc, sep = service_chain(spn, "tcp"), endpoint_chain(spn, "tcp", "10.2.0.4", 8080)
    text = f"""*nat
:KUBE-SERVICES - [0:0]
:{svc} - [0:0]
:{sep} - [0:0]
-A KUBE-SERVICES -d 10.3.0.9/32 -p tcp -m comment --comment "ns/old: cluster IP" -m tcp --dport 80 -j {svc}
-A {svc} -m comment --comment "ns/old:" -j {sep}
-A {sep} -p tcp -m comment --comment "ns/old:" -m tcp -j DNAT --to-destination 10.2.0.4:8080
COMMIT
"""
    rules = parse_iptables_save(text, "old")
    assert shares(one(rules, "ns/old:")) == {"10.2.0.4:8080": 1}
    service = Service.from_dict({"metadata": {"name": "old", "namespace": "ns"},
                                 "spec": {"clusterIP": "10.3.0.9", "ports": [{"port": 80, "targetPort": 8080}]}})
    sl = EndpointSlice.from_dict({"metadata": {"name": "old-1", "namespace": "ns",
                                               "labels": {"kubernetes.io/service-name": "old"}},
                                  "endpoints": [{"addresses": ["10.2.0.4"], "conditions": {"ready": True}}],
                                  "ports": [{"port": 8080, "protocol": "TCP"}]})
    owner = chain_owner(sep, [service], [sl])
    assert owner is not None and owner.service == "ns/old" and owner.kind == "SEP" and owner.endpoint == "10.2.0.4:8080"
    assert chain_owner(svc, [service], [sl]) is not None
    assert orphan_chains([svc, sep, "KUBE-SEP-AAAAAAAAAAAAAAAA"], [service], [sl]) == ["KUBE-SEP-AAAAAAAAAAAAAAAA"]


def test_unnamed_port_current_style() -> None:
    c = GenCluster(services=[GenService("ns", "plain", "10.96.0.7", [GenPort("", 80, 8080)],
                                        [GenEndpoint("10.244.1.1")])])
    rules = parse_iptables_save(iptables_save(c), "g")
    e = one(rules, "ns/plain")
    assert e.path == [service_chain("ns/plain", "tcp")]


def test_counters() -> None:
    c = demo_cluster()
    plain = parse_iptables_save(iptables_save(c), "p")
    counted = parse_iptables_save(iptables_save(c, counters=True), "c")
    assert [s.to_json() for s in plain.services] == [
        {**s.to_json(), "backends": [{k: v for k, v in b.to_json().items() if k != "connections"}
                                     for b in s.backends]} for s in counted.services]
    assert all(b.connections == 0 for s in counted.services for b in s.backends)
    assert counted.stats.rules == plain.stats.rules


def test_ipv6_dump_and_merge_with_ipv4() -> None:
    c = GenCluster(services=[GenService("ns", "v6", "fd00:10:96::a", [GenPort("http", 80, 8080)],
                                        [GenEndpoint("fd00:10:244::5"), GenEndpoint("fd00:10:244::6")])],
                   cluster_cidr="fd00:10:244::/56", banner="ip6tables-save v1.8.9 (nf_tables)")
    text = iptables_save(c)
    assert "-d fd00:10:96::a/128" in text and "--to-destination [fd00:10:244::5]:8080" in text
    rules = parse_iptables_save(text, "v6")
    e = one(rules, "ns/v6:http")
    assert e.address == "fd00:10:96::a"
    assert shares(e) == {"[fd00:10:244::5]:8080": Fraction(1, 2), "[fd00:10:244::6]:8080": Fraction(1, 2)}
    merged = load_node_rules(NodeDumps("n", {"iptables": iptables_save(demo_cluster()), "ip6tables": text}))
    assert {s.name for s in merged.services} >= {"ns/v6:http", "default/hostnames:default"}


def test_iptables_list_listing() -> None:
    listing = """Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
   10   600 KUBE-SERVICES  all  --  *      *       0.0.0.0/0            0.0.0.0/0            /* kubernetes service portals */

Chain KUBE-SERVICES (2 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-SVC-ODX2UBAZM7RQWOIU  tcp  --  *      *       0.0.0.0/0            10.0.1.175           /* default/hostnames:default cluster IP */ tcp dpt:80
    0     0 KUBE-NODEPORTS  all  --  *      *       0.0.0.0/0            0.0.0.0/0            /* kubernetes service nodeports; NOTE: this must be the last rule in this chain */ ADDRTYPE match dst-type LOCAL

Chain KUBE-NODEPORTS (1 references)
 pkts bytes target     prot opt in     out     source               destination

Chain KUBE-MARK-MASQ (3 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 MARK       all  --  *      *       0.0.0.0/0            0.0.0.0/0            MARK or 0x4000

Chain KUBE-SVC-ODX2UBAZM7RQWOIU (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-MARK-MASQ  tcp  --  *      *      !10.244.0.0/16        10.0.1.175           /* default/hostnames:default cluster IP */ tcp dpt:80
    0     0 KUBE-SEP-A  all  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default -> 10.244.0.5:9376 */ statistic mode random probability 0.50000000000
    0     0 KUBE-SEP-B  all  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default -> 10.244.0.6:9376 */

Chain KUBE-SEP-A (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-MARK-MASQ  all  --  *      *       10.244.0.5           0.0.0.0/0            /* default/hostnames:default */
    0     0 DNAT       tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default */ tcp to:10.244.0.5:9376

Chain KUBE-SEP-B (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-MARK-MASQ  all  --  *      *       10.244.0.6           0.0.0.0/0            /* default/hostnames:default */
    0     0 DNAT       tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default */ tcp to:10.244.0.6:9376
"""
    rules = parse_iptables_save(listing, "list")
    e = one(rules, "default/hostnames:default")
    assert (e.address, e.port) == ("10.0.1.175", 80)
    assert shares(e) == {"10.244.0.5:9376": Fraction(1, 2), "10.244.0.6:9376": Fraction(1, 2)}
    assert "traffic not from 10.244.0.0/16 is masqueraded" in e.masquerade
    short = "\n".join(
        ["Chain KUBE-SERVICES (2 references)", "target     prot opt source               destination",
         "KUBE-SVC-X  tcp  --  0.0.0.0/0            10.0.0.1             /* default/kubernetes:https cluster IP */ "
         "tcp dpt:443", "", "Chain KUBE-SVC-X (1 references)",
         "target     prot opt source               destination",
         "DNAT       tcp  --  0.0.0.0/0            0.0.0.0/0            tcp to:172.18.0.2:6443"])
    e2 = one(parse_iptables_save(short, "l2"), "default/kubernetes:https")
    assert shares(e2) == {"172.18.0.2:6443": 1}


@pytest.mark.parametrize("text,line", [
    ("apiVersion: v1\nkind: List\n", 1),
    ("# comment\n\nhello world\n", 3),
    ("*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j\nCOMMIT\n", 3),
    ("*nat\n:KUBE-SERVICES - [0:0]\nbogus line here\nCOMMIT\n", 3),
])
def test_not_a_dump_is_an_input_error_with_line(text: str, line: int) -> None:
    with pytest.raises(InputError) as ei:
        parse_iptables_save(text, "f.txt")
    assert ei.value.line == line and ei.value.message.startswith(f"f.txt:{line}:")


def test_empty_input() -> None:
    with pytest.raises(InputError):
        parse_iptables_save("\n\n", "e.txt")


# ------------------------------------------------------------------ every kind of entry


def _kinds_cluster() -> GenCluster:
    return GenCluster(services=[
        GenService("ns", "np", "10.96.0.20", [GenPort("http", 80, 8080, node_port=30080)],
                   [GenEndpoint("10.244.1.1"), GenEndpoint("10.244.2.1", local=False)],
                   external_ips=["192.0.2.10"]),
        GenService("ns", "lb", "10.96.0.21", [GenPort("http", 80, 8080, node_port=30081)],
                   [GenEndpoint("10.244.1.2"), GenEndpoint("10.244.2.2", local=False)],
                   lb_ips=["203.0.113.5"], source_ranges=["198.51.100.0/24"], affinity_seconds=10800),
        GenService("ns", "etp", "10.96.0.22", [GenPort("http", 80, 8080, node_port=30082)],
                   [GenEndpoint("10.244.1.3"), GenEndpoint("10.244.2.3", local=False),
                    GenEndpoint("10.244.1.4")],
                   lb_ips=["203.0.113.6"], etp_local=True, health_check_node_port=32000),
        GenService("ns", "etp-none", "10.96.0.23", [GenPort("http", 80, 8080, node_port=30083)],
                   [GenEndpoint("10.244.2.4", local=False)], lb_ips=["203.0.113.7"], etp_local=True),
        GenService("ns", "itp", "10.96.0.24", [GenPort("http", 80, 8080)],
                   [GenEndpoint("10.244.1.5"), GenEndpoint("10.244.2.5", local=False)], itp_local=True),
        GenService("ns", "itp-none", "10.96.0.25", [GenPort("http", 80, 8080)],
                   [GenEndpoint("10.244.2.6", local=False)], itp_local=True),
        GenService("ns", "empty", "10.96.0.26", [GenPort("http", 80, 8080, node_port=30086)], [],
                   external_ips=["192.0.2.11"]),
    ], extra_nat_chains=["KUBE-SEP-STALESTALESTALE"],
        extra_nat=["-A KUBE-SEP-STALESTALESTALE -p tcp -m comment --comment \"ns/gone:http\" -m tcp -j DNAT "
                   "--to-destination 10.244.9.9:8080"])


@pytest.fixture(scope="module")
def kinds() -> NodeRules:
    return parse_iptables_save(iptables_save(_kinds_cluster()), "kinds")


def test_nodeport_and_external_ip(kinds: NodeRules) -> None:
    np = one(kinds, "ns/np:http", "NodePort")
    assert (np.address, np.port) == ("", 30080)
    assert shares(np) == {"10.244.1.1:8080": Fraction(1, 2), "10.244.2.1:8080": Fraction(1, 2)}
    assert "all external traffic is masqueraded" in np.masquerade
    assert np.path[:2] == ["KUBE-NODEPORTS", service_chains("ns/np:http", "tcp")["KUBE-EXT-"]]
    ext = one(kinds, "ns/np:http", "ExternalIP")
    assert ext.address == "192.0.2.10" and shares(ext) == shares(np)


def test_loadbalancer_source_ranges_and_affinity(kinds: NodeRules) -> None:
    lb = one(kinds, "ns/lb:http", "LoadBalancer")
    assert lb.address == "203.0.113.5"
    assert lb.source_ranges == ["198.51.100.0/24"]
    assert lb.affinity_seconds == 10800
    assert shares(lb) == {"10.244.1.2:8080": Fraction(1, 2), "10.244.2.2:8080": Fraction(1, 2)}
    assert "all external traffic is masqueraded" in lb.masquerade
    assert any("outside the allowed source ranges" in n for n in lb.notes)
    assert one(kinds, "ns/lb:http").affinity_seconds == 10800


def test_external_traffic_policy_local(kinds: NodeRules) -> None:
    lb = one(kinds, "ns/etp:http", "LoadBalancer")
    assert shares(lb) == {"10.244.1.3:8080": Fraction(1, 2), "10.244.1.4:8080": Fraction(1, 2)}
    assert all(b.local for b in lb.backends) and lb.policy_local
    assert "traffic from the node's own addresses is masqueraded" in lb.masquerade
    assert any(n.startswith("traffic from 10.244.0.0/16 goes to") for n in lb.notes)  # pods: every endpoint
    cluster = one(kinds, "ns/etp:http")
    assert len(cluster.backends) == 3 and not cluster.policy_local
    none = one(kinds, "ns/etp-none:http", "LoadBalancer")
    assert none.no_local_endpoints and none.backends == []
    assert one(kinds, "ns/etp-none:http", "NodePort").no_local_endpoints
    assert not one(kinds, "ns/etp-none:http").no_local_endpoints


def test_internal_traffic_policy_local(kinds: NodeRules) -> None:
    itp = one(kinds, "ns/itp:http")
    assert itp.path == [service_chains("ns/itp:http", "tcp")["KUBE-SVL-"]]
    assert shares(itp) == {"10.244.1.5:8080": 1} and itp.policy_local
    none = one(kinds, "ns/itp-none:http")
    assert none.no_local_endpoints and none.backends == []


def test_no_endpoints(kinds: NodeRules) -> None:
    for kind in ("ClusterIP", "ExternalIP", "NodePort"):
        e = one(kinds, "ns/empty:http", kind)
        assert e.no_endpoints and e.backends == []
    assert one(kinds, "ns/empty:http").to_json()["noEndpoints"] is True


def test_stale_chains_and_stats(kinds: NodeRules) -> None:
    assert kinds.unreferenced_chains == ["KUBE-SEP-STALESTALESTALE"]
    assert all(b.ip != "10.244.9.9" for s in kinds.services for b in s.backends)
    assert kinds.stats.chains > 0 and kinds.stats.rules > kinds.stats.chains
    assert kinds.stats.per_service["ns/np:http"] > kinds.stats.per_service["ns/itp:http"]
    assert "ns/empty:http" in kinds.stats.per_service


def test_only_path_equals_whole_parse(kinds: NodeRules) -> None:
    text = iptables_save(_kinds_cluster())
    for key in ("ns/lb", "ns/etp:http", "10.96.0.24", "203.0.113.5:80", "ns/empty"):
        part = parse_iptables_save(text, "kinds", only={key})
        assert part.services
        for e in part.services:
            twin = [s for s in kinds.services if s.name == e.name and s.kind == e.kind and s.address == e.address]
            assert len(twin) == 1
            assert e.to_json() == twin[0].to_json()


def test_only_path_without_comments_finds_nodeports_by_hash() -> None:
    c = _kinds_cluster()
    c.comments = False
    text = iptables_save(c)
    assert '"ns/np:http' not in text and "ns/np:http " not in text
    part = parse_iptables_save(text, "nc", only={"ns/np:http"})
    assert {s.kind for s in part.services} == {"NodePort", "ClusterIP", "ExternalIP"}
    assert all(s.name == "ns/np:http" and len(s.backends) == 2 for s in part.services)
    by_vip = parse_iptables_save(text, "nc", only={"10.96.0.20:80"})
    assert len(by_vip.services) == 1 and len(by_vip.services[0].backends) == 2
    assert by_vip.services[0].name is None  # nothing names it without comments or a name to hash


def test_detect_mode() -> None:
    assert detect_mode(NodeDumps("n", {"iptables": DEMO_DUMP.read_text()})) == "iptables"
    with pytest.raises(InputError):
        detect_mode(NodeDumps("n", {}))


def test_legacy_tables_warning() -> None:
    text = "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n" + SAVE_ORDER
    rules = parse_iptables_save(text, "w")
    assert any("iptables-legacy" in n for n in rules.notes)


def test_old_xlb_chain_with_mark_drop() -> None:
    """kube-proxy < 1.25 wrote KUBE-XLB chains; no local endpoint meant KUBE-MARK-DROP, not masquerade."""
    text = """*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-XLB-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns/old:http" -m tcp --dport 30001 -j KUBE-XLB-AAAAAAAAAAAAAAAA
-A KUBE-SERVICES -d 10.3.0.1/32 -p tcp -m comment --comment "ns/old:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment "ns/old:http" -j KUBE-SEP-BBBBBBBBBBBBBBBB
-A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -m comment --comment "ns/old:http" -m tcp -j DNAT --to-destination 10.2.9.9:80
-A KUBE-XLB-AAAAAAAAAAAAAAAA -s 10.2.0.0/16 -m comment --comment "Redirect pods trying to reach external loadbalancer VIP to clusterIP" -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-XLB-AAAAAAAAAAAAAAAA -m comment --comment "ns/old:http has no local endpoints" -j KUBE-MARK-DROP
COMMIT
"""
    rules = parse_iptables_save(text, "old")
    np = one(rules, "ns/old:http", "NodePort")
    assert np.backends == [] and np.masquerade == []
    assert any("KUBE-MARK-DROP" in n for n in np.notes)
    assert any("traffic from 10.2.0.0/16 goes to" in n for n in np.notes)
    assert shares(one(rules, "ns/old:http")) == {"10.2.9.9:80": 1}


# ------------------------------------------------------------------ generated clusters read back exactly

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def clusters(draw: st.DrawFn) -> GenCluster:
    services = []
    n = draw(st.integers(1, 6))
    for i in range(n):
        n_eps = draw(st.integers(0, 12))
        eps = [GenEndpoint(f"10.244.{i}.{j + 1}", local=draw(st.booleans())) for j in range(n_eps)]
        n_ports = draw(st.integers(1, 2))
        ports = [GenPort(draw(st.sampled_from(["", "http"] if n_ports == 1 else ["http", "dns"])) if k == 0
                         else f"p{k}", 80 + k, 8080 + k, draw(st.sampled_from(["TCP", "UDP", "SCTP"])),
                         node_port=draw(st.one_of(st.none(), st.just(30000 + 10 * i + k))))
                 for k in range(n_ports)]
        services.append(GenService(
            f"ns{i % 2}", f"svc{i}", f"10.96.0.{i + 1}", ports, eps,
            external_ips=[f"192.0.2.{i + 1}"] if draw(st.booleans()) else [],
            lb_ips=[f"203.0.113.{i + 1}"] if draw(st.booleans()) else [],
            source_ranges=draw(st.lists(st.sampled_from(["198.51.100.0/24", "192.0.2.128/25"]), max_size=2,
                                        unique=True)),
            affinity_seconds=draw(st.one_of(st.none(), st.integers(1, 86400))),
            etp_local=draw(st.booleans()), itp_local=draw(st.booleans())))
    return GenCluster(services=services, comments=draw(st.booleans()))


@settings(max_examples=60, deadline=None)
@given(clusters())
def test_generated_clusters_read_back(c: GenCluster) -> None:
    """Every ClusterIP entry reaches exactly the endpoints kube-proxy would use, in equal exact shares."""
    text = iptables_save(c)
    rules = parse_iptables_save(text, "gen")
    assert rules.unreferenced_chains == []
    for svc in c.services:
        for p in svc.ports:
            entries = rules.lookup(svc.cluster_ip, p.port, p.protocol)
            want = [e for e in svc.endpoints if e.local or not svc.itp_local]
            assert len(entries) == 1
            e = entries[0]
            assert sorted(b.ip for b in e.backends) == sorted(x.ip for x in want)
            assert all(b.port == p.target_port for b in e.backends)
            if want:
                assert all(b.probability == Fraction(1, len(want)) for b in e.backends)
                assert sum(b.probability or 0 for b in e.backends) == 1
                assert e.affinity_seconds == svc.affinity_seconds
            else:
                assert e.no_endpoints or e.no_local_endpoints
            # external entries: NodePort, external IPs, LB IPs (with or without source ranges)
            ext_want = [x for x in svc.endpoints if x.local or not svc.etp_local]
            externals = [x for x in rules.services if x.kind != "ClusterIP" and x.protocol == p.protocol and (
                (x.kind == "NodePort" and x.port == p.node_port) or
                (x.address in svc.external_ips + svc.lb_ips and x.port == p.port))]
            assert len(externals) == (1 if p.node_port else 0) + len(svc.external_ips) + len(svc.lb_ips)
            for x in externals:
                assert sorted(b.ip for b in x.backends) == sorted(y.ip for y in ext_want)
                if ext_want:
                    assert all(b.probability == Fraction(1, len(ext_want)) for b in x.backends)
                elif svc.endpoints:
                    assert x.no_local_endpoints
                else:
                    assert x.no_endpoints
                if x.kind == "LoadBalancer" and svc.source_ranges and ext_want:
                    assert x.source_ranges == svc.source_ranges
            if c.comments:
                spn = f"{svc.namespace}/{svc.name}:{p.name}" if p.name else f"{svc.namespace}/{svc.name}"
                assert e.name == spn
                one_only = parse_iptables_save(text, "gen", only={spn})
                assert [x.to_json() for x in one_only.services
                        if x.kind == "ClusterIP" and x.port == p.port] == [e.to_json()]


def test_old_layout_masquerade_in_kube_services() -> None:
    """kube-proxy ~1.1x–1.22 put the cluster IP masquerade rule in KUBE-SERVICES, before the jump."""
    svc = service_chain("ns/old:http", "tcp")
    sep = endpoint_chain("ns/old:http", "tcp", "10.2.0.7", 8080)
    text = f"""# Generated by iptables-save v1.6.1 on Mon Jan  1 00:00:00 2018
*nat
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:{svc} - [0:0]
:{sep} - [0:0]
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SERVICES ! -s 10.2.0.0/16 -d 10.3.0.5/32 -p tcp -m comment --comment "ns/old:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -d 10.3.0.5/32 -p tcp -m comment --comment "ns/old:http cluster IP" -m tcp --dport 80 -j {svc}
-A {svc} -m comment --comment "ns/old:http" -j {sep}
-A {sep} -s 10.2.0.7/32 -m comment --comment "ns/old:http" -j KUBE-MARK-MASQ
-A {sep} -p tcp -m comment --comment "ns/old:http" -m tcp -j DNAT --to-destination 10.2.0.7:8080
COMMIT
"""
    rules = parse_iptables_save(text, "old")
    assert rules.backend == "legacy"
    assert len(rules.services) == 1
    e = rules.services[0]
    assert shares(e) == {"10.2.0.7:8080": 1}
    assert e.masquerade[0] == "traffic not from 10.2.0.0/16 is masqueraded"


@pytest.mark.parametrize("only", [None, {"10.0.1.175"}], ids=["whole", "one-service"])
def test_dump_without_final_commit_is_truncated(only: set[str] | None) -> None:
    from svcctl.dataplane.iptables import parse_iptables_save
    from svcctl.errors import InputError
    from svcctl.sources.snapshot import demo_path

    text = (demo_path() / "nodes" / "kind-worker" / "iptables-save.txt").read_text()
    cut = text[: text.rindex("\nCOMMIT")] + "\n"
    with pytest.raises(InputError, match="no COMMIT"):
        parse_iptables_save(cut, "cut.txt", only=only)
    spliced = text.replace("COMMIT\n", "", 1)  # first table runs into the next
    with pytest.raises(InputError, match="no COMMIT"):
        parse_iptables_save(spliced, "spliced.txt", only=only)

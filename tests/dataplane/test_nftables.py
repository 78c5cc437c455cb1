"""nftables mode: the recorded `nft list` / `nft -j` fixtures (made by loading generated kube-proxy rulesets into a
throwaway netns with the real nft: `python tests/support/gen_dumps_ipvs_nft.py --nft-fixtures`), both layouts, and
inputs that must be refused.
"""

from __future__ import annotations

import contextlib
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gen_dumps_ipvs_nft as gen  # noqa: E402

from svcctl.dataplane import hashes  # noqa: E402
from svcctl.dataplane.ipvs import looks_like_ipvsadm  # noqa: E402
from svcctl.dataplane.model import NodeRules, ServiceEntry  # noqa: E402
from svcctl.dataplane.nftables import is_iptables_nft, looks_like_nft, parse_nft, spn_from_chain  # noqa: E402
from svcctl.errors import InputError  # noqa: E402

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "nft"
LAYOUTS = ["layout-a", "layout-b", "ip6-a", "ip6-b"]


def read(name: str) -> str:
    return (FIX / name).read_text()


def load(name: str) -> NodeRules:
    return parse_nft(read(name), name)


def entry(rules: NodeRules, address: str, port: int, proto: str = "TCP") -> ServiceEntry:
    found = rules.lookup(address, port, proto)
    assert len(found) == 1, f"{address}:{port}/{proto}: {[s.to_json() for s in found]}"
    return found[0]


def shares(e: ServiceEntry) -> dict[str, Fraction | None]:
    return {b.address: b.probability for b in e.backends}


WEB = {"10.244.1.3:8080": Fraction(1, 3), "10.244.1.4:8080": Fraction(1, 3), "10.244.2.9:8080": Fraction(1, 3)}


@pytest.mark.parametrize("name", LAYOUTS)
def test_text_json_and_transaction_give_the_same_rules(name: str) -> None:
    text = load(f"{name}.txt").to_json()
    js = load(f"{name}.json").to_json()
    assert text == {**js, "source": text["source"]}
    tx = parse_nft(read(f"{name}.nft"), "tx").to_json()
    assert tx["services"] == text["services"]
    assert text["summary"]["rules"] == read(f"{name}.nft").count("\nadd rule ")


@pytest.mark.parametrize("layout", ["a", "b"])
def test_hostnames_two_endpoints_half_each(layout: str) -> None:
    r = load(f"layout-{layout}.txt")
    e = entry(r, "10.0.1.175", 80)
    assert e.name == "default/hostnames:default" and e.kind == "ClusterIP"
    assert shares(e) == {"10.244.0.5:9376": Fraction(1, 2), "10.244.0.6:9376": Fraction(1, 2)}
    svc_chain = "service-" + hashes.nft_service_base("default", "hostnames", "tcp", "default")
    assert e.path[:3] == ["services", "@service-ips", svc_chain]
    ep_chains = [c for c in e.path if c.startswith("endpoint-")]
    if layout == "a":
        assert ep_chains == ["endpoint-" + hashes.nft_endpoint_base("default", "hostnames", "tcp", "default",
                                                                     ip, 9376) for ip in ("10.244.0.5", "10.244.0.6")]
        assert [b.chain for b in e.backends] == ep_chains
        assert any("hairpin traffic from the endpoint 10.244.0.5" in m for m in e.masquerade)
    else:
        assert ep_chains == []  # layout B: dnat straight from the service chain
        assert any("@hairpin-connections" in m for m in e.masquerade)
    assert any("outside the pod network (source not in 10.244.0.0/16)" in m for m in e.masquerade)
    # every ready demo Service is there, single-endpoint ones with share 1 (layout B: bare `dnat to`)
    assert shares(entry(r, "10.0.0.1", 443)) == {"172.18.0.2:6443": 1}
    assert shares(entry(r, "10.0.0.10", 53, "UDP")) == {"10.244.0.2:53": 1}
    assert entry(r, "10.0.0.10", 53, "UDP").name == "kube-system/kube-dns:dns"


@pytest.mark.parametrize("layout", ["a", "b"])
def test_affinity_lb_firewall_and_nodeports(layout: str) -> None:
    r = load(f"layout-{layout}.txt")
    cip = entry(r, "10.0.2.2", 80)
    assert shares(cip) == WEB and cip.affinity_seconds == 10800
    lb = entry(r, "203.0.113.7", 80)
    assert lb.kind == "LoadBalancer" and lb.source_ranges == ["192.0.2.0/24", "198.51.100.0/24"]
    assert shares(lb) == WEB and lb.affinity_seconds == 10800
    assert any("externalTrafficPolicy: Cluster" in m for m in lb.masquerade)
    # layout-a fixture has a nodeport-ips set; layout-b matches any local address (fib daddr type local)
    np_addr = "172.18.0.3" if layout == "a" else ""
    np = entry(r, np_addr, 30080)
    assert np.kind == "NodePort" and shares(np) == WEB and np.name == "ns2/web:http"


@pytest.mark.parametrize("layout", ["a", "b"])
def test_external_traffic_policy_local(layout: str) -> None:
    r = load(f"layout-{layout}.txt")
    ext = entry(r, "192.0.2.50", 443)
    assert ext.kind == "ExternalIP" and ext.name == "ns3/loc" and ext.policy_local
    assert shares(ext) == {"10.244.1.5:8443": 1} and ext.backends[0].local is True
    assert any("short-circuit pod traffic" in n for n in ext.notes)
    assert shares(entry(r, "10.0.3.3", 443)) == {"10.244.1.5:8443": Fraction(1, 2),
                                                 "10.244.2.6:8443": Fraction(1, 2)}
    np_addr = "172.18.0.3" if layout == "a" else ""
    nolocal = entry(r, np_addr, 30555)
    assert nolocal.no_local_endpoints and not nolocal.no_endpoints and nolocal.backends == []


@pytest.mark.parametrize("layout", ["a", "b"])
def test_no_endpoints_maps(layout: str) -> None:
    r = load(f"layout-{layout}.txt")
    e = entry(r, "10.0.4.4", 80)
    assert e.no_endpoints and e.name == "ns4/empty:p" and e.backends == []
    assert any("rejected" in n for n in e.notes)
    np_addr = "172.18.0.3" if layout == "a" else ""
    assert entry(r, np_addr, 30999).no_endpoints


@pytest.mark.parametrize("layout", ["a", "b"])
def test_ipv6_table(layout: str) -> None:
    r = load(f"ip6-{layout}.txt")
    assert shares(entry(r, "fd00:10:96::10", 80)) == {"[fd00:10:244::5]:8080": Fraction(1, 2),
                                                     "[fd00:10:244::6]:8080": Fraction(1, 2)}
    one = entry(r, "fd00:10:96::11", 80)
    assert one.affinity_seconds == 600 and shares(one) == {"[fd00:10:244::7]:8080": 1}


def test_full_ruleset_with_both_families_and_other_tables() -> None:
    r = load("ruleset.txt")
    assert {s.address for s in r.services} >= {"10.0.1.175", "fd00:10:96::10"}
    assert len(r.services) == len(load("layout-a.txt").services) + len(load("ip6-a.txt").services)


def test_stale_chain_is_unreferenced() -> None:
    assert load("stale.txt").unreferenced_chains == ["service-OLDCHAIN-ns9/gone/tcp/http"]
    assert load("layout-a.txt").unreferenced_chains == []


def test_stats() -> None:
    r = load("layout-a.txt")
    assert r.stats.chains == read("layout-a.nft").count("\nadd chain ")
    assert r.stats.extra["maps"] == 5
    assert r.stats.extra["mapElements"] == sum(read("layout-a.nft").count(f"add element ip kube-proxy {m} ")
                                               for m in ("service-ips", "service-nodeports", "firewall-ips",
                                                         "no-endpoint-services", "no-endpoint-nodeports"))
    # service chain (masq + numgen) + 3 endpoint chains (hairpin + update + dnat) + external (2) + firewall (1)
    assert r.stats.per_service["ns2/web:http"] == 2 + 3 + 3 * 3 + 2 + 1


@pytest.mark.parametrize("name", ["iptables-nft.txt", "iptables-nft.json"])
def test_iptables_nft_backend_is_refused_with_the_right_advice(name: str) -> None:
    assert is_iptables_nft(read(name))
    with pytest.raises(InputError, match="iptables mode on the nf_tables backend") as ei:
        load(name)
    assert "iptables-save" in ei.value.message


# --------------------------------------------------------------------------- hand-written snippets


def _table(body: str) -> str:
    return ("table ip kube-proxy {\n\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
            "\t\telements = { 10.0.0.5 . tcp . 80 : goto service-AAAAAAAA-ns/s/tcp/p }\n\t}\n\n"
            "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
            "\t\tjump services\n\t}\n\n\tchain services {\n"
            "\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n\n"
            "\tchain service-AAAAAAAA-ns/s/tcp/p {\n" + body + "\t}\n\n"
            "\tchain endpoint-BBBBBBBB-ns/s/tcp/p__10.1.0.1/80 {\n\t\tmeta l4proto tcp dnat to 10.1.0.1:80\n\t}\n\n"
            "\tchain endpoint-CCCCCCCC-ns/s/tcp/p__10.1.0.2/80 {\n\t\tmeta l4proto tcp dnat to 10.1.0.2:80\n\t}\n}\n")


def test_numgen_keys_are_counted() -> None:
    body = ("\t\tnumgen random mod 4 vmap { 0 : goto endpoint-BBBBBBBB-ns/s/tcp/p__10.1.0.1/80, "
            "1-2 : goto endpoint-BBBBBBBB-ns/s/tcp/p__10.1.0.1/80, 3 : goto endpoint-CCCCCCCC-ns/s/tcp/p__10.1.0.2/80 }\n")
    e = entry(parse_nft(_table(body), "t"), "10.0.0.5", 80)
    assert shares(e) == {"10.1.0.1:80": Fraction(3, 4), "10.1.0.2:80": Fraction(1, 4)}
    assert e.name == "ns/s:p"


def test_numgen_gap_falls_through_with_a_note() -> None:
    body = "\t\tnumgen random mod 3 vmap { 0 : goto endpoint-BBBBBBBB-ns/s/tcp/p__10.1.0.1/80 }\n"
    e = entry(parse_nft(_table(body), "t"), "10.0.0.5", 80)
    assert shares(e) == {"10.1.0.1:80": Fraction(1, 3)}
    assert any("fall through" in n for n in e.notes)


def test_missing_target_chain_is_no_endpoints() -> None:
    body = "\t\tnumgen random mod 1 vmap { 0 : goto endpoint-ZZZZZZZZ-ns/s/tcp/p__10.1.0.9/80 }\n"
    e = entry(parse_nft(_table(body), "t"), "10.0.0.5", 80)
    assert e.backends == [] and e.no_endpoints and any("does not exist" in n for n in e.notes)


def test_names_and_hashes() -> None:
    assert spn_from_chain("service-ULMVA6XW-ns1/svc1/tcp/p80") == ("ns1/svc1:p80", "TCP")
    assert spn_from_chain("external-AAAAAAAA-ns/svc/udp/") == ("ns/svc", "UDP")
    assert spn_from_chain("services") is None
    # the generator's chain names are kube-proxy's (hashAndTruncate), as svcctl.dataplane.hashes computes them
    assert gen.hash_and_truncate("ns1/svc1/tcp/p80") == hashes.hash_and_truncate("ns1/svc1/tcp/p80") == \
        "ULMVA6XW-ns1/svc1/tcp/p80"


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("hello world\n", "not nft output"),
    ("table ip kube-proxy {\n\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n",
     "truncated"),
    ("table ip kube-proxy {\n\tchain services {\n\t}\n", "not closed"),
    ("table inet filter {\n\tchain input {\n\t\ttcp dport 22 accept\n\t}\n}\n", "no `kube-proxy` table"),
    ('{"foo": 1}', "nftables"),
    ('{"nftables": [', "malformed nft JSON"),
    ("IP Virtual Server version 1.2.1 (size=4096)\n", "not nft output"),
    ("add rule ip kube-proxy\x00", "binary"),
])
def test_near_misses_raise_input_error(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_nft(text, "nft.txt")


def test_truncated_fixture_is_refused() -> None:
    text = read("layout-a.txt")
    cut = text[: len(text) // 2]
    with pytest.raises(InputError, match="truncated|not closed"):
        parse_nft(cut, "cut.txt")


def test_detection_helpers() -> None:
    for name in ("layout-a.txt", "layout-b.json", "layout-a.nft", "ruleset.txt", "iptables-nft.txt"):
        assert looks_like_nft(read(name)) and not looks_like_ipvsadm(read(name))
    assert not looks_like_nft("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")
    assert not is_iptables_nft(read("layout-a.txt"))


def test_generated_big_ruleset_parses_with_exact_shares() -> None:
    r = parse_nft(gen.gen_nft_ruleset(200, 10, "A"), "big-a")
    assert len(r.services) == 200
    assert all(len(s.backends) == 10 and all(b.probability == Fraction(1, 10) for b in s.backends)
               for s in r.services)
    rb = parse_nft(gen.gen_nft_ruleset(200, 10, "B"), "big-b")
    assert [shares(s) for s in rb.services] == [shares(s) for s in r.services]


def test_listing_with_handles_reads_the_same() -> None:
    with_handles = load("layout-a-handles.txt").to_json()
    plain = load("layout-a.txt").to_json()
    assert with_handles["services"] == plain["services"] and with_handles["summary"] == plain["summary"]


def test_early_nodeports_helper_chain() -> None:
    """Early nftables kube-proxy jumped from `services` to a `nodeports` chain holding the vmap."""
    text = ("table ip kube-proxy {\n\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n"
            "\t\telements = { tcp . 30080 : goto external-AAAAAAAA-ns/s/tcp/p }\n\t}\n\n"
            "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
            "\t\tjump services\n\t}\n\n\tchain services {\n"
            "\t\tfib daddr type local ip daddr != 127.0.0.0/8 jump nodeports\n\t}\n\n"
            "\tchain nodeports {\n\t\tmeta l4proto . th dport vmap @service-nodeports\n\t}\n\n"
            "\tchain external-AAAAAAAA-ns/s/tcp/p {\n\t\tjump mark-for-masquerade\n"
            "\t\tmeta l4proto tcp dnat to 10.1.0.1:80\n\t}\n}\n")
    r = parse_nft(text, "early")
    e = entry(r, "", 30080)
    assert e.kind == "NodePort" and shares(e) == {"10.1.0.1:80": 1} and e.name == "ns/s:p"
    assert r.unreferenced_chains == []


# --------------------------------------------------------------------------- damaged input never escapes as a traceback

_DAMAGE_FILES = ["layout-a.txt", "layout-b.txt", "layout-a.json", "ip6-b.txt", "layout-b.nft"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(_DAMAGE_FILES), how=st.integers(0, 3), where=st.floats(0, 1, exclude_max=True),
       what=st.sampled_from(list(" {}:.,\"[]0a-x\n\t@;")))
def test_damaged_nft_dumps_give_rules_or_input_error(name: str, how: int, where: float, what: str) -> None:
    text = gen.damage(read(name), how, where, what)
    with contextlib.suppress(InputError):
        parse_nft(text, name).to_json()


def test_kubelet_iptables_chains_do_not_make_it_iptables_mode() -> None:
    r = load("ruleset-kubelet.txt")
    assert r.notes == []
    assert [s.to_json() for s in r.services] == [s.to_json() for s in load("layout-b.txt").services]
    assert not is_iptables_nft(read("ruleset-kubelet.txt"))


# --------------------------------------------------------------------------- generated rulesets round-trip

_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12).map(lambda s: "n" + s)


@st.composite
def services(draw: st.DrawFn) -> list[gen.GenService]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        n_eps = draw(st.integers(0, 7))
        eps = [(f"10.{100 + i}.{j // 250}.{j % 250 + 1}", draw(st.integers(1, 65535))) for j in range(n_eps)]
        # a Service's name is unique in its namespace: two generated services must not share ns/name/port
        out.append(gen.GenService(
            draw(_names), draw(_names) + f"x{i}", draw(st.one_of(st.just(""), _names)), f"10.0.{i}.{draw(st.integers(1, 254))}",
            draw(st.integers(1, 65535)), eps, protocol=draw(st.sampled_from(["TCP", "UDP", "SCTP"])),
            affinity=draw(st.one_of(st.none(), st.integers(1, 86400)))))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(svcs=services(), layout=st.sampled_from(["A", "B"]), bare=st.booleans())
def test_generated_rulesets_read_back_exactly(svcs: list[gen.GenService], layout: str, bare: bool) -> None:
    with_eps = [s for s in svcs if s.endpoints]
    empty = [s for s in svcs if not s.endpoints]
    r = parse_nft(gen.nft_script(with_eps, layout=layout, no_endpoints=empty, bare_single=bare), "generated")
    for s in svcs:
        e = entry(r, s.cluster_ip, s.port, s.protocol)
        assert e.name == s.spn
        if not s.endpoints:
            assert e.no_endpoints and e.backends == []
            continue
        n = len(s.endpoints)
        assert shares(e) == {f"{ip}:{port}": Fraction(1, n) for ip, port in s.endpoints}
        assert e.affinity_seconds == s.affinity


def test_numgen_range_keys_are_counted_not_enumerated() -> None:
    """`0-3999999999 : goto …` is one range: its share is computed, never walked value by value (that hung)."""
    text = """table ip kube-proxy {
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
\tchain services {
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t}
\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 10.0.0.5 . tcp . 80 : goto service-AAAAAAAA-ns/svc/tcp/http }
\t}
\tchain service-AAAAAAAA-ns/svc/tcp/http {
\t\tnumgen random mod 4000000000 vmap { 0-2999999999 : goto endpoint-BBBBBBBB-ns/svc/tcp/http__10.1.0.1/80, 3000000000-3999999999 : goto endpoint-CCCCCCCC-ns/svc/tcp/http__10.1.0.2/80 }
\t}
\tchain endpoint-BBBBBBBB-ns/svc/tcp/http__10.1.0.1/80 {
\t\tmeta l4proto tcp dnat to 10.1.0.1:80
\t}
\tchain endpoint-CCCCCCCC-ns/svc/tcp/http__10.1.0.2/80 {
\t\tmeta l4proto tcp dnat to 10.1.0.2:80
\t}
}
"""
    rules = parse_nft(text, "ranges.nft")
    (entry,) = rules.services
    assert [(b.ip, b.probability) for b in entry.backends] == [("10.1.0.1", Fraction(3, 4)), ("10.1.0.2", Fraction(1, 4))]
    assert rules.unreferenced_chains == []

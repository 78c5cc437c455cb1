"""IPVS mode: ipvsadm listings (recorded fixtures in every format), shares, glue checks, near-misses.

Fixtures in tests/fixtures/ipvs were printed by tests/support/gen_dumps_ipvs_nft.py following ipvsadm.c's printf formats
(IPVS itself cannot be loaded in every test environment); `test_fixtures_are_what_the_printer_writes` keeps
them in step with that printer.
"""

from __future__ import annotations

import contextlib
import re
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gen_dumps_ipvs_nft as gen  # noqa: E402

from svcctl.analysis.glue import glue_findings as ipvs_glue_findings  # noqa: E402
from svcctl.dataplane.ipvs import (  # noqa: E402
    is_ipvs_connection_list,
    looks_like_ipvsadm,
    parse_ip_addr,
    parse_ipset,
    parse_ipvsadm,
    parse_ipvsadm_connections,
)
from svcctl.dataplane.model import NodeRules, ServiceEntry  # noqa: E402
from svcctl.dataplane.nftables import looks_like_nft, parse_nft  # noqa: E402
from svcctl.errors import InputError  # noqa: E402

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "ipvs"
DEMO = Path(__file__).resolve().parent.parent.parent / "svcctl" / "data" / "demo" / "nodes" / "kind-worker"


def read(name: str) -> str:
    return (FIX / name).read_text()


def entry(rules: NodeRules, address: str, port: int, proto: str = "TCP") -> ServiceEntry:
    found = rules.lookup(address, port, proto)
    assert len(found) == 1, f"{address}:{port}/{proto}: {found}"
    return found[0]


def shares(e: ServiceEntry) -> dict[str, Fraction | None]:
    return {b.address: b.probability for b in e.backends}


@pytest.fixture(scope="module")
def full() -> NodeRules:
    return parse_ipvsadm(read("full.txt"), "full.txt")


# --------------------------------------------------------------------------- the plain listing


def test_rr_shares_are_equal_and_scheduler_is_set(full: NodeRules) -> None:
    e = entry(full, "10.0.1.175", 80)
    assert shares(e) == {"10.244.0.5:9376": Fraction(1, 2), "10.244.0.6:9376": Fraction(1, 2)}
    assert e.scheduler == "rr" and e.kind == "ClusterIP" and e.name is None
    assert [(b.weight, b.active_conns, b.inactive_conns) for b in e.backends] == [(1, 3, 12), (1, 2, 15)]
    assert all(s.scheduler for s in full.services)


def test_wrr_weights_and_weight_zero_draining(full: NodeRules) -> None:
    e = entry(full, "10.0.5.5", 8080)
    assert shares(e) == {"10.244.1.10:8080": Fraction(3, 4), "10.244.1.11:8080": Fraction(1, 4),
                         "10.244.1.12:8080": Fraction(0)}
    drained = [b for b in e.backends if b.draining]
    assert [b.address for b in drained] == ["10.244.1.12:8080"]
    assert drained[0].active_conns == 5  # its connections are kept
    assert any("draining" in n for n in e.notes)


def test_all_draining_is_no_endpoints(full: NodeRules) -> None:
    e = entry(full, "10.0.11.11", 80)
    assert e.no_endpoints and e.backends[0].draining and e.backends[0].probability == 0


def test_load_and_hash_schedulers_have_no_fixed_share(full: NodeRules) -> None:
    lc = entry(full, "10.0.6.6", 80)
    assert [b.probability for b in lc.backends] == [None, None]
    assert any("load" in n for n in lc.notes)
    sh = entry(full, "10.0.7.7", 80)
    assert sh.scheduler == "sh" and [b.probability for b in sh.backends] == [None, None]
    assert any("source address" in n for n in sh.notes)
    assert any("sh-fallback" in n for n in sh.notes)
    mh = entry(full, "10.0.10.10", 80)
    assert mh.scheduler == "mh" and mh.backends[0].probability is None


def test_persistent_is_affinity(full: NodeRules) -> None:
    assert entry(full, "10.0.0.1", 443).affinity_seconds == 10800
    assert entry(full, "10.0.1.175", 80).affinity_seconds is None


def test_protocols_ipv6_fwmark_and_empty_service(full: NodeRules) -> None:
    assert shares(entry(full, "10.0.0.10", 53, "UDP")) == {"10.244.0.2:53": 1}
    assert shares(entry(full, "10.0.8.8", 3868, "SCTP")) == {"10.244.4.4:3868": 1}
    v6 = entry(full, "fd00:10:96::a", 80)
    # the long address overflows the 28-character column and is still read
    assert shares(v6) == {"[fd00:10:244::6]:8080": Fraction(1, 2), "[fd00:10:244:1:2:3:aa:bbbb]:8080": Fraction(1, 2)}
    fwm = [s for s in full.services if s.address == "fwmark 7" and s.protocol == "FWM"]
    assert len(fwm) == 1 and fwm[0].backends[0].ip == "192.168.1.10"
    assert any("Route" in n for n in fwm[0].notes)
    empty = entry(full, "10.0.9.9", 80)
    assert empty.no_endpoints and empty.backends == []
    assert full.stats.extra == {"virtualServers": 13, "realServers": 19}


def test_save_format_gives_the_same_table(full: NodeRules) -> None:
    saved = parse_ipvsadm(read("save.txt"), "save.txt")

    def key(r: NodeRules) -> list[tuple[object, ...]]:
        return [(s.protocol, s.address, s.port, s.scheduler, s.affinity_seconds,
                 tuple((b.address, b.weight, b.probability, b.draining) for b in s.backends)) for s in r.services]

    assert key(saved) == key(full)


@pytest.mark.parametrize("name", ["stats.txt", "rate.txt"])
def test_stats_and_rate_counters(name: str) -> None:
    r = parse_ipvsadm(read(name), name)
    assert len(r.services) == 13
    assert any("no scheduler or weights" in n for n in r.notes)
    api = entry(r, "10.0.0.1", 443)
    # 120000K, 990000K, 2000M, 5000G, 150T
    assert api.notes[0].startswith("120000000 connections")
    assert "990000000 packets" in api.notes[0] and "2000000000 out" in api.notes[0]
    assert "5000000000000 bytes" in api.notes[0] and "150000000000000 out" in api.notes[0]
    web = entry(r, "10.0.1.175", 80)
    assert [b.probability for b in web.backends] == [None, None]
    assert any("1234000000 out" in n for n in web.notes)


def test_connection_list() -> None:
    flows = parse_ipvsadm_connections(read("conns.txt"), "conns.txt")
    assert len(flows) == 5  # the persistence template (state NONE) is not a connection
    f = flows[0]
    assert (f.protocol, f.src, f.sport, f.dst, f.dport, f.backend_ip, f.backend_port, f.state) == (
        "TCP", "10.244.0.1", 51234, "10.0.1.175", 80, "10.244.0.5", 9376, "ESTABLISHED")
    assert f.dnat
    assert flows[-1].backend_ip == "fd00:10:244::6" and flows[-1].dst == "fd00:10:96::a"
    assert {x.backend_ip for x in flows if x.dst == "10.0.1.175"} == {"10.244.0.5", "10.244.0.6"}


def test_fixtures_are_what_the_printer_writes() -> None:
    vss = gen.fixture_vss()
    assert read("full.txt") == gen.print_ipvsadm(vss, "list")
    assert read("stats.txt") == gen.print_ipvsadm(vss, "stats")
    assert read("save.txt") == gen.print_ipvsadm(vss, "save")


def test_real_server_lines_follow_ipvsadm_printf() -> None:
    # "  -> %-28s %-7s %-6d %-10u %-10u\n" for addresses that fit the column
    pat = re.compile(r"^  -> (.{28}) (.{7}) (.{6}) (.{10}) (.{10})$")
    for line in read("full.txt").splitlines():
        if line.startswith("  -> ") and "RemoteAddress" not in line and len(line.split()[1]) <= 28:
            m = pat.match(line)
            assert m, line
            assert m.group(2).strip() in ("Masq", "Route", "Tunnel", "Local")


# --------------------------------------------------------------------------- glue: kube-ipvs0 and ipsets


def test_glue_findings_and_kinds() -> None:
    r = parse_ipvsadm(read("full.txt"), "full.txt", ipset_text=read("ipset.txt"),
                      ip_addr_text=read("ip-addr-kube-ipvs0.txt"))
    findings = ipvs_glue_findings(r)
    assert sorted((f.code, f.severity) for f in findings) == [("VIPNotBound", "error"), ("VIPNotInIPSet", "error")]
    by = {f.code: f for f in findings}
    assert "10.0.5.5" in by["VIPNotBound"].message and "10.0.6.6" in by["VIPNotInIPSet"].message
    assert any("not bound to kube-ipvs0" in n for n in entry(r, "10.0.5.5", 8080).notes)
    assert entry(r, "172.18.0.3", 30080).kind == "NodePort"  # node IP: neither bound nor in KUBE-CLUSTER-IP
    assert entry(r, "10.0.7.7", 80).kind == "LoadBalancer"
    assert entry(r, "fd00:10:96::a", 80).kind == "ClusterIP"  # KUBE-6-CLUSTER-IP
    # without glue inputs there is nothing to find
    assert ipvs_glue_findings(parse_ipvsadm(read("full.txt"), "x")) == []


def test_nodeport_guessed_without_ipsets() -> None:
    r = parse_ipvsadm(read("full.txt"), "full.txt", ip_addr_text=read("ip-addr-kube-ipvs0.txt"))
    np = entry(r, "172.18.0.3", 30080)
    assert np.kind == "NodePort" and any("NodePort range" in n for n in np.notes)
    assert [f.message.split()[3] for f in ipvs_glue_findings(r)] == ["10.0.5.5:8080/TCP"]


def test_iptables_glue_missing() -> None:
    r = parse_ipvsadm(read("full.txt"), "x", iptables_text="*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n")
    assert any("KUBE-CLUSTER-IP" in n for n in r.notes)
    ok = parse_ipvsadm(read("full.txt"), "x", iptables_text=(
        "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\n"
        "-A KUBE-POSTROUTING -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE\n"))
    assert ok.notes == []


def test_ipset_and_ip_addr_formats() -> None:
    sets = parse_ipset(read("ipset.txt"), "ipset")
    assert sets["KUBE-CLUSTER-IP"].type == "hash:ip,port" and "10.0.1.175,tcp:80" in sets["KUBE-CLUSTER-IP"].members
    assert sets["KUBE-NODE-PORT-TCP"].members == ["30080"]
    saved = parse_ipset("create KUBE-CLUSTER-IP hash:ip,port family inet\nadd KUBE-CLUSTER-IP 10.0.0.1,tcp:443\n", "s")
    assert saved["KUBE-CLUSTER-IP"].members == ["10.0.0.1,tcp:443"]
    assert "10.0.6.6" in parse_ip_addr(read("ip-addr-kube-ipvs0.txt"), "a")
    assert parse_ip_addr("kube-ipvs0       DOWN           10.0.0.1/32 10.0.0.10/32 fd00::1/128\n", "br") == [
        "10.0.0.1", "10.0.0.10", "fd00::1"]
    full_ip_addr = ("1: lo: <LOOPBACK,UP> mtu 65536\n    inet 127.0.0.1/8 scope host lo\n"
                    "2: eth0@if9: <BROADCAST> mtu 1500\n    inet 172.18.0.3/16 scope global eth0\n"
                    "5: kube-ipvs0: <BROADCAST,NOARP> mtu 1500\n    inet 10.0.0.1/32 scope global kube-ipvs0\n")
    assert parse_ip_addr(full_ip_addr, "all") == ["10.0.0.1"]
    with pytest.raises(InputError):
        parse_ipset("hello world\n", "bad")


# --------------------------------------------------------------------------- near-misses are refused cleanly


NAMES = """IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  hostnames.default.svc.cluster.local:http rr
  -> 10-244-0-5.hostnames.default.svc.cluster.local:9376 Masq    1      0          0
"""
NAMES_RS = """IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.1.175:80 rr
  -> hostnames-1:9376             Masq    1      0          0
"""
HEAD = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" \
       "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"


@pytest.mark.parametrize("text,match,line", [
    (NAMES, "without -n", 4),
    (NAMES_RS, "without -n", 5),
    ("-A -t hostnames.default:http -s rr\n", "without -n", 1),
    (HEAD + "TCP  10.0.1.175:80\n", "truncated", 4),
    (HEAD + "TCP  10.0.1.175:80 rr\n  -> 10.244.0.5:9376              Masq    1\n", "real server", 5),
    (HEAD + "TCP  10.0.1.175:80 rr\n  -> 10.244.0.5:9376  1 Masq 0 0\n", "real server", 5),
    ("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Weight Forward\n", "header", 2),
    ("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n", "RemoteAddress", 3),
    ("Chain INPUT (policy ACCEPT)\ntarget prot opt source destination\n", "header", 1),
    ("hello\nworld\n", "header", 1),
    (HEAD + "  -> 10.244.0.5:9376              Masq    1      0          0\n", "before any", 4),
    (HEAD + "TCP  10.0.1.175:80 rr bogus options\n", "options", 4),
    (HEAD + "TCP  10.0.1.175:99999 rr\n", "address", 4),
    (read("stats.txt").replace("    3039    18121", "    3039"), "5 counters", None),
    (read("conns.txt"), "connection list", 1),
    ("", "empty", None),
    ("\x00\x01binary", "binary", None),
    ("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.2:80 -r 10.244.0.1:80 -m -w 1\n", "not defined", 2),
])
def test_near_misses_raise_input_error(text: str, match: str, line: int | None) -> None:
    with pytest.raises(InputError) as ei:
        parse_ipvsadm(text, "dump.txt")
    assert match in ei.value.message
    assert ei.value.message.startswith("dump.txt")
    if line is not None:
        assert ei.value.line == line


def test_connections_near_misses() -> None:
    with pytest.raises(InputError):
        parse_ipvsadm_connections(read("full.txt"), "x")
    with pytest.raises(InputError, match="without -n"):
        parse_ipvsadm_connections("IPVS connection entries\npro expire state       source             "
                                  "virtual            destination\nTCP 14:58  ESTABLISHED client1:51234      "
                                  "hostnames:http      pod-a:9376\n", "x")


def test_cli_reports_bad_ipvsadm_as_exit_2(tmp_path: Path, run_cli: object) -> None:
    bad = tmp_path / "ipvsadm.txt"
    bad.write_text(NAMES)
    code, out, err = run_cli(["rules", "--ipvsadm", str(bad)])  # type: ignore[operator]
    assert code == 2
    assert "Traceback" not in err and "-n" in err


def test_detection_helpers() -> None:
    for name in ("full.txt", "stats.txt", "save.txt", "conns.txt"):
        assert looks_like_ipvsadm(read(name)) and not looks_like_nft(read(name))
    assert not looks_like_ipvsadm("*nat\n:PREROUTING ACCEPT [0:0]\n")
    assert is_ipvs_connection_list(read("conns.txt")) and not is_ipvs_connection_list(read("full.txt"))
    assert not looks_like_ipvsadm((DEMO / "nft.txt").read_text())


# --------------------------------------------------------------------------- the demo, in three modes


def _backends(r: NodeRules) -> dict[tuple[str, int, str], dict[str, Fraction | None]]:
    return {(s.address, s.port, s.protocol): shares(s) for s in r.services if s.kind == "ClusterIP"}


def _expected_from_cluster() -> dict[tuple[str, int, str], dict[str, Fraction | None]]:
    from svcctl.sources.snapshot import SnapshotSource

    src = SnapshotSource("demo")
    out: dict[tuple[str, int, str], dict[str, Fraction | None]] = {}
    for svc in src.services:
        for p in svc.ports:
            ready = []
            for sl in src.list_endpoint_slices(svc.meta.namespace, svc.meta.name):
                port = next((sp.port for sp in sl.ports if sp.name == p.name and sp.protocol == p.protocol), None)
                if port is None:
                    continue
                ready += [f"{a}:{port}" for ep in sl.endpoints if ep.is_ready for a in ep.addresses]
            out[(svc.cluster_ip, p.port, p.protocol)] = {a: Fraction(1, len(ready)) for a in ready}
    return out


def test_demo_ipvsadm_is_what_the_generator_prints() -> None:
    assert (DEMO / "ipvsadm.txt").read_text() == gen.demo_ipvsadm()


def test_demo_modes_agree() -> None:
    ipvs = parse_ipvsadm((DEMO / "ipvsadm.txt").read_text(), "ipvsadm.txt",
                         ipset_text=(DEMO / "ipset.txt").read_text(),
                         ip_addr_text=(DEMO / "ip-addr-kube-ipvs0.txt").read_text())
    nft = parse_nft((DEMO / "nft.txt").read_text(), "nft.txt")
    expected = _expected_from_cluster()
    assert _backends(ipvs) == expected
    assert _backends(nft) == expected
    assert expected[("10.0.1.175", 80, "TCP")] == {"10.244.0.5:9376": Fraction(1, 2),
                                                   "10.244.0.6:9376": Fraction(1, 2)}
    assert ipvs_glue_findings(ipvs) == []
    ipt_file = DEMO / "iptables-save.txt"
    if ipt_file.exists():
        from svcctl.dataplane.iptables import parse_iptables_save

        ipt = parse_iptables_save(ipt_file.read_text(), "iptables-save.txt")
        assert _backends(ipt) == expected
        names = {(s.address, s.port, s.protocol): s.name for s in ipt.services if s.kind == "ClusterIP"}
        assert {(s.address, s.port, s.protocol): s.name for s in nft.services} == names


# --------------------------------------------------------------------------- damaged input never escapes as a traceback


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["full.txt", "stats.txt", "rate.txt", "save.txt", "conns.txt", "ipset.txt",
                             "ip-addr-kube-ipvs0.txt"]),
       how=st.integers(0, 3), where=st.floats(0, 1, exclude_max=True),
       what=st.sampled_from(list(" ->:.,[]0aK\n\t")))
def test_damaged_ipvs_dumps_give_rules_or_input_error(name: str, how: int, where: float, what: str) -> None:
    text = gen.damage(read(name), how, where, what)
    with contextlib.suppress(InputError):
        if name == "conns.txt":
            parse_ipvsadm_connections(text, name)
        elif name == "ipset.txt":
            parse_ipset(text, name)
        elif name.startswith("ip-addr"):
            parse_ip_addr(text, name)
        else:
            parse_ipvsadm(text, name).to_json()


# --------------------------------------------------------------------------- printed tables round-trip


@st.composite
def virtual_servers(draw: st.DrawFn) -> list[gen.VS]:
    out = []
    for i in range(draw(st.integers(1, 5))):
        v6 = draw(st.booleans())
        reals: list[dict[str, object]] = []
        for j in range(draw(st.integers(0, 6))):
            reals.append({"ip": f"fd00:10:244:{i:x}::{j + 1:x}" if v6 else f"10.244.{i}.{j + 1}",
                          "port": draw(st.integers(1, 65535)), "weight": draw(st.integers(0, 20)),
                          "active": draw(st.integers(0, 10**6)), "inactive": draw(st.integers(0, 10**6)),
                          "fwd": draw(st.sampled_from(["Masq", "Route", "Tunnel"]))})
        out.append(gen.VS(draw(st.sampled_from(["TCP", "UDP", "SCTP"])), f"fd00:10:96::{i + 1:x}" if v6 else
                          f"10.0.{i}.1", draw(st.integers(1, 65535)),
                          scheduler=draw(st.sampled_from(["rr", "wrr", "lc", "wlc", "sh", "mh"])),
                          persistent=draw(st.one_of(st.none(), st.integers(1, 86400))), reals=reals, ipv6=v6))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vss=virtual_servers())
def test_printed_tables_read_back_exactly(vss: list[gen.VS]) -> None:
    listing = parse_ipvsadm(gen.print_ipvsadm(vss, "list"), "list")
    saved = parse_ipvsadm(gen.print_ipvsadm(vss, "save"), "save")
    for v in vss:
        for r in (listing, saved):
            e = entry(r, v.address, v.port, v.protocol)
            assert e.scheduler == v.scheduler and e.affinity_seconds == v.persistent
            live = [x for x in v.reals if int(x["weight"]) > 0]  # type: ignore[call-overload]
            total = sum(int(x["weight"]) for x in live)  # type: ignore[call-overload]
            for b in e.backends:
                src = next(x for x in v.reals if x["ip"] == b.ip and x["port"] == b.port)
                w = int(src["weight"])  # type: ignore[call-overload]
                assert b.weight == w and b.draining == (w == 0)
                if w == 0:
                    assert b.probability == 0
                elif v.scheduler == "rr":
                    assert b.probability == Fraction(1, len(live))
                elif v.scheduler == "wrr":
                    assert b.probability == Fraction(w, total)
                else:
                    assert b.probability is None
            assert len(e.backends) == len(v.reals)
        assert [(b.active_conns, b.inactive_conns) for b in entry(listing, v.address, v.port, v.protocol).backends] == \
            [(x["active"], x["inactive"]) for x in sorted(v.reals, key=lambda x: (x["ip"], x["port"]))]  # type: ignore[arg-type, return-value]

"""`svcctl dns` end to end: snapshot (nothing sent), real dnsmasq, bad input, live API + --dns-server, and the
DNS hop inside `svcctl trace`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dnsserver import DnsmasqServer, dead_port, require_dnsmasq, zone_from_source

from svcctl.sources.snapshot import SnapshotSource

Run = Callable[..., tuple[int, str, str]]
FIXTURE = str(Path(__file__).parent.parent / "fixtures" / "dns" / "cluster.yaml")
FAST = ["--dns-timeout", "0.3", "--dns-attempts", "1"]


@pytest.fixture(scope="module")
def demo_dns() -> Iterator[DnsmasqServer]:
    require_dnsmasq()
    srv = DnsmasqServer(zone_from_source(SnapshotSource("demo"))).start()
    try:
        yield srv
    finally:
        srv.stop()


def doc(out: str) -> dict[str, Any]:
    d = json.loads(out)
    assert d["apiVersion"] == "svcctl/v1" and d["kind"] == "DNSReport"
    return d  # type: ignore[no-any-return]


def test_snapshot_without_server_sends_nothing(run_cli: Run) -> None:
    code, out, err = run_cli(["dns", "hostnames", "--snapshot", "demo"])
    assert code == 0, err
    assert "no query was sent (snapshot)" in out
    assert "10.0.1.175" in out and "verdict: ok" in out
    code, out, _ = run_cli(["dns", "hostnames", "--snapshot", "demo", "-o", "json"])
    d = doc(out)
    assert code == 0 and d["queries"] == [] and d["queried"] is False
    assert d["expected"] == [{"name": "hostnames.default.svc.cluster.local.", "type": "A", "data": "10.0.1.175",
                              "why": "ClusterIP of default/hostnames"}]
    assert d["findings"] == [] and d["resolver"]["nameservers"] == ["10.0.0.10"]


def test_snapshot_unknown_service_is_a_finding(run_cli: Run) -> None:
    code, out, _ = run_cli(["dns", "hostname", "--snapshot", "demo", "-o", "json"])
    d = doc(out)
    assert code == 1
    assert [f["code"] for f in d["findings"]] == ["DNSNameNotFound"]
    assert "hostnames" in d["findings"][0]["hint"]  # did you mean


def test_queries_real_dnsmasq(run_cli: Run, demo_dns: DnsmasqServer) -> None:
    code, out, err = run_cli(["dns", "hostnames", "--snapshot", "demo", "--dns-server", demo_dns.address,
                              "-o", "json", *FAST])
    assert code == 0, err
    d = doc(out)
    assert d["queried"] is True
    q = d["queries"][0]
    assert (q["name"], q["type"], q["server"], q["rcode"]) == (
        "hostnames.default.svc.cluster.local.", "A", demo_dns.address, "NOERROR")
    assert q["answers"] == [{"data": "10.0.1.175", "ttl": 5, "type": "A",
                             "name": "hostnames.default.svc.cluster.local."}]
    assert d["comparison"] == [{"type": "A", "data": "10.0.1.175", "status": "ok", "ttl": 5,
                                "why": "ClusterIP of default/hostnames"}]
    assert d["verdict"] == "ok"


def test_table_and_wide(run_cli: Run, demo_dns: DnsmasqServer) -> None:
    code, out, _ = run_cli(["dns", "hostnames.default", "--snapshot", "demo", "--dns-server", demo_dns.address,
                            *FAST])
    assert code == 0
    assert "== queries" in out and "== expected vs got" in out
    assert "hostnames.default.default.svc.cluster.local." in out and "NXDOMAIN" in out  # each name tried
    assert "10.0.1.175 (ttl 5)" in out
    code, out, _ = run_cli(["dns", "hostnames", "--snapshot", "demo", "--dns-server", demo_dns.address,
                            "-o", "wide", *FAST])
    assert "TRANSPORT" in out and "ClusterIP of default/hostnames" in out


def test_yaml_output(run_cli: Run, demo_dns: DnsmasqServer) -> None:
    code, out, _ = run_cli(["dns", "nosuch", "--snapshot", "demo", "--dns-server", demo_dns.address,
                            "-o", "yaml", *FAST])
    d = yaml.safe_load(out)
    assert code == 1 and d["kind"] == "DNSReport"
    assert "DNSNameNotFound" in [f["code"] for f in d["findings"]]
    assert [q["purpose"] for q in d["queries"]][-1] == "control"


def test_stale_record_exits_1(run_cli: Run) -> None:
    zone = zone_from_source(SnapshotSource("demo"))
    zone.replace("hostnames.default.svc.cluster.local", "A", "10.0.1.175", "10.0.1.200")
    with DnsmasqServer(zone) as srv:
        code, out, _ = run_cli(["dns", "hostnames", "--snapshot", "demo", "--dns-server", srv.address, *FAST])
    assert code == 1
    assert "DNSMismatch" in out and "extra" in out and "10.0.1.200" in out


def test_unreachable_server_is_a_finding(run_cli: Run) -> None:
    code, out, _ = run_cli(["dns", "hostnames", "--snapshot", "demo", "--dns-server", f"127.0.0.1:{dead_port()}",
                            "-o", "json", *FAST])
    d = doc(out)
    assert code == 1
    assert {f["code"] for f in d["findings"]} >= {"DNSServerUnreachable"}


@pytest.mark.parametrize("bad", ["nonsense", "10.0.0.10:99999", "dns.example:53"])
def test_bad_dns_server_exits_2(run_cli: Run, bad: str) -> None:
    code, out, err = run_cli(["dns", "hostnames", "--snapshot", "demo", "--dns-server", bad])
    assert code == 2 and out == "" and "bad DNS server" in err


def test_bad_resolv_conf_exits_2(run_cli: Run, tmp_path: Path) -> None:
    f = tmp_path / "resolv.conf"
    f.write_text("search default.svc.cluster.local\nnameserver ten.ten\n")
    code, _, err = run_cli(["dns", "hostnames", "--snapshot", "demo", "--resolv-conf", str(f)])
    assert code == 2 and f"{f}:2:" in err
    code, _, err = run_cli(["dns", "bad..name", "--snapshot", "demo"])
    assert code == 2 and "not a valid DNS name" in err


def test_resolv_conf_search_and_type(run_cli: Run, tmp_path: Path) -> None:
    require_dnsmasq()
    src = SnapshotSource(FIXTURE)
    f = tmp_path / "resolv.conf"
    f.write_text("nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\n"
                 "options ndots:5\n")
    with DnsmasqServer(zone_from_source(src)) as srv:
        code, out, _ = run_cli(["dns", "web", "--snapshot", FIXTURE, "-n", "shop", "--resolv-conf", str(f),
                                "--dns-server", srv.address, "--type", "AAAA", "-o", "json", *FAST])
        d = doc(out)
        assert code == 0 and d["types"] == ["AAAA"]
        assert d["queries"][0]["name"] == "web.shop.svc.cluster.local."
        assert d["queries"][0]["answers"][0]["data"] == "fd00:10:96::a"
        code, out, _ = run_cli(["dns", "_http._tcp.web.shop", "--snapshot", FIXTURE, "--dns-server", srv.address,
                                "-o", "json", *FAST])
        d = doc(out)
        assert code == 0 and d["types"] == ["SRV"]
        assert d["comparison"][0]["status"] == "ok"


def test_live_api_with_dns_server(run_cli: Run, apiserver: Callable[..., Any], demo_dns: DnsmasqServer) -> None:
    """Live cluster source (real HTTPS API) and a real DNS server: the tool queries without --snapshot."""
    api = apiserver("demo")
    code, out, err = run_cli(["dns", "hostnames", "--kubeconfig", str(api.kubeconfig), "--dns-server",
                              demo_dns.address, "-o", "json", *FAST])
    assert code == 0, err
    d = doc(out)
    assert d["queried"] is True and d["service"] == "default/hostnames"
    assert d["comparison"][0]["status"] == "ok"


def test_trace_uses_the_dns_hop(run_cli: Run, demo_dns: DnsmasqServer) -> None:
    code, out, err = run_cli(["trace", "hostnames", "--snapshot", "demo", "--dns-server", demo_dns.address,
                              "--dns-timeout", "0.5", "-o", "json"])
    d = json.loads(out)
    assert d["dns"]["kind"] == "DNSReport", err
    assert d["dns"]["queries"][0]["answers"][0]["data"] == "10.0.1.175"
    dns_hop = next(h for h in d["hops"] if h["hop"] == "dns")
    assert dns_hop["verdict"] == "ok"
    code, out, _ = run_cli(["trace", "hostnames", "--snapshot", "demo", "-o", "json"])
    d = json.loads(out)
    assert d["dns"]["queries"] == [] and d["dns"]["queried"] is False


def test_dns_server_without_any_cluster(run_cli: Run, demo_dns: DnsmasqServer) -> None:
    """No kubeconfig at all: DNS still answers, with nothing from the API to compare against."""
    code, out, err = run_cli(["dns", "hostnames.default", "--dns-server", demo_dns.address, "-o", "json", *FAST])
    assert code == 0, err
    d = doc(out)
    answered = [a["data"] for q in d["queries"] for a in q["answers"]]
    assert "10.0.1.175" in answered
    assert "no cluster configured" in err
    code, out, err = run_cli(["dns", "hostnames.default"])  # and without a server either: exit 3, one line
    assert code == 3 and err.startswith("error: ") and len(err.strip().splitlines()) == 1

"""The DNS hop: name interpretation, CoreDNS' record rules, and every finding against a real dnsmasq.

Servers listen on 127.0.0.1 only. The zone dnsmasq serves is written by tests/support/dnsserver.py from the test cluster
independently of svcctl.analysis.dns; the wrong zones are that zone edited on purpose.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnsserver import DnsmasqServer, StubResponder, dead_port, require_dnsmasq, zone_from_source
from hypothesis import given
from hypothesis import strategies as st

from svcctl.analysis.dns import (
    DNSQuery,
    DNSReport,
    ResolverConfig,
    candidate_names,
    expected_records,
    interpret_name,
    judge,
    parse_resolv_conf,
    parse_server,
)
from svcctl.errors import InputError
from svcctl.ops.dns import NO_QUERY_NOTE, dns_hop
from svcctl.sources.snapshot import SnapshotSource

FIXTURE = str(Path(__file__).parent.parent / "fixtures" / "dns" / "cluster.yaml")
EXTERNAL = ["host-record=db.example.test,192.0.2.10,30"]
FAST = {"timeout": 0.3, "attempts": 1}


@pytest.fixture(scope="module")
def cluster() -> SnapshotSource:
    return SnapshotSource(FIXTURE)


@pytest.fixture(scope="module")
def good_dns(cluster: SnapshotSource) -> Iterator[DnsmasqServer]:
    """dnsmasq serving exactly what CoreDNS would for the test cluster."""
    require_dnsmasq()
    srv = DnsmasqServer(zone_from_source(cluster), EXTERNAL).start()
    try:
        yield srv
    finally:
        srv.stop()


def hop(source: SnapshotSource, name: str, server: str, namespace: str = "default", **kw: object) -> DNSReport:
    opts = {**FAST, **kw}
    return dns_hop(source, None, name, namespace, "cluster.local", server, opts.pop("resolv_conf", None),  # type: ignore[arg-type]
                   True, opts.pop("timeout"), **opts)  # type: ignore[arg-type]


def codes(r: DNSReport) -> dict[str, str]:
    return {f.code: f.severity for f in r.findings}


# --------------------------------------------------------------------------- interpret_name


@pytest.mark.parametrize("typed,kind,svc,ns,extra", [
    ("web", "service", "web", "me", {}),
    ("web.shop", "service", "web", "shop", {}),
    ("web.shop.svc", "service", "web", "shop", {}),
    ("web.shop.svc.cluster.local", "service", "web", "shop", {}),
    ("Web.Shop.svc.cluster.local.", "service", "web", "shop", {"absolute": True}),
    ("db-0.db.shop.svc.cluster.local", "pod", "db", "shop", {"hostname": "db-0"}),
    ("db-0.db.shop", "pod", "db", "shop", {"hostname": "db-0"}),
    ("_http._tcp.web.shop.svc.cluster.local", "srv", "web", "shop", {"port": "http", "proto": "tcp"}),
    ("_http._tcp.web", "srv", "web", "me", {"port": "http", "proto": "tcp"}),
    ("example.com.", "external", None, None, {}),
    ("a.b.example.com", "external", None, None, {}),
])
def test_interpret_name(typed: str, kind: str, svc: str | None, ns: str | None, extra: dict[str, object]) -> None:
    n = interpret_name(typed, "me", "cluster.local")
    assert (n.kind, n.service, n.namespace) == (kind, svc, ns)
    for k, v in extra.items():
        assert getattr(n, k) == v


def test_interpret_name_fqdn_and_domain() -> None:
    n = interpret_name("_metrics._tcp.web.shop.svc.corp.k8s", "x", "corp.k8s")
    assert n.fqdn == "_metrics._tcp.web.shop.svc.corp.k8s."
    assert interpret_name("web", "shop", "corp.k8s").fqdn == "web.shop.svc.corp.k8s."
    assert interpret_name("web.shop.svc.cluster.local", "x", "corp.k8s").kind == "external"


@pytest.mark.parametrize("bad", ["", "web..shop", "-web", "we b", "a" * 64, "_http"])
def test_interpret_name_rejects(bad: str) -> None:
    with pytest.raises(InputError):
        interpret_name(bad, "default")


_label = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@given(_label, _label, st.booleans())
def test_interpret_name_round_trips(svc: str, ns: str, dot: bool) -> None:
    n = interpret_name(f"{svc}.{ns}.svc.cluster.local" + ("." if dot else ""), "elsewhere")
    assert (n.kind, n.service, n.namespace) == ("service", svc, ns)
    again = interpret_name(n.fqdn, "elsewhere")
    assert (again.service, again.namespace, again.fqdn) == (svc, ns, n.fqdn)


# --------------------------------------------------------------------------- resolver config


def test_candidate_names_follow_ndots() -> None:
    search = ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert candidate_names("web", search, 5) == [
        "web.shop.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web."]
    # 4 dots < 5: still the search list first (the famous ndots:5 cost)
    assert candidate_names("web.shop.svc.cluster.local", search, 5)[0] == "web.shop.svc.cluster.local.shop.svc.cluster.local."
    # enough dots: as typed first
    assert candidate_names("web.shop.svc.cluster.local", search, 2)[0] == "web.shop.svc.cluster.local."
    assert candidate_names("web.shop.svc.cluster.local.", search, 5) == ["web.shop.svc.cluster.local."]


def test_parse_resolv_conf() -> None:
    cfg = parse_resolv_conf("# kubelet\nnameserver 10.96.0.10\nsearch a.svc.cluster.local svc.cluster.local "
                            "cluster.local corp.example\noptions ndots:2 timeout:3 attempts:4 edns0\n", "rc")
    assert cfg.nameservers == ["10.96.0.10"]
    assert cfg.search[-1] == "corp.example" and len(cfg.search) == 4
    assert (cfg.ndots, cfg.timeout, cfg.attempts, cfg.edns0) == (2, 3.0, 4, True)
    with pytest.raises(InputError, match="rc:2"):
        parse_resolv_conf("search x\nnameserver not-an-ip\n", "rc")


@pytest.mark.parametrize("text,want", [("10.96.0.10", ("10.96.0.10", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
                                       ("[::1]:5353", ("::1", 5353)), ("fd00::10", ("fd00::10", 53))])
def test_parse_server(text: str, want: tuple[str, int]) -> None:
    assert parse_server(text) == want


@pytest.mark.parametrize("bad", ["dns.example", "10.0.0.1:port", "10.0.0.1:70000", "1.2.3.4:0"])
def test_parse_server_rejects(bad: str) -> None:
    with pytest.raises(InputError):
        parse_server(bad)


# --------------------------------------------------------------------------- expected_records (pure)


def _exp(cluster: SnapshotSource, typed: str, ns: str = "default") -> list[tuple[str, str]]:
    n = interpret_name(typed, ns)
    svc = next((s for s in cluster.services if s.meta.name == n.service and s.meta.namespace == n.namespace), None)
    slices = cluster.list_endpoint_slices(n.namespace or "", n.service or "")
    e = expected_records(svc, slices, cluster.list_pods(n.namespace), n, "cluster.local")
    return sorted((r.type, r.data) for r in e.records)


def test_expected_clusterip_dual_stack(cluster: SnapshotSource) -> None:
    assert _exp(cluster, "web.shop") == [("A", "10.96.10.10"), ("AAAA", "fd00:10:96::a")]


def test_expected_headless_only_ready(cluster: SnapshotSource) -> None:
    # db-2 is not ready; db-x has no hostname but is ready
    assert _exp(cluster, "db.shop") == [("A", "10.244.2.10"), ("A", "10.244.2.11"), ("A", "10.244.2.13")]


def test_expected_publish_not_ready(cluster: SnapshotSource) -> None:
    assert _exp(cluster, "peers.shop") == [("A", "10.244.3.10"), ("A", "10.244.3.11")]


def test_expected_pod_records(cluster: SnapshotSource) -> None:
    assert _exp(cluster, "db-0.db.shop") == [("A", "10.244.2.10")]
    assert _exp(cluster, "10-244-2-13.db.shop") == [("A", "10.244.2.13")]  # no hostname: the dashed IP
    assert _exp(cluster, "db-2.db.shop") == []  # not ready
    n = interpret_name("db-x.db.shop", "default")
    svc = cluster.get_service("shop", "db")
    e = expected_records(svc, cluster.list_endpoint_slices("shop", "db"), cluster.list_pods("shop"), n)
    assert e.records == [] and any("subdomain 'database'" in x for x in e.notes)


def test_expected_srv(cluster: SnapshotSource) -> None:
    assert _exp(cluster, "_http._tcp.web.shop") == [("SRV", "80 web.shop.svc.cluster.local.")]
    assert _exp(cluster, "_mysql._tcp.db.shop") == [
        ("SRV", "3306 10-244-2-13.db.shop.svc.cluster.local."), ("SRV", "3306 db-0.db.shop.svc.cluster.local."),
        ("SRV", "3306 db-1.db.shop.svc.cluster.local.")]
    assert _exp(cluster, "_http._udp.web.shop") == []  # wrong protocol


def test_expected_external_name_and_unknown(cluster: SnapshotSource) -> None:
    assert _exp(cluster, "legacy.shop") == [("CNAME", "db.example.test.")]
    assert _exp(cluster, "nosuch.shop") == []


# --------------------------------------------------------------------------- snapshot: nothing sent


def test_snapshot_mode_sends_nothing() -> None:
    src = SnapshotSource("demo")
    r = dns_hop(src, None, "hostnames", "default", "cluster.local", None, None, False, 2.0)
    assert not r.queried and r.queries == []
    assert [(e.type, e.data) for e in r.expected] == [("A", "10.0.1.175")]
    assert NO_QUERY_NOTE in r.notes and not r.broken
    assert r.resolver.nameservers == ["10.0.0.10"]  # the kube-dns ClusterIP a Pod would ask
    doc = r.to_json()
    assert doc["kind"] == "DNSReport" and doc["apiVersion"] == "svcctl/v1" and doc["queries"] == []


def test_snapshot_mode_predicts_the_search_list(cluster: SnapshotSource) -> None:
    r = dns_hop(cluster, None, "hostnames.default", "other", "cluster.local", None, None, False, 2.0)
    assert r.queries == [] and not r.broken
    assert [(p.name, [e.data for e in p.records or []]) for p in r.predicted] == [
        ("hostnames.default.other.svc.cluster.local.", ["10.244.6.6"])]
    f = next(f for f in r.findings if f.code == "DNSSearchPathSurprise")
    assert f.severity == "warning" and "predicted from the API" in f.message
    # from its own namespace the same name walks past other suffixes to the right Service
    r = dns_hop(cluster, None, "hostnames.default", "default", "cluster.local", None, None, False, 2.0)
    assert [p.to_json()["rcode"] for p in r.predicted] == ["NXDOMAIN", "NOERROR"] and r.findings == []


def test_snapshot_mode_predicts_nxdomain(cluster: SnapshotSource) -> None:
    r = dns_hop(cluster, None, "db-2.db.shop", "shop", "cluster.local", None, None, False, 2.0)
    f = next(f for f in r.findings if f.code == "DNSNameNotFound")
    assert "not ready" in f.message and r.broken
    # the walk stops at the first name outside the cluster zone: upstream is unknown offline
    assert r.predicted[-1].name == "db-2.db.shop." and r.predicted[-1].records is None


@pytest.mark.parametrize("outside", [True, False])
def test_judge_timeouts_from_outside_the_cluster(outside: bool) -> None:
    """Pure judgement: silence from the kube-dns ClusterIP seen from outside the cluster is only a warning."""
    n = interpret_name("hostnames", "default")
    r = DNSReport(n, "default", "cluster.local", ResolverConfig(nameservers=["10.0.0.10"]), queried=True,
                  types=["A"], from_outside=outside)
    r.queries = [DNSQuery("hostnames.default.svc.cluster.local.", "A", "10.0.0.10", "TIMEOUT", tries=2,
                          errors=["10.0.0.10: no answer in 2s"] * 2),
                 DNSQuery("kubernetes.default.svc.cluster.local.", "A", "10.0.0.10", "TIMEOUT", purpose="control")]
    judge(r)
    assert [(f.code, f.severity) for f in r.findings] == [("DNSTimeout", "warning" if outside else "error")]
    assert r.broken is not outside
    assert ("outside the cluster" in r.findings[0].message) is outside


# --------------------------------------------------------------------------- a correct server


def test_clusterip_dual_stack_matches(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "web.shop.svc.cluster.local.", good_dns.address)
    assert r.resolved_name == "web.shop.svc.cluster.local."
    assert [(q.type, q.rcode) for q in r.queries] == [("A", "NOERROR"), ("AAAA", "NOERROR")]
    assert {(d.type, d.data, d.status, d.ttl) for d in r.diffs} == {
        ("A", "10.96.10.10", "ok", 5), ("AAAA", "fd00:10:96::a", "ok", 5)}
    assert r.findings == [] and r.queries[0].server == good_dns.address


def test_search_list_from_namespace(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "db", good_dns.address, namespace="shop")
    assert [q.name for q in r.queries] == ["db.shop.svc.cluster.local."]  # first suffix hits
    assert sorted(a.data for a in r.answers) == ["10.244.2.10", "10.244.2.11", "10.244.2.13"]
    assert not r.broken and all(d.status == "ok" for d in r.diffs)


def test_namespaced_name_from_other_namespace_is_info(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "web.shop", good_dns.address, namespace="default")
    assert [q.rcode for q in r.queries if q.type == "A"] == ["NXDOMAIN", "NOERROR"]
    assert codes(r) == {"DNSSearchPathSurprise": "info"}
    assert not r.broken


def test_pod_and_srv_records(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "db-1.db.shop.svc.cluster.local.", good_dns.address)
    assert [(d.data, d.status) for d in r.diffs] == [("10.244.2.11", "ok")]
    r = hop(cluster, "_mysql._tcp.db.shop.svc.cluster.local.", good_dns.address)
    assert r.types == ["SRV"] and len(r.diffs) == 3 and all(d.status == "ok" for d in r.diffs)
    r = hop(cluster, "_http._tcp.web.shop.svc.cluster.local.", good_dns.address)
    assert [(d.data, d.status) for d in r.diffs] == [("80 web.shop.svc.cluster.local.", "ok")]


def test_external_name_cname(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "legacy.shop.svc.cluster.local.", good_dns.address)
    assert [(d.type, d.status) for d in r.diffs] == [("CNAME", "ok")]
    assert "192.0.2.10" in {a.data for a in r.answers}  # the server chased the CNAME itself
    assert r.findings == []


def test_external_name_target_that_does_not_resolve(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "gone.shop.svc.cluster.local.", good_dns.address)
    follow = [q for q in r.queries if q.purpose == "cname"]
    assert [q.name for q in follow] == ["nowhere.example.test."]
    assert codes(r) == {"DNSNameNotFound": "warning"}


def test_truncated_udp_answer_retried_over_tcp(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "big.shop.svc.cluster.local.", good_dns.address)
    q = r.queries[0]
    assert q.truncated and q.transport == "tcp" and q.rcode == "NOERROR"
    assert len(q.answers) == 40 and not r.broken


def test_publish_not_ready_addresses(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "peers.shop.svc.cluster.local.", good_dns.address)
    assert sorted(d.data for d in r.diffs if d.status == "ok") == ["10.244.3.10", "10.244.3.11"]


# --------------------------------------------------------------------------- findings against real servers


def test_nxdomain_with_working_control(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "nosuch", good_dns.address, namespace="shop")
    assert [q.rcode for q in r.queries if q.purpose == "search"][:3] == ["NXDOMAIN"] * 3
    control = [q for q in r.queries if q.purpose == "control"]
    assert control and control[0].answers[0].data == "10.96.0.1"
    f = next(f for f in r.findings if f.code == "DNSNameNotFound")
    assert f.severity == "error" and "DNS itself works" in f.message


def test_search_path_trap_resolves_other_object(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    # other/default is a headless Service with an endpoint named `hostnames`: the first search suffix wins
    r = hop(cluster, "hostnames.default", good_dns.address, namespace="other")
    assert r.resolved_name == "hostnames.default.other.svc.cluster.local."
    f = next(f for f in r.findings if f.code == "DNSSearchPathSurprise")
    assert f.severity == "warning" and "other/default" in f.message


def test_search_path_through_non_cluster_suffix(cluster: SnapshotSource, tmp_path: Path) -> None:
    zone = zone_from_source(cluster)
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.96.0.10\nsearch other.svc.cluster.local svc.cluster.local cluster.local "
                    "corp.example\noptions ndots:5\n")
    with DnsmasqServer(zone, ["host-record=web.corp.example,192.0.2.77,60"]) as srv:
        r = hop(cluster, "web", srv.address, namespace="other", resolv_conf=str(conf))
    assert r.resolved_name == "web.corp.example."
    f = next(f for f in r.findings if f.code == "DNSSearchPathSurprise")
    assert f.severity == "warning" and "outside the cluster zone" in f.message


def test_short_name_resolving_in_another_namespace(cluster: SnapshotSource, tmp_path: Path) -> None:
    # a resolv.conf whose search list starts with another namespace: `hostnames` meant in shop lands in default
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n")
    with DnsmasqServer(zone_from_source(cluster)) as srv:
        r = hop(cluster, "hostnames", srv.address, namespace="shop", resolv_conf=str(conf))
    assert r.resolved_name == "hostnames.default.svc.cluster.local."
    f = next(f for f in r.findings if f.code == "DNSSearchPathSurprise")
    assert f.severity == "warning" and "Service default/hostnames" in f.message
    assert "hostnames.shop.svc.cluster.local." in f.message  # what was meant


def test_stale_ip_is_a_mismatch(cluster: SnapshotSource) -> None:
    zone = zone_from_source(cluster)
    zone.replace("hostnames.default.svc.cluster.local", "A", "10.0.1.175", "10.0.1.99")
    with DnsmasqServer(zone) as srv:
        r = hop(cluster, "hostnames", srv.address)
    assert {(d.data, d.status) for d in r.diffs} == {("10.0.1.175", "missing"), ("10.0.1.99", "extra")}
    f = next(f for f in r.findings if f.code == "DNSMismatch")
    assert f.severity == "error" and "10.0.1.99" in f.message and r.broken


def test_missing_headless_record_is_a_mismatch(cluster: SnapshotSource) -> None:
    zone = zone_from_source(cluster)
    assert zone.remove("db.shop.svc.cluster.local", "A", "10.244.2.11") == 1
    with DnsmasqServer(zone) as srv:
        r = hop(cluster, "db.shop.svc.cluster.local.", srv.address)
    assert [(d.data, d.status) for d in r.diffs if d.status != "ok"] == [("10.244.2.11", "missing")]
    assert codes(r)["DNSMismatch"] == "error"


def test_service_missing_from_dns(cluster: SnapshotSource) -> None:
    zone = zone_from_source(cluster)
    zone.remove("web.shop.svc.cluster.local")
    with DnsmasqServer(zone) as srv:
        r = hop(cluster, "web.shop.svc.cluster.local.", srv.address)
    f = next(f for f in r.findings if f.code == "DNSNameNotFound")
    assert "10.96.10.10" in f.message and "DNS itself works" in f.message
    assert {d.status for d in r.diffs} == {"missing"}


def test_dual_stack_missing_aaaa(cluster: SnapshotSource) -> None:
    zone = zone_from_source(cluster)
    assert zone.remove("web.shop.svc.cluster.local", "AAAA") == 1
    with DnsmasqServer(zone) as srv:
        r = hop(cluster, "web.shop.svc.cluster.local.", srv.address)
    assert [(q.type, q.rcode, len(q.answers)) for q in r.queries] == [("A", "NOERROR", 1), ("AAAA", "NOERROR", 0)]
    assert [(d.type, d.status) for d in r.diffs] == [("A", "ok"), ("AAAA", "missing")]
    assert codes(r) == {"DNSMismatch": "error"}


def test_asking_a_family_the_service_lacks_is_nodata(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "hostnames.default.svc.cluster.local.", good_dns.address, rtype="AAAA")
    assert [(q.type, q.rcode, q.answers) for q in r.queries if q.purpose == "search"] == [("AAAA", "NOERROR", [])]
    assert [(f.code, f.severity) for f in r.findings] == [("DNSNameNotFound", "info")] and not r.broken
    offline = dns_hop(cluster, None, "hostnames", "default", "cluster.local", None, None, False, 1.0, rtype="AAAA")
    assert [(f.code, f.severity) for f in offline.findings] == [("DNSNameNotFound", "info")]
    with pytest.raises(InputError):
        dns_hop(cluster, None, "hostnames", "default", "cluster.local", None, None, False, 1.0, rtype="SRV")


def test_headless_without_ready_endpoints(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    r = hop(cluster, "empty.shop.svc.cluster.local.", good_dns.address)
    assert r.queries[0].rcode == "NXDOMAIN" and r.expected == []
    f = next(f for f in r.findings if f.code == "DNSNameNotFound")
    assert "as the API predicts" in f.message and "no ready endpoint" in f.message


def test_timeout_and_control_timeout_means_outage(cluster: SnapshotSource) -> None:
    with StubResponder("silent") as stub:
        r = hop(cluster, "hostnames", stub.address, timeout=0.3, attempts=2)
        assert stub.received >= 3  # 2 attempts + the control query
    first = r.queries[0]
    assert first.rcode == "TIMEOUT" and first.tries == 2
    assert [q.purpose for q in r.queries] == ["search", "control"]  # a timeout stops the search list
    f = next(f for f in r.findings if f.code == "DNSTimeout")
    assert f.severity == "error" and "DNS itself is broken" in f.message


def test_answer_with_wrong_id_is_ignored(cluster: SnapshotSource) -> None:
    with StubResponder("wrongid") as stub:
        r = hop(cluster, "hostnames.default.svc.cluster.local.", stub.address, control=False)
    assert r.queries[0].rcode == "TIMEOUT" and "DNSTimeout" in codes(r)


def test_unreachable_server(cluster: SnapshotSource) -> None:
    r = hop(cluster, "hostnames", f"127.0.0.1:{dead_port()}", timeout=2.0)
    assert r.queries[0].rcode == "UNREACHABLE"
    f = next(f for f in r.findings if f.code == "DNSServerUnreachable")
    assert "refused" in f.evidence and "DNS itself is broken" in f.message


def test_next_server_after_a_dead_one(cluster: SnapshotSource, good_dns: DnsmasqServer) -> None:
    dead = f"127.0.0.1:{dead_port()}"
    r = hop(cluster, "hostnames.default.svc.cluster.local.", f"{dead},{good_dns.address}", timeout=2.0)
    q = r.queries[0]
    assert (q.rcode, q.server, q.tries) == ("NOERROR", good_dns.address, 2)
    assert any(dead in e for e in q.errors) and r.findings == []
    assert r.resolver.nameservers == [dead, good_dns.address]


def test_servfail(cluster: SnapshotSource) -> None:
    with StubResponder("servfail") as stub:
        r = hop(cluster, "hostnames.default.svc.cluster.local.", stub.address)
    assert r.queries[0].rcode == "SERVFAIL"
    assert codes(r)["DNSServerFailure"] == "error"
    assert "DNS itself is broken" in next(f for f in r.findings if f.code == "DNSServerFailure").message


def test_garbage_answer(cluster: SnapshotSource) -> None:
    with StubResponder("garbage") as stub:
        r = hop(cluster, "hostnames.default.svc.cluster.local.", stub.address)
    assert r.queries[0].rcode == "MALFORMED"
    assert codes(r)["DNSMalformedAnswer"] == "error"


def test_truncating_stub_falls_back_to_tcp(cluster: SnapshotSource) -> None:
    recs = {("hostnames.default.svc.cluster.local.", "A"): ["10.0.1.175"]}
    with StubResponder("truncate", recs) as stub:
        r = hop(cluster, "hostnames.default.svc.cluster.local.", stub.address)
    q = r.queries[0]
    assert (q.truncated, q.transport, q.rcode) == (True, "tcp", "NOERROR")
    assert [(d.data, d.status) for d in r.diffs] == [("10.0.1.175", "ok")] and not r.findings


def test_resolv_conf_timeout_and_attempts_used(cluster: SnapshotSource, tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\nsearch default.svc.cluster.local\noptions ndots:1 attempts:3\n")
    with StubResponder("silent") as stub:
        r = dns_hop(cluster, None, "hostnames.default.svc.cluster.local", "default", "cluster.local",
                    stub.address, str(conf), True, 0.2, control=False)
    assert isinstance(r.resolver, ResolverConfig) and r.resolver.ndots == 1
    assert r.queries[0].name == "hostnames.default.svc.cluster.local." and r.queries[0].tries == 3


def test_ci_requires_dnsmasq(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI=true a missing dnsmasq fails the test run instead of skipping it."""
    import dnsserver

    monkeypatch.setattr(dnsserver, "dnsmasq_binary", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        dnsserver.require_dnsmasq()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        dnsserver.require_dnsmasq()
    assert os.environ["CI"] == "false"

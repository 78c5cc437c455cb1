"""Pure trace logic: target parsing, kube-proxy's endpoint view, and the drift codes."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest

from svcctl.analysis.trace import (
    BROKEN,
    OK,
    SKIPPED,
    drift_findings,
    judge_port,
    parse_target,
    proxy_view,
)
from svcctl.dataplane.model import Backend, Flow, NodeRules, ServiceEntry
from svcctl.model import EndpointSlice, Service


@pytest.mark.parametrize(
    ("raw", "kind", "ns", "name", "ip", "port"),
    [
        ("hostnames", "service", None, "hostnames", None, None),
        ("default/hostnames", "service", "default", "hostnames", None, None),
        ("hostnames:80", "service", None, "hostnames", None, 80),
        ("hostnames.default", "dns", "default", "hostnames", None, None),
        ("hostnames.default.svc", "dns", "default", "hostnames", None, None),
        ("hostnames.default.svc.cluster.local", "dns", "default", "hostnames", None, None),
        ("hostnames.default.svc.cluster.local.", "dns", "default", "hostnames", None, None),
        ("web-0.web.prod.svc.cluster.local", "dns", "prod", "web", None, None),
        ("10.0.1.175:80", "ip", None, None, "10.0.1.175", 80),
        ("10.0.1.175", "ip", None, None, "10.0.1.175", None),
        ("[2001:db8::1]:443", "ip", None, None, "2001:db8::1", 443),
        ("2001:db8::1", "ip", None, None, "2001:db8::1", None),
        ("http://hostnames.default:8080/x", "dns", "default", "hostnames", None, 8080),
        ("http://hostnames.default/", "dns", "default", "hostnames", None, 80),
        ("https://10.0.0.1/", "ip", None, None, "10.0.0.1", 443),
    ],
)
def test_parse_target(raw: str, kind: str, ns: str | None, name: str | None, ip: str | None,
                      port: int | None) -> None:
    t = parse_target(raw)
    assert (t.kind, t.namespace, t.name, t.ip, t.port) == (kind, ns, name, ip, port)


def _svc(**spec: Any) -> Service:
    base: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
    }
    base["spec"].update(spec)
    return Service.from_dict(base)


def _slice(eps: list[tuple[str, bool, bool, bool, str]], port: int = 8080, name: str = "http") -> EndpointSlice:
    return EndpointSlice.from_dict({
        "metadata": {"name": "web-abc", "namespace": "prod", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": name, "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": r, "serving": s, "terminating": t},
                       "nodeName": node, "targetRef": {"kind": "Pod", "name": f"web-{ip.split('.')[-1]}"}}
                      for ip, r, s, t, node in eps],
    })


def _rules(backends: list[tuple[str, int]], *, no_endpoints: bool = False) -> NodeRules:
    n = len(backends)
    entry = ServiceEntry("prod/web:http", "TCP", "10.96.0.20", 80, "ClusterIP",
                         [Backend(ip, p, Fraction(1, n)) for ip, p in backends], no_endpoints=no_endpoints)
    return NodeRules("iptables", [entry], source="test")


def test_proxy_view_prefers_ready_then_falls_back_to_terminating() -> None:
    svc = _svc()
    view = proxy_view(svc, svc.ports[0], [_slice([("10.0.0.8", True, True, False, "n1"),
                                                   ("10.0.0.10", False, True, True, "n2")])], "n1")
    assert [e.ip for e in view.cluster] == ["10.0.0.8"]
    assert not view.fallback_terminating
    view = proxy_view(svc, svc.ports[0], [_slice([("10.0.0.10", False, True, True, "n2"),
                                                   ("10.0.0.11", False, False, False, "n2")])], "n1")
    assert [e.ip for e in view.cluster] == ["10.0.0.10"]
    assert view.fallback_terminating
    assert view.local == []


def test_proxy_view_orders_like_kube_proxy_and_matches_port_by_name() -> None:
    svc = _svc()
    sl = _slice([("10.244.0.8", True, True, False, "n1"), ("10.244.0.10", True, True, False, "n1")])
    assert [e.ip for e in proxy_view(svc, svc.ports[0], [sl], None).cluster] == ["10.244.0.10", "10.244.0.8"]
    other = _slice([("10.244.0.8", True, True, False, "n1")], name="metrics")
    assert proxy_view(svc, svc.ports[0], [other], None).all_endpoints == []


def test_judge_port_clean() -> None:
    svc = _svc()
    sl = _slice([("10.0.0.8", True, True, False, "n1"), ("10.0.0.9", True, True, False, "n1")])
    view = proxy_view(svc, svc.ports[0], [sl], "n1")
    pt = judge_port(svc, svc.ports[0], parse_target("prod/web"), _rules([("10.0.0.8", 8080), ("10.0.0.9", 8080)]),
                    view, "n1")
    verdicts = {h.name: h.verdict for h in pt.hops}
    assert verdicts["node-rules"] == OK and verdicts["drift"] == OK and verdicts["endpoints"] == OK
    assert verdicts["selected"] == SKIPPED
    assert pt.findings == []
    assert [(b.pod, b.probability) for b in pt.backends] == [("prod/web-8", Fraction(1, 2)),
                                                              ("prod/web-9", Fraction(1, 2))]


def test_stale_backend_and_not_programmed() -> None:
    svc = _svc()
    sl = _slice([("10.0.0.8", True, True, False, "n1"), ("10.0.0.9", False, False, False, "n1"),
                 ("10.0.0.7", True, True, False, "n1")])
    view = proxy_view(svc, svc.ports[0], [sl], "n1")
    pt = judge_port(svc, svc.ports[0], parse_target("prod/web"), _rules([("10.0.0.8", 8080), ("10.0.0.9", 8080)]),
                    view, "n1")
    codes = sorted((f.code, f.pod) for f in pt.findings)
    assert codes == [("EndpointNotProgrammed", "prod/web-7"), ("StaleBackend", "prod/web-9")]
    assert {h.name: h.verdict for h in pt.hops}["drift"] == BROKEN


def test_service_not_programmed_and_reject() -> None:
    svc = _svc()
    sl = _slice([("10.0.0.8", True, True, False, "n1")])
    empty = NodeRules("iptables", [], source="test")
    assert [f.code for f in drift_findings(svc, [sl], empty, "n1")] == ["ServiceNotProgrammed"]
    rej = _rules([], no_endpoints=True)
    codes = sorted(f.code for f in drift_findings(svc, [sl], rej, "n1"))
    assert codes == ["EndpointNotProgrammed", "NoEndpointsReject"]
    # no endpoints in the API either: the reject is right, but the request still breaks
    assert [f.code for f in drift_findings(svc, [], rej, "n1")] == ["NoEndpointsReject"]


def test_no_local_endpoints() -> None:
    svc = _svc(internalTrafficPolicy="Local")
    sl = _slice([("10.0.0.8", True, True, False, "n2")])
    rules = _rules([])
    rules.services[0].no_local_endpoints = True
    rules.services[0].policy_local = True
    assert [f.code for f in drift_findings(svc, [sl], rules, "n1")] == ["NoLocalEndpoints"]


def test_conntrack_flows_counted_per_backend() -> None:
    svc = _svc()
    sl = _slice([("10.0.0.8", True, True, False, "n1"), ("10.0.0.9", True, True, False, "n1")])
    view = proxy_view(svc, svc.ports[0], [sl], "n1")
    flows = [Flow("TCP", "10.1.0.1", 40000 + i, "10.96.0.20", 80, "10.0.0.8" if i % 3 else "10.0.0.9", 8080)
             for i in range(9)]
    flows.append(Flow("TCP", "10.1.0.1", 1, "10.96.0.99", 80, "10.0.0.8", 8080))  # another VIP
    pt = judge_port(svc, svc.ports[0], parse_target("prod/web"), _rules([("10.0.0.8", 8080), ("10.0.0.9", 8080)]),
                    view, "n1", flows=flows)
    assert {b.ip: b.observed for b in pt.backends} == {"10.0.0.8": 6, "10.0.0.9": 3}


def test_headless_and_selectorless_are_not_drift() -> None:
    svc = _svc(clusterIP="None", clusterIPs=["None"])
    assert drift_findings(svc, [], NodeRules("iptables", []), "n1") == []
    raw = copy.deepcopy(_svc().raw)
    raw["spec"].pop("selector")
    assert drift_findings(Service.from_dict(raw), [], NodeRules("iptables", []), "n1") == []

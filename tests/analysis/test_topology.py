"""Which endpoints a node uses: svcctl.analysis.topology against the behaviour of kube-proxy's
pkg/proxy/topology.go CategorizeEndpoints and endpointslicecache.go (v1.37), case by case.

Each case states a situation and the sets kube-proxy computes for it (the cases of
pkg/proxy/topology_test.go, restated), plus the slice-reading rules (first address, port by name and protocol,
duplicates preferring the non-terminating copy, family, label) and the per-node wording the trace prints.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcctl.analysis.topology import (
    PREFER_SAME_NODE,
    PREFER_SAME_ZONE,
    NodeEndpoint,
    PortPolicy,
    categorize,
    port_policy,
    select,
    slice_endpoints,
)
from svcctl.model import EndpointSlice, Service

CLUSTER = PortPolicy(False, False, False)
ETP_LOCAL = PortPolicy(True, True, False)
ITP_LOCAL_NP = PortPolicy(True, False, True)
ITP_LOCAL = PortPolicy(False, False, True)
BOTH_LOCAL = PortPolicy(True, True, True)
ETP_LOCAL_NOT_EXPOSED = PortPolicy(False, True, False)


def ep(addr: str, *, zones: tuple[str, ...] = (), nodes: tuple[str, ...] = (), ready: bool = True,
       serving: bool | None = None, terminating: bool = False, local: bool = False) -> NodeEndpoint:
    ip, port = addr.rsplit(":", 1)
    return NodeEndpoint(ip, int(port), None, "node-1" if local else "other", "", ready,
                        ready if serving is None else serving, terminating, frozenset(zones), frozenset(nodes),
                        local)


def addrs(eps: list[NodeEndpoint] | None) -> set[str] | None:
    return None if eps is None else {e.address for e in eps}


CASES: list[tuple[str, str, PortPolicy, list[NodeEndpoint], set[str] | None, set[str] | None, str]] = [
    ("every endpoint hinted, some for this zone", "zone-a", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a",)), ep("10.1.2.4:80", zones=("zone-b",)),
      ep("10.1.2.5:80", zones=("zone-c",)), ep("10.1.2.6:80", zones=("zone-a",))],
     {"10.1.2.3:80", "10.1.2.6:80"}, None, PREFER_SAME_ZONE),
    ("ETP Local: topology for the cluster set only", "zone-a", ETP_LOCAL,
     [ep("10.1.2.3:80", zones=("zone-a",), local=True), ep("10.1.2.4:80", zones=("zone-b",), local=True),
      ep("10.1.2.5:80", zones=("zone-c",)), ep("10.1.2.6:80", zones=("zone-a",))],
     {"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"}, PREFER_SAME_ZONE),
    ("ITP Local: topology ignored for the local set", "zone-a", ITP_LOCAL_NP,
     [ep("10.1.2.3:80", zones=("zone-a",), local=True), ep("10.1.2.4:80", zones=("zone-b",), local=True),
      ep("10.1.2.5:80", zones=("zone-c",)), ep("10.1.2.6:80", zones=("zone-a",))],
     {"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"}, PREFER_SAME_ZONE),
    ("node without a zone label", "", CLUSTER, [ep("10.1.2.3:80", zones=("zone-a",))],
     {"10.1.2.3:80"}, None, ""),
    ("node in a zone no endpoint is hinted for", "zone-b", CLUSTER, [ep("10.1.2.3:80", zones=("zone-a",))],
     {"10.1.2.3:80"}, None, ""),
    ("an unready endpoint in this zone is not used", "zone-a", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a",)), ep("10.1.2.4:80", zones=("zone-b",)),
      ep("10.1.2.5:80", zones=("zone-c",)), ep("10.1.2.6:80", zones=("zone-a",), ready=False)],
     {"10.1.2.3:80"}, None, PREFER_SAME_ZONE),
    ("only unready endpoints in this zone: no filtering", "zone-a", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a",), ready=False), ep("10.1.2.4:80", zones=("zone-b",)),
      ep("10.1.2.5:80", zones=("zone-c",)), ep("10.1.2.6:80", zones=("zone-a",), ready=False)],
     {"10.1.2.4:80", "10.1.2.5:80"}, None, ""),
    ("one ready endpoint without a hint turns topology off", "zone-a", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a",)), ep("10.1.2.4:80", zones=("zone-b",)), ep("10.1.2.5:80"),
      ep("10.1.2.6:80", zones=("zone-a",))],
     {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"}, None, ""),
    ("several zones per hint", "zone-c", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a", "zone-b", "zone-c")), ep("10.1.2.4:80", zones=("zone-b", "zone-c")),
      ep("10.1.2.5:80", zones=("zone-b", "zone-d")), ep("10.1.2.6:80", zones=("zone-c",))],
     {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"}, None, PREFER_SAME_ZONE),
    ("PreferSameNode", "zone-a", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a",), nodes=("node-1",)), ep("10.1.2.4:80", zones=("zone-b",), nodes=("node-2",)),
      ep("10.1.2.5:80", zones=("zone-c",), nodes=("node-3",)), ep("10.1.2.6:80", zones=("zone-a",), nodes=("node-4",))],
     {"10.1.2.3:80"}, None, PREFER_SAME_NODE),
    ("PreferSameNode ignored when one endpoint has no node hint", "zone-a", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a",), nodes=("node-1",)), ep("10.1.2.4:80", zones=("zone-b",), nodes=("node-2",)),
      ep("10.1.2.5:80", zones=("zone-c",)), ep("10.1.2.6:80", zones=("zone-a",), nodes=("node-4",))],
     {"10.1.2.3:80", "10.1.2.6:80"}, None, PREFER_SAME_ZONE),
    ("PreferSameNode with no endpoint for this node falls back to the zone", "zone-a", CLUSTER,
     [ep("10.1.2.3:80", zones=("zone-a",), nodes=("node-5",)), ep("10.1.2.4:80", zones=("zone-b",), nodes=("node-2",)),
      ep("10.1.2.5:80", zones=("zone-c",), nodes=("node-3",)), ep("10.1.2.6:80", zones=("zone-a",), nodes=("node-4",))],
     {"10.1.2.3:80", "10.1.2.6:80"}, None, PREFER_SAME_ZONE),
    ("ITP Local, every endpoint remote", "", ITP_LOCAL, [ep("10.0.0.0:80"), ep("10.0.0.1:80")], None, set(), ""),
    ("ITP Local, every endpoint local", "", ITP_LOCAL, [ep("10.0.0.0:80", local=True), ep("10.0.0.1:80", local=True)],
     None, {"10.0.0.0:80", "10.0.0.1:80"}, ""),
    ("Cluster policy, every endpoint terminating: fallback", "", CLUSTER,
     [ep("10.0.0.0:80", ready=False, serving=True, terminating=True, local=True),
      ep("10.0.0.1:80", ready=False, serving=True, terminating=True)],
     {"10.0.0.0:80", "10.0.0.1:80"}, None, ""),
    ("ITP and ETP Local, every endpoint remote and terminating", "", BOTH_LOCAL,
     [ep("10.0.0.0:80", ready=False, serving=True, terminating=True),
      ep("10.0.0.1:80", ready=False, serving=True, terminating=True)],
     {"10.0.0.0:80", "10.0.0.1:80"}, set(), ""),
    ("ETP Local with terminating endpoints: local falls back on its own", "", ETP_LOCAL,
     [ep("10.0.0.0:80"), ep("10.0.0.1:80", ready=False, serving=False, local=True),
      ep("10.0.0.2:80", ready=False, serving=True, terminating=True, local=True),
      ep("10.0.0.3:80", ready=False, serving=True, terminating=True)],
     {"10.0.0.0:80"}, {"10.0.0.2:80"}, ""),
    ("ETP Local ignored when the port is not externally accessible", "", ETP_LOCAL_NOT_EXPOSED,
     [ep("10.0.0.0:80"), ep("10.0.0.1:80", local=True)], {"10.0.0.0:80", "10.0.0.1:80"}, None, ""),
    ("ITP Local internal-only: no cluster set", "", ITP_LOCAL,
     [ep("10.0.0.0:80"), ep("10.0.0.1:80", local=True)], None, {"10.0.0.1:80"}, ""),
    ("one endpoint, not ready, not serving", "zone-a", CLUSTER,
     [ep("10.0.0.0:80", ready=False, serving=False)], set(), None, ""),
]


@pytest.mark.parametrize(("name", "zone", "policy", "eps", "cluster", "local", "mode"), CASES,
                         ids=[c[0] for c in CASES])
def test_categorize_like_kube_proxy(name: str, zone: str, policy: PortPolicy, eps: list[NodeEndpoint],
                                    cluster: set[str] | None, local: set[str] | None, mode: str) -> None:
    sel = categorize(eps, policy, "node-1", zone)
    assert addrs(sel.cluster) == cluster
    assert addrs(sel.local) == local
    assert sel.topology_mode == mode


def test_no_endpoints_at_all() -> None:
    sel = categorize([], ITP_LOCAL, "node-1", "")
    assert sel.cluster is None and sel.local is None and not sel.has_any_endpoints
    assert sel.verdict_for(external=False) == "reject"


def test_drop_versus_reject() -> None:
    """A Local policy with endpoints elsewhere drops (\"has no local endpoints\"); none anywhere rejects."""
    remote = categorize([ep("10.0.0.0:80")], BOTH_LOCAL, "node-1", "")
    assert remote.verdict_for(external=False) == "drop"
    assert remote.verdict_for(external=True) == "drop"
    assert remote.verdict_for(external=True, local_source=True) == "accept"  # a Pod here: the cluster set
    dead = categorize([ep("10.0.0.0:80", ready=False, serving=False)], BOTH_LOCAL, "node-1", "")
    assert dead.verdict_for(external=True) == "reject"


def test_topology_words() -> None:
    sel = categorize(CASES[0][3], CLUSTER, "worker-1", "zone-a")
    assert sel.describe() == "worker-1 uses 2 of 4 endpoint(s): hints for zone zone-a"
    off = categorize(CASES[7][3], CLUSTER, "worker-1", "zone-a")
    assert off.topology_mode == "" and "no zone hint" in off.topology_why and "10.1.2.5:80" in off.topology_why
    wrong = categorize(CASES[4][3], CLUSTER, "worker-1", "zone-b")
    assert "no ready endpoint is hinted for zone zone-b" in wrong.topology_why
    unlabelled = categorize(CASES[3][3], CLUSTER, "worker-1", "")
    assert "no topology.kubernetes.io/zone label" in unlabelled.topology_why


# ------------------------------------------------------------------ reading slices (endpointslicecache.go)


def _svc(**spec: Any) -> Service:
    base: dict[str, Any] = {"type": "ClusterIP", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
    base.update(spec)
    return Service.from_dict({"metadata": {"name": "web", "namespace": "prod"}, "spec": base})


def _slice(eps: list[dict[str, Any]], *, ports: list[dict[str, Any]] | None = None, family: str = "IPv4",
           svc: str = "web", name: str = "web-1") -> EndpointSlice:
    return EndpointSlice.from_dict({
        "metadata": {"name": name, "namespace": "prod", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": family, "endpoints": eps,
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]})


def test_slice_reading_rules() -> None:
    svc = _svc()
    slices = [
        _slice([{"addresses": ["10.0.0.1", "10.0.0.99"], "nodeName": "n1"},  # only the first address
                {"addresses": [], "nodeName": "n1"},  # skipped
                {"addresses": ["10.0.0.2"], "conditions": {"ready": False, "serving": True, "terminating": True}}]),
        # the same IP:port again, not terminating: it replaces the terminating copy
        _slice([{"addresses": ["10.0.0.2"], "conditions": {"ready": True}}], name="web-2"),
        # a port of another protocol, and another Service's slice, are not this port's
        _slice([{"addresses": ["10.0.0.3"]}], ports=[{"name": "http", "port": 8080, "protocol": "UDP"}], name="u"),
        _slice([{"addresses": ["10.0.0.4"]}], svc="other", name="o"),
        _slice([{"addresses": ["2001:db8::5"]}], family="IPv6", name="v6"),
    ]
    eps = slice_endpoints(svc, svc.ports[0], slices, "n1")
    assert [(e.address, e.ready, e.terminating, e.local) for e in eps] == [
        ("10.0.0.1:8080", True, False, True), ("10.0.0.2:8080", True, False, False)]
    v6 = slice_endpoints(svc, svc.ports[0], slices, "n1", family="IPv6")
    assert [e.address for e in v6] == ["[2001:db8::5]:8080"]


def test_terminating_copy_does_not_replace_a_live_one() -> None:
    svc = _svc()
    slices = [_slice([{"addresses": ["10.0.0.2"], "conditions": {"ready": True}}]),
              _slice([{"addresses": ["10.0.0.2"], "conditions": {"ready": False, "terminating": True}}], name="b")]
    (e,) = slice_endpoints(svc, svc.ports[0], slices, None)
    assert e.ready and not e.terminating


def test_hints_read_from_slices_and_used() -> None:
    svc = _svc(trafficDistribution="PreferSameZone")
    sl = _slice([{"addresses": [f"10.0.0.{i}"], "nodeName": f"n{i}", "zone": z,
                  "hints": {"forZones": [{"name": z}]}} for i, z in ((1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"))])
    sel = select(svc, svc.ports[0], [sl], "n3", "b")
    assert addrs(sel.cluster) == {"10.0.0.3:8080", "10.0.0.4:8080"}
    assert sel.describe() == "n3 uses 2 of 5 endpoint(s): hints for zone b"


def test_port_policy_from_the_service() -> None:
    np = _svc(type="NodePort", externalTrafficPolicy="Local",
              ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}])
    pol = port_policy(np, np.ports[0])
    assert pol.externally_accessible and pol.external_local and pol.uses_local and pol.uses_cluster
    # ETP Local on a plain ClusterIP Service (no externalIPs) is meaningless: ExternalPolicyLocal is false
    cip = _svc(externalTrafficPolicy="Local")
    assert not port_policy(cip, cip.ports[0]).external_local
    # an LB ingress with ipMode Proxy is not a VIP kube-proxy programs
    lb = Service.from_dict({"metadata": {"name": "web", "namespace": "prod"},
                            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20",
                                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
                            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "Proxy"}]}}})
    assert not port_policy(lb, lb.ports[0]).externally_accessible

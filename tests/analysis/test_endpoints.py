"""`svcctl endpoints --why-not` names exactly the right code for the right Pod, and nothing for healthy Pods.

Every scenario is a small cluster (tests/scenarios/builder.py) read two ways: as a snapshot file, and through
the test API server with the real `kubernetes` client; both must give the identical JSON report.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from scenarios.builder import (  # noqa: E402
    as_list,
    container,
    controller_slice,
    endpoint,
    endpoint_slice,
    event,
    node,
    pod,
    render_scenario,
    service,
    v1_endpoints,
)

from svcctl.analysis.endpoints import (  # noqa: E402
    CODES,
    EndpointsReport,
    Gathered,
    analyze,
    edit_distance,
    find_port,
    looks_like_typo,
)
from svcctl.model import EndpointSlice, Node, Pod, Service, ServicePort  # noqa: E402
from svcctl.ops.endpoints import analyze_service  # noqa: E402
from svcctl.sources.snapshot import SnapshotSource  # noqa: E402

JSON = dict[str, Any]
APP = {"app": "web"}


@dataclass
class Scenario:
    name: str
    objects: list[JSON]
    expect: set[tuple[str | None, str]]  # every (pod name or None, code) the report must hold, and no other
    exit: int = 1
    service: str = "web"
    namespace: str = "default"
    severities: dict[str, str] = field(default_factory=dict)  # code -> severity, where it matters
    check: Callable[[JSON], None] | None = None


def healthy(n: int = 2, **kw: Any) -> list[JSON]:
    return [pod(f"web-{i}", APP, ip=f"10.244.1.{10 + i}", **kw) for i in range(n)]


def cluster(svc: JSON, pods: list[JSON], *extra: JSON, slice_pods: list[JSON] | None = None,
            nodes: list[JSON] | None = None, **slice_kw: Any) -> list[JSON]:
    """Service + Pods + the slice a healthy controller writes + nodes + extras."""
    sl = controller_slice(svc, pods if slice_pods is None else slice_pods, **slice_kw)
    return [svc, *pods, sl, *(nodes if nodes is not None else [node()]), *extra]


SVC = service("web", APP)


def _crash() -> tuple[JSON, JSON]:
    return container(ports=[("http", 8080, "TCP")], ready=False,
                     state={"waiting": {"reason": "CrashLoopBackOff",
                                        "message": "back-off 5m0s restarting failed container=app"}}, restarts=7)


def _probe_pod(name: str, ip: str) -> tuple[JSON, JSON]:
    p = pod(name, APP, ip=ip, ready=False)
    return p, event(p, "Unhealthy", "Readiness probe failed: Get \"http://10.244.1.9:8080/healthz\": connection refused",
                    count=12)


def _unschedulable(name: str) -> JSON:
    return pod(name, APP, ip=None, node="", ready=False, phase="Pending", containers=[],
               conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 Insufficient cpu."}])


def _gate_pod(name: str, ip: str) -> JSON:
    return pod(name, APP, ip=ip, ready=False, gates=["target-health.elbv2.k8s.aws/web"],
               containers=[container(ports=[("http", 8080, "TCP")], ready=True)],
               conditions=[{"type": "PodScheduled", "status": "True"}, {"type": "ContainersReady", "status": "True"},
                           {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady",
                            "message": "corresponding condition of pod readiness gate \"target-health.elbv2.k8s.aws/web\" does not exist."}])


def _scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    add = out.append

    add(Scenario("healthy", cluster(SVC, healthy()), set(), exit=0))

    p_done = pod("web-old", APP, ip="10.244.1.20", ready=False, phase="Failed", reason="Evicted",
                 message="The node was low on resource: memory.")
    add(Scenario("pod-completed", cluster(SVC, [*healthy(), p_done]), {("web-old", "PodCompleted")}, exit=0,
                 severities={"PodCompleted": "warning"}))

    p_noip = pod("web-new", APP, ip=None, ready=False, phase="Pending",
                 containers=[container(ports=[("http", 8080, "TCP")], ready=False,
                                       state={"waiting": {"reason": "ContainerCreating"}})])
    add(Scenario("no-pod-ip", cluster(SVC, [*healthy(), p_noip]), {("web-new", "NoPodIP")}))

    p_lost = pod("web-lost", APP, ip="10.244.9.5", node="node-gone")
    add(Scenario("node-missing", cluster(SVC, [*healthy(), p_lost], slice_pods=healthy()),
                 {("web-lost", "NodeMissing")}))

    p_term = pod("web-term", APP, ip="10.244.1.30", ready=False, deleting=True)
    add(Scenario("terminating", cluster(SVC, [*healthy(), p_term]), {("web-term", "Terminating")}, exit=0,
                 severities={"Terminating": "warning"},
                 check=lambda d: _assert_ep(d, "default/web-term", ready=False, serving=False, terminating=True)))

    named = service("web", APP, ports=[("http", 80, "http", "TCP")])
    p_wrong = pod("web-x", APP, ip="10.244.1.40",
                  containers=[container(ports=[("web", 8080, "TCP")])])
    good = healthy()
    add(Scenario("port-not-found", [named, *good, p_wrong,
                                    endpoint_slice(named, [endpoint(p) for p in good], ports=[("http", 8080, "TCP")]),
                                    endpoint_slice(named, [endpoint(p_wrong)], name="web-zzzzz", ports=[]), node()],
                 {("web-x", "PortNotFound")},
                 check=lambda d: _assert_in(d, "PortNotFound", "'http'")))

    dns = service("dns", {"app": "dns"}, ports=[("dns", 53, "dns", "UDP")])
    p_tcp = pod("dns-0", {"app": "dns"}, ip="10.244.1.45", containers=[container(ports=[("dns", 53, "TCP")])])
    add(Scenario("port-protocol-mismatch", [dns, p_tcp, endpoint_slice(dns, [endpoint(p_tcp)], ports=[]), node()],
                 {("dns-0", "PortNotFound")}, service="dns",
                 check=lambda d: _assert_in(d, "PortNotFound", "protocol must be UDP")))

    v6 = service("web", APP, cluster_ip="fd00::50")
    add(Scenario("ip-family-mismatch", [v6, *healthy(), endpoint_slice(v6, [], family="IPv6"), node()],
                 {("web-0", "IPFamilyMismatch"), ("web-1", "IPFamilyMismatch"), (None, "NoReadyEndpoints")}))

    p_gate = _gate_pod("web-gate", "10.244.1.50")
    p_gate_f = _gate_pod("web-gate-f", "10.244.1.51")
    p_gate_f["status"]["conditions"].append({"type": "target-health.elbv2.k8s.aws/web", "status": "False",
                                             "reason": "Elb.RegistrationInProgress"})
    add(Scenario("readiness-gate", cluster(SVC, [*healthy(), p_gate, p_gate_f]),
                 {("web-gate", "ReadinessGatePending"), ("web-gate-f", "ReadinessGatePending")},
                 check=lambda d: (_assert_in(d, "ReadinessGatePending", "condition missing"),
                                  _assert_in(d, "ReadinessGatePending", "web=False (Elb.RegistrationInProgress)"))))

    sick = node("node-b", ip="172.18.0.4", ready="Unknown", reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.")
    p_sick = pod("web-b", APP, ip="10.244.2.5", node="node-b", ready=False,
                 containers=[container(ports=[("http", 8080, "TCP")], ready=True)],
                 conditions=[{"type": "Ready", "status": "False", "reason": "NodeNotReady"}])
    add(Scenario("node-not-ready", cluster(SVC, [*healthy(), p_sick], nodes=[node(), sick]),
                 {("web-b", "NodeNotReady")}, check=lambda d: _assert_in(d, "NodeNotReady", "Kubelet stopped posting")))

    add(Scenario("unschedulable", cluster(SVC, [*healthy(), _unschedulable("web-pending")]),
                 {("web-pending", "Unschedulable")}, check=lambda d: _assert_in(d, "Unschedulable", "Insufficient cpu")))

    p_crash = pod("web-crash", APP, ip="10.244.1.60", ready=False, containers=[_crash()])
    add(Scenario("crashloop", cluster(SVC, [*healthy(), p_crash]), {("web-crash", "ContainerNotRunning")},
                 check=lambda d: _assert_in(d, "ContainerNotRunning", "container app is not running: CrashLoopBackOff")))

    p_pull = pod("web-pull", APP, ip="10.244.1.61", ready=False,
                 containers=[container(ports=[("http", 8080, "TCP")], ready=False,
                                       state={"waiting": {"reason": "ImagePullBackOff",
                                                          "message": "Back-off pulling image"}})])
    add(Scenario("image-pull", cluster(SVC, [*healthy(), p_pull]), {("web-pull", "ContainerNotRunning")},
                 check=lambda d: _assert_in(d, "ContainerNotRunning", "ImagePullBackOff")))

    p_probe, ev = _probe_pod("web-probe", "10.244.1.9")
    add(Scenario("probe-failing", cluster(SVC, [*healthy(), p_probe], ev), {("web-probe", "ReadinessProbeFailing")},
                 check=lambda d: _assert_in(d, "ReadinessProbeFailing", "connection refused")))

    p_nr = pod("web-nr", APP, ip="10.244.1.70", ready=False)
    add(Scenario("not-ready", cluster(SVC, [*healthy(), p_nr]), {("web-nr", "NotReady")}))

    typo = [pod(f"hostnames-{i}", {"app": "hostname"}, ip=f"10.244.1.{80 + i}") for i in range(2)]
    other = pod("db-0", {"app": "db"}, ip="10.244.1.90")  # shares the key, not the value: not a near miss
    hsvc = service("hostnames", {"app": "hostnames"})
    add(Scenario("selector-typo", [hsvc, *typo, other, endpoint_slice(hsvc, []), node()],
                 {(None, "NoMatchingPods"), ("hostnames-0", "SelectorMismatch"), ("hostnames-1", "SelectorMismatch")},
                 service="hostnames", check=lambda d: _assert_in(d, "SelectorMismatch", "looks like a typo")))

    two = service("web", {"app": "web", "tier": "front"})
    p_half = pod("web-half", {"app": "web"}, ip="10.244.1.91")
    p_full = pod("web-full", {"app": "web", "tier": "front"}, ip="10.244.1.92")
    add(Scenario("selector-missing-key", [two, p_half, p_full, controller_slice(two, [p_full]), node()],
                 {("web-half", "SelectorMismatch")}, check=lambda d: _assert_in(d, "SelectorMismatch", "tier missing")))

    canary = service("web-canary", {"app": "web", "track": "canary"})
    stable = service("web", {"app": "web", "track": "stable"})
    p_stable = pod("web-s", {"app": "web", "track": "stable"}, ip="10.244.1.93")
    p_canary = pod("web-c", {"app": "web", "track": "canary"}, ip="10.244.1.94")
    add(Scenario("canary-is-not-a-near-miss",
                 [stable, canary, p_stable, p_canary, controller_slice(stable, [p_stable]), node()], set(), exit=0))

    v1 = service("web", {"app": "web", "version": "v1"})
    v2 = [pod(f"web-v2-{i}", {"app": "web", "version": "v2"}, ip=f"10.244.1.{160 + i}") for i in range(2)]
    add(Scenario("selector-left-behind", [v1, *v2, endpoint_slice(v1, []), node()],
                 {(None, "NoMatchingPods"), ("web-v2-0", "SelectorMismatch"), ("web-v2-1", "SelectorMismatch")},
                 severities={"SelectorMismatch": "error"},
                 check=lambda d: _assert_in(d, "SelectorMismatch", "version=v2 (Service wants version=v1)")))

    half_other = service("web-admin", {"app": "web"})
    p_half2 = pod("web-half", {"app": "web"}, ip="10.244.1.91")
    p_full2 = pod("web-full", {"app": "web", "tier": "front"}, ip="10.244.1.92")
    add(Scenario("near-miss-owned-by-other-service",
                 [two, half_other, p_half2, p_full2, controller_slice(two, [p_full2]), node()],
                 {("web-half", "SelectorMismatch")}, exit=0, severities={"SelectorMismatch": "info"},
                 check=lambda d: _assert_in(d, "SelectorMismatch", "selected by Service web-admin instead")))

    p_away = pod("web-0", APP, ns="staging", ip="10.244.1.95")
    add(Scenario("other-namespace", [SVC, p_away, endpoint_slice(SVC, []), node()],
                 {(None, "NoMatchingPods"), ("web-0", "OtherNamespace")},
                 check=lambda d: _assert_pod(d, "OtherNamespace", "staging/web-0")))

    p_twin = pod("web-9", APP, ns="staging", ip="10.244.1.96")
    add(Scenario("other-namespace-while-served", cluster(SVC, [*healthy(), p_twin], slice_pods=healthy()),
                 {("web-9", "OtherNamespace")}, exit=0, severities={"OtherNamespace": "info"}))

    ext = service("ext", None, ports=[("https", 443, 443, "TCP")])
    hand = endpoint_slice(ext, [{"addresses": ["192.0.2.10"], "conditions": {"ready": True}}], name="ext-1",
                          managed_by="staff", ports=[("https", 443, "TCP")])
    add(Scenario("no-selector-hand-made", [ext, hand, v1_endpoints(ext, ["192.0.2.10"])], {(None, "NoSelector")},
                 exit=0, service="ext", severities={"NoSelector": "info"},
                 check=lambda d: _assert_in(d, "NoSelector", "192.0.2.10")))
    # a real dump holds the `kubernetes` Service's slice and Endpoints: the input shows it has both kinds
    api = service("kubernetes", None, ports=[("https", 443, 6443, "TCP")], cluster_ip="10.96.0.1")
    api_eps = [{"addresses": ["192.0.2.1"], "conditions": {"ready": True}}]
    add(Scenario("no-selector-empty", [service("bare", None), api,
                                       endpoint_slice(api, api_eps, managed_by="endpointslicemirroring-controller.k8s.io"),
                                       v1_endpoints(api, ["192.0.2.1"])], {(None, "NoSelector")}, service="bare",
                 severities={"NoSelector": "error"}))

    add(Scenario("external-name", [service("extname", None, type_="ExternalName", external_name="db.example.com")],
                 {(None, "ExternalName")}, exit=0, service="extname"))

    proxied = service("web", APP, labels={"service.kubernetes.io/service-proxy-name": "cilium"})
    add(Scenario("proxy-ignored", cluster(proxied, healthy()), {(None, "ProxyIgnored")}, exit=0,
                 severities={"ProxyIgnored": "info"}))

    off = service("web", APP, ports=[("http", 80, 9090, "TCP")])
    add(Scenario("target-port-undeclared", cluster(off, healthy()), {(None, "TargetPortUndeclared")}, exit=0,
                 severities={"TargetPortUndeclared": "warning"}))

    trunc = v1_endpoints(SVC, ["10.244.1.10"], annotations={"endpoints.kubernetes.io/over-capacity": "truncated"})
    add(Scenario("endpoints-truncated", cluster(SVC, healthy(), trunc), {(None, "EndpointsTruncated")}, exit=0))

    hp = healthy(3)
    add(Scenario("missing-from-slices", cluster(SVC, hp, slice_pods=hp[:2]), {("web-2", "MissingFromSlices")}))

    ghost = pod("web-ghost", APP, ip="10.244.1.99")
    add(Scenario("stale-slice-endpoint", cluster(SVC, healthy(), slice_pods=[*healthy(), ghost]),
                 {("web-ghost", "StaleSliceEndpoint")}, exit=0, severities={"StaleSliceEndpoint": "warning"}))

    extra = endpoint_slice(SVC, [{"addresses": ["10.244.7.7"], "conditions": {"ready": True}}], name="web-manual",
                           managed_by="someone")
    add(Scenario("unmanaged-slice", cluster(SVC, healthy(), extra), {(None, "UnmanagedSlice")}, exit=0))

    hp2 = healthy()
    lag = endpoint_slice(SVC, [endpoint(hp2[0]), endpoint(hp2[1], ready=False, serving=False)])
    add(Scenario("slice-out-of-date", [SVC, *hp2, lag, node()], {("web-1", "SliceOutOfDate")},
                 severities={"SliceOutOfDate": "error"}))

    p_gone = pod("web-old", APP, ip="10.244.1.21", ready=False, phase="Failed", reason="Evicted")
    hp3 = healthy()
    add(Scenario("slice-lists-completed-pod",
                 [SVC, *hp3, p_gone, endpoint_slice(SVC, [*(endpoint(p) for p in hp3), endpoint(p_gone)]), node()],
                 {("web-old", "PodCompleted"), ("web-old", "SliceOutOfDate")}, exit=0,
                 severities={"SliceOutOfDate": "warning"}))

    moved = service("web", APP, ports=[("http", 80, 9090, "TCP")])
    hp4 = [pod(f"web-{i}", APP, ip=f"10.244.1.{10 + i}", containers=[container(ports=[("http", 9090, "TCP")])])
           for i in range(2)]
    add(Scenario("slice-ports-out-of-date",
                 [moved, *hp4, endpoint_slice(moved, [endpoint(p) for p in hp4], ports=[("http", 8080, "TCP")]),
                  node()],
                 {("web-0", "SliceOutOfDate"), ("web-1", "SliceOutOfDate")}, severities={"SliceOutOfDate": "error"},
                 check=lambda d: _assert_in(d, "SliceOutOfDate", "slice ports http=8080/TCP, expected http=9090/TCP")))

    # five Pods, five reasons, one Service
    p_probe5, ev5 = _probe_pod("web-e", "10.244.1.105")
    mixed = [*healthy(1), _unschedulable("web-a"),
             pod("web-b", APP, ip="10.244.1.102", ready=False, containers=[_crash()]),
             pod("web-c", APP, ip="10.244.1.103", ready=False, deleting=True),
             _gate_pod("web-d", "10.244.1.104"), p_probe5]
    add(Scenario("mixed", cluster(SVC, mixed, ev5),
                 {("web-a", "Unschedulable"), ("web-b", "ContainerNotRunning"), ("web-c", "Terminating"),
                  ("web-d", "ReadinessGatePending"), ("web-e", "ReadinessProbeFailing")}))

    pub = service("web", APP, pnra=True)
    p_unready = pod("web-u", APP, ip="10.244.1.110", ready=False)
    add(Scenario("publish-not-ready", cluster(pub, [*healthy(), p_unready]), set(), exit=0,
                 check=lambda d: _assert_ep(d, "default/web-u", ready=True, serving=False, terminating=False)))

    side = service("web", APP, ports=[("metrics", 9100, "metrics", "TCP")])
    p_side = pod("web-side", APP, ip="10.244.1.120",
                 containers=[container(ports=[("http", 8080, "TCP")])],
                 init=[container("exporter", ports=[("metrics", 9100, "TCP")], restart="Always", probe=False)])
    add(Scenario("sidecar-named-port", [side, p_side, endpoint_slice(side, [endpoint(p_side)],
                                                                     ports=[("metrics", 9100, "TCP")]), node()],
                 set(), exit=0))

    ds = service("web", APP, families=["IPv4", "IPv6"])
    p_ds = [pod(f"web-{i}", APP, ip=[f"10.244.1.{130 + i}", f"fd00:10:244::{130 + i:x}"]) for i in range(2)]
    p_v4 = pod("web-v4", APP, ip="10.244.1.140")  # single-stack Pod in a dual-stack Service: IPv4 slice only
    add(Scenario("dual-stack", [ds, *p_ds, p_v4, controller_slice(ds, [*p_ds, p_v4], name="web-v4s"),
                                controller_slice(ds, p_ds, name="web-v6s", family="IPv6"), node()], set(), exit=0,
                 check=lambda d: (_assert_counts(d, ready=3, notReady=0, expected=3),
                                  _assert_ep(d, "default/web-0", ready=True, addressType="IPv4"))))

    p_host = pod("web-host", APP, ip="172.18.0.3", host_network=True)
    add(Scenario("host-network", cluster(SVC, [p_host]), set(), exit=0,
                 check=lambda d: _assert_ep(d, "default/web-host", ready=True, ip="172.18.0.3")))

    p_sub = pod("web-0", APP, ip="10.244.1.150", hostname="web-0", subdomain="web")
    p_nosub = pod("web-1", APP, ip="10.244.1.151", hostname="web-1", subdomain="other")
    add(Scenario("hostname-and-zone", cluster(SVC, [p_sub, p_nosub]), set(), exit=0,
                 check=lambda d: _assert_expected(d, {"default/web-0": ("web-0", "zone-a"),
                                                      "default/web-1": (None, "zone-a")})))
    return out


SCENARIOS = _scenarios()


def _ep(d: JSON, pod_key: str) -> JSON:
    eps = [e for e in d["endpoints"] if e["pod"] == pod_key]
    assert eps, f"{pod_key} not among the endpoints: {[e['pod'] for e in d['endpoints']]}"
    return eps[0]


def _assert_ep(d: JSON, pod_key: str, **want: Any) -> None:
    e = _ep(d, pod_key)
    for k, v in want.items():
        assert e[k] == v, (k, e)


def _assert_expected(d: JSON, want: dict[str, tuple[str | None, str | None]]) -> None:
    got = {v["pod"]: (v["expected"]["hostname"], v["expected"]["zone"]) for v in d["pods"]}
    assert got == want


def _assert_counts(d: JSON, **want: int) -> None:
    assert d["counts"] == want, d["counts"]


def _assert_in(d: JSON, code: str, text: str) -> None:
    fs = [f for f in d["findings"] if f["code"] == code]
    assert fs and any(text in (f["message"] + " " + f["evidence"]) for f in fs), fs


def _assert_pod(d: JSON, code: str, pod_key: str) -> None:
    assert any(f["code"] == code and f["pod"] == pod_key for f in d["findings"]), d["findings"]


# ------------------------------------------------------------------------------------------------ running


SCENARIO_DIR = Path(__file__).parent.parent / "scenarios"


def scenario_text(sc: Scenario) -> str:
    expect = sorted(f"{code}" + (f" ({p})" if p else "") for p, code in sc.expect)
    return render_scenario(sc.name, f"{sc.namespace}/{sc.service}", expect, sc.objects)


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_file_is_current(sc: Scenario) -> None:
    """tests/scenarios/<name>.yaml is what the builder makes (regenerate: python tests/scenarios/builder.py)."""
    path = SCENARIO_DIR / f"{sc.name}.yaml"
    assert path.exists() and path.read_text() == scenario_text(sc), f"stale {path}: run tests/scenarios/builder.py"


def _write(tmp: Path, sc: Scenario) -> Path:
    path = SCENARIO_DIR / f"{sc.name}.yaml"
    if path.exists():
        return path
    path = tmp / f"{sc.name}.yaml"
    path.write_text(scenario_text(sc))
    return path


def _cli(run_cli: Callable[..., tuple[int, str, str]], sc: Scenario, where: list[str]) -> tuple[int, JSON]:
    code, out, err = run_cli(["endpoints", f"{sc.namespace}/{sc.service}", "--why-not", "-o", "json", *where])
    assert code in (0, 1), err
    return code, json.loads(out)


SOURCES = ["snapshot", "live"]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
@pytest.mark.parametrize("kind", SOURCES)
def test_scenario(sc: Scenario, kind: str, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]],
                  request: pytest.FixtureRequest) -> None:
    snap = _write(tmp_path, sc)
    code, doc = _cli(run_cli, sc, ["--snapshot", str(snap)])
    if kind == "live":
        srv = request.getfixturevalue("apiserver")(sc.objects)
        live_code, live_doc = _cli(run_cli, sc, ["--kubeconfig", str(srv.kubeconfig)])
        assert live_doc == doc
        assert live_code == code
        assert not srv.writes  # read-only
    got = {(f["pod"].split("/", 1)[1] if f["pod"] else None, f["code"]) for f in doc["findings"]}
    assert got == sc.expect, json.dumps(doc["findings"], indent=1)
    assert code == sc.exit
    for f in doc["findings"]:
        if f["code"] in sc.severities:
            assert f["severity"] == sc.severities[f["code"]], f
        assert f["message"] and f["where"] and f["evidence"] and f["hint"] and "\n" not in f["message"]
        assert f["code"] in CODES
    in_slices = {e["pod"] for e in doc["endpoints"]}
    for v in doc["pods"]:
        assert v["actual"]["inSlices"] is (v["pod"] in in_slices), v
    # every Pod with no finding is a ready endpoint in the slices
    flagged = {f["pod"] for f in doc["findings"]}
    for v in doc["pods"]:
        if v["pod"] not in flagged:
            assert v["state"] == "ready" or doc["service"]["publishNotReadyAddresses"], v
    if sc.check:
        sc.check(doc)


def test_demo_names_readiness_probe(run_cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = run_cli(["endpoints", "hostnames", "--why-not", "-o", "json", "--snapshot", "demo"])
    doc = json.loads(out)
    assert code == 1
    assert [(f["code"], f["pod"]) for f in doc["findings"]] == [
        ("ReadinessProbeFailing", "default/hostnames-632524106-tlaok")]
    f = doc["findings"][0]
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in f["message"]
    assert "x87" in f["evidence"] and f["severity"] == "error"
    assert doc["counts"] == {"ready": 2, "notReady": 1, "expected": 3}


def test_demo_live_identical(run_cli: Callable[..., tuple[int, str, str]], apiserver: Any) -> None:
    srv = apiserver("demo")
    a = run_cli(["endpoints", "hostnames", "--why-not", "-o", "json", "--snapshot", "demo"])
    b = run_cli(["endpoints", "hostnames", "--why-not", "-o", "json", "--kubeconfig", str(srv.kubeconfig)])
    assert a[0] == b[0] == 1 and json.loads(a[1]) == json.loads(b[1])


# ------------------------------------------------------------------------------------------------ request budget


class CountingSource(SnapshotSource):
    """A snapshot that records every read, to prove the cost does not grow with the namespace."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls: list[tuple[str, Any]] = []
        self.limits: list[int | None] = []

    def list_pods(self, namespace: str | None, label_selector: str | None = None,
                  limit: int | None = None) -> list[Pod]:
        self.calls.append(("list_pods", (namespace, label_selector)))
        self.limits.append(limit)
        return super().list_pods(namespace, label_selector, limit)


@pytest.mark.parametrize("n_other", [0, 200])
def test_pod_reads_constant_and_never_whole_namespace(tmp_path: Path, n_other: int) -> None:
    two = service("web", {"app": "web", "tier": "front"})
    objs = [two, *[pod(f"noise-{i}", {"app": f"x{i}"}, ip=f"10.244.3.{i % 250}") for i in range(n_other)],
            pod("web-half", {"app": "web"}, ip="10.244.1.91"), node()]
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(as_list(objs)))
    src = CountingSource(str(p))
    rep = analyze_service(src, "default", "web", why_not=True)
    assert {("web-half", "SelectorMismatch")} <= {(f.pod and f.pod.split("/")[1], f.code) for f in rep.findings}
    selectors = [sel for _, (ns, sel) in src.calls]
    assert len(src.calls) == 4  # by selector, one per selector key (2), other namespaces
    assert all(sel for sel in selectors), "never list a whole namespace"
    assert ("default", "app") in [c for _, c in src.calls] and ("default", "tier") in [c for _, c in src.calls]


def test_near_miss_search_is_bounded_when_every_pod_carries_the_key(tmp_path: Path) -> None:
    """A namespace where 600 other Pods carry `app`: the near-miss read is one bounded page, and says so."""
    from svcctl.analysis.endpoints import NEAR_MISS_CAP

    objs = [service("web", {"app": "web"}), pod("web-1", {"app": "web"}, ip="10.244.1.91"), node(),
            *[pod(f"other-{i}", {"app": f"other{i}"}, ip=f"10.244.{2 + i // 250}.{i % 250}") for i in range(600)]]
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(as_list(objs)))
    src = CountingSource(str(p))
    rep = analyze_service(src, "default", "web", why_not=True)
    near_reads = [lim for (_, (ns, sel)), lim in zip(src.calls, src.limits, strict=True) if sel == "app"]
    assert near_reads == [NEAR_MISS_CAP]
    assert any("first 500 Pods labelled 'app'" in n for n in rep.notes)
    assert rep.to_json()["notes"] == rep.notes


def test_live_request_count_does_not_grow_with_namespace(apiserver: Any,
                                                         run_cli: Callable[..., tuple[int, str, str]]) -> None:
    """Through the real client: the same requests for a namespace of 3 Pods and one of 403 unrelated Pods (Pods
    that carry none of the selector's keys are never transferred; Pods that carry one are, by the near-miss list)."""
    counts = []
    for n_noise in (0, 400):
        pods = [*healthy(), pod("web-nr", APP, ip="10.244.1.70", ready=False)]
        noise = [pod(f"noise-{i}", {"component": f"x{i}"}, ip=f"10.244.4.{i % 250}") for i in range(n_noise)]
        srv = apiserver([SVC, *pods, *noise, controller_slice(SVC, pods), node()])
        code, out, err = run_cli(["endpoints", "web", "--why-not", "-o", "json", "--kubeconfig", str(srv.kubeconfig)])
        assert code == 1, err
        listed = [r for r in srv.requests if r.resource == "pods" and r.name is None]
        assert all(r.query.get("labelSelector") for r in listed), "never list a whole namespace"
        counts.append((srv.request_count, sum(r.bytes for r in listed)))
    assert counts[0][0] == counts[1][0]
    print(f"requests per Service: {counts[0][0]}; Pod-list bytes with 0/400 unrelated Pods: "
          f"{counts[0][1]}/{counts[1][1]}")
    assert counts[1][1] < counts[0][1] * 1.5  # the unrelated Pods are never transferred


# ------------------------------------------------------------------------------------------------ RBAC


def test_skipped_reads_become_findings(tmp_path: Path) -> None:
    from svcctl.sources.base import Skipped

    objs = [SVC, *healthy(), controller_slice(SVC, healthy()), node()]
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(as_list(objs)))

    class NoNodes(SnapshotSource):
        def get_nodes(self, names: list[str]) -> dict[str, Any]:
            self.skipped.append(Skipped("nodes", 'nodes is forbidden: User "x" cannot get resource "nodes"'))
            return {}

    rep = analyze_service(NoNodes(str(p)), "default", "web", why_not=True)
    codes = [(f.code, f.severity) for f in rep.findings]
    assert codes == [("CheckSkipped", "warning")]
    assert "Nodes of the Pods" in rep.findings[0].message and "forbidden" in rep.findings[0].evidence
    assert rep.exit_status() == 0


RBAC_CASES = {
    # refused resource -> (findings as (code, severity), exit)
    "nodes": ([("CheckSkipped", "warning")], 0),
    "endpointslices": ([("CheckSkipped", "warning")], 0),
    "events": ([("CheckSkipped", "info"), ("NotReady", "error")], 1),
}


@pytest.mark.parametrize("refused", sorted(RBAC_CASES))
def test_rbac_refusal_is_a_skipped_check(refused: str, apiserver: Any,
                                         run_cli: Callable[..., tuple[int, str, str]]) -> None:
    from apiserver import Grant

    p_probe, ev = _probe_pod("web-probe", "10.244.1.9")
    pods = [*healthy(), p_probe] if refused == "events" else healthy()
    srv = apiserver([SVC, *pods, controller_slice(SVC, pods), node(), ev])
    allowed = {"services", "pods", "endpoints", "endpointslices", "events", "nodes"} - {refused}
    srv.set_rbac([Grant(frozenset({"", "discovery.k8s.io"}), frozenset(allowed), frozenset({"get", "list", "watch"}),
                        frozenset(), None)])
    code, out, err = run_cli(["endpoints", "web", "--why-not", "-o", "json", "--kubeconfig", str(srv.kubeconfig)])
    doc = json.loads(out)
    want, want_code = RBAC_CASES[refused]
    assert sorted((f["code"], f["severity"]) for f in doc["findings"]) == sorted(want), doc["findings"]
    assert code == want_code, err
    skipped = next(f for f in doc["findings"] if f["code"] == "CheckSkipped")
    assert refused in skipped["message"] and "forbidden" in skipped["evidence"].lower()


# ------------------------------------------------------------------------------------------------ pure helpers


def test_find_port_rules() -> None:
    p = Pod.from_dict(pod("p", APP, containers=[container(ports=[("http", 8080, "TCP"), ("dns", 53, "UDP")])],
                          init=[container("side", ports=[("metrics", 9100, "TCP")], restart="Always"),
                                container("plain-init", ports=[("admin", 9200, "TCP")])]))
    assert find_port(p, ServicePort(80, "TCP", "a", "http")) == 8080
    assert find_port(p, ServicePort(53, "TCP", "a", "dns")) is None  # protocol must match too
    assert find_port(p, ServicePort(53, "UDP", "a", "dns")) == 53
    assert find_port(p, ServicePort(91, "TCP", "a", "metrics")) == 9100  # restartable init container
    assert find_port(p, ServicePort(92, "TCP", "a", "admin")) is None  # ordinary init container: not searched
    assert find_port(p, ServicePort(80, "TCP", "a", 1234)) == 1234  # numbers are never checked


def test_typo_detection() -> None:
    assert edit_distance("hostnames", "hostname") == 1 and edit_distance("nginx", "ngnix") == 1
    assert edit_distance("", "abc") == 3 and edit_distance("kitten", "sitting") == 3
    assert looks_like_typo("hostnames", "hostname") and looks_like_typo("Web", "web")
    assert not looks_like_typo("web", "db") and not looks_like_typo("frontend", "backend")
    assert looks_like_typo("frontend", "fronted") and looks_like_typo("nginx", "ngnix")
    assert not looks_like_typo("v1", "v2") and not looks_like_typo("web-1", "web-2")
    assert not looks_like_typo("stable", "canary") and not looks_like_typo("api", "app")


def test_report_api_shape() -> None:
    rep: EndpointsReport = analyze_service(SnapshotSource("demo"), "default", "hostnames", why_not=False)
    d = rep.to_json()
    assert d["apiVersion"] == "svcctl/v1" and d["kind"] == "EndpointsReport"
    assert set(d["service"]) >= {"namespace", "name", "type", "clusterIPs", "selector", "ports"}
    assert set(d["endpoints"][0]) >= {"pod", "ip", "ports", "node", "ready", "serving", "terminating"}
    assert set(d["findings"][0]) >= {"code", "severity", "pod", "message", "evidence", "hint"}
    row = rep.endpoints[0]
    assert row.ports == [("default", 9376, "TCP")] and row.slice == "hostnames-x7k2p"
    assert [v.state for v in rep.pods] == ["ready", "ready", "not-ready"]
    assert (rep.ready, rep.not_ready, rep.expected) == (2, 1, 3)


# ------------------------------------------------------------------------------------------------ properties

POD_STATE = st.fixed_dictionaries({
    "phase": st.sampled_from(["Running", "Running", "Pending", "Succeeded", "Failed"]),
    "has_ip": st.booleans(),
    "ready": st.booleans(),
    "deleting": st.booleans(),
    "node": st.sampled_from(["node-a", "node-gone"]),
    "port_named_right": st.booleans(),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states=st.lists(POD_STATE, min_size=1, max_size=6), pnra=st.booleans(), in_slice=st.booleans())
def test_every_pod_is_ready_or_explained(states: list[dict[str, Any]], pnra: bool, in_slice: bool) -> None:
    """podToEndpoint's formula holds for every Pod, every Pod that is not a ready endpoint is named by an error or
    warning, and a Pod that is a ready endpoint and in its slice is named by nothing."""
    svc_d = service("web", APP, ports=[("http", 80, "http", "TCP")], pnra=pnra)
    pods_d = []
    for i, s in enumerate(states):
        port = "http" if s["port_named_right"] else "web"
        pods_d.append(pod(f"web-{i}", APP, ip=f"10.244.1.{i + 1}" if s["has_ip"] else None, node=s["node"],
                          ready=s["ready"], phase=s["phase"], deleting=s["deleting"],
                          containers=[container(ports=[(port, 8080, "TCP")], ready=s["ready"])]))
    sl = controller_slice(svc_d, pods_d if in_slice else [], ports=[("http", 8080, "TCP")])
    g = Gathered(Service.from_dict(svc_d), slices=[EndpointSlice.from_dict(sl)], pods=[Pod.from_dict(p) for p in pods_d],
                 nodes={"node-a": Node.from_dict(node()), "node-gone": None})
    rep = analyze(g)
    named = {f.pod for f in rep.findings if f.severity in ("error", "warning")}
    for s, v in zip(states, rep.pods, strict=True):
        terminal = s["phase"] in ("Succeeded", "Failed")
        included = not terminal and s["has_ip"] and (s["node"] == "node-a" or pnra)
        assert v.expected_in_slices == included, (s, v)
        if included:
            assert v.expected_ready == (pnra or (s["ready"] and not s["deleting"])), (s, v)
            assert v.expected_terminating == s["deleting"]
        ok = included and v.expected_ready and s["port_named_right"]
        if not ok:
            assert v.pod in named, (s, rep.findings)
        elif in_slice:
            assert not [f for f in rep.findings if f.pod == v.pod], (s, rep.findings)
    assert {f.code for f in rep.findings} <= set(CODES)

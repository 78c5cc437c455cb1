"""`check -A`'s fast path (lists read once, the near-miss search from an index, policy reach once per backend
class) gives the report of the per-Service path, on a generated cluster with near misses of every kind
(typos, case, a second key missing or different, finished Pods, stale slice endpoints), Pods elsewhere, and
NetworkPolicies and an AdminNetworkPolicy that isolate, admit some namespaces, or only an ipBlock."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from gen_cluster import _pod, gen_cluster
from scenarios.builder import namespace, network_policy
from test_prefetch import report  # check -A's JSON without its timings

import svcctl.sources.prefetch as prefetch

RunCli = Callable[..., tuple[int, str, str]]
JSON = dict[str, Any]


def _find(objs: list[JSON], kind: str, ns: str, name: str) -> JSON:
    return next(o for o in objs if o["kind"] == kind and o["metadata"].get("namespace") == ns
                and o["metadata"]["name"] == name)


def _pods_of(objs: list[JSON], ns: str, app: str) -> list[JSON]:
    return [o for o in objs if o["kind"] == "Pod" and o["metadata"]["namespace"] == ns
            and o["metadata"]["labels"].get("app") == app]


def tricky_cluster(admin: bool = True) -> list[JSON]:
    objs = gen_cluster(40, pods_per_service=3, nodes=5, namespaces=3)  # svc-N lives in team-(N % 3)
    add = objs.append
    # near misses: an edit-distance typo, a case typo, a finished Pod with a typo (skipped)
    add(_pod("default", "hostname", "hostname-typo", "10.200.0.1", "node-0001", True))
    add(_pod("team-001", "SVC-00001", "case-typo", "10.200.0.2", "node-0002", True))
    done = _pod("team-001", "svc-0004", "svc-00004-done", "10.200.0.3", "node-0003", False)
    done["status"]["phase"] = "Succeeded"
    add(done)
    # two keys: svc-00002 selects tier=frontend too; one Pod misses tier, one has a typo of it, one another tier
    _find(objs, "Service", "team-002", "svc-00002")["spec"]["selector"]["tier"] = "frontend"
    for p in _pods_of(objs, "team-002", "svc-00002"):
        p["metadata"]["labels"]["tier"] = "frontend"
    for name, tier in (("no-tier", None), ("tier-typo", "fronted"), ("tier-db", "db")):
        p = _pod("team-002", "svc-00002", f"svc-00002-{name}", f"10.200.1.{len(name)}", "node-0004", True)
        if tier:
            p["metadata"]["labels"]["tier"] = tier
        add(p)
    # svc-00006 selects version=v2 of Pods that are v1: nothing selected, its v1 Pods are the likely intended
    _find(objs, "Service", "team-000", "svc-00006")["spec"]["selector"]["version"] = "v2"
    for p in _pods_of(objs, "team-000", "svc-00006"):
        p["metadata"]["labels"]["version"] = "v1"
    # svc-00003's slice still lists a Pod whose labels changed
    old = _pod("team-000", "svc-00003-old", "svc-00003-gone", "10.200.2.1", "node-0001", True)
    add(old)
    sl = _find(objs, "EndpointSlice", "team-000", "svc-00003-abcde")
    sl["endpoints"].append({"addresses": ["10.200.2.1"], "conditions": {"ready": True, "serving": True,
                                                                         "terminating": False},
                            "nodeName": "node-0001", "targetRef": {"kind": "Pod", "name": "svc-00003-gone",
                                                                   "namespace": "team-000"}})
    # svc-00004's labels in another namespace
    add(_pod("team-000", "svc-00004", "svc-00004-elsewhere", "10.200.3.1", "node-0002", True))
    # policies: team-001 isolated; in team-002 one Service admits a labelled namespace, one only an ipBlock, one
    # an AND peer (namespace and Pod labels: cannot tell for "some Pod"); an ANP denies team-000 into team-002
    add(namespace("team-000", {"team": "frontend"}))
    add(network_policy("team-001", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    add(network_policy("team-002", "from-frontend", {
        "podSelector": {"matchLabels": {"app": "svc-00002"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "frontend"}}}]}]}))
    add(network_policy("team-002", "ipblock-only", {
        "podSelector": {"matchLabels": {"app": "svc-00005"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}]}))
    add(network_policy("team-002", "and-peer", {
        "podSelector": {"matchLabels": {"app": "svc-00008"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "frontend"}},
                               "podSelector": {"matchLabels": {"role": "client"}}}],
                     "ports": [{"port": 9376, "protocol": "TCP"}]}]}))
    # without an admin tier, the policy reach of backends selected by the same policies is judged once for all of
    # them (analysis.policy._reach_classes): team-001's Services under deny-all, team-002's under none
    if admin:
        add({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
             "metadata": {"name": "no-frontend-to-svc-00011"},
             "spec": {"priority": 10, "subject": {"pods": {
                 "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-002"}},
                 "podSelector": {"matchLabels": {"app": "svc-00011"}}}},
                 "ingress": [{"name": "deny-frontend", "action": "Deny",
                              "from": [{"namespaces": {"matchLabels": {"team": "frontend"}}}]}]}})
    # kube-dns behind a named targetPort, and an Egress policy of the --from-pod client's namespace: the DNS gate
    # reads the DNS Pods' container ports (pod_json: rebuilt from the model for Pods listed once)
    dns = _find(objs, "Service", "default", "hostnames")
    dns = copy.deepcopy(dns)
    dns["metadata"].update(name="kube-dns", namespace="kube-system", uid="svc-kube-dns", labels={"k8s-app": "kube-dns"})
    dns["spec"].update(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"], selector={"k8s-app": "kube-dns"},
                       ports=[{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                              {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": "dns-tcp"}])
    add(dns)
    for i in range(2):
        p = _pod("kube-system", "coredns", f"coredns-{i}", f"10.200.4.{i + 1}", "node-0000", True)
        p["metadata"]["labels"] = {"k8s-app": "kube-dns"}
        p["spec"]["containers"][0]["ports"] = [{"name": "dns", "containerPort": 5353, "protocol": "UDP"},
                                               {"name": "dns-tcp", "containerPort": 5353, "protocol": "TCP"}]
        add(p)
    add(network_policy("team-000", "egress-dns-only", {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}]}]}))
    return objs


def output(run_cli: RunCli, kubeconfig: str, fmt: str, *args: str) -> tuple[int, str]:
    code, out, err = run_cli(["check", "-A", "--no-dns", "-o", fmt, "--kubeconfig", kubeconfig, *args])
    assert out, err
    if fmt == "junit":  # each Service's time is its own
        import re

        out = re.sub(r' time="[0-9.]+"', "", out)
    return code, out


@pytest.mark.parametrize("args,admin", [((), True), ((), False),
                                        (("--from-pod", "team-000/svc-00003-632524106-00000"), True)])
def test_fast_check_all_is_the_per_service_check(args: tuple[str, ...], admin: bool, apiserver: Any, run_cli: RunCli,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    srv = apiserver(copy.deepcopy(tricky_cluster(admin)))
    kc = str(srv.kubeconfig)
    fast = report(run_cli, kc, *args)
    formats = ("json", "table", "wide", "junit", "github", "markdown")
    fast_text = {fmt: output(run_cli, kc, fmt, *args) for fmt in formats}
    monkeypatch.setattr(prefetch, "PREFETCH_MIN", 10**9)  # every Service through its own reads, as for one
    each = report(run_cli, kc, *args)
    for fmt in formats:  # the outputs printed from the cut-down reports (render/check_stream.py)
        assert fast_text[fmt] == output(run_cli, kc, fmt, *args), fmt
    if fast != each:
        import difflib

        a = json.dumps(each, indent=1, sort_keys=True).splitlines()
        b = json.dumps(fast, indent=1, sort_keys=True).splitlines()
        pytest.fail("\n".join(list(difflib.unified_diff(a, b, "per-Service", "fast", lineterm="", n=4))[:120]))
    services = {f'{s["namespace"]}/{s["name"]}': s for s in fast[1]["services"]}
    assert len(services) == 41

    def codes(key: str) -> set[str]:
        s = services[key]
        return {f["code"] for f in s["endpoints"]["findings"]} | {f["code"] for f in s["policy"]["findings"]}

    # the comparison is not of empty reports: every kind of finding above is in them
    assert "SelectorMismatch" in codes("default/hostnames")
    assert "SelectorMismatch" in codes("team-001/svc-00001")  # SVC-00001: a case typo
    assert "SelectorMismatch" in codes("team-002/svc-00002")  # no tier / a typo of it
    assert {"NoMatchingPods", "SelectorMismatch"} <= codes("team-000/svc-00006")
    assert "StaleSliceEndpoint" in codes("team-000/svc-00003")
    assert "OtherNamespace" in codes("team-001/svc-00004")
    near = [f["pod"] for f in services["team-002/svc-00002"]["endpoints"]["findings"]
            if f["code"] == "SelectorMismatch"]
    assert sorted(near) == ["team-002/svc-00002-no-tier", "team-002/svc-00002-tier-typo"]
    if args:  # the client may only send to port 53, and the DNS Pods listen on 5353 (their named port)
        assert "PolicyDeniesDNS" in codes("team-001/svc-00001"), codes("team-001/svc-00001")
    else:
        reach = {k: s["policy"]["reach"] for k, s in services.items()}
        assert "PolicyIsolatesService" in codes("team-001/svc-00007")
        assert reach["team-002/svc-00002"] == {"default": "none", "kube-system": "none", "team-000": "all",
                                               "team-001": "none", "team-002": "none"}
        assert set(reach["team-002/svc-00008"].values()) == {"some", "none"}
        assert set(reach["team-002/svc-00005"].values()) == {"some"}  # an ipBlock: some Pod's IP may be in it
        assert reach["team-002/svc-00011"]["team-000"] == ("none" if admin else "all")
        assert reach["team-002/svc-00011"]["team-001"] == "all"
        assert set(reach["team-001/svc-00001"].values()) == {"none"}  # deny-all: a class shared with svc-00007


def test_pre_encoded_pages_are_the_same_bytes(apiserver: Any) -> None:
    """The benchmarks' test API server joins list pages from objects encoded once (apiserver.pre_encode)."""
    from apiserver import Encoded

    srv = apiserver(copy.deepcopy(tricky_cluster()))
    queries = [("pods", None, {"limit": "7"}), ("pods", "team-001", {"limit": "5"}), ("services", None, {}),
               ("endpointslices", "team-002", {"limit": "3"})]
    first = srv.list_objects("pods", None, {"limit": "7"})[1]
    queries.append(("pods", None, {"limit": "7", "continue": first["metadata"]["continue"]}))
    plain = [json.dumps(srv.list_objects(*q)[1], separators=(",", ":")).encode() for q in queries]
    srv.pre_encode()
    encoded = [srv.list_objects(*q)[1] for q in queries]
    assert all(isinstance(e, Encoded) for e in encoded)
    assert [bytes(e) for e in encoded] == plain


def test_the_spool_shares_equal_values_only() -> None:
    """The kept checks' repeated values (reach, counts, skipped checks) held once: equal by type as well, since
    1, 1.0 and True are equal keys that print differently."""
    from svcctl.render.check_stream import ReportSpool

    spool = ReportSpool("table")
    a, b = {"ready": 1, "expected": 2}, {"ready": 1, "expected": 2}
    assert spool._same(a) is a and spool._same(b) is a
    assert spool._same({"ready": True, "expected": 2}) == {"ready": True, "expected": 2}
    assert spool._same({"ready": True, "expected": 2})["ready"] is True
    assert spool._same(["dns: off"]) is spool._same(["dns: off"])
    assert spool._same([1]) is not spool._same([1.0])
    odd = {"x": [1]}  # unhashable inside: kept as it is
    assert spool._same(odd) is odd


def test_the_kept_check_lists_its_findings_once() -> None:
    """A spooled check's findings are sorted once (render/check_stream._Kept): the same findings in the same order
    and the same verdict as the check it stands for, and a list handed out is the caller's own."""
    from svcctl.analysis.check import DriftResult, ServiceCheck
    from svcctl.analysis.endpoints import EndpointsReport
    from svcctl.findings import Severity
    from svcctl.model import Finding, Service
    from svcctl.render.check_stream import ReportSpool

    svc = Service.from_dict({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"selector": {"app": "web"}}})
    rep = EndpointsReport(svc, findings=[Finding("NotReady", Severity.ERROR, "Pod is not Ready", "shop/web-1"),
                                         Finding("OtherNamespace", Severity.INFO, "elsewhere", "x/web-2")])
    drift = [DriftResult("node-1", "iptables", [Finding("StaleBackend", Severity.WARNING, "a stale backend")])]
    sc = ServiceCheck("shop", "web", rep, drift=drift, counts={"ready": 0, "expected": 1})
    want = [(c.check, c.finding.code, c.node) for c in sc.findings]
    kept = ReportSpool("table").add(sc)
    assert kept is not sc
    assert [(c.check, c.finding.code, c.node) for c in kept.findings] == want
    assert want[0][1] == "NotReady" and want[1] == ("drift", "StaleBackend", "node-1")
    assert kept.verdict == sc.verdict and kept.status == "broken"
    assert kept.severity_counts() == {"error": 1, "warning": 1, "info": 1}
    kept.findings.clear()
    assert len(kept.findings) == 3

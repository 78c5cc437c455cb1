"""Partial input never yields a finding that rests on what it lacks.

A corpus of partial snapshots, made from complete ones (every endpoints scenario and the demo) by leaving out
each kind in turn, plus `kubectl cluster-info dump` trees (no EndpointSlices, no Endpoints), nat-only and
one-family iptables dumps, and IPVS dumps without their glue. Each is judged against the answer for the complete
input: an error on partial input must be an error on the complete input too (same Service, same Pod), with the
same code or a less specific one (NotReady for ReadinessProbeFailing when the Events are gone), and the check
that could not be made says "skipped: …".
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from gen_dumps import GenCluster, GenPort, GenService, demo_cluster, iptables_save  # noqa: E402

from svcctl.analysis.endpoints import analyze  # noqa: E402
from svcctl.ops.endpoints import gather  # noqa: E402
from svcctl.sources.snapshot import SnapshotSource, demo_path  # noqa: E402

SCENARIOS = sorted((HERE / "scenarios").glob("*.yaml"))
DROPPABLE = ("EndpointSlice", "Endpoints", "Pod", "Node", "Event")
LESS_SPECIFIC = {"NotReady", "NoReadyEndpoints", "CheckSkipped"}
Run = Callable[..., tuple[int, str, str]]


def _items(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    out: list[dict[str, Any]] = []
    for d in docs:
        out += d.get("items", [d]) if d.get("kind") == "List" else [d]
    return out


def _write(tmp: Path, name: str, items: list[dict[str, Any]]) -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=False))
    return p


def _errors(path: Path, severities: tuple[str, ...] = ("error",)) -> dict[tuple[str, str | None], set[str]]:
    """(Service, Pod) -> codes of the findings of these severities, for every Service of the snapshot."""
    src = SnapshotSource(str(path))
    out: dict[tuple[str, str | None], set[str]] = {}
    for svc in src.services:
        rep = analyze(gather(src, svc.meta.namespace, svc.meta.name))
        for f in rep.findings:
            if f.severity in severities:
                out.setdefault((svc.meta.key, f.pod), set()).add(f.code)
    return out


def _skips(path: Path) -> list[str]:
    src = SnapshotSource(str(path))
    msgs: list[str] = []
    for svc in src.services:
        rep = analyze(gather(src, svc.meta.namespace, svc.meta.name))
        msgs += [f.message for f in rep.findings if f.code == "CheckSkipped"]
    return msgs


def _assert_nothing_rests_on_absence(full: dict[tuple[str, str | None], set[str]],
                                     partial: dict[tuple[str, str | None], set[str]], what: str) -> None:
    for key, codes in partial.items():
        assert key in full, f"{what}: error on {key} ({codes}) that the complete input does not have"
        extra = codes - full[key] - LESS_SPECIFIC
        assert not extra, f"{what}: {key} gets {extra}, complete input: {full[key]}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_each_kind_left_out_in_turn(scenario: Path, tmp_path: Path) -> None:
    items = _items(scenario)
    # the complete input's findings of any severity: a not-ready endpoint the slices show stays a problem
    # without its Pod (error), even where the Pod would have explained it as a warning (PodCompleted)
    full = _errors(scenario, ("error", "warning", "info"))
    kinds = {o["kind"] for o in items}
    for kind in DROPPABLE:
        if kind not in kinds:
            continue
        partial_path = _write(tmp_path, f"no-{kind}", [o for o in items if o["kind"] != kind])
        _assert_nothing_rests_on_absence(full, _errors(partial_path), f"{scenario.stem} without {kind}")


def test_services_and_slices_only_give_no_pod_findings(tmp_path: Path) -> None:
    """The issue's example: a List of Services and EndpointSlices only."""
    for scenario in SCENARIOS:
        items = [o for o in _items(scenario) if o["kind"] in ("Service", "EndpointSlice")]
        errs = _errors(_write(tmp_path, scenario.stem, items))
        codes = {c for cs in errs.values() for c in cs}
        assert not codes & {"NoMatchingPods", "StaleSliceEndpoint", "MissingFromSlices"}, (scenario.stem, errs)


def test_a_skipped_check_says_why(tmp_path: Path) -> None:
    items = _items(demo_path() / "cluster.yaml")
    no_slices = _write(tmp_path, "no-slices", [o for o in items if o["kind"] != "EndpointSlice"])
    assert any("the snapshot has no EndpointSlices; the v1 Endpoints were compared instead" in m
               for m in _skips(no_slices))
    neither = _write(tmp_path, "neither", [o for o in items if o["kind"] not in ("EndpointSlice", "Endpoints")])
    assert any("no EndpointSlices and no v1 Endpoints" in m for m in _skips(neither))
    no_pods = _write(tmp_path, "no-pods", [o for o in items if o["kind"] != "Pod"])
    assert any("the snapshot has no Pods" in m for m in _skips(no_pods))
    assert _skips(demo_path() / "cluster.yaml") == []  # the complete input skips nothing


def _cluster_info_dump(root: Path, items: list[dict[str, Any]]) -> Path:
    """The tree `kubectl cluster-info dump --output-directory` writes (clusterinfo_dump.go): nodes.json, then per
    namespace events, replication-controllers, services, daemonsets, deployments, replicasets and pods, each a
    typed list. No EndpointSlices, no Endpoints."""
    def typed(kind: str, objs: list[dict[str, Any]]) -> str:
        return json.dumps({"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                           "items": objs}, indent=4)

    root.mkdir()
    (root / "nodes.json").write_text(typed("Node", [o for o in items if o["kind"] == "Node"]))
    for ns in sorted({o["metadata"].get("namespace") for o in items if o["metadata"].get("namespace")}):
        d = root / ns
        d.mkdir()
        for kind, name in (("Event", "events"), ("ReplicationController", "replication-controllers"),
                           ("Service", "services"), ("DaemonSet", "daemonsets"), ("Deployment", "deployments"),
                           ("ReplicaSet", "replicasets"), ("Pod", "pods")):
            objs = [o for o in items if o["kind"] == kind and o["metadata"].get("namespace") == ns]
            (d / f"{name}.json").write_text(typed(kind, objs))
    return root


def test_cluster_info_dump_does_not_call_healthy_services_broken(tmp_path: Path, run_cli: Run) -> None:
    items = _items(demo_path() / "cluster.yaml")
    tree = _cluster_info_dump(tmp_path / "dump", items)
    code, out, err = run_cli(["check", "-A", "--snapshot", str(tree), "-o", "json"])
    doc = json.loads(out)
    status = {f"{s['namespace']}/{s['name']}": s["status"] for s in doc["services"]}
    # hostnames has a Pod failing its readiness probe (in the Pods and Events, which the dump holds)
    assert status == {"default/hostnames": "broken", "default/kubernetes": "warning",
                      "kube-system/kube-dns": "warning"}, status
    codes = {f["code"] for s in doc["services"] for f in s["findings"] if f["severity"] == "error"}
    assert codes == {"ReadinessProbeFailing"}
    skips = [f["message"] for s in doc["services"] for f in s["findings"] if f["code"] == "CheckSkipped"]
    assert any("a `kubectl cluster-info dump` never has them" in m for m in skips)
    assert code == 1

    code, out, err = run_cli(["endpoints", "-A", "--snapshot", str(tree)])
    assert code == 0, (out, err)  # nothing is known to be down: READY is unknown, not 0
    assert "?" in out and "cluster-info dump" in err and "lacks EndpointSlices, v1 Endpoints" in err


def test_rbac_refusal_skips_every_service_not_only_the_first(apiserver: Any, run_cli: Run) -> None:
    """A 403 on endpointslices is recorded once by the live source; each Service must still say it was skipped
    (the second one used to read an empty list as "no endpoints" and call its Pods MissingFromSlices)."""
    from apiserver import grants_from_role

    srv = apiserver()
    roles = [d for d in yaml.safe_load_all((HERE.parent / "deploy" / "rbac.yaml").read_text()) if d]
    role = next(r for r in roles if r["kind"] == "ClusterRole" and r["metadata"]["name"] == "svcctl-reader")
    for rule in role["rules"]:
        rule["resources"] = [r for r in rule["resources"] if r != "endpointslices"]
    srv.set_rbac(grants_from_role(role))
    code, out, err = run_cli(["check", "-A", "--kubeconfig", str(srv.kubeconfig), "-o", "json"])
    doc = json.loads(out)
    codes = {f["code"] for s in doc["services"] for f in s["findings"]}
    assert "MissingFromSlices" not in codes and "NoReadyEndpoints" not in codes, codes
    for s in doc["services"]:
        if s["name"] != "kubernetes":
            assert any(f["code"] == "CheckSkipped" for f in s["findings"]), s["name"]


# ------------------------------------------------------------------ node dumps


EMPTY_VIP = "10.0.1.200"
V6_VIP = "2001:db8::a"


def _node_snapshot(tmp: Path, *, nat_only: bool = False) -> Path:
    """The demo plus a Service with no endpoints (its REJECT is in the filter table) and an IPv6-only Service,
    with the iptables-save kube-proxy writes for them (IPv4 only: no ip6tables-save)."""
    root = tmp / ("nat-only" if nat_only else "full")
    shutil.copytree(demo_path(), root)
    items = _items(root / "cluster.yaml")
    for name, ip, fam in (("empty", EMPTY_VIP, "IPv4"), ("six", V6_VIP, "IPv6")):
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                      "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ipFamilies": [fam],
                               "selector": {"app": name},
                               "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": f"{name}-abcde", "namespace": "default",
                                   "labels": {"kubernetes.io/service-name": name,
                                              "endpointslice.kubernetes.io/managed-by":
                                                  "endpointslice-controller.k8s.io"}},
                      "addressType": fam, "endpoints": [],
                      "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    (root / "cluster.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    node = root / "nodes" / "kind-worker"
    for f in node.iterdir():
        if f.name != "iptables-save.txt":
            f.unlink()
    cluster = demo_cluster()
    cluster.services.append(GenService("default", "empty", EMPTY_VIP, [GenPort("http", 80, 8080)], []))
    text = iptables_save(GenCluster(cluster.services, cluster_cidr=cluster.cluster_cidr))
    if nat_only:  # `iptables-save -t nat`
        keep, out = False, []
        for line in text.splitlines(keepends=True):
            if line.startswith("*"):
                keep = line.startswith("*nat")
            if keep or line.startswith("#"):
                out.append(line)
        text = "".join(out)
        assert "*filter" not in text and "*nat" in text
    (node / "iptables-save.txt").write_text(text)
    return root


def _trace(run_cli: Run, snap: Path, svc: str) -> dict[str, Any]:
    code, out, err = run_cli(["trace", svc, "--snapshot", str(snap), "-o", "json"])
    assert code in (0, 1), err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _node_hop(doc: dict[str, Any]) -> dict[str, Any]:
    hop: dict[str, Any] = next(h for h in doc["ports"][0]["hops"] if h["hop"] == "node-rules")
    return hop


def test_nat_only_dump_does_not_call_a_no_endpoints_service_unprogrammed(tmp_path: Path, run_cli: Run) -> None:
    full = _trace(run_cli, _node_snapshot(tmp_path), "empty")
    assert {f["code"] for f in full["findings"]} >= {"NoEndpointsReject"}  # the filter REJECT, seen
    nat_snap = _node_snapshot(tmp_path, nat_only=True)
    nat = _trace(run_cli, nat_snap, "empty")
    codes = {f["code"] for f in nat["findings"]}
    assert "ServiceNotProgrammed" not in codes and "NoEndpointsReject" not in codes, codes
    hop = _node_hop(nat)
    assert hop["verdict"] == "skipped" and "only the nat table" in hop["summary"]
    # a Service with endpoints is still judged from the nat table alone
    assert _node_hop(_trace(run_cli, nat_snap, "hostnames"))["verdict"] == "ok"


def test_one_family_dump_does_not_judge_the_other_family(tmp_path: Path, run_cli: Run) -> None:
    doc = _trace(run_cli, _node_snapshot(tmp_path), "six")
    assert "ServiceNotProgrammed" not in {f["code"] for f in doc["findings"]}
    hop = _node_hop(doc)
    assert hop["verdict"] == "skipped" and "no IPv6 rules" in hop["summary"] and "ip6tables-save" in hop["summary"]


def test_ipvs_dump_without_glue_says_the_glue_checks_were_skipped(tmp_path: Path, run_cli: Run) -> None:
    root = tmp_path / "ipvs"
    shutil.copytree(demo_path(), root)
    node = root / "nodes" / "kind-worker"
    (node / "ipset.txt").unlink()
    (node / "ip-addr-kube-ipvs0.txt").unlink()
    code, out, err = run_cli(["trace", "hostnames", "--snapshot", str(root), "--mode", "ipvs", "-o", "json"])
    doc = json.loads(out)
    codes = {f["code"] for f in doc["findings"]}
    assert not codes & {"VIPNotBound", "VIPNotInIPSet"}
    assert any("skipped: VIP binding" in n and "ipset" in n for n in doc["notes"]), doc["notes"]

"""`svcctl collect`: a scrubbed bundle from the live test API server that `--snapshot` reads back unchanged."""

from __future__ import annotations

import copy
import gzip
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apiserver import FakeAPIServer
from gen_cluster import gen_cluster

from svcctl.sources.bundle import sanitize
from svcctl.sources.kubeconfig import resolve
from svcctl.sources.live import LiveSource
from svcctl.sources.snapshot import SnapshotSource

Factory = Callable[..., FakeAPIServer]
RunCli = Callable[..., tuple[int, str, str]]

PLANTED = "planted-db-password-7f3a9c"
DEMO = SnapshotSource("demo")


def planted_cluster() -> list[dict[str, Any]]:
    """The demo cluster with secrets where a careless dump would leak them."""
    objs: list[dict[str, Any]] = []
    for coll in (DEMO.services, DEMO.pods, list(DEMO.nodes.values()), DEMO.events, DEMO.slices,
                 list(DEMO.endpoints.values())):
        objs += [copy.deepcopy(x.raw) for x in coll]
    for o in objs:
        if o["kind"] == "Pod" and o["metadata"]["name"].startswith("hostnames-"):
            c = o["spec"]["containers"][0]
            c["env"] = [{"name": "DB_PASSWORD", "value": PLANTED},
                        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "api-creds", "key": "key"}}}]
            o["spec"].setdefault("initContainers", []).append(
                {"name": "init", "image": "busybox", "env": [{"name": "SEED", "value": PLANTED + "-init"}]})
            o["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Update",
                                               "fieldsV1": {"f:spec": {}}}]
        if o["kind"] == "Service" and o["metadata"]["name"] == "hostnames":
            o["metadata"].setdefault("annotations", {})[
                "kubectl.kubernetes.io/last-applied-configuration"] = '{"note":"' + PLANTED + '-applied"}'
    objs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-creds", "namespace": "default"},
                 "data": {"key": "c2VjcmV0"}, "stringData": {"plain": PLANTED + "-secret"}})
    objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
                 "data": {"x": PLANTED + "-cm"}})
    return objs


def members(path: Path) -> list[str]:
    with tarfile.open(path) as tf:
        return sorted(tf.getnames())


def bundle_text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")


def keyed(objs: list[Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(o.raw["kind"], o.meta.namespace, o.meta.name): o.raw for o in objs}


def test_collect_one_service(apiserver: Factory, run_cli: RunCli, tmp_path: Path) -> None:
    srv = apiserver(planted_cluster())
    out = tmp_path / "hostnames.tar.gz"
    code, stdout, err = run_cli(["collect", "--kubeconfig", str(srv.kubeconfig), "-o", str(out), "hostnames"])
    assert code == 0, err
    assert stdout == ""
    assert "wrote" in err and "3 Pods" in err
    # nothing secret in the bundle, and Secrets / ConfigMaps were never even requested
    text = bundle_text(out)
    assert PLANTED not in text
    assert srv.token not in text
    assert "managedFields" not in text and "last-applied-configuration" not in text
    assert not any(r.resource in ("secrets", "configmaps") for r in srv.requests)
    assert srv.writes == []
    assert members(out) == ["cluster.yaml", "namespaces.yaml", "networkpolicies.yaml", "svcctl-collect.txt"]

    # read back: the same objects the live source sees, scrubbed
    snap = SnapshotSource(str(out))
    src = LiveSource(resolve(str(srv.kubeconfig)))
    svc = src.get_service("default", "hostnames")
    pods = src.list_pods("default", "app=hostnames")
    want: dict[tuple[str, str, str], dict[str, Any]] = {}
    for group in ([svc], src.list_endpoint_slices("default", "hostnames"),
                  [src.get_endpoints("default", "hostnames")], pods,
                  [n for n in src.get_nodes(["kind-worker"]).values()],
                  src.list_events("default", "Pod", [p.meta.name for p in pods])):
        want.update(keyed([x for x in group if x is not None]))
    got: dict[tuple[str, str, str], dict[str, Any]] = {}
    for group in (snap.services, snap.slices, list(snap.endpoints.values()), snap.pods,
                  list(snap.nodes.values()), snap.events):
        got.update(keyed(group))
    assert set(got) == set(want)
    assert got == {k: sanitize(v) for k, v in want.items()}
    # the scrubbing kept what analysis needs
    pod = next(p for p in snap.pods if p.meta.name == "hostnames-632524106-tlaok")
    assert not pod.ready and pod.pod_ip == "10.244.0.7" and pod.containers[0].ports[0].container_port == 9376
    env = pod.raw["spec"]["containers"][0]["env"]
    assert env == [{"name": "DB_PASSWORD", "value": "REDACTED"},
                   {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "api-creds", "key": "key"}}}]
    assert snap.get_service("default", "hostnames").cluster_ip == "10.0.1.175"


def test_collect_namespace_and_all(apiserver: Factory, run_cli: RunCli, tmp_path: Path) -> None:
    srv = apiserver(planted_cluster())
    kc = str(srv.kubeconfig)
    code, _, err = run_cli(["collect", "--kubeconfig", kc, "-n", "kube-system", "-o", str(tmp_path / "ks.tar.gz")])
    assert code == 0, err
    ks = SnapshotSource(str(tmp_path / "ks.tar.gz"))
    assert [s.meta.key for s in ks.services] == ["kube-system/kube-dns"]
    assert {p.meta.namespace for p in ks.pods} == {"kube-system"}
    code, _, err = run_cli(["collect", "--kubeconfig", kc, "-A", "-o", str(tmp_path / "all.tar.gz")])
    assert code == 0, err
    everything = SnapshotSource(str(tmp_path / "all.tar.gz"))
    assert sorted(s.meta.key for s in everything.services) == sorted(s.meta.key for s in DEMO.services)
    assert len(everything.pods) == len(DEMO.pods) and len(everything.slices) == len(DEMO.slices)
    assert set(everything.nodes) == set(DEMO.nodes)
    assert PLANTED not in bundle_text(tmp_path / "all.tar.gz")
    assert not any(r.resource in ("secrets", "configmaps") for r in srv.requests)


def test_collect_all_namespaces_costs_one_list_per_kind(apiserver: Factory, run_cli: RunCli,
                                                        tmp_path: Path) -> None:
    srv = apiserver(gen_cluster(300, pods_per_service=3, nodes=5), copy=False)
    code, _, err = run_cli(["collect", "--kubeconfig", str(srv.kubeconfig), "-A", "-o", str(tmp_path / "a.tar.gz")])
    assert code == 0, err
    assert sorted(r.resource for r in srv.requests) == [  # 900 pods: 2 pages
        "adminnetworkpolicies", "baselineadminnetworkpolicies", "endpoints", "endpointslices", "events",
        "namespaces", "networkpolicies", "nodes", "pods", "pods", "services"]
    snap = SnapshotSource(str(tmp_path / "a.tar.gz"))
    assert len(snap.services) == 300 and len(snap.pods) == 900 and len(snap.nodes) == 5


def test_collect_node_rules_through_kube_proxy(apiserver: Factory, run_cli: RunCli, tmp_path: Path) -> None:
    objs = planted_cluster()
    objs.append({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "kube-proxy-x1", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
                 "spec": {"nodeName": "kind-worker", "containers": [{"name": "kube-proxy", "image": "kube-proxy"}]},
                 "status": {"phase": "Running"}})
    srv = apiserver(objs)
    rules = "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"
    srv.exec_handler = lambda ns, pod, c, argv: (rules, "", 0) if argv[0] == "iptables-save" else ("", "nope\n", 1)
    out = tmp_path / "b.tar.gz"
    code, _, err = run_cli(["collect", "--kubeconfig", str(srv.kubeconfig), "--node-rules", "--mode", "iptables",
                            "-o", str(out), "hostnames"])
    assert code == 0, err
    assert "nodes/kind-worker/iptables-save.txt" in members(out)
    dumps = SnapshotSource(str(out)).node_dumps("kind-worker")
    assert dumps is not None and dumps.get("iptables") == rules
    assert all(e[0] == "kube-system" and e[1] == "kube-proxy-x1" for e in srv.execs)
    assert srv.writes == []


def test_collect_from_a_snapshot_and_bad_name(run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "demo.tar.gz"
    code, _, err = run_cli(["collect", "--snapshot", "demo", "-o", str(out), "hostnames"])
    assert code == 0, err
    again = SnapshotSource(str(out))
    assert [p.meta.name for p in again.pods] == sorted(p.meta.name for p in DEMO.pods if p.meta.namespace ==
                                                       "default")
    code, _, err = run_cli(["collect", "--snapshot", "demo", "-o", str(tmp_path / "x.zip"), "hostnames"])
    assert code == 2 and "*.tar.gz" in err
    assert not (tmp_path / "x.zip").exists()


def test_sanitize_does_not_touch_the_input() -> None:
    raw = {"kind": "Pod", "metadata": {"name": "p", "managedFields": [{}],
                                       "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
           "spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "secret"}]}],
                    "ephemeralContainers": [{"name": "dbg", "env": [{"name": "B", "value": "secret2"}]}]}}
    before = copy.deepcopy(raw)
    clean = sanitize(raw)
    assert raw == before
    assert clean["metadata"] == {"name": "p"}
    assert clean["spec"]["containers"][0]["env"] == [{"name": "A", "value": "REDACTED"}]
    assert clean["spec"]["ephemeralContainers"][0]["env"] == [{"name": "B", "value": "REDACTED"}]


def test_collect_from_a_snapshot_never_imports_the_client(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from svcctl.cli.main import run; "
            f"rc = run('svcctl', ['collect', '--snapshot', 'demo', '-o', {str(tmp_path / 'd.tar.gz')!r}]); "
            "print(rc, 'kubernetes' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.split() == ["0", "False"], done.stderr

"""`svcctl trace` end to end on snapshots and node dumps: the demo's story, all three modes, each drift code."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from svcctl.sources.snapshot import demo_path

RunCli = Callable[..., tuple[int, str, str]]
DEMO_NODE = demo_path() / "nodes" / "kind-worker"


def _trace_json(run_cli: RunCli, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(["trace", *args, "-o", "json"])
    assert code in (0, 1), err
    return code, json.loads(out)


def test_demo_tells_the_whole_story(run_cli: RunCli) -> None:
    code, out, err = run_cli(["trace", "hostnames", "--snapshot", "demo", "--mode", "iptables"])
    # one exit model (issue 15): the ReadinessProbeFailing ERROR makes the trace broken, as in `endpoints`
    assert code == 1, err
    assert "10.244.0.5:9376  1/2 (50%)  → default/hostnames-632524106-bbpiw  [ready]" in out
    assert "10.244.0.6:9376  1/2 (50%)  → default/hostnames-632524106-ly40y  [ready]" in out
    assert re.search(r"hostnames-632524106-tlaok on kind-worker: not ready — ReadinessProbeFailing", out)
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in out
    assert "no query was sent" in out
    assert "at random" in out and "not round-robin" in out
    # the first line is the verdict and the story; details are for -o wide
    assert out.startswith("verdict: broken — 2 of 3 Pods serve; the other one fails its readiness probe: HTTP 503\n")
    assert "evidence:" not in out and "evidence: Event Unhealthy x87" in run_cli(
        ["trace", "hostnames", "--snapshot", "demo", "--mode", "iptables", "-o", "wide"])[1]


@pytest.mark.parametrize("mode", ["iptables", "ipvs", "nftables"])
def test_demo_same_answer_in_every_mode(run_cli: RunCli, mode: str) -> None:
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", "demo", "--mode", mode)
    assert code == 1  # the demo's ReadinessProbeFailing ERROR: broken, exit 1 (one exit model, issue 15)
    assert doc["apiVersion"] == "svcctl/v1" and doc["kind"] == "Trace"
    assert doc["node"] == {"name": "kind-worker", "mode": mode}
    (port,) = doc["ports"]
    assert [(b["ip"], b["port"], b["share"], b["pod"], b["ready"]) for b in port["backends"]] == [
        ("10.244.0.5", 9376, "1/2", "default/hostnames-632524106-bbpiw", True),
        ("10.244.0.6", 9376, "1/2", "default/hostnames-632524106-ly40y", True),
    ]
    assert {h["hop"]: h["verdict"] for h in port["hops"]} == {
        "node-rules": "ok", "endpoints": "warning", "drift": "ok", "policy": "ok", "selected": "skipped"}
    assert [(f["code"], f["pod"]) for f in doc["findings"]] == [
        ("ReadinessProbeFailing", "default/hostnames-632524106-tlaok")]


def test_node_only_trace_needs_no_cluster(run_cli: RunCli) -> None:
    code, doc = _trace_json(run_cli, "10.0.1.175:80", "--iptables-save", str(DEMO_NODE / "iptables-save.txt"))
    assert code == 0
    assert doc["service"] is None
    (port,) = doc["ports"]
    assert [(b["ip"], b["share"]) for b in port["backends"]] == [("10.244.0.5", "1/2"), ("10.244.0.6", "1/2")]
    assert doc["hops"][0] == {"hop": "dns", "verdict": "skipped", "summary": "skipped: TARGET was an IP",
                              "details": []}


def test_node_only_trace_of_absent_vip_is_a_finding(run_cli: RunCli) -> None:
    code, doc = _trace_json(run_cli, "10.9.9.9:80", "--iptables-save", str(DEMO_NODE / "iptables-save.txt"))
    assert code == 1
    assert [f["code"] for f in doc["findings"]] == ["ServiceNotProgrammed"]


def test_service_name_without_cluster_is_usage_error(run_cli: RunCli) -> None:
    code, out, err = run_cli(["trace", "hostnames", "--iptables-save", str(DEMO_NODE / "iptables-save.txt")])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_unknown_service_suggests(run_cli: RunCli) -> None:
    code, out, err = run_cli(["trace", "hostname", "--snapshot", "demo"])
    assert code == 2 and "did you mean hostnames" in err and "Traceback" not in err


def test_trace_by_vip_and_url_and_dns_name(run_cli: RunCli) -> None:
    for target in ("10.0.1.175:80", "http://hostnames.default/", "hostnames.default.svc.cluster.local",
                   "default/hostnames"):
        code, doc = _trace_json(run_cli, target, "--snapshot", "demo", "--mode", "iptables")
        assert doc["service"]["name"] == "hostnames", target
        assert len(doc["ports"][0]["backends"]) == 2


def _broken_snapshot(tmp_path: Path, edit_cluster: Callable[[dict[str, Any]], None] | None = None,
                     edit_rules: Callable[[str], str] | None = None) -> Path:
    snap = tmp_path / "snap"
    shutil.copytree(demo_path(), snap)
    (snap / "nodes" / "kind-worker" / "nft.txt").unlink()
    (snap / "nodes" / "kind-worker" / "ipvsadm.txt").unlink()
    if edit_cluster:
        doc = yaml.safe_load((snap / "cluster.yaml").read_text())
        edit_cluster(doc)
        (snap / "cluster.yaml").write_text(yaml.safe_dump(doc))
    if edit_rules:
        p = snap / "nodes" / "kind-worker" / "iptables-save.txt"
        p.write_text(edit_rules(p.read_text()))
    return snap


def _hostnames_slice(doc: dict[str, Any]) -> dict[str, Any]:
    return next(i for i in doc["items"] if i["kind"] == "EndpointSlice" and i["metadata"]["name"] == "hostnames-x7k2p")


def test_stale_backend_when_pod_unready_in_api_only(run_cli: RunCli, tmp_path: Path) -> None:
    def unready(doc: dict[str, Any]) -> None:
        ep = _hostnames_slice(doc)["endpoints"][1]  # 10.244.0.6
        ep["conditions"] = {"ready": False, "serving": False, "terminating": False}

    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", str(_broken_snapshot(tmp_path, unready)))
    assert code == 1
    stale = [f for f in doc["findings"] if f["code"] == "StaleBackend"]
    assert [f["pod"] for f in stale] == ["default/hostnames-632524106-ly40y"]


def test_endpoint_not_programmed_when_sep_chain_deleted(run_cli: RunCli, tmp_path: Path) -> None:
    def drop_backend(text: str) -> str:
        # remove the KUBE-SVC → KUBE-SEP jump for 10.244.0.6 and make the remaining one unconditional
        lines = [ln for ln in text.splitlines() if not ("KUBE-SVC-" in ln and "10.244.0.6:9376" in ln
                                                         and "-j KUBE-SEP-" in ln)]
        out = []
        for ln in lines:
            if "10.244.0.5:9376" in ln and "--probability" in ln:
                ln = re.sub(r" -m statistic --mode random --probability \S+", "", ln)
            out.append(ln)
        return "\n".join(out) + "\n"

    code, doc = _trace_json(run_cli, "hostnames", "--snapshot",
                            str(_broken_snapshot(tmp_path, edit_rules=drop_backend)))
    assert code == 1
    missing = [f for f in doc["findings"] if f["code"] == "EndpointNotProgrammed"]
    assert [f["pod"] for f in missing] == ["default/hostnames-632524106-ly40y"]
    assert [(b["ip"], b["share"]) for b in doc["ports"][0]["backends"]] == [("10.244.0.5", "1")]


def test_service_not_programmed(run_cli: RunCli, tmp_path: Path) -> None:
    def drop_vip(text: str) -> str:
        return "\n".join(ln for ln in text.splitlines() if "10.0.1.175/32" not in ln) + "\n"

    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", str(_broken_snapshot(tmp_path, edit_rules=drop_vip)))
    assert code == 1
    assert "ServiceNotProgrammed" in [f["code"] for f in doc["findings"]]


def test_port_selection(run_cli: RunCli) -> None:
    code, doc = _trace_json(run_cli, "kube-system/kube-dns", "--snapshot", "demo", "--mode", "iptables")
    assert sorted((p["port"], p["protocol"]) for p in doc["ports"]) == [(53, "TCP"), (53, "UDP")]
    code, doc = _trace_json(run_cli, "kube-system/kube-dns", "--snapshot", "demo", "--port", "dns-tcp",
                            "--mode", "iptables")
    assert [(p["name"], p["protocol"]) for p in doc["ports"]] == [("dns-tcp", "TCP")]
    code, out, err = run_cli(["trace", "kube-system/kube-dns", "--snapshot", "demo", "--port", "99"])
    assert code == 2 and "has no port 99" in err


def test_json_is_the_only_stdout(run_cli: RunCli) -> None:
    code, out, err = run_cli(["trace", "hostnames", "--snapshot", "demo", "-o", "json"])
    json.loads(out)
    code, out, err = run_cli(["trace", "hostnames", "--snapshot", "demo", "-o", "yaml"])
    assert yaml.safe_load(out)["kind"] == "Trace"


def test_from_pod_picks_its_node_and_namespace(run_cli: RunCli) -> None:
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", "demo", "--mode", "iptables",
                            "--from-pod", "default/hostnames-632524106-bbpiw")
    assert doc["node"]["name"] == "kind-worker"
    assert any("node of Pod default/hostnames-632524106-bbpiw" in n for n in doc["notes"])
    assert doc["dns"]["namespace"] == "default"
    # from a Pod in kube-system the short name cannot reach default/hostnames: the DNS hop says so (offline)
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", "demo", "--mode", "iptables",
                            "--from-pod", "kube-system/coredns-5d78c9869d-q2x7m")
    assert code == 1 and doc["dns"]["namespace"] == "kube-system"
    assert doc["hops"][0]["hop"] == "dns" and doc["hops"][0]["verdict"] == "broken"
    code, doc = _trace_json(run_cli, "hostnames.default", "--snapshot", "demo", "--mode", "iptables",
                            "--from-pod", "kube-system/coredns-5d78c9869d-q2x7m")
    assert code == 1 and doc["hops"][0]["verdict"] == "ok"
    code, out, err = run_cli(["trace", "hostnames", "--snapshot", "demo", "--from-pod", "default/nope"])
    assert code == 2 and 'pod "nope" not found' in err


def test_conntrack_file_shows_where_live_flows_went(run_cli: RunCli, tmp_path: Path) -> None:
    """`--conntrack FILE`: flows to the VIP are attributed to the backends (reply source = DNAT target);
    flows to other addresses are not counted."""
    def flow(i: int, backend: str, vip: str = "10.0.1.175", dport: int = 80, bport: int = 9376) -> str:
        return (f"tcp      6 86398 ESTABLISHED src=10.244.0.9 dst={vip} sport={40000 + i} dport={dport} "
                f"src={backend} dst=10.244.0.9 sport={bport} dport={40000 + i} [ASSURED] mark=0 use=1")

    lines = [flow(i, "10.244.0.5") for i in range(5)] + [flow(10 + i, "10.244.0.6") for i in range(3)]
    lines.append(flow(50, "10.244.0.2", vip="10.0.0.10", dport=53, bport=53))
    ct = tmp_path / "conntrack.txt"
    ct.write_text("\n".join(lines) + "\n")
    code, doc = _trace_json(run_cli, "10.0.1.175:80", "--iptables-save", str(DEMO_NODE / "iptables-save.txt"),
                            "--conntrack", str(ct))
    (port,) = doc["ports"]
    assert {b["ip"]: b.get("observed") for b in port["backends"]} == {"10.244.0.5": 5, "10.244.0.6": 3}
    selected = next(h for h in port["hops"] if h["hop"] == "selected")
    assert selected["summary"] == "conntrack: 8 live flow(s) to this port"


def _nodeport_local_snapshot(tmp_path: Path, move_to_other_node: str | None = None) -> Path:
    """The demo's hostnames as a NodePort with externalTrafficPolicy Local; rules from the same generator
    kube-proxy's layout is checked against (both endpoints local to kind-worker in the rules)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from gen_dumps import GenPort, demo_cluster, iptables_save

    snap = _broken_snapshot(tmp_path)
    c = demo_cluster()
    for s in c.services:
        if s.name == "hostnames":
            s.ports = [GenPort("default", 80, 9376, node_port=30080)]
            s.etp_local = True
    (snap / "nodes" / "kind-worker" / "iptables-save.txt").write_text(iptables_save(c))
    doc = yaml.safe_load((snap / "cluster.yaml").read_text())
    for it in doc["items"]:
        if it["kind"] == "Service" and it["metadata"]["name"] == "hostnames":
            it["spec"].update(type="NodePort", externalTrafficPolicy="Local")
            it["spec"]["ports"][0]["nodePort"] = 30080
    if move_to_other_node:
        for ep in _hostnames_slice(doc)["endpoints"]:
            if ep["addresses"] == [move_to_other_node]:
                ep["nodeName"] = "kind-worker2"
    (snap / "cluster.yaml").write_text(yaml.safe_dump(doc))
    return snap


def test_nodeport_local_path_is_checked_for_drift(run_cli: RunCli, tmp_path: Path) -> None:
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", str(_nodeport_local_snapshot(tmp_path / "a")))
    assert code == 1 and not [f for f in doc["findings"] if f["code"] == "StaleBackend"]
    # the API moved 10.244.0.6 to another node: the ClusterIP path may still use it, the NodePort (Local) may not
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot",
                            str(_nodeport_local_snapshot(tmp_path / "b", move_to_other_node="10.244.0.6")))
    assert code == 1
    stale = [f for f in doc["findings"] if f["code"] == "StaleBackend"]
    assert [(f["pod"], "NodePort" in f["message"], "another node" in f["message"]) for f in stale] == [
        ("default/hostnames-632524106-ly40y", True, True)]


def _demo_objects_with_kube_proxy() -> list[dict[str, Any]]:
    from svcctl.sources.snapshot import SnapshotSource

    src = SnapshotSource("demo")
    kube_proxy = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "kube-proxy-kw", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
                  "spec": {"nodeName": "kind-worker", "containers": [{"name": "kube-proxy", "image": "kube-proxy"}]},
                  "status": {"phase": "Running"}}
    return [*(x.raw for x in src.services), *(x.raw for x in src.pods), *(x.raw for x in src.slices),
            *(x.raw for x in src.nodes.values()), *(x.raw for x in src.events),
            *(x.raw for x in src.endpoints.values()), kube_proxy]


def test_live_trace_without_a_node_still_answers(run_cli: RunCli, apiserver: Any) -> None:
    """Live with no --node: every other hop is traced and the node hop asks which node; --from-pod answers it
    with one GET of the Pod (never a namespace list)."""
    srv = apiserver(_demo_objects_with_kube_proxy())
    ipt = (DEMO_NODE / "iptables-save.txt").read_text()
    srv.exec_handler = lambda ns, pod, container, argv: (ipt, "", 0) if argv == ["iptables-save"] else ("", "", 0)
    k = ["--kubeconfig", str(srv.kubeconfig), "--no-dns"]
    code, doc = _trace_json(run_cli, "hostnames", *k)
    assert code == 1  # the demo's ReadinessProbeFailing ERROR: broken, exit 1 (one exit model, issue 15)
    hop = next(h for h in doc["ports"][0]["hops"] if h["hop"] == "node-rules")
    assert hop["verdict"] == "skipped" and "which node?" in hop["summary"]
    assert {h["hop"]: h["verdict"] for h in doc["ports"][0]["hops"]}["endpoints"] == "warning"
    code, doc = _trace_json(run_cli, "hostnames", "--from-pod", "default/hostnames-632524106-bbpiw", *k)
    assert doc["node"] == {"name": "kind-worker", "mode": "iptables"}
    assert len(doc["ports"][0]["backends"]) == 2
    pod_reads = [r for r in srv.requests if r.resource == "pods" and r.name is None and not r.query.get("labelSelector")]
    assert pod_reads == []


def test_live_trace_equals_snapshot_trace(run_cli: RunCli, apiserver: Any) -> None:
    """The demo through the test API server (rules read by exec into the node's kube-proxy Pod) gives the same
    trace as the demo snapshot: same hops, backends, Pods, shares and findings."""
    objs = _demo_objects_with_kube_proxy()
    srv = apiserver(objs)
    ipt = (DEMO_NODE / "iptables-save.txt").read_text()
    srv.exec_handler = lambda ns, pod, container, argv: (ipt, "", 0) if argv == ["iptables-save"] else ("", "", 0)

    def comparable(doc: dict[str, Any]) -> dict[str, Any]:
        return {"verdict": doc["verdict"], "service": doc["service"], "node": doc["node"],
                "hops": [(h["hop"], h["verdict"]) for h in doc["hops"]],
                # (the live node is also asked for conntrack; the snapshot has none: "selected" differs by design)
                "ports": [(p["port"], p["verdict"], [(h["hop"], h["verdict"], h["summary"]) for h in p["hops"]
                                                     if h["hop"] != "selected"],
                           p["backends"]) for p in doc["ports"]],
                "findings": sorted((f["code"], f["pod"] or "", f["message"]) for f in doc["findings"])}

    code_live, live = _trace_json(run_cli, "hostnames", "--node", "kind-worker", "--no-dns",
                                  "--kubeconfig", str(srv.kubeconfig))
    code_snap, snap = _trace_json(run_cli, "hostnames", "--snapshot", "demo", "--mode", "iptables", "--no-dns")
    assert code_live == code_snap == 1
    import difflib
    a, b = (json.dumps(comparable(d), indent=1, sort_keys=True).splitlines() for d in (live, snap))
    assert a == b, "\n".join(difflib.unified_diff(a, b, lineterm=""))
    assert srv.writes == []
    assert [r.path for r in srv.requests if "exec" in r.path], "the live trace read the node through exec"


@pytest.mark.parametrize("edit", ["headless", "proxy-ignored"])
def test_services_kube_proxy_does_not_program_are_not_drift(run_cli: RunCli, tmp_path: Path, edit: str) -> None:
    """A headless Service, or one labelled for another proxy, has no rules on the node by design: the trace
    says so instead of reporting ServiceNotProgrammed."""
    def change(doc: dict[str, Any]) -> None:
        svc = next(i for i in doc["items"] if i["kind"] == "Service" and i["metadata"]["name"] == "hostnames")
        if edit == "headless":
            svc["spec"]["clusterIP"] = "None"
            svc["spec"]["clusterIPs"] = ["None"]
        else:
            svc["metadata"]["labels"]["service.kubernetes.io/service-proxy-name"] = "cilium"

    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", str(_broken_snapshot(tmp_path, change)))
    assert "ServiceNotProgrammed" not in [f["code"] for f in doc["findings"]]
    hops = {h["hop"]: h for h in doc["ports"][0]["hops"]}
    assert hops["node-rules"]["verdict"] == hops["drift"]["verdict"] == "skipped"
    assert ("headless" if edit == "headless" else "cilium") in hops["node-rules"]["summary"]
    assert code == 1  # the demo's ReadinessProbeFailing ERROR: broken, exit 1 (one exit model, issue 15)


def _ipvs_snapshot(tmp_path: Path) -> Path:
    snap = tmp_path / "snap"
    shutil.copytree(demo_path(), snap)
    node = snap / "nodes" / "kind-worker"
    (node / "nft.txt").unlink()
    return snap


def test_ipvs_vip_not_bound_breaks_the_node_hop(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _ipvs_snapshot(tmp_path)
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", str(snap), "--mode", "ipvs")
    assert code == 1 and not [f for f in doc["findings"] if f["code"].startswith("VIP")]
    addr = snap / "nodes" / "kind-worker" / "ip-addr-kube-ipvs0.txt"
    addr.write_text(addr.read_text().replace("    inet 10.0.1.175/32 scope global kube-ipvs0\n", ""))
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", str(snap), "--mode", "ipvs")
    assert code == 1
    assert [f["code"] for f in doc["findings"] if f["code"].startswith("VIP")] == ["VIPNotBound"]
    assert next(h for h in doc["ports"][0]["hops"] if h["hop"] == "node-rules")["verdict"] == "broken"


def test_ipvs_connection_table_shows_where_connections_went(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _ipvs_snapshot(tmp_path)
    rows = ["IPVS connection entries", "pro expire state       source             virtual            destination"]
    rows += [f"TCP 14:58  ESTABLISHED 10.244.0.1:{51000 + i:<5}   10.0.1.175:80      10.244.0.{5 + i % 2}:9376"
             for i in range(7)]
    (snap / "nodes" / "kind-worker" / "ipvsadm-conns.txt").write_text("\n".join(rows) + "\n")
    code, doc = _trace_json(run_cli, "hostnames", "--snapshot", str(snap), "--mode", "ipvs")
    assert {b["ip"]: b.get("observed") for b in doc["ports"][0]["backends"]} == {"10.244.0.5": 4, "10.244.0.6": 3}

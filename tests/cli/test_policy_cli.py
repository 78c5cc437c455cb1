"""The trace's policy hop end to end: snapshots without node dumps, and the live path on the test API server."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from scenarios import builder as b

RunCli = Callable[..., tuple[int, str, str]]
JSON = dict[str, Any]






DB_INGRESS = b.network_policy("default", "db-ingress", {
    "podSelector": {"matchLabels": {"app": "db"}},
    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}},
                           "podSelector": {"matchLabels": {"role": "web"}}}],
                 "ports": [{"protocol": "TCP", "port": "redis"}]}]})
WEB_DENY_EGRESS = b.network_policy("web", "default-deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
WEB_ALLOW = b.network_policy("web", "allow-db-and-dns", {
    "podSelector": {}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
                        "podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": 6379}]},
               {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]})


def _cluster(*policies: JSON) -> list[JSON]:
    svc = b.service("db", {"app": "db"}, ports=[("redis", 6379, "redis", "TCP")], cluster_ip="10.96.0.60")
    redis = [b.container("redis", [("redis", 6379, "TCP")])]
    db0 = b.pod("db-0", {"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"}, ip="10.244.1.10",
                node="node-a", containers=copy.deepcopy(redis))
    db1 = b.pod("db-1", {"app": "db", "statefulset.kubernetes.io/pod-name": "db-1"}, ip="10.244.2.10",
                node="node-b", containers=copy.deepcopy(redis))
    web = b.pod("web-0", {"role": "web"}, ns="web", ip="10.244.1.20", node="node-a")
    api = b.pod("api-0", {"role": "api"}, ns="web", ip="10.244.1.21", node="node-a")
    batch = b.pod("batch-0", {"app": "batch"}, ip="10.244.2.30", node="node-b")
    dns_svc = b.service("kube-dns", {"k8s-app": "kube-dns"}, ns="kube-system", cluster_ip="10.96.0.10",
                        ports=[("dns", 53, 53, "UDP"), ("dns-tcp", 53, 53, "TCP")])
    coredns = b.pod("coredns-0", {"k8s-app": "kube-dns"}, ns="kube-system", ip="10.244.1.2", node="node-a",
                    containers=[b.container("coredns", [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")])])
    sl = b.endpoint_slice(svc, [b.endpoint(db0), b.endpoint(db1)], ports=[("redis", 6379, "TCP")])
    return [svc, db0, db1, web, api, batch, dns_svc, coredns, sl, b.node("node-a", ip="192.168.1.1"),
            b.node("node-b", ip="192.168.1.2"), b.namespace("default"), b.namespace("web", {"team": "web"}), b.namespace("kube-system"),
            *policies]


def _write(tmp_path: Path, objects: list[JSON]) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(b.as_list(objects)))
    return str(path)


def _trace(run_cli: RunCli, snap: str, *args: str) -> tuple[int, JSON, str]:
    code, out, err = run_cli(["trace", "db.default", "--snapshot", snap, "-o", "json", *args])
    assert code in (0, 1), err
    return code, json.loads(out), err


def _policy(doc: JSON) -> JSON:
    (port,) = doc["ports"]
    (hop,) = [h for h in port["hops"] if h["hop"] == "policy"]
    names = [h["hop"] for h in port["hops"]]
    assert names.index("policy") == names.index("selected") - 1 and names.index("policy") > names.index("endpoints")
    return dict(hop)


def test_egress_default_deny_names_both_policies_and_catches_dns(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS, WEB_DENY_EGRESS))  # no node dumps at all
    code, doc, _ = _trace(run_cli, snap, "--from-pod", "web/web-0")
    assert code == 1
    hop = _policy(doc)
    assert hop["verdict"] == "broken"
    assert hop["data"] == {"backends": [
        {"pod": "default/db-0", "allowed": False, "decidedBy": ["web/default-deny-egress", "default/db-ingress"],
         "deniedBy": "egress"},
        {"pod": "default/db-1", "allowed": False, "decidedBy": ["web/default-deny-egress", "default/db-ingress"],
         "deniedBy": "egress"}]}
    codes = {f["code"]: f for f in doc["findings"]}
    assert codes["PolicyDeniesEgress"]["severity"] == "error"
    assert "PolicyDeniesIngress" not in codes  # the ingress rule admits web/web-0 (namespace AND labels)
    dns = codes["PolicyDeniesDNS"]
    assert dns["severity"] == "error" and dns["pod"] == "web/web-0"
    assert "k8s-app: kube-dns" in dns["hint"] and "port: 53" in dns["hint"]
    assert {h["hop"]: h["verdict"] for h in doc["hops"]}["dns"] == "broken"
    node_hop = next(h for h in doc["ports"][0]["hops"] if h["hop"] == "node-rules")
    assert node_hop["verdict"] == "skipped" and "no node dumps for node-a" in node_hop["summary"]


def test_the_rules_the_hints_name_make_it_pass(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS, WEB_DENY_EGRESS, WEB_ALLOW))
    code, doc, _ = _trace(run_cli, snap, "--from-pod", "web/web-0")
    hop = _policy(doc)
    assert hop["verdict"] == "ok"
    assert [(x["allowed"], x["deniedBy"]) for x in hop["data"]["backends"]] == [(True, None), (True, None)]
    assert hop["data"]["backends"][0]["decidedBy"] == ["web/allow-db-and-dns", "web/default-deny-egress",
                                                       "default/db-ingress"]
    assert not [f for f in doc["findings"] if f["code"].startswith("Policy")]
    assert {h["hop"]: h["verdict"] for h in doc["hops"]}["dns"] == "ok"
    assert any("default/db-ingress ingress rule 0 (namespaceSelector team=web AND podSelector role=web"
               in d for d in hop["details"])
    assert code == 0


def test_half_matching_one_peer_and_is_explained(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS))
    code, doc, _ = _trace(run_cli, snap, "--from-pod", "web/api-0")
    assert code == 1
    (f,) = [f for f in doc["findings"] if f["code"] == "PolicyDeniesIngress"]
    assert f["severity"] == "error"
    assert "ONE element" in f["hint"] and "podSelector role=web" in f["hint"]
    assert "kubernetes.io/metadata.name: web" in f["hint"] and "role: api" in f["hint"]
    assert "10.244.1.20" not in f["hint"]


def test_some_backends_denied_is_a_warning(run_cli: RunCli, tmp_path: Path) -> None:
    only_db1 = b.network_policy("default", "db-1-locked", {
        "podSelector": {"matchLabels": {"statefulset.kubernetes.io/pod-name": "db-1"}}, "policyTypes": ["Ingress"]})
    snap = _write(tmp_path, _cluster(only_db1))
    code, doc, _ = _trace(run_cli, snap, "--from-pod", "default/batch-0")
    hop = _policy(doc)
    assert hop["verdict"] == "warning"
    assert [(x["pod"], x["allowed"], x["decidedBy"]) for x in hop["data"]["backends"]] == [
        ("default/db-0", True, []), ("default/db-1", False, ["default/db-1-locked"])]
    (f,) = [f for f in doc["findings"] if f["code"] == "PolicyDeniesIngress"]
    assert f["severity"] == "warning" and f["pod"] == "default/db-1"


def test_from_an_ip_is_matched_by_ipblock_only(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS))
    code, doc, _ = _trace(run_cli, snap, "--from", "203.0.113.7")
    assert code == 1
    (f,) = [f for f in doc["findings"] if f["code"] == "PolicyDeniesIngress"]
    assert "ipBlock: {cidr: 203.0.113.7/32}" in f["hint"]
    code, out, err = run_cli(["trace", "default/db", "--snapshot", snap, "--from", "not-an-ip"])
    assert code == 2 and "not an IP address" in err and "Traceback" not in err


def test_unknown_client_is_said_as_such(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS))
    code, doc, _ = _trace(run_cli, snap, "--node", "node-a")
    hop = _policy(doc)
    assert hop["verdict"] == "ok" and "depend" in hop["summary"]
    assert [x["allowed"] for x in hop["data"]["backends"]] == [None, None]
    assert "client: a Pod on node node-a" in hop["details"]
    assert not [f for f in doc["findings"] if f["code"].startswith("Policy")]


def test_malformed_policy_is_one_line_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    bad = b.network_policy("default", "bad", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0/33"}}]}]})
    snap = _write(tmp_path, _cluster(bad))
    code, out, err = run_cli(["trace", "default/db", "--snapshot", snap, "--from-pod", "web/web-0"])
    assert code == 2 and "malformed policy" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2


def test_plain_output_names_the_hop(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS, WEB_DENY_EGRESS))
    code, out, _ = run_cli(["trace", "default/db", "--snapshot", snap, "--from-pod", "web/web-0"])
    assert code == 1
    assert "✗ NetworkPolicy: 2 of 2 backend(s) denied for Pod web/web-0" in out
    assert "egress of the client: no rule of web/default-deny-egress admits it" in out


@pytest.mark.usefixtures("pki")
def test_live_reads_one_policy_list_per_namespace_and_agrees_with_the_snapshot(
        run_cli: RunCli, apiserver: Any, tmp_path: Path) -> None:
    objects = _cluster(DB_INGRESS, WEB_DENY_EGRESS, b.network_policy("unrelated", "deny", {"podSelector": {}}))
    snap = _write(tmp_path, objects)
    _, want, _ = _trace(run_cli, snap, "--from-pod", "web/web-0")
    srv = apiserver(objects)
    code, out, err = run_cli(["trace", "default/db", "--from-pod", "web/web-0", "--no-exec", "--no-dns", "-o",
                              "json"], env={"KUBECONFIG": str(srv.kubeconfig)})
    assert code == 1, err
    got = json.loads(out)
    assert _policy(got)["data"] == _policy(want)["data"]
    assert {f["code"] for f in got["findings"]} >= {"PolicyDeniesEgress", "PolicyDeniesDNS"}
    lists = sorted((r.namespace or "", r.verb) for r in srv.requests if r.resource == "networkpolicies")
    assert lists == [("default", "list"), ("web", "list")]  # never cluster-wide, never `unrelated`


ANP_DENY_WEB = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
                "metadata": {"name": "no-web-to-default"},
                "spec": {"priority": 10,
                         "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}},
                         "ingress": [{"name": "deny-web", "action": "Deny",
                                      "from": [{"namespaces": {"matchLabels": {"team": "web"}}}]}]}}


def test_admin_network_policy_tier_comes_first(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS, WEB_ALLOW, ANP_DENY_WEB))
    code, doc, _ = _trace(run_cli, snap, "--from-pod", "web/web-0")
    assert code == 1
    hop = _policy(doc)
    assert [(x["allowed"], x["deniedBy"], x["decidedBy"]) for x in hop["data"]["backends"]] == [
        (False, "ingress", ["web/allow-db-and-dns", "AdminNetworkPolicy/no-web-to-default", "default/db-ingress"])] * 2
    assert any("AdminNetworkPolicy tier comes before NetworkPolicy" in d for d in hop["details"])
    bad = copy.deepcopy(ANP_DENY_WEB)
    bad["spec"]["ingress"][0]["action"] = "Maybe"
    snap = _write(tmp_path, _cluster(bad))
    code, out, err = run_cli(["trace", "default/db", "--snapshot", snap])
    assert code == 2 and "malformed policy" in err and "action 'Maybe'" in err


@pytest.mark.usefixtures("pki")
def test_live_reads_the_admin_tiers(run_cli: RunCli, apiserver: Any, tmp_path: Path) -> None:
    srv = apiserver(_cluster(DB_INGRESS, WEB_ALLOW, ANP_DENY_WEB))
    code, out, err = run_cli(["trace", "default/db", "--from-pod", "web/web-0", "--no-exec", "--no-dns", "-o",
                              "json"], env={"KUBECONFIG": str(srv.kubeconfig)})
    assert code == 1, err
    hop = _policy(json.loads(out))
    assert {x["deniedBy"] for x in hop["data"]["backends"]} == {"ingress"}
    assert {r.path for r in srv.requests if r.resource.endswith("adminnetworkpolicies")} == {
        "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies",
        "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies"}


def test_a_calico_node_gets_a_note(run_cli: RunCli, tmp_path: Path) -> None:
    from svcctl.sources.snapshot import demo_path

    _write(tmp_path, _cluster(DB_INGRESS))
    dump = (demo_path() / "nodes" / "kind-worker" / "iptables-save.txt").read_text()
    dump = dump.replace("*filter\n", "*filter\n:cali-FORWARD - [0:0]\n", 1)
    (tmp_path / "nodes" / "node-a").mkdir(parents=True)
    (tmp_path / "nodes" / "node-a" / "iptables-save.txt").write_text(dump)
    code, doc, _ = _trace(run_cli, str(tmp_path), "--from-pod", "web/web-0", "--mode", "iptables")
    hop = _policy(doc)
    assert any("the node runs Calico" in d and "GlobalNetworkPolicy" in d for d in hop["details"])


DB_DENY_ALL = b.network_policy("default", "db-deny", {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]})


def _check(run_cli: RunCli, snap: str, *args: str) -> tuple[int, JSON]:
    code, out, err = run_cli(["check", "-A", "--snapshot", snap, "-o", "json", *args])
    assert code in (0, 1), err
    doc = json.loads(out)
    return code, next(s for s in doc["services"] if s["name"] == "db")


def test_check_says_which_namespaces_can_reach_each_service(run_cli: RunCli, tmp_path: Path) -> None:
    _, db = _check(run_cli, _write(tmp_path, _cluster(DB_INGRESS)))
    assert db["policy"]["reach"] == {"default": "none", "kube-system": "none", "web": "some"}
    assert not [f for f in db["findings"] if f["check"] == "policy"]
    _, db = _check(run_cli, _write(tmp_path, _cluster(WEB_DENY_EGRESS)))  # Egress of web: not judged here
    assert set(db["policy"]["reach"].values()) == {"all"}


def test_check_warns_when_no_namespace_can_reach_a_service_with_endpoints(run_cli: RunCli, tmp_path: Path) -> None:
    _, db = _check(run_cli, _write(tmp_path, _cluster(DB_DENY_ALL)))
    assert set(db["policy"]["reach"].values()) == {"none"}
    (f,) = [f for f in db["findings"] if f["check"] == "policy"]
    assert (f["code"], f["severity"]) == ("PolicyIsolatesService", "warning")
    assert "default/db-deny" in f["evidence"]


def test_check_from_one_pod(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS))
    code, db = _check(run_cli, snap, "--from-pod", "web/api-0")
    assert code == 1
    assert [(f["code"], f["severity"]) for f in db["findings"] if f["check"] == "policy"] == [
        ("PolicyDeniesIngress", "error")]
    code, db = _check(run_cli, snap, "--from-pod", "web/web-0")
    assert not [f for f in db["findings"] if f["check"] == "policy"]
    code, out, err = run_cli(["check", "-A", "--snapshot", snap, "--from-pod", "web/nope"])
    assert code == 2 and 'pod "nope" not found' in err


def test_check_without_policies_in_the_snapshot_skips_the_check(run_cli: RunCli, tmp_path: Path) -> None:
    objects = [o for o in _cluster() if o["kind"] != "Namespace"]
    _, db = _check(run_cli, _write(tmp_path, objects))
    assert db["policy"]["reach"] == {} and any(s.startswith("policy: the input has no NetworkPolicies")
                                              for s in db["skippedChecks"])


@pytest.mark.usefixtures("pki")
def test_collect_keeps_what_the_policy_hop_reads(run_cli: RunCli, apiserver: Any, tmp_path: Path) -> None:
    objects = _cluster(DB_INGRESS, WEB_DENY_EGRESS, ANP_DENY_WEB, b.network_policy("unrelated", "deny", {"podSelector": {}}))
    srv = apiserver(objects)
    kc = {"KUBECONFIG": str(srv.kubeconfig)}
    for client in (["--from-pod", "web/web-0"], ["--node", "node-a"]):
        code, out, err = run_cli(["trace", "default/db", *client, "--no-exec", "--no-dns", "-o", "json"], env=kc)
        live = _policy(json.loads(out))
        for args in (["default/db"], ["-A"]) if client[0] == "--node" else (["-A"],):
            bundle = tmp_path / f"b{len(args[0])}.tar.gz"
            code, _, err = run_cli(["collect", *args, "-o", str(bundle)], env=kc)
            assert code == 0, err
            code, out, err = run_cli(["trace", "default/db", *client, "--no-dns", "--snapshot", str(bundle), "-o",
                                      "json"])
            assert _policy(json.loads(out))["data"] == live["data"], (client, args)
    from svcctl.sources.snapshot import SnapshotSource

    one = SnapshotSource(str(tmp_path / "b10.tar.gz"))
    assert [o["metadata"]["name"] for o in one.network_policies] == ["db-ingress"]  # one namespace's list
    assert set(one.namespace_objects) == {"default"} and len(one.admin_policies) == 1
    every = SnapshotSource(str(tmp_path / "b2.tar.gz"))
    assert len(every.network_policies) == 3 and {"web", "unrelated"} <= set(every.namespace_objects)
    # a namespace collected with no policy at all is "none", not "not collected"
    empty = apiserver(_cluster())
    code, _, err = run_cli(["collect", "default/db", "-o", str(tmp_path / "e.tar.gz")],
                           env={"KUBECONFIG": str(empty.kubeconfig)})
    assert code == 0, err
    _, doc, _ = _trace(run_cli, str(tmp_path / "e.tar.gz"))
    assert _policy(doc)["verdict"] == "ok"


@pytest.mark.usefixtures("pki")
def test_deploy_rbac_grants_what_the_policy_hop_reads(run_cli: RunCli, apiserver: Any) -> None:
    rbac = Path(__file__).resolve().parent.parent.parent / "deploy" / "rbac.yaml"
    srv = apiserver(_cluster(DB_INGRESS, WEB_DENY_EGRESS, ANP_DENY_WEB))
    srv.rbac_from_yaml(rbac, {"ClusterRole/svcctl-reader": None})
    env = {"KUBECONFIG": str(srv.kubeconfig)}
    code, out, err = run_cli(["trace", "default/db", "--from-pod", "web/web-0", "--no-exec", "--no-dns", "-o",
                              "json"], env=env)
    hop = _policy(json.loads(out))
    assert hop["verdict"] == "broken" and not [r for r in srv.requests if r.status == 403], err
    # the namespaced Role: this namespace's policies are readable, the cluster-scoped admin tiers are not
    srv = apiserver(_cluster(DB_INGRESS, ANP_DENY_WEB))
    srv.rbac_from_yaml(rbac, {"Role/svcctl-namespace-reader": "default"})
    code, out, err = run_cli(["trace", "default/db", "--node", "node-a", "--no-exec", "--no-dns", "-o", "json"],
                             env={"KUBECONFIG": str(srv.kubeconfig)})
    assert code in (0, 1), err
    hop = _policy(json.loads(out))
    assert hop["verdict"] == "ok" and [x["allowed"] for x in hop["data"]["backends"]] == [None, None]
    assert any("AdminNetworkPolicies could not be read" in d for d in hop["details"])


def test_from_a_node_is_the_node_itself(run_cli: RunCli, tmp_path: Path) -> None:
    node_ok = b.network_policy("default", "from-nodes", {"podSelector": {"matchLabels": {"app": "db"}},
                                            "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.1.2/32"}}]}]})
    snap = _write(tmp_path, _cluster(node_ok))
    _, doc, _ = _trace(run_cli, snap, "--from", "node/node-b")
    hop = _policy(doc)
    assert "client: node node-b" in hop["details"]
    # db-1 runs on node-b (its own node: always allowed); db-0 is admitted by the ipBlock of node-b's address
    assert [(x["pod"], x["allowed"]) for x in hop["data"]["backends"]] == [("default/db-0", True),
                                                                          ("default/db-1", True)]
    _, doc, _ = _trace(run_cli, snap, "--from", "node/node-a")
    assert [(x["pod"], x["allowed"]) for x in _policy(doc)["data"]["backends"]] == [("default/db-0", True),
                                                                                   ("default/db-1", False)]


def test_check_table_shows_the_reach_and_wide_names_the_namespaces(run_cli: RunCli, tmp_path: Path) -> None:
    snap = _write(tmp_path, _cluster(DB_INGRESS))
    code, out, err = run_cli(["check", "-A", "--snapshot", snap])
    lines = [line.split() for line in out.splitlines()]
    at = next(i for i, line in enumerate(lines) if line[:1] == ["NAMESPACE"])
    head, rows = lines[at], lines[at + 1:at + 3]
    assert head[-1] == "REACH"
    db = next(r for r in rows if r[1] == "db")
    assert " ".join(db[7:]) == "1 some, 2 none"
    code, out, err = run_cli(["check", "-A", "--snapshot", snap, "-o", "wide"])
    db_line = next(line for line in out.splitlines() if line.split()[:2] == ["default", "db"])
    assert "some: web; none: default,kube-system" in db_line
    _, out, _ = run_cli(["check", "-A", "--snapshot", _write(tmp_path, _cluster(DB_DENY_ALL))])
    db = next(line.split() for line in out.splitlines() if line.split()[:2] == ["default", "db"])
    assert db[7:] == ["none", "(3", "ns)"]


def test_check_table_has_no_reach_column_when_nothing_is_isolated(run_cli: RunCli, tmp_path: Path) -> None:
    _, out, _ = run_cli(["check", "-A", "--snapshot", _write(tmp_path, _cluster(WEB_DENY_EGRESS))])
    head = next(line for line in out.splitlines() if line.startswith("NAMESPACE"))
    assert "REACH" not in head and "INFO" in head

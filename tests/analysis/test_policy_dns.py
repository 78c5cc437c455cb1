"""The client's Egress to the cluster DNS, judged before the DNS hop (snapshots: nothing is sent): after the
kube-dns Service's translation, a policy must admit the DNS Pods' targetPort, not the Service's port 53."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from scenarios import builder as b

from svcctl.analysis.policy_dns import dns_rule, dns_target_ports
from svcctl.model import Service

RunCli = Callable[..., tuple[int, str, str]]
JSON = dict[str, Any]






def _allow_dns(port: int) -> JSON:
    return b.network_policy("web", f"allow-dns-{port}", {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                    "ports": [{"protocol": "UDP", "port": port}, {"protocol": "TCP", "port": port}]}]})


# CoreDNS listening on 1053 behind the kube-dns Service's port 53 (named targetPorts)
DNS_SVC = b.service("kube-dns", {"k8s-app": "kube-dns"}, ns="kube-system", cluster_ip="10.96.0.10",
                    ports=[("dns", 53, "dns", "UDP"), ("dns-tcp", 53, "dns-tcp", "TCP")])
COREDNS = b.pod("coredns-0", {"k8s-app": "kube-dns"}, ns="kube-system", ip="10.244.1.2", node="node-a",
                containers=[b.container("coredns", [("dns", 1053, "UDP"), ("dns-tcp", 1053, "TCP")])])


def _snap(tmp_path: Path, *policies: JSON) -> str:
    svc = b.service("db", {"app": "db"}, ports=[("redis", 6379, 6379, "TCP")], cluster_ip="10.96.0.60")
    db0 = b.pod("db-0", {"app": "db"}, ip="10.244.1.10", node="node-a",
                containers=[b.container("redis", [("redis", 6379, "TCP")])])
    web = b.pod("web-0", {"role": "web"}, ns="web", ip="10.244.1.20", node="node-a")
    objs = [svc, db0, web, DNS_SVC, COREDNS, b.endpoint_slice(svc, [b.endpoint(db0)], ports=[("redis", 6379, "TCP")]),
            b.node("node-a", ip="192.168.1.1"), b.namespace("default"), b.namespace("web"), b.namespace("kube-system"),
            b.network_policy("web", "default-deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]}), *policies]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(b.as_list(objs)))
    return str(path)


def _trace(run_cli: RunCli, snap: str, *args: str) -> JSON:
    code, out, err = run_cli(["trace", "db.default", "--snapshot", snap, "--from-pod", "web/web-0", "-o", "json",
                              *args])
    assert code in (0, 1), err
    return dict(json.loads(out))


def test_a_rule_on_port_53_misses_dns_pods_listening_on_1053(run_cli: RunCli, tmp_path: Path) -> None:
    doc = _trace(run_cli, _snap(tmp_path, _allow_dns(53)))
    (f,) = [f for f in doc["findings"] if f["code"] == "PolicyDeniesDNS"]
    assert "1053/UDP" in f["message"] and "port: 1053" in f["hint"]
    assert "listen on 1053/TCP, 1053/UDP behind the Service's port 53" in f["hint"]
    assert "web/allow-dns-53" in f["evidence"]
    (hop,) = [h for h in doc["hops"] if h["hop"] == "dns"]
    assert hop["verdict"] == "broken" and "1053/UDP" in hop["summary"] and "not queried" in hop["summary"]


def test_a_rule_on_the_target_port_admits_dns(run_cli: RunCli, tmp_path: Path) -> None:
    doc = _trace(run_cli, _snap(tmp_path, _allow_dns(1053)))
    assert "PolicyDeniesDNS" not in {f["code"] for f in doc["findings"]}
    (hop,) = [h for h in doc["hops"] if h["hop"] == "dns"]
    assert "blocks DNS" not in hop["summary"]


def test_no_dns_still_reports_the_blocked_egress(run_cli: RunCli, tmp_path: Path) -> None:
    doc = _trace(run_cli, _snap(tmp_path), "--no-dns")
    assert "PolicyDeniesDNS" in {f["code"] for f in doc["findings"]}
    (hop,) = [h for h in doc["hops"] if h["hop"] == "dns"]
    assert hop["verdict"] == "skipped"


def test_target_ports_resolve_names_on_the_dns_pods() -> None:
    svc = Service.from_dict(DNS_SVC)
    assert dns_target_ports(svc, [COREDNS]) == ({"UDP": 1053, "TCP": 1053}, [])
    ports, notes = dns_target_ports(svc, [])  # no DNS Pod in the input: the name cannot be resolved
    assert ports == {"UDP": 53, "TCP": 53} and len(notes) == 2 and "'dns'" in notes[0]
    rule = dns_rule(svc, {"UDP": 1053, "TCP": 1053})
    assert rule["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert rule["ports"] == [{"protocol": "UDP", "port": 1053}, {"protocol": "TCP", "port": 1053}]


def test_the_blocked_dns_hop_says_so_in_json(run_cli: RunCli, tmp_path: Path) -> None:
    doc = _trace(run_cli, _snap(tmp_path))
    (hop,) = [h for h in doc["hops"] if h["hop"] == "dns"]
    assert hop["data"] == {"queried": False, "egressBlockedBy": ["web/default-deny-egress"],
                           "deniedProtocols": ["UDP", "TCP"], "targetPorts": {"TCP": 1053, "UDP": 1053}}


def test_an_externalname_service_is_gated_too(run_cli: RunCli, tmp_path: Path) -> None:
    snap = Path(_snap(tmp_path))
    objs = yaml.safe_load(snap.read_text())
    objs["items"].append(b.service("ext", None, type_="ExternalName", external_name="db.example.com"))
    snap.write_text(yaml.safe_dump(objs))
    code, out, err = run_cli(["trace", "ext.default", "--snapshot", str(snap), "--from-pod", "web/web-0", "-o",
                              "json"])
    assert code == 1, err
    doc = json.loads(out)
    (hop,) = [h for h in doc["hops"] if h["hop"] == "dns"]
    assert hop["verdict"] == "broken" and "not queried" in hop["summary"]
    assert "PolicyDeniesDNS" in {f["code"] for f in doc["findings"]}


def test_an_ipblock_of_the_dns_clusterip_admits_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    """After kube-proxy's DNAT the packet goes to a DNS Pod's IP: an ipBlock of the Service's ClusterIP never
    matches it (kube-router's per-Pod chains, in FORWARD after the nat PREROUTING DNAT, match the Pod IP)."""
    to_vip = b.network_policy("web", "allow-dns-vip", {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.96.0.10/32"}}],
                    "ports": [{"protocol": "UDP", "port": 1053}, {"protocol": "TCP", "port": 1053}]}]})
    doc = _trace(run_cli, _snap(tmp_path, to_vip))
    (f,) = [f for f in doc["findings"] if f["code"] == "PolicyDeniesDNS"]
    assert "web/allow-dns-vip" in f["evidence"]


def test_check_from_pod_reports_the_clients_dns_egress(run_cli: RunCli, tmp_path: Path) -> None:
    """`check --from-pod`: a client whose Egress blocks DNS cannot reach a Service by its name, whatever the
    Service's own policies say; judged once for the client, reported on each Service checked."""
    snap = _snap(tmp_path, _allow_dns(53))
    code, out, err = run_cli(["check", "-n", "default", "--snapshot", snap, "--from-pod", "web/web-0", "-o", "json"])
    doc = json.loads(out)
    db = next(s for s in doc["services"] if s["name"] == "db")
    dns = [f for f in db["findings"] if f["code"] == "PolicyDeniesDNS"]
    assert len(dns) == 1 and dns[0]["check"] == "policy" and "port: 1053" in dns[0]["hint"], db["findings"]
    assert code == 1 and db["status"] == "broken"
    code, out, _ = run_cli(["check", "-n", "default", "--snapshot", _snap(tmp_path, _allow_dns(1053)),
                            "--from-pod", "web/web-0", "-o", "json"])
    db = next(s for s in json.loads(out)["services"] if s["name"] == "db")
    assert "PolicyDeniesDNS" not in {f["code"] for f in db["findings"]}

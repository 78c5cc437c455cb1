"""Every way into a Service on real parts: a node in network namespaces with two addresses, a client outside the
node, kube-proxy's rules for a NodePort / externalIP / load-balancer Service and a UDP+TCP DNS-like Service
(iptables-save and nft formats as kube-proxy writes them), the test API server describing the cluster.

For each way in, `svcctl trace ADDRESS:PORT` must name the Service, the way and the backends, and real packets
sent to that address from the source the trace assumes must land on exactly those backends. Addresses:
node 198.18.2.1 (towards the client) and 198.18.3.1 (a second address), pods 198.18.1.0/24, VIPs 198.19.0.0/16.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, iptables_save  # noqa: E402
from gen_dumps_ipvs_nft import GenService as NftService  # noqa: E402
from gen_dumps_ipvs_nft import nft_script  # noqa: E402
from netns import Lab, require_netns  # noqa: E402

pytestmark = pytest.mark.netns

RunCli = Callable[..., tuple[int, str, str]]
NS = "shop"
NODE = "node1"
NODE_IP, NODE_IP2 = "198.18.2.1", "198.18.3.1"
WEB_VIP, DNS_VIP, EXT_IP, LB_IP = "198.19.0.30", "198.19.0.53", "198.19.1.50", "198.19.2.7"
NODE_PORT = 30080
N = 45  # connections per way: a backend is missed with probability 3 * (2/3)^45 < 1e-7




def cluster_objects(lab: Lab) -> list[dict[str, Any]]:
    pods, eps = [], []
    for p in lab.pods:
        pods.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.name, "namespace": NS, "labels": {"app": "web"}, "uid": f"uid-{p.name}"},
            "spec": {"nodeName": NODE, "containers": [{"name": "web", "image": "web:1", "ports": [
                {"containerPort": lab.port, "protocol": "TCP"}, {"containerPort": lab.port, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "podIP": p.ip, "podIPs": [{"ip": p.ip}], "hostIP": NODE_IP,
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                              "state": {"running": {}}}]}})
        eps.append({"addresses": [p.ip], "nodeName": NODE, "conditions": {"ready": True, "serving": True,
                                                                          "terminating": False},
                    "targetRef": {"kind": "Pod", "name": p.name, "namespace": NS}})

    def sl(name: str, svc: str, ports: list[tuple[str, str]]) -> dict[str, Any]:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": NS, "labels": {
                    "kubernetes.io/service-name": svc,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                "addressType": "IPv4", "endpoints": eps,
                "ports": [{"name": n, "port": lab.port, "protocol": pr} for n, pr in ports]}

    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS, "uid": "u-web"},
         "spec": {"type": "LoadBalancer", "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP], "ipFamilies": ["IPv4"],
                  "selector": {"app": "web"}, "externalIPs": [EXT_IP],
                  "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": lab.port,
                             "nodePort": NODE_PORT}]},
         "status": {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns", "namespace": NS, "uid": "u-dns"},
         "spec": {"type": "ClusterIP", "clusterIP": DNS_VIP, "clusterIPs": [DNS_VIP], "ipFamilies": ["IPv4"],
                  "selector": {"app": "web"},
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": lab.port},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": lab.port}]}},
        sl("web-1", "web", [("http", "TCP")]),
        sl("dns-1", "dns", [("dns", "UDP"), ("dns-tcp", "TCP")]),
        *pods,
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
         "spec": {"podCIDR": f"{lab.subnet}.0/24"},
         "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP},
                                  {"type": "ExternalIP", "address": NODE_IP2}],
                    "conditions": [{"type": "Ready", "status": "True"}]}},
    ]


def iptables_rules(lab: Lab) -> str:
    eps = [GenEndpoint(p.ip) for p in lab.pods]
    return iptables_save(GenCluster(services=[
        GenService(NS, "web", WEB_VIP, [GenPort("http", 80, lab.port, node_port=NODE_PORT)], eps,
                   external_ips=[EXT_IP], lb_ips=[LB_IP]),
        GenService(NS, "dns", DNS_VIP, [GenPort("dns", 53, lab.port, "UDP"), GenPort("dns-tcp", 53, lab.port)], eps),
    ], cluster_cidr=f"{lab.subnet}.0/24"))


def nft_rules(lab: Lab) -> str:
    eps = [(p.ip, lab.port) for p in lab.pods]
    return nft_script([
        NftService(NS, "web", "http", WEB_VIP, 80, eps, node_port=NODE_PORT, external_ips=[EXT_IP], lb_ips=[LB_IP]),
        NftService(NS, "dns", "dns", DNS_VIP, 53, eps, protocol="UDP"),
        NftService(NS, "dns", "dns-tcp", DNS_VIP, 53, eps),
    ], layout="B", pod_cidr=f"{lab.subnet}.0/24", service_cidr="198.19.0.0/16")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns("nft")
    with Lab(prefix="svt-ways", n_pods=3, udp=True) as lab_:
        lab_.add_node_address(NODE_IP2)
        lab_.add_client("cl0")  # 198.18.2.2, routed through the node at 198.18.2.1
        yield lab_


@pytest.fixture(params=["iptables", "nftables"])
def world(request: pytest.FixtureRequest, lab: Lab, apiserver: Any) -> Iterator[dict[str, Any]]:
    mode = str(request.param)
    lab.node_exec(["iptables", "-t", "nat", "-F"], check=False)
    lab.node_exec(["iptables", "-t", "filter", "-F"], check=False)
    lab.node_exec(["nft", "flush", "ruleset"], check=False)
    if mode == "iptables":
        # kube-proxy sets route_localnet for localhost NodePorts (a per-namespace sysctl, inside the node only)
        lab.node_exec(["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"])
        lab.iptables_restore(iptables_rules(lab))
    else:
        lab.node_exec(["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=0"])
        lab.nft_load(nft_rules(lab))
    lab.conntrack_flush()
    yield {"mode": mode, "srv": apiserver(cluster_objects(lab))}


def trace(run_cli: RunCli, world: dict[str, Any], lab: Lab, target: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(["trace", target, "--kubeconfig", str(world["srv"].kubeconfig), "--netns", lab.node,
                              "--mode", world["mode"], "-o", "json", *extra])
    assert code in (0, 1), err
    doc: dict[str, Any] = json.loads(out)
    return code, doc


@pytest.mark.parametrize(("address", "port", "kind"), [
    (NODE_IP, NODE_PORT, "NodePort"), (NODE_IP2, NODE_PORT, "NodePort"), (EXT_IP, 80, "ExternalIP"),
    (LB_IP, 80, "LoadBalancer"), (WEB_VIP, 80, "ClusterIP")])
def test_each_way_in_lands_where_the_trace_says(lab: Lab, world: dict[str, Any], run_cli: RunCli, address: str,
                                               port: int, kind: str) -> None:
    code, doc = trace(run_cli, world, lab, f"{address}:{port}")
    assert code == 0, [f["code"] for f in doc["findings"]]
    assert doc["service"]["name"] == "web"
    (pt,) = doc["ports"]
    assert pt["wayIn"]["kind"] == kind
    predicted = {b["pod"] for b in pt["backends"]}
    assert predicted == {f"{NS}/{p.name}" for p in lab.pods}
    # real packets from the client outside the node, to that very address
    answers = lab.http_get_many(address, port, N, client="cl0")
    assert {f"{NS}/{a}" for a in answers} == predicted, Counter(answers)


def test_localhost_nodeport_as_the_mode_allows(lab: Lab, world: dict[str, Any], run_cli: RunCli) -> None:
    code, doc = trace(run_cli, world, lab, f"127.0.0.1:{NODE_PORT}")
    answers = lab.http_get_many("127.0.0.1", NODE_PORT, 9, timeout=1.5)
    if world["mode"] == "iptables":
        assert code == 0
        assert {b["pod"] for b in doc["ports"][0]["backends"]} == {f"{NS}/{p.name}" for p in lab.pods}
        assert set(answers) <= {p.name for p in lab.pods} and answers, Counter(answers)
    else:
        assert code == 1 and [f["code"] for f in doc["findings"]] == ["NodePortNotOnLocalhost"]
        assert not set(answers) & {p.name for p in lab.pods}, Counter(answers)


def test_udp_and_tcp_of_one_port_are_traced_apart(lab: Lab, world: dict[str, Any], run_cli: RunCli) -> None:
    lab.conntrack_flush()
    udp = lab.udp_ask_many(DNS_VIP, 53, N)
    assert set(udp) == {p.name for p in lab.pods}, Counter(udp)
    code, doc = trace(run_cli, world, lab, f"{DNS_VIP}:53")
    assert code == 0, [f["code"] for f in doc["findings"]]
    by_proto = {p["protocol"]: p for p in doc["ports"]}
    assert set(by_proto) == {"UDP", "TCP"}
    for p in by_proto.values():
        assert {b["pod"] for b in p["backends"]} == {f"{NS}/{x.name}" for x in lab.pods}
    # the UDP flows (no state column in conntrack) count for the UDP entry only, each on the pod that answered
    observed = {b["pod"].split("/")[1]: b.get("observed", 0) for b in by_proto["UDP"]["backends"]}
    assert observed == dict(Counter(udp))
    assert all(not b.get("observed") for b in by_proto["TCP"]["backends"])
    code, doc = trace(run_cli, world, lab, f"{DNS_VIP}:53/udp")
    assert [p["protocol"] for p in doc["ports"]] == ["UDP"]


# ------------------------------------------------------------------ from where: ETP Local and source ranges

ALLOWED = "198.18.2.0/30"  # cl0 (198.18.2.2); cl1 (198.18.2.6) is outside


def local_policy_objects(lab: Lab) -> list[dict[str, Any]]:
    """web with externalTrafficPolicy Local and loadBalancerSourceRanges; pod2 runs on node2 in the API (the
    lab's bridge still reaches it, as a remote node's Pod would be reached through the network)."""
    objs = cluster_objects(lab)
    remote = lab.pods[2]
    for o in objs:
        if o["kind"] == "Service" and o["metadata"]["name"] == "web":
            o["spec"].update(externalTrafficPolicy="Local", loadBalancerSourceRanges=[ALLOWED])
        if o["kind"] == "Pod" and o["metadata"]["name"] == remote.name:
            o["spec"]["nodeName"] = "node2"
        if o["kind"] == "EndpointSlice":
            for e in o["endpoints"]:
                if e["addresses"] == [remote.ip]:
                    e["nodeName"] = "node2"
    objs.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node2"},
                 "status": {"addresses": [{"type": "InternalIP", "address": "198.18.9.1"}],
                            "conditions": [{"type": "Ready", "status": "True"}]}})
    return objs


def load_local_policy_rules(lab: Lab, mode: str) -> None:
    lab.node_exec(["iptables", "-t", "nat", "-F"], check=False)
    lab.node_exec(["iptables", "-t", "filter", "-F"], check=False)
    lab.node_exec(["nft", "flush", "ruleset"], check=False)
    local, remote = lab.pods[:2], lab.pods[2]
    if mode == "iptables":
        eps = [GenEndpoint(p.ip, local=p is not remote) for p in lab.pods]
        lab.iptables_restore(iptables_save(GenCluster(services=[
            GenService(NS, "web", WEB_VIP, [GenPort("http", 80, lab.port, node_port=NODE_PORT)], eps,
                       lb_ips=[LB_IP], source_ranges=[ALLOWED], etp_local=True)],
            cluster_cidr=f"{lab.subnet}.0/24")))
    else:
        lab.nft_load(nft_script([NftService(
            NS, "web", "http", WEB_VIP, 80, [(p.ip, lab.port) for p in lab.pods], node_port=NODE_PORT,
            lb_ips=[LB_IP], source_ranges=[ALLOWED], etp_local=True,
            local_endpoints=[(p.ip, lab.port) for p in local])],
            layout="B", pod_cidr=f"{lab.subnet}.0/24", service_cidr="198.19.0.0/16"))
    lab.conntrack_flush()


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_etp_local_and_source_ranges_per_source(lab: Lab, apiserver: Any, run_cli: RunCli, mode: str) -> None:
    if "cl1" not in lab.clients:
        lab.add_client("cl1")  # 198.18.2.6: outside loadBalancerSourceRanges
    load_local_policy_rules(lab, mode)
    world = {"mode": mode, "srv": apiserver(local_policy_objects(lab))}
    local = {f"{NS}/{p.name}" for p in lab.pods[:2]}
    every = {f"{NS}/{p.name}" for p in lab.pods}

    def backends(doc: dict[str, Any]) -> set[str]:
        return {b["pod"] for b in doc["ports"][0]["backends"]}

    # a client outside the node: this node's endpoints only, no SNAT
    code, doc = trace(run_cli, world, lab, f"{NODE_IP}:{NODE_PORT}", "--from", lab.clients["cl0"])
    assert code == 0, [f["code"] for f in doc["findings"]]
    assert backends(doc) == local
    answers = lab.http_get_many(NODE_IP, NODE_PORT, N, client="cl0")
    assert {f"{NS}/{a}" for a in answers} == local, Counter(answers)
    # the node itself: short-circuited to every endpoint, masqueraded
    code, doc = trace(run_cli, world, lab, f"{NODE_IP}:{NODE_PORT}", "--from", f"node/{NODE}")
    assert code == 0 and backends(doc) == every
    answers = lab.http_get_many(NODE_IP, NODE_PORT, N)
    assert {f"{NS}/{a}" for a in answers} == every, Counter(answers)
    # the load-balancer IP: cl0 is in the source ranges, cl1 is not
    # (the LB IP belongs to no node: --node names whose rules --netns reads)
    code, doc = trace(run_cli, world, lab, f"{LB_IP}:80", "--from", lab.clients["cl0"], "--node", NODE)
    assert code == 0, [(f["code"], f["message"]) for f in doc["findings"]]
    assert backends(doc) == local
    answers = lab.http_get_many(LB_IP, 80, N, client="cl0")
    assert {f"{NS}/{a}" for a in answers} == local, Counter(answers)
    code, doc = trace(run_cli, world, lab, f"{LB_IP}:80", "--from", lab.clients["cl1"], "--node", NODE)
    assert code == 1 and [f["code"] for f in doc["findings"]] == ["SourceNotAllowed"]
    answers = lab.http_get_many(LB_IP, 80, 3, client="cl1", timeout=1.5)
    assert not set(answers) & {p.name for p in lab.pods}, Counter(answers)


def test_node_address_only_the_node_knows(lab: Lab, world: dict[str, Any], run_cli: RunCli) -> None:
    """An address on the node that its Node object does not list still takes NodePorts: with --netns the trace
    reads the node's own addresses (`ip -o addr show`, read-only) and finds the Service through them."""
    extra = "198.18.3.2"
    if extra not in lab.node_exec(["ip", "-o", "addr", "show"]).stdout:
        lab.add_node_address(extra)
    code, doc = trace(run_cli, world, lab, f"{extra}:{NODE_PORT}")
    assert code == 0, [f["code"] for f in doc["findings"]]
    (pt,) = doc["ports"]
    assert pt["wayIn"]["kind"] == "NodePort" and f"netns {lab.node}" in pt["wayIn"]["label"]
    predicted = {b["pod"] for b in pt["backends"]}
    answers = lab.http_get_many(extra, NODE_PORT, N, client="cl0")
    assert {f"{NS}/{a}" for a in answers} == predicted, Counter(answers)

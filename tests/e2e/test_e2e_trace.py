"""`svcctl trace` on real parts only: a node in network namespaces with kube-proxy-style rules (iptables and
nftables), Pods answering HTTP, the test API server describing the same cluster, and a real dnsmasq.

svcctl must name the Pods that really answer, with shares the kernel really gives (`--probe`, chi-square), and
each drift code must appear when the test breaks the matching thing: a backend missing from the rules, a stale
endpoint, a Pod unready in the API only, DNS stopped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dnsserver import DnsmasqServer, zone_from_source  # noqa: E402
from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, iptables_save  # noqa: E402
from gen_dumps_ipvs_nft import GenService as NftService  # noqa: E402
from gen_dumps_ipvs_nft import nft_script  # noqa: E402
from netns import Lab, require_netns  # noqa: E402
from test_iptables_netns import chi_square_p  # noqa: E402

from svcctl.sources.snapshot import SnapshotSource  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.dnsserver]

VIP = "198.19.0.20"
NS = "shop"
N_PROBES = 240
P_MIN = 0.001
RunCli = Callable[..., tuple[int, str, str]]




def cluster_objects(lab: Lab, *, unready: set[str] = frozenset(), slice_unready: set[str] = frozenset(),
                    ) -> list[dict[str, Any]]:
    """The API's view of the lab: Service web (VIP:80 → 8080), one Pod per lab pod, its slice, the node."""
    pods: list[dict[str, Any]] = []
    eps: list[dict[str, Any]] = []
    for p in lab.pods:
        ready = p.name not in unready
        pods.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.name, "namespace": NS, "labels": {"app": "web"}, "uid": f"uid-{p.name}"},
            "spec": {"nodeName": "node1", "containers": [{"name": "web", "image": "web:1", "ports": [
                {"containerPort": lab.port, "protocol": "TCP"}], "readinessProbe": {"httpGet": {"port": lab.port}}}]},
            "status": {"phase": "Running", "podIP": p.ip, "podIPs": [{"ip": p.ip}], "hostIP": "198.18.1.1",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                      {"type": "ContainersReady", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": "web", "ready": ready, "restartCount": 0, "image": "web:1",
                                              "imageID": "", "state": {"running": {}}}]},
        })
        sready = ready and p.name not in slice_unready
        eps.append({"addresses": [p.ip], "nodeName": "node1",
                    "conditions": {"ready": sready, "serving": sready, "terminating": False},
                    "targetRef": {"kind": "Pod", "name": p.name, "namespace": NS}})
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "web", "namespace": NS, "uid": "uid-svc"},
         "spec": {"type": "ClusterIP", "clusterIP": VIP, "clusterIPs": [VIP], "ipFamilies": ["IPv4"],
                  "selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": lab.port}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kubernetes", "namespace": "default", "uid": "uid-k"},
         "spec": {"type": "ClusterIP", "clusterIP": "198.19.0.1", "clusterIPs": ["198.19.0.1"],
                  "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "web-abcde", "namespace": NS, "labels": {
             "kubernetes.io/service-name": "web",
             "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
         "addressType": "IPv4", "endpoints": eps,
         "ports": [{"name": "http", "port": lab.port, "protocol": "TCP"}]},
        *pods,
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"},
         "spec": {"podCIDR": f"{lab.subnet}.0/24"},
         "status": {"addresses": [{"type": "InternalIP", "address": "198.18.1.1"}],
                    "conditions": [{"type": "Ready", "status": "True"}]}},
    ]


def iptables_rules(lab: Lab, pods: list[str] | None = None) -> str:
    eps = [GenEndpoint(p.ip) for p in lab.pods if pods is None or p.name in pods]
    return iptables_save(GenCluster(services=[GenService(NS, "web", VIP, [GenPort("http", 80, lab.port)], eps)],
                                    cluster_cidr=f"{lab.subnet}.0/24"))


def nft_rules(lab: Lab, layout: str) -> str:
    eps = [(p.ip, lab.port) for p in lab.pods]
    return nft_script([NftService(NS, "web", "http", VIP, 80, eps)], layout=layout,
                      pod_cidr=f"{lab.subnet}.0/24", service_cidr="198.19.0.0/16")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns(what="end-to-end trace tests")
    with Lab(prefix="svt-e2e", n_pods=3) as lab_:
        yield lab_


@pytest.fixture
def world(lab: Lab, apiserver: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """API server + dnsmasq describing the healthy lab; the node's rules are loaded by each test."""
    objs = cluster_objects(lab)
    srv = apiserver(objs)
    snap = tmp_path / "cluster.json"
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    dns = DnsmasqServer(zone_from_source(SnapshotSource(str(snap)))).start()
    try:
        yield {"srv": srv, "dns": dns, "snap": snap}
    finally:
        dns.stop()
        lab.node_exec(["iptables", "-t", "nat", "-F"], check=False)
        lab.node_exec(["nft", "flush", "ruleset"], check=False)


def trace(run_cli: RunCli, world: dict[str, Any], lab: Lab, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(["trace", "web", "-n", NS, "--kubeconfig", str(world["srv"].kubeconfig),
                              "--netns", lab.node, "--dns-server", world["dns"].address, "--dns-timeout", "1",
                              "-o", "json", *extra])
    assert code in (0, 1), err
    doc: dict[str, Any] = json.loads(out)
    return code, doc


def _check_healthy(lab: Lab, code: int, doc: dict[str, Any], mode: str) -> None:
    assert code == 0, [f["code"] for f in doc["findings"]]
    assert doc["node"]["mode"] == mode
    assert doc["verdict"] == "ok", json.dumps([h for h in doc["hops"] + doc["ports"][0]["hops"] if h["verdict"] != "ok"], indent=1)[:3000]
    hops = {h["hop"]: h for h in doc["hops"]}
    assert hops["dns"]["verdict"] == "ok"
    assert doc["dns"]["queries"], "the DNS hop really queried dnsmasq"
    assert VIP in hops["dns"]["summary"]
    (port,) = doc["ports"]
    pods = {p.ip: f"{NS}/{p.name}" for p in lab.pods}
    assert {(b["ip"], b["port"], b["share"], b["pod"]) for b in port["backends"]} == {
        (ip, lab.port, "1/3", pod) for ip, pod in pods.items()}
    # --probe: every answer came from a predicted backend, in shares consistent with 1/3 each
    observed = {b["ip"]: b.get("observed", 0) for b in port["backends"]}
    assert sum(observed.values()) == N_PROBES, observed
    p = chi_square_p(list(observed.values()), [N_PROBES / 3] * 3)
    assert p > P_MIN, f"probe shares {observed}: chi-square p={p:.2g}"
    selected = [h for h in port["hops"] if h["hop"] == "selected"]
    assert any(h["summary"].startswith("probe:") and h["verdict"] == "ok" for h in selected)


def test_iptables_node_trace_matches_reality(lab: Lab, world: dict[str, Any], run_cli: RunCli) -> None:
    lab.iptables_restore(iptables_rules(lab))
    lab.conntrack_flush()
    code, doc = trace(run_cli, world, lab, "--probe", str(N_PROBES))
    _check_healthy(lab, code, doc, "iptables")


@pytest.mark.parametrize("layout", ["A", "B"])
def test_nftables_node_trace_matches_reality(lab: Lab, world: dict[str, Any], run_cli: RunCli, layout: str) -> None:
    lab.node_exec(["iptables", "-t", "nat", "-F"], check=False)
    lab.nft_load(nft_rules(lab, layout))
    lab.conntrack_flush()
    code, doc = trace(run_cli, world, lab, "--probe", str(N_PROBES), "--mode", "nftables")
    _check_healthy(lab, code, doc, "nftables")


def test_backend_missing_from_rules_is_not_programmed(lab: Lab, world: dict[str, Any], run_cli: RunCli) -> None:
    lab.iptables_restore(iptables_rules(lab, pods=[p.name for p in lab.pods[:2]]))
    code, doc = trace(run_cli, world, lab)
    assert code == 1
    missing = [f["pod"] for f in doc["findings"] if f["code"] == "EndpointNotProgrammed"]
    assert missing == [f"{NS}/{lab.pods[2].name}"]


def test_pod_unready_in_api_only_leaves_a_stale_backend(lab: Lab, apiserver: Any, world: dict[str, Any],
                                                        run_cli: RunCli) -> None:
    lab.iptables_restore(iptables_rules(lab))
    gone = lab.pods[1].name
    world["srv"] = apiserver(cluster_objects(lab, unready={gone}))
    code, doc = trace(run_cli, world, lab)
    assert code == 1
    assert [f["pod"] for f in doc["findings"] if f["code"] == "StaleBackend"] == [f"{NS}/{gone}"]
    # and the endpoints analysis says why the Pod is out
    assert any(f["pod"] == f"{NS}/{gone}" and f["code"] in ("NotReady", "ReadinessProbeFailing")
               for f in doc["findings"])


def test_stale_endpoint_in_slice_is_reported(lab: Lab, apiserver: Any, world: dict[str, Any],
                                             run_cli: RunCli) -> None:
    """The slice already dropped a Pod (not ready) but the node still balances to it."""
    lab.iptables_restore(iptables_rules(lab))
    stale = lab.pods[0].name
    world["srv"] = apiserver(cluster_objects(lab, slice_unready={stale}))
    code, doc = trace(run_cli, world, lab)
    assert code == 1
    assert [f["pod"] for f in doc["findings"] if f["code"] == "StaleBackend"] == [f"{NS}/{stale}"]


def test_dns_stopped_breaks_the_dns_hop(lab: Lab, world: dict[str, Any], run_cli: RunCli) -> None:
    lab.iptables_restore(iptables_rules(lab))
    world["dns"].stop()
    code, doc = trace(run_cli, world, lab)
    assert code == 1
    hops = {h["hop"]: h for h in doc["hops"]}
    assert hops["dns"]["verdict"] == "broken"
    codes = {f["code"] for f in doc["findings"]}
    assert codes & {"DNSTimeout", "DNSServerUnreachable"}
    # the rest of the path is still traced and healthy
    assert {h["hop"]: h["verdict"] for h in doc["ports"][0]["hops"]}["drift"] == "ok"


def test_tcp_probe_is_attributed_through_conntrack(lab: Lab, world: dict[str, Any], run_cli: RunCli) -> None:
    """`--probe-tcp`: bare connects carry no Pod name, so each one is matched to its backend by its source
    port in the namespace's conntrack table."""
    lab.iptables_restore(iptables_rules(lab))
    lab.conntrack_flush()
    code, doc = trace(run_cli, world, lab, "--probe", "60", "--probe-tcp")
    assert code == 0
    observed = {b["ip"]: b.get("observed", 0) for b in doc["ports"][0]["backends"]}
    assert sum(observed.values()) == 60 and set(observed) == {p.ip for p in lab.pods}

"""Every way into a Service, every protocol: `svcctl trace NODE_IP:NODE_PORT`, `127.0.0.1:NODE_PORT`,
externalIPs, load-balancer IPs, the health check, and UDP/TCP ports of one number traced apart.

The snapshots here are a cluster (Services, slices, Pods, Nodes) with the node's rules in the exact format
kube-proxy writes (tests/support/gen_dumps.py for iptables-save, tests/support/gen_dumps_ipvs_nft.py for nft), so a trace of a
healthy Service must come out healthy whichever way it is entered.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, iptables_save  # noqa: E402
from gen_dumps_ipvs_nft import GenService as NftService  # noqa: E402
from gen_dumps_ipvs_nft import nft_script  # noqa: E402

from svcctl.analysis.trace import parse_target  # noqa: E402
from svcctl.analysis.ways import find_ways, localhost_nodeport  # noqa: E402
from svcctl.model import Node, Service  # noqa: E402

RunCli = Callable[..., tuple[int, str, str]]
NODE, NODE_IP, NODE_EXT = "worker-1", "10.0.0.11", "203.0.113.11"
WEB_VIP, DNS_VIP, NODE_PORT = "10.96.5.5", "10.96.0.10", 31443
EXT_IP, LB_IP = "192.0.2.50", "198.51.100.7"
WEB_EPS = ["10.244.1.5", "10.244.1.6"]
DNS_EP = "10.244.1.9"


def _pod(name: str, ns: str, ip: str, app: str, ports: list[tuple[int, str]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": app}, "uid": f"uid-{name}"},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "i", "ports": [
                {"containerPort": p, "protocol": pr} for p, pr in ports]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                              "state": {"running": {}}}]}}


def _slice(name: str, ns: str, svc: str, ips: list[str], ports: list[tuple[str, int, str]],
           pods: list[str]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "labels": {
                "kubernetes.io/service-name": svc,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "nodeName": NODE, "targetRef": {"kind": "Pod", "name": p,
                                                                             "namespace": ns},
                           "conditions": {"ready": True, "serving": True, "terminating": False}}
                          for ip, p in zip(ips, pods, strict=True)],
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]}


def cluster(*, lb_mode: str = "") -> list[dict[str, Any]]:
    """shop/web: NodePort 31443 (port 443 → 8443), an externalIP and an LB IP; kube-system/kube-dns: 53 UDP+TCP."""
    ingress: dict[str, Any] = {"ip": LB_IP, **({"ipMode": lb_mode} if lb_mode else {})}
    web = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
           "spec": {"type": "LoadBalancer", "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP], "ipFamilies": ["IPv4"],
                    "selector": {"app": "web"}, "externalIPs": [EXT_IP],
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443,
                               "nodePort": NODE_PORT}]},
           "status": {"loadBalancer": {"ingress": [ingress]}}}
    dns = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "kube-dns", "namespace": "kube-system", "uid": "u2"},
           "spec": {"type": "ClusterIP", "clusterIP": DNS_VIP, "clusterIPs": [DNS_VIP], "ipFamilies": ["IPv4"],
                    "selector": {"app": "dns"},
                    "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                              {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "labels": {
        "topology.kubernetes.io/zone": "a"}},
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP},
                                 {"type": "ExternalIP", "address": NODE_EXT}],
                   "conditions": [{"type": "Ready", "status": "True"}]}}
    return [web, dns, node,
            _slice("web-1", "shop", "web", WEB_EPS, [("https", 8443, "TCP")], ["web-a", "web-b"]),
            _slice("dns-1", "kube-system", "kube-dns", [DNS_EP], [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
                   ["coredns-a"]),
            _pod("web-a", "shop", WEB_EPS[0], "web", [(8443, "TCP")]),
            _pod("web-b", "shop", WEB_EPS[1], "web", [(8443, "TCP")]),
            _pod("coredns-a", "kube-system", DNS_EP, "dns", [(53, "UDP"), (53, "TCP")])]


def iptables_dump(lb: bool = True) -> str:
    eps = [GenEndpoint(ip) for ip in WEB_EPS]
    return iptables_save(GenCluster(services=[
        GenService("shop", "web", WEB_VIP, [GenPort("https", 443, 8443, node_port=NODE_PORT)], eps,
                   external_ips=[EXT_IP], lb_ips=[LB_IP] if lb else []),
        GenService("kube-system", "kube-dns", DNS_VIP, [GenPort("dns", 53, 53, "UDP"),
                                                        GenPort("dns-tcp", 53, 53, "TCP")], [GenEndpoint(DNS_EP)]),
    ], cluster_cidr="10.244.0.0/16"))


def nft_dump() -> str:
    web = [(ip, 8443) for ip in WEB_EPS]
    return nft_script([
        NftService("shop", "web", "https", WEB_VIP, 443, web, node_port=NODE_PORT, external_ips=[EXT_IP],
                   lb_ips=[LB_IP]),
        NftService("kube-system", "kube-dns", "dns", DNS_VIP, 53, [(DNS_EP, 53)], protocol="UDP"),
        NftService("kube-system", "kube-dns", "dns-tcp", DNS_VIP, 53, [(DNS_EP, 53)]),
    ], service_cidr="10.96.0.0/12")


UDP_FLOW = (f"udp      17 28 src=10.244.1.20 dst={DNS_VIP} sport=40000 dport=53 src={DNS_EP} dst=10.244.1.20 "
            "sport=53 dport=40000 mark=0 use=1\n"
            f"tcp      6 86390 ESTABLISHED src=10.244.1.20 dst={DNS_VIP} sport=40001 dport=53 src={DNS_EP} "
            "dst=10.244.1.20 sport=53 dport=40001 [ASSURED] mark=0 use=1\n")


def snapshot(tmp_path: Path, *, mode: str = "iptables", lb_mode: str = "", conntrack: str | None = None) -> Path:
    root = tmp_path / f"snap-{mode}-{lb_mode or 'vip'}"
    (root / "nodes" / NODE).mkdir(parents=True)
    (root / "cluster.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": cluster(
        lb_mode=lb_mode)}))
    if mode == "iptables":
        (root / "nodes" / NODE / "iptables-save.txt").write_text(iptables_dump(lb=lb_mode != "Proxy"))
    else:
        (root / "nodes" / NODE / "nft.txt").write_text(nft_dump())
    if conntrack is not None:
        (root / "nodes" / NODE / "conntrack.txt").write_text(conntrack)
    return root


def trace(run_cli: RunCli, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(["trace", *args, "--no-dns", "-o", "json"])
    assert code in (0, 1), err
    doc: dict[str, Any] = json.loads(out)
    return code, doc


def _codes(doc: dict[str, Any]) -> list[str]:
    return [f["code"] for f in doc["findings"] if f["severity"] != "info"]


# ------------------------------------------------------------------ the reported false errors


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
@pytest.mark.parametrize("addr", [NODE_IP, NODE_EXT])
def test_node_ip_nodeport_finds_the_service(run_cli: RunCli, tmp_path: Path, mode: str, addr: str) -> None:
    code, doc = trace(run_cli, f"{addr}:{NODE_PORT}", "--snapshot", str(snapshot(tmp_path, mode=mode)))
    assert code == 0, _codes(doc)
    assert _codes(doc) == []
    assert doc["service"]["name"] == "web"
    (port,) = doc["ports"]
    assert port["wayIn"]["kind"] == "NodePort"
    assert port["wayIn"]["node"] == NODE
    assert f"NodePort {NODE_PORT}/TCP on {NODE}'s" in port["wayIn"]["label"]
    assert {(b["ip"], b["pod"]) for b in port["backends"]} == {(WEB_EPS[0], "shop/web-a"),
                                                               (WEB_EPS[1], "shop/web-b")}
    hops = {h["hop"]: h for h in port["hops"]}
    assert hops["node-rules"]["verdict"] == "ok" and hops["drift"]["verdict"] == "ok"
    assert hops["node-rules"]["summary"].startswith(f"NodePort {NODE_PORT}/TCP")


def test_localhost_nodeport_iptables_is_accepted(run_cli: RunCli, tmp_path: Path) -> None:
    code, doc = trace(run_cli, f"127.0.0.1:{NODE_PORT}", "--snapshot", str(snapshot(tmp_path)))
    assert code == 0, _codes(doc)
    (port,) = doc["ports"]
    assert port["wayIn"]["kind"] == "NodePort"
    node_rules = next(h for h in port["hops"] if h["hop"] == "node-rules")
    assert any("route_localnet" in d for d in node_rules["details"])
    assert len(port["backends"]) == 2


def test_localhost_nodeport_nftables_is_not(run_cli: RunCli, tmp_path: Path) -> None:
    code, doc = trace(run_cli, f"127.0.0.1:{NODE_PORT}", "--snapshot", str(snapshot(tmp_path, mode="nftables")))
    assert code == 1
    assert _codes(doc) == ["NodePortNotOnLocalhost"]
    (port,) = doc["ports"]
    assert "nftables mode does not accept NodePorts on localhost" in port["hops"][0]["details"][0]


def test_iptables_localhost_nodeports_off_is_read_from_the_jump() -> None:
    text = iptables_dump().replace("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
                                   "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS")
    from svcctl.dataplane.iptables import parse_iptables_save

    rules = parse_iptables_save(text, "t")
    assert rules.localhost_nodeports is False
    assert localhost_nodeport("iptables", "127.0.0.1", rules.localhost_nodeports)[0] is False
    assert parse_iptables_save(iptables_dump(), "t").localhost_nodeports is True
    assert localhost_nodeport("iptables", "::1")[0] is False
    assert localhost_nodeport("ipvs", "127.0.0.1")[0] is False


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
@pytest.mark.parametrize("addr,kind", [(EXT_IP, "ExternalIP"), (LB_IP, "LoadBalancer")])
def test_external_and_lb_ip(run_cli: RunCli, tmp_path: Path, mode: str, addr: str, kind: str) -> None:
    code, doc = trace(run_cli, f"{addr}:443", "--snapshot", str(snapshot(tmp_path, mode=mode)))
    assert code == 0, _codes(doc)
    (port,) = doc["ports"]
    assert port["wayIn"]["kind"] == kind
    assert len(port["backends"]) == 2


def test_lb_ip_mode_proxy_is_not_a_missing_rule(run_cli: RunCli, tmp_path: Path) -> None:
    code, doc = trace(run_cli, f"{LB_IP}:443", "--snapshot", str(snapshot(tmp_path, lb_mode="Proxy")))
    assert code == 0, _codes(doc)
    (port,) = doc["ports"]
    assert port["wayIn"]["kind"] == "LoadBalancer"
    node_rules = next(h for h in port["hops"] if h["hop"] == "node-rules")
    assert node_rules["verdict"] == "skipped" and "load balancer" in node_rules["summary"]
    assert "ServiceNotProgrammed" not in _codes(doc)


def test_unknown_node_port_is_service_not_found(run_cli: RunCli, tmp_path: Path) -> None:
    code, doc = trace(run_cli, f"{NODE_IP}:31999", "--snapshot", str(snapshot(tmp_path)))
    assert code == 1
    assert "ServiceNotFound" in _codes(doc)
    assert "node address" in doc["findings"][0]["message"]


# ------------------------------------------------------------------ protocols


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_one_port_number_two_protocols_are_two_entries(run_cli: RunCli, tmp_path: Path, mode: str) -> None:
    code, doc = trace(run_cli, f"{DNS_VIP}:53", "--snapshot", str(snapshot(tmp_path, mode=mode)))
    assert code == 0, _codes(doc)
    assert sorted((p["protocol"], p["name"]) for p in doc["ports"]) == [("TCP", "dns-tcp"), ("UDP", "dns")]
    for p in doc["ports"]:
        assert [(b["ip"], b["pod"]) for b in p["backends"]] == [(DNS_EP, "kube-system/coredns-a")]
        rules = next(h for h in p["hops"] if h["hop"] == "node-rules")
        assert f"/{p['protocol']}" in rules["summary"] and "1 backend" in rules["summary"]


@pytest.mark.parametrize("target", [f"{DNS_VIP}:53/udp", "udp://kube-dns.kube-system:53",
                                    "kube-dns.kube-system:53/udp", "kube-system/kube-dns:53/UDP"])
def test_protocol_in_the_target(run_cli: RunCli, tmp_path: Path, target: str) -> None:
    code, doc = trace(run_cli, target, "--snapshot", str(snapshot(tmp_path)))
    assert code == 0, _codes(doc)
    assert [p["protocol"] for p in doc["ports"]] == ["UDP"]


def test_protocol_flag(run_cli: RunCli, tmp_path: Path) -> None:
    snap = str(snapshot(tmp_path))
    code, doc = trace(run_cli, "kube-system/kube-dns", "--protocol", "udp", "--snapshot", snap)
    assert code == 0
    assert [p["protocol"] for p in doc["ports"]] == ["UDP"]
    code, out, err = run_cli(["trace", f"{DNS_VIP}:53/tcp", "--protocol", "udp", "--snapshot", snap])
    assert code == 2 and "--protocol" in err and "Traceback" not in err


def test_udp_conntrack_flow_is_matched_by_protocol(run_cli: RunCli, tmp_path: Path) -> None:
    code, doc = trace(run_cli, f"{DNS_VIP}:53", "--snapshot", str(snapshot(tmp_path, conntrack=UDP_FLOW)))
    assert code == 0
    by_proto = {p["protocol"]: p for p in doc["ports"]}
    for proto in ("UDP", "TCP"):
        sel = next(h for h in by_proto[proto]["hops"] if h["hop"] == "selected")
        assert sel["summary"] == "conntrack: 1 live flow(s) to this port", (proto, sel)
        assert by_proto[proto]["backends"][0]["observed"] == 1


def test_node_only_trace_keeps_protocols_apart(run_cli: RunCli, tmp_path: Path) -> None:
    f = tmp_path / "ipt.txt"
    f.write_text(iptables_dump())
    code, doc = trace(run_cli, f"{DNS_VIP}:53", "--iptables-save", str(f))
    assert code == 0
    assert sorted(p["protocol"] for p in doc["ports"]) == ["TCP", "UDP"]
    for p in doc["ports"]:
        rules = next(h for h in p["hops"] if h["hop"] == "node-rules")
        assert not any(d.startswith("entry:") and f"/{p['protocol']}" not in d for d in rules["details"])
    code, doc = trace(run_cli, f"{DNS_VIP}:53/udp", "--iptables-save", str(f))
    assert [p["protocol"] for p in doc["ports"]] == ["UDP"]


# ------------------------------------------------------------------ pure parts


def test_parse_target_protocols() -> None:
    assert parse_target(f"{DNS_VIP}:53/udp").protocol == "UDP"
    assert parse_target("[2001:db8::a]:53/sctp").protocol == "SCTP"
    assert parse_target("udp://kube-dns.kube-system:53").protocol == "UDP"
    assert parse_target("http://web.shop/").protocol == "TCP"
    t = parse_target("shop/udp")  # a Service named udp, not a protocol
    assert (t.namespace, t.name, t.protocol) == ("shop", "udp", None)
    assert parse_target(f"{DNS_VIP}:53").protocol is None


def test_find_ways_health_check_and_families() -> None:
    objs = cluster()
    web = Service.from_dict(objs[0])
    web.health_check_node_port = 32000
    assert find_ways([web], NODE_IP, 32000, None, nodes=[Node.from_dict(objs[2])]) == []  # ETP Cluster: none
    web.external_traffic_policy = "Local"
    web.cluster_ips = [WEB_VIP, "2001:db8::5"]
    node = Node.from_dict(objs[2])
    (hc,) = find_ways([web], NODE_IP, 32000, None, nodes=[node])
    assert hc.kind == "HealthCheckNodePort" and hc.port is None and hc.node == NODE
    (v6,) = find_ways([web], "2001:db8::5", 443, None)
    assert v6.kind == "ClusterIP" and "IPv6" in v6.label
    assert find_ways([web], NODE_IP, NODE_PORT, "UDP", nodes=[node]) == []
    # the node's own addresses (not in the Node object) take NodePorts too
    (own,) = find_ways([web], "10.0.9.9", NODE_PORT, None, nodes=[node], own_addresses={"10.0.9.9": "netns n"},
                       own_node=NODE)
    assert own.kind == "NodePort" and "netns n" in own.label


def test_health_check_way_traced(run_cli: RunCli, tmp_path: Path) -> None:
    root = snapshot(tmp_path)
    doc = json.loads((root / "cluster.json").read_text())
    doc["items"][0]["spec"].update(externalTrafficPolicy="Local", healthCheckNodePort=32000)
    (root / "cluster.json").write_text(json.dumps(doc))
    code, out = trace(run_cli, f"{NODE_IP}:32000", "--snapshot", str(root))
    (port,) = out["ports"]
    assert port["wayIn"]["kind"] == "HealthCheckNodePort"
    assert "answers 200 (2 local ready endpoint(s)" in port["hops"][0]["summary"]


# ------------------------------------------------------------------ topology: the endpoints THIS node uses


def _hinted_snapshot(tmp_path: Path, programmed: list[str]) -> Path:
    """shop/web with 4 endpoints hinted for zones a and b (trafficDistribution PreferSameZone); worker-1 is in
    zone a; the node's rules program `programmed`."""
    root = snapshot(tmp_path)
    doc = json.loads((root / "cluster.json").read_text())
    ips = {"10.244.1.5": "a", "10.244.1.6": "a", "10.244.2.7": "b", "10.244.2.8": "b"}
    items = [o for o in doc["items"] if not (o["kind"] == "EndpointSlice" and o["metadata"]["name"] == "web-1")]
    items[0]["spec"]["trafficDistribution"] = "PreferSameZone"
    sl = _slice("web-1", "shop", "web", list(ips), [("https", 8443, "TCP")], ["web-a", "web-b", "web-c", "web-d"])
    for e in sl["endpoints"]:
        z = ips[e["addresses"][0]]
        e["zone"], e["hints"] = z, {"forZones": [{"name": z}]}
        e["nodeName"] = NODE if z == "a" else "worker-2"
    items.append(sl)
    for n, ip in (("web-c", "10.244.2.7"), ("web-d", "10.244.2.8")):
        p = _pod(n, "shop", ip, "web", [(8443, "TCP")])
        p["spec"]["nodeName"] = "worker-2"
        items.append(p)
    items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-2", "labels": {
        "topology.kubernetes.io/zone": "b"}}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.12"}],
                                                        "conditions": [{"type": "Ready", "status": "True"}]}})
    doc["items"] = items
    (root / "cluster.json").write_text(json.dumps(doc))
    eps = [GenEndpoint(ip) for ip in programmed]
    (root / "nodes" / NODE / "iptables-save.txt").write_text(iptables_save(GenCluster(services=[
        GenService("shop", "web", WEB_VIP, [GenPort("https", 443, 8443, node_port=NODE_PORT)], eps,
                   external_ips=[EXT_IP], lb_ips=[LB_IP])], cluster_cidr="10.244.0.0/16")))
    return root


def test_hints_narrow_the_node_endpoints(run_cli: RunCli, tmp_path: Path) -> None:
    root = _hinted_snapshot(tmp_path, ["10.244.1.5", "10.244.1.6"])  # what kube-proxy in zone a writes
    code, doc = trace(run_cli, "shop/web", "--snapshot", str(root))
    assert code == 0, _codes(doc)
    (port,) = doc["ports"]
    hops = {h["hop"]: h for h in port["hops"]}
    assert hops["drift"]["verdict"] == "ok"
    assert f"{NODE} uses 2 of 4 endpoint(s): hints for zone a" in hops["endpoints"]["summary"]
    assert hops["endpoints"]["data"]["selection"]["topologyMode"] == "PreferSameZone"


def test_node_sending_outside_its_zone_is_drift(run_cli: RunCli, tmp_path: Path) -> None:
    root = _hinted_snapshot(tmp_path, ["10.244.1.5", "10.244.1.6", "10.244.2.7", "10.244.2.8"])
    code, doc = trace(run_cli, "shop/web", "--snapshot", str(root))
    assert code == 1
    stale = [f for f in doc["findings"] if f["code"] == "StaleBackend"]
    assert sorted(f["pod"] for f in stale) == ["shop/web-c", "shop/web-d"]
    assert all("topology hints leave it out" in f["message"] for f in stale)


# ------------------------------------------------------------------ from where (--from)


def _etp_local_snapshot(tmp_path: Path, *, local_ips: list[str], remote_ips: list[str],
                        ranges: list[str] | None = None, hc: int | None = None) -> Path:
    """shop/web with externalTrafficPolicy Local: endpoints on worker-1 (`local_ips`) and worker-2. With a
    health check (`hc`) the Service has no externalIP: only the load balancer brings traffic."""
    root = snapshot(tmp_path)
    doc = json.loads((root / "cluster.json").read_text())
    items = [o for o in doc["items"] if not (o["kind"] in ("EndpointSlice", "Pod") and
                                              o["metadata"]["namespace"] == "shop")]
    web = items[0]
    web["spec"]["externalTrafficPolicy"] = "Local"
    if ranges:
        web["spec"]["loadBalancerSourceRanges"] = ranges
    if hc:
        web["spec"]["healthCheckNodePort"] = hc
        del web["spec"]["externalIPs"]
    items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-2"},
                  "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.12"}],
                             "conditions": [{"type": "Ready", "status": "True"}]}})
    ips = local_ips + remote_ips
    names = [f"web-{i}" for i in range(len(ips))]
    sl = _slice("web-1", "shop", "web", ips, [("https", 8443, "TCP")], names)
    for e in sl["endpoints"]:
        e["nodeName"] = NODE if e["addresses"][0] in local_ips else "worker-2"
    items.append(sl)
    for n, ip in zip(names, ips, strict=True):
        p = _pod(n, "shop", ip, "web", [(8443, "TCP")])
        p["spec"]["nodeName"] = NODE if ip in local_ips else "worker-2"
        items.append(p)
    doc["items"] = items
    (root / "cluster.json").write_text(json.dumps(doc))
    eps = [GenEndpoint(ip, local=ip in local_ips) for ip in ips]
    (root / "nodes" / NODE / "iptables-save.txt").write_text(iptables_save(GenCluster(services=[
        GenService("shop", "web", WEB_VIP, [GenPort("https", 443, 8443, node_port=NODE_PORT)], eps,
                   external_ips=[] if hc else [EXT_IP], lb_ips=[LB_IP], etp_local=True, source_ranges=ranges or [],
                   health_check_node_port=hc)], cluster_cidr="10.244.0.0/16")))
    return root


def _source_hop(doc: dict[str, Any]) -> dict[str, Any]:
    (port,) = doc["ports"]
    hop: dict[str, Any] = next(h for h in port["hops"] if h["hop"] == "source")
    return hop


def test_etp_local_from_outside_uses_local_endpoints(run_cli: RunCli, tmp_path: Path) -> None:
    root = _etp_local_snapshot(tmp_path, local_ips=["10.244.1.5"], remote_ips=["10.244.2.6"])
    code, doc = trace(run_cli, f"{NODE_IP}:{NODE_PORT}", "--snapshot", str(root), "--from", "198.51.100.99")
    assert code == 0, _codes(doc)
    assert [b["ip"] for b in doc["ports"][0]["backends"]] == ["10.244.1.5"]
    hop = _source_hop(doc)
    assert "this node's endpoints" in hop["summary"] and "source address kept" in hop["summary"]
    # from the node itself: masqueraded, to the cluster set
    code, doc = trace(run_cli, f"{NODE_IP}:{NODE_PORT}", "--snapshot", str(root), "--from", f"node/{NODE}")
    assert sorted(b["ip"] for b in doc["ports"][0]["backends"]) == ["10.244.1.5", "10.244.2.6"]
    assert "masqueraded" in _source_hop(doc)["summary"]
    # the default source, a Pod on the node: the cluster set, source address kept
    code, doc = trace(run_cli, f"{NODE_IP}:{NODE_PORT}", "--snapshot", str(root))
    assert sorted(b["ip"] for b in doc["ports"][0]["backends"]) == ["10.244.1.5", "10.244.2.6"]
    assert "source address kept" in _source_hop(doc)["summary"]


def test_etp_local_without_local_endpoints_depends_on_the_source(run_cli: RunCli, tmp_path: Path) -> None:
    root = _etp_local_snapshot(tmp_path, local_ips=[], remote_ips=["10.244.2.6"])
    code, doc = trace(run_cli, f"{NODE_IP}:{NODE_PORT}", "--snapshot", str(root), "--from", "198.51.100.99")
    assert code == 1 and "NoLocalEndpoints" in _codes(doc)
    code, doc = trace(run_cli, f"{NODE_IP}:{NODE_PORT}", "--snapshot", str(root))  # a Pod: short-circuited
    assert code == 0, _codes(doc)
    assert [b["ip"] for b in doc["ports"][0]["backends"]] == ["10.244.2.6"]


def test_etp_local_behind_a_health_check_is_info(run_cli: RunCli, tmp_path: Path) -> None:
    root = _etp_local_snapshot(tmp_path, local_ips=[], remote_ips=["10.244.2.6"], hc=32000)
    code, doc = trace(run_cli, "shop/web", "--snapshot", str(root))
    assert code == 0, _codes(doc)
    infos = [f for f in doc["findings"] if f["code"] == "HealthCheckTakesNodeOut"]
    assert infos and all(f["severity"] == "info" for f in infos)
    assert "NoLocalEndpoints" not in _codes(doc)
    code, out, err = run_cli(["check", "shop/web", "--snapshot", str(root), "--node", NODE, "--fail-on", "warning"])
    assert code == 0, out + err


def test_load_balancer_source_ranges(run_cli: RunCli, tmp_path: Path) -> None:
    root = _etp_local_snapshot(tmp_path, local_ips=["10.244.1.5"], remote_ips=[], ranges=["192.0.2.0/24"])
    code, doc = trace(run_cli, f"{LB_IP}:443", "--snapshot", str(root), "--from", "192.0.2.9")
    assert code == 0, _codes(doc)
    assert "192.0.2.9 is in loadBalancerSourceRanges" in " ".join(_source_hop(doc)["details"])
    code, doc = trace(run_cli, f"{LB_IP}:443", "--snapshot", str(root), "--from", "203.0.113.5")
    assert code == 1 and _codes(doc) == ["SourceNotAllowed"]
    # a NodePort is not subject to the ranges
    code, doc = trace(run_cli, f"{NODE_IP}:{NODE_PORT}", "--snapshot", str(root), "--from", "203.0.113.5")
    assert code == 0, _codes(doc)


def test_clusterip_from_the_node_is_masqueraded_and_hairpin(run_cli: RunCli, tmp_path: Path) -> None:
    snap = str(snapshot(tmp_path))
    code, doc = trace(run_cli, "shop/web", "--snapshot", snap, "--from", f"node/{NODE}")
    assert code == 0
    assert "masqueraded" in _source_hop(doc)["summary"]
    code, doc = trace(run_cli, "shop/web", "--snapshot", snap, "--from", "shop/web-a")
    hop = _source_hop(doc)
    assert "source address kept" in hop["summary"]
    assert any(d.startswith("hairpin:") for d in hop["details"])


def test_from_is_checked(run_cli: RunCli, tmp_path: Path) -> None:
    code, out, err = run_cli(["trace", "shop/web", "--snapshot", str(snapshot(tmp_path)), "--from", "a/b/c"])
    assert code == 2 and "--from" in err and "Traceback" not in err


# ------------------------------------------------------------------ IPVS: virtual server kinds from the Services

IPVSADM = f"""IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  {NODE_IP}:{NODE_PORT} rr
  -> {WEB_EPS[0]}:8443              Masq    1      0          0
  -> {WEB_EPS[1]}:8443              Masq    1      0          0
TCP  {WEB_VIP}:443 rr
  -> {WEB_EPS[0]}:8443              Masq    1      0          0
  -> {WEB_EPS[1]}:8443              Masq    1      0          0
TCP  {EXT_IP}:443 rr
  -> {WEB_EPS[0]}:8443              Masq    1      0          0
  -> {WEB_EPS[1]}:8443              Masq    1      0          0
TCP  {LB_IP}:443 rr
  -> {WEB_EPS[0]}:8443              Masq    1      0          0
  -> {WEB_EPS[1]}:8443              Masq    1      0          0
"""


def test_ipvs_kinds_are_not_asserted_without_ipsets(run_cli: RunCli, tmp_path: Path) -> None:
    f = tmp_path / "ipvsadm.txt"
    f.write_text(IPVSADM)
    code, out, err = run_cli(["rules", "--ipvsadm", str(f), "-o", "json"])
    assert code == 0, err
    doc = json.loads(out)
    assert all(e.get("kindKnown") is False for e in doc["services"])
    assert all(any(n.startswith("kind not known") for n in e.get("notes", [])) for e in doc["services"])


@pytest.mark.parametrize(("addr", "port", "kind"), [
    (NODE_IP, NODE_PORT, "NodePort"), (WEB_VIP, 443, "ClusterIP"), (EXT_IP, 443, "ExternalIP"),
    (LB_IP, 443, "LoadBalancer")])
def test_ipvs_kinds_from_the_services(run_cli: RunCli, tmp_path: Path, addr: str, port: int, kind: str) -> None:
    root = snapshot(tmp_path)
    (root / "nodes" / NODE / "iptables-save.txt").unlink()
    (root / "nodes" / NODE / "ipvsadm.txt").write_text(IPVSADM)
    code, doc = trace(run_cli, f"{addr}:{port}", "--snapshot", str(root))
    assert code == 0, _codes(doc)
    (pt,) = doc["ports"]
    assert pt["wayIn"]["kind"] == kind and len(pt["backends"]) == 2
    code, out, err = run_cli(["rules", "--snapshot", str(root), "-o", "json"])
    kinds = {(e["address"], e["port"]): (e["kind"], e.get("kindKnown", True)) for e in json.loads(out)["services"]}
    assert kinds[(addr, port)] == (kind, True)


# ------------------------------------------------------------------ hints asked for but not set


def test_why_the_controller_set_no_hints(run_cli: RunCli, tmp_path: Path) -> None:
    root = snapshot(tmp_path)
    doc = json.loads((root / "cluster.json").read_text())
    doc["items"][0]["metadata"]["annotations"] = {"service.kubernetes.io/topology-mode": "Auto"}
    doc["items"].append({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "shop"},
                         "involvedObject": {"kind": "Service", "name": "web", "namespace": "shop"},
                         "reason": "TopologyAwareHintsDisabled", "type": "Warning",
                         "message": "Insufficient Node information: allocatable CPU or zone not specified on one "
                                    "or more nodes, addressType: IPv4"})
    (root / "cluster.json").write_text(json.dumps(doc))
    code, out = trace(run_cli, "shop/web", "--snapshot", str(root))
    assert any("TopologyAwareHintsDisabled" in n and "Insufficient Node information" in n for n in out["notes"])
    # trafficDistribution with endpoints whose Node has no zone: no hints, and why
    doc["items"][0]["metadata"]["annotations"] = {}
    doc["items"][0]["spec"]["trafficDistribution"] = "PreferClose"
    doc["items"] = [o for o in doc["items"] if o["kind"] != "Event"]
    (root / "cluster.json").write_text(json.dumps(doc))
    code, out = trace(run_cli, "shop/web", "--snapshot", str(root))
    assert any("have no zone" in n for n in out["notes"]), out["notes"]


def test_check_judges_drift_with_the_node_zone(run_cli: RunCli, tmp_path: Path) -> None:
    """`check` compares the node's rules with the endpoints that node uses: with hints, its zone's."""
    root = _hinted_snapshot(tmp_path, ["10.244.1.5", "10.244.1.6"])
    code, out, err = run_cli(["check", "shop/web", "--snapshot", str(root), "--node", NODE, "-o", "json"])
    assert code == 0, out + err
    assert "EndpointNotProgrammed" not in out
    root2 = _hinted_snapshot(tmp_path / "b", ["10.244.1.5", "10.244.1.6", "10.244.2.7", "10.244.2.8"])
    code, out, err = run_cli(["check", "shop/web", "--snapshot", str(root2), "--node", NODE, "-o", "json"])
    assert code == 1 and "StaleBackend" in out

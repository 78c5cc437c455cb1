"""Targeted node reads over kube-proxy exec, answered by the real iptables of a network namespace.

The test API server's kube-proxy Pod answers every exec by running the requested argv inside a namespace this
test created and loaded with iptables-restore (ip netns exec: the real tools' output and exit statuses). Checked:
the commands svcctl issues (targeted shapes only, no whole dump), the bytes moved (≤ 2× the Service's own rules,
the same with 100 and with 1,000 other Services on the node), the same trace answer as the whole-dump path, and
one confirming whole read before ServiceNotProgrammed when the targeted read finds nothing.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiserver import FakeAPIServer  # noqa: E402
from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, iptables_save  # noqa: E402
from gen_fleet import kube_proxy_pod  # noqa: E402
from netns import Lab, require_netns  # noqa: E402

from svcctl.dataplane.hashes import port_proto_hash  # noqa: E402
from svcctl.sources import targeted  # noqa: E402

pytestmark = pytest.mark.netns

Factory = Callable[..., FakeAPIServer]
RunCLI = Callable[..., tuple[int, str, str]]
NODE = "node-t"
WEB_VIP, EMPTY_VIP, GHOST_VIP = "198.19.0.10", "198.19.0.11", "198.19.0.13"
PODS = ["198.18.1.10", "198.18.1.11", "198.18.1.12"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    with Lab(prefix="svt-tgt", n_pods=0) as lab:
        yield lab


def gen_services(fillers: int) -> list[GenService]:
    web = GenService("default", "web", WEB_VIP, [GenPort("http", 80, 8080, node_port=30080)],
                     [GenEndpoint(ip) for ip in PODS], external_ips=["198.18.9.9"], lb_ips=["198.18.9.10"],
                     source_ranges=["198.18.0.0/16"])
    empty = GenService("default", "empty", EMPTY_VIP, [GenPort("http", 80, 8080)], [])
    more = [GenService("bulk", f"svc-{i}", f"198.19.{1 + i // 250}.{i % 250 + 1}", [GenPort("http", 80, 8080)],
                       [GenEndpoint(f"198.18.{100 + i // 250}.{i % 250 + 1}")]) for i in range(fillers)]
    return [web, empty, *more]


def load(lab: Lab, fillers: int) -> str:
    text = iptables_save(GenCluster(gen_services(fillers), cluster_cidr="198.18.0.0/16"))
    lab.iptables_restore(text)
    return lab.iptables_save()


def objects() -> list[dict[str, Any]]:
    def svc(name: str, vip: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                "spec": {"clusterIP": vip, "clusterIPs": [vip], "selector": {"app": name}, **spec}}

    web = svc("web", WEB_VIP, type="LoadBalancer", externalIPs=["198.18.9.9"],
              loadBalancerSourceRanges=["198.18.0.0/16"],
              ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}])
    web["status"] = {"loadBalancer": {"ingress": [{"ip": "198.18.9.10"}]}}
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-{i}", "namespace": "default",
                                                             "labels": {"app": "web"}},
             "spec": {"nodeName": NODE, "containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
             "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                        "conditions": [{"type": "Ready", "status": "True"}]}} for i, ip in enumerate(PODS)]
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
              "metadata": {"name": "web-abc", "namespace": "default",
                           "labels": {"kubernetes.io/service-name": "web",
                                      "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
              "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
              "endpoints": [{"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False},
                             "nodeName": NODE, "targetRef": {"kind": "Pod", "name": f"web-{i}", "namespace": "default"}}
                            for i, ip in enumerate(PODS)]}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
            "status": {"addresses": [{"type": "InternalIP", "address": "198.18.1.1"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}
    ghost = svc("ghost", GHOST_VIP, ports=[{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    empty = svc("empty", EMPTY_VIP, ports=[{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    return [web, empty, ghost, *pods, slice_, node, kube_proxy_pod(NODE)]


class NetnsExec:
    """The kube-proxy Pod's exec: the argv run inside the lab's node namespace; calls and bytes recorded."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.calls: list[list[str]] = []
        self.bytes = 0
        self._lock = threading.Lock()

    def __call__(self, ns: str, pod: str, container: str, argv: list[str]) -> tuple[str, str, int]:
        r = self.lab.node_exec(argv, check=False)
        with self._lock:
            self.calls.append(argv)
            self.bytes += len(r.stdout) + len(r.stderr) + sum(len(a) + 1 for a in argv)  # answer + request
        return r.stdout, r.stderr, r.returncode


def own_rules(save: str, spn: str, proto: str = "tcp") -> int:
    """Bytes of the Service's own rules in the whole dump: lines naming it or its chains (and its SEP chains)."""
    h = port_proto_hash(spn, proto)
    lines = [ln for ln in save.splitlines() if ln.startswith("-A ") and (spn in ln or h in ln)]
    seps = {tok for ln in lines for tok in ln.split() if tok.startswith("KUBE-SEP-")}
    lines += [ln for ln in save.splitlines() if ln.startswith("-A ") and ln.split()[1] in seps and spn not in ln]
    return sum(len(ln) + 1 for ln in set(lines))


def trace(run_cli: RunCLI, srv: FakeAPIServer, name: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(["trace", name, "--node", NODE, "--no-dns", "-o", "json",
                              "--kubeconfig", str(srv.kubeconfig), *extra])
    assert out.startswith("{"), err
    return code, json.loads(out), err


def whole_inputs(lab: Lab, tmp_path: Path, flag: str, argv: list[str]) -> list[str]:
    """The same node given whole: its rules dump and its whole connection table, as files."""
    dump, ct = tmp_path / "rules.txt", tmp_path / "conntrack.txt"
    dump.write_text(lab.node_exec(argv).stdout)
    ct.write_text(lab.node_exec(["conntrack", "-L"], check=False).stdout)
    return [flag, str(dump), "--conntrack", str(ct)]


def node_view(doc: dict[str, Any]) -> Any:
    """The trace's answer about the node: hops and findings (where the rules came from left out)."""
    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in ("source", "evidence", "inputs", "notes")}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x
    return clean({k: doc.get(k) for k in ("ports", "findings", "verdict", "mode")})


@pytest.mark.parametrize("fillers", [100, 1000])
def test_one_service_is_read_with_its_own_rules_only(lab: Lab, apiserver: Factory, run_cli: RunCLI,
                                                      tmp_path: Path, fillers: int) -> None:
    save = load(lab, fillers)
    srv = apiserver(objects())
    ex = NetnsExec(lab)
    srv.exec_handler = ex
    code, doc, err = trace(run_cli, srv, "web")
    assert code == 0, err
    # the commands: per-Service chains and entry-rule checks only, never a whole dump
    assert ex.calls and all(targeted.allowed(a) for a in ex.calls), ex.calls
    # (the mode not given: IPVS mode's own chain is asked once, in the first round, to tell an IPVS node)
    assert ex.calls.count(["iptables", "-t", "nat", "-S", targeted.IPVS_TELL]) == 1
    chains = sorted(a[4] for a in ex.calls if a[3] == "-S" and a[4] != targeted.IPVS_TELL)
    h = port_proto_hash("default/web:http", "tcp")
    assert chains[:3] == [f"KUBE-EXT-{h}", f"KUBE-FW-{h}"] + [c for c in chains if c.startswith("KUBE-SEP-")][:1]
    assert sum(c.startswith("KUBE-SEP-") for c in chains) == len(PODS)
    assert f"KUBE-SVC-{h}" in chains
    # its flows only: conntrack filtered by its addresses and its NodePort, never the whole table
    assert sorted(a[2:] for a in ex.calls if a[0] == "conntrack") == [
        ["-d", "198.18.9.10"], ["-d", "198.18.9.9"], ["-d", WEB_VIP], ["-p", "tcp", "--dport", "30080"]]
    checked = sorted(a[4] for a in ex.calls if a[3] == "-C")
    # (KUBE-SERVICES: its cluster IP, external IP and load-balancer IP rules, and the three forms of the
    # NodePort jump, asked at once: localhost included or not, and one `-d` rule for the Node's InternalIP)
    assert checked == ["KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"] + ["KUBE-SERVICES"] * 6, checked
    assert any(a[3] == "-C" and a[-1] == "KUBE-NODEPORTS" and "198.18.1.1" in a for a in ex.calls)
    # bytes: at most twice the Service's own rules, whatever else the node holds
    own = own_rules(save, "default/web:http")
    assert 0 < ex.bytes <= 2 * own, (ex.bytes, own)
    # the same answer as the whole dump of the same node
    code2, whole, err2 = trace(run_cli, srv, "web", *whole_inputs(lab, tmp_path, "--iptables-save", ["iptables-save"]))
    assert code2 == code and node_view(whole) == node_view(doc), err2


def test_bytes_do_not_grow_with_the_node(lab: Lab, apiserver: Factory, run_cli: RunCLI) -> None:
    moved = []
    for fillers in (100, 1000):
        load(lab, fillers)
        srv = apiserver(objects())
        ex = NetnsExec(lab)
        srv.exec_handler = ex
        assert trace(run_cli, srv, "web")[0] == 0
        moved.append(ex.bytes)
    assert moved[0] == moved[1], moved


def test_a_service_without_endpoints_is_its_reject_rule(lab: Lab, apiserver: Factory, run_cli: RunCLI,
                                                        tmp_path: Path) -> None:
    load(lab, 100)
    srv = apiserver(objects())
    ex = NetnsExec(lab)
    srv.exec_handler = ex
    code, doc, err = trace(run_cli, srv, "empty")
    assert ["iptables-save"] not in ex.calls and all(targeted.allowed(a) for a in ex.calls), ex.calls
    # the trace reads the node before the slices: the rules for "has endpoints" are looked for first (the chain,
    # the cluster IP rule), then, not there, the rule kube-proxy writes for no endpoints
    h = port_proto_hash("default/empty:http", "tcp")
    # (its flows, read after the rules; IPVS mode's chain, asked to tell an IPVS node)
    calls = [a for a in ex.calls if a[0] != "conntrack" and a[-1] != targeted.IPVS_TELL]
    assert sorted((a[2], a[3], a[4], a[-1]) for a in calls) == [
        ("filter", "-C", "KUBE-SERVICES", "REJECT"), ("nat", "-C", "KUBE-SERVICES", f"KUBE-SVC-{h}"),
        ("nat", "-S", f"KUBE-SVC-{h}", f"KUBE-SVC-{h}")]
    assert calls[-1][2:4] == ["filter", "-C"]
    code2, whole, _ = trace(run_cli, srv, "empty", *whole_inputs(lab, tmp_path, "--iptables-save", ["iptables-save"]))
    assert code == code2 and node_view(whole) == node_view(doc)


def test_nothing_found_is_confirmed_by_one_whole_read(lab: Lab, apiserver: Factory, run_cli: RunCLI) -> None:
    load(lab, 100)
    srv = apiserver(objects())
    ex = NetnsExec(lab)
    srv.exec_handler = ex
    code, doc, err = trace(run_cli, srv, "ghost")
    assert code == 1, err
    rules = [a for a in ex.calls if a[0] != "conntrack"]  # (its flows, read after the rules)
    whole = [a for a in rules if not targeted.allowed(a)]
    assert whole == [["iptables-save"]], ex.calls
    assert rules[-1] == ["iptables-save"]  # after the targeted reads, never before
    found = [f for f in doc["findings"] if f["code"] == "ServiceNotProgrammed"]
    assert found and "read whole to confirm" in found[0]["evidence"], found


def test_a_command_outside_the_shapes_is_refused_before_it_is_sent() -> None:
    sent: list[list[str]] = []

    def execute(argv: list[str]) -> tuple[str, str, int]:
        sent.append(argv)
        return "", "", 0

    with pytest.raises(targeted.NotAllowed):
        targeted._run_round(execute, [["iptables", "-t", "nat", "-S", "KUBE-SERVICES"]], targeted.TargetedRead())
    with pytest.raises(targeted.NotAllowed):
        targeted._run_round(execute, [["iptables", "-t", "nat", "-F", "KUBE-SVC-AC2ON6IKLZPGXVMV"]],
                            targeted.TargetedRead())
    assert sent == []


# ------------------------------------------------------------------ nftables mode, the real nft


@pytest.fixture(scope="module")
def nft_lab() -> Iterator[Lab]:
    require_netns()
    from gen_dumps_ipvs_nft import GenService as NftService
    from gen_dumps_ipvs_nft import nft_script

    web = NftService("default", "web", "http", WEB_VIP, 80, [(ip, 8080) for ip in PODS], node_port=30080,
                     external_ips=["198.18.9.9"], lb_ips=["198.18.9.10"], source_ranges=["198.18.0.0/16"])
    empty = NftService("default", "empty", "http", EMPTY_VIP, 80, [])
    more = [NftService("bulk", f"svc-{i}", "http", f"198.19.{1 + i // 250}.{i % 250 + 1}", 80,
                       [(f"198.18.{100 + i // 250}.{i % 250 + 1}", 8080)]) for i in range(300)]
    with Lab(prefix="svt-tgn", n_pods=0) as lab:
        lab.nft_load(nft_script([web, empty, *more], pod_cidr="198.18.0.0/16", service_cidr="198.19.0.0/16"))
        yield lab


@pytest.mark.parametrize("name", ["web", "empty"])
def test_nftables_mode_reads_the_services_chains_and_elements(nft_lab: Lab, apiserver: Factory, run_cli: RunCLI,
                                                              tmp_path: Path, name: str) -> None:
    srv = apiserver(objects())
    ex = NetnsExec(nft_lab)
    srv.exec_handler = ex
    code, doc, err = trace(run_cli, srv, name)
    nft = [a for a in ex.calls if a[0] == "nft"]
    assert nft and all(targeted.allowed(a) for a in nft), ex.calls
    assert not any(a[1:3] == ["list", "table"] for a in nft)  # never the whole table
    # iptables first (the mode was not given): none of the Service's chains, and an iptables-save with no
    # kube-proxy chains says nftables
    assert ["iptables-save"] in ex.calls and ex.calls.index(["iptables-save"]) < ex.calls.index(nft[0])
    if name == "web":
        lists = {a[5] for a in nft if a[1] == "list"}
        assert {"services", "masquerading"} <= lists
        assert sum(c.startswith("endpoint-") for c in lists) == len(PODS)
        gets = sorted(a[5] for a in nft if a[1] == "get")
        assert gets == ["cluster-ips", "firewall-ips", "service-ips", "service-ips", "service-ips",
                        "service-nodeports"], gets
    else:
        gets = [a[5] for a in nft if a[1] == "get"]
        assert gets[-1] == "no-endpoint-services" and "service-ips" in gets
    code2, whole, err2 = trace(run_cli, srv, name,
                               *whole_inputs(nft_lab, tmp_path, "--nft", ["nft", "list", "table", "ip", "kube-proxy"]))
    assert code2 == code and node_view(whole) == node_view(doc), (err, err2)


def test_rules_of_one_service_read_only_its_rules(lab: Lab, apiserver: Factory, run_cli: RunCLI,
                                                   tmp_path: Path) -> None:
    """`svcctl rules SVC --node N`: the targeted read too (the whole node only for `rules --node N`)."""
    load(lab, 100)
    srv = apiserver(objects())
    ex = NetnsExec(lab)
    srv.exec_handler = ex
    base = ["rules", "web", "-n", "default", "-o", "json", "--kubeconfig", str(srv.kubeconfig)]
    code, out, err = run_cli([*base, "--node", NODE])
    assert code == 0, err
    assert ex.calls and all(targeted.allowed(a) for a in ex.calls), ex.calls
    dump = tmp_path / "iptables-save.txt"
    dump.write_text(lab.iptables_save())
    code2, out2, err2 = run_cli([*base, "--iptables-save", str(dump)])
    assert code2 == 0, err2
    assert json.loads(out)["services"] == json.loads(out2)["services"]
    ex.calls.clear()
    assert run_cli(["rules", "--node", NODE, "-o", "json", "--kubeconfig", str(srv.kubeconfig)])[0] == 0
    assert ["iptables-save"] in ex.calls  # the whole node, asked for


def test_dual_stack_reads_each_family_with_its_own_tool() -> None:
    """A dual-stack NodePort Service: iptables for its IPv4 address, ip6tables for its IPv6 one (each family's
    NodePort jump in its own form), the same rules as both whole dumps."""
    require_netns()
    from svcctl.dataplane import load_node_rules
    from svcctl.dataplane.dumps import NodeDumps
    from svcctl.model import Service

    port = [GenPort("http", 80, 8080, node_port=30080)]
    t4 = iptables_save(GenCluster([GenService("default", "web", WEB_VIP, port, [GenEndpoint(PODS[0])])],
                                  cluster_cidr="198.18.0.0/16"))
    t6 = iptables_save(GenCluster([GenService("default", "web", "2001:db8:ff::10", port,
                                              [GenEndpoint("2001:db8:1::10")])],
                                  cluster_cidr="2001:db8:1::/64", banner="ip6tables-save v1.8.9 (nf_tables)"))
    svc = Service.from_dict({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "type": "NodePort", "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP, "2001:db8:ff::10"],
        "ipFamilies": ["IPv4", "IPv6"],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}]}})
    with Lab(prefix="svt-tg6", n_pods=0, ipv6=True) as lab:
        lab.iptables_restore(t4)
        lab.iptables_restore(t6, ipv6=True)
        calls: list[list[str]] = []

        def execute(argv: list[str]) -> tuple[str, str, int]:
            calls.append(argv)
            r = lab.node_exec(argv, check=False)
            return r.stdout, r.stderr, r.returncode

        cut = targeted.node_dumps(execute, NODE, "netns", [(svc, None)], None)
        whole = NodeDumps(node=NODE, texts={"iptables": lab.iptables_save(), "ip6tables": lab.iptables_save(ipv6=True)})
    assert cut is not None and set(cut.texts) == {"iptables", "ip6tables"}
    assert all(targeted.allowed(a) for a in calls) and {a[0] for a in calls} == {"iptables", "ip6tables"}
    assert [a for a in calls if a[0] == "ip6tables" and "-d" in a] and not [
        a for a in calls if a[0] == "iptables" and any(":" in x for x in a[5:] if x.count(":") > 1)]
    only = {"default/web", WEB_VIP, "2001:db8:ff::10"}
    got = [e.to_json() for e in load_node_rules(cut, only=only).services]
    assert got == [e.to_json() for e in load_node_rules(whole, only=only).services]
    assert {e["address"] for e in got} >= {WEB_VIP, "2001:db8:ff::10"}


def test_known_endpoints_are_read_in_the_first_round() -> None:
    """With the slices known (`--all-nodes` has them), the endpoints' KUBE-SEP chains are asked for together
    with the Service's chain: the ready ones, as kube-proxy picks them, not the not-ready one."""
    from svcctl.dataplane.hashes import endpoint_chain, port_proto_hash
    from svcctl.model import EndpointSlice, Service

    svc = Service.from_dict({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    sl = EndpointSlice.from_dict({"metadata": {"name": "web-1", "namespace": "default"}, "addressType": "IPv4",
                                  "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                                  "endpoints": [{"addresses": [ip], "conditions": {"ready": i < 2}}
                                                for i, ip in enumerate(PODS)]})
    (fp,) = targeted.plan([(svc, [sl])])
    spn = "default/web:http"
    assert fp.chains == [f"KUBE-SVC-{port_proto_hash(spn, 'tcp')}",
                         *(endpoint_chain(spn, "tcp", ip, 8080) for ip in PODS[:2])]
    (unknown,) = targeted.plan([(svc, None)])
    assert unknown.chains == fp.chains[:1]  # slices not known: found through the Service's chain


@pytest.mark.parametrize("policy", ["external", "internal"])
def test_local_traffic_policy_without_a_local_endpoint(policy: str) -> None:
    """externalTrafficPolicy / internalTrafficPolicy Local, the endpoints all on other nodes: kube-proxy's
    filter-table DROP rules are checked too (they exist only in that state), so the targeted answer says
    what the whole dump says: no local endpoint, new connections dropped."""
    require_netns()
    from svcctl.dataplane import load_node_rules
    from svcctl.dataplane.dumps import NodeDumps
    from svcctl.model import Service

    ext = policy == "external"
    gen = GenService("default", "web", WEB_VIP, [GenPort("http", 80, 8080, node_port=30080)],
                     [GenEndpoint(ip, local=False) for ip in PODS], external_ips=["198.18.9.9"],
                     etp_local=ext, itp_local=not ext)
    svc = Service.from_dict({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "type": "NodePort", "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP], "externalIPs": ["198.18.9.9"],
        "externalTrafficPolicy": "Local" if ext else "Cluster", "internalTrafficPolicy": "Cluster" if ext else "Local",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}]}})
    with Lab(prefix="svt-tgl", n_pods=0) as lab:
        lab.iptables_restore(iptables_save(GenCluster([gen], cluster_cidr="198.18.0.0/16")))
        calls: list[list[str]] = []

        def execute(argv: list[str]) -> tuple[str, str, int]:
            calls.append(argv)
            r = lab.node_exec(argv, check=False)
            return r.stdout, r.stderr, r.returncode

        cut = targeted.node_dumps(execute, NODE, "netns", [(svc, None)], "iptables")
        whole = NodeDumps(node=NODE, texts={"iptables": lab.iptables_save()})
    assert cut is not None and ["iptables-save"] not in calls, calls  # no confirming read was needed
    assert any(a[2:5] == ["filter", "-C", "KUBE-EXTERNAL-SERVICES" if ext else "KUBE-SERVICES"] and a[-1] == "DROP"
               for a in calls)
    only = {"default/web", WEB_VIP, "198.18.9.9"}
    got = [e.to_json() for e in load_node_rules(cut, only=only).services]
    assert got == [e.to_json() for e in load_node_rules(whole, only=only).services]
    assert any(e.get("noLocalEndpoints") for e in got) or any("no endpoint on this node" in " ".join(e["notes"])
                                                              for e in got), got

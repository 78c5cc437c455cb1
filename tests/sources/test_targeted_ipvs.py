"""Targeted node reads in kube-proxy's IPVS mode, answered by the real ipset and ip of a network namespace.

This machine has no ip_vs module, so ipvsadm cannot run: the kube-proxy Pod's exec answers `ipvsadm -Ln` and
`ipvsadm -Ln -t ADDR:PORT` from the generated virtual servers (tests/gen_dumps_ipvs_nft.py prints ipvsadm's
exact format, list_all's and list_service's), and runs everything else inside a namespace holding kube-proxy's
ipsets (real `ipset restore`) and a kube-ipvs0 link with the bound addresses (real ip). Checked: the commands
issued (targeted shapes only), the bytes moved (≤ 2× the Service's own share of the whole reads, the same with
100 and 1,000 other Services), the same trace / rules answer as the whole reads given as files, one confirming
whole `ipvsadm -Ln` before ServiceNotProgrammed, and the refusal of anything off the allow-list.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_targeted_reads, beside it

from apiserver import FakeAPIServer  # noqa: E402
from gen_dumps_ipvs_nft import NO_SUCH_SERVICE, VS, print_ipvsadm, print_ipvsadm_service  # noqa: E402
from netns import Lab, require_netns  # noqa: E402
from test_targeted_reads import EMPTY_VIP, GHOST_VIP, NODE, PODS, WEB_VIP, node_view, objects  # noqa: E402

from svcctl.sources import targeted, targeted_base, targeted_ipvs  # noqa: E402

pytestmark = pytest.mark.netns

Factory = Callable[..., FakeAPIServer]
RunCLI = Callable[..., tuple[int, str, str]]
NODE_IP = "198.18.1.1"  # the lab node's bridge address: kube-proxy serves NodePorts there
EXT, LB = "198.18.9.9", "198.18.9.10"
SETS = {"KUBE-CLUSTER-IP": "hash:ip,port", "KUBE-EXTERNAL-IP": "hash:ip,port", "KUBE-LOAD-BALANCER": "hash:ip,port",
        "KUBE-LOAD-BALANCER-FW": "hash:ip,port", "KUBE-NODE-PORT-TCP": "bitmap:port range 0-65535",
        "KUBE-LOOP-BACK": "hash:ip,port,ip"}


def state(fillers: int) -> tuple[list[VS], dict[str, list[str]], list[str]]:
    """What kube-proxy's IPVS mode programs for the test objects (objects()) and `fillers` other Services: the
    virtual servers, the ipset members, the addresses bound to kube-ipvs0. `ghost` is left out (not synced)."""
    reals = [{"ip": ip, "port": 8080} for ip in PODS]
    vss = [VS("TCP", WEB_VIP, 80, reals=reals), VS("TCP", EXT, 80, reals=reals), VS("TCP", LB, 80, reals=reals),
           VS("TCP", NODE_IP, 30080, reals=reals), VS("TCP", EMPTY_VIP, 80)]
    sets: dict[str, list[str]] = {name: [] for name in SETS}
    sets["KUBE-CLUSTER-IP"] += [f"{WEB_VIP},tcp:80", f"{EMPTY_VIP},tcp:80"]
    sets["KUBE-EXTERNAL-IP"].append(f"{EXT},tcp:80")
    sets["KUBE-LOAD-BALANCER"].append(f"{LB},tcp:80")
    sets["KUBE-LOAD-BALANCER-FW"].append(f"{LB},tcp:80")
    sets["KUBE-NODE-PORT-TCP"].append("30080")
    sets["KUBE-LOOP-BACK"] += [f"{ip},tcp:8080,{ip}" for ip in PODS]
    bound = [WEB_VIP, EMPTY_VIP, EXT, LB]
    for i in range(fillers):
        vip, ep = f"198.19.{1 + i // 250}.{i % 250 + 1}", f"198.18.{100 + i // 250}.{i % 250 + 1}"
        vss.append(VS("TCP", vip, 80, reals=[{"ip": ep, "port": 8080}]))
        sets["KUBE-CLUSTER-IP"].append(f"{vip},tcp:80")
        sets["KUBE-LOOP-BACK"].append(f"{ep},tcp:8080,{ep}")
        bound.append(vip)
    return vss, sets, bound


# IPVS mode's iptables glue (pkg/proxy/ipvs/proxier.go): the same rules whatever the node holds
IPVS_GLUE = ("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n"
             '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin '
             'purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE\n'
             '-A KUBE-SERVICES ! -s 198.18.0.0/16 -m comment --comment "Kubernetes service cluster ip + port for '
             'masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ\n'
             "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\nCOMMIT\n")


class IpvsNode:
    """A node in IPVS mode: ipvsadm answered from the generated virtual servers, the rest run in the lab's node
    namespace (real ipsets, a real kube-ipvs0 link). Calls and bytes (answers and requests) recorded."""

    def __init__(self, lab: Lab, fillers: int) -> None:
        self.lab = lab
        self.vss, self.sets, self.bound = state(fillers)
        self.calls: list[list[str]] = []
        self.bytes = 0
        self._lock = threading.Lock()
        lab.node_exec(["iptables", "-t", "nat", "-F"])  # (rules matching a set keep it from being destroyed)
        lab.node_exec(["iptables", "-t", "nat", "-X"])
        lab.node_exec(["ipset", "flush"], check=False)
        lab.node_exec(["ipset", "destroy"], check=False)
        lines = [f"create {n} {t}" for n, t in SETS.items()]
        lines += [f"add {n} {m}" for n, ms in self.sets.items() for m in ms]
        lab.node_exec(["ipset", "restore"], input="\n".join(lines) + "\n")
        lab.iptables_restore(IPVS_GLUE)
        # kube-proxy's link is a dummy (never set up); this kernel may lack the dummy module: a bridge, left down.
        # Made once per lab and emptied (a new link would get a new index, which `ip -o` prints: other bytes)
        if lab.node_exec(["ip", "link", "show", "kube-ipvs0"], check=False).returncode:
            lab.ip_node("link", "add", "kube-ipvs0", "type", "bridge")
        lab.ip_node("addr", "flush", "dev", "kube-ipvs0")
        batch = "".join(f"address add {a}/32 dev kube-ipvs0\n" for a in self.bound)
        lab.node_exec(["ip", "-batch", "-"], input=batch)

    def answer(self, argv: list[str]) -> tuple[str, str, int]:
        if argv == ["ipvsadm", "-Ln"]:
            return print_ipvsadm(self.vss, "list"), "", 0
        if argv[:2] == ["ipvsadm", "-Ln"] and len(argv) == 4:
            proto = {"-t": "TCP", "-u": "UDP", "--sctp-service": "SCTP"}[argv[2]]
            addr, _, port = argv[3].rpartition(":")
            found = [v for v in self.vss if (v.protocol, v.address, v.port) == (proto, addr.strip("[]"), int(port))]
            return (print_ipvsadm_service(found[0]), "", 0) if found else ("", NO_SUCH_SERVICE, 1)
        r = self.lab.node_exec(argv, check=False)
        return r.stdout, r.stderr, r.returncode

    def __call__(self, ns: str, pod: str, container: str, argv: list[str]) -> tuple[str, str, int]:
        out, err, rc = self.answer(argv)
        with self._lock:
            self.calls.append(argv)
            self.bytes += len(out) + len(err) + sum(len(a) + 1 for a in argv)
        return out, err, rc

    def own(self, vips: list[str], members: list[str]) -> int:
        """The Service's own share of the whole reads: its entries in `ipvsadm -Ln` (each as `ipvsadm -Ln -t`
        prints it, with its two title lines), its members in `ipset list`, its addresses' lines in
        `ip addr show kube-ipvs0`, the node's addresses (one NodePort virtual server each)."""
        n = sum(len(print_ipvsadm_service(v)) for v in self.vss if v.address in vips)
        n += sum(len(m) + 1 for ms in self.sets.values() for m in ms if m in members)
        ip_addr = self.lab.node_exec(["ip", "addr", "show", "kube-ipvs0"]).stdout.splitlines()
        for i, ln in enumerate(ip_addr):
            if any(f" {a}/" in ln for a in vips):
                n += len(ln) + 1 + len(ip_addr[i + 1]) + 1
        n += len(self.lab.node_exec(targeted_ipvs.NODE_ADDRESSES).stdout)
        return n

    def whole_inputs(self, tmp_path: Path) -> list[str]:
        """The same node given whole, as files: `ipvsadm -Ln`, `iptables-save`, `ipset list`, `ip addr show
        kube-ipvs0`, and its whole connection table."""
        files = {"--ipvsadm": self.answer(["ipvsadm", "-Ln"])[0], "--iptables-save": self.lab.iptables_save(),
                 "--conntrack": self.lab.node_exec(["conntrack", "-L"], check=False).stdout,
                 "--ipset": self.lab.node_exec(["ipset", "list"]).stdout,
                 "--ip-addr": self.lab.node_exec(["ip", "addr", "show", "kube-ipvs0"]).stdout}
        out: list[str] = []
        for flag, text in files.items():
            f = tmp_path / f"{flag.strip('-')}.txt"
            f.write_text(text)
            out += [flag, str(f)]
        return out


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    with Lab(prefix="svt-tgi", n_pods=0) as lab:
        # the bridge's IPv6 link-local address is `tentative` until duplicate address detection ends, a word more
        # in `ip -o addr show up`: wait for it, so every test sees the node the same
        for _ in range(50):
            if "tentative" not in lab.node_exec(targeted_ipvs.NODE_ADDRESSES).stdout:
                break
            time.sleep(0.1)
        else:
            lab.node_exec(["sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=1"])  # this namespace's only
        yield lab


def trace(run_cli: RunCLI, srv: FakeAPIServer, name: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(["trace", name, "--node", NODE, "--no-dns", "--mode", "ipvs", "-o", "json",
                              "--kubeconfig", str(srv.kubeconfig), *extra])
    assert out.startswith("{"), err
    return code, json.loads(out), err


WEB_ADDRS = [WEB_VIP, EXT, LB, NODE_IP]
WEB_MEMBERS = [f"{WEB_VIP},tcp:80", f"{EXT},tcp:80", f"{LB},tcp:80", "30080"]


@pytest.mark.parametrize("fillers", [100, 1000])
def test_one_service_is_read_with_its_own_virtual_servers_only(lab: Lab, apiserver: Factory, run_cli: RunCLI,
                                                                tmp_path: Path, fillers: int) -> None:
    node = IpvsNode(lab, fillers)
    srv = apiserver(objects())
    srv.exec_handler = node
    code, doc, err = trace(run_cli, srv, "web")
    assert code == 0, err
    rules = [a for a in node.calls if a[0] != "conntrack"]
    assert rules and all(targeted.allowed(a) for a in rules), rules
    assert ["ipvsadm", "-Ln"] not in rules and ["ipset", "list"] not in rules
    # one virtual server per address, the NodePort on the node's address (learnt from `ip -o addr show up`)
    assert sorted(a[3] for a in rules if a[0] == "ipvsadm") == sorted(f"{a}:{30080 if a == NODE_IP else 80}"
                                                                       for a in WEB_ADDRS)
    assert rules.index(targeted_ipvs.NODE_ADDRESSES) < rules.index(["ipvsadm", "-Ln", "-t", f"{NODE_IP}:30080"])
    assert sorted((a[2], a[3]) for a in rules if a[0] == "ipset") == sorted([
        ("KUBE-CLUSTER-IP", f"{WEB_VIP},tcp:80"), ("KUBE-EXTERNAL-IP", f"{EXT},tcp:80"),
        ("KUBE-LOAD-BALANCER", f"{LB},tcp:80"), ("KUBE-NODE-PORT-TCP", "30080")])
    assert sorted(a[7] for a in rules if a[:2] == ["ip", "-o"] and len(a) == 8) == sorted(
        f"{a}/32" for a in WEB_ADDRS if a != NODE_IP)  # a node address is not bound to kube-ipvs0
    assert sorted(a for a in rules if "--match-set" in a) == sorted(g[2] for g in targeted_ipvs.GLUE_RULES)
    own = node.own(WEB_ADDRS, WEB_MEMBERS)
    assert 0 < node.bytes <= 2 * own, (node.bytes, own)
    whole_bytes = sum(len(Path(f).read_text()) for f in node.whole_inputs(tmp_path)[1::2])
    print(f"\n  IPVS, web with {fillers} other Services: {node.bytes} bytes moved in {len(node.calls)} commands; "
          f"its own share of the whole reads {own} bytes; the whole reads {whole_bytes} bytes")
    code2, whole, err2 = trace(run_cli, srv, "web", *node.whole_inputs(tmp_path))
    assert code2 == code and node_view(whole) == node_view(doc), (err, err2)


def test_bytes_do_not_grow_with_the_node(lab: Lab, apiserver: Factory, run_cli: RunCLI) -> None:
    moved = []
    for fillers in (100, 1000):
        node = IpvsNode(lab, fillers)
        srv = apiserver(objects())
        srv.exec_handler = node
        assert trace(run_cli, srv, "web")[0] == 0
        moved.append(node.bytes)
    assert moved[0] == moved[1], moved


def test_missing_glue_is_found_by_the_targeted_checks(lab: Lab, apiserver: Factory, run_cli: RunCLI,
                                                      tmp_path: Path) -> None:
    """The cluster IP neither bound to kube-ipvs0 nor in KUBE-CLUSTER-IP: the same glue findings as the whole
    reads (the virtual server alone does not make it reachable)."""
    node = IpvsNode(lab, 100)
    lab.node_exec(["ipset", "del", "KUBE-CLUSTER-IP", f"{WEB_VIP},tcp:80"])
    lab.ip_node("addr", "del", f"{WEB_VIP}/32", "dev", "kube-ipvs0")
    srv = apiserver(objects())
    srv.exec_handler = node
    code, doc, err = trace(run_cli, srv, "web")
    codes = {f["code"] for f in doc["findings"]}
    assert ["ipset", "list"] not in node.calls and ["ipvsadm", "-Ln"] not in node.calls
    code2, whole, _ = trace(run_cli, srv, "web", *node.whole_inputs(tmp_path))
    assert code == code2 and node_view(whole) == node_view(doc)
    assert codes == {f["code"] for f in whole["findings"]} and len(codes) >= 1, codes
    assert json.dumps(doc).count("kube-ipvs0") >= 1 and "KUBE-CLUSTER-IP" in json.dumps(doc)


def test_a_service_without_endpoints_is_its_empty_virtual_server(lab: Lab, apiserver: Factory, run_cli: RunCLI,
                                                                 tmp_path: Path) -> None:
    node = IpvsNode(lab, 100)
    srv = apiserver(objects())
    srv.exec_handler = node
    code, doc, err = trace(run_cli, srv, "empty")
    rules = [a for a in node.calls if a[0] != "conntrack"]
    assert all(targeted.allowed(a) for a in rules) and ["ipvsadm", "-Ln", "-t", f"{EMPTY_VIP}:80"] in rules
    code2, whole, _ = trace(run_cli, srv, "empty", *node.whole_inputs(tmp_path))
    assert code == code2 and node_view(whole) == node_view(doc)


def test_nothing_found_is_confirmed_by_one_whole_read(lab: Lab, apiserver: Factory, run_cli: RunCLI) -> None:
    node = IpvsNode(lab, 100)
    srv = apiserver(objects())
    srv.exec_handler = node
    code, doc, err = trace(run_cli, srv, "ghost")
    assert code == 1, err
    rules = [a for a in node.calls if a[0] != "conntrack"]
    assert [a for a in rules if not targeted.allowed(a)] == [["ipvsadm", "-Ln"]], rules
    assert rules[-1] == ["ipvsadm", "-Ln"] and ["ipvsadm", "-Ln", "-t", f"{GHOST_VIP}:80"] in rules
    found = [f for f in doc["findings"] if f["code"] == "ServiceNotProgrammed"]
    assert found and "read whole to confirm" in found[0]["evidence"], found


def _rules_of(save: str) -> list[str]:
    """An iptables-save without its `# Generated …` / `# Completed …` lines, which carry the second it ran."""
    return [ln for ln in save.splitlines() if not ln.startswith("#")]


def test_the_mode_is_learnt_from_iptables_save(lab: Lab) -> None:
    """The mode not given: the iptables reads find none of the Service's chains, iptables-save shows IPVS
    mode's glue (the KUBE-CLUSTER-IP match-set), and the node is read targeted in IPVS mode; that iptables-save
    is kept for the glue checks."""
    from svcctl.dataplane import load_node_rules
    from svcctl.model import Service

    node = IpvsNode(lab, 100)
    svc = Service.from_dict({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    cut = targeted.node_dumps(lambda argv: node("", "", "", argv), NODE, "netns", [(svc, None)], None)
    assert cut is not None and cut.mode == "ipvs"
    assert _rules_of(cut.texts["iptables"]) == _rules_of(lab.iptables_save())
    assert [a[0] for a in node.calls].count("iptables-save") == 1 and ["ipvsadm", "-Ln"] not in node.calls
    assert not [a for a in node.calls if "--match-set" in a]  # that iptables-save has the glue: not checked again
    (entry,) = load_node_rules(cut, only={"default/web", WEB_VIP}).services
    assert (entry.address, entry.port, len(entry.backends), entry.glue) == (WEB_VIP, 80, len(PODS), [])


def test_the_mode_is_told_by_ipvs_modes_own_chain_in_the_first_round(lab: Lab) -> None:
    """The mode not given, on a node with IPVS mode's KUBE-NODE-PORT chain (kube-proxy makes it in IPVS mode
    only): the first round's `-S KUBE-NODE-PORT` shows the mode, so no iptables-save is read; the virtual
    server, its ipset member and kube-ipvs0 address and the glue rules (`-C`) are the second round (no round
    for the no-endpoints rule the slices would otherwise be looked for in). Batched (the test API server's
    stand-in sh), that is two execs; the answer is the one learnt from the whole iptables-save."""
    from sh_standin import run_sh

    from svcctl.dataplane import load_node_rules
    from svcctl.model import Service
    from svcctl.sources import batch

    node = IpvsNode(lab, 100)
    lab.node_exec(["iptables", "-t", "nat", "-N", "KUBE-NODE-PORT"])
    svc = Service.from_dict({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    execs: list[list[str]] = []

    def run(argv: list[str]) -> tuple[str, str, int]:
        execs.append(argv)
        if argv[:2] == ["sh", "-c"]:  # each command as the node answers it (ipvsadm simulated: no ip_vs here)
            assert batch.decode(argv) is not None
            return run_sh(argv[2], lambda a: node("", "", "", a))
        return node("", "", "", argv)

    cut = targeted.node_dumps(batch.Batched(run, NODE), NODE, "netns", [(svc, None)], None)
    assert cut is not None and cut.mode == "ipvs"
    assert ["iptables-save"] not in node.calls and ["ipvsadm", "-Ln"] not in node.calls
    assert ["iptables", "-t", "nat", "-S", "KUBE-NODE-PORT"] in node.calls
    assert len(execs) == 2 and all(batch.decode(e) for e in execs)
    assert [a for a in node.calls if "--match-set" in a]  # the glue checked with -C, not read
    (entry,) = load_node_rules(cut, only={"default/web", WEB_VIP}).services
    lab.node_exec(["iptables", "-t", "nat", "-X", "KUBE-NODE-PORT"])
    learnt = targeted.node_dumps(lambda argv: node("", "", "", argv), NODE, "netns", [(svc, None)], None)
    assert learnt is not None and learnt.mode == "ipvs"
    (other,) = load_node_rules(learnt, only={"default/web", WEB_VIP}).services
    assert (entry.address, entry.port, sorted(b.ip for b in entry.backends), entry.glue) == \
        (other.address, other.port, sorted(b.ip for b in other.backends), other.glue)
    assert len(entry.backends) == len(PODS) and entry.glue == []


def test_ipvsadm_says_no_such_service_in_either_words() -> None:
    """ipvsadm's list_service exits 1 with ipvs_strerror(errno): `No such service` for ESRCH, or `Memory
    allocation problem` from builds that took libnl 3's NLE_OBJ_NOTFOUND (12) for errno ENOMEM; another
    failure is not taken for "not there" (the node is read whole, and that read reports it)."""
    from svcctl.model import Service

    svc = Service.from_dict({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "clusterIP": WEB_VIP, "clusterIPs": [WEB_VIP], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    for err, rc, missing in (("No such service\n", 1, True), ("Memory allocation problem\n", 1, True),
                             ("Permission denied (you must be root)\n", 1, None)):
        def execute(argv: list[str], err: str = err, rc: int = rc) -> tuple[str, str, int]:
            if argv[0] == "ipvsadm":
                return "", err, rc
            if argv[0] == "ipset":
                return "", f"{argv[3]} is in set {argv[2]}.\n", 0
            if argv[0] == "iptables":  # the glue rules: there
                return "", "", 0
            return f"5: kube-ipvs0    inet {WEB_VIP}/32 scope global kube-ipvs0\\       valid_lft forever\n", "", 0

        if missing is None:
            with pytest.raises(targeted.ReadFailed):
                targeted_ipvs.read_targeted(execute, [(svc, None)])
            continue
        read = targeted_ipvs.read_targeted(execute, [(svc, None)])
        assert read.missing == {"ipvs": f"the cluster IP virtual server of default/web:http ({WEB_VIP}:80)"}


def test_commands_outside_the_shapes_are_refused_before_they_are_sent() -> None:
    ok = [["ipvsadm", "-Ln", "-t", "10.96.0.1:80"], ["ipvsadm", "-Ln", "-u", "[fd00::a]:53"],
          ["ipvsadm", "-Ln", "--sctp-service", "10.96.0.1:3868"],
          ["ipset", "test", "KUBE-CLUSTER-IP", "10.96.0.1,tcp:80"], ["ipset", "test", "KUBE-6-CLUSTER-IP", "fd00::a,udp:53"],
          ["ipset", "test", "KUBE-NODE-PORT-TCP", "30080"],
          ["ip", "-o", "addr", "show", "dev", "kube-ipvs0", "to", "10.96.0.1/32"], ["ip", "-o", "addr", "show", "up"]]
    assert all(targeted.allowed(a) for a in ok), [a for a in ok if not targeted.allowed(a)]
    refused = [["ipvsadm", "-C"], ["ipvsadm", "-D", "-t", "10.96.0.1:80"], ["ipvsadm", "-Ln"],
               ["ipvsadm", "-Ln", "-t", "10.96.0.1:80", "-C"], ["ipvsadm", "-Ln", "-t", "10.96.0.1"],
               ["ipvsadm", "-Ln", "-t", "10.96.0.1:99999"], ["ipvsadm", "-Ln", "-f", "7"],
               ["ipset", "list"], ["ipset", "del", "KUBE-CLUSTER-IP", "10.96.0.1,tcp:80"],
               ["ipset", "add", "KUBE-CLUSTER-IP", "10.96.0.1,tcp:80"], ["ipset", "flush", "KUBE-CLUSTER-IP"],
               ["ipset", "test", "OTHER", "10.96.0.1,tcp:80"], ["ipset", "test", "KUBE-CLUSTER-IP", "-exist"],
               ["ip", "addr", "del", "10.96.0.1/32", "dev", "kube-ipvs0"], ["ip", "addr", "show", "kube-ipvs0"],
               ["ip", "-o", "addr", "show", "dev", "eth0", "to", "10.96.0.1/32"],
               ["ip", "-o", "addr", "show", "dev", "kube-ipvs0", "to", "10.0.0.0/8"]]
    assert not any(targeted.allowed(a) for a in refused), [a for a in refused if targeted.allowed(a)]
    sent: list[list[str]] = []

    def execute(argv: list[str]) -> tuple[str, str, int]:
        sent.append(argv)
        return "", "", 0

    with pytest.raises(targeted.NotAllowed):
        targeted_base.run_round(execute, [["ipvsadm", "-Ln", "-t", "10.96.0.1:80"], ["ipvsadm", "-C"]],
                           targeted.TargetedRead(), targeted.allowed)
    assert sent == []

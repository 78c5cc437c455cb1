"""Real kube-proxy-style rules loaded with iptables-restore into a network namespace, real HTTP traffic.

What svcctl predicts from the rules (read back with `--netns`) must be what the kernel does: the same backends
answer, in shares consistent with 1/3 each, conntrack names the same backends, a Service without endpoints
refuses connections, and ClientIP affinity pins a client to one backend.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, iptables_save  # noqa: E402
from netns import Lab, require_netns  # noqa: E402

from svcctl.dataplane.conntrack import backend_counts, flows_to, parse_conntrack  # noqa: E402

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parent.parent.parent
N_REQUESTS = 300
P_MIN = 0.001  # reject "shares are 1/3 each" only below this p-value
WEB_VIP, EMPTY_VIP, STICKY_VIP = "198.19.0.10", "198.19.0.11", "198.19.0.12"




def cluster_for(lab: Lab) -> GenCluster:
    eps = [GenEndpoint(p.ip) for p in lab.pods]
    return GenCluster(services=[
        GenService("demo", "web", WEB_VIP, [GenPort("http", 80, lab.port)], eps),
        GenService("demo", "empty", EMPTY_VIP, [GenPort("http", 80, lab.port)], []),
        GenService("demo", "sticky", STICKY_VIP, [GenPort("http", 80, lab.port)], eps, affinity_seconds=600),
    ], cluster_cidr=f"{lab.subnet}.0/24")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    with Lab(prefix="svt-ipt", n_pods=3) as lab_:
        lab_.iptables_restore(iptables_save(cluster_for(lab_)))
        yield lab_


def svcctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "svcctl", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def rules_json(*args: str) -> dict[str, Any]:
    r = svcctl("rules", *args, "-o", "json")
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def chi_square_p(counts: list[int], expected: list[float]) -> float:
    """Upper-tail p-value of Pearson's chi-square; exact closed form for even degrees of freedom."""
    x = sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=False))
    k = len(counts) - 1
    if k % 2 == 0:
        half = x / 2
        return math.exp(-half) * sum(half ** i / math.factorial(i) for i in range(k // 2))
    # odd df: Wilson–Hilferty normal approximation
    z = ((x / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def test_chi_square_helper_rejects_skew() -> None:
    assert chi_square_p([100, 100, 100], [100, 100, 100]) == pytest.approx(1.0)
    assert chi_square_p([200, 50, 50], [100, 100, 100]) < 1e-6


def test_predicted_backends_answer_in_predicted_shares(lab: Lab, tmp_path: Path) -> None:
    lab.conntrack_flush()
    doc = rules_json(f"{WEB_VIP}:80", "--netns", lab.node)
    services = doc["services"]
    assert len(services) == 1
    entry = services[0]
    predicted = {(b["ip"], b["port"]): Fraction(b["share"]) for b in entry["backends"]}
    assert predicted == {(p.ip, lab.port): Fraction(1, 3) for p in lab.pods}

    before = _connections(lab, WEB_VIP)
    answers = lab.http_get_many(WEB_VIP, 80, N_REQUESTS)
    by_ip = Counter(lab.pod_by_name(a).ip for a in answers if a.startswith("pod"))
    assert sum(by_ip.values()) == N_REQUESTS, Counter(answers)
    # (a) exactly the predicted backends answered
    assert {(ip, lab.port) for ip in by_ip} == set(predicted)
    # (b) shares consistent with the predicted fractions
    keys = sorted(predicted)
    p = chi_square_p([by_ip[ip] for ip, _ in keys], [float(predicted[k]) * N_REQUESTS for k in keys])
    assert p > P_MIN, f"observed {dict(by_ip)} vs predicted {predicted}: chi-square p={p:.2g}"
    # (c) conntrack in the namespace maps each connection to the pod that answered
    flows = flows_to(parse_conntrack(lab.conntrack(), f"netns {lab.node}"), WEB_VIP, 80, "TCP")
    assert len(flows) == N_REQUESTS
    assert all(f.dnat and not f.snat for f in flows)
    assert backend_counts(flows) == {(ip, lab.port): n for ip, n in by_ip.items()}
    # (e) iptables-save -c: each endpoint's DNAT counter grew by the connections it answered
    after = _connections(lab, WEB_VIP)
    assert {ip: after[ip] - before.get(ip, 0) for ip in after} == dict(by_ip)


def _connections(lab: Lab, vip: str) -> dict[str, int]:
    """Per-backend `connections` (DNAT rule packet counters) as svcctl reads them from `iptables-save -c`."""
    from svcctl.dataplane.iptables import parse_iptables_save

    rules = parse_iptables_save(lab.iptables_save(counters=True), "counted", only={vip})
    (entry,) = rules.services
    return {b.ip: int(b.connections or 0) for b in entry.backends}


def test_netns_read_equals_saved_file(lab: Lab, tmp_path: Path) -> None:
    saved = tmp_path / "node.txt"
    saved.write_text(lab.iptables_save())
    via_netns = rules_json("--netns", lab.node)
    via_file = rules_json("--iptables-save", str(saved))
    for d in (via_netns, via_file):
        d.pop("source")
    assert via_netns == via_file
    names = {s["name"] for s in via_file["services"]}
    assert names == {"demo/web:http", "demo/empty:http", "demo/sticky:http"}


def test_counters_dump_parses_the_same(lab: Lab, tmp_path: Path) -> None:
    saved = tmp_path / "plain.txt"
    counted = tmp_path / "counted.txt"
    saved.write_text(lab.iptables_save())
    counted.write_text(lab.iptables_save(counters=True))
    a, b = rules_json("--iptables-save", str(saved)), rules_json("--iptables-save", str(counted))
    a.pop("source")
    b.pop("source")
    assert all("connections" in be for s in b["services"] for be in s["backends"])
    for s in b["services"]:
        for be in s["backends"]:
            be.pop("connections")
    assert a == b


def test_no_endpoints_rejects(lab: Lab) -> None:
    doc = rules_json(f"{EMPTY_VIP}:80", "--netns", lab.node)
    entry = doc["services"][0]
    assert entry["noEndpoints"] is True and entry["backends"] == []
    assert lab.http_get_many(EMPTY_VIP, 80, 5) == ["refused"] * 5


def test_session_affinity_pins_one_backend(lab: Lab) -> None:
    doc = rules_json(f"{STICKY_VIP}:80", "--netns", lab.node)
    entry = doc["services"][0]
    assert entry["affinitySeconds"] == 600
    answers = lab.http_get_many(STICKY_VIP, 80, 40)
    assert len(set(answers)) == 1 and answers[0].startswith("pod"), Counter(answers)


def test_forwarded_client_goes_through_prerouting(lab: Lab) -> None:
    lab.add_client("cl0")
    answers = lab.http_get_many(WEB_VIP, 80, 60, client="cl0")
    assert set(answers) <= {p.name for p in lab.pods} and len(set(answers)) >= 2, Counter(answers)
    flows = flows_to(parse_conntrack(lab.conntrack(), "ns"), WEB_VIP, 80)
    from_client = [f for f in flows if f.src == lab.clients["cl0"]]
    assert len(from_client) == 60


def test_missing_netns_is_exit_3() -> None:
    require_netns()
    r = svcctl("rules", "--netns", f"svt-ipt-{os.getpid()}-does-not-exist")
    assert r.returncode == 3
    assert "does not exist" in r.stderr


def test_unreferenced_chain_after_partial_sync(tmp_path: Path) -> None:
    """A stale KUBE-SVC chain loaded into a real namespace is reported, and carries no traffic."""
    require_netns()
    with Lab(prefix="svt-ipt", n_pods=2) as lab_:
        c = GenCluster(services=[GenService("demo", "web", WEB_VIP, [GenPort("http", 80, lab_.port)],
                                            [GenEndpoint(p.ip) for p in lab_.pods])],
                       cluster_cidr=f"{lab_.subnet}.0/24",
                       extra_nat_chains=["KUBE-SVC-STALESTALESTALE1"],
                       extra_nat=[f"-A KUBE-SVC-STALESTALESTALE1 -m comment --comment \"demo/gone:http -> "
                                  f"{lab_.pods[0].ip}:{lab_.port}\" -p tcp -j DNAT --to-destination {lab_.pods[0].ip}:1"])
        lab_.iptables_restore(iptables_save(c))
        doc = rules_json("--netns", lab_.node)
        assert doc["unreferencedChains"] == ["KUBE-SVC-STALESTALESTALE1"]
        answers = lab_.http_get_many(WEB_VIP, 80, 20)
        assert set(answers) <= {"pod0", "pod1"}


class NetnsKubeProxy:
    """A cluster source whose "kube-proxy Pod" is the lab's node namespace: exec runs the command there for real.

    It refuses any argv that is not on svcctl's allow-list, so the test also proves svcctl only asks for those."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.calls: list[list[str]] = []
        self.name = "netns-exec"
        self.skipped: list[object] = []

    def kube_proxy_pod_for_node(self, node: str) -> tuple[str, str] | None:
        return ("kube-system", f"kube-proxy-{node}") if node == "node1" else None

    def exec_in_pod(self, namespace: str, pod: str, container: str | None, argv: list[str]) -> str:
        from svcctl.errors import ClusterError
        from svcctl.sources.node import ALLOWED_COMMANDS

        assert tuple(argv) in ALLOWED_COMMANDS.values(), argv
        self.calls.append(argv)
        r = self.lab.node_exec(argv, check=False)
        if r.returncode != 0:
            raise ClusterError(f"{' '.join(argv)}: {r.stderr.strip()}")
        return r.stdout


def test_kube_proxy_exec_path_reads_the_same_rules(lab: Lab) -> None:
    from svcctl.cli.app import App
    from svcctl.dataplane import load_node_rules
    from svcctl.sources.node import gather_node_dumps

    src = NetnsKubeProxy(lab)
    app = App(kubeconfig="unused", _source=src)  # type: ignore[arg-type]
    dumps = gather_node_dumps(app, "node1")
    assert dumps is not None
    assert src.calls[0] == ["iptables-save"]  # mode decided from iptables-save before anything else runs
    assert not any(c[0] in ("ipvsadm", "nft") for c in src.calls)  # not in those modes: never asked
    via_exec = load_node_rules(dumps).to_json()
    via_netns = rules_json("--netns", lab.node)
    via_exec.pop("source")
    via_netns.pop("source")
    assert via_exec == via_netns
    assert gather_node_dumps(app, "node2") is None  # no kube-proxy Pod there: a warning, no rules


def test_ipv6_rules_with_ip6tables(tmp_path: Path) -> None:
    """Dual-stack node: ip6tables-restore'd rules, requests to an IPv6 VIP, read back with --netns."""
    require_netns()
    with Lab(prefix="svt-ipt", n_pods=3, ipv6=True) as lab6:
        vip6 = "2001:db8:ff::10"
        c = GenCluster(services=[GenService("demo", "web6", vip6, [GenPort("http", 80, lab6.port)],
                                            [GenEndpoint(str(p.ip6)) for p in lab6.pods])],
                       cluster_cidr=f"{lab6.subnet6}/64", banner="ip6tables-save v1.8.9 (nf_tables)")
        lab6.iptables_restore(iptables_save(c), ipv6=True)
        lab6.iptables_restore(iptables_save(cluster_for(lab6)))
        doc = rules_json(f"[{vip6}]:80", "--netns", lab6.node)
        (entry,) = doc["services"]
        predicted = {(b["ip"], b["port"]): Fraction(b["share"]) for b in entry["backends"]}
        assert predicted == {(str(p.ip6), lab6.port): Fraction(1, 3) for p in lab6.pods}
        answers = lab6.http_get_many(vip6, 80, 90)
        by_ip = Counter(str(lab6.pod_by_name(a).ip6) for a in answers)
        assert {(ip, lab6.port) for ip in by_ip} == set(predicted)
        flows = flows_to(parse_conntrack(lab6.conntrack(), "ns"), vip6, 80)
        assert backend_counts(flows) == {(ip, lab6.port): n for ip, n in by_ip.items()}
        # the IPv4 rules of the same node are read too
        assert {s["address"] for s in rules_json("--netns", lab6.node)["services"]} >= {vip6, WEB_VIP}


def test_unreadable_node_rules_are_exit_3(lab: Lab) -> None:
    """Asking for nftables rules in a namespace without kube-proxy's nft table: the node could not be read."""
    r = svcctl("rules", "--netns", lab.node, "--mode", "nftables")
    assert r.returncode == 3, r.stderr
    assert "cannot read" in r.stderr and "nft list table ip kube-proxy" in r.stderr


@pytest.mark.parametrize("verbose", [True, False])
def test_iptables_list_output_reads_like_the_save(lab: Lab, verbose: bool) -> None:
    """`iptables -t nat -L -n [-v]` from the real tool (numeric protocols, `recent: CHECK …`) gives the same
    backends, shares and affinity as iptables-save for the nat entries."""
    from svcctl.dataplane.iptables import parse_iptables_save

    listing = lab.node_exec(["iptables", "-t", "nat", "-L", "-n"] + (["-v"] if verbose else [])).stdout
    from_list = {s.name: s for s in parse_iptables_save(listing, "list").services}
    from_save = {s.name: s for s in parse_iptables_save(lab.iptables_save(), "save").services
                 if not s.no_endpoints}
    assert set(from_list) == set(from_save) == {"demo/web:http", "demo/sticky:http"}
    for name, e in from_save.items():
        got = from_list[name]
        assert (got.address, got.port, got.protocol) == (e.address, e.port, e.protocol)
        assert [(b.address, b.probability) for b in got.backends] == [(b.address, b.probability) for b in e.backends]
        assert got.affinity_seconds == e.affinity_seconds


def test_namespace_without_kube_proxy_rules_is_exit_3() -> None:
    require_netns()
    with Lab(prefix="svt-ipt", n_pods=1) as bare:
        r = svcctl("rules", "--netns", bare.node)
        assert r.returncode == 3
        assert "no kube-proxy rules found on netns" in r.stderr

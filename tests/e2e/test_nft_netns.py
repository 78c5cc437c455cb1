"""kube-proxy nftables rules (both layouts) loaded with the real `nft -f` into a node namespace; real HTTP traffic.

What svcctl predicts from the table read back out of the namespace (`nft list` and `nft -j list`) must be what the
kernel does: the predicted backends answer, in shares consistent with 1/3 each (chi-square, p > P_MIN), conntrack
names the same backends, a Service without endpoints refuses connections, ClientIP affinity pins a client.
Addresses: pods 198.18.1.0/24, VIPs 198.19.0.0/16, all inside namespaces tests/support/netns.py creates and deletes.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_dumps_ipvs_nft import GenService, nft_script  # noqa: E402
from netns import Lab, require_netns  # noqa: E402

from svcctl.dataplane.conntrack import backend_counts, flows_to, parse_conntrack  # noqa: E402
from svcctl.dataplane.model import NodeRules  # noqa: E402
from svcctl.dataplane.nftables import parse_nft  # noqa: E402

pytestmark = pytest.mark.netns

N_REQUESTS = 300
P_MIN = 0.001  # reject "each backend gets 1/3" only when a fair split would produce this little agreement
WEB_VIP, EMPTY_VIP, STICKY_VIP = "198.19.0.20", "198.19.0.21", "198.19.0.22"




def chi_square_p(counts: list[int], expected: list[float]) -> float:
    """Upper-tail p-value of Pearson's chi-square statistic, closed form for an even number of degrees of freedom."""
    x = sum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True))
    df = len(counts) - 1
    if df % 2:
        raise ValueError("closed form needs an even number of degrees of freedom")
    half = x / 2
    return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(df // 2))


def test_chi_square_helper() -> None:
    assert chi_square_p([100, 100, 100], [100.0, 100.0, 100.0]) == pytest.approx(1.0)
    assert chi_square_p([200, 50, 50], [100.0, 100.0, 100.0]) < 1e-6


def script_for(lab: Lab, layout: str) -> str:
    eps = [(p.ip, lab.port) for p in lab.pods]
    return nft_script(
        [GenService("demo", "web", "http", WEB_VIP, 80, eps),
         GenService("demo", "sticky", "http", STICKY_VIP, 80, eps, affinity=600)],
        layout=layout, pod_cidr=f"{lab.subnet}.0/24", service_cidr="198.19.0.0/16",
        no_endpoints=[GenService("demo", "empty", "http", EMPTY_VIP, 80, [])])


@pytest.fixture(scope="module", params=["A", "B"])
def lab(request: pytest.FixtureRequest) -> Iterator[tuple[Lab, str]]:
    require_netns("nft")
    layout = str(request.param)
    with Lab(prefix="svt-nft", n_pods=3) as lab_:
        lab_.nft_load(script_for(lab_, layout))
        yield lab_, layout


def read_back(lab: Lab, json_out: bool = False) -> NodeRules:
    argv = ["nft"] + (["-j"] if json_out else []) + ["list", "table", "ip", "kube-proxy"]
    return parse_nft(lab.node_exec(argv).stdout, f"netns {lab.node}")


def test_predicted_backends_answer_in_predicted_shares(lab: tuple[Lab, str]) -> None:
    lab_, _ = lab
    rules = read_back(lab_)
    [web] = rules.lookup(WEB_VIP, 80, "TCP")
    predicted = {(b.ip, b.port): b.probability for b in web.backends}
    assert predicted == {(p.ip, lab_.port): Fraction(1, 3) for p in lab_.pods}
    lab_.conntrack_flush()
    answers = lab_.http_get_many(WEB_VIP, 80, N_REQUESTS)
    ip_of = {p.name: p.ip for p in lab_.pods}
    assert set(answers) <= set(ip_of), f"unexpected answers: {Counter(answers)}"
    by_ip = Counter(ip_of[a] for a in answers)
    keys = sorted(predicted)
    p = chi_square_p([by_ip[ip] for ip, _ in keys], [float(predicted[k]) * N_REQUESTS for k in keys])
    assert p > P_MIN, f"observed {dict(by_ip)} vs predicted 1/3 each: chi-square p={p:.2g}"
    # conntrack in the namespace sent each connection to the pod that answered
    flows = flows_to(parse_conntrack(lab_.conntrack(), f"netns {lab_.node}"), WEB_VIP, 80, "TCP")
    assert {ip: n for (ip, _), n in backend_counts(flows).items()} == dict(by_ip)


def test_list_and_json_read_back_the_same(lab: tuple[Lab, str]) -> None:
    lab_, layout = lab
    text, js = read_back(lab_).to_json(), read_back(lab_, json_out=True).to_json()
    assert text == js
    generated = parse_nft(script_for(lab_, layout), "generated").to_json()
    assert generated["services"] == text["services"]
    [web] = read_back(lab_).lookup(WEB_VIP, 80, "TCP")
    endpoint_chains = [c for c in web.path if c.startswith("endpoint-")]
    assert len(endpoint_chains) == (3 if layout == "A" else 0)


def test_no_endpoints_rejects(lab: tuple[Lab, str]) -> None:
    lab_, _ = lab
    [empty] = read_back(lab_).lookup(EMPTY_VIP, 80, "TCP")
    assert empty.no_endpoints and empty.name == "demo/empty:http"
    assert lab_.http_get_many(EMPTY_VIP, 80, 3, timeout=2) == ["refused"] * 3


def test_session_affinity_pins_one_backend(lab: tuple[Lab, str]) -> None:
    lab_, _ = lab
    [sticky] = read_back(lab_).lookup(STICKY_VIP, 80, "TCP")
    assert sticky.affinity_seconds == 600
    answers = lab_.http_get_many(STICKY_VIP, 80, 30)
    assert len(set(answers)) == 1 and answers[0].startswith("pod"), Counter(answers)
    # the kernel filled the affinity set; both listings show the pinned client at the pod that answered
    after, after_js = read_back(lab_), read_back(lab_, json_out=True)
    assert after.to_json() == after_js.to_json()
    [sticky] = after.lookup(STICKY_VIP, 80, "TCP")
    pod_ip = lab_.pod_by_name(answers[0]).ip
    pinned = [n for n in sticky.notes if "currently pinned" in n]
    assert len(pinned) == 1 and f"to {pod_ip}:{lab_.port}" in pinned[0] and f"{lab_.subnet}.1" in pinned[0]


def test_forwarded_client_goes_through_prerouting(lab: tuple[Lab, str]) -> None:
    lab_, _ = lab
    client = "cl0"
    if client not in lab_.clients:
        lab_.add_client(client)
    lab_.conntrack_flush()
    answers = lab_.http_get_many(WEB_VIP, 80, 60, client=client)
    assert set(answers) <= {p.name for p in lab_.pods} and len(set(answers)) >= 2, Counter(answers)
    flows = flows_to(parse_conntrack(lab_.conntrack(), "ns"), WEB_VIP, 80)
    assert len(flows) == 60
    # the client is outside the pod network: kube-proxy's rules masquerade it (reply goes to the node)
    assert all(f.snat for f in flows)

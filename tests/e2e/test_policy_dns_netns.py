"""The DNS-egress case caught before the DNS hop's timeout, on real packets: a real dnsmasq "CoreDNS Pod" in a
network namespace, svcctl run inside the node namespace, and the client's default-deny Egress made real on the
wire by a DROP rule (inside the node namespace) for port 53 to the DNS Pod -- so a query that is sent does time
out. The DROP rule's packet counters and dnsmasq's query log say whether svcctl sent anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dnsserver import TTL, require_dnsmasq  # noqa: E402
from netns import Lab, require_netns  # noqa: E402
from scenarios import builder as b  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.dnsserver]

JSON = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent.parent
DB_VIP, DNS_VIP = "198.19.0.60", "198.19.0.10"






DENY_EGRESS = b.network_policy("web", "default-deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
ALLOW_DNS = b.network_policy("web", "allow-dns", {
    "podSelector": {}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]})


def _snapshot(tmp_path: Path, dns_ip: str, *policies: JSON) -> str:
    svc = b.service("db", {"app": "db"}, ports=[("redis", 6379, 6379, "TCP")], cluster_ip=DB_VIP)
    db0 = b.pod("db-0", {"app": "db"}, ip="198.18.1.20", node="node-a",
                containers=[b.container("redis", [("redis", 6379, "TCP")])])
    web = b.pod("web-0", {"role": "web"}, ns="web", ip="198.18.1.30", node="node-a")
    dns_svc = b.service("kube-dns", {"k8s-app": "kube-dns"}, ns="kube-system", cluster_ip=DNS_VIP,
                        ports=[("dns", 53, 53, "UDP"), ("dns-tcp", 53, 53, "TCP")])
    coredns = b.pod("coredns-0", {"k8s-app": "kube-dns"}, ns="kube-system", ip=dns_ip, node="node-a",
                    containers=[b.container("coredns", [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")])])
    objs = [svc, db0, web, dns_svc, coredns, b.endpoint_slice(svc, [b.endpoint(db0)], ports=[("redis", 6379, "TCP")]),
            b.node("node-a", ip="198.18.1.1"), b.namespace("default"), b.namespace("web"), b.namespace("kube-system"), *policies]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(b.as_list(objs)))
    return str(path)


@pytest.fixture
def dns_lab(tmp_path: Path) -> Iterator[tuple[Lab, Path]]:
    require_netns()
    binary = require_dnsmasq()
    with Lab(prefix="svt-pdns", n_pods=1) as lab:
        pod = lab.pods[0]  # the "CoreDNS Pod": dnsmasq on its address, port 53
        conf, log = tmp_path / "dnsmasq.conf", tmp_path / "dnsmasq.log"
        conf.write_text(f"local=/cluster.local/\nlocal-ttl={TTL}\n"
                        f"host-record=db.default.svc.cluster.local,{DB_VIP},{TTL}\n"
                        f"host-record=kubernetes.default.svc.cluster.local,198.19.0.1,{TTL}\n")
        proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, binary, "--keep-in-foreground", "--no-resolv",
                                 "--no-hosts", "--no-poll", "--port=53", f"--listen-address={pod.ip}",
                                 "--bind-interfaces", f"--conf-file={conf}", "--user=root", "--group=root",
                                 f"--pid-file={tmp_path / 'dnsmasq.pid'}", f"--log-facility={log}",
                                 "--log-queries"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_dns(lab, pod.ip)
            yield lab, log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stderr:
                proc.stderr.close()


def _wait_dns(lab: Lab, ip: str) -> None:
    probe = ("import dns.message, dns.query, sys, time\n"
             "for _ in range(100):\n"
             "    try:\n"
             "        dns.query.udp(dns.message.make_query('db.default.svc.cluster.local', 'A'), sys.argv[1], "
             "timeout=0.2); sys.exit(0)\n"
             "    except Exception:\n"
             "        time.sleep(0.05)\n"
             "sys.exit(1)\n")
    lab.node_exec([sys.executable, "-c", probe, ip])


def _blackhole(lab: Lab, ip: str) -> None:
    """The client's Egress policy, made real on the wire: port 53 to the DNS Pod is dropped (no answer, no
    ICMP: the query times out, as under a default-deny Egress)."""
    for proto in ("udp", "tcp"):
        lab.node_exec(["iptables", "-A", "OUTPUT", "-d", ip, "-p", proto, "--dport", "53", "-j", "DROP"])


def _dropped(lab: Lab) -> int:
    out = lab.node_exec(["iptables", "-L", "OUTPUT", "-v", "-n", "-x"]).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if "DROP" in line)


def _trace(lab: Lab, snap: str, ip: str, *extra: str) -> tuple[int, JSON]:
    r = subprocess.run(["ip", "netns", "exec", lab.node, sys.executable, "-m", "svcctl", "trace", "db.default",
                        "--snapshot", snap, "--from-pod", "web/web-0", "--dns-server", ip, "--dns-timeout", "1",
                        "-o", "json", *extra], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def _dns_hop(doc: JSON) -> JSON:
    (hop,) = [h for h in doc["hops"] if h["hop"] == "dns"]
    return dict(hop)


def _queries(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if " query[" in line) if log.exists() else 0


def test_blocked_dns_egress_is_reported_without_sending_a_query(dns_lab: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, log = dns_lab
    ip = lab.pods[0].ip
    before = _queries(log)  # the readiness probe's own queries
    _blackhole(lab, ip)
    snap = _snapshot(tmp_path, ip, DENY_EGRESS)
    code, doc = _trace(lab, snap, ip)
    assert code == 1
    hop = _dns_hop(doc)
    assert hop["verdict"] == "broken"
    assert "blocks DNS" in hop["summary"] and "web/default-deny-egress" in hop["summary"]
    assert "not queried" in hop["summary"]
    assert not [d for d in hop["details"] if d.startswith("asked ")] and hop["data"]["queried"] is False
    assert _dropped(lab) == 0  # nothing was sent towards the DNS Pod: no timeout was waited out
    assert _queries(log) == before
    (f,) = [f for f in doc["findings"] if f["code"] == "PolicyDeniesDNS"]
    assert f["severity"] == "error" and "k8s-app: kube-dns" in f["hint"] and "port: 53" in f["hint"]
    assert "DNSServerUnreachable" not in {x["code"] for x in doc["findings"]}


def test_dns_anyway_sends_the_query_which_really_times_out(dns_lab: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, log = dns_lab
    ip = lab.pods[0].ip
    _blackhole(lab, ip)
    snap = _snapshot(tmp_path, ip, DENY_EGRESS)
    code, doc = _trace(lab, snap, ip, "--dns-anyway")
    assert code == 1
    hop = _dns_hop(doc)
    assert hop["verdict"] == "broken"
    assert [d for d in hop["details"] if d.startswith("asked ")]  # the query went out ...
    assert _dropped(lab) > 0  # ... and was dropped on the wire: this is the timeout the gate saves
    assert any("the client's Egress blocks DNS" in d for d in hop["details"])
    assert "PolicyDeniesDNS" in {x["code"] for x in doc["findings"]}


def test_allowed_dns_egress_queries_the_real_server(dns_lab: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, log = dns_lab
    ip = lab.pods[0].ip
    before = _queries(log)
    snap = _snapshot(tmp_path, ip, DENY_EGRESS, ALLOW_DNS)
    code, doc = _trace(lab, snap, ip)
    hop = _dns_hop(doc)
    assert hop["verdict"] == "ok", hop
    assert any(d.startswith("asked ") and DB_VIP in d for d in hop["details"])
    assert _queries(log) > before
    assert "PolicyDeniesDNS" not in {x["code"] for x in doc["findings"]}

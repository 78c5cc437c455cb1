"""kube-router's DSR services: `ipvsadm -Ln` shows only a firewall mark (`FWM 15773`); which address it serves
comes from kube-router's mangle rule that sets the mark, or, without it, from kube-router's own hash of the
Service's address, protocol and port (pkg/controllers/proxy/utils.go generateUniqueFWMark).

The mangle rules here are written by the real iptables in a test-created network namespace, with exactly the
arguments kube-router passes (`-d IP -m tcp -p tcp --dport PORT -j MARK --set-mark MARK`), and read back with
the real `iptables-save -t mangle`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from svcctl.dataplane.kube_router import dsr_fwmark, mangle_marks

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import gen_replace_dumps as gen  # noqa: E402

FX = HERE / "fixtures"
DSR = FX / "kube-router" / "ipvsadm-dsr.txt"
LB = "198.18.0.100"  # demo/shop's load-balancer IP in the scenario
RunCli = Callable[..., tuple[int, str, str]]


# Go's hash/fnv New32a over the same keys, & 0x3FFF (computed with go1.26 `hash/fnv`, as kube-router does):
# an implementation outside svcctl pins ours.
GO_FNV_MARKS = {
    ("198.18.0.100", "TCP", 443, 0): 15773,
    ("198.18.1.100", "tcp", 443, 0): 14374,
    ("198.18.9.9", "TCP", 443, 0): 13110,
    ("2001:db8::10", "TCP", 443, 0): 7071,
    ("198.18.1.100", "UDP", 53, 0): 15133,
    ("198.18.1.100", "TCP", 443, 1): 4640,
}


@pytest.mark.parametrize("key,mark", list(GO_FNV_MARKS.items()))
def test_fwmark_is_kube_routers_hash(key: tuple[str, str, int, int], mark: int) -> None:
    assert dsr_fwmark(*key) == mark


def _dsr_cluster(tmp_path: Path) -> Path:
    objs = yaml.safe_load((FX / "replace-cluster.yaml").read_text())
    for o in objs["items"]:
        if o["kind"] == "Service" and o["metadata"]["name"] == "shop":
            o["metadata"]["annotations"] = {"kube-router.io/service.dsr": "tunnel"}
    out = tmp_path / "cluster.yaml"
    out.write_text(yaml.safe_dump(objs))
    return out


def _trace(run_cli: RunCli, snap: Path, *args: Any) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(["trace", f"{LB}:443", "--snapshot", snap, "--node", "node-a", "--mode", "kube-router",
                              "--no-dns", *args, "-o", "json"])
    assert out, err
    return code, json.loads(out)


def _hops(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["hop"]: h for h in doc["ports"][0]["hops"]}


def test_trace_names_the_mark_by_kube_routers_hash(run_cli: RunCli, tmp_path: Path) -> None:
    """No mangle rules given: the LB IP's mark is the hash of `198.18.0.100-tcp-443`; the entry is the load
    balancer's, and the ETP Local Service sends it only to this node's endpoint, as kube-router does for DSR."""
    code, doc = _trace(run_cli, _dsr_cluster(tmp_path), "--ipvsadm", DSR)
    hops = _hops(doc)
    assert code == 0 and hops["node-rules"]["verdict"] == "ok", hops["node-rules"]
    assert any("firewall mark 15773 is 198.18.0.100:443/tcp (kube-router's hash" in d
               for d in hops["node-rules"]["details"])
    assert [(b["ip"], b["share"]) for b in doc["ports"][0]["backends"] if b["share"] not in ("0", None)] == [
        ("10.244.1.20", "1")]
    assert hops["drift"]["verdict"] == "ok", hops["drift"]


def test_a_mark_moved_by_a_collision_is_found_after_the_taken_one(run_cli: RunCli, tmp_path: Path) -> None:
    """Another address holds the first candidate (its mangle rule says so): kube-router retried with `-1`."""
    moved = dsr_fwmark(LB, "tcp", 443, 1)
    text = DSR.read_text().replace("FWM  15773 rr", f"FWM  15773 rr\n  -> 10.244.9.9:80                 Tunnel  1      "
                                                    f"0          0         \nFWM  {moved} rr", 1)
    ipvs = tmp_path / "ipvsadm.txt"
    ipvs.write_text(text)
    mangle = tmp_path / "mangle.txt"
    mangle.write_text("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 198.18.0.200/32 -p tcp -m tcp --dport 443 "
                      "-j MARK --set-xmark 0x3d9d/0xffffffff\nCOMMIT\n")  # 0x3d9d = 15773
    code, doc = _trace(run_cli, _dsr_cluster(tmp_path), "--ipvsadm", ipvs, "--iptables-save", mangle)
    details = " ".join(_hops(doc)["node-rules"]["details"])
    assert f"firewall mark {moved} is 198.18.0.100:443/tcp (kube-router's hash" in details
    assert "retry 1 after a collision" in details
    assert [b["ip"] for b in doc["ports"][0]["backends"]] == ["10.244.1.20"]


def test_an_unmatched_mark_is_a_warning_not_a_confident_not_programmed(run_cli: RunCli, tmp_path: Path) -> None:
    ipvs = tmp_path / "ipvsadm.txt"
    ipvs.write_text(DSR.read_text().replace("FWM  15773 rr", "FWM  999 rr"))
    code, doc = _trace(run_cli, _dsr_cluster(tmp_path), "--ipvsadm", ipvs)
    codes = {(f["code"], f["severity"]) for f in doc["findings"]}
    assert ("FirewallMarkUnmatched", "warning") in codes and not any(c == "ServiceNotProgrammed" for c, _ in codes)
    assert _hops(doc)["node-rules"]["verdict"] == "warning"
    # the same node without the DSR annotation: the mark is some other Service's, and this one is missing
    code, doc = _trace(run_cli, FX / "replace-cluster.yaml", "--ipvsadm", ipvs)
    assert [f["code"] for f in doc["findings"]] == ["ServiceNotProgrammed"] and code == 1


def _kube_router_mangle(rules: list[tuple[str, int, int]]) -> str:
    """kube-router's setupMangleTableRule, run by the real iptables in a throwaway namespace; iptables-save
    -t mangle back."""
    ns = f"svt-{os.getpid()}-krmangle"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for ip, port, mark in rules:
            args = ["-d", ip, "-m", "tcp", "-p", "tcp", "--dport", str(port), "-j", "MARK", "--set-mark", str(mark)]
            for chain in ("PREROUTING", "OUTPUT"):
                subprocess.run(["ip", "netns", "exec", ns, "iptables", "-t", "mangle", "-A", chain, *args], check=True)
            mss = ["-s", ip, "-m", "tcp", "-p", "tcp", "--sport", str(port), "-i", "kube-bridge", "--tcp-flags",
                   "SYN,RST", "SYN", "-j", "TCPMSS", "--set-mss", "1440"]
            subprocess.run(["ip", "netns", "exec", ns, "iptables", "-t", "mangle", "-A", "PREROUTING", *mss], check=True)
        return subprocess.run(["ip", "netns", "exec", ns, "iptables-save", "-t", "mangle"], capture_output=True,
                              text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.netns
def test_real_mangle_rules_name_each_mark(run_cli: RunCli, tmp_path: Path) -> None:
    """The mangle rule is the node's own word: it names the mark even where the hash would not (here the
    mark of a different address), and `rules -o json` shows the entry by its address."""
    text = _kube_router_mangle([(LB, 443, 15773), ("198.18.0.200", 443, 4242)])
    assert mangle_marks(text) == {15773: (LB, "TCP", 443), 4242: ("198.18.0.200", "TCP", 443)}
    mangle = tmp_path / "mangle.txt"
    mangle.write_text(text)
    code, out, err = run_cli(["rules", "--ipvsadm", DSR, "--mode", "kube-router", "--iptables-save", mangle,
                              "-o", "json"])
    doc = json.loads(out)
    lb = [s for s in doc["services"] if s["address"] == LB]
    assert len(lb) == 1 and lb[0]["port"] == 443 and lb[0]["protocol"] == "TCP", doc["services"]
    assert any("kube-router's mangle rule sets it" in n for n in lb[0]["notes"])
    assert not [s for s in doc["services"] if s["address"].startswith("fwmark")]


@pytest.mark.netns
def test_live_kube_router_agent_gives_its_mangle_rules(apiserver, run_cli: RunCli) -> None:  # type: ignore[no-untyped-def]
    """Through the kube-router Pod: `ipvsadm -Ln` and `iptables-save -t mangle` (both on the allow-list); the
    mark is named by the node's rule, with no hash involved (the mark here is not the hash's)."""
    from agents import AgentExec, agent_pod

    sc = gen.scenario()
    objs = gen.cluster_objects(sc)
    for o in objs:
        if o["kind"] == "Service" and o["metadata"]["name"] == "shop":  # type: ignore[index]
            o["metadata"]["annotations"] = {"kube-router.io/service.dsr": "tunnel"}  # type: ignore[index]
    ipvs = gen.kube_router_ipvsadm(sc, dsr=True).replace("FWM  15773 rr", "FWM  4242 rr")
    answers = {("kube-router-node-a", ("ipvsadm", "-Ln")): ipvs,
               ("kube-router-node-a", ("iptables-save", "-t", "mangle")): _kube_router_mangle([(LB, 443, 4242)])}
    srv = apiserver(objs + [agent_pod("kube-router", "node-a")], copy=False)
    handler = AgentExec(answers)
    srv.exec_handler = handler
    code, out, err = run_cli(["trace", f"{LB}:443", "--node", "node-a", "--no-dns", "-o", "json"],
                             env={"KUBECONFIG": str(srv.kubeconfig)})
    doc = json.loads(out)
    assert doc["node"]["mode"] == "kube-router" and code == 0, (err, doc["findings"])
    assert ["iptables-save", "-t", "mangle"] in [c[2] for c in handler.calls]
    details = " ".join(_hops(doc)["node-rules"]["details"])
    assert "firewall mark 4242 is 198.18.0.100:443/tcp (kube-router's mangle rule sets it)" in details

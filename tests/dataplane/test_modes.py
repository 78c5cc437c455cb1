"""The proxy-mode registry: a mode is one module implementing `ProxyMode` plus one registry line.

A fake mode registered here (its own dump key, snapshot file name, detection, parser and words) shows up in
`--mode`, is detected and parsed by `rules`, judged hop by hop by `trace` (from a dump file and from a
snapshot's nodes/<node>/ file), and its sentences are the ones printed. The built-in modes' tables (allowed
commands, dump files) come from the registry too.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from fractions import Fraction
from pathlib import Path

import pytest

from svcctl.dataplane import modes
from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import Backend, NodeRules, ServiceEntry
from svcctl.dataplane.modes import Dump, ProxyMode, Scope

RunCli = Callable[..., tuple[int, str, str]]
DEMO = Path(__file__).resolve().parent.parent.parent / "svcctl" / "data" / "demo"
TOY_TABLE = """TOYPROXY table v1
10.0.1.175:80/TCP default/hostnames:default 10.244.0.5:9376 10.244.0.6:9376
10.0.0.10:53/UDP kube-system/kube-dns:dns 10.244.0.2:53
"""


class ToyMode(ProxyMode):
    """A proxy that always sends new connections to its first backend: `ADDR:PORT/PROTO NAME BACKEND…` lines."""

    name = "toyproxy"
    description = "the toy proxy (a test mode)"
    dumps = (Dump("toy", "toy-proxy.txt", None, "the toy proxy's table"),)
    picks = "the toy proxy sends every new connection to its first backend."

    def present(self, texts: Mapping[str, str]) -> bool:
        return (texts.get("toy") or "").startswith("TOYPROXY")

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        text, origin = self.require(dumps, "toyproxy mode needs the toy proxy's table", "give --dump toy=FILE")
        rules = NodeRules(self.name, source=origin)
        for line in text.splitlines()[1:]:
            addr, name, *backends = line.split()
            hostport, proto = addr.split("/")
            host, port = hostport.rsplit(":", 1)
            if scope is not None and not ({name, name.split(":")[0], host, hostport} & scope.keys):
                continue
            entry = ServiceEntry(name, proto, host, int(port))
            for i, b in enumerate(backends):
                ip, bport = b.rsplit(":", 1)
                entry.backends.append(Backend(ip, int(bport), Fraction(1 if i == 0 else 0)))
            rules.services.append(entry)
        rules.stats.rules = len(rules.services)
        return rules

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        return [f"the toy proxy sends every connection to {entry.backends[0].address}"]


@pytest.fixture
def toy() -> Iterator[ToyMode]:
    mode = ToyMode()
    modes.register(mode, first=True)
    try:
        yield mode
    finally:
        modes.unregister(mode.name)


def test_a_registered_mode_is_a_mode_choice(run_cli: RunCli, toy: ToyMode) -> None:
    for cmd in ("rules", "trace", "check"):
        code, out, _ = run_cli([cmd, "--help"])
        assert code == 0 and "toyproxy" in out.split("--mode", 1)[1].split("\n", 1)[0], cmd
    assert "toy" in modes.dump_files() and modes.dump_files()["toy"] == "toy-proxy.txt"
    assert run_cli(["rules", "--mode", "nosuchproxy", "--dump", "toy=x"])[0] == 2


def test_rules_detects_and_parses_a_registered_mode(run_cli: RunCli, toy: ToyMode, tmp_path: Path) -> None:
    table = tmp_path / "toy.txt"
    table.write_text(TOY_TABLE)
    code, out, err = run_cli(["rules", "--dump", f"toy={table}", "-o", "json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["mode"] == "toyproxy"
    assert [(s["name"], s["address"], s["port"], [b["ip"] for b in s["backends"]]) for s in doc["services"]] == [
        ("default/hostnames:default", "10.0.1.175", 80, ["10.244.0.5", "10.244.0.6"]),
        ("kube-system/kube-dns:dns", "10.0.0.10", 53, ["10.244.0.2"])]
    code, out, err = run_cli(["rules", "--dump", f"toy={table}"])
    assert code == 0 and out.rstrip().endswith(toy.picks), out
    code, out, err = run_cli(["rules", "10.0.0.10", "--dump", f"toy={table}", "-o", "json"])
    assert code == 0 and [s["name"] for s in json.loads(out)["services"]] == ["kube-system/kube-dns:dns"]


def test_trace_judges_a_registered_mode_from_a_file(run_cli: RunCli, toy: ToyMode, tmp_path: Path) -> None:
    table = tmp_path / "toy.txt"
    table.write_text(TOY_TABLE)
    code, out, err = run_cli(["trace", "10.0.1.175:80", "--dump", f"toy={table}", "-o", "json"])
    doc = json.loads(out)
    assert doc["node"]["mode"] == "toyproxy"
    hop = next(h for h in doc["ports"][0]["hops"] if h["hop"] == "node-rules")
    assert hop["verdict"] == "ok" and "[toyproxy]" in hop["summary"]
    assert "the toy proxy sends every connection to 10.244.0.5:9376" in hop["details"]
    assert [(b["ip"], b["share"]) for b in doc["ports"][0]["backends"]] == [("10.244.0.5", "1"),
                                                                            ("10.244.0.6", "0")]


def test_trace_reads_a_registered_mode_from_a_snapshot(run_cli: RunCli, toy: ToyMode, tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    shutil.copytree(DEMO, snap)
    (snap / "nodes" / "kind-worker" / "toy-proxy.txt").write_text(TOY_TABLE)
    code, out, err = run_cli(["trace", "hostnames", "--snapshot", str(snap), "--no-dns", "-o", "json"])
    doc = json.loads(out)
    assert doc["node"] == {"name": "kind-worker", "mode": "toyproxy"}, err
    hops = {h["hop"]: h for h in doc["ports"][0]["hops"]}
    assert "[toyproxy]" in hops["node-rules"]["summary"]
    # the toy's rules list both ready endpoints, as the API does: no drift
    assert hops["drift"]["verdict"] == "ok"
    assert any("also hold" in n and "iptables" in n for n in doc["notes"])


def test_the_built_in_tables_come_from_the_registry() -> None:
    from svcctl.sources.base import node_dump_files
    from svcctl.sources.node import ALLOWED_COMMANDS

    assert modes.names()[:6] == ["cilium", "calico-ebpf", "kube-router", "iptables", "ipvs", "nftables"]
    assert modes.allowed_commands() == ALLOWED_COMMANDS
    assert ALLOWED_COMMANDS["iptables"] == ("iptables-save",) and ALLOWED_COMMANDS["conntrack"] == ("conntrack", "-L")
    assert node_dump_files()["nftables"] == "nft.txt" and node_dump_files()["cilium"] == "cilium-service-list.txt"
    assert modes.mode_from_iptables("-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst") == "ipvs"
    assert modes.mode_from_iptables(":KUBE-SERVICES - [0:0]") == "iptables"
    assert modes.mode_from_iptables("") == "nftables"


def test_scope_splits_names_from_addresses() -> None:
    s = Scope.of({"default/hostnames", "10.0.1.175", "10.0.1.175:80", ":30080"})
    assert s.names == frozenset({"default/hostnames"})
    assert s.addresses == frozenset({"10.0.1.175", "10.0.1.175:80", ":30080"})
    assert s.keys == {"default/hostnames", "10.0.1.175", "10.0.1.175:80", ":30080"}

"""`svcctl collect --node-rules` on nodes without kube-proxy: the agents' listings land under nodes/<node>/ in
the bundle, and `--snapshot` reads the bundle back into the same trace as the live read."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import gen_replace_dumps as gen  # noqa: E402
from agents import AgentExec, agent_pod  # noqa: E402

from svcctl.sources.snapshot import SnapshotSource  # noqa: E402

RunCli = Callable[..., tuple[int, str, str]]


def test_collect_reads_each_agent_and_the_bundle_traces_the_same(apiserver, run_cli: RunCli,  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path) -> None:
    sc = gen.scenario()
    lb, rev = gen.cilium_bpf_lb_list(sc, "1.14")
    answers = {("cilium-node-a", ("cilium-dbg", "service", "list", "-o", "json")): gen.cilium_json(sc),
               ("cilium-node-a", ("cilium-dbg", "bpf", "lb", "list")): lb,
               ("cilium-node-a", ("cilium-dbg", "bpf", "lb", "list", "--revnat")): rev,
               ("calico-node-node-b", ("calico-node", "-bpf", "nat", "dump")): gen.calico_nat_dump(sc, "3.28")}
    objs = gen.cluster_objects(sc) + [agent_pod("cilium", "node-a"), agent_pod("calico-node", "node-b",
                                                                                   "calico-system")]
    srv = apiserver(objs, copy=False)
    handler = AgentExec(answers)
    srv.exec_handler = handler
    env = {"KUBECONFIG": str(srv.kubeconfig)}
    out = tmp_path / "bundle.tar.gz"
    code, _, err = run_cli(["collect", "--node-rules", "-n", "demo", "-o", str(out), "web"], env=env)
    assert code == 0, err
    snap = SnapshotSource(str(out))
    a, b = snap.node_dumps("node-a"), snap.node_dumps("node-b")
    assert a is not None and "cilium" in a.texts and b is not None and "calico-nat" in b.texts, (a, b)
    assert {c[0] for c in handler.calls} == {"cilium-node-a", "calico-node-node-b"}
    assert srv.writes == []
    for node, mode in (("node-a", "cilium"), ("node-b", "calico-ebpf")):
        live = run_cli(["trace", "demo/web", "--node", node, "--no-dns", "-o", "json"], env=env)
        offline = run_cli(["trace", "demo/web", "--snapshot", str(out), "--node", node, "--no-dns", "-o", "json"])
        docs = [json.loads(r[1]) for r in (live, offline)]
        assert [d["node"]["mode"] for d in docs] == [mode, mode], (live[2], offline[2])
        backends = [sorted((x["ip"], x["share"], x["state"]) for x in d["ports"][0]["backends"]) for d in docs]
        assert backends[0] == backends[1] and backends[0], backends

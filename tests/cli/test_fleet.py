"""`svcctl trace SVC --all-nodes`: every node's rules read through its kube-proxy Pod (a real websocket exec in
the test API server), judged against the API, with unreadable nodes reported and not fatal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from apiserver import FakeAPIServer
from gen_fleet import NOT_READY, READY, FleetExec, fleet_objects, node_name

from svcctl.sources import batch, targeted
from svcctl.sources.node import ALLOWED_COMMANDS

ALLOWED = {tuple(v) for v in ALLOWED_COMMANDS.values()}

Factory = Callable[..., FakeAPIServer]
RunCLI = Callable[..., tuple[int, str, str]]

BEHAVIOUR = {
    node_name(0): "ok",
    node_name(1): "stale",
    node_name(2): "missing",
    node_name(3): "fail",
    node_name(4): "hang",
    node_name(5): "nft",
    node_name(6): "nft-stale",
    node_name(7): "ok",
}


def fleet_server(apiserver: Factory, behaviour: dict[str, str], nodes: int, **kw: Any) -> tuple[FakeAPIServer,
                                                                                                  FleetExec]:
    srv = apiserver(fleet_objects(nodes, **kw), copy=False)
    handler = FleetExec(behaviour, hang_seconds=8.0)
    srv.exec_handler = handler
    return srv, handler


def run_fleet(run_cli: RunCLI, srv: FakeAPIServer, *args: str, timeout: str = "20") -> tuple[int, str, str]:
    """`timeout`: --request-timeout; short only where a node hangs on purpose (a loaded machine's execs are slow,
    and a targeted read makes several per node)."""
    return run_cli(["trace", "hostnames", "--all-nodes", "--request-timeout", timeout, *args],
                   env={"KUBECONFIG": str(srv.kubeconfig)})


def test_the_drifted_nodes_are_flagged_and_bad_nodes_do_not_stop_the_rest(apiserver: Factory,
                                                                           run_cli: RunCLI) -> None:
    srv, handler = fleet_server(apiserver, BEHAVIOUR, 9, without_proxy=(node_name(8),))
    code, out, err = run_fleet(run_cli, srv, "-o", "json", "--parallel", "4", timeout="5")
    assert code == 1, err
    doc = json.loads(out)
    assert doc["apiVersion"] == "svcctl/v1" and doc["kind"] == "FleetReport"
    assert doc["services"] == ["default/hostnames"]
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert sorted(nodes) == [node_name(i) for i in range(9)]

    def codes(name: str) -> list[str]:
        return sorted(f["code"] for f in nodes[name]["findings"])

    assert codes(node_name(0)) == [] and codes(node_name(7)) == []
    assert codes(node_name(1)) == ["StaleBackend"]
    assert NOT_READY in nodes[node_name(1)]["findings"][0]["message"]
    assert codes(node_name(2)) == ["EndpointNotProgrammed"]
    assert READY[-1] in nodes[node_name(2)]["findings"][0]["message"]
    assert codes(node_name(5)) == [] and nodes[node_name(5)]["mode"] == "nftables"
    assert codes(node_name(6)) == ["StaleBackend"] and nodes[node_name(6)]["mode"] == "nftables"
    assert nodes[node_name(0)]["mode"] == "iptables" and nodes[node_name(0)]["readable"] is True
    for name, why in ((node_name(3), "exited with 4"), (node_name(4), "did not finish within"),
                      (node_name(8), "no k8s-app=kube-proxy Pod")):
        n = nodes[name]
        assert n["readable"] is False and why in n["error"], n
        assert "\n" not in n["error"] and "f() {" not in n["error"], n  # a batch is said in words, not its script
        assert [(f["code"], f["severity"]) for f in n["findings"]] == [("NodeUnreadable", "warning")]
    s = doc["summary"]
    assert (s["nodes"], s["readable"], s["unreadable"], s["drifted"], s["clean"]) == (9, 6, 3, 3, 3)
    assert s["findings"] == {"EndpointNotProgrammed": 1, "StaleBackend": 2}
    # every exec is an allow-listed read; nothing was written
    assert all(tuple(argv) in ALLOWED or targeted.allowed(argv) for _, argv in handler.calls)
    # the iptables nodes that hold the Service were asked for its rules only (no whole iptables-save); the
    # nftables nodes (no KUBE-SVC chain) were read whole, which also told their mode
    whole = {n for n, argv in handler.calls if argv == ["iptables-save"]}
    assert whole == {node_name(i) for i in (3, 5, 6)}, whole
    assert srv.writes == []


def test_one_list_of_kube_proxy_pods_for_the_whole_fleet(apiserver: Factory, run_cli: RunCLI) -> None:
    behaviour = {node_name(i): "ok" for i in range(12)}
    srv, handler = fleet_server(apiserver, behaviour, 12)
    code, out, err = run_fleet(run_cli, srv, "-o", "json")
    assert code == 0, err
    assert all(not n["findings"] for n in json.loads(out)["nodes"])
    pod_lists = [r for r in srv.requests if r.resource == "pods" and r.verb == "list"]
    assert len(pod_lists) == 1 and pod_lists[0].query.get("labelSelector") == "k8s-app=kube-proxy"
    # per node, targeted reads only: the Service's chain, its cluster IP rule checked, its 9 endpoint chains,
    # and (the mode not given) IPVS mode's own chain, which would tell an IPVS node
    per_node = {node_name(i): [a for n, a in handler.calls if n == node_name(i)] for i in range(12)}
    for calls in per_node.values():
        assert sorted(a[3] for a in calls) == ["-C"] + ["-S"] * 11, calls
        assert calls[-1] == ["iptables", "-t", "nat", "-S", targeted.IPVS_TELL]
        assert not any(a == ["iptables-save"] for a in calls)
    assert len(handler.calls) == 12 * 12
    # the 11 commands of a node's round in one exec: `sh -c` of exactly those allow-listed argvs, framed
    assert len([r for r in srv.requests if r.resource == "pods/exec"]) == 12
    for _, pod, _, argv in srv.execs:
        got = batch.decode(argv)
        assert got is not None and got.commands == per_node[pod.removeprefix("kube-proxy-")], argv


def test_a_container_without_sh_is_read_one_exec_per_command(apiserver: Factory, run_cli: RunCLI) -> None:
    """No /bin/sh in the kube-proxy image: the runtime refuses the batch (containerd's "executable file not
    found"); each node is then read one exec per command, the same answer, and -v says why. After FLEET_AFTER
    such nodes (and none with a shell) the other nodes are not tried."""
    behaviour = {node_name(i): "stale" if i == 1 else "ok" for i in range(6)}
    srv, handler = fleet_server(apiserver, behaviour, 6)
    code, with_sh, err = run_fleet(run_cli, srv, "-o", "json", "--parallel", "1")
    assert code == 1, err
    commands = sorted(map(str, handler.calls))
    # a round per exec: one per node, and a second on the stale node for the chain of the endpoint the API
    # does not count (its jump was found in the first round's answer)
    assert len(srv.execs) == 6 + 1, [len(e[3]) for e in srv.execs]
    srv.shell = False
    srv.reset_counters()
    handler.calls.clear()
    code2, without, err2 = run_fleet(run_cli, srv, "-o", "json", "--parallel", "1", "-v")
    assert code2 == code, err2
    assert [n["findings"] for n in json.loads(without)["nodes"]] == [n["findings"] for n in json.loads(with_sh)["nodes"]]
    tried = [e for e in srv.execs if e[3][:1] == ["sh"]]
    assert len(tried) == batch.FLEET_AFTER, [e[1] for e in tried]
    assert sorted(map(str, handler.calls)) == commands  # the same commands, each its own exec
    assert len(srv.execs) == len(tried) + len(commands)
    assert "no sh in its kube-proxy container" in err2 and "executable file not found" in err2
    assert "one exec per command on the other nodes too" in err2


def test_plain_progress_lines_and_table_when_piped(apiserver: Factory, run_cli: RunCLI) -> None:
    srv, _ = fleet_server(apiserver, {node_name(0): "ok", node_name(1): "stale", node_name(2): "fail"}, 3)
    code, out, err = run_fleet(run_cli, srv, "--parallel", "2")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["NODE", "MODE", "VERDICT", "FINDINGS", "SECONDS"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows[node_name(0)][1:3] == ["iptables", "ok"]
    assert rows[node_name(1)][1:4] == ["iptables", "drift", "StaleBackend"]
    assert rows[node_name(2)][1:3] == ["-", "unreadable"]
    assert "reading the rules of 3 node(s)" in err
    assert sum(1 for ln in err.splitlines() if ln.startswith("[")) == 3  # one plain line per node
    assert f"warning: node {node_name(2)} could not be read" in err


@pytest.mark.parametrize("parallel", ["1", "8"])
def test_the_answer_does_not_depend_on_the_worker_count(apiserver: Factory, run_cli: RunCLI, parallel: str) -> None:
    behaviour = {node_name(i): ("stale" if i % 3 == 0 else "ok") for i in range(6)}
    srv, _ = fleet_server(apiserver, behaviour, 6)
    code, out, _ = run_fleet(run_cli, srv, "-o", "json", "--parallel", parallel)
    assert code == 1
    drifted = [n["name"] for n in json.loads(out)["nodes"] if n["findings"]]
    assert drifted == [node_name(0), node_name(3)]


def test_all_nodes_needs_a_live_cluster(run_cli: RunCLI) -> None:
    code, _, err = run_cli(["trace", "hostnames", "--snapshot", "demo", "--all-nodes"])
    assert code == 2 and "needs a live cluster" in err


def test_a_vip_target_finds_its_service(apiserver: Factory, run_cli: RunCLI) -> None:
    srv, _ = fleet_server(apiserver, {node_name(0): "missing"}, 1)
    code, out, err = run_cli(["trace", "10.96.0.0:80", "--all-nodes", "-o", "json"],
                             env={"KUBECONFIG": str(srv.kubeconfig)})
    assert code == 1, err
    assert [f["code"] for f in json.loads(out)["nodes"][0]["findings"]] == ["EndpointNotProgrammed"]


def test_read_fleet_gives_each_node_its_rules_or_its_error(apiserver: Factory) -> None:
    """The reader `check --all-nodes` builds on: rules per node, parsed on the one-Service path when asked."""
    from svcctl.sources.fleet import read_fleet
    from svcctl.sources.kubeconfig import resolve
    from svcctl.sources.live import LiveSource

    srv, _ = fleet_server(apiserver, {node_name(0): "ok", node_name(1): "fail", node_name(2): "nft"}, 3)
    src = LiveSource(resolve(str(srv.kubeconfig)), request_timeout=5)
    seen: list[str] = []
    reads = read_fleet(src, parallel=3, only={"default/hostnames"}, on_read=lambda r: seen.append(r.node))
    assert [r.node for r in reads] == [node_name(i) for i in range(3)] and sorted(seen) == [r.node for r in reads]
    ok, fail, nft = reads
    assert ok.rules is not None and ok.rules.mode == "iptables" and ok.error is None
    assert [(e.address, len(e.backends)) for e in ok.rules.services] == [("10.96.0.0", 9)]
    assert fail.rules is None and fail.error is not None and "exited with 4" in fail.error
    assert nft.rules is not None and nft.rules.mode == "nftables" and nft.dumps is not None
    assert set(nft.dumps.texts) == {"iptables", "nftables"}


def test_check_all_nodes_judges_every_readable_node(apiserver: Factory, run_cli: RunCLI) -> None:
    behaviour = {node_name(0): "ok", node_name(1): "stale", node_name(2): "fail", node_name(3): "nft-stale"}
    srv, _ = fleet_server(apiserver, behaviour, 4)
    code, out, err = run_cli(["check", "hostnames", "--all-nodes", "--parallel", "2", "-o", "json",
                              "--request-timeout", "5"], env={"KUBECONFIG": str(srv.kubeconfig)})
    assert code == 1, err
    doc = json.loads(out)
    assert [d["node"] for d in doc["summary"]["checks"]["drift"]] == [node_name(0), node_name(1), node_name(3)]
    drift = [f for s in doc["services"] for f in s["findings"] if f["check"] == "drift"]
    assert sorted((f["code"], f["node"]) for f in drift) == [("StaleBackend", node_name(1)),
                                                              ("StaleBackend", node_name(3))]
    assert any(node_name(2) in n and "could not be read" in n for n in doc["notes"])
    code, _, err = run_cli(["check", "hostnames", "--all-nodes", "--snapshot", "demo"])
    assert code == 2 and "needs a live cluster" in err


def test_progress_is_a_rich_bar_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from svcctl.analysis.fleet import NodeResult
    from svcctl.cli.app import App
    from svcctl.render.fleet import FleetProgress

    app = App()
    buf = io.StringIO()
    app.terminal._err = Console(file=buf, force_terminal=True, width=100)
    with FleetProgress(app) as progress:
        progress.tty = True
        progress.on_start(3)
        for i in range(3):
            progress.on_result(NodeResult(node_name(i), "iptables"))
        assert progress._progress is not None
        progress._progress.refresh()
    text = buf.getvalue()
    assert "reading nodes" in text and "3/3" in text
    assert "\x1b[" in text  # drawn with terminal control codes, not plain lines
    assert "[1/3]" not in text


@pytest.mark.parametrize("shell", [True, False])
def test_check_all_nodes_asks_for_the_endpoint_chains_in_the_first_round(apiserver: Factory, run_cli: RunCLI,
                                                                          shell: bool) -> None:
    """`check --all-nodes` gives each node's targeted read the Service's EndpointSlices: its endpoints' KUBE-SEP
    chains are asked while the Service's own chain is still unanswered (one round trip, not two). With a shell
    in the container they are in the same `sh -c` exec as the Service's chain, after it; without one, each
    node's `-S KUBE-SVC-…` answer is held until one of its `-S KUBE-SEP-…` arrives: without the slices none
    would come before that answer (the 10 s wait only bounds the failure)."""
    import threading

    srv, inner = fleet_server(apiserver, {node_name(0): "ok", node_name(1): "ok"}, 2)
    srv.shell = shell
    sep_seen = {node_name(i): threading.Event() for i in range(2)}
    early: dict[str, bool] = {}

    def handler(ns: str, pod: str, container: str, argv: list[str]) -> tuple[str, str, int]:
        node = pod.removeprefix("kube-proxy-")
        if argv[:4] == ["iptables", "-t", "nat", "-S"] and argv[4].startswith("KUBE-SEP-"):
            sep_seen[node].set()
        if argv[:4] == ["iptables", "-t", "nat", "-S"] and argv[4].startswith("KUBE-SVC-"):
            early[node] = sep_seen[node].wait(0 if shell else 10)
        return inner(ns, pod, container, argv)

    srv.exec_handler = handler
    code, out, err = run_cli(["check", "hostnames", "--all-nodes", "--parallel", "2", "-o", "json",
                              "--request-timeout", "30"], env={"KUBECONFIG": str(srv.kubeconfig)})
    assert code in (0, 1) and out.startswith("{"), err  # 1: the not-ready Pod's finding, not drift
    if shell:
        assert len(srv.execs) == 2, [e[3][:3] for e in srv.execs]
        for *_, argv in srv.execs:
            got = batch.decode(argv)
            assert got is not None
            chains = [c[4] for c in got.commands if c[3] == "-S"]
            assert chains[0].startswith("KUBE-SVC-") and sum(c.startswith("KUBE-SEP-") for c in chains) == len(READY)
    else:
        assert early == {node_name(0): True, node_name(1): True}
    doc = json.loads(out)
    assert [d["node"] for d in doc["summary"]["checks"]["drift"]] == [node_name(0), node_name(1)]
    assert not [f for s in doc["services"] for f in s["findings"] if f["check"] == "drift"]


def _dump_of(objs: list[dict[str, Any]]) -> str:
    """The iptables-save kube-proxy writes for the objects' Services (their ready endpoints): every node's."""
    from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, iptables_save

    ready: dict[tuple[str, str], list[str]] = {}
    for o in objs:
        if o["kind"] == "EndpointSlice":
            key = (o["metadata"]["namespace"], o["metadata"]["labels"]["kubernetes.io/service-name"])
            ready.setdefault(key, []).extend(e["addresses"][0] for e in o["endpoints"] if e["conditions"]["ready"])
    gens = [GenService(o["metadata"]["namespace"], o["metadata"]["name"], o["spec"]["clusterIP"],
                       [GenPort(p["name"], p["port"], p["targetPort"]) for p in o["spec"]["ports"]],
                       [GenEndpoint(ip) for ip in ready.get((o["metadata"]["namespace"], o["metadata"]["name"]), [])])
            for o in objs if o["kind"] == "Service"]
    return iptables_save(GenCluster(gens, cluster_cidr="10.128.0.0/9"))


@pytest.mark.parametrize("case", ["selected", "every", "over the bound"])
def test_check_all_nodes_of_many_services_reads_them_targeted_up_to_a_bound(
        apiserver: Factory, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """`check --all-nodes` of 30 Services: each node is asked for their rules only, batched (a few execs per
    node, no whole dump), and the output says so; `check -A` (every Service of the cluster: the whole dump is
    exactly their rules) and more Services than the bound read each node whole, and say why. The drift answer
    is the same either way."""
    from gen_fleet import RuleIndex

    from svcctl.sources import fleet

    objs = fleet_objects(3, services=30)
    dump = _dump_of(objs)
    index = RuleIndex(dump)
    srv = apiserver(objs, copy=False)
    srv.exec_handler = lambda ns, pod, c, argv: ((dump, "", 0) if argv == ["iptables-save"] else
                                                 index.answer(argv) or ("", "not found\n", 127))
    if case == "over the bound":
        monkeypatch.setattr(fleet, "TARGETED_MAX", 10)
    args = ["check", "-A", "--all-nodes", "--no-dns", "-o", "json", "--kubeconfig", str(srv.kubeconfig)]
    code, out, err = run_cli(args if case == "every" else [*args, "-l", "app"])
    assert code in (0, 1) and out.startswith("{"), err
    doc = json.loads(out)
    assert len(doc["services"]) == 30
    notes = " ".join(doc["notes"])
    drift = sorted((s["namespace"], s["name"], f["code"]) for s in doc["services"] for f in s["findings"]
                   if f["check"] == "drift")
    saves = [e for e in srv.execs if e[3] == ["iptables-save"]]
    if case == "selected":
        assert "asked for the rules of the 30 Service(s) checked only (targeted reads)" in notes, notes
        # ≈ 360 commands a node: one round, split into a few execs of ≤ 6 kB scripts
        assert saves == [] and len(srv.execs) <= 3 * 6, [len(e[3][2]) for e in srv.execs]
        assert all(batch.decode(e[3]) is not None for e in srv.execs)
        commands = [c for e in srv.execs for c in batch.decode(e[3]).commands]  # type: ignore[union-attr]
        assert len({c[4] for c in commands if c[3] == "-S"}) > 30 * 5  # every Service's chain and endpoints
    else:
        assert len(saves) == 3 and len(srv.execs) == 3
        why = "every Service of the cluster is checked" if case == "every" else "30 Services, more than the 10"
        assert "each node's rules were read whole (" + why in notes, notes
    assert drift == [], drift  # (the rules match the API: nothing to find, however they were read)
    assert [c["node"] for c in doc["summary"]["checks"]["drift"]] == [node_name(i) for i in range(3)]

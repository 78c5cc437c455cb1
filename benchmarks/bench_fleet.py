"""Fleet: `svcctl trace hostnames --all-nodes` over simulated nodes, each answering exec with its own dump after
an artificial network latency, with `--parallel 16` against sequential (`--parallel 1`) in the same run.

The test API server runs in this process (real HTTPS and websocket exec, tests/support/apiserver.py); every node has a
kube-proxy Pod whose `iptables-save` is generated for that node (tests/support/gen_fleet.py): every 10th node has a stale
endpoint, every 25th misses one, one node's exec fails. svcctl runs as a subprocess through the real client.
"nodes phase" is the report's own time for reading and judging the nodes (the rest is start-up and API reads).

`bench_big`: `check hostnames --all-nodes --parallel 32` over nodes holding 100 (small) or 50,000 (full) Services
each, through targeted reads, beside today's whole-dump read of the same nodes (on fewer nodes, extrapolated);
`bench_big_ipvs` the same over IPVS-mode nodes (`ipvsadm -Ln -t`, `ipset test`, … against the whole reads).

    python benchmarks/bench_fleet.py [--size small|full] [--latency 0.05] [--only all|parallel|big]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import SVCCTL, Row, machine, run, table

NODES = {"small": 40, "full": 200}


def pattern(i: int) -> str:
    if i == 7:
        return "fail"
    if i % 25 == 3:
        return "missing"
    return "stale" if i % 10 == 1 else "ok"


def bench(size: str, latency: float = 0.05, parallel: int = 16) -> list[Row]:
    from apiserver import FakeAPIServer, make_pki
    from gen_fleet import FleetExec, behaviours, fleet_objects

    n = NODES[size]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="svcctl-bench-fleet-") as tmp:
        pki = make_pki(Path(tmp) / "pki")
        srv = FakeAPIServer(fleet_objects(n), pki, copy=False).start()
        try:
            handler = FleetExec(behaviours(n, pattern))
            srv.exec_handler = handler
            srv.exec_latency = latency  # once per exec (a batched round is one)
            kc = srv.write_kubeconfig(Path(tmp) / "kubeconfig")
            env = {"KUBECONFIG": str(kc)}
            expect = sum(1 for i in range(n) if pattern(i) in ("stale", "missing"))
            results = {}
            for p in (1, parallel):
                srv.reset_counters()
                r = run([*SVCCTL, "trace", "hostnames", "--all-nodes", "--parallel", str(p), "-o", "json"], env=env)
                note, phase = f"exit {r.rc}: {r.stderr[-200:]}", ""
                if r.rc in (0, 1) and r.stdout.startswith("{"):
                    s = json.loads(r.stdout)["summary"]
                    note = (f"{s['drifted']} drifted (expected {expect}), {s['unreadable']} unreadable, "
                            f"{s['clean']} clean")
                    phase = f"{s['seconds']:.2f} s"
                results[p] = (r, srv.request_count, note, phase)
            seq = results[1][0]
            for p in (1, parallel):
                r, reqs, note, phase = results[p]
                rows.append(Row("fleet", f"trace --all-nodes --parallel {p} ({n} nodes, {latency * 1000:.0f} ms "
                                         "exec latency)", r.seconds, r.rss_mb,
                                "--parallel 1" if p != 1 else "", seq.seconds if p != 1 else None,
                                {"requests": str(reqs), "nodes phase": phase}, note))
        finally:
            srv.stop()
    return rows


# `check hostnames --all-nodes` over big nodes: (nodes, Services per node) for the targeted read; the whole-dump
# baseline (today's read of a node) runs on BASELINE_NODES of the same nodes and is extrapolated
BIG = {"small": (40, 100), "full": (1000, 50_000)}
BASELINE_NODES = {"small": 8, "full": 2}


class BigNodeExec:
    """Every node holds the same big iptables rules (the `hostnames` Service and `services - 1` others, each with
    5 endpoints, hostnames 9; tests/support/gen_dumps.py): whole `iptables-save` answered with the dump, the targeted commands as
    iptables answers them (tests/support/gen_fleet.RuleIndex). The test API server waits `latency` seconds before
    each exec's answer (the node's and the network's time; a batched `sh -c` round is one exec, its commands run
    through this handler one after another, tests/support/sh_standin.py). `whole_only`: targeted commands are
    "not found" (exit 127), so svcctl reads each node whole — today's read, the baseline."""

    def __init__(self, text: str) -> None:
        from gen_fleet import RuleIndex

        self.text = text
        self.index = RuleIndex(text)
        self.whole_only = False
        self.bytes_out = 0
        self.calls = 0

    def __call__(self, ns: str, pod: str, container: str, argv: list[str]) -> tuple[str, str, int]:
        self.calls += 1
        if argv == ["iptables-save"]:
            out: tuple[str, str, int] = (self.text, "", 0)
        elif self.whole_only or argv[:1] != ["iptables"]:
            out = ("", f"{argv[0]}: not found\n", 127)
        else:
            out = self.index.answer(argv) or ("", "bad\n", 2)
        self.bytes_out += len(out[0]) + len(out[1]) + sum(len(a) + 1 for a in argv)
        return out


def big_dump(services: int) -> str:
    from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, big_cluster, iptables_save
    from gen_fleet import READY, VIP

    hostnames = GenService("default", "hostnames", VIP, [GenPort("http", 80, 9376)], [GenEndpoint(ip) for ip in READY])
    others = big_cluster(services - 1, 5).services  # 5 endpoints each: 50,000 × 10 would not fit in its pod range
    return iptables_save(GenCluster([hostnames, *others], cluster_cidr="10.128.0.0/9"))


def _per_node(srv: Any, handler: Any, count: int) -> str:
    """pods/exec requests per node, and the node commands they ran (a batched `sh -c` round runs several)."""
    execs = len(srv.execs) / count
    commands = handler.calls / count
    return f"{execs:.1f} ({commands:.0f} commands)" if commands != execs else f"{execs:.0f}"


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _quantile(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def _targeted_and_whole(handler: Any, n: int, nb: int, latency: float, parallel: int, extra: list[str],
                        ) -> dict[str, tuple[Any, float, str, float, list[float]]]:
    """`check hostnames --all-nodes` against a test API server whose nodes answer through `handler`: targeted
    over `n` nodes, then whole (the handler answering only whole reads) over `nb`; per run its result, the bytes
    moved per node, the execs per node, the simulator's CPU (this process) and each exec's time in it."""
    from apiserver import FakeAPIServer, make_pki
    from gen_fleet import fleet_objects

    results = {}
    with tempfile.TemporaryDirectory(prefix="svcctl-bench-fleet-") as tmp:
        pki = make_pki(Path(tmp) / "pki")
        for label, count, whole in (("targeted", n, False), ("whole", nb, True)):
            srv = FakeAPIServer(fleet_objects(count), pki, copy=False).start()
            try:
                srv.exec_handler, srv.exec_latency = handler, latency
                handler.whole_only, handler.bytes_out, handler.calls = whole, 0, 0
                kc = srv.write_kubeconfig(Path(tmp) / f"kubeconfig-{label}")
                cpu0 = _cpu_self()
                r = run([*SVCCTL, "check", "hostnames", "--all-nodes", "--parallel", str(parallel), "-o", "json",
                         "--request-timeout", "600", *extra], env={"KUBECONFIG": str(kc)})
                sim_cpu = _cpu_self() - cpu0
                results[label] = (r, sum(srv.exec_bytes) / count, _per_node(srv, handler, count), sim_cpu,
                                  list(srv.exec_seconds))
            finally:
                srv.stop()
    return results


def bench_big(size: str, latency: float = 0.05, parallel: int = 32, nodes: int | None = None,
              services: int | None = None) -> list[Row]:
    """`check hostnames --all-nodes --parallel 32`, targeted reads against today's whole-dump read.

    Beside the wall time: svcctl's own CPU (user + system of its process) and the simulator's (this process: the
    test API server's threads answering every exec), and each exec's time in the simulator, from its
    connection's accept to its last frame (the 50 ms latency included): when that stays near the latency, the
    simulator is not what svcctl waits for."""

    n, n_services = BIG[size]
    n, n_services = nodes or n, services or n_services
    nb = min(BASELINE_NODES[size], n)
    text = big_dump(n_services)
    handler = BigNodeExec(text)
    rows: list[Row] = []
    results = _targeted_and_whole(handler, n, nb, latency, parallel, [])
    (t, t_bytes, t_calls, t_sim, t_lat), (w, w_bytes, w_calls, w_sim, _) = results["targeted"], results["whole"]
    per_node_whole = w.seconds / nb
    extrapolated = w.seconds * max(1.0, n / max(parallel, nb)) if nb < n else w.seconds
    note_t = f"exit {t.rc}" + (f": {t.stderr.strip().splitlines()[-1][:120]}" if t.rc not in (0, 1) and t.stderr else "")
    execs = max(1, len(t_lat))
    note_t += (f"; per exec in the simulator: median {_quantile(t_lat, 0.5) * 1000:.0f} ms, "
               f"p90 {_quantile(t_lat, 0.9) * 1000:.0f} ms; svcctl {t.cpu_s / execs * 1000:.2f} ms CPU per exec")
    rows.append(Row("fleet", f"check hostnames --all-nodes --parallel {parallel}: targeted reads ({n} nodes × "
                             f"{n_services:,} Services, {latency * 1000:.0f} ms exec latency)", t.seconds, t.rss_mb,
                    f"whole iptables-save per node, {nb} nodes measured, ×{n}/{max(parallel, nb)} extrapolated",
                    extrapolated,
                    {"bytes/node": _size(t_bytes), "execs/node": t_calls,
                     "svcctl CPU": f"{t.cpu_s:.1f} s", "simulator CPU": f"{t_sim:.1f} s"}, note_t))
    rows.append(Row("fleet", f"baseline: the same, whole iptables-save per node ({nb} nodes × {n_services:,} Services)",
                    w.seconds, w.rss_mb, "", None,
                    {"bytes/node": _size(w_bytes), "execs/node": w_calls,
                     "svcctl CPU": f"{w.cpu_s:.1f} s", "simulator CPU": f"{w_sim:.1f} s"},
                    f"exit {w.rc}; {per_node_whole:.2f} s per node at --parallel {parallel}; dump "
                    f"{_size(len(text))}"))
    return rows


# what iptables-save shows on a node whose kube-proxy runs in IPVS mode: its glue chains, a few kB whatever the
# node holds (pkg/proxy/ipvs/proxier.go writes the same rules for 1 or 50,000 Services: they match ipsets)
IPVS_IPTABLES = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" \
-m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES ! -s 10.128.0.0/9 -m comment --comment "Kubernetes service cluster ip + port for masquerade \
purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
COMMIT
"""


class BigIpvsExec:
    """Every node in IPVS mode with the same big tables (the `hostnames` Service and `services - 1` others, 5
    endpoints each; tests/support/gen_dumps_ipvs_nft.py prints ipvsadm's format): `ipvsadm -Ln` / `ipset list` /
    `ip addr show kube-ipvs0` answered whole, `ipvsadm -Ln -t ADDR:PORT` as ipvsadm's list_service prints it,
    `ipset test` and `ip -o addr show …` with those tools' words (tests/sources/test_targeted_ipvs.py runs the
    real ipset and ip), the iptables reads from the IPVS-mode glue above (the test API server waits the latency
    once per exec).
    `whole_only`: targeted commands are "not found" (exit 127), so svcctl reads each node whole (the baseline)."""

    def __init__(self, services: int) -> None:
        from gen_dumps_ipvs_nft import VS, big_services, print_ipvsadm, print_ipvsadm_service, services_to_vs
        from gen_fleet import READY, VIP, RuleIndex

        vss = [VS("TCP", VIP, 80, reals=[{"ip": ip, "port": 9376} for ip in READY]),
               *services_to_vs(big_services(services - 1, 5))]
        self.whole = {("ipvsadm", "-Ln"): print_ipvsadm(vss, "list")}
        self.bound = {v.address for v in vss}
        self._print_one = print_ipvsadm_service
        self._vs_by = {(v.address, v.port): v for v in vss}
        self.members = {f"{v.address},tcp:{v.port}" for v in vss}
        members = sorted(self.members)
        self.whole[("ipset", "list")] = (
            "Name: KUBE-CLUSTER-IP\nType: hash:ip,port\nRevision: 6\nHeader: family inet hashsize 1024 maxelem 65536 "
            f"bucketsize 12 initval 0x4a7b9c31\nSize in memory: {64 * len(members)}\nReferences: 2\n"
            f"Number of entries: {len(members)}\nMembers:\n" + "".join(f"{m}\n" for m in members))
        self.whole[("ip", "addr", "show", "kube-ipvs0")] = (
            "5: kube-ipvs0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN group default \n"
            "    link/ether 9e:5f:02:c1:7a:4d brd ff:ff:ff:ff:ff:ff\n"
            + "".join(f"    inet {v.address}/32 scope global kube-ipvs0\n       valid_lft forever preferred_lft "
                      "forever\n" for v in vss))
        self.whole[("iptables-save",)] = IPVS_IPTABLES
        self.index = RuleIndex(IPVS_IPTABLES)
        self.whole_only = False
        self.bytes_out = 0
        self.calls = 0

    def _answer(self, argv: list[str]) -> tuple[str, str, int]:
        got = self.whole.get(tuple(argv))
        if got is not None:
            return got, "", 0
        if self.whole_only:
            return "", f"{argv[0]}: not found\n", 127
        if argv[:2] == ["ipvsadm", "-Ln"] and len(argv) == 4 and argv[2] == "-t":
            addr, _, port = argv[3].rpartition(":")
            v = self._vs_by.get((addr, int(port)))
            return (self._print_one(v), "", 0) if v is not None else ("", "No such service\n", 1)
        if argv[:2] == ["ipset", "test"]:
            if argv[2] == "KUBE-CLUSTER-IP" and argv[3] in self.members:
                return "", f"Warning: {argv[3]} is in set {argv[2]}.\n", 0
            return "", f"{argv[3]} is NOT in set {argv[2]}.\n", 1
        if argv[:7] == ["ip", "-o", "addr", "show", "dev", "kube-ipvs0", "to"]:
            a = argv[7].split("/")[0]
            if a in self.bound:
                return f"5: kube-ipvs0    inet {argv[7]} scope global kube-ipvs0\\       valid_lft forever " \
                       "preferred_lft forever\n", "", 0
            return "", "", 0
        if argv == ["ip", "-o", "addr", "show", "up"]:
            return ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
                    "2: eth0    inet 172.18.0.2/16 brd 172.18.255.255 scope global eth0\\       valid_lft forever "
                    "preferred_lft forever\n"), "", 0
        if argv[:1] == ["iptables"]:
            return self.index.answer(argv) or ("", "bad\n", 2)
        return "", f"{argv[0]}: not found\n", 127

    def __call__(self, ns: str, pod: str, container: str, argv: list[str]) -> tuple[str, str, int]:
        self.calls += 1
        out = self._answer(argv)
        self.bytes_out += len(out[0]) + len(out[1]) + sum(len(a) + 1 for a in argv)
        return out


def bench_big_ipvs(size: str, latency: float = 0.05, parallel: int = 32, nodes: int | None = None,
                   services: int | None = None, given_mode: bool = False) -> list[Row]:
    """The same `check hostnames --all-nodes` over IPVS-mode nodes: targeted reads against the whole reads
    (`given_mode`: with `--mode ipvs`, else the mode is told by each node's first round)."""

    n, n_services = BIG[size]
    n, n_services = nodes or n, services or n_services
    nb = min(BASELINE_NODES[size], n)
    handler = BigIpvsExec(n_services)
    dump = sum(len(t) for t in handler.whole.values())
    mode = ["--mode", "ipvs"] if given_mode else []
    results = _targeted_and_whole(handler, n, nb, latency, parallel, mode)
    (t, t_bytes, t_calls, _, _), (w, w_bytes, w_calls, _, _) = results["targeted"], results["whole"]
    extrapolated = w.seconds * max(1.0, n / max(parallel, nb)) if nb < n else w.seconds
    return [
        Row("fleet", f"IPVS: check hostnames --all-nodes --parallel {parallel}{' --mode ipvs' if given_mode else ''}: "
                     f"targeted reads ({n} nodes × "
                     f"{n_services:,} Services, {latency * 1000:.0f} ms exec latency)", t.seconds, t.rss_mb,
            f"whole ipvsadm/ipset/ip addr per node, {nb} nodes measured, ×{n}/{max(parallel, nb)} extrapolated",
            extrapolated, {"bytes/node": _size(t_bytes), "execs/node": t_calls,
                           "svcctl CPU": f"{t.cpu_s:.1f} s", "simulator CPU": ""}, f"exit {t.rc}"),
        Row("fleet", f"IPVS baseline: the same, whole reads per node ({nb} nodes × {n_services:,} Services)",
            w.seconds, w.rss_mb, "", None, {"bytes/node": _size(w_bytes), "execs/node": w_calls,
                                            "svcctl CPU": f"{w.cpu_s:.1f} s", "simulator CPU": ""},
            f"exit {w.rc}; whole reads {_size(dump)}"),
    ]


def _size(n: float) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(NODES), default="small")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--only", choices=["all", "parallel", "big", "iptables", "ipvs"], default="all",
                    help="big: both modes' big nodes; iptables / ipvs: one of them")
    ap.add_argument("--nodes", type=int, help="bench_big: nodes instead of the size's")
    ap.add_argument("--services", type=int, help="bench_big: Services per node instead of the size's")
    args = ap.parse_args()
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} before")
    if args.only in ("all", "parallel"):
        print(table(bench(args.size, args.latency), ["requests", "nodes phase"]))
    rows: list[Row] = []
    if args.only in ("all", "big", "iptables"):
        rows += bench_big(args.size, args.latency, nodes=args.nodes, services=args.services)
    if args.only in ("all", "big", "ipvs"):
        for given in (False, True):
            rows += bench_big_ipvs(args.size, args.latency, nodes=args.nodes, services=args.services,
                                   given_mode=given)
    if rows:
        print(table(rows, ["bytes/node", "execs/node", "svcctl CPU", "simulator CPU"]))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())

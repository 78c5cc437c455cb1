"""Fleet: `svcctl trace hostnames --all-nodes` over simulated nodes, each answering exec with its own dump after
an artificial network latency, with `--parallel 16` against sequential (`--parallel 1`) in the same run.

The test API server runs in this process (real HTTPS and websocket exec, tests/apiserver.py); every node has a
kube-proxy Pod whose `iptables-save` is generated for that node (tests/gen_fleet.py): every 10th node has a stale
endpoint, every 25th misses one, one node's exec fails. svcctl runs as a subprocess through the real client.
"nodes phase" is the report's own time for reading and judging the nodes (the rest is start-up and API reads).

    python benchmarks/bench_fleet.py [--size small|full] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

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
            handler = FleetExec(behaviours(n, pattern), latency=latency)
            srv.exec_handler = handler
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(NODES), default="small")
    ap.add_argument("--latency", type=float, default=0.05)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(table(bench(args.size, args.latency), ["requests", "nodes phase"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

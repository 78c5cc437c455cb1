"""Every benchmark, one table per area, each figure beside a baseline measured in the same run, and the machine.

    python3 benchmarks/run_all.py [--size small|full] [--only startup,live,real,nodes,cluster,fleet] [--markdown FILE]

`small` (CI, a few minutes): start-up; 1,000-Service dumps in each mode; one Service at 3 vs 2,000 Services,
`endpoints -A` and `check -A` over 20,000 Pods; 40 nodes. `full` (by hand): 1,000 / 10,000 / 50,000-Service dumps; 3 vs
10,000 Services and 100,000 Pods; 200 nodes. Exit 0 unless a benchmark crashes (figures are never judged here).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, machine, table  # noqa: E402

AREAS: dict[str, tuple[str, list[str]]] = {
    "startup": ("Start-up (median of repeated runs)", []),
    "live": ("Live latency: one Service, an unreachable server, a completion (median of repeated runs)", []),
    "real": ("Live latency against the real kube-apiserver, beside the real kubectl (median of repeated runs)", []),
    "nodes": ("Big nodes: one Service vs the whole dump, per mode", ["mode", "dump", "cpu", "µs/line", "×file"]),
    "cluster": ("Big clusters: API cost of one Service, endpoints -A and check -A", ["requests", "bytes", "cpu"]),
    "fleet": ("Fleet: --all-nodes, parallel vs sequential; targeted reads vs whole dumps",
              ["requests", "nodes phase", "bytes/node", "execs/node"]),
}


def runner(area: str, size: str) -> Callable[[], list[Row]]:
    if area == "startup":
        import bench_startup

        return lambda: bench_startup.bench(size)
    if area == "live":
        import bench_live

        return lambda: bench_live.bench(size)
    if area == "real":
        import bench_kubectl

        return lambda: bench_kubectl.bench(size)
    if area == "nodes":
        import bench_nodes

        return lambda: bench_nodes.bench(size, 3 if size == "small" else 3)
    if area == "cluster":
        import bench_cluster

        return lambda: bench_cluster.bench(size, 3)
    import bench_fleet

    return lambda: (bench_fleet.bench(size) + bench_fleet.bench_big(size) + bench_fleet.bench_big_ipvs(size)
                    + bench_fleet.bench_big_ipvs(size, given_mode=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("--only", default=",".join(AREAS), help="comma-separated areas")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables here")
    args = ap.parse_args()
    out: list[str] = [f"svcctl benchmarks, --size {args.size}", f"machine: {machine()}", ""]
    print("\n".join(out), flush=True)
    crashed = []
    started = time.perf_counter()
    for area in args.only.split(","):
        title, cols = AREAS[area]
        t = time.perf_counter()
        try:
            rows = runner(area, args.size)()
        except Exception:  # noqa: BLE001 - report, go on with the other areas, exit 1 at the end
            traceback.print_exc()
            crashed.append(area)
            continue
        block = [f"## {title} ({time.perf_counter() - t:.0f} s)", "", table(rows, cols), ""]
        print("\n".join(block), flush=True)
        out += block
    out.append(f"total {time.perf_counter() - started:.0f} s" + (f"; crashed: {', '.join(crashed)}" if crashed else ""))
    print(out[-1])
    if args.markdown:
        Path(args.markdown).write_text("\n".join(out) + "\n")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())

"""How long reading a node without kube-proxy takes, against reading the same Services from iptables-save.

One generated cluster of N Services × 10 endpoints (plus a NodePort each) is written as kube-proxy's
iptables-save (the baseline: the mode svcctl has always read) and as each replacement's listing
(`cilium-dbg service list`, its `-o json`, `cilium-dbg bpf lb list`, `calico-node -bpf nat dump`, kube-router's
`ipvsadm -Ln`); each `svcctl rules --… FILE -o json` runs as a subprocess (median of repeats, peak RSS).
No assertions: figures only.

    python benchmarks/bench_replace.py [--size small|full] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SVCCTL, Row, machine, median_run, table  # noqa: E402

SIZES = {"small": 1_000, "full": 10_000}


def scenario(n: int):  # type: ignore[no-untyped-def]
    import gen_replace_dumps as gen
    from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService

    services = []
    for i in range(n):
        ip = f"10.96.{i // 250}.{i % 250 + 1}"
        eps = [GenEndpoint(f"10.{128 + (i * 10 + j) // 65000}.{((i * 10 + j) // 250) % 256}.{(i * 10 + j) % 250 + 1}",
                           local=j % 2 == 0) for j in range(10)]
        services.append(GenService(f"ns{i % 10}", f"svc-{i}", ip, [GenPort("http", 80, 8080,
                                                                            node_port=30000 + i % 2700)], eps))
    return gen.Scenario(GenCluster(services))


def bench(size: str, repeat: int = 3) -> list[Row]:
    import gen_replace_dumps as gen
    from gen_dumps import iptables_save

    n = SIZES[size]
    sc = scenario(n)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="svcctl-bench-replace-") as d:
        files = {
            "iptables-save": ("--iptables-save", iptables_save(sc.cluster)),
            "cilium-dbg service list": ("--cilium", gen.cilium_service_list(sc, "1.18")),
            "cilium-dbg service list -o json": ("--cilium", gen.cilium_json(sc)),
            "cilium-dbg bpf lb list": ("--cilium", gen.cilium_bpf_lb_list(sc, "1.18")[0]),
            "calico-node -bpf nat dump": ("--calico-nat", gen.calico_nat_dump(sc, "3.28")),
            "ipvsadm -Ln (kube-router)": ("--ipvsadm", gen.kube_router_ipvsadm(sc)),
        }
        paths = {}
        for i, (case, (flag, text)) in enumerate(files.items()):
            p = Path(d) / f"dump-{i}.txt"
            p.write_text(text)
            paths[case] = (flag, p, len(text.splitlines()))
        flag, p, _ = paths["iptables-save"]
        base = median_run([*SVCCTL, "rules", flag, str(p), "-o", "json"], repeat, warm=True)
        for case, (flag, p, lines) in paths.items():
            extra = ["--mode", "kube-router"] if "kube-router" in case else []
            r = base if case == "iptables-save" else median_run(
                [*SVCCTL, "rules", flag, str(p), *extra, "-o", "json"], repeat, warm=True)
            rows.append(Row("replace", f"rules {flag} ({case}), {n} Services", r.seconds, r.rss_mb,
                            baseline="rules --iptables-save, same Services", baseline_seconds=base.seconds,
                            extra={"lines": str(lines)}, note="" if r.rc == 0 else f"exit {r.rc}"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    print(table(bench(args.size, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

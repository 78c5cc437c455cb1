"""What reading node files as pastes costs, beside parsing them, measured in the same run (no judgement).

    python3 benchmarks/bench_paste.py [SERVICES]

A clean iptables-save (as the command printed it) passes svcctl/paste.py with a few substring searches of its
ends; a pasted one (a prompt line above it) is read line by line. Both are printed beside the time the
iptables-save parser takes for the same text, the baseline.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT))


def _median(fn: Callable[[], object], n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    from gen_dumps import big_cluster, iptables_save

    from svcctl.dataplane.iptables import parse_iptables_save
    from svcctl.paste import read

    services = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    text = iptables_save(big_cluster(services, 10))
    pasted = "$ sudo iptables-save\n" + text
    parse = _median(lambda: parse_iptables_save(text, "dump"), 1)
    clean = _median(lambda: read(text, "dump", "iptables"))
    lines = _median(lambda: read(pasted, "dump", "iptables"), 1)
    print(f"iptables-save of {services} Services, {len(text) / 1e6:.1f} MB")
    print(f"{'parse (baseline)':28} {parse * 1000:10.1f} ms")
    print(f"{'paste reader, clean file':28} {clean * 1000:10.2f} ms  ({clean / parse * 100:.2f}% of the parse)")
    print(f"{'paste reader, pasted file':28} {lines * 1000:10.1f} ms  ({lines / parse * 100:.0f}% of the parse)")


if __name__ == "__main__":
    main()

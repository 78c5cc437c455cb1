"""How long `svcctl rules` takes on a big node, against grepping the dump by hand.

Generates a kube-proxy iptables-save dump of N Services × 10 endpoints (10,000 → ~430k lines, 47 MB; `--size
small` = 1,000 for CI), then times, each as a subprocess with its peak RSS:

- `svcctl rules SERVICE --iptables-save FILE -o json`   (one Service: the streaming path)
- `svcctl rules --iptables-save FILE -o json`           (the whole dump)
- baseline: `grep -F` the Service's comment to find its KUBE-SVC chain, then `grep -F` that chain's rules
  (what a person does by hand; it does not follow the SEP chains, so it answers less)

and prints a table with ratios to the baseline. No assertions: figures only.

    python benchmarks/bench_rules.py [--size small|full] [--repeat 3] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gen_dumps import write_big  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

SIZES = {"small": 1_000, "full": 10_000}

# Runs argv, then reports its wall time and the peak RSS of its children (only that one command).
_MEASURE = r"""
import json, resource, subprocess, sys, time
argv = json.loads(sys.argv[1])
t = time.perf_counter()
p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": dt, "rss_kb": rss, "rc": p.returncode, "stdout": p.stdout.decode(errors="replace"),
                  "stderr": p.stderr.decode(errors="replace")[-500:]}))
"""


def measure(argv: list[str]) -> dict[str, object]:
    """One run of argv in a fresh measuring process, so RUSAGE_CHILDREN is that command's alone."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(argv)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    res: dict[str, object] = json.loads(out.stdout)
    return res


def baseline_grep(path: str, spn: str) -> dict[str, object]:
    """grep the comment to find the KUBE-SVC chain, then grep that chain (two processes, timed together)."""
    first = measure(["grep", "-F", "-m", "1", "--", f'"{spn} cluster IP"', path])
    line = str(first["stdout"])
    chain = line.rsplit("-j ", 1)[-1].strip() if "-j " in line else ""
    second = measure(["grep", "-F", "--", f"-A {chain} ", path]) if chain else {"rss_kb": 0, "stdout": "",
                                                                                 "seconds": 0.0}
    dt = float(str(first["seconds"])) + float(str(second["seconds"]))  # the two greps only
    rules = str(second["stdout"]).count("\n")
    return {"seconds": dt, "rss_kb": max(int(str(first["rss_kb"])), int(str(second["rss_kb"]))), "rc": 0,
            "found": f"{chain} ({rules} rules)"}


def best_of(n: int, fn: object, *args: object) -> dict[str, object]:
    assert callable(fn)
    runs = [fn(*args) for _ in range(n)]
    return min(runs, key=lambda r: float(str(r["seconds"])))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is shown")
    ap.add_argument("--keep", metavar="FILE", help="write the generated dump here and keep it")
    args = ap.parse_args()
    n = SIZES[args.size]
    path = args.keep or tempfile.mktemp(prefix="svcctl-bench-", suffix=".txt")
    try:
        t = time.perf_counter()
        lines = write_big(path, n)
        gen_s = time.perf_counter() - t
        size_mb = os.path.getsize(path) / 1e6
        i = n * 7 // 10
        svc, spn = f"ns{i % 100}/svc{i}", f"ns{i % 100}/svc{i}:http"
        print(f"dump: {n} Services x 10 endpoints, {lines} lines, {size_mb:.1f} MB (generated in {gen_s:.1f}s)")
        print(f"asking about: {svc}\n")
        svcctl = [sys.executable, "-m", "svcctl", "rules"]
        cases = [
            ("baseline: grep comment, then grep chain", best_of(args.repeat, baseline_grep, path, spn)),
            (f"svcctl rules {svc} (one Service)",
             best_of(args.repeat, measure, [*svcctl, svc, "--iptables-save", path, "-o", "json"])),
            ("svcctl rules -o json (whole dump)",
             best_of(max(1, args.repeat - 2), measure, [*svcctl, "--iptables-save", path, "-o", "json"])),
            ("svcctl --help (start-up only)", best_of(args.repeat, measure, [sys.executable, "-m", "svcctl",
                                                                              "--help"])),
        ]
        base = float(str(cases[0][1]["seconds"]))
        rows = []
        for name, r in cases:
            secs = float(str(r["seconds"]))
            note = str(r.get("found", ""))
            if "stdout" in r and str(r["stdout"]).startswith("{"):
                doc = json.loads(str(r["stdout"]))
                note = f"{len(doc['services'])} entries, {sum(len(s['backends']) for s in doc['services'])} backends"
            if int(str(r.get("rc", 0))) != 0:
                note = f"exit {r['rc']}: {str(r.get('stderr', ''))[-120:]}"
            rows.append((name, f"{secs:.3f}", f"{secs / base:.1f}x", f"{int(str(r['rss_kb'])) / 1024:.0f}", note))
        widths = [max(len(str(x)) for x in col) for col in zip(*rows, ("case", "seconds", "vs grep", "peak RSS MB",
                                                                       "result"), strict=False)]
        header = ("case", "seconds", "vs grep", "peak RSS MB", "result")
        for row in (header, *rows):
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))
    finally:
        if not args.keep and os.path.exists(path):
            os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

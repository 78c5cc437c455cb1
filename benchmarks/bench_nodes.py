"""Big nodes: `svcctl rules` / `svcctl trace` on generated kube-proxy dumps of N Services × 10 endpoints, in each
mode (iptables-save, `nft list table ip kube-proxy`, `ipvsadm -Ln`), against grepping the same file by hand.

Per mode and size, each as its own subprocess with its peak RSS:
- one Service: `svcctl rules SVC --MODE FILE -o json` and `svcctl trace VIP:80 --MODE FILE -o json` (the cut path:
  only that Service's chains / map elements / virtual server are parsed) — target < 1 s and < 200 MB at 10,000;
- the whole dump: `svcctl rules --MODE FILE -o json` (linear in the dump: the µs-per-line column is its CPU time,
  user + system, per line of the file; `×file` its peak RSS over the file's size, both in MiB: every "MB" in
  these tables is 2**20 bytes), beside `wc -l` of the file
  and the general parser (the mode's `FAST` off: no kube-proxy-shaped fast path) on the same file, whose output
  must be the same;
- `cpu`: the command's own user + system CPU time (the median run's), steadier than the wall time on a shared
  machine;
- one Service from a file of 1 MB or more is streamed (sources/scoped.py; every mode): its memory should stay
  flat from 10,000 to 50,000 Services;
- baseline: grep for the Service by hand — iptables: its comment, then its KUBE-SVC chain's rules; nftables: its
  service chain's name; IPVS: `grep -A 10` its VIP — which answers less (no shares, no SEP/endpoint chains).

    python benchmarks/bench_nodes.py [--size small|full] [--repeat 3] [--modes iptables,nftables,ipvs]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from common import SVCCTL, Row, machine, median_run, run, table

SIZES = {"small": [1_000], "full": [1_000, 10_000, 50_000]}
MODES = ("iptables", "nftables", "ipvs")
FLAG = {"iptables": "--iptables-save", "nftables": "--nft", "ipvs": "--ipvsadm"}


def _write(mode: str, path: str, n: int) -> int:
    from gen_big_dumps import write_iptables_save, write_ipvsadm, write_nft_listing

    return int({"iptables": write_iptables_save, "nftables": write_nft_listing, "ipvs": write_ipvsadm}[mode](path, n))


def _ask(mode: str, n: int) -> tuple[str, str, list[list[str]]]:
    """(service name, VIP, grep commands) for the Service 70% into the dump."""
    i = n * 7 // 10
    if mode == "iptables":
        import ipaddress

        vip = str(ipaddress.ip_address("10.96.0.0") + i + 1)  # gen_dumps.big_cluster: hosts of 10.96.0.0/12
        spn = f"ns{i % 100}/svc{i}:http"
        return f"ns{i % 100}/svc{i}", vip, [["grep", "-F", "-m", "1", "--", f'"{spn} cluster IP"']]
    from gen_big_dumps import service_for
    from gen_dumps_ipvs_nft import svc_chain_base

    s = service_for(i)
    if mode == "nftables":
        return f"{s.namespace}/{s.name}", s.cluster_ip, [["grep", "-F", "--", f"service-{svc_chain_base(s)}"]]
    return f"{s.namespace}/{s.name}", s.cluster_ip, [["grep", "-F", "-A", "10", "--", f"TCP  {s.cluster_ip}:80 "]]


def _grep(mode: str, path: str, cmds: list[list[str]], repeat: int) -> tuple[float, float, str]:
    first = median_run([*cmds[0], path], repeat)
    seconds, rss, found = first.seconds, first.rss_mb, first.stdout
    if mode == "iptables":  # then the chain the comment's rule jumps to
        line = first.stdout.strip().splitlines()[0] if first.stdout.strip() else ""
        chain = line.rsplit("-j ", 1)[-1].strip() if "-j " in line else ""
        if chain:
            second = median_run(["grep", "-F", "--", f"-A {chain} ", path], repeat)
            seconds, rss, found = seconds + second.seconds, max(rss, second.rss_mb), second.stdout
    return seconds, rss, f"{found.count(chr(10))} lines"


# the whole-dump command with the mode's fast paths off (`FAST` of svcctl.dataplane.<mode>): the general parser
# and walk, as before them
_GENERAL = ("import sys; import svcctl.dataplane.{0} as m; m.FAST = False; from svcctl.cli.main import run; "
            "sys.exit(run('svcctl', sys.argv[1:]))")


def bench(size: str, repeat: int = 3, modes: tuple[str, ...] = MODES) -> list[Row]:
    rows: list[Row] = []
    # the fixed cost in this run, to read the one-Service rows against: an interpreter, and svcctl's start-up
    floor = median_run([sys.executable, "-c", "pass"], repeat, warm=True)
    start = median_run([*SVCCTL, "--version"], repeat, warm=True)
    rows.append(Row("nodes", "python3 -c pass / svcctl --version", start.seconds, start.rss_mb, "python3 -c pass",
                    floor.seconds, {"mode": "-", "dump": "-", "cpu": f"{start.cpu_s * 1000:.0f} ms", "µs/line": ""},
                    f"the fixed cost of any run; the floor's CPU {floor.cpu_s * 1000:.0f} ms"))
    with tempfile.TemporaryDirectory(prefix="svcctl-bench-nodes-") as tmp:
        for mode in modes:
            for n in SIZES[size]:
                path = os.path.join(tmp, f"{mode}-{n}.txt")
                t = time.perf_counter()
                lines = _write(mode, path, n)
                gen = time.perf_counter() - t
                mb = os.path.getsize(path) / 2**20  # MiB, the unit of the peak RSS beside it (×file in one unit)
                svc, vip, cmds = _ask(mode, n)
                g_s, g_rss, g_found = _grep(mode, path, cmds, repeat)
                dump = f"{n:,} Services, {lines:,} lines, {mb:.0f} MB"
                base = f"grep ({g_found})"
                flag = FLAG[mode]
                ask = f"{vip}:80" if mode == "ipvs" else svc  # IPVS entries carry no names
                one = median_run([*SVCCTL, "rules", ask, flag, path, "-o", "json"], repeat)
                rows.append(_row(mode, dump, f"rules {ask} (one Service)", one, base, g_s, lines,
                                 _entries(one.stdout)))
                tr = median_run([*SVCCTL, "trace", f"{vip}:80", flag, path, "-o", "json"], repeat)
                rows.append(_row(mode, dump, f"trace {vip}:80 (one Service)", tr, base, g_s, lines, ""))
                load = os.getloadavg()[0]
                wc = run(["wc", "-l", path])
                whole = run([*SVCCTL, "rules", flag, path, "-o", "json"])
                rows.append(_row(mode, dump, "rules (whole dump)", whole, "wc -l", wc.seconds, lines,
                                 _entries(whole.stdout) + f"; load {load:.1f}", per_line=True, file_mb=mb))
                general = run([sys.executable, "-c", _GENERAL.format(mode), "rules", flag, path, "-o", "json"])
                same = "same output" if general.stdout == whole.stdout else "OUTPUT DIFFERS"
                rows.append(_row(mode, dump, "baseline: general parser (FAST off), whole dump", general, "wc -l",
                                 wc.seconds, lines, same, per_line=True, file_mb=mb))
                rows[-2].baseline, rows[-2].baseline_seconds = "general parser", general.seconds
                rows[-4].note = (rows[-4].note + f"; dump generated in {gen:.1f} s").lstrip("; ")
    return rows


def _row(mode: str, dump: str, case: str, r: object, base: str, base_s: float, lines: int, note: str,
         per_line: bool = False, file_mb: float = 0.0) -> Row:
    from common import Run

    assert isinstance(r, Run)
    if r.rc not in (0, 1):
        note = f"exit {r.rc}: {r.stderr.strip()[-160:]}"
    extra = {"mode": mode, "dump": dump, "cpu": f"{r.cpu_s * 1000:.0f} ms" if r.cpu_s < 1 else f"{r.cpu_s:.2f} s",
             "µs/line": f"{r.cpu_s / lines * 1e6:.2f}" if per_line else "",
             "×file": f"{r.rss_mb / file_mb:.1f}" if per_line and file_mb else ""}
    return Row("nodes", case, r.seconds, r.rss_mb, base, base_s, extra, note)


def _entries(stdout: str) -> str:
    import json

    try:
        doc = json.loads(stdout)
    except ValueError:
        return ""
    svcs = doc.get("services") or []
    return f"{len(svcs):,} entries, {sum(len(s.get('backends') or []) for s in svcs):,} backends"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(table(bench(args.size, args.repeat, tuple(args.modes.split(","))), ["mode", "dump", "cpu", "µs/line", "×file"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Big clusters: what one Service's answer costs (API requests, bytes, time) at 3 and at 10,000 Services, and what
`svcctl endpoints -A` and `svcctl check -A` cost over a whole 100,000-Pod cluster.

The test API server (tests/support/apiserver.py: real HTTPS, paging with limit/continue) runs in this process with a
generated cluster (tests/support/gen_cluster.py: N Services × 10 Pods, 100 Nodes); each svcctl command runs as its own
subprocess through the real kubernetes client, and is timed with its own peak RSS. Baselines, same run:
- one Service: the same command against the 3-Service cluster (the answer should cost the same);
- `-A`: a bare paged read of every Service, Pod and EndpointSlice (urllib, 500 per page, each page parsed and
  dropped) — the least any all-namespaces summary has to transfer;
- `check -A` with each answer 30 ms late, as from an API server across a network, beside the bare read with the
  same latency (which waits for each page in turn: svcctl asks for the next page while it decodes this one);
- `check -A` once more on the same cluster with each Pod's own transition times, as a real cluster's are (the
  generated Pods share one), beside the row with the shared timestamp: a listed Pod keeps no transition times, so
  the two should cost the same (before it did, equal conditions were held once only when their times were equal).

    python benchmarks/bench_cluster.py [--size small|full] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from common import SVCCTL, Row, machine, median_run, run, table

SIZES = {"small": [3, 2_000], "full": [3, 10_000]}
LATENCY = 0.03  # seconds before each answer in the "across a network" row (sources/page_reader.py hides it)

# The least an all-namespaces summary must read: every page of three lists, parsed and dropped.
_BASELINE = r"""
import json, ssl, sys, urllib.parse, urllib.request
url, ca, token = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
n = size = 0
for path in ("/api/v1/services", "/api/v1/pods", "/apis/discovery.k8s.io/v1/endpointslices"):
    cont = ""
    while True:
        q = "?limit=500" + ("&continue=" + urllib.parse.quote(cont) if cont else "")
        req = urllib.request.Request(url + path + q, headers={"Authorization": "Bearer " + token})
        body = urllib.request.urlopen(req, context=ctx).read()
        n += 1
        size += len(body)
        doc = json.loads(body)
        cont = (doc.get("metadata") or {}).get("continue") or ""
        del doc
        if not cont:
            break
print(json.dumps({"requests": n, "bytes": size}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(table(bench(args.size, args.repeat), ["requests", "bytes", "cpu"]))
    return 0


def bench(size: str, repeat: int) -> list[Row]:
    from apiserver import FakeAPIServer, make_pki
    from gen_cluster import gen_cluster
    from gen_fleet import FleetExec, kube_proxy_pod

    rows: list[Row] = []
    one: dict[int, dict[str, tuple[float, int, int, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="svcctl-bench-") as tmp:
        pki = make_pki(Path(tmp) / "pki")
        for n in SIZES[size]:
            objs = gen_cluster(n) + [kube_proxy_pod("node-0000")]
            # pages joined from objects encoded once: the server's own json.dumps was most of a paged read's time
            srv = FakeAPIServer(objs, pki, copy=False).pre_encode().start()
            try:
                srv.exec_handler = FleetExec({})
                kc = srv.write_kubeconfig(Path(tmp) / f"kubeconfig-{n}")
                env = {"KUBECONFIG": str(kc)}
                pods = 10 * n
                cases = {
                    "endpoints hostnames --why-not": ["endpoints", "hostnames", "--why-not", "-o", "json"],
                    "trace hostnames --node node-0000 --no-dns": ["trace", "hostnames", "--node", "node-0000",
                                                                  "--no-dns", "-o", "json"],
                }
                one[n] = {}
                for name, argv in cases.items():
                    srv.reset_counters()
                    r = median_run([*SVCCTL, *argv], repeat, env=env)
                    reqs = srv.request_count // max(1, repeat)
                    sent = srv.bytes_sent // max(1, repeat)
                    one[n][name] = (r.seconds, reqs, sent, r.rss_mb)
                    if r.rc not in (0, 1):
                        print(f"  {name} at {n}: exit {r.rc}: {r.stderr[-300:]}", file=sys.stderr)
                if n == max(SIZES[size]):
                    srv.reset_counters()
                    r = run([*SVCCTL, "endpoints", "-A", "-o", "json"], env=env)
                    reqs, sent = srv.request_count, srv.bytes_sent
                    ok = r.rc in (0, 1)
                    summaries = len(json.loads(r.stdout).get("items", json.loads(r.stdout).get("services", [])))\
                        if ok and r.stdout.startswith("{") else 0
                    srv.reset_counters()
                    b = run([sys.executable, "-c", _BASELINE, srv.url, str(pki.ca_cert), srv.token])
                    base = json.loads(b.stdout) if b.rc == 0 else {"requests": 0, "bytes": 0}
                    rows.append(Row("cluster", f"endpoints -A ({n:,} Services, {pods:,} Pods)", r.seconds, r.rss_mb,
                                    "paged read of Services+Pods+Slices", b.seconds,
                                    {"requests": str(reqs), "bytes": _mb(sent), "cpu": _cpu(r.cpu_s, b.cpu_s)},
                                    note=(f"{summaries:,} rows; baseline {base['requests']} requests, "
                                          f"{_mb(base['bytes'])}, {b.rss_mb:.0f} MB") if ok
                                    else f"exit {r.rc}: {r.stderr[-200:]}"))
                    # check -A: every Service's endpoints (with the why-not reads) and policy, judged one by one
                    srv.reset_counters()
                    c = run([*SVCCTL, "check", "-A", "--no-dns"], env=env)
                    lines = c.stdout.strip().splitlines()
                    rows.append(Row("cluster", f"check -A --no-dns ({n:,} Services, {pods:,} Pods)", c.seconds,
                                    c.rss_mb, "paged read of Services+Pods+Slices", b.seconds,
                                    {"requests": str(srv.request_count), "bytes": _mb(srv.bytes_sent),
                                     "cpu": _cpu(c.cpu_s, b.cpu_s)},
                                    note=lines[-1][:90] if c.rc in (0, 1) and lines
                                    else f"exit {c.rc}: {c.stderr[-200:]}"))
                    shared_times = rows[-1]
                    # the same across a network: each answer LATENCY late (an API server in another zone or
                    # region), beside the bare read with the same latency, which waits for every page in turn
                    srv.set_fault(None, status=None, delay=LATENCY)
                    try:
                        srv.reset_counters()
                        c = run([*SVCCTL, "check", "-A", "--no-dns"], env=env)
                        reqs, sent = srv.request_count, srv.bytes_sent
                        b = run([sys.executable, "-c", _BASELINE, srv.url, str(pki.ca_cert), srv.token])
                    finally:
                        srv.clear_faults()
                    lines = c.stdout.strip().splitlines()
                    rows.append(Row("cluster", f"check -A --no-dns ({n:,} Services, {pods:,} Pods), each answer "
                                    f"{LATENCY * 1000:.0f} ms late", c.seconds, c.rss_mb,
                                    f"paged read of Services+Pods+Slices, {LATENCY * 1000:.0f} ms late", b.seconds,
                                    {"requests": str(reqs), "bytes": _mb(sent), "cpu": _cpu(c.cpu_s, b.cpu_s)},
                                    note=(f"{reqs} × {LATENCY * 1000:.0f} ms = {reqs * LATENCY:.1f} s of latency; "
                                          + lines[-1][:60]) if c.rc in (0, 1) and lines
                                    else f"exit {c.rc}: {c.stderr[-200:]}"))
            finally:
                srv.stop()
        # the same cluster with each Pod's own transition times, as a real cluster's are: the generated Pods all
        # share one timestamp, which check -A must not be flattered by (sources/pod_pages.py keeps no times)
        n = max(SIZES[size])
        objs = _own_transition_times(gen_cluster(n) + [kube_proxy_pod("node-0000")])
        srv = FakeAPIServer(objs, pki, copy=False).pre_encode().start()
        try:
            kc = srv.write_kubeconfig(Path(tmp) / "kubeconfig-times")
            c = run([*SVCCTL, "check", "-A", "--no-dns"], env={"KUBECONFIG": str(kc)})
            lines = c.stdout.strip().splitlines()
            rows.append(Row("cluster", f"check -A --no-dns ({n:,} Services, {10 * n:,} Pods), each Pod's own "
                            "transition times", c.seconds, c.rss_mb, "the row above (one shared timestamp)",
                            shared_times.seconds, {"requests": str(srv.request_count),
                                                   "bytes": _mb(srv.bytes_sent),
                                               "cpu": f"{c.cpu_s:.1f} s"},
                            note=(f"peak RSS {shared_times.rss_mb or 0:.0f} MB above; " + lines[-1][:60])
                            if c.rc in (0, 1) and lines else f"exit {c.rc}: {c.stderr[-200:]}"))
        finally:
            srv.stop()
    small, big = min(one), max(one)
    for name in one[small]:
        s_t, s_req, s_b, s_rss = one[small][name]
        b_t, b_req, b_b, b_rss = one[big][name]
        rows.insert(max(0, len(rows) - 4),
                    Row("cluster", f"{name} ({big:,} Services)", b_t, b_rss, f"same at {small} Services", s_t,
                        {"requests": f"{b_req} (vs {s_req})", "bytes": f"{_mb(b_b)} (vs {_mb(s_b)})"}))
    return rows


def _own_transition_times(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Pod's conditions moved to times of its own (a second apart per Pod, its conditions a second apart), as
    in a cluster whose Pods started at different moments."""
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    i = 0
    for o in objs:
        if o.get("kind") != "Pod":
            continue
        i += 1
        for k, cond in enumerate((o.get("status") or {}).get("conditions") or []):
            cond["lastTransitionTime"] = (start + timedelta(seconds=3 * i + k)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return objs


def _cpu(own: float, base: float) -> str:
    """The command's own CPU (user + system, its process alone: the API server runs in this one), and the bare
    read's."""
    return f"{own:.1f} s (vs {base:.1f} s)"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


if __name__ == "__main__":
    sys.exit(main())

"""Live latency: how long a one-Service answer, a failure on an unreachable server and a dynamic completion take
against the test API server (tests/support/apiserver.py: real HTTPS, 3 Services), each as a fresh subprocess.

kubectl is not installed here, so the baselines measured in the same run are
- `python3 -c pass`: the floor any Python CLI pays;
- the generated client: a script that imports `kubernetes.client`, builds CoreV1Api and DiscoveryV1Api (what
  svcctl's live source did before it talked through the rest layer) and sends the same GETs svcctl sent. It does
  none of svcctl's own work, so svcctl being faster than it is the import cost it no longer pays.
With SVCCTL_BENCH_BEFORE=/path/to/another/checkout, the same commands also run from that checkout ("before").

    python benchmarks/bench_live.py [--size small|full]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from common import SVCCTL, Row, median_run, size_main

REPEAT = {"small": 5, "full": 11}

# The generated client's cost for the same requests: import, build the API classes, replay the GETs.
_TYPED = r"""
import json, sys
from kubernetes import client, config
paths = json.loads(sys.argv[2])
c = client.Configuration()
config.load_kube_config(config_file=sys.argv[1], client_configuration=c)
c.retries = 0  # as svcctl: fail at once on a refused connection
api = client.ApiClient(c)
core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
host = api.configuration.host
headers = {"Authorization": api.configuration.api_key.get("authorization") or ""}
for p in paths:
    try:
        api.rest_client.request("GET", host + p, headers=headers).read()
    except Exception as e:  # the unreachable case: report like a CLI would
        print(type(e).__name__, file=sys.stderr)
        sys.exit(3)
"""




def bench(size: str, repeat: int | None = None) -> list[Row]:
    from apiserver import FakeAPIServer, closed_port, make_pki
    from gen_cluster import gen_cluster

    n = repeat or REPEAT[size]
    before = os.environ.get("SVCCTL_BENCH_BEFORE")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="svcctl-bench-live-") as tmp:
        pki = make_pki(Path(tmp) / "pki")
        srv = FakeAPIServer(gen_cluster(3), pki).start()
        try:
            kc = srv.write_kubeconfig(Path(tmp) / "kubeconfig")
            dead = Path(tmp) / "kubeconfig-dead"
            doc = srv.kubeconfig_dict()
            doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed_port()}"
            dead.write_text(json.dumps(doc))
            floor = median_run([sys.executable, "-c", "pass"], n, warm=True)
            rows.append(Row("live", f"python3 -c pass (median of {n})", floor.seconds, floor.rss_mb,
                            note="the floor"))
            complete_env = {"_SVCCTL_COMPLETE": "bash_complete", "COMP_WORDS": "svcctl endpoints ",
                            "COMP_CWORD": "2"}
            cases = [
                ("endpoints hostnames --why-not", ["endpoints", "hostnames", "--why-not", "-o", "json"],
                 {"KUBECONFIG": str(kc)}, "target <= 0.5 s", (0, 1)),
                ("unreachable server: endpoints hostnames", ["endpoints", "hostnames"],
                 {"KUBECONFIG": str(dead)}, "target <= 0.3 s; exit 3", (3,)),
                ("dynamic completion: svcctl endpoints <TAB>", [], {"KUBECONFIG": str(kc), **complete_env},
                 "target <= 0.3 s", (0,)),
            ]
            for name, argv, env, target, ok in cases:
                srv.reset_counters()
                median_run([*SVCCTL, *argv], 1, env=env)  # warm-up (bytecode), and the requests of one run
                paths = [q.path + (("?" + "&".join(f"{k}={v}" for k, v in q.query.items())) if q.query else "")
                         for q in srv.requests]
                srv.reset_counters()
                r = median_run([*SVCCTL, *argv], n, env=env)
                typed_kc = kc if env["KUBECONFIG"] == str(kc) else dead
                t = median_run([sys.executable, "-c", _TYPED, str(typed_kc), json.dumps(paths or ["/version"])], n,
                               warm=True)
                note = target if r.rc in ok else f"exit {r.rc}: {r.stderr[-160:]}"
                if not argv:
                    note += f"; {len(r.stdout.split())} names"
                rows.append(Row("live", f"svcctl {name}", r.seconds, r.rss_mb, "generated client, same GETs",
                                t.seconds, note=f"{note}; floor {floor.seconds * 1000:.0f} ms, "
                                                f"{len(paths)} requests"))
                if before:
                    b = median_run([sys.executable, "-m", "svcctl", *argv], n, warm=True,
                                   env={**env, "PYTHONPATH": before}, cwd=before)
                    rows.append(Row("live", f"  before ({before}): {name}", b.seconds, b.rss_mb, "this checkout",
                                    r.seconds, note=f"exit {b.rc}"))
        finally:
            srv.stop()
    return rows


def main() -> int:
    return size_main(__doc__, REPEAT, bench)


if __name__ == "__main__":
    sys.exit(main())

"""Live latency against the real kube-apiserver, beside the real kubectl in the same run.

The lab's control plane (tests/lab: etcd, kube-apiserver, kube-controller-manager built by tests/lab/build.sh,
with kubectl from the same release) serves one Service with three Pods (one not ready, with an Event); the
EndpointSlice controller publishes its slice. Each case runs as a fresh process, median of repeated runs:
- one Service: `svcctl endpoints hostnames --why-not` vs `kubectl get endpointslices,pods,svc` (kubectl reads
  the same objects and explains nothing: the floor of "ask the API about one Service");
- an unreachable server (a closed port): `svcctl endpoints hostnames` vs `kubectl get svc`, both to their error;
- a dynamic completion: `svcctl endpoints <TAB>` vs `kubectl __complete get svc ""`.

    python benchmarks/bench_kubectl.py [--size small|full]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

from common import Row, median_run, size_main  # noqa: E402

REPEAT = {"small": 5, "full": 15}
NS = "bench"
SVCCTL = [sys.executable, "-m", "svcctl"]




def bench(size: str, repeat: int | None = None) -> list[Row]:
    from apiserver import closed_port
    from lab.controlplane import ControlPlane, LabUnavailable, bin_dir
    from lab.states import node_objects, probed_service

    kubectl = bin_dir() / "kubectl"
    if not kubectl.is_file():
        return [Row("real", "skipped: no lab binaries (bash tests/lab/build.sh builds them)", None)]
    n = repeat or REPEAT[size]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="svcctl-bench-real-") as tmp:
        cp = ControlPlane(Path(tmp) / "k8s")
        t0 = time.perf_counter()
        try:
            cp.start()
        except LabUnavailable as e:
            return [Row("real", f"skipped: the control plane did not start: {e}", None)]
        try:
            started = time.perf_counter() - t0
            for obj in [*node_objects(), *probed_service(NS, "hostnames", 9376, "198.18.42", ("lab-a1", "lab-a2", "lab-b1"))]:
                cp.apply(obj)
            for _ in range(100):  # the controller publishes the slice
                slices = cp.list(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices")
                if sum(len(s.get("endpoints") or []) for s in slices) == 3:
                    break
                time.sleep(0.1)
            kc = cp.write_kubeconfig(Path(tmp) / "kubeconfig")
            dead = Path(tmp) / "kubeconfig-dead"
            doc = json.loads(kc.read_text())
            doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed_port()}"
            dead.write_text(json.dumps(doc))
            home = Path(tmp) / "home"  # kubectl's discovery cache starts empty, as on a fresh machine
            home.mkdir()
            env = {"KUBECONFIG": str(kc), "HOME": str(home)}
            env_dead = {"KUBECONFIG": str(dead), "HOME": str(home)}
            complete = {"_SVCCTL_COMPLETE": "bash_complete", "COMP_WORDS": f"svcctl endpoints -n {NS} ",
                        "COMP_CWORD": "4"}
            floor = median_run([sys.executable, "-c", "pass"], n, warm=True)
            rows.append(Row("real", f"python3 -c pass (median of {n})", floor.seconds, floor.rss_mb,
                            note=f"the floor; control plane up in {started:.1f} s"))
            cases = [
                ("endpoints hostnames --why-not", ["endpoints", "hostnames", "-n", NS, "--why-not", "-o", "json"],
                 env, ["get", "endpointslices,pods,svc", "-n", NS], "target <= 0.5 s", (1,)),
                ("unreachable server: endpoints hostnames", ["endpoints", "hostnames", "-n", NS], env_dead,
                 ["get", "svc", "-n", NS], "target <= 0.3 s", (3,)),
                ("dynamic completion: endpoints <TAB>", [], {**env, **complete},
                 ["__complete", "get", "svc", "-n", NS, ""], "target <= 0.3 s", (0,)),
            ]
            for name, argv, e, kargs, target, ok in cases:
                mine = median_run([*SVCCTL, *argv], n, warm=True, env=e)
                theirs = median_run([str(kubectl), *kargs], n, warm=True, env=e)
                note = target if mine.rc in ok else f"exit {mine.rc}: {mine.stderr[-160:]}"
                if not argv:
                    note += f"; {len(mine.stdout.split())} names"
                rows.append(Row("real", f"svcctl {name}", mine.seconds, mine.rss_mb,
                                "kubectl " + " ".join(a or '""' for a in kargs if a not in ("-n", NS)),
                                theirs.seconds, note=f"{note}; floor {floor.seconds * 1000:.0f} ms"))
        finally:
            cp.stop()
    return rows


def main() -> int:
    return size_main(__doc__, REPEAT, bench)


if __name__ == "__main__":
    sys.exit(main())

"""Drift is real drift: with the real kube-proxy stopped, each change to the API leaves the node's rules behind,
and svcctl reports exactly the drift code the change implies; once kube-proxy runs again the drift clears.

Changes: a Pod becomes ready (scale up: EndpointNotProgrammed), a ready Pod becomes unready (StaleBackend), the
Service's port changes (ServiceNotProgrammed), the Service is deleted (its VIP has no Service while the node
still routes it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns import Lab

from .controlplane import ControlPlane
from .figures import FIGURES
from .proxy import KubeProxy
from .world import cluster_objects

RunCli = Callable[..., tuple[int, str, str]]
DRIFT = {"EndpointNotProgrammed", "StaleBackend", "ServiceNotProgrammed", "NoEndpointsReject", "NoLocalEndpoints",
         "StaleService"}
NS = NODE = "drift"


@dataclass
class Node:
    cp: ControlPlane
    lab: Lab
    proxy: KubeProxy
    kubeconfig: Path

    def trace(self, run_cli: RunCli, target: str) -> tuple[int, dict[str, Any]]:
        code, out, err = run_cli(["trace", target, "-n", NS, "--kubeconfig", str(self.kubeconfig),
                                  "--netns", self.lab.node, "--node", NODE, "--mode", "iptables", "--no-dns",
                                  "-o", "json"])
        assert out.strip(), err
        return code, json.loads(out)

    def set_ready(self, pod: str, ready: bool) -> None:
        p = self.cp.must("GET", f"/api/v1/namespaces/{NS}/pods/{pod}")
        for c in p["status"]["conditions"]:
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"] = "True" if ready else "False"
        self.cp.must("PUT", f"/api/v1/namespaces/{NS}/pods/{pod}/status", p)


def drift_codes(doc: dict[str, Any]) -> set[str]:
    return {f["code"] for f in doc.get("findings") or [] if f["code"] in DRIFT}


@pytest.fixture(scope="module")
def node(k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    work = tmp_path_factory.mktemp("kube-proxy-drift")
    with Lab(prefix="svt-kd", n_pods=4) as lab:
        for obj in cluster_objects(NS, NODE, f"{NODE}-far", [(p.name, p.ip, p.ip6) for p in lab.pods], lab.port):
            k8s.apply(obj)
        for name in ("web", "gone"):
            k8s.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
                       "spec": {"selector": {"app": "web"},
                                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
        proxy = KubeProxy(k8s, lab.node, NODE, "iptables", work).start()
        try:
            yield Node(k8s, lab, proxy, k8s.write_kubeconfig(work / "admin.kubeconfig"))
        finally:
            proxy.stop()
            for name in ("web", "gone"):
                k8s.request("DELETE", f"/api/v1/namespaces/{NS}/services/{name}")


def _until_clean(n: Node, run_cli: RunCli, target: str, timeout: float = 30) -> dict[str, Any]:
    t0 = time.monotonic()
    while True:
        code, doc = n.trace(run_cli, target)
        if not drift_codes(doc):
            return doc
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"drift did not clear after kube-proxy restarted: {drift_codes(doc)}")
        time.sleep(0.5)


CHANGES = ["scale-up", "unready", "port", "delete"]


@pytest.mark.parametrize("change", CHANGES)
def test_drift_appears_while_kube_proxy_is_stopped_and_clears_after(node: Node, change: str,
                                                                      run_cli: RunCli) -> None:
    n = node
    _until_clean(n, run_cli, "web")
    if change == "delete":
        _until_clean(n, run_cli, "gone")
    svc = n.cp.must("GET", f"/api/v1/namespaces/{NS}/services/web")
    n.proxy.stop()
    try:
        if change == "scale-up":
            n.set_ready("pod2", True)
            want, target = {"EndpointNotProgrammed"}, "web"
        elif change == "unready":
            n.set_ready("pod1", False)
            want, target = {"StaleBackend"}, "web"
        elif change == "port":
            svc["spec"]["ports"][0]["port"] = 8081
            n.cp.must("PUT", f"/api/v1/namespaces/{NS}/services/web", svc)
            want, target = {"ServiceNotProgrammed"}, "web"
        else:
            gone = n.cp.must("GET", f"/api/v1/namespaces/{NS}/services/gone")
            n.cp.must("DELETE", f"/api/v1/namespaces/{NS}/services/gone")
            want, target = {"StaleService"}, f"{gone['spec']['clusterIP']}:80"
        time.sleep(1.5)  # the controller rewrites the slices (tens of ms); kube-proxy is not there to follow
        code, doc = n.trace(run_cli, target)
        got = drift_codes(doc)
        assert got == want, f"{change}: drift codes {sorted(got)}, want {sorted(want)}"
        assert code == 1
        if change == "delete":
            assert any(p.get("backends") for p in doc.get("ports") or []), (
                "the node still routes the deleted Service's VIP: the trace shows where it goes")
    finally:
        n.proxy.start()
        if change == "scale-up":
            n.set_ready("pod2", False)
        elif change == "unready":
            n.set_ready("pod1", True)
        elif change == "port":
            svc = n.cp.must("GET", f"/api/v1/namespaces/{NS}/services/web")
            svc["spec"]["ports"][0]["port"] = 80
            n.cp.must("PUT", f"/api/v1/namespaces/{NS}/services/web", svc)
    doc = _until_clean(n, run_cli, "web" if change != "delete" else target)
    if change != "delete":
        # pod2 stays not ready (an error finding of its own): what must be clean is the drift hop
        drift = [h for p in doc["ports"] for h in p["hops"] if h["hop"] == "drift"]
        assert drift and all(h["verdict"] == "ok" for h in drift), drift
    FIGURES.append(f"drift ({change}, kube-proxy iptables stopped): {', '.join(sorted(want))}; cleared once it ran "
                   "again")

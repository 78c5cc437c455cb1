"""kube-router's NetworkPolicy controller -- a real policy engine -- inside a test-created node namespace.

Only the firewall runs (`--run-firewall=true --run-router=false --run-service-proxy=false`): it watches the lab's
real API server (reached, as kube-proxy is in proxy.py, through two `socat`s joined by a UNIX socket, so nothing is
added to the host's network) and writes iptables rules and ipsets *in the namespace*, hooked into FORWARD, OUTPUT
and INPUT by Pod IP, for the Pods whose `status.hostIP` is the node's InternalIP. `tests/lab/build_kube_router.sh`
builds the binary from its Go module; the version is the one the module proxy serves.

A sync is known to be done when the rules name a marker policy the test created after the case's own policies
(kube-router's informers deliver one resource type's events in order, and each full sync reads its cache whole).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .agent import NetnsAgent
from .controlplane import ControlPlane, cache_dir

KUBE_ROUTER_VERSION = os.environ.get("KUBE_ROUTER_VERSION", "v2.1.0")
HEALTH_PORT = 20244


def kube_router_binary(version: str = KUBE_ROUTER_VERSION) -> Path:
    return cache_dir() / "kube-router" / version / "bin" / "kube-router"


@dataclass
class KubeRouterFirewall(NetnsAgent):
    log_name = "kube-router"

    cp: ControlPlane
    netns: str
    node_name: str
    work: Path
    service_cidr: str  # kube-router's --service-cluster-ip-range (its INPUT chain lets traffic to it through)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> KubeRouterFirewall:
        binary = kube_router_binary()
        if not binary.exists():
            raise AssertionError(f"{binary} is missing: run tests/lab/build_kube_router.sh")
        port = self.bridge_api()
        kc = self.cp.write_kubeconfig(self.work / "kube-router.kubeconfig", server=f"https://127.0.0.1:{port}")
        self._spawn("kube-router", ["ip", "netns", "exec", self.netns, str(binary), "--run-firewall=true",
                                    "--run-router=false", "--run-service-proxy=false",
                                    f"--hostname-override={self.node_name}", f"--kubeconfig={kc}",
                                    f"--service-cluster-ip-range={self.service_cidr}",
                                    f"--health-port={HEALTH_PORT}", "--metrics-port=0",
                                    "--iptables-sync-period=5m", "--v=1"])
        self.wait_rules("KUBE-ROUTER-FORWARD")
        return self

    def rules(self) -> str:
        # before anything is written the filter table does not exist yet (iptables-save exits 2): nothing
        r = subprocess.run(["ip", "netns", "exec", self.netns, "iptables-save", "-t", "filter"],
                           capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else ""

    def wait_rules(self, needle: str, gone: str | None = None, timeout: float = 60) -> str:
        """Until the filter table contains `needle` (and no longer `gone`); the rules then."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.check_alive()
            text = self.rules()
            if needle in text and (gone is None or gone not in text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"kube-router never wrote {needle!r} in {timeout:.0f} s:\n{self.log_tail()}")


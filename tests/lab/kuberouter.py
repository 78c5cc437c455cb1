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

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .controlplane import STARTED, ControlPlane, cache_dir, free_port

KUBE_ROUTER_VERSION = os.environ.get("KUBE_ROUTER_VERSION", "v2.1.0")
HEALTH_PORT = 20244


def kube_router_binary(version: str = KUBE_ROUTER_VERSION) -> Path:
    return cache_dir() / "kube-router" / version / "bin" / "kube-router"


@dataclass
class KubeRouterFirewall:
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
        self.work.mkdir(parents=True, exist_ok=True)
        sock = self.work / "apiserver.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        port = free_port()
        self._spawn("socat-host", ["socat", f"UNIX-LISTEN:{sock},fork,mode=600",
                                   f"TCP:127.0.0.1:{self.cp.api_port}"])
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.05)
        self._spawn("socat-netns", ["ip", "netns", "exec", self.netns, "socat",
                                    f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}"])
        kc = self.cp.write_kubeconfig(self.work / "kube-router.kubeconfig", server=f"https://127.0.0.1:{port}")
        self._spawn("kube-router", ["ip", "netns", "exec", self.netns, str(binary), "--run-firewall=true",
                                    "--run-router=false", "--run-service-proxy=false",
                                    f"--hostname-override={self.node_name}", f"--kubeconfig={kc}",
                                    f"--service-cluster-ip-range={self.service_cidr}",
                                    f"--health-port={HEALTH_PORT}", "--metrics-port=0",
                                    "--iptables-sync-period=5m", "--v=1"])
        self.wait_rules("KUBE-ROUTER-FORWARD")
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        STARTED.append(p)

    def rules(self) -> str:
        # before anything is written the filter table does not exist yet (iptables-save exits 2): nothing
        r = subprocess.run(["ip", "netns", "exec", self.netns, "iptables-save", "-t", "filter"],
                           capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else ""

    def wait_rules(self, needle: str, gone: str | None = None, timeout: float = 60) -> str:
        """Until the filter table contains `needle` (and no longer `gone`); the rules then."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            for p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"{p.args[:4]} exited ({p.returncode}):\n{self.log_tail()}")
            text = self.rules()
            if needle in text and (gone is None or gone not in text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"kube-router never wrote {needle!r} in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        p = self.work / "kube-router.log"
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:]) if p.exists() else ""

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        self.procs.clear()

    def __enter__(self) -> KubeRouterFirewall:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""The real kube-proxy, inside the node namespace of a `tests/support/netns.py` Lab, watching the lab's API server.

kube-proxy must never touch the host: it runs under `ip netns exec <node namespace>`, and reaches the API server
(127.0.0.1 on the host) through two `socat`s joined by a UNIX socket, which crosses network namespaces without
adding an interface, address or route to the host. It writes its rules in the namespace; tests read them back
with `iptables-save` / `nft list ruleset` there, and send real packets from the lab's Pods and clients.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .controlplane import STARTED, ControlPlane, bin_dir, free_port

CLUSTER_CIDR = "198.18.0.0/16"


@dataclass
class KubeProxy:
    cp: ControlPlane
    netns: str
    node_name: str
    mode: str  # iptables | nftables
    work: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    port: int = 0
    masquerade_all: bool = False  # iptables.masqueradeAll: every connection to a Service is SNATed

    def start(self) -> KubeProxy:
        self.work.mkdir(parents=True, exist_ok=True)
        sock = self.work / "apiserver.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        self.port = free_port()
        self._spawn("socat-host", ["socat", f"UNIX-LISTEN:{sock},fork,mode=600",
                                   f"TCP:127.0.0.1:{self.cp.api_port}"])
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.05)
        self._spawn("socat-netns", ["ip", "netns", "exec", self.netns, "socat",
                                    f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr",
                                    f"UNIX-CONNECT:{sock}"])
        kc = self.cp.write_kubeconfig(self.work / "kube-proxy.kubeconfig", "system:kube-proxy",
                                      server=f"https://127.0.0.1:{self.port}")
        cfg = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kc)},
            "hostnameOverride": self.node_name, "mode": self.mode, "clusterCIDR": CLUSTER_CIDR,
            "nodePortAddresses": ["primary"],
            # the namespace cannot set the host's conntrack table size; leave every conntrack sysctl alone
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
            "iptables": {"minSyncPeriod": "0s", "syncPeriod": "30s", "masqueradeAll": self.masquerade_all},
            "nftables": {"minSyncPeriod": "0s", "syncPeriod": "30s"},
        }
        conf = self.work / "kube-proxy.json"
        conf.write_text(json.dumps(cfg, indent=1))
        self._spawn("kube-proxy", ["ip", "netns", "exec", self.netns, str(bin_dir(self.cp.version) / "kube-proxy"),
                                   "--config", str(conf), "--v=2"])
        self.wait_healthy()
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        STARTED.append(p)

    def wait_healthy(self, timeout: float = 60) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            for p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"{p.args[:4]} exited ({p.returncode}):\n{self.log_tail()}")
            r = subprocess.run(["ip", "netns", "exec", self.netns, "python3", "-c",
                                "import urllib.request,sys;"
                                "sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:10256/healthz',"
                                "timeout=1).status==200 else 1)"], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"kube-proxy not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        p = self.work / "kube-proxy.log"
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

    def __enter__(self) -> KubeProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

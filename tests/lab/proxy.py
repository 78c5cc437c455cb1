"""The real kube-proxy, inside the node namespace of a `tests/support/netns.py` Lab, watching the lab's API server.

kube-proxy must never touch the host: it runs under `ip netns exec <node namespace>`, and reaches the API server
(127.0.0.1 on the host) through two `socat`s joined by a UNIX socket, which crosses network namespaces without
adding an interface, address or route to the host. It writes its rules in the namespace; tests read them back
with `iptables-save` / `nft list ruleset` there, and send real packets from the lab's Pods and clients.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .agent import NetnsAgent
from .controlplane import ControlPlane, bin_dir

CLUSTER_CIDR = "198.18.0.0/16"


@dataclass
class KubeProxy(NetnsAgent):
    log_name = "kube-proxy"

    cp: ControlPlane
    netns: str
    node_name: str
    mode: str  # iptables | nftables
    work: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    port: int = 0
    masquerade_all: bool = False  # iptables.masqueradeAll: every connection to a Service is SNATed

    def start(self) -> KubeProxy:
        self.port = self.bridge_api()
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

    def wait_healthy(self, timeout: float = 60) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.check_alive()
            r = subprocess.run(["ip", "netns", "exec", self.netns, "python3", "-c",
                                "import urllib.request,sys;"
                                "sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:10256/healthz',"
                                "timeout=1).status==200 else 1)"], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"kube-proxy not healthy after {timeout:.0f} s:\n{self.log_tail()}")


"""A kube-proxy "node" in network namespaces, for tests that load real rules and send real packets.

Topology (everything inside namespaces this harness creates; the host's rules, routes and links are never touched):

    node namespace  <prefix>-<pid>-<n>-node
      br0  198.18.1.1/24  (and 2001:db8:1::1/64 with ipv6=True)
      route 198.19.0.0/16 (VIPs) dev br0 — only so the first route lookup succeeds; DNAT picks the real hop
      ├─ veth → pod namespace  …-pod0  198.18.1.10/24, default via 198.18.1.1, HTTP server on `port`
      ├─ veth → pod namespace  …-pod1  198.18.1.11/24 …
      └─ veth → client namespace …-cl0  198.18.2.2/30 ⇄ node 198.18.2.1/30 (add_client(): PREROUTING path)

Each pod runs a tiny Python HTTP server that answers every request with its own name. Load kube-proxy rules
with `lab.iptables_restore(text)` / `lab.nft_load(text)` INSIDE the node namespace, send requests with
`lab.http_get_many(vip, port, n)` (from the node namespace itself: OUTPUT-chain DNAT, or `client=` a client
namespace: PREROUTING + forwarding), and read back with `lab.iptables_save()`, `lab.conntrack()`.

Usage:

    with Lab(prefix="svt-ipt", n_pods=3) as lab:
        lab.iptables_restore(dump_text)
        answers = lab.http_get_many("198.19.0.10", 80, 300)   # ["pod0", "pod2", …, "refused", …]

Addresses: 198.18.0.0/15 and 2001:db8::/32 only. Namespace names are unique (`<prefix>-<pid>-<n>-…`);
`cleanup_stale(prefix)` (run by every Lab at start) deletes namespaces of an earlier crashed run of the same
prefix whose pid is gone. `ip_forward` is set only inside the node namespace (`ip netns exec … sysctl`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

_counter = itertools.count()

SERVER_CODE = r"""
import http.server, socket, sys, threading
name, port, v6 = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
if len(sys.argv) > 4 and sys.argv[4] == "udp":  # a UDP responder on the same port: answers its name
    def udp_serve():
        u = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        if v6:
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        u.bind(("::" if v6 else "0.0.0.0", port))
        while True:
            _, peer = u.recvfrom(512)
            u.sendto(name.encode(), peer)
    threading.Thread(target=udp_serve, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if v6 else socket.AF_INET
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256
    def server_bind(self):
        if v6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
srv = S(("::" if v6 else "0.0.0.0", port), H)
print("ready", flush=True)
srv.serve_forever()
"""

CLIENT_CODE = r"""
import http.client, json, socket, sys
host, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
out = []
for _ in range(n):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", "/", headers={"Connection": "close"})
        out.append(c.getresponse().read().decode())
    except ConnectionRefusedError:
        out.append("refused")
    except (socket.timeout, TimeoutError):
        out.append("timeout")
    except OSError as e:
        out.append("error:" + type(e).__name__ + ":" + str(e.errno))
    finally:
        c.close()
print(json.dumps(out))
"""

UDP_CLIENT_CODE = r"""
import json, socket, sys
host, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
out, socks = [], []
for _ in range(n):
    # every socket stays open until the end: each request has its own source port, so its own conntrack flow
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    socks.append(s)
    s.settimeout(timeout)
    try:
        s.sendto(b"?", (host, port))
        out.append(s.recvfrom(512)[0].decode())
    except (socket.timeout, TimeoutError):
        out.append("timeout")
    except ConnectionRefusedError:
        out.append("refused")
    except OSError as e:
        out.append("error:" + str(e.errno))
for s in socks:
    s.close()
print(json.dumps(out))
"""


class LabError(RuntimeError):
    pass


def can_run() -> tuple[bool, str]:
    """(True, "") when this machine can build a lab: root, `ip netns`, iptables-restore, conntrack."""
    if os.geteuid() != 0:
        return False, "needs root"
    for tool in ("ip", "iptables-restore", "iptables-save", "conntrack"):
        if shutil.which(tool) is None:
            return False, f"`{tool}` is not installed"
    name = f"svt-probe-{os.getpid()}-{next(_counter)}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"`ip netns add` failed: {r.stderr.strip()}"
    try:
        # conntrack needs nf_conntrack; `conntrack -L` working inside a namespace is the real check
        ct = subprocess.run(["ip", "netns", "exec", name, "conntrack", "-L"], capture_output=True, text=True)
        if ct.returncode != 0:
            return False, f"`conntrack -L` fails in a namespace: {ct.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return True, ""


def require_netns(*tools: str, what: str = "netns tests") -> None:
    """Skip where this machine cannot build a lab (and the `tools` it needs); in CI, where it must, fail instead."""
    import pytest

    ok, why = can_run()
    for tool in tools:
        if ok and shutil.which(tool) is None:
            ok, why = False, f"`{tool}` is not installed"
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} must run in CI: {why}")
        pytest.skip(why)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_netns() -> list[str]:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]


def cleanup_stale(prefix: str) -> list[str]:
    """Delete `<prefix>-<pid>-…` namespaces whose pid is no longer running (an earlier crashed run)."""
    removed = []
    for name in list_netns():
        if not name.startswith(prefix + "-"):
            continue
        rest = name[len(prefix) + 1:]
        pid_s = rest.split("-", 1)[0]
        if pid_s.isdigit() and not _pid_alive(int(pid_s)):
            _kill_netns_pids(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            removed.append(name)
    return removed


def _kill_netns_pids(name: str) -> None:
    """Stop processes a crashed run left inside namespace `name` (by their pids, nothing broader)."""
    r = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    for pid_s in r.stdout.split():
        if pid_s.isdigit():
            with contextlib.suppress(OSError):
                os.kill(int(pid_s), 9)


@dataclass
class Pod:
    name: str  # short name the server answers with ("pod0")
    netns: str
    ip: str
    ip6: str | None = None


@dataclass
class Lab:
    """A node namespace with a bridge, pod namespaces running HTTP servers, and optional client namespaces."""

    prefix: str = "svt"
    n_pods: int = 3
    port: int = 8080
    ipv6: bool = False
    subnet: str = "198.18.1"  # pods are <subnet>.10+i, the node's bridge <subnet>.1
    subnet6: str = "2001:db8:1::"
    vip_routes: tuple[str, ...] = ("198.19.0.0/16",)
    vip_routes6: tuple[str, ...] = ("2001:db8:ff::/64",)
    node: str = ""
    udp: bool = False  # pods also answer UDP on `port` (with their name)
    pods: list[Pod] = field(default_factory=list)
    clients: dict[str, str] = field(default_factory=dict)  # client name -> its IPv4 address
    _namespaces: list[str] = field(default_factory=list)
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def base(self) -> str:
        return self._base

    def start(self) -> None:
        cleanup_stale(self.prefix)
        self._base = f"{self.prefix}-{os.getpid()}-{next(_counter)}"
        self.node = self._add_ns("node")
        self.ip_node("link", "set", "lo", "up")
        self.ip_node("link", "add", "br0", "type", "bridge")
        self.ip_node("addr", "add", f"{self.subnet}.1/24", "dev", "br0")
        if self.ipv6:
            self.node_exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"])
            self.ip_node("-6", "addr", "add", f"{self.subnet6}1/64", "dev", "br0", "nodad")
        self.ip_node("link", "set", "br0", "up")
        for r in self.vip_routes:
            self.ip_node("route", "add", r, "dev", "br0")
        if self.ipv6:
            for r in self.vip_routes6:
                self.ip_node("-6", "route", "add", r, "dev", "br0")
        for i in range(self.n_pods):
            self._add_pod(i)
        self._wait_servers()

    def close(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.kill()
        for p in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        for ns in reversed(self._namespaces):
            _kill_netns_pids(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._namespaces.clear()
        self._procs.clear()

    # ------------------------------------------------------------------ plumbing

    def _add_ns(self, suffix: str) -> str:
        name = f"{self._base}-{suffix}"
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        return name

    def ip_node(self, *args: str) -> None:
        _run(["ip", "-n", self.node, *args])

    def exec(self, netns: str, argv: list[str], input: str | None = None, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run argv inside `netns` (ip netns exec, no shell)."""
        r = subprocess.run(["ip", "netns", "exec", netns, *argv], input=input, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise LabError(f"{' '.join(argv)} in {netns} failed ({r.returncode}): {r.stderr.strip()}")
        return r

    def node_exec(self, argv: list[str], input: str | None = None, check: bool = True,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.exec(self.node, argv, input=input, check=check, timeout=timeout)

    def _add_pod(self, i: int) -> None:
        ns = self._add_ns(f"pod{i}")
        ip = f"{self.subnet}.{10 + i}"
        ip6 = f"{self.subnet6}{10 + i:x}" if self.ipv6 else None
        # the veth pair is created inside the node namespace, its peer moved straight into the pod's
        self.ip_node("link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip_node("link", "set", f"p{i}", "master", "br0", "up")
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0"])
        if ip6:
            _run(["ip", "-n", ns, "-6", "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", ns, "route", "add", "default", "via", f"{self.subnet}.1"])
        if ip6:
            _run(["ip", "-n", ns, "-6", "route", "add", "default", "via", f"{self.subnet6}1"])
        pod = Pod(name=f"pod{i}", netns=ns, ip=ip, ip6=ip6)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER_CODE, pod.name,
                                 str(self.port), "1" if self.ipv6 else "0", "udp" if self.udp else "tcp"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._procs.append(proc)
        self.pods.append(pod)

    def _wait_servers(self) -> None:
        for proc, pod in zip(self._procs, self.pods, strict=False):
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                err = proc.stderr.read() if proc.stderr else ""
                raise LabError(f"HTTP server in {pod.netns} did not start: {err.strip()[-300:]}")

    def add_client(self, name: str = "cl0") -> str:
        """A client namespace routed through the node (not on the bridge): its traffic takes PREROUTING."""
        idx = len(self.clients)
        ns = self._add_ns(name)
        node_ip, client_ip = f"198.18.2.{4 * idx + 1}", f"198.18.2.{4 * idx + 2}"
        self.ip_node("link", "add", f"c{idx}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip_node("addr", "add", f"{node_ip}/30", "dev", f"c{idx}")
        self.ip_node("link", "set", f"c{idx}", "up")
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{client_ip}/30", "dev", "eth0"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", ns, "route", "add", "default", "via", node_ip])
        # forwarding only inside the node namespace (a per-namespace sysctl), never on the host
        self.node_exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.clients[name] = client_ip
        return ns

    def add_node_address(self, ip: str) -> None:
        """A second address of the node (on its loopback link: the dummy module may be missing). NodePorts
        answer on every node address; tests list it in the Node object as an ExternalIP."""
        self.ip_node("addr", "add", f"{ip}/32", "dev", "lo")

    # ------------------------------------------------------------------ rules and state

    def iptables_restore(self, text: str, ipv6: bool = False) -> None:
        """Load an iptables-save dump with the real iptables-restore inside the node namespace."""
        self.node_exec(["ip6tables-restore" if ipv6 else "iptables-restore"], input=text)

    def nft_load(self, text: str) -> None:
        """Load an nft ruleset (`nft -f -`) inside the node namespace."""
        self.node_exec(["nft", "-f", "-"], input=text)

    def iptables_save(self, ipv6: bool = False, counters: bool = False) -> str:
        argv = ["ip6tables-save" if ipv6 else "iptables-save"] + (["-c"] if counters else [])
        return self.node_exec(argv).stdout

    def conntrack(self) -> str:
        """`conntrack -L` in the node namespace (conntrack tables are per namespace)."""
        return self.node_exec(["conntrack", "-L"]).stdout

    def conntrack_flush(self) -> None:
        self.node_exec(["conntrack", "-F"], check=False)

    # ------------------------------------------------------------------ traffic

    def http_get_many(self, host: str, port: int, n: int, client: str | None = None,
                      timeout: float = 3.0) -> list[str]:
        """n HTTP GETs, each on a new connection, from the node namespace (or client namespace `client`).

        Returns the pod names that answered, or "refused" / "timeout" / "error:…" per request."""
        ns = self.node if client is None else f"{self._base}-{client}"
        r = self.exec(ns, [sys.executable, "-c", CLIENT_CODE, host, str(port), str(n), str(timeout)],
                      timeout=n * timeout + 60)
        answers: list[str] = json.loads(r.stdout)
        return answers

    def udp_ask_many(self, host: str, port: int, n: int, client: str | None = None,
                     timeout: float = 2.0) -> list[str]:
        """n UDP requests, each from a new socket (a new conntrack flow); the pod names that answered, or
        "timeout" / "refused" / "error:…"."""
        ns = self.node if client is None else f"{self._base}-{client}"
        r = self.exec(ns, [sys.executable, "-c", UDP_CLIENT_CODE, host, str(port), str(n), str(timeout)],
                      timeout=n * timeout + 60)
        answers: list[str] = json.loads(r.stdout)
        return answers

    def pod_by_name(self, name: str) -> Pod:
        return next(p for p in self.pods if p.name == name)

    def wait_port(self, host: str, port: int, tries: int = 50) -> None:
        for _ in range(tries):
            if self.http_get_many(host, port, 1, timeout=0.5)[0] not in ("refused", "timeout"):
                return
            time.sleep(0.1)
        raise LabError(f"{host}:{port} never answered")


def _run(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {r.stderr.strip()}")

"""The real Kubernetes control plane for the lab tests: etcd, kube-apiserver and kube-controller-manager (with
only the endpoint controllers), started from the binaries `tests/lab/build.sh` made, and kube-proxy inside a
network namespace a test made.

Why real ones: svcctl's models (the EndpointSlice controller's rules, kube-proxy's rules) must agree with what the
cluster itself does; these are the referee. There is no kubelet: tests create Nodes and Pods and write Pod status
through `pods/status`, as a kubelet would.

Everything listens on 127.0.0.1 only. kube-proxy runs in a network namespace and reaches the API server through a
UNIX-socket forwarder (`socat` on each side), so no interface, address or route is added to the host. Processes
are stopped by process id, in reverse order (kube-proxy, controller-manager, apiserver, etcd).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the test API server's openssl helpers (tests/ is on sys.path: tests/conftest.py puts it there)
from apiserver import _issue, _openssl, make_ca

LAB_VERSION = os.environ.get("LAB_VERSION", "v1.37.2")
SERVICE_CIDR = "198.19.0.0/16"
SERVICE_CIDR6 = "2001:db8:96::/112"
ADVERTISE = "198.18.255.1"  # not bound anywhere: the apiserver only needs a non-loopback address to publish
CA_NAME = "svcctl-lab-ca"


STARTED: list[subprocess.Popen[bytes]] = []  # every process the lab started (the leak guard checks them)


class LabUnavailable(RuntimeError):
    """The binaries are not built (run tests/lab/build.sh) or a component did not become healthy."""


# read at import: the test suite gives every test an empty HOME
_DEFAULT_CACHE = Path.home() / ".cache" / "svcctl-lab"


def cache_dir() -> Path:
    return Path(os.environ.get("SVCCTL_LAB_CACHE", str(_DEFAULT_CACHE)))


def bin_dir(version: str = LAB_VERSION) -> Path:
    return cache_dir() / version / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Credentials:
    """One user's way in: a client certificate, or a bearer token."""

    user: str
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, in `work`."""

    work: Path
    version: str = LAB_VERSION
    dual_stack: bool = True
    api_port: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    users: dict[str, Credentials] = field(default_factory=dict)
    ca: Path | None = None
    startup: dict[str, float] = field(default_factory=dict)  # component -> seconds to healthy

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ControlPlane:
        bins = bin_dir(self.version)
        for b in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-proxy"):
            if not (bins / b).is_file():
                raise LabUnavailable(f"{bins / b} is missing: run `bash tests/lab/build.sh {self.version}`")
        self.work.mkdir(parents=True, exist_ok=True)
        self._pki()
        try:
            self._start_etcd(bins)
            self._start_apiserver(bins)
            self._start_controller_manager(bins)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Reverse order: a controller-manager left running keeps the apiserver ~30 s in its shutdown."""
        for name in sorted(self.procs, key=_stop_order):
            p = self.procs[name]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        self.procs.clear()

    def log_tail(self, name: str, n: int = 30) -> str:
        path = self.work / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])

    def _spawn(self, name: str, argv: list[str], netns: str | None = None) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        full = ["ip", "netns", "exec", netns, *argv] if netns else argv
        p = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        self.procs[name] = p
        STARTED.append(p)
        return p

    def _wait(self, name: str, probe: Any, timeout: float = 60) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.procs[name].poll() is not None:
                raise LabUnavailable(f"{name} exited ({self.procs[name].returncode}):\n{self.log_tail(name)}")
            with contextlib.suppress(Exception):
                if probe():
                    self.startup[name] = time.monotonic() - t0
                    return
            time.sleep(0.1)
        raise LabUnavailable(f"{name} not healthy after {timeout:.0f} s:\n{self.log_tail(name)}")

    # ------------------------------------------------------------------ PKI and users

    def _pki(self) -> None:
        d = self.work / "pki"
        d.mkdir(exist_ok=True)
        ca = make_ca(d, CA_NAME)
        self.ca = ca[0]
        self.server_cert, self.server_key = _issue(
            d, "apiserver", "/CN=kube-apiserver", ca,
            "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:198.19.0.1,DNS:kubernetes.default.svc\n"
            "extendedKeyUsage=serverAuth\n")
        for user, group in (("lab-admin", "system:masters"), ("system:kube-proxy", ""),
                            ("system:kube-controller-manager", ""), ("cert-viewer", "svcctl-testers")):
            subj = f"/O={group}/CN={user}" if group else f"/CN={user}"
            c, k = _issue(d, user.replace(":", "-"), subj, ca, "extendedKeyUsage=clientAuth\n")
            self.users[user] = Credentials(user, cert=c, key=k)
        _openssl("genrsa", "-out", str(d / "sa.key"), "2048")
        _openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))
        tokens = {"token-admin": ("lab-admin-token", "system:masters"), "svcctl-viewer": ("viewer-token", ""),
                  "exec-viewer": ("exec-token", "")}
        lines = []
        for i, (user, (tok, group)) in enumerate(tokens.items()):
            lines.append(f'{tok},{user},uid-{i}' + (f',"{group}"' if group else ""))
            self.users[user] = Credentials(user, token=tok)
        (d / "tokens.csv").write_text("\n".join(lines) + "\n")
        for p in d.glob("*.key"):
            os.chmod(p, 0o600)

    # ------------------------------------------------------------------ components

    def _start_etcd(self, bins: Path) -> None:
        cport, pport = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{cport}"
        self._spawn("etcd", [
            str(bins / "etcd"), "--data-dir", str(self.work / "etcd"), "--name", "lab",
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{pport}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
            "--initial-cluster", f"lab=http://127.0.0.1:{pport}", "--unsafe-no-fsync",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}", "--log-level", "warn"])

        def healthy() -> bool:
            c = http.client.HTTPConnection("127.0.0.1", cport, timeout=2)
            c.request("GET", "/health")
            return c.getresponse().status == 200

        self._wait("etcd", healthy)

    def _start_apiserver(self, bins: Path) -> None:
        self.api_port = free_port()
        d = self.work / "pki"
        cidr = f"{SERVICE_CIDR},{SERVICE_CIDR6}" if self.dual_stack else SERVICE_CIDR
        self._spawn("kube-apiserver", [
            str(bins / "kube-apiserver"), "--etcd-servers", self.etcd_url,
            "--bind-address", "127.0.0.1", "--secure-port", str(self.api_port), "--advertise-address", ADVERTISE,
            "--tls-cert-file", str(self.server_cert), "--tls-private-key-file", str(self.server_key),
            "--client-ca-file", str(self.ca), "--token-auth-file", str(d / "tokens.csv"),
            "--authorization-mode", "RBAC", "--disable-admission-plugins", "ServiceAccount",
            "--service-cluster-ip-range", cidr,
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(d / "sa.pub"),
            "--service-account-signing-key-file", str(d / "sa.key"),
            "--enable-priority-and-fairness=false", "--profiling=false", "--v=1"])
        self._wait("kube-apiserver", lambda: self.request("GET", "/readyz")[0] == 200, timeout=90)

    def _start_controller_manager(self, bins: Path) -> None:
        kc = self.write_kubeconfig(self.work / "kcm.kubeconfig", "system:kube-controller-manager",
                                   user_as="lab-admin")
        port = free_port()
        self._spawn("kube-controller-manager", [
            str(bins / "kube-controller-manager"), "--kubeconfig", str(kc),
            "--controllers", "endpointslice,endpoint,endpointslicemirroring", "--leader-elect=false",
            "--bind-address", "127.0.0.1", "--secure-port", str(port), "--profiling=false", "--v=1"])

        def healthy() -> bool:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=ctx)
            c.request("GET", "/healthz")
            return c.getresponse().status == 200

        self._wait("kube-controller-manager", healthy)

    def version_info(self) -> dict[str, Any]:
        return self.request("GET", "/version")[1]

    # ------------------------------------------------------------------ kubeconfigs

    def write_kubeconfig(self, path: Path, name: str = "lab-admin", *, server: str | None = None,
                         user_as: str | None = None, exec_token: str | None = None) -> Path:
        """A kubeconfig for user `user_as or name`; `exec_token` makes it an exec-plugin user printing that
        token (the client runs the plugin, as kubectl would)."""
        cred = self.users[user_as or name]
        user: dict[str, Any]
        if exec_token is not None:
            plugin = path.with_suffix(".plugin.sh")
            plugin.write_text("#!/bin/sh\nprintf '%s' '" + json.dumps({
                "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                "status": {"token": exec_token}}) + "'\n")
            plugin.chmod(0o755)
            user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                             "interactiveMode": "Never"}}
        elif cred.token:
            user = {"token": cred.token}
        else:
            user = {"client-certificate": str(cred.cert), "client-key": str(cred.key)}
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": server or f"https://127.0.0.1:{self.api_port}",
                                                     "certificate-authority": str(self.ca)}}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": name}}],
        }
        path.write_text(json.dumps(cfg, indent=1))
        return path

    # ------------------------------------------------------------------ a small REST client for the tests

    def _ctx(self, user: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        cred = self.users[user]
        if cred.cert:
            ctx.load_cert_chain(str(cred.cert), str(cred.key))
        return ctx

    def request(self, method: str, path: str, body: Any = None, *, user: str = "lab-admin",
                content_type: str = "application/json") -> tuple[int, Any]:
        """(status, decoded JSON or text). The tests' own writes (svcctl itself only reads)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, timeout=30, context=self._ctx(user))
        headers = {"Accept": "application/json"}
        cred = self.users[user]
        if cred.token:
            headers["Authorization"] = f"Bearer {cred.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode(errors="replace")

    def must(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = self.request(method, path, body, **kw)
        if status >= 300:
            raise AssertionError(f"{method} {path}: {status} {out}")
        return out

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create one object (Namespace, Node, Service, Pod, …); a Pod's `status` is then written through
        pods/status as a kubelet would (create ignores status)."""
        path = collection_path(obj)
        out: dict[str, Any] = self.must("POST", path, obj)
        if obj["kind"] in ("Pod", "Node") and obj.get("status"):
            out["status"] = obj["status"]
            out = self.must("PUT", f"{path}/{obj['metadata']['name']}/status", out)
        if obj["kind"] == "Service" and obj.get("status"):
            out["status"] = obj["status"]
            out = self.must("PUT", f"{path}/{obj['metadata']['name']}/status", out)
        return out

    def list(self, path: str) -> list[dict[str, Any]]:
        return list(self.must("GET", path).get("items") or [])


def _stop_order(name: str) -> int:
    order = ["kube-proxy", "socat", "kube-controller-manager", "kube-apiserver", "etcd"]
    for i, prefix in enumerate(order):
        if name.startswith(prefix):
            return i
    return 0


_PLURAL = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Node": "nodes", "Service": "services", "Pod": "pods",
           "Endpoints": "endpoints", "NetworkPolicy": "networkpolicies", "Event": "events",
           "EndpointSlice": "endpointslices", "ClusterRole": "clusterroles",
           "ClusterRoleBinding": "clusterrolebindings", "Role": "roles", "RoleBinding": "rolebindings"}
_GROUP = {"NetworkPolicy": "/apis/networking.k8s.io/v1", "EndpointSlice": "/apis/discovery.k8s.io/v1",
          "ClusterRole": "/apis/rbac.authorization.k8s.io/v1",
          "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1",
          "Role": "/apis/rbac.authorization.k8s.io/v1", "RoleBinding": "/apis/rbac.authorization.k8s.io/v1"}
_CLUSTER_SCOPED = {"Namespace", "Node", "ClusterRole", "ClusterRoleBinding"}


def collection_path(obj: dict[str, Any]) -> str:
    kind = obj["kind"]
    base = _GROUP.get(kind, "/api/v1")
    if kind in _CLUSTER_SCOPED:
        return f"{base}/{_PLURAL[kind]}"
    return f"{base}/namespaces/{obj['metadata'].get('namespace', 'default')}/{_PLURAL[kind]}"


def have_socat() -> bool:
    return shutil.which("socat") is not None

"""A small Kubernetes API server for tests: real HTTPS, real paths, real List/Status JSON.

It serves objects from a snapshot (or in-memory dicts) so the real `kubernetes` client and svcctl's LiveSource
talk to it exactly as they would to kube-apiserver: bearer-token or client-certificate authentication, label and
field selectors, `limit`/`continue` paging with expirable continue tokens, RBAC from Role/ClusterRole YAML,
programmable faults (status, delay, fail N times), and a websocket `pods/exec` endpoint. Every verb but GET is
refused with 405 and recorded, so a test can prove svcctl never tried to write.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

JSON = dict[str, Any]

# resource -> (kind, apiVersion, group, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "services": ("Service", "v1", "", True),
    "pods": ("Pod", "v1", "", True),
    "nodes": ("Node", "v1", "", False),
    "events": ("Event", "v1", "", True),
    "endpoints": ("Endpoints", "v1", "", True),
    "endpointslices": ("EndpointSlice", "discovery.k8s.io/v1", "discovery.k8s.io", True),
    "namespaces": ("Namespace", "v1", "", False),
    "secrets": ("Secret", "v1", "", True),
    "configmaps": ("ConfigMap", "v1", "", True),
    "networkpolicies": ("NetworkPolicy", "networking.k8s.io/v1", "networking.k8s.io", True),
    "adminnetworkpolicies": ("AdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1", "policy.networking.k8s.io",
                             False),
    "baselineadminnetworkpolicies": ("BaselineAdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1",
                                     "policy.networking.k8s.io", False),
}
KIND_TO_RESOURCE = {v[0]: k for k, v in RESOURCES.items()}

# fields the real apiserver accepts in fieldSelector, per resource (besides metadata.name / metadata.namespace)
FIELDS: dict[str, dict[str, Callable[[JSON], str]]] = {
    "pods": {
        "spec.nodeName": lambda o: str(o.get("spec", {}).get("nodeName") or ""),
        "status.phase": lambda o: str(o.get("status", {}).get("phase") or ""),
        "status.podIP": lambda o: str(o.get("status", {}).get("podIP") or ""),
        "spec.restartPolicy": lambda o: str(o.get("spec", {}).get("restartPolicy") or ""),
        "spec.hostNetwork": lambda o: "true" if o.get("spec", {}).get("hostNetwork") else "false",
    },
    "events": {
        "involvedObject.kind": lambda o: str(o.get("involvedObject", {}).get("kind") or ""),
        "involvedObject.name": lambda o: str(o.get("involvedObject", {}).get("name") or ""),
        "involvedObject.namespace": lambda o: str(o.get("involvedObject", {}).get("namespace") or ""),
        "involvedObject.uid": lambda o: str(o.get("involvedObject", {}).get("uid") or ""),
        "reason": lambda o: str(o.get("reason") or ""),
        "type": lambda o: str(o.get("type") or ""),
    },
    "nodes": {"spec.unschedulable": lambda o: "true" if o.get("spec", {}).get("unschedulable") else "false"},
    "namespaces": {"status.phase": lambda o: str(o.get("status", {}).get("phase") or "")},
}

EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of "
    "the results. Continuing with the provided token results in an inconsistent list - objects that were "
    "created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
)
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}


# --------------------------------------------------------------------------- TLS material (openssl CLI)


@dataclass
class PKI:
    """A throwaway CA with a server certificate for 127.0.0.1/localhost and a client certificate."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_user: str

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "svcctl-test-ca") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def _issue(directory: Path, stem: str, subject: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{stem}.key", directory / f"{stem}.csr", directory / f"{stem}.crt"
    extfile = directory / f"{stem}.ext"
    extfile.write_text(ext)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", subject)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(extfile))
    return cert, key


def make_pki(directory: Path, client_user: str = "cert-user") -> PKI:
    ca = make_ca(directory)
    scert, skey = _issue(directory, "server", "/CN=kube-apiserver", ca,
                         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    ccert, ckey = _issue(directory, "client", f"/O=svcctl-testers/CN={client_user}", ca,
                         "extendedKeyUsage=clientAuth\n")
    for k in (ca[1], skey, ckey):
        os.chmod(k, 0o600)
    return PKI(directory, ca[0], ca[1], scert, skey, ccert, ckey, client_user)


# --------------------------------------------------------------------------- selectors


_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s*\((.*)\)\s*$")


class SelectorError(ValueError):
    pass


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses (`a in (x,y),b=c`)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str) -> list[tuple[str, str, frozenset[str]]]:
    """(key, op, values) with op in = != in notin exists !exists."""
    out: list[tuple[str, str, frozenset[str]]] = []
    for part in _split_top(text or ""):
        m = _SET_RE.match(part)
        if m:
            vals = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            out.append((m.group(1), m.group(2), vals))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            out.append((k.strip(), "!=", frozenset([v.strip()])))
        elif "==" in part:
            k, v = part.split("==", 1)
            out.append((k.strip(), "=", frozenset([v.strip()])))
        elif "=" in part:
            k, v = part.split("=", 1)
            out.append((k.strip(), "=", frozenset([v.strip()])))
        elif part.startswith("!"):
            out.append((part[1:].strip(), "!exists", frozenset()))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", part):
            out.append((part, "exists", frozenset()))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return out


def label_match(labels: dict[str, str], sel: list[tuple[str, str, frozenset[str]]]) -> bool:
    for key, op, vals in sel:
        has = key in labels
        v = labels.get(key)
        if op == "=" and (not has or v not in vals):
            return False
        if op == "!=" and has and v in vals:
            return False
        if op == "in" and (not has or v not in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def parse_field_selector(resource: str, text: str) -> list[tuple[Callable[[JSON], str], str, str]]:
    getters: dict[str, Callable[[JSON], str]] = {
        "metadata.name": lambda o: str(o.get("metadata", {}).get("name") or ""),
        "metadata.namespace": lambda o: str(o.get("metadata", {}).get("namespace") or ""),
        **FIELDS.get(resource, {}),
    }
    out = []
    for part in _split_top(text or ""):
        if "!=" in part:
            k, v = part.split("!=", 1)
            op = "!="
        elif "==" in part:
            k, v = part.split("==", 1)
            op = "="
        elif "=" in part:
            k, v = part.split("=", 1)
            op = "="
        else:
            raise SelectorError(f"invalid selector: '{part}'; can't understand '{part}'")
        k = k.strip()
        if k not in getters:
            raise SelectorError(f'field label not supported: {k}')
        out.append((getters[k], op, v.strip()))
    return out


def field_match(obj: JSON, sel: list[tuple[Callable[[JSON], str], str, str]]) -> bool:
    for getter, op, value in sel:
        got = getter(obj)
        if (op == "=") != (got == value):
            return False
    return True


# --------------------------------------------------------------------------- RBAC


@dataclass
class Grant:
    """One PolicyRule, valid cluster-wide (namespace None) or in one namespace (a RoleBinding)."""

    api_groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    resource_names: frozenset[str]
    namespace: str | None

    def allows(self, verb: str, group: str, resource: str, namespace: str | None, name: str | None) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        if "*" not in self.api_groups and group not in self.api_groups:
            return False
        if "*" not in self.resources and resource not in self.resources:
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        return not self.resource_names or (name is not None and name in self.resource_names)


def load_roles(path: str | Path) -> dict[str, JSON]:
    """Role/ClusterRole documents of a YAML file, keyed `Kind/name`."""
    roles: dict[str, JSON] = {}
    for doc in yaml.safe_load_all(Path(path).read_text()):
        if isinstance(doc, dict) and doc.get("kind") in ("Role", "ClusterRole"):
            roles[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return roles


def grants_from_role(role: JSON, namespace: str | None = None) -> list[Grant]:
    """Grants a binding of `role` gives: a ClusterRoleBinding (namespace None) or a RoleBinding in `namespace`.

    A Role is namespaced by itself, so it only ever grants in its own namespace."""
    if role.get("kind") == "Role":
        namespace = role.get("metadata", {}).get("namespace") or namespace or "default"
    out = []
    for r in role.get("rules") or []:
        out.append(Grant(frozenset(r.get("apiGroups") or [""]), frozenset(r.get("resources") or []),
                         frozenset(r.get("verbs") or []), frozenset(r.get("resourceNames") or []), namespace))
    return out


# --------------------------------------------------------------------------- faults and records


@dataclass
class Fault:
    """Make matching requests fail (status) and/or be slow (delay); `times` None = always."""

    resource: str | None = None  # "events", "pods", "pods/exec", … (None = any)
    path: str | None = None  # path prefix instead of resource
    status: int | None = 500
    delay: float = 0.0
    times: int | None = None
    retry_after: int | None = None
    only_continue: bool = False  # only requests carrying a continue token
    hits: int = 0

    def matches(self, resource: str, path: str, has_continue: bool) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.only_continue and not has_continue:
            return False
        if self.path is not None and not path.startswith(self.path):
            return False
        return self.resource is None or self.resource == resource


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    user: str | None
    status: int = 0
    bytes: int = 0


ExecHandler = Callable[[str, str, str, list[str]], tuple[str, str, int]]


# --------------------------------------------------------------------------- the server


class FakeAPIServer:
    """HTTPS API server over in-memory objects; start() in a background thread, stop() when done."""

    def __init__(self, objects: Iterable[JSON] | str | Path | Any, pki: PKI, *, token: str = "svcctl-test-token",
                 user: str = "system:serviceaccount:default:svcctl", require_client_cert: bool = False,
                 copy: bool = True) -> None:
        self.pki = pki
        self.tokens: dict[str, str] = {token: user}
        self.token = token
        self.require_client_cert = require_client_cert
        self.store: dict[str, dict[str | None, list[JSON]]] = {r: {} for r in RESOURCES}
        self.by_name: dict[tuple[str, str | None, str], JSON] = {}
        self.requests: list[Request] = []
        self.writes: list[Request] = []  # every non-GET attempt
        self.execs: list[tuple[str, str, str, list[str]]] = []
        self.exec_seconds: list[float] = []  # each exec: from the connection's accept to its last frame written
        self.faults: list[Fault] = []
        self.grants: list[Grant] | None = None  # None = RBAC off (everything allowed)
        self.exec_handler: ExecHandler | None = None
        # the container has /bin/sh (kube-proxy's image does): a batched `sh -c SCRIPT` from svcctl runs each
        # of its commands through exec_handler (tests/support/sh_standin.py); False: the runtime's answer for a
        # missing executable (containerd's InternalError Status); None: `sh -c` goes to exec_handler as it is
        # (a handler running the real sh)
        self.shell: bool | None = True
        self.exec_latency = 0.0  # seconds before each exec's answer (the node's and the network's time)
        self.exec_bytes: list[int] = []  # each exec: its request line and the frames answered
        self.continue_epoch = 0
        self.resource_version = 1000
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.kubeconfig: Path | None = None
        self.encoded: dict[int, bytes] | None = None  # pre_encode(): each object's JSON, by id
        self._flat: dict[tuple[str, str | None], list[JSON]] = {}  # pre_encode(): each unfiltered list
        self.load(_objects_of(objects, copy))

    # ------------------------------------------------------------------ data

    def pre_encode(self) -> FakeAPIServer:
        """Encode every object's JSON once, so a list page is joined from bytes instead of encoded per request:
        the same bytes, for the benchmarks' 100,000-object lists (the server's json.dumps was most of a paged
        read's time). Objects must not change afterwards (load() drops the encodings)."""
        self.encoded = {id(o): json.dumps(o, separators=(",", ":")).encode()
                        for per_ns in self.store.values() for lst in per_ns.values() for o in lst}
        return self

    def load(self, objects: Iterable[JSON]) -> None:
        self.encoded = None
        self._flat = {}
        namespaces: set[str] = set()
        for o in objects:
            kind = o.get("kind")
            resource = KIND_TO_RESOURCE.get(str(kind))
            if resource is None:
                continue
            meta = o.setdefault("metadata", {})
            if not meta.get("resourceVersion"):
                self.resource_version += 1
                meta["resourceVersion"] = str(self.resource_version)
            namespaced = RESOURCES[resource][3]
            ns = meta.get("namespace") or ("default" if namespaced else None)
            if namespaced:
                meta["namespace"] = ns
                namespaces.add(ns)
            else:
                ns = None
            self.store[resource].setdefault(ns, []).append(o)
            self.by_name[(resource, ns, meta["name"])] = o
        have = {k[2] for k in self.by_name if k[0] == "namespaces"}
        for ns in sorted(namespaces - have):
            # the API server labels every Namespace with its name (kubernetes.io/metadata.name, immutable)
            o = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": ns, "resourceVersion": "1", "labels": {"kubernetes.io/metadata.name": ns}},
                 "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            self.store["namespaces"].setdefault(None, []).append(o)
            self.by_name[("namespaces", None, ns)] = o
        for per_ns in self.store.values():
            for lst in per_ns.values():
                lst.sort(key=lambda x: x["metadata"]["name"])

    def objects(self, resource: str) -> list[JSON]:
        return [o for ns in sorted(self.store[resource], key=lambda x: x or "") for o in self.store[resource][ns]]

    # ------------------------------------------------------------------ programming

    def set_fault(self, resource: str | None = None, *, path: str | None = None, status: int | None = 500,
                  delay: float = 0.0, times: int | None = None, retry_after: int | None = None,
                  only_continue: bool = False) -> Fault:
        f = Fault(resource, path, status, delay, times, retry_after, only_continue)
        with self._lock:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_continue_tokens(self) -> None:
        with self._lock:
            self.continue_epoch += 1

    def set_rbac(self, grants: list[Grant] | None) -> None:
        self.grants = grants

    def rbac_from_yaml(self, path: str | Path, bindings: dict[str, str | None]) -> None:
        """Enforce RBAC as if each `Kind/name` in `bindings` were bound to our user (None = cluster-wide)."""
        roles = load_roles(path)
        grants: list[Grant] = []
        for key, ns in bindings.items():
            grants += grants_from_role(roles[key], ns)
        self.grants = grants

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.writes.clear()
            self.execs.clear()
            self.exec_seconds.clear()
            self.exec_bytes.clear()

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def bytes_sent(self) -> int:
        return sum(r.bytes for r in self.requests)

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FakeAPIServer:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.pki.server_cert), str(self.pki.server_key))
        ctx.load_verify_locations(str(self.pki.ca_cert))
        ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        server = self

        class Httpd(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            # a fleet read opens hundreds of exec connections at once: socketserver's backlog of 5 drops their
            # SYNs, and each dropped one waits for TCP's 1 s retransmission (a real API server listens with more)
            request_queue_size = 4096

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = self.socket.accept()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stall between header and body
                # the handshake runs lazily in the handler thread, so a bad client cannot stall accept()
                tls = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                tls.accepted = time.monotonic()  # type: ignore[attr-defined]  # exec latency: from the accept
                return tls, addr

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # TLS failures and clients that gave up (timeouts) are expected

        class Handler(_Handler):
            api = server

        self._httpd = Httpd(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-apiserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAPIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ kubeconfig

    def kubeconfig_dict(self, *, context: str = "test", namespace: str | None = "default",
                        user: JSON | None = None, ca: str = "data", server: str | None = None) -> JSON:
        """A kubeconfig for this server; `user` replaces the token user, `ca` is data | file | none | insecure."""
        cluster: JSON = {"server": server or self.url}
        if ca == "data":
            cluster["certificate-authority-data"] = base64.b64encode(self.pki.ca_pem).decode()
        elif ca == "file":
            cluster["certificate-authority"] = str(self.pki.ca_cert)
        elif ca == "insecure":
            cluster["insecure-skip-tls-verify"] = True
        ctx: JSON = {"cluster": f"{context}-cluster", "user": f"{context}-user"}
        if namespace:
            ctx["namespace"] = namespace
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
            "users": [{"name": f"{context}-user", "user": user if user is not None else {"token": self.token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: str | Path, **kw: Any) -> Path:
        p = Path(path)
        p.write_text(yaml.safe_dump(self.kubeconfig_dict(**kw), sort_keys=False))
        os.chmod(p, 0o600)
        return p

    # ------------------------------------------------------------------ request handling (called by _Handler)

    def authenticate(self, handler: _Handler) -> str | None:
        auth = handler.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return self.tokens.get(auth[7:].strip())
        try:
            peer = handler.connection.getpeercert()  # type: ignore[attr-defined]
        except (ssl.SSLError, ValueError, AttributeError):
            peer = None
        if peer:
            for rdn in peer.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return str(v)
        return None

    def authorize(self, verb: str, group: str, resource: str, namespace: str | None, name: str | None) -> bool:
        if self.grants is None:
            return True
        return any(g.allows(verb, group, resource, namespace, name) for g in self.grants)

    def take_fault(self, resource: str, path: str, has_continue: bool) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(resource, path, has_continue):
                    f.hits += 1
                    return f
        return None

    def record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)
            if req.method != "GET":
                self.writes.append(req)

    def list_objects(self, resource: str, namespace: str | None,
                     query: dict[str, str]) -> tuple[int, JSON | Encoded]:
        try:
            lsel = parse_label_selector(query.get("labelSelector", ""))
            fsel = parse_field_selector(resource, query.get("fieldSelector", ""))
        except SelectorError as e:
            return 400, status_body(400, str(e))
        if namespace is None:
            pools = [self.store[resource][k] for k in sorted(self.store[resource], key=lambda x: x or "")]
        else:
            pools = [self.store[resource].get(namespace, [])]
        flat = self._flat.get((resource, namespace)) if self.encoded is not None and not lsel and not fsel else None
        if flat is not None:
            items = flat  # frozen (pre_encode): the whole list, not rebuilt for each of its pages
        else:
            items = [o for pool in pools for o in pool
                     if (not lsel or label_match(o.get("metadata", {}).get("labels") or {}, lsel))
                     and (not fsel or field_match(o, fsel))]
            if self.encoded is not None and not lsel and not fsel:
                self._flat[(resource, namespace)] = items
        offset = 0
        token = query.get("continue")
        if token:
            try:
                t = json.loads(base64.urlsafe_b64decode(token.encode()))
                offset, epoch = int(t["o"]), int(t["e"])
            except (ValueError, KeyError, TypeError):
                return 400, status_body(400, "continue key is not valid")
            if epoch != self.continue_epoch:
                body = status_body(410, EXPIRED_MESSAGE)
                body["metadata"] = {"continue": self._token(offset)}
                return 410, body
        limit = int(query.get("limit") or 0)
        page = items[offset:offset + limit] if limit > 0 else items[offset:]
        meta: JSON = {"resourceVersion": str(self.resource_version)}
        if limit > 0 and offset + limit < len(items):
            meta["continue"] = self._token(offset + limit)
            meta["remainingItemCount"] = len(items) - offset - limit
        kind, api_version = RESOURCES[resource][0], RESOURCES[resource][1]
        enc = self.encoded
        if enc is not None and all(id(o) in enc for o in page):  # json.dumps(body)'s bytes, joined
            head = json.dumps({"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta},
                              separators=(",", ":"))
            return 200, Encoded(head[:-1].encode() + b',"items":[' + b",".join(enc[id(o)] for o in page) + b"]}")
        return 200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": page}

    def _token(self, offset: int) -> str:
        return base64.urlsafe_b64encode(json.dumps({"o": offset, "e": self.continue_epoch}).encode()).decode()


class Encoded(bytes):
    """A response body already encoded (see FakeAPIServer.pre_encode)."""


def status_body(code: int, message: str, *, name: str | None = None, kind: str | None = None,
                group: str | None = None) -> JSON:
    body: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                  "reason": REASONS.get(code, "Unknown"), "code": code}
    details: JSON = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    if code == 429:
        details["retryAfterSeconds"] = 1
    if details:
        body["details"] = details
    return body


def _objects_of(source: Any, copy: bool = True) -> list[JSON]:
    """Objects from a path (via SnapshotSource), a SnapshotSource, or an iterable of dicts (deep-copied unless
    `copy` is False: big generated clusters are served as they are)."""
    if isinstance(source, str | Path):
        from svcctl.sources.snapshot import SnapshotSource

        source = SnapshotSource(str(source))
    if hasattr(source, "services") and hasattr(source, "pods"):
        raws: list[JSON] = []
        for coll in (source.services, source.pods, list(source.nodes.values()), source.events, source.slices,
                     list(source.endpoints.values())):
            raws += [x.raw for x in coll]
        for extra in (source.network_policies, list(source.namespace_objects.values()), source.admin_policies,
                      source.baseline_policies):
            raws += list(extra)
        return json.loads(json.dumps(raws))
    return [json.loads(json.dumps(o)) for o in source] if copy else list(source)


_PATH_RE = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z0-9.-]+)/(?P<version>v[0-9a-z]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[a-z]+))?/?$"
)


class _Handler(BaseHTTPRequestHandler):
    api: FakeAPIServer
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        try:
            self.connection.do_handshake()  # type: ignore[attr-defined]
        except (ssl.SSLError, OSError):
            return
        with contextlib.suppress(ssl.SSLError, OSError):
            super().handle()

    # every verb other than GET: refused and recorded
    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        req = Request(self.command, urlsplit(self.path).path, {}, self.command.lower(), "", None, None,
                      self.api.authenticate(self))
        body = status_body(405, f"the server does not allow this method on the requested resource ({self.command})")
        self._send(req, 405, body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _refuse  # noqa: N815

    def do_GET(self) -> None:  # noqa: N802
        api = self.api
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path
        user = api.authenticate(self)
        m = _PATH_RE.match(path)
        resource, ns, name, sub, group = "", None, None, None, ""
        if m:
            group = m.group("group") or ""
            ns, name, sub = m.group("ns"), m.group("name"), m.group("sub")
            resource = m.group("resource")
        subresource = f"{resource}/{sub}" if sub else resource
        verb = "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list")
        if sub == "exec":
            verb = "create"  # pods/exec is authorised as create, also for the websocket GET
        req = Request("GET", path, query, verb, subresource, ns, name, user)

        fault = api.take_fault(subresource, path, bool(query.get("continue")))
        if fault is not None and fault.delay:
            api._stop.wait(fault.delay)
        if user is None:
            return self._send(req, 401, status_body(401, "Unauthorized"))
        if path == "/version":
            return self._send(req, 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-svcctl-test",
                                         "platform": "linux/amd64"})
        if path in ("/api", "/apis", "/healthz", "/readyz"):
            return self._send(req, 200, {"kind": "APIVersions", "versions": ["v1"]} if path == "/api" else
                              {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if not resource or resource not in RESOURCES or (sub and subresource != "pods/exec"):
            return self._send(req, 404, status_body(404, "the server could not find the requested resource"))
        _, _, rgroup, namespaced = RESOURCES[resource]
        if (group or "") != rgroup:
            return self._send(req, 404, status_body(404, "the server could not find the requested resource"))
        if not api.authorize(verb, rgroup, subresource, ns, name):
            scope = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            what = f'{subresource} "{name}"' if name else subresource
            sub_text = f' subresource "{sub}"' if sub else ""
            msg = (f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}"{sub_text} '
                   f'in API group "{rgroup}"{scope}')
            return self._send(req, 403, status_body(403, msg, name=name, kind=resource, group=rgroup or None))
        if fault is not None and fault.status:
            body = status_body(fault.status, _fault_message(fault.status))
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.status == 410:
                body = status_body(410, EXPIRED_MESSAGE)
            return self._send(req, fault.status, body, headers)
        if sub == "exec":
            return self._exec(req, ns or "default", name or "", query)
        if name:
            obj = api.by_name.get((resource, ns if namespaced else None, name))
            if obj is None:
                return self._send(req, 404, status_body(404, f'{resource} "{name}" not found', name=name,
                                                        kind=resource, group=rgroup or None))
            return self._send(req, 200, obj)
        if ns is not None and not namespaced:
            return self._send(req, 404, status_body(404, "the server could not find the requested resource"))
        code, body = api.list_objects(resource, ns, query)
        return self._send(req, code, body)

    def _send(self, req: Request, code: int, body: JSON | Encoded, headers: dict[str, str] | None = None) -> None:
        data = bytes(body) if isinstance(body, Encoded) else json.dumps(body, separators=(",", ":")).encode()
        req.status, req.bytes = code, len(data)
        self.api.record(req)
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (OSError, ssl.SSLError):
            self.close_connection = True

    # ------------------------------------------------------------------ pods/exec over websocket (v4.channel.k8s.io)

    def _exec(self, req: Request, ns: str, pod: str, query: dict[str, str]) -> None:
        api = self.api
        if ("pods", ns, pod) not in api.by_name:
            return self._send(req, 404, status_body(404, f'pods "{pod}" not found', name=pod, kind="pods"))
        key = self.headers.get("Sec-WebSocket-Key")
        if not key or "websocket" not in (self.headers.get("Upgrade") or "").lower():
            return self._send(req, 400, status_body(400, "exec needs a websocket upgrade"))
        argv = [v for k, vs in parse_qs(urlsplit(self.path).query).items() if k == "command" for v in vs]
        container = query.get("container", "")
        with api._lock:
            api.execs.append((ns, pod, container, argv))
        handler = api.exec_handler
        if api.exec_latency:
            time.sleep(api.exec_latency)
        no_exe = False
        if handler is None:
            out, err, rc = "", "exec not configured\n", 126
        elif argv[:2] == ["sh", "-c"] and len(argv) == 3 and api.shell:
            from sh_standin import run_sh

            out, err, rc = run_sh(argv[2], lambda inner: handler(ns, pod, container, inner))
        elif argv[:1] == ["sh"] and api.shell is False:
            out, err, rc, no_exe = "", "", 126, True
        else:
            out, err, rc = handler(ns, pod, container, argv)
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        req.status = 101
        api.record(req)
        frames = bytearray()
        if out:
            frames += _ws_frame(b"\x01" + out.encode())
        if err:
            frames += _ws_frame(b"\x02" + err.encode())
        if rc == 0:
            status: JSON = {"metadata": {}, "status": "Success"}
        elif no_exe:  # what the kubelet relays from containerd when the executable is not in the image
            status = {"metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
                      "message": "Internal error occurred: error executing command in container: failed to exec in "
                                 f'container: failed to start exec "{os.urandom(8).hex()}": OCI runtime exec failed: '
                                 f'exec failed: unable to start container process: exec: "{argv[0]}": executable '
                                 "file not found in $PATH: unknown"}
        else:
            status = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: exit status {rc}",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]}}
        frames += _ws_frame(b"\x03" + json.dumps(status).encode())
        frames += _ws_frame(struct.pack("!H", 1000), opcode=0x8)
        req.bytes = len(frames)
        with api._lock:
            api.exec_bytes.append(len(self.requestline) + len(frames))
        try:
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept + b"\r\n"
                             b"Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n")
            self.wfile.write(bytes(frames))
            self.wfile.flush()
            accepted = getattr(self.connection, "accepted", None)
            if accepted is not None:
                with api._lock:
                    api.exec_seconds.append(time.monotonic() - accepted)
            time.sleep(0.05)
        except (OSError, ssl.SSLError):
            pass
        self.close_connection = True


def _ws_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def _fault_message(code: int) -> str:
    return {429: "Too many requests, please try again later.",
            500: "Internal error occurred: injected by the test",
            503: "service unavailable", 410: EXPIRED_MESSAGE}.get(code, f"injected fault {code}")


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then closed): connections to it are refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

"""LiveSource: the ClusterSource over a real API server, read-only (get and list only).

Every method asks for exactly what one question needs (the Service by name, its slices by label, Pods by
selector, Nodes by name, Events by field selector), so answering about one Service costs the same number of
requests in a 3-Service cluster and in a 10,000-Service one. Responses are read raw (`_preload_content=False`)
and fed to svcctl's own `from_dict`: the client's typed models are never built in the hot path.

Failures map onto exit statuses: unreachable / TLS / timeout / 401 / 403 on the Service → ClusterError (3);
403 on a secondary resource (events, nodes, endpoints, endpointslices) → the check that needed it is recorded in
`skipped` and the rest keeps working; 404 Service → NotFoundError (2) with close names; 429/5xx → retried.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from svcctl.errors import ClusterError, ForbiddenError, NotFoundError
from svcctl.model import JSON, Endpoints, EndpointSlice, Event, Node, Pod, Service
from svcctl.sources.base import NodeDumps, Skipped
from svcctl.sources.kubeconfig import ResolvedConfig, build_api_client, resolve

if TYPE_CHECKING:
    from svcctl.cli.app import App

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# reads whose refusal only switches off the check that needs them
SECONDARY = frozenset({"events", "nodes", "endpoints", "endpointslices", "namespaces", "kube-proxy pods"})


class _Expired(Exception):
    """410 Gone on a continue token: the list must start over."""


class LiveSource:
    """A ClusterSource over the API; counts its requests and the bytes it read."""

    page_size = 500
    max_retries = 3
    max_retry_after = 5.0  # seconds: honour Retry-After, but never hang a CLI for long
    backoff = 0.2  # first retry delay when the server gives no Retry-After; doubles each time

    def __init__(self, config: ResolvedConfig, *, request_timeout: float = 30.0,
                 debug: Callable[[str], None] | None = None, api_client: Any = None) -> None:
        self.config = config
        self.name = f"context {config.context}"
        self.skipped: list[Skipped] = []
        self.refusals = 0  # refused reads so far (RBAC), each one, for the checks that needed them
        self.last_refusal: Skipped | None = None
        self.requests = 0
        self.bytes_read = 0
        self.request_timeout = request_timeout if request_timeout and request_timeout > 0 else None
        self._debug = debug
        self._api_client = api_client
        self._core: Any = None
        self._discovery: Any = None
        self.sleep: Callable[[float], Any] = time.sleep  # between retries; tests record instead of waiting

    @classmethod
    def from_app(cls, app: App) -> LiveSource:
        cfg = resolve(app.kubeconfig, app.context)
        debug = app.terminal.debug if app.verbose else None
        src = cls(cfg, request_timeout=app.request_timeout, debug=debug)
        if debug:
            debug(cfg.describe())
        return src

    # ------------------------------------------------------------------ plumbing

    @property
    def api_client(self) -> Any:
        if self._api_client is None:
            self._api_client = build_api_client(self.config)
        return self._api_client

    @property
    def core(self) -> Any:
        if self._core is None:
            from kubernetes import client

            self._core = client.CoreV1Api(self.api_client)
        return self._core

    @property
    def discovery(self) -> Any:
        if self._discovery is None:
            from kubernetes import client

            self._discovery = client.DiscoveryV1Api(self.api_client)
        return self._discovery

    def close(self) -> None:
        if self._api_client is not None:
            self._api_client.close()

    def debug(self, text: str) -> None:
        if self._debug is not None:
            self._debug(text)

    def _timeout_kw(self) -> dict[str, Any]:
        return {"_request_timeout": self.request_timeout} if self.request_timeout else {}

    def _request(self, what: str, resource: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> JSON:
        """One GET with retries on 429/5xx; returns the decoded JSON body or raises a mapped error."""
        from kubernetes.client.exceptions import ApiException

        attempt = 0
        while True:
            self.requests += 1
            started = time.monotonic()
            try:
                resp = fn(*args, _preload_content=False, **self._timeout_kw(), **kw)
                data = resp.data
            except ApiException as e:
                self.bytes_read += len(e.body or b"")
                status = int(e.status or 0)
                self.debug(f"GET {what}: {status} in {_ms(started)}")
                if status in RETRY_STATUSES and attempt < self.max_retries:
                    delay = self._retry_delay(e, attempt)
                    self.debug(f"retrying {what} in {delay:.1f}s ({status}, attempt {attempt + 1})")
                    self.sleep(delay)
                    attempt += 1
                    continue
                raise self._api_error(e, what, resource) from None
            except Exception as e:  # urllib3 and ssl errors: the cluster could not be reached
                err = self._transport_error(e, what)
                if err is None:
                    raise
                raise err from None
            self.bytes_read += len(data)
            self.debug(f"GET {what}: 200, {len(data)} bytes in {_ms(started)}")
            try:
                body = json.loads(data)
            except ValueError:
                raise ClusterError(f"the API server sent a response that is not JSON for {what}",
                                   hint=f"is {self.config.server} really a Kubernetes API server?") from None
            if not isinstance(body, dict):
                raise ClusterError(f"unexpected response for {what}")
            return body

    def _retry_delay(self, e: Any, attempt: int) -> float:
        header = None
        try:
            header = (e.headers or {}).get("Retry-After")
        except AttributeError:
            header = None
        if header is not None:
            try:
                return max(0.0, min(float(header), self.max_retry_after))
            except ValueError:
                pass
        return float(min(self.backoff * (2 ** attempt), self.max_retry_after))

    def _api_error(self, e: Any, what: str, resource: str) -> Exception:
        status = int(e.status or 0)
        message = _status_message(e.body)
        server = self.config.server
        if status == 401:
            return ClusterError(f"credentials rejected by {server} (401 Unauthorized)",
                                hint=f"the credentials of user {self.config.user or '(in-cluster)'} in context "
                                     f"{self.config.context!r} are invalid or expired; log in again")
        if status == 403:
            return ForbiddenError(f"forbidden: {message or what}", resource=resource,
                                  hint="svcctl needs read access; see deploy/rbac.yaml (ClusterRole svcctl-reader)")
        if status == 404:
            return NotFoundError(message or f"{what}: not found")
        if status == 410:
            return _Expired()
        if status in RETRY_STATUSES:
            return ClusterError(f"the API server kept failing for {what}: {status} {message or e.reason}".rstrip(),
                                hint=f"gave up after {self.max_retries} retries; try again later")
        return ClusterError(f"the API server refused {what}: {status} {message or e.reason}".rstrip())

    def _transport_error(self, e: Exception, what: str) -> ClusterError | None:
        import ssl

        import urllib3.exceptions as u3

        if not isinstance(e, u3.HTTPError | ssl.SSLError | OSError):
            return None
        reason: Any = getattr(e, "reason", None) if isinstance(e, u3.MaxRetryError) else e
        server = self.config.server
        self.debug(f"GET {what}: {type(reason).__name__}")
        chain = [reason, getattr(reason, "__cause__", None), getattr(reason, "__context__", None)]
        if any(isinstance(r, ssl.SSLCertVerificationError) for r in chain) or (
                isinstance(reason, u3.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(reason)):
            return ClusterError(f"TLS verification of {server} failed: its certificate is not signed by the "
                                "certificate authority in the kubeconfig",
                                hint="check certificate-authority(-data) for this cluster, or the server address")
        if isinstance(reason, u3.SSLError | ssl.SSLError):
            return ClusterError(f"TLS handshake with {server} failed",
                                hint="check the server address, the CA, and the client certificate")
        if isinstance(reason, u3.NameResolutionError):
            host = server.split("://", 1)[-1].rsplit(":", 1)[0]
            return ClusterError(f"cannot resolve the API server host {host}",
                                hint="check the server address in the kubeconfig and your DNS/VPN")
        if isinstance(reason, (u3.NewConnectionError, ConnectionRefusedError)):
            text = "connection refused" if "refused" in str(reason).lower() else "no connection"
            return ClusterError(f"cannot connect to the API server {server}: {text}",
                                hint=f"is the cluster running and is context {self.config.context!r} right? "
                                     "(or use --snapshot)")
        # after the connection errors: urllib3's NewConnectionError is a ConnectTimeoutError subclass
        if isinstance(reason, u3.TimeoutError | TimeoutError):
            return ClusterError(f"request to {server} timed out after {self.request_timeout or 0:g}s ({what})",
                                hint="raise --request-timeout, or check that the cluster is reachable")
        return ClusterError(f"lost the connection to the API server {server} ({type(reason).__name__})",
                            hint="check that the cluster is reachable")

    def _degrade(self, resource: str, err: ForbiddenError) -> None:
        # every refusal counts, so each Service whose read was refused says so (not only the first one)
        self.refusals += 1
        self.last_refusal = Skipped(resource, err.message)
        if not any(s.resource == resource for s in self.skipped):
            self.skipped.append(Skipped(resource, err.message))
        self.debug(f"skipping {resource}: {err.message}")

    def _list(self, what: str, resource: str, fn: Callable[..., Any], *args: Any, cap: int | None = None,
              **kw: Any) -> list[JSON]:
        """A paged list (limit + continue); a 410 on a continue token restarts the list once.

        `cap` asks for one page of at most `cap` items and never follows `continue`: a bounded read."""
        if cap is not None:
            body = self._request(what, resource, fn, *args, limit=cap, **kw)
            return [i for i in body.get("items") or [] if isinstance(i, dict)][:cap]
        restarted = False
        while True:
            items: list[JSON] = []
            token: str | None = None
            try:
                while True:
                    extra = {"_continue": token} if token else {}
                    body = self._request(what, resource, fn, *args, limit=self.page_size, **extra, **kw)
                    items += [i for i in body.get("items") or [] if isinstance(i, dict)]
                    token = (body.get("metadata") or {}).get("continue") or None
                    if not token:
                        return items
            except _Expired:
                if restarted:
                    raise ClusterError(f"the list of {what} kept expiring while paging (410 Gone)",
                                       hint="the cluster is changing fast; try again") from None
                restarted = True
                self.debug(f"continue token for {what} expired (410); restarting the list")

    def _get(self, what: str, resource: str, fn: Callable[..., Any], *args: Any) -> JSON | None:
        """A GET of one object; None when it does not exist."""
        try:
            return self._request(what, resource, fn, *args)
        except NotFoundError:
            return None
        except _Expired:
            raise ClusterError(f"unexpected 410 Gone for {what}") from None

    # ------------------------------------------------------------------ ClusterSource

    def default_namespace(self) -> str:
        return self.config.namespace

    def get_service(self, namespace: str, name: str) -> Service:
        try:
            body = self._request(f"service {namespace}/{name}", "services", self.core.read_namespaced_service,
                                 name, namespace)
        except NotFoundError:
            raise NotFoundError(f'service "{name}" not found in namespace "{namespace}"',
                                hint=self._suggest(namespace, name)) from None
        except _Expired:
            raise ClusterError("unexpected 410 Gone reading a Service") from None
        return Service.from_dict(_kinded(body, "Service"))

    def _suggest(self, namespace: str, name: str) -> str | None:
        """`did you mean`, only on the error path: the same name in another namespace (one list filtered by the
        server on metadata.name), else close names in this namespace (one more list); quiet when refused."""
        from svcctl.sources.snapshot import suggest

        services: list[Service] = []
        try:
            items = self._list(f"services named {name} (all namespaces)", "services",
                               self.core.list_service_for_all_namespaces, field_selector=f"metadata.name={name}")
            services = [Service.from_dict(_kinded(i, "Service")) for i in items]
        except ClusterError:
            pass
        if not services:
            try:
                services = self.list_services(namespace)
            except ClusterError:
                return None
        return suggest(name, namespace, services)

    def list_services(self, namespace: str | None, label_selector: str | None = None,
                      limit: int | None = None) -> list[Service]:
        kw: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        kw["cap"] = limit
        if namespace is None:
            items = self._list("services (all namespaces)", "services",
                               self.core.list_service_for_all_namespaces, **kw)
        else:
            items = self._list(f"services -n {namespace}", "services", self.core.list_namespaced_service,
                               namespace, **kw)
        return [Service.from_dict(_kinded(i, "Service")) for i in items]

    def list_endpoint_slices(self, namespace: str, service_name: str) -> list[EndpointSlice]:
        try:
            items = self._list(f"endpointslices of {namespace}/{service_name}", "endpointslices",
                               self.discovery.list_namespaced_endpoint_slice, namespace,
                               label_selector=f"kubernetes.io/service-name={service_name}")
        except ForbiddenError as e:
            self._degrade("endpointslices", e)
            return []
        return [EndpointSlice.from_dict(_kinded(i, "EndpointSlice")) for i in items]

    def get_endpoints(self, namespace: str, name: str) -> Endpoints | None:
        try:
            body = self._get(f"endpoints {namespace}/{name}", "endpoints", self.core.read_namespaced_endpoints,
                             name, namespace)
        except ForbiddenError as e:
            self._degrade("endpoints", e)
            return None
        return Endpoints.from_dict(_kinded(body, "Endpoints")) if body is not None else None

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        body = self._get(f"pod {namespace}/{name}", "pods", self.core.read_namespaced_pod, name, namespace)
        return Pod.from_dict(_kinded(body, "Pod")) if body is not None else None

    def list_pods(self, namespace: str | None, label_selector: str | None = None,
                  limit: int | None = None) -> list[Pod]:
        kw: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        kw["cap"] = limit
        where = f"-n {namespace}" if namespace else "(all namespaces)"
        sel = f" -l {label_selector}" if label_selector else ""
        if namespace is None:
            items = self._list(f"pods {where}{sel}", "pods", self.core.list_pod_for_all_namespaces, **kw)
        else:
            items = self._list(f"pods {where}{sel}", "pods", self.core.list_namespaced_pod, namespace, **kw)
        return [Pod.from_dict(_kinded(i, "Pod")) for i in items]

    def get_nodes(self, names: list[str]) -> dict[str, Node | None]:
        """One GET per name; a name missing from the result could not be read (see `skipped`)."""
        out: dict[str, Node | None] = {}
        for n in dict.fromkeys(x for x in names if x):
            try:
                body = self._get(f"node {n}", "nodes", self.core.read_node, n)
            except ForbiddenError as e:
                self._degrade("nodes", e)
                return {}
            out[n] = Node.from_dict(_kinded(body, "Node")) if body is not None else None
        return out

    def list_nodes(self) -> list[Node]:
        try:
            items = self._list("nodes", "nodes", self.core.list_node)
        except ForbiddenError as e:
            self._degrade("nodes", e)
            return []
        return [Node.from_dict(_kinded(i, "Node")) for i in items]

    def list_events(self, namespace: str, kind: str, names: list[str]) -> list[Event]:
        """One field-selected list per name: the cost follows the Pods asked about, not the namespace."""
        out: list[Event] = []
        for n in dict.fromkeys(x for x in names if x):
            try:
                items = self._list(f"events of {kind} {namespace}/{n}", "events", self.core.list_namespaced_event,
                                   namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={n}")
            except ForbiddenError as e:
                self._degrade("events", e)
                return []
            out += [Event.from_dict(_kinded(i, "Event")) for i in items]
        return out

    # ------------------------------------------------------------------ whole-namespace reads (collect -n / -A)

    def list_all_endpoint_slices(self, namespace: str | None) -> list[EndpointSlice]:
        fn, args = ((self.discovery.list_endpoint_slice_for_all_namespaces, ()) if namespace is None
                    else (self.discovery.list_namespaced_endpoint_slice, (namespace,)))
        try:
            items = self._list(f"endpointslices {_where(namespace)}", "endpointslices", fn, *args)
        except ForbiddenError as e:
            self._degrade("endpointslices", e)
            return []
        return [EndpointSlice.from_dict(_kinded(i, "EndpointSlice")) for i in items]

    def iter_endpoint_slices(self, namespace: str | None) -> Iterator[EndpointSlice]:
        """Every EndpointSlice of the namespace (None: all), page by page: a summary that keeps a few numbers per
        Service never holds the whole list. A refusal is recorded in `skipped` and yields nothing."""
        fn, args = ((self.discovery.list_endpoint_slice_for_all_namespaces, ()) if namespace is None
                    else (self.discovery.list_namespaced_endpoint_slice, (namespace,)))
        try:
            for items in self._pages(f"endpointslices {_where(namespace)}", "endpointslices", fn, *args):
                for i in items:
                    yield EndpointSlice.from_dict(_kinded(i, "EndpointSlice"))
        except ForbiddenError as e:
            self._degrade("endpointslices", e)

    def iter_pods(self, namespace: str | None, label_selector: str | None = None) -> Iterator[Pod]:
        """Pods page by page (see iter_endpoint_slices); a refusal raises ForbiddenError like list_pods."""
        kw: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        fn, args = ((self.core.list_pod_for_all_namespaces, ()) if namespace is None
                    else (self.core.list_namespaced_pod, (namespace,)))
        for items in self._pages(f"pods {_where(namespace)}", "pods", fn, *args, **kw):
            for i in items:
                yield Pod.from_dict(_kinded(i, "Pod"))

    def _pages(self, what: str, resource: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Iterator[list[JSON]]:
        """The pages of one list (limit + continue). Pages already handed out cannot be taken back, so a 410 on
        a continue token is an error here, not a restart."""
        token: str | None = None
        while True:
            extra = {"_continue": token} if token else {}
            try:
                body = self._request(what, resource, fn, *args, limit=self.page_size, **extra, **kw)
            except _Expired:
                raise ClusterError(f"the list of {what} expired while paging (410 Gone)",
                                   hint="the cluster is changing fast; try again") from None
            yield [i for i in body.get("items") or [] if isinstance(i, dict)]
            token = (body.get("metadata") or {}).get("continue") or None
            if not token:
                return

    def list_all_endpoints(self, namespace: str | None) -> list[Endpoints]:
        fn, args = ((self.core.list_endpoints_for_all_namespaces, ()) if namespace is None
                    else (self.core.list_namespaced_endpoints, (namespace,)))
        try:
            items = self._list(f"endpoints {_where(namespace)}", "endpoints", fn, *args)
        except ForbiddenError as e:
            self._degrade("endpoints", e)
            return []
        return [Endpoints.from_dict(_kinded(i, "Endpoints")) for i in items]

    def list_all_events(self, namespace: str | None) -> list[Event]:
        fn, args = ((self.core.list_event_for_all_namespaces, ()) if namespace is None
                    else (self.core.list_namespaced_event, (namespace,)))
        try:
            items = self._list(f"events {_where(namespace)}", "events", fn, *args)
        except ForbiddenError as e:
            self._degrade("events", e)
            return []
        return [Event.from_dict(_kinded(i, "Event")) for i in items]

    def node_dumps(self, node: str) -> NodeDumps | None:
        return None  # the node module decides whether to exec into kube-proxy

    def namespaces(self) -> list[str]:
        try:
            items = self._list("namespaces", "namespaces", self.core.list_namespace)
        except ForbiddenError as e:
            self._degrade("namespaces", e)
            return [self.default_namespace()]
        return sorted(str((i.get("metadata") or {}).get("name") or "") for i in items)

    # ------------------------------------------------------------------ kube-proxy exec (node rules)

    def kube_proxy_pod_for_node(self, node: str) -> tuple[str, str] | None:
        """The kube-proxy Pod running on `node` (label k8s-app=kube-proxy in kube-system), Running first."""
        try:
            items = self._list(f"kube-proxy pods on {node}", "pods", self.core.list_namespaced_pod, "kube-system",
                               label_selector="k8s-app=kube-proxy", field_selector=f"spec.nodeName={node}")
        except ForbiddenError as e:
            self._degrade("kube-proxy pods", e)
            return None
        pods = [Pod.from_dict(_kinded(i, "Pod")) for i in items]
        pods.sort(key=lambda p: (p.phase != "Running", not p.ready, p.meta.name))
        return (pods[0].meta.namespace or "kube-system", pods[0].meta.name) if pods else None

    def exec_in_pod(self, namespace: str, pod: str, container: str | None, argv: list[str]) -> str:
        """Run a read-only command in a Pod through the pods/exec websocket; its stdout, or ClusterError.

        The websocket library has no connect timeout of its own, so the whole exchange runs in a worker thread
        bounded by --request-timeout, on its own ApiClient (kubernetes.stream patches the client it is given)."""
        what = f"exec {namespace}/{pod}: {' '.join(argv)}"
        limit = self.request_timeout or 60.0
        self.requests += 1
        started = time.monotonic()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["value"] = self._exec_ws(namespace, pod, container, argv, what, limit)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                result["error"] = e

        worker = threading.Thread(target=work, name="svcctl-exec", daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            self.debug(f"{what}: no answer within {limit:g}s")
            raise ClusterError(f"{what} did not finish within {limit:g}s", hint="raise --request-timeout")
        if "error" in result:
            raise result["error"]
        out, err, rc = result["value"]
        self.bytes_read += len(out) + len(err)
        self.debug(f"{what}: exit {rc}, {len(out)} bytes in {_ms(started)}")
        if rc:
            last = next((ln for ln in reversed(err.splitlines()) if ln.strip()), "")
            raise ClusterError(f"{what} exited with {rc}" + (f": {last[:200]}" if last else ""))
        return str(out)

    def _exec_ws(self, namespace: str, pod: str, container: str | None, argv: list[str], what: str,
                 limit: float) -> tuple[str, str, int]:
        import websocket
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream

        kw: dict[str, Any] = {"command": argv, "stderr": True, "stdin": False, "stdout": True, "tty": False,
                              "_preload_content": False}
        if container:
            kw["container"] = container
        try:
            api = client.CoreV1Api(client.ApiClient(configuration=self.api_client.configuration))
            ws = stream(api.connect_get_namespaced_pod_exec, pod, namespace, **kw)
            ws.run_forever(timeout=limit)
            if ws.is_open():
                ws.close()
                raise ClusterError(f"{what} did not finish within {limit:g}s", hint="raise --request-timeout")
            return str(ws.read_stdout() or ""), str(ws.read_stderr() or ""), int(ws.returncode or 0)
        except ApiException as e:
            text = str(e.reason or "")
            self.debug(f"{what}: failed ({text[:80]})")
            if "403" in text:
                raise ForbiddenError(f"forbidden: cannot exec into {namespace}/{pod}", resource="pods/exec",
                                     hint="reading node rules through kube-proxy needs ClusterRole "
                                          "svcctl-node-exec (deploy/rbac.yaml)") from None
            if "401" in text:
                raise ClusterError(f"credentials rejected by {self.config.server} (401 Unauthorized)") from None
            if "404" in text:
                raise ClusterError(f"{namespace}/{pod} not found for exec") from None
            raise ClusterError(f"{what} failed: {text[:200]}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise ClusterError(f"{what}: unreadable exec status ({type(e).__name__})") from None
        except (websocket.WebSocketException, OSError) as e:
            raise ClusterError(f"{what}: the exec stream failed ({type(e).__name__})",
                               hint="check that the cluster is reachable") from None

def _kinded(obj: JSON, kind: str) -> JSON:
    """List items come without `kind`; `raw` keeps it so collect writes objects kubectl can read back."""
    if "kind" not in obj:
        obj["kind"] = kind
        obj.setdefault("apiVersion", "discovery.k8s.io/v1" if kind == "EndpointSlice" else "v1")
    return obj


def _status_message(body: Any) -> str:
    try:
        doc = json.loads(body) if body else {}
    except (ValueError, TypeError):
        return ""
    return str(doc.get("message") or "") if isinstance(doc, dict) else ""


def _ms(started: float) -> str:
    return f"{(time.monotonic() - started) * 1000:.0f} ms"


def _where(namespace: str | None) -> str:
    return f"-n {namespace}" if namespace else "(all namespaces)"

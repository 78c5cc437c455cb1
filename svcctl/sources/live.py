"""LiveSource: the ClusterSource over a real API server, read-only (get and list only).

Every method asks for exactly what one question needs (the Service by name, its slices by label, Pods by
selector, Nodes by name, Events by field selector), so answering about one Service costs the same number of
requests in a 3-Service cluster and in a 10,000-Service one. The `kubernetes` package supplies the Configuration
(TLS, token, exec-plugin credentials) and its rest layer; requests are raw GETs whose JSON goes straight to
svcctl's own `from_dict`. The generated API classes and models are never imported: building them was most of a
one-Service answer's time (see README, Performance).

Failures map onto exit statuses: unreachable / TLS / timeout / 401 / 403 on the Service → ClusterError (3);
403 on a secondary resource (events, nodes, endpoints, endpointslices) → the check that needed it is recorded in
`skipped` and the rest keeps working; 404 Service → NotFoundError (2) with close names; 429/5xx → retried.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from svcctl import __version__
from svcctl.errors import ClusterError, ForbiddenError, NotFoundError
from svcctl.sources.base import NodeDumps, Skipped
from svcctl.sources.kubeconfig import ResolvedConfig, build_configuration, client_module, resolve

if TYPE_CHECKING:  # the model (its dataclasses, ≈ 11 ms of start-up) is imported where objects are built, after
    # the response: an unreachable server fails without it
    from svcctl.model import JSON, Endpoints, EndpointSlice, Event, Node, Pod, PodRef, Service
    from svcctl.sources.page_reader import Head, PageReader

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# reads whose refusal only switches off the check that needs them
SECONDARY = frozenset({"events", "nodes", "endpoints", "endpointslices", "namespaces", "kube-proxy pods",
                       "networkpolicies", "adminnetworkpolicies"})

T = TypeVar("T")


class _Expired(Exception):
    """410 Gone on a continue token: the list must start over."""


class LiveSource:
    """A ClusterSource over the API; counts its requests and the bytes it read."""

    page_size = 500
    max_retries = 3
    max_retry_after = 5.0  # seconds: honour Retry-After, but never hang a CLI for long
    backoff = 0.2  # first retry delay when the server gives no Retry-After; doubles each time
    read_ahead = True  # a list's pages after the first asked for while the one before is used (page_reader)

    def __init__(self, config: ResolvedConfig, *, request_timeout: float = 30.0,
                 debug: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.name = f"context {config.context}"
        self.skipped: list[Skipped] = []
        self.refusals = 0  # refused reads so far (RBAC), each one, for the checks that needed them
        self.last_refusal: Skipped | None = None
        self.requests = 0
        self.bytes_read = 0
        self._ws_opts: JSON | None = None
        self._ws_lock = threading.Lock()
        self._dialer: Any = None  # wsexec.Dialer, built on the first exec
        self.request_timeout = request_timeout if request_timeout and request_timeout > 0 else None
        self._debug = debug
        self._configuration: Any = None
        self._rest: Any = None
        self.sleep: Callable[[float], Any] = time.sleep  # between retries; tests record instead of waiting

    @classmethod
    def from_options(cls, kubeconfig: str | None, context: str | None, request_timeout: float,
                     debug: Callable[[str], None] | None = None) -> LiveSource:
        """kubectl's way of finding the cluster (--kubeconfig, $KUBECONFIG, ~/.kube/config, in-cluster)."""
        cfg = resolve(kubeconfig, context)
        src = cls(cfg, request_timeout=request_timeout, debug=debug)
        if debug:
            debug(cfg.describe())
        return src

    # ------------------------------------------------------------------ plumbing

    @property
    def configuration(self) -> Any:
        """The client's Configuration (server, TLS, token): built once, on the first request."""
        if self._configuration is None:
            self._configuration = build_configuration(self.config)
        return self._configuration

    @property
    def rest(self) -> Any:
        """The client's rest layer (a urllib3 pool over the Configuration's TLS settings).

        svcctl sends raw GETs through it and reads the JSON itself: the generated API classes and models
        (CoreV1Api alone costs about a second to import) are never loaded."""
        if self._rest is None:
            self._rest = client_module("rest").RESTClientObject(self.configuration)
        return self._rest

    def warm(self) -> None:
        """Build the client now, before worker threads share it (its lazy properties are not thread-safe)."""
        _ = self.rest

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()

    def debug(self, text: str) -> None:
        if self._debug is not None:
            self._debug(text)

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": f"svcctl/{__version__}"}
        auth = (self.configuration.api_key or {}).get("authorization")
        if auth:
            h["Authorization"] = auth
        return h

    def _request(self, what: str, resource: str, path: str, **query: Any) -> JSON:
        """One GET with retries on 429/5xx; returns the decoded JSON body or raises a mapped error.

        `query` uses the API's own parameter names (limit, continue, labelSelector, fieldSelector)."""
        return self._decode(self._fetch(what, resource, path, **query), what)

    def _fetch(self, what: str, resource: str, path: str, **query: Any) -> bytes:
        """`_request`'s GET: the body of a 2xx answer, undecoded (a page reader decodes in the caller's thread)."""
        from urllib.parse import urlencode

        params = {k: str(v) for k, v in query.items() if v is not None and v != ""}
        url = self.configuration.host + path + (("?" + urlencode(params)) if params else "")
        attempt = 0
        while True:
            self.requests += 1
            started = time.monotonic()
            try:
                resp = self.rest.request("GET", url, headers=self._headers(), _request_timeout=self.request_timeout)
                data = resp.read()
                resp.response.release_conn()
            except Exception as e:  # urllib3 and ssl errors: the cluster could not be reached
                err = self._transport_error(e, what)
                if err is None:
                    raise
                raise err from None
            self.bytes_read += len(data)
            if not 200 <= resp.status < 300:
                reply = _Reply(int(resp.status or 0), str(resp.reason or ""), resp.headers, data)
                self.debug(f"GET {what}: {reply.status} in {_ms(started)}")
                if reply.status in RETRY_STATUSES and attempt < self.max_retries:
                    delay = self._retry_delay(reply, attempt)
                    self.debug(f"retrying {what} in {delay:.1f}s ({reply.status}, attempt {attempt + 1})")
                    self.sleep(delay)
                    attempt += 1
                    continue
                raise self._api_error(reply, what, resource, path)
            self.debug(f"GET {what}: {resp.status}, {len(data)} bytes in {_ms(started)}")
            return bytes(data)

    def _decode(self, data: bytes, what: str) -> JSON:
        try:
            body = json.loads(data)
        except ValueError:
            raise ClusterError(f"{self.config.server} is not a Kubernetes API server: it answered {what} with "
                               + ("an HTML page" if _looks_html(data) else "something that is not JSON"),
                               hint="check the server address in the kubeconfig") from None
        if not isinstance(body, dict):
            raise ClusterError(f"unexpected response for {what}")
        return body

    def _retry_delay(self, e: _Reply, attempt: int) -> float:
        header = (e.headers or {}).get("Retry-After")
        if header is not None:
            try:
                return max(0.0, min(float(header), self.max_retry_after))
            except ValueError:
                pass
        return float(min(self.backoff * (2 ** attempt), self.max_retry_after))

    def _api_error(self, e: _Reply, what: str, resource: str, path: str = "") -> Exception:
        status = e.status
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
            # the API answers 404 with a Status object; anything else is not the API -- except under /apis/ for
            # a group/version the server does not serve (an absent CRD, policy.networking.k8s.io without the
            # AdminNetworkPolicy CRDs): the real kube-apiserver answers those with a plain "404 page not found"
            unserved_group = path.startswith("/apis/") and not _looks_html(e.body)
            if unserved_group:
                return NotFoundError(f"{what}: not served by this API server (its API group is not installed)")
            if not _is_status(e.body):
                return ClusterError(f"{server} is not a Kubernetes API server: 404 for {what}"
                                    + (" (an HTML page)" if _looks_html(e.body) else ""),
                                    hint="check the server address in the kubeconfig (a proxy or web server answers)")
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

        server = self.config.server
        if type(e).__name__ == "ApiException" and not getattr(e, "status", None):
            # the rest layer wraps a bare urllib3 SSLError this way
            self.debug(f"GET {what}: {getattr(e, 'reason', '')}")
            return ClusterError(f"TLS handshake with {server} failed",
                                hint="check the server address, the CA, and the client certificate")
        if not isinstance(e, u3.HTTPError | ssl.SSLError | OSError):
            return None
        reason: Any = getattr(e, "reason", None) if isinstance(e, u3.MaxRetryError) else e
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

    def _list(self, what: str, resource: str, path: str, *, cap: int | None = None, **query: Any) -> list[JSON]:
        """A paged list (limit + continue); a 410 on a continue token restarts the list once.

        `cap` asks for one page of at most `cap` items and never follows `continue`: a bounded read."""
        if cap is not None:
            body = self._request(what, resource, path, limit=cap, **query)
            return [i for i in body.get("items") or [] if isinstance(i, dict)][:cap]

        def read() -> list[JSON]:
            items: list[JSON] = []
            for page in self._pages(what, resource, path, restart=True, **query):
                items += page
            return items

        return self._restarting(what, read)

    def _restarting(self, what: str, read: Callable[[], T]) -> T:
        """`read()` of a whole paged list, once more from the start when a continue token expires (410), then a
        ClusterError: a list that keeps expiring is a cluster changing faster than it can be read."""
        restarted = False
        while True:
            try:
                return read()
            except _Expired:
                if restarted:
                    raise ClusterError(f"the list of {what} kept expiring while paging (410 Gone)",
                                       hint="the cluster is changing fast; try again") from None
                restarted = True
                self.debug(f"continue token for {what} expired (410); restarting the list")

    def _get(self, what: str, resource: str, path: str) -> JSON | None:
        """A GET of one object; None when it does not exist."""
        try:
            return self._request(what, resource, path)
        except NotFoundError:
            return None
        except _Expired:
            raise ClusterError(f"unexpected 410 Gone for {what}") from None

    def _pages(self, what: str, resource: str, path: str, *, restart: bool = False,
               **query: Any) -> Iterator[list[JSON]]:
        """The pages of one list (limit + continue). Pages already handed out cannot be taken back, so a 410 on
        a continue token is an error here, not a restart (unless `restart`: then _Expired is raised for the
        caller to start over)."""
        token: str | None = None
        reader: PageReader | None = None  # from the second page on: see sources/page_reader.py

        def fetch(token: str | None) -> bytes:
            return self._fetch(what, resource, path, limit=self.page_size, **{"continue": token}, **query)

        ended = False  # read to the end: only then is the reader's thread waited for (it has returned)
        try:
            while True:
                early: Head = None  # what the page's head said of the next token (read ahead only)
                try:
                    if reader is None:
                        data = fetch(token)
                    else:
                        data, early = reader.next()
                except _Expired:
                    if restart:
                        raise
                    raise ClusterError(f"the list of {what} expired while paging (410 Gone)",
                                       hint="the cluster is changing fast; try again") from None
                body = self._decode(data, what)
                del data
                items = [i for i in body.get("items") or [] if isinstance(i, dict)]
                token = (body.get("metadata") or {}).get("continue") or None
                del body  # not alive while the next page is read and decoded (check -A: 500 Pods' JSON, ≈ 3 MB)
                if reader is not None:
                    reader.told(early, token)
                elif token and self.read_ahead:
                    from svcctl.sources.page_reader import PageReader  # (a one-page list never needs it)

                    reader = PageReader(fetch, token)  # the second page is asked for now
                yield items
                del items
                if not token:
                    ended = True
                    return
        finally:
            if reader is not None:
                reader.stop(wait=ended)

    # ------------------------------------------------------------------ ClusterSource

    def default_namespace(self) -> str:
        return self.config.namespace

    def get_service(self, namespace: str, name: str) -> Service:
        try:
            body = self._request(f"service {namespace}/{name}", "services", _path("services", namespace, name))
        except NotFoundError:
            raise NotFoundError(f'service "{name}" not found in namespace "{namespace}"',
                                hint=self._suggest(namespace, name)) from None
        except _Expired:
            raise ClusterError("unexpected 410 Gone reading a Service") from None
        from svcctl.model import Service
        return Service.from_dict(_kinded(body, "Service"))

    def _suggest(self, namespace: str, name: str) -> str | None:
        """`did you mean`, only on the error path: the same name in another namespace (one list filtered by the
        server on metadata.name), else close names in this namespace (one more list); quiet when refused."""
        from svcctl.sources.snapshot import suggest

        services: list[Service] = []
        try:
            items = self._list(f"services named {name} (all namespaces)", "services", _path("services"),
                               fieldSelector=f"metadata.name={name}")
            from svcctl.model import Service
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
        items = self._list(f"services {_where(namespace)}", "services", _path("services", namespace), cap=limit,
                           labelSelector=label_selector)
        from svcctl.model import Service
        return [Service.from_dict(_kinded(i, "Service")) for i in items]

    def list_endpoint_slices(self, namespace: str, service_name: str) -> list[EndpointSlice]:
        try:
            items = self._list(f"endpointslices of {namespace}/{service_name}", "endpointslices",
                               _path("endpointslices", namespace),
                               labelSelector=f"kubernetes.io/service-name={service_name}")
        except ForbiddenError as e:
            self._degrade("endpointslices", e)
            return []
        from svcctl.model import EndpointSlice
        return [EndpointSlice.from_dict(_kinded(i, "EndpointSlice")) for i in items]

    def get_endpoints(self, namespace: str, name: str) -> Endpoints | None:
        try:
            body = self._get(f"endpoints {namespace}/{name}", "endpoints", _path("endpoints", namespace, name))
        except ForbiddenError as e:
            self._degrade("endpoints", e)
            return None
        from svcctl.model import Endpoints
        return Endpoints.from_dict(_kinded(body, "Endpoints")) if body is not None else None

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        body = self._get(f"pod {namespace}/{name}", "pods", _path("pods", namespace, name))
        from svcctl.model import Pod
        return Pod.from_dict(_kinded(body, "Pod")) if body is not None else None

    def list_pods(self, namespace: str | None, label_selector: str | None = None,
                  limit: int | None = None) -> list[Pod]:
        sel = f" -l {label_selector}" if label_selector else ""
        items = self._list(f"pods {_where(namespace)}{sel}", "pods", _path("pods", namespace), cap=limit,
                           labelSelector=label_selector)
        from svcctl.model import Pod
        return [Pod.from_dict(_kinded(i, "Pod")) for i in items]

    def get_nodes(self, names: list[str]) -> dict[str, Node | None]:
        """One GET per name; a name missing from the result could not be read (see `skipped`)."""
        from svcctl.model import Node

        out: dict[str, Node | None] = {}
        for n in dict.fromkeys(x for x in names if x):
            try:
                body = self._get(f"node {n}", "nodes", _path("nodes", None, n))
            except ForbiddenError as e:
                self._degrade("nodes", e)
                return {}
            out[n] = Node.from_dict(_kinded(body, "Node")) if body is not None else None
        return out

    def list_nodes(self) -> list[Node]:
        try:
            items = self._list("nodes", "nodes", _path("nodes"))
        except ForbiddenError as e:
            self._degrade("nodes", e)
            return []
        from svcctl.model import Node
        return [Node.from_dict(_kinded(i, "Node")) for i in items]

    def list_events(self, namespace: str, kind: str, names: list[str]) -> list[Event]:
        """One field-selected list per name: the cost follows the Pods asked about, not the namespace."""
        from svcctl.model import Event

        out: list[Event] = []
        for n in dict.fromkeys(x for x in names if x):
            try:
                items = self._list(f"events of {kind} {namespace}/{n}", "events", _path("events", namespace),
                                   fieldSelector=f"involvedObject.kind={kind},involvedObject.name={n}")
            except ForbiddenError as e:
                self._degrade("events", e)
                return []
            out += [Event.from_dict(_kinded(i, "Event")) for i in items]
        return out

    # ------------------------------------------------------------------ whole-namespace reads (collect -n / -A)

    def _list_all(self, resource: str, kind: str, namespace: str | None, read: Callable[[JSON], T]) -> list[T]:
        """Every object of one resource in the namespace (None: all); a refusal is recorded in `skipped` and
        reads as none (the check that needed them says it was skipped)."""
        out = self.read_all(resource, kind, namespace, read)
        return [] if out is None else out

    def read_all(self, resource: str, kind: str, namespace: str | None, read: Callable[[JSON], T]) -> list[T] | None:
        """Every object of one resource (namespace None: all) through `read`, page by page: each page's JSON is
        dropped once read, so a caller that keeps less than the object (check -A's v1 Endpoints and Events)
        never holds the whole list's JSON. A 410 on a continue token restarts the list once, as `_list` does;
        None when refused (recorded in `skipped`)."""
        what = f"{resource} {_where(namespace)}"

        def read_pages() -> list[T]:
            out: list[T] = []
            for page in self._pages(what, resource, _path(resource, namespace), restart=True):
                out += [read(_kinded(i, kind)) for i in page]
            return out

        try:
            return self._restarting(what, read_pages)
        except ForbiddenError as e:
            self._degrade(resource, e)
            return None

    def _list_kind(self, what: str, resource: str, namespace: str | None, kind: str) -> list[JSON] | None:
        """One resource's objects as JSON with their kind; None when refused (recorded in `skipped`)."""
        try:
            items = self._list(what, resource, _path(resource, namespace))
        except ForbiddenError as e:
            self._degrade(resource, e)
            return None
        return [_kinded(i, kind) for i in items]

    def list_all_endpoint_slices(self, namespace: str | None) -> list[EndpointSlice]:
        from svcctl.model import EndpointSlice
        return self._list_all("endpointslices", "EndpointSlice", namespace, EndpointSlice.from_dict)

    def iter_endpoint_slices(self, namespace: str | None) -> Iterator[EndpointSlice]:
        """Every EndpointSlice of the namespace (None: all), page by page: a summary that keeps a few numbers per
        Service never holds the whole list. A refusal is recorded in `skipped` and yields nothing."""
        from svcctl.model import EndpointSlice

        try:
            for items in self._pages(f"endpointslices {_where(namespace)}", "endpointslices",
                                     _path("endpointslices", namespace)):
                for i in items:
                    yield EndpointSlice.from_dict(_kinded(i, "EndpointSlice"))
        except ForbiddenError as e:
            self._degrade("endpointslices", e)

    def iter_endpoint_slice_pages(self, namespace: str | None) -> Iterator[list[JSON]]:
        """iter_endpoint_slices' pages as decoded JSON (check -A builds its slices from them: `pod_pages`)."""
        try:
            yield from self._pages(f"endpointslices {_where(namespace)}", "endpointslices",
                                   _path("endpointslices", namespace))
        except ForbiddenError as e:
            self._degrade("endpointslices", e)

    def iter_pods(self, namespace: str | None, label_selector: str | None = None) -> Iterator[Pod]:
        """Pods page by page (see iter_endpoint_slices); a refusal raises ForbiddenError like list_pods."""
        from svcctl.model import Pod

        for items in self._pages(f"pods {_where(namespace)}", "pods", _path("pods", namespace),
                                 labelSelector=label_selector):
            for i in items:
                yield Pod.from_dict(_kinded(i, "Pod"))

    def iter_pod_pages(self, namespace: str | None) -> Iterator[list[JSON]]:
        """The Pods' list pages as decoded JSON (check -A builds its Pods from them: `pod_pages`); a refusal raises
        ForbiddenError like iter_pods."""
        yield from self._pages(f"pods {_where(namespace)}", "pods", _path("pods", namespace))

    def list_all_endpoints(self, namespace: str | None) -> list[Endpoints]:
        from svcctl.model import Endpoints
        return self._list_all("endpoints", "Endpoints", namespace, Endpoints.from_dict)

    def list_all_events(self, namespace: str | None) -> list[Event]:
        from svcctl.model import Event
        return self._list_all("events", "Event", namespace, Event.from_dict)

    def node_dumps(self, node: str) -> NodeDumps | None:
        return None  # the node module decides whether to exec into kube-proxy

    def namespaces(self) -> list[str]:
        try:
            items = self._list("namespaces", "namespaces", _path("namespaces"))
        except ForbiddenError as e:
            self._degrade("namespaces", e)
            return [self.default_namespace()]
        return sorted(str((i.get("metadata") or {}).get("name") or "") for i in items)

    # ------------------------------------------------------------------ policies (the trace's policy hop)

    def list_network_policies(self, namespace: str) -> list[JSON] | None:
        """One list per namespace; a refusal switches off the policy hop (recorded in `skipped`)."""
        try:
            return self._list_kind(f"networkpolicies -n {namespace}", "networkpolicies", namespace, "NetworkPolicy")
        except NotFoundError:
            return None

    def list_all_network_policies(self, namespace: str | None) -> list[JSON] | None:
        """collect -n / -A: one list (cluster-wide for -A); None when refused."""
        return self._list_kind(f"networkpolicies {_where(namespace)}", "networkpolicies", namespace, "NetworkPolicy")

    def list_namespace_objects(self) -> list[JSON] | None:
        """collect -A: every Namespace with its labels, one list; None when refused."""
        try:
            items = self._list("namespaces", "namespaces", _path("namespaces"))
        except ForbiddenError as e:
            self._degrade("namespaces", e)
            return None
        return [_kinded(i, "Namespace") for i in items]

    def get_namespace(self, name: str) -> JSON | None:
        """The Namespace (its labels decide namespaceSelector peers). RBAC may grant `list` without `get`; then
        the same object comes from a list narrowed to its name, so one Service's check sees the labels `check -A`
        (which lists Namespaces) sees, at one more request only when `get` is refused."""
        try:
            return self._get(f"namespace {name}", "namespaces", _path("namespaces", None, name))
        except ForbiddenError as e:
            refused = e
        try:
            items = self._list(f"namespace {name}", "namespaces", _path("namespaces"),
                               fieldSelector=f"metadata.name={name}")
        except ForbiddenError:
            self._degrade("namespaces", refused)
            return None
        found = [i for i in items if (i.get("metadata") or {}).get("name") == name]
        return _kinded(found[0], "Namespace") if found else None

    def list_admin_network_policies(self) -> tuple[list[JSON], list[JSON]] | None:
        """Both tiers of policy.networking.k8s.io/v1alpha1; None when the group is not served (404) or refused."""
        out: list[list[JSON]] = []
        for plural, kind in (("adminnetworkpolicies", "AdminNetworkPolicy"),
                             ("baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy")):
            try:
                items = self._list(plural, "adminnetworkpolicies", _path(plural))
            except ForbiddenError as e:
                self._degrade("adminnetworkpolicies", e)
                return None
            except NotFoundError:
                return None
            out.append([_kinded(i, kind) for i in items])
        return out[0], out[1]

    # ------------------------------------------------------------------ kube-proxy exec (node rules)

    def kube_proxy_pod_for_node(self, node: str) -> PodRef | None:
        """The kube-proxy Pod running on `node` (label k8s-app=kube-proxy in kube-system), Running first."""
        try:
            items = self._list(f"kube-proxy pods on {node}", "pods", _path("pods", "kube-system"),
                               labelSelector="k8s-app=kube-proxy", fieldSelector=f"spec.nodeName={node}")
        except ForbiddenError as e:
            self._degrade("kube-proxy pods", e)
            return None
        from svcctl.model import Pod, PodRef
        pods = [Pod.from_dict(_kinded(i, "Pod")) for i in items]
        pods.sort(key=lambda p: (p.phase != "Running", not p.ready, p.meta.name))
        return PodRef.of(pods[0], default_namespace="kube-system") if pods else None

    def _exec_direct(self, namespace: str, pod: str, path: str, header: list[str], what: str,
                     limit: float) -> tuple[str, str, int]:
        """The exec through svcctl's own small websocket client (sources/wsexec.py: one TLS context, sessions
        resumed), the same answers and errors as through websocket-client (used behind a proxy)."""
        import ssl

        from svcctl.sources import wsexec

        with self._ws_lock:
            if self._dialer is None:
                conf = self.configuration
                opts = _ws_ssl(conf)
                ctx = wsexec.make_context(opts) if conf.host.startswith("https://") else None
                self._dialer = wsexec.Dialer(conf.host, ctx, opts.get("server_hostname"))
            dialer = self._dialer
        try:
            chans = dialer.run(path, header, limit)
        except wsexec.UpgradeRefused as e:
            raise self._upgrade_refused(e.status, what, namespace, pod,
                                        f"{what} failed: {e.status} {_status_message(e.body)}"[:240].rstrip()) from None
        except wsexec.ExecTimeout:
            raise ClusterError(f"{what} did not finish within {limit:g}s", hint="raise --request-timeout") from None
        except (wsexec.StreamFailed, ssl.SSLError) as e:
            raise ClusterError(f"{what}: the exec stream failed ({e or type(e).__name__})",
                               hint="check that the cluster is reachable") from None
        out, err = chans[1].decode(errors="replace"), chans[2].decode(errors="replace")
        return out, err, _exit_code(bytes(chans[3]), what)

    def _ws_sslopt(self, conf: Any) -> JSON:
        """websocket-client's TLS options with one shared context, built on first use (under a lock: the fleet
        read's workers start together)."""
        with self._ws_lock:
            if self._ws_opts is None:
                import ssl

                opts = _ws_ssl(conf)
                with contextlib.suppress(OSError, ssl.SSLError, ValueError):  # else websocket-client builds one
                    opts["context"] = _ws_context(opts)
                self._ws_opts = opts
            return dict(self._ws_opts)

    def _upgrade_refused(self, code: int, what: str, namespace: str, pod: str, otherwise: str) -> ClusterError:
        """The error for an exec the API server would not upgrade to a stream (`otherwise`: for a status
        without a meaning of its own)."""
        self.debug(f"{what}: upgrade refused ({code})")
        if code == 403:
            return ForbiddenError(f"forbidden: cannot exec into {namespace}/{pod}", resource="pods/exec",
                                  hint="reading node rules through kube-proxy needs ClusterRole svcctl-node-exec "
                                       "(deploy/rbac.yaml)")
        if code == 401:
            return ClusterError(f"credentials rejected by {self.config.server} (401 Unauthorized)")
        if code == 404:
            return ClusterError(f"{namespace}/{pod} not found for exec")
        return ClusterError(otherwise)

    def exec_in_pod(self, namespace: str, pod: str, container: str | None, argv: list[str]) -> str:
        """Run a read-only command in a Pod through the pods/exec websocket; its stdout, or ClusterError (also
        when the command exits non-zero)."""
        out, err, rc = self.exec_status(namespace, pod, container, argv)
        if rc:
            last = next((ln for ln in reversed(err.splitlines()) if ln.strip()), "")
            raise ClusterError(f"exec {namespace}/{pod}: {_said(argv)} exited with {rc}"
                               + (f": {last[:200]}" if last else ""))
        return out

    def exec_status(self, namespace: str, pod: str, container: str | None, argv: list[str]) -> tuple[str, str, int]:
        """(stdout, stderr, exit status) of a read-only command in a Pod (a targeted read's "no such chain" is
        an answer, not a failure); ClusterError when the exec itself fails.

        The whole exchange is bounded by --request-timeout (a stalled stream must not hang the CLI): svcctl's own
        client checks the deadline at every socket step; behind a proxy, websocket-client runs in a worker thread
        that is given up on at the deadline."""
        what = f"exec {namespace}/{pod}: {_said(argv)}"
        limit = self.request_timeout or 60.0
        self.requests += 1
        started = time.monotonic()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["value"] = self._exec_ws(namespace, pod, container, argv, what, limit)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                result["error"] = e

        if not self.configuration.proxy:
            work()  # svcctl's own client keeps the deadline itself (every socket step): no thread per exec
        else:
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
        return str(out), str(err), int(rc)

    def _exec_ws(self, namespace: str, pod: str, container: str | None, argv: list[str], what: str,
                 limit: float) -> tuple[str, str, int]:
        """pods/exec over a websocket, subprotocol v4.channel.k8s.io: each binary message starts with its channel
        (1 stdout, 2 stderr, 3 the final Status as JSON). Only the GET upgrade is sent; stdin stays closed."""
        conf = self.configuration
        query = [("command", a) for a in argv] + [("stdout", "true"), ("stderr", "true"), ("stdin", "false"),
                                                   ("tty", "false")]
        if container:
            query.append(("container", container))
        path = _path("pods", namespace, pod) + "/exec?" + urlencode(query)
        header = ["Sec-WebSocket-Protocol: v4.channel.k8s.io", f"User-Agent: svcctl/{__version__}"]
        auth = (conf.api_key or {}).get("authorization")
        if auth:
            header.append(f"Authorization: {auth}")
        if not conf.proxy:
            return self._exec_direct(namespace, pod, path, header, what, limit)
        import websocket

        url = conf.host.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path
        ws = websocket.WebSocket(sslopt=self._ws_sslopt(conf), skip_utf8_validation=True)
        deadline = time.monotonic() + limit
        try:
            ws.connect(url, header=header, timeout=limit, **_ws_proxy(conf))  # type: ignore[no-untyped-call]
            chans: dict[int, bytearray] = {1: bytearray(), 2: bytearray(), 3: bytearray()}
            while True:
                ws.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    opcode, data = ws.recv_data()
                except websocket.WebSocketConnectionClosedException:
                    break
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) and data:
                    raw = data if isinstance(data, bytes) else str(data).encode()
                    if raw[0] in chans:
                        chans[raw[0]] += raw[1:]
        except websocket.WebSocketBadStatusException as e:
            code = int(getattr(e, "status_code", 0) or 0)
            raise self._upgrade_refused(code, what, namespace, pod, f"{what} failed: {code} {str(e)[:160]}") from None
        except websocket.WebSocketTimeoutException:
            raise ClusterError(f"{what} did not finish within {limit:g}s", hint="raise --request-timeout") from None
        except (websocket.WebSocketException, OSError) as e:
            raise ClusterError(f"{what}: the exec stream failed ({type(e).__name__})",
                               hint="check that the cluster is reachable") from None
        finally:
            with contextlib.suppress(Exception):
                ws.close()
        out, err = chans[1].decode(errors="replace"), chans[2].decode(errors="replace")
        return out, err, _exit_code(bytes(chans[3]), what)


class _Reply:
    """A non-2xx answer of the API server."""

    def __init__(self, status: int, reason: str, headers: Any, body: bytes) -> None:
        self.status, self.reason, self.headers, self.body = status, reason, headers, body


_GROUP_PREFIX = {"endpointslices": "/apis/discovery.k8s.io/v1", "networkpolicies": "/apis/networking.k8s.io/v1",
                 "adminnetworkpolicies": "/apis/policy.networking.k8s.io/v1alpha1",
                 "baselineadminnetworkpolicies": "/apis/policy.networking.k8s.io/v1alpha1"}


def _path(resource: str, namespace: str | None = None, name: str | None = None) -> str:
    """The REST path of a resource (collection, or one object), namespaced when `namespace` is given."""
    p = _GROUP_PREFIX.get(resource, "/api/v1")
    if namespace:
        p += f"/namespaces/{quote(namespace, safe='')}"
    p += f"/{resource}"
    return p + (f"/{quote(name, safe='')}" if name else "")


def _ws_context(opts: JSON) -> Any:
    """One TLS context for every exec websocket (websocket-client would build one, and load the CA file, per
    connection: most of an exec's client-side cost when a fleet read makes thousands)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if opts.get("cert_reqs", ssl.CERT_REQUIRED) != ssl.CERT_NONE:
        if opts.get("ca_certs"):
            ctx.load_verify_locations(cafile=opts["ca_certs"])
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if opts.get("certfile"):
        ctx.load_cert_chain(opts["certfile"], opts.get("keyfile"))
    return ctx


def _ws_ssl(conf: Any) -> JSON:
    """websocket-client TLS options from the client's Configuration (the same settings the rest layer uses)."""
    import ssl

    if conf.host.startswith("https://") and conf.verify_ssl:
        opts: JSON = {"cert_reqs": ssl.CERT_REQUIRED}
        if conf.ssl_ca_cert:
            opts["ca_certs"] = conf.ssl_ca_cert
        if conf.assert_hostname is not None:
            opts["check_hostname"] = bool(conf.assert_hostname)
    else:
        opts = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    from svcctl.model import put
    return put(opts, certfile=conf.cert_file, keyfile=conf.key_file, server_hostname=conf.tls_server_name)


def _ws_proxy(conf: Any) -> JSON:
    if not conf.proxy:
        return {}
    u = urlsplit(conf.proxy)
    kind = u.scheme if u.scheme in ("socks4", "socks4a", "socks5", "socks5h") else "http"
    return {"http_proxy_host": u.hostname, "http_proxy_port": u.port, "proxy_type": kind}


def _said(argv: list[str]) -> str:
    """An argv in words for messages: a batched round (sources/batch.py) as its command count, not its script."""
    if len(argv) == 3 and argv[:2] == ["sh", "-c"]:
        n = sum(1 for ln in argv[2].splitlines() if ln.startswith("f "))
        return f"sh -c (a batch of {n} read-only commands)"
    return " ".join(argv)


def _exit_code(status: bytes, what: str) -> int:
    """The command's exit status from channel 3's Status: 0 on Success, else its ExitCode cause."""
    if not status:
        raise ClusterError(f"{what}: the exec stream ended without a status")
    try:
        doc = json.loads(status)
        if doc.get("status") == "Success":
            return 0
        causes = (doc.get("details") or {}).get("causes") or []
        code = next((c.get("message") for c in causes if c.get("reason") == "ExitCode"), None)
        if code is None:  # the runtime's own failure (its reason is at the end: `exec: "sh": executable file …`)
            msg = str(doc.get("message") or doc.get("reason") or "")
            raise ClusterError(f"{what} failed: {msg if len(msg) <= 400 else msg[:150] + ' … ' + msg[-250:]}")
        return int(code)
    except (ValueError, TypeError, AttributeError):
        raise ClusterError(f"{what}: unreadable exec status") from None


def _kinded(obj: JSON, kind: str) -> JSON:
    """List items come without `kind`; `raw` keeps it so collect writes objects kubectl can read back."""
    if "kind" not in obj:
        obj["kind"] = kind
        obj.setdefault("apiVersion", {"EndpointSlice": "discovery.k8s.io/v1", "NetworkPolicy": "networking.k8s.io/v1",
                                      "AdminNetworkPolicy": "policy.networking.k8s.io/v1alpha1",
                                      "BaselineAdminNetworkPolicy": "policy.networking.k8s.io/v1alpha1",
                                      }.get(kind, "v1"))
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


def _is_status(body: bytes | None) -> bool:
    """A Kubernetes API error body: a JSON `kind: Status` object."""
    try:
        doc = json.loads(body or b"")
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("kind") == "Status"


def _looks_html(body: bytes | None) -> bool:
    head = (body or b"")[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<body" in head

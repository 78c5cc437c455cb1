"""Every Service of a namespace (or all) checked from lists read once, not from a dozen requests per Service.

`check -A` asks each Service's questions through the ClusterSource interface (its slices, v1 Endpoints, Pods by
selector, near misses by selector key, the same labels elsewhere, the Nodes its Pods name): bounded for one
Service, but 10,000 Services made ≈180,000 requests, and every answer built fresh objects (gigabytes). Here the
kinds those questions read are listed once, page by page (Services are already listed by the caller; then
EndpointSlices, v1 Endpoints, Pods and Nodes), and each question is answered from them the way the API server
answers it: in the list's (key) order, label selectors through `selectors.labels_match`, `limit` as the first
that many. A kind whose list is refused or fails is not prefetched: its questions go to the source one by one as
before, so a refusal is still reported per Service. Anything else goes straight to the source.

No object keeps its API JSON (`raw`): the checks read the model, and the policy checks read a Pod's JSON
through `pod_json`, which rebuilds the part they read; a `--collect-on-failure` bundle needs the whole objects,
and is not asked of this source.
"""

from __future__ import annotations

import gc
import itertools
from typing import Any

from svcctl.analysis.endpoints import NEAR_MISS_CAP, _no_digits, looks_like_typo
from svcctl.collector import paused as paused  # re-exported: ops.check pauses it around its Service list
from svcctl.errors import SvcctlError
from svcctl.model import (
    JSON,
    Container,
    ContainerStatus,
    Endpoints,
    EndpointSlice,
    Event,
    Node,
    ObjectMeta,
    Pod,
    Service,
    _d,
)
from svcctl.selectors import labels_match, parse_selector
from svcctl.sources.base import ClusterSource, CountsRefusals, HasCoverage, NodeDumps, PagedReads
from svcctl.sources.coverage import Coverage
from svcctl.sources.pod_pages import PodBuilder

PREFETCH_MIN = 20  # fewer Services than this: the per-Service reads cost less than the lists


def _refusals(src: object) -> int:
    return src.refusals if isinstance(src, CountsRefusals) else 0


class _Dropped(dict[str, Any]):
    """The `raw` of a Pod listed here: its JSON was dropped once parsed (see pod_json)."""


_DROPPED: JSON = _Dropped()


def pod_json(p: Pod) -> JSON:
    """A Pod's JSON as the policy checks read it (`pod_endpoint`, the DNS gate's ports): the Pod's own, or, for a
    Pod listed here (whose JSON was dropped: 100,000 Pods' JSON was 180 MB), the same fields rebuilt from the
    model: name, namespace, labels, node, hostNetwork, container ports, IP, phase."""
    if p.raw is not _DROPPED:
        return p.raw

    def ports(cs: list[Container]) -> list[JSON]:
        return [{"name": c.name, "ports": [{"name": cp.name, "containerPort": cp.container_port,
                                            "protocol": cp.protocol} for cp in c.ports]} for c in cs]

    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.meta.name, "namespace": p.meta.namespace, "labels": p.meta.labels},
            "spec": {"nodeName": p.node_name, "hostNetwork": p.host_network, "containers": ports(p.containers),
                     "initContainers": ports(p.init_containers)},
            "status": {"podIP": p.pod_ip, "podIPs": [{"ip": ip} for ip in p.pod_ips], "phase": p.phase}}


# Empty values of the Services, v1 Endpoints and Events listed here, one object for all: nothing changes a listed
# object (10,000 Services' empty lists and 30,000 objects' empty label and annotation maps: ≈ 5 MB)
_NONE: list[Any] = []
_NO_MAP: dict[str, str] = {}
_SERVICE_LISTS = ("cluster_ips", "ip_families", "external_ips", "load_balancer_ips", "load_balancer_source_ranges",
                  "load_balancer_ingress")


def _lean(m: ObjectMeta) -> None:
    if not m.labels:
        m.labels = _NO_MAP
    if not m.annotations:
        m.annotations = _NO_MAP
    if not m.owner_kinds:
        m.owner_kinds = _NONE


def _event(d: JSON) -> Event:
    e = Event.from_dict(d)
    e.raw = {}  # only `--collect-on-failure` reads it, and is not asked of this source
    return e


class _Sharing:
    """Equal values of 100,000 Pods (and of the slices' endpoints) held once: the strings that repeat from Pod to
    Pod (namespace, node, phase, condition types and statuses, container names, protocols), and the label sets,
    annotations, owner kinds, containers and container statuses a Deployment's replicas have in common
    (conditions are not shared: their timestamps differ from Pod to Pod in a real cluster). The model is read-only after parsing (nothing assigns into a label
    set), so sharing changes no answer; ≈ 2 kB less per Pod (of 3.8). Timestamps and per-Pod names are left as read."""

    __slots__ = ("_str", "_labels", "_kinds", "_empty", "_lists")

    def __init__(self) -> None:
        self._lists: dict[tuple[Any, ...], Any] = {}  # equal lists of the model's (containers, statuses, gates)
        self._str: dict[str, str] = {}
        self._labels: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        self._kinds: dict[tuple[str, ...], list[str]] = {}
        self._empty: dict[str, str] = {}

    def s(self, v: str) -> str:
        return self._str.setdefault(v, v)

    def _meta(self, m: ObjectMeta) -> None:
        """What a slice's and a Pod's metadata repeat across the cluster: one copy of each."""
        m.namespace = self.s(m.namespace)
        m.labels = self._labels.setdefault(tuple(m.labels.items()), m.labels)
        if not m.annotations:
            m.annotations = self._empty
        m.owner_kinds = self._kinds.setdefault(tuple(m.owner_kinds), m.owner_kinds)

    def slice(self, sl: EndpointSlice) -> None:
        s = self.s
        self._meta(sl.meta)
        sl.address_type = s(sl.address_type)
        for ep in sl.endpoints:
            ep.node_name, ep.zone, ep.hostname = s(ep.node_name), s(ep.zone), s(ep.hostname)
            ep.target_kind, ep.target_namespace = s(ep.target_kind), s(ep.target_namespace)
            ep.zone_hints = self._lists.setdefault(("zones", *ep.zone_hints), ep.zone_hints)
            ep.node_hints = self._lists.setdefault(("nodes", *ep.node_hints), ep.node_hints)
        for sp in sl.ports:
            sp.name, sp.protocol = s(sp.name), s(sp.protocol)

    def pod(self, p: Pod) -> None:
        s = self.s
        self._meta(p.meta)
        p.node_name, p.phase, p.host_ip = s(p.node_name), s(p.phase), s(p.host_ip)
        for cond in p.conditions:
            cond.type, cond.status, cond.reason = s(cond.type), s(cond.status), s(cond.reason)
        p.containers = self._containers(p.containers)
        p.init_containers = self._containers(p.init_containers)
        p.container_statuses = self._statuses(p.container_statuses)
        p.init_container_statuses = self._statuses(p.init_container_statuses)
        p.readiness_gates = self._lists.setdefault(("gates", *p.readiness_gates), p.readiness_gates)
        if p.pod_ips and p.pod_ips[0] == p.pod_ip:
            p.pod_ips[0] = p.pod_ip

    def _containers(self, cs: list[Container]) -> Any:
        """The replicas of a workload have the same containers (names, ports, probes): one list for all."""
        key = ("containers", *((c.name, c.restart_policy, c.has_readiness_probe,
                                tuple((cp.container_port, cp.protocol, cp.name) for cp in c.ports)) for c in cs))
        got = self._lists.get(key)
        if got is None:
            for c in cs:
                c.name = self.s(c.name)
                for cp in c.ports:
                    cp.protocol, cp.name = self.s(cp.protocol), self.s(cp.name)
            got = self._lists[key] = cs
        return got

    def _statuses(self, sts: list[ContainerStatus]) -> Any:
        """Container statuses hold no timestamp: the healthy replicas of a workload have the same ones."""
        key = ("statuses", *((c.name, c.ready, c.started, c.restart_count, c.state, c.reason, c.message, c.exit_code,
                              c.last_terminated_reason) for c in sts))
        got = self._lists.get(key)
        if got is None:
            for c in sts:
                c.name, c.reason = self.s(c.name), self.s(c.reason)
            got = self._lists[key] = sts
        return got


def _absent(src: object, kind: str) -> bool:
    """Whether the input cannot hold `kind` at all (a snapshot without it), as `ops.endpoints.absent_from` asks."""
    cov = src.coverage if isinstance(src, HasCoverage) else None
    return isinstance(cov, Coverage) and cov.absent_reason(kind) is not None


class _PodPool:
    """Pods in list order, indexed by (namespace, key, value) and (namespace, key); namespace None: all.

    The API lists Pods in key order, namespace by namespace, so the whole cluster's list for a label is the
    namespaces' lists one after the other: kept once, not a second time for "all namespaces" (100,000 Pods: half
    the indexing, ≈ 4 MB). A list that comes back to a namespace it left is indexed for all namespaces too, the
    first time one is asked."""

    def __init__(self) -> None:
        self.by_pair: dict[tuple[str | None, str, str], list[Pod]] = {}
        self.by_key: dict[tuple[str | None, str], list[Pod]] = {}
        self.by_ns: dict[str | None, list[Pod]] = {None: []}
        # the namespaces holding each (key, value) / key, in list order: the cluster-wide lists are theirs joined
        self._pair_ns: dict[tuple[str, str], list[str]] = {}
        self._key_ns: dict[str, list[str]] = {}
        self._last: str | None = None
        self._grouped = True  # namespace by namespace so far
        self._whole = False  # the "all namespaces" entries of by_pair / by_key made (a list not grouped)

    def add(self, p: Pod) -> None:
        ns = p.meta.namespace
        self.by_ns[None].append(p)
        if ns != self._last:
            if ns in self.by_ns:
                self._grouped = False
            self._last = ns
        lst = self.by_ns.get(ns)
        if lst is None:
            lst = self.by_ns[ns] = []
        lst.append(p)
        by_pair, by_key = self.by_pair, self.by_key
        for k, v in p.meta.labels.items():
            pods = by_pair.get((ns, k, v))
            if pods is None:
                pods = by_pair[(ns, k, v)] = []
                self._pair_ns.setdefault((k, v), []).append(ns)
            pods.append(p)
            pods = by_key.get((ns, k))
            if pods is None:
                pods = by_key[(ns, k)] = []
                self._key_ns.setdefault(k, []).append(ns)
            pods.append(p)

    def _all_namespaces(self) -> None:
        """by_pair / by_key for namespace None, in list order (only for a list not in namespace order)."""
        self._whole = True
        for p in self.by_ns[None]:
            for k, v in p.meta.labels.items():
                self.by_pair.setdefault((None, k, v), []).append(p)
                self.by_key.setdefault((None, k), []).append(p)

    def _candidates(self, namespace: str | None, key: str, op: str, value: str | None) -> tuple[int, Any] | None:
        """(how many, the Pods in list order) one term allows; None for a term no index answers."""
        if op not in ("=", "exists"):
            return None
        if namespace is not None or self._whole:
            got = (self.by_pair.get((namespace, key, value or ""), []) if op == "=" else
                   self.by_key.get((namespace, key), []))
            return len(got), got
        if op == "=":
            lists = [self.by_pair[(ns, key, value or "")] for ns in self._pair_ns.get((key, value or ""), ())]
        else:
            lists = [self.by_key[(ns, key)] for ns in self._key_ns.get(key, ())]
        return sum(map(len, lists)), itertools.chain.from_iterable(lists)

    def select(self, namespace: str | None, selector: str | None, limit: int | None) -> list[Pod]:
        terms = parse_selector(selector)
        if namespace is None and not self._grouped and not self._whole:
            self._all_namespaces()
        best: tuple[int, Any] | None = None
        for key, op, value in terms:  # the fewest candidates any one term allows
            cand = self._candidates(namespace, key, op, value)
            if cand is not None and (best is None or cand[0] < best[0]):
                best = cand
        pool = best[1] if best is not None else self.by_ns.get(namespace, [])
        if best is not None and len(terms) == 1:
            # one `k=v` or `k` term answered by its index: every candidate matches it (most Services' selectors)
            return list(itertools.islice(pool, max(limit, 1))) if limit is not None else list(pool)  # as below
        out: list[Pod] = []
        for p in pool:
            if labels_match(p.meta.labels, terms):
                out.append(p)
                if limit is not None and len(out) >= limit:
                    break
        return out


class _NearPage:
    """The near-miss search's one page for (namespace, key): the first NEAR_MISS_CAP Pods carrying `key`, indexed
    by label so a selector's candidates are found without comparing the selector with each of those Pods."""

    __slots__ = ("pods", "keys", "by_pair", "values")

    def __init__(self, pods: list[Pod]) -> None:
        self.pods = pods
        self.keys = {p.key for p in pods}
        self.by_pair: dict[tuple[str, str], list[Pod]] = {}
        # label key -> its values here, grouped by looks_like_typo's first two tests (lowercase without digits)
        # (each group by lowercase value: its values as written)
        self.values: dict[str, dict[str, dict[str, list[str]]]] = {}
        for p in pods:
            for k, v in p.meta.labels.items():
                lst = self.by_pair.setdefault((k, v), [])
                if not lst:
                    low = v.lower()
                    self.values.setdefault(k, {}).setdefault(_no_digits(low), {}).setdefault(low, []).append(v)
                lst.append(p)

    def candidates(self, selector: dict[str, str], out: dict[str, Pod]) -> None:
        """Into `out`: the Pods sharing a selector value, or carrying a value that looks like a typo of one. Any other
        Pod of the page matches no key and is no typo, which the near-miss analysis skips (`_near_misses`)."""
        for key, want in selector.items():
            for p in self.by_pair.get((key, want), ()):
                out.setdefault(p.key, p)
            low = want.lower()
            same = _no_digits(low)
            for group, by_low in self.values.get(key, {}).items():
                # within its own group looks_like_typo is "the same but for case" (web-1/web-2 are not typos)
                values = by_low.get(low, []) if group == same else [v for vs in by_low.values() for v in vs]
                for have in values:
                    if have != want and (group == same or looks_like_typo(want, have)):
                        for p in self.by_pair[(key, have)]:
                            out.setdefault(p.key, p)


class Prefetched:
    """A ClusterSource answering the per-Service reads of many Services from lists read once (see the module)."""

    def __init__(self, src: ClusterSource, namespace: str | None, services: list[Service], complete: bool) -> None:
        self._src = src
        self.name = src.name
        self.skipped = src.skipped
        self._services: dict[str | None, list[Service]] | None = None  # every Service by namespace, list order
        if complete:
            self._services = {None: services}
            for s in services:
                self._services.setdefault(s.meta.namespace, []).append(s)
        self._scope = namespace
        for s in services:
            s.raw = {}  # as for the slices below: only a bundle reads it again
            _lean(s.meta)
            for f in _SERVICE_LISTS:
                if not getattr(s, f):
                    setattr(s, f, _NONE)
        self._by_key = {(s.meta.namespace, s.meta.name): s for s in services}
        self._strings: dict[str, str] = {}  # the slices' and the Pods' strings, held once while the lists are read
        self._slices = self._grouped(lambda: self._iter_slices(namespace))
        self._done: set[tuple[str, str]] = set()  # Services whose slices were let go (`done`)
        self._endpoints: dict[tuple[str, str], Endpoints] | None = None
        list_all = getattr(src, "list_all_endpoints", None)
        read_all = getattr(src, "read_all", None)  # page by page, each object read as it comes (live)
        # their JSON is read again only to stand in for EndpointSlices the input does not hold
        keep = self._slices is None or _absent(src, "EndpointSlice")
        if callable(list_all):
            eps = self._try(lambda: read_all("endpoints", "Endpoints", namespace, Endpoints.from_dict if keep else
                                             self._endpoints_object) if callable(read_all) else list_all(namespace))
            if eps is not None:
                if not keep:
                    eps = [self._compact_endpoints(e) for e in eps]
                for e in eps:
                    _lean(e.meta)
                self._endpoints = {(e.meta.namespace, e.meta.name): e for e in eps}
        self._pods: _PodPool | None = None
        self._near: dict[tuple[str, str], _NearPage] = {}
        self._ns_read = False
        self._policies: dict[str, list[JSON]] | None = None
        self._policies_read = False
        self._ns_objects: dict[str, JSON] | None = None
        pods = self._try(lambda: self._iter_pods(namespace))
        self._strings = {}
        if pods is not None:
            self._pods = pods
        self._events: dict[tuple[str, str, str], list[Event]] | None = None
        list_events = getattr(src, "list_all_events", None)
        if callable(list_events):
            events = self._try(lambda: read_all("events", "Event", namespace, _event)
                               if callable(read_all) else list_events(namespace))
            if events is not None:
                self._events = {}
                for e in events:
                    e.raw = {}  # only `--collect-on-failure` reads it, and is not asked of this source
                    _lean(e.meta)
                    self._events.setdefault((e.meta.namespace, e.involved_kind, e.involved_name), []).append(e)
        nodes = self._try(src.list_nodes)
        self._nodes: dict[str, Node] | None = {n.meta.name: n for n in nodes} if nodes is not None else None
        self._node_list = nodes

    # ------------------------------------------------------------------ the lists

    _NO_ADDRESSES: list[str] = []

    def _compact_endpoints(self, e: Endpoints) -> Endpoints:
        """A v1 Endpoints as the checks read it while the slices are listed: no JSON (see the module); a selector
        Service's addresses are read by no check then (only the over-capacity annotation is; the addresses stand
        in for a selectorless Service's hand-made endpoints): 10,000 Services' were 10 MB."""
        e.raw = {}
        svc = self._by_key.get((e.meta.namespace, e.meta.name))
        if svc is not None and svc.selector is not None:
            e.ready_addresses = e.not_ready_addresses = self._NO_ADDRESSES
        return e

    def _endpoints_object(self, d: JSON) -> Endpoints:
        """`_compact_endpoints(Endpoints.from_dict(d))` without reading the addresses it would drop."""
        meta = ObjectMeta.from_dict(_d(d.get("metadata")))
        svc = self._by_key.get((meta.namespace, meta.name))
        if svc is not None and svc.selector is not None:
            return Endpoints(meta, self._NO_ADDRESSES, self._NO_ADDRESSES, {})
        return self._compact_endpoints(Endpoints.from_dict(d))

    def _try(self, read: Any) -> Any:
        """One list; None when it was refused or failed (then its questions go to the source one by one)."""
        before, refusals = len(self._src.skipped), _refusals(self._src)
        try:
            out = read()
        except SvcctlError:
            return None
        if len(self._src.skipped) != before or _refusals(self._src) != refusals:
            return None  # refused: each Service's own read is refused again, and says so for that Service
        return out

    def _grouped(self, read: Any) -> dict[tuple[str, str], list[EndpointSlice]] | None:
        slices = self._try(read)
        if slices is None:
            return None
        out: dict[tuple[str, str], list[EndpointSlice]] = {}
        for sl in slices:
            name = sl.service_name
            if name:
                out.setdefault((sl.meta.namespace, name), []).append(sl)
        return out

    def _iter_slices(self, namespace: str | None) -> list[EndpointSlice]:
        """Every slice, its JSON dropped (read again only for a `--collect-on-failure` bundle, which is not asked of
        this source) and its equal values held once."""
        src = self._src
        out: list[EndpointSlice] = []
        share = _Sharing()
        pages = getattr(src, "iter_endpoint_slice_pages", None)
        if callable(pages):  # built from the page's JSON (pod_pages)
            build = PodBuilder({}, self._strings)
            for items in pages(namespace):  # the next page asked for meanwhile (sources/page_reader.py)
                for i in items:
                    sl = build.slice(i)
                    if sl is None:
                        sl = EndpointSlice.from_dict(i)
                        sl.raw = {}
                        share.slice(sl)
                    out.append(sl)
                del items
            return out
        if not isinstance(src, PagedReads):
            return out
        for sl in src.iter_endpoint_slices(namespace):
            sl.raw = {}
            share.slice(sl)
            out.append(sl)
        return out

    def _iter_pods(self, namespace: str | None) -> _PodPool:
        pool = _PodPool()
        src = self._src
        assert isinstance(src, PagedReads)
        share = _Sharing()
        pages = getattr(src, "iter_pod_pages", None)
        if callable(pages):  # built from the page's JSON, the replicas' equal parts once (pod_pages)
            build = PodBuilder(_DROPPED, self._strings)
            for items in pages(namespace):  # the next page's bytes asked for meanwhile (sources/page_reader.py)
                for i in items:
                    p = build.build(i)
                    if p is None:
                        p = Pod.from_dict(i)
                        p.raw = _DROPPED
                        share.pod(p)
                    pool.add(p)
                del items  # the page's JSON gone before the next one is taken (one less alive at a time)
            return pool
        for p in src.iter_pods(namespace):
            p.raw = _DROPPED
            share.pod(p)
            pool.add(p)
        return pool

    # ------------------------------------------------------------------ ClusterSource, from the lists

    def get_service(self, namespace: str, name: str) -> Service:
        s = self._by_key.get((namespace, name))
        return s if s is not None else self._src.get_service(namespace, name)

    def list_services(self, namespace: str | None, label_selector: str | None = None,
                      limit: int | None = None) -> list[Service]:
        if self._services is None or label_selector or (self._scope is not None and namespace != self._scope):
            return self._src.list_services(namespace, label_selector, limit)
        out = self._services.get(namespace, [])
        return out[:limit] if limit is not None else list(out)

    def list_endpoint_slices(self, namespace: str, service_name: str) -> list[EndpointSlice]:
        if self._slices is None or (namespace, service_name) in self._done:
            return self._src.list_endpoint_slices(namespace, service_name)
        return list(self._slices.get((namespace, service_name), []))

    def done(self, namespace: str, name: str) -> None:
        """The Service is checked: its slices are read by no other Service's check, so they are let go (10,000
        Services' were ≈ 40 MB, held to the end while the reports kept grew). Asked again, they are read from
        the source."""
        if self._slices is not None and self._slices.pop((namespace, name), None) is not None:
            self._done.add((namespace, name))

    def get_endpoints(self, namespace: str, name: str) -> Endpoints | None:
        if self._endpoints is None:
            return self._src.get_endpoints(namespace, name)
        return self._endpoints.get((namespace, name))

    def list_pods(self, namespace: str | None, label_selector: str | None = None,
                  limit: int | None = None) -> list[Pod]:
        if self._pods is None or (self._scope is not None and namespace != self._scope):
            return self._src.list_pods(namespace, label_selector, limit)
        return self._pods.select(namespace, label_selector, limit)

    def near_candidates(self, namespace: str, selector: dict[str, str], selected: set[str],
                        targets: set[str]) -> tuple[list[Pod], list[str], bool] | None:
        """The near-miss search of `gather` from the list, without a comparison per Pod: (the Pods of the search
        that the analysis can report or name, sorted by key; its cap notes; whether the search found any Pod not
        selected). The Pods left out are the ones `_near_misses` would skip (no selector value shared, no typo) and
        that no slice endpoint names (`targets`: the stale-endpoint check asks whether such a Pod was found).
        None: the Pods were not listed here (then the search goes to the source)."""
        if self._pods is None or (self._scope is not None and namespace != self._scope):
            return None
        found: dict[str, Pod] = {}
        capped: list[str] = []
        any_other = False
        for key in sorted(selector):
            page = self._near.get((namespace, key))
            if page is None:
                page = self._near[(namespace, key)] = _NearPage(self._pods.select(namespace, key, NEAR_MISS_CAP))
            if len(page.pods) >= NEAR_MISS_CAP:
                capped.append(f"near-miss search read only the first {NEAR_MISS_CAP} Pods labelled {key!r}")
            if not any_other:
                any_other = any(p.key not in selected for p in page.pods)
            page.candidates(selector, found)
            for t in targets:
                if t in page.keys and t not in found:
                    found[t] = next(p for p in page.pods if p.key == t)
        near = sorted((p for k, p in found.items() if k not in selected), key=lambda x: x.key)
        return near, capped, any_other

    def get_nodes(self, names: list[str]) -> dict[str, Node | None]:
        if self._nodes is None:
            return self._src.get_nodes(names)
        return {n: self._nodes.get(n) for n in dict.fromkeys(x for x in names if x)}

    def list_nodes(self) -> list[Node]:
        return list(self._node_list) if self._node_list is not None else self._src.list_nodes()

    # ------------------------------------------------------------------ the rest: the source's own

    def default_namespace(self) -> str:
        return self._src.default_namespace()

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        return self._src.get_pod(namespace, name)

    def list_events(self, namespace: str, kind: str, names: list[str]) -> list[Event]:
        if self._events is None or (self._scope is not None and namespace != self._scope):
            return self._src.list_events(namespace, kind, names)
        out: list[Event] = []
        for n in dict.fromkeys(x for x in names if x):
            out += self._events.get((namespace, kind, n), [])
        return out

    def node_dumps(self, node: str) -> NodeDumps | None:
        return self._src.node_dumps(node)

    def _namespace_objects(self) -> dict[str, JSON] | None:
        """Every Namespace from the one list `namespaces()` reads anyway, so the policy check's Namespace GETs (one
        per namespace with Services) are answered from it; None when that list is refused or not offered (then
        both go to the source as before)."""
        if self._ns_read:
            return self._ns_objects
        self._ns_read = True
        list_ns = getattr(self._src, "list_namespace_objects", None)
        objs = self._try(list_ns) if callable(list_ns) else None
        if objs is not None:
            self._ns_objects = {str((o.get("metadata") or {}).get("name") or ""): o for o in objs}
        return self._ns_objects

    def namespaces(self) -> list[str]:
        objs = self._namespace_objects()
        return sorted(objs) if objs is not None else self._src.namespaces()

    def list_network_policies(self, namespace: str) -> list[JSON] | None:
        if not self._policies_read:
            self._policies, self._policies_read = self._all_policies(), True
        if self._policies is None or (self._scope is not None and namespace != self._scope):
            return self._src.list_network_policies(namespace)
        return list(self._policies.get(namespace, []))

    def _all_policies(self) -> dict[str, list[JSON]] | None:
        """Every NetworkPolicy in one list (scope: -n's namespace, or all) instead of one list per namespace with
        Services, grouped by namespace in list order. Refused or not served: None, and the refusal leaves no trace
        (it is taken back from the source's record), so each namespace's own read says what it says, as before."""
        list_all = getattr(self._src, "list_all_network_policies", None)
        if not callable(list_all):
            return None
        src = self._src
        before = (len(src.skipped), getattr(src, "refusals", None), getattr(src, "last_refusal", None))
        try:
            items = list_all(self._scope)
        except SvcctlError:
            items = None
        if items is None or len(src.skipped) != before[0] or getattr(src, "refusals", None) != before[1]:
            del src.skipped[before[0]:]
            if before[1] is not None:
                src.refusals, src.last_refusal = before[1], before[2]  # type: ignore[attr-defined]
            return None
        out: dict[str, list[JSON]] = {}
        for o in items:
            out.setdefault(str((o.get("metadata") or {}).get("namespace") or ""), []).append(o)
        return out

    def get_namespace(self, name: str) -> JSON | None:
        objs = self._namespace_objects()
        return objs.get(name) if objs is not None else self._src.get_namespace(name)

    def list_admin_network_policies(self) -> tuple[list[JSON], list[JSON]] | None:
        return self._src.list_admin_network_policies()

    # the source's refusal count, asked twice per read of every Service (`ops.endpoints._read`): as properties,
    # not through __getattr__'s failed lookup first; a source that counts none has neither (AttributeError)
    @property
    def refusals(self) -> int:
        return int(self._src.refusals)  # type: ignore[attr-defined]

    @property
    def last_refusal(self) -> Any:
        return self._src.last_refusal  # type: ignore[attr-defined]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._src, attr)  # capabilities (refusals, kube-proxy exec …): the source's own


def prefetch(src: ClusterSource, namespace: str | None, services: list[Service], complete: bool) -> ClusterSource:
    """`src`, or a Prefetched view of it when many Services are checked from a source that pages its lists."""
    if len(services) < PREFETCH_MIN or not isinstance(src, PagedReads):
        return src
    # Millions of objects, all alive to the end of the check: the cyclic collector would rescan them again and
    # again while they are built (10,000 Services: 22 s of CPU instead of 9), and then once per few thousand
    # allocations of every Service's check. So it is off while they are read, and they are frozen (left out of
    # its scans; reference counting still frees them) until `release`.
    global _frozen
    with paused():
        try:
            return Prefetched(src, namespace, services, complete)
        finally:
            gc.freeze()
            _frozen = True


_frozen = False


def settle() -> None:
    """Within a check from a Prefetched source, now and then: what the checks so far made and keep (their
    compact reports) frozen too. The young collections still run (short-lived cycles are collected); only the
    full ones no longer rescan the kept reports again and again (10,000 Services: 5 of them, ≈ 0.6 s)."""
    if _frozen:
        gc.collect(1)  # the young cycles first: frozen, they would never be collected
        gc.freeze()


def release() -> None:
    """After a check from a Prefetched source (also when it failed): its objects back in the collector's care."""
    global _frozen
    if _frozen:
        gc.unfreeze()
        _frozen = False

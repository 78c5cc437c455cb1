"""`svcctl endpoints`: reading one Service's objects (or every Service's counts) through a cluster source, then
the pure analysis of `svcctl.analysis.endpoints`.

The reads are bounded: a constant number of requests per Service (Service, its slices, v1 Endpoints, Pods by
selector, one existence-selector list per selector key for near misses, Pods elsewhere by selector, the Nodes
those Pods name, the Events of the not-ready Pods). A refused read or a kind the input does not hold becomes a
skipped check, never "there are none".
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from svcctl.errors import ForbiddenError
from svcctl.selectors import selector_string
from svcctl.sources.base import ClusterSource, CountsRefusals, HasCoverage, PagedReads
from svcctl.sources.coverage import RESOURCES, Coverage

if TYPE_CHECKING:  # the analysis and the model are imported where they are used, after the first request: an
    # unreachable server fails without them (issue 19: <= 0.3 s; they were ≈ 17 ms of its ≈ 0.3 s)
    from svcctl.analysis.endpoints import EndpointsReport, Gathered, ServiceSummary
    from svcctl.model import Pod

T = TypeVar("T")


_CAPS: weakref.WeakKeyDictionary[object, tuple[bool, bool]] = weakref.WeakKeyDictionary()


def _caps(source: object) -> tuple[bool, bool]:
    """(counts refusals, has coverage), once per source: a runtime Protocol check costs ≈20 µs, and `check -A`
    makes a dozen reads per Service."""
    try:
        return _CAPS[source]
    except (KeyError, TypeError):
        pass
    caps = (isinstance(source, CountsRefusals), isinstance(source, HasCoverage))
    with contextlib.suppress(TypeError):  # not weakly referable or not hashable: asked each time
        _CAPS[source] = caps
    return caps


def _refusals(source: ClusterSource) -> int:
    return int(source.refusals) if _caps(source)[0] else 0  # type: ignore[attr-defined]


def _read(source: ClusterSource, g: Gathered, check: str, resource: str, fn: Callable[[], T], default: T) -> T:
    """One read; a refusal (raised, or recorded by the source in `skipped`) becomes a skipped check, and so
    does a kind the input does not hold (a snapshot without EndpointSlices): not read as "there are none"."""
    counts, covered = _caps(source)  # asked once: check -A makes seven reads per Service
    why = absent_from(source, resource) if covered else None
    if why is not None:
        g.absent.append((check, resource.split(" ")[0], why))
        return default
    before = len(source.skipped)
    refusals = int(source.refusals) if counts else 0  # type: ignore[attr-defined]
    try:
        out = fn()
    except ForbiddenError as e:
        g.skipped.append((check, e.resource or resource, e.message))
        return default
    skipped = source.skipped
    if len(skipped) != before:
        for s in skipped[before:]:
            g.skipped.append((check, s.resource, s.reason))
    if counts and int(source.refusals) != refusals:  # type: ignore[attr-defined]
        last = source.last_refusal  # type: ignore[attr-defined]
        if last is not None:
            g.skipped.append((check, last.resource, last.reason))  # refused again (recorded once in `skipped`)
    return out


def absent_from(source: ClusterSource, resource: str) -> str | None:
    """Why the input cannot show `resource` at all (a kind a snapshot does not hold), else None."""
    cov = source.coverage if _caps(source)[1] else None  # type: ignore[attr-defined]
    kind = RESOURCES.get(resource.split(" ")[0])
    return cov.absent_reason(kind) if isinstance(cov, Coverage) and kind is not None else None


def gather(source: ClusterSource, namespace: str, name: str, *, why_not: bool = True) -> Gathered:
    service = source.get_service(namespace, name)  # NotFoundError (exit 2) with a suggestion
    from svcctl.analysis.endpoints import (
        CHK_ELSEWHERE,
        CHK_EVENTS,
        CHK_INTENT,
        CHK_NEAR,
        CHK_NODES,
        CHK_PODS,
        CHK_SLICES,
        CHK_V1,
        NEAR_MISS_CAP,
        Gathered,
        topology_auto,
    )

    g = Gathered(service, why_not=why_not)
    ns = service.meta.namespace or namespace
    if service.type == "ExternalName":
        return g
    g.slices = _read(source, g, CHK_SLICES, "endpointslices",
                     lambda: source.list_endpoint_slices(ns, service.meta.name), [])
    g.endpoints = _read(source, g, CHK_V1, "endpoints",
                        lambda: source.get_endpoints(ns, service.meta.name), None)
    if any(c == CHK_SLICES for c, _, _ in g.absent):
        v1_absent = any(c == CHK_V1 for c, _, _ in g.absent)
        if not v1_absent:
            # the endpoints controller writes an Endpoints object for every selector Service (empty or not)
            from svcctl.analysis.partial import V1, slices_from_endpoints

            g.slices = slices_from_endpoints(g.endpoints, service) if g.endpoints is not None else []
            g.basis = V1
        else:
            g.basis = ""
    sel = service.selector
    if sel is None:
        return g
    g.pods = _read(source, g, CHK_PODS, "pods",
                   lambda: source.list_pods(ns, selector_string(sel)), [])
    selected = {p.key for p in g.pods}
    if why_not:
        no_pods: list[Pod] = []
        indexed = _near_from_index(source, g, ns, sel, selected)
        if indexed is not None:
            g.near, capped, any_near = indexed
            g.capped += capped
        else:
            near: dict[str, Pod] = {}
            for key in sorted(sel):
                # existence selector `key`: one request per selector key, whatever the namespace's size
                found = _read(source, g, CHK_NEAR, "pods", partial(source.list_pods, ns, key, NEAR_MISS_CAP),
                              no_pods)
                if len(found) >= NEAR_MISS_CAP:
                    g.capped.append(f"near-miss search read only the first {NEAR_MISS_CAP} Pods labelled {key!r}")
                for p in found:
                    if p.key not in selected:
                        near.setdefault(p.key, p)
            g.near = sorted(near.values(), key=lambda x: x.key)
            any_near = bool(g.near)
        others = _read(source, g, CHK_ELSEWHERE, "pods (all namespaces)",
                       partial(source.list_pods, None, selector_string(sel), NEAR_MISS_CAP), no_pods)
        if len(others) >= NEAR_MISS_CAP:
            g.capped.append(f"other-namespace search read only the first {NEAR_MISS_CAP} matching Pods")
        g.elsewhere = sorted((p for p in others if p.meta.namespace != ns), key=lambda x: x.key)
        if any_near:
            g.services = _read(source, g, CHK_INTENT, "services",
                               lambda: source.list_services(ns, None, NEAR_MISS_CAP), [])
            if len(g.services) >= NEAR_MISS_CAP:
                g.capped.append(f"near-miss intent read only the first {NEAR_MISS_CAP} Services of {ns}")
    node_names = sorted({p.node_name for p in g.pods if p.node_name})
    if node_names:
        g.nodes = _read(source, g, CHK_NODES, "nodes",
                        lambda: source.get_nodes(node_names), {})
    if topology_auto(service):
        g.all_nodes = _read(source, g, CHK_NODES, "nodes", source.list_nodes, None)
    if True:  # Events of not-ready Pods: cheap (one field-selected list per such Pod), and needed for a stable code
        unready = sorted(p.meta.name for p in g.pods if not p.ready and p.phase not in ("Succeeded", "Failed"))
        if unready:
            g.events = _read(source, g, CHK_EVENTS, "events",
                             lambda: source.list_events(ns, "Pod", unready), [])
    return g


def _near_from_index(source: ClusterSource, g: Gathered, ns: str, sel: dict[str, str],
                     selected: set[str]) -> tuple[list[Pod], list[str], bool] | None:
    """The near-miss search answered by a source that indexed the Pods (`check -A`'s lists: sources/prefetch.py),
    or None. Only the Pods the analysis can use come back (see Prefetched.near_candidates)."""
    fast = getattr(source, "near_candidates", None)
    if not callable(fast) or absent_from(source, "pods") is not None:
        return None
    targets = {f"{ep.target_namespace or sl.meta.namespace}/{ep.target_name}" for sl in g.slices for ep in sl.endpoints
               if ep.target_kind == "Pod" and ep.target_name}
    out: tuple[list[Pod], list[str], bool] | None = fast(ns, sel, selected, targets - selected)
    return out


def analyze_service(source: ClusterSource, namespace: str, name: str, *, why_not: bool = True) -> EndpointsReport:
    """The public entry point: read one Service's objects through `source` and explain its endpoints.

    `why_not=False` skips the near-miss and other-namespace reads (SelectorMismatch, OtherNamespace); every
    other code is the same either way, so `trace` and `check` agree with `endpoints`."""
    g = gather(source, namespace, name, why_not=why_not)
    from svcctl.analysis.endpoints import analyze

    return analyze(g)


def summarize_services(source: ClusterSource, namespace: str | None) -> list[ServiceSummary]:
    """Ready / not-ready / expected per Service, from a fixed number of paged lists whatever the cluster's size.

    Services, then every EndpointSlice and every Pod of the namespace (or all), each read once — page by page when
    the source can (`iter_endpoint_slices` / `iter_pods`, optional): only a few numbers per Service and each Pod's
    labels are kept, and selectors are matched through a label index instead of against every Pod."""
    services = source.list_services(namespace)
    from svcctl.analysis.endpoints import ReadyCounter, ServiceSummary, count_rows, service_ports, slice_rows

    wanted = {(s.meta.namespace, s.meta.name) for s in services if s.type != "ExternalName"}
    states: dict[tuple[str, str], ReadyCounter] | None = None
    paged = source if isinstance(source, PagedReads) else None
    refusals = _refusals(source)
    no_slices = absent_from(source, "endpointslices")
    v1_stand_in = no_slices is not None and absent_from(source, "endpoints") is None
    if no_slices is not None:
        states = {}
        if v1_stand_in:  # v1 Endpoints stand in (see analysis/partial.py for how they differ)
            from svcctl.analysis.partial import slices_from_endpoints

            for s in services:
                ep = source.get_endpoints(s.meta.namespace, s.meta.name) if s.type != "ExternalName" else None
                if ep is not None:
                    states.setdefault((s.meta.namespace, s.meta.name), ReadyCounter()).add(
                                slice_rows(slices_from_endpoints(ep, s)))
    elif paged is not None:
        states = {}
        for sl in paged.iter_endpoint_slices(namespace):
            key = (sl.meta.namespace, sl.service_name)
            if key in wanted:
                states.setdefault(key, ReadyCounter()).add(slice_rows([sl]))
    index: _PodIndex | None = _PodIndex()
    try:
        for p in (paged.iter_pods(namespace) if paged is not None else source.list_pods(namespace)):
            index.add(p)  # type: ignore[union-attr]
    except ForbiddenError:
        index = None
    if absent_from(source, "pods") is not None:
        index = None
    # slices refused (RBAC) or absent with no v1 Endpoints to stand in: the counts are unknown, not zero
    unknown = (no_slices is not None and not v1_stand_in) or _refusals(source) != refusals
    out: list[ServiceSummary] = []
    for s in sorted(services, key=lambda x: (x.meta.namespace, x.meta.name)):
        ready: int | None = 0
        not_ready: int | None = 0
        expected: int | None = 0
        if s.type != "ExternalName" and unknown:
            ready = not_ready = None
            expected = index.count(s.meta.namespace, s.selector) if s.selector and index is not None else None
        elif s.type != "ExternalName":
            if states is not None:
                ready, not_ready = states.get((s.meta.namespace, s.meta.name), ReadyCounter()).counts(
                    service_ports(s))
            else:
                ready, not_ready = count_rows(slice_rows(source.list_endpoint_slices(s.meta.namespace, s.meta.name)),
                                              service_ports(s))
            if s.selector is not None and index is None:
                expected = None
            elif s.selector is not None and index is not None:
                expected = index.count(s.meta.namespace, s.selector)
            else:
                expected = (ready or 0) + (not_ready or 0)
        out.append(ServiceSummary(s.meta.namespace, s.meta.name, s.type, s.selector, ready, not_ready, expected))
    return out


class _PodIndex:
    """Labels of the Pods that can be endpoints (not Succeeded/Failed), indexed by (namespace, key, value)."""

    def __init__(self) -> None:
        self.labels: list[dict[str, str]] = []
        self.by_label: dict[tuple[str, str, str], list[int]] = {}

    def add(self, pod: Pod) -> None:
        if pod.phase in ("Succeeded", "Failed"):
            return
        i = len(self.labels)
        self.labels.append(pod.meta.labels)
        ns = pod.meta.namespace
        for k, v in pod.meta.labels.items():
            self.by_label.setdefault((ns, k, v), []).append(i)

    def count(self, namespace: str, selector: dict[str, str]) -> int:
        """Pods of `namespace` whose labels hold every pair of `selector` (a Service's equality selector)."""
        if not selector:
            return 0
        lists = [self.by_label.get((namespace, k, v), []) for k, v in selector.items()]
        fewest = min(lists, key=len)
        return sum(1 for i in fewest if all(self.labels[i].get(k) == v for k, v in selector.items()))


__all__ = ["absent_from", "analyze_service", "gather", "summarize_services"]

"""Pods of a list page built straight from their decoded JSON, with the values replicas share held once.

`check -A` builds every Pod of the cluster (100,000 at the benchmark's size): `Pod.from_dict` walks each field
through the model's generic readers and builds a fresh container and status object per Pod, which the prefetch
then replaced by the workload's shared ones (≈ 40 µs per Pod). Here the fields the model keeps are read from the
dict directly, and a Pod's containers, container statuses, label set and owner kinds are looked up by the raw
values they are built from, so the replicas' objects are built once (their conditions too: see _CONDITION_SETS).
A Pod's uid, resourceVersion, creationTimestamp, annotations and its conditions' transition times are not kept (no
check of a Pod reads them: a real cluster's Pods carry kilobytes of annotations, and each Pod's own times). Otherwise the result equals `Pod.from_dict` followed by the prefetch's sharing
(`tests/sources/test_pod_pages.py` compares them field by field); anything not shaped
like the API's JSON (a wrong type anywhere) goes through `Pod.from_dict` itself, so malformed input fails or
reads exactly as before.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from svcctl.model import (
    JSON,
    Condition,
    Container,
    ContainerStatus,
    EndpointSlice,
    ObjectMeta,
    Pod,
    SliceEndpoint,
    SlicePort,
    _d,
    _l,
    _opt_int,
    _s,
    _time,
)

_STATES = ("waiting", "running", "terminated")
# Pods whose conditions are equal but for their transition times (not kept) share one list of them: a workload's
# ready replicas, whenever each became ready (each Pod's own times made 100,000 Pods 80 MB more). Where their
# reasons or messages differ too nothing is shared, so the lookup is bounded: past this many distinct sets it starts
# over (≈ 1.5 MB at most).
_CONDITION_SETS = 4096


class PodBuilder:
    """Builds the Pods of one read (see the module); `build` says None for a Pod the fast path does not take."""

    __slots__ = ("_str", "_labels", "_kinds", "_containers", "_statuses", "_gates", "_hints", "_times", "_empty",
                 "_conditions", "raw", "_no_containers", "_no_statuses", "_no_gates")

    def __init__(self, raw: JSON, strings: dict[str, str] | None = None) -> None:
        # `strings` shared by the slices' and the Pods' builders: a Pod's name and IP are then the strings its slice
        # endpoint already holds (≈ 130 bytes less per Pod)
        self._str: dict[str, str] = {} if strings is None else strings
        self._labels: dict[tuple[tuple[str, Any], ...], dict[str, str]] = {}
        self._kinds: dict[tuple[Any, ...], list[str]] = {}
        self._containers: dict[tuple[Any, ...], list[Container]] = {}
        self._statuses: dict[tuple[Any, ...], list[ContainerStatus]] = {}
        self._gates: dict[tuple[Any, ...], list[str]] = {}
        self._hints: dict[tuple[str, ...], list[str]] = {}  # a slice endpoint's zone and node hints
        self._times: dict[str, _dt.datetime | None] = {}
        self._conditions: dict[tuple[Any, ...], list[Condition]] = {}  # see _CONDITION_SETS
        self._empty: dict[str, str] = {}
        self.raw = raw  # each Pod's `raw` (the prefetch's marker that the JSON was dropped)
        # what a field the Pod does not have reads as (most Pods: no init containers, no readiness gates), the
        # caches' own empty lists, without a call each
        self._no_containers = self._containers.setdefault((), [])
        self._no_statuses = self._statuses.setdefault((), [])
        self._no_gates = self._gates.setdefault((), [])

    def build(self, d: JSON) -> Pod | None:
        """The Pod, or None when `d` is not shaped as the fast path expects (the caller then uses from_dict)."""
        try:
            return self._build(d)
        except (TypeError, AttributeError, ValueError, KeyError):
            return None

    def s(self, v: str) -> str:
        return self._str.setdefault(v, v)

    def _time(self, v: Any) -> _dt.datetime | None:
        if v is None:
            return None
        try:
            return self._times[v]
        except KeyError:
            t = self._times[v] = _time(v)
            return t

    def _build(self, d: JSON) -> Pod | None:
        md, spec, status = d.get("metadata"), d.get("spec"), d.get("status")
        if md is None or type(md) is not dict:
            return None
        if spec is None:
            spec = {}
        if status is None:
            status = {}
        if type(spec) is not dict or type(status) is not dict:
            return None
        strs = self._str
        name, ns = md.get("name"), md.get("namespace")
        pip = status.get("podIP")
        node, phase, host_ip = spec.get("nodeName"), status.get("phase"), status.get("hostIP")
        hostname, subdomain = spec.get("hostname"), spec.get("subdomain")
        reason, message = status.get("reason"), status.get("message")
        for v in (name, ns, pip, node, phase, host_ip, hostname, subdomain, reason, message):
            if v is not None and type(v) is not str:
                return None
        labels = self._label_set(md.get("labels"))
        if labels is None:
            return None
        ann = md.get("annotations")
        if ann is not None and type(ann) is not dict:
            return None  # from_dict's error; the annotations themselves are not kept (no check reads a Pod's)
        kinds = self._field_list(md.get("ownerReferences"), "kind", self._kinds)
        if kinds is None:
            return None
        deleted = md.get("deletionTimestamp")
        ns = ns or ""
        # uid, resourceVersion, creationTimestamp and annotations: read by no check of a Pod, not kept (see module)
        name = name or ""
        meta = ObjectMeta(strs.setdefault(name, name), strs.setdefault(ns, ns), labels, self._empty, "",
                          None if deleted is None else self._time(deleted), None, kinds, "")
        pip = pip or ""
        pip = strs.setdefault(pip, pip)
        raw_ips = status.get("podIPs")
        if raw_ips:
            pips = []
            for x in raw_ips:
                ip = x.get("ip")
                if ip:
                    if type(ip) is not str:
                        return None
                    pips.append(strs.setdefault(ip, ip))
            if not pips and pip:
                pips = [pip]
            elif len(pips) == 1:
                pips = [pips[0]]  # one slot, not the four append leaves (100,000 Pods: 2.4 MB)
        else:
            if raw_ips is not None and type(raw_ips) is not list:
                return None
            pips = [pip] if pip else []
        raw_conds = status.get("conditions")
        if raw_conds:
            # the transition times are not kept (no check reads them): a workload's ready replicas then share one
            # list whatever moment each became ready
            ckey = tuple([(c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in raw_conds])
            conditions = self._conditions.get(ckey)
            if conditions is None:
                conditions = []
                for ct, cs, cr, cm in ckey:
                    for v in (ct, cs, cr, cm):
                        if v is not None and type(v) is not str:
                            return None
                    ct, cs, cr = ct or "", cs or "", cr or ""
                    conditions.append(Condition(strs.setdefault(ct, ct), strs.setdefault(cs, cs),
                                                strs.setdefault(cr, cr), cm or "", None))
                if len(self._conditions) >= _CONDITION_SETS:
                    self._conditions.clear()
                self._conditions[ckey] = conditions
        elif raw_conds is not None and type(raw_conds) is not list:
            return None
        else:
            conditions = []
        containers = self._container_list(spec.get("containers"))
        raw = spec.get("initContainers")
        init_containers = self._no_containers if raw is None else self._container_list(raw)
        statuses = self._status_list(status.get("containerStatuses"))
        raw = status.get("initContainerStatuses")
        init_statuses = self._no_statuses if raw is None else self._status_list(raw)
        if containers is None or init_containers is None or statuses is None or init_statuses is None:
            return None
        raw = spec.get("readinessGates")
        gates = self._no_gates if raw is None else self._field_list(raw, "conditionType", self._gates)
        if gates is None:
            return None
        node, phase, host_ip = node or "", phase or "", host_ip or ""
        return Pod(meta, strs.setdefault(node, node), strs.setdefault(phase, phase), pip, pips,
                   strs.setdefault(host_ip, host_ip), bool(spec.get("hostNetwork")),
                   hostname or "", subdomain or "", containers, init_containers, conditions, statuses,
                   init_statuses, gates, reason or "", message or "", self.raw)

    @staticmethod
    def _field_list(raw: Any, field: str, cache: dict[tuple[Any, ...], list[str]]) -> list[str] | None:
        """One string field of each item (owner kinds, readiness gates' condition types), one list per distinct
        value; None when not of the API's shape (an item without the field, or not a dict, raises: the fallback)."""
        if not raw:
            if raw is not None and type(raw) is not list:
                return None
            return cache.setdefault((), [])
        key = tuple([o[field] for o in raw])
        got = cache.get(key)
        if got is None:
            if any(type(k) is not str for k in key):
                return None
            got = cache[key] = list(key)
        return got

    def _label_set(self, raw: Any) -> dict[str, str] | None:
        if not raw:
            if raw is not None and type(raw) is not dict:
                return None
            return self._labels.setdefault((), {})
        key = tuple(raw.items())
        got = self._labels.get(key)
        if got is None:
            if any(type(v) is not str for _, v in key):
                return None
            s = self.s
            got = self._labels[key] = {s(k): s(v) for k, v in key}
        return got

    def _container_list(self, raw: Any) -> list[Container] | None:
        """A workload's replicas have the same containers (names, ports, probes): one list for all of them."""
        if not raw:
            if raw is not None and type(raw) is not list:
                return None
            return self._containers.setdefault((), [])
        # list comprehensions, not generators (≈ 1 µs less per Pod each)
        key = tuple([(c.get("name"), c.get("restartPolicy"), bool(c.get("readinessProbe")),
                      tuple([(p.get("containerPort"), p.get("protocol"), p.get("name")) for p in c.get("ports") or ()]))
                     for c in raw])
        got = self._containers.get(key)
        if got is None:
            for name, policy, _, ports in key:
                if type(name) is not str or not _str_or_none(policy):
                    return None
                for port, proto, pname in ports:
                    if type(port) is not int or not _str_or_none(proto) or not _str_or_none(pname):
                        return None
            got = [Container.from_dict(c) for c in raw]
            s = self.s
            for c in got:
                c.name = s(c.name)
                for cp in c.ports:
                    cp.protocol, cp.name = s(cp.protocol), s(cp.name)
            self._containers[key] = got
        return got

    def _status_list(self, raw: Any) -> list[ContainerStatus] | None:
        """Container statuses hold no timestamp the model keeps: the healthy replicas have the same ones."""
        if not raw:
            if raw is not None and type(raw) is not list:
                return None
            return self._statuses.setdefault((), [])
        key = tuple([_status_key(c) for c in raw])
        got = self._statuses.get(key)
        if got is None:
            for k in key:
                if k is None:
                    return None
            got = [ContainerStatus.from_dict(c) for c in raw]
            s = self.s
            for c in got:
                c.name, c.reason = s(c.name), s(c.reason)
            self._statuses[key] = got
        return got


    def slice(self, d: JSON) -> EndpointSlice | None:
        """The EndpointSlice (its `raw` is the builder's), or None when `d` is not of the API's shape; its endpoints
        read directly, with the strings that repeat from endpoint to endpoint held once."""
        try:
            return self._slice(d)
        except (TypeError, AttributeError, ValueError, KeyError):
            return None

    def _slice(self, d: JSON) -> EndpointSlice | None:
        raw_eps = d.get("endpoints")
        eps: list[SliceEndpoint] = []
        if raw_eps is not None:
            if type(raw_eps) is not list:
                return None
            for e in raw_eps:
                ep = self._endpoint(e)
                if ep is None:
                    return None
                eps.append(ep)
        s = self.s
        m = ObjectMeta.from_dict(_d(d.get("metadata")))
        m.namespace = s(m.namespace)
        m.labels = self._labels.setdefault(tuple(m.labels.items()), m.labels)
        if not m.annotations:
            m.annotations = self._empty
        m.owner_kinds = self._kinds.setdefault(tuple(m.owner_kinds), m.owner_kinds)
        ports = [SlicePort(s(_s(_d(p).get("name"))), _opt_int(_d(p).get("port")), s(_s(_d(p).get("protocol")) or "TCP"))
                 for p in _l(d.get("ports"))]
        return EndpointSlice(m, s(_s(d.get("addressType")) or "IPv4"), eps, ports, self.raw)

    def _endpoint(self, e: JSON) -> SliceEndpoint | None:
        s = self.s
        hints = e.get("hints")
        if hints is not None:  # topology hints: the model's own reader, their lists held once
            ep = SliceEndpoint.from_dict(e)
            ep.node_name, ep.zone, ep.hostname = s(ep.node_name), s(ep.zone), s(ep.hostname)
            ep.target_kind, ep.target_namespace = s(ep.target_kind), s(ep.target_namespace)
            ep.zone_hints = self._hints.setdefault(("zones", *ep.zone_hints), ep.zone_hints)
            ep.node_hints = self._hints.setdefault(("nodes", *ep.node_hints), ep.node_hints)
            return ep
        addrs = e["addresses"]
        if type(addrs) is not list:
            return None
        for a in addrs:
            if type(a) is not str:
                return None
        cond, tr = e.get("conditions"), e.get("targetRef")
        if cond is None:
            cond = self._empty
        if tr is None:
            tr = self._empty
        if type(cond) is not dict or type(tr) is not dict:
            return None
        node, host, zone = e.get("nodeName"), e.get("hostname"), e.get("zone")
        kind, name, ns = tr.get("kind"), tr.get("name"), tr.get("namespace")
        for v in (node, host, zone, kind, name, ns):
            if v is not None and type(v) is not str:
                return None
        none = self._hints.setdefault((), [])
        sd = self._str.setdefault  # the table's own method, not `s` (six calls per endpoint: 100,000 endpoints)
        # a list of one built as such: one slot, not the four a comprehension leaves (100,000 endpoints: 2.4 MB)
        addrs = [sd(addrs[0], addrs[0])] if len(addrs) == 1 else [sd(a, a) for a in addrs]
        return SliceEndpoint(addrs, cond.get("ready"), cond.get("serving"), cond.get("terminating"),
                             sd(node, node) if node else "", sd(host, host) if host else "",
                             sd(zone, zone) if zone else "", sd(kind, kind) if kind else "",
                             sd(name, name) if name else "", sd(ns, ns) if ns else "", none, none)


def _str_or_none(v: Any) -> bool:
    return v is None or type(v) is str


def _status_key(c: JSON) -> tuple[Any, ...] | None:
    """What `ContainerStatus.from_dict` reads of one status, raw; None when not of the API's types."""
    name, started, restarts = c.get("name"), c.get("started"), c.get("restartCount")
    if type(name) is not str or not (started is None or type(started) is bool) \
            or not (restarts is None or type(restarts) is int):
        return None
    st = c.get("state")
    state: Any = None
    if st:
        # the first of _STATES present and not null (null: skipped, as from_dict does), spelt out: every Pod's
        # every container status comes here
        k, v = "waiting", st.get("waiting")
        if v is None:
            k, v = "running", st.get("running")
            if v is None:
                k, v = "terminated", st.get("terminated")
        if v is not None:
            reason, message, code = v.get("reason"), v.get("message"), v.get("exitCode")
            if not ((reason is None or type(reason) is str) and (message is None or type(message) is str)
                    and (code is None or type(code) is int)):
                return None
            state = (k, reason, message, code)
    elif st is not None and type(st) is not dict:
        return None
    last = c.get("lastState")
    lr = None
    if last:
        t = last.get("terminated")
        if t:
            lr = t.get("reason")
            if not _str_or_none(lr):
                return None
    return (name, bool(c.get("ready")), started, restarts or 0, state, lr)

"""The orchestration behind `svcctl collect`: read what svcctl needs for the Services (or the namespace, or the
cluster) into a Bundle that `--snapshot` reads back: the objects, the policies, and optionally node dumps."""

from __future__ import annotations

import datetime as _dt

from svcctl.errors import ClusterError, InputError
from svcctl.model import JSON, Pod, Service
from svcctl.ops.context import Context
from svcctl.sources.base import BulkReads, ClusterSource, Skipped, selector_string
from svcctl.sources.bundle import Bundle


def collect(app: Context, services: tuple[str, ...], node_rules: bool) -> Bundle:
    """The bundle for SERVICE… (`name` or `ns/name`), or without them the namespace (-n) or cluster (-A);
    each refused read is warned about and noted in the bundle."""
    src = app.source
    bundle = Bundle()
    if services:
        for ref in services:
            ns, _, name = ref.rpartition("/")
            _collect_service(src, bundle, src.get_service(ns or app.ns, name))
    else:
        _collect_namespace(src, bundle, app.ns_or_all)
    _collect_policies(src, bundle, None if services else app.ns_or_all, bool(services))
    if node_rules:
        _collect_node_rules(app, bundle)
    skipped = list(src.skipped)
    for s in skipped:
        app.terminal.warn(f"not collected: {s.resource} ({s.reason})")
    bundle.notes += _notes(app, src, services, skipped)
    return bundle


def _collect_service(src: ClusterSource, bundle: Bundle, svc: Service) -> None:
    ns, name = svc.meta.namespace, svc.meta.name
    bundle.add(svc.raw)
    bundle.add_all(s.raw for s in src.list_endpoint_slices(ns, name))
    ep = src.get_endpoints(ns, name)
    if ep is not None:
        bundle.add(ep.raw)
    pods: list[Pod] = src.list_pods(ns, selector_string(svc.selector)) if svc.selector else []
    bundle.add_all(p.raw for p in pods)
    nodes = src.get_nodes(sorted({p.node_name for p in pods if p.node_name}))
    bundle.add_all(n.raw for n in nodes.values() if n is not None)
    bundle.add_all(e.raw for e in src.list_events(ns, "Pod", [p.meta.name for p in pods]))
    bundle.add_all(e.raw for e in src.list_events(ns, "Service", [name]))


def _collect_namespace(src: ClusterSource, bundle: Bundle, namespace: str | None) -> None:
    """Whole namespace (or cluster): one paged list per kind instead of per-Service requests."""
    services = src.list_services(namespace)
    if not isinstance(src, BulkReads):  # a source without bulk reads (snapshot): per Service
        for svc in services:
            _collect_service(src, bundle, svc)
        return
    bundle.add_all(s.raw for s in services)
    bundle.add_all(s.raw for s in src.list_all_endpoint_slices(namespace))
    bundle.add_all(e.raw for e in src.list_all_endpoints(namespace))
    pods = src.list_pods(namespace)
    bundle.add_all(p.raw for p in pods)
    wanted = {p.node_name for p in pods if p.node_name}
    bundle.add_all(n.raw for n in src.list_nodes() if n.meta.name in wanted)
    bundle.add_all(e.raw for e in src.list_all_events(namespace)
                   if e.involved_kind in ("Pod", "Service"))


def _collect_policies(src: ClusterSource, bundle: Bundle, scope: str | None, per_service: bool) -> None:
    """What the trace's policy hop reads: the NetworkPolicies and Namespaces of every namespace collected (one
    list each; -A: one cluster-wide list), and the AdminNetworkPolicy tiers when the cluster has them."""
    namespaces = sorted({ns for (kind, ns, _) in bundle.objects if ns})
    lists: list[list[JSON] | None]
    if not per_service and scope is None and isinstance(src, BulkReads):
        lists = [src.list_all_network_policies(None)]
        ns_objs = src.list_namespace_objects()
        if ns_objs is not None:
            bundle.add_all(ns_objs)
            bundle.typed.add("Namespace")
    else:
        lists = [src.list_network_policies(ns) for ns in namespaces]
        got = [src.get_namespace(ns) for ns in namespaces]
        bundle.add_all(o for o in got if o is not None)
        if got and all(o is not None for o in got):
            bundle.typed.add("Namespace")
    if lists and all(x is not None for x in lists):
        bundle.typed.add("NetworkPolicy")
        for items in lists:
            bundle.add_all(items or [])
    admin = src.list_admin_network_policies()
    if admin is not None:
        bundle.add_all([*admin[0], *admin[1]])


def _collect_node_rules(app: Context, bundle: Bundle) -> None:
    from svcctl.sources.node import gather_node_dumps

    nodes = sorted({str(o.get("spec", {}).get("nodeName") or "")
                    for (kind, _, _), o in bundle.objects.items() if kind == "Pod"} - {""})
    for node in nodes:
        try:
            dumps = gather_node_dumps(app, node)
        except (ClusterError, InputError) as e:
            app.terminal.warn(f"node {node}: rules not collected: {e.message}")
            continue
        if dumps:
            bundle.dumps[node] = dumps
            bundle.notes.append(f"node {node}: " + ", ".join(f"{k} from {v}" for k, v in sorted(dumps.origins.items())))


def _notes(app: Context, src: ClusterSource, services: tuple[str, ...], skipped: list[Skipped]) -> list[str]:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    scope = ", ".join(services) if services else ("all namespaces" if app.all_namespaces else f"namespace {app.ns}")
    lines = [f"collected {when} by svcctl from {src.name}", f"scope: {scope}"]
    lines += [f"skipped {s.resource}: {s.reason}" for s in skipped]
    return lines

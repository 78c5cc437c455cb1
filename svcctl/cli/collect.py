"""`svcctl collect -o bundle.tar.gz [-n NS | -A] [SERVICE…]`: save what svcctl reads, to replay with --snapshot."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import click

from svcctl.cli.app import App, complete_services, get_app, global_options, node_options
from svcctl.errors import ClusterError, ExitStatus, InputError
from svcctl.model import JSON, Pod, Service
from svcctl.sources.base import BulkReads, ClusterSource, CountsRequests, selector_string
from svcctl.sources.bundle import Bundle, write_bundle


@click.command("collect")
@click.argument("services", nargs=-1, shell_complete=complete_services)
@click.option("-o", "--output-file", "--out", "out", required=True, metavar="FILE",
              help="Where to write the bundle (.tar.gz).")
@click.option("--node-rules", is_flag=True, default=False,
              help="Also read each involved node's kube-proxy rules (exec into its kube-proxy Pod).")
@global_options
@node_options
def command(services: tuple[str, ...], out: str, node_rules: bool) -> int:
    """Write a snapshot bundle of the objects svcctl needs, read-only.

    \b
    For each SERVICE (`name` or `ns/name`): the Service, its EndpointSlices, its v1 Endpoints, the Pods its
    selector matches, their Nodes and their Events; the NetworkPolicies and Namespaces of the namespaces
    collected, and the AdminNetworkPolicy tiers. Without SERVICE: every Service of the namespace (-n) or
    of all namespaces (-A). Secrets and ConfigMaps are never read; env values in Pod specs are replaced with
    REDACTED; managedFields and last-applied annotations are dropped.

    \b
    Examples:
      svcctl collect -o hostnames.tar.gz hostnames
      svcctl collect -A -o cluster.tar.gz
      svcctl --snapshot hostnames.tar.gz endpoints hostnames --why-not
    """
    app = get_app()
    if not out.endswith((".tar.gz", ".tgz")):
        raise InputError(f"the bundle is a gzipped tarball: name it *.tar.gz, not {out!r}")
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
    size = write_bundle(out, bundle)
    counts = ", ".join(f"{n} {k}{'' if n == 1 else 's'}" for k, n in bundle.counts().items()) or "no objects"
    cost = ""
    if isinstance(src, CountsRequests):
        cost = f" ({src.requests} API requests, {src.bytes_read} bytes read)"
    app.terminal.status(f"wrote {out}: {counts}, {size} bytes{cost}")
    return int(ExitStatus.OK)


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


def _collect_node_rules(app: App, bundle: Bundle) -> None:
    try:
        from svcctl.sources.node import gather_node_dumps
    except ImportError:
        app.terminal.warn("--node-rules: reading node rules is not available in this build")
        return
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


def _notes(app: App, src: Any, services: tuple[str, ...], skipped: list[Any]) -> list[str]:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    scope = ", ".join(services) if services else ("all namespaces" if app.all_namespaces else f"namespace {app.ns}")
    lines = [f"collected {when} by svcctl from {src.name}", f"scope: {scope}"]
    lines += [f"skipped {s.resource}: {s.reason}" for s in skipped]
    return lines

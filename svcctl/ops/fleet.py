"""`--all-nodes`: every node's rules through its kube-proxy (or agent) Pod, judged as one node's are (trace: a
FleetReport; check: the rule sets it compares)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from svcctl.errors import ExitStatus, InputError

if TYPE_CHECKING:
    from svcctl.dataplane.model import NodeRules
    from svcctl.model import EndpointSlice, Service
    from svcctl.ops.context import Context
    from svcctl.sources.base import NodeDumps


def run_fleet(app: Context, services: list[Service], parallel: int, fail_on: str = "error") -> int:
    """Judge `services` on every node; render the FleetReport; the exit status (1 = some node drifts)."""
    from svcctl.analysis.fleet import FleetReport
    from svcctl.render.fleet import FleetProgress, render_fleet
    from svcctl.sources.fleet import FleetTarget, check_fleet

    if app.snapshot or app.node_inputs.files or app.node_inputs.netns or app.node_inputs.local:
        raise InputError("--all-nodes reads every node through its kube-proxy Pod: it needs a live cluster",
                         hint="drop --snapshot / dump files, or use --node NAME for one node")
    if app.node_inputs.no_exec:
        raise InputError("--all-nodes needs to exec into kube-proxy Pods; --no-exec forbids it")
    src = app.source
    target = FleetTarget([(s, src.list_endpoint_slices(s.meta.namespace, s.meta.name)) for s in services])
    started = time.monotonic()
    with FleetProgress(app) as progress:
        nodes = check_fleet(src, target, parallel=parallel, mode=app.node_inputs.mode,
                            on_start=progress.on_start, on_result=progress.on_result)
    report = FleetReport([s.meta.key for s in services], nodes, parallel, time.monotonic() - started)
    render_fleet(app, report)
    from svcctl.findings import exit_for

    return int(exit_for(report.verdict, fail_on)) if nodes else int(ExitStatus.OK)


def fleet_rule_sets(app: Context, services: list[Service], parallel: int, every: bool = False
                    ) -> tuple[list[tuple[str | None, NodeRules, NodeDumps]], str, str]:
    """For `check --all-nodes`: every readable node's rules (node, rules, dumps), a note naming the nodes that
    could not be read ("" when all could), and one saying how they were read. Up to TARGETED_MAX Services: each
    node is asked for their rules only (targeted reads, a round per exec); more, or `every` Service of the
    cluster (its whole dump is exactly their rules, in one exec): whole dumps."""
    from svcctl.render.fleet import FleetProgress
    from svcctl.sources.fleet import TARGETED_MAX, FleetTarget, read_fleet

    if app.snapshot or app.node_inputs.files or app.node_inputs.netns or app.node_inputs.local:
        raise InputError("--all-nodes reads every node through its kube-proxy Pod: it needs a live cluster",
                         hint="drop --snapshot / dump files, or use --node NAME for one node")
    if app.node_inputs.no_exec:
        raise InputError("--all-nodes needs to exec into kube-proxy Pods; --no-exec forbids it")
    n = len(services)
    targeted = 0 < n <= TARGETED_MAX and not every
    only = FleetTarget([(s, []) for s in services]).only if targeted else None
    if targeted:
        how = f"drift: each node was asked for the rules of the {n} Service(s) checked only (targeted reads)"
    elif n:
        why = ("every Service of the cluster is checked: its whole dump is exactly their rules" if every else
               f"{n} Services, more than the {TARGETED_MAX} a targeted read asks for")
        how = f"drift: each node's rules were read whole ({why})"
    else:
        how = ""
    with FleetProgress(app) as progress:
        reads = read_fleet(app.source, parallel=parallel, mode=app.node_inputs.mode, only=only,
                           targets=_with_slices(app, services) if only is not None else None,
                           on_start=progress.on_start,
                           on_read=lambda r: progress.on_read(r.node, r.rules.mode if r.rules else None, r.error))
    out: list[tuple[str | None, NodeRules, NodeDumps]] = [
        (r.node, r.rules, r.dumps) for r in reads if r.rules is not None and r.dumps is not None]
    bad = [r for r in reads if r.rules is None]
    note = ""
    if bad:
        note = (f"drift: {len(bad)} of {len(reads)} node(s) could not be read (NodeUnreadable): "
                + "; ".join(f"{r.node}: {r.error}" for r in bad[:10]) + (" …" if len(bad) > 10 else ""))
    elif not reads:
        note = "drift: no nodes found"
    return out, note, how


def _with_slices(app: Context, services: list[Service]) -> list[tuple[Service, list[EndpointSlice] | None]]:
    """The Services with their EndpointSlices (one request each, for the few a targeted read is for): knowing the
    endpoints, each node's read asks for their KUBE-SEP chains with the Service's own, one exec round instead of
    two, and checks only the rule set (with or without endpoints) the API implies. A Service whose slices cannot
    be read (refused: the live source then answers [] and counts a refusal) gets None: both rule sets are tried
    and the chains found are followed, as before."""
    from svcctl.errors import SvcctlError
    from svcctl.sources.base import BulkSlices

    src = app.source
    out: list[tuple[Service, list[EndpointSlice] | None]] = []
    if len(services) > 20 and isinstance(src, BulkSlices):  # many: one (paged) list instead of one read each
        namespaces = {s.meta.namespace for s in services}
        refused = getattr(src, "refusals", 0)
        try:
            listed: list[EndpointSlice] | None = src.list_all_endpoint_slices(
                next(iter(namespaces)) if len(namespaces) == 1 else None)
        except SvcctlError:
            listed = None
        if listed is not None and getattr(src, "refusals", 0) == refused:
            by: dict[tuple[str, str], list[EndpointSlice]] = {}
            for sl in listed:
                if sl.service_name:
                    by.setdefault((sl.meta.namespace, sl.service_name), []).append(sl)
            return [(s, by.get((s.meta.namespace, s.meta.name), [])) for s in services]
    for s in services:
        refused = getattr(src, "refusals", 0)
        try:
            slices: list[EndpointSlice] | None = src.list_endpoint_slices(s.meta.namespace, s.meta.name)
        except SvcctlError:
            slices = None
        out.append((s, None if getattr(src, "refusals", 0) != refused else slices))
    return out

"""The orchestration behind `svcctl check`: what to check (a Plan, parsed once), one attempt of every check
on each Service (an Attempt), and the bundle of what was read."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

from svcctl.analysis.check import (
    CheckReport,
    DriftResult,
    ServiceCheck,
    sort_checks,
)
from svcctl.errors import ClusterError, InputError, NotFoundError
from svcctl.findings import Severity
from svcctl.lazydc import dataclass, field
from svcctl.model import Finding, Service
from svcctl.ops.context import Context
from svcctl.ops.fleet import fleet_rule_sets
from svcctl.ops.refs import split_ref as split_ref  # re-exported: the CLI and tests read it from here

if TYPE_CHECKING:

    from svcctl.analysis.endpoints import Gathered
    from svcctl.dataplane.model import NodeRules
    from svcctl.sources.base import ClusterSource, NodeDumps


@dataclass
class Plan:
    """What to check, parsed once and re-run on every `--wait` attempt."""

    refs: list[tuple[str | None, str]]  # (namespace or None for the default, name)
    selector: str | None
    dns: bool
    dns_reason: str
    dns_server: str | None
    dns_query: bool
    cluster_domain: str
    dns_timeout: float
    fail_on: str
    all_nodes: bool = False  # --all-nodes: every node's rules through its kube-proxy Pod
    parallel: int = 8
    from_pod: str | None = None  # the policy check's one client (NS/POD)
    collect: bool = False  # --collect-on-failure: every object read is kept whole for the bundle


@dataclass
class Attempt:
    """One run of every check: the report and what was read (for --collect-on-failure)."""

    report: CheckReport
    gathered: list[Gathered] = field(default_factory=list)
    dumps: list[NodeDumps] = field(default_factory=list)


def make_plan(app: Context, services: tuple[str, ...], selector: str | None, fail_on: str, dns_flag: bool | None,
          dns_server: str | None, cluster_domain: str, dns_timeout: float) -> Plan:
    refs = [split_ref(s) for s in services]
    if refs and selector:
        raise InputError("give SERVICE names or --selector, not both")
    live = app.snapshot is None
    if dns_flag is False:
        dns, reason = False, "dns: off (--no-dns)"
    elif dns_flag is True or dns_server:
        dns, reason = True, ""
    elif live and os.environ.get("KUBERNETES_SERVICE_HOST"):
        dns, reason = True, ""  # inside a Pod: the cluster's resolver is reachable
    else:
        dns = False
        reason = ("dns: off from a snapshot (--dns predicts records, --dns-server queries)" if not live
                  else "dns: off outside the cluster (give --dns-server IP or --dns)")
    return Plan(refs, selector, dns, reason, dns_server, live or dns_server is not None, cluster_domain,
                dns_timeout, fail_on)


def node_rule_sets(app: Context) -> tuple[list[tuple[str | None, NodeRules, NodeDumps]], str]:
    """Node rules to compare each Service with, read once per attempt; and why there are none."""

    ni = app.node_inputs
    out: list[tuple[str | None, NodeRules, NodeDumps]] = []
    if ni.any_given or (app.snapshot is None and ni.node):
        if app.snapshot is None and not ni.any_given and ni.no_exec:
            return [], "drift: --no-exec leaves no way to read node rules"
        dumps = app.node_dumps(ni.node)
        if dumps:
            out.append((ni.node, app.load_rules(dumps, mode=ni.mode), dumps))
        return out, "" if out else "drift: the node input held no rules"
    if app.snapshot is not None:
        from svcctl.sources.base import RecordedDumps

        nodes = sorted(app.source.dumps) if isinstance(app.source, RecordedDumps) else []
        if ni.node:
            nodes = [ni.node]
        for node in nodes:
            dumps = app.node_dumps(node)
            if not dumps:
                continue
            try:
                out.append((node, app.load_rules(dumps, mode=ni.mode), dumps))
            except InputError as e:
                app.terminal.warn(f"node {node}: rules not compared: {e.message}")
        return out, "" if out else "drift: the snapshot has no node dumps"
    return [], "drift: no node input (give --node, --iptables-save FILE, --netns or --local-node)"


def select_services(app: Context, plan: Plan) -> list[tuple[str, str, Service | None]]:
    """(namespace, name, Service or None when a named one is missing)."""
    src = app.source
    if plan.refs:
        out: list[tuple[str, str, Service | None]] = []
        for ns, name in plan.refs:
            ns = ns or app.ns
            try:
                out.append((ns, name, src.get_service(ns, name)))
            except NotFoundError:
                out.append((ns, name, None))
        return out
    return [(s.meta.namespace, s.meta.name, s) for s in src.list_services(app.ns_or_all, plan.selector)]


class Progress(Protocol):
    """Where `run_attempt` says how far it is (a spinner on a terminal, lines in CI: the CLI's)."""

    def start(self, attempt: int, n: int, source: str) -> None: ...

    def service(self, i: int, n: int, key: str) -> None: ...

    def pause(self, text: str, seconds: float, deadline: float) -> None:
        """Wait `seconds` before the next attempt, saying why (`--wait`)."""
        ...


def _drift_zone(src: ClusterSource, g: Gathered, node: str | None) -> str:
    """The node's zone, when an endpoint has topology hints (then it decides which endpoints the node uses)."""
    from svcctl.analysis.topology import has_hints, node_zone
    from svcctl.errors import SvcctlError

    if not node or not has_hints(g.slices):
        return ""
    if g.all_nodes is not None:
        return node_zone(g.all_nodes, node)
    try:
        return node_zone(src.get_nodes([node]), node)
    except SvcctlError:
        return ""


def run_attempt(app: Context, plan: Plan, progress: Progress, attempt: int) -> Attempt:
    from svcctl.analysis.endpoints import analyze
    from svcctl.analysis.trace import drift_findings
    from svcctl.ops.endpoints import gather
    from svcctl.sources import prefetch as _prefetch

    src = app.source
    with _prefetch.paused() if not plan.refs else contextlib.nullcontext():
        targets = select_services(app, plan)
    if plan.all_nodes:
        every = not plan.refs and plan.selector is None and app.ns_or_all is None  # check -A: the cluster's all
        rule_sets, drift_reason, drift_how = fleet_rule_sets(app, [s for _, _, s in targets if s is not None],
                                                             plan.parallel, every)
    else:
        (rule_sets, drift_reason), drift_how = node_rule_sets(app), ""
    progress.start(attempt, len(targets), src.name)
    run = Attempt(CheckReport(fail_on=plan.fail_on, source=src.name))
    run.report.checks = {"endpoints": True, "dns": ("query" if plan.dns_query else "predict") if plan.dns else "off",
                         "drift": [{"node": n, "mode": r.mode, "source": r.source} for n, r, _ in rule_sets]}
    run.dumps = [d for _, _, d in rule_sets]
    from svcctl.sources.coverage import coverage_of, summary_line

    partial = summary_line(coverage_of(src))  # what the input holds and lacks: the answer is only that good
    if not plan.refs and not plan.collect:  # many Services: their reads answered from lists read once
        from svcctl.sources.prefetch import prefetch

        src = prefetch(src, app.ns_or_all, [s for _, _, s in targets if s is not None], plan.selector is None)
    for label in (partial, plan.dns_reason, drift_how, drift_reason):
        if label:
            run.report.notes.append(label)
    from svcctl.ops.policy_check import PolicyChecker

    policy = PolicyChecker(src, plan.from_pod, app.ns, shared=src is not app.source)
    run.report.checks["policy"] = f"from {plan.from_pod}" if plan.from_pod else "namespaces"
    checks: list[ServiceCheck] = []
    spool = None
    if not plan.refs and not plan.collect and len(targets) >= _prefetch.PREFETCH_MIN:
        # many Services: each report cut to what the output prints, once made
        from svcctl.render.check_stream import ReportSpool

        spool = run.report.spool = ReportSpool(app.output)
    for i, (ns, name, svc) in enumerate(targets, 1):
        progress.service(i, len(targets), f"{ns}/{name}")
        t0 = time.monotonic()
        sc = ServiceCheck(ns, name)
        if svc is None:
            sc.extra.append(Finding("ServiceNotFound", Severity.ERROR, f'service "{name}" not found in namespace "{ns}"',
                                    hint=suggest_service(app, ns, name)))
            checks.append(sc)
            continue
        g = gather(src, ns, name, why_not=True)
        if plan.collect:  # kept for the bundle only: 10,000 Services' reads are not held to the end otherwise
            run.gathered.append(g)
        rep = analyze(g)
        sc.endpoints = rep
        sc.counts = dict(rep.counts)
        if plan.dns:
            from svcctl.ops.dns import dns_hop

            sc.dns = dns_hop(src, svc, svc.meta.name, ns, plan.cluster_domain, plan.dns_server, None,
                             plan.dns_query, plan.dns_timeout)
        else:
            sc.skipped.append(plan.dns_reason)
        if g.basis == "" and rule_sets:
            sc.skipped.append(f"drift: {rep.basis_absent or 'no EndpointSlices in the input'}: nothing to compare "
                              "the node rules with")
        for node, rules, _ in rule_sets if g.basis != "" else []:
            sc.drift.append(DriftResult(node, rules.mode, drift_findings(svc, g.slices, rules, node,
                                                                         _drift_zone(src, g, node))))
        if not rule_sets:
            sc.skipped.append(drift_reason)
        sc.policy = policy.check(svc, g)
        if sc.policy.skipped:
            sc.skipped.append(sc.policy.skipped)
        sc.seconds = time.monotonic() - t0
        checks.append(spool.add(sc) if spool is not None else sc)
        if spool is not None:
            done = getattr(src, "done", None)
            if callable(done):
                del g, rep  # the Service's objects: only the compact report is kept
                done(ns, name)
        if i % 500 == 0:
            _prefetch.settle()
    run.report.services = sort_checks(checks)
    if not targets:
        where = "any namespace" if app.all_namespaces else f"namespace {app.ns}"
        run.report.notes.append(f"no Services found in {where}" + (f" matching {plan.selector}" if plan.selector
                                                                     else ""))
    return run


def run_check(app: Context, plan: Plan, progress: Progress, wait: float | None, interval: float,
              wait_text: str = "") -> Attempt:
    """`check` with `--wait`: re-read and re-check every `interval` seconds until the report settles (healthy by
    --fail-on) or `wait` seconds pass; without `wait`, one attempt. A cluster that cannot be read is retried
    while time is left; the last attempt's report says how many attempts and how long it took."""
    started = time.monotonic()
    deadline = started + wait if wait is not None else None
    attempt_no = 0
    last: Attempt | None = None
    while True:
        attempt_no += 1
        if attempt_no > 1:
            app.reset_source()  # a new read of the snapshot file / new API requests
        error: ClusterError | None = None
        from svcctl.sources.prefetch import release

        try:
            last = run_attempt(app, plan, progress, attempt_no)
        except ClusterError as e:
            if deadline is None:
                raise
            error, last = e, None
        finally:
            # the lists' objects, frozen for the attempt: back in the collector's care once the attempt's source is
            # dropped (unfrozen while still alive, the next full collection scanned millions of them for nothing)
            release()
        if deadline is None or (last is not None and last.report.settled):
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if last is None and error is not None:
                raise error
            break
        what = f"cannot read the cluster: {error.message}" if error is not None else (
            last.report.summary_line() if last is not None else "")
        progress.pause(f"check {attempt_no}: {what}", min(interval, remaining), deadline)
    assert last is not None
    report = last.report
    report.attempts = attempt_no
    if wait is not None:
        report.waited_seconds = time.monotonic() - started
        if not report.settled:
            report.notes.append(f"--wait {wait_text}: still failing after {attempt_no} checks")
    return last


def suggest_service(app: Context, ns: str, name: str) -> str:
    try:
        app.source.get_service(ns, name)
    except NotFoundError as e:
        return e.hint or ""
    return ""


def collect_bundle(app: Context, run: Attempt, plan: Plan, path: str) -> None:
    """Write every object the checks read, and the node dumps compared, as a bundle `--snapshot` reads back."""
    import datetime as _dt

    from svcctl.sources.bundle import Bundle, write_bundle

    bundle = Bundle()
    for g in run.gathered:
        raws: list[Any] = [g.service.raw, *(s.raw for s in g.slices)]
        if g.endpoints is not None:
            raws.append(g.endpoints.raw)
        raws += [p.raw for p in (*g.pods, *g.near, *g.elsewhere)]
        raws += [n.raw for n in g.nodes.values() if n is not None]
        raws += [e.raw for e in g.events]
        raws += [s.raw for s in g.services]
        bundle.add_all(r for r in raws if r)
    if plan.dns:
        with contextlib.suppress(NotFoundError, ClusterError):
            bundle.add(app.source.get_service("kube-system", "kube-dns").raw)
    for d in run.dumps:
        bundle.dumps[d.node or "node"] = d
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    bundle.notes += [f"written {when} by `svcctl check --collect-on-failure` from {run.report.source}",
                     run.report.summary_line()]
    try:
        size = write_bundle(path, bundle)
    except OSError as e:
        raise InputError(f"cannot write the bundle: {e.strerror}", source=path) from None
    app.terminal.echo_err(f"wrote {path} ({size} bytes): replay with `svcctl check --snapshot {path}`")

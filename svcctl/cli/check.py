"""`svcctl check [-n NS | -A] [SERVICE…]`: every check on each Service, one verdict, for CI after a deploy."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from svcctl.analysis.check import (
    CheckReport,
    DriftResult,
    ServiceCheck,
    format_duration,
    parse_duration,
    sort_checks,
)
from svcctl.cli.app import (
    App,
    complete_services,
    fail_on_option,
    get_app,
    global_options,
    node_options,
    output_options,
)
from svcctl.cli.fleet import fleet_options, fleet_rule_sets
from svcctl.errors import ClusterError, ExitStatus, InputError, NotFoundError
from svcctl.findings import Severity
from svcctl.model import Finding, Service
from svcctl.render.check import FORMATS

if TYPE_CHECKING:
    from rich.status import Status

    from svcctl.analysis.endpoints import Gathered
    from svcctl.dataplane.model import NodeRules
    from svcctl.sources.base import NodeDumps


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


@dataclass
class Attempt:
    """One run of every check: the report and what was read (for --collect-on-failure)."""

    report: CheckReport
    gathered: list[Gathered] = field(default_factory=list)
    dumps: list[NodeDumps] = field(default_factory=list)


class Progress:
    """A rich spinner on stderr when it is a terminal; plain lines (CI logs) otherwise."""

    def __init__(self, app: App) -> None:
        self.terminal = app.terminal
        self.tty = bool(self.terminal.err.is_terminal)
        self._status: Status | None = None

    def _show(self, text: str) -> None:
        if self.tty:
            if self._status is None:
                self._status = self.terminal.err.status(text)
                self._status.start()
            else:
                self._status.update(text)

    @staticmethod
    def _line(text: str) -> None:
        click.echo(text, err=True)  # one unwrapped line per event: CI logs are read line by line

    def start(self, attempt: int, n: int, source: str) -> None:
        text = f"checking {n} Service{'' if n == 1 else 's'} from {source}" + (
            f" (attempt {attempt})" if attempt > 1 else "")
        if self.tty:
            self._show(text)
        else:
            self._line(text)

    def service(self, i: int, n: int, key: str) -> None:
        if self.tty:
            self._show(f"checking {key} ({i}/{n})")

    def pause(self, text: str, seconds: float, deadline: float) -> None:
        """Sleep `seconds` before the next check, saying so: a live countdown on a terminal, one line in CI."""
        def line(left: float) -> str:
            return (f"{text}; checking again in {format_duration(left)} "
                    f"({format_duration(deadline - time.monotonic())} left of --wait)")

        if not self.tty:
            self._line(line(seconds))
            time.sleep(seconds)
            return
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._show(line(left))
            time.sleep(min(0.1, left))

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def _split(ref: str) -> tuple[str | None, str]:
    parts = ref.split("/")
    if len(parts) == 2 and parts[0] in ("svc", "service", "services"):
        parts = [parts[1]]
    if len(parts) == 1 and parts[0]:
        return None, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise InputError(f"cannot read Service {ref!r}", hint="give NAME or NAMESPACE/NAME")


def _duration(text: str, flag: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise InputError(f"{flag}: {e}", hint="e.g. 30s, 5m, 1m30s or 90 (seconds)") from None


@click.command("check")
@click.argument("services", nargs=-1, shell_complete=complete_services)
@click.option("-l", "--selector", metavar="LABELS", help="Only Services whose labels match (`app=web,tier!=db`).")
@click.option("--wait", "wait_text", metavar="DURATION",
              help="Re-check until healthy or DURATION passes (`30s`, `5m`, `90`); reads everything again each time.")
@click.option("--interval", "interval_text", default="2s", show_default=True, metavar="DURATION",
              help="Pause between --wait checks.")
@click.option("--dns/--no-dns", "dns_flag", default=None,
              help="Check DNS records (default: on with --dns-server or inside a cluster; from a snapshot "
                   "--dns predicts the records without querying).")
@click.option("--dns-server", metavar="IP[:PORT]", help="Query this DNS server (implies --dns).")
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--dns-timeout", type=float, default=2.0, show_default=True, metavar="SECONDS")
@click.option("--from-pod", metavar="NS/POD", help="Policy check for this one client: its Egress and each "
              "backend's Ingress (default: which namespaces' Pods can reach each Service).")
@click.option("--collect-on-failure", "collect_path", metavar="FILE.tar.gz", type=click.Path(dir_okay=False),
              help="When the check fails, write what was read as a snapshot bundle (replay with --snapshot).")
@fail_on_option
@fleet_options
@global_options
@output_options(FORMATS)
@node_options
def command(services: tuple[str, ...], selector: str | None, fail_on: str, wait_text: str | None,
            interval_text: str, dns_flag: bool | None, dns_server: str | None, cluster_domain: str,
            dns_timeout: float, from_pod: str | None, collect_path: str | None, all_nodes: bool,
            parallel: int) -> int:
    """Run every check on Services and print one verdict: the step to run in CI after a deploy.

    \b
    Checks per Service: endpoints (every code of `endpoints --why-not`), DNS (with --dns-server, inside a
    cluster, or --dns), and drift between the API and a node's kube-proxy rules (when node input is given:
    --node, --iptables-save/--ipvsadm/--nft FILE, --netns, --local-node, or a snapshot with node dumps),
    and NetworkPolicy: which namespaces' Pods can reach it (--from-pod: one client's whole path).
    SERVICE is NAME or NAMESPACE/NAME; without SERVICE, every Service of the namespace (-n) or all (-A).
    Status: broken (an error finding), warning, or healthy; a SERVICE that does not exist is broken
    (ServiceNotFound). Exit 1 when a Service fails --fail-on.

    \b
    Output (-o): table, wide, json, yaml, junit (JUnit XML), github (workflow annotations, plus a
    Markdown summary appended to $GITHUB_STEP_SUMMARY), markdown.

    \b
    Examples:
      svcctl check --snapshot demo
      svcctl check -n prod --wait 5m -o github
      svcctl check -A --fail-on warning -o junit > svcctl-junit.xml
      svcctl check web api --collect-on-failure svcctl-bundle.tar.gz
    """
    app = get_app()
    wait = _duration(wait_text, "--wait") if wait_text is not None else None
    interval = _duration(interval_text, "--interval")
    if wait is not None and interval <= 0:
        raise InputError("--interval must be more than 0")
    if collect_path is not None and not collect_path.endswith((".tar.gz", ".tgz")):
        raise InputError(f"the bundle is a gzipped tarball: name it *.tar.gz, not {collect_path!r}")
    plan = _plan(app, services, selector, fail_on, dns_flag, dns_server, cluster_domain, dns_timeout)
    plan.all_nodes, plan.parallel, plan.from_pod = all_nodes, parallel, from_pod

    progress = Progress(app)
    started = time.monotonic()
    deadline = started + wait if wait is not None else None
    attempt_no = 0
    last: Attempt | None = None
    try:
        while True:
            attempt_no += 1
            if attempt_no > 1:
                app.reset_source()  # a new read of the snapshot file / new API requests
            error: ClusterError | None = None
            try:
                last = _run(app, plan, progress, attempt_no)
            except ClusterError as e:
                if deadline is None:
                    raise
                error, last = e, None
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
    finally:
        progress.stop()
    assert last is not None
    report = last.report
    report.attempts = attempt_no
    if wait is not None:
        report.waited_seconds = time.monotonic() - started
        if not report.settled:
            report.notes.append(f"--wait {wait_text}: still failing after {attempt_no} checks")

    from svcctl.render.check import markdown, render_check

    render_check(app, report)
    if app.output not in ("json", "yaml", "junit", "github", "markdown"):
        for note in report.notes:
            click.echo(note, err=True)
    if app.output == "github" and os.environ.get("GITHUB_STEP_SUMMARY"):
        _append_step_summary(app, os.environ["GITHUB_STEP_SUMMARY"], markdown(report))
    if collect_path is not None and not report.settled:
        _collect(app, last, plan, collect_path)
    return int(ExitStatus.PROBLEMS if report.failed else ExitStatus.OK)


def _plan(app: App, services: tuple[str, ...], selector: str | None, fail_on: str, dns_flag: bool | None,
          dns_server: str | None, cluster_domain: str, dns_timeout: float) -> Plan:
    refs = [_split(s) for s in services]
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


def _node_rule_sets(app: App) -> tuple[list[tuple[str | None, NodeRules, NodeDumps]], str]:
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


def _select(app: App, plan: Plan) -> list[tuple[str, str, Service | None]]:
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


def _run(app: App, plan: Plan, progress: Progress, attempt: int) -> Attempt:
    from svcctl.analysis.endpoints import analyze
    from svcctl.analysis.trace import drift_findings
    from svcctl.ops.endpoints import gather

    src = app.source
    targets = _select(app, plan)
    if plan.all_nodes:
        rule_sets, drift_reason = fleet_rule_sets(app, [s for _, _, s in targets if s is not None], plan.parallel)
    else:
        rule_sets, drift_reason = _node_rule_sets(app)
    progress.start(attempt, len(targets), src.name)
    run = Attempt(CheckReport(fail_on=plan.fail_on, source=src.name))
    run.report.checks = {"endpoints": True, "dns": ("query" if plan.dns_query else "predict") if plan.dns else "off",
                         "drift": [{"node": n, "mode": r.mode, "source": r.source} for n, r, _ in rule_sets]}
    run.dumps = [d for _, _, d in rule_sets]
    from svcctl.sources.coverage import coverage_of, summary_line

    partial = summary_line(coverage_of(src))  # what the input holds and lacks: the answer is only that good
    for label in (partial, plan.dns_reason, drift_reason):
        if label:
            run.report.notes.append(label)
    from svcctl.cli.policy_check import PolicyChecker

    policy = PolicyChecker(src, plan.from_pod, app.ns)
    run.report.checks["policy"] = f"from {plan.from_pod}" if plan.from_pod else "namespaces"
    checks: list[ServiceCheck] = []
    for i, (ns, name, svc) in enumerate(targets, 1):
        progress.service(i, len(targets), f"{ns}/{name}")
        t0 = time.monotonic()
        sc = ServiceCheck(ns, name)
        if svc is None:
            sc.extra.append(Finding("ServiceNotFound", Severity.ERROR, f'service "{name}" not found in namespace "{ns}"',
                                    hint=_suggest(app, ns, name)))
            checks.append(sc)
            continue
        g = gather(src, ns, name, why_not=True)
        run.gathered.append(g)
        rep = analyze(g)
        sc.endpoints = rep
        sc.counts = dict(rep.counts)
        if plan.dns:
            from svcctl.sources.dns import dns_hop

            sc.dns = dns_hop(src, svc, svc.meta.name, ns, plan.cluster_domain, plan.dns_server, None,
                             plan.dns_query, plan.dns_timeout)
        else:
            sc.skipped.append(plan.dns_reason)
        if g.basis == "" and rule_sets:
            sc.skipped.append(f"drift: {rep.basis_absent or 'no EndpointSlices in the input'}: nothing to compare "
                              "the node rules with")
        for node, rules, _ in rule_sets if g.basis != "" else []:
            sc.drift.append(DriftResult(node, rules.mode, drift_findings(svc, g.slices, rules, node)))
        if not rule_sets:
            sc.skipped.append(drift_reason)
        sc.policy = policy.check(svc, g)
        if sc.policy.skipped:
            sc.skipped.append(sc.policy.skipped)
        sc.seconds = time.monotonic() - t0
        checks.append(sc)
    run.report.services = sort_checks(checks)
    if not targets:
        where = "any namespace" if app.all_namespaces else f"namespace {app.ns}"
        run.report.notes.append(f"no Services found in {where}" + (f" matching {plan.selector}" if plan.selector
                                                                     else ""))
    return run


def _suggest(app: App, ns: str, name: str) -> str:
    try:
        app.source.get_service(ns, name)
    except NotFoundError as e:
        return e.hint or ""
    return ""


def _append_step_summary(app: App, path: str, text: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    except OSError as e:
        app.terminal.warn(f"cannot append to $GITHUB_STEP_SUMMARY ({path}): {e.strerror}")


def _collect(app: App, run: Attempt, plan: Plan, path: str) -> None:
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
    click.echo(f"wrote {path} ({size} bytes): replay with `svcctl check --snapshot {path}`", err=True)

"""`svcctl endpoints [SERVICE] [--why-not]`: a Service's endpoints, and why each Pod is or is not one."""

from __future__ import annotations

import click

from svcctl.cli.app import complete_services, exit_status, get_app, judging_options
from svcctl.errors import InputError
from svcctl.findings import Verdict


def split_service(text: str, default_ns: str) -> tuple[str, str]:
    """`name` or `ns/name` (also `svc/name`, `service/name` as kubectl writes them)."""
    from svcctl.ops.refs import split_ref

    ns, name = split_ref(text)
    return ns or default_ns, name


@click.command("endpoints")
@click.argument("service", required=False, shell_complete=complete_services)
@click.option("--why-not", is_flag=True, default=False,
              help="Also look for Pods that nearly match the selector and Pods in other namespaces, and show "
                   "each finding's evidence, fix and deciding controller rule.")
@judging_options()
def command(service: str | None, why_not: bool, fail_on: str) -> int:
    """List a Service's endpoints as the EndpointSlice controller publishes them, one row per Pod.

    \b
    SERVICE is NAME or NAMESPACE/NAME. Without SERVICE: every Service in the namespace (-A: all) with its
    ready / not-ready / expected counts. Every Pod that is not a ready endpoint gets a reason code;
    --why-not adds near misses (labels that almost match the selector), Pods of other namespaces, and each
    finding's evidence, fix and the controller rule that decides it.
    Exit 1 when a Pod the selector names (or nearly names) is not a ready endpoint, or nothing is ready.

    \b
    Examples:
      svcctl endpoints hostnames --why-not --snapshot demo
      svcctl endpoints -A
      svcctl endpoints prod/api -o json
    """
    app = get_app()
    if service is None and why_not:
        raise InputError("--why-not explains one Service: give SERVICE",
                         hint="list the Services first: `svcctl endpoints` (or -A)")
    if service is None:
        from svcctl.ops.endpoints import summarize_services

        summaries = summarize_services(app.source, app.ns_or_all)
        # render (rich) after the reads: a failed read never pays for it
        from svcctl.render.endpoints import render_summary

        render_summary(app, summaries, app.all_namespaces)
        for sk in app.source.skipped:  # refused reads make the counts partial: say so, on stderr
            app.terminal.warn(f"could not read {sk.resource}: {sk.reason}; counts may be incomplete")
        from svcctl.sources.base import HasCoverage
        from svcctl.sources.coverage import coverage_of, summary_line

        partial = summary_line(coverage_of(app.source))
        if partial and isinstance(app.source, HasCoverage):
            app.terminal.warn(partial + " (? = cannot be seen)")
        elif any(s.expected is None for s in summaries):
            app.terminal.warn("could not read Pods: EXPECTED is unknown (?)")
        if not summaries and app.output not in ("json", "yaml"):
            where = "any namespace" if app.all_namespaces else f"namespace {app.ns}"
            app.terminal.status(f"no Services found in {where}")
        return exit_status(Verdict.BROKEN if any(s.problem for s in summaries) else Verdict.OK, fail_on)

    from svcctl.ops.endpoints import analyze_service

    ns, name = split_service(service, app.namespace or "")
    report = analyze_service(app.source, ns or app.ns, name, why_not=why_not)
    from svcctl.render.endpoints import render_report  # after the reads, as above

    render_report(app, report)
    if report.findings and not why_not and app.output not in ("json", "yaml"):
        app.terminal.status(f"{len(report.findings)} finding(s); add --why-not for near misses, Events and evidence")
    return exit_status(report.verdict, fail_on)

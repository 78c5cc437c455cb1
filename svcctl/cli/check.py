"""`svcctl check [-n NS | -A] [SERVICE…]`: every check on each Service, one verdict, for CI after a deploy."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import click

from svcctl.analysis.check import (
    format_duration,
    parse_duration,
)
from svcctl.cli.app import App, complete_services, get_app, judging_options
from svcctl.cli.fleet import fleet_options
from svcctl.errors import ExitStatus, InputError
from svcctl.render.check import FORMATS

if TYPE_CHECKING:
    from rich.status import Status

from svcctl.ops.check import (  # the operation behind this command
    collect_bundle,
    make_plan,
    run_check,
)


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
@judging_options(FORMATS, extra=fleet_options)
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
    plan = make_plan(app, services, selector, fail_on, dns_flag, dns_server, cluster_domain, dns_timeout)
    plan.all_nodes, plan.parallel, plan.from_pod = all_nodes, parallel, from_pod
    plan.collect = collect_path is not None

    progress = Progress(app)
    try:
        last = run_check(app, plan, progress, wait, interval, wait_text or "")
    finally:
        progress.stop()
    report = last.report

    from svcctl.render.check import markdown, render_check

    render_check(app, report)
    if app.output not in ("json", "yaml", "junit", "github", "markdown"):
        for note in report.notes:
            click.echo(note, err=True)
    if app.output == "github" and os.environ.get("GITHUB_STEP_SUMMARY"):
        _append_step_summary(app, os.environ["GITHUB_STEP_SUMMARY"], markdown(report))
    if collect_path is not None and not report.settled:
        collect_bundle(app, last, plan, collect_path)
    return int(ExitStatus.PROBLEMS if report.failed else ExitStatus.OK)


def _append_step_summary(app: App, path: str, text: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    except OSError as e:
        app.terminal.warn(f"cannot append to $GITHUB_STEP_SUMMARY ({path}): {e.strerror}")

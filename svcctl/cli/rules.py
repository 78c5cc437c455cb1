"""`svcctl rules [SERVICE]`: what a node's kube-proxy rules do, per service port."""

from __future__ import annotations

import ipaddress
import re

import click

from svcctl.cli.app import complete_services, exit_status, get_app, judging_options
from svcctl.errors import InputError
from svcctl.findings import Verdict
from svcctl.ops.rules import read_rules, rules_namespace  # the operation behind this command


def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address (not analysis.trace's: importing the trace analysis was a tenth of a one-Service
    `rules` run's CPU time)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def service_keys(service: str, namespace: str) -> set[str]:
    """SERVICE as the parser's `only` keys: `VIP`, `VIP:port`, `[v6]:port`, `ns/name[:port]`, `name`."""
    s = service.strip()
    m = re.search(r":(\d+)$", s)
    if m and not 0 < int(m.group(1)) < 65536:
        raise InputError(f"port {m.group(1)} in {service!r} is out of range (1–65535)")
    if re.fullmatch(r"[0-9.]+(?::\d+)?", s) and s.split(":")[0].count(".") == 3 and not is_ip(s.split(":")[0]):
        raise InputError(f"{s.split(':')[0]!r} is not a valid IP address")
    if s.startswith("["):
        host, _, port = s[1:].partition("]")
        port = port.lstrip(":")
        if not is_ip(host) or (port and not port.isdigit()):
            raise InputError(f"not an address: {service!r}", hint="use [IPv6]:port")
        return {f"[{host}]:{port}"} if port else {host}
    if is_ip(s):
        return {s}
    host, _, port = s.rpartition(":")
    if host and is_ip(host) and port.isdigit():
        return {f"{host}:{port}"}
    if "/" in s:
        return {s}
    return {f"{namespace}/{s}"}


@click.command("rules")
@click.argument("service", required=False, shell_complete=complete_services)
@judging_options()
def command(service: str | None, fail_on: str) -> int:
    """What kube-proxy's rules on one node do with a packet, per service port.

    \b
    For each Service address:port: the backends it reaches and each one's share (exact fractions: iptables mode
    picks at random, not round-robin), session affinity, when traffic is masqueraded, and what happens when a
    Service has no (local) endpoints. The summary says how many rules and chains kube-proxy writes.
    SERVICE (optional) is `name`, `ns/name`, `ns/name:port`, `VIP` or `VIP:port`; exit 1 when it is not in
    the node's rules. Where the rules carry addresses only (IPVS, Cilium's service list, ...), a name needs
    cluster data (--snapshot, a kubeconfig) to map it to its addresses, else exit 2.

    \b
    Examples:
      svcctl rules --iptables-save node.txt
      svcctl rules hostnames --snapshot demo
      svcctl rules 10.0.1.175:80 --iptables-save node.txt -o json
      svcctl rules --netns node1 -o wide
    """
    from svcctl.collector import paused

    # the collector stays paused from the parse (load_node_rules pauses it) through the writing, and the rules
    # are dropped (with `_answer`'s locals) before it resumes: resumed right after the parse, its first passes
    # walked the whole dump's objects while they were being written (0.07 s of 0.7 at 10,000 IPVS Services)
    with paused():
        return _answer(service, fail_on)


def _answer(service: str | None, fail_on: str) -> int:
    from svcctl.render.rules import render_rules

    app = get_app()
    only = service_keys(service, rules_namespace(app)) if service else None
    report = read_rules(app, only, as_text=app.output == "json")
    if report.missing:
        app.terminal.warn(f"{service} is not in this node's rules ({report.rules.source})")
        if app.output in ("json", "yaml"):
            render_rules(app, report.rules)
        return exit_status(Verdict.BROKEN, fail_on)
    render_rules(app, report.rules)
    if only is None:  # a whole node's model: the OS's to reclaim when the process ends, not freed object by object
        from svcctl.collector import leave

        leave(report)
    return exit_status(Verdict.OK, fail_on)

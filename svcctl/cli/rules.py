"""`svcctl rules [SERVICE]`: what a node's kube-proxy rules do, per service port."""

from __future__ import annotations

import re

import click

from svcctl.analysis.trace import is_ip
from svcctl.cli.app import (
    complete_services,
    exit_status,
    fail_on_option,
    get_app,
    global_options,
    node_options,
    output_options,
)
from svcctl.errors import InputError
from svcctl.findings import Verdict
from svcctl.ops.rules import (  # the operation behind this command
    address_keys,
    flag_orphans,
    name_entries,
    rules_namespace,
    service_ports,
)


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
@fail_on_option
@global_options
@output_options()
@node_options
def command(service: str | None, fail_on: str) -> int:
    """What kube-proxy's rules on one node do with a packet, per service port.

    \b
    For each Service address:port: the backends it reaches and each one's share (exact fractions: iptables mode
    picks at random, not round-robin), session affinity, when traffic is masqueraded, and what happens when a
    Service has no (local) endpoints. The summary says how many rules and chains kube-proxy writes.
    SERVICE (optional) is `name`, `ns/name`, `ns/name:port`, `VIP` or `VIP:port`; exit 1 when it is not in
    the node's rules.

    \b
    Examples:
      svcctl rules --iptables-save node.txt
      svcctl rules hostnames --snapshot demo
      svcctl rules 10.0.1.175:80 --iptables-save node.txt -o json
      svcctl rules --netns node1 -o wide
    """
    from svcctl.render.rules import render_rules

    app = get_app()
    only = service_keys(service, rules_namespace(app)) if service else None
    named = service_ports(app, only) if only else []
    if named and only is not None:
        only |= set(address_keys(named))
    dumps = app.node_dumps(app.node_inputs.node, only=only)
    if dumps is None or not dumps:
        raise InputError("no node rules to read",
                         hint="give --iptables-save FILE (or --ipvsadm / --nft), --netns NAME, --local-node, "
                              "or --snapshot with nodes/<node>/ dumps")
    app.terminal.debug(f"node dumps: {', '.join(f'{k} from {v}' for k, v in dumps.origins.items())}")
    rules = app.load_rules(dumps, mode=app.node_inputs.mode, only=only)
    if any(e.name is None or e.kind == "ExternalIP" for e in rules.services):
        name_entries(rules, named if only is not None else service_ports(app, None))
    if any(not e.kind_known for e in rules.services) and app.has_cluster and (
            app.snapshot or app.kubeconfig or app.context):
        # IPVS without `ipset list`: the cluster's Services say what each virtual server is
        from svcctl.analysis.ways import classify_entries
        from svcctl.errors import SvcctlError

        try:
            classify_entries(rules.services, app.source.list_services(None))
        except SvcctlError as err:
            app.terminal.debug(f"virtual server kinds not settled: {err.message}")
    if only is None and rules.mode == "iptables":
        flag_orphans(app, rules)
    if only is not None:
        from svcctl.dataplane.model import in_scope

        rules.services = [s for s in rules.services if in_scope(s, only)]
        if not rules.services:
            app.terminal.warn(f"{service} is not in this node's rules ({rules.source})")
            if app.output in ("json", "yaml"):
                render_rules(app, rules)
            return exit_status(Verdict.BROKEN, fail_on)
    render_rules(app, rules)
    return exit_status(Verdict.OK, fail_on)

"""`svcctl trace TARGET`: gather every piece of one request's path, judge each hop, render."""

from __future__ import annotations

import click

from svcctl.cli.app import complete_services, exit_status, get_app, judging_options
from svcctl.cli.fleet import fleet_options
from svcctl.ops.fleet import run_fleet
from svcctl.ops.trace import (  # the operation behind this command
    build_trace,
    fleet_service,
)


@click.command("trace")
@click.argument("target", shell_complete=complete_services)
@click.option("--port", "port_flag", metavar="PORT", help="Service port by number or name (default: every port).")
@click.option("--protocol", "protocol_flag", type=click.Choice(["tcp", "udp", "sctp"], case_sensitive=False),
              help="Only this protocol (also `IP:port/udp`, `udp://name:53`); default: each protocol of the port "
                   "as its own entry.")
@click.option("--from-pod", metavar="POD", help="Trace from this Pod: its node's rules, its namespace's DNS search, "
              "its NetworkPolicy egress.")
@click.option("--from", "from_", metavar="IP|NS/POD|node/NAME",
              help="Where the request starts (default: a Pod on the traced node): decides loadBalancerSourceRanges, "
                   "externalTrafficPolicy Local's short-circuit, masquerade, hairpin, and (an IP) what NetworkPolicy "
                   "ipBlocks are matched against. NS/POD also implies --from-pod.")
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--dns-server", metavar="IP[:PORT]", help="Query this DNS server (default: the kube-dns Service, "
              "live only).")
@click.option("--resolv-conf", metavar="FILE", help="A Pod's /etc/resolv.conf contents to resolve with.")
@click.option("--no-dns", is_flag=True, help="Skip the DNS hop.")
@click.option("--dns-timeout", type=float, default=2.0, show_default=True)
@click.option("--dns-anyway", is_flag=True, help="Query DNS even when the --from-pod client's NetworkPolicy Egress "
              "blocks port 53 (by default the DNS hop then says so at once and sends nothing).")
@click.option("--probe", "probe_count", type=click.IntRange(1, 10000), metavar="N",
              help="Opt-in: send N connections (HTTP GETs) to VIP:port from here (or inside --netns) and report who "
                   "answered.")
@click.option("--probe-tcp", is_flag=True, help="Probe with bare TCP connects instead of HTTP GETs.")
@judging_options(extra=fleet_options)
def command(target: str, port_flag: str | None, protocol_flag: str | None, from_pod: str | None,
            from_: str | None, cluster_domain: str,
            dns_server: str | None, resolv_conf: str | None, no_dns: bool, dns_timeout: float,
            dns_anyway: bool, probe_count: int | None, probe_tcp: bool, fail_on: str, all_nodes: bool, parallel: int) -> int:
    """Follow one request from the name a client typed to the Pod that answers.

    \b
    TARGET is a Service (`name`, `ns/name`), a DNS name (`hostnames.default.svc.cluster.local`),
    `VIP:port`, any way in (`NODE_IP:NODE_PORT`, `127.0.0.1:NODE_PORT`, an externalIP or load-balancer
    IP with its port), optionally with a protocol (`10.96.0.10:53/udp`, `udp://kube-dns.kube-system:53`),
    or a URL (`http://hostnames.default:80/`). Hops: DNS → Service → node rules
    (iptables, IPVS or nftables) → endpoints → drift → NetworkPolicy (--from-pod, --from) → selected
    endpoint (conntrack, --probe).
    Exit 1 when the verdict is broken: a broken hop or any error finding (--fail-on warning: any warning).

    \b
    Examples:
      svcctl trace hostnames --snapshot demo
      svcctl trace 10.0.1.175:80 --iptables-save node.txt
      svcctl trace http://hostnames.default/ --netns node1 --probe 200
    """
    app = get_app()
    if all_nodes:
        return run_fleet(app, [fleet_service(app, target, cluster_domain)], parallel, fail_on)
    from_ip: str | None = None
    if from_ is not None:
        from svcctl.analysis.source import parse_from

        try:
            kind, ns, name = parse_from(from_)
        except ValueError as e:
            raise click.BadParameter(str(e).split(": ", 1)[-1], param_hint="--from") from None
        if kind == "pod" and from_pod is None:
            from_pod = f"{ns}/{name}"
        from_ip = name if kind == "ip" else None  # NetworkPolicy ipBlocks are matched against an IP
    tr = build_trace(app, target, port_flag=port_flag, protocol=protocol_flag, from_pod=from_pod, from_=from_,
                     cluster_domain=cluster_domain,
                     dns_server=dns_server, resolv_conf=resolv_conf, no_dns=no_dns, dns_timeout=dns_timeout,
                     probe_count=probe_count, probe_http=not probe_tcp, from_ip=from_ip,
                     dns_anyway=dns_anyway)
    from svcctl.render.trace import render_trace

    render_trace(app, tr)
    return exit_status(tr.verdict, fail_on)

"""`svcctl dns NAME`: resolve a name the way a Pod would, and compare the answer with what the API says."""

from __future__ import annotations

import click

from svcctl.cli.app import exit_status, fail_on_option, get_app, global_options, output_options


@click.command("dns")
@click.argument("name")
@click.option("--dns-server", metavar="IP[:PORT]",
              help="Ask this server; several comma-separated are tried in order (default: the resolv.conf's "
                   "nameservers, else the kube-dns Service's ClusterIP).")
@click.option("--resolv-conf", metavar="FILE", type=click.Path(dir_okay=False),
              help="A Pod's /etc/resolv.conf: its nameserver, search list and ndots/timeout/attempts.")
@click.option("--cluster-domain", default="cluster.local", show_default=True, metavar="DOMAIN",
              help="The cluster's DNS domain (the kubelet's --cluster-domain).")
@click.option("--type", "rtype", type=click.Choice(["A", "AAAA", "SRV", "ANY"], case_sensitive=False),
              help="Record type (default: by the Service's ipFamilies; SRV for _port._proto names; ANY = A+AAAA).")
@click.option("--dns-timeout", type=click.FloatRange(0.05, 60), metavar="SECONDS",
              help="Seconds to wait for each answer (default: resolv.conf's timeout, else 2).")
@click.option("--dns-attempts", type=click.IntRange(1, 5), metavar="N",
              help="Rounds over the servers (default: resolv.conf's attempts, else 2).")
@click.option("--no-control", is_flag=True, help="Do not send the kubernetes.default control query on failure.")
@fail_on_option
@global_options
@output_options()
def command(name: str, dns_server: str | None, resolv_conf: str | None, cluster_domain: str, rtype: str | None,
            dns_timeout: float | None, dns_attempts: int | None, no_control: bool, fail_on: str) -> int:
    """Resolve NAME as a Pod in the -n namespace would, and compare with the records the API implies.

    \b
    NAME is `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local[.]`, a Pod record
    `host.svc.ns.svc.cluster.local`, or an SRV name `_port._proto.svc.ns.svc.cluster.local`.
    The search list is `<ns>.svc.<domain> svc.<domain> <domain>` with ndots:5 unless --resolv-conf
    says otherwise. With --snapshot and no --dns-server nothing is sent: the expected records are shown.
    Exit 1 when a finding of severity error exists (NXDOMAIN, mismatch, timeout, unreachable server).

    \b
    Examples:
      svcctl dns hostnames --snapshot demo
      svcctl dns hostnames.default -n other --dns-server 10.96.0.10
      svcctl dns _http._tcp.web.shop.svc.cluster.local --resolv-conf pod-resolv.conf
    """
    from svcctl.ops.dns import resolve_name
    from svcctl.render.dns import render_dns

    app = get_app()
    report = resolve_name(app, name, cluster_domain=cluster_domain, server=dns_server, resolv_conf=resolv_conf,
                          rtype=rtype, timeout=dns_timeout, attempts=dns_attempts, control=not no_control)
    render_dns(app, report)
    return exit_status(report.verdict, fail_on)

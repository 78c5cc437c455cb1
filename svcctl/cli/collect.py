"""`svcctl collect -o bundle.tar.gz [-n NS | -A] [SERVICE…]`: save what svcctl reads, to replay with --snapshot."""

from __future__ import annotations

import click

from svcctl.cli.app import complete_services, get_app, global_options, node_options
from svcctl.errors import ExitStatus, InputError
from svcctl.sources.base import CountsRequests
from svcctl.sources.bundle import write_bundle


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
    from svcctl.ops.collect import collect

    bundle = collect(app, services, node_rules)
    src = app.source
    size = write_bundle(out, bundle)
    counts = ", ".join(f"{n} {k}{'' if n == 1 else 's'}" for k, n in bundle.counts().items()) or "no objects"
    cost = ""
    if isinstance(src, CountsRequests):
        cost = f" ({src.requests} API requests, {src.bytes_read} bytes read)"
    app.terminal.status(f"wrote {out}: {counts}, {size} bytes{cost}")
    return int(ExitStatus.OK)

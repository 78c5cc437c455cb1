"""Entry points: `svcctl`, `kubectl-svcctl` (as `kubectl svcctl`), and kubectl's completion hook.

Commands are imported only when run, so `svcctl --help` and snapshot commands never import the kubernetes client.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

import click

from svcctl import __version__
from svcctl.cli.app import App, global_options
from svcctl.errors import ExitStatus, SvcctlError

COMMANDS: dict[str, tuple[str, str]] = {
    "trace": ("svcctl.cli.trace", "Follow one request: DNS, Service, node rules, endpoints, Pod."),
    "endpoints": ("svcctl.cli.endpoints", "List a Service's endpoints; --why-not explains missing Pods."),
    "rules": ("svcctl.cli.rules", "What a node's kube-proxy rules do, per service port."),
    "dns": ("svcctl.cli.dns", "Resolve a Service the way a Pod would and compare with the API."),
    "check": ("svcctl.cli.check", "Run every check on Services: the CI step."),
    "collect": ("svcctl.cli.collect", "Write a snapshot bundle from a live cluster."),
    "completion": ("svcctl.cli.completion", "Print a shell completion script."),
}

EPILOG = """\b
Examples:
  {prog} trace hostnames --snapshot demo        the whole story of the demo Service
  {prog} endpoints hostnames --why-not          why each Pod is or is not behind it
  {prog} rules --iptables-save node.txt         what kube-proxy wrote on a node
  {prog} trace 10.0.1.175:80 --iptables-save node.txt   no cluster needed
  {prog} check -A --fail-on warning -o junit    the CI step after a deploy

\b
Exit codes:
  0  nothing wrong found
  1  problems found
  2  usage or input error (bad flags, unreadable or malformed files, unknown Service)
  3  could not reach or read the cluster or node (unreachable, 401/403, timeout)
  4  internal error (a bug in svcctl; run with -v and report it)
"""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        mod = importlib.import_module(COMMANDS[name][0])
        cmd: click.Command = mod.command
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # short help without importing every command module
        with formatter.section("Commands"):
            formatter.write_dl([(n, h) for n, (_, h) in COMMANDS.items()])


@click.group(cls=LazyGroup, epilog=EPILOG.format(prog="svcctl"),
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="svcctl", message="%(prog)s %(version)s")
@global_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Where does a request to this Service actually go, and why is my Pod not behind it?

    svcctl traces a request through DNS, the Service's VIP, kube-proxy's rules on a node (iptables, IPVS or
    nftables mode) to the endpoint and its Pod, and explains, with the EndpointSlice controller's own rules,
    every Pod that is missing from or not ready in a Service's endpoints. It only ever reads.
    """
    app = ctx.ensure_object(App)
    if ctx.info_name and ctx.info_name.startswith("kubectl"):
        app.prog_name = "kubectl svcctl"


def _print_traceback() -> None:
    """The exception being handled, on stderr (-v): `traceback` is imported only then (≈ 5 ms of every start)."""
    import traceback

    traceback.print_exc(file=sys.stderr)


def _report(err: SvcctlError, verbose: int) -> None:
    line = f"error: {err.message}"
    if err.hint:
        line += f" (hint: {err.hint})"
    if verbose:
        _print_traceback()
    click.echo(line, err=True)


def run(prog_name: str, args: list[str] | None = None) -> int:
    """Run the CLI and map every outcome onto an ExitStatus; never let a traceback out without -v."""
    argv = sys.argv[1:] if args is None else args
    verbose = sum(a.count("v") for a in argv if a.startswith("-") and not a.startswith("--") and set(a[1:]) <= {"v"})
    verbose += argv.count("--verbose")
    app = App(prog_name=prog_name)
    if os.environ.get("_SVCCTL_COMPLETE"):  # a shell asking for completions: svcctl's own fish protocol
        from svcctl.cli.complete import register_shells

        register_shells()
    if prog_name.startswith("kubectl"):
        cli.epilog = EPILOG.format(prog=prog_name)
    try:
        rv = cli.main(args=argv, prog_name=prog_name, standalone_mode=False, obj=app)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort (after a newline)
            click.echo("interrupted", err=True)
            return int(ExitStatus.INTERRUPTED)
        click.echo("aborted", err=True)
        return int(ExitStatus.USAGE)
    except click.ClickException as e:
        e.show()
        return int(ExitStatus.USAGE)
    except SvcctlError as e:
        _report(e, max(verbose, app.verbose))
        return int(e.status)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        # stdout closed early (`| head`): not an error of ours
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, traceback only with -v
        if max(verbose, app.verbose):
            _print_traceback()
        click.echo(f"internal error: {type(e).__name__}: {e} (run with -v for the traceback)", err=True)
        return int(ExitStatus.INTERNAL)
    return int(rv) if isinstance(rv, int) else 0


def main() -> None:
    from svcctl import collector

    collector.ENDS_AFTER = True  # the process ends after this command: what it leaves is the OS's to reclaim
    collector.end(run("svcctl"))


def kubectl_main() -> None:
    from svcctl import collector

    collector.ENDS_AFTER = True
    collector.end(run("kubectl svcctl"))


def kubectl_complete_main() -> None:
    """kubectl calls `kubectl_complete-svcctl __complete ARGS…` for plugin completion (cobra protocol)."""
    from svcctl.cli.complete import cobra_complete

    sys.exit(cobra_complete(cli, sys.argv[1:]))



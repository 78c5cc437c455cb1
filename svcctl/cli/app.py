"""The one `App` object on the click context, and the option decorators every command shares.

Global options are accepted before or after the subcommand (kubectl's habit): the same decorator is put on the
group and on each command, and every copy writes into the one App.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from svcctl.lazydc import dataclass, field
from svcctl.sources.inputs import NodeInputs

if TYPE_CHECKING:
    from svcctl.dataplane.model import NodeRules
    from svcctl.findings import Verdict
    from svcctl.model import EndpointSlice, Service
    from svcctl.render.console import Terminal
    from svcctl.sources.base import ClusterSource, NodeDumps

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "wide", "json", "yaml")


@dataclass
class App:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    output: str = "table"
    no_headers: bool = False
    request_timeout: float = 30.0
    color: bool | None = None
    verbose: int = 0
    snapshot: str | None = None
    node_inputs: NodeInputs = field(default_factory=NodeInputs)
    prog_name: str = "svcctl"
    _source: ClusterSource | None = None
    _terminal: Terminal | None = None
    _said: set[str] = field(default_factory=set)  # reading notes already printed

    @property
    def terminal(self) -> Terminal:
        if self._terminal is None:
            from svcctl.render.console import Terminal

            self._terminal = Terminal(color=self.color, verbose=self.verbose)
        return self._terminal

    @property
    def has_cluster(self) -> bool:
        """False when the user gave node input only and no snapshot or kubeconfig: no cluster is needed."""
        if self.snapshot or self.kubeconfig or self.context:
            return True
        return not self.node_inputs.any_given

    @property
    def source(self) -> ClusterSource:
        if self._source is None:
            if self.snapshot:
                from svcctl.sources.snapshot import SnapshotSource

                self._source = SnapshotSource(self.snapshot, default_ns=self.namespace)
            else:
                from svcctl.sources.live import LiveSource

                self._source = LiveSource.from_options(self.kubeconfig, self.context, self.request_timeout,
                                                       self.terminal.debug if self.verbose else None)
        return self._source

    def reset_source(self) -> None:
        """Forget the source, so the next use re-reads the snapshot or reconnects (`check --wait`)."""
        src, self._source = self._source, None
        from svcctl.sources.base import Closeable

        if isinstance(src, Closeable):
            src.close()

    @property
    def ns(self) -> str:
        """The namespace a command works in: -n, else the source's default (context, service account)."""
        return self.namespace or self.source.default_namespace()

    @property
    def ns_or_all(self) -> str | None:
        return None if self.all_namespaces else self.ns

    def node_dumps(self, node: str | None = None, only: set[str] | None = None,
                   services: list[tuple[Service, list[EndpointSlice] | None]] | None = None,
                   whole_json: bool = False) -> NodeDumps | None:
        """Node command output from files, a netns, this machine, a snapshot, or kube-proxy exec (`only`: the
        one Service asked about, so big dump files are streamed for it instead of read whole; `services`: that
        Service, so kube-proxy exec reads only its rules; `whole_json`: only the whole dump's JSON is wanted)."""
        from svcctl.sources.node import gather_node_dumps

        return gather_node_dumps(self, node, only, services, whole_json=whole_json)

    def node_rules(self, node: str | None = None) -> NodeRules | None:
        dumps = self.node_dumps(node)
        if dumps is None or not dumps:
            return None
        return self.load_rules(dumps, mode=self.node_inputs.mode)

    def load_rules(self, dumps: NodeDumps, mode: str | None = None, only: set[str] | None = None) -> NodeRules:
        """load_node_rules, then what pasted files held and skipped (line ranges, on stderr): said only once
        the rules were read, so a malformed paste is still one error line."""
        from svcctl.dataplane import load_node_rules

        rules = load_node_rules(dumps, mode=mode, only=only)
        for note in dumps.reading_notes:
            if note not in self._said:
                self._said.add(note)
                self.terminal.status(note)
        return rules


def get_app() -> App:
    return click.get_current_context().ensure_object(App)


def _setter(attr: str, *, sub: str | None = None) -> Callable[..., Any]:
    """A callback that stores an option in the App; unset values (None, False, 0) never override set ones."""

    def cb(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or (value is False and attr != "color") or (attr == "verbose" and value == 0):
            return value
        app = ctx.ensure_object(App)
        if attr == "verbose":
            app.verbose = max(app.verbose, int(value))
        else:
            setattr(app.node_inputs if sub == "node" else app, attr, value)
        return value

    return cb


def parse_request_timeout(text: str) -> float:
    """kubectl's --request-timeout: `0` (no timeout), a bare number of seconds, or a duration (`2s`, `1m`)."""
    from svcctl.durations import parse_duration

    return parse_duration(text)


def _request_timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return value
    try:
        seconds = parse_request_timeout(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration (kubectl's forms: 0, 30, 2s, 1m)",
                                 ctx=ctx, param=param) from None
    ctx.ensure_object(App).request_timeout = seconds
    return value


def global_options(f: F) -> F:
    """kubectl's global flags, plus --snapshot and -v; valid before and after the subcommand."""
    opts = [
        click.option("--kubeconfig", metavar="FILE", type=click.Path(readable=False), expose_value=False, callback=_setter("kubeconfig"),
                     help="Path to one kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)."),
        click.option("--context", metavar="NAME", expose_value=False, callback=_setter("context"),
                     shell_complete=_complete_contexts, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", metavar="NS", expose_value=False, callback=_setter("namespace"),
                     shell_complete=_complete_namespaces, help="Namespace (default: the context's, then default)."),
        click.option("-A", "--all-namespaces", is_flag=True, default=False, expose_value=False,
                     callback=_setter("all_namespaces"), help="Look in every namespace."),
        click.option("--request-timeout", metavar="DURATION", expose_value=False, callback=_request_timeout,
                     help="Timeout for each API request, as kubectl takes it: 0 (none), 30 (seconds), 2s, 1m "
                          "(default 30s)."),
        click.option("--snapshot", metavar="PATH", type=click.Path(readable=False), expose_value=False, callback=_setter("snapshot"),
                     help="Read a snapshot (file, directory, .tar.gz, or `demo`) instead of a live cluster."),
        click.option("--color/--no-color", default=None, expose_value=False, callback=_setter("color"),
                     help="Colour output (default: only on a terminal without NO_COLOR)."),
        click.option("-v", "--verbose", count=True, expose_value=False, callback=_setter("verbose"),
                     help="Debug detail on stderr; tracebacks on errors."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def output_options(formats: tuple[str, ...] = OUTPUT_FORMATS) -> Callable[[F], F]:
    def deco(f: F) -> F:
        f = click.option("-o", "--output", type=click.Choice(formats), expose_value=False,
                         callback=_setter("output"), help="Output format.")(f)
        f = click.option("--no-headers", is_flag=True, default=False, expose_value=False,
                         callback=_setter("no_headers"), help="Omit table headers.")(f)
        return f

    return deco


class ModeChoice(click.Choice):  # type: ignore[type-arg]
    """`--mode`: the registry's modes when asked, so a mode registered after import is a choice too."""

    def __init__(self) -> None:
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        from svcctl.dataplane.modes import names

        return names()

    @choices.setter
    def choices(self, value: Any) -> None:  # click's __init__ assigns it; the registry is the truth
        pass


def _dump_setter(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    """--dump KEY=FILE (repeatable): the key is a registered mode's dump (`svcctl rules --help` lists them)."""
    if not value:
        return
    from svcctl.dataplane.modes import all_dumps

    known = {d.key for d in all_dumps()}
    app = ctx.ensure_object(App)
    for item in value:
        key, sep, path = item.partition("=")
        if not sep or not path:
            raise click.BadParameter(f"{item!r} is not KEY=FILE", param=param)
        if key not in known:
            raise click.BadParameter(f"unknown dump {key!r} (known: {', '.join(sorted(known))})", param=param)
        app.node_inputs.dumps[key] = path


def fail_on_option(f: F) -> F:
    """`--fail-on`, the same on every command that judges: which verdict makes the exit status 1."""
    from svcctl.findings import FAIL_ON_CHOICES

    return click.option("--fail-on", type=click.Choice(FAIL_ON_CHOICES), default="error", show_default=True,
                        help="What makes the exit status 1: any error finding (a broken verdict), any warning "
                             "or error, or never.")(f)


class Decorator(Protocol):
    """An option decorator: gives back the command function it was given, typed as it was."""

    def __call__(self, f: F, /) -> F: ...


def judging_options(formats: tuple[str, ...] = OUTPUT_FORMATS, *, extra: Decorator | None = None) -> Decorator:
    """Every judging command's options, in one order: --fail-on, then `extra` (a command's own group, such as
    the fleet options), the global flags, -o/--no-headers and the node inputs."""
    def deco(f: F) -> F:
        f = global_options(output_options(formats)(node_options(f)))
        if extra is not None:
            f = extra(f)
        return fail_on_option(f)

    return deco


def exit_status(verdict: Verdict, fail_on: str) -> int:
    """The one exit model: 1 when the verdict fails `--fail-on`, else 0 (`svcctl.findings.exit_for`)."""
    from svcctl.findings import exit_for

    return int(exit_for(verdict, fail_on))


def node_options(f: F) -> F:
    """Node inputs, the same on every command. FILE may be `-` for stdin."""
    opts = [
        click.option("--iptables-save", metavar="FILE", type=click.Path(readable=False), expose_value=False,
                     callback=_setter("iptables_save", sub="node"), help="iptables-save output (`-` = stdin)."),
        click.option("--ip6tables-save", metavar="FILE", type=click.Path(readable=False), expose_value=False,
                     callback=_setter("ip6tables_save", sub="node"), help="ip6tables-save output."),
        click.option("--ipvsadm", metavar="FILE", type=click.Path(readable=False), expose_value=False, callback=_setter("ipvsadm", sub="node"),
                     help="`ipvsadm -Ln` (or -S -n, -Lnc) output."),
        click.option("--nft", metavar="FILE", type=click.Path(readable=False), expose_value=False, callback=_setter("nft", sub="node"),
                     help="`nft list table ip kube-proxy` output (text or -j JSON)."),
        click.option("--conntrack", metavar="FILE", type=click.Path(readable=False), expose_value=False, callback=_setter("conntrack", sub="node"),
                     help="`conntrack -L` output: live flows and the backend each went to."),
        click.option("--ipset", metavar="FILE", type=click.Path(readable=False), expose_value=False, callback=_setter("ipset", sub="node"),
                     help="`ipset list` output (IPVS mode)."),
        click.option("--ip-addr", metavar="FILE", type=click.Path(readable=False), expose_value=False, callback=_setter("ip_addr", sub="node"),
                     help="`ip addr show kube-ipvs0` output (IPVS mode)."),
        click.option("--cilium", metavar="FILE", type=click.Path(readable=False), expose_value=False,
                     callback=_setter("cilium", sub="node"),
                     help="Cilium agent output: `cilium-dbg service list` (or `cilium service list`, -o json) "
                          "and/or `cilium-dbg bpf lb list [--revnat]`, several concatenated."),
        click.option("--calico-nat", metavar="FILE", type=click.Path(readable=False), expose_value=False,
                     callback=_setter("calico_nat", sub="node"),
                     help="`calico-node -bpf nat dump` output (Calico eBPF dataplane)."),
        click.option("--netns", metavar="NAME", expose_value=False, callback=_setter("netns", sub="node"),
                     help="Read rules inside this network namespace (read-only commands)."),
        click.option("--local-node", is_flag=True, default=False, expose_value=False,
                     callback=_setter("local", sub="node"), help="Read this machine's own rules (read-only)."),
        click.option("--node", metavar="NAME", expose_value=False, callback=_setter("node", sub="node"),
                     shell_complete=_complete_nodes, help="The node whose rules to read."),
        click.option("--dump", "dump_files", metavar="KEY=FILE", multiple=True, expose_value=False,
                     callback=_dump_setter,
                     help="Any dump by its key (`iptables`, `ipvs`, `nftables`, `cilium`, `calico-nat`, … or a "
                          "mode added later), as in a snapshot's nodes/<node>/; repeatable."),
        click.option("--mode", type=ModeChoice(), expose_value=False,
                     callback=_setter("mode", sub="node"),
                     help="kube-proxy mode, or the dataplane replacing it (default: detected)."),
        click.option("--no-exec", is_flag=True, default=False, expose_value=False,
                     callback=_setter("no_exec", sub="node"),
                     help="Never exec into kube-proxy Pods to read a node's rules."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


# ---------------------------------------------------------------- dynamic completion (short timeout, no tracebacks)


def _complete(kind: str, incomplete: str, ctx: click.Context | None = None) -> list[Any]:
    from svcctl.cli.complete import complete_names

    if ctx is None:
        return complete_names(kind, incomplete)
    # click calls completion functions outside any `with ctx`: push it so get_current_context() finds the App
    with ctx.scope(cleanup=False):
        return complete_names(kind, incomplete)


def _complete_contexts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return _complete("context", incomplete, ctx)


def _complete_namespaces(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return _complete("namespace", incomplete, ctx)


def _complete_nodes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return _complete("node", incomplete, ctx)


def complete_services(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return _complete("service", incomplete, ctx)


def env_no_color() -> bool:
    return "NO_COLOR" in os.environ

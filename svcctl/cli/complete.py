"""Dynamic shell completion: Service, namespace, context and node names, and kubectl's plugin protocol.

Completion runs on every <TAB>, so it must be quick and silent: it reads the flags given earlier on the line
(through the App the partially parsed context built), asks the source with a 2-second request timeout and an
overall deadline, and on any failure returns nothing rather than printing a word to stdout or stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from svcctl.model import Service
    from svcctl.ops.context import Context as App



def _app_class() -> type[Any]:
    """The CLI's App class. svcctl.cli.app imports this module, so this one does not import it back: whatever
    runs a completion has loaded it already (the group's options live there)."""
    mod = sys.modules.get("svcctl.cli.app")
    if mod is None:
        raise RuntimeError("svcctl.cli.app is not loaded")
    cls: type[Any] = mod.App
    return cls

KINDS = ("service", "namespace", "context", "node")
REQUEST_TIMEOUT = 2.0  # seconds, per API request
DEADLINE = 4.0  # seconds for the whole lookup; then completion gives up silently

# cobra's ShellCompDirective values (kubectl plugin completion passes them through)
DIRECTIVE_ERROR = 1
DIRECTIVE_NO_SPACE = 2
DIRECTIVE_NO_FILE_COMP = 4
DIRECTIVE_FILTER_DIRS = 16
DIRECTIVE_DEFAULT = 0


def _app() -> Any:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    cls = _app_class()
    app = ctx.find_object(cls)
    return app if app is not None else ctx.ensure_object(cls)


def _services(app: App, incomplete: str) -> list[CompletionItem]:
    src = app.source
    if "/" in incomplete:  # ns/name: complete names within that namespace
        ns, _, _ = incomplete.partition("/")
        return [CompletionItem(f"{s.meta.namespace}/{s.meta.name}", help=_svc_help(s))
                for s in src.list_services(ns)]
    if app.all_namespaces:
        return [CompletionItem(f"{s.meta.namespace}/{s.meta.name}", help=_svc_help(s))
                for s in src.list_services(None)]
    return [CompletionItem(s.meta.name, help=_svc_help(s)) for s in src.list_services(app.ns)]


def _svc_help(s: Service) -> str:
    if s.type == "ExternalName":
        return f"ExternalName {s.external_name}"
    return f"{s.type} {s.cluster_ip}".strip()


def _namespaces(app: App, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(n) for n in app.source.namespaces()]


def _nodes(app: App, incomplete: str) -> list[CompletionItem]:
    names = {n.meta.name for n in app.source.list_nodes()}
    from svcctl.sources.base import RecordedDumps

    if isinstance(app.source, RecordedDumps):
        names |= set(app.source.dumps)  # snapshot node dumps, even without a Node object
    return [CompletionItem(n) for n in sorted(names)]


def _contexts(app: App, incomplete: str) -> list[CompletionItem]:
    try:
        from svcctl.sources.kubeconfig import context_names
    except ImportError:  # pragma: no cover - the kubeconfig module ships with svcctl
        return []
    return [CompletionItem(n) for n in context_names(app.kubeconfig)]


_LISTERS: dict[str, Callable[[App, str], list[CompletionItem]]] = {
    "service": _services, "namespace": _namespaces, "context": _contexts, "node": _nodes,
}


def complete_names(kind: str, incomplete: str) -> list[CompletionItem]:
    """Names of `kind` that start with `incomplete`, from the source the line names; [] on any failure."""
    lister = _LISTERS.get(kind)
    if lister is None:
        return []
    app = _app()
    if app is None:
        return []
    app.request_timeout = min(app.request_timeout, REQUEST_TIMEOUT)
    found: list[CompletionItem] = []

    def work() -> None:
        with contextlib.suppress(BaseException):
            found.extend(lister(app, incomplete))

    # nothing may reach the terminal: a warning on stderr would be drawn into the user's command line
    t = threading.Thread(target=work, name="svcctl-complete", daemon=True)
    sink = io.StringIO()
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            t.start()
            t.join(DEADLINE)
    finally:
        logging.disable(before)
    if t.is_alive():
        return []
    seen: set[str] = set()
    out: list[CompletionItem] = []
    for item in sorted(found, key=lambda i: str(i.value)):
        v = str(item.value)
        if v.startswith(incomplete) and v not in seen:
            seen.add(v)
            out.append(item)
    return out


# ------------------------------------------------------------------------------------------------ fish

# svcctl's own fish protocol, so the installed script and the running svcctl agree whatever click version is
# installed (click 8.4.0/8.4.1 emit a fish script that splits on an unquoted newline: pallets/click#3502).
# One line per candidate, `type,value<TAB>help`; the script splits at the first comma only.
FISH_SOURCE = """\
function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \
COMP_CWORD=(commandline -t) %(prog_name)s);

    for completion in $response;
        set -l metadata (string split -m 1 "," $completion);

        if test $metadata[1] = "dir";
            __fish_complete_directories $metadata[2];
        else if test $metadata[1] = "file";
            __fish_complete_path $metadata[2];
        else if test $metadata[1] = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)";
"""


def register_shells() -> None:
    """Replace click's fish class with svcctl's (call before click dispatches `_SVCCTL_COMPLETE`)."""
    from click.shell_completion import FishComplete, add_completion_class

    class SvcctlFishComplete(FishComplete):
        source_template = FISH_SOURCE

        def format_completion(self, item: CompletionItem) -> str:
            value = " ".join(str(item.value).splitlines())
            if item.help:
                return f"{item.type},{value}\t{' '.join(item.help.split())}"
            return f"{item.type},{value}"

    add_completion_class(SvcctlFishComplete, "fish")


# ------------------------------------------------------------------------------------------------ kubectl plugin


def cobra_complete(cli: click.Command, argv: list[str]) -> int:
    """Answer `kubectl svcctl <TAB>` the way a cobra program answers `__complete`.

    kubectl runs `kubectl_complete-svcctl ARGS… TOCOMPLETE` (a leading `__complete` / `__completeNoDesc`, as a
    cobra binary is called, is accepted too) and reads one candidate per line, `value<TAB>description`, then a
    last line `:<directive>`."""
    import sys


    args = list(argv)
    describe = True
    if args and args[0] in ("__complete", "__completeNoDesc"):
        describe = args[0] == "__complete"
        args = args[1:]
    incomplete = args[-1] if args else ""
    args = args[:-1]
    lines: list[str] = []
    directive = DIRECTIVE_NO_FILE_COMP
    sink = io.StringIO()
    try:
        from click.shell_completion import ShellComplete

        comp = ShellComplete(cli, {"obj": _app_class()(prog_name="kubectl svcctl")}, "kubectl svcctl",
                             "_SVCCTL_COMPLETE")
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            items = comp.get_completions(args, incomplete)
        for item in items:
            if item.type == "file":
                directive = DIRECTIVE_DEFAULT
                continue
            if item.type == "dir":
                directive = DIRECTIVE_FILTER_DIRS
                continue
            value = str(item.value)
            if describe and item.help:
                lines.append(f"{value}\t{_one_line(item.help)}")
            else:
                lines.append(value)
    except (Exception, SystemExit):  # noqa: BLE001 - completion must never print a traceback
        lines, directive = [], DIRECTIVE_ERROR
    sys.stdout.write("".join(f"{line}\n" for line in lines) + f":{directive}\n")
    sys.stdout.flush()
    return 0


def _one_line(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= 80 else first[:77] + "..."

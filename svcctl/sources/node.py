"""Where a node's rules come from: files, a network namespace, this machine, a snapshot, or kube-proxy exec.

Only commands from a fixed allow-list are ever run, as argv lists, and all of them only read. The one shell
is kube-proxy's own `sh -c` for a round of targeted reads batched into one exec (sources/batch.py): its script
is composed only from allow-listed argvs, every word quoted, never free-form.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from svcctl.dataplane import modes
from svcctl.errors import ClusterError, ForbiddenError, InputError
from svcctl.lazyre import LazyPattern
from svcctl.sources.base import ExecStatus, KubeProxyExec, NodeDumps, RecordedDumps
from svcctl.sources.inputs import NodeInputs as NodeInputs  # re-exported

if TYPE_CHECKING:
    from svcctl.model import EndpointSlice, Service
    from svcctl.sources.base import ClusterSource, Reporter

# key -> argv: the only commands svcctl runs on a node (every mode's read-only commands, from the registry)
ALLOWED_COMMANDS: dict[str, tuple[str, ...]] = modes.allowed_commands()
COMMAND_TIMEOUT = 60.0
_NETNS_NAME = LazyPattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


class NodeReadContext(Protocol):
    """What reading a node's rules needs to know (the CLI's App is one): the inputs given, whether there is a
    cluster or snapshot, the source, and where to report."""

    @property
    def node_inputs(self) -> NodeInputs: ...

    @property
    def has_cluster(self) -> bool: ...

    @property
    def snapshot(self) -> str | None: ...

    @property
    def source(self) -> ClusterSource: ...

    @property
    def terminal(self) -> Reporter: ...


class CommandFailed(Exception):
    def __init__(self, argv: list[str], message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.argv = argv
        self.message = message
        self.missing = missing


def run_allowed(key: str, netns: str | None = None, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run one allow-listed read-only command (inside `netns` when given) and return its stdout."""
    if key not in ALLOWED_COMMANDS:
        raise ValueError(f"command {key!r} is not on the allow-list")
    import subprocess  # here: a node-file read never runs a command, and subprocess is a slow import

    argv = list(ALLOWED_COMMANDS[key])
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CommandFailed(argv, f"`{argv[0]}` is not installed here", missing=True) from None
    except PermissionError:
        raise CommandFailed(argv, f"permission denied running `{argv[0]}`") from None
    except subprocess.TimeoutExpired:
        raise CommandFailed(argv, f"`{' '.join(argv)}` timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        err = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip().strip("^~ ")]
        msg = next((ln for ln in err if "rror" in ln), err[-1] if err else f"exit status {proc.returncode}")
        raise CommandFailed(argv, f"`{' '.join(argv)}`: {msg}", missing=proc.returncode == 127)
    return proc.stdout


def _netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/run/netns", name)) or os.path.exists(os.path.join("/var/run/netns", name))


_ROOT_HINT = "run as root (CAP_NET_ADMIN) on the node, or give the dump as a file (--iptables-save FILE)"


def _collect(run: Callable[[str], str], keys: tuple[str, ...] | None, where: str, node: str,
             debug: Callable[[str], None] | None = None) -> NodeDumps:
    """Run `keys` through `run` (None: iptables-save first, then what its mode needs). The first key is
    required and its ClusterError is raised; the others are best effort. `run` shapes its own errors."""
    dumps = NodeDumps(node=node)
    detected = keys is None
    if keys is None:
        ipt = run("iptables")
        dumps.texts["iptables"] = ipt
        dumps.origins["iptables"] = f"iptables-save ({where})"
        keys = mode_keys(mode_from_iptables(ipt))
    for i, key in enumerate(keys):
        if key in dumps.texts:
            continue
        try:
            text = run(key)
        except ClusterError as e:
            if i == 0 and detected and key == "nftables" and not isinstance(e, ForbiddenError):
                raise ClusterError(f"no kube-proxy rules found on {where}: iptables-save has no KUBE-SERVICES "
                                   f"chain and nftables has no `ip kube-proxy` table ({e.message})",
                                   hint="is kube-proxy running here? give a dump file or --mode") from None
            if i == 0:
                raise
            if debug is not None:
                debug(f"{where}: {e.message}")
            continue
        dumps.texts[key] = text
        dumps.origins[key] = f"{' '.join(ALLOWED_COMMANDS[key])} ({where})"
    return dumps


def read_commands(keys: tuple[str, ...] | None, netns: str | None, where: str) -> NodeDumps:
    """This machine's (or a network namespace's) rules through the allow-listed commands."""

    def run(key: str) -> str:
        if key == "ipvs" and not os.path.exists("/proc/net/ip_vs"):
            # ipvsadm would load the ip_vs module: never change the machine we read
            raise ClusterError(f"cannot read IPVS rules on {where}: the ip_vs module is not loaded",
                               hint="is kube-proxy really in IPVS mode here? try --mode iptables")
        try:
            return run_allowed(key, netns)
        except CommandFailed as e:
            raise ClusterError(f"cannot read {where}'s rules: {e.message}", hint=_ROOT_HINT) from None

    return _collect(run, keys, where, where)


def read_own_addresses(app: NodeReadContext) -> dict[str, str]:
    """The addresses of the node `--netns` / `--local-node` reads (address -> where it was seen), for a NodePort
    traced by an address the Node object does not list. Best effort: {} when `ip` cannot say."""
    ni = app.node_inputs
    if ni.netns is None and not ni.local:
        return {}
    if ni.netns is not None and not (_NETNS_NAME.fullmatch(ni.netns) and _netns_exists(ni.netns)):
        return {}
    try:
        text = run_allowed("addresses", ni.netns)
    except CommandFailed:
        return {}
    return parse_ip_o_addr(text, f"netns {ni.netns}" if ni.netns else "this machine")


def parse_ip_o_addr(text: str, where: str) -> dict[str, str]:
    """`ip -o addr show` lines (`2: eth0    inet 10.0.0.11/24 brd … scope global eth0 …`) -> address -> "eth0 in …";
    loopback and IPv6 link-local addresses are left out (a loopback NodePort is judged by the mode)."""
    import ipaddress

    out: dict[str, str] = {}
    for line in text.splitlines():
        toks = line.split()
        if len(toks) < 4 or toks[2] not in ("inet", "inet6"):
            continue
        addr = toks[3].split("/", 1)[0]
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            continue
        if ip.is_loopback or ip.is_link_local:
            continue
        out.setdefault(str(ip), f"{toks[1].rstrip(':')} in {where}")
    return out


def mode_from_iptables(ipt: str) -> str:
    """kube-proxy's mode judged from iptables-save alone (IPVS mode leaves its KUBE-CLUSTER-IP glue there).

    Deciding this first means ipvsadm / nft are only run on a node in that mode: on another node they could
    load kernel modules, and svcctl never changes the node it reads."""
    return modes.mode_from_iptables(ipt)


def mode_keys(mode: str) -> tuple[str, ...]:
    """What to read on a node for `mode` (the first key is required: the rules themselves)."""
    m = modes.get(mode)
    keys = tuple(k for k in m.node_keys if k in ALLOWED_COMMANDS)
    if not keys or keys[0] != m.node_keys[0]:
        d = m.dumps[0]
        raise InputError(f"svcctl does not run a command for {m.description} ({d.what}) on a node",
                         hint=f"give that output as a file (--dump {d.key}=FILE)")
    return keys


def read_files(files: dict[str, str], node: str, only: set[str] | None = None,
               whole_json: bool = False) -> NodeDumps:
    """Dumps given as files; `-` reads stdin (once: only one dump may come from it).

    `only` (one Service's names and addresses): a big dump file is streamed and cut to that Service's rules
    (sources/scoped.py) instead of being read whole. `whole_json` (only the whole dump's JSON is wanted): a big
    plain `ipvsadm -Ln` file given alone is checked as it is streamed and left in its file for the writer
    (`NodeDumps.in_file`), not held whole."""
    dumps = NodeDumps(node=node)
    if whole_json and not only and list(files) == ["ipvs"] and _left_in_file(dumps, files["ipvs"]):
        return dumps
    stdin_used = None
    for key, path in files.items():
        if only and path != "-":
            from svcctl.sources.scoped import read_scoped

            cut = read_scoped(path, key, only)
            if cut is not None:
                dumps.texts[key], dumps.streamed[key] = cut
                dumps.origins[key] = path
                dumps.reread = lambda: read_files(files, node)
                continue
        if path == "-":
            if stdin_used is not None:
                raise InputError(f"stdin (`-`) given for both {stdin_used} and {key}",
                                 hint="only one dump can be read from stdin")
            stdin_used = key
            text = _read_stdin()
            origin = "<stdin>"
        else:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
            except FileNotFoundError:
                raise InputError("no such file", source=path) from None
            except IsADirectoryError:
                raise InputError("is a directory, not a dump file", source=path) from None
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror}", source=path) from None
            origin = path
        if "\x00" in text[:4096]:
            raise InputError("binary data, not command output", source=origin)
        from svcctl.paste import add_dump

        add_dump(dumps, key, text, origin)  # pasted excerpts: each known section read, the rest said skipped
    return dumps


def _left_in_file(dumps: NodeDumps, path: str) -> bool:
    """Whether the IPVS table file at `path` was checked as it was streamed and left in it (`read_files`)."""
    from svcctl.dataplane import ipvs

    if path == "-" or not ipvs.FAST:
        return False
    from svcctl.sources.scoped import STREAM_MIN_BYTES

    try:
        if not os.path.isfile(path) or os.path.getsize(path) < STREAM_MIN_BYTES:
            return False
        from svcctl.dataplane.ipvs_plain import plain_file

        table = plain_file(path)
    except OSError:
        return False  # read the ordinary way: its error is the ordinary one
    if table is None:
        return False
    dumps.texts["ipvs"], dumps.origins["ipvs"], dumps.in_file["ipvs"] = table.head, path, table
    return True


def _read_stdin() -> str:
    """stdin as text like a file (undecodable bytes replaced); closed or absent (`<&-`) is an input error."""
    stream = sys.stdin
    if stream is None or stream.closed:
        raise InputError("stdin is closed: nothing to read for `-`", source="<stdin>")
    try:
        raw = getattr(stream, "buffer", None)
        return raw.read().decode("utf-8", errors="replace") if raw is not None else stream.read()
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read: {e}", source="<stdin>") from None


def gather_node_dumps(app: NodeReadContext, node: str | None, only: set[str] | None = None,
                      services: list[tuple[Service, list[EndpointSlice] | None]] | None = None,
                      whole_json: bool = False) -> NodeDumps | None:
    """Node command output, from the first of: files, --netns, --local-node, snapshot, kube-proxy exec.

    `only`: the one Service the command is about, so a big dump file need not be read whole; `services`: that
    Service (with its slices when known), so kube-proxy exec asks the node for its rules only
    (sources/targeted.py); `whole_json`: only the whole dump's JSON is wanted (`read_files`)."""
    ni = app.node_inputs
    node = node or ni.node
    if ni.files:
        return read_files(ni.files, node or "node", only, whole_json=whole_json)
    mode = ni.mode
    if ni.netns is not None:
        if not _NETNS_NAME.fullmatch(ni.netns):
            raise InputError(f"{ni.netns!r} is not a network namespace name",
                             hint="a name from `ip netns list` (letters, digits, . _ -; no slashes)")
        if not _netns_exists(ni.netns):
            raise ClusterError(f"network namespace {ni.netns!r} does not exist",
                               hint="list them with `ip netns list`")
        where = f"netns {ni.netns}"
        return read_commands(mode_keys(mode) if mode else None, ni.netns, where)
    if ni.local:
        where = "this machine"
        return read_commands(mode_keys(mode) if mode else None, None, where)
    if not app.has_cluster:
        return None
    if not app.snapshot:
        if ni.no_exec:
            return None
        if node is None:
            raise InputError("which node? give --node NAME (its kube-proxy Pod is read), or a dump file",
                             hint="--iptables-save FILE, --netns NAME or --local-node need no cluster")
    src = app.source
    if app.snapshot:
        all_dumps = src.dumps if isinstance(src, RecordedDumps) else None
        if node is not None:
            found = src.node_dumps(node)
            if found is None and isinstance(all_dumps, dict):
                have = ", ".join(sorted(all_dumps)) or "none"
                raise InputError(f"the snapshot has no rules for node {node!r} (nodes with rules: {have})",
                                 hint="snapshots keep them in nodes/<node>/iptables-save.txt")
            return found
        if isinstance(all_dumps, dict) and len(all_dumps) == 1:
            only_one = next(iter(all_dumps.values()))
            return only_one if isinstance(only_one, NodeDumps) else None
        if isinstance(all_dumps, dict) and len(all_dumps) > 1:
            raise InputError("the snapshot has rules for several nodes: " + ", ".join(sorted(all_dumps)),
                             hint="pick one with --node NAME")
        return None
    assert node is not None
    if not isinstance(src, KubeProxyExec):
        app.terminal.warn(f"cannot read node {node}'s rules: this source cannot exec into kube-proxy Pods "
                          "(give --iptables-save FILE)")
        return None
    execer = src.exec_in_pod
    pod = None if modes.is_replacement(mode) else src.kube_proxy_pod_for_node(node)
    if pod is None and not [sk for sk in src.skipped if sk.resource == "kube-proxy pods"]:
        from svcctl.sources.agents import agent_pods, read_agent_dumps

        agent = agent_pods(src, node).get(node)
        if agent is not None and (mode is None or mode == agent[0]):
            app.terminal.debug(f"node {node}: no kube-proxy Pod; {agent[0]} agent {agent[1].key}")
            return read_agent_dumps(execer, node, agent[0], agent[1], app.terminal.debug)
        if modes.is_replacement(mode):
            app.terminal.warn(f"no {mode} agent Pod found on node {node} (give the agent's output as a file)")
            return None
    if pod is None:
        refused = [sk for sk in src.skipped if sk.resource == "kube-proxy pods"]
        if refused:
            raise ForbiddenError(f"cannot find node {node}'s kube-proxy Pod: {refused[0].reason}",
                                 hint="grant list on pods in kube-system (deploy/rbac.yaml, svcctl-node-exec), "
                                      "or give --iptables-save FILE", resource="pods")
        app.terminal.warn(f"no kube-proxy Pod found on node {node} (give --iptables-save FILE)")
        return None
    from svcctl.model import PodRef

    ns, name, container = PodRef(*pod)  # a stand-in's plain (namespace, name) reads as one too
    where = f"pod {ns}/{name}"

    def run_in_pod(key: str) -> str:
        with _through_pod(node, where):
            out = execer(ns, name, container, list(ALLOWED_COMMANDS[key]))
        return out if isinstance(out, str) else ""

    if services and isinstance(src, ExecStatus):
        from svcctl.sources import batch, targeted

        status = src.exec_status

        def one_in_pod(argv: list[str]) -> tuple[str, str, int]:
            with _through_pod(node, where):
                got = status(ns, name, container, argv)
            return got

        status_in_pod = batch.Batched(one_in_pod, node, app.terminal.debug)  # a round as one `sh -c` exec
        cut = targeted.node_dumps(status_in_pod, node, where, services, mode, app.terminal.debug,
                                  node_ips=_node_ips(src, node, services))
        if cut is not None:
            targeted.add_conntrack(cut, status_in_pod, where, services)  # the Service's flows (trace shows them)
            return cut
    return _collect(run_in_pod, mode_keys(mode) if mode else None, where, node, app.terminal.debug)


def _node_ips(src: ClusterSource, node: str, services: list[tuple[Service, list[EndpointSlice] | None]]) -> list[str]:
    """The Node object's InternalIP and ExternalIP addresses, for a Service with a NodePort (kube-proxy's
    NodePort jump rule is one per node address when nodePortAddresses is set): one GET, else none."""
    if not any(p.node_port for svc, _ in services for p in svc.ports):
        return []
    try:
        got = src.get_nodes([node]).get(node)
    except ClusterError:
        return []
    return [*got.addresses.get("InternalIP", []), *got.addresses.get("ExternalIP", [])] if got is not None else []


@contextlib.contextmanager
def _through_pod(node: str, where: str) -> Iterator[None]:
    """An exec that failed, said as this node's rules not read through that Pod; a refusal keeps its type
    (callers may degrade on RBAC refusals)."""
    try:
        yield
    except ForbiddenError as e:
        raise ForbiddenError(f"cannot read node {node}'s rules through {where}: {e.message}",
                             hint="grant create on pods/exec in kube-system (deploy/rbac.yaml, svcctl-node-exec), "
                                  "or give --iptables-save FILE", resource=e.resource) from None
    except ClusterError as e:
        raise ClusterError(f"cannot read node {node}'s rules through {where}: {e.message}", hint=e.hint) from None


def read_conntrack(ni: NodeInputs) -> str | None:
    """`conntrack -L` where a probe just ran (the --netns, or this machine with --local-node); None if unreadable."""
    if ni.netns is None and not ni.local:
        return None
    try:
        return run_allowed("conntrack", ni.netns)
    except CommandFailed:
        return None

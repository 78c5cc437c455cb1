"""Nodes without kube-proxy: their Services are read through the replacing agent's Pod (Cilium, calico-node,
kube-router), with read-only commands from the allow-list, through pods/exec.

A node runs that dataplane when no kube-proxy Pod runs there and one of these agent Pods does; `--mode` forces
it. One list (label `k8s-app in (cilium,calico-node,kube-router)`, all namespaces: Cilium may live in
kube-system or its own namespace, calico-node in calico-system) maps every node to its agent. Cilium's CLI is
`cilium-dbg` since 1.15; on older agents the same subcommands are under `cilium`, so a missing `cilium-dbg`
falls back to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from svcctl.dataplane import modes
from svcctl.errors import ClusterError, ForbiddenError
from svcctl.model import Pod, PodRef
from svcctl.sources.base import ClusterSource, KubeProxyExec, NodeDumps, PodLister

AGENT_LABEL = "k8s-app"
AGENT_SELECTOR = "k8s-app in (cilium,calico-node,kube-router)"
MODE_OF_AGENT = {"cilium": "cilium", "calico-node": "calico-ebpf", "kube-router": "kube-router"}
CONTAINER_OF_AGENT = {"cilium": "cilium-agent", "calico-node": "calico-node", "kube-router": "kube-router"}

# key -> argv, the only commands run in agent Pods (all read-only listings)
# key -> argv, from the mode registry (each replacement mode names its agent's read-only commands)
AGENT_COMMANDS: dict[str, tuple[str, ...]] = modes.agent_commands()
# what each mode reads (the first is required), and the NodeDumps key each lands in
MODE_READS: dict[str, tuple[str, ...]] = {
    "cilium": ("cilium-json", "cilium-bpf-lb", "cilium-revnat"),
    "calico-ebpf": ("calico-nat",),
    "kube-router": ("ipvs", "kube-dummy-if", "mangle"),
}
DUMP_KEY = {"cilium-json": "cilium", "cilium-bpf-lb": "cilium", "cilium-revnat": "cilium",
            "calico-nat": "calico-nat", "ipvs": "ipvs", "kube-dummy-if": "kube-ipvs0",
            "mangle": "mangle"}


def _ref(p: Pod) -> tuple[str, PodRef]:
    app = p.meta.labels.get(AGENT_LABEL, "")
    want = CONTAINER_OF_AGENT.get(app, "")
    container = next((c.name for c in p.containers if c.name == want), None) or (
        p.containers[0].name if p.containers else None)
    return MODE_OF_AGENT[app], PodRef.of(p, container, "kube-system")


def agent_pods(source: ClusterSource | KubeProxyExec, node: str | None = None) -> dict[str, tuple[str, PodRef]]:
    """node -> (mode, its agent Pod), from one list (a Running, ready Pod preferred)."""
    if not isinstance(source, PodLister):  # a source that can only exec (tests' stand-ins): no agents to find
        return {}
    try:
        pods = source.list_pods(None, AGENT_SELECTOR)
    except ForbiddenError:
        return {}
    pods = [p for p in pods if p.meta.labels.get(AGENT_LABEL) in MODE_OF_AGENT and p.node_name
            and (node is None or p.node_name == node)]
    pods.sort(key=lambda p: (p.phase != "Running", not p.ready, p.meta.name))
    out: dict[str, tuple[str, PodRef]] = {}
    for p in pods:
        out.setdefault(p.node_name, _ref(p))
    return out


def read_agent_dumps(execer: Callable[..., Any], node: str, mode: str, pod: PodRef,
                     debug: Callable[[str], None] | None = None) -> NodeDumps:
    """The agent's listings for `mode`; the first command is required, the others best effort."""
    ns, name, container = pod
    where = f"pod {ns}/{name}"
    dumps = NodeDumps(node=node, mode=mode)
    parts: dict[str, list[str]] = {}
    for i, key in enumerate(MODE_READS[mode]):
        try:
            out = _run(execer, ns, name, container, key)
        except ClusterError as e:
            if i == 0:
                raise ClusterError(f"cannot read node {node}'s services through {where}: {e.message}",
                                   hint=e.hint or "grant create on pods/exec for the agent's namespace "
                                        "(deploy/rbac.yaml), or give the agent's output as a file") from None
            if debug is not None:
                debug(f"{where}: {e.message}")
            continue
        cmd, text = out
        dk = DUMP_KEY[key]
        parts.setdefault(dk, []).append(f"$ {cmd}\n{text}" if mode == "cilium" else text)
        origin = f"{cmd} ({where})"
        dumps.origins[dk] = f"{dumps.origins[dk]}, {origin}" if dk in dumps.origins else origin
    for dk, texts in parts.items():
        dumps.texts[dk] = "".join(t if t.endswith("\n") else t + "\n" for t in texts)
    return dumps


def _run(execer: Callable[..., Any], ns: str, name: str, container: str | None, key: str) -> tuple[str, str]:
    """One allow-listed command; `cilium-dbg` falls back to `cilium` (agents before 1.15)."""
    argv = list(AGENT_COMMANDS[key])
    try:
        out = execer(ns, name, container, argv)
    except ForbiddenError:
        raise
    except ClusterError as e:
        legacy_key = f"{key}-legacy"
        if legacy_key not in AGENT_COMMANDS:
            raise
        legacy = list(AGENT_COMMANDS[legacy_key])
        try:
            out = execer(ns, name, container, legacy)
        except ClusterError:
            raise e from None
        return " ".join(legacy), out if isinstance(out, str) else ""
    return " ".join(argv), out if isinstance(out, str) else ""

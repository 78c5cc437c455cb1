"""Every node's kube-proxy rules, read through its kube-proxy Pod, in parallel with a bounded worker count.

One list of the kube-proxy Pods (label `k8s-app=kube-proxy` in kube-system) maps nodes to Pods: one request for
the whole fleet instead of one per node. Each node then costs one exec (`iptables-save`, which also decides the
mode) and, in IPVS or nftables mode, one more (`ipvsadm -Ln` / `nft list table ip kube-proxy`) — the same
allow-listed, read-only commands `svcctl/sources/node.py` runs. A node whose exec fails or times out becomes an
unreadable result, never an exception: one bad node must not hide what the others say.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from svcctl.analysis.fleet import NodeResult, judge_node, unreadable_node
from svcctl.dataplane import modes
from svcctl.dataplane.model import NodeRules
from svcctl.errors import InputError, SvcctlError
from svcctl.lazydc import dataclass
from svcctl.model import EndpointSlice, Pod, PodRef, Service
from svcctl.sources.base import ClusterSource, ExecStatus, KubeProxyExec, NodeDumps, Warmable
from svcctl.sources.batch import Memo
from svcctl.sources.node import ALLOWED_COMMANDS, mode_from_iptables

DEFAULT_PARALLEL = 8
# Services asked about at most for a targeted fleet read (more: each node is read whole). Each Service is ≈ 11
# commands and ≈ 5 kB: at 100, ≈ 1,100 commands in ≈ 20 batch execs per node, run one after another by the
# node's shell (each an iptables process), against one whole dump of ≈ 4.8 kB per Service the node holds
TARGETED_MAX = 100
KUBE_PROXY_NAMESPACE = "kube-system"
KUBE_PROXY_SELECTOR = "k8s-app=kube-proxy"

Targets = list[tuple[Service, list[EndpointSlice] | None]]  # the Services asked about (slices: None = unknown)


@dataclass
class FleetTarget:
    """What every node is judged on: Services with the EndpointSlices the API has for them."""

    services: list[tuple[Service, list[EndpointSlice]]]

    @property
    def only(self) -> set[str]:
        """Keys for the parsers' one-Service path: names, addresses and NodePorts of the Services."""
        keys: set[str] = set()
        for svc, _ in self.services:
            keys.add(f"{svc.meta.namespace}/{svc.meta.name}")
            for ip in [*svc.cluster_ips, *svc.external_ips, *svc.load_balancer_ips]:
                if ip and ip != "None":
                    keys.add(ip)
            keys |= {f":{p.node_port}" for p in svc.ports if p.node_port}
        return keys


def kube_proxy_pods(source: ClusterSource) -> dict[str, PodRef]:
    """node name -> its kube-proxy Pod, from one list (a Running, ready Pod preferred when there are several)."""
    pods: list[Pod] = source.list_pods(KUBE_PROXY_NAMESPACE, KUBE_PROXY_SELECTOR)
    pods.sort(key=lambda p: (p.phase != "Running", not p.ready, p.meta.name))
    out: dict[str, PodRef] = {}
    for p in pods:
        if p.node_name and p.node_name not in out:
            container = next((c.name for c in p.containers if "kube-proxy" in c.name), None)
            out[p.node_name] = PodRef.of(p, container, KUBE_PROXY_NAMESPACE)
    return out


def read_node_dumps(execer: Callable[..., Any], node: str, pod: PodRef, mode: str | None = None) -> NodeDumps:
    """The node's rules through its kube-proxy Pod: iptables-save (mode detection), then the mode's own dump."""
    ns, name, container = pod
    where = f"pod {ns}/{name}"
    dumps = NodeDumps(node=node)

    def run(key: str) -> None:
        out = execer(ns, name, container, list(ALLOWED_COMMANDS[key]))
        dumps.texts[key] = out if isinstance(out, str) else ""
        dumps.origins[key] = f"{' '.join(ALLOWED_COMMANDS[key])} ({where})"

    if mode is None or mode == "iptables":
        run("iptables")
        mode = mode or mode_from_iptables(dumps.texts["iptables"])
    key = modes.get(mode).rules_key
    if key not in dumps.texts:
        run(key)
    return dumps


@dataclass
class NodeRead:
    """One node's rules as read through its kube-proxy Pod, or why they could not be read."""

    node: str
    rules: NodeRules | None = None
    dumps: NodeDumps | None = None
    error: str | None = None
    seconds: float = 0.0


def read_node(source: ClusterSource, node: str, pod: PodRef | None, mode: str | None,
              only: set[str] | None = None, agent: tuple[str, PodRef] | None = None,
              targets: Targets | None = None, memo: Memo | None = None,
              node_ips: list[str] | None = None) -> NodeRead:
    """Read and parse one node's rules; every failure becomes `error`, never an exception.

    `agent`: (mode, Pod) of the Cilium / calico-node / kube-router agent, used where kube-proxy is absent.
    `targets`: the Services asked about: their rules only are read from the node (sources/targeted.py) where
    that can be done, the whole dump otherwise."""
    from svcctl.dataplane import load_node_rules

    started = time.monotonic()
    if agent is not None and (pod is None or modes.is_replacement(mode)) and mode in (None, agent[0]):
        from svcctl.sources.agents import read_agent_dumps

        if not isinstance(source, KubeProxyExec):
            return NodeRead(node, error="this source cannot exec into agent Pods")
        execer = source.exec_in_pod
        try:
            dumps = read_agent_dumps(execer, node, agent[0], agent[1])
            rules = load_node_rules(dumps, mode=agent[0], only=only)
        except InputError as e:
            return NodeRead(node, error=f"its {agent[0]} services could not be read: {e.message}",
                            seconds=time.monotonic() - started)
        except SvcctlError as e:
            return NodeRead(node, error=e.message, seconds=time.monotonic() - started)
        return NodeRead(node, rules, dumps, None, time.monotonic() - started)
    if modes.is_replacement(mode):
        return NodeRead(node, error=f"no {mode} agent Pod runs on this node")
    if pod is None:
        return NodeRead(node, error=f"no {KUBE_PROXY_SELECTOR} Pod in {KUBE_PROXY_NAMESPACE} runs on this node")
    if not isinstance(source, KubeProxyExec):
        return NodeRead(node, error="this source cannot exec into kube-proxy Pods")
    execer = source.exec_in_pod
    try:
        cut = _targeted(source, node, pod, mode, targets, memo, node_ips or []) if targets else None
        dumps = cut if cut is not None else read_node_dumps(execer, node, pod, mode)
    except SvcctlError as e:
        return NodeRead(node, error=e.message, seconds=time.monotonic() - started)
    try:
        rules = load_node_rules(dumps, mode=mode, only=only)
    except InputError as e:
        return NodeRead(node, dumps=dumps, error=f"its rules could not be read: {e.message}",
                        seconds=time.monotonic() - started)
    return NodeRead(node, rules, dumps, None, time.monotonic() - started)


def _targeted(source: ClusterSource, node: str, pod: PodRef, mode: str | None, targets: Targets,
              memo: Memo | None = None, node_ips: list[str] | None = None) -> NodeDumps | None:
    """The node's rules for `targets` only, through targeted reads, each round one `sh -c` exec where the
    container has a shell (`memo`: which nodes of the fleet have none); None: read it whole."""
    from svcctl.sources import batch, targeted

    if not isinstance(source, ExecStatus):
        return None
    ns, name, container = pod
    debug = getattr(source, "debug", None)
    execute = batch.Batched(lambda argv: source.exec_status(ns, name, container, argv), node,
                            debug if callable(debug) else None, memo)
    return targeted.node_dumps(execute, node, f"pod {ns}/{name}", targets, mode, node_ips=node_ips or [])


def fleet_nodes(source: ClusterSource, addresses: dict[str, list[str]] | None = None
                ) -> tuple[list[str], dict[str, PodRef]]:
    """Every node (the API's Nodes and every node running kube-proxy) and each one's kube-proxy Pod;
    `addresses` gets each Node's InternalIP and ExternalIP addresses (for targeted reads' NodePort checks)."""
    pods = kube_proxy_pods(source)
    listed = source.list_nodes()
    if addresses is not None:
        for n in listed:
            addresses[n.meta.name] = [*n.addresses.get("InternalIP", []), *n.addresses.get("ExternalIP", [])]
    return sorted({n.meta.name for n in listed} | set(pods)), pods


def fleet_agents(source: ClusterSource, nodes: list[str], pods: dict[str, PodRef],
                 mode: str | None) -> dict[str, tuple[str, PodRef]]:
    """Agent Pods (Cilium, calico-node, kube-router) for nodes without kube-proxy, from one more list; none is
    asked for when every node runs kube-proxy and no replacement mode is forced."""

    if not modes.is_replacement(mode) and all(n in pods for n in nodes):
        return {}
    from svcctl.sources.agents import agent_pods

    try:
        return agent_pods(source)
    except SvcctlError:
        return {}


def read_fleet(source: ClusterSource, *, parallel: int = DEFAULT_PARALLEL, mode: str | None = None,
               only: set[str] | None = None, nodes: list[str] | None = None,
               on_start: Callable[[int], None] | None = None,
               on_read: Callable[[NodeRead], None] | None = None,
               targets: Targets | None = None) -> list[NodeRead]:
    """Every node's rules, `parallel` at a time, sorted by node name (for `check --all-nodes`).

    `only`: the parsers' one-Service keys, when only a few Services will be judged; `targets`: those Services,
    so each node is asked only for their rules (targeted reads)."""
    addresses: dict[str, list[str]] = {}
    all_nodes, pods = fleet_nodes(source, addresses)
    nodes = all_nodes if nodes is None else nodes
    agents = fleet_agents(source, nodes, pods, mode)
    if on_start is not None:
        on_start(len(nodes))
    _warm(source)
    out: list[NodeRead] = []
    memo = Memo()  # which nodes' kube-proxy containers have no sh (batched rounds), for this fleet read
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="svcctl-node") as pool:
        futures = {pool.submit(read_node, source, n, pods.get(n), mode, only, agents.get(n), targets, memo,
                               addresses.get(n, [])): n for n in nodes}
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as e:  # noqa: BLE001 - a bug on one node is reported on that node
                res = NodeRead(futures[fut], error=f"{type(e).__name__}: {e}")
            out.append(res)
            if on_read is not None:
                on_read(res)
    out.sort(key=lambda r: r.node)
    return out


def _zones(source: ClusterSource, target: FleetTarget) -> dict[str, str]:
    """Each node's zone label, read only when an endpoint has topology hints (they decide which endpoints a
    node's kube-proxy uses, so its drift is judged against those)."""
    from svcctl.analysis.topology import has_hints

    if not any(has_hints(slices) for _, slices in target.services):
        return {}
    try:
        return {n.meta.name: n.zone for n in source.list_nodes()}
    except SvcctlError:
        return {}


def check_fleet(source: ClusterSource, target: FleetTarget, *, parallel: int = DEFAULT_PARALLEL,
                mode: str | None = None, nodes: list[str] | None = None,
                on_start: Callable[[int], None] | None = None,
                on_result: Callable[[NodeResult], None] | None = None) -> list[NodeResult]:
    """Every node judged on `target`, `parallel` at a time, sorted by name: `read_fleet`, then each node's
    rules judged as it arrives (pure and cheap beside the exec).

    `on_start(total)` and `on_result(result)` feed a progress display; they run in the calling thread."""
    results: list[NodeResult] = []
    zones = _zones(source, target)

    def judged(read: NodeRead) -> None:
        res = (unreadable_node(read.node, read.error or "no rules", read.seconds) if read.rules is None
               else judge_node(read.node, read.rules, target.services, read.seconds, zones.get(read.node, "")))
        results.append(res)
        if on_result is not None:
            on_result(res)

    read_fleet(source, parallel=parallel, mode=mode, only=target.only, nodes=nodes, on_start=on_start,
               on_read=judged,
               targets=[(s, sl) for s, sl in target.services] if len(target.services) <= TARGETED_MAX else None)
    results.sort(key=lambda r: r.name)
    return results


def _warm(source: ClusterSource) -> None:
    """Build the API client once before the workers share it (its lazy properties are not thread-safe)."""
    if not isinstance(source, Warmable):
        return
    try:
        source.warm()
    except Exception:  # noqa: BLE001 - the first real request reports the problem properly
        return

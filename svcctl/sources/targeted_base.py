"""What the targeted node reads of every mode share (sources/targeted.py, sources/targeted_nft.py): the exec
callable, the record of what was read, one round of commands in parallel behind the allowed shapes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from svcctl.model import EndpointSlice

# one exec: argv -> (stdout, stderr, exit status); a transport failure raises (ClusterError)
Exec = Callable[[list[str]], tuple[str, str, int]]

WORKERS = 8  # commands of one round in flight at once, per node


def has_endpoints(slices: list[EndpointSlice] | None) -> bool | None:
    """Whether kube-proxy has endpoints for it (ready, or serving-terminating when none is ready); None when
    the slices are not known (both rule sets are then tried: the one with endpoints first)."""
    if slices is None:
        return None
    eps = [e for s in slices for e in s.endpoints]
    return any(e.ready is not False for e in eps) or any(e.serving and e.terminating for e in eps)


class NotAllowed(Exception):
    """An argv outside the targeted shapes: refused before anything is sent (a bug, never a node's answer)."""


@dataclass
class TargetedRead:
    """The cut dumps of one node (key -> iptables-save text), or what was missing (then read whole)."""

    texts: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # key -> the first thing not found
    commands: list[list[str]] = field(default_factory=list)
    bytes_in: int = 0  # stdout + stderr of every command
    seconds: float = 0.0


def run_round(execute: Exec, argvs: list[list[str]], read: TargetedRead,
              shapes: Callable[[list[str]], bool]) -> list[tuple[str, str, int]]:
    """One round of commands, in parallel; each checked against the allowed shapes before anything is sent."""
    for argv in argvs:
        if not shapes(argv):
            raise NotAllowed(f"not a targeted read command: {argv!r}")
    read.commands += argvs
    if len(argvs) == 1:
        results = [execute(argvs[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(argvs)), thread_name_prefix="svcctl-t") as pool:
            results = list(pool.map(execute, argvs))
    read.bytes_in += sum(len(o) + len(e) for o, e, _ in results)
    return results


class ReadFailed(Exception):
    """An answer a targeted read cannot use (exit status > 1: permission, a missing binary; output that is not
    iptables' own): the node is read whole instead, which reports its own failure the usual way."""

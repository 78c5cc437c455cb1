"""What the targeted node reads of every mode share (sources/targeted.py, sources/targeted_nft.py): the exec
callable, the record of what was read, one round of commands in parallel behind the allowed shapes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from svcctl.lazydc import dataclass, field
from svcctl.model import EndpointSlice, Service

# one exec: argv -> (stdout, stderr, exit status); a transport failure raises (ClusterError)
Exec = Callable[[list[str]], tuple[str, str, int]]

WORKERS = 16  # commands of one round in flight at once, per node (a Service of 9 endpoints with its slices known: 11, one wave)


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
    bytes_in: int = 0  # stdout + stderr of every command (a batch exec's: with its frames)
    execs: int = 0  # pods/exec calls (a batched round is one per sh -c)
    ipvs_shown: bool = False  # the node has IPVS mode's own KUBE-NODE-PORT chain (targeted.IPVS_TELL)
    seconds: float = 0.0


_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """One pool for every node's rounds, built on first use: its threads are reused (a fleet read of 1,000 nodes
    made 11 threads per node, one per exec, each started and joined under the GIL). Idle threads are reused
    before new ones start, so it grows only to the execs in flight at once (--parallel × WORKERS at most)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=1024, thread_name_prefix="svcctl-t"))
        return _POOL[0]


def run_round(execute: Exec, argvs: list[list[str]], read: TargetedRead,
              shapes: Callable[[list[str]], bool]) -> list[tuple[str, str, int]]:
    """One round of commands, each checked against the allowed shapes before anything is sent: as batch execs
    when `execute` can (sources/batch.py), else one exec per command, in parallel."""
    for argv in argvs:
        if not shapes(argv):
            raise NotAllowed(f"not a targeted read command: {argv!r}")
    read.commands += argvs
    many = getattr(execute, "run_many", None)  # sources/batch.Batched: the round as one `sh -c` exec
    batched = many(argvs) if many is not None and len(argvs) > 1 else None
    if batched is not None:
        read.execs += batched.execs
        read.bytes_in += batched.bytes_in
        return list(batched.results)
    if len(argvs) == 1:
        results = [execute(argvs[0])]
    else:
        pool = _pool()
        results = []
        for i in range(0, len(argvs), WORKERS):
            futures = [pool.submit(execute, a) for a in argvs[i:i + WORKERS]]
            results += [f.result() for f in futures]
    read.execs += len(argvs)
    read.bytes_in += sum(len(o) + len(e) for o, e, _ in results)
    return results


class ReadFailed(Exception):
    """An answer a targeted read cannot use (exit status > 1: permission, a missing binary; output that is not
    iptables' own): the node is read whole instead, which reports its own failure the usual way."""


class Probe(Protocol):
    """A rule or map element a targeted read checks; `alt` is what kube-proxy writes instead when the Service has
    no endpoints, `needs_eps` that the probe is written only when it has some."""

    alt: Any
    needs_eps: bool


P = TypeVar("P", bound=Probe)


def pick(queue: list[P], has_eps: bool | None, with_eps: P | None, without: P | None) -> None:
    """Queue the probe kube-proxy writes for what the API says; endpoints unknown: the with-endpoints one, and
    the no-endpoints one as its alternative (checked only when the first is not there)."""
    if has_eps is False:
        if without is not None:
            queue.append(without)
        return
    if with_eps is None:
        return
    if has_eps is None:
        with_eps.alt = without
        with_eps.needs_eps = without is None
    queue.append(with_eps)


@dataclass(frozen=True)
class Planned:
    """One Service a targeted read plans for: whether it has endpoints (None: slices unknown), each of its
    addresses' family in the mode's own words, and the families of its ClusterIPs."""

    service: Service
    slices: list[EndpointSlice] | None
    has_eps: bool | None
    family_of: dict[str, str]
    families: list[str]


def planned(services: Iterable[tuple[Service, list[EndpointSlice] | None]], v4: str, v6: str) -> Iterator[Planned]:
    """The Services kube-proxy writes rules for (not ExternalName, not headless), with their families."""
    for svc, slices in services:
        if svc.type == "ExternalName" or not svc.cluster_ips or svc.cluster_ips[0] in ("", "None"):
            continue
        fam_of = {ip: (v6 if ":" in ip else v4) for ip in
                  [*svc.cluster_ips, *svc.external_ips, *svc.load_balancer_ips] if ip and ip != "None"}
        yield Planned(svc, slices, has_endpoints(slices), fam_of,
                      sorted({fam_of[ip] for ip in svc.cluster_ips if ip in fam_of}))

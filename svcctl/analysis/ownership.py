"""Chain ownership, recomputed from the API: which Service port (and endpoint) each kube-proxy iptables chain
name belongs to (kube-proxy's own hashes, `servicePortChainName`, `servicePortEndpointChainName`), so chains
that belong to none are stale. It judges a node's rules against the cluster: analysis, not parsing."""

from __future__ import annotations

from collections.abc import Iterable

from svcctl.dataplane.hashes import endpoint_chain, service_chains, spn_variants
from svcctl.dataplane.iptables import KUBE_PREFIXES
from svcctl.lazydc import dataclass
from svcctl.model import EndpointSlice, Service


@dataclass(frozen=True)
class ChainOwner:
    chain: str
    service: str  # ns/name
    port_name: str
    protocol: str
    kind: str  # SVC | SVL | EXT | FW | SEP
    endpoint: str = ""  # ip:port for SEP chains


def chain_index(services: Iterable[Service], slices: Iterable[EndpointSlice]) -> dict[str, ChainOwner]:
    """Every chain name the given Services and EndpointSlices would have on a node."""
    index: dict[str, ChainOwner] = {}
    by_svc: dict[str, list[EndpointSlice]] = {}
    for sl in slices:
        by_svc.setdefault(f"{sl.meta.namespace}/{sl.service_name}", []).append(sl)
    for svc in services:
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        for p in svc.ports:
            proto = p.protocol.lower()
            for spn in spn_variants(svc.meta.namespace, svc.meta.name, p.name):
                for prefix, ch in service_chains(spn, proto).items():
                    index.setdefault(ch, ChainOwner(ch, key, p.name, p.protocol, prefix[5:-1]))
                for sl in by_svc.get(key, []):
                    ports = [sp.port for sp in sl.ports if (sp.name or "") == (p.name or "") and sp.port]
                    for ep in sl.endpoints:
                        for ip in ep.addresses:
                            for port in ports:
                                assert port is not None
                                ch = endpoint_chain(spn, proto, ip, port)
                                index.setdefault(ch, ChainOwner(ch, key, p.name, p.protocol, "SEP",
                                                                f"{ip}:{port}" if ":" not in ip else f"[{ip}]:{port}"))
    return index


def chain_owner(chain: str, services: Iterable[Service], slices: Iterable[EndpointSlice]) -> ChainOwner | None:
    """Which Service port (and endpoint) a KUBE-SVC/SVL/EXT/FW/SEP chain belongs to; None = no current owner."""
    return chain_index(services, slices).get(chain)


def orphan_chains(chains: Iterable[str], services: Iterable[Service], slices: Iterable[EndpointSlice]) -> list[str]:
    """KUBE-* service/endpoint chains that belong to no current Service port or endpoint (stale)."""
    index = chain_index(services, slices)
    return sorted(c for c in chains if c.startswith(KUBE_PREFIXES) and c not in index)

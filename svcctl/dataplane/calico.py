"""Calico's eBPF dataplane, read from `calico-node -bpf nat dump`.

The format is felix's `dumpNice` (felix/cmd/calico-bpf/commands/nat.go): one line per frontend,
`<ip> port <port> proto <n> id <id> count <count> local <local>[ flags <flags>]`, then one line per backend
ordinal `\\t<id>:<ordinal>\\t <ip>:<port>` (or `is missing` when the backend map lacks that ordinal).
Frontends come in Go map order (unsorted). `flags` (felix/bpf/nat: external-local, internal-local) only
exist since Calico put traffic policies into the map; older dumps print none.

Semantics (felix/bpf/nat and the BPF NAT program): a frontend picks one of its `count` backends at random;
felix lists the node's own backends first, so `local` counts ordinals 0..local-1; with `external-local`
(externalTrafficPolicy Local) traffic from outside the cluster only picks among those, with `internal-local`
(internalTrafficPolicy Local) in-cluster traffic does. Dumps without flags come from Calico versions that
ignored internalTrafficPolicy Local (every backend stays eligible) and applied topology hints per endpoint
when building the map. `count` 0xffffffff is a black hole (loadBalancerSourceRanges: a source outside the
ranges is dropped); count 0 means no backends. NodePorts are keyed on 255.255.255.255 (any local address).
The dump has no backend states: Calico programs only the endpoints kube-proxy's rules would use.
"""

from __future__ import annotations

import re
from fractions import Fraction

from svcctl.dataplane.model import Backend, NodeRules, RuleStats, ServiceEntry
from svcctl.dataplane.replacement import clean_lines
from svcctl.errors import InputError
from svcctl.lazyre import LazyPattern

__all__ = ["parse_calico_nat", "looks_like_calico_nat", "BLACKHOLE"]

FRONTEND = LazyPattern(r"^(?P<ip>[0-9a-fA-F.:]+) port (?P<port>\d{1,5}) proto (?P<proto>\d{1,3}) id (?P<id>\d+) "
                      r"count (?P<count>\d+) local (?P<local>\d+)(?: flags (?P<flags>.*))?$")
BACKEND = LazyPattern(r"^\s*(?P<id>\d+):(?P<ord>\d+)\s+(?P<rest>.*)$")
PROTOS = {6: "TCP", 17: "UDP", 132: "SCTP"}
BLACKHOLE = 0xFFFFFFFF
NODEPORT_IP = "255.255.255.255"
_HINT = "give the output of `calico-node -bpf nat dump` (run in the calico-node container)"


def looks_like_calico_nat(text: str) -> bool:
    return bool(re.search(r"^\S+ port \d+ proto \d+ id \d+ count \d+ local \d+", text[:20000], re.M))


def _split_backend(text: str) -> tuple[str, int] | None:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        return None
    host = host.strip("[]")
    if not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host):
        return None
    return host, int(port)


def parse_calico_nat(text: str, source: str, only: set[str] | None = None) -> NodeRules:
    """`calico-node -bpf nat dump` → NodeRules (mode calico-ebpf)."""
    if not text.strip():
        raise InputError("empty: no Calico NAT dump", source=source, hint=_HINT)
    cleaned = clean_lines(text, source)
    notes = list(cleaned.notes)
    entries: list[ServiceEntry] = []
    current: tuple[ServiceEntry, int, int, int, list[str]] | None = None  # entry, id, count, local, flags
    seen_ordinals: dict[int, set[int]] = {}
    has_flags_any = False

    def close() -> None:
        if current is None:
            return
        e, fid, count, local, flags = current
        got = seen_ordinals.get(fid, set())
        if count != BLACKHOLE and count and len(got) < count:
            e.notes.append(f"{count - len(got)} of {count} backend ordinals not in the dump (cut short?)")
        _finish(e, count, local, flags)

    for block in cleaned.blocks:
        for n, line in block.lines:
            s = line.strip()
            if not s:
                continue
            m = FRONTEND.match(s)
            if m:
                close()
                proto_n = int(m["proto"])
                ip = m["ip"]
                port = int(m["port"])
                flags = [f.strip() for f in (m["flags"] or "").split(",") if f.strip()]
                has_flags_any = has_flags_any or bool(flags)
                kind = "NodePort" if ip == NODEPORT_IP else "ClusterIP"
                e = ServiceEntry(name=None, protocol=PROTOS.get(proto_n, f"proto {proto_n}"),
                                 address="" if ip == NODEPORT_IP else ip, port=port, kind=kind)
                e.flags = flags
                e.path = [f"calico NAT frontend id {m['id']}"]
                count = int(m["count"])
                current = (e, int(m["id"]), count, int(m["local"]), flags)
                entries.append(e)
                continue
            b = BACKEND.match(line)
            if b and line[:1].isspace():
                if current is None or int(b["id"]) != current[1]:
                    raise InputError(f"line {n}: backend {b['id']}:{b['ord']} is not under its frontend",
                                     source=source, hint=_HINT)
                e, fid, count, local, _flags = current
                ordinal = int(b["ord"])
                seen_ordinals.setdefault(fid, set()).add(ordinal)
                rest = b["rest"].strip()
                if rest == "is missing":
                    e.notes.append(f"backend ordinal {ordinal} is missing from the backend map: connections "
                                   "that pick it fail")
                    continue
                addr = _split_backend(rest)
                if addr is None:
                    raise InputError(f"line {n}: backend {rest[:40]!r} is not ip:port", source=source, hint=_HINT)
                e.backends.append(Backend(ip=addr[0], port=addr[1], local=ordinal < local, state="active"))
                continue
            raise InputError(f"line {n}: not `calico-node -bpf nat dump` output ({s[:60]!r})", source=source,
                             hint=_HINT)
    close()
    if not entries:
        raise InputError("no NAT frontends in this output", source=source, hint=_HINT)
    entries.sort(key=lambda e: (e.kind != "ClusterIP", e.address, e.port, e.protocol))
    stats = RuleStats(rules=len(entries), chains=0,
                      extra={"frontends": len(entries), "backends": sum(len(e.backends) for e in entries)})
    if only:
        from svcctl.dataplane.model import in_scope

        # NodePorts carry no name or service address here: kept, the caller matches them by port
        entries = [e for e in entries if e.kind == "NodePort" or in_scope(e, only)]
    rules = NodeRules("calico-ebpf", entries, stats=stats, source=source, notes=notes)
    if not has_flags_any:
        rules.notes.append("no frontend carries flags: a Calico version that ignores internalTrafficPolicy "
                           "Local (every backend is eligible) and applies topology hints when building the map")
    rules.notes.append("Calico's connect-time load balancing picks the backend at connect() for Pods on this "
                       "node: their conntrack shows the backend, not the service address")
    return rules


def _finish(e: ServiceEntry, count: int, local: int, flags: list[str]) -> None:
    if count == BLACKHOLE:
        e.no_endpoints = True
        e.notes.append("black hole (count 0xffffffff): sources outside loadBalancerSourceRanges are dropped")
        return
    ext_local = "external-local" in flags
    int_local = "internal-local" in flags
    # the dump does not say which frontends are external (NodePorts aside): felix only sets external-local on
    # them, so the flag itself marks the frontend; shares are for the traffic the flag restricts
    e.policy_local = ext_local or int_local
    if not e.backends:
        e.no_endpoints = True
        e.notes.append("no backends: Calico drops the connection")
        return
    pool = [b for b in e.backends if b.local] if e.policy_local else e.backends
    for b in e.backends:
        b.probability = Fraction(1, len(pool)) if b in pool else Fraction(0)
    if ext_local:
        e.notes.append(f"external-local: traffic from outside the cluster only to this node's {local} backend(s); "
                       "in-cluster clients use all of them")
    if int_local:
        e.notes.append(f"internal-local: in-cluster traffic only to this node's {local} backend(s)")
    if e.policy_local and not pool:
        e.no_local_endpoints = True

"""`conntrack -L` → flows: the original tuple's destination is the VIP, the reply's source is the backend.

kube-proxy pairs them the same way (`pkg/proxy/conntrack`, filterForNAT): reply src ≠ original dst means the
connection was DNATed to that endpoint; reply dst ≠ original src means it was masqueraded (SNAT).
"""

from __future__ import annotations

from svcctl.dataplane.model import Flow
from svcctl.errors import InputError
from svcctl.lazyre import LazyPattern

_PROTOS = {"tcp", "udp", "sctp", "icmp", "icmpv6", "udplite", "dccp", "gre", "unknown"}
_FOOTER_RE = LazyPattern(r"^conntrack v[\d.]+ \(conntrack-tools\): \d+ flow entr(?:y|ies) ha(?:s|ve) been shown\.?$")
_KV_RE = LazyPattern(r"(\w+)=(\S+)")


def parse_conntrack(text: str, source: str) -> list[Flow]:
    """Parse `conntrack -L` (also `-o extended` lines that start with `ipv4 2 …`)."""
    flows: list[Flow] = []
    seen_entry = False
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or _FOOTER_RE.match(line) or line.startswith("#"):
            continue
        parts = line.split()
        i = 0
        if parts[0] in ("ipv4", "ipv6") and len(parts) > 2:
            i = 2
        if parts[i] not in _PROTOS or len(parts) < i + 3 or not parts[i + 1].isdigit():
            if not seen_entry:
                raise InputError(f"not `conntrack -L` output: {line[:60]!r}", source=source, line=no,
                                 hint="give the output of `conntrack -L` (or `conntrack -L -o extended`)")
            raise InputError(f"malformed conntrack entry: {line[:60]!r}", source=source, line=no)
        seen_entry = True
        proto = parts[i].upper()
        state = ""
        rest = parts[i + 3:] if len(parts) > i + 2 and parts[i + 2].isdigit() else parts[i + 2:]
        if rest and "=" not in rest[0] and not rest[0].startswith("["):
            state = rest[0]
            rest = rest[1:]
        tuples: list[dict[str, str]] = [{}]
        flags: set[str] = set()
        for tok in rest:
            if tok.startswith("["):
                flags.add(tok.strip("[]"))
                continue
            m = _KV_RE.fullmatch(tok)
            if not m:
                continue
            k, v = m.groups()
            if k == "src" and "src" in tuples[-1]:
                tuples.append({})
            tuples[-1].setdefault(k, v)
        if len(tuples) < 2 or "src" not in tuples[0] or "src" not in tuples[1]:
            raise InputError(f"conntrack entry without a reply tuple: {line[:60]!r}", source=source, line=no)
        orig, reply = tuples[0], tuples[1]
        try:
            flows.append(Flow(
                protocol=proto, src=orig["src"], sport=int(orig.get("sport", 0)), dst=orig.get("dst", ""),
                dport=int(orig.get("dport", 0)), backend_ip=reply["src"], backend_port=int(reply.get("sport", 0)),
                state=state, snat=reply.get("dst", "") != orig["src"], assured="ASSURED" in flags,
            ))
        except ValueError:
            raise InputError(f"bad port number in {line[:60]!r}", source=source, line=no) from None
    return flows


def flows_to(flows: list[Flow], address: str, port: int | None = None, protocol: str | None = None) -> list[Flow]:
    """Flows whose original destination is address[:port] (a VIP, NodePort or external IP)."""
    return [f for f in flows if f.dst == address and (port is None or f.dport == port)
            and (protocol is None or f.protocol == protocol.upper())]


def backend_counts(flows: list[Flow]) -> dict[tuple[str, int], int]:
    """How many connections went to each backend (reply source)."""
    out: dict[tuple[str, int], int] = {}
    for f in flows:
        out[(f.backend_ip, f.backend_port)] = out.get((f.backend_ip, f.backend_port), 0) + 1
    return out

"""Cilium's kube-proxy replacement, read from the agent's own listings.

Formats, from Cilium's printing code:
- `cilium-dbg service list` / older `cilium service list` (`service_list.go`, Go tabwriter, minwidth 5, padding 3):
  a header `ID  Frontend  Service Type  Backend` (Cilium ≤ 1.17; 1.18+ drops the ID column), one row per
  frontend and one `N => ADDR (state)` line per backend below it. Frontends print as `ip:port` (+ `/i` for the
  internal scope of a two-scope service); 1.18+ adds the protocol (`10.96.0.10:53/UDP`). Backend states are the
  API model's enum (`api/v1/models/BackendAddress`: active, terminating, quarantined, maintenance; 1.18+ also
  terminating-not-serving); releases before the state column print no state (all active).
- `-o json` of the same command: the `[]Service` model (`spec` / `status.realized` with `frontend-address`,
  `backend-addresses` (ip, port, protocol, state, weight, nodeName, zone) and `flags` (type, name, namespace,
  extTrafficPolicy, intTrafficPolicy, healthCheckNodePort)).
- `cilium-dbg bpf lb list` (`bpf_lb_list.go`): `SERVICE ADDRESS  BACKEND ADDRESS (REVNAT_ID) (SLOT)`, the slot-0
  master entry `0.0.0.0:0 (revnat) (0) [flags]` (flags from `ServiceFlags.String()`: the type, Local,
  InternalLocal, two-scopes, sessionAffinity, non-routable, check source-range, dsr, ...) and one line per
  backend slot; `--revnat` lists `ID  ADDRESS` reverse-NAT entries. Go map order: keys and slots unsorted.

Semantics: new connections go to the active backends only (random by default, Maglev when configured; weights
only matter with Maglev); terminating backends stay in the map for existing connections and become the fallback
when no backend is active; quarantined (failed the health check) and maintenance backends get no new traffic.
Socket-level load balancing rewrites the destination at connect(), so in-cluster connections never show the
ClusterIP in conntrack: there is no packet NAT to see.
"""

from __future__ import annotations

import json
import re
from typing import Any

from svcctl.dataplane.model import Backend, NodeRules, RuleStats, ServiceEntry
from svcctl.dataplane.replacement import ACTIVE, STATES, Block, assign_shares, clean_lines, split_addr
from svcctl.errors import InputError
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern

__all__ = ["parse_cilium", "looks_like_cilium", "cilium_kinds", "SOCKET_LB_NOTE"]

SVC_HDR_ID = LazyPattern(r"^ID\s+Frontend\s+Service Type\s+Backend\s*$")
SVC_HDR = LazyPattern(r"^Frontend\s+Service Type\s+Backend\s*$")
LB_HDR = LazyPattern(r"^SERVICE ADDRESS\s+BACKEND ADDRESS(?: \(REVNAT_ID\) \(SLOT\))?\s*$")
FE_HDR = LazyPattern(r"^SERVICE ADDRESS\s+BACKEND ID\s*$")
ID_HDR = LazyPattern(r"^ID\s+BACKEND ADDRESS(?: \(REVNAT_ID\) \(SLOT\))?\s*$")
SRC_HDR = LazyPattern(r"^SOURCE RANGE \(REVNAT_ID\)\s*$")
TYPES = ("ClusterIP", "NodePort", "ExternalIPs", "HostPort", "LoadBalancer", "LocalRedirect")
_TYPE = r"(?P<type>ClusterIP|NodePort|ExternalIPs|HostPort|LoadBalancer|LocalRedirect|NONE)(?P<remote>\s\(Remote\))?"
_BE = r"(?P<be>\d+\s=>\s\S.*?)"
ROW_ID = LazyPattern(rf"^(?P<id>\d+)\s+(?P<fe>\S+)\s+{_TYPE}(?:\s+{_BE})?\s*$")
ROW = LazyPattern(rf"^(?P<fe>\S+)\s+{_TYPE}(?:\s+{_BE})?\s*$")
CONT = LazyPattern(rf"^\s+{_BE}\s*$")
BE = LazyPattern(r"^(?P<n>\d+)\s=>\s(?P<addr>\S+)(?:\s\((?P<state>[a-z-]+)\))?(?P<pref>\s\(preferred\))?$")
LB_ROW = LazyPattern(r"^(?P<key>\S+)\s+(?P<val>\S.*?)\s*$")
LB_CONT = LazyPattern(r"^\s+(?P<val>\S.*?)\s*$")
LB_MASTER = LazyPattern(r"^(?:0\.0\.0\.0|\[::\]):0\s\((?P<rev>\d+)\)(?:\s\((?P<slot>\d+)\))?\s\[(?P<flags>[^\]]*)\]"
                       r"(?:\s*\(L7LB Proxy Port: (?P<l7>\d+)\))?$")
LB_BACKEND = LazyPattern(r"^(?P<addr>\S+)\s\((?P<rev>\d+)\)(?:\s\((?P<slot>\d+)\))?$")
LB_MISSING = LazyPattern(r"^backend (?P<id>\d+) not found$")
REVNAT_ROW = LazyPattern(r"^(?P<id>\d+)\s+(?P<addr>\S+)\s*$")
KIND_OF_TYPE = {"ClusterIP": "ClusterIP", "NodePort": "NodePort", "ExternalIPs": "ExternalIP",
                "LoadBalancer": "LoadBalancer", "HostPort": "HostPort", "LocalRedirect": "LocalRedirect"}
SOCKET_LB_NOTE = ("Cilium's socket-level load balancing rewrites the destination at connect(): connections from "
                  "Pods and the host go straight to the backend, so conntrack shows no NAT from the ClusterIP")
_HINT = ("give the output of `cilium-dbg service list` (or `cilium service list`, `-o json`) or "
         "`cilium-dbg bpf lb list`")


@dataclass
class _FE:
    ip: str
    port: int
    proto: str
    internal: bool
    type: str = ""
    name: str | None = None
    id: int | None = None
    remote: bool = False
    listed: list[Backend] | None = None  # from the service list / JSON (with states)
    mapped: list[tuple[int, Backend]] | None = None  # from bpf lb list (slot, backend)
    missing_ids: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    revnat: int | None = None
    ext_local: bool | None = None
    int_local: bool | None = None
    l7_port: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Parsed:
    fes: dict[tuple[str, int, str, bool], _FE] = field(default_factory=dict)
    revnat: dict[int, str] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fe(self, ip: str, port: int, proto: str, internal: bool) -> _FE:
        key = (ip, port, proto, internal)
        found = self.fes.get(key)
        if found is None and proto == "ANY":
            found = next((f for k, f in self.fes.items() if k[0] == ip and k[1] == port and k[3] == internal), None)
        elif found is None:
            found = self.fes.get((ip, port, "ANY", internal))
            if found is not None:  # a protocol-less listing met one with protocols: keep the precise key
                del self.fes[(ip, port, "ANY", internal)]
                found.proto = proto
                self.fes[key] = found
        if found is None:
            found = self.fes[key] = _FE(ip, port, proto, internal)
        return found


def looks_like_cilium(text: str) -> bool:
    """Any of the Cilium listings svcctl reads (used by detection on mixed dumps)."""
    head = text[:20000]
    return bool(re.search(r"^\s*(?:ID\s+)?Frontend\s+Service Type\s+Backend\s*$", head, re.M)
                or re.search(r"^\s*SERVICE ADDRESS\s+BACKEND ADDRESS", head, re.M)
                or ('"frontend-address"' in head and '"backend-addresses"' in head))


def cilium_kinds(text: str) -> list[str]:
    """Which Cilium listings the text holds (service-list, service-list-json, bpf-lb-list, revnat)."""
    return _parse(text, "<text>").kinds


def _kind_from_command(cmd: str) -> str | None:
    words = cmd.split()
    if "service" in words and ("list" in words or "ls" in words):
        return "json" if re.search(r"(?:-o|--output)[ =]?json", cmd) else "svc"
    if "lb" in words and ("list" in words or "ls" in words):
        if "--revnat" in words:
            return "revnat"
        if "--frontends" in words or "--backends" in words or "--source-ranges" in words:
            return "other"
        return "lb"
    return None


def _parse(text: str, source: str) -> _Parsed:
    cleaned = clean_lines(text, source)
    out = _Parsed(notes=list(cleaned.notes))
    for block in cleaned.blocks:
        _parse_block(block, source, out)
    return out


def _parse_block(block: Block, source: str, out: _Parsed) -> None:
    kind = _kind_from_command(block.command) if block.command else None
    headed = False
    lines = block.lines
    i = 0
    current: _FE | None = None
    lb_key: tuple[str, int, str, bool] | None = None
    while i < len(lines):
        n, line = lines[i]
        i += 1
        s = line.strip()
        if not s:
            current, lb_key = None, None
            continue
        if SVC_HDR_ID.match(s) or SVC_HDR.match(s):
            kind, headed, current = "svc", True, None
            _add_kind(out, "service-list")
            continue
        if LB_HDR.match(s):
            kind, headed, lb_key = "lb", True, None
            _add_kind(out, "bpf-lb-list")
            continue
        if ID_HDR.match(s):
            kind, headed = ("revnat" if kind != "backends" else kind), True
            continue
        if FE_HDR.match(s) or SRC_HDR.match(s):
            kind, headed = "other", True
            out.notes.append(f"{source}:{n}: `bpf lb list --frontends/--source-ranges` is not read "
                             "(give the plain listing)")
            continue
        if s[0] in "[{" and kind in (None, "json") and not LB_MASTER.match(s):
            rest = "\n".join(t for _, t in lines[i - 1:])
            try:
                doc, end = json.JSONDecoder().raw_decode(rest.lstrip())
            except json.JSONDecodeError as e:
                raise InputError(f"invalid JSON in `cilium service list -o json` output: {e.msg}",
                                 source=f"{source}:{n + e.lineno - 1}", hint=_HINT) from None
            _read_json(doc, source, n, out)
            _add_kind(out, "service-list-json")
            consumed = rest.lstrip()[:end].count("\n") + 1
            i = i - 1 + consumed
            kind = None
            continue
        if kind == "svc":
            current = _svc_line(line, s, n, source, out, current)
        elif kind == "lb":
            lb_key = _lb_line(line, n, source, out, lb_key)
        elif kind == "revnat":
            m = REVNAT_ROW.match(s)
            if m and "://" in m["addr"]:
                kind = "backends"
                continue
            if not m:
                raise InputError(f"line {n}: not a reverse-NAT entry ({s[:60]!r})", source=source, hint=_HINT)
            out.revnat[int(m["id"])] = m["addr"]
            _add_kind(out, "revnat")
        elif kind in ("other", "backends"):
            continue
        else:
            # rows before any header: a table whose top was cut, or not Cilium output at all
            if ROW_ID.match(s) or ROW.match(s):
                kind = "svc"
                out.notes.append(f"{source}:{n}: the service list's header is missing; read as "
                                 "`cilium-dbg service list`")
                _add_kind(out, "service-list")
                current = _svc_line(line, s, n, source, out, None)
                continue
            if LB_ROW.match(s) and split_addr(s.split()[0]) and " (" in s:
                kind = "lb"
                out.notes.append(f"{source}:{n}: the BPF listing's header is missing; read as "
                                 "`cilium-dbg bpf lb list`")
                _add_kind(out, "bpf-lb-list")
                lb_key = _lb_line(line, n, source, out, None)
                continue
            raise InputError(f"line {n}: not Cilium output ({s[:60]!r})", source=source, hint=_HINT)
    del headed


def _add_kind(out: _Parsed, kind: str) -> None:
    if kind not in out.kinds:
        out.kinds.append(kind)


def _svc_line(line: str, s: str, n: int, source: str, out: _Parsed, current: _FE | None) -> _FE | None:
    if line[:1].isspace():
        m = CONT.match(line)
        if m is None or current is None:
            raise InputError(f"line {n}: a backend line with no frontend above it ({s[:60]!r})", source=source,
                             hint=_HINT)
        _svc_backend(m["be"], n, source, current)
        return current
    m = ROW_ID.match(s) or ROW.match(s)
    if m is None:
        raise InputError(f"line {n}: not a `service list` row ({s[:60]!r})", source=source, hint=_HINT)
    addr = split_addr(m["fe"])
    if addr is None:
        raise InputError(f"line {n}: frontend {m['fe']!r} is not ip:port", source=source,
                         hint="only numeric listings can be matched to Services")
    fe = out.fe(*addr)
    fe.type = m["type"]
    fe.remote = bool(m["remote"])
    if "id" in m.groupdict() and m["id"]:
        fe.id = int(m["id"])
    if fe.listed is None:
        fe.listed = []
    if m["be"]:
        _svc_backend(m["be"], n, source, fe)
    return fe


def _svc_backend(text: str, n: int, source: str, fe: _FE) -> None:
    m = BE.match(text.strip())
    addr = split_addr(m["addr"]) if m else None
    if m is None or addr is None:
        raise InputError(f"line {n}: not a backend `N => ip:port (state)` ({text.strip()[:60]!r})", source=source,
                         hint=_HINT)
    state = m["state"] or ACTIVE
    if state not in STATES:
        raise InputError(f"line {n}: unknown backend state {state!r}", source=source,
                         hint="Cilium's states: " + ", ".join(STATES))
    assert fe.listed is not None
    fe.listed.append(Backend(ip=addr[0], port=addr[1], state=state))


def _lb_line(line: str, n: int, source: str, out: _Parsed,
             key: tuple[str, int, str, bool] | None) -> tuple[str, int, str, bool] | None:
    s = line.strip()
    if line[:1].isspace():
        if key is None:
            raise InputError(f"line {n}: a BPF slot with no service address above it ({s[:60]!r})",
                             source=source, hint=_HINT)
        val = s
    else:
        m = LB_ROW.match(s)
        addr = split_addr(m["key"]) if m else None
        if m is None or addr is None:
            raise InputError(f"line {n}: not a `bpf lb list` row ({s[:60]!r})", source=source, hint=_HINT)
        key = addr
        val = m["val"]
    fe = out.fe(*key)
    key = (fe.ip, fe.port, fe.proto, fe.internal)
    if fe.mapped is None:
        fe.mapped = []
    mm = LB_MASTER.match(val)
    if mm:
        fe.revnat = int(mm["rev"])
        fe.flags = [f.strip() for f in mm["flags"].split(",") if f.strip()]
        typ = fe.flags[0] if fe.flags else ""
        if typ in TYPES and not fe.type:
            fe.type = typ
        fe.ext_local = "Local" in fe.flags
        fe.int_local = "InternalLocal" in fe.flags
        if mm["l7"]:
            fe.l7_port = int(mm["l7"])
        return key
    mb = LB_BACKEND.match(val)
    if mb:
        baddr = split_addr(mb["addr"])
        if baddr is None:
            raise InputError(f"line {n}: backend {mb['addr']!r} is not ip:port", source=source, hint=_HINT)
        slot = int(mb["slot"]) if mb["slot"] else len(fe.mapped) + 1
        fe.mapped.append((slot, Backend(ip=baddr[0], port=baddr[1])))
        if fe.revnat is None:
            fe.revnat = int(mb["rev"])
        return key
    mx = LB_MISSING.match(val)
    if mx:
        fe.missing_ids.append(int(mx["id"]))
        return key
    raise InputError(f"line {n}: not a BPF service slot ({val[:60]!r})", source=source, hint=_HINT)


def _read_json(doc: Any, source: str, line: int, out: _Parsed) -> None:
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise InputError(f"line {line}: expected a list of services in the JSON", source=source, hint=_HINT)
    for i, svc in enumerate(doc):
        where = f"{source}: service [{i}]"
        if not isinstance(svc, dict):
            raise InputError("not a Service object", source=where, hint=_HINT)
        status = svc.get("status")
        spec = (status.get("realized") if isinstance(status, dict) else None) or svc.get("spec")
        if not isinstance(spec, dict):
            raise InputError("has neither status.realized nor spec", source=where, hint=_HINT)
        fa = spec.get("frontend-address")
        if not isinstance(fa, dict) or not fa.get("ip"):
            raise InputError("has no frontend-address.ip", source=where, hint=_HINT)
        try:
            port = int(fa.get("port") or 0)
        except (TypeError, ValueError):
            raise InputError("frontend-address.port is not a number", source=where) from None
        proto = str(fa.get("protocol") or "ANY").upper()
        proto = proto if proto in ("TCP", "UDP", "SCTP") else "ANY"
        fe = out.fe(str(fa["ip"]), port, proto, fa.get("scope") == "internal")
        raw_flags = spec.get("flags")
        flags: dict[str, Any] = raw_flags if isinstance(raw_flags, dict) else {}
        fe.type = str(flags.get("type") or fe.type or "")
        if flags.get("namespace") and flags.get("name"):
            fe.name = f"{flags['namespace']}/{flags['name']}"
        fe.remote = bool(flags.get("cluster")) and fe.remote
        etp = flags.get("extTrafficPolicy") or flags.get("trafficPolicy")
        if etp:
            fe.ext_local = etp == "Local"
        if flags.get("intTrafficPolicy"):
            fe.int_local = flags["intTrafficPolicy"] == "Local"
        if isinstance(spec.get("id"), int):
            fe.id = spec["id"]
        fe.listed = []
        for j, be in enumerate(spec.get("backend-addresses") or []):
            if not isinstance(be, dict) or not be.get("ip"):
                raise InputError(f"backend [{j}] has no ip", source=where, hint=_HINT)
            state = str(be.get("state") or ACTIVE)
            weight = be.get("weight")
            fe.listed.append(Backend(ip=str(be["ip"]), port=int(be.get("port") or 0), state=state,
                                     weight=int(weight) if isinstance(weight, int) else None,
                                     node=str(be.get("nodeName") or "")))


def _entry(fe: _FE, revnat: dict[int, str]) -> ServiceEntry:
    kind = KIND_OF_TYPE.get(fe.type, fe.type or "ClusterIP")
    address = "" if fe.ip in ("0.0.0.0", "::") else fe.ip
    e = ServiceEntry(name=fe.name, protocol=fe.proto, address=address, port=fe.port, kind=kind)
    e.flags = list(fe.flags)
    e.revnat = fe.revnat
    if fe.internal:
        e.scope = "internal"
        e.notes.append("internal scope: what in-cluster clients reach (internalTrafficPolicy)")
    elif "two-scopes" in fe.flags:
        e.scope = "external"
        e.notes.append("external scope: what clients outside the cluster reach (externalTrafficPolicy)")
    external = kind != "ClusterIP" and not fe.internal
    local = fe.ext_local if external else fe.int_local
    e.policy_local = bool(local)
    if fe.listed is not None:
        e.backends = [Backend(ip=b.ip, port=b.port, state=b.state, weight=b.weight, node=b.node)
                      for b in fe.listed]
        if fe.mapped is not None:
            listed = {(b.ip, b.port) for b in fe.listed}
            mapped = {(b.ip, b.port) for _, b in fe.mapped}
            for _, b in sorted(fe.mapped, key=lambda sb: sb[0]):
                if (b.ip, b.port) not in listed:
                    e.backends.append(Backend(ip=b.ip, port=b.port, state=ACTIVE))
                    e.notes.append(f"{b.address} is in the BPF map but not in the agent's service list "
                                   "(agent and datapath out of step)")
            for b in fe.listed:
                if (b.ip, b.port) not in mapped and b.state == ACTIVE:
                    e.notes.append(f"{b.address} is in the agent's service list but in no BPF map slot "
                                   "(the datapath does not send traffic there)")
    elif fe.mapped is not None:
        e.backends = [Backend(ip=b.ip, port=b.port) for _, b in sorted(fe.mapped, key=lambda sb: sb[0])]
        if e.backends:
            e.notes.append("backend states are not in `bpf lb list` (terminating slots look active here): "
                           "give `cilium-dbg service list` too")
    for bid in fe.missing_ids:
        e.notes.append(f"a BPF slot points to backend {bid}, which is not in the backend map")
    assign_shares(e)
    if not e.backends:
        if local and external:
            e.no_local_endpoints = True
            e.notes.append("traffic policy Local and no backend on this node: Cilium drops the packets")
        else:
            e.no_endpoints = True
            e.notes.append("no backends: Cilium drops the packets (drop reason: service backend not found)")
    if "sessionAffinity" in fe.flags:
        e.notes.append("session affinity ClientIP (the timeout is not printed by `bpf lb list`)")
    if "check source-range" in fe.flags:
        deny = "deny" in fe.flags
        e.notes.append("loadBalancerSourceRanges are checked" + (" (as a deny list)" if deny else "")
                       + ": see `cilium-dbg bpf lb list --source-ranges`")
    if "dsr" in fe.flags:
        e.notes.append("DSR: replies go from the backend's node straight to the client")
    if fe.l7_port is not None:
        e.notes.append(f"L7 load balancer: traffic goes to the Envoy proxy on port {fe.l7_port} first")
    if fe.remote:
        e.notes.append("a global (clustermesh) service: backends include other clusters'")
    if fe.revnat is not None and revnat and fe.revnat not in revnat:
        e.notes.append(f"reverse-NAT id {fe.revnat} is missing from the revNAT map: replies cannot be "
                       "translated back to the frontend")
    if fe.revnat is not None and revnat.get(fe.revnat) not in (None, _revnat_addr(fe)):
        e.notes.append(f"reverse-NAT id {fe.revnat} maps to {revnat[fe.revnat]}, not to this frontend")
    e.notes.extend(fe.notes)
    e.path = [f"cilium {fe.type or kind} frontend" + (f" (revNAT {fe.revnat})" if fe.revnat is not None else "")]
    return e


def _revnat_addr(fe: _FE) -> str:
    return f"[{fe.ip}]:{fe.port}" if ":" in fe.ip else f"{fe.ip}:{fe.port}"


def parse_cilium(text: str, source: str, only: set[str] | None = None) -> NodeRules:
    """Every Cilium listing in `text` (several may be concatenated) merged into one NodeRules."""
    if not text.strip():
        raise InputError("empty: no Cilium output", source=source, hint=_HINT)
    parsed = _parse(text, source)
    if not parsed.fes and not parsed.revnat:
        raise InputError("no Cilium service frontends in this output", source=source, hint=_HINT)
    entries = [_entry(fe, parsed.revnat) for fe in parsed.fes.values()]
    kind_order = {"ClusterIP": 0, "NodePort": 1, "ExternalIP": 2, "LoadBalancer": 3}
    entries.sort(key=lambda e: (kind_order.get(e.kind, 9), e.address, e.port, e.protocol, e.scope))
    stats = RuleStats(rules=len(parsed.fes), chains=0,
                      extra={"frontends": len(parsed.fes),
                             "backends": sum(len(e.backends) for e in entries)})
    if only:
        from svcctl.dataplane.model import in_scope

        # NodePorts carry no name or service address here: kept, the caller matches them by port
        entries = [e for e in entries if e.kind == "NodePort" or in_scope(e, only)]
    for e in entries:
        if e.name:
            stats.per_service[e.name] = stats.per_service.get(e.name, 0) + len(e.backends)
    rules = NodeRules("cilium", entries, stats=stats, source=source, notes=list(parsed.notes))
    rules.backend = "+".join(parsed.kinds)
    if "bpf-lb-list" not in parsed.kinds and "revnat" not in parsed.kinds:
        rules.notes.append("read from the agent's service list: what the agent wants; `cilium-dbg bpf lb list` "
                           "shows what the datapath has")
    if parsed.revnat and "bpf-lb-list" not in parsed.kinds:
        rules.notes.append(f"{len(parsed.revnat)} reverse-NAT entries read (with `bpf lb list` they are checked "
                           "against each frontend)")
    return rules

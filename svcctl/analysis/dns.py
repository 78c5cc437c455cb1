"""The DNS hop, pure: what a typed name means, what CoreDNS must answer for it, and what the answers we got say.

The record rules follow CoreDNS' kubernetes plugin (plugin/kubernetes/kubernetes.go `findServices`,
object/endpoint.go `EndpointSliceToEndpoints`): a ClusterIP Service answers its ClusterIPs; a headless one answers
the addresses of endpoints whose `ready` condition is true or unset (the EndpointSlice controller sets it true for
every Pod when `publishNotReadyAddresses` is on); `<host>.<svc>.<ns>.svc.<zone>` matches an endpoint's hostname, or
its dashed IP when it has none; SRV `_<port>._<proto>` matches named ports, pointing at the Service name (ClusterIP)
or at each endpoint's name (headless); ExternalName answers a CNAME. The resolver rules follow glibc with a Pod's
resolv.conf: names with fewer than `ndots` dots try the search list first.

No I/O here: `svcctl.sources.dns` sends the queries and hands the results to `judge`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from svcctl.errors import InputError
from svcctl.findings import Severity, Verdict, verdict_of
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern
from svcctl.model import EndpointSlice, Finding, Pod, Service

DEFAULT_NDOTS = 5
DEFAULT_TIMEOUT = 2.0
DEFAULT_ATTEMPTS = 2
COREDNS_TTL = 5  # CoreDNS kubernetes plugin default (`ttl`)

# pseudo rcodes for queries that got no DNS answer at all
TIMEOUT = "TIMEOUT"
UNREACHABLE = "UNREACHABLE"
MALFORMED = "MALFORMED"
NOT_SENT = "NOT-SENT"
FAILED = (TIMEOUT, UNREACHABLE)

_LABEL = LazyPattern(r"^[a-z0-9_*]([a-z0-9_*-]{0,61}[a-z0-9_*])?$")

WHERE = "coredns plugin/kubernetes (findServices, endpointHostname)"


# ------------------------------------------------------------------------------------------------ the name


@dataclass(frozen=True)
class DNSName:
    """What the user means by a typed name.

    kind: `service` (svc[.ns[.svc[.domain]]]), `pod` (an endpoint's hostname record), `srv` (_port._proto…),
    `external` (not a cluster name: no expectation). `form` is how much was typed (short, namespaced, svc, fqdn),
    which decides whether the search list can surprise."""

    typed: str
    kind: str
    service: str | None
    namespace: str | None
    hostname: str | None = None
    port: str | None = None  # SRV port name, no underscore
    proto: str | None = None  # SRV protocol, no underscore (tcp/udp/sctp)
    form: str = "short"  # short | namespaced | svc | fqdn | external
    absolute: bool = False  # typed with a trailing dot: no search list
    namespace_typed: bool = False  # the namespace came from the name, not from -n
    cluster_domain: str = "cluster.local"

    @property
    def fqdn(self) -> str:
        """The absolute cluster name meant (`svc.ns.svc.domain.`), or the typed name for external ones."""
        if self.kind == "external" or self.service is None or self.namespace is None:
            return self.typed.rstrip(".") + "."
        base = f"{self.service}.{self.namespace}.svc.{self.cluster_domain}."
        if self.kind == "pod":
            return f"{self.hostname}.{base}"
        if self.kind == "srv":
            return f"_{self.port}._{self.proto}.{base}"
        return base

    def to_json(self) -> dict[str, Any]:
        return {"typed": self.typed, "kind": self.kind, "service": self.service, "namespace": self.namespace,
                "hostname": self.hostname, "port": self.port, "proto": self.proto, "form": self.form,
                "fqdn": self.fqdn}


def _check_labels(labels: list[str], typed: str) -> None:
    for lab in labels:
        if not lab or len(lab) > 63 or not _LABEL.match(lab):
            raise InputError(f"{typed!r} is not a valid DNS name (label {lab!r})",
                             hint="labels are 1-63 letters, digits and dashes")


def interpret_name(name: str, namespace: str, cluster_domain: str = "cluster.local") -> DNSName:
    """Read `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<domain>[.]`, `<host>.svc.ns.svc.<domain>` and
    `_port._proto.svc.ns.svc.<domain>`; anything else that cannot be a cluster name is `external`."""
    typed = name.strip()
    if not typed or typed == ".":
        raise InputError("empty DNS name")
    absolute = typed.endswith(".")
    text = typed.rstrip(".").lower()
    domain = cluster_domain.strip(".").lower()
    labels = text.split(".")
    _check_labels(labels, typed)
    dom = domain.split(".")
    common: dict[str, Any] = {"typed": typed, "absolute": absolute, "cluster_domain": domain}

    def cluster(rest: list[str], form: str) -> DNSName | None:
        # rest = the labels before `.svc[.domain]`
        if len(rest) == 2:
            return DNSName(kind="service", service=rest[0], namespace=rest[1], form=form, namespace_typed=True,
                           **common)
        if len(rest) == 3 and not rest[0].startswith("_"):
            return DNSName(kind="pod", hostname=rest[0], service=rest[1], namespace=rest[2], form=form,
                           namespace_typed=True, **common)
        if len(rest) == 4 and rest[0].startswith("_") and rest[1].startswith("_"):
            return DNSName(kind="srv", port=rest[0][1:], proto=rest[1][1:], service=rest[2], namespace=rest[3],
                           form=form, namespace_typed=True, **common)
        return None

    if labels[-len(dom) - 1:] == ["svc", *dom] and len(labels) > len(dom) + 1:
        got = cluster(labels[:-len(dom) - 1], "fqdn")
        if got is not None:
            return got
        return DNSName(kind="external", service=None, namespace=None, form="external", **common)
    if absolute:
        # an absolute name outside <domain>: resolved as typed, no search list
        return DNSName(kind="external", service=None, namespace=None, form="external", **common)
    if labels[-1] == "svc" and len(labels) > 1:
        got = cluster(labels[:-1], "svc")
        if got is not None:
            return got
    if len(labels) == 1:
        if labels[0].startswith("_"):
            raise InputError(f"{typed!r}: an SRV name needs _port._proto.<service>")
        return DNSName(kind="service", service=labels[0], namespace=namespace, form="short", **common)
    if len(labels) == 2 and not labels[0].startswith("_"):
        return DNSName(kind="service", service=labels[0], namespace=labels[1], form="namespaced",
                       namespace_typed=True, **common)
    if len(labels) >= 3 and labels[0].startswith("_") and labels[1].startswith("_"):
        rest = labels[2:]
        if len(rest) == 1:
            return DNSName(kind="srv", port=labels[0][1:], proto=labels[1][1:], service=rest[0],
                           namespace=namespace, form="short", **common)
        if len(rest) == 2:
            return DNSName(kind="srv", port=labels[0][1:], proto=labels[1][1:], service=rest[0],
                           namespace=rest[1], form="namespaced", namespace_typed=True, **common)
    if len(labels) == 3 and not labels[0].startswith("_"):
        # host.svc.ns: resolves through the `svc.<domain>` search suffix to an endpoint record
        return DNSName(kind="pod", hostname=labels[0], service=labels[1], namespace=labels[2],
                       form="namespaced", namespace_typed=True, **common)
    return DNSName(kind="external", service=None, namespace=None, form="external", **common)


# ------------------------------------------------------------------------------------------------ resolver config


@dataclass
class ResolverConfig:
    """The parts of a Pod's /etc/resolv.conf a lookup depends on."""

    nameservers: list[str] = field(default_factory=list)  # "ip" or "ip:port" / "[v6]:port"
    search: list[str] = field(default_factory=list)
    ndots: int = DEFAULT_NDOTS
    timeout: float | None = None
    attempts: int | None = None
    edns0: bool = False
    source: str = "pod default"

    def to_json(self) -> dict[str, Any]:
        return {"nameservers": self.nameservers, "search": self.search, "ndots": self.ndots,
                "timeout": self.timeout, "attempts": self.attempts, "source": self.source}


def pod_search_list(namespace: str, cluster_domain: str) -> list[str]:
    """What the kubelet writes into a ClusterFirst Pod's resolv.conf (before the node's own search domains)."""
    d = cluster_domain.strip(".")
    return [f"{namespace}.svc.{d}", f"svc.{d}", d]


def parse_resolv_conf(text: str, source: str = "resolv.conf") -> ResolverConfig:
    """glibc's reading: last `search`/`domain` wins, `options ndots:N timeout:N attempts:N edns0`."""
    cfg = ResolverConfig(source=source)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        key, args = parts[0], parts[1:]
        if key == "nameserver":
            if len(args) != 1:
                raise InputError("`nameserver` takes one address", source=source, line=lineno)
            try:
                ipaddress.ip_address(args[0].split("%", 1)[0])
            except ValueError:
                raise InputError(f"nameserver {args[0]!r} is not an IP address", source=source,
                                 line=lineno) from None
            cfg.nameservers.append(args[0])
        elif key in ("search", "domain"):
            cfg.search = [a.strip(".").lower() for a in args if a.strip(".")]
        elif key == "options":
            for opt in args:
                k, _, v = opt.partition(":")
                try:
                    if k == "ndots":
                        cfg.ndots = min(max(int(v), 0), 15)
                    elif k == "timeout":
                        cfg.timeout = float(min(max(int(v), 1), 30))
                    elif k == "attempts":
                        cfg.attempts = min(max(int(v), 1), 5)
                    elif k == "edns0":
                        cfg.edns0 = True
                except ValueError:
                    raise InputError(f"bad option {opt!r}", source=source, line=lineno) from None
    return cfg


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """`IP`, `IP:PORT`, `[V6]:PORT` or a bare IPv6 address → (ip, port); InputError otherwise."""
    t = text.strip()
    host, port = t, default_port
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", t)
    if m:
        host, port = m.group(1), int(m.group(2)) if m.group(2) else default_port
    elif t.count(":") == 1:
        host, _, p = t.partition(":")
        if not p.isdigit():
            raise InputError(f"bad DNS server {text!r}: port must be a number", hint="use IP[:PORT]")
        port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"bad DNS server {text!r}: not an IP address",
                         hint="use IP[:PORT], e.g. 10.96.0.10:53") from None
    if not 0 < port < 65536:
        raise InputError(f"bad DNS server {text!r}: port {port} out of range", hint="use IP[:PORT]")
    return host, port


def format_server(ip: str, port: int) -> str:
    if port == 53:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def candidate_names(typed: str, search: list[str], ndots: int) -> list[str]:
    """glibc res_search order: absolute → as typed only; fewer than ndots dots → search list, then as typed;
    else as typed first, then the search list."""
    if typed.endswith("."):
        return [typed.lower()]
    base = typed.lower()
    searched = [f"{base}.{s.strip('.')}." for s in search if s.strip(".")]
    as_is = base + "."
    out = searched + [as_is] if base.count(".") < ndots else [as_is, *searched]
    return list(dict.fromkeys(out))  # a search suffix equal to the name's own tail is asked once


# ------------------------------------------------------------------------------------------------ expectations


@dataclass(frozen=True)
class ExpectedRecord:
    """One record the API says CoreDNS must serve; `data` is an IP, a CNAME target, or `port target` for SRV."""

    name: str
    type: str
    data: str
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "data": self.data, "why": self.why}


@dataclass
class Expectation:
    """The records, the types worth asking for, and what explains an empty answer."""

    records: list[ExpectedRecord] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    known: bool = True  # False: the name is not a cluster name, nothing to compare against
    notes: list[str] = field(default_factory=list)


def _families(service: Service) -> list[str]:
    fam = [f for f in service.ip_families if f in ("IPv4", "IPv6")]
    if not fam:
        ips = [ip for ip in service.cluster_ips if ip not in ("", "None")]
        fam = sorted({"IPv6" if ":" in ip else "IPv4" for ip in ips}) or ["IPv4"]
    return fam


def family_types(service: Service | None) -> list[str]:
    if service is None:
        return ["A"]
    if service.type == "ExternalName":
        return ["A"]
    return ["A" if f == "IPv4" else "AAAA" for f in _families(service)]


def _rtype_of(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def _published(slices: list[EndpointSlice]) -> list[tuple[str, str, str, EndpointSlice]]:
    """(ip, endpoint name, pod, slice) for every address CoreDNS publishes: `ready` true or unset."""
    out: list[tuple[str, str, str, EndpointSlice]] = []
    seen: set[str] = set()
    for sl in slices:
        if sl.address_type not in ("IPv4", "IPv6"):
            continue
        for ep in sl.endpoints:
            if ep.ready is False:
                continue
            for ip in ep.addresses:
                if ip in seen:
                    continue
                seen.add(ip)
                pod = f"{ep.target_namespace or sl.meta.namespace}/{ep.target_name}" if ep.target_name else ""
                out.append((ip, ep.hostname or dashed(ip), pod, sl))
    return out


def expected_records(service: Service | None, slices: list[EndpointSlice], pods: list[Pod], name: DNSName,
                     domain: str = "cluster.local") -> Expectation:
    """What CoreDNS' kubernetes plugin answers for `name`, from the API objects alone."""
    exp = Expectation()
    domain = domain.strip(".").lower()
    if name.kind == "external":
        exp.known = False
        exp.types = ["A"]
        exp.notes.append(f"{name.typed} is not a name in the cluster zone {domain}: no record to compare with")
        return exp
    base = f"{name.service}.{name.namespace}.svc.{domain}."
    if service is None:
        exp.types = ["SRV"] if name.kind == "srv" else ["A"]
        exp.notes.append(f'no Service "{name.service}" in namespace "{name.namespace}": CoreDNS answers NXDOMAIN')
        return exp
    s = service
    key = s.meta.key

    if name.kind == "srv":
        exp.types = ["SRV"]
        proto = (name.proto or "").upper()
        if s.type == "ExternalName":
            exp.notes.append("ExternalName Services have no SRV records")
            return exp
        ports = [p for p in s.ports if p.name and p.name.lower() == (name.port or "")
                 and p.protocol.upper() == proto]
        if not ports:
            named = [f"_{p.name}._{p.protocol.lower()}" for p in s.ports if p.name]
            exp.notes.append(f"{key} has no port named {name.port!r} with protocol {proto}: SRV needs a named port"
                             + (f" (it has {', '.join(named)})" if named else " (it has no named port)"))
            return exp
        if not s.headless:
            for p in ports:
                exp.records.append(ExpectedRecord(name.fqdn, "SRV", f"{p.port} {base}",
                                                  f"named port {p.name} of ClusterIP Service {key}"))
            return exp
        for ip, host, pod, sl in _published(slices):
            for sp in sl.ports:
                if sp.port is None or sp.name.lower() != (name.port or "") or sp.protocol.upper() != proto:
                    continue
                exp.records.append(ExpectedRecord(name.fqdn, "SRV", f"{sp.port} {host}.{base}",
                                                  f"endpoint {ip}{' ' + pod if pod else ''} of headless {key}"))
        if not exp.records:
            exp.notes.append(f"headless {key} has no ready endpoint with port {name.port}: CoreDNS answers NXDOMAIN")
        return exp

    if s.type == "ExternalName":
        exp.types = ["A"]
        if name.kind == "pod":
            exp.notes.append("ExternalName Services have no endpoint records")
            return exp
        target = s.external_name.strip(".").lower()
        if target:
            exp.records.append(ExpectedRecord(name.fqdn, "CNAME", target + ".", f"ExternalName of {key}"))
        else:
            exp.notes.append(f"ExternalName {key} has an empty externalName")
        return exp

    exp.types = family_types(s)
    published = _published(slices)
    if name.kind == "pod":
        # CoreDNS answers endpoint names for any Service with endpoints (headless or not)
        want = (name.hostname or "").lower()
        for ip, host, pod, _ in published:
            if host.lower() == want and _rtype_of(ip) in exp.types:
                exp.records.append(ExpectedRecord(name.fqdn, _rtype_of(ip), ip,
                                                  f"endpoint {pod or ip} of {key} has hostname {host}"))
        if not exp.records:
            exp.notes += _why_no_pod_record(s, slices, pods, want)
        return exp

    if not s.headless:
        for ip in s.cluster_ips:
            if ip and ip != "None" and _rtype_of(ip) in exp.types:
                exp.records.append(ExpectedRecord(name.fqdn, _rtype_of(ip), ip, f"ClusterIP of {key}"))
        return exp
    for ip, _host, pod, _ in published:
        if _rtype_of(ip) in exp.types:
            exp.records.append(ExpectedRecord(name.fqdn, _rtype_of(ip), ip,
                                              f"ready endpoint{' ' + pod if pod else ''} of headless {key}"))
    if s.publish_not_ready_addresses:
        exp.notes.append("publishNotReadyAddresses: the EndpointSlice controller marks every Pod's endpoint ready, "
                         "so not-ready Pods are published too")
    if not exp.records:
        notready = sum(1 for sl in slices for ep in sl.endpoints if ep.ready is False)
        exp.notes.append(f"headless {key} has no ready endpoint" + (f" ({notready} not ready)" if notready else "")
                         + ": CoreDNS answers NXDOMAIN")
    return exp


def _why_no_pod_record(s: Service, slices: list[EndpointSlice], pods: list[Pod], host: str) -> list[str]:
    notes: list[str] = []
    for sl in slices:
        for ep in sl.endpoints:
            if (ep.hostname or "").lower() == host and ep.ready is False:
                notes.append(f"endpoint {ep.addresses[0] if ep.addresses else '?'} has hostname {host} but is not "
                             "ready: CoreDNS does not publish it")
    for p in pods:
        if p.hostname.lower() != host or p.meta.namespace != s.meta.namespace:
            continue
        if p.subdomain != s.meta.name:
            notes.append(f"Pod {p.key} has hostname {p.hostname} but subdomain {p.subdomain or '(none)'!r}, not "
                         f"{s.meta.name!r}: the endpoint gets no hostname, so no record")
        elif not p.ready and not s.publish_not_ready_addresses:
            notes.append(f"Pod {p.key} has hostname {p.hostname} but is not ready")
    if not notes:
        notes.append(f"no endpoint of {s.meta.key} has hostname {host!r} (set spec.hostname and "
                     f"spec.subdomain: {s.meta.name} on the Pod): CoreDNS answers NXDOMAIN")
    return notes


# ------------------------------------------------------------------------------------------------ queries


@dataclass
class Answer:
    name: str
    type: str
    data: str
    ttl: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "data": self.data, "ttl": self.ttl}


@dataclass
class DNSQuery:
    """One (name, type) asked, with the server that answered (or the last one tried) and what came back."""

    name: str
    type: str
    server: str
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, … or TIMEOUT / UNREACHABLE / MALFORMED
    answers: list[Answer] = field(default_factory=list)
    purpose: str = "search"  # search | control | cname
    transport: str = "udp"  # udp | tcp (after a truncated UDP answer)
    truncated: bool = False
    tries: int = 1
    errors: list[str] = field(default_factory=list)
    elapsed_ms: float | None = None

    @property
    def positive(self) -> bool:
        """Records of the asked type (or a CNAME) at this name: the resolver stops here."""
        want = self.name.lower()
        return self.rcode == "NOERROR" and any(
            a.name.lower() == want and a.type in (self.type, "CNAME") for a in self.answers)

    @property
    def failed(self) -> bool:
        return self.rcode in FAILED

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "server": self.server, "rcode": self.rcode,
            "answers": [{"data": a.data, "ttl": a.ttl, "type": a.type, "name": a.name} for a in self.answers],
            "purpose": self.purpose, "transport": self.transport, "tries": self.tries,
        }
        if self.truncated:
            out["truncated"] = True
        if self.errors:
            out["errors"] = self.errors
        if self.elapsed_ms is not None:
            out["elapsedMs"] = round(self.elapsed_ms, 1)
        return out


@dataclass
class RecordDiff:
    """Expected vs got for one record: ok, missing (API says it should be there), extra (DNS has it, API not)."""

    type: str
    data: str
    status: str  # ok | missing | extra
    ttl: int | None = None
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data, "status": self.status, "ttl": self.ttl, "why": self.why}


def _norm(rtype: str, data: str) -> str:
    d = data.strip().lower()
    if rtype == "SRV":
        parts = d.split()
        if len(parts) == 4:  # priority weight port target
            d = f"{parts[2]} {parts[3]}"
        port, _, target = d.partition(" ")
        return f"{port} {target.rstrip('.')}."
    if rtype == "CNAME":
        return d.rstrip(".") + "."
    if rtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(d))
        except ValueError:
            return d
    return d


def compare(expected: list[ExpectedRecord], got: list[Answer], types: list[str], owner: str) -> list[RecordDiff]:
    """Compare records at `owner` of the asked `types` (CNAME always) with the expectation."""
    owner = owner.lower().rstrip(".") + "."
    kinds = set(types) | {"CNAME"}
    have: dict[tuple[str, str], Answer] = {}
    for a in got:
        if a.name.lower().rstrip(".") + "." == owner and a.type in kinds:
            have.setdefault((a.type, _norm(a.type, a.data)), a)
    want: dict[tuple[str, str], ExpectedRecord] = {}
    for e in expected:
        if e.type in kinds:
            want.setdefault((e.type, _norm(e.type, e.data)), e)
    out: list[RecordDiff] = []
    for k, e in want.items():
        hit = have.get(k)
        out.append(RecordDiff(k[0], e.data, "ok" if hit else "missing", hit.ttl if hit else None, e.why))
    for k, a in have.items():
        if k not in want:
            out.append(RecordDiff(k[0], a.data, "extra", a.ttl, "in DNS, not in the API"))
    return out


@dataclass
class Prediction:
    """One name a Pod's resolver would try, answered from the API instead of a server (snapshot mode).

    `records` None: the name is outside the cluster zone, so what upstream DNS says cannot be known offline."""

    name: str
    records: list[ExpectedRecord] | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name,
                "rcode": "UNKNOWN" if self.records is None else ("NOERROR" if self.records else "NXDOMAIN"),
                "answers": None if self.records is None else [{"data": e.data, "type": e.type}
                                                               for e in self.records]}


# ------------------------------------------------------------------------------------------------ the report


@dataclass
class DNSReport:
    """Everything the DNS hop learnt: the name understood, the queries sent, expected vs got, and findings."""

    name: DNSName
    namespace: str  # the querying Pod's namespace (search list)
    cluster_domain: str
    resolver: ResolverConfig
    queried: bool
    types: list[str] = field(default_factory=list)
    expected: list[ExpectedRecord] = field(default_factory=list)
    comparable: bool = True  # False: no cluster source, so answers cannot be checked against the API
    queries: list[DNSQuery] = field(default_factory=list)
    resolved_name: str | None = None
    diffs: list[RecordDiff] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    service: str | None = None  # ns/name of the Service the name was matched to
    predicted: list[Prediction] = field(default_factory=list)  # snapshot mode: the search list walked offline
    # the server is the kube-dns ClusterIP and svcctl runs outside the cluster: silence may mean "not routable
    # from here" rather than "DNS is down", so transport failures are warnings
    from_outside: bool = False

    @property
    def verdict(self) -> Verdict:
        return verdict_of(f.severity for f in self.findings)

    @property
    def broken(self) -> bool:
        return self.verdict is Verdict.BROKEN

    @property
    def answers(self) -> list[Answer]:
        """What a Pod's resolver returns: the answers of the name it stopped at."""
        if self.resolved_name is None:
            return []
        return [a for q in self.queries if q.purpose in ("search", "cname") and q.name == self.resolved_name
                for a in q.answers]

    def to_json(self) -> dict[str, Any]:
        from svcctl import API_VERSION

        return {
            "apiVersion": API_VERSION,
            "kind": "DNSReport",
            "name": self.name.to_json(),
            "namespace": self.namespace,
            "clusterDomain": self.cluster_domain,
            "resolver": self.resolver.to_json(),
            "queried": self.queried,
            "fromOutsideCluster": self.from_outside,
            "service": self.service,
            "types": self.types,
            "queries": [q.to_json() for q in self.queries],
            "resolvedName": self.resolved_name,
            "predicted": [p.to_json() for p in self.predicted],
            "expected": [e.to_json() for e in self.expected],
            "comparison": [d.to_json() for d in self.diffs],
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
            "verdict": self.verdict.value,
        }


# ------------------------------------------------------------------------------------------------ judgement


def _in_domain(qname: str, domain: str) -> bool:
    n = qname.lower().rstrip(".")
    return n == domain or n.endswith("." + domain)


def _zone_parts(qname: str, domain: str) -> list[str] | None:
    """Labels before `.svc.<domain>.`, or None when the name is outside the cluster's service zone."""
    n = qname.lower().rstrip(".")
    suffix = f".svc.{domain}"
    if not n.endswith(suffix):
        return None
    return n[: -len(suffix)].split(".")


def describe_cluster_name(qname: str, domain: str) -> str:
    parts = _zone_parts(qname, domain)
    if parts is None:
        return "outside the cluster zone"
    if len(parts) == 2:
        return f"Service {parts[1]}/{parts[0]}"
    if len(parts) == 3:
        return f"endpoint {parts[0]} of Service {parts[2]}/{parts[1]}"
    if len(parts) == 4:
        return f"SRV {parts[0]}.{parts[1]} of Service {parts[3]}/{parts[2]}"
    return "a name in the cluster zone"


def judge(report: DNSReport, *, service_hint: str = "") -> None:
    """Fill in `diffs` and `findings` from the queries already in `report` (pure)."""
    r = report
    n = r.name
    dom = r.cluster_domain
    search = [q for q in r.queries if q.purpose == "search"]
    control = [q for q in r.queries if q.purpose == "control"]
    control_ok: bool | None = None
    if control:
        control_ok = any(q.rcode == "NOERROR" and q.answers for q in control)
    servers = ", ".join(r.resolver.nameservers) or "-"

    def outage_tail() -> str:
        if control_ok is None:
            return ""
        if control_ok:
            return "; the control query (kubernetes.default) was answered, so DNS itself works"
        return "; the control query (kubernetes.default) failed too: DNS itself is broken, not this Service"

    if not search:
        return
    # 1. transport failures first: timeouts / unreachable servers
    failed = [q for q in search if q.failed]
    stopped = bool(failed) and r.resolved_name is None  # the resolver gives up the search at a timeout
    if stopped:
        last = failed[0]
        code = "DNSTimeout" if last.rcode == TIMEOUT else "DNSServerUnreachable"
        what = ("no answer within the timeout" if last.rcode == TIMEOUT
                else "the server refused or could not be reached (ICMP unreachable / no route)")
        hint = ("check the CoreDNS Pods (kubectl -n kube-system get pods -l k8s-app=kube-dns) and their logs"
                if control_ok is False else "the kube-dns ClusterIP only answers inside the cluster: run svcctl in a "
                "Pod or on a node, or pass --dns-server with an address that reaches CoreDNS")
        if r.from_outside:
            r.findings.append(Finding(
                code, Severity.WARNING, f"{last.name} {last.type}: {what} from the kube-dns ClusterIP {servers}; svcctl "
                "runs outside the cluster, where ClusterIPs are usually not routable, so this says little about DNS",
                evidence="; ".join(last.errors[-3:]) or last.rcode,
                hint="run svcctl in a Pod or on a node, or pass --dns-server with an address that reaches CoreDNS "
                     "(e.g. a CoreDNS Pod IP from a node, or a port-forward)", where="resolver"))
            return
        r.findings.append(Finding(code, Severity.ERROR, f"{last.name} {last.type}: {what} from {servers}{outage_tail()}",
                                  evidence="; ".join(last.errors[-3:]) or last.rcode, hint=hint, where="resolver"))
    if control_ok is False and not stopped and r.resolved_name is None:
        r.findings.append(Finding("DNSOutage", Severity.ERROR,
                                  "the control query kubernetes.default.svc." + dom + " failed as well: "
                                  "DNS itself is broken, not only this name",
                                  evidence="; ".join(f"{q.name} {q.type} {q.rcode}" for q in control),
                                  hint="check CoreDNS: its Pods, logs, and the kube-dns Service's endpoints",
                                  where="control query"))
    # 2. server errors and garbage
    in_zone = [q for q in search if _in_domain(q.name, dom) or q.name.lower() == n.fqdn.lower()]
    server_trouble = [q for q in in_zone if q.rcode in ("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", MALFORMED)]
    for q in in_zone:
        if q.rcode in ("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP"):
            r.findings.append(Finding("DNSServerFailure", Severity.ERROR if r.resolved_name is None else Severity.WARNING,
                                      f"{q.name} {q.type}: the server answered {q.rcode}{outage_tail()}",
                                      evidence=f"{q.server} rcode {q.rcode}",
                                      hint="SERVFAIL from CoreDNS usually means its upstream or the API watch is "
                                           "failing: check its logs", where="resolver"))
            break
    for q in in_zone:
        if q.rcode == MALFORMED:
            r.findings.append(Finding("DNSMalformedAnswer", Severity.ERROR if r.resolved_name is None else Severity.WARNING,
                                      f"{q.name} {q.type}: the answer from {q.server} could not be parsed",
                                      evidence="; ".join(q.errors[-2:]),
                                      hint="something other than a DNS server answers on that address, or a "
                                           "middlebox mangles the packets", where="resolver"))
            break
    if stopped or (server_trouble and r.resolved_name is None):
        return  # already explained: no point calling the name missing

    # 3. where the search stopped
    resolved = r.resolved_name
    intended = n.fqdn.lower()
    if resolved is not None and resolved.lower() != intended:
        idx = next((i for i, q in enumerate(search) if q.name == resolved), 0)
        inside = _zone_parts(resolved, dom) is not None
        if n.kind == "external":
            if inside:
                r.findings.append(Finding(
                    "DNSSearchPathSurprise", Severity.WARNING,
                    f"{n.typed!r} resolved as {resolved} ({describe_cluster_name(resolved, dom)}) through the "
                    "search list, not as the outside name you typed",
                    evidence=f"tried {', '.join(q.name for q in search[:idx + 1])}",
                    hint=f"end the name with a dot ({n.typed.rstrip('.')}.) to skip the search list",
                    where="resolv.conf search + ndots"))
        else:
            target = describe_cluster_name(resolved, dom) if inside else "a name outside the cluster zone"
            r.findings.append(Finding(
                "DNSSearchPathSurprise", Severity.WARNING,
                f"{n.typed!r} (meant: {n.fqdn}) resolved as {resolved}: {target}",
                evidence=f"ndots:{r.resolver.ndots}, search {' '.join(r.resolver.search)}; tried "
                         + ", ".join(f"{q.name} {q.rcode}" for q in search[:idx + 1]),
                hint=f"use the full name {n.fqdn} (with the trailing dot) to get what you meant",
                where="resolv.conf search + ndots"))
    elif resolved is not None and n.kind != "external":
        misses = [q for q in search if q.name != resolved and not q.positive]
        tried_before = {q.name for q in misses}
        if tried_before and n.namespace_typed and n.namespace != r.namespace and not n.absolute:
            r.findings.append(Finding(
                "DNSSearchPathSurprise", Severity.INFO,
                f"{n.typed!r} from namespace {r.namespace} resolved as {resolved} only after "
                f"{len(tried_before)} failed lookup(s) through the search list",
                evidence="tried " + ", ".join(q.name for q in misses) + f", then {resolved}",
                hint=f"{n.fqdn} (with the trailing dot) resolves in one query",
                where="resolv.conf search + ndots"))

    # 4. not found
    if resolved is None and n.kind != "external":
        rc = {q.rcode for q in search if q.name.lower() == intended}
        why = ("NXDOMAIN" if "NXDOMAIN" in rc else "no record of the asked type (NODATA)" if rc == {"NOERROR"}
               else "/".join(sorted(rc)) if rc else "never asked (not on the search list)")
        msg = f"{n.fqdn} ({describe_cluster_name(n.fqdn, dom)}): {why}"
        if r.expected:
            msg += f", but the API says it should answer {', '.join(e.data for e in r.expected)}"
        elif r.service and r.notes:
            msg += f", as the API predicts ({r.notes[-1]})"
        if control_ok:
            msg += outage_tail()
        nodata_as_predicted = not r.expected and r.service is not None and rc == {"NOERROR"}
        r.findings.append(Finding("DNSNameNotFound", Severity.INFO if nodata_as_predicted else Severity.ERROR, msg,
                                  evidence="; ".join(f"{q.name} {q.type} {q.rcode}" for q in search),
                                  hint=service_hint or "; ".join(r.notes[:2]), where=WHERE))
        if r.expected:
            r.diffs = [RecordDiff(e.type, e.data, "missing", None, e.why) for e in r.expected]
        return
    if resolved is None:
        r.findings.append(Finding("DNSNameNotFound", Severity.ERROR, f"{n.typed} does not resolve",
                                  evidence="; ".join(f"{q.name} {q.type} {q.rcode}" for q in search),
                                  where="resolver"))
        return

    # 5. compare what the resolver returned with the API
    if not r.comparable or n.kind == "external" or resolved.lower() != intended:
        return
    got = [a for q in r.queries if q.purpose == "search" and q.name == resolved for a in q.answers]
    r.diffs = compare(r.expected, got, r.types, resolved)
    missing = [d for d in r.diffs if d.status == "missing"]
    extra = [d for d in r.diffs if d.status == "extra"]
    if missing or extra:
        parts = []
        if extra:
            parts.append("extra (in DNS, not in the API): " + ", ".join(f"{d.type} {d.data}" for d in extra))
        if missing:
            parts.append("missing (in the API, not in DNS): " + ", ".join(f"{d.type} {d.data}" for d in missing))
        r.findings.append(Finding(
            "DNSMismatch", Severity.ERROR, f"{resolved} answers differ from the API: " + "; ".join(parts),
            evidence=f"expected {', '.join(e.data for e in r.expected) or 'nothing'}; got "
                     + (", ".join(f"{a.data} (ttl {a.ttl})" for a in got) or "nothing"),
            hint="CoreDNS serves from its watch of Services and EndpointSlices: a stale answer lasts one TTL; longer "
                 "means CoreDNS lost its API watch (check its logs) or something else answers for the zone",
            where=WHERE))
    # ExternalName: the CNAME target should resolve
    if any(e.type == "CNAME" for e in r.expected):
        follow = [q for q in r.queries if q.purpose == "cname"]
        chased = {a.name.lower() for q in r.queries if q.name == resolved for a in q.answers if a.type != "CNAME"}
        for q in follow:
            if not q.positive and q.name.lower() not in chased:
                r.findings.append(Finding(
                    "DNSNameNotFound", Severity.WARNING,
                    f"the ExternalName target {q.name} does not resolve ({q.rcode}): clients get the CNAME and then "
                    "nothing", evidence=f"{q.name} {q.type} {q.rcode} from {q.server}",
                    hint="check spec.externalName and the upstream resolvers CoreDNS forwards to", where=WHERE))


def judge_prediction(report: DNSReport, predictions: list[Prediction], *, service_found: bool,
                     service_hint: str = "", nodata: bool = False) -> None:
    """Snapshot mode: findings the API alone proves — the name cannot resolve, or the search list would stop at
    another object first. Nothing was sent, so no timeout, mismatch or server finding is possible."""
    r = report
    n = r.name
    r.predicted = predictions
    if n.kind == "external":
        return
    hit = next((p for p in predictions if p.records), None)
    walked = ", ".join(p.name + (" ?" if p.records is None else " → " + ",".join(e.data for e in p.records)
                                 if p.records else " NXDOMAIN") for p in predictions)
    if hit is not None and hit.name.lower() != n.fqdn.lower():
        r.findings.append(Finding(
            "DNSSearchPathSurprise", Severity.WARNING,
            f"{n.typed!r} (meant: {n.fqdn}) would resolve as {hit.name}: "
            f"{describe_cluster_name(hit.name, r.cluster_domain)} (predicted from the API; no query was sent)",
            evidence=f"ndots:{r.resolver.ndots}, search {' '.join(r.resolver.search)}; a Pod would try {walked}",
            hint=f"use the full name {n.fqdn} (with the trailing dot) to get what you meant",
            where="resolv.conf search + ndots"))
        return
    if r.expected:
        return
    if nodata:
        r.findings.append(Finding(
            "DNSNameNotFound", Severity.INFO, f"{n.fqdn} exists but has no {'/'.join(r.types)} record: CoreDNS would "
            f"answer NODATA ({r.notes[-1]})", where="coredns plugin/kubernetes"))
        return
    why = "no Service " + f"{n.namespace}/{n.service} in the API" if not service_found else "; ".join(r.notes[1:3])
    r.findings.append(Finding(
        "DNSNameNotFound", Severity.ERROR, f"{n.fqdn}: CoreDNS would answer NXDOMAIN ({why})",
        evidence=f"a Pod would try {walked}" if walked else "", hint=service_hint or "; ".join(r.notes[1:3]),
        where="coredns plugin/kubernetes"))


def summary(report: DNSReport) -> str:
    """One line for the trace's DNS hop."""
    r = report
    if not r.queried:
        data = ", ".join(sorted({e.data for e in r.expected})) or "no record"
        return f"{r.name.fqdn} → {data} (expected; no query was sent)"
    if r.resolved_name is None:
        last = [q for q in r.queries if q.purpose == "search"]
        return f"{r.name.typed} did not resolve ({last[-1].rcode if last else 'not asked'})"
    data = ", ".join(sorted({a.data for a in r.answers})) or "-"
    return f"{r.resolved_name} → {data}"

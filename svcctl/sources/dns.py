"""The DNS hop's I/O: ask a DNS server the way a Pod's resolver would, and gather what the API says.

Queries go out as glibc sends them: plain UDP without EDNS (unless resolv.conf says `edns0`), the search list in
ndots order, each server in turn for `attempts` rounds, a truncated answer retried over TCP. The UDP socket is
connected so an ICMP port-unreachable surfaces as "refused" instead of a silent timeout. The judgement is
`svcctl.analysis.dns.judge`; this module only collects.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

from svcctl.analysis.dns import (
    DEFAULT_ATTEMPTS,
    DEFAULT_TIMEOUT,
    MALFORMED,
    TIMEOUT,
    UNREACHABLE,
    Answer,
    DNSName,
    DNSQuery,
    DNSReport,
    Prediction,
    ResolverConfig,
    candidate_names,
    expected_records,
    family_types,
    format_server,
    interpret_name,
    judge,
    judge_prediction,
    parse_resolv_conf,
    parse_server,
    pod_search_list,
)
from svcctl.errors import ForbiddenError, InputError, NotFoundError
from svcctl.findings import Severity
from svcctl.model import EndpointSlice, Finding, Pod, Service
from svcctl.sources.base import selector_string

if TYPE_CHECKING:
    from svcctl.sources.base import ClusterSource

NO_QUERY_NOTE = "no query was sent (snapshot): these are the records the API says CoreDNS must serve"
_SERVER_ERRORS = ("SERVFAIL", "REFUSED", "NOTIMP", "FORMERR", MALFORMED)


# ------------------------------------------------------------------------------------------------ one query


def _answers(msg: Any) -> list[Answer]:
    import dns.rdatatype

    out: list[Answer] = []
    for rrset in msg.answer:
        for rd in rrset:
            out.append(Answer(rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text(),
                              int(rrset.ttl)))
    return out


def _unreachable_text(e: OSError) -> str:
    names = {errno.ECONNREFUSED: "connection refused (ICMP port unreachable)",
             errno.EHOSTUNREACH: "host unreachable", errno.ENETUNREACH: "network unreachable (no route)",
             errno.EADDRNOTAVAIL: "address not available"}
    return names.get(e.errno or 0, e.strerror or type(e).__name__)


def _parses(data: bytes) -> bool:
    import dns.exception
    import dns.message

    try:
        dns.message.from_wire(data)
        return True
    except (dns.exception.DNSException, ValueError, IndexError):
        return False


def _udp(wire: bytes, qid: int, ip: str, port: int, timeout: float) -> tuple[str, bytes | None, str]:
    """(status, payload, error): status is ok | timeout | unreachable | malformed."""
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        try:
            s.connect((ip, port))
            s.send(wire)
        except OSError as e:
            return "unreachable", None, _unreachable_text(e)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None, f"no answer in {timeout:g}s"
            s.settimeout(left)
            try:
                data = s.recv(65535)
            except TimeoutError:
                return "timeout", None, f"no answer in {timeout:g}s"
            except OSError as e:
                return "unreachable", None, _unreachable_text(e)
            if len(data) >= 12 and int.from_bytes(data[:2], "big") != qid and _parses(data):
                continue  # a late answer to another question: keep waiting, as resolvers do
            return "ok", data, ""  # ours, or bytes that are no DNS message at all (judged by the caller)
    finally:
        s.close()


def send_query(name: str, rtype: str, ip: str, port: int = 53, timeout: float = DEFAULT_TIMEOUT, *,
               edns: bool = False, purpose: str = "search") -> DNSQuery:
    """One question to one server, once; a truncated UDP answer is asked again over TCP."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode

    server = format_server(ip, port)
    q = dns.message.make_query(name, rtype, use_edns=0 if edns else False, payload=1232)
    q.id = secrets.randbelow(65536)
    wire = q.to_wire()
    started = time.monotonic()
    out = DNSQuery(name, rtype, server, TIMEOUT, purpose=purpose)
    status, data, err = _udp(wire, q.id, ip, port, timeout)
    msg: Any = None
    if status == "timeout":
        out.rcode, out.errors = TIMEOUT, [f"{server}: {err}"]
    elif status == "unreachable":
        out.rcode, out.errors = UNREACHABLE, [f"{server}: {err}"]
    else:
        assert data is not None
        if len(data) >= 4 and data[2] & 0x02:  # TC: glibc throws the UDP answer away and asks over TCP
            out.truncated, out.transport = True, "tcp"
            left = max(timeout - (time.monotonic() - started), 0.1)
            try:
                msg = dns.query.tcp(q, ip, timeout=left, port=port)
            except (TimeoutError, dns.exception.Timeout):
                out.rcode, out.errors = TIMEOUT, [f"{server}: TCP retry after a truncated answer: no answer"]
            except (ConnectionRefusedError, ConnectionResetError) as e:
                out.rcode, out.errors = UNREACHABLE, [f"{server}: TCP retry after a truncated answer: {e.strerror}"]
            except (EOFError, dns.exception.DNSException, ValueError, OSError) as e:
                out.rcode, out.errors = MALFORMED, [f"{server}: TCP retry after a truncated answer failed: "
                                                    f"{type(e).__name__} {e}".strip()]
        else:
            try:
                msg = dns.message.from_wire(data)
                if not q.is_response(msg):
                    out.rcode, out.errors, msg = MALFORMED, [f"{server}: answer does not match the question"], None
            except (dns.exception.DNSException, ValueError, IndexError) as e:
                out.rcode, out.errors = MALFORMED, [f"{server}: {len(data)} bytes that are not a DNS answer "
                                                    f"({type(e).__name__})"]
        if msg is not None:
            out.rcode = dns.rcode.to_text(msg.rcode())
            out.answers = _answers(msg)
    out.elapsed_ms = (time.monotonic() - started) * 1000
    return out


def lookup(name: str, rtype: str, servers: list[tuple[str, int]], timeout: float, attempts: int, *,
           edns: bool = False, purpose: str = "search") -> DNSQuery:
    """res_send: every server in turn, `attempts` rounds; NOERROR/NXDOMAIN end it, anything else tries on."""
    last: DNSQuery | None = None
    errors: list[str] = []
    tries = 0
    for _ in range(max(attempts, 1)):
        for ip, port in servers:
            tries += 1
            last = send_query(name, rtype, ip, port, timeout, edns=edns, purpose=purpose)
            errors += last.errors or ([f"{last.server}: {last.rcode}"] if last.rcode in _SERVER_ERRORS else [])
            if last.rcode not in (TIMEOUT, UNREACHABLE, *_SERVER_ERRORS):
                break
        else:
            continue
        break
    assert last is not None
    last.tries, last.errors = tries, errors
    return last


def resolve(dn: DNSName, types: list[str], cfg: ResolverConfig, servers: list[tuple[str, int]], timeout: float,
            attempts: int) -> tuple[list[DNSQuery], str | None]:
    """res_search over the candidate names; stops at the first name with records, or at a timeout."""
    queries: list[DNSQuery] = []
    for cand in candidate_names(dn.typed, cfg.search, cfg.ndots):
        batch = [lookup(cand, t, servers, timeout, attempts, edns=cfg.edns0) for t in types]
        queries += batch
        if any(q.positive for q in batch):
            return queries, cand
        if any(q.rcode in (TIMEOUT, UNREACHABLE) for q in batch):
            return queries, None  # glibc gives up the search on a timeout instead of trying the next suffix
    return queries, None


# ------------------------------------------------------------------------------------------------ the hop


def load_resolv_conf(path: str) -> ResolverConfig:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", source=path) from None
    return parse_resolv_conf(text, path)


def cluster_dns_servers(source: ClusterSource) -> tuple[list[str], str]:
    """The kube-dns Service's ClusterIPs (what the kubelet writes as a Pod's nameserver), and why not if none."""
    try:
        svc = source.get_service("kube-system", "kube-dns")
    except (NotFoundError, ForbiddenError) as e:
        return [], e.message
    ips = [ip for ip in svc.cluster_ips if ip and ip != "None"]
    return ips, "" if ips else "kube-system/kube-dns has no ClusterIP"


def _service_for(source: ClusterSource | None, service: Service | None, dn: DNSName) -> tuple[Service | None, str]:
    if dn.kind == "external" or dn.service is None or dn.namespace is None:
        return None, ""
    if service is not None and service.meta.name == dn.service and service.meta.namespace == dn.namespace:
        return service, ""
    if source is None:
        return None, ""
    try:
        return source.get_service(dn.namespace, dn.service), ""
    except NotFoundError as e:
        return None, e.hint or ""


def dns_hop(source: ClusterSource | None, service: Service | None, name: str, namespace: str,
            cluster_domain: str = "cluster.local", server: str | None = None, resolv_conf: str | None = None,
            query: bool = True, timeout: float | None = None, *, attempts: int | None = None,
            rtype: str | None = None, control: bool = True) -> DNSReport:
    """The DNS hop of `svcctl trace` and all of `svcctl dns`.

    `namespace` is the querying Pod's (search list); `server` is `IP[:PORT][,IP[:PORT]…]` (else resolv.conf's
    nameservers, else the kube-dns ClusterIP); `query=False` (snapshot) only predicts the records. `rtype` is
    A|AAAA|SRV|ANY (default: by the Service's ipFamilies, SRV for SRV names). Transport failures become findings,
    not exceptions."""
    domain = cluster_domain.strip(".").lower() or "cluster.local"
    dn = interpret_name(name, namespace, domain)
    # InputError (exit 2) before anything is sent; several servers are tried in order, as resolv.conf's are
    given = [parse_server(x) for x in server.split(",") if x.strip()] if server else []
    cfg = load_resolv_conf(resolv_conf) if resolv_conf else ResolverConfig(search=pod_search_list(namespace, domain))
    svc, hint = _service_for(source, service, dn)
    slices: list[EndpointSlice] = []
    pods: list[Pod] = []
    if svc is not None and source is not None and svc.type != "ExternalName":
        slices = source.list_endpoint_slices(svc.meta.namespace, svc.meta.name)
        if dn.kind == "pod" and svc.selector:
            # only the Service's own Pods can carry its records: never list the whole namespace
            pods = source.list_pods(svc.meta.namespace, selector_string(svc.selector))
    exp = expected_records(svc, slices, pods, dn, domain)
    if source is None:
        exp.notes = ["no cluster to compare with: the answers are shown as they come"]
    types = _types(rtype, dn, svc, exp.types)
    dropped = [e for e in exp.records if e.type not in types and e.type != "CNAME"]
    if dropped:
        exp.records = [e for e in exp.records if e not in dropped]
        exp.notes.append(f"not asked: {', '.join(sorted({e.type for e in dropped}))} records "
                         f"({', '.join(e.data for e in dropped)})")
    elif svc is not None and dn.kind in ("service", "pod") and svc.type != "ExternalName" and not exp.records \
            and any(t not in exp.types for t in types):
        exp.notes.append(f"{svc.meta.key} has no {'/'.join(t for t in types if t not in exp.types)} family "
                         f"(ipFamilies {', '.join(svc.ip_families) or '-'}): CoreDNS answers NODATA")

    report = DNSReport(dn, namespace, domain, cfg, queried=False, comparable=source is not None, types=types,
                       expected=exp.records, notes=list(exp.notes), service=svc.meta.key if svc else None)
    if not query:
        report.notes.insert(0, NO_QUERY_NOTE)
        if not cfg.nameservers and source is not None:
            cfg.nameservers = cluster_dns_servers(source)[0]
        if source is not None:
            judge_prediction(report, predict(source, dn, cfg, domain, types), service_found=svc is not None,
                             service_hint=hint, nodata=bool(dropped))
        return report

    servers: list[tuple[str, int]]
    if given:
        servers = given
        cfg.nameservers = [format_server(*a) for a in given]
    elif cfg.nameservers:
        servers = [parse_server(s) for s in cfg.nameservers]
    else:
        ips, why = cluster_dns_servers(source) if source is not None else ([], "no cluster source")
        if not ips:
            report.findings.append(Finding(
                "DNSServerUnreachable", Severity.ERROR, f"no DNS server to ask: {why}",
                hint="pass --dns-server IP[:PORT] or --resolv-conf FILE", where="kube-system/kube-dns"))
            return report
        servers = [(ip, 53) for ip in ips]
        cfg.nameservers = ips
        cfg.source = "kube-system/kube-dns ClusterIP + pod default search list"
        report.from_outside = not os.environ.get("KUBERNETES_SERVICE_HOST")
    tmo = timeout if timeout is not None else (cfg.timeout or DEFAULT_TIMEOUT)
    att = attempts if attempts is not None else (cfg.attempts or DEFAULT_ATTEMPTS)
    cfg.timeout, cfg.attempts = tmo, att
    report.queried = True
    report.queries, report.resolved_name = resolve(dn, types, cfg, servers, tmo, att)

    # ExternalName: follow a CNAME the server did not chase itself
    if report.resolved_name is not None:
        got = [a for q in report.queries if q.name == report.resolved_name for a in q.answers]
        owners = {a.name for a in got if a.type != "CNAME"}
        for a in got:
            if a.type == "CNAME":
                target = a.data.lower()
                if target not in owners and not any(q.name == target for q in report.queries):
                    report.queries.append(lookup(target, "AAAA" if types == ["AAAA"] else "A", servers, tmo, att,
                                                 edns=cfg.edns0, purpose="cname"))

    search = [q for q in report.queries if q.purpose == "search"]
    trouble = report.resolved_name is None or any(q.rcode not in ("NOERROR", "NXDOMAIN") for q in search)
    if control and trouble and dn.fqdn != f"kubernetes.default.svc.{domain}.":
        report.queries.append(lookup(f"kubernetes.default.svc.{domain}.", "A", servers, tmo, att,
                                     edns=cfg.edns0, purpose="control"))
    judge(report, service_hint=hint)
    return report


def predict(source: ClusterSource, dn: DNSName, cfg: ResolverConfig, domain: str,
            types: list[str]) -> list[Prediction]:
    """Walk the search list answering each name from the API as CoreDNS would; stop at the first name with records,
    or at the first name outside the cluster zone (what upstream says is unknown offline)."""
    out: list[Prediction] = []
    for cand in candidate_names(dn.typed, cfg.search, cfg.ndots):
        bare = cand.rstrip(".")
        if bare != domain and not bare.endswith("." + domain):
            out.append(Prediction(cand, None))
            break
        try:
            cn = interpret_name(cand, dn.namespace or "default", domain)
        except InputError:
            out.append(Prediction(cand, []))
            continue
        if cn.kind == "external":
            out.append(Prediction(cand, []))  # in the zone but no Service shape: CoreDNS answers NXDOMAIN
            continue
        svc, _ = _service_for(source, None, cn)
        slices = source.list_endpoint_slices(svc.meta.namespace, svc.meta.name) if svc is not None else []
        exp = expected_records(svc, slices, [], cn, domain)
        recs = [e for e in exp.records if e.type in types or e.type == "CNAME"]
        out.append(Prediction(cand, recs))
        if recs:
            break
    return out


def _types(rtype: str | None, dn: DNSName, svc: Service | None, default: list[str]) -> list[str]:
    if rtype:
        t = rtype.upper()
        if t == "ANY":
            return ["SRV"] if dn.kind == "srv" else ["A", "AAAA"]
        if t not in ("A", "AAAA", "SRV"):
            raise InputError(f"unsupported --type {rtype!r}", hint="A, AAAA, SRV or ANY")
        if t == "SRV" and dn.kind != "srv":
            raise InputError(f"{dn.typed!r} is not an SRV name",
                             hint="SRV records live at _<port-name>._<proto>.<service>.<ns>.svc.<domain>")
        if t != "SRV" and dn.kind == "srv":
            raise InputError(f"{dn.typed!r} is an SRV name: only SRV records live there", hint="use --type SRV")
        return [t]
    if dn.kind == "srv":
        return ["SRV"]
    return default or family_types(svc)

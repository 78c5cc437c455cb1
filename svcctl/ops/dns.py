"""The orchestration behind `svcctl dns` and the trace's and check's DNS hop: what the API says the records are,
which servers to ask (given, resolv.conf's, or the kube-dns Service's), the queries (`svcctl.sources.dns`) and
the judgement (`svcctl.analysis.dns`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from svcctl.analysis.dns import (
    DEFAULT_ATTEMPTS,
    DEFAULT_TIMEOUT,
    DNSName,
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
    parse_server,
    pod_search_list,
)
from svcctl.errors import ClusterError, ForbiddenError, InputError, NotFoundError
from svcctl.findings import Severity
from svcctl.model import EndpointSlice, Finding, Pod, Service
from svcctl.ops.context import Context
from svcctl.sources.base import selector_string
from svcctl.sources.dns import NO_QUERY_NOTE, load_resolv_conf, lookup, resolve

if TYPE_CHECKING:
    from svcctl.sources.base import ClusterSource

__all__ = ["NO_QUERY_NOTE", "cluster_dns_servers", "dns_hop", "predict", "resolve_name"]


def resolve_name(app: Context, name: str, *, cluster_domain: str, server: str | None, resolv_conf: str | None,
                 rtype: str | None, timeout: float | None, attempts: int | None, control: bool) -> DNSReport:
    """`svcctl dns NAME`: resolve as a Pod of the -n namespace would. Without a cluster, a given server or
    resolv.conf still answers (nothing to compare with); from a snapshot without a server nothing is sent."""
    query = app.snapshot is None or server is not None
    source: ClusterSource | None
    try:
        source = app.source
        namespace = app.ns
    except ClusterError:
        if not (server or resolv_conf):
            raise
        # DNS alone still answers: no expected records to compare with, but every query and finding stands
        source, namespace = None, app.namespace or "default"
        app.terminal.status("no cluster configured: querying DNS without comparing to the API")
    return dns_hop(source, None, name, namespace, cluster_domain, server, resolv_conf, query, timeout,
                   attempts=attempts, rtype=rtype.upper() if rtype else None, control=control)


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

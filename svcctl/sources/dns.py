"""The DNS hop's I/O: ask a DNS server the way a Pod's resolver would, and read a resolv.conf file.

Queries go out as glibc sends them: plain UDP without EDNS (unless resolv.conf says `edns0`), the search list in
ndots order, each server in turn for `attempts` rounds, a truncated answer retried over TCP. The UDP socket is
connected so an ICMP port-unreachable surfaces as "refused" instead of a silent timeout. What to ask and what the
API says is `svcctl.ops.dns`; the judgement is `svcctl.analysis.dns.judge`; this module only sends and reads.
"""

from __future__ import annotations

import errno
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

from svcctl.analysis.dns import (
    DEFAULT_TIMEOUT,
    MALFORMED,
    TIMEOUT,
    UNREACHABLE,
    Answer,
    DNSName,
    DNSQuery,
    ResolverConfig,
    candidate_names,
    format_server,
    parse_resolv_conf,
)
from svcctl.errors import InputError

if TYPE_CHECKING:
    pass

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

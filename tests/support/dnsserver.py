"""Real DNS servers for tests: dnsmasq serving a cluster zone, and a tiny misbehaving responder.

`zone_from_source(source)` writes the records CoreDNS' kubernetes plugin would serve for a cluster — written here
independently of svcctl.analysis.dns so a test comparing the two is not comparing a function with itself:
- ClusterIP Service: `<svc>.<ns>.svc.<domain>` A/AAAA per ClusterIP;
- headless: one A/AAAA per address of an endpoint whose `ready` is true or unset;
- every such endpoint: `<hostname or dashed IP>.<svc>.<ns>.svc.<domain>`;
- named ports: SRV `_<name>._<proto>.<svc>...` → the Service name (ClusterIP) or each endpoint name (headless);
- ExternalName: CNAME to spec.externalName.
Mutate a `Zone` (stale IP, dropped record) to make DNS wrong on purpose, then `DnsmasqServer(zone).start()`.

`StubResponder(mode)` answers every UDP query with SERVFAIL, garbage bytes, a truncated (TC) reply whose TCP
retry gets the real answer, or never answers at all (timeout). `dead_port()` is a loopback port nobody listens on.

Everything listens on 127.0.0.1 only. Use `require_dnsmasq()` to skip (or fail when CI=true) where dnsmasq
cannot run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TTL = 5


# --------------------------------------------------------------------------- zone


@dataclass
class Record:
    name: str  # absolute, no trailing dot
    type: str  # A | AAAA | SRV | CNAME
    data: str  # ip | target | "port target"
    ttl: int = TTL


@dataclass
class Zone:
    domain: str = "cluster.local"
    records: list[Record] = field(default_factory=list)

    def add(self, name: str, rtype: str, data: str, ttl: int = TTL) -> None:
        self.records.append(Record(name.rstrip(".").lower(), rtype, data, ttl))

    def get(self, name: str, rtype: str | None = None) -> list[Record]:
        n = name.rstrip(".").lower()
        return [r for r in self.records if r.name == n and (rtype is None or r.type == rtype)]

    def remove(self, name: str, rtype: str | None = None, data: str | None = None) -> int:
        n = name.rstrip(".").lower()
        keep = [r for r in self.records
                if not (r.name == n and (rtype is None or r.type == rtype) and (data is None or r.data == data))]
        removed = len(self.records) - len(keep)
        self.records = keep
        return removed

    def replace(self, name: str, rtype: str, old: str, new: str) -> None:
        for r in self.get(name, rtype):
            if r.data == old:
                r.data = new

    def dnsmasq_lines(self) -> list[str]:
        lines = [f"local=/{self.domain}/", f"local-ttl={TTL}"]
        for r in self.records:
            if r.type in ("A", "AAAA"):
                lines.append(f"host-record={r.name},{r.data},{r.ttl}")
            elif r.type == "SRV":
                port, target = r.data.split()
                lines.append(f"srv-host={r.name},{target.rstrip('.')},{port},0,100")
            elif r.type == "CNAME":
                lines.append(f"cname={r.name},{r.data.rstrip('.')},{r.ttl}")
        return lines


def _dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def _fam(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def zone_from_source(source: Any, domain: str = "cluster.local") -> Zone:
    """The records CoreDNS' kubernetes plugin serves for every Service in a SnapshotSource."""
    z = Zone(domain)
    for svc in source.list_services(None):
        ns, name = svc.meta.namespace, svc.meta.name
        base = f"{name}.{ns}.svc.{domain}"
        if svc.type == "ExternalName":
            if svc.external_name:
                z.add(base, "CNAME", svc.external_name.rstrip(".") + ".")
            continue
        published: list[tuple[str, str, Any]] = []  # (ip, endpoint name, slice)
        for sl in source.list_endpoint_slices(ns, name):
            if sl.address_type not in ("IPv4", "IPv6"):
                continue
            for ep in sl.endpoints:
                if ep.ready is False:
                    continue
                for ip in ep.addresses:
                    published.append((ip, ep.hostname or _dashed(ip), sl))
        headless = svc.cluster_ip == "None"
        if headless:
            for ip, _, _ in published:
                z.add(base, _fam(ip), ip)
        else:
            for ip in svc.cluster_ips:
                z.add(base, _fam(ip), ip)
        for ip, host, _ in published:
            z.add(f"{host}.{base}", _fam(ip), ip)
        if headless:
            for _ip, host, sl in published:
                for p in sl.ports:
                    if p.name and p.port:
                        z.add(f"_{p.name}._{p.protocol.lower()}.{base}", "SRV", f"{p.port} {host}.{base}.")
        else:
            for sp in svc.ports:
                if sp.name:
                    z.add(f"_{sp.name}._{sp.protocol.lower()}.{base}", "SRV", f"{sp.port} {base}.")
    return z


# --------------------------------------------------------------------------- dnsmasq


def dnsmasq_binary() -> str | None:
    return shutil.which("dnsmasq") or next((p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.path.exists(p)),
                                           None)


def require_dnsmasq() -> str:
    """The dnsmasq path, or skip (fail when CI=true: CI must really run these)."""
    path = dnsmasq_binary()
    why = None
    if path is None:
        why = "dnsmasq is not installed (Debian package dnsmasq-base)"
    elif os.geteuid() != 0:
        why = "dnsmasq tests run dnsmasq with --user=root and need root"
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    assert path is not None
    return path


def free_port() -> int:
    """A loopback port free for both UDP and TCP right now."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = int(u.getsockname()[1])
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free loopback port")


def dead_port() -> int:
    """A loopback port with nothing listening: UDP gets ICMP port unreachable (connection refused)."""
    return free_port()


def _probe(port: int, name: str) -> bool:
    import dns.message
    import dns.query

    q = dns.message.make_query(name, "A", use_edns=False)
    try:
        dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


class DnsmasqServer:
    """dnsmasq in the foreground on 127.0.0.1:<free port>, serving `zone` (+ extra config lines)."""

    def __init__(self, zone: Zone | None = None, extra: list[str] | None = None) -> None:
        self.binary = require_dnsmasq()
        self.zone = zone or Zone()
        self.extra = extra or []
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix=f"svt-{os.getpid()}-dnsmasq-"))
        self.log = self.dir / "dnsmasq.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsmasqServer:
        conf = self.dir / "dnsmasq.conf"
        conf.write_text("\n".join(self.zone.dnsmasq_lines() + self.extra) + "\n")
        last = ""
        for _ in range(5):
            self.port = free_port()
            argv = [self.binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
                    f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                    f"--conf-file={conf}", f"--pid-file={self.dir / 'dnsmasq.pid'}", "--user=root",
                    "--group=root", f"--log-facility={self.log}", "--log-queries"]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _probe(self.port, f"svt-probe.{self.zone.domain}"):
                    return self
                time.sleep(0.05)
            if self.proc.poll() is None:
                self._kill()
                last = "did not answer within 10s"
            else:
                last = (self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else "").strip()
            if "in use" not in last:
                break
        msg = f"dnsmasq could not start: {last}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
        raise AssertionError("unreachable")

    def _kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()

    def stop(self) -> None:
        self._kill()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DnsmasqServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- misbehaving responder


class StubResponder:
    """A UDP (+TCP) DNS responder on 127.0.0.1 that misbehaves on purpose.

    modes: `servfail` (rcode SERVFAIL), `garbage` (random non-DNS bytes), `silent` (reads, never answers),
    `truncate` (UDP reply with TC set and no answer; TCP gets `records`), `wrongid` (answers with another id,
    then nothing: a resolver must ignore it and time out)."""

    def __init__(self, mode: str, records: dict[tuple[str, str], list[str]] | None = None) -> None:
        self.mode = mode
        self.records = records or {}
        self.port = 0
        self.received = 0
        self._udp: socketserver.UDPServer | None = None
        self._tcp: socketserver.TCPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _answer(self, wire: bytes, tcp: bool) -> bytes | None:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        self.received += 1
        if self.mode == "silent":
            return None
        if self.mode == "garbage":
            return b"\x13\x37not a dns message at all\xff\xfe"
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        if self.mode == "servfail":
            r.set_rcode(dns.rcode.SERVFAIL)
            return r.to_wire()
        if self.mode == "wrongid":
            r.id = (q.id + 1) % 65536
            return r.to_wire()
        if self.mode == "truncate" and not tcp:
            r.flags |= dns.flags.TC
            return r.to_wire()
        qn = q.question[0]
        key = (qn.name.to_text().lower(), dns.rdatatype.to_text(qn.rdtype))
        data = self.records.get(key)
        if data is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
        else:
            r.answer.append(dns.rrset.from_text_list(qn.name, TTL, "IN", key[1], data))
        return r.to_wire()

    def start(self) -> StubResponder:
        outer = self

        class U(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = outer._answer(data, tcp=False)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class T(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn = self.request
                conn.settimeout(5)
                try:
                    ln = conn.recv(2)
                    if len(ln) < 2:
                        return
                    want = int.from_bytes(ln, "big")
                    buf = b""
                    while len(buf) < want:
                        chunk = conn.recv(want - len(buf))
                        if not chunk:
                            return
                        buf += chunk
                    out = outer._answer(buf, tcp=True)
                    if out is not None:
                        conn.sendall(len(out).to_bytes(2, "big") + out)
                except OSError:
                    return

        for _ in range(20):
            port = free_port()
            try:
                udp = socketserver.ThreadingUDPServer(("127.0.0.1", port), U)
            except OSError:
                continue
            try:
                socketserver.ThreadingTCPServer.allow_reuse_address = True
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), T)
            except OSError:
                udp.server_close()
                continue
            self._udp, self._tcp, self.port = udp, tcp, port
            break
        else:
            raise RuntimeError("no free port for the stub responder")
        for srv in (self._udp, self._tcp):
            assert srv is not None
            srv.daemon_threads = True
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in (self._udp, self._tcp):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> StubResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

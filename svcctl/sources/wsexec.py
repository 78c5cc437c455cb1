"""pods/exec over a websocket, the client side of what one exec needs and nothing more.

A fleet read makes thousands of execs (a targeted read is ≈ 11 per node). Through websocket-client each cost
≈ 5 ms of CPU here: a new TLS context and CA load per connection, a full TLS handshake, and the 101 response
read one byte per `recv` (≈ 180 TLS reads per exec). This client keeps one TLS context per API server, resumes
its TLS session (TLS 1.3 tickets: no certificate chain verified again), reads through a buffered file, and speaks
only what exec streams use: the GET upgrade, then the server's frames (binary/text messages, fragments, ping,
close) until the server closes. Nothing is ever sent but the upgrade request, pongs and the closing frame; stdin
stays closed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import ssl
import struct
import threading
import time
from typing import Any, BinaryIO
from urllib.parse import urlsplit

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_ERROR_BODY = 65536
MAX_HEADER_LINES = 100


class UpgradeRefused(Exception):
    """The server answered the upgrade with an HTTP status (401, 403, 404 …) instead of 101."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status}")
        self.status = status
        self.body = body


class StreamFailed(Exception):
    """The connection or the websocket stream broke (or was not a websocket)."""


class ExecTimeout(Exception):
    """No end of the stream before the deadline."""


def make_context(opts: dict[str, Any]) -> ssl.SSLContext:
    """A client TLS context from the live source's options (`cert_reqs`, `ca_certs`, `check_hostname`,
    `certfile`/`keyfile`: the same settings the rest layer uses)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if opts.get("cert_reqs", ssl.CERT_REQUIRED) == ssl.CERT_NONE:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        if opts.get("ca_certs"):
            ctx.load_verify_locations(cafile=opts["ca_certs"])
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = bool(opts.get("check_hostname", True))
    if opts.get("certfile"):
        ctx.load_cert_chain(opts["certfile"], opts.get("keyfile"))
    return ctx


class Dialer:
    """Exec websockets to one API server (`host`: its URL, with any path prefix)."""

    def __init__(self, host: str, context: ssl.SSLContext | None, server_hostname: str | None = None) -> None:
        u = urlsplit(host)
        self.secure = u.scheme == "https"
        self.host = u.hostname or "localhost"
        self.port = u.port or (443 if self.secure else 80)
        self.prefix = u.path.rstrip("/")
        self.netloc = u.netloc
        self.context = context
        self.sni = server_hostname or self.host
        self._session: ssl.SSLSession | None = None
        self.resumed = 0  # handshakes that resumed a TLS session
        self._lock = threading.Lock()

    def run(self, path: str, headers: list[str], limit: float) -> dict[int, bytearray]:
        """One exec: the messages of each channel (first byte of each message), until the server closes."""
        deadline = time.monotonic() + limit
        try:
            raw = socket.create_connection((self.host, self.port), timeout=limit)
        except TimeoutError:
            raise ExecTimeout() from None
        except OSError as e:
            raise StreamFailed(type(e).__name__) from None
        sock: socket.socket = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(_left(deadline))  # the TLS handshake and the upgrade get what is left, not `limit` again
            if self.secure:
                assert self.context is not None
                with self._lock:
                    session = self._session
                sock = self.context.wrap_socket(raw, server_hostname=self.sni, session=session)
            key = base64.b64encode(os.urandom(16)).decode()
            request = (f"GET {self.prefix}{path} HTTP/1.1\r\nHost: {self.netloc}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                       + "".join(f"{h}\r\n" for h in headers) + "\r\n")
            sock.settimeout(_left(deadline))
            sock.sendall(request.encode())
            f = sock.makefile("rb")
            status, head = _read_head(f)
            if status != 101:
                raise UpgradeRefused(status, _read_body(f, head))
            want = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
            if head.get("sec-websocket-accept") != want:
                raise StreamFailed("bad Sec-WebSocket-Accept")
            chans = _read_frames(sock, f, deadline)
            if self.secure and isinstance(sock, ssl.SSLSocket) and (self._session is None or not sock.session_reused):
                with self._lock:
                    self._session = sock.session
            self.resumed += 1 if isinstance(sock, ssl.SSLSocket) and sock.session_reused else 0
            return chans
        except TimeoutError:
            raise ExecTimeout() from None
        except (UpgradeRefused, StreamFailed, ExecTimeout):
            raise
        except (OSError, ValueError, struct.error) as e:
            raise StreamFailed(type(e).__name__) from None
        finally:
            with contextlib.suppress(OSError):
                sock.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ExecTimeout()
    return left


def _read_head(f: BinaryIO) -> tuple[int, dict[str, str]]:
    line = f.readline(8192)
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise StreamFailed("not an HTTP response")
    head: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        h = f.readline(8192)
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        head[name.strip().lower()] = value.strip()
    return int(parts[1]), head


def _read_body(f: BinaryIO, head: dict[str, str]) -> bytes:
    n = head.get("content-length", "")
    try:
        return f.read(min(int(n), MAX_ERROR_BODY)) if n.isdigit() else f.read(MAX_ERROR_BODY)
    except OSError:
        return b""


def _exactly(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError
    return data


def _send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """A client frame (always masked, RFC 6455): only pongs and the closing frame are ever sent."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _read_frames(sock: socket.socket, f: BinaryIO, deadline: float) -> dict[int, bytearray]:
    chans: dict[int, bytearray] = {1: bytearray(), 2: bytearray(), 3: bytearray()}
    message = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ExecTimeout()
        sock.settimeout(left)
        try:
            b0, b1 = _exactly(f, 2)
        except EOFError:
            return chans  # the server closed without a closing frame: what came is the answer
        opcode, n = b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", _exactly(f, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", _exactly(f, 8))[0]
        mask = _exactly(f, 4) if b1 & 0x80 else b""
        try:
            payload = _exactly(f, n)
        except EOFError:
            raise StreamFailed("stream cut inside a frame") from None
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if opcode == 0x8:
            with contextlib.suppress(OSError):
                _send_frame(sock, 0x8, payload[:2])
            return chans
        if opcode == 0x9:
            _send_frame(sock, 0xA, payload[:125])
            continue
        if opcode in (0x0, 0x1, 0x2):
            message += payload
            if b0 & 0x80:
                if message and message[0] in chans:
                    chans[message[0]] += message[1:]
                message = bytearray()

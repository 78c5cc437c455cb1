"""svcctl's own exec websocket client (sources/wsexec.py) against a raw server speaking RFC 6455 byte by byte:
fragmented messages, a ping (answered with a masked pong), the closing frame, a refused upgrade, a wrong accept
key, a stall; and TLS sessions resumed across execs against the test API server."""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from apiserver import FakeAPIServer
from gen_fleet import fleet_objects

from svcctl.sources import wsexec

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
    return head + payload


class RawServer:
    """One connection at a time; `script(conn, key)` writes whatever the test wants after reading the request."""

    def __init__(self, script: Callable[[socket.socket, str], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            key = next(ln.split(b":", 1)[1].strip().decode() for ln in data.split(b"\r\n")
                       if ln.lower().startswith(b"sec-websocket-key"))
            self.script(conn, key)
            conn.settimeout(1)
            try:
                while chunk := conn.recv(4096):
                    self.received.append(chunk)
            except OSError:
                pass


def accept(key: str) -> bytes:
    acc = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n")


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket, str], None]], RawServer]]:
    servers: list[RawServer] = []

    def make(script: Callable[[socket.socket, str], None]) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.sock.close()


def dial(srv: RawServer) -> wsexec.Dialer:
    return wsexec.Dialer(f"http://127.0.0.1:{srv.port}", None)


def test_fragments_ping_and_close(serve: Any) -> None:
    def script(conn: socket.socket, key: str) -> None:
        conn.sendall(accept(key) + frame(0x2, b"\x01hel", fin=False) + frame(0x9, b"pi") + frame(0x0, b"lo\n")
                     + frame(0x2, b"\x02oops\n") + frame(0x2, b"\x01" + b"x" * 300)
                     + frame(0x2, b'\x03{"status":"Success"}') + frame(0x8, struct.pack("!H", 1000)))

    srv = serve(script)
    chans = dial(srv).run("/exec?command=x", ["X-Test: 1"], 5)
    assert bytes(chans[1]) == b"hello\n" + b"x" * 300 and bytes(chans[2]) == b"oops\n"
    assert bytes(chans[3]) == b'{"status":"Success"}'
    srv.thread.join(3)
    sent = b"".join(srv.received)
    # a pong (0x8A) with the ping's payload, masked; then the closing frame (0x88), masked too
    assert sent[0] == 0x8A and sent[1] == 0x80 | 2
    mask = sent[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(sent[6:8])) == b"pi"
    assert sent[8] == 0x88 and sent[9] & 0x80


def test_refused_upgrade_carries_status_and_body(serve: Any) -> None:
    body = b'{"kind":"Status","message":"pods \\"x\\" is forbidden"}'

    def script(conn: socket.socket, key: str) -> None:
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    with pytest.raises(wsexec.UpgradeRefused) as e:
        dial(serve(script)).run("/exec", [], 5)
    assert e.value.status == 403 and e.value.body == body


def test_a_wrong_accept_key_is_not_a_websocket(serve: Any) -> None:
    def script(conn: socket.socket, key: str) -> None:
        conn.sendall(accept("not-" + key) + frame(0x2, b"\x01hi"))

    with pytest.raises(wsexec.StreamFailed):
        dial(serve(script)).run("/exec", [], 5)


def test_a_stalled_stream_times_out(serve: Any) -> None:
    done = threading.Event()

    def script(conn: socket.socket, key: str) -> None:
        conn.sendall(accept(key) + frame(0x2, b"\x01partial"))
        done.wait(3)

    with pytest.raises(wsexec.ExecTimeout):
        dial(serve(script)).run("/exec", [], 0.5)
    done.set()


def test_tls_sessions_are_resumed_across_execs(apiserver: Callable[..., FakeAPIServer]) -> None:
    srv = apiserver(fleet_objects(1), copy=False)
    srv.exec_handler = lambda ns, pod, c, argv: ("out\n", "", 0)
    from svcctl.sources import kubeconfig
    from svcctl.sources.live import LiveSource

    live = LiveSource(kubeconfig.resolve(str(srv.kubeconfig), None))
    for _ in range(3):
        assert live.exec_status("kube-system", "kube-proxy-node-0000", None, ["iptables-save"]) == ("out\n", "", 0)
    assert live._dialer is not None and live._dialer.resumed == 2

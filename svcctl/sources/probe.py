"""Opt-in probing: svcctl itself opens connections to VIP:port and records who answered.

Run in-process, or inside a network namespace as `ip netns exec NS python -m svcctl.sources.probe …` (Python 3.11
has no setns), so the request leaves from where the rules are. Each attempt records the local source port, so the
backend it was DNATed to can be read back from conntrack, and the first line of an HTTP answer, which for the
`hostnames` image is the Pod's name.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import asdict

from svcctl.errors import ClusterError
from svcctl.lazydc import dataclass


@dataclass
class Attempt:
    sport: int
    ok: bool
    body: str = ""
    error: str = ""


def probe_local(ip: str, port: int, count: int, *, http: bool = True, timeout: float = 2.0,
                path: str = "/") -> list[Attempt]:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    out: list[Attempt] = []
    for _ in range(count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        sport = 0
        try:
            s.connect((ip, port))
            sport = int(s.getsockname()[1])
            body = ""
            if http:
                host = f"[{ip}]" if ":" in ip else ip
                s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: svcctl-probe\r\n\r\n".encode())
                data = b""
                while len(data) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                text = data.decode("utf-8", "replace")
                body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else text
                body = body.strip().splitlines()[0] if body.strip() else ""
            out.append(Attempt(sport, True, body))
        except OSError as e:
            out.append(Attempt(sport, False, error=e.strerror or type(e).__name__))
        finally:
            s.close()
    return out


def probe(ip: str, port: int, count: int, *, http: bool = True, timeout: float = 2.0, path: str = "/",
          netns: str | None = None) -> list[Attempt]:
    if netns is None:
        return probe_local(ip, port, count, http=http, timeout=timeout, path=path)
    argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "svcctl.sources.probe", ip, str(port), str(count),
            "1" if http else "0", str(timeout), path]
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=count * (timeout + 1) + 10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ClusterError(f"probe in netns {netns} failed: {e}") from None
    if cp.returncode != 0:
        raise ClusterError(f"probe in netns {netns} failed: {cp.stderr.strip().splitlines()[-1:] or cp.returncode}")
    return [Attempt(**a) for a in json.loads(cp.stdout)]


if __name__ == "__main__":  # pragma: no cover - run through `probe(..., netns=...)`
    a = sys.argv[1:]
    res = probe_local(a[0], int(a[1]), int(a[2]), http=a[3] == "1", timeout=float(a[4]), path=a[5])
    json.dump([asdict(x) for x in res], sys.stdout)

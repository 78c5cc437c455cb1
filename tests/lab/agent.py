"""What kube-proxy (proxy.py) and kube-router's firewall (kuberouter.py) share as node agents in a test-created
namespace: the API server reached through two `socat`s joined by a UNIX socket (nothing added to the host's
network), their processes started in their own sessions and stopped by process group, their logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

from typing_extensions import Self

from .controlplane import STARTED, ControlPlane, free_port


class NetnsAgent:
    """The shared part; each agent is a dataclass that declares these fields itself."""

    cp: ControlPlane
    netns: str
    work: Path
    procs: list[subprocess.Popen[bytes]]
    log_name: ClassVar[str] = ""  # the agent's own log: <work>/<log_name>.log

    def bridge_api(self) -> int:
        """A port on the namespace's 127.0.0.1 that reaches the host's API server."""
        self.work.mkdir(parents=True, exist_ok=True)
        sock = self.work / "apiserver.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        port = free_port()
        self._spawn("socat-host", ["socat", f"UNIX-LISTEN:{sock},fork,mode=600",
                                   f"TCP:127.0.0.1:{self.cp.api_port}"])
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.05)
        self._spawn("socat-netns", ["ip", "netns", "exec", self.netns, "socat",
                                    f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}"])
        return port

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        STARTED.append(p)

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args[:4]} exited ({p.returncode}):\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        p = self.work / f"{self.log_name}.log"
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:]) if p.exists() else ""

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        self.procs.clear()

    def start(self) -> Self:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:  # a start that fails half-way leaves nothing running
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

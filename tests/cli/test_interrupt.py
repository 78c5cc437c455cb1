"""Ctrl-C: `interrupted` and exit 130 (README, exit codes), at once, whatever svcctl was waiting for — click turns
the KeyboardInterrupt into its Abort, which is otherwise a usage error (exit 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from apiserver import FakeAPIServer
from gen_cluster import gen_cluster

Factory = Callable[..., FakeAPIServer]


def _interrupt(argv: list[str], env: dict[str, str], after: float) -> tuple[int, str, float]:
    """Run svcctl, send SIGINT `after` seconds in: (exit status, stderr, seconds from the signal to the exit)."""
    full = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | env
    # SIGINT back to its default in the child: a shell's background job (CI) starts with it ignored
    p = subprocess.Popen([sys.executable, "-m", "svcctl", *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=full,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    assert p.poll() is None, "svcctl ended before the interrupt"
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    return p.returncode, err.decode(), time.monotonic() - sent


@pytest.mark.parametrize("argv", [["endpoints", "hostnames", "--why-not"], ["check", "-A", "--no-dns"]])
def test_ctrl_c_while_waiting_for_the_api_server(apiserver: Factory, argv: list[str]) -> None:
    srv = apiserver(gen_cluster(40, pods_per_service=3, nodes=2))
    srv.set_fault(None, status=None, delay=0.5)  # every answer slow: the interrupt comes while svcctl waits
    code, err, took = _interrupt(argv, {"KUBECONFIG": str(srv.kubeconfig)}, after=2.0)
    assert code == 130, err
    assert err.rstrip().endswith("interrupted"), err
    assert "Traceback" not in err
    assert took < 2.0  # not after the request in flight (≤ 0.5 s) plus the rest of the reads

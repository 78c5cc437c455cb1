"""Fixtures for the lab: the real control plane, started once per session.

- `k8s`: a started `ControlPlane` (etcd, kube-apiserver, kube-controller-manager) with the lab's Nodes created;
  its logs are kept (and their tails printed) when a test fails.
- every test under tests/lab/ is marked `lab`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .controlplane import STARTED, ControlPlane, LabUnavailable
from .figures import FIGURES
from .states import node_objects


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every process the lab started (etcd, apiserver, controller-manager, kube-proxy, socat) is gone: kill any
    left behind, by its process group, and fail the run."""
    import signal

    left = [p for p in STARTED if p.poll() is None]
    for p in left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
    if left:
        print(f"\nleak guard: lab processes left running: {[p.args[:3] for p in left]}")
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("real Kubernetes agreement")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    if os.geteuid() != 0 or shutil.which("openssl") is None:
        pytest.fail("the lab needs root and openssl (tests/run.sh installs them)")
    work = tmp_path_factory.mktemp("k8s")
    cp = ControlPlane(work)
    try:
        cp.start()
    except LabUnavailable as e:
        pytest.fail(f"the real control plane did not start: {e}")
    for obj in node_objects():
        cp.apply(obj)
    try:
        yield cp
    finally:
        cp.stop()

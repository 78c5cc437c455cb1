"""Shared pytest fixtures. Keep each fixture small and documented; add yours in its own section.

- `kube_env` (autouse): the machine's KUBECONFIG, HOME, in-cluster variables and proxies never reach a test.
- `pki`: a throwaway CA, server and client certificate (openssl CLI), made once per session.
- `apiserver`: factory `apiserver(source="demo", **kw) -> FakeAPIServer`, started, with `.kubeconfig` written.
- `run_cli`: `run_cli(args, env=None) -> (exit_code, stdout, stderr)` through `svcctl.cli.main.run`.
- SVCCTL_STRICT_FINDINGS=1 for the whole run (and the svcctl subprocesses it starts): a finding whose code is
  not in svcctl/findings.py, or whose severity the registry does not allow for it, raises.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# No property test fails on time: a per-example deadline is a timed assertion, and this suite runs on loaded
# 2-CPU machines (the properties, not the speed, are what is tested; speed is benchmarks/' business).
settings.register_profile("svcctl", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("svcctl")

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "support"))  # the fakes and generators
# a test module that reuses another's cases imports it by name (`from test_collect import …`), whichever group it
# is in and whichever files a run selects (test file names are unique across the groups)
for _group in ("analysis", "cli", "dataplane", "e2e", "faults", "sources"):
    sys.path.append(os.path.join(os.path.dirname(__file__), _group))

from apiserver import PKI, FakeAPIServer, make_pki  # noqa: E402

# --------------------------------------------------------------------------- the finding registry, strictly

os.environ["SVCCTL_STRICT_FINDINGS"] = "1"

# --------------------------------------------------------------------------- environment isolation

_LEAKY_VARS = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAMESPACE",
               "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
               "NO_PROXY", "no_proxy")


@dataclass
class KubeEnv:
    home: Path  # an empty HOME (no ~/.kube/config)
    sa_dir: Path  # where the in-cluster service account files are looked for (absent until a test makes it)


@pytest.fixture(autouse=True)
def kube_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> KubeEnv:
    """No test sees the machine's kubeconfig, service account or proxies."""
    home = tmp_path_factory.mktemp("home")
    for var in _LEAKY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    sa_dir = home / "serviceaccount"
    import svcctl.sources.kubeconfig as kc

    monkeypatch.setattr(kc, "SERVICE_ACCOUNT_DIR", str(sa_dir))
    return KubeEnv(home, sa_dir)


# --------------------------------------------------------------------------- test API server


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl CLI is needed to make the test API server's certificates")
        pytest.skip("openssl CLI not installed")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def apiserver(pki: PKI, tmp_path: Path) -> Iterator[Callable[..., FakeAPIServer]]:
    """Factory: `apiserver(source="demo", **kw)` → a started FakeAPIServer with `.kubeconfig` written.

    `source` is a snapshot path, a SnapshotSource, or a list of object dicts (see tests/support/gen_cluster.py);
    keyword arguments go to FakeAPIServer (token=, require_client_cert=, copy=)."""
    started: list[FakeAPIServer] = []

    def make(source: Any = "demo", **kw: Any) -> FakeAPIServer:
        srv = FakeAPIServer(source, pki, **kw).start()
        started.append(srv)
        srv.kubeconfig = srv.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}")
        return srv

    yield make
    for srv in started:
        srv.stop()


# --------------------------------------------------------------------------- running the CLI in-process


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """`run_cli(["endpoints", "hostnames", ...], env={"KUBECONFIG": ...}) -> (exit_code, stdout, stderr)`."""

    def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
        from svcctl.cli.main import run as svcctl_run

        out, err = io.StringIO(), io.StringIO()
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = svcctl_run("svcctl", [str(a) for a in args])
        return code, out.getvalue(), err.getvalue()

    return run


# --------------------------------------------------------------------------- leak guard


def _host_network_state() -> dict[str, str]:
    """The host's own rules, routes and links, read (read-only) outside every namespace: the lab's kube-proxy,
    iptables and nft must never have touched them. Counters and generated-at comments are left out."""
    import re
    import subprocess

    out: dict[str, str] = {}
    for name, argv in (("iptables", ["iptables-save"]), ("ip6tables", ["ip6tables-save"]),
                       ("nft", ["nft", "list", "ruleset"]), ("routes", ["ip", "route", "show", "table", "all"]),
                       ("routes6", ["ip", "-6", "route", "show", "table", "all"]), ("links", ["ip", "-o", "link"])):
        if shutil.which(argv[0]) is None:
            continue
        try:
            text = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = [re.sub(r"\[\d+:\d+\]", "", ln) for ln in text.splitlines() if not ln.startswith("#")]
        if name == "links":  # names and flags only: counters and link state timers move on their own
            lines = [" ".join(ln.split()[:3]) for ln in lines]
        out[name] = "\n".join(lines)
    return out


_HOST_BEFORE: dict[str, str] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() == 0:
        _HOST_BEFORE.update(_host_network_state())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No network namespace this run made may outlive it: remove any that did, and fail the run. The host's
    rules, routes and links must be what they were when the run started."""
    if _HOST_BEFORE:
        after = _host_network_state()
        changed = sorted(k for k in _HOST_BEFORE if after.get(k) != _HOST_BEFORE[k])
        if changed:
            print(f"\nleak guard: the host's {', '.join(changed)} changed during the run")
            session.exitstatus = 1
    import re
    import subprocess

    if os.geteuid() != 0 or shutil.which("ip") is None:
        return
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    mine = [ln.split()[0] for ln in listed.splitlines()
            if ln.startswith("svt") and re.search(rf"-{os.getpid()}(-|$)", ln.split()[0])]
    for name in mine:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
    # dnsmasq servers the tests started (their files live under /tmp/svt-<pid>-dnsmasq-…)
    servers = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "dnsmasq" in cmd and f"/svt-{os.getpid()}-dnsmasq-" in cmd:
            servers.append(int(proc.name))
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), 9)
    if mine or servers:
        print(f"\nleak guard: left behind by tests: namespaces {mine}, dnsmasq pids {servers}")
        session.exitstatus = 1

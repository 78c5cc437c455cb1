"""When a node's rules cannot be read: exit 3 (or 2 for a bad file) with one line saying why, never a traceback.

Faults are real: an empty PATH, commands that fail the way iptables-save does for a non-root user, a file read
by a process that really dropped to uid 65534, a namespace that does not exist, a kube-proxy Pod missing or
refusing exec on the HTTPS test API server, and an empty stdin.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver import FakeAPIServer, grants_from_role, load_roles

RunCli = Callable[..., tuple[int, str, str]]
Factory = Callable[..., FakeAPIServer]
ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "svcctl" / "data" / "demo"
IPT = DEMO / "nodes" / "kind-worker" / "iptables-save.txt"
RBAC = ROOT / "deploy" / "rbac.yaml"


def one_line(code: int, out: str, err: str, want_code: int) -> str:
    assert "Traceback" not in err, err
    assert code == want_code, (code, out[-500:], err[-1000:])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def fake_bin(directory: Path, name: str, script: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / name
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(0o755)
    return p


# --------------------------------------------------------------------------- commands missing or failing


@pytest.mark.parametrize("args", [["rules", "--local-node"], ["rules", "--local-node", "--mode", "nftables"],
                                  ["rules", "--local-node", "--mode", "ipvs"],
                                  ["trace", "10.0.1.175:80", "--local-node"]])
def test_rules_command_missing_from_path(args: list[str], tmp_path: Path, run_cli: RunCli,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """No iptables-save / nft / ipvsadm on PATH: exit 3 naming the command (nothing is read from this host)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, out, err = run_cli(args)
    if "ipvs" in args and not os.path.exists("/proc/net/ip_vs"):
        line = one_line(code, out, err, 3)
        assert "ip_vs module is not loaded" in line  # never loads it to find out
        return
    line = one_line(code, out, err, 3)
    assert "is not installed here" in line and "this machine" in line, line
    assert out == ""


def test_command_fails_like_non_root(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """iptables-save exits 1 with its real non-root message: that message is the error, with a hint."""
    bindir = tmp_path / "bin"
    fake_bin(bindir, "iptables-save", 'echo "iptables-save v1.8.9 (nf_tables): Could not fetch rule set '
                                      'generation id: Permission denied (you must be root)" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", str(bindir))
    line = one_line(*run_cli(["rules", "--local-node"]), 3)
    assert "Permission denied (you must be root)" in line and "hint:" in line


def test_command_killed_by_signal(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    fake_bin(bindir, "iptables-save", "kill -9 $$\n")
    monkeypatch.setenv("PATH", str(bindir))
    line = one_line(*run_cli(["rules", "--local-node"]), 3)
    assert "iptables-save" in line


def test_command_not_executable(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file on PATH without the x bit is skipped by exec like a missing one."""
    bindir = tmp_path / "bin"
    fake_bin(bindir, "iptables-save", "exit 0\n").chmod(0o644)
    monkeypatch.setenv("PATH", str(bindir))
    line = one_line(*run_cli(["rules", "--local-node"]), 3)
    assert "iptables-save" in line


def test_optional_commands_failing_do_not_fail_the_read(tmp_path: Path, run_cli: RunCli,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """iptables-save works, conntrack is missing: the rules are still shown (conntrack is best effort)."""
    bindir = tmp_path / "bin"
    fake_bin(bindir, "iptables-save", f"/bin/cat {IPT}\n")
    monkeypatch.setenv("PATH", str(bindir))
    code, out, err = run_cli(["rules", "--local-node", "-o", "json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["apiVersion"] == "svcctl/v1" and any(s.get("address") == "10.0.1.175" for s in doc["services"])


# --------------------------------------------------------------------------- permission denied, directories, FIFOs


def _as_nobody(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in a forked child that has really dropped to uid/gid 65534 (root bypasses file modes, so a
    chmod 000 file proves nothing when read as root). Imports are warmed first: the child cannot read the
    interpreter's own library directory under /root."""
    import contextlib
    import importlib
    import pkgutil

    import svcctl
    from svcctl.cli.main import run

    for mod in pkgutil.walk_packages(svcctl.__path__, "svcctl."):
        if not mod.name.endswith(("live", "kubeconfig", "__main__")):
            importlib.import_module(mod.name)
    import click

    for mod in pkgutil.walk_packages(click.__path__, "click."):
        if mod.name != "click._winconsole":
            importlib.import_module(mod.name)
    for name in ("rich.table", "rich.text", "rich.console", "rich.markup", "rich.panel", "rich.tree", "tabulate",
                 "yaml", "encodings.idna", "json.encoder", "difflib", "textwrap", "shutil"):
        importlib.import_module(name)
    warm = io.StringIO()
    with contextlib.redirect_stdout(warm), contextlib.redirect_stderr(warm):
        run("svcctl", ["rules", "--iptables-save", str(IPT)])
        run("svcctl", ["endpoints", "hostnames", "--snapshot", str(DEMO / "cluster.yaml")])
        run("svcctl", ["rules", "--iptables-save", "/nonexistent"])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 99
        out, err = io.StringIO(), io.StringIO()
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run("svcctl", args)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            err.write(f"child failed: {e!r}")
        finally:
            os.write(w, json.dumps([code, out.getvalue(), err.getvalue()]).encode())
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    code, out, err = json.loads(b"".join(chunks))
    return int(code), str(out), str(err)


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory uid 65534 can enter (pytest's tmp_path sits under a root-only 0700 directory)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=f"svt-rel-{os.getpid()}-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to uid 65534 needs root")
def test_permission_denied_file(world_dir: Path) -> None:
    d = world_dir
    secret = d / "iptables-save.txt"
    secret.write_text(IPT.read_text())
    secret.chmod(0o000)
    line = one_line(*_as_nobody(["rules", "--iptables-save", str(secret)]), 2)
    assert str(secret) in line and "Permission denied" in line
    snap = d / "snap.yaml"
    snap.write_text((DEMO / "cluster.yaml").read_text())
    snap.chmod(0o000)
    line = one_line(*_as_nobody(["endpoints", "hostnames", "--snapshot", str(snap)]), 2)
    assert str(snap) in line and "Permission denied" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to uid 65534 needs root")
def test_permission_denied_directory_snapshot(world_dir: Path) -> None:
    """A snapshot directory with one unreadable file: the error names that file."""
    d = world_dir / "snap"
    d.mkdir()
    d.chmod(0o755)
    (d / "cluster.yaml").write_text((DEMO / "cluster.yaml").read_text())
    (d / "more.yaml").write_text("kind: List\nitems: []\n")
    (d / "more.yaml").chmod(0o000)
    code, out, err = _as_nobody(["endpoints", "hostnames", "--snapshot", str(d)])
    line = one_line(code, out, err, 2)
    assert "more.yaml" in line and "Permission denied" in line.replace("permission denied", "Permission denied")


def test_path_is_a_directory(tmp_path: Path, run_cli: RunCli) -> None:
    line = one_line(*run_cli(["rules", "--iptables-save", str(tmp_path)]), 2)
    assert str(tmp_path) in line and "directory" in line


def test_missing_file(tmp_path: Path, run_cli: RunCli) -> None:
    p = tmp_path / "nope.txt"
    for args in (["rules", "--nft", str(p)], ["endpoints", "x", "--snapshot", str(p)]):
        line = one_line(*run_cli(args), 2)
        assert str(p) in line and "no such file" in line.lower()


def test_fifo_is_read_like_process_substitution(tmp_path: Path, run_cli: RunCli) -> None:
    """`--iptables-save <(ssh node iptables-save)` hands svcctl a pipe: it must be read, not refused."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)

    def writer() -> None:
        with open(fifo, "w") as fh:
            fh.write(IPT.read_text())

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    code, out, err = run_cli(["rules", "default/hostnames", "--iptables-save", str(fifo), "-o", "json"])
    t.join(10)
    assert code == 0, err
    assert [s["address"] for s in json.loads(out)["services"]] == ["10.0.1.175"]


# --------------------------------------------------------------------------- network namespaces


def test_netns_that_does_not_exist(run_cli: RunCli) -> None:
    name = f"nope-xyz-{os.getpid()}"
    for args in (["rules", "--netns", name], ["trace", "10.0.1.175:80", "--netns", name]):
        line = one_line(*run_cli(args), 3)
        assert repr(name) in line and "does not exist" in line and "ip netns list" in line


@pytest.mark.parametrize("name", ["../../etc", "a/b", "", "-x", "x" * 300])
def test_netns_odd_names_never_escape(name: str, run_cli: RunCli) -> None:
    """A namespace name is a file name under /run/netns: no path tricks, no option injection."""
    code, out, err = run_cli(["rules", "--netns", name])
    assert "Traceback" not in err
    assert code == 2, (code, err)  # refused by svcctl itself, before `ip` ever sees it
    assert "is not a network namespace name" in err
    assert out == ""


# --------------------------------------------------------------------------- kube-proxy through the API server


def _kube_proxy(node: str = "kind-worker") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"kube-proxy-{node}", "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-proxy"}},
            "spec": {"nodeName": node, "containers": [{"name": "kube-proxy", "image": "kube-proxy"}]},
            "status": {"phase": "Running"}}


def _demo_objects(extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from apiserver import _objects_of

    return [*_objects_of(str(DEMO)), *extra]


def test_no_kube_proxy_pod_on_the_node(apiserver: Factory, run_cli: RunCli) -> None:
    """kube-proxy runs elsewhere (or as a systemd unit): a warning that says so, then a usage error."""
    srv = apiserver()
    code, out, err = run_cli(["rules", "--node", "kind-worker", "--kubeconfig", str(srv.kubeconfig)])
    assert "Traceback" not in err and out == ""
    assert code == 2, err
    assert "no kube-proxy Pod found on node kind-worker" in err
    assert err.strip().splitlines()[-1].startswith("error: no node rules to read")
    assert srv.execs == [] and srv.writes == []


def test_kube_proxy_exec_forbidden(apiserver: Factory, run_cli: RunCli) -> None:
    """RBAC without svcctl-node-exec: exit 3, one line naming the Pod and the missing role."""
    srv = apiserver(_demo_objects([_kube_proxy()]))
    srv.rbac_from_yaml(RBAC, {"ClusterRole/svcctl-reader": None})
    line = one_line(*run_cli(["rules", "--node", "kind-worker", "--kubeconfig", str(srv.kubeconfig)]), 3)
    assert "kube-system/kube-proxy-kind-worker" in line and "svcctl-node-exec" in line
    assert srv.execs == [] and srv.writes == []


def test_kube_proxy_exec_command_fails(apiserver: Factory, run_cli: RunCli) -> None:
    """The container has no iptables-save (distroless image): exit 3 with the container's own message."""
    srv = apiserver(_demo_objects([_kube_proxy()]))
    srv.exec_handler = lambda ns, pod, c, argv: ("", f'exec: "{argv[0]}": executable file not found in $PATH\n', 127)
    line = one_line(*run_cli(["rules", "--node", "kind-worker", "--kubeconfig", str(srv.kubeconfig)]), 3)
    assert "executable file not found" in line and "kube-proxy-kind-worker" in line
    assert [e[3] for e in srv.execs] == [["iptables-save"]]


def test_kube_proxy_exec_times_out(apiserver: Factory, run_cli: RunCli) -> None:
    srv = apiserver(_demo_objects([_kube_proxy()]))
    srv.set_fault("pods/exec", status=None, delay=3)
    line = one_line(*run_cli(["rules", "--node", "kind-worker", "--request-timeout", "0.5",
                              "--kubeconfig", str(srv.kubeconfig)]), 3)
    assert "did not finish within 0.5s" in line and "--request-timeout" in line


def test_kube_proxy_exec_returns_garbage(apiserver: Factory, run_cli: RunCli) -> None:
    """Whatever comes back through exec is parsed like a file: a bad dump is an input error (2), not a crash."""
    srv = apiserver(_demo_objects([_kube_proxy()]))
    srv.exec_handler = lambda ns, pod, c, argv: ("\x00\x01garbage\n" * 10, "", 0)
    code, out, err = run_cli(["rules", "--node", "kind-worker", "--kubeconfig", str(srv.kubeconfig)])
    assert "Traceback" not in err and code in (2, 3), (code, err)
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_kube_proxy_pod_listing_forbidden_degrades(apiserver: Factory, run_cli: RunCli) -> None:
    """Not allowed to list Pods in kube-system: the kube-proxy lookup is skipped with a warning."""
    srv = apiserver(_demo_objects([_kube_proxy()]))
    role = load_roles(RBAC)["Role/svcctl-namespace-reader"]
    srv.set_rbac(grants_from_role(role))
    code, out, err = run_cli(["rules", "--node", "kind-worker", "--kubeconfig", str(srv.kubeconfig)])
    assert "Traceback" not in err and out == ""
    assert code in (2, 3), err
    assert srv.execs == [] and srv.writes == []


# --------------------------------------------------------------------------- stdin


def test_stdin_empty_in_a_real_process() -> None:
    for flag in ("--iptables-save", "--ipvsadm", "--nft"):
        proc = subprocess.run([sys.executable, "-m", "svcctl", "rules", flag, "-"], input="", capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
        line = one_line(proc.returncode, proc.stdout, proc.stderr, 2)
        assert "<stdin>" in line and "empty" in line


def test_stdin_closed(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.StringIO("")
    stdin.close()
    monkeypatch.setattr(sys, "stdin", stdin)
    line = one_line(*run_cli(["rules", "--iptables-save", "-"]), 2)
    assert "<stdin>" in line


def test_stdin_closed_fd_and_strict_decoding() -> None:
    """`svcctl … - <&-` (no fd 0: sys.stdin is None) and non-UTF-8 bytes under a strict stdin encoding used to
    end as internal errors (exit 4)."""
    cmd = [sys.executable, "-m", "svcctl", "rules", "--iptables-save", "-"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          preexec_fn=lambda: os.close(0))
    assert "<stdin>" in one_line(proc.returncode, proc.stdout, proc.stderr, 2)
    raw = subprocess.run(cmd, input=b"*nat\n\xff\xfe\n", capture_output=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    line = one_line(raw.returncode, raw.stdout.decode(), raw.stderr.decode(), 2)
    assert line.startswith("error: <stdin>:2: ")


def test_stdin_for_two_dumps(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(IPT.read_text()))
    line = one_line(*run_cli(["rules", "--iptables-save", "-", "--conntrack", "-"]), 2)
    assert "stdin" in line

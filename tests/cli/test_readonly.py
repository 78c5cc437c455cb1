"""svcctl only reads: no API verb but GET, no Secret/ConfigMap read, node commands only from the allow-list.

Every command runs against the HTTPS test API server, which refuses and records anything but GET; exec into
kube-proxy (a websocket GET authorised as `create pods/exec`) may only carry allow-listed argv. Node commands
are recorded at the subprocess boundary (nothing runs on this host); the source tree is checked for any other
way to start a process or for `shell=True`.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver import FakeAPIServer, _objects_of
from dnsserver import StubResponder

from svcctl.sources import batch, targeted
from svcctl.sources.node import ALLOWED_COMMANDS

RunCli = Callable[..., tuple[int, str, str]]
Factory = Callable[..., FakeAPIServer]
ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "svcctl" / "data" / "demo"
DUMPS = DEMO / "nodes" / "kind-worker"
ALLOWED = {tuple(v) for v in ALLOWED_COMMANDS.values()}
OUTPUT_FOR = {("iptables-save",): "iptables-save.txt", ("ipvsadm", "-Ln"): "ipvsadm.txt",
              ("nft", "list", "table", "ip", "kube-proxy"): "nft.txt", ("ipset", "list"): "ipset.txt",
              ("ip", "addr", "show", "kube-ipvs0"): "ip-addr-kube-ipvs0.txt"}


def _answer(argv: list[str]) -> tuple[str, str, int]:
    name = OUTPUT_FOR.get(tuple(argv))
    if name:
        return (DUMPS / name).read_text(), "", 0
    if argv[:1] == ["conntrack"]:
        return "", "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n", 0
    if argv[:1] in (["iptables"], ["ip6tables"]):  # targeted reads, answered as iptables would from the dump
        from gen_fleet import RuleIndex

        got = RuleIndex((DUMPS / "iptables-save.txt").read_text()).answer(argv)
        if got is not None:
            return got
    return "", f"{argv[0]}: not found\n", 127


def kube_proxy_pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-proxy-kw", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
            "spec": {"nodeName": "kind-worker", "containers": [{"name": "kube-proxy", "image": "kube-proxy"}]},
            "status": {"phase": "Running"}}


@pytest.fixture
def cluster(apiserver: Factory) -> FakeAPIServer:
    srv = apiserver([*_objects_of(str(DEMO)), kube_proxy_pod()])
    srv.exec_handler = lambda ns, pod, c, argv: _answer(argv)
    return srv


@pytest.fixture(scope="module")
def dns_stub() -> Iterator[str]:
    with StubResponder("servfail") as stub:
        yield stub.address


def command_set(kc: str, out_dir: Path, dns: str) -> list[list[str]]:
    """Every command and the flags that make it read the most (all namespaces, node rules, why-not)."""
    k = ["--kubeconfig", kc, "--dns-timeout", "0.3"]
    cmds = [
        ["endpoints", "hostnames", "--why-not", "--kubeconfig", kc],
        ["endpoints", "-A", "-o", "json", "--kubeconfig", kc],
        ["trace", "hostnames", "--node", "kind-worker", "--dns-server", dns, *k],
        ["trace", "10.0.1.175:80", "--node", "kind-worker", "-o", "json", *k],
        ["trace", "kube-system/kube-dns", "--node", "kind-worker", "--mode", "iptables", "--no-dns",
         "--kubeconfig", kc],
        ["rules", "default/hostnames", "--node", "kind-worker", "--kubeconfig", kc],
        ["rules", "--node", "kind-worker", "--mode", "ipvs", "--kubeconfig", kc],
        ["rules", "--node", "kind-worker", "--mode", "nftables", "--kubeconfig", kc],
        ["dns", "hostnames", "--dns-server", dns, "--dns-timeout", "0.3", "--kubeconfig", kc],
        ["collect", "-A", "-o", str(out_dir / "all.tar.gz"), "--kubeconfig", kc],
        ["collect", "hostnames", "--node-rules", "-o", str(out_dir / "one.tar.gz"), "--kubeconfig", kc],
        ["check", "hostnames", "--node", "kind-worker", "--dns-server", dns, *k],
        ["check", "-A", "--kubeconfig", kc, "--no-dns"],
        ["check", "-A", "-o", "junit", "--kubeconfig", kc],
        ["trace", "hostnames", "--all-nodes", *k, "--no-dns"],
    ]
    return cmds


def test_every_command_only_reads(cluster: FakeAPIServer, run_cli: RunCli, tmp_path: Path, dns_stub: str) -> None:
    ran: list[tuple[str, int]] = []
    for cmd in command_set(str(cluster.kubeconfig), tmp_path, dns_stub):
        before = len(cluster.requests)
        code, _out, err = run_cli(cmd)
        ran.append((" ".join(c for c in cmd if "/" not in c or c.startswith("default/")), code))
        assert "Traceback" not in err and code in (0, 1, 2, 3), (cmd, code, err[-1500:])
        if code == 2 and "no such option" in err:
            continue  # a flag this command does not take (yet): nothing was sent
        assert len(cluster.requests) > before or cmd[0] == "rules", (cmd, err)
    assert len(ran) >= 8, ran
    assert cluster.writes == [], [(w.method, w.path) for w in cluster.writes]
    assert {r.method for r in cluster.requests} == {"GET"}
    verbs = {(r.verb, r.resource) for r in cluster.requests}
    assert {v for v, _ in verbs} <= {"get", "list", "create"}, verbs
    assert {res for v, res in verbs if v == "create"} <= {"pods/exec"}, verbs  # exec only, never a real create
    assert not {res for _, res in verbs} & {"secrets", "configmaps"}, verbs
    assert all(q.query.get("watch") in (None, "false", "0") for q in cluster.requests)
    # exec: only allow-listed argv, only into the kube-proxy Pod
    assert cluster.execs, "no command read node rules through kube-proxy"
    for ns, pod, _container, argv in cluster.execs:
        assert (ns, pod) == ("kube-system", "kube-proxy-kw")
        # a batched round (`sh -c`): exactly the script svcctl composes from allow-listed commands, nothing else
        assert tuple(argv) in ALLOWED or targeted.allowed(argv) or batch.allowed_batch(argv), argv
    assert any(batch.allowed_batch(e[3]) for e in cluster.execs)


def test_completion_only_reads(cluster: FakeAPIServer, run_cli: RunCli) -> None:
    """Dynamic completion (names from the cluster) through click's protocol and kubectl's cobra protocol."""
    kc = str(cluster.kubeconfig)
    env = {**os.environ, "_SVCCTL_COMPLETE": "bash_complete", "COMP_WORDS": f"svcctl endpoints --kubeconfig {kc} h",
           "COMP_CWORD": "4"}
    before = len(cluster.requests)
    proc = subprocess.run([sys.executable, "-c", "from svcctl.cli.main import main; main()"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "hostnames" in proc.stdout, (proc.stdout, proc.stderr)
    from svcctl.cli.complete import cobra_complete
    from svcctl.cli.main import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        cobra_complete(cli, ["__complete", "endpoints", "--kubeconfig", kc, "-n", ""])
    assert "default" in out.getvalue()
    assert len(cluster.requests) > before
    assert cluster.writes == [] and {r.method for r in cluster.requests} == {"GET"}


# --------------------------------------------------------------------------- node commands: argv audit


class Recorder:
    """Stands in for subprocess.run/Popen: records every argv and answers node commands with the demo's dumps."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def run(self, argv: Any, *a: Any, **kw: Any) -> subprocess.CompletedProcess[Any]:
        assert not a, "positional arguments after argv"
        self.calls.append((list(argv) if not isinstance(argv, str) else [argv], kw))
        inner = list(argv)
        if inner[:3] == ["ip", "netns", "exec"]:
            inner = inner[4:]
        out, err, rc = _answer(inner)
        if not kw.get("text"):
            return subprocess.CompletedProcess(argv, rc, out.encode(), err.encode())
        return subprocess.CompletedProcess(argv, rc, out, err)

    def popen(self, argv: Any, *a: Any, **kw: Any) -> Any:
        self.calls.append((list(argv) if not isinstance(argv, str) else [argv], kw))
        raise AssertionError(f"Popen used for {argv!r}")


@pytest.fixture(scope="module")
def netns_name() -> Iterator[str]:
    """A real (empty) namespace so `--netns` gets past its existence check; nothing runs inside it.

    Module scope: it is torn down after the test's monkeypatch of subprocess is undone (a function-scoped
    teardown ran while subprocess was still the recorder, and the namespace was left behind)."""
    name = f"svt-{os.getpid()}-ro"
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("creating a network namespace needs root and iproute2")
        pytest.skip("needs root and iproute2 for `ip netns add`")
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, capture_output=True, timeout=30)
        assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                          timeout=30).stdout


def test_node_commands_are_allow_listed_argv(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch,
                                             netns_name: str) -> None:
    rec = Recorder()
    monkeypatch.setattr(subprocess, "run", rec.run)
    monkeypatch.setattr(subprocess, "Popen", rec.popen)
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail(f"os.system{a}"))
    runs = [
        ["rules", "--local-node"], ["rules", "--netns", netns_name],
        ["rules", "--local-node", "--mode", "nftables"], ["rules", "--netns", netns_name, "--mode", "iptables"],
        ["trace", "10.0.1.175:80", "--local-node"], ["trace", "10.0.1.175:80", "--netns", netns_name],
        ["rules", "--netns", netns_name, "--mode", "ipvs"],
    ]
    for args in runs:
        code, _, err = run_cli(args)
        assert "Traceback" not in err and code in (0, 1, 2, 3), (args, code, err)
    assert len(rec.calls) >= len(runs)
    for argv, kw in rec.calls:
        assert kw.get("shell") in (None, False), (argv, kw)
        assert all(isinstance(a, str) for a in argv)
        inner = argv
        if argv[:3] == ["ip", "netns", "exec"]:
            assert argv[3] == netns_name, argv
            inner = argv[4:]
        assert tuple(inner) in ALLOWED, argv
        assert kw.get("stdin") is subprocess.DEVNULL or kw.get("input") is None
    seen = {tuple(a[4:] if a[:3] == ["ip", "netns", "exec"] else a) for a, _ in rec.calls}
    assert ("iptables-save",) in seen and ("nft", "list", "table", "ip", "kube-proxy") in seen


def test_ipvsadm_never_runs_without_the_ip_vs_module(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """ipvsadm would load ip_vs: svcctl refuses rather than change the node it reads."""
    rec = Recorder()
    monkeypatch.setattr(subprocess, "run", rec.run)
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if p == "/proc/net/ip_vs" else real_exists(p))
    code, _, err = run_cli(["rules", "--local-node", "--mode", "ipvs"])
    assert code == 3 and "ip_vs module is not loaded" in err
    assert not any("ipvsadm" in a for a, _ in rec.calls)


def _subprocess_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("subprocess", "os"):
                yield node


def test_source_tree_starts_processes_only_in_known_places() -> None:
    """Three places may start a process: the node allow-list, the opt-in probe in a netns, and the kubeconfig's
    exec credential plugin (what the user configured). None uses a shell; nothing uses os.system/exec/spawn."""
    known = {("sources/node.py", "run"), ("sources/probe.py", "run"), ("sources/kubeconfig.py", "run")}
    found: set[tuple[str, str]] = set()
    for path in sorted((ROOT / "svcctl").rglob("*.py")):
        rel = path.relative_to(ROOT / "svcctl").as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in _subprocess_calls(tree):
            assert isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
            mod, attr = call.func.value.id, call.func.attr
            if mod == "os":
                assert not (attr.startswith(("exec", "spawn", "popen", "system", "posix_spawn", "fork"))), \
                    f"{rel}: os.{attr}"
                continue
            if attr in ("DEVNULL", "PIPE", "CompletedProcess", "TimeoutExpired"):
                continue
            found.add((rel, attr))
            for kw in call.keywords:
                assert not (kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)), \
                    f"{rel}:{call.lineno}: shell="
            assert call.args and not isinstance(call.args[0], ast.JoinedStr | ast.Constant), \
                f"{rel}:{call.lineno}: argv must be a list, not a string"
    assert found <= known, found - known
    assert ("sources/node.py", "run") in found


def test_allow_list_is_read_only() -> None:
    """Every allow-listed command only lists or shows; none takes a flag that changes state."""
    readers = {"iptables-save", "ip6tables-save"}
    for argv in ALLOWED:
        if argv[0] in readers:  # the whole dump, or one table of it
            assert len(argv) == 1 or (len(argv) == 3 and argv[1] == "-t" and argv[2].isalpha()), argv
            continue
        verbs = set(argv[1:])
        assert verbs & {"-Ln", "-Lnc", "list", "-L", "show", "dump"}, argv
        assert not verbs & {"-A", "-D", "-E", "-C", "-F", "-Z", "add", "delete", "flush", "set", "-f", "--restore",
                            "-R", "-X", "destroy", "create", "del", "replace", "-U"}, argv


def test_targeted_reads_only_list_or_check() -> None:
    """The targeted shapes (sources/targeted.py): `-S` of one per-Service chain, `-C` (check) of one entry rule,
    one IPVS virtual server, one ipset member `test`, one address on kube-ipvs0; no verb that writes, no other chain, no option outside kube-proxy's entry rules, no other binary."""
    ok = [["iptables", "-t", "nat", "-S", "KUBE-SVC-AC2ON6IKLZPGXVMV"],
          ["ip6tables", "-t", "nat", "-S", "KUBE-SEP-AC2ON6IKLZPGXVMV"],
          ["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-m", "comment", "--comment", "default/a:http cluster IP",
           "-m", "tcp", "-p", "tcp", "-d", "10.96.0.1", "--dport", "80", "-j", "KUBE-SVC-AC2ON6IKLZPGXVMV"],
          ["conntrack", "-L", "-d", "10.96.0.1"], ["conntrack", "-L", "-f", "ipv6", "-d", "fd00::1"],
          ["conntrack", "-L", "-p", "tcp", "--dport", "30080"],
          ["nft", "list", "chain", "ip", "kube-proxy", "service-AC2ON6IK-default/a/tcp/http"],
          ["nft", "get", "element", "ip", "kube-proxy", "service-ips", "{", "10.96.0.1", ".", "tcp", ".", "80", "}"],
          ["ipvsadm", "-Ln", "-t", "10.96.0.1:80"], ["ipvsadm", "-Ln", "-u", "[fd00::a]:53"],
          ["ipset", "test", "KUBE-CLUSTER-IP", "10.96.0.1,tcp:80"],  # a lookup: `test` changes nothing
          ["ip", "-o", "addr", "show", "dev", "kube-ipvs0", "to", "10.96.0.1/32"], ["ip", "-o", "addr", "show", "up"],
          ["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-m", "set", "--match-set", "KUBE-CLUSTER-IP", "dst,dst",
           "-j", "ACCEPT"]]
    assert all(targeted.allowed(a) for a in ok)
    refused = [
        ["iptables", "-t", "nat", "-A", "KUBE-SERVICES", "-j", "KUBE-SVC-AC2ON6IKLZPGXVMV"],
        ["iptables", "-t", "nat", "-D", "KUBE-SVC-AC2ON6IKLZPGXVMV", "1"],
        ["iptables", "-t", "nat", "-F", "KUBE-SVC-AC2ON6IKLZPGXVMV"],
        ["iptables", "-t", "nat", "-S", "KUBE-SERVICES"],  # every Service: not targeted
        ["iptables", "-t", "nat", "-S", "KUBE-SVC-AC2ON6IKLZPGXVMV", "1"],
        ["iptables", "-t", "mangle", "-S", "KUBE-SVC-AC2ON6IKLZPGXVMV"],
        ["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-j", "ACCEPT"],
        ["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-m", "comment", "--comment", "x", "-D", "KUBE-SERVICES",
         "-j", "KUBE-NODEPORTS"],
        ["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-m", "comment", "--comment", "x"],  # no target
        ["iptables", "-t", "nat", "-C", "INPUT", "-j", "KUBE-NODEPORTS"],
        ["ipvsadm", "-C"], ["nft", "flush", "ruleset"], ["sh", "-c", "iptables -t nat -S KUBE-SERVICES"],
        ["conntrack", "-D", "-d", "10.96.0.1"], ["conntrack", "-F"], ["conntrack", "-L", "-d", "10.0.0.0/8"],
        ["conntrack", "-L"],  # the whole table: not targeted (it is on the fixed list for a whole read)
        ["nft", "list", "table", "ip", "kube-proxy"],  # idem
        ["nft", "delete", "element", "ip", "kube-proxy", "service-ips", "{", "10.96.0.1", ".", "tcp", ".", "80", "}"],
        ["nft", "list", "chain", "ip", "kube-proxy", "service-AC2ON6IK-a; flush ruleset"],
        ["nft", "get", "element", "ip", "kube-proxy", "service-ips", "{", "10.96.0.1", "}", ";", "flush", "}"],
        ["ipvsadm", "-D", "-t", "10.96.0.1:80"], ["ipvsadm", "-Ln", "-t", "10.96.0.1:80", "-C"], ["ipvsadm", "-Z"],
        ["ipset", "add", "KUBE-CLUSTER-IP", "10.96.0.1,tcp:80"], ["ipset", "del", "KUBE-CLUSTER-IP", "10.96.0.1,tcp:80"],
        ["ipset", "flush", "KUBE-CLUSTER-IP"], ["ipset", "destroy"], ["ipset", "list"],  # (whole: on the fixed list)
        ["ip", "addr", "del", "10.96.0.1/32", "dev", "kube-ipvs0"], ["ip", "link", "set", "kube-ipvs0", "up"],
        ["iptables", "-t", "nat", "-D", "KUBE-SERVICES", "-m", "set", "--match-set", "KUBE-CLUSTER-IP", "dst,dst",
         "-j", "ACCEPT"],  # IPVS mode's glue rule: only its exact `-C` check is allowed
        ["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-m", "set", "--match-set", "KUBE-CLUSTER-IP", "dst,dst",
         "-j", "DROP"],
    ]
    assert not any(targeted.allowed(a) for a in refused), [a for a in refused if targeted.allowed(a)]

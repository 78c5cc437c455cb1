"""Start-up cost: `svcctl --help`, `--version` and snapshot-only commands never import the kubernetes client (it
alone costs more than the rest of svcctl's start-up). Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
HEAVY = ("kubernetes", "urllib3", "websocket", "dns.resolver")

PROBE = r"""
import contextlib, io, json, sys
from svcctl.cli.main import run
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = run("svcctl", json.loads(sys.argv[1]))
heavy = json.loads(sys.argv[2])
print(json.dumps({"code": code, "out": out.getvalue()[:2000], "err": err.getvalue()[-2000:],
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy)}))
"""


def run_fresh(args: list[str], heavy: tuple[str, ...] = HEAVY) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps([h.split(".")[0] for h in heavy])],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    res: dict[str, object] = json.loads(proc.stdout)
    return res


@pytest.mark.parametrize("args", [
    ["--help"],
    ["--version"],
    ["trace", "--help"],
    ["trace", "hostnames", "--snapshot", "demo", "--no-dns"],
    ["endpoints", "hostnames", "--why-not", "--snapshot", "demo"],
    ["rules", "hostnames", "--snapshot", "demo", "-o", "json"],
])
def test_never_imports_the_kubernetes_client(args: list[str]) -> None:
    res = run_fresh(args)
    assert res["code"] in (0, 1), res
    loaded = [str(m) for m in res["loaded"]]  # type: ignore[attr-defined]
    assert not [m for m in loaded if m.split(".")[0] in ("kubernetes", "urllib3", "websocket")], loaded


def dead_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose server is a port nothing listens on (the discard port)."""
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x", "namespace": "default"}}]}))
    return kc


def test_the_probe_would_see_the_client_if_it_were_imported(tmp_path: Path) -> None:
    """The same probe on a live command (whose cluster does not answer) does see it: the check above can fail."""
    kc = dead_kubeconfig(tmp_path)
    res = run_fresh(["endpoints", "hostnames", "--kubeconfig", str(kc), "--request-timeout", "1"])
    assert res["code"] == 3, res
    loaded = [str(m) for m in res["loaded"]]  # type: ignore[attr-defined]
    assert any(m.split(".")[0] == "kubernetes" for m in loaded), (res, loaded)


def test_an_unreachable_server_fails_before_loading_what_an_answer_needs(tmp_path: Path) -> None:
    """Failing on an unreachable server is a target of its own (issue 19: <= 0.3 s): `endpoints` must reach its
    first request without the check operation, the analysis, the API model (its dataclasses), the dataplane modes
    or their model, which only an answer uses."""
    kc = dead_kubeconfig(tmp_path)
    res = run_fresh(["endpoints", "ns1/hostnames", "--kubeconfig", str(kc), "--request-timeout", "1"],
                    heavy=("svcctl", "kubernetes"))
    assert res["code"] == 3, res
    loaded = [str(m) for m in res["loaded"]]  # type: ignore[attr-defined]
    assert "svcctl.sources.live" in loaded and "svcctl.ops.refs" in loaded, loaded  # the probe sees svcctl's own
    assert [m for m in loaded if m in ("svcctl.ops.check", "svcctl.model") or m.startswith("svcctl.analysis")
            or m.startswith(("svcctl.dataplane.modes", "svcctl.dataplane.model"))] == [], loaded


def test_import_time_of_help_has_no_client_modules() -> None:
    """`python -X importtime -m svcctl --help`: the import log itself names no kubernetes module."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "svcctl", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0
    names = [ln.rsplit("|", 1)[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    assert names and "svcctl.cli.main" in names
    assert not [n for n in names if n.split(".")[0] == "kubernetes"]


GENERATED = ("kubernetes.client.api.", "kubernetes.client.models", "kubernetes.client.api_client", "kubernetes.config",
             "kubernetes.stream", "kubernetes.dynamic", "pydantic")


@pytest.mark.parametrize("args", [
    ["endpoints", "hostnames", "--why-not", "-o", "json"],
    ["trace", "hostnames", "--node", "kind-worker", "--no-dns", "-o", "json"],
])
def test_live_commands_use_only_the_clients_rest_layer(apiserver: Any, args: list[str]) -> None:
    """A live answer (and a node read through kube-proxy exec) loads the client's configuration and rest layer,
    never the generated API classes, models or kubeconfig loader: those were most of a live command's time."""
    from gen_fleet import kube_proxy_pod

    srv = apiserver("demo")
    srv.load([kube_proxy_pod("kind-worker")])
    dump = (ROOT / "svcctl/data/demo/nodes/kind-worker/iptables-save.txt").read_text()
    srv.exec_handler = lambda ns, pod, container, argv: ((dump, "", 0) if argv[0] == "iptables-save"
                                                         else ("", "no such command\n", 127))
    res = run_fresh([*args, "--kubeconfig", str(srv.kubeconfig)], heavy=("kubernetes", "pydantic"))
    assert res["code"] in (0, 1), res
    loaded = [str(m) for m in res["loaded"]]  # type: ignore[attr-defined]
    assert "kubernetes.client.rest" in loaded and "kubernetes.client.configuration" in loaded, loaded
    assert [m for m in loaded if m.startswith(GENERATED) or m == "kubernetes.client.api"] == []
    assert [r.path for r in srv.requests if r.path.startswith("/api/v1/namespaces/default/services/hostnames")]
    if args[0] == "trace":
        assert srv.execs and srv.execs[0][1] == "kube-proxy-kind-worker", srv.execs



# what a one-Service read of a node file needs no part of: the API model (its dataclasses were a tenth of the
# run), the trace analysis, rich, and subprocess (no command runs)
FILE_READ_UNNEEDED = ("svcctl.model", "svcctl.analysis", "rich", "subprocess", "kubernetes")

PROBE_MODULES = r"""
import contextlib, io, json, sys
from svcctl.cli.main import run
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    code = run("svcctl", json.loads(sys.argv[1]))
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _unneeded_loaded(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE_MODULES, json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    res: dict[str, Any] = json.loads(proc.stdout)
    return res, [m for m in res["modules"] if any(m == u or m.startswith(u + ".") for u in FILE_READ_UNNEEDED)]


@pytest.fixture(scope="module")
def big_iptables_save(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dump past the streaming threshold, so the streamed cut is what runs."""
    from gen_big_dumps import write_iptables_save

    path = tmp_path_factory.mktemp("startup") / "iptables-save.txt"
    write_iptables_save(str(path), 400)
    return path


@pytest.mark.parametrize("ask", ["ns0/svc300", "10.96.1.45:80", "default/hostnames", "10.0.1.175:80"])
def test_a_one_service_file_read_imports_only_what_it_uses(ask: str, big_iptables_save: Path) -> None:
    dump = str(big_iptables_save) if ask.startswith(("ns0", "10.96.1.")) else \
        str(ROOT / "svcctl/data/demo/nodes/kind-worker/iptables-save.txt")
    res, loaded = _unneeded_loaded(["rules", ask, "--iptables-save", dump, "-o", "json"])
    assert res["code"] == 0, res["out"][-500:]
    assert json.loads(res["out"])["services"], res["out"][-500:]
    assert loaded == []


def test_the_module_probe_sees_the_model_when_a_snapshot_needs_it() -> None:
    """The same probe with a snapshot (whose Services are read) does see svcctl.model: the check above can fail."""
    res, loaded = _unneeded_loaded(["rules", "hostnames", "--snapshot", "demo", "-o", "json"])
    assert res["code"] == 0, res["out"][-500:]
    assert "svcctl.model" in loaded


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_trace_from_a_file_loads_rich_only_to_draw(output: str, big_iptables_save: Path) -> None:
    """-o json and piped tables (the probe's stdout is not a terminal) never draw a rich tree, so never import rich
    (it was ≈ 40 ms of a one-Service trace); the same probe does see rich where a command draws with it."""
    res, _ = _unneeded_loaded(["trace", "10.96.1.45:80", "--iptables-save", str(big_iptables_save), "-o", output])
    assert res["code"] in (0, 1), res["out"][-500:]
    assert "10.96.1.45" in res["out"]
    assert [m for m in res["modules"] if m == "rich" or m.startswith("rich.")] == []
    drawn, _ = _unneeded_loaded(["check", "hostnames", "--snapshot", "demo"])
    assert "rich" in drawn["modules"]


@pytest.fixture(scope="module")
def big_nft(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An nftables listing past the streaming threshold, and the VIP of a Service in it."""
    from gen_big_dumps import service_for, write_nft_listing

    path = tmp_path_factory.mktemp("startup") / "nft.txt"
    write_nft_listing(str(path), 400)
    return path, service_for(280).cluster_ip


def test_a_vip_trace_from_a_file_loads_no_dns_analysis_nor_other_modes_readers(big_nft: tuple[Path, str]) -> None:
    """A trace of a VIP skips the DNS hop and reads one mode's dump: the DNS analysis (9 dataclasses), the IPVS
    reader (its patterns and dataclasses) and `traceback` (only -v prints one) stay unloaded; a trace of a name
    through a snapshot, whose DNS hop runs, does load the DNS analysis (so the check can fail)."""
    path, vip = big_nft
    res, _ = _unneeded_loaded(["trace", f"{vip}:80", "--nft", str(path), "-o", "json"])
    assert res["code"] in (0, 1), res["out"][-500:]
    assert vip in res["out"]
    assert [m for m in res["modules"] if m in ("svcctl.analysis.dns", "svcctl.dataplane.ipvs", "traceback")] == []
    named, _ = _unneeded_loaded(["trace", "hostnames", "--snapshot", "demo", "-o", "json"])
    assert "svcctl.analysis.dns" in named["modules"]

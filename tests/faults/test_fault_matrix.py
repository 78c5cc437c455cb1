"""The API/DNS fault matrix and the RBAC table, through every command (test_api_faults.py covers the library
and the `collect`/`endpoints` commands in depth; this adds the other commands and records the outcome).

Each cell runs one command against the HTTPS test API server with one fault and records the exit code and the
error line. The tables are printed and, when $SVCCTL_RELIABILITY_TABLES names a file, written there as
Markdown (that is where /work/notes/reliability.md's tables come from).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver import FakeAPIServer, _objects_of, closed_port, grants_from_role, load_roles, make_ca
from dnsserver import StubResponder
from gen_cluster import gen_cluster

RunCli = Callable[..., tuple[int, str, str]]
Factory = Callable[..., FakeAPIServer]
ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "svcctl" / "data" / "demo"
DUMPS = DEMO / "nodes" / "kind-worker"
RBAC = ROOT / "deploy" / "rbac.yaml"
TABLES: dict[str, list[str]] = {}


@pytest.fixture(scope="module", autouse=True)
def write_tables() -> Iterator[None]:
    yield
    text = "\n\n".join(f"### {name}\n\n" + "\n".join(rows) for name, rows in TABLES.items())
    print("\n" + text)
    out = os.environ.get("SVCCTL_RELIABILITY_TABLES")
    if out and text:
        Path(out).write_text(text + "\n")


def kube_proxy_pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-proxy-kw", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
            "spec": {"nodeName": "kind-worker", "containers": [{"name": "kube-proxy", "image": "kube-proxy"}]},
            "status": {"phase": "Running"}}


def exec_answer(ns: str, pod: str, container: str, argv: list[str]) -> tuple[str, str, int]:
    if argv == ["iptables-save"]:
        return (DUMPS / "iptables-save.txt").read_text(), "", 0
    return "", "", 0




def commands(kc: str, tmp: Path, dns: str) -> dict[str, list[str]]:
    k = ["--kubeconfig", kc, "--request-timeout", "0.5"]
    return {
        "endpoints --why-not": ["endpoints", "hostnames", "--why-not", *k],
        "trace": ["trace", "hostnames", "--node", "kind-worker", "--dns-server", dns, "--dns-timeout", "0.3", *k],
        "rules --node": ["rules", "hostnames", "--node", "kind-worker", *k],
        "dns": ["dns", "hostnames", "--dns-server", dns, "--dns-timeout", "0.3", *k],
        "check": ["check", "hostnames", "--no-dns", *k],
        "collect": ["collect", "hostnames", "-o", str(tmp / "b.tar.gz"), *k],
    }


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("error: ")]
    return errs[0] if errs else ""


def _cell(code: int, err: str) -> str:
    line = error_line(err)
    if code in (2, 3):
        return f"{code}: {line.removeprefix('error: ')[:90]}"
    warn = next((ln for ln in err.splitlines() if "skipp" in ln or "cannot read" in ln or "not collected" in ln
                 or "forbidden" in ln.lower()), "")
    return f"{code}" + (f" (warns: {warn.strip()[:70]})" if warn else "")


# fault name -> (setup(srv, tmp) -> kubeconfig path to use, expected exit codes)
def _unreachable(srv: FakeAPIServer, tmp: Path) -> Path:
    return srv.write_kubeconfig(tmp / "kc-dead", server=f"https://127.0.0.1:{closed_port()}")


def _tls(srv: FakeAPIServer, tmp: Path) -> Path:
    other, _ = make_ca(tmp / "other", name="other-ca")
    kc = srv.write_kubeconfig(tmp / "kc-tls", ca="file")
    kc.write_text(kc.read_text().replace(str(srv.pki.ca_cert), str(other)))
    return kc


def _unauthorized(srv: FakeAPIServer, tmp: Path) -> Path:
    return srv.write_kubeconfig(tmp / "kc-401", user={"token": "expired-token"})


def _forbid(resource: str) -> Callable[[FakeAPIServer, Path], Path]:
    def setup(srv: FakeAPIServer, tmp: Path) -> Path:
        roles = load_roles(RBAC)
        reader = roles["ClusterRole/svcctl-reader"]
        for r in reader["rules"]:
            r["resources"] = [x for x in r["resources"] if x != resource]
        grants = grants_from_role(reader) + grants_from_role(roles["ClusterRole/svcctl-node-exec"], "kube-system")
        srv.set_rbac(grants)
        assert srv.kubeconfig is not None
        return srv.kubeconfig
    return setup


def _fault(resource: str | None, **kw: Any) -> Callable[[FakeAPIServer, Path], Path]:
    def setup(srv: FakeAPIServer, tmp: Path) -> Path:
        srv.set_fault(resource, **kw)
        assert srv.kubeconfig is not None
        return srv.kubeconfig
    return setup


def _not_found(srv: FakeAPIServer, tmp: Path) -> Path:
    assert srv.kubeconfig is not None
    return srv.kubeconfig


FAULTS: dict[str, tuple[Callable[[FakeAPIServer, Path], Path], set[int]]] = {
    "none (baseline)": (_not_found, {0, 1}),
    "unreachable (closed port)": (_unreachable, {3}),
    "TLS: server cert from another CA": (_tls, {3}),
    "401 (expired token)": (_unauthorized, {3}),
    "403 on services": (_forbid("services"), {3}),
    "403 on events only": (_forbid("events"), {0, 1}),
    "403 on nodes only": (_forbid("nodes"), {0, 1}),
    "403 on endpointslices only": (_forbid("endpointslices"), {0, 1}),
    "404 Service (typo)": (_not_found, {2}),
    "410 on a continue token (once)": (_fault("pods", status=410, only_continue=True, times=1), {0, 1}),
    "429 twice, then OK": (_fault("services", status=429, times=2, retry_after=0), {0, 1}),
    "503 twice, then OK": (_fault(None, status=503, times=2), {0, 1}),
    "500 always": (_fault("services", status=500), {3}),
    "slow (3 s) beyond --request-timeout 0.5": (_fault("services", status=None, delay=3), {3}),
}


@pytest.fixture(scope="module")
def dns_ok() -> Iterator[str]:
    """A DNS stub that answers from the demo's records (the matrix is about API faults, not DNS)."""
    recs = {("hostnames.default.svc.cluster.local.", "A"): ["10.0.1.175"]}
    with StubResponder("truncate", recs) as stub:
        yield stub.address


@pytest.mark.parametrize("fault", list(FAULTS))
def test_api_fault_matrix(fault: str, apiserver: Factory, run_cli: RunCli, tmp_path: Path, dns_ok: str) -> None:
    setup, expected = FAULTS[fault]
    objs = [*_objects_of(str(DEMO)), kube_proxy_pod()]
    if fault.startswith("410"):
        objs = [*gen_cluster(3, pods_per_service=600, nodes=3), kube_proxy_pod()]  # 600 Pods: two pages
    srv = apiserver(objs)
    srv.exec_handler = exec_answer
    kc = setup(srv, tmp_path)
    cmds = commands(str(kc), tmp_path, dns_ok)
    row = [fault]
    for name, argv in cmds.items():
        if fault.startswith("404"):
            argv = [("hostname" if a == "hostnames" else a) for a in argv]
        code, out, err = run_cli(argv)
        assert "Traceback" not in err and "internal error" not in err, (name, err)
        want = expected
        if name == "rules --node" and fault in ("403 on services", "500 always",
                                                "slow (3 s) beyond --request-timeout 0.5"):
            want = {0, 1}  # the Service is only read to name IPVS entries: rules come from the node
        if name in ("rules --node", "dns", "check") and fault.startswith("404"):
            want = {1}  # a finding there: not in the node's rules, NXDOMAIN, ServiceNotFound (check is a CI gate)
        assert code in want, (fault, name, code, err[-800:])
        if code in (2, 3):
            errs = [ln for ln in err.splitlines() if ln.startswith("error: ")]
            assert len(errs) == 1 and err.strip().splitlines()[-1] == errs[0], err
            assert out == "", out[:300]
        row.append(_cell(code, err))
    assert srv.writes == []
    if "| fault |" not in "".join(TABLES.get("API faults (exit code: message)", [])):
        TABLES["API faults (exit code: message)"] = [
            "| fault | " + " | ".join(cmds) + " |", "|" + "---|" * (len(cmds) + 1)]
    TABLES["API faults (exit code: message)"].append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")


# --------------------------------------------------------------------------- DNS faults through the CLI

DNS_FAULTS = {
    "SERVFAIL": ("servfail", 1, "SERVFAIL"),
    "garbage answer": ("garbage", 1, ""),
    "timeout (silent server)": ("silent", 1, "timeout"),
    "truncated, TCP retry": ("truncate", 0, ""),
}


@pytest.mark.parametrize("fault", list(DNS_FAULTS))
def test_dns_fault_matrix(fault: str, run_cli: RunCli) -> None:
    mode, want, word = DNS_FAULTS[fault]
    recs = {("hostnames.default.svc.cluster.local.", "A"): ["10.0.1.175"]}
    with StubResponder(mode, recs) as stub:
        row = [fault]
        for argv in (["dns", "hostnames", "--snapshot", "demo", "--dns-server", stub.address, "--dns-timeout", "0.3",
                      "--dns-attempts", "1", "-o", "json"],
                     ["trace", "hostnames", "--snapshot", "demo", "--dns-server", stub.address, "--dns-timeout",
                      "0.3", "-o", "json"]):
            code, out, err = run_cli(argv)
            assert "Traceback" not in err, err
            doc = json.loads(out)
            assert doc["apiVersion"] == "svcctl/v1"
            text = json.dumps(doc)
            if argv[0] == "dns":
                assert code == want, (fault, code, err, out[:800])
                if word:
                    assert word.lower() in text.lower(), text[:1500]
            else:
                assert code in (0, 1), (fault, code, err)
            codes = sorted({f.get("code", "") for f in doc.get("findings", []) if isinstance(f, dict)})
            row.append(f"{code}" + (f" ({', '.join(c for c in codes if c)[:80]})" if codes else ""))
    TABLES.setdefault("DNS faults (exit code and findings)", ["| fault | dns | trace |", "|---|---|---|"]).append(
        "| " + " | ".join(row) + " |")


# --------------------------------------------------------------------------- RBAC: each command × each rule

RULES = ["services", "endpoints", "pods", "nodes", "namespaces", "events", "endpointslices", "pods/exec (kube-system)"]


def _grants(without: str | None) -> list[Any]:
    roles = load_roles(RBAC)
    reader = roles["ClusterRole/svcctl-reader"]
    execr = roles["ClusterRole/svcctl-node-exec"]
    if without == "pods/exec (kube-system)":
        execr["rules"] = [r for r in execr["rules"] if "pods/exec" not in r["resources"]]
    elif without is not None:
        for r in reader["rules"]:
            r["resources"] = [x for x in r["resources"] if x != without]
        if without == "pods":
            execr["rules"] = [r for r in execr["rules"] if r["resources"] != ["pods"]]
    return grants_from_role(reader) + grants_from_role(execr, "kube-system")


def test_rbac_table(apiserver: Factory, run_cli: RunCli, tmp_path: Path, dns_ok: str) -> None:
    """deploy/rbac.yaml is enough for every command; without one rule each command fails (3) or degrades."""
    srv = apiserver([*_objects_of(str(DEMO)), kube_proxy_pod()])
    srv.exec_handler = exec_answer
    assert srv.kubeconfig is not None
    cmds = commands(str(srv.kubeconfig), tmp_path, dns_ok)
    cmds["endpoints -A"] = ["endpoints", "-A", "--kubeconfig", str(srv.kubeconfig)]
    cmds["collect -A --node-rules"] = ["collect", "-A", "--node-rules", "-o", str(tmp_path / "all.tar.gz"),
                                       "--kubeconfig", str(srv.kubeconfig)]
    baseline: dict[str, int] = {}
    rows = ["| rule removed | " + " | ".join(cmds) + " |", "|" + "---|" * (len(cmds) + 1)]
    for without in [None, *RULES]:
        srv.set_rbac(_grants(without))
        cells = []
        for name, argv in cmds.items():
            code, out, err = run_cli(argv)
            assert "Traceback" not in err and "internal error" not in err, (without, name, err)
            if without is None:
                assert code in (0, 1), (name, code, err)
                assert "forbidden" not in err.lower() and "skipped" not in err.lower(), (name, err)
                baseline[name] = code
                cells.append(f"{code} ok")
                continue
            if code == 3:
                assert "forbidden" in err.lower(), err
                cells.append("**fails** (3)")
            elif code == baseline[name] and "forbidden" not in (out + err).lower() and \
                    "skip" not in (out + err).lower() and "cannot read" not in (out + err).lower() and \
                    "not collected" not in err:
                cells.append("not needed")
            else:
                assert code in (0, 1, 2), (without, name, code, err)
                cells.append(f"degrades ({code})")
        rows.append(f"| {without or '(none: deploy/rbac.yaml as is)'} | " + " | ".join(cells) + " |")
        if without == "services":  # every command but `rules` (whose answer comes from the node) needs it
            assert all(c.startswith("**fails**") for n, c in zip(cmds, cells, strict=True) if n != "rules --node"), cells
        if without in ("events", "nodes"):
            assert not any(c.startswith("**fails**") for c in cells[:5]), (without, cells)
    assert srv.writes == []
    TABLES["RBAC: command × rule removed from deploy/rbac.yaml"] = rows


def test_without_pods_access_a_not_ready_endpoint_still_fails(apiserver: Factory, run_cli: RunCli) -> None:
    """RBAC without `pods`: the slices alone still show the unready endpoint (exit 1), and no endpoint is
    called stale just because its Pod could not be read."""
    srv = apiserver(str(DEMO))
    srv.set_rbac(_grants("pods"))
    code, out, err = run_cli(["endpoints", "hostnames", "--why-not", "-o", "json", "--kubeconfig", str(srv.kubeconfig)])
    assert code == 1, err
    doc = json.loads(out)
    codes = [(f["code"], f["pod"]) for f in doc["findings"]]
    assert ("NotReady", "default/hostnames-632524106-tlaok") in codes
    assert not any(c == "StaleSliceEndpoint" for c, _ in codes)
    assert any(c == "CheckSkipped" for c, _ in codes)


def test_trace_degrades_without_exec_and_rules_fails_forbidden(apiserver: Factory, run_cli: RunCli) -> None:
    """No pods/exec: `trace` still answers every other hop and says the node hop was skipped (RBAC);
    `rules --node`, whose whole answer is the node, fails with exit 3 and says forbidden. Without list on
    kube-system Pods the kube-proxy Pod cannot be found: forbidden too (3), not 'not found' (2)."""
    srv = apiserver([*_objects_of(str(DEMO)), kube_proxy_pod()])
    srv.exec_handler = exec_answer
    k = ["--kubeconfig", str(srv.kubeconfig), "--request-timeout", "2"]
    srv.set_rbac(_grants("pods/exec (kube-system)"))
    code, out, err = run_cli(["trace", "hostnames", "--node", "kind-worker", "--no-dns", "-o", "json", *k])
    assert code == 1, err  # the demo's ReadinessProbeFailing ERROR (one exit model)
    doc = json.loads(out)
    node_hop = next(h for h in doc["ports"][0]["hops"] if h["hop"] == "node-rules")
    assert node_hop["verdict"] == "skipped" and "forbidden" in node_hop["summary"].lower()
    assert any(f["code"] == "CheckSkipped" for f in doc["findings"])
    code, out, err = run_cli(["rules", "hostnames", "--node", "kind-worker", *k])
    assert code == 3 and "forbidden" in err.lower(), err
    srv.set_rbac(_grants("pods"))
    code, out, err = run_cli(["rules", "hostnames", "--node", "kind-worker", *k])
    assert code == 3 and "forbidden" in err.lower(), err

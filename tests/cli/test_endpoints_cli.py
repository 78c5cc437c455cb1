"""`svcctl endpoints` as a user meets it: exit codes, the JSON/YAML document, plain tables when piped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from scenarios.builder import as_list, controller_slice, node, pod, service  # noqa: E402

from svcctl.cli.app import App  # noqa: E402
from svcctl.cli.endpoints import split_service  # noqa: E402
from svcctl.errors import InputError  # noqa: E402

RunCli = Callable[..., tuple[int, str, str]]
DEMO = ["--snapshot", "demo"]


def test_json_document_only_on_stdout(run_cli: RunCli) -> None:
    code, out, err = run_cli(["endpoints", "hostnames", "-o", "json", *DEMO])
    assert code == 1
    doc = json.loads(out)  # nothing but the document
    assert doc["apiVersion"] == "svcctl/v1" and doc["kind"] == "EndpointsReport"
    assert doc["service"] == {"namespace": "default", "name": "hostnames", "type": "ClusterIP",
                              "clusterIPs": ["10.0.1.175"], "selector": {"app": "hostnames"},
                              "ports": [{"name": "default", "port": 80, "targetPort": 9376, "protocol": "TCP"}],
                              "publishNotReadyAddresses": False}
    assert [(e["ip"], e["ready"], e["serving"], e["terminating"]) for e in doc["endpoints"]] == [
        ("10.244.0.5", True, True, False), ("10.244.0.6", True, True, False), ("10.244.0.7", False, False, False)]
    assert doc["endpoints"][0]["ports"] == [{"name": "default", "port": 9376, "protocol": "TCP"}]
    assert {f["code"] for f in doc["findings"]} == {"ReadinessProbeFailing"}
    assert err == ""
    tlaok = doc["pods"][2]
    assert tlaok["pod"] == "default/hostnames-632524106-tlaok" and tlaok["state"] == "not-ready"
    assert tlaok["actual"] == {"inSlices": True, "ready": False, "slices": ["hostnames-x7k2p"]}
    assert tlaok["expected"] == {"inSlices": True, "ready": False, "serving": False, "terminating": False,
                                 "addresses": ["10.244.0.7"], "ports": [{"name": "default", "port": 9376,
                                                                         "protocol": "TCP"}],
                                 "hostname": None, "zone": "zone-a",
                                 "hints": {"forZones": [], "forNodes": []}}


def test_yaml_equals_json(run_cli: RunCli) -> None:
    _, j, _ = run_cli(["endpoints", "hostnames", "-o", "json", "--why-not", *DEMO])
    _, y, _ = run_cli(["endpoints", "hostnames", "-o", "yaml", "--why-not", *DEMO])
    assert yaml.safe_load(y) == json.loads(j)


def test_piped_table_is_plain(run_cli: RunCli) -> None:
    code, out, _ = run_cli(["endpoints", "hostnames", "--why-not", *DEMO])
    assert code == 1
    assert "\x1b[" not in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("POD"))
    assert lines[header].split() == ["POD", "ADDRESS", "PORTS", "NODE", "STATE", "REASON"]
    rows = {line.split()[0]: line.split() for line in lines[header + 1:header + 4]}
    assert rows["default/hostnames-632524106-tlaok"][4:] == ["not-ready", "ReadinessProbeFailing"]
    assert rows["default/hostnames-632524106-bbpiw"][1:] == ["10.244.0.5", "default=9376/TCP", "kind-worker",
                                                             "ready", "-"]
    assert "ERROR   ReadinessProbeFailing default/hostnames-632524106-tlaok" in out
    assert "evidence: Event Unhealthy x87" in out and "decided by:" in out


def test_no_headers_prints_rows_only(run_cli: RunCli) -> None:
    _, out, _ = run_cli(["endpoints", "hostnames", "--no-headers", *DEMO])
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("default/hostnames-") for line in lines)
    _, out, _ = run_cli(["endpoints", "-A", "--no-headers", *DEMO])
    assert [line.split()[:2] for line in out.strip().splitlines()] == [
        ["default", "hostnames"], ["default", "kubernetes"], ["kube-system", "kube-dns"]]


def test_wide_adds_evidence_and_hint(run_cli: RunCli) -> None:
    _, out, _ = run_cli(["endpoints", "hostnames", "-o", "wide", *DEMO])
    head = next(line for line in out.splitlines() if line.startswith("POD"))
    assert head.split()[-3:] == ["SLICE", "EVIDENCE", "HINT"]
    row = next(line for line in out.splitlines() if line.startswith("default/hostnames-632524106-tlaok"))
    assert "Readiness probe failed" in row and "kubectl logs" in row


def test_without_why_not_hints_on_stderr(run_cli: RunCli) -> None:
    code, out, err = run_cli(["endpoints", "hostnames", *DEMO])
    assert code == 1 and "--why-not" in err and "evidence:" not in out


def test_rich_table_when_colour_forced(run_cli: RunCli) -> None:
    code, out, _ = run_cli(["endpoints", "hostnames", "--why-not", "--color", *DEMO])
    assert code == 1 and "\x1b[" in out and "hostnames-632524106-tlaok" in out and "ReadinessProbeFailing" in out


def test_exit_codes(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli(["endpoints", "kube-system/kube-dns", *DEMO])[0] == 0
    assert run_cli(["endpoints", "kube-dns", "-n", "kube-system", *DEMO])[0] == 0
    assert run_cli(["endpoints", "svc/hostnames", *DEMO])[0] == 1
    code, out, err = run_cli(["endpoints", "hostname", *DEMO])
    assert code == 2 and out == "" and "did you mean hostnames?" in err
    code, _, err = run_cli(["endpoints", "kube-dns", *DEMO])
    assert code == 2 and "kube-system/kube-dns" in err  # same name in another namespace
    code, _, err = run_cli(["endpoints", "a/b/c", *DEMO])
    assert code == 2 and "NAMESPACE/NAME" in err
    code, out, err = run_cli(["endpoints", "--why-not", *DEMO])
    assert code == 2 and out == "" and "give SERVICE" in err


def test_summary_listing(run_cli: RunCli) -> None:
    code, out, _ = run_cli(["endpoints", "-A", "-o", "json", *DEMO])
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "EndpointsSummary"
    by = {(s["namespace"], s["name"]): (s["ready"], s["notReady"], s["expected"]) for s in doc["services"]}
    assert by == {("default", "hostnames"): (2, 1, 3), ("default", "kubernetes"): (1, 0, 1),
                  ("kube-system", "kube-dns"): (1, 0, 1)}
    code, out, _ = run_cli(["endpoints", *DEMO])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "READY", "NOT-READY", "EXPECTED"]
    assert lines[1].split() == ["hostnames", "ClusterIP", "2", "1", "3"] and len(lines) == 3


def test_summary_exit_1_when_nothing_ready(run_cli: RunCli, tmp_path: Path) -> None:
    svc = service("web", {"app": "web"})
    p = pod("web-0", {"app": "web"}, ready=False)
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(as_list([svc, p, controller_slice(svc, [p]), node()])))
    code, out, _ = run_cli(["endpoints", "--snapshot", str(f)])
    assert code == 1 and out.splitlines()[1].split() == ["web", "ClusterIP", "0", "1", "1"]


def test_live_summary_matches_snapshot(run_cli: RunCli, apiserver: Callable[..., object]) -> None:
    srv = apiserver("demo")
    a = run_cli(["endpoints", "-A", "-o", "json", *DEMO])
    b = run_cli(["endpoints", "-A", "-o", "json", "--kubeconfig", str(srv.kubeconfig)])  # type: ignore[attr-defined]
    assert a[0] == b[0] == 0 and json.loads(a[1]) == json.loads(b[1])


def test_click_runner() -> None:
    from svcctl.cli.main import cli

    res = CliRunner().invoke(cli, ["endpoints", "hostnames", "-o", "json", "--snapshot", "demo"], obj=App(),
                             standalone_mode=False)
    assert res.exception is None and res.return_value == 1
    assert json.loads(res.stdout)["kind"] == "EndpointsReport"


def test_split_service() -> None:
    assert split_service("web", "dflt") == ("dflt", "web")
    assert split_service("prod/web", "dflt") == ("prod", "web")
    assert split_service("service/web", "dflt") == ("dflt", "web")
    for bad in ("", "a/", "/b", "a/b/c"):
        with pytest.raises(InputError):
            split_service(bad, "dflt")


def test_snapshot_run_never_imports_kubernetes() -> None:
    code = ("import sys; from svcctl.cli.main import run; "
            "rc = run('svcctl', ['endpoints', 'hostnames', '--why-not', '-o', 'json', '--snapshot', 'demo']); "
            "sys.stderr.write(str(rc) + ' ' + str(any(m == 'kubernetes' or m.startswith('kubernetes.') "
            "for m in sys.modules)))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         cwd=Path(__file__).parent.parent.parent)
    assert res.stderr.strip().endswith("1 False"), res.stderr


def test_summary_without_pod_access(run_cli: RunCli, apiserver: Callable[..., object]) -> None:
    from apiserver import Grant

    srv = apiserver("demo")
    srv.set_rbac([Grant(frozenset({"", "discovery.k8s.io"}), frozenset({"services", "endpointslices"}),  # type: ignore[attr-defined]
                        frozenset({"get", "list"}), frozenset(), None)])
    code, out, err = run_cli(["endpoints", "-A", "--kubeconfig", str(srv.kubeconfig)])  # type: ignore[attr-defined]
    assert code == 0, err
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in out.splitlines()[1:]}
    assert rows[("default", "hostnames")] == ["ClusterIP", "2", "1", "?"]
    assert rows[("default", "kubernetes")] == ["ClusterIP", "1", "0", "1"]  # selectorless: its own endpoints
    assert "EXPECTED is unknown" in err

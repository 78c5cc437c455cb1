"""One vocabulary: the finding registry is complete and is what the README shows, and every judging command
gives the same verdict and exit status for the same state (issue 15's one exit model)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))

from scenarios.builder import as_list, container, controller_slice, pod, service  # noqa: E402

from svcctl.findings import AREAS, FINDINGS, FailOn, Severity, Verdict, readme_table, verdict_of, worst
from svcctl.model import Finding

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SOURCE = {p: p.read_text() for p in (ROOT / "svcctl").rglob("*.py")}
MIXED = ROOT / "tests" / "fixtures" / "check" / "shop-mixed.yaml"
RunCli = Callable[..., tuple[int, str, str]]


@pytest.mark.parametrize("area", sorted(AREAS))
def test_readme_finding_table_is_the_registry(area: str) -> None:
    assert readme_table(area) in README, f"regenerate the README's {AREAS[area]} table from svcctl/findings.py"


def test_every_registered_code_names_its_deciding_rule() -> None:
    assert sorted(c.code for c in FINDINGS.values() if not c.rule.strip()) == []
    assert all(f"| {c.rule} |" in README for c in FINDINGS.values())


def test_every_emitted_code_is_registered_and_every_registered_code_is_emitted() -> None:
    emitted: set[str] = set()
    for text in SOURCE.values():
        emitted |= set(re.findall(r'(?:Finding|_Gap)\(\s*"([A-Z][A-Za-z]+)"', text))
        emitted |= set(re.findall(r'code = "([A-Z][A-Za-z]+)"', text))
    assert len(emitted) > 40
    assert sorted(emitted - set(FINDINGS)) == []
    everywhere = "\n".join(t for p, t in SOURCE.items() if p.name != "findings.py")
    assert sorted(c for c in FINDINGS if f'"{c}"' not in everywhere) == []


def test_a_registered_code_with_another_severity_is_refused_in_strict_mode() -> None:
    with pytest.raises(ValueError, match="ReadinessProbeFailing with severity info"):
        Finding("ReadinessProbeFailing", Severity.INFO, "x")
    assert Finding("ReadinessProbeFailing", "error", "x").severity is Severity.ERROR  # type: ignore[arg-type]


def test_verdict_arithmetic() -> None:
    assert verdict_of([]) is Verdict.OK
    assert verdict_of([Severity.INFO]) is Verdict.OK
    assert verdict_of([Severity.INFO, Severity.WARNING]) is Verdict.WARNING
    assert verdict_of(["warning", "error"]) is Verdict.BROKEN
    assert worst([Verdict.SKIPPED, Verdict.OK]) is Verdict.OK
    assert worst([Verdict.WARNING, Verdict.SKIPPED, Verdict.BROKEN]) is Verdict.BROKEN
    assert [f.fails(Verdict.WARNING) for f in FailOn] == [False, True, False]
    assert [f.fails(Verdict.BROKEN) for f in FailOn] == [True, True, False]
    assert json.dumps({"v": Verdict.BROKEN, "s": Severity.INFO}) == '{"v": "broken", "s": "info"}'
    assert f"{Verdict.OK} {Severity.ERROR}" == "ok error"


# one state, every command: (command args, the verdict each reports)
STATES = {
    # a ready pair and a replica failing its readiness probe: ReadinessProbeFailing is an error everywhere
    "demo-probe-failing": (["--snapshot", "demo"], "default/hostnames", Verdict.BROKEN),
    # a Terminating replica behind a ready one: a warning everywhere
    "terminating-replica": (["--snapshot", str(MIXED)], "shop/cart", Verdict.WARNING),
    # all healthy
    "healthy": (["--snapshot", str(MIXED)], "shop/web", Verdict.OK),
}


def _verdicts(run_cli: RunCli, args: list[str], svc: str, fail_on: str) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    f = ["--fail-on", fail_on]
    code, text, err = run_cli(["trace", svc, "--no-dns", *args, *f, "-o", "json"])
    out["trace"] = (code, json.loads(text)["verdict"])
    code, text, err = run_cli(["endpoints", svc, *args, *f, "-o", "json"])
    doc = json.loads(text)
    out["endpoints"] = (code, verdict_of(x["severity"] for x in doc["findings"]).value)
    code, text, err = run_cli(["check", svc, *args, *f, "-o", "json"])
    (s,) = json.loads(text)["services"]
    out["check"] = (code, {"healthy": "ok"}.get(s["status"], s["status"]))
    return out


@pytest.mark.parametrize("state", sorted(STATES))
@pytest.mark.parametrize("fail_on", ["error", "warning", "never"])
def test_every_command_agrees_on_verdict_and_exit(run_cli: RunCli, state: str, fail_on: str) -> None:
    args, svc, want = STATES[state]
    got = _verdicts(run_cli, args, svc, fail_on)
    code = 1 if FailOn(fail_on).fails(want) else 0
    assert got == {"trace": (code, want.value), "endpoints": (code, want.value), "check": (code, want.value)}


def test_fail_on_is_on_every_judging_command(run_cli: RunCli) -> None:
    for cmd in ("trace", "endpoints", "rules", "dns", "check"):
        code, out, _ = run_cli([cmd, "--help"])
        assert code == 0 and "--fail-on [error|warning|never]" in out, cmd


def _named_port_snapshot(tmp_path: Path, declared: bool) -> Path:
    """One Service whose only port targets the named port `web`; its 3 ready Pods declare it or not (then the
    controller publishes them in a slice without that port: PortNotFound)."""
    svc = service("shop", {"app": "shop"}, ports=[("http", 80, "web", "TCP")])
    ports = [("web", 8080, "TCP")] if declared else [("metrics", 9090, "TCP")]
    pods = [pod(f"shop-{i}", {"app": "shop"}, ip=f"10.244.1.{20 + i}", containers=[container("app", ports)])
            for i in range(3)]
    sl = controller_slice(svc, pods, ports=[("http", 8080, "TCP")] if declared else [])
    path = tmp_path / f"shop-{declared}.yaml"
    path.write_text(yaml.safe_dump(as_list([svc, *pods, sl])))
    return path


@pytest.mark.parametrize("declared", [True, False])
def test_ready_is_counted_per_service_port(run_cli: RunCli, tmp_path: Path, declared: bool) -> None:
    snap = _named_port_snapshot(tmp_path, declared)
    code, out, _ = run_cli(["check", "default/shop", "--snapshot", str(snap), "-o", "json"])
    (s,) = json.loads(out)["services"]
    want = 3 if declared else 0  # no endpoint serves port http: not "3/3 ready"
    assert (s["counts"]["ready"], s["counts"]["expected"]) == (want, 3)
    code, out, _ = run_cli(["endpoints", "--snapshot", str(snap), "-o", "json"])
    (row,) = [r for r in json.loads(out)["services"] if r["name"] == "shop"]
    assert row["ready"] == want
    assert (code == 1) is (not declared)

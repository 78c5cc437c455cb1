"""One vocabulary: the finding registry is complete and is what the README shows, and every judging command
gives the same verdict and exit status for the same state (issue 15's one exit model)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

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


def test_every_emitted_code_is_registered_and_every_registered_code_is_emitted() -> None:
    emitted: set[str] = set()
    for text in SOURCE.values():
        emitted |= set(re.findall(r'Finding\(\s*"([A-Z][A-Za-z]+)"', text))
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

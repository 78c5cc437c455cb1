"""The README is checked against the code: commands, options, exit codes, finding codes, the two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
RunCli = Callable[..., tuple[int, str, str]]


def _codes_in_source() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "svcctl").rglob("*.py"):
        codes |= set(re.findall(r'Finding\(\s*"([A-Z][A-Za-z]+)"', path.read_text()))
    from svcctl.analysis.endpoints import CODES

    return codes | set(CODES)


def test_every_finding_code_is_documented() -> None:
    codes = _codes_in_source()
    assert len(codes) > 40
    missing = sorted(c for c in codes if f"`{c}`" not in README)
    assert missing == []


def test_every_command_is_documented_and_has_help(run_cli: RunCli) -> None:
    from svcctl.cli.main import COMMANDS

    for name in COMMANDS:
        assert f"`svcctl {name}" in README, name
        code, out, err = run_cli([name, "--help"])
        assert code == 0 and out.startswith(f"Usage: svcctl {name}"), err


def test_documented_global_options_exist(run_cli: RunCli) -> None:
    code, out, _ = run_cli(["--help"])
    assert code == 0
    section = README.split("Global options", 1)[1].split("| command |", 1)[0]
    options = set(re.findall(r"`(--[a-z0-9-]+)", section))
    assert {"--kubeconfig", "--context", "--snapshot", "--no-headers", "--iptables-save", "--netns"} <= options
    code, trace_help, _ = run_cli(["trace", "--help"])
    for opt in options:
        assert opt in out or opt in trace_help, opt


def test_exit_codes_match_help(run_cli: RunCli) -> None:
    code, out, _ = run_cli(["--help"])
    table = dict(re.findall(r"^\| (\d) \| (.+?) \|$", README, re.M))
    helped = dict(re.findall(r"^\s+(\d)  (.+)$", out.split("Exit codes:", 1)[1], re.M))
    assert set(table) == set(helped) == {"0", "1", "2", "3", "4"}


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    m = re.search(r"run the tests.*?\| `([^`]+)` \|", README)
    assert m, "README names one test command"
    assert m.group(1) in ci


@pytest.mark.parametrize("argv", [["--version"], ["trace", "hostnames", "--snapshot", "demo", "--mode", "iptables"]])
def test_readme_demo_command_runs_as_installed(argv: list[str]) -> None:
    """The README's demo command, through the installed entry point's module (no shell)."""
    m = re.search(r"main job.*?\| `pip install \. && ([^`]+)` \|", README)
    assert m and m.group(1) == "svcctl trace hostnames --snapshot demo"
    r = subprocess.run([sys.executable, "-m", "svcctl", *argv], capture_output=True, text=True, cwd=ROOT, timeout=60)
    # the demo has a ReadinessProbeFailing ERROR: a broken verdict, exit 1 (one exit model for every command)
    assert r.returncode == (1 if argv[0] == "trace" else 0), r.stderr
    if argv[0] == "trace":
        assert "10.244.0.5:9376  1/2 (50%)" in r.stdout and "ReadinessProbeFailing" in r.stdout


def test_readme_shows_the_real_demo_output() -> None:
    """The output printed in the README is what the command prints today (piped: the plain rendering)."""
    m = re.search(r"```\n\$ svcctl trace hostnames --snapshot demo\n(.*?)\n```", README, re.S)
    assert m, "README shows the demo's output"
    r = subprocess.run([sys.executable, "-m", "svcctl", "trace", "hostnames", "--snapshot", "demo"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert r.stdout.rstrip() == m.group(1)


@pytest.mark.parametrize("command", ["svcctl endpoints hostnames --why-not --snapshot demo",
                                     "svcctl rules --snapshot demo --mode iptables",
                                     "svcctl rules --cilium tests/fixtures/cilium/service-list-1.14.txt 10.96.0.50:80"])
def test_readme_command_outputs_are_real(command: str) -> None:
    m = re.search(re.escape(f"`{command}`") + r".*?```\n(.*?)\n```", README, re.S)
    assert m, command
    r = subprocess.run([sys.executable, "-m", *command.split()], capture_output=True, text=True, cwd=ROOT,
                       timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert r.stdout.rstrip() == m.group(1)

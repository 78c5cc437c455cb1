"""A whole node's `rules` model is left to the OS when the process ends (svcctl.collector.leave / end): through the
entry point the process exits without freeing it object by object — its output complete, its exit status and its
atexit hooks (a kubeconfig's temporary credentials) as with `sys.exit` — and in-process callers keep nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from svcctl import collector
from svcctl.cli.main import run

ROOT = Path(__file__).resolve().parent.parent.parent
DUMP = ROOT / "svcctl" / "data" / "demo" / "nodes" / "kind-worker" / "iptables-save.txt"

# the entry point as the `svcctl` script calls it, with an atexit hook and os._exit watched (both write `marks`)
_SCRIPT = """
import atexit, os, sys
marks = sys.argv[1]
def mark(word):
    with open(marks, "a") as f:
        f.write(word + "\\n")
atexit.register(mark, "atexit")
real = os._exit
def spy(code):
    mark(f"os._exit {code}")
    real(code)
os._exit = spy
sys.argv = ["svcctl", *sys.argv[2:]]
from svcctl.cli.main import main
main()
"""


def _main(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    marks = tmp_path / "marks"
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(marks), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    return proc, marks.read_text().splitlines() if marks.exists() else []


def test_in_process_runs_keep_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("svcctl", ["rules", "--iptables-save", str(DUMP), "-o", "json"]) == 0
    assert '"mode": "iptables"' in capsys.readouterr().out
    assert collector._LEFT == []


def test_a_whole_dump_ends_the_process_with_its_whole_output(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    proc, marks = _main(tmp_path, "rules", "--iptables-save", str(DUMP), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert marks == ["atexit", "os._exit 0"]  # the hooks ran, then the process ended without the teardown
    assert run("svcctl", ["rules", "--iptables-save", str(DUMP), "-o", "json"]) == 0
    assert proc.stdout == capsys.readouterr().out  # every byte written, as in-process
    assert json.loads(proc.stdout)["services"]
    assert proc.stderr == ""


def test_its_exit_status_is_the_commands(tmp_path: Path) -> None:
    proc, marks = _main(tmp_path, "rules", "--iptables-save", str(DUMP), "--fail-on", "never", "-o", "table")
    assert proc.returncode == 0 and marks[-1] == "os._exit 0", proc.stderr
    (tmp_path / "bad").mkdir()
    proc, marks = _main(tmp_path / "bad", "rules", "--iptables-save", str(tmp_path / "missing.txt"))
    assert proc.returncode == 2 and "error:" in proc.stderr
    assert not any(m.startswith("os._exit") for m in marks)  # nothing left: the ordinary exit


def test_one_service_leaves_nothing(tmp_path: Path) -> None:
    proc, marks = _main(tmp_path, "rules", "hostnames", "-n", "default", "--iptables-save", str(DUMP), "-o", "json")
    assert proc.returncode == 0 and "hostnames" in proc.stdout, proc.stderr
    assert not any(m.startswith("os._exit") for m in marks)


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    proc = subprocess.run(f"{sys.executable} -c '{_SCRIPT}' {marks} rules --iptables-save {DUMP} -o json | head -c 10",
                          shell=True, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout == "{\n  \"apiVe"
    assert "Traceback" not in proc.stderr


def test_output_that_cannot_be_flushed_fails_the_process_a_closed_pipe_does_not() -> None:
    """What is still buffered at the end and cannot be flushed (a full disk) fails the process with 120, the status
    the interpreter's own finalization gives; a reader that went away (`| head`) is no failure (as in run())."""
    script = """
import io, sys
from svcctl import collector
class Full(io.StringIO):
    def flush(self):
        raise OSError(28, "No space left on device")
collector.ENDS_AFTER = True
collector.leave([1])
if sys.argv[1] == "full":
    sys.stdout = Full()
sys.stdout.write("x" * 100)
collector.end(0)
"""
    full = subprocess.run([sys.executable, "-c", script, "full"], capture_output=True, text=True, cwd=ROOT)
    assert full.returncode == 120 and "Traceback" not in full.stderr
    ok = subprocess.run([sys.executable, "-c", script, "ok"], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and ok.stdout == "x" * 100
    gone = subprocess.run([sys.executable, "-c", script.replace("Full()", "Gone()").replace(
        "class Full", "class Gone(io.StringIO):\n    def flush(self):\n        raise BrokenPipeError(32, 'Broken pipe')\n"
        "class Full"), "full"], capture_output=True, text=True, cwd=ROOT)
    assert gone.returncode == 0 and "Traceback" not in gone.stderr

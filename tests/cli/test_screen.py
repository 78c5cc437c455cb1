"""The first screen tells the story, checked through a real pseudo-terminal (the pty module) at 80 and 160 columns.

The command runs in a child process whose stdout is a pty with the window size set (TIOCSWINSZ), so rich draws
what a person sees: the verdict and one sentence first, identical per-Pod findings grouped, no line twice,
nothing wider than the terminal, wrapped lines kept inside the tree's indent, a 3-Pod trace within 50 rows by
default, every detail with -o wide, and no sentence that does not apply.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent.parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from scenarios.builder import controller_slice, event, node, pod, service  # noqa: E402

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_GUIDES = ("├", "│", "└", " ")


def run_pty(argv: list[str], cols: int, rows: int = 200) -> tuple[int, list[str]]:
    """Run svcctl with its stdout and stderr on a pty of `cols` × `rows`; the screen's lines, escapes removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "svcctl", *argv], stdin=slave, stdout=slave, stderr=slave,
                            cwd=ROOT, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not data:
                break
            chunks.append(data)
    finally:
        code = proc.wait(30)
        os.close(master)
    text = _ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n").replace("\r", "")
    return code, text.rstrip("\n").split("\n")


def _three_failing(tmp: Path) -> Path:
    """A Service whose 3 Pods all fail their readiness probe with HTTP 503 (different Event counts)."""
    app = {"app": "web"}
    svc = service("web", app)
    pods, events = [], []
    for i, count in enumerate((87, 12, 3)):
        p = pod(f"web-{i}", app, ip=f"10.244.1.{20 + i}", ready=False)
        pods.append(p)
        events.append(event(p, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                            count=count))
    items = [svc, *pods, controller_slice(svc, pods), node(), *events]
    path = tmp / "three.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def _joined(lines: list[str]) -> str:
    """The screen's text with the tree guides and the wrapping undone, for phrases that may wrap."""
    return re.sub(r"\s+", " ", " ".join(ln.strip("├│└─ ") for ln in lines))


def _check_screen(lines: list[str], cols: int) -> None:
    assert lines[0].startswith("verdict: "), lines[:3]
    assert all(len(ln) <= cols for ln in lines), max(lines, key=len)
    title = next(i for i, ln in enumerate(lines) if ln.startswith("trace "))
    assert title <= 2  # the verdict's sentence wraps at most once
    for ln in lines[title + 1:]:  # below the title everything hangs off the tree: wrapped text keeps its indent
        assert ln.startswith(_GUIDES), ln
    text = [ln.strip("├│└─ ") for ln in lines]
    text = [t for t in text if len(t) > 30]  # a short wrapped tail (a code) may end several lines
    assert len(text) == len(set(text)), [t for t in text if text.count(t) > 1]


@pytest.mark.parametrize("cols", [80, 160])
def test_demo_trace_first_screen(cols: int) -> None:
    code, lines = run_pty(["trace", "hostnames", "--snapshot", "demo"], cols)
    _check_screen(lines, cols)
    head = _joined(lines[:3])
    assert "2 of 3 Pods serve; the other one fails its readiness probe: HTTP 503" in head, head
    assert len(lines) <= 50, len(lines)
    screen = "\n".join(lines)
    assert "evidence:" not in screen and "-o wide for every detail" in screen
    if cols == 80:
        _, wide160 = run_pty(["trace", "hostnames", "--snapshot", "demo"], 160)
        assert len(wide160) < len(lines)  # the wider terminal wraps less


@pytest.mark.parametrize("cols", [80, 160])
def test_identical_per_pod_findings_are_one_block(cols: int, tmp_path: Path) -> None:
    snap = _three_failing(tmp_path)
    code, lines = run_pty(["trace", "web", "--snapshot", str(snap)], cols)
    _check_screen(lines, cols)
    screen = "\n".join(lines)
    assert "none of the 3 Pods serves; all of them fail their readiness probe: HTTP 503" in _joined(lines[:3])
    assert screen.count("ERROR ReadinessProbeFailing") == 1, screen
    assert "Pods (3): default/web-0, default/web-1, default/web-2" in _joined(lines)
    assert len(lines) <= 50


def test_wide_shows_every_detail(tmp_path: Path) -> None:
    _, default = run_pty(["trace", "hostnames", "--snapshot", "demo"], 160)
    _, wide = run_pty(["trace", "hostnames", "--snapshot", "demo", "-o", "wide"], 160)
    screen = "\n".join(wide)
    assert "evidence: Event Unhealthy x87" in screen and "entry: ClusterIP 10.0.1.175:80/TCP" in screen
    assert "picks a backend at random" in screen
    assert len(wide) > len(default)


def test_no_sentence_that_does_not_apply(tmp_path: Path) -> None:
    """A REJECTed entry has no backend to pick at random; a trace shows no rule counts, so no note about them."""
    from test_partial_input import _node_snapshot

    snap = _node_snapshot(tmp_path)
    for extra in ([], ["-o", "wide"]):
        _, lines = run_pty(["trace", "empty", "--snapshot", str(snap), *extra], 160)
        screen = "\n".join(lines)
        assert "has no endpoints" in screen
        assert "picks a backend" not in screen and "counts are for the whole dump" not in screen, screen

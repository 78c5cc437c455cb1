"""Shared helpers of the benchmarks: timing subprocesses with their own peak RSS, medians, and a plain table.

Every figure is measured in the run that prints it, beside a baseline measured the same way in the same run, so
a slow machine slows both. No assertions anywhere: the benchmarks print, the tests assert behaviour.
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT))

SVCCTL = [sys.executable, "-m", "svcctl"]

# Subprocesses keep compiled bytecode (in a private cache, not in the checkout), as a pip-installed svcctl does:
# with PYTHONDONTWRITEBYTECODE set, every run would recompile svcctl's sources and time the compiler.
_PYCACHE = tempfile.mkdtemp(prefix="svcctl-bench-pycache-")
atexit.register(shutil.rmtree, _PYCACHE, True)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    return {**env, **(extra or {})}


@dataclass
class Run:
    seconds: float
    rss_mb: float
    rc: int
    stdout: str = ""
    stderr: str = ""
    cpu_s: float = 0.0  # the subprocess's own user + system CPU seconds


@dataclass
class Row:
    area: str
    case: str
    seconds: float | None
    rss_mb: float | None = None
    baseline: str = ""
    baseline_seconds: float | None = None
    extra: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> str:
        if self.seconds is None or not self.baseline_seconds:
            return ""
        return f"{self.seconds / self.baseline_seconds:.1f}x"


# Fallback launcher when /usr/bin/time is missing: runs argv and writes its children's peak RSS (KiB) and CPU.
_LAUNCH = "import resource,subprocess,sys; rc=subprocess.call(sys.argv[2:]); " \
          "u=resource.getrusage(resource.RUSAGE_CHILDREN); " \
          "open(sys.argv[1],'w').write(f'{u.ru_maxrss} {u.ru_utime} {u.ru_stime}'); sys.exit(rc)"


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800, cwd: str | Path = ROOT) -> Run:
    """One subprocess: wall time and its own peak RSS.

    Through a small launcher (/usr/bin/time -f %M, else a tiny Python one): Linux keeps the peak RSS of the
    address space a process had before exec, so a child forked straight from this big benchmark process would
    report this process's size, not its own."""
    with tempfile.TemporaryDirectory(prefix="svcctl-run-") as tmp:
        rss_file = os.path.join(tmp, "rss")
        if os.path.exists("/usr/bin/time"):
            launch = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss_file, *argv]
        else:
            launch = [sys.executable, "-c", _LAUNCH, rss_file, *argv]
        started = time.perf_counter()
        try:
            proc = subprocess.run(launch, capture_output=True, cwd=cwd, env=_env(env),
                                  timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            return Run(time.perf_counter() - started, 0.0, -9, "", f"timed out after {e.timeout}s")
        seconds = time.perf_counter() - started
        rss_kb, cpu = 0, 0.0
        try:  # the last line (/usr/bin/time prints "Command exited with non-zero status N" before it)
            fields = Path(rss_file).read_text().strip().splitlines()[-1].split()
            rss_kb, cpu = int(fields[0]), float(fields[1]) + float(fields[2])
        except (OSError, ValueError, IndexError):
            pass
        return Run(seconds, rss_kb / 1024, proc.returncode, proc.stdout.decode(errors="replace"),
                   proc.stderr.decode(errors="replace"), cpu)


def median_run(argv: list[str], n: int, warm: bool = False, **kw: object) -> Run:
    """The median of `n` runs; `warm`: after one untimed run (bytecode compiled, files in the page cache)."""
    if warm:
        run(argv, **kw)  # type: ignore[arg-type]
    runs = [run(argv, **kw) for _ in range(max(1, n))]  # type: ignore[arg-type]
    runs.sort(key=lambda r: r.seconds)
    mid = runs[len(runs) // 2]
    return Run(statistics.median(r.seconds for r in runs), max(r.rss_mb for r in runs), mid.rc, mid.stdout,
               mid.stderr, statistics.median(r.cpu_s for r in runs))


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model or platform.processor()}, "
            f"{mem} RAM, Python {platform.python_version()}")


def fmt_s(x: float | None) -> str:
    return "" if x is None else (f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s")


def table(rows: list[Row], extra_cols: list[str] | None = None) -> str:
    extra_cols = extra_cols or sorted({k for r in rows for k in r.extra})
    head = ["case", "time", "peak RSS", *extra_cols, "baseline", "baseline time", "ratio", "note"]
    body = [[r.case, fmt_s(r.seconds), "" if r.rss_mb is None else f"{r.rss_mb:.0f} MB",
             *[r.extra.get(c, "") for c in extra_cols], r.baseline, fmt_s(r.baseline_seconds), r.ratio, r.note]
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + " |"
             for row in (head, *body)]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def size_main(doc: str | None, sizes: Iterable[str], bench: Callable[[str], list[Row]], default: str = "small") -> int:
    """The command line of a benchmark that takes only --size: the machine, then its table."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(sizes), default=default)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(table(bench(args.size)))
    return 0

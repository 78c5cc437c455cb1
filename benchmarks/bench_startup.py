"""Start-up: how long svcctl takes before it does anything, against a bare interpreter started the same way.

Each command runs as a fresh subprocess N times (median shown): `python3 -c pass` (the floor), `svcctl --version`
(target < 0.15 s), `svcctl --help`, and `svcctl trace hostnames --snapshot demo` (a whole offline trace of the
demo cluster: target < 0.5 s).

    python benchmarks/bench_startup.py [--size small|full]
"""

from __future__ import annotations

import sys

from common import SVCCTL, Row, median_run, size_main

REPEAT = {"small": 7, "full": 21}


def bench(size: str, repeat: int | None = None) -> list[Row]:
    n = repeat or REPEAT[size]
    base = median_run([sys.executable, "-c", "pass"], n, warm=True)
    rows = [Row("start-up", f"python3 -c pass (median of {n})", base.seconds, base.rss_mb, note="the floor")]
    for argv, target in ((["--version"], "target < 0.15 s"), (["--help"], ""),
                         (["trace", "hostnames", "--snapshot", "demo"], "target < 0.5 s"),
                         (["rules", "hostnames", "--snapshot", "demo", "-o", "json"], "")):
        r = median_run([*SVCCTL, *argv], n, warm=True)
        note = target if r.rc in (0, 1) else f"exit {r.rc}: {r.stderr[-160:]}"
        rows.append(Row("start-up", "svcctl " + " ".join(argv), r.seconds, r.rss_mb, "python3 -c pass",
                        base.seconds, note=note))
    return rows


def main() -> int:
    return size_main(__doc__, REPEAT, bench)


if __name__ == "__main__":
    sys.exit(main())

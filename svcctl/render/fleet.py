"""`--all-nodes` output: one row per node (mode, verdict, findings), and progress while the nodes are read.

Progress goes to stderr: a rich bar on a terminal, one plain line per node otherwise (CI logs), nothing with
-o json/yaml unless stderr is a terminal — stdout stays the document alone.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

from svcctl.render.console import emit_document, plain_table

if TYPE_CHECKING:
    from svcctl.analysis.fleet import FleetReport, NodeResult
    from svcctl.render.console import OutputOptions

HEADERS = ["node", "mode", "verdict", "findings", "seconds"]


class FleetProgress:
    """`on_start` / `on_result` callbacks for `check_fleet`; a context manager that closes the bar."""

    def __init__(self, app: OutputOptions) -> None:
        self.app = app
        self.total = 0
        self.done = 0
        self._progress: Any = None
        self._task: Any = None
        self.tty = bool(getattr(sys.stderr, "isatty", lambda: False)())

    def __enter__(self) -> FleetProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_start(self, total: int) -> None:
        self.total = total
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("reading nodes"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
                                      console=self.app.terminal.err, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("nodes", total=total, last="")
        elif self.app.output not in ("json", "yaml"):
            self.app.terminal.status(f"reading the rules of {total} node(s)")

    def on_result(self, res: NodeResult) -> None:
        """A node read and judged (`trace --all-nodes`)."""
        self._advance(f"{res.name}: {_verdict_text(res)}")

    def on_read(self, node: str, mode: str | None, error: str | None) -> None:
        """A node read, to be judged later (`check --all-nodes`)."""
        self._advance(f"{node}: unreadable ({error})" if error else f"{node}: {mode or '?'} rules read")

    def _advance(self, line: str) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, last=line[:60])
        elif self.app.output not in ("json", "yaml"):
            sys.stderr.write(f"[{self.done}/{self.total}] {line}\n")  # one unwrapped line per node: CI logs


def _verdict_text(res: NodeResult) -> str:
    if not res.readable:
        return f"unreadable ({res.error})"
    errors = sum(1 for f in res.findings if f.severity == "error")
    return f"{res.mode or '?'}, " + (f"{errors} drift finding(s)" if errors else
                                     f"{len(res.findings)} warning(s)" if res.findings else "matches the API")


def rows(report: FleetReport, wide: bool) -> list[list[str]]:
    out: list[list[str]] = []
    for n in report.nodes:
        if not n.readable:
            text = n.error or ""
        else:
            text = "; ".join(f"{f.code}: {f.message}" for f in n.findings) if wide else ", ".join(
                f"{code}×{count}" if count > 1 else code
                for code, count in _codes(n).items())
        out.append([n.name, n.mode or "-", n.verdict, text or "-", f"{n.seconds:.2f}"])
    return out


def _codes(n: NodeResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in n.findings:
        counts[f.code] = counts.get(f.code, 0) + 1
    return counts


def render_fleet(app: OutputOptions, report: FleetReport) -> None:
    if app.output in ("json", "yaml"):
        emit_document(report.to_json(), app.output)
        return
    wide = app.output == "wide"
    table_rows = rows(report, wide)
    if app.terminal.is_tty:
        from rich.table import Table

        t = Table(*[h.upper() for h in HEADERS], show_header=not app.no_headers, box=None, pad_edge=False)
        style = {"ok": "green", "drift": "red", "warning": "yellow", "unreadable": "yellow"}
        for r in table_rows:
            t.add_row(*r, style=style.get(r[2]) if app.terminal.color else None)
        app.terminal.print(t)
    else:
        app.terminal.echo(plain_table(HEADERS, table_rows, app.no_headers))
    s = report.summary
    app.terminal.status(
        f"{s['nodes']} node(s): {s['drifted']} drift from the API, {s['clean']} match, {s['unreadable']} unreadable"
        f" — {', '.join(report.services)} ({s['seconds']:.1f}s, {report.parallel} at a time)")
    for n in report.nodes:
        if not n.readable:
            app.terminal.warn(f"node {n.name} could not be read: {n.error}")

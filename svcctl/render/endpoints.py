"""`svcctl endpoints` output: a rich table on a terminal, plain columns when piped, the report as JSON/YAML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from svcctl.analysis.endpoints import EndpointRow, EndpointsReport, PortTuple, ServiceSummary
from svcctl.lazydc import dataclass
from svcctl.model import Finding, Service
from svcctl.render.console import emit_document, finding_detail_lines, plain_table

if TYPE_CHECKING:
    from svcctl.render.console import OutputOptions

STATE_STYLE = {"ready": "green", "not-ready": "red", "terminating": "yellow", "excluded": "red",
               "not-selected": "magenta"}
SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
VERDICT_STYLE = {"ok": "bold green", "warning": "bold yellow", "broken": "bold red"}


def _ports(ports: list[PortTuple]) -> str:
    return ",".join(f"{n + '=' if n else ''}{p}/{pr}" for n, p, pr in ports) or "-"


def report_rows(rep: EndpointsReport, wide: bool = False) -> tuple[list[str], list[list[str]]]:
    """One row per candidate Pod, then one per slice endpoint that no candidate Pod explains."""
    headers = ["pod", "address", "ports", "node", "state", "reason"]
    if wide:
        headers += ["slice", "evidence", "hint"]
    rows: list[list[str]] = []
    seen: set[str] = set()
    eps: dict[str, list[EndpointRow]] = {}
    for e in rep.endpoints:
        if e.pod:
            eps.setdefault(e.pod, []).append(e)
    found: dict[str, list[Finding]] = {}
    for f in rep.findings:
        if f.pod:
            found.setdefault(f.pod, []).append(f)
    for v in rep.pods:
        seen.add(v.pod)
        actual = eps.get(v.pod, [])
        ports = actual[0].ports if actual else v.expected_ports
        state = v.state
        row = [v.pod, v.ip or "-", _ports(ports) if v.relation == "selected" else "-", v.node or "-", state,
               v.reason or "-"]
        if wide:
            first = _first(found.get(v.pod, []))
            row += [",".join(v.slices) or "-", first.evidence if first else "", first.hint if first else ""]
        rows.append(row)
    for e in rep.endpoints:
        if e.pod is not None and e.pod in seen:
            continue
        mine = found.get(e.pod, []) if e.pod else []
        codes = [f.code for f in mine]
        row = [e.pod or "(no Pod)", e.ip or "-", _ports(e.ports), e.node or "-",
               "ready" if e.ready else ("terminating" if e.terminating else "not-ready"), ",".join(codes) or "-"]
        if wide:
            first = _first(mine)
            row += [e.slice, first.evidence if first else "", first.hint if first else ""]
        rows.append(row)
    return headers, rows


def _first(findings: list[Finding]) -> Finding | None:
    return findings[0] if findings else None


def _title(rep: EndpointsReport) -> str:
    s = rep.service
    sel = ",".join(f"{k}={v}" for k, v in sorted(s.selector.items())) if s.selector else "(none)"
    return (f"Service {s.meta.key} ({s.type}, selector {sel}): {rep.ready} ready, {rep.not_ready} not ready, "
            f"{rep.expected} expected")


@dataclass(frozen=True)
class _Story:
    """The report as the one-sentence story reads a trace (analysis.story.Told)."""

    all_findings: list[Finding]
    endpoint_counts: dict[str, int | None]
    service: Service


def headline(rep: EndpointsReport) -> str:
    """The first line, as trace's: the verdict and why, before the table however long it is."""
    from svcctl.analysis.story import sentence

    return f"verdict: {rep.verdict} — {sentence(_Story(rep.findings, rep.counts, rep.service))}"


def finding_lines(findings: list[Finding], detail: bool) -> list[str]:
    out: list[str] = []
    for f in findings:
        who = f" {f.pod}" if f.pod else ""
        out.append(f"{f.severity.upper():7} {f.code}{who}: {f.message}")
        if detail:
            out += finding_detail_lines(f, " " * 8, where=True)
    return out


def render_plain(rep: EndpointsReport, *, wide: bool, no_headers: bool) -> str:
    headers, rows = report_rows(rep, wide)
    parts = []
    if not no_headers:
        parts += [headline(rep), _title(rep)]
    if rows:
        parts.append(plain_table(headers, rows, no_headers=no_headers))
    if rep.findings and not no_headers:
        parts.append("\nfindings:")
        parts += ["  " + line for line in finding_lines(rep.findings, rep.why_not or wide)]
    return "\n".join(parts) + "\n"


def render_rich(rep: EndpointsReport, *, wide: bool, no_headers: bool) -> Group:
    headers, rows = report_rows(rep, wide)
    # on a terminal the findings below carry evidence and hint in full: squeezed into columns beside the
    # table they wrap a few characters to a line
    keep = [i for i, h in enumerate(headers) if not (h in ("evidence", "hint") and rep.findings and not no_headers)]
    table = Table(title=None if no_headers else _title(rep), show_header=not no_headers, title_justify="left",
                  header_style="bold", box=None, pad_edge=False)
    for i in keep:
        h = headers[i]
        table.add_column(h.upper(), overflow="fold", no_wrap=h not in ("evidence", "hint"))
    for full in rows:
        r = [full[i] for i in keep]
        cells = [Text(c) for c in r]
        cells[4].stylize(STATE_STYLE.get(r[4], ""))
        table.add_row(*cells)
    items: list[Table | Text] = [table]
    if not no_headers:
        items.insert(0, Text(headline(rep), style=VERDICT_STYLE.get(rep.verdict.value, "bold")))
    if rep.findings and not no_headers:
        items.append(Text("\nfindings:", style="bold"))
        for f in rep.findings:
            t = Text("  ")
            t.append(f"{f.severity.upper():7} {f.code}", style=SEV_STYLE.get(f.severity, ""))
            t.append((f" {f.pod}" if f.pod else "") + f": {f.message}")
            items.append(t)
            if rep.why_not or wide:
                for label, val in (("evidence", f.evidence), ("hint", f.hint), ("decided by", f.where)):
                    if val:
                        items.append(Text(f"          {label}: {val}", style="dim"))
    return Group(*items)


def render_report(app: OutputOptions, rep: EndpointsReport) -> None:
    if app.output in ("json", "yaml"):
        emit_document(rep.to_json(), app.output)
        return
    wide = app.output == "wide"
    if app.terminal.is_tty or app.terminal.color:
        app.terminal.print(render_rich(rep, wide=wide, no_headers=app.no_headers))
    else:
        app.terminal.echo(render_plain(rep, wide=wide, no_headers=app.no_headers))


def summary_document(summaries: list[ServiceSummary]) -> dict[str, object]:
    return {"apiVersion": "svcctl/v1", "kind": "EndpointsSummary", "services": [s.to_json() for s in summaries]}


def summary_rows(summaries: list[ServiceSummary], all_namespaces: bool,
                 wide: bool = False) -> tuple[list[str], list[list[str]]]:
    headers = (["namespace"] if all_namespaces else []) + ["name", "type", "ready", "not-ready", "expected"]
    if wide:
        headers.append("selector")
    rows = []
    for s in summaries:
        row = ([s.namespace] if all_namespaces else []) + [s.name, s.type, _num(s.ready), _num(s.not_ready),
                                                           "?" if s.expected is None else str(s.expected)]
        if wide:
            row.append(",".join(f"{k}={v}" for k, v in sorted(s.selector.items())) if s.selector else "<none>")
        rows.append(row)
    return headers, rows


def render_summary(app: OutputOptions, summaries: list[ServiceSummary], all_namespaces: bool = False) -> None:
    """`all_namespaces`: a NAMESPACE column (-A)."""
    if app.output in ("json", "yaml"):
        emit_document(summary_document(summaries), app.output)
        return
    headers, rows = summary_rows(summaries, all_namespaces, app.output == "wide")
    if app.terminal.is_tty or app.terminal.color:
        table = Table(show_header=not app.no_headers, header_style="bold", box=None, pad_edge=False)
        for h in headers:
            table.add_column(h.upper())
        for s, r in zip(summaries, rows, strict=True):
            style = "red" if s.problem else ""
            table.add_row(*[Text(c, style=style) for c in r])
        app.terminal.print(table)
    elif rows:
        app.terminal.echo(plain_table(headers, rows, no_headers=app.no_headers))


def _num(n: int | None) -> str:
    """A count, or `?` when the input could not show it."""
    return "?" if n is None else str(n)

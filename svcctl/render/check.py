"""`svcctl check` output: table/wide, JSON/YAML, JUnit XML, GitHub workflow commands, Markdown.

Every function here returns text (or prints the table); the command decides where it goes, so the GitHub
step summary file is written by the CLI layer, not here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from svcctl.analysis.check import BROKEN, HEALTHY, WARNING, CheckFinding, CheckReport, ServiceCheck
from svcctl.findings import FailOn, verdict_of
from svcctl.render.console import dump_json, dump_yaml, finding_detail_lines, plain_table

if TYPE_CHECKING:
    from svcctl.render.console import OutputOptions

FORMATS = ("table", "wide", "json", "yaml", "junit", "github", "markdown")
STATUS_STYLE = {HEALTHY: "green", WARNING: "yellow", BROKEN: "bold red"}
SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
MD_STATUS = {HEALTHY: "✅ healthy", WARNING: "⚠️ warning", BROKEN: "❌ broken"}


def _ready(s: ServiceCheck) -> str:
    c = s.counts
    if not c:
        return "-"
    ready, expected = c.get("ready", 0), c.get("expected", 0)
    return f"{'?' if ready is None else ready}/{'?' if expected is None else expected}"


def _who(c: CheckFinding) -> str:
    f = c.finding
    where = f" [{c.check}" + (f" {c.node}" if c.node else "") + "]"
    return (f" {f.pod}" if f.pod else "") + where


def table_rows(report: CheckReport, wide: bool) -> tuple[list[str], list[list[str]]]:
    from svcctl.render.policy_reach import reach_cell, shows_reach

    reach = shows_reach(report.services)
    headers = ["namespace", "name", "status", "ready", "errors", "warnings", "info"] + (["reach"] if reach else [])
    if wide:
        headers += ["checks", "codes"]
    rows = []
    for s in report.services:
        sev = s.severity_counts()
        row = [s.namespace, s.name, s.status, _ready(s), str(sev["error"]), str(sev["warning"]), str(sev["info"])]
        row += [reach_cell(s, wide)] if reach else []
        if wide:
            ran = ["endpoints"] if s.endpoints is not None else []
            ran += ["dns"] if s.dns is not None else []
            ran += ["drift"] if s.drift else []
            ran += ["policy"] if s.policy is not None else []
            row += [",".join(ran) or "-", ",".join(dict.fromkeys(c.finding.code for c in s.findings)) or "-"]
        rows.append(row)
    return headers, rows


def verdict_line(report: CheckReport) -> str:
    verdict = "FAILED" if report.failed else "passed"
    line = f"{report.summary_line()}; --fail-on {report.fail_on}: {verdict}"
    if report.attempts > 1:
        line += f" (after {report.attempts} checks)"
    return line


def finding_lines(report: CheckReport, detail: bool) -> list[str]:
    out: list[str] = []
    for s in report.services:
        for c in s.findings:
            f = c.finding
            out.append(f"{f.severity.upper():7} {f.code} {s.key}{_who(c)}: {f.message}")
            if detail:
                out += finding_detail_lines(f, " " * 8)
    return out


def render_plain(report: CheckReport, *, wide: bool, no_headers: bool) -> str:
    headers, rows = table_rows(report, wide)
    parts: list[str] = [report.headline()] if not no_headers and rows else []
    if rows:
        parts.append(plain_table(headers, rows, no_headers=no_headers))
    lines = finding_lines(report, wide)
    if lines and not no_headers:
        parts.append("\nfindings:")
        parts += ["  " + x for x in lines]
    if not no_headers:
        parts.append(("\n" if rows else "") + verdict_line(report))
    return "\n".join(parts) + "\n"


def render_rich(report: CheckReport, *, wide: bool, no_headers: bool) -> Group:
    headers, rows = table_rows(report, wide)
    table = Table(show_header=not no_headers, header_style="bold", box=None, pad_edge=False)
    for h in headers:
        table.add_column(h.upper(), overflow="fold")
    for r in rows:
        cells = [Text(x) for x in r]
        cells[2].stylize(STATUS_STYLE.get(r[2], ""))
        table.add_row(*cells)
    items: list[Table | Text] = [table] if rows else []
    if rows and not no_headers:
        items.insert(0, Text(report.headline(), style="bold red" if report.failed else "bold green"))
    if not no_headers:
        found = [(s, c) for s in report.services for c in s.findings]
        if found:
            items.append(Text("\nfindings:", style="bold"))
        for s, c in found:
            f = c.finding
            t = Text("  ")
            t.append(f"{f.severity.upper():7} {f.code}", style=SEV_STYLE.get(f.severity, ""))
            t.append(f" {s.key}{_who(c)}: {f.message}")
            items.append(t)
            if wide:
                for label, val in (("evidence", f.evidence), ("hint", f.hint)):
                    if val:
                        items.append(Text(f"          {label}: {val}", style="dim"))
        items.append(Text(("\n" if rows else "") + verdict_line(report),
                          style="bold red" if report.failed else "green"))
    return Group(*items)


# ------------------------------------------------------------------------------------------------ JUnit


def junit_xml(report: CheckReport) -> str:
    """One testsuite per namespace, one testcase per Service; what fails under --fail-on is its <failure>."""
    root = ET.Element("testsuites", name="svcctl check")
    by_ns: dict[str, list[ServiceCheck]] = {}
    for s in report.services:
        by_ns.setdefault(s.namespace, []).append(s)
    total_tests = total_failures = 0
    total_time = 0.0
    for ns in sorted(by_ns):
        checks = by_ns[ns]
        suite = ET.SubElement(root, "testsuite", name=f"svcctl.{ns}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="fail-on", value=report.fail_on)
        if report.source:
            ET.SubElement(props, "property", name="source", value=report.source)
        failures = 0
        suite_time = 0.0
        for s in checks:
            secs = s.seconds
            suite_time += secs
            case = ET.SubElement(suite, "testcase", classname=f"svcctl.{ns}", name=s.key, time=f"{secs:.3f}")
            failing = [c for c in s.findings if _fails(c, report.fail_on)]
            other = [c for c in s.findings if not _fails(c, report.fail_on)]
            if failing:
                failures += 1
                first = failing[0].finding
                msg = f"{first.code}: {first.message}"
                if len(failing) > 1:
                    msg += f" (and {len(failing) - 1} more)"
                fail = ET.SubElement(case, "failure", message=msg, type=first.code)
                fail.text = "\n".join(_finding_text(c) for c in failing) + "\n"
            if other:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(_finding_text(c) for c in other) + "\n"
        suite.set("tests", str(len(checks)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        suite.set("time", f"{suite_time:.3f}")
        total_tests += len(checks)
        total_failures += failures
        total_time += suite_time
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", "0")
    root.set("skipped", "0")
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _fails(c: CheckFinding, fail_on: str) -> bool:
    return FailOn(fail_on).fails(verdict_of([c.severity]))


def _finding_text(c: CheckFinding) -> str:
    f = c.finding
    lines = [f"{f.severity.upper()} {f.code} [{c.check}{' ' + c.node if c.node else ''}]"
             + (f" {f.pod}" if f.pod else "") + f": {f.message}"]
    if f.evidence:
        lines.append(f"  evidence: {f.evidence}")
    if f.hint:
        lines.append(f"  hint: {f.hint}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ GitHub


def escape_data(text: str) -> str:
    """Workflow-command message escaping (the runner's own rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


GH_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def github_commands(report: CheckReport) -> str:
    """`::error title=<code> <ns>/<svc>::<message>` per finding, then the summary as a plain line."""
    lines: list[str] = []
    for s in report.services:
        for c in s.findings:
            f = c.finding
            msg = (f"{f.pod}: " if f.pod else "") + f.message
            if f.hint:
                msg += f"\nhint: {f.hint}"
            title = escape_property(f"{f.code} {s.key}")
            lines.append(f"::{GH_LEVEL.get(f.severity, 'notice')} title={title}::{escape_data(msg)}")
    lines.append(verdict_line(report))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ Markdown


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown(report: CheckReport) -> str:
    head = "❌ failed" if report.failed else "✅ passed"
    out = [f"### svcctl check: {head}", "",
           f"{report.summary_line()} (`--fail-on {report.fail_on}`"
           + (f", {_md(report.source)}" if report.source else "") + ")", ""]
    if report.services:
        out += ["| Service | Status | Ready | Errors | Warnings | Info |", "|---|---|---|---:|---:|---:|"]
        for s in report.services:
            sev = s.severity_counts()
            out.append(f"| `{_md(s.key)}` | {MD_STATUS[s.status]} | {_ready(s)} | {sev['error']} | "
                       f"{sev['warning']} | {sev['info']} |")
        out.append("")
    with_findings = [s for s in report.services if s.findings]
    if with_findings:
        out += ["#### Findings", ""]
        for s in with_findings:
            out.append(f"**`{_md(s.key)}`** ({s.status})")
            out.append("")
            for c in s.findings:
                f = c.finding
                where = c.check + (f" {c.node}" if c.node else "")
                out.append(f"- **{f.severity}** `{f.code}` ({_md(where)})" + (f" `{_md(f.pod)}`" if f.pod else "")
                           + f": {_md(f.message)}")
                if f.evidence:
                    out.append(f"  - evidence: {_md(f.evidence)}")
                if f.hint:
                    out.append(f"  - hint: {_md(f.hint)}")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------------------ dispatch


def render_check(app: OutputOptions, report: CheckReport) -> None:
    """Print the report in app.output's format; stdout carries only the document."""
    import sys

    fmt = app.output
    if fmt == "json" and report.spool is not None:
        from svcctl.render.check_stream import write_report_json

        write_report_json(report, report.spool, sys.stdout.write)
    elif fmt == "json":
        sys.stdout.write(dump_json(report.to_json()))
    elif fmt == "yaml":
        sys.stdout.write(dump_yaml(report.to_json()))
    elif fmt == "junit":
        sys.stdout.write(junit_xml(report))
    elif fmt == "github":
        sys.stdout.write(github_commands(report))
    elif fmt == "markdown":
        sys.stdout.write(markdown(report))
    elif app.terminal.is_tty or app.terminal.color:
        app.terminal.print(render_rich(report, wide=fmt == "wide", no_headers=app.no_headers))
    else:
        app.terminal.echo(render_plain(report, wide=fmt == "wide", no_headers=app.no_headers))

"""A DNSReport as tables: the queries tried, expected vs got, findings; or the versioned JSON/YAML document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcctl.analysis.dns import DNSQuery, DNSReport
from svcctl.render.console import emit_document, plain_table

if TYPE_CHECKING:
    from svcctl.render.console import OutputOptions


def _answers(q: DNSQuery) -> str:
    if not q.answers:
        return "-"
    return ", ".join(f"{a.data} ({a.type} ttl {a.ttl})" if a.type != q.type else f"{a.data} (ttl {a.ttl})"
                     for a in q.answers)


def sections(r: DNSReport, wide: bool = False) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for each table; shared by the plain and the rich renderer."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    n = r.name
    head = [["name", f"{n.typed} → {n.fqdn} ({n.kind})"], ["querying namespace", r.namespace],
            ["resolver", f"search {' '.join(r.resolver.search) or '-'}; ndots:{r.resolver.ndots}; "
                         f"nameserver {' '.join(r.resolver.nameservers) or '-'}"
                         + (f"; timeout {r.resolver.timeout:g}s x{r.resolver.attempts}" if r.queried
                            and r.resolver.timeout else "")],
            ["service", r.service or "(none in the API)"]]
    out.append(("DNS " + n.typed, ["field", "value"], head))
    if r.queries:
        hdr = ["name", "type", "server", "rcode", "answers"]
        if wide:
            hdr += ["purpose", "transport", "tries", "errors"]
        rows = []
        for q in r.queries:
            row = [q.name, q.type, q.server, q.rcode, _answers(q)]
            if wide:
                row += [q.purpose, q.transport + (" (truncated UDP)" if q.truncated else ""), str(q.tries),
                        "; ".join(q.errors) or "-"]
            elif q.purpose != "search":
                row[0] += f"  [{q.purpose}]"
            rows.append(row)
        out.append(("queries", hdr, rows))
    if r.predicted:
        rows = [[p.name, p.to_json()["rcode"],
                 "cannot be known offline (outside the cluster zone)" if p.records is None else
                 ", ".join(f"{e.data} ({e.type})" for e in p.records) or "-"] for p in r.predicted]
        out.append(("what a Pod would ask (predicted from the API; nothing sent)", ["name", "rcode", "answers"],
                    rows))
    if r.diffs:
        rows = [[d.type, d.data, d.status, "-" if d.ttl is None else str(d.ttl)] + ([d.why] if wide else [])
                for d in r.diffs]
        out.append(("expected vs got", ["type", "record", "status", "ttl"] + (["why"] if wide else []), rows))
    elif r.expected:
        rows = [[e.name, e.type, e.data] + ([e.why] if wide else []) for e in r.expected]
        out.append(("expected", ["name", "type", "record"] + (["why"] if wide else []), rows))
    if r.findings:
        rows = []
        for f in r.findings:
            row = [f.severity.upper(), f.code, f.message]
            if wide:
                row += [f.evidence or "-", f.hint or "-"]
            rows.append(row)
        out.append(("findings", ["severity", "code", "message"] + (["evidence", "hint"] if wide else []), rows))
    return out


def render_plain(r: DNSReport, wide: bool = False, no_headers: bool = False) -> str:
    parts: list[str] = []
    for title, hdr, rows in sections(r, wide):
        if not no_headers:
            parts.append(f"== {title}")
        parts.append(plain_table(hdr, rows, no_headers=no_headers))
        parts.append("")
    for note in r.notes:
        parts.append(f"note: {note}")
    if not wide:
        for f in r.findings:
            if f.hint:
                parts.append(f"hint ({f.code}): {f.hint}")
    parts.append("verdict: " + ("BROKEN" if r.broken else "ok"))
    return "\n".join(parts) + "\n"


def render_rich(app: OutputOptions, r: DNSReport, wide: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    for title, hdr, rows in sections(r, wide):
        t = Table(title=title, title_justify="left", show_header=not app.no_headers, header_style="bold")
        for h in hdr:
            t.add_column(h.upper(), overflow="fold")
        for row in rows:
            style = ""
            if title == "findings":
                style = {"ERROR": "red", "WARNING": "yellow"}.get(row[0], "")
            elif title == "expected vs got":
                style = {"missing": "red", "extra": "red", "ok": "green"}.get(row[2], "")
            elif title == "queries":
                style = "green" if row[3] == "NOERROR" and row[4] != "-" else (
                    "dim" if row[3] in ("NXDOMAIN", "NOERROR") else "red")
            t.add_row(*row, style=style)
        app.terminal.print(t)
    for note in r.notes:
        app.terminal.print(Text("note: " + note, style="dim"))
    if not wide:
        for f in r.findings:
            if f.hint:
                app.terminal.print(Text(f"hint ({f.code}): {f.hint}", style="dim"))
    app.terminal.print(Text("verdict: " + ("BROKEN" if r.broken else "ok"),
                            style="bold red" if r.broken else "bold green"))


def render_dns(app: OutputOptions, r: DNSReport) -> None:
    if app.output in ("json", "yaml"):
        emit_document(r.to_json(), app.output)
    elif app.terminal.is_tty or app.terminal.color:
        render_rich(app, r, wide=app.output == "wide")
    else:
        app.terminal.echo(render_plain(r, wide=app.output == "wide", no_headers=app.no_headers))

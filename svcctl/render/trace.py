"""A trace as a rich tree on a terminal, as indented plain text when piped, or as the versioned JSON document."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from rich.text import Text
from rich.tree import Tree

from svcctl.analysis.trace import BROKEN, OK, SKIPPED, WARNING, Hop, PortTrace, Trace
from svcctl.dataplane.model import format_share
from svcctl.render.console import emit_document, finding_detail_lines

if TYPE_CHECKING:
    from svcctl.cli.app import App

MARK = {OK: "✓", WARNING: "!", BROKEN: "✗", SKIPPED: "-"}
STYLE = {OK: "green", WARNING: "yellow", BROKEN: "bold red", SKIPPED: "dim"}
TITLES = {"dns": "DNS", "service": "Service", "node-rules": "Node rules", "endpoints": "Endpoints",
          "drift": "Drift", "policy": "NetworkPolicy", "selected": "Selected endpoint"}


def _share(p: Fraction | None) -> str:
    if p is None:
        return "share depends on load/source"
    return f"{format_share(p)} ({float(p) * 100:.0f}%)"


def _backend_line(pt: PortTrace) -> list[str]:
    lines = []
    for b in pt.backends:
        who = b.pod or "(no Pod in the API)"
        extra = f", observed {b.observed}" if b.observed is not None else ""
        w = f", weight {b.weight}" if b.weight is not None else ""
        dp = f", map: {b.dataplane_state}" if b.dataplane_state else ""
        lines.append(f"{b.ip}:{b.port}  {_share(b.probability)}{w}  → {who}  [{b.state}{dp}]{extra}")
    return lines


def _hop_title(h: Hop) -> str:
    return f"{MARK[h.verdict]} {TITLES.get(h.name, h.name)}: {h.summary}"


def render_plain(tr: Trace) -> str:
    out: list[str] = []
    head = f"trace {tr.target.raw}"
    if tr.node or tr.mode:
        head += f"  (node {tr.node or '-'}, {tr.mode or 'no rules'})"
    out.append(head)
    for h in tr.pre_hops:
        out.append(_hop_title(h))
        out += [f"    {d}" for d in h.details]
    for pt in tr.ports:
        out.append(f"port {pt.name or '-'} {pt.port}/{pt.protocol} → {pt.target_port}: {pt.verdict}")
        for h in pt.hops:
            out.append("  " + _hop_title(h))
            out += [f"      {d}" for d in h.details]
            if h.name == "node-rules":
                out += [f"      backend {line}" for line in _backend_line(pt)]
    findings = tr.all_findings
    if findings:
        out.append("findings:")
        for f in findings:
            who = f" {f.pod}" if f.pod else ""
            out.append(f"  {f.severity.upper():7} {f.code}{who}: {f.message}")
            out += finding_detail_lines(f, " " * 10)
    for n in tr.notes:
        out.append(f"note: {n}")
    out.append(f"verdict: {tr.verdict}")
    return "\n".join(out) + "\n"


def _hop_node(parent: Tree, h: Hop) -> Tree:
    t = Text(f"{MARK[h.verdict]} ", style=STYLE[h.verdict])
    t.append(f"{TITLES.get(h.name, h.name)}: ", style="bold")
    t.append(h.summary, style="red" if h.verdict == BROKEN else "")
    node = parent.add(t)
    for d in h.details:
        node.add(Text(d, style="dim" if h.verdict == SKIPPED else ""))
    return node


def render_tree(tr: Trace) -> Tree:
    title = Text(f"trace {tr.target.raw}", style="bold")
    if tr.node or tr.mode:
        title.append(f"  node {tr.node or '-'} · {tr.mode or 'no rules'}", style="dim")
    root = Tree(title)
    for h in tr.pre_hops:
        _hop_node(root, h)
    for pt in tr.ports:
        pnode = root.add(Text(f"port {pt.name or '-'} {pt.port}/{pt.protocol} → {pt.target_port}",
                              style=STYLE[pt.verdict]))
        for h in pt.hops:
            hn = _hop_node(pnode, h)
            if h.name == "node-rules":
                for b, line in zip(pt.backends, _backend_line(pt), strict=True):
                    style = "green" if b.ready else "red"
                    hn.add(Text("→ " + line, style=style))
    findings = tr.all_findings
    if findings:
        fnode = root.add(Text("findings", style="bold"))
        for f in findings:
            style = {"error": "red", "warning": "yellow"}.get(f.severity, "")
            t = Text(f"{f.severity.upper()} {f.code}", style=style)
            t.append(f" {f.pod or ''} {f.message}")
            fn = fnode.add(t)
            if f.evidence:
                fn.add(Text("evidence: " + f.evidence, style="dim"))
            if f.hint:
                fn.add(Text("hint: " + f.hint, style="dim"))
    for n in tr.notes:
        root.add(Text("note: " + n, style="dim"))
    root.add(Text(f"verdict: {tr.verdict}", style=STYLE[tr.verdict]))
    return root


def render_trace(app: App, tr: Trace) -> None:
    if app.output in ("json", "yaml"):
        emit_document(tr.to_json(), app.output)
    elif app.terminal.is_tty or app.terminal.color:
        app.terminal.print(render_tree(tr))
    else:
        app.terminal.echo(render_plain(tr))

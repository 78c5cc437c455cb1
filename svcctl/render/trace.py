"""A trace as a rich tree on a terminal, as indented plain text when piped, or as the versioned JSON document."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from svcctl.analysis.story import Group, group_findings, sentence
from svcctl.analysis.trace import BROKEN, OK, SKIPPED, WARNING, Hop, PortTrace, Trace
from svcctl.dataplane.model import format_share
from svcctl.render.console import emit_document, hint_lines

if TYPE_CHECKING:
    from rich.tree import Tree

    from svcctl.render.console import OutputOptions

MARK = {OK: "✓", WARNING: "!", BROKEN: "✗", SKIPPED: "-"}
STYLE = {OK: "green", WARNING: "yellow", BROKEN: "bold red", SKIPPED: "dim"}
TITLES = {"dns": "DNS", "service": "Service", "source": "Source", "node-rules": "Node rules", "endpoints": "Endpoints",
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


# sentences that only apply in some cases: said when they apply, and on the first screen only with -o wide
_MODE_SENTENCE = ("mode picks a backend", "mode picks each")


def _hop_lines(pt: PortTrace | None, h: Hop, wide: bool) -> list[str]:
    """The detail lines under a hop: all of them with -o wide; by default what tells the story (where traffic
    goes, what is not ready, why a hop is not ✓)."""
    details = list(h.details)
    if pt is not None and h.name == "node-rules" and not pt.backends:
        details = [d for d in details if not any(m in d for m in _MODE_SENTENCE)]  # nothing is picked
    if wide:
        out = details
        if pt is not None and h.name == "node-rules":
            out = out + [f"backend {line}" for line in _backend_line(pt)]
        return out
    if pt is not None and h.name == "node-rules":
        extra = [d for d in details if h.verdict in (BROKEN, WARNING) and not any(m in d for m in _MODE_SENTENCE)
                 and not d.startswith("entry:")]
        # how a backend is picked matters once there are two to pick from
        extra += [d for d in details if len(pt.backends) > 1 and any(m in d for m in _MODE_SENTENCE)]
        return [*extra, *(f"backend {line}" for line in _backend_line(pt))]
    if h.name == "endpoints":
        shown = {f"{b.ip}:{b.port}" for b in (pt.backends if pt is not None else [])}
        return [d for d in details if not (d.split(" ", 1)[0] in shown and d.endswith(": ready"))
                and not d.endswith(": ready")]
    if h.verdict in (OK, SKIPPED):
        return []
    return details


def _notes(tr: Trace, wide: bool) -> list[str]:
    out = list(dict.fromkeys(tr.notes))  # no phrase twice
    if not wide:
        out = [n for n in out if not n.startswith("node ") or "only node" not in n]
    return out


def _group_lines(g: Group, wide: bool, indent: str) -> list[str]:
    f = g.first
    who = f" {g.pods[0]}" if len(g.pods) == 1 else ""
    msg = g.message if len(g.findings) > 1 else f.message
    out = [f"{g.severity.upper():7} {g.code}{who}: {msg}"]
    if len(g.pods) > 1:
        out.append(f"{indent}Pods ({len(g.pods)}): {', '.join(g.pods)}")
    if wide:
        for x in g.findings:
            if x.evidence:
                out.append(f"{indent}evidence" + (f" ({x.pod})" if len(g.pods) > 1 and x.pod else "")
                           + f": {x.evidence}")
    return out + hint_lines(f, indent, where=wide)


def headline(tr: Trace) -> str:
    """The first line: the verdict and the story in one sentence."""
    return f"verdict: {tr.verdict} — {sentence(tr)}"


def render_plain(tr: Trace, wide: bool = False) -> str:
    out: list[str] = [headline(tr)]
    head = f"trace {tr.target.raw}"
    if tr.node or tr.mode:
        head += f"  (node {tr.node or '-'}, {tr.mode or 'no rules'})"
    out.append(head)
    for h in tr.pre_hops:
        out.append(_hop_title(h))
        out += [f"    {d}" for d in _hop_lines(None, h, wide)]
    for pt in tr.ports:
        out.append(f"port {pt.name or '-'} {pt.port}/{pt.protocol} → {pt.target_port}: {pt.verdict}")
        for h in pt.hops:
            out.append("  " + _hop_title(h))
            out += [f"      {d}" for d in _hop_lines(pt, h, wide)]
    groups = group_findings(tr.all_findings)
    if groups:
        out.append("findings:")
        for g in groups:
            lines = _group_lines(g, wide, " " * 10)
            out += ["  " + lines[0], *lines[1:]]
    for n in _notes(tr, wide):
        out.append(f"note: {n}")
    if not wide:
        out.append("(-o wide for every detail)")
    return "\n".join(out) + "\n"


def _hop_node(parent: Tree, pt: PortTrace | None, h: Hop, wide: bool) -> Tree:
    from rich.text import Text

    t = Text(f"{MARK[h.verdict]} ", style=STYLE[h.verdict])
    t.append(f"{TITLES.get(h.name, h.name)}: ", style="bold")
    t.append(h.summary, style="red" if h.verdict == BROKEN else "")
    node = parent.add(t)
    backends = {f"backend {line}": b for b, line in zip(pt.backends, _backend_line(pt), strict=True)} \
        if pt is not None and h.name == "node-rules" else {}
    for d in _hop_lines(pt, h, wide):
        b = backends.get(d)
        if b is not None:
            node.add(Text("→ " + d.removeprefix("backend "), style="green" if b.ready else "red"))
        else:
            node.add(Text(d, style="dim" if h.verdict == SKIPPED else ""))
    return node


def render_tree(tr: Trace, wide: bool = False) -> Tree:
    """The terminal's tree; rich is imported only here, so -o json and plain output never load it."""
    from rich.text import Text
    from rich.tree import Tree

    title = Text(f"verdict: {tr.verdict}", style=STYLE[tr.verdict])
    title.append(f" — {sentence(tr)}", style="bold")
    title.append(f"\ntrace {tr.target.raw}", style="bold")
    if tr.node or tr.mode:
        title.append(f"  node {tr.node or '-'} · {tr.mode or 'no rules'}", style="dim")
    root = Tree(title)
    for h in tr.pre_hops:
        _hop_node(root, None, h, wide)
    for pt in tr.ports:
        pnode = root.add(Text(f"port {pt.name or '-'} {pt.port}/{pt.protocol} → {pt.target_port}",
                              style=STYLE[pt.verdict]))
        for h in pt.hops:
            _hop_node(pnode, pt, h, wide)
    groups = group_findings(tr.all_findings)
    if groups:
        fnode = root.add(Text("findings", style="bold"))
        for g in groups:
            lines = _group_lines(g, wide, "")
            style = {"error": "red", "warning": "yellow"}.get(g.severity, "")
            fn = fnode.add(Text(" ".join(lines[0].split(None, 1)[0:1]) + " " + lines[0].split(None, 1)[1],
                                style=style))
            for ln in lines[1:]:
                fn.add(Text(ln, style="dim"))
    for n in _notes(tr, wide):
        root.add(Text("note: " + n, style="dim"))
    if not wide:
        root.add(Text("-o wide for every detail", style="dim"))
    return root


def render_trace(app: OutputOptions, tr: Trace) -> None:
    wide = app.output == "wide"
    if app.output in ("json", "yaml"):
        emit_document(tr.to_json(), app.output)
    elif app.terminal.is_tty or app.terminal.color:
        app.terminal.print(render_tree(tr, wide))
    else:
        app.terminal.echo(render_plain(tr, wide))

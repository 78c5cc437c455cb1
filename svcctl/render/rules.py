"""`svcctl rules` output: one row per service entry, backends with exact shares, and how much kube-proxy writes."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from svcctl.render.console import emit_document, plain_table

if TYPE_CHECKING:
    from collections.abc import Callable

    from svcctl.dataplane.model import Backend, NodeRules, ServiceEntry, WalkedEntries
    from svcctl.render.console import OutputOptions

HEADERS = ["service port", "kind", "address", "backends", "affinity", "notes"]
WIDE_HEADERS = ["masquerade", "chains"]  # long: only with -o wide


_SHARES: dict[tuple[int, int], str] = {}  # a whole dump repeats the same few shares 100,000 times


def share_text(p: Fraction | None) -> str:
    if p is None:
        return "by load"
    key = (p.numerator, p.denominator)
    hit = _SHARES.get(key)
    if hit is None:
        frac = f"{p.numerator}/{p.denominator}" if p.denominator != 1 else str(p.numerator)
        hit = f"{frac} ({float(p) * 100:.1f}%)"
        if len(_SHARES) < 4096:
            _SHARES[key] = hit
    return hit


def backend_text(b: Backend) -> str:
    extra = " local" if b.local else ""
    if b.draining:
        extra += " draining"
    elif b.state and b.state != "active":
        extra += f" {b.state}"
    if b.connections is not None:
        extra += f" [{b.connections} conn]"
    if b.weight is not None and b.probability is None:
        return f"{b.address} w={b.weight}{extra}"
    return f"{b.address} {share_text(b.probability)}{extra}"


def address_text(e: ServiceEntry) -> str:
    addr = e.address or "*"
    if ":" in addr:
        addr = f"[{addr}]"
    return f"{addr}:{e.port}/{e.protocol}"


def entry_notes(e: ServiceEntry) -> list[str]:
    notes: list[str] = []
    if e.no_endpoints:
        notes.append("NO ENDPOINTS")
    if e.no_local_endpoints and not any("no endpoint on this node" in n for n in e.notes):
        notes.append("no local endpoints")
    if e.source_ranges:
        notes.append("allowed sources: " + ", ".join(e.source_ranges))
    if e.policy_local and e.flags:
        notes.append("traffic policy Local: only this node's backends")
    notes.extend(n for n in e.notes if not n.startswith("Service has no endpoints"))
    return notes


def rows(rules: NodeRules, wide: bool) -> list[list[str]]:
    out = []
    for e in rules.services:
        backends = ", ".join(backend_text(b) for b in e.backends) or "-"
        row = [e.name or "?", e.kind if e.kind_known else f"{e.kind}?", address_text(e), backends,
               f"ClientIP {e.affinity_seconds}s" if e.affinity_seconds is not None else "-",
               "; ".join(entry_notes(e)) or "-"]
        if wide:
            row.append("; ".join(e.masquerade) or "-")
            seps = [b.chain for b in e.backends if b.chain]
            row.append(" → ".join(e.path + (["{" + ", ".join(seps) + "}"] if seps else [])) or "-")
        out.append(row)
    return out


def summary_lines(rules: NodeRules, top: int = 5) -> list[str]:
    """The mode's own first line (the registry's words), how much it writes, notes, how it picks backends."""
    from svcctl.dataplane.modes import find

    mode = find(rules.mode)
    st = rules.stats
    lines = [mode.summary(rules) if mode is not None else f"{rules.mode} mode, from {rules.source}"]
    if mode is not None and mode.replacement:
        lines.extend(rules.notes)
        lines.append(mode.picks)
        return lines
    if rules.proxy_absent:  # not "iptables mode, 0 services": kube-proxy's rules are not there at all
        return [f"not kube-proxy: {rules.source} holds {st.rules} rules in {st.chains} chains, none of them "
                "kube-proxy's", *rules.notes]
    if st.per_service:
        n = len(st.per_service)
        avg = sum(st.per_service.values()) / n
        biggest = sorted(st.per_service.items(), key=lambda kv: -kv[1])[:top]
        lines.append(f"how much kube-proxy writes here: {n} service port(s), {avg:.1f} rules each on average; "
                     "most: " + ", ".join(f"{k} {v}" for k, v in biggest))
    if rules.unreferenced_chains:
        shown = ", ".join(rules.unreferenced_chains[:5])
        more = f" (+{len(rules.unreferenced_chains) - 5} more)" if len(rules.unreferenced_chains) > 5 else ""
        lines.append(f"stale chains nothing jumps to: {shown}{more}")
    lines.extend(rules.notes)
    if mode is not None and mode.picks:
        lines.append(mode.picks)
    return lines


def rules_document(rules: NodeRules) -> dict[str, Any]:
    return rules.to_json()


def streamed_document(rules: NodeRules) -> dict[str, Any]:
    """The rules' JSON document with each entry made as it is written, its backends written as text: the same
    characters as `rules_document`, without a whole dump's 100,000 backend dicts in memory at once."""
    from svcctl.render.jsonout import Mapped

    if rules.deferred is not None:  # a whole IPVS table left in its text (ipvs_plain): written a window at a time
        from functools import partial

        from svcctl.dataplane.ipvs_plain import PlainTable
        from svcctl.render.ipvs_json import window_text

        table = rules.deferred
        if not isinstance(table, PlainTable):
            raise TypeError(f"entries left in the text of a {type(table).__name__}, not of an IPVS table")
        return rules.to_json(services=Mapped(table.windows, partial(window_text, table), text=True))
    from svcctl.render.entry_json import entry_text

    return rules.to_json(services=Mapped(rules.services, entry_text, text=True))


def _emit_walked(rules: NodeRules, walks: WalkedEntries) -> None:
    """The document of rules whose entries are walked as they are written (`nftables.Walks`): the text up to
    the end of the entries, streamed, then the rest (counts, unreferenced chains: made after the last walk) — the
    same characters as `streamed_document`'s, the tail cut from the document written with no entries."""
    import sys

    from svcctl.render.entry_json import entry_text
    from svcctl.render.jsonout import Mapped, write_json

    def walked(e: ServiceEntry, nl: str) -> str:
        return entry_text(walks.entry(e), nl)

    text: Callable[[ServiceEntry, str], str] = walked
    if rules.mode == "iptables":
        from svcctl.dataplane.iptables import LeftBackends

        if isinstance(walks, LeftBackends):  # backends left unmade: written from the scan's parts
            from functools import partial

            from svcctl.render.iptables_json import entry_json

            text = partial(entry_json, walks)
    doc = rules.to_json(services=Mapped(rules.services, text, text=True))
    keys = list(doc)
    head = {k: doc[k] for k in keys[:keys.index("services") + 1]}
    held = [""]

    def write(text: str) -> None:  # each batch as it comes, but the last: it ends in the head's closing brace
        if held[0]:
            sys.stdout.write(held[0])
        held[0] = text

    write_json(head, write)
    if not held[0].endswith("\n}"):
        raise AssertionError("the head of the document did not end as a dict does")
    sys.stdout.write(held[0][:-2])
    walks.finish(rules)
    rest: list[str] = []
    write_json(rules.to_json(services=[]), rest.append)
    tail = "".join(rest)
    sys.stdout.write(tail[tail.index('"services": []') + len('"services": []'):])
    sys.stdout.write("\n")


def render_rules(app: OutputOptions, rules: NodeRules) -> None:
    out = app.output
    if out == "json":
        from svcctl.dataplane.model import WalkedEntries

        if isinstance(rules.deferred, WalkedEntries):
            _emit_walked(rules, rules.deferred)
            return
        emit_document(streamed_document(rules), out)
        return
    if out == "yaml":
        emit_document(rules_document(rules), out)
        return
    wide = out == "wide"
    headers = HEADERS + (WIDE_HEADERS if wide else [])
    data = rows(rules, wide)
    term = app.terminal
    if not rules.services:  # no table of nothing: the summary says what the dump is
        for line in summary_lines(rules):
            term.echo(line)
        return
    if term.is_tty or term.color:
        from rich.table import Table

        table = Table(show_header=not app.no_headers, header_style="bold", box=None, pad_edge=False)
        for h in headers:
            table.add_column(h.upper(), overflow="fold")
        for e, row in zip(rules.services, data, strict=False):
            style = "red" if (e.no_endpoints or e.no_local_endpoints) else None
            row = [row[0], row[1], row[2], "\n".join(backend_text(b) for b in e.backends) or "-", *row[4:]]
            table.add_row(*row, style=style)
        term.print(table)
        for line in summary_lines(rules):
            term.print(line)
    else:
        term.echo(plain_table(headers, data, app.no_headers))
        for line in summary_lines(rules):
            term.echo(line)

"""Node dataplane: parsers of iptables-save, ipvsadm, nft, conntrack and the kube-proxy replacements' agent
output into one model. Which modes exist, and how each is detected and parsed, is the registry's
(`svcctl.dataplane.modes`); this module only chooses the mode and says when the dumps hold several."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from svcctl.errors import InputError

if TYPE_CHECKING:
    from svcctl.dataplane.dumps import NodeDumps
    from svcctl.dataplane.model import NodeRules
    from svcctl.dataplane.modes.base import Scope

__all__ = ["detect_mode", "load_node_rules", "modes_present"]


def modes_present(dumps: NodeDumps) -> list[str]:
    """Every mode whose service rules are in the dumps, in the order `detect_mode` prefers them."""
    from svcctl.dataplane import modes

    return modes.present(dumps.texts)


def detect_mode(dumps: NodeDumps) -> str:
    """The mode of the node's dumps (kube-proxy's own chains/tables, the replacement agents' listings).

    A node runs one mode; when dumps of several are given (the demo ships all three kube-proxy modes) the
    registry's order decides (replacements, then iptables, IPVS, nftables), and `load_node_rules` says so."""
    from svcctl.dataplane import modes

    present = modes.present(dumps.texts)
    if present:
        return present[0]
    ranked = sorted((m for m in modes.modes() if m.fallback_rank is not None),
                    key=lambda m: m.fallback_rank if m.fallback_rank is not None else 0)
    for m in ranked:
        if m.has_text(dumps.texts):
            return m.name
    rule_keys = [m.rules_key for m in modes.modes()] + ["ip6tables"]
    given = list(dict.fromkeys(dumps.origins.get(k, k) for k in rule_keys if k in dumps.texts))
    if given:
        raise InputError("empty: no rules in this dump", source=", ".join(given),
                         hint="give the output of iptables-save, ipvsadm -Ln or nft list table ip kube-proxy")
    raise InputError("no node rules to read", hint="give --iptables-save, --ipvsadm or --nft FILE, --netns NAME "
                     "or --local-node")


def load_node_rules(dumps: NodeDumps, mode: str | None = None,
                    only: Scope | Iterable[str] | None = None) -> NodeRules:
    """Parse whichever dumps `mode` needs (detected when None) into one NodeRules.

    `only`: service names / addresses to restrict the parse to (fast path for one Service, in every mode).
    Dumps already cut to that Service while streaming their file (`dumps.streamed`) are parsed the same way;
    when a cut one does not parse, the whole dump is read and parsed instead, so an error cites its real line.

    The cyclic garbage collector is paused meanwhile: a whole dump's parse makes millions of objects and no cycles,
    and the collector's full passes over them were a quarter of its time."""
    from svcctl.collector import paused

    with paused():
        return _load_streamed(dumps, mode, only)


def _load_streamed(dumps: NodeDumps, mode: str | None, only: Scope | Iterable[str] | None) -> NodeRules:
    if dumps.streamed:
        try:
            rules = _load_node_rules(dumps, mode, only)
        except InputError:
            if dumps.reread is None:
                raise
            return _load_node_rules(dumps.reread(), mode, only)
        used = [note for key, note in dumps.streamed.items() if key in rules_keys(rules.mode)]
        if used:
            rules.notes = [n for n in rules.notes if not n.startswith("only the ")] + used[:1]
        return rules
    return _load_node_rules(dumps, mode, only)


def rules_keys(mode: str) -> tuple[str, ...]:
    """The dump keys a mode's rules are read from (the registry's)."""
    from svcctl.dataplane import modes

    m = modes.find(mode)
    return m.rules_keys if m is not None else ()


def _load_node_rules(dumps: NodeDumps, mode: str | None = None,
                     only: Scope | Iterable[str] | None = None) -> NodeRules:
    from svcctl.dataplane import modes
    from svcctl.dataplane.model import NodeRules
    from svcctl.dataplane.modes.base import Scope
    from svcctl.dataplane.modes.chains import legacy_and_nft_of

    others: list[str] = []
    if mode is None and dumps.mode:
        mode = dumps.mode  # read through a dataplane agent's Pod: that agent's mode
    if mode is None:  # the modes present asked once (each mode's checks scan whole dumps), the first of them taken
        present = modes_present(dumps)
        mode = present[0] if present else detect_mode(dumps)
        others = [m for m in present if m != mode]
    scope = only if isinstance(only, Scope) or only is None else Scope.of(only)
    proxy_mode = modes.get(mode)
    if not proxy_mode.replacement:  # an agent's listing under a kube-proxy flag: name the flag that reads it
        from svcctl.dataplane.replacement import misplaced

        misplaced(dumps.texts, dumps.origins)
    rules = proxy_mode.parse(dumps, scope)
    if not isinstance(rules, NodeRules):
        raise TypeError("parser returned something other than NodeRules")
    if not rules.source and dumps.node:
        rules.source = dumps.node
    rules.inputs = [r.to_json() for r in dumps.readings]
    if others:
        rules.notes.append(f"the dumps also hold {' and '.join(others)} rules; showing {mode} mode "
                           "(choose with --mode)")
    if mode in ("iptables", "nftables") and dumps.get("iptables") and legacy_and_nft_of(dumps):
        note = ("iptables-legacy and iptables-nft rules both exist on this node (iptables-nft's warning): "
                "kube-proxy's rules may be in the other backend; compare `iptables-legacy-save` and "
                "`iptables-nft-save`")
        rules.notes = [n for n in rules.notes if not n.startswith("iptables-legacy tables are also present")]
        rules.notes.append(note)
    rules.notes.extend(proxy_mode.closing_notes())
    return rules

"""Node dataplane: parsers of iptables-save, ipvsadm, nft and conntrack output into one model.

The kube-proxy replacements (Cilium, Calico eBPF, kube-router) are modes too: `replacement.py` maps each to
its agent output and parser; a node with their output is read through them first (kube-proxy is absent there)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcctl.errors import InputError

if TYPE_CHECKING:
    from svcctl.dataplane.model import NodeRules
    from svcctl.sources.base import NodeDumps

__all__ = ["detect_mode", "load_node_rules", "modes_present"]


def modes_present(dumps: NodeDumps) -> list[str]:
    """Every kube-proxy mode whose service rules are in the dumps, in the order `detect_mode` prefers them."""
    ipt = (dumps.get("iptables") or "") + (dumps.get("ip6tables") or "")
    ipvs = dumps.get("ipvs") or ""
    nft = dumps.get("nftables") or ""
    from svcctl.dataplane.replacement import replacement_modes_present

    out: list[str] = replacement_modes_present(dumps.texts)
    from svcctl.dataplane.modes import ipvs_chains

    # IPVS mode's iptables rules match the KUBE-CLUSTER-IP ipset (once it has members) and always have its
    # own chains (KUBE-IPVS-FILTER, KUBE-NODE-PORT, …), even with no virtual server
    ipvs_glue = "KUBE-CLUSTER-IP" in ipt or bool(ipvs_chains(ipt))
    if not ipvs_glue and ("KUBE-SVC-" in ipt or "cluster IP" in ipt or "has no endpoints" in ipt):
        out.append("iptables")
    if "kube-router" not in out and (
            ipvs_glue or (ipvs.strip() and ("->" in ipvs or "-A -" in ipvs or "-a -" in ipvs))):
        out.append("ipvs")
    if "kube-proxy" in nft or "service-ips" in nft:
        out.append("nftables")
    return out


def detect_mode(dumps: NodeDumps) -> str:
    """iptables | ipvs | nftables | cilium | calico-ebpf | kube-router, from what the node's dumps contain
    (kube-proxy's own chains/tables, the replacement agents' listings).

    A node runs one mode; when dumps of several are given (the demo ships all three) iptables is preferred,
    then IPVS, and `load_node_rules` says so."""
    present = modes_present(dumps)
    if present:
        return present[0]
    for key, mode in (("nftables", "nftables"), ("ipvs", "ipvs"), ("iptables", "iptables"),
                      ("ip6tables", "iptables")):
        if (dumps.get(key) or "").strip():
            return mode
    given = [dumps.origins.get(k, k) for k in ("iptables", "ip6tables", "ipvs", "nftables", "cilium", "calico-nat")
             if k in dumps.texts]
    if given:
        raise InputError("empty: no rules in this dump", source=", ".join(given),
                         hint="give the output of iptables-save, ipvsadm -Ln or nft list table ip kube-proxy")
    raise InputError("no node rules to read", hint="give --iptables-save, --ipvsadm or --nft FILE, --netns NAME "
                     "or --local-node")


def load_node_rules(dumps: NodeDumps, mode: str | None = None, only: set[str] | None = None) -> NodeRules:
    """Parse whichever dumps `mode` needs (detected when None) into one NodeRules.

    `only`: service names / addresses to restrict the parse to (fast path for one Service, in every mode).
    Dumps already cut to that Service while streaming their file (`dumps.streamed`) are parsed the same way;
    when a cut one does not parse, the whole dump is read and parsed instead, so an error cites its real line."""
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
    """The dump keys a mode's rules are read from."""
    return {"iptables": ("iptables", "ip6tables"), "ipvs": ("ipvs",), "nftables": ("nftables",)}.get(mode, ())


def _load_node_rules(dumps: NodeDumps, mode: str | None = None, only: set[str] | None = None) -> NodeRules:
    from svcctl.dataplane.model import NodeRules

    others: list[str] = []
    if mode is None and getattr(dumps, "mode", None):
        mode = dumps.mode  # read through a dataplane agent's Pod: that agent's mode
    if mode is None:
        mode = detect_mode(dumps)
        others = [m for m in modes_present(dumps) if m != mode]
    from svcctl.dataplane.model import REPLACEMENT_MODES

    if mode in REPLACEMENT_MODES:
        from svcctl.dataplane.replacement import load_replacement

        rules = load_replacement(dumps.texts, dumps.origins, mode, only)
    elif mode == "iptables":
        from svcctl.dataplane.iptables import parse_iptables_save

        parts = []
        for key in ("iptables", "ip6tables"):
            text = dumps.get(key)
            if text is not None and text.strip():
                part = parse_iptables_save(text, dumps.origins.get(key, key), only=only)
                if key == "ip6tables":
                    part.tables = {"ipv6:" + t.split(":", 1)[1] for t in part.tables}
                parts.append(part)
        if not parts:
            raise InputError("iptables mode needs `iptables-save` output", hint="give --iptables-save FILE")
        _name_what_was_found(parts, [dumps.get(k) or "" for k in ("iptables", "ip6tables")])
        rules = parts[0]
        for extra in parts[1:]:
            rules.services.extend(extra.services)
            rules.stats.rules += extra.stats.rules
            rules.stats.chains += extra.stats.chains
            for k, v in extra.stats.per_service.items():
                rules.stats.per_service[k] = rules.stats.per_service.get(k, 0) + v
            rules.unreferenced_chains.extend(extra.unreferenced_chains)
            rules.tables |= extra.tables
            rules.notes.extend(n for n in extra.notes if n not in rules.notes)
            rules.source = f"{rules.source}, {extra.source}"
    elif mode == "ipvs":
        from svcctl.dataplane import ipvs  # type: ignore[attr-defined,unused-ignore]

        text = dumps.get("ipvs")
        if not text:
            from svcctl.dataplane.modes import ipvs_chains

            found = ipvs_chains((dumps.get("iptables") or "") + (dumps.get("ip6tables") or ""))
            if found:
                raise InputError(f"the iptables rules are kube-proxy's IPVS mode ({', '.join(found)}): the Services "
                                 "are in IPVS's table, not in iptables", source=dumps.origins.get("iptables"),
                                 hint="give `ipvsadm -Ln` output too (--ipvsadm FILE)")
            raise InputError("IPVS mode needs `ipvsadm -Ln` output", hint="give --ipvsadm FILE")
        # the glue (kube-ipvs0 addresses, KUBE-CLUSTER-IP ipset, iptables rules) when the node gave it
        rules = ipvs.parse_ipvsadm(text, dumps.origins.get("ipvs", "ipvsadm"), only=only,
                                   ipset_text=dumps.get("ipset"), ip_addr_text=dumps.get("kube-ipvs0"),
                                   iptables_text=dumps.get("iptables"))
        missing = [what for key, what in (("kube-ipvs0", "VIP binding (no `ip addr show kube-ipvs0`)"),
                                          ("ipset", "KUBE-CLUSTER-IP ipset membership (no `ipset list`)"))
                   if dumps.get(key) is None]
        if missing:
            rules.notes.append("skipped: " + " and ".join(missing) + " checks: the node input lacks them")
        if not rules.services and not only:
            from svcctl.dataplane.modes import ipvs_chains

            found = ipvs_chains(dumps.get("iptables") or "")
            if found:
                rules.notes = [n for n in rules.notes if not n.startswith("IPVS has no virtual servers")]
                rules.notes.insert(0, f"IPVS mode (kube-proxy's {', '.join(found)} chains are in iptables) with no "
                                   "virtual servers: kube-proxy has programmed no Service on this node (not synced "
                                   "yet, or its IPVS state was flushed)")
    elif mode == "nftables":
        from svcctl.dataplane import nftables  # type: ignore[attr-defined,unused-ignore]

        text = dumps.get("nftables")
        if not text:
            raise InputError("nftables mode needs `nft list table ip kube-proxy` output", hint="give --nft FILE")
        rules = nftables.parse_nft(text, dumps.origins.get("nftables", "nft"), only=only)
        # kube-proxy's nftables mode writes one table per family, holding both NAT and filtering
        fams = [f for f, head in (("ipv4", "table ip kube-proxy"), ("ipv6", "table ip6 kube-proxy")) if head in text]
        rules.tables = {f"{f}:{t}" for f in fams for t in ("nat", "filter")}
    else:
        raise InputError(f"unknown kube-proxy mode {mode!r}",
                         hint="one of iptables, ipvs, nftables, cilium, calico-ebpf, kube-router")
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
    if mode == "cilium":
        from svcctl.dataplane.cilium import SOCKET_LB_NOTE

        rules.notes.append(SOCKET_LB_NOTE)
    return rules


def legacy_and_nft_of(dumps: NodeDumps) -> bool:
    from svcctl.dataplane.modes import legacy_and_nft

    return any(legacy_and_nft(dumps.get(k) or "") for k in ("iptables", "ip6tables"))


def _name_what_was_found(parts: list[NodeRules], texts: list[str]) -> None:
    """Notes that name what an iptables dump is when it is not a current kube-proxy's iptables mode: no
    kube-proxy chains at all (not running, or replaced), or an older kube-proxy's layout."""
    from svcctl.dataplane.modes import kube_proxy_absent, old_layout

    given = [t for t in texts if t.strip()]
    for part, text in zip(parts, given, strict=False):
        absent = kube_proxy_absent(text)
        if absent and not part.services:
            part.proxy_absent = absent
            part.notes = [absent, *(n for n in part.notes if not n.startswith("no KUBE-SERVICES chain"))]
        old = old_layout(text)
        if old:
            part.notes.append(old)
    if len(parts) > 1 and any(p.proxy_absent for p in parts) and not all(p.proxy_absent for p in parts):
        for p in parts:
            p.proxy_absent = ""

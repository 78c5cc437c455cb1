"""The proxy-mode registry: every dataplane svcctl reads (kube-proxy's iptables, IPVS and nftables modes, and the
replacements Cilium, Calico eBPF and kube-router) is one module here implementing `ProxyMode`.

Everything that differs by mode comes from here: the `--mode` choices, the node-dump keys and snapshot file
names, the read-only commands svcctl may run on a node, detection, parsing (whole or scoped to a `Scope`), and
the mode's words (what it is, how it picks backends). Adding a mode is one new module and one line in `_MODULES`
(see "How to add a mode" in the README).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from svcctl.dataplane.model import Scope
from svcctl.dataplane.modes.base import Dump, ProxyMode
from svcctl.errors import InputError

# detection order: a node runs one dataplane; when dumps of several are given the first present wins
_MODULES = ("cilium", "calico_ebpf", "kube_router", "iptables", "ipvs", "nftables")

# dumps every mode may use, owned by none (the connection table)
SHARED_DUMPS: tuple[Dump, ...] = (
    Dump("conntrack", "conntrack.txt", ("conntrack", "-L"), "`conntrack -L`: live flows and their backends"),
    Dump("addresses", None, ("ip", "-o", "addr", "show"), "the node's own addresses (a NodePort answers on each)"),
)

_REGISTRY: dict[str, ProxyMode] = {}


def _load() -> dict[str, ProxyMode]:
    if not _REGISTRY:
        for name in _MODULES:
            mode: ProxyMode = importlib.import_module(f"svcctl.dataplane.modes.{name}").MODE
            _REGISTRY[mode.name] = mode
    return _REGISTRY


def register(mode: ProxyMode, *, first: bool = False) -> None:
    """Add a mode at run time (a plugin, a test's fake mode); `first` puts it ahead in detection order."""
    reg = _load()
    if first:
        rest = dict(reg)
        reg.clear()
        reg[mode.name] = mode
        reg.update((k, v) for k, v in rest.items() if k != mode.name)
    else:
        reg[mode.name] = mode


def unregister(name: str) -> None:
    _load().pop(name, None)


def modes() -> list[ProxyMode]:
    """Every registered mode, in detection order."""
    return list(_load().values())


def names() -> list[str]:
    return list(_load())


def get(name: str) -> ProxyMode:
    try:
        return _load()[name]
    except KeyError:
        raise InputError(f"unknown dataplane mode {name!r}", hint="one of " + ", ".join(names())) from None


def find(name: str | None) -> ProxyMode | None:
    return _load().get(name) if name else None


def is_replacement(name: str | None) -> bool:
    """Whether `name` is a dataplane that replaces kube-proxy (its own drift and policy rules)."""
    mode = find(name)
    return mode is not None and mode.replacement


def all_dumps() -> list[Dump]:
    """Every dump any mode reads, then the shared ones; a key appears once (the first mode that names it)."""
    seen: dict[str, Dump] = {}
    for mode in modes():
        for d in mode.dumps:
            seen.setdefault(d.key, d)
    for d in SHARED_DUMPS:
        seen.setdefault(d.key, d)
    return list(seen.values())


def dump_files() -> dict[str, str]:
    """NodeDumps key -> file name in a snapshot's nodes/<node>/ directory (and in `collect` bundles)."""
    return {d.key: d.file for d in all_dumps() if d.file}


def allowed_commands() -> dict[str, tuple[str, ...]]:
    """Key -> argv: the only commands svcctl ever runs on a node (its dumps' commands, then the agents'), all
    read-only."""
    out = {d.key: d.command for d in all_dumps() if d.command}
    for k, v in agent_commands().items():
        out.setdefault(k, v)
    return out


def agent_commands() -> dict[str, tuple[str, ...]]:
    """Key -> argv run in a replacing agent's Pod (Cilium, calico-node, kube-router)."""
    out: dict[str, tuple[str, ...]] = {}
    for m in modes():
        for k, v in m.agent_commands.items():
            out.setdefault(k, v)
    return out


def present(texts: Mapping[str, str]) -> list[str]:
    """Every mode whose service rules are in the dumps, in detection order."""
    return [m.name for m in modes() if m.present(texts)]


def mode_from_iptables(ipt: str) -> str:
    """The mode judged from `iptables-save` alone, read first on a live node so that the other commands (which
    could load kernel modules elsewhere) only run where that mode runs; the fallback mode when none claims it."""
    for m in modes():
        if m.claims_iptables(ipt):
            return m.name
    return next(m.name for m in modes() if m.probe_fallback)


__all__ = ["Dump", "ProxyMode", "SHARED_DUMPS", "Scope", "all_dumps", "allowed_commands", "dump_files", "find",
           "get", "is_replacement", "mode_from_iptables", "modes", "names", "present", "register", "unregister"]

"""The interface every dataplane mode implements, and the typed scope of a one-Service parse."""

from __future__ import annotations

from collections.abc import Mapping

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.dataplane.model import Scope as Scope  # re-exported: the interface names it
from svcctl.errors import InputError
from svcctl.lazydc import dataclass


@dataclass(frozen=True)
class Dump:
    """One node command's output a mode reads: its NodeDumps key, its file in a snapshot's nodes/<node>/
    directory (None: never stored), the read-only argv svcctl may run for it (None: svcctl never runs it, the
    user gives the file), and what it is, in words."""

    key: str
    file: str | None
    command: tuple[str, ...] | None
    what: str


class ProxyMode:
    """One dataplane. Subclasses set the class attributes and implement `present` and `parse`."""

    name: str = ""
    description: str = ""  # what it is, in a few words ("kube-proxy's iptables mode")
    replacement: bool = False  # replaces kube-proxy: its agent's maps, its own drift and traffic-policy rules
    dumps: tuple[Dump, ...] = ()  # the first is the rules themselves
    read_keys: tuple[str, ...] = ()  # what to read from a node for this mode, first required (default: dumps)
    picks: str = ""  # how it picks a backend: the sentence under `svcctl rules`
    # read-only commands run in the mode's agent Pod where kube-proxy is absent (key -> argv; the agent's reads)
    agent_commands: dict[str, tuple[str, ...]] = {}  # a class-level constant, never mutated
    probe_fallback: bool = False  # the mode a node is in when iptables-save claims no mode (one mode sets it)
    fallback_rank: int | None = None  # with no mode present, a non-empty rules dump decides (lowest rank first)

    @property
    def rules_key(self) -> str:
        return self.dumps[0].key

    @property
    def rules_keys(self) -> tuple[str, ...]:
        """The dump keys its rules are read from (the first, and any more families)."""
        return (self.rules_key,)

    @property
    def node_keys(self) -> tuple[str, ...]:
        return self.read_keys or tuple(d.key for d in self.dumps)

    def present(self, texts: Mapping[str, str]) -> bool:
        """Whether this mode's service rules are in the dumps."""
        raise NotImplementedError

    def claims_iptables(self, ipt: str) -> bool:
        """Whether `iptables-save` alone shows this mode runs (decides what else to read on a live node)."""
        return False

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        """The dumps as NodeRules; `scope` restricts it to one Service's names and addresses."""
        raise NotImplementedError

    def has_text(self, texts: Mapping[str, str]) -> bool:
        """Whether its rules dump is non-empty (decides the mode when no mode's rules are recognised)."""
        text = texts.get(self.rules_key)
        return not (text or " ").isspace()  # not `.strip()`: that copies a whole dump

    def require(self, dumps: NodeDumps, message: str, hint: str) -> tuple[str, str]:
        """The rules dump's text and origin; an input error when it is absent."""
        key = self.rules_key
        text = dumps.get(key)
        if not text:
            raise InputError(message, hint=hint)
        return text, dumps.origins.get(key, key)

    def closing_notes(self) -> list[str]:
        """Notes every answer in this mode ends with (after the parse's own)."""
        return []

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        """Sentences for the trace's node-rules hop: how this mode picks the backend of `entry`."""
        return []

    def summary(self, rules: NodeRules) -> str:
        """The first summary line under `svcctl rules`."""
        st = rules.stats
        if self.replacement:
            return (f"{rules.mode} dataplane (no kube-proxy){f' ({rules.backend})' if rules.backend else ''}, "
                    f"from {rules.source}: {st.extra.get('frontends', len(rules.services))} frontends, "
                    f"{st.extra.get('backends', 0)} backend entries")
        return (f"{rules.mode} mode{f' ({rules.backend})' if rules.backend else ''}, from {rules.source}: "
                f"{st.rules} rules in {st.chains} chains")


def keys_of(scope: Scope | None) -> set[str] | None:
    return None if scope is None else scope.keys

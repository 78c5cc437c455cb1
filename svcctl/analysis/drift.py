"""What kube-proxy's rules and a replacement's service map have in common when judged against the API: one
entry's drift lines and findings, each reported once per Service, and the ready endpoints an entry lacks."""

from __future__ import annotations

from collections.abc import Callable

from svcctl.analysis.topology import NodeEndpoint
from svcctl.findings import Severity
from svcctl.lazydc import dataclass, field
from svcctl.model import Finding


@dataclass(frozen=True)
class Unprogrammed:
    """How one dataplane says that a usable endpoint is missing from an entry."""

    state: Callable[[NodeEndpoint], str]  # the endpoint's state in the API, in words ("ready")
    rules: str  # where it is missing, in the line: "the rules", "Cilium's map"
    holder: str  # and in the finding: "node w1's rules", "node w1's cilium service map"
    lists: str  # the evidence's words before the backends the entry has: "iptables rules list"
    hint: str
    empty: str  # the line's opening when the entry has no backend at all: "the node rejects"
    empty_suffix: str  # the finding's words then: "(the frontend has no backends)"
    empty_evidence: str
    empty_hint: str


@dataclass
class EntryDrift:
    """One entry's drift: lines for the trace and findings. A finding already reported (the same code about the
    same backend, through another entry of the Service) is not reported again."""

    reported: set[tuple[str, str]]
    lines: list[str] = field(default_factory=list)
    found: list[Finding] = field(default_factory=list)

    def add(self, code: str, key: str, f: Finding) -> None:
        if (code, key) not in self.reported:
            self.reported.add((code, key))
            self.found.append(f)

    def unprogrammed(self, label: str, want: list[NodeEndpoint], have: set[tuple[str, int]], no_endpoints: bool,
                     words: Unprogrammed) -> None:
        """EndpointNotProgrammed for each endpoint the dataplane should use and the entry lacks (or, when the
        entry has no backend at all, for every one of them)."""
        if not no_endpoints:
            listed = ", ".join(sorted(f"{i}:{p}" for i, p in have)) or "no backend"
            for w in want:
                if w.key not in have:
                    self.lines.append(f"missing: {w.ip}:{w.port} ({w.pod or 'no Pod'}) is {words.state(w)} but not "
                                      f"in {words.rules}")
                    self._missing(label, w, words.holder, f"EndpointSlice says {words.state(w)}; {words.lists} "
                                  f"{listed}", words.hint)
        elif want:
            self.lines.append(f"{words.empty} {label} but the API has {len(want)} usable endpoint(s)")
            for w in want:
                self._missing(label, w, f"{words.holder} {words.empty_suffix}", words.empty_evidence,
                              words.empty_hint)

    def _missing(self, label: str, w: NodeEndpoint, holder: str, evidence: str, hint: str) -> None:
        self.add("EndpointNotProgrammed", f"{w.ip}:{w.port}", Finding(
            "EndpointNotProgrammed", Severity.ERROR, f"{label}: ready endpoint {w.ip}:{w.port} is not in {holder}",
            pod=w.pod, evidence=evidence, hint=hint))

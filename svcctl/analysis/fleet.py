"""Per node, where kube-proxy's rules and the API disagree about some Services: the fleet view of drift.

A node that could not be read is a warning (`NodeUnreadable`), not a failure: the report still says what every
other node does. Drift itself is judged by `svcctl.analysis.trace.drift_findings`, the same rules `trace` and
`check` apply to one node.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from svcctl.errors import ExitStatus
from svcctl.findings import Severity, Verdict, verdict_of
from svcctl.lazydc import dataclass, field
from svcctl.model import Finding

if TYPE_CHECKING:
    from svcctl.dataplane.model import NodeRules
    from svcctl.model import EndpointSlice, Service


@dataclass
class NodeResult:
    name: str
    mode: str | None = None
    readable: bool = True
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    entries: int = 0  # service entries read for the Services asked about

    @property
    def drifted(self) -> bool:
        return any(f.severity == Severity.ERROR for f in self.findings)

    @property
    def verdict(self) -> str:
        if not self.readable:
            return "unreadable"
        return "drift" if self.drifted else ("warning" if self.findings else "ok")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "readable": self.readable, "error": self.error,
                "findings": [f.to_json() for f in self.findings], "seconds": round(self.seconds, 3)}


def unreadable_node(node: str, error: str, seconds: float) -> NodeResult:
    return NodeResult(node, None, False, error, [Finding(
        "NodeUnreadable", Severity.WARNING, f"node {node}: its kube-proxy rules could not be read: {error}",
        evidence=error, hint="check the node and its kube-proxy Pod (`kubectl -n kube-system get pods -o wide`); "
                             "raise --request-timeout for slow nodes",
    )], seconds)


def judge_node(node: str, rules: NodeRules, services: list[tuple[Service, list[EndpointSlice]]],
               seconds: float, zone: str = "") -> NodeResult:
    """Drift findings of every Service on this node's rules."""
    from svcctl.analysis.trace import drift_findings

    findings: list[Finding] = []
    for svc, slices in services:
        findings += drift_findings(svc, slices, rules, node, zone)  # zone: the node's, for topology hints
    return NodeResult(node, rules.mode, True, None, findings, seconds, len(rules.services))


@dataclass
class FleetReport:
    services: list[str]  # "ns/name" judged on every node
    nodes: list[NodeResult]
    parallel: int = 1
    seconds: float = 0.0

    @property
    def summary(self) -> dict[str, Any]:
        codes = Counter(f.code for n in self.nodes for f in n.findings if f.code != "NodeUnreadable")
        return {
            "nodes": len(self.nodes),
            "readable": sum(1 for n in self.nodes if n.readable),
            "unreadable": sum(1 for n in self.nodes if not n.readable),
            "drifted": sum(1 for n in self.nodes if n.drifted),
            "clean": sum(1 for n in self.nodes if n.readable and not n.findings),
            "findings": dict(sorted(codes.items())),
            "modes": dict(sorted(Counter(n.mode for n in self.nodes if n.mode).items())),
            "parallel": self.parallel,
            "seconds": round(self.seconds, 3),
        }

    @property
    def findings(self) -> list[Finding]:
        return [f for n in self.nodes for f in n.findings]

    @property
    def verdict(self) -> Verdict:
        """Broken when any node drifts (an error finding); an unreadable node alone is a warning."""
        return verdict_of(f.severity for f in self.findings)

    def exit_status(self) -> ExitStatus:
        """1 when any node drifts from the API; unreadable nodes alone are warnings (0)."""
        return ExitStatus.PROBLEMS if any(n.drifted for n in self.nodes) else ExitStatus.OK

    def to_json(self) -> dict[str, Any]:
        from svcctl import API_VERSION

        return {"apiVersion": API_VERSION, "kind": "FleetReport", "services": self.services,
                "nodes": [n.to_json() for n in self.nodes], "summary": self.summary}

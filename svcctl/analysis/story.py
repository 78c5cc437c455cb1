"""The first screen's sentence: what happens to a request, in words, from a trace's hops and findings.

"2 of 3 Pods serve; the other 1 fails its readiness probe: HTTP 503". Pure: it reads a Trace and composes one
sentence; the renderers print it under the verdict, and JSON carries it as `summary`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from svcctl.findings import Severity
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern
from svcctl.model import Finding

if TYPE_CHECKING:
    from svcctl.model import Service


class Told(Protocol):
    """What the one-sentence story reads of a trace (`svcctl.analysis.trace.Trace` has it)."""

    @property
    def all_findings(self) -> list[Finding]: ...

    @property
    def endpoint_counts(self) -> dict[str, int | None] | None: ...

    @property
    def service(self) -> Service | None: ...

# a Pod-level reason, as the words after "the other N …"
_POD_WORDS = {
    "ReadinessProbeFailing": "fail{s} {its} readiness probe",
    "ContainerNotRunning": "{are} not running",
    "NotReady": "{are} not Ready",
    "NodeNotReady": "{are} on a Node that is not Ready",
    "ReadinessGatePending": "wait{s} for a readiness gate",
    "Unschedulable": "cannot be scheduled",
    "NoPodIP": "{have} no Pod IP yet",
    "NodeMissing": "{are} on a Node the API does not know",
    "PodCompleted": "{have} finished",
    "Terminating": "{are} terminating",
    "PortNotFound": "lack{s} the named target port",
    "IPFamilyMismatch": "{have} no IP of the Service's family",
    "MissingFromSlices": "{are} ready but in no EndpointSlice",
    "SliceOutOfDate": "{are} out of date in the EndpointSlices",
    "StaleBackend": "{are} still in the node's rules though gone from the API",
    "EndpointNotProgrammed": "{are} ready but not in the node's rules",
}
_COUNT = LazyPattern(r"\s*\(\d+x\)")


@dataclass
class Group:
    """Findings that say the same thing about several Pods: one block listing the Pods."""

    code: str
    severity: str
    message: str
    pods: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def first(self) -> Finding:
        return self.findings[0]


def group_findings(findings: Iterable[Finding]) -> list[Group]:
    """Identical findings (same code, severity and message but for counts like `(87x)`) of different Pods, once."""
    out: dict[tuple[str, str, str], Group] = {}
    for f in findings:
        msg = _COUNT.sub("", f.message)
        key = (f.code, str(f.severity), msg)
        g = out.get(key)
        if g is None:
            g = out[key] = Group(f.code, str(f.severity), msg)
        if f.pod and f.pod not in g.pods:
            g.pods.append(f.pod)
        g.findings.append(f)
    return list(out.values())


def _words(code: str, n: int) -> str:
    tmpl = _POD_WORDS.get(code, "{are} not serving")
    one = n == 1
    return tmpl.format(s="s" if one else "", its="its" if one else "their", are="is" if one else "are",
                       have="has" if one else "have")


def _detail(f: Finding) -> str:
    """The telling part of a finding's message: `HTTP 503` from a probe failure, the reason of a container."""
    m = re.search(r"statuscode: (\d{3})", f.message)
    if m:
        return f"HTTP {m.group(1)}"
    if f.code == "ContainerNotRunning":
        return f.message.rsplit(": ", 1)[-1]
    if f.code == "ReadinessProbeFailing":
        return _COUNT.sub("", f.message.split(": ", 1)[-1]).removeprefix("Readiness probe failed: ")
    return ""


def sentence(trace: Told) -> str:
    """One sentence for the top of the screen."""
    findings: list[Finding] = list(trace.all_findings)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    counts = trace.endpoint_counts or {}
    ready, expected = counts.get("ready"), counts.get("expected")
    service = trace.service
    pod_errors = [f for f in errors if f.pod]
    node_errors = [f for f in errors if not f.pod and f.code in ("ServiceNotProgrammed", "NoEndpointsReject",
                                                                   "NoLocalEndpoints")]
    if node_errors:
        f = node_errors[0]
        return f.message.split(": ", 1)[-1] if ": " in f.message else f.message
    if service is not None and isinstance(ready, int) and isinstance(expected, int) and expected:
        head = (f"{ready} of {expected} Pod{'s' if expected != 1 else ''} serve{'s' if ready == 1 else ''}"
                if ready < expected else f"all {expected} Pods serve" if expected > 1 else "its one Pod serves")
        if ready == 0 and expected:
            head = f"none of the {expected} Pods serves" if expected > 1 else "its one Pod does not serve"
        if pod_errors and ready < expected:
            g = group_findings(pod_errors)[0]
            n = len(g.pods) or 1
            others = expected - ready
            if ready == 0:
                who = "all of them" if n >= expected else f"{n} of them"
            elif n >= others:
                who = "the other one" if others == 1 else f"the other {others}"
                n = others
            else:
                who = f"{n} of the other {others}"
            detail = _detail(g.first)
            return f"{head}; {who} {_words(g.code, n)}" + (f": {detail}" if detail else "")
        if errors:
            return f"{head}; {errors[0].message}"
        return head
    if errors:
        return errors[0].message
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    if warnings:
        return warnings[0].message
    return "every hop checked is fine"

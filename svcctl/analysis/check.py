"""`svcctl check`: every check's findings for each Service folded into one verdict, pure.

The checks themselves live elsewhere (endpoints, DNS, node-rule drift); this module only aggregates their
reports, so it works over anything with `.findings` and `.to_json()` (the `Checked` protocol) and tests can
feed it hand-made reports. A Service is broken when any finding is an error, has warnings when any is a
warning, and is healthy otherwise (info findings never count against it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from svcctl.durations import parse_duration as parse_duration  # re-exported: `check --wait` reads it here
from svcctl.findings import FAIL_ON_CHOICES, FailOn, Severity, Verdict, verdict_of
from svcctl.lazydc import dataclass, field
from svcctl.model import JSON, Finding

# the words `check` prints for a Service's verdict (Verdict.status)
HEALTHY, WARNING, BROKEN = Verdict.OK.status, Verdict.WARNING.status, Verdict.BROKEN.status
STATUSES = (HEALTHY, WARNING, BROKEN)
FAIL_ON = FAIL_ON_CHOICES
CHECKS = ("endpoints", "dns", "drift", "policy")


class Checked(Protocol):
    """What every check's report offers: its findings and its own JSON document."""

    @property
    def findings(self) -> list[Finding]: ...

    def to_json(self) -> JSON: ...


@dataclass
class CheckFinding:
    """A finding with the check that produced it (and the node, for drift)."""

    check: str  # endpoints | dns | drift | policy | check
    finding: Finding
    node: str | None = None

    @property
    def severity(self) -> Severity:
        return self.finding.severity

    def to_json(self) -> JSON:
        out: JSON = {"check": self.check, **self.finding.to_json()}
        if self.node is not None:
            out["node"] = self.node
        return out


@dataclass
class DriftResult:
    """One node's view of a Service compared with the API."""

    node: str | None
    mode: str
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> JSON:
        return {"node": self.node, "mode": self.mode, "findings": [f.to_json() for f in self.findings]}


@dataclass
class ServiceCheck:
    """Everything `check` learnt about one Service."""

    namespace: str
    name: str
    endpoints: Checked | None = None  # EndpointsReport
    dns: Checked | None = None  # DNSReport
    drift: list[DriftResult] = field(default_factory=list)
    policy: Checked | None = None  # PolicyReport: which namespaces' Pods can reach it
    extra: list[Finding] = field(default_factory=list)  # from check itself (ServiceNotFound)
    skipped: list[str] = field(default_factory=list)  # checks not run, and why
    counts: dict[str, int | None] | None = None  # the endpoints report's ready / notReady / expected (None: unseen)
    seconds: float = 0.0  # how long its checks took (JUnit time)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def findings(self) -> list[CheckFinding]:
        out = [CheckFinding("check", f) for f in self.extra]
        if self.endpoints is not None:
            out += [CheckFinding("endpoints", f) for f in self.endpoints.findings]
        if self.dns is not None:
            out += [CheckFinding("dns", f) for f in self.dns.findings]
        for d in self.drift:
            out += [CheckFinding("drift", f, d.node) for f in d.findings]
        if self.policy is not None:
            out += [CheckFinding("policy", f) for f in self.policy.findings]
        return sorted(out, key=lambda c: c.severity.rank)  # stable: check order kept within a severity

    @property
    def verdict(self) -> Verdict:
        return verdict_of(c.severity for c in self.findings)

    @property
    def status(self) -> str:
        """healthy | warning | broken: the verdict in check's words."""
        return self.verdict.status

    def severity_counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for c in self.findings:
            out[c.severity.value] += 1
        return out

    def failing(self, fail_on: FailOn | str) -> bool:
        return FailOn(fail_on).fails(self.verdict)

    def to_json(self) -> JSON:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "status": self.status,
            "counts": self.counts,
            "severities": self.severity_counts(),
            "findings": [c.to_json() for c in self.findings],
            "endpoints": self.endpoints.to_json() if self.endpoints is not None else None,
            "dns": self.dns.to_json() if self.dns is not None else None,
            "drift": [d.to_json() for d in self.drift],
            "policy": self.policy.to_json() if self.policy is not None else None,
            "skippedChecks": self.skipped,
        }


_BY_STATUS = {v.status: v for v in (Verdict.BROKEN, Verdict.WARNING, Verdict.OK)}


def failing_status(status: str, fail_on: FailOn | str) -> bool:
    """Whether a Service in `status` (healthy/warning/broken) fails the run under `--fail-on`."""
    return FailOn(fail_on).fails(_BY_STATUS[status])


def settled_status(status: str, fail_on: FailOn | str) -> bool:
    """Whether `--wait` may stop for this Service: nothing at the fail-on level (errors for `never`)."""
    f = FailOn(fail_on)
    return not failing_status(status, FailOn.ERROR if f is FailOn.NEVER else f)


@dataclass
class CheckReport:
    services: list[ServiceCheck] = field(default_factory=list)
    fail_on: str = "error"
    source: str = ""  # "snapshot demo", "context kind"
    checks: dict[str, Any] = field(default_factory=dict)  # which checks ran: {"dns": False, "drift": ["node"]}
    attempts: int = 1
    waited_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    spool: Any = field(default=None, repr=False, compare=False)  # render/check_stream.ReportSpool, when spooled

    def count(self, status: str) -> int:
        return sum(1 for s in self.services if s.status == status)

    @property
    def failed(self) -> bool:
        return any(s.failing(self.fail_on) for s in self.services)

    @property
    def settled(self) -> bool:
        return all(settled_status(s.status, self.fail_on) for s in self.services)

    def summary(self) -> JSON:
        sev = {s.value: 0 for s in Severity}
        for s in self.services:
            for k, v in s.severity_counts().items():
                sev[k] = sev.get(k, 0) + v
        out: JSON = {
            "services": len(self.services),
            "healthy": self.count(HEALTHY),
            "warning": self.count(WARNING),
            "broken": self.count(BROKEN),
            "findings": sev,
            "failOn": self.fail_on,
            "passed": not self.failed,
            "source": self.source,
            "checks": self.checks,
            "attempts": self.attempts,
        }
        if self.waited_seconds is not None:
            out["waitedSeconds"] = round(self.waited_seconds, 1)
        return out

    def headline(self, shown: int = 3) -> str:
        """The first line: pass or fail, and which Services decide it (by their first finding's code), so the
        answer is on the first screen however many Services follow."""
        verdict = "FAILED" if self.failed else "passed"
        n = len(self.services)
        worst = [s for s in self.services if s.status == BROKEN] or [s for s in self.services if s.status == WARNING]
        if not worst:
            return f"verdict: {verdict} — all {n} Service{'' if n == 1 else 's'} healthy"
        what = "broken" if worst[0].status == BROKEN else "with warnings"
        named = ", ".join(f"{s.key} ({s.findings[0].finding.code})" for s in worst[:shown])
        more = f" and {len(worst) - shown} more" if len(worst) > shown else ""
        return f"verdict: {verdict} — {len(worst)} of {n} Service{'' if n == 1 else 's'} {what}: {named}{more}"

    def summary_line(self) -> str:
        n = len(self.services)
        return (f"{n} Service{'' if n == 1 else 's'} checked: {self.count(HEALTHY)} healthy, "
                f"{self.count(WARNING)} with warnings, {self.count(BROKEN)} broken")

    def to_json(self, services: list[Any] | None = None) -> JSON:
        """The document; `services`: what stands in for the Services' list (a spooled report prints its own)."""
        return {"apiVersion": "svcctl/v1", "kind": "CheckReport", "summary": self.summary(),
                "services": [s.to_json() for s in self.services] if services is None else services,
                "notes": self.notes}


def sort_checks(checks: Iterable[ServiceCheck]) -> list[ServiceCheck]:
    return sorted(checks, key=lambda s: (s.namespace, s.name))


def format_duration(seconds: float) -> str:
    """`0.2s`, `45s`, `4m05s`: short, for progress lines."""
    if seconds < 10 and round(seconds, 1) != int(round(seconds, 1)):
        return f"{max(0.0, seconds):.1f}s"
    s = max(0, int(round(seconds)))
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"

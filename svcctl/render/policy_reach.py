"""The policy check's reach in `svcctl check`'s table: which namespaces' Pods can reach each Service. Shown
only when some Service's reach is restricted (a cluster where NetworkPolicy isolates nothing gets no column
of "all"s); the table gives counts, wide names the namespaces."""

from __future__ import annotations

from svcctl.analysis.check import ServiceCheck
from svcctl.analysis.policy import PolicyReport

ORDER = ("all", "some", "none")


def _report(s: ServiceCheck) -> PolicyReport | None:
    return s.policy if isinstance(s.policy, PolicyReport) else None


def shows_reach(services: list[ServiceCheck]) -> bool:
    return any(r is not None and any(v != "all" for v in r.reach.values()) for r in map(_report, services))


def reach_cell(s: ServiceCheck, wide: bool) -> str:
    """`all` / `none` / `2 all, 1 none` (namespaces whose Pods reach every / some / no endpoint); wide:
    `all: a,b; none: c`; `skipped` when the policies could not be read, `-` with nothing to reach."""
    r = _report(s)
    if r is None:
        return "-"
    if r.skipped:
        return "skipped"
    if not r.reach:
        return "-"
    groups = {k: sorted(ns for ns, v in r.reach.items() if v == k) for k in ORDER}
    if wide:
        return "; ".join(f"{k}: {','.join(groups[k])}" for k in ORDER if groups[k])
    used = [k for k in ORDER if groups[k]]
    if len(used) == 1:
        return f"{used[0]} ({len(groups[used[0]])} ns)"
    return ", ".join(f"{len(groups[k])} {k}" for k in used)

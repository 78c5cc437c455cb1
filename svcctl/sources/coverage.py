"""What an input holds, so that no finding rests on something it could not show.

A snapshot holds the kinds it was made of (a `kubectl cluster-info dump` tree never has EndpointSlices or
Endpoints; `kubectl get svc,endpointslices` has no Pods); a live source holds everything RBAC lets it read.
`unavailable` answers, for one resource, why it cannot be read (absent from the input, or refused), so the
checks that need it say "skipped: …" instead of reading an empty list as "there are none".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from svcctl.model import JSON

# resource (as RBAC and `skipped` name it) -> kind
RESOURCES = {
    "services": "Service", "endpointslices": "EndpointSlice", "endpoints": "Endpoints", "pods": "Pod",
    "nodes": "Node", "events": "Event",
}
KINDS = tuple(RESOURCES.values())
PLURAL = {"Service": "Services", "EndpointSlice": "EndpointSlices", "Endpoints": "v1 Endpoints", "Pod": "Pods",
          "Node": "Nodes", "Event": "Events"}
# why a kind is missing from a known layout, appended to the "skipped" sentence
LAYOUT_WHY = {
    ("cluster-info dump", "EndpointSlice"): "a `kubectl cluster-info dump` never has them",
    ("cluster-info dump", "Endpoints"): "a `kubectl cluster-info dump` never has them",
    ("cilium sysdump", "EndpointSlice"): "a `cilium sysdump` holds v1 Endpoints only",
}


@dataclass
class Coverage:
    """Which kinds a source holds; `layout` names a known input shape (cluster-info dump)."""

    source: str
    held: set[str] = field(default_factory=set)
    layout: str = ""
    refused: dict[str, str] = field(default_factory=dict)  # resource -> reason (RBAC)

    def absent_reason(self, kind: str) -> str | None:
        """Why `kind` is not in this input, or None when it is."""
        if kind in self.held:
            return None
        what = "the snapshot" if self.source.startswith("snapshot") else "the input"
        text = f"{what} has no {PLURAL.get(kind, kind)}"
        why = LAYOUT_WHY.get((self.layout, kind))
        return f"{text} ({why})" if why else text

    def to_json(self) -> JSON:
        return {"source": self.source, "layout": self.layout or None,
                "kinds": {k: k in self.held for k in KINDS},
                "refused": dict(self.refused)}


def unavailable(source: Any, resource: str) -> str | None:
    """Why `resource` cannot be read from `source` (absent from a snapshot, or refused by RBAC), else None.

    A refusal recorded once stays in force: every later Service's check is skipped too, not only the first."""
    kind = RESOURCES.get(resource)
    cov = getattr(source, "coverage", None)
    if kind is not None and isinstance(cov, Coverage):
        why = cov.absent_reason(kind)
        if why is not None:
            return why
    for s in getattr(source, "skipped", None) or []:
        if getattr(s, "resource", None) == resource:
            return f"cannot read {resource}: {getattr(s, 'reason', '')}".rstrip(": ")
    return None


def coverage_of(source: Any) -> Coverage:
    """The source's coverage; a live source holds every kind except those RBAC refused."""
    cov = getattr(source, "coverage", None)
    if isinstance(cov, Coverage):
        out = Coverage(cov.source, set(cov.held), cov.layout, dict(cov.refused))
    else:
        out = Coverage(getattr(source, "name", ""), set(KINDS))
    for s in getattr(source, "skipped", None) or []:
        res = getattr(s, "resource", "")
        out.refused[res] = getattr(s, "reason", "")
    return out


def summary_line(cov: Coverage) -> str | None:
    """One line for stderr when the input is partial: what it holds and what it lacks."""
    missing = [PLURAL[k] for k in KINDS if k not in cov.held]
    refused = [f"{r} (refused)" for r in cov.refused]
    if not missing and not refused:
        return None
    held = [PLURAL[k] for k in KINDS if k in cov.held]
    where = f"{cov.source} ({cov.layout})" if cov.layout else cov.source
    text = f"{where} holds {', '.join(held) or 'nothing the checks read'}"
    lacks = missing + refused
    return text + f"; lacks {', '.join(lacks)}: checks that need them are skipped"

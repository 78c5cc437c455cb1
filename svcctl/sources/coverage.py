"""What an input holds, so that no finding rests on something it could not show.

A snapshot holds the kinds it was made of (a `kubectl cluster-info dump` tree never has EndpointSlices or
Endpoints; `kubectl get svc,endpointslices` has no Pods); a live source holds everything RBAC lets it read.
`coverage_of` says what a source holds and what RBAC refused, so the checks that need an absent kind say
"skipped: …" instead of reading an empty list as "there are none".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from svcctl.jsonput import JSON
from svcctl.lazydc import dataclass, field

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


@runtime_checkable
class HasCoverage(Protocol):
    """A source that knows which kinds its input holds (a snapshot): absent kinds are skipped checks."""

    coverage: Coverage


class _Refusal(Protocol):
    @property
    def resource(self) -> str: ...

    @property
    def reason(self) -> str: ...


class _Named(Protocol):
    """What `coverage_of` needs of a source (every ClusterSource has it): its name and its refused reads."""

    @property
    def name(self) -> str: ...

    @property
    def skipped(self) -> Sequence[_Refusal]: ...


def coverage_of(source: _Named) -> Coverage:
    """The source's coverage; a live source holds every kind except those RBAC refused."""
    if isinstance(source, HasCoverage):
        cov = source.coverage
        out = Coverage(cov.source, set(cov.held), cov.layout, dict(cov.refused))
    else:
        out = Coverage(source.name, set(KINDS))
    for s in source.skipped:
        out.refused[s.resource] = s.reason
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

"""The one cluster-source interface; live API and snapshot both implement it.

Each method asks for only what one question needs (a Service by name, its slices by label, its Pods by
selector, the Nodes those Pods name), so the cost of answering about one Service does not grow with the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from svcctl.dataplane.dumps import NodeDumps as NodeDumps  # re-exported: the sources fill it
from svcctl.lazydc import dataclass
from svcctl.selectors import labels_match as labels_match  # re-exported (sources filter as the API does)
from svcctl.selectors import parse_selector as parse_selector
from svcctl.selectors import selector_string as selector_string
from svcctl.sources.coverage import HasCoverage as HasCoverage  # re-exported with the other capabilities

if TYPE_CHECKING:  # annotations only: a node-file read never builds the API model
    from svcctl.model import JSON, Endpoints, EndpointSlice, Event, Node, Pod, PodRef, Service



def node_dump_files() -> dict[str, str]:
    """key -> file name in a snapshot's nodes/<node>/ directory (the registry's live list). A function, not a
    module constant, so a live read that never touches a node does not load every mode to import this module."""
    from svcctl.dataplane.modes import dump_files

    return dump_files()


@dataclass
class Skipped:
    """A read the source could not make (RBAC 403 on one resource): the check that needed it is skipped."""

    resource: str
    reason: str


class ClusterSource(Protocol):
    """Read-only access to the objects svcctl needs; every call is one (paged) list or get."""

    name: str  # "snapshot <path>" / "context <name>"
    skipped: list[Skipped]

    def default_namespace(self) -> str: ...

    def get_service(self, namespace: str, name: str) -> Service:
        """Raises NotFoundError (with close names as the hint) when absent."""
        ...

    def list_services(self, namespace: str | None, label_selector: str | None = None,
                      limit: int | None = None) -> list[Service]:
        """`limit`: one bounded read of at most that many (no paging), for searches that must stay cheap."""
        ...

    def list_endpoint_slices(self, namespace: str, service_name: str) -> list[EndpointSlice]: ...

    def get_endpoints(self, namespace: str, name: str) -> Endpoints | None: ...

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        """One Pod by name; None when it does not exist."""
        ...

    def list_pods(self, namespace: str | None, label_selector: str | None = None,
                  limit: int | None = None) -> list[Pod]:
        """namespace None = all namespaces. label_selector in the API's syntax (`a=b,c`); `limit` as above."""
        ...

    def get_nodes(self, names: list[str]) -> dict[str, Node | None]:
        """None for a name the API does not know (the controller then skips the Pod)."""
        ...

    def list_nodes(self) -> list[Node]: ...

    def list_events(self, namespace: str, kind: str, names: list[str]) -> list[Event]:
        """Events whose involvedObject is one of `names` of `kind`, by field selector."""
        ...

    def node_dumps(self, node: str) -> NodeDumps | None:
        """Node command output recorded for `node` (snapshot), or fetched through kube-proxy (live)."""
        ...

    def namespaces(self) -> list[str]: ...

    def list_network_policies(self, namespace: str) -> list[JSON] | None:
        """The namespace's NetworkPolicies (API JSON, one list); None when they could not be read."""
        ...

    def get_namespace(self, name: str) -> JSON | None:
        """One Namespace object (for its labels); None when absent or not readable."""
        ...

    def list_admin_network_policies(self) -> tuple[list[JSON], list[JSON]] | None:
        """AdminNetworkPolicies and BaselineAdminNetworkPolicies (cluster-scoped); None when the cluster
        does not serve policy.networking.k8s.io or they could not be read."""
        ...


# ---------------------------------------------------------------- capabilities a source may have, declared
# (callers test them with isinstance, and mypy then knows the methods: no getattr probes)


@runtime_checkable
class RecordedDumps(Protocol):
    """A source that recorded node command output per node (a snapshot's nodes/<node>/ files)."""

    dumps: dict[str, NodeDumps]


@runtime_checkable
class KubeProxyExec(Protocol):
    """A source that can find a node's kube-proxy Pod and run an allow-listed read-only command in it."""

    def kube_proxy_pod_for_node(self, node: str) -> PodRef | None: ...

    def exec_in_pod(self, namespace: str, pod: str, container: str | None, argv: list[str]) -> str: ...


@runtime_checkable
class ExecStatus(Protocol):
    """A source whose exec also returns the command's exit status (a targeted read's "no such chain" is an
    answer, not a failure)."""

    def exec_status(self, namespace: str, pod: str, container: str | None, argv: list[str]) -> tuple[str, str, int]:
        ...


@runtime_checkable
class BulkSlices(Protocol):
    """A source that lists every EndpointSlice in one (paged) read."""

    def list_all_endpoint_slices(self, namespace: str | None) -> list[EndpointSlice]: ...


@runtime_checkable
class BulkReads(BulkSlices, Protocol):
    """A source that reads a whole namespace (or the cluster) in one paged list per kind (`collect -n` / -A)."""

    def list_all_endpoints(self, namespace: str | None) -> list[Endpoints]: ...

    def list_all_events(self, namespace: str | None) -> list[Event]: ...

    def list_all_network_policies(self, namespace: str | None) -> list[JSON] | None:
        """None when refused."""
        ...

    def list_namespace_objects(self) -> list[JSON] | None:
        """Every Namespace (with its labels); None when refused."""
        ...


@runtime_checkable
class CountsRequests(Protocol):
    """A source that counts what it asked for: API requests and bytes read (`collect` reports the cost)."""

    requests: int
    bytes_read: int


@runtime_checkable
class PagedReads(Protocol):
    """A source that streams big lists page by page (memory stays flat on big clusters)."""

    def iter_endpoint_slices(self, namespace: str | None) -> Iterator[EndpointSlice]: ...

    def iter_pods(self, namespace: str | None, label_selector: str | None = None) -> Iterator[Pod]: ...


@runtime_checkable
class CountsRefusals(Protocol):
    """A source that counts refused reads (RBAC 403), so each check that needed one says it was skipped."""

    refusals: int
    last_refusal: Skipped | None


@runtime_checkable
class Warmable(Protocol):
    """A source with lazily built state that threads must not build at once: `warm()` builds it up front."""

    def warm(self) -> None: ...


@runtime_checkable
class PodLister(Protocol):
    """What finding agent Pods needs of a source: listing Pods by label (a full ClusterSource has it; a
    stand-in that can only exec does not)."""

    def list_pods(self, namespace: str | None, label_selector: str | None = None,
                  limit: int | None = None) -> list[Pod]: ...


@runtime_checkable
class Closeable(Protocol):
    def close(self) -> None: ...


class Reporter(Protocol):
    """Where a source or an operation says what it is doing: stderr in the CLI (`Terminal`), a list in tests."""

    def status(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def debug(self, text: str) -> None: ...

"""What an operation needs from whoever calls it: the inputs named, the cluster source, the node reader, where
to report. The CLI's App is one; a test or another front end can be another. Operations never see click."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from svcctl.render.console import OutputOptions
from svcctl.sources.node import NodeReadContext

if TYPE_CHECKING:
    from svcctl.dataplane.dumps import NodeDumps
    from svcctl.dataplane.model import NodeRules
    from svcctl.model import EndpointSlice, Service
    from svcctl.render.console import Terminal


class Context(NodeReadContext, OutputOptions, Protocol):
    """Reading a node (node inputs, has_cluster, snapshot, source) and rendering (output, no_headers), plus the
    names of the inputs and the node reads an operation asks for."""

    @property
    def kubeconfig(self) -> str | None: ...

    @property
    def context(self) -> str | None: ...

    @property
    def namespace(self) -> str | None:
        """-n as given (None: the source's default)."""
        ...

    @property
    def all_namespaces(self) -> bool: ...

    @property
    def terminal(self) -> Terminal:
        """Where status, warnings and progress go (stderr); it reports, it never carries data."""
        ...

    @property
    def ns(self) -> str: ...

    @property
    def ns_or_all(self) -> str | None: ...

    def reset_source(self) -> None:
        """Forget the source, so the next use reads again (`check --wait`)."""
        ...

    def node_dumps(self, node: str | None = None, only: set[str] | None = None,
                   services: list[tuple[Service, list[EndpointSlice] | None]] | None = None,
                   whole_json: bool = False) -> NodeDumps | None:
        """`only`: the one Service asked about (big dump files are streamed for it, not read whole);
        `services`: that Service (kube-proxy exec then reads only its rules); `whole_json`: only the whole
        dump's JSON is wanted (a big plain file may be checked as it is streamed and left in it)."""
        ...

    def node_rules(self, node: str | None = None) -> NodeRules | None: ...

    def load_rules(self, dumps: NodeDumps, mode: str | None = None, only: set[str] | None = None) -> NodeRules:
        """load_node_rules, then say (once) what pasted files held and skipped."""
        ...

"""Fake agent Pods for nodes without kube-proxy: the Pods (Cilium, calico-node, kube-router) the live and fleet
paths find, and their answers to pods/exec, for the test API server's exec handler."""

from __future__ import annotations

from scenarios import builder as b


def agent_pod(app: str, node: str, ns: str = "kube-system") -> dict[str, object]:
    container = {"cilium": "cilium-agent"}.get(app, app)
    return b.pod(f"{app}-{node}", {"k8s-app": app}, ns=ns, ip="198.18.1.1" if node == "node-a" else "198.18.1.2",
                 node=node, containers=[b.container(container, ports=[])])


class AgentExec:
    """The agents' answers to pods/exec: Cilium's listings (cilium-dbg, or only the legacy `cilium` binary),
    calico-node's NAT dump, kube-router's ipvsadm; anything else is `command not found`."""

    def __init__(self, answers: dict[tuple[str, tuple[str, ...]], str], legacy_only: set[str] | None = None) -> None:
        self.answers = answers
        self.legacy_only = legacy_only or set()
        self.calls: list[tuple[str, str | None, list[str]]] = []

    def __call__(self, ns: str, pod: str, container: str | None, argv: list[str]) -> tuple[str, str, int]:
        self.calls.append((pod, container, argv))
        if argv[0] == "cilium-dbg" and pod in self.legacy_only:
            return "", 'OCI runtime exec failed: exec: "cilium-dbg": executable file not found in $PATH\n', 126
        key = (pod, tuple(["cilium-dbg", *argv[1:]] if argv[0] == "cilium" else argv))
        if key in self.answers:
            return self.answers[key], "", 0
        return "", f"{argv[0]}: command not found\n", 127

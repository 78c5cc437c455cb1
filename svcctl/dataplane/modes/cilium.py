"""Cilium's kube-proxy replacement: the agent's service map (`cilium-dbg service list`, `-o json`,
`bpf lb list [--revnat]`)."""

from __future__ import annotations

from collections.abc import Mapping

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.dataplane.modes.base import Dump, ProxyMode, Scope, keys_of


class CiliumMode(ProxyMode):
    name = "cilium"
    description = "Cilium's kube-proxy replacement (eBPF service map)"
    replacement = True
    dumps = (Dump("cilium", "cilium-service-list.txt", None,
                  "the agent's service list (`cilium-dbg service list`, `-o json` or `bpf lb list`)"),)
    agent_commands = {
        "cilium-json": ("cilium-dbg", "service", "list", "-o", "json"),
        "cilium-bpf-lb": ("cilium-dbg", "bpf", "lb", "list"),
        "cilium-revnat": ("cilium-dbg", "bpf", "lb", "list", "--revnat"),
        # agents before 1.15 have the same listings under `cilium`
        "cilium-json-legacy": ("cilium", "service", "list", "-o", "json"),
        "cilium-bpf-lb-legacy": ("cilium", "bpf", "lb", "list"),
        "cilium-revnat-legacy": ("cilium", "bpf", "lb", "list", "--revnat"),
    }
    # where its CLI runs on this machine (--local-node / --netns): one listing per allow-listed command
    read_keys = ("cilium-json", "cilium-bpf-lb", "cilium-revnat")
    picks = ("Cilium picks each new connection's backend among the active ones (random, or Maglev when "
             "configured); terminating, quarantined and maintenance backends get no new connections.")

    def present(self, texts: Mapping[str, str]) -> bool:
        return bool((texts.get("cilium") or "").strip())

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        from svcctl.dataplane.cilium import parse_cilium

        if not dumps.get("cilium"):  # read on this machine: one text per allow-listed listing
            parts = [k for k in ("cilium-json", "cilium-bpf-lb", "cilium-revnat") if dumps.get(k)]
            if parts:
                text = "".join(dumps.texts[k] if dumps.texts[k].endswith("\n") else dumps.texts[k] + "\n"
                               for k in parts)
                return parse_cilium(text, ", ".join(dumps.origins.get(k, k) for k in parts),
                                    only=keys_of(scope))
        text, origin = self.require(dumps, "cilium mode needs the agent's service list",
                                    "give --cilium FILE (`cilium-dbg service list`, `-o json` or `bpf lb list`)")
        return parse_cilium(text, origin, only=keys_of(scope))

    def closing_notes(self) -> list[str]:
        from svcctl.dataplane.cilium import SOCKET_LB_NOTE

        return [SOCKET_LB_NOTE]

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        return ["Cilium picks each new connection's backend among the active ones (random, or Maglev when "
                "configured); terminating backends only keep their connections",
                "socket-level load balancing picks the backend at connect(): no NAT from the ClusterIP shows in "
                "conntrack for Pods on this node"]


MODE = CiliumMode()

"""Calico's eBPF dataplane: its NAT maps (`calico-node -bpf nat dump`)."""

from __future__ import annotations

from collections.abc import Mapping

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.dataplane.modes.base import Dump, ProxyMode, Scope, keys_of


class CalicoEbpfMode(ProxyMode):
    name = "calico-ebpf"
    description = "Calico's eBPF dataplane (NAT maps)"
    replacement = True
    dumps = (Dump("calico-nat", "calico-nat-dump.txt", None, "Calico's NAT maps (`calico-node -bpf nat dump`)"),)
    agent_commands = {"calico-nat": ("calico-node", "-bpf", "nat", "dump")}
    read_keys = ("calico-nat",)
    picks = ("Calico's eBPF NAT picks each new connection's backend at random among the frontend's count "
             "(only the local ones when a traffic policy Local applies).")

    def present(self, texts: Mapping[str, str]) -> bool:
        return bool((texts.get("calico-nat") or "").strip())

    def parse(self, dumps: NodeDumps, scope: Scope | None) -> NodeRules:
        from svcctl.dataplane.calico import parse_calico_nat

        text, origin = self.require(dumps, "calico-ebpf mode needs Calico's NAT maps",
                                    "give --calico-nat FILE (`calico-node -bpf nat dump`)")
        return parse_calico_nat(text, origin, only=keys_of(scope))

    def trace_details(self, entry: ServiceEntry) -> list[str]:
        return ["Calico's eBPF NAT picks a backend at random for each new connection (connect-time load "
                "balancing for Pods on this node)"]


MODE = CalicoEbpfMode()

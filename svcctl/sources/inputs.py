"""What the command line named as node input (files, a netns, this machine, a node, a mode): a plain value,
light to import (the CLI builds one for every run, `svcctl --help` too)."""

from __future__ import annotations

from svcctl.lazydc import dataclass, field


@dataclass
class NodeInputs:
    """Where node rules come from; files take precedence over everything else."""

    iptables_save: str | None = None
    ip6tables_save: str | None = None
    ipvsadm: str | None = None
    nft: str | None = None
    conntrack: str | None = None
    ipset: str | None = None
    ip_addr: str | None = None
    cilium: str | None = None  # Cilium agent listings
    calico_nat: str | None = None  # calico-node -bpf nat dump
    netns: str | None = None
    node: str | None = None
    mode: str | None = None
    dumps: dict[str, str] = field(default_factory=dict)  # --dump KEY=FILE: any registered mode's dump
    local: bool = False  # read this machine's own rules
    no_exec: bool = False  # never exec into kube-proxy Pods

    @property
    def files(self) -> dict[str, str]:
        return {k: v for k, v in {
            "iptables": self.iptables_save, "ip6tables": self.ip6tables_save, "ipvs": self.ipvsadm,
            "nftables": self.nft, "conntrack": self.conntrack, "ipset": self.ipset, "kube-ipvs0": self.ip_addr,
            "cilium": self.cilium, "calico-nat": self.calico_nat,
        }.items() if v} | self.dumps

    @property
    def any_given(self) -> bool:
        return bool(self.files) or self.netns is not None or self.local

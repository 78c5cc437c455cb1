"""Generators of kube-proxy-replacement listings (Cilium, Calico eBPF, kube-router) from one scenario.

Each printer follows its project's own printing code (see the docstrings of svcctl/dataplane/cilium.py,
calico.py and kube_router.py): Cilium's tabwriter tables and JSON model, Calico's `dumpNice`, ipvsadm's list.
The same `GenCluster` also feeds tests/support/gen_dumps.py (iptables-save), so one scenario can be written in every
dataplane and the parsed results compared.

Run `python tests/support/gen_replace_dumps.py` to rewrite tests/fixtures/{cilium,calico,kube-router}/.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService  # noqa: E402
from gotabwriter import format_tabwriter  # noqa: E402

NODE_IP = "198.18.1.1"
NODE = "node-a"
OTHER_NODE = "node-b"


@dataclass
class Extra:
    """A backend a replacement keeps although kube-proxy would not program it (terminating, quarantined, ...)."""

    ip: str
    state: str  # terminating | quarantined | maintenance
    local: bool = True


@dataclass
class Scenario:
    cluster: GenCluster
    extras: dict[str, list[Extra]] = field(default_factory=dict)  # "ns/name" -> extra backends
    node_ip: str = NODE_IP


def scenario() -> Scenario:
    """The shared scenario: a web Service with a NodePort, kube-dns on 53/UDP+TCP, an empty Service and a
    LoadBalancer with externalTrafficPolicy Local, as node-a sees them."""
    cluster = GenCluster(services=[
        GenService("demo", "web", "10.96.0.50", [GenPort("http", 80, 8080, node_port=30080)],
                   [GenEndpoint("10.244.1.10"), GenEndpoint("10.244.2.11", local=False),
                    GenEndpoint("10.244.1.12")]),
        GenService("kube-system", "kube-dns", "10.96.0.10",
                   [GenPort("dns", 53, 53, "UDP"), GenPort("dns-tcp", 53, 53, "TCP")],
                   [GenEndpoint("10.244.1.2"), GenEndpoint("10.244.2.3", local=False)]),
        GenService("demo", "empty", "10.96.0.60", [GenPort("http", 80, 8080)], []),
        GenService("demo", "shop", "10.96.0.70", [GenPort("https", 443, 8443, node_port=31443)],
                   [GenEndpoint("10.244.1.20"), GenEndpoint("10.244.2.21", local=False)],
                   lb_ips=["198.18.0.100"], etp_local=True, health_check_node_port=32000),
    ])
    return Scenario(cluster, extras={"demo/web": [Extra("10.244.2.13", "terminating", local=False)]})


# ------------------------------------------------------------------------------------------------ frontends


@dataclass
class FE:
    """One frontend as a replacement programs it: Cilium type, address, port, protocol, scope and backends."""

    svc: GenService
    port: GenPort
    type: str  # ClusterIP NodePort LoadBalancer ExternalIPs
    ip: str
    fport: int
    internal: bool = False
    local: bool = False  # externalTrafficPolicy Local applies to this frontend
    two_scopes: bool = False
    backends: list[tuple[str, int, str]] = field(default_factory=list)  # ip, port, state


def frontends(sc: Scenario, node_ports_on: list[str] | None = None) -> list[FE]:
    """What Cilium programs for the scenario on node-a (ETP Local: external scope local only, /i all)."""
    out: list[FE] = []
    addrs = node_ports_on if node_ports_on is not None else [sc.node_ip, "0.0.0.0"]
    for s in sc.cluster.services:
        key = f"{s.namespace}/{s.name}"
        for p in s.ports:
            every = [(e.ip, p.target_port, "active", e.local) for e in s.endpoints]
            every += [(x.ip, p.target_port, x.state, x.local) for x in sc.extras.get(key, [])]

            def bes(local_only: bool, every: list[tuple[str, int, str, bool]] = every) -> list[tuple[str, int, str]]:
                return [(ip, port, st) for ip, port, st, loc in every if loc or not local_only]

            out.append(FE(s, p, "ClusterIP", s.cluster_ip, p.port, backends=bes(s.itp_local)))
            ext: list[tuple[str, str, int]] = []
            if p.node_port:
                ext += [("NodePort", a, p.node_port) for a in addrs]
            ext += [("LoadBalancer", ip, p.port) for ip in s.lb_ips]
            ext += [("ExternalIPs", ip, p.port) for ip in s.external_ips]
            for typ, ip, port in ext:
                two = s.etp_local != s.itp_local
                out.append(FE(s, p, typ, ip, port, local=s.etp_local, two_scopes=two,
                              backends=bes(s.etp_local)))
                if two:
                    out.append(FE(s, p, typ, ip, port, internal=True, two_scopes=True, backends=bes(s.itp_local)))
    return out


def _addr(ip: str, port: int, proto: str = "", internal: bool = False) -> str:
    a = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    return a + (f"/{proto}" if proto else "") + ("/i" if internal else "")


# ------------------------------------------------------------------------------------------------ Cilium


def cilium_service_list(sc: Scenario, version: str = "1.14") -> str:
    """`cilium service list` (≤1.9: no state; 1.10–1.17: ID column and state; 1.18+: no ID, protocols)."""
    fes = frontends(sc)
    with_id = version != "1.18"
    states = version not in ("1.9",)
    protos = version == "1.18"
    if not protos:  # one frontend per address:port: the protocol is not part of the key
        seen: set[tuple[str, int, bool, str]] = set()
        merged = []
        for f in fes:
            k = (f.ip, f.fport, f.internal, f.type)
            if k not in seen:
                seen.add(k)
                merged.append(f)
        fes = merged
    rows = []
    for i, f in enumerate(fes, 1):
        fe = _addr(f.ip, f.fport, f.port.protocol if protos else "", f.internal)
        bes = []
        shown = f.backends if states else [b for b in f.backends if b[2] == "active"]  # ≤1.9 dropped them
        for j, (ip, port, st) in enumerate(shown, 1):
            b = f"{j} => {_addr(ip, port, f.port.protocol if protos else '')}"
            if states:
                b += f" ({st})"
            bes.append(b)
        rows.append((i, fe, f.type, bes))
    lines = ["ID\tFrontend\tService Type\tBackend\t" if with_id else "Frontend\tService Type\tBackend\t"]
    if not with_id:
        rows.sort(key=lambda r: r[1])
    for i, fe, typ, bes in rows:
        lead = f"{i}\t{fe}\t{typ}\t" if with_id else f"{fe}\t{typ}\t"
        if not bes:
            lines.append(lead + "\t")
            continue
        lines.append(lead + bes[0] + "\t")
        for b in bes[1:]:
            lines.append(("\t\t\t" if with_id else "\t\t") + b + "\t")
    return format_tabwriter("\n".join(lines) + "\n")


def cilium_json(sc: Scenario) -> str:
    """`cilium-dbg service list -o json`: the []Service model, indented like Cilium's PrintOutput."""
    docs = []
    for i, f in enumerate(frontends(sc), 1):
        spec = {
            "backend-addresses": [{"ip": ip, "nodeName": NODE if any(e.ip == ip and e.local for e in f.svc.endpoints)
                                   or any(x.ip == ip and x.local for x in sc.extras.get(
                                       f"{f.svc.namespace}/{f.svc.name}", [])) else OTHER_NODE,
                                   "port": port, "state": st, "weight": 100}
                                  for ip, port, st in f.backends],
            "flags": {"extTrafficPolicy": "Local" if f.svc.etp_local else "Cluster",
                      "intTrafficPolicy": "Local" if f.svc.itp_local else "Cluster",
                      "name": f.svc.name, "namespace": f.svc.namespace, "natPolicy": "None",
                      "trafficPolicy": "Local" if f.svc.etp_local else "Cluster", "type": f.type},
            "frontend-address": {"ip": f.ip, "port": f.fport, "protocol": f.port.protocol,
                                 "scope": "internal" if f.internal else "external"},
            "id": i,
        }
        if f.svc.health_check_node_port and f.type != "ClusterIP":
            spec["flags"]["healthCheckNodePort"] = f.svc.health_check_node_port  # type: ignore[index]
        docs.append({"spec": spec, "status": {"realized": spec}})
    return json.dumps(docs, indent=2) + "\n"


def _flags(f: FE) -> str:
    parts = [f.type]
    if f.local and not f.internal:
        parts.append("Local")
    if f.two_scopes:
        parts.append("two-scopes")
    if f.type == "ClusterIP":
        parts.append("non-routable")
    return ", ".join(parts)


def cilium_bpf_lb_list(sc: Scenario, version: str = "1.14", seed: int = 7) -> tuple[str, str]:
    """`cilium bpf lb list` and `--revnat`, in Go's random map order (seeded). Slots 1..n hold the active
    backends, then terminating ones (kept for existing connections); ≥1.18 prints protocols."""
    protos = version == "1.18"
    rng = random.Random(seed)
    fes = frontends(sc)
    if not protos:
        seen: set[tuple[str, int, bool, str]] = set()
        fes = [f for f in fes if not ((f.ip, f.fport, f.internal, f.type) in seen
                                      or seen.add((f.ip, f.fport, f.internal, f.type)))]  # type: ignore[func-returns-value]
    data: dict[str, list[str]] = {}
    revnat: dict[str, list[str]] = {}
    rev_ids: dict[str, int] = {}
    for f in fes:
        key = _addr(f.ip, f.fport, f.port.protocol if protos else "", f.internal)
        rid = rev_ids.setdefault(key, len(rev_ids) + 1)  # every frontend has its own service (= revNAT) id
        zero = "[::]" if ":" in f.ip else "0.0.0.0"
        entries = [f"{zero}:0 ({rid}) (0) [{_flags(f)}] "]
        ordered = [b for b in f.backends if b[2] == "active"] + [b for b in f.backends if b[2] != "active"]
        for slot, (ip, port, _st) in enumerate(ordered, 1):
            entries.append(f"{_addr(ip, port, f.port.protocol if protos else '')} ({rid}) ({slot})")
        rng.shuffle(entries)
        data[key] = entries
        revnat[str(rid)] = [_addr(f.ip, f.fport)]
    keys = list(data)
    rng.shuffle(keys)

    def table(first: str, second: str, d: dict[str, list[str]], order: list[str]) -> str:
        lines = [f"{first}\t{second}\t"]
        for k in order:
            for i, v in enumerate(d[k]):
                lines.append(f"{k if i == 0 else ''}\t{v}\t")
        return format_tabwriter("\n".join(lines) + "\n")

    rkeys = list(revnat)
    rng.shuffle(rkeys)
    return (table("SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)", data, keys),
            table("ID", "BACKEND ADDRESS (REVNAT_ID) (SLOT)", revnat, rkeys))


# ------------------------------------------------------------------------------------------------ Calico


def calico_nat_dump(sc: Scenario, version: str = "3.28", seed: int = 11) -> str:
    """`calico-node -bpf nat dump` (felix's dumpNice): frontends in Go map order, the node's backends first.
    Calico programs the endpoints kube-proxy would (no terminating ones); NodePorts on 255.255.255.255;
    flags (external-local, internal-local) only in versions that have them (3.28 here, none in 3.20)."""
    rng = random.Random(seed)
    flags_ok = version != "3.20"
    rows: list[list[str]] = []
    fid = 0
    for s in sc.cluster.services:
        for p in s.ports:
            proto = {"TCP": 6, "UDP": 17, "SCTP": 132}[p.protocol]
            eps = sorted(s.endpoints, key=lambda e: not e.local)  # local ones first
            local = sum(1 for e in eps if e.local)
            fes: list[tuple[str, int, str, bool]] = [(s.cluster_ip, p.port, "internal-local" if s.itp_local else "",
                                                      s.itp_local)]
            if p.node_port:
                fes.append(("255.255.255.255", p.node_port, "external-local" if s.etp_local else "", s.etp_local))
            fes += [(ip, p.port, "external-local" if s.etp_local else "", s.etp_local) for ip in s.lb_ips]
            fes += [(ip, p.port, "external-local" if s.etp_local else "", s.etp_local) for ip in s.external_ips]
            for ip, port, flag, is_local in fes:
                fid += 1
                shown = eps if flags_ok or not is_local else [e for e in eps if e.local]
                fl = f" flags {flag}" if flags_ok and flag else ""
                lines = [f"{ip} port {port} proto {proto} id {fid} count {len(shown)} local {local}{fl}"]
                for i, e in enumerate(shown):
                    lines.append(f"\t{fid}:{i}\t {e.ip}:{p.target_port}")
                rows.append(lines)
    rng.shuffle(rows)
    return "".join(line + "\n" for r in rows for line in r)


# ------------------------------------------------------------------------------------------------ kube-router


def kube_router_ipvsadm(sc: Scenario, dsr: bool = False) -> str:
    """`ipvsadm -Ln` on node-a under kube-router: ClusterIP, NodePort (node IP), LB/external IP virtual servers;
    terminating endpoints kept at weight 0; with `dsr` the LB IP is a firewall-mark service with Tunnel."""
    from gen_dumps_ipvs_nft import VS, print_ipvsadm

    from svcctl.dataplane.kube_router import dsr_fwmark

    vss: list[VS] = []
    for s in sc.cluster.services:
        key = f"{s.namespace}/{s.name}"
        for p in s.ports:
            reals: list[dict[str, object]] = [{"ip": e.ip, "port": p.target_port, "weight": 1} for e in s.endpoints]
            reals += [{"ip": x.ip, "port": p.target_port, "weight": 0} for x in sc.extras.get(key, [])
                      if x.state == "terminating"]
            local = [r for r in reals if any(e.ip == r["ip"] and e.local for e in s.endpoints)]
            vss.append(VS(p.protocol, s.cluster_ip, p.port, reals=reals))
            ext = local if s.etp_local else reals
            if p.node_port:
                vss.append(VS(p.protocol, sc.node_ip, p.node_port, reals=ext))
            for ip in s.lb_ips + s.external_ips:
                if dsr:
                    mark = dsr_fwmark(ip, p.protocol, p.port)  # pinned to Go's hash/fnv in test_replace.py
                    vss.append(VS("FWM", "", 0, fwmark=mark, reals=[{**r, "fwd": "Tunnel"} for r in ext]))
                else:
                    vss.append(VS(p.protocol, ip, p.port, reals=ext))
    return print_ipvsadm(vss)


# ------------------------------------------------------------------------------------------------ the cluster


def cluster_objects(sc: Scenario) -> list[dict[str, object]]:
    """The API objects behind the scenario (Services, Pods, EndpointSlices, Nodes), as `kubectl get -o yaml`."""
    from scenarios import builder as b

    objs: list[dict[str, object]] = [b.node(NODE, ip=sc.node_ip, zone="zone-a"),
                                     b.node(OTHER_NODE, ip="198.18.1.2", zone="zone-b")]
    for s in sc.cluster.services:
        key = f"{s.namespace}/{s.name}"
        ports = [(p.name, p.port, p.target_port, p.protocol) for p in s.ports]
        svc = b.service(s.name, {"app": s.name}, ns=s.namespace, ports=ports, cluster_ip=s.cluster_ip,
                        type_="LoadBalancer" if s.lb_ips else "NodePort" if any(p.node_port for p in s.ports)
                        else "ClusterIP")
        spec = svc["spec"]
        for sp, gp in zip(spec["ports"], s.ports, strict=True):
            if gp.node_port:
                sp["nodePort"] = gp.node_port
        if s.etp_local:
            spec["externalTrafficPolicy"] = "Local"
        if s.itp_local:
            spec["internalTrafficPolicy"] = "Local"
        if s.health_check_node_port:
            spec["healthCheckNodePort"] = s.health_check_node_port
        if s.lb_ips:
            svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in s.lb_ips]}}
        pods = []
        cports = [(p.name, p.target_port, p.protocol) for p in s.ports]
        for i, e in enumerate(s.endpoints):
            pods.append(b.pod(f"{s.name}-{i}", {"app": s.name}, ns=s.namespace, ip=e.ip,
                              node=NODE if e.local else OTHER_NODE,
                              containers=[b.container(ports=cports)]))
        for j, x in enumerate(sc.extras.get(key, []), len(s.endpoints)):
            pods.append(b.pod(f"{s.name}-{j}", {"app": s.name}, ns=s.namespace, ip=x.ip,
                              node=NODE if x.local else OTHER_NODE, deleting=x.state == "terminating",
                              containers=[b.container(ports=cports)]))
        objs += [svc, *pods, b.controller_slice(svc, pods)]
    return objs


def cluster_yaml(sc: Scenario) -> str:
    import yaml
    from scenarios import builder as b

    return str(yaml.safe_dump(b.as_list(cluster_objects(sc)), sort_keys=False, width=120))


# ------------------------------------------------------------------------------------------------ capture bundles

SYSDUMP_TS = "20261201-091500"
RETINA_TS = "20261201091500UTC"


def _v1_endpoints(objs: list[dict[str, object]]) -> list[dict[str, object]]:
    """What the Endpoints controller writes: ready Pods in addresses, not-ready in notReadyAddresses, Pods
    being deleted left out (publishNotReadyAddresses false)."""
    out: list[dict[str, object]] = []
    for svc in [o for o in objs if o["kind"] == "Service"]:
        meta, spec = svc["metadata"], svc["spec"]  # type: ignore[index]
        pods = [o for o in objs if o["kind"] == "Pod" and o["metadata"]["namespace"] == meta["namespace"]  # type: ignore[index]
                and all(o["metadata"]["labels"].get(k) == v for k, v in spec["selector"].items())  # type: ignore[index]
                and "deletionTimestamp" not in o["metadata"]]  # type: ignore[index,operator]

        def addr(p: dict[str, object]) -> dict[str, object]:
            return {"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],  # type: ignore[index]
                    "targetRef": {"kind": "Pod", "name": p["metadata"]["name"],  # type: ignore[index]
                                  "namespace": p["metadata"]["namespace"]}}  # type: ignore[index]

        subset: dict[str, object] = {
            "addresses": [addr(p) for p in pods],
            "ports": [{"name": pt["name"], "port": pt["targetPort"], "protocol": pt["protocol"]}
                      for pt in spec["ports"]]}  # type: ignore[index]
        out.append({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"]},  # type: ignore[index]
                    "subsets": [subset] if pods else []})
    return out


def _tar(members: dict[str, bytes]) -> bytes:
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1796115300
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)  # byte-for-byte reproducible


def cilium_sysdump(sc: Scenario) -> bytes:
    """A `cilium sysdump` zip: the k8s-*-<ts>.yaml lists, other files it writes, and one cilium-bugtool archive
    per agent (node-a's from cilium-dbg with raw outputs, node-b's older `cilium` in markdown form)."""
    import io
    import zipfile

    import yaml

    objs = cluster_objects(sc)
    agents = [_agent("cilium", NODE), _agent("cilium", OTHER_NODE)]
    top = f"cilium-sysdump-{SYSDUMP_TS}"

    def lst(kind: str, items: list[dict[str, object]]) -> bytes:
        return yaml.safe_dump({"apiVersion": "v1", "kind": f"{kind}List", "items": items}).encode()

    files: dict[str, bytes] = {
        f"k8s-services-{SYSDUMP_TS}.yaml": lst("Service", [o for o in objs if o["kind"] == "Service"]),
        f"k8s-pods-{SYSDUMP_TS}.yaml": lst("Pod", [o for o in objs if o["kind"] == "Pod"] + agents),
        f"k8s-nodes-{SYSDUMP_TS}.yaml": lst("Node", [o for o in objs if o["kind"] == "Node"]),
        f"k8s-endpoints-{SYSDUMP_TS}.yaml": lst("Endpoints", _v1_endpoints(objs)),
        f"k8s-events-{SYSDUMP_TS}.yaml": lst("Event", []),
        f"cilium-helm-values-{SYSDUMP_TS}.yaml": b"kubeProxyReplacement: true\nk8sServiceHost: 198.18.1.1\n",
        f"cilium-configmap-{SYSDUMP_TS}.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                                "metadata": {"name": "cilium-config"},
                                                                "data": {"kube-proxy-replacement": "true"}}).encode(),
        f"k8s-version-{SYSDUMP_TS}.txt": b"Client Version: v1.37.2\n",
    }
    lb, rev = cilium_bpf_lb_list(sc, "1.14")
    bt = "cilium-bugtool-20261201-091501/cmd"
    files[f"cilium-bugtool-cilium-{NODE}-{SYSDUMP_TS}.tar.gz"] = _tar({
        f"{bt}/cilium-dbg-service-list--o-json.md": cilium_json(sc).encode(),
        f"{bt}/cilium-dbg-bpf-lb-list.md": lb.encode(),
        f"{bt}/cilium-dbg-bpf-lb-list---revnat.md": rev.encode(),
        f"{bt}/cilium-dbg-bpf-lb-list---frontends.md": b"SERVICE ADDRESS   BACKEND ID\n",
        f"{bt}/iptables-save--c.md": b"# Generated by iptables-save v1.8.9 (nf_tables)\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
        f"{bt}/ip-a.md": b"1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n",
    })

    def md(prompt: str, out: str) -> bytes:
        return f"# {prompt}\n\n```\n{out}\n```\n".encode()

    files[f"cilium-bugtool-cilium-{OTHER_NODE}-{SYSDUMP_TS}.tar.gz"] = _tar({
        f"{bt}/cilium-service-list.md": md("cilium service list", cilium_service_list(sc, "1.14")),
        f"{bt}/cilium-bpf-lb-list---revnat.md": md("cilium bpf lb list --revnat", rev),
    })
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return buf.getvalue()


def _agent(app: str, node: str) -> dict[str, object]:
    from scenarios import builder as b

    return b.pod(f"{app}-{node}", {"k8s-app": app}, ns="kube-system", ip=NODE_IP if node == NODE else "198.18.1.2",
                 node=node, containers=[b.container("cilium-agent", ports=[])])


def retina_capture(sc: Scenario, capture: str = "svc-capture", node: str = NODE) -> tuple[str, bytes]:
    """A Retina capture tarball `<capture>-<node>-<ts>.tar.gz`: the pcap and the metadata files, with
    iptables-rules.txt written the way the capture Job writes it (Summary:, Execute:, command, output)."""
    name = f"{capture}-{node}-{RETINA_TS}"
    ipt = iptables_save_text(sc)
    rules = ("Summary:\n\n"
             "/usr/sbin/iptables-nft-save(IPtables rules)\n"
             "/usr/sbin/iptables-nft -vnx -L(IPtables rules and stats in filter table)\n"
             "/usr/sbin/iptables-nft -vnx -L -t nat(IPtables rules and stats in nat table)\n"
             "/usr/sbin/iptables-nft -vnx -L -t mangle(IPtables rules and stats in mangle table)\n"
             "\nExecute:\n\n"
             f"/usr/sbin/iptables-nft-save\n\n{ipt}"
             "/usr/sbin/iptables-nft -vnx -L\n\nChain INPUT (policy ACCEPT 0 packets, 0 bytes)\n"
             "/usr/sbin/iptables-nft -vnx -L -t nat\n\nChain PREROUTING (policy ACCEPT 0 packets, 0 bytes)\n")
    pcap_header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000071000000")
    return f"{name}.tar.gz", _tar({
        f"{name}.pcap": pcap_header,
        "iptables-rules.txt": rules.encode(),
        "ip-resources.txt": b"Summary:\n\n/usr/sbin/ip -d -j addr show(IP address configuration)\n",
        "socket-stats.txt": b"Summary:\n\n/usr/bin/ss -s(Socket statistics summary)\n",
        "tcpdump.log": b"tcpdump: listening on any\n",
    })


def iptables_save_text(sc: Scenario) -> str:
    from gen_dumps import iptables_save

    return iptables_save(sc.cluster)


def write_fixtures() -> None:
    sc = scenario()
    cil = ROOT / "tests" / "fixtures" / "cilium"
    cil.mkdir(parents=True, exist_ok=True)
    for v in ("1.9", "1.14", "1.18"):
        (cil / f"service-list-{v}.txt").write_text(cilium_service_list(sc, v))
    (cil / "service-list.json").write_text(cilium_json(sc))
    for v in ("1.14", "1.18"):
        lb, rev = cilium_bpf_lb_list(sc, v)
        (cil / f"bpf-lb-list-{v}.txt").write_text(lb)
        (cil / f"bpf-lb-list-revnat-{v}.txt").write_text(rev)
    cal = ROOT / "tests" / "fixtures" / "calico"
    cal.mkdir(parents=True, exist_ok=True)
    for v in ("3.20", "3.28"):
        (cal / f"nat-dump-{v}.txt").write_text(calico_nat_dump(sc, v))
    kr = ROOT / "tests" / "fixtures" / "kube-router"
    kr.mkdir(parents=True, exist_ok=True)
    (kr / "ipvsadm.txt").write_text(kube_router_ipvsadm(sc))
    (kr / "ipvsadm-dsr.txt").write_text(kube_router_ipvsadm(sc, dsr=True))
    (ROOT / "tests" / "fixtures" / "replace-cluster.yaml").write_text(cluster_yaml(sc))
    bundles = ROOT / "tests" / "fixtures" / "bundles"
    bundles.mkdir(parents=True, exist_ok=True)
    (bundles / f"cilium-sysdump-{SYSDUMP_TS}.zip").write_bytes(cilium_sysdump(sc))
    name, data = retina_capture(sc)
    (bundles / name).write_bytes(data)


if __name__ == "__main__":
    write_fixtures()

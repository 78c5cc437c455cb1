"""svcctl's NetworkPolicy verdicts against a real policy engine on real packets.

kube-router's NetworkPolicy controller (tests/lab/kuberouter.py) enforces the documented cases of
tests/test_policy.py -- the same policies, clients and backends, moved into 198.18.0.0/15 -- inside a node network
namespace whose Pods are network namespaces routed through it (a /32 route per Pod, as a routed CNI does: every
Pod-to-Pod packet crosses the node's FORWARD chain, where kube-router hooks its per-Pod chains by Pod IP). Addresses
that are no Pod (ipBlock clients and destinations, another node, a masquerading node) live in one "outside"
namespace routed through the node. The Pods are real API objects (nodeName, status.podIP and status.hostIP written
through pods/status), the policies are created in the real API server, and after each case's sync a TCP connect
or UDP exchange from the client's namespace to backend IP:port says what got through. svcctl judges the same
connection from what the API server holds; the verdicts must agree.

The DNS-egress cases check svcctl's gate before the DNS hop (svcctl.analysis.policy_dns) the same way: CoreDNS
listening on 1053 behind the kube-dns Service's port 53, a client under default-deny Egress, and rules on port 53
(the trap), on 1053, on the named ports, and the very rule svcctl's PolicyDeniesDNS hint suggests.

Not sendable, so not counted: a client whose labels svcctl does not know ("a Pod on the node"): every real Pod
has labels.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from svcctl.analysis.policy import Endpoint, NamespaceInfo, connection, parse_policies, pod_endpoint

from .controlplane import ControlPlane
from .figures import FIGURES
from .kuberouter import KUBE_ROUTER_VERSION, KubeRouterFirewall

JSON = dict[str, Any]
NODE, OTHER_NODE = "kr-node-a", "kr-node-b"
NODE_IP, OTHER_NODE_IP = "198.18.192.1", "198.18.192.2"
KR_SERVICE_CIDR = "198.18.250.0/24"  # kube-router's view of the Service range: no case address is in it
NS_PREFIX = "kr-"
MARKER_NS = "kr-sync"
MARKER_IP = "198.18.99.99"
_counter = itertools.count()

# the documentation's addresses, moved into 198.18.0.0/15 with their prefix lengths kept
ADDRESS_MAP = [("10.244.", "198.18."), ("192.168.1.", "198.18.192."), ("172.17.", "198.19."),
               ("10.0.0.", "198.18.100."), ("192.0.2.", "198.18.201.")]


def lab_ip(addr: str) -> str:
    for old, new in ADDRESS_MAP:
        if addr.startswith(old):
            return new + addr[len(old):]
    raise AssertionError(f"no lab address for {addr}")


def lab_cidr(cidr: str) -> str:
    ip, _, plen = cidr.partition("/")
    return f"{lab_ip(ip)}/{plen}"


def lab_ns(ns: str) -> str:
    return NS_PREFIX + ns


def lab_policy(doc: JSON) -> JSON:
    """A documented policy in the lab: its namespace and namespace-name selectors prefixed, CIDRs moved."""
    d = copy.deepcopy(doc)
    d["apiVersion"], d["kind"] = "networking.k8s.io/v1", "NetworkPolicy"
    d["metadata"] = {"name": d["metadata"]["name"], "namespace": lab_ns(d["metadata"].get("namespace", "default"))}

    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            out = {}
            for k, v in o.items():
                if k == "matchLabels" and isinstance(v, dict):
                    out[k] = {lk: (lab_ns(lv) if lk == "kubernetes.io/metadata.name" else lv) for lk, lv in v.items()}
                elif k == "cidr":
                    out[k] = lab_cidr(v)
                elif k == "except":
                    out[k] = [lab_cidr(c) for c in v]
                else:
                    out[k] = walk(v)
            return out
        if isinstance(o, list):
            return [walk(x) for x in o]
        return o

    d["spec"] = walk(d["spec"])
    return d


# ------------------------------------------------------------------------------------------------ the node


PROBE_CODE = r"""
import json, socket, sys
out = []
for src, dst, port, proto in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM)
    s.settimeout(float(sys.argv[2]))
    try:
        if src:
            s.bind((src, 0))
        if proto == "TCP":
            s.connect((dst, port))
        else:
            s.sendto(b"ping", (dst, port))
            s.recvfrom(512)
        out.append("ok")
    except socket.timeout:
        out.append("timeout")
    except ConnectionRefusedError:
        out.append("refused")
    except OSError as e:
        out.append("error:" + type(e).__name__)
    finally:
        s.close()
print(json.dumps(out))
"""


@dataclass
class RoutedNode:
    """A node namespace, Pod namespaces each on its own veth with a /32 route, and one outside namespace."""

    base: str = ""
    node: str = ""
    outside: str = ""
    pods: dict[str, str] = field(default_factory=dict)  # Pod IP -> its namespace
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self) -> RoutedNode:
        from netns import cleanup_stale

        cleanup_stale("svt-kr")
        self.base = f"svt-kr-{os.getpid()}-{next(_counter)}"
        self.node = self._ns("node")
        self._ip(self.node, "link", "set", "lo", "up")
        self._ip(self.node, "addr", "add", f"{NODE_IP}/32", "dev", "lo")
        for k in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
            self.exec(self.node, ["sysctl", "-qw", k])
        self.outside = self._link("out", "kout", [])
        return self

    def _ns(self, suffix: str) -> str:
        name = f"{self.base}-{suffix}"
        _run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        return name

    @staticmethod
    def _ip(ns: str, *args: str) -> None:
        _run(["ip", "-n", ns, *args])

    def _link(self, suffix: str, dev: str, addrs: list[str]) -> str:
        ns = self._ns(suffix)
        self._ip(self.node, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._ip(self.node, "link", "set", dev, "up")
        self._ip(ns, "link", "set", "lo", "up")
        self._ip(ns, "link", "set", "eth0", "up")
        self._ip(ns, "route", "add", NODE_IP, "dev", "eth0", "scope", "link")
        self._ip(ns, "route", "add", "default", "via", NODE_IP, "dev", "eth0", "onlink")
        for a in addrs:
            self.add_address(ns, dev, a)
        return ns

    def add_address(self, ns: str, dev: str, ip: str) -> None:
        self._ip(ns, "addr", "add", f"{ip}/32", "dev", "eth0")
        self._ip(self.node, "route", "add", f"{ip}/32", "dev", dev)

    def add_pod(self, ip: str) -> str:
        ns = self._link(f"p{len(self.pods)}", f"kp{len(self.pods)}", [ip])
        self.pods[ip] = ns
        return ns

    def serve(self, ns: str, port: int, udp: bool) -> None:
        from netns import SERVER_CODE

        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER_CODE, f"s{port}", str(port),
                              "0", "udp" if udp else "tcp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.procs.append(p)
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            raise AssertionError(f"server on {ns}:{port} did not start: {p.stderr.read() if p.stderr else ''}")

    def exec(self, ns: str, argv: list[str], timeout: float = 120) -> str:
        r = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"{argv[:3]} in {ns}: {r.stderr.strip()}")
        return r.stdout

    def probe(self, ns: str, probes: list[tuple[str, str, int, str]], timeout: float = 1.0) -> list[str]:
        out = self.exec(ns, [sys.executable, "-c", PROBE_CODE, json.dumps(probes), str(timeout)],
                        timeout=len(probes) * timeout + 60)
        answers: list[str] = json.loads(out)
        return answers

    def close(self) -> None:
        from netns import _kill_netns_pids

        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        for ns in reversed(self.namespaces):
            _kill_netns_pids(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()


def _run(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {r.stderr.strip()}")


# ------------------------------------------------------------------------------------------------ the cases


@dataclass
class Party:
    """One side of a case in the lab: a Pod (with its API object), the node itself, or an outside address."""

    kind: str  # pod | hostpod | outside
    ip: str
    obj: JSON | None = None


def _pod_object(e: Endpoint) -> JSON:
    assert e.namespace is not None
    host = e.host_network
    on_this_node = e.node == "node-a"
    node, host_ip = (NODE, NODE_IP) if (on_this_node or not host) else (OTHER_NODE, OTHER_NODE_IP)
    ip = lab_ip(e.ip or "")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": e.name, "namespace": lab_ns(e.namespace.name), "labels": dict(e.labels)},
            "spec": {"nodeName": node, "hostNetwork": host,
                     "containers": [{"name": "c", "image": "registry.invalid/c:1",
                                     "ports": [{**({"name": n} if n else {}), "containerPort": p, "protocol": pr}
                                               for n, p, pr in e.ports]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host_ip,
                       "hostIPs": [{"ip": host_ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _party(e: Endpoint) -> Party:
    if e.kind == "pod":
        obj = _pod_object(e)
        if e.host_network:
            return Party("hostpod", obj["status"]["podIP"], obj)
        return Party("pod", obj["status"]["podIP"], obj)
    assert e.kind == "ip" and e.ip
    return Party("outside", lab_ip(e.ip))


@dataclass
class LabCase:
    id: str
    policies: list[JSON]
    client: Party
    backend: Party
    port: int
    protocol: str
    masquerade: str | None  # the node address kube-proxy masqueraded the connection to (None: not masqueraded)
    documented: bool | None
    dns: JSON | None = None  # a DNS-egress case: the kube-dns Service whose targetPort the packet carries


def lab_cases() -> list[LabCase]:
    import test_policy as tp

    out = []
    for cid, docs, client, backend, port, proto, kw, allowed, *_ in tp.CASES:
        if client.kind == "anypod":
            continue  # no real Pod has unknown labels
        c = _party(client)
        masq = None
        if kw.get("masquerade") and client.node == backend.node:
            # SNAT on the backend's own node happens after the policy: the Pod itself sends (the real kube-proxy
            # shows it below, test_same_node_masquerade_through_the_real_kube_proxy)
            masq = NODE_IP
        elif kw.get("masquerade"):  # masqueraded on the client's node: the packet arrives with that node's address
            c, masq = Party("outside", lab_ip(kw["client_node_ip"]), c.obj), OTHER_NODE_IP
        out.append(LabCase(cid, [lab_policy(yaml.safe_load(d)) for d in docs], c, _party(backend), port, proto,
                           masq, allowed))
    return out + dns_cases()


# The client's Egress to the cluster DNS (svcctl.analysis.policy_dns): CoreDNS listening on 1053 behind the
# kube-dns Service's port 53, so a policy must name 1053 -- the port the packet carries after kube-proxy's DNAT.
DNS_NS, WEB_NS = "kr-kube-system", "kr-web"
DNS_POD_IP, WEB_POD_IP, DNS_PORT = "198.18.53.10", "198.18.60.20", 1053
KUBE_DNS: JSON = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": DNS_NS},
                  "spec": {"selector": {"k8s-app": "kube-dns"},
                           "ports": [{"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
                                     {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp", "protocol": "TCP"}]}}


def _web_policy(name: str, egress: list[JSON] | None) -> JSON:
    spec: JSON = {"podSelector": {}, "policyTypes": ["Egress"]}
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": WEB_NS}, "spec": spec}


def _to_dns(ports: list[JSON]) -> list[JSON]:
    return [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": DNS_NS}},
                     "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": ports}]


def _dns_gate(policies: list[JSON], client: JSON, dns_pod: JSON) -> Any:
    """svcctl's DNS gate for `client` under `policies` (the objects as the lab writes them)."""
    from svcctl.analysis.policy import client_endpoint, make_world
    from svcctl.analysis.policy_dns import dns_gate
    from svcctl.model import Service

    nss: dict[str, JSON | None] = {n: {"metadata": {"name": n}} for n in (WEB_NS, DNS_NS)}
    world = make_world({WEB_NS: policies}, nss)
    who = client_endpoint(world, client, f"{WEB_NS}/web-0", None, NODE, [NODE_IP])
    return dns_gate(world, who, Service.from_dict(KUBE_DNS), [dns_pod], [])


def dns_cases() -> list[LabCase]:
    dns_pod = _pod_object(Endpoint("pod", "10.244.53.10", NamespaceInfo("kube-system"), "coredns-0",
                                   {"k8s-app": "kube-dns"}, node="node-a",
                                   ports=[("dns", DNS_PORT, "UDP"), ("dns-tcp", DNS_PORT, "TCP")]))
    web = _pod_object(Endpoint("pod", "10.244.60.20", NamespaceInfo("web"), "web-0", {"role": "web"},
                               node="node-a"))
    deny = _web_policy("default-deny-egress", None)
    gate = _dns_gate([deny], web, dns_pod)  # the PolicyDeniesDNS hint: its rule is one of the cases
    assert gate.finding is not None
    hint_rule = yaml.safe_load(gate.finding.hint.split(": - ", 1)[1].split(" (the DNS Pods", 1)[0])
    sets = [
        ("dns-no-policy", [], True),
        ("dns-default-deny-egress", [deny], False),
        ("dns-rule-on-the-service-port-53", [deny, _web_policy("allow-dns-53", _to_dns(
            [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]))], False),
        ("dns-rule-on-the-target-port", [deny, _web_policy("allow-dns-1053", _to_dns(
            [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]))], True),
        ("dns-rule-on-the-named-ports", [deny, _web_policy("allow-dns-named", _to_dns(
            [{"protocol": "UDP", "port": "dns"}, {"protocol": "TCP", "port": "dns-tcp"}]))], True),
        ("dns-the-rule-svcctl-suggests", [deny, _web_policy("svcctl-hint", [hint_rule])], True),
    ]
    out = []
    for cid, pols, want in sets:
        for proto in ("UDP", "TCP"):
            out.append(LabCase(f"{cid}-{proto.lower()}", pols, Party("pod", WEB_POD_IP, web),
                               Party("pod", DNS_POD_IP, dns_pod), DNS_PORT, proto, None, want, dns=KUBE_DNS))
    return out


# ------------------------------------------------------------------------------------------------ the fixture


@pytest.fixture
def netpol_node(k8s: ControlPlane, tmp_path: Path) -> Iterator[tuple[RoutedNode, KubeRouterFirewall, list[LabCase]]]:
    cases = lab_cases()
    node = RoutedNode()
    created: list[str] = []
    try:
        node.start()
        namespaces = {"kr-default": {}, "kr-myproject": {"project": "myproject"}, "kr-alice": {"user": "alice"},
                      "kr-other": {}, "kr-unlisted": {}, WEB_NS: {}, DNS_NS: {},
                      MARKER_NS: {}}
        for name, labels in namespaces.items():
            k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
            created.append(f"/api/v1/namespaces/{name}")
        for name, ip in ((NODE, NODE_IP), (OTHER_NODE, OTHER_NODE_IP)):
            k8s.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                       "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                                  "conditions": [{"type": "Ready", "status": "True"}]}})
            created.append(f"/api/v1/nodes/{name}")
        pods: dict[str, JSON] = {}
        for c in cases:
            for p in (c.client, c.backend):
                if p.obj is not None:
                    key = f"{p.obj['metadata']['namespace']}/{p.obj['metadata']['name']}"
                    assert pods.setdefault(key, p.obj)["status"]["podIP"] == p.obj["status"]["podIP"], key
        marker = _marker_pod(MARKER_NS, NODE)
        k8s.apply(copy.deepcopy(KUBE_DNS))
        created.append(f"/api/v1/namespaces/{DNS_NS}/services/kube-dns")
        for obj in [*pods.values(), marker]:
            k8s.apply(obj)
            md = obj["metadata"]
            created.append(f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}")
        # the Pods' namespaces (hostNetwork Pods have none of their own: the node or the outside sends for them)
        for obj in pods.values():
            if not obj["spec"]["hostNetwork"]:
                node.add_pod(obj["status"]["podIP"])
        outside = {c.client.ip for c in cases if c.client.kind == "outside"} | {
            c.backend.ip for c in cases if c.backend.kind == "outside"}
        outside |= {OTHER_NODE_IP}
        for ip in sorted(outside):
            node.add_address(node.outside, "kout", ip)
        # servers on every (backend, port, protocol) a case sends to
        served: set[tuple[str, int]] = set()
        udp_ports = {(c.backend.ip, c.port) for c in cases if c.protocol == "UDP"}
        for c in cases:
            where = node.pods.get(c.backend.ip) if c.backend.kind == "pod" else node.outside
            if where is None or (where, c.port) in served:
                continue
            served.add((where, c.port))
            node.serve(where, c.port, udp=(c.backend.ip, c.port) in udp_ports)
        with KubeRouterFirewall(k8s, node.node, NODE, tmp_path / "kube-router", KR_SERVICE_CIDR) as kr:
            yield node, kr, cases
    finally:
        for pol in k8s.list("/apis/networking.k8s.io/v1/networkpolicies"):
            if pol["metadata"]["namespace"].startswith(NS_PREFIX):
                k8s.request("DELETE", f"/apis/networking.k8s.io/v1/namespaces/{pol['metadata']['namespace']}"
                                      f"/networkpolicies/{pol['metadata']['name']}")
        for path in reversed(created):
            k8s.request("DELETE", path)
        node.close()


# ------------------------------------------------------------------------------------------------ the test


def _send(node: RoutedNode, c: LabCase) -> bool:
    """What got through: one TCP connect or UDP exchange from the client's side to backend IP:port."""
    if c.client.kind == "pod":
        ns, src = node.pods[c.client.ip], ""
    elif c.client.kind == "hostpod" and c.client.ip == NODE_IP:
        ns, src = node.node, NODE_IP  # a hostNetwork Pod of this node: the node itself sends
    else:
        ns, src = node.outside, c.client.ip  # an outside address, another node, or a masquerading node
    (answer,) = node.probe(ns, [(src, c.backend.ip, c.port, c.protocol)])
    if answer != "ok":
        # once more, slower: a loaded machine must not turn a slow answer into "stopped" (a real stop stays one)
        (answer,) = node.probe(ns, [(src, c.backend.ip, c.port, c.protocol)], timeout=3.0)
    return answer == "ok"


def _marker_pod(ns: str, node: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "marker", "namespace": ns,
                                                            "labels": {"marker": "yes"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.invalid/c:1"}]},
            "status": {"phase": "Running", "podIP": MARKER_IP, "podIPs": [{"ip": MARKER_IP}],
                       "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}]}}


def _svcctl(k8s: ControlPlane, c: LabCase) -> bool | None:
    """svcctl's verdict on the connection, from what the real API server holds."""
    nss = {n["metadata"]["name"]: NamespaceInfo(n["metadata"]["name"], dict(n["metadata"].get("labels") or {}))
           for n in k8s.list("/api/v1/namespaces") if n["metadata"]["name"].startswith(NS_PREFIX)}
    policies = parse_policies([p for p in k8s.list("/apis/networking.k8s.io/v1/networkpolicies")
                               if p["metadata"]["namespace"].startswith(NS_PREFIX)
                               and p["metadata"]["namespace"] != MARKER_NS])

    def endpoint(p: Party) -> Endpoint:
        if p.obj is None:
            return Endpoint("ip", p.ip)
        md = p.obj["metadata"]
        live = k8s.must("GET", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}")
        return pod_endpoint(live, nss[md["namespace"]], [live["status"]["hostIP"]])

    if c.dns is not None:  # the DNS gate, on the Service and Pods as the API server holds them
        from svcctl.analysis.policy import client_endpoint, make_world
        from svcctl.analysis.policy_dns import dns_gate
        from svcctl.model import Service

        assert c.client.obj is not None and c.backend.obj is not None
        md, bmd = c.client.obj["metadata"], c.backend.obj["metadata"]
        world = make_world({md["namespace"]: [p for p in k8s.list(
            f"/apis/networking.k8s.io/v1/namespaces/{md['namespace']}/networkpolicies")]},
            {n: k8s.must("GET", f"/api/v1/namespaces/{n}") for n in (md["namespace"], bmd["namespace"])})
        live = k8s.must("GET", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}")
        svc = Service.from_dict(k8s.must("GET", f"/api/v1/namespaces/{DNS_NS}/services/kube-dns"))
        dns_pod = k8s.must("GET", f"/api/v1/namespaces/{bmd['namespace']}/pods/{bmd['name']}")
        gate = dns_gate(world, client_endpoint(world, live, None, None, NODE, [NODE_IP]), svc, [dns_pod],
                        svc.cluster_ips)
        assert gate.ports[c.protocol] == c.port  # judged on the port the packet carries after the DNAT
        if gate.egress is None or not gate.egress.applies:
            return True  # not isolated for Egress
        if c.protocol in gate.egress.protocols_denied:
            return False
        return True if c.protocol == "TCP" else gate.egress.allowed  # `allowed` is the UDP answer
    client = endpoint(c.client)
    if c.masquerade == OTHER_NODE_IP:  # the packet arrives from the other node's address: the client was there
        client.node, client.node_ips = OTHER_NODE, [OTHER_NODE_IP]
    backend = endpoint(c.backend)
    kw: JSON = {"masquerade": True, "client_node_ip": c.masquerade} if c.masquerade else {}
    return connection(policies, client, backend, c.port, c.protocol, **kw).allowed


def _apply_case(k8s: ControlPlane, kr: KubeRouterFirewall, c: LabCase, n: int, previous: list[JSON]) -> list[JSON]:
    return _apply(k8s, kr, c.policies, n, previous, MARKER_NS)


def _apply(k8s: ControlPlane, kr: KubeRouterFirewall, policies: list[JSON], n: int, previous: list[JSON],
           marker_ns: str) -> list[JSON]:
    """Replace the previous case's policies with these, and wait until kube-router's rules show them (a marker
    policy, created last, selecting the marker Pod of `marker_ns`)."""
    for pol in previous:
        md = pol["metadata"]
        k8s.must("DELETE", f"/apis/networking.k8s.io/v1/namespaces/{md['namespace']}/networkpolicies/{md['name']}")
    marker = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": f"sync-{n}", "namespace": marker_ns},
              "spec": {"podSelector": {"matchLabels": {"marker": "yes"}}, "ingress": [{}]}}
    now = [*policies, marker]
    for pol in now:
        k8s.apply(copy.deepcopy(pol))
    kr.wait_rules(f'run through nw policy sync-{n}"', gone=f'run through nw policy sync-{n - 1}"' if n else None)
    return now


def test_svcctl_agrees_with_kube_router_on_real_packets(
        k8s: ControlPlane, netpol_node: tuple[RoutedNode, KubeRouterFirewall, list[LabCase]]) -> None:
    node, kr, cases = netpol_node
    # with no policy every case's packet must get through: the servers, routes and sources are right
    baseline = [c for c in cases if not _send(node, c)]
    assert not baseline, [c.id for c in baseline]
    rows: list[tuple[str, bool | None, bool, bool | None]] = []
    previous: list[JSON] = []
    for n, c in enumerate(cases):
        previous = _apply_case(k8s, kr, c, n, previous)
        rows.append((c.id, _svcctl(k8s, c), _send(node, c), c.documented))
    agree = [r for r in rows if r[1] is r[2]]
    disagree = [r for r in rows if r[1] is not r[2]]
    through = sum(1 for r in rows if r[2])
    assert through >= 10 and len(rows) - through >= 10, "the cases must both let through and stop packets"
    dns = sum(1 for c in cases if c.dns is not None)
    FIGURES.append(f"NetworkPolicy on real packets (kube-router {KUBE_ROUTER_VERSION} netpol controller): svcctl "
                   f"agrees on {len(agree)}/{len(rows)} cases ({len(rows) - dns} documented, {dns} DNS egress; "
                   f"{through} got through, "
                   f"{len(rows) - through} stopped)"
                   + (f"; disagrees on {', '.join(r[0] for r in disagree)}" if disagree else ""))
    print("\n".join(f"{cid}: svcctl {s} kube-router {k} documented {d}" for cid, s, k, d in rows))
    assert not disagree, "\n".join(f"{cid}: svcctl {s}, kube-router let through: {k}, documented {d}"
                                   for cid, s, k, d in disagree)


# ------------------------------------------------------------------------------------------------ masquerade


MQ_NS, MQ_SYNC_NS, MQ_NODE = "kr-mq", "kr-mq-sync", "kr-node-m"
MQ_DB_IP, MQ_CLIENT_IP = "198.18.70.10", "198.18.70.20"


def _mq_pod(name: str, labels: dict[str, str], ip: str, ports: list[JSON] | None = None) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": MQ_NS, "labels": labels},
            "spec": {"nodeName": MQ_NODE, "containers": [{"name": "c", "image": "registry.invalid/c:1",
                                                          "ports": ports or []}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": NODE_IP,
                       "hostIPs": [{"ip": NODE_IP}],
                       "conditions": [{"type": "Ready", "status": "True"},
                                      {"type": "ContainersReady", "status": "True"}]}}


def _mq_policy(name: str, spec: JSON) -> JSON:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": MQ_NS}, "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                                                                     **spec}}


MQ_CASES: list[tuple[str, list[JSON]]] = [
    ("no-policy", []),
    ("default-deny-ingress", [_mq_policy("deny", {"policyTypes": ["Ingress"]})]),
    ("frontend-only", [_mq_policy("frontend-only", {"ingress": [{"from": [
        {"podSelector": {"matchLabels": {"role": "frontend"}}}]}]})]),
    ("node-ip-block-only", [_mq_policy("from-node", {"ingress": [{"from": [{"ipBlock": {"cidr": f"{NODE_IP}/32"}}]}]})]),
]


def test_same_node_masquerade_through_the_real_kube_proxy(k8s: ControlPlane, run_cli: Any, tmp_path: Path) -> None:
    """A client and its backend on one node, the connection to the ClusterIP masqueraded by the real kube-proxy
    (masqueradeAll), kube-router enforcing: svcctl's trace (reading that node's real rules) must decide each
    policy as the packets do."""
    from .proxy import KubeProxy

    node = RoutedNode()
    created: list[str] = []
    try:
        node.start()
        for name in (MQ_NS, MQ_SYNC_NS):
            k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            created.append(f"/api/v1/namespaces/{name}")
        k8s.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": MQ_NODE},
                   "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}],
                              "conditions": [{"type": "Ready", "status": "True"}]}})
        created.append(f"/api/v1/nodes/{MQ_NODE}")
        pods = [_mq_pod("db-0", {"app": "db"}, MQ_DB_IP, [{"name": "redis", "containerPort": 6379}]),
                _mq_pod("frontend", {"role": "frontend"}, MQ_CLIENT_IP), _marker_pod(MQ_SYNC_NS, MQ_NODE)]
        for obj in pods:
            k8s.apply(obj)
            created.append(f"/api/v1/namespaces/{obj['metadata']['namespace']}/pods/{obj['metadata']['name']}")
        svc = k8s.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": MQ_NS},
                         "spec": {"selector": {"app": "db"},
                                  "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}]}})
        created.append(f"/api/v1/namespaces/{MQ_NS}/services/db")
        vip = svc["spec"]["clusterIP"]
        db_ns = node.add_pod(MQ_DB_IP)
        client_ns = node.add_pod(MQ_CLIENT_IP)
        node.serve(db_ns, 6379, udp=False)
        kubeconfig = k8s.write_kubeconfig(tmp_path / "admin.kubeconfig")
        with KubeProxy(k8s, node.node, MQ_NODE, "iptables", tmp_path / "kube-proxy", masquerade_all=True), \
                KubeRouterFirewall(k8s, node.node, MQ_NODE, tmp_path / "kube-router", KR_SERVICE_CIDR) as kr:
            for _ in range(300):  # kube-proxy has the endpoint programmed
                if node.probe(client_ns, [("", vip, 6379, "TCP")])[0] == "ok":
                    break
            else:
                raise AssertionError(f"{vip}:6379 never answered through kube-proxy")
            rows: list[tuple[str, bool | None, bool]] = []
            previous: list[JSON] = []
            for n, (cid, policies) in enumerate(MQ_CASES):
                previous = _apply(k8s, kr, policies, n, previous, MQ_SYNC_NS)
                code, out, err = run_cli(["trace", "db", "-n", MQ_NS, "--kubeconfig", str(kubeconfig), "--netns",
                                          node.node, "--node", MQ_NODE, "--mode", "iptables", "--no-dns",
                                          "--from-pod", f"{MQ_NS}/frontend", "-o", "json"])
                assert code in (0, 1), err
                doc = json.loads(out)
                hop = next(h for h in doc["ports"][0]["hops"] if h["hop"] == "policy")
                (backend,) = hop["data"]["backends"]
                wire = any(node.probe(client_ns, [("", vip, 6379, "TCP")], timeout=t)[0] == "ok" for t in (1.0, 3.0))
                rows.append((cid, backend["allowed"], wire))
                print(cid, hop["summary"], hop["details"][:3], "wire:", wire)
    finally:
        for pol in k8s.list(f"/apis/networking.k8s.io/v1/namespaces/{MQ_NS}/networkpolicies") + k8s.list(
                f"/apis/networking.k8s.io/v1/namespaces/{MQ_SYNC_NS}/networkpolicies"):
            md = pol["metadata"]
            k8s.request("DELETE", f"/apis/networking.k8s.io/v1/namespaces/{md['namespace']}/networkpolicies/"
                                  f"{md['name']}")
        for path in reversed(created):
            k8s.request("DELETE", path)
        node.close()
    disagree = [r for r in rows if r[1] is not r[2]]
    FIGURES.append(f"NetworkPolicy, same-node client masqueraded by the real kube-proxy: svcctl agrees with "
                   f"kube-router on {len(rows) - len(disagree)}/{len(rows)} policies")
    assert not disagree, disagree

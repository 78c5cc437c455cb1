"""NetworkPolicy (networking.k8s.io/v1) and AdminNetworkPolicy tiers, evaluated for one connection.

Pure logic over the API's JSON: a client (a Pod, an IP, or "a Pod on the chosen node" whose labels are unknown)
opens a connection to a Service; after kube-proxy's DNAT the packet goes to a backend Pod's IP on the resolved
targetPort with the Service port's protocol. The connection needs the client's Egress and the backend's
Ingress to allow it. The rules are the API reference's, not an implementation's:

- a Pod is isolated for a direction when any policy of its namespace selects it and has that direction in its
  effective policyTypes (omitted policyTypes = Ingress, plus Egress when `egress` has rules);
- policies are additive: isolated traffic is allowed when any rule of any applying policy matches;
- a rule matches when one of its peers and one of its ports match (an absent or empty list matches all);
- one peer with namespaceSelector AND podSelector needs both; two peers are alternatives;
- ipBlock is matched against the source address the backend sees (the node's IP when kube-proxy masquerades,
  or a hostNetwork client) and matches Pod IPs too;
- a hostNetwork Pod is matched by no pod or namespace selector; traffic from the backend's own node and from a
  Pod to itself is always allowed (the documentation's two exceptions).

Answers are three-valued where the input cannot decide (a client whose labels are unknown, a Namespace whose
labels the input lacks): `None` is "depends", never a guess.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from svcctl.analysis.trace import Hop
from svcctl.findings import Severity
from svcctl.findings import Verdict as HopVerdict
from svcctl.lazydc import dataclass, field
from svcctl.model import Finding

JSON = dict[str, Any]
Tri = bool | None  # True, False, or None = the input cannot tell

INGRESS, EGRESS = "ingress", "egress"
NAME_LABEL = "kubernetes.io/metadata.name"
# labels every controller adds to Pods: never worth putting in a suggested selector
_NOISY_LABELS = ("pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
                 "pod-template-generation", "batch.kubernetes.io/controller-uid", "controller-uid")


class PolicyInputError(ValueError):
    """A policy the evaluator cannot read (a malformed selector, CIDR or port)."""


def _tri_or(values: list[Tri]) -> Tri:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _tri_and(a: Tri, b: Tri) -> Tri:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _d(obj: Any, what: str) -> JSON:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise PolicyInputError(f"{what}: expected a mapping, found {type(obj).__name__}")
    return obj


def _l(obj: Any, what: str) -> list[Any]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise PolicyInputError(f"{what}: expected a list, found {type(obj).__name__}")
    return obj


# ------------------------------------------------------------------------------------------------ selectors


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.op == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.op == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True)
class Selector:
    """A metav1.LabelSelector: matchLabels AND matchExpressions; the empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    @classmethod
    def from_dict(cls, d: Any, what: str = "selector") -> Selector:
        d = _d(d, what)
        ml = tuple(sorted((str(k), str(v)) for k, v in _d(d.get("matchLabels"), what).items()))
        exprs: list[Requirement] = []
        for e in _l(d.get("matchExpressions"), what):
            e = _d(e, what)
            op = str(e.get("operator") or "")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise PolicyInputError(f"{what}: unknown operator {op!r}")
            vals = tuple(str(v) for v in _l(e.get("values"), what))
            exprs.append(Requirement(str(e.get("key") or ""), op, vals))
        return cls(ml, tuple(exprs))

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.expressions

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.expressions)

    def keys(self) -> set[str]:
        return {k for k, _ in self.match_labels} | {r.key for r in self.expressions}

    def describe(self) -> str:
        if self.empty:
            return "{} (all)"
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for r in self.expressions:
            if r.op in ("In", "NotIn"):
                parts.append(f"{r.key} {r.op.lower()} ({','.join(r.values)})")
            else:
                parts.append(r.key if r.op == "Exists" else f"!{r.key}")
        return ",".join(parts)


# ------------------------------------------------------------------------------------------------ policies


@dataclass
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None  # None = every port of the protocol
    end_port: int | None = None
    named_any_protocol: bool = False  # AdminNetworkPolicy namedPort: the container port's protocol decides

    @classmethod
    def from_dict(cls, d: Any, what: str) -> PolicyPort:
        d = _d(d, what)
        port = d.get("port")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if port is not None and not isinstance(port, int | str):
            raise PolicyInputError(f"{what}: port {port!r} is neither a number nor a name")
        end = d.get("endPort")
        if end is not None and not isinstance(end, int):
            raise PolicyInputError(f"{what}: endPort {end!r} is not a number")
        return cls(str(d.get("protocol") or "TCP"), port, end)

    def describe(self) -> str:
        if self.port is None:
            return f"any/{self.protocol}"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"


@dataclass
class IPBlock:
    cidr: str
    except_: list[str] = field(default_factory=list)

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
            net = ipaddress.ip_network(self.cidr, strict=False)
        except ValueError:
            return False
        if addr.version != net.version or addr not in net:
            return False
        for ex in self.except_:
            try:
                if addr in ipaddress.ip_network(ex, strict=False):
                    return False
            except ValueError:
                continue
        return True

    def describe(self) -> str:
        return f"ipBlock {self.cidr}" + (f" except {', '.join(self.except_)}" if self.except_ else "")


@dataclass
class Peer:
    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None

    @classmethod
    def from_dict(cls, d: Any, what: str) -> Peer:
        d = _d(d, what)
        ps = Selector.from_dict(d["podSelector"], what) if d.get("podSelector") is not None else None
        ns = Selector.from_dict(d["namespaceSelector"], what) if d.get("namespaceSelector") is not None else None
        ib = None
        if d.get("ipBlock") is not None:
            b = _d(d["ipBlock"], what)
            cidr = str(b.get("cidr") or "")
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise PolicyInputError(f"{what}: ipBlock cidr {cidr!r} is not a CIDR") from None
            ib = IPBlock(cidr, [str(x) for x in _l(b.get("except"), what)])
        return cls(ps, ns, ib)

    @property
    def both_selectors(self) -> bool:
        return self.pod_selector is not None and self.namespace_selector is not None

    def describe(self) -> str:
        if self.ip_block is not None:
            return self.ip_block.describe()
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {self.namespace_selector.describe()}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector.describe()}")
        return " AND ".join(parts) or "(empty peer)"


@dataclass
class Rule:
    peers: list[Peer] = field(default_factory=list)  # empty = every peer
    ports: list[PolicyPort] = field(default_factory=list)  # empty = every port

    def describe(self) -> str:
        who = " OR ".join(p.describe() for p in self.peers) if self.peers else "anyone"
        ports = ", ".join(p.describe() for p in self.ports) if self.ports else "any port"
        return f"{who}; {ports}"


@dataclass
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: Selector
    ingress: list[Rule] = field(default_factory=list)
    egress: list[Rule] = field(default_factory=list)
    policy_types: list[str] = field(default_factory=list)  # effective, lower-case: ingress / egress
    types_inferred: bool = False

    @classmethod
    def from_dict(cls, d: JSON) -> NetworkPolicy:
        meta = _d(d.get("metadata"), "metadata")
        name = str(meta.get("name") or "")
        what = f"NetworkPolicy {meta.get('namespace') or ''}/{name}"
        spec = _d(d.get("spec"), what)
        ingress = [_rule(r, "from", f"{what} ingress[{i}]") for i, r in enumerate(_l(spec.get("ingress"), what))]
        egress = [_rule(r, "to", f"{what} egress[{i}]") for i, r in enumerate(_l(spec.get("egress"), what))]
        types = [str(t).lower() for t in _l(spec.get("policyTypes"), what)]
        inferred = not types
        if inferred:  # SetDefaults_NetworkPolicy: Ingress always, Egress only when egress has rules
            types = [INGRESS] + ([EGRESS] if egress else [])
        for t in types:
            if t not in (INGRESS, EGRESS):
                raise PolicyInputError(f"{what}: unknown policyType {t!r}")
        return cls(str(meta.get("namespace") or "default"), name,
                   Selector.from_dict(spec.get("podSelector"), f"{what} podSelector"),
                   ingress, egress, types, inferred)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> list[Rule]:
        return self.ingress if direction == INGRESS else self.egress


def _rule(d: Any, peers_key: str, what: str) -> Rule:
    d = _d(d, what)
    return Rule([Peer.from_dict(p, f"{what}.{peers_key}[{i}]") for i, p in enumerate(_l(d.get(peers_key), what))],
                [PolicyPort.from_dict(p, f"{what}.ports[{i}]") for i, p in enumerate(_l(d.get("ports"), what))])


def parse_policies(objects: list[JSON]) -> list[NetworkPolicy]:
    return [NetworkPolicy.from_dict(o) for o in objects]


# ------------------------------------------------------------------------------------------------ who talks


@dataclass
class NamespaceInfo:
    """A Namespace's labels; `known` False when the input has no Namespace object (only the name label is sure)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    known: bool = True

    def __post_init__(self) -> None:
        self.labels = {NAME_LABEL: self.name, **self.labels}


@dataclass
class Endpoint:
    """One side of the connection.

    kind "pod": a Pod whose labels are known; "ip": an address that is no known Pod (an outside client);
    "node": a node's own address (`--from node/NAME`); "anypod": a Pod of the chosen node whose namespace and
    labels are unknown; "nspod": some Pod of a known namespace."""

    kind: str
    ip: str | None = None
    namespace: NamespaceInfo | None = None
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    node: str = ""
    node_ips: list[str] = field(default_factory=list)
    ports: list[tuple[str, int, str]] = field(default_factory=list)  # (name, containerPort, protocol)
    label: str = ""  # how to name it in output

    @property
    def key(self) -> str:
        if self.kind == "pod" and self.namespace is not None:
            return f"{self.namespace.name}/{self.name}"
        return self.ip or "a Pod on the chosen node"

    @property
    def selectable(self) -> bool:
        """Pod and namespace selectors can match it (a Pod on the Pod network, not the node's)."""
        return self.kind in ("pod", "anypod", "nspod") and not self.host_network


def pod_endpoint(raw: JSON, namespace: NamespaceInfo, node_ips: list[str] | None = None) -> Endpoint:
    """An Endpoint from a Pod's API JSON (labels, IP, hostNetwork, node, container ports)."""
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    ports: list[tuple[str, int, str]] = []
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for p in (c or {}).get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
                ports.append((str(p.get("name") or ""), int(p["containerPort"]), str(p.get("protocol") or "TCP")))
    return Endpoint("pod", str(status.get("podIP") or "") or None, namespace, str(meta.get("name") or ""),
                    {str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
                    bool(spec.get("hostNetwork")), str(spec.get("nodeName") or ""), list(node_ips or []), ports)


@dataclass
class SourceView:
    """The source of the packet as the backend sees it, and why."""

    ip: str | None
    identity: Endpoint | None  # None when the source is the node (masquerade, hostNetwork): no selector matches
    why: str
    from_backend_node: bool = False  # the documented exception: traffic from the Pod's own node is allowed


def source_seen_by(client: Endpoint, backend: Endpoint, masquerade: bool | None,
                   client_node_ip: str | None) -> SourceView:
    """Which source address reaches the backend: the client Pod's IP, or its node's when SNAT applies."""
    same_node = bool(client.node) and client.node == backend.node
    if client.kind == "pod" and client.host_network:
        ip = client.ip or client_node_ip
        return SourceView(ip, None, f"the client is a hostNetwork Pod: its traffic carries node "
                                    f"{client.node or '?'}'s IP {ip or '?'}, which no pod or namespace selector "
                                    "matches (an ipBlock can)", same_node)
    if masquerade and same_node and client.kind in ("pod", "ip"):
        # kube-proxy's SNAT is in nat POSTROUTING, after the filter FORWARD hook where the backend's node judges
        # its Pods' policies: on the node that masquerades, the policy still sees the client (real packets through
        # kube-router's controller and the real kube-proxy: tests/lab/test_lab_netpol.py)
        pre = (f"the backend sees the client address {client.ip}" if client.kind == "ip" else
               f"the backend's policy sees the client Pod IP {client.ip or '?'}")
        return SourceView(client.ip, client if client.kind == "pod" else None,
                          f"{pre}: kube-proxy masquerades this connection, but on the backend's own node "
                          f"{client.node}, so the SNAT comes after the policy (iptables-based enforcement, as "
                          "kube-router and Calico's iptables dataplane do; the order is implementation-defined)")
    if masquerade:
        return SourceView(client_node_ip, None,
                          f"kube-proxy masquerades this connection: the backend sees node "
                          f"{client.node or '?'}'s IP {client_node_ip or '?'}, not the client's "
                          "(pod and namespace selectors cannot match it; an ipBlock can)", same_node)
    if client.kind == "node":
        return SourceView(client.ip, None, f"the client is node {client.node or '?'}: its traffic carries its IP "
                                           f"{client.ip or '?'}, which no pod or namespace selector matches (an "
                                           "ipBlock can)", same_node)
    if client.kind == "ip":
        return SourceView(client.ip, None, f"the backend sees the client address {client.ip}")
    if client.kind in ("anypod", "nspod"):
        return SourceView(None, client, f"the client is {client.label or 'some Pod'} (its labels are unknown)")
    extra = "" if masquerade is False else " (assuming kube-proxy does not masquerade it)"
    return SourceView(client.ip, client, f"the backend sees the client Pod IP {client.ip or '?'}{extra}")


# ------------------------------------------------------------------------------------------------ matching


@dataclass
class Match:
    """A rule that matched (or one that would match but for one half of a one-peer AND)."""

    policy: str  # ns/name
    direction: str
    rule: int
    peer: int | None  # None: the rule had no peers (everyone)
    text: str

    def to_json(self) -> JSON:
        return {"policy": self.policy, "direction": self.direction, "rule": self.rule, "peer": self.peer}


@dataclass
class DirectionVerdict:
    """One direction at one Pod: which policies apply, whether the traffic is allowed, and by which rule."""

    direction: str
    pod: str
    applies: list[str] = field(default_factory=list)  # policies selecting the Pod with this direction
    allowed: Tri = True
    matches: list[Match] = field(default_factory=list)  # allowing rules (first one decides the wording)
    notes: list[str] = field(default_factory=list)  # why, in words
    traps: list[str] = field(default_factory=list)  # the one-peer-AND / two-peer-OR explanations
    not_applicable: str = ""  # set when this direction is not evaluated at all (why)


def _pod_peer(peer: Peer, policy_ns: str, other: Endpoint, notes: list[str]) -> Tri:
    """Does a selector peer (no ipBlock) select `other`?"""
    if not other.selectable:
        return False
    if other.kind == "anypod":
        # the only peers that match every Pod: namespaceSelector {} with podSelector absent or {}
        if peer.namespace_selector is not None and peer.namespace_selector.empty and (
                peer.pod_selector is None or peer.pod_selector.empty):
            return True
        return None
    ns = other.namespace
    assert ns is not None
    if peer.namespace_selector is None:
        ns_ok: Tri = ns.name == policy_ns
    elif ns.known or peer.namespace_selector.keys() <= {NAME_LABEL}:
        ns_ok = peer.namespace_selector.matches(ns.labels)
    else:
        ns_ok = None
        notes.append(f"namespace {ns.name}'s labels are not in the input: cannot tell whether "
                     f"namespaceSelector {peer.namespace_selector.describe()} selects it")
    if other.kind == "nspod":  # some Pod of the namespace: only an empty podSelector is sure to match it
        pod_ok: Tri = True if peer.pod_selector is None or peer.pod_selector.empty else None
    else:
        pod_ok = peer.pod_selector.matches(other.labels) if peer.pod_selector is not None else True
    return _tri_and(ns_ok, pod_ok)


def peer_matches(peer: Peer, policy_ns: str, other: Endpoint, other_ip: str | None, notes: list[str]) -> Tri:
    if peer.ip_block is not None:
        if other_ip is None:
            return None
        return peer.ip_block.contains(other_ip)
    return _pod_peer(peer, policy_ns, other, notes)


def port_matches(pp: PolicyPort, port: int, protocol: str, backend: Endpoint) -> Tri:
    """A policy port against the backend's (resolved) target port; names resolve on the backend's containers."""
    if pp.protocol.upper() != protocol.upper() and not pp.named_any_protocol:
        return False
    if pp.port is None:
        return True
    if isinstance(pp.port, int):
        if pp.end_port is not None:
            return pp.port <= port <= pp.end_port
        return pp.port == port
    if backend.kind != "pod":
        return None
    return any(n == pp.port and p == port and pr.upper() == protocol.upper() for n, p, pr in backend.ports)


def _applies(pol: NetworkPolicy, pod: Endpoint, direction: str) -> Tri:
    if direction not in pol.policy_types:
        return False
    if pod.kind == "anypod":
        return None
    if pod.kind != "pod" or pod.host_network or pod.namespace is None or pod.namespace.name != pol.namespace:
        return False
    return pol.pod_selector.matches(pod.labels)


def evaluate(policies: list[NetworkPolicy], direction: str, subject: Endpoint, other: Endpoint,
             other_ip: str | None, port: int, protocol: str, backend: Endpoint) -> DirectionVerdict:
    """NetworkPolicy's answer for `subject` (the backend for ingress, the client for egress) talking to `other`.

    `other_ip` is the peer address `subject` sees; `backend` is whose named ports the policy ports name."""
    v = DirectionVerdict(direction, subject.key)
    if subject.kind in ("ip", "node"):
        v.not_applicable = f"{subject.key} is not a Pod: NetworkPolicy does not apply to it"
        return v
    if subject.host_network:
        v.not_applicable = (f"{subject.key} is a hostNetwork Pod: NetworkPolicy implementations do not isolate it "
                            "(it shares the node's network)")
        return v
    if subject.kind == "anypod":
        v.not_applicable = ("the client's namespace and labels are unknown (give --from-pod NS/POD): its egress "
                            "policies are not evaluated")
        return v
    if subject.kind == "nspod":
        v.not_applicable = "the client Pods' labels are unknown: their egress policies are not evaluated"
        return v
    applying: list[NetworkPolicy] = []
    for pol in policies:
        if _applies(pol, subject, direction):
            applying.append(pol)
    v.applies = [p.key for p in applying]
    if not applying:
        v.allowed = True
        v.notes.append(f"no NetworkPolicy selects {subject.key} for {direction.capitalize()}: not isolated")
        return v
    results: list[Tri] = []
    for pol in applying:
        rules = pol.rules(direction)
        if not rules:
            v.notes.append(f"{pol.key} selects {subject.key} for {direction.capitalize()} and has no "
                           f"{direction} rule: it only isolates")
        for ri, rule in enumerate(rules):
            port_ok = _tri_or([port_matches(pp, port, protocol, backend) for pp in rule.ports]) if rule.ports \
                else True
            if not rule.peers:
                peer_results: list[Tri] = [True]
            else:
                peer_results = [peer_matches(p, pol.namespace, other, other_ip, v.notes) for p in rule.peers]
            peer_ok = _tri_or(peer_results)
            ok = _tri_and(peer_ok, port_ok)
            results.append(ok)
            where = f"{pol.key} {direction} rule {ri}"
            if ok is True:
                pi = None if not rule.peers else next(i for i, r in enumerate(peer_results) if r is True)
                text = (f"{where} ({rule.peers[pi].describe()}" if pi is not None else f"{where} (from anyone")
                text = text.replace("(from anyone", "(to anyone" if direction == EGRESS else "(from anyone")
                v.matches.append(Match(pol.key, direction, ri, pi, text + f"; {_ports_text(rule)})"))
                if pi is not None:
                    _or_trap(v, pol, direction, ri, rule, pi, other)
            elif ok is False:
                if peer_ok is True and port_ok is False:
                    v.notes.append(f"{where} admits the peer but not port {port}/{protocol} "
                                   f"(it allows {_ports_text(rule)})")
                elif rule.peers:
                    _and_trap(v, pol, direction, ri, rule, other)
    v.allowed = _tri_or(results)
    return v


def _ports_text(rule: Rule) -> str:
    return ", ".join(p.describe() for p in rule.ports) if rule.ports else "any port"


def _and_trap(v: DirectionVerdict, pol: NetworkPolicy, direction: str, ri: int, rule: Rule, other: Endpoint) -> None:
    """A one-peer AND that the other side meets half of: the classic trap, explained."""
    if other.kind != "pod" or not other.selectable or other.namespace is None:
        return
    for pi, peer in enumerate(rule.peers):
        if not peer.both_selectors:
            continue
        assert peer.namespace_selector is not None and peer.pod_selector is not None
        ns_ok = peer.namespace_selector.matches(other.namespace.labels)
        pod_ok = peer.pod_selector.matches(other.labels)
        if ns_ok != pod_ok:
            met, missed = (("its namespace matches namespaceSelector", f"its labels do not match podSelector "
                            f"{peer.pod_selector.describe()}") if ns_ok else
                           (f"its labels match podSelector {peer.pod_selector.describe()}",
                            f"namespace {other.namespace.name} does not match namespaceSelector "
                            f"{peer.namespace_selector.describe()}"))
            v.traps.append(f"{pol.key} {direction} rule {ri} peer {pi} puts namespaceSelector and podSelector in "
                           f"ONE element, so a peer must match both (AND): for {other.key} {met} but {missed}. "
                           "Two separate elements (`- namespaceSelector: …` and `- podSelector: …`) would admit "
                           "either (OR)")


def _or_trap(v: DirectionVerdict, pol: NetworkPolicy, direction: str, ri: int, rule: Rule, pi: int, other: Endpoint) -> None:
    """Allowed through a lone namespaceSelector or podSelector peer whose sibling holds the other half: the
    author may have meant one element (AND)."""
    peer = rule.peers[pi]
    if peer.ip_block is not None or peer.both_selectors or other.kind != "pod":
        return
    lone_ns = peer.namespace_selector is not None
    for qi, q in enumerate(rule.peers):
        if qi == pi or q.ip_block is not None or q.both_selectors:
            continue
        if lone_ns and q.pod_selector is not None and q.namespace_selector is None and not q.pod_selector.matches(
                other.labels):
            v.traps.append(f"{pol.key} {direction} rule {ri}: peers {pi} (namespaceSelector) and {qi} (podSelector) "
                           f"are separate elements, so they are alternatives (OR): {other.key} is admitted by its "
                           f"namespace alone although its labels do not match podSelector "
                           f"{q.pod_selector.describe()}. If only those Pods were meant, put both selectors in ONE "
                           "element (AND)")
        if not lone_ns and q.namespace_selector is not None and q.pod_selector is None:
            assert other.namespace is not None
            if other.namespace.known and not q.namespace_selector.matches(other.namespace.labels):
                v.traps.append(f"{pol.key} {direction} rule {ri}: peers {pi} (podSelector) and {qi} "
                               f"(namespaceSelector) are alternatives (OR): {other.key} is admitted by its labels "
                               f"alone (podSelector without namespaceSelector means the policy's own namespace "
                               f"{pol.namespace}). Put both selectors in ONE element for AND")


# ------------------------------------------------------------------------------------------------ the connection


@dataclass
class BackendResult:
    pod: str
    ip: str
    allowed: Tri
    egress: DirectionVerdict
    ingress: DirectionVerdict
    source: SourceView
    details: list[str] = field(default_factory=list)

    @property
    def denied_by(self) -> str | None:
        if self.egress.allowed is False:
            return EGRESS
        if self.ingress.allowed is False:
            return INGRESS
        return None

    @property
    def decided_by(self) -> list[str]:
        return list(dict.fromkeys([*self.egress.applies, *self.ingress.applies]))

    def to_json(self) -> JSON:
        return {"pod": self.pod, "allowed": self.allowed, "decidedBy": self.decided_by, "deniedBy": self.denied_by}


def connection(policies: list[NetworkPolicy], client: Endpoint, backend: Endpoint, port: int, protocol: str,
               masquerade: bool | None = None, client_node_ip: str | None = None,
               admin: tuple[list[AdminPolicy], list[AdminPolicy]] | None = None) -> BackendResult:
    """client → backend:port/protocol, after DNAT: the client's Egress AND the backend's Ingress (each through
    the AdminNetworkPolicy, NetworkPolicy and BaselineAdminNetworkPolicy tiers when `admin` is given)."""
    anp, banp = admin or ([], [])

    def judge(direction: str, subject: Endpoint, other: Endpoint, other_ip: str | None) -> DirectionVerdict:
        return tiered(anp, banp, policies, direction, subject, other, other_ip, port, protocol, backend)

    src = source_seen_by(client, backend, masquerade, client_node_ip)
    eg = judge(EGRESS, client, backend, backend.ip)
    if backend.kind == "pod" and client.kind == "pod" and client.key == backend.key:
        ing = DirectionVerdict(INGRESS, backend.key, notes=["a Pod cannot block traffic to itself (documented exception)"])
        ing.applies = [p.key for p in policies if _applies(p, backend, INGRESS)]
    elif src.from_backend_node and src.identity is None:
        ing = DirectionVerdict(INGRESS, backend.key, notes=[
            f"traffic from the Pod's own node ({backend.node}) is always allowed (documented exception)"])
        ing.applies = [p.key for p in policies if _applies(p, backend, INGRESS)]
    else:
        ing = judge(INGRESS, backend, src.identity or Endpoint("ip", src.ip), src.ip)
    allowed = _tri_and(eg.allowed, ing.allowed)
    res = BackendResult(backend.key, backend.ip or "", allowed, eg, ing, src)
    res.details = describe(res)
    return res


def describe(r: BackendResult) -> list[str]:
    """The result for one backend, in lines: the verdict, the deciding rule of each direction, the traps.
    A direction no policy applies to says nothing (the hop's summary says it once)."""
    word = {True: "allowed", False: "DENIED", None: "depends on the client"}[r.allowed]
    if r.denied_by:
        word += f" by {r.denied_by}"
    out = [f"{r.pod} ({r.ip}): {word}"]
    for v, label in ((r.egress, "egress of the client"), (r.ingress, "ingress of the backend")):
        if v.not_applicable or not v.applies:
            out += [f"  {label}: {n}" for n in dict.fromkeys(v.notes) if "documented exception" in n]
            continue
        if v.matches:
            out.append(f"  {label}: allowed by {v.matches[0].text}"
                       + (f" and {len(v.matches) - 1} more rule(s)" if len(v.matches) > 1 else ""))
        elif v.allowed is False:
            out.append(f"  {label}: no rule of {', '.join(v.applies)} admits it (isolated by "
                       f"{'them' if len(v.applies) > 1 else 'it'})")
        else:
            out.append(f"  {label}: cannot tell from the input ({', '.join(v.applies)} apply)")
        out += [f"  {label}: {n}" for n in dict.fromkeys(v.notes)]
        out += [f"  {label}: trap: {t}" for t in v.traps]
    return out


# ------------------------------------------------------------------------------------------------ the fix to add


def _flow(obj: Any) -> str:
    """A value in YAML flow style, on one line (what a hint can carry)."""
    return json.dumps(obj, separators=(", ", ": ")).replace('"', "")


def _labels_for_selector(labels: dict[str, str], prefer: dict[str, str] | None = None) -> dict[str, str]:
    if prefer:
        return dict(sorted(prefer.items()))
    return {k: v for k, v in sorted(labels.items()) if k not in _NOISY_LABELS}


def _port_spec(port: int, protocol: str) -> list[JSON]:
    return [{"protocol": protocol, "port": port}]


def ingress_fix(r: BackendResult, client: Endpoint, port: int, protocol: str) -> str:
    pols = r.ingress.applies
    where = f"to {pols[0]}'s spec.ingress" if pols else "an ingress rule"
    peer: JSON
    if r.source.identity is not None and client.kind == "pod" and client.namespace is not None:
        peer = {"namespaceSelector": {"matchLabels": {NAME_LABEL: client.namespace.name}},
                "podSelector": {"matchLabels": _labels_for_selector(client.labels)}}
    elif r.source.ip:
        peer = {"ipBlock": {"cidr": r.source.ip + ("/128" if ":" in r.source.ip else "/32")}}
    else:
        return f"add {where} a rule whose `from` admits the client, with ports {port}/{protocol}"
    rule = {"from": [peer], "ports": _port_spec(port, protocol)}
    return f"add {where}: - {_flow(rule)}"


def egress_fix(r: BackendResult, client: Endpoint, backend: Endpoint, port: int, protocol: str,
               backend_selector: dict[str, str] | None = None) -> str:
    pols = r.egress.applies
    where = f"to {pols[0]}'s spec.egress" if pols else "an egress rule"
    assert backend.namespace is not None
    peer = {"namespaceSelector": {"matchLabels": {NAME_LABEL: backend.namespace.name}},
            "podSelector": {"matchLabels": _labels_for_selector(backend.labels, backend_selector)}}
    rule = {"to": [peer], "ports": _port_spec(port, protocol)}
    return f"add {where}: - {_flow(rule)}"


DNS_RULE = {"to": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


@dataclass
class DNSEgress:
    """Whether the client's Egress lets it reach the cluster DNS on port 53 (UDP, then TCP)."""

    allowed: Tri
    applies: list[str]
    protocols_denied: list[str]
    hint: str
    details: list[str]


def dns_egress(policies: list[NetworkPolicy], client: Endpoint, dns_pods: list[Endpoint],
               dns_ips: list[str], dns_port: int = 53,
               admin: tuple[list[AdminPolicy], list[AdminPolicy]] | None = None,
               ports: dict[str, int] | None = None, rule: JSON | None = None) -> DNSEgress | None:
    """The client's Egress to the cluster DNS: to each DNS Pod (after DNAT) on its targetPort for 53/UDP and
    53/TCP (`ports`: protocol -> targetPort; default `dns_port`). `rule` is the egress rule the hint suggests.

    Without the DNS Pods in the input, an unknown Pod on the DNS Service's IP stands in: a definite "denied"
    then needs every egress rule to miss port 53 or every peer to miss."""
    if client.kind != "pod" or client.host_network:
        return None
    targets = dns_pods or [Endpoint("anypod", ip, label="the cluster DNS") for ip in dns_ips[:1]] or [
        Endpoint("anypod", None, label="the cluster DNS")]
    denied: list[str] = []
    verdicts: list[DirectionVerdict] = []
    answers: list[Tri] = []
    for proto in ("UDP", "TCP"):
        per: list[Tri] = []
        for t in targets:
            v = tiered(*(admin or ([], [])), policies, EGRESS, client, t, t.ip, (ports or {}).get(proto, dns_port),
                       proto, t)
            verdicts.append(v)
            per.append(v.allowed)
        ans = _tri_or(per)
        answers.append(ans)
        if ans is False:
            denied.append(proto)
    applies = list(dict.fromkeys(p for v in verdicts for p in v.applies))
    if not applies:
        return DNSEgress(True, [], [], "", [])
    allowed: Tri = False if "UDP" in denied else (True if answers[0] is True else None)
    where = f"to {applies[0]}'s spec.egress" if applies else "an egress rule"
    hint = f"add {where}: - {_flow(rule or DNS_RULE)}"
    details = [f"egress of {client.key} to the cluster DNS on {(ports or {}).get(p, dns_port)}/{p}: denied by "
               f"{', '.join(applies)}" for p in denied]
    return DNSEgress(allowed, applies, denied, hint, details)


# ------------------------------------------------------------------------------------------------ masquerade


def masquerades(words: list[str], client_ip: str | None, client_is_node: bool) -> bool | None:
    """Whether kube-proxy's masquerade rules (in the dataplane's words) SNAT a connection from `client_ip`."""
    if not words:
        return False
    verdict: bool | None = False
    for w in words:
        if w.startswith("all "):
            return True
        if w.startswith("hairpin"):
            continue
        if w.startswith("traffic not from "):
            cidr = w.removeprefix("traffic not from ").split(" ", 1)[0]
            if client_ip is None:
                verdict = None
                continue
            try:
                if ipaddress.ip_address(client_ip) not in ipaddress.ip_network(cidr, strict=False):
                    return True
            except ValueError:
                verdict = None
        elif "from the node's own addresses" in w and client_is_node:
            return True
    return verdict


# ------------------------------------------------------------------------------------------------ the trace's hop


@dataclass
class PolicyWorld:
    """What the input says about policy: per namespace read, its policies (None = could not be read)."""

    policies: dict[str, list[NetworkPolicy] | None] = field(default_factory=dict)
    namespaces: dict[str, NamespaceInfo] = field(default_factory=dict)
    unreadable: str = ""  # why the policies could not be had: the hop is skipped, never "none apply"
    admin: tuple[list[AdminPolicy], list[AdminPolicy]] | None = None  # the admin tiers, when the cluster has them

    def all_policies(self) -> list[NetworkPolicy]:
        return sorted((p for ps in self.policies.values() if ps for p in ps), key=lambda p: p.key)

    def namespace(self, name: str) -> NamespaceInfo:
        return self.namespaces.get(name) or NamespaceInfo(name, known=False)


def make_world(policies: dict[str, list[JSON] | None], namespaces: dict[str, JSON | None],
               unreadable: str = "", admin: tuple[list[JSON], list[JSON]] | None = None) -> PolicyWorld:
    w = PolicyWorld(unreadable=unreadable, admin=parse_admin(*admin) if admin is not None else None)
    for ns, items in policies.items():
        w.policies[ns] = None if items is None else parse_policies(items)
    for name, obj in namespaces.items():
        if obj is not None:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            w.namespaces[name] = NamespaceInfo(name, {str(k): str(v) for k, v in labels.items()})
    return w


def client_endpoint(world: PolicyWorld, client: JSON | None, client_ref: str | None, client_ip: str | None,
                    node: str | None, node_ips: list[str], from_node: str | None = None) -> Endpoint:
    """--from-pod (a Pod), --from IP (an address), --from node/NAME (the node itself), else "a Pod on the chosen
    node" whose labels are unknown."""
    if from_node is not None:
        return Endpoint("node", node_ips[0] if node_ips else None, node=from_node, node_ips=list(node_ips),
                        label=f"node {from_node}")
    if client is not None:
        ns = str((client.get("metadata") or {}).get("namespace") or "default")
        return pod_endpoint(client, world.namespace(ns), node_ips)
    if client_ip:
        return Endpoint("ip", client_ip, node=node or "", node_ips=list(node_ips), label=f"client {client_ip}")
    return Endpoint("anypod", None, node=node or "", node_ips=list(node_ips),
                    label=f"a Pod on node {node}" if node else "a Pod on the chosen node")


def client_words(c: Endpoint) -> str:
    if c.kind == "pod":
        return f"Pod {c.key}" + (" (hostNetwork)" if c.host_network else "")
    return c.label or c.key


def policy_hop(world: PolicyWorld, service_key: str, port_label: str,
               backends: list[tuple[str, int, str | None]], backend_pods: dict[str, JSON], client: Endpoint,
               protocol: str, masquerade_words: list[str] | None,
               service_selector: dict[str, str] | None = None,
               masquerade_known: bool | None = None) -> tuple[Hop, list[Finding], list[BackendResult]]:
    """The policy hop of one Service port: each backend (ip, resolved targetPort, Pod) against the client."""
    unreadable = [ns for ns, ps in world.policies.items() if ps is None]
    if unreadable:
        why = world.unreadable or ("NetworkPolicies of namespace " + ", ".join(unreadable) + " could not be read")
        return Hop("policy", HopVerdict.SKIPPED, f"skipped: {why}"), [], []
    if not backends:
        return Hop("policy", HopVerdict.SKIPPED, "no endpoint to evaluate NetworkPolicy against"), [], []
    policies = world.all_policies()
    masq: bool | None = masquerade_known  # the source hop's answer (kube-proxy's rules for this source)
    if masq is None and masquerade_words is not None:
        masq = masquerades(masquerade_words, client.ip if client.kind != "anypod" else None,
                           client.kind == "node" or (client.kind == "ip" and client.ip in client.node_ips))
    node_ip = client.node_ips[0] if client.node_ips else None
    results: list[BackendResult] = []
    details: list[str] = []
    for ip, tport, pod in backends:
        raw = backend_pods.get(pod or "")
        if raw is not None:
            ns = str((raw.get("metadata") or {}).get("namespace") or "default")
            be = pod_endpoint(raw, world.namespace(ns))
            be.ip = ip
        else:
            be = Endpoint("ip", ip, label=f"endpoint {ip} (no Pod in the input)")
        r = connection(policies, client, be, tport, protocol, masq, node_ip, world.admin)
        if raw is None:
            r.pod = pod or ip
        results.append(r)
        details += r.details
    head = [f"client: {client_words(client)}"]
    if results and client.kind != "anypod":
        head.append(f"source address: {results[0].source.why}")
        if results[0].egress.not_applicable:
            head.append(f"egress: {results[0].egress.not_applicable}")
    details = head + details
    denied = [r for r in results if r.allowed is False]
    unknown = [r for r in results if r.allowed is None]
    findings: list[Finding] = []
    sev = Severity.ERROR if len(denied) == len(results) else Severity.WARNING
    for direction, code in ((EGRESS, "PolicyDeniesEgress"), (INGRESS, "PolicyDeniesIngress")):
        mine = [r for r in denied if r.denied_by == direction]
        if not mine:
            continue
        first = mine[0]
        v = first.egress if direction == EGRESS else first.ingress
        pods = ", ".join(r.pod for r in mine)
        who = client_words(client)
        if direction == EGRESS:
            msg = (f"{service_key} {port_label}: the Egress of {who} does not allow {len(mine)} of "
                   f"{len(results)} backend(s) on {tport_of(first, backends)}/{protocol} ({pods})")
            dest = _endpoint_of(first, backend_pods, world)
            hint = egress_fix(first, client, dest, tport_of(first, backends), protocol, service_selector) \
                if dest is not None and dest.namespace is not None else "add an egress rule that admits the backends"
        else:
            msg = (f"{service_key} {port_label}: no Ingress rule admits {who} to {len(mine)} of {len(results)} "
                   f"backend(s) on {tport_of(first, backends)}/{protocol} ({pods})")
            hint = ingress_fix(first, client, tport_of(first, backends), protocol)
        if v.traps:
            hint = v.traps[0] + "; or " + hint
        evidence = f"isolated by {', '.join(v.applies)}; " + first.source.why
        one = mine[0].pod if len(mine) == 1 else None
        where = "networking.k8s.io/v1 NetworkPolicy"
        findings.append(
            Finding("PolicyDeniesEgress", sev, msg, pod=one, evidence=evidence, hint=hint, where=where)
            if code == "PolicyDeniesEgress" else
            Finding("PolicyDeniesIngress", sev, msg, pod=one, evidence=evidence, hint=hint, where=where))
    if denied:
        verdict = HopVerdict.BROKEN if len(denied) == len(results) else HopVerdict.WARNING
        summary = f"{len(denied)} of {len(results)} backend(s) denied for {client_words(client)}"
    elif unknown:
        verdict = HopVerdict.OK
        summary = (f"{len(results) - len(unknown)} of {len(results)} backend(s) allowed for any client; "
                   f"{len(unknown)} depend(s) on who the client is (give --from-pod NS/POD)")
    else:
        verdict = HopVerdict.OK
        applying = sorted({p for r in results for p in r.decided_by})
        summary = (f"{len(results)} backend(s) allowed for {client_words(client)}"
                   + (f" (by {', '.join(applying)})" if applying else ": no NetworkPolicy applies"))
    hop = Hop("policy", verdict, summary, details, {"backends": [r.to_json() for r in results]})
    return hop, findings, results


def tport_of(r: BackendResult, backends: list[tuple[str, int, str | None]]) -> int:
    return next((p for ip, p, _ in backends if ip == r.ip), 0)


def _endpoint_of(r: BackendResult, pods: dict[str, JSON], world: PolicyWorld) -> Endpoint | None:
    raw = pods.get(r.pod)
    if raw is None:
        return None
    ns = str((raw.get("metadata") or {}).get("namespace") or "default")
    return pod_endpoint(raw, world.namespace(ns))


def dns_finding(world: PolicyWorld, client: Endpoint, dns_pods: list[JSON], dns_ips: list[str],
                ports: dict[str, int] | None = None, rule: JSON | None = None) -> tuple[Finding | None, DNSEgress | None]:
    """PolicyDeniesDNS: the client's Egress blocks 53/UDP to the cluster DNS (the first thing a default-deny
    egress breaks), caught from the policies before any DNS query is sent. `ports` are the DNS Pods'
    targetPorts per protocol (after the kube-dns Service's translation)."""
    if client.kind != "pod":
        return None, None
    pods = [pod_endpoint(p, world.namespace(str((p.get("metadata") or {}).get("namespace") or "kube-system")))
            for p in dns_pods]
    res = dns_egress(world.all_policies(), client, pods, dns_ips, admin=world.admin, ports=ports, rule=rule)
    if res is None or res.allowed is not False:
        return None, res
    on = "+".join(f"{(ports or {}).get(p, 53)}/{p}" for p in res.protocols_denied)
    return Finding("PolicyDeniesDNS", Severity.ERROR,
                   f"the Egress of Pod {client.key} blocks DNS: port {on} to the cluster DNS is allowed by no "
                   "egress rule, so name lookups time out before any connection",
                   pod=client.key, evidence=f"isolated for Egress by {', '.join(res.applies)}",
                   hint=res.hint, where="networking.k8s.io/v1 NetworkPolicy"), res


# ------------------------------------------------------------------------------------------------ admin tiers


@dataclass
class AdminPeer:
    """An AdminNetworkPolicy peer: `namespaces` (a selector), `pods` (namespaceSelector AND podSelector),
    `nodes` (a selector on Node labels) or `networks` (CIDRs, egress only)."""

    namespaces: Selector | None = None
    pod_namespaces: Selector | None = None
    pods: Selector | None = None
    nodes: Selector | None = None
    networks: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.namespaces is not None:
            return f"namespaces {self.namespaces.describe()}"
        if self.pods is not None:
            ns = self.pod_namespaces.describe() if self.pod_namespaces is not None else "{} (all)"
            return f"pods {self.pods.describe()} in namespaces {ns}"
        if self.nodes is not None:
            return f"nodes {self.nodes.describe()}"
        return "networks " + ", ".join(self.networks)


@dataclass
class AdminRule:
    name: str
    action: str  # Allow | Deny | Pass (Pass: AdminNetworkPolicy only)
    peers: list[AdminPeer]
    ports: list[PolicyPort] | None  # None = every port


@dataclass
class AdminPolicy:
    kind: str  # AdminNetworkPolicy | BaselineAdminNetworkPolicy
    name: str
    priority: int
    subject_namespaces: Selector | None
    subject_pods: tuple[Selector, Selector] | None  # (namespaceSelector, podSelector)
    ingress: list[AdminRule] = field(default_factory=list)
    egress: list[AdminRule] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @classmethod
    def from_dict(cls, d: JSON, kind: str) -> AdminPolicy:
        meta = _d(d.get("metadata"), "metadata")
        name = str(meta.get("name") or "")
        what = f"{kind} {name}"
        spec = _d(d.get("spec"), what)
        subj = _d(spec.get("subject"), f"{what} subject")
        sns = Selector.from_dict(subj["namespaces"], what) if subj.get("namespaces") is not None else None
        sp = None
        if subj.get("pods") is not None:
            p = _d(subj["pods"], what)
            sp = (Selector.from_dict(p.get("namespaceSelector"), what), Selector.from_dict(p.get("podSelector"), what))
        if sns is None and sp is None:
            raise PolicyInputError(f"{what}: subject needs namespaces or pods")
        prio = spec.get("priority", 0 if kind == "BaselineAdminNetworkPolicy" else None)
        if not isinstance(prio, int):
            raise PolicyInputError(f"{what}: priority {prio!r} is not a number")
        return cls(kind, name, prio, sns, sp,
                   [_admin_rule(r, "from", f"{what} ingress[{i}]", kind) for i, r in
                    enumerate(_l(spec.get("ingress"), what))],
                   [_admin_rule(r, "to", f"{what} egress[{i}]", kind) for i, r in
                    enumerate(_l(spec.get("egress"), what))])

    def selects(self, pod: Endpoint) -> Tri:
        if pod.kind == "anypod":
            return None
        if pod.kind != "pod" or pod.host_network or pod.namespace is None:
            return False  # host-networked Pods are never subjects
        if self.subject_namespaces is not None:
            return self.subject_namespaces.matches(pod.namespace.labels)
        assert self.subject_pods is not None
        return self.subject_pods[0].matches(pod.namespace.labels) and self.subject_pods[1].matches(pod.labels)


def _admin_rule(d: Any, peers_key: str, what: str, kind: str) -> AdminRule:
    d = _d(d, what)
    action = str(d.get("action") or "")
    allowed = ("Allow", "Deny", "Pass") if kind == "AdminNetworkPolicy" else ("Allow", "Deny")
    if action not in allowed:
        raise PolicyInputError(f"{what}: action {action!r} is not one of {', '.join(allowed)}")
    peers: list[AdminPeer] = []
    for i, p in enumerate(_l(d.get(peers_key), what)):
        p = _d(p, f"{what}.{peers_key}[{i}]")
        if p.get("namespaces") is not None:
            peers.append(AdminPeer(namespaces=Selector.from_dict(p["namespaces"], what)))
        elif p.get("pods") is not None:
            q = _d(p["pods"], what)
            peers.append(AdminPeer(pod_namespaces=Selector.from_dict(q.get("namespaceSelector"), what),
                                   pods=Selector.from_dict(q.get("podSelector"), what)))
        elif p.get("nodes") is not None:
            peers.append(AdminPeer(nodes=Selector.from_dict(p["nodes"], what)))
        elif p.get("networks") is not None:
            nets = [str(n) for n in _l(p["networks"], what)]
            for n in nets:
                try:
                    ipaddress.ip_network(n, strict=False)
                except ValueError:
                    raise PolicyInputError(f"{what}: network {n!r} is not a CIDR") from None
            peers.append(AdminPeer(networks=nets))
        else:
            raise PolicyInputError(f"{what}.{peers_key}[{i}]: an empty peer")
    ports: list[PolicyPort] | None = None
    if d.get("ports") is not None:
        ports = []
        for p in _l(d.get("ports"), what):
            p = _d(p, what)
            if p.get("portNumber") is not None:
                num = _d(p["portNumber"], what)
                ports.append(PolicyPort(str(num.get("protocol") or "TCP"), int(num.get("port") or 0)))
            elif p.get("namedPort") is not None:
                ports.append(PolicyPort("TCP", str(p["namedPort"]), named_any_protocol=True))
            elif p.get("portRange") is not None:
                r = _d(p["portRange"], what)
                ports.append(PolicyPort(str(r.get("protocol") or "TCP"), int(r.get("start") or 0),
                                        int(r.get("end") or 0)))
    return AdminRule(str(d.get("name") or ""), action, peers, ports)


def _admin_peer_matches(peer: AdminPeer, other: Endpoint, other_ip: str | None) -> Tri:
    if peer.networks:
        if other_ip is None:
            return None
        return any(IPBlock(n).contains(other_ip) for n in peer.networks)
    if peer.nodes is not None:
        # a node peer matches traffic from or to a node's address; the Nodes' labels are not read
        return None if other.kind in ("ip", "node") else False
    if other.kind == "anypod":
        sel = peer.namespaces if peer.namespaces is not None else peer.pod_namespaces
        if sel is not None and sel.empty and (peer.pods is None or peer.pods.empty):
            return True
        return None
    if not other.selectable or other.namespace is None:
        return False
    ns = other.namespace
    sel = peer.namespaces if peer.namespaces is not None else peer.pod_namespaces
    assert sel is not None
    ns_ok: Tri = sel.matches(ns.labels) if ns.known or sel.keys() <= {NAME_LABEL} else None
    if peer.pods is None:
        return ns_ok
    if other.kind == "nspod":
        return _tri_and(ns_ok, True if peer.pods.empty else None)
    return _tri_and(ns_ok, peer.pods.matches(other.labels))


def admin_rule_matches(rule: AdminRule, other: Endpoint, other_ip: str | None, port: int, protocol: str,
                       backend: Endpoint) -> Tri:
    peer_ok = _tri_or([_admin_peer_matches(p, other, other_ip) for p in rule.peers]) if rule.peers else False
    if rule.ports is None:
        return peer_ok
    return _tri_and(peer_ok, _tri_or([port_matches(pp, port, protocol, backend) for pp in rule.ports]))


@dataclass
class TierResult:
    """What the admin tiers said for one direction: a final Allow/Deny, a Pass, or nothing matched."""

    action: str | None  # Allow | Deny | Pass | None (no rule matched) | "?" (cannot tell)
    policy: str = ""
    rule: int = -1
    text: str = ""
    applies: list[str] = field(default_factory=list)


def admin_tier(policies: list[AdminPolicy], direction: str, subject: Endpoint, other: Endpoint,
               other_ip: str | None, port: int, protocol: str, backend: Endpoint) -> TierResult:
    """Rules in priority order (lower first; a tie by name, which the API leaves undefined), each policy's
    rules in order: the first that matches decides."""
    out = TierResult(None)
    decided = False
    for pol in sorted(policies, key=lambda p: (p.priority, p.name)):
        sel = pol.selects(subject)
        rules = pol.ingress if direction == INGRESS else pol.egress
        if sel is False or not rules:
            continue
        out.applies.append(pol.key)  # every policy of the tier that selects it, the deciding one or not
        if decided:
            continue
        if sel is None:
            out.action, decided = "?", True
            continue
        for ri, rule in enumerate(rules):
            m = admin_rule_matches(rule, other, other_ip, port, protocol, backend)
            if m is None:
                out.action, out.policy, out.rule, decided = "?", pol.key, ri, True
                out.text = f"{pol.key} {direction} rule {ri} ({rule.name}) may match: cannot tell"
                break
            if m:
                out.action, out.policy, out.rule, decided = rule.action, pol.key, ri, True
                peers = " OR ".join(p.describe() for p in rule.peers)
                out.text = f"{pol.key} {direction} rule {ri} \"{rule.name}\" ({rule.action}: {peers})"
                break
    return out


def tiered(admin: list[AdminPolicy], baseline: list[AdminPolicy], policies: list[NetworkPolicy], direction: str,
           subject: Endpoint, other: Endpoint, other_ip: str | None, port: int, protocol: str,
           backend: Endpoint) -> DirectionVerdict:
    """AdminNetworkPolicy, then NetworkPolicy, then BaselineAdminNetworkPolicy, for one direction."""
    v = evaluate(policies, direction, subject, other, other_ip, port, protocol, backend)
    if v.not_applicable or (not admin and not baseline):
        return v
    anp = admin_tier(admin, direction, subject, other, other_ip, port, protocol, backend)
    v.applies = [*anp.applies, *v.applies]
    if _tier_decides(v, anp, direction, first=True, why="the AdminNetworkPolicy tier comes before NetworkPolicy",
                     unsure="an AdminNetworkPolicy may select it: cannot tell"):
        return v
    if anp.action == "Pass":
        v.notes.insert(0, f"{anp.text}: passed to the NetworkPolicy tier")
    isolated = any(_applies(p, subject, direction) for p in policies)
    if isolated:
        return v
    banp = admin_tier(baseline, direction, subject, other, other_ip, port, protocol, backend)
    v.applies = [*v.applies, *banp.applies]
    _tier_decides(v, banp, direction, first=False, why="no NetworkPolicy isolates it, so the baseline applies",
                  unsure="the BaselineAdminNetworkPolicy may select it: cannot tell")
    return v


def _tier_decides(v: DirectionVerdict, tier: TierResult, direction: str, *, first: bool, why: str,
                  unsure: str) -> bool:
    """An admin tier's Allow / Deny (or cannot-tell) decides `v`: set it and say why (the note goes first for the
    tier before NetworkPolicy, last for the baseline after it). False when the tier passes or matches nothing."""
    if tier.action in ("Allow", "Deny"):
        v.allowed = tier.action == "Allow"
        v.matches = [Match(tier.policy, direction, tier.rule, None, tier.text)] if v.allowed else []
        note = f"decided by {tier.text}: {why}"
    elif tier.action == "?":
        v.allowed = None
        note = tier.text or unsure
    else:
        return False
    v.notes.insert(0 if first else len(v.notes), note)
    return True


def parse_admin(admin: list[JSON], baseline: list[JSON]) -> tuple[list[AdminPolicy], list[AdminPolicy]]:
    return ([AdminPolicy.from_dict(o, "AdminNetworkPolicy") for o in admin],
            [AdminPolicy.from_dict(o, "BaselineAdminNetworkPolicy") for o in baseline])


# ------------------------------------------------------------------------------------------------ the check


@dataclass
class PolicyReport:
    """`svcctl check`'s policy check of one Service: which namespaces' Pods can reach it at all."""

    service: str
    reach: dict[str, str] = field(default_factory=dict)  # namespace -> all | some | none
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str = ""

    def to_json(self) -> JSON:
        return {"service": self.service, "reach": self.reach, "findings": [f.to_json() for f in self.findings],
                "notes": self.notes, "skipped": self.skipped or None}


ReachMemo = dict[tuple[Any, ...], tuple[Tri, frozenset[str], frozenset[str]]]


def reachability(world: PolicyWorld, service_key: str, ports: list[tuple[str, str, list[tuple[str, int, str | None]]]],
                 backend_pods: dict[str, JSON], namespaces: list[str], memo: ReachMemo | None = None) -> PolicyReport:
    """For each namespace, whether its Pods can reach the Service's backends through their Ingress: `all`
    (any Pod of it, every backend), `some` (some Pods or some backends: labels decide), or `none`.

    `ports` is (label, protocol, [(ip, targetPort, pod)]) per Service port. The namespaces' own Egress is not
    judged here (a Pod's labels are needed for that: give --from-pod). `memo` (one per `world`, kept across the
    Services of `check -A`): each answer once per (client namespace, backend class), see `_reach_classes`."""
    rep = PolicyReport(service_key)
    if world.unreadable or any(ps is None for ps in world.policies.values()):
        rep.skipped = f"policy: {world.unreadable or 'the NetworkPolicies could not be read'}"
        return rep
    policies = world.all_policies()
    backends_all = [b for _, _, bs in ports for b in bs]
    if not backends_all:
        rep.notes.append("no endpoint: nothing to reach")
        return rep
    applying: set[str] = set()
    ipblocks: set[str] = set()
    if memo is not None:
        _reach_classes(world, policies, ports, backend_pods, namespaces, memo, rep, applying, ipblocks)
    else:
        _reach_each(world, policies, ports, backend_pods, namespaces, rep, applying, ipblocks)
    if rep.reach and all(v == "none" for v in rep.reach.values()):
        extra = f"; only {', '.join(sorted(ipblocks))} may (ipBlock)" if ipblocks else ""
        rep.findings.append(Finding(
            "PolicyIsolatesService", Severity.WARNING,
            f"{service_key}: no Pod of any namespace ({len(rep.reach)} checked) can reach its endpoints{extra}",
            evidence=f"Ingress of every backend is isolated by {', '.join(sorted(applying))} and no rule admits a "
                     "Pod", hint="add an ingress rule for the clients (namespaceSelector and podSelector), or check "
                     "one client with --from-pod NS/POD", where="networking.k8s.io/v1 NetworkPolicy"))
    rep.notes.append("Egress of the client namespaces is not judged without --from-pod")
    return rep


def _ipblocks(policies: list[NetworkPolicy], applies: list[str]) -> set[str]:
    return {p.ip_block.describe() for pol in policies if pol.key in applies for rule in pol.ingress for p in rule.peers
            if p.ip_block is not None}


def _reach_classes(world: PolicyWorld, policies: list[NetworkPolicy],
                   ports: list[tuple[str, str, list[tuple[str, int, str | None]]]], backend_pods: dict[str, JSON],
                   namespaces: list[str], memo: ReachMemo, rep: PolicyReport, applying: set[str],
                   ipblocks: set[str]) -> None:
    """`_reach_each`'s answers, each connection judged once per (client namespace, backend class). A client
    "some Pod of namespace N" has no labels, no IP and no node, so its Egress is not judged and the backend's
    Ingress reads only the backend's namespace, labels, hostNetwork and container ports, and the port: backends
    alike in those get the same answer, whatever their name or IP (and without an admin tier the labels are read
    only through which policies select the backend: the Services of a namespace under one policy share their
    answers). And when no NetworkPolicy can select the backend and there is no admin tier, the client's namespace
    does not matter either (nothing reads it): one answer for every namespace."""
    admin = world.admin
    has_admin = admin is not None and bool(admin[0] or admin[1])
    classes: dict[tuple[Any, ...], tuple[Endpoint, int, str, bool]] = {}
    # id(raw) -> its Endpoint, what its class reads of its labels, and whether no policy can select it: a Pod
    # behind several ports is read once
    seen: dict[int, tuple[Endpoint, tuple[Any, ...], bool]] = {}
    # (backend JSON, port, protocol) already classed: its class is the same (a workload's replicas share one
    # JSON in check -A, so ten backends are one entry)
    done: set[tuple[int, int, str]] = set()
    for _, proto, bs in ports:
        for ip, tport, pod in bs:
            raw = backend_pods.get(pod or "")
            if raw is None:
                continue
            once = (id(raw), tport, proto)
            if once in done:
                continue
            done.add(once)
            got = seen.get(id(raw))
            if got is None:
                be = pod_endpoint(raw, world.namespace(str((raw.get("metadata") or {}).get("namespace") or "default")))
                be.ip = ip
                applies = tuple([_applies(p, be, INGRESS) for p in policies])
                free = not has_admin and all(a is False for a in applies)
                # Without an admin tier, the Ingress of a backend reads its labels only through which policies
                # select it (`_applies`, policy by policy): backends selected alike are one class, whatever their
                # labels. The admin tiers' subject selectors read the labels themselves.
                sel = tuple(sorted(be.labels.items())) if has_admin else applies
                got = seen[id(raw)] = (be, sel, free)
            be, sel, free = got
            assert be.namespace is not None
            cls = (be.namespace.name, sel, be.host_network, tuple(be.ports), tport, proto)
            if cls not in classes:
                classes[cls] = (be, tport, proto, free)
    if not classes:
        return
    every = sorted(set(namespaces))
    # no class's answer reads the client's namespace (none can be selected, no admin tier): one answer for all
    judged = every[:1] if all(free for _, _, _, free in classes.values()) else every
    for ns in judged:
        client: Endpoint | None = None  # built only when an answer is not known yet
        results: set[Tri] = set()
        for cls, (be, tport, proto, free) in classes.items():
            key = (None if free else ns, *cls)
            hit = memo.get(key)
            if hit is None:
                if client is None:
                    client = Endpoint("nspod", None, world.namespace(ns), label=f"a Pod of namespace {ns}")
                r = connection(policies, client, be, tport, proto, None, None, admin)
                hit = memo[key] = (r.allowed, frozenset(r.ingress.applies), frozenset(_ipblocks(policies,
                                                                                               r.ingress.applies)))
            results.add(hit[0])
            applying |= hit[1]
            ipblocks |= hit[2]
        rep.reach[ns] = ("all" if results == {True} else "none" if results == {False} else "some")
    if judged is not every:
        for ns in every[1:]:
            rep.reach[ns] = rep.reach[every[0]]


def _reach_each(world: PolicyWorld, policies: list[NetworkPolicy],
                ports: list[tuple[str, str, list[tuple[str, int, str | None]]]], backend_pods: dict[str, JSON],
                namespaces: list[str], rep: PolicyReport, applying: set[str], ipblocks: set[str]) -> None:
    """Every (client namespace, backend) connection judged on its own: the reference for `_reach_classes`."""
    for ns in sorted(set(namespaces)):
        client = Endpoint("nspod", None, world.namespace(ns), label=f"a Pod of namespace {ns}")
        results: list[Tri] = []
        for _, proto, bs in ports:
            for ip, tport, pod in bs:
                raw = backend_pods.get(pod or "")
                if raw is None:
                    continue
                be = pod_endpoint(raw, world.namespace(str((raw.get("metadata") or {}).get("namespace")
                                                           or "default")))
                be.ip = ip
                r = connection(policies, client, be, tport, proto, None, None, world.admin)
                results.append(r.allowed)
                applying |= set(r.ingress.applies)
                for pol in policies:
                    if pol.key in r.ingress.applies:
                        ipblocks |= {p.ip_block.describe() for rule in pol.ingress for p in rule.peers
                                     if p.ip_block is not None}
        if not results:
            continue
        rep.reach[ns] = ("all" if all(x is True for x in results) else
                         "none" if all(x is False for x in results) else "some")


def needs_namespace_labels(world: PolicyWorld) -> bool:
    """Whether any selector on Namespaces reads more than the name label (only then are Namespaces fetched)."""
    sels: list[Selector] = [p.namespace_selector for pol in world.all_policies() for r in [*pol.ingress, *pol.egress]
                            for p in r.peers if p.namespace_selector is not None]
    for tier in world.admin or ([], []):
        for a in tier:
            sels += [s for s in (a.subject_namespaces, a.subject_pods[0] if a.subject_pods else None) if s]
            sels += [s for r in [*a.ingress, *a.egress] for p in r.peers
                     for s in (p.namespaces, p.pod_namespaces) if s is not None]
    return any(not s.keys() <= {NAME_LABEL} for s in sels)

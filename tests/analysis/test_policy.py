"""NetworkPolicy evaluation, table-driven from the Kubernetes documentation's own examples and outcomes.

The policies are the ones on kubernetes.io "Network Policies" (test-network-policy, the namespaceSelector AND
podSelector example and its two-element twin, the default policies, multi-port-egress with endPort) plus the
API reference's rules (policyTypes defaulting, named ports, ipBlock except) and the two documented exceptions
(a Pod's own node, a Pod to itself). Each case states the outcome the documentation gives.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from svcctl.analysis.policy import (
    EGRESS,
    INGRESS,
    Endpoint,
    NamespaceInfo,
    NetworkPolicy,
    PolicyInputError,
    Selector,
    connection,
    dns_egress,
    masquerades,
    parse_policies,
    pod_endpoint,
)

JSON = dict[str, Any]

NS = {
    "default": NamespaceInfo("default"),
    "myproject": NamespaceInfo("myproject", {"project": "myproject"}),
    "alice": NamespaceInfo("alice", {"user": "alice"}),
    "other": NamespaceInfo("other"),
    "kube-system": NamespaceInfo("kube-system"),
}


def _pod(name: str, ns: str, labels: dict[str, str], ip: str, *, node: str = "node-a", host: bool = False,
         ports: list[tuple[str, int, str]] | None = None) -> Endpoint:
    raw: JSON = {"metadata": {"name": name, "namespace": ns, "labels": labels},
                 "spec": {"nodeName": node, "hostNetwork": host,
                          "containers": [{"name": "c", "ports": [
                              {"name": n, "containerPort": p, "protocol": pr} for n, p, pr in (ports or [])]}]},
                 "status": {"podIP": ip}}
    ns_info = NS.get(ns) or NamespaceInfo(ns, known=False)
    return pod_endpoint(raw, ns_info, ["192.168.1.1"] if node == "node-a" else ["192.168.1.2"])


DB = _pod("db", "default", {"role": "db"}, "10.244.1.10", ports=[("redis", 6379, "TCP")])
FRONTEND = _pod("frontend", "default", {"role": "frontend"}, "10.244.2.20", node="node-b")
MYPROJECT = _pod("worker", "myproject", {"app": "worker"}, "10.244.3.30", node="node-b")
OTHER = _pod("stranger", "other", {"app": "x"}, "10.244.4.40", node="node-b")
ALICE_CLIENT = _pod("a-client", "alice", {"role": "client"}, "10.244.5.50", node="node-b")
ALICE_OTHER = _pod("a-other", "alice", {"role": "other"}, "10.244.5.51", node="node-b")
DEFAULT_CLIENT = _pod("d-client", "default", {"role": "client"}, "10.244.2.21", node="node-b")
FRONTEND_SAME_NODE = _pod("frontend-a", "default", {"role": "frontend"}, "10.244.1.20")
HOSTNET = _pod("agent", "default", {"role": "frontend"}, "192.168.1.2", node="node-b", host=True)
HOSTNET_SAME_NODE = _pod("agent-a", "default", {"role": "frontend"}, "192.168.1.1", node="node-a", host=True)
ANY = Endpoint("anypod", None, node="node-b")


def ip(addr: str) -> Endpoint:
    return Endpoint("ip", addr)


# --- the documentation's policies (kubernetes.io/docs/concepts/services-networking/network-policies/)

TEST_NETWORK_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: test-network-policy, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}
    - namespaceSelector: {matchLabels: {project: myproject}}
    - podSelector: {matchLabels: {role: frontend}}
    ports: [{protocol: TCP, port: 6379}]
  egress:
  - to:
    - ipBlock: {cidr: 10.0.0.0/24}
    ports: [{protocol: TCP, port: 5978}]
"""

ONE_ELEMENT_AND = """
kind: NetworkPolicy
metadata: {name: alice-clients, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {user: alice}}
      podSelector: {matchLabels: {role: client}}
"""

TWO_ELEMENTS_OR = """
kind: NetworkPolicy
metadata: {name: alice-or-clients, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {user: alice}}
    - podSelector: {matchLabels: {role: client}}
"""

DEFAULT_DENY_INGRESS = """
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""

ALLOW_ALL_INGRESS = """
kind: NetworkPolicy
metadata: {name: allow-all-ingress, namespace: default}
spec: {podSelector: {}, ingress: [{}], policyTypes: [Ingress]}
"""

DEFAULT_DENY_EGRESS = """
kind: NetworkPolicy
metadata: {name: default-deny-egress, namespace: default}
spec: {podSelector: {}, policyTypes: [Egress]}
"""

ALLOW_ALL_EGRESS = """
kind: NetworkPolicy
metadata: {name: allow-all-egress, namespace: default}
spec: {podSelector: {}, egress: [{}], policyTypes: [Egress]}
"""

DEFAULT_DENY_ALL = """
kind: NetworkPolicy
metadata: {name: default-deny-all, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
"""

MULTI_PORT_EGRESS = """
kind: NetworkPolicy
metadata: {name: multi-port-egress, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{protocol: TCP, port: 32000, endPort: 32768}]
"""

# policyTypes omitted: Ingress is always implied, Egress only when `egress` has rules (SetDefaults_NetworkPolicy)
EGRESS_RULES_NO_TYPES = """
kind: NetworkPolicy
metadata: {name: egress-only-meant, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/24}}]}]
"""

NAMED_PORT = """
kind: NetworkPolicy
metadata: {name: named-port, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{ports: [{port: redis}]}]
"""

NAMED_PORT_UDP = """
kind: NetworkPolicy
metadata: {name: named-port-udp, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{ports: [{port: redis, protocol: UDP}]}]
"""

NAMED_PORT_UNDECLARED = """
kind: NetworkPolicy
metadata: {name: named-port-http, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{ports: [{port: http}]}]
"""

NODE_CIDR = """
kind: NetworkPolicy
metadata: {name: from-nodes, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{ipBlock: {cidr: 192.168.1.0/24}}]}]
"""

FRONTEND_ONLY = """
kind: NetworkPolicy
metadata: {name: frontend-only, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{podSelector: {matchLabels: {role: frontend}}}]}]
"""

POD_CIDR_BLOCK = """
kind: NetworkPolicy
metadata: {name: pod-cidr, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{ipBlock: {cidr: 10.244.2.0/24}}]}]
"""

ALL_NAMESPACES = """
kind: NetworkPolicy
metadata: {name: all-namespaces, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{namespaceSelector: {}}]}]
"""

BY_NAMESPACE_NAME = """
kind: NetworkPolicy
metadata: {name: by-name, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: myproject}}}]}]
"""

EXPRESSIONS = """
kind: NetworkPolicy
metadata: {name: expressions, namespace: default}
spec:
  podSelector: {matchExpressions: [{key: role, operator: In, values: [db, cache]}]}
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: role, operator: NotIn, values: [frontend]},
                                       {key: role, operator: Exists}]}
"""

FRONTEND_EGRESS_TO_DB = """
kind: NetworkPolicy
metadata: {name: frontend-to-db, namespace: default}
spec:
  podSelector: {matchLabels: {role: frontend}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {role: db}}}], ports: [{port: 6379}]}]
"""


def P(*docs: str) -> list[NetworkPolicy]:  # noqa: N802
    return parse_policies([yaml.safe_load(d) for d in docs])


# (id, policies, client, backend, port, protocol, kwargs, allowed, deniedBy, decidedBy, text in the details)
CASES: list[tuple[str, list[str], Endpoint, Endpoint, int, str, JSON, bool | None, str | None, list[str], str]] = [
    ("no-policy-no-isolation", [], FRONTEND, DB, 6379, "TCP", {}, True, None, [], ""),
    ("doc-example-frontend-pod", [TEST_NETWORK_POLICY], FRONTEND, DB, 6379, "TCP", {}, True, None,
     ["default/test-network-policy"], "ingress rule 0 (podSelector role=frontend"),
    ("doc-example-namespace", [TEST_NETWORK_POLICY], MYPROJECT, DB, 6379, "TCP", {}, True, None,
     ["default/test-network-policy"], "namespaceSelector project=myproject"),
    ("doc-example-other-namespace-denied", [TEST_NETWORK_POLICY], OTHER, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/test-network-policy"], "no rule of default/test-network-policy admits it"),
    ("doc-example-wrong-port", [TEST_NETWORK_POLICY], FRONTEND, DB, 6380, "TCP", {}, False, INGRESS,
     ["default/test-network-policy"], "admits the peer but not port 6380/TCP"),
    ("doc-example-wrong-protocol", [TEST_NETWORK_POLICY], FRONTEND, DB, 6379, "UDP", {}, False, INGRESS,
     ["default/test-network-policy"], ""),
    ("doc-example-ipblock", [TEST_NETWORK_POLICY], ip("172.17.0.5"), DB, 6379, "TCP", {}, True, None,
     ["default/test-network-policy"], "ipBlock 172.17.0.0/16 except 172.17.1.0/24"),
    ("doc-example-ipblock-except", [TEST_NETWORK_POLICY], ip("172.17.1.5"), DB, 6379, "TCP", {}, False, INGRESS,
     ["default/test-network-policy"], ""),
    ("doc-example-outside-block", [TEST_NETWORK_POLICY], ip("192.0.2.1"), DB, 6379, "TCP", {}, False, INGRESS,
     ["default/test-network-policy"], ""),
    ("doc-example-db-egress-5978", [TEST_NETWORK_POLICY], DB, ip("10.0.0.5"), 5978, "TCP", {}, True, None,
     ["default/test-network-policy"], "egress rule 0 (ipBlock 10.0.0.0/24"),
    ("doc-example-db-egress-other-port", [TEST_NETWORK_POLICY], DB, ip("10.0.0.5"), 80, "TCP", {}, False, EGRESS,
     ["default/test-network-policy"], ""),
    # the one-element AND vs two-element OR
    ("and-both-match", [ONE_ELEMENT_AND], ALICE_CLIENT, DB, 6379, "TCP", {}, True, None,
     ["default/alice-clients"], "namespaceSelector user=alice AND podSelector role=client"),
    ("and-namespace-only-trap", [ONE_ELEMENT_AND], ALICE_OTHER, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/alice-clients"], "ONE element, so a peer must match both (AND)"),
    ("and-labels-only-trap", [ONE_ELEMENT_AND], DEFAULT_CLIENT, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/alice-clients"], "namespace default does not match namespaceSelector user=alice"),
    ("or-namespace-alone", [TWO_ELEMENTS_OR], ALICE_OTHER, DB, 6379, "TCP", {}, True, None,
     ["default/alice-or-clients"], "admitted by its namespace alone"),
    ("or-labels-in-own-namespace", [TWO_ELEMENTS_OR], DEFAULT_CLIENT, DB, 6379, "TCP", {}, True, None,
     ["default/alice-or-clients"], "podSelector role=client"),
    ("or-labels-other-namespace", [TWO_ELEMENTS_OR], _pod("c", "other", {"role": "client"}, "10.244.4.41"), DB,
     6379, "TCP", {}, False, INGRESS, ["default/alice-or-clients"], ""),
    # default policies
    ("default-deny-ingress", [DEFAULT_DENY_INGRESS], FRONTEND, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/default-deny-ingress"], "only isolates"),
    ("allow-all-ingress-over-deny", [DEFAULT_DENY_INGRESS, ALLOW_ALL_INGRESS], OTHER, DB, 6379, "TCP", {}, True,
     None, ["default/default-deny-ingress", "default/allow-all-ingress"], "(from anyone; any port)"),
    ("default-deny-egress", [DEFAULT_DENY_EGRESS], FRONTEND, DB, 6379, "TCP", {}, False, EGRESS,
     ["default/default-deny-egress"], ""),
    ("allow-all-egress-over-deny", [DEFAULT_DENY_EGRESS, ALLOW_ALL_EGRESS], FRONTEND, DB, 6379, "TCP", {}, True,
     None, ["default/default-deny-egress", "default/allow-all-egress"], ""),
    ("default-deny-all-egress-first", [DEFAULT_DENY_ALL], FRONTEND, DB, 6379, "TCP", {}, False, EGRESS,
     ["default/default-deny-all"], ""),
    ("deny-egress-in-another-namespace-does-not-apply", [DEFAULT_DENY_EGRESS], OTHER, DB, 6379, "TCP", {}, True,
     None, [], ""),
    # endPort
    ("endport-low", [MULTI_PORT_EGRESS], DB, ip("10.0.0.1"), 32000, "TCP", {}, True, None,
     ["default/multi-port-egress"], "32000-32768/TCP"),
    ("endport-high", [MULTI_PORT_EGRESS], DB, ip("10.0.0.1"), 32768, "TCP", {}, True, None,
     ["default/multi-port-egress"], ""),
    ("endport-above", [MULTI_PORT_EGRESS], DB, ip("10.0.0.1"), 32769, "TCP", {}, False, EGRESS,
     ["default/multi-port-egress"], ""),
    ("endport-below", [MULTI_PORT_EGRESS], DB, ip("10.0.0.1"), 31999, "TCP", {}, False, EGRESS,
     ["default/multi-port-egress"], ""),
    # policyTypes inferred: egress rules without policyTypes also isolate Ingress
    ("inferred-types-isolate-ingress", [EGRESS_RULES_NO_TYPES], FRONTEND, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/egress-only-meant"], "only isolates"),
    ("inferred-types-egress", [EGRESS_RULES_NO_TYPES], DB, ip("10.0.0.9"), 443, "TCP", {}, True, None,
     ["default/egress-only-meant"], ""),
    # named ports resolve on the backend's container ports
    ("named-port", [NAMED_PORT], OTHER, DB, 6379, "TCP", {}, True, None, ["default/named-port"], "redis/TCP"),
    ("named-port-other-number", [NAMED_PORT], OTHER, DB, 6380, "TCP", {}, False, INGRESS, ["default/named-port"],
     ""),
    ("named-port-protocol", [NAMED_PORT_UDP], OTHER, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/named-port-udp"], ""),
    ("named-port-undeclared", [NAMED_PORT_UNDECLARED], OTHER, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/named-port-http"], ""),
    # hostNetwork and masquerade: the source is the node's IP
    ("hostnetwork-not-selected", [FRONTEND_ONLY], HOSTNET, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/frontend-only"], "hostNetwork Pod"),
    ("hostnetwork-by-ipblock", [NODE_CIDR], HOSTNET, DB, 6379, "TCP", {}, True, None, ["default/from-nodes"],
     "ipBlock 192.168.1.0/24"),
    ("hostnetwork-own-node-exception", [FRONTEND_ONLY], HOSTNET_SAME_NODE, DB, 6379, "TCP", {}, True, None,
     ["default/frontend-only"], "own node"),
    ("hostnetwork-egress-not-isolated", [DEFAULT_DENY_EGRESS, NODE_CIDR], HOSTNET, DB, 6379, "TCP", {}, True, None,
     ["default/from-nodes"], ""),
    ("masquerade-hides-pod", [FRONTEND_ONLY], FRONTEND, DB, 6379, "TCP",
     {"masquerade": True, "client_node_ip": "192.168.1.2"}, False, INGRESS, ["default/frontend-only"],
     "kube-proxy masquerades"),
    ("masquerade-node-ip-in-block", [NODE_CIDR], FRONTEND, DB, 6379, "TCP",
     {"masquerade": True, "client_node_ip": "192.168.1.2"}, True, None, ["default/from-nodes"], ""),
    ("masquerade-off-pod-ip", [NODE_CIDR], FRONTEND, DB, 6379, "TCP", {"masquerade": False}, False, INGRESS,
     ["default/from-nodes"], "client Pod IP 10.244.2.20"),
    # masqueraded on the backend's own node: the SNAT (POSTROUTING) comes after the policy hook (FORWARD)
    ("masquerade-same-node-judges-the-pod", [DEFAULT_DENY_INGRESS], FRONTEND_SAME_NODE, DB, 6379, "TCP",
     {"masquerade": True, "client_node_ip": "192.168.1.1"}, False, INGRESS, ["default/default-deny-ingress"],
     "the SNAT comes after the policy"),
    ("masquerade-same-node-pod-selector", [FRONTEND_ONLY], FRONTEND_SAME_NODE, DB, 6379, "TCP",
     {"masquerade": True, "client_node_ip": "192.168.1.1"}, True, None, ["default/frontend-only"], ""),
    ("masquerade-same-node-not-the-node-ip", [NODE_CIDR], FRONTEND_SAME_NODE, DB, 6379, "TCP",
     {"masquerade": True, "client_node_ip": "192.168.1.1"}, False, INGRESS, ["default/from-nodes"], ""),
    ("ipblock-matches-pod-ip", [POD_CIDR_BLOCK], FRONTEND, DB, 6379, "TCP", {}, True, None, ["default/pod-cidr"],
     ""),
    ("pod-to-itself", [DEFAULT_DENY_INGRESS], DB, DB, 6379, "TCP", {}, True, None, ["default/default-deny-ingress"],
     "cannot block traffic to itself"),
    # namespaceSelector {} = every namespace; the immutable name label
    ("all-namespaces", [ALL_NAMESPACES], OTHER, DB, 6379, "TCP", {}, True, None, ["default/all-namespaces"], ""),
    ("all-namespaces-not-ip", [ALL_NAMESPACES], ip("192.0.2.1"), DB, 6379, "TCP", {}, False, INGRESS,
     ["default/all-namespaces"], ""),
    ("namespace-name-label", [BY_NAMESPACE_NAME], MYPROJECT, DB, 6379, "TCP", {}, True, None, ["default/by-name"],
     ""),
    ("namespace-name-label-unknown-ns-still-sure",
     [BY_NAMESPACE_NAME], _pod("x", "unlisted", {}, "10.244.9.9"), DB, 6379, "TCP", {}, False, INGRESS,
     ["default/by-name"], ""),
    ("namespace-labels-unknown", [TEST_NETWORK_POLICY.replace("role: frontend", "role: nobody")],
     _pod("x", "unlisted", {}, "10.244.9.9"), DB, 6379, "TCP", {}, None, None, ["default/test-network-policy"],
     "labels are not in the input"),
    ("match-expressions", [EXPRESSIONS], _pod("w", "default", {"role": "worker"}, "10.244.2.30"), DB, 6379, "TCP",
     {}, True, None, ["default/expressions"], ""),
    ("match-expressions-notin", [EXPRESSIONS], FRONTEND, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/expressions"], ""),
    # egress on the client AND ingress on the backend
    ("egress-and-ingress-both-allow", [FRONTEND_EGRESS_TO_DB, FRONTEND_ONLY], FRONTEND, DB, 6379, "TCP", {}, True,
     None, ["default/frontend-to-db", "default/frontend-only"], "egress rule 0 (podSelector role=db"),
    ("egress-allows-ingress-denies", [FRONTEND_EGRESS_TO_DB, DEFAULT_DENY_INGRESS], FRONTEND, DB, 6379, "TCP", {},
     False, INGRESS, ["default/frontend-to-db", "default/default-deny-ingress"], ""),
    ("egress-port-denies", [FRONTEND_EGRESS_TO_DB], FRONTEND, DB, 6380, "TCP", {}, False, EGRESS,
     ["default/frontend-to-db"], ""),
    # a client whose labels are unknown
    ("unknown-client-no-policy", [], ANY, DB, 6379, "TCP", {}, True, None, [], ""),
    ("unknown-client-default-deny", [DEFAULT_DENY_INGRESS], ANY, DB, 6379, "TCP", {}, False, INGRESS,
     ["default/default-deny-ingress"], ""),
    ("unknown-client-depends", [FRONTEND_ONLY], ANY, DB, 6379, "TCP", {}, None, None, ["default/frontend-only"],
     "cannot tell"),
    ("unknown-client-all-namespaces", [ALL_NAMESPACES], ANY, DB, 6379, "TCP", {}, True, None,
     ["default/all-namespaces"], ""),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_documented_outcomes(case: tuple[Any, ...]) -> None:
    _, docs, client, backend, port, proto, kw, allowed, denied_by, decided_by, text = case
    r = connection(P(*docs), client, backend, port, proto, **kw)
    assert (r.allowed, r.denied_by) == (allowed, denied_by), "\n".join(r.details)
    assert r.decided_by == decided_by
    if text:
        assert text in "\n".join(r.details + [r.source.why]), "\n".join(r.details)
    j = r.to_json()
    assert set(j) == {"pod", "allowed", "decidedBy", "deniedBy"}


def test_deciding_rule_is_named_with_its_index() -> None:
    docs = [DEFAULT_DENY_INGRESS, TEST_NETWORK_POLICY]
    r = connection(P(*docs), MYPROJECT, DB, 6379, "TCP")
    assert r.ingress.matches[0].to_json() == {"policy": "default/test-network-policy", "direction": "ingress",
                                              "rule": 0, "peer": 1}


def test_policy_types_defaulting_follows_the_api() -> None:
    (a, b, c, d) = P(EGRESS_RULES_NO_TYPES, ONE_ELEMENT_AND, DEFAULT_DENY_EGRESS,
                     "kind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {}, egress: []}")
    assert (a.policy_types, a.types_inferred) == (["ingress", "egress"], True)
    assert b.policy_types == ["ingress"]
    assert (c.policy_types, c.types_inferred) == (["egress"], False)
    assert d.policy_types == ["ingress"]  # an empty `egress` list does not imply Egress


def test_selector_semantics() -> None:
    assert Selector.from_dict({}).matches({"a": "b"}) and Selector.from_dict(None).empty
    s = Selector.from_dict({"matchLabels": {"a": "1"}, "matchExpressions": [
        {"key": "b", "operator": "DoesNotExist"}, {"key": "c", "operator": "In", "values": ["x", "y"]}]})
    assert s.matches({"a": "1", "c": "y"})
    assert not s.matches({"a": "1", "c": "y", "b": ""})
    assert not s.matches({"a": "1"})


@pytest.mark.parametrize("bad", [
    "kind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {matchExpressions: [{key: a, operator: Is}]}}",
    "kind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: nope}}]}]}",
    "kind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {}, policyTypes: [Sideways]}",
    "kind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {}, ingress: {from: []}}",
])
def test_malformed_policies_are_input_errors(bad: str) -> None:
    with pytest.raises(PolicyInputError):
        P(bad)


def test_dns_egress_default_deny_is_caught_and_the_rule_to_add_fixes_it() -> None:
    dns_pod = _pod("coredns-1", "kube-system", {"k8s-app": "kube-dns"}, "10.244.0.2",
                   ports=[("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")])
    res = dns_egress(P(DEFAULT_DENY_EGRESS), FRONTEND, [dns_pod], ["10.96.0.10"])
    assert res is not None and res.allowed is False and res.protocols_denied == ["UDP", "TCP"]
    assert "kubernetes.io/metadata.name: kube-system" in res.hint and "k8s-app: kube-dns" in res.hint
    fixed = P(DEFAULT_DENY_EGRESS) + parse_policies([{
        "kind": "NetworkPolicy", "metadata": {"name": "allow-dns", "namespace": "default"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [yaml.safe_load(
            res.hint.split(": - ", 1)[1])]}}])
    after = dns_egress(fixed, FRONTEND, [dns_pod], ["10.96.0.10"])
    assert after is not None and after.allowed is True and after.protocols_denied == []
    open_egress = dns_egress(P(FRONTEND_ONLY), FRONTEND, [dns_pod], [])  # not isolated for Egress
    assert open_egress is not None and (open_egress.allowed, open_egress.applies) == (True, [])
    assert dns_egress(P(DEFAULT_DENY_EGRESS), HOSTNET, [dns_pod], []) is None  # hostNetwork: not isolated


def test_dns_egress_without_the_dns_pods_is_only_sure_when_no_rule_could_admit_53() -> None:
    only_443 = """
kind: NetworkPolicy
metadata: {name: only-443, namespace: default}
spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 443}]}]}
"""
    res = dns_egress(P(only_443), FRONTEND, [], ["10.96.0.10"])
    assert res is not None and res.allowed is False
    to_dns_pods = """
kind: NetworkPolicy
metadata: {name: to-dns, namespace: default}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]}]
"""
    res = dns_egress(P(to_dns_pods), FRONTEND, [], ["10.96.0.10"])
    assert res is not None and res.allowed is None  # cannot tell which Pods answer DNS


@pytest.mark.parametrize(("words", "client", "node", "want"), [
    ([], "10.244.1.5", False, False),
    (["all traffic is masqueraded"], "10.244.1.5", False, True),
    (["traffic not from 10.244.0.0/16 is masqueraded"], "10.244.1.5", False, False),
    (["traffic not from 10.244.0.0/16 is masqueraded"], "192.168.1.2", False, True),
    (["traffic not from 10.244.0.0/16 is masqueraded"], None, False, None),
    (["hairpin traffic (an endpoint to itself via the Service) is masqueraded"], "10.244.1.5", False, False),
])
def test_masquerade_words(words: list[str], client: str | None, node: bool, want: bool | None) -> None:
    assert masquerades(words, client, node) is want


# --- AdminNetworkPolicy / BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1): the tiers

def _anp(name: str, priority: int, subject: JSON, ingress: list[JSON] | None = None,
         egress: list[JSON] | None = None) -> JSON:
    return {"kind": "AdminNetworkPolicy", "metadata": {"name": name},
            "spec": {"priority": priority, "subject": subject, "ingress": ingress or [], "egress": egress or []}}


def _banp(subject: JSON, ingress: list[JSON] | None = None, egress: list[JSON] | None = None) -> JSON:
    return {"kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
            "spec": {"subject": subject, "ingress": ingress or [], "egress": egress or []}}


DEFAULT_NS = {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}}
# the API's user story: the admin isolates a sensitive namespace from all others, whatever its NetworkPolicies say
ISOLATE_DEFAULT = _anp("isolate-default", 10, DEFAULT_NS, ingress=[
    {"name": "deny-other-namespaces", "action": "Deny",
     "from": [{"namespaces": {"matchExpressions": [
         {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["default"]}]}}]}])
ALLOW_MONITORING = _anp("allow-myproject", 5, DEFAULT_NS, ingress=[
    {"name": "scrape", "action": "Allow", "from": [{"namespaces": {"matchLabels": {"project": "myproject"}}}],
     "ports": [{"namedPort": "redis"}]}])
PASS_ALICE = _anp("pass-alice", 1, DEFAULT_NS, ingress=[
    {"name": "delegate", "action": "Pass", "from": [{"namespaces": {"matchLabels": {"user": "alice"}}}]}])
BASELINE_DENY = _banp({"namespaces": {}}, ingress=[
    {"name": "default-deny", "action": "Deny", "from": [{"namespaces": {}}]}])
EGRESS_NO_443 = _anp("no-internet-443", 20, {"pods": {"namespaceSelector": {}, "podSelector":
                                                      {"matchLabels": {"role": "db"}}}}, egress=[
    {"name": "no-https-out", "action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}],
     "ports": [{"portNumber": {"protocol": "TCP", "port": 443}}]}])

ADMIN_CASES: list[tuple[str, list[JSON], list[JSON], list[str], Endpoint, Endpoint, int, bool | None, str | None,
                        list[str]]] = [
    ("anp-deny-beats-np-allow", [ISOLATE_DEFAULT], [], [ALL_NAMESPACES], OTHER, DB, 6379, False, INGRESS,
     ["AdminNetworkPolicy/isolate-default", "default/all-namespaces"]),
    ("anp-does-not-match-same-namespace", [ISOLATE_DEFAULT], [], [], FRONTEND, DB, 6379, True, None,
     ["AdminNetworkPolicy/isolate-default"]),
    ("anp-allow-beats-np-deny", [ALLOW_MONITORING], [], [DEFAULT_DENY_INGRESS], MYPROJECT, DB, 6379, True, None,
     ["AdminNetworkPolicy/allow-myproject", "default/default-deny-ingress"]),
    ("anp-named-port-other-port-falls-through", [ALLOW_MONITORING], [], [DEFAULT_DENY_INGRESS], MYPROJECT, DB, 6380,
     False, INGRESS, ["AdminNetworkPolicy/allow-myproject", "default/default-deny-ingress"]),
    ("priority-lower-number-first", [ALLOW_MONITORING, ISOLATE_DEFAULT], [], [], MYPROJECT, DB, 6379, True, None,
     ["AdminNetworkPolicy/allow-myproject", "AdminNetworkPolicy/isolate-default"]),
    ("pass-goes-to-networkpolicy", [PASS_ALICE, ISOLATE_DEFAULT], [], [ONE_ELEMENT_AND], ALICE_CLIENT, DB, 6379,
     True, None, ["AdminNetworkPolicy/pass-alice", "AdminNetworkPolicy/isolate-default", "default/alice-clients"]),
    ("pass-then-networkpolicy-denies", [PASS_ALICE, ISOLATE_DEFAULT], [], [ONE_ELEMENT_AND], ALICE_OTHER, DB, 6379,
     False, INGRESS, ["AdminNetworkPolicy/pass-alice", "AdminNetworkPolicy/isolate-default",
                      "default/alice-clients"]),
    ("pass-then-baseline-denies", [PASS_ALICE], [BASELINE_DENY], [], ALICE_CLIENT, DB, 6379, False, INGRESS,
     ["AdminNetworkPolicy/pass-alice", "BaselineAdminNetworkPolicy/default"]),
    ("baseline-denies-when-nothing-isolates", [], [BASELINE_DENY], [], FRONTEND, DB, 6379, False, INGRESS,
     ["BaselineAdminNetworkPolicy/default"]),
    ("networkpolicy-isolation-overrides-baseline", [], [BASELINE_DENY], [FRONTEND_ONLY], FRONTEND, DB, 6379, True,
     None, ["default/frontend-only"]),
    ("anp-egress-networks", [EGRESS_NO_443], [], [], DB, ip("93.184.216.34"), 443, False, EGRESS,
     ["AdminNetworkPolicy/no-internet-443"]),
    ("anp-egress-other-port", [EGRESS_NO_443], [], [], DB, ip("93.184.216.34"), 80, True, None,
     ["AdminNetworkPolicy/no-internet-443"]),
    ("anp-unknown-client-cannot-tell", [ISOLATE_DEFAULT], [], [], ANY, DB, 6379, None, None,
     ["AdminNetworkPolicy/isolate-default"]),
    ("anp-hostnetwork-never-a-subject", [EGRESS_NO_443], [], [], HOSTNET, ip("93.184.216.34"), 443, True, None, []),
]


@pytest.mark.parametrize("case", ADMIN_CASES, ids=[c[0] for c in ADMIN_CASES])
def test_admin_tiers(case: tuple[Any, ...]) -> None:
    from svcctl.analysis.policy import parse_admin

    _, anps, banps, docs, client, backend, port, allowed, denied_by, decided_by = case
    r = connection(P(*docs), client, backend, port, "TCP", admin=parse_admin(anps, banps))
    assert (r.allowed, r.denied_by) == (allowed, denied_by), "\n".join(r.details)
    assert r.decided_by == decided_by


@pytest.mark.parametrize("bad", [
    _anp("x", 1, {}, []),
    _anp("x", 1, DEFAULT_NS, [{"name": "r", "action": "Maybe", "from": [{"namespaces": {}}]}]),
    {"kind": "AdminNetworkPolicy", "metadata": {"name": "x"}, "spec": {"subject": DEFAULT_NS}},
    _banp({"namespaces": {}}, [{"name": "r", "action": "Pass", "from": [{"namespaces": {}}]}]),
])
def test_malformed_admin_policies(bad: JSON) -> None:
    from svcctl.analysis.policy import parse_admin

    with pytest.raises(PolicyInputError):
        parse_admin([bad] if bad["kind"] == "AdminNetworkPolicy" else [],
                    [bad] if bad["kind"] != "AdminNetworkPolicy" else [])


def _reach_pod(name: str, ns: str, labels: dict[str, str], ip: str, *, host: bool = False,
               ports: list[tuple[str, int, str]] | None = None) -> JSON:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": "node-a", "hostNetwork": host,
                     "containers": [{"name": "c", "ports": [{"name": n, "containerPort": p, "protocol": pr}
                                                             for n, p, pr in (ports or [])]}]},
            "status": {"podIP": ip}}


@pytest.mark.parametrize("admin", [False, True])
def test_reach_by_backend_class_is_the_reach_of_each_backend(admin: bool) -> None:
    """`check -A`'s policy reach (a memo kept across Services: one answer per client namespace and backend class,
    the class holding which policies select the backend, not its labels, when there is no admin tier) equals the
    per-backend reference, Service after Service, with backends alike in their selection but not in their labels,
    named and numbered ports, hostNetwork, and namespaces no policy selects in."""
    from svcctl.analysis.policy import make_world, reachability

    def np(ns: str, name: str, spec: JSON) -> JSON:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": ns}, "spec": spec}

    policies = {
        "a": [np("a", "web-from-front", {"podSelector": {"matchExpressions": [
                  {"key": "app", "operator": "In", "values": ["x", "y"]}]}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "front"}}}],
                               "ports": [{"port": "http", "protocol": "TCP"}]}]}),
              np("a", "db-own-ns", {"podSelector": {"matchLabels": {"tier": "db"}}, "policyTypes": ["Ingress"],
                                    "ingress": [{"from": [{"podSelector": {}}]}]})],
        "b": [np("b", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"],
                                   "ingress": [{"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}]})],
        "c": [],
    }
    namespaces: dict[str, JSON | None] = {n: {"metadata": {"name": n, "labels": ls}} for n, ls in (
        ("a", {"team": "back"}), ("b", {}), ("c", {"team": "front"}), ("d", {"team": "front"}))}
    anp = [{"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
            "metadata": {"name": "no-c-to-y"}, "spec": {"priority": 5, "subject": {"pods": {
                "namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "y"}}}},
                "ingress": [{"name": "deny", "action": "Deny", "from": [{"namespaces": {"matchLabels": {
                    "kubernetes.io/metadata.name": "c"}}}]}]}}] if admin else []
    world = make_world(policies, namespaces, admin=(anp, []) if admin else None)
    http = [("http", 8080, "TCP")]
    services = [  # (backends: name, namespace, labels, hostNetwork, container ports), target port
        ([("x1", "a", {"app": "x", "v": "1"}, False, http), ("x2", "a", {"app": "x", "v": "2"}, False, http)], 8080),
        ([("y1", "a", {"app": "y"}, False, http)], 8080),  # selected as x is: one class without the admin tier
        ([("y2", "a", {"app": "y"}, False, [("http", 9090, "TCP")])], 8080),  # its named port is another number
        ([("z1", "a", {"app": "z"}, False, http), ("db1", "a", {"app": "x", "tier": "db"}, False, http)], 8080),
        ([("db2", "a", {"tier": "db", "app": "q"}, False, [])], 5432),
        ([("h1", "a", {"app": "x"}, True, http)], 8080),
        ([("b1", "b", {"app": "x"}, False, http), ("b2", "b", {"k": "v"}, False, http)], 8080),
        ([("c1", "c", {"app": "y"}, False, http)], 8080),
    ]
    memo: dict[tuple[Any, ...], Any] = {}
    every = sorted(namespaces)
    seen: set[str] = set()
    for i, (backends, tport) in enumerate(services):
        pods = {f"{ns}/{n}": _reach_pod(n, ns, labels, f"10.0.{i}.{k}", host=host, ports=ports)
                for k, (n, ns, labels, host, ports) in enumerate(backends)}
        ports_in = [("web", "TCP", [(f"10.0.{i}.{k}", tport, key) for k, key in enumerate(pods)])]
        fast = reachability(world, f"svc-{i}", ports_in, pods, every, memo)
        each = reachability(world, f"svc-{i}", ports_in, pods, every, None)
        assert fast.to_json() == each.to_json(), (i, fast.reach, each.reach)
        seen |= set(fast.reach.values())
    # not a comparison of empty answers: every kind of reach is in them
    assert {"all", "some", "none"} <= seen, seen

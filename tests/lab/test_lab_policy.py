"""svcctl's NetworkPolicy reading against the real kube-apiserver.

The real API server defaults what a policy leaves out (policyTypes from the presence of egress rules, each port's
protocol) and labels every Namespace with its name. Each documented policy of tests/test_policy.py goes in as
written; svcctl's inference from the undefaulted text must equal what the server stored, and a live trace through
the real API server must decide every backend as the trace of the same objects, as written, in a snapshot does.
The real server's validation must refuse what svcctl's reader refuses.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from svcctl.analysis.policy import NetworkPolicy, PolicyInputError

from .controlplane import ControlPlane
from .figures import FIGURES

RunCli = Callable[..., tuple[int, str, str]]
JSON = dict[str, Any]


def _docs() -> list[JSON]:
    import test_policy as tp

    texts = [v for k, v in vars(tp).items() if k.isupper() and isinstance(v, str) and "kind: NetworkPolicy" in v]
    return [yaml.safe_load(t) for t in texts]


def test_policy_defaulting_and_validation_agree_with_the_real_api_server(k8s: ControlPlane) -> None:
    ns = "pol-defaults"
    k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    docs = _docs()
    agree = 0
    for i, d in enumerate(docs):
        obj = copy.deepcopy(d)
        obj["apiVersion"] = "networking.k8s.io/v1"
        obj["metadata"] = {"name": f"p{i}-{d['metadata']['name']}"[:63], "namespace": ns}
        stored = k8s.apply(obj)
        mine = NetworkPolicy.from_dict(d)
        real = NetworkPolicy.from_dict(stored)
        assert mine.policy_types == [t.lower() for t in stored["spec"]["policyTypes"]], d["metadata"]["name"]
        assert [p.protocol for r in mine.ingress + mine.egress for p in r.ports] == [
            p.protocol for r in real.ingress + real.egress for p in r.ports]
        agree += 1
    refused = 0
    bad = [
        {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}},
        {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "nope"}}]}]},
        {"podSelector": {}, "policyTypes": ["Sideways"]},
    ]
    for i, spec in enumerate(bad):
        obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": f"bad{i}", "namespace": ns}, "spec": spec}
        status, _ = k8s.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", obj)
        try:
            NetworkPolicy.from_dict(obj)
            mine_refuses = False
        except PolicyInputError:
            mine_refuses = True
        assert mine_refuses and status == 422, (spec, status)
        refused += 1
    FIGURES.append(f"NetworkPolicy: {agree}/{len(docs)} documented policies defaulted as the real API server does; "
                   f"{refused}/{len(bad)} malformed ones refused by both")


def _ns(name: str, labels: dict[str, str] | None = None) -> JSON:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def test_live_policy_hop_on_the_real_api_server_equals_the_snapshot(
        k8s: ControlPlane, run_cli: RunCli, tmp_path: Path) -> None:
    from scenarios import builder as b

    db_ns, web_ns = "pol-db", "pol-web"
    svc = b.service("db", {"app": "db"}, ns=db_ns, ports=[("redis", 6379, "redis", "TCP")], cluster_ip="")
    del svc["spec"]["clusterIP"], svc["spec"]["clusterIPs"], svc["spec"]["ipFamilies"]
    redis = [b.container("redis", [("redis", 6379, "TCP")])]
    pods = [b.pod("db-0", {"app": "db"}, ns=db_ns, ip="198.18.20.10", node="lab-a1", containers=copy.deepcopy(redis)),
            b.pod("db-1", {"app": "db"}, ns=db_ns, ip="198.18.20.11", node="lab-b1", containers=copy.deepcopy(redis)),
            b.pod("web-0", {"role": "web"}, ns=web_ns, ip="198.18.20.20", node="lab-a1"),
            b.pod("api-0", {"role": "api"}, ns=web_ns, ip="198.18.20.21", node="lab-a1")]
    policies = [  # as a user writes them: no policyTypes, no protocols, a named port
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "db-ingress", "namespace": db_ns},
         "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}},
                                         "podSelector": {"matchLabels": {"role": "web"}}}],
                               "ports": [{"port": "redis"}]}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "egress-to-db", "namespace": web_ns},
         "spec": {"podSelector": {},
                  "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": db_ns}}}],
                              "ports": [{"port": 6379}]}]}},
    ]
    objects = [_ns(db_ns), _ns(web_ns, {"team": "web"}), svc, *pods, *policies]
    for o in objects:
        k8s.apply(copy.deepcopy(o))
    deadline = time.monotonic() + 60
    while True:  # the real EndpointSlice controller publishes the two ready backends
        slices = k8s.list(f"/apis/discovery.k8s.io/v1/namespaces/{db_ns}/endpointslices")
        if sum(len(s.get("endpoints") or []) for s in slices) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for sl in slices:
        sl.update(kind="EndpointSlice", apiVersion="discovery.k8s.io/v1")
    real_svc = k8s.must("GET", f"/api/v1/namespaces/{db_ns}/services/db")
    svc["spec"].update({k: real_svc["spec"][k] for k in ("clusterIP", "clusterIPs", "ipFamilies")})
    snap = tmp_path / "cluster.yaml"
    snap.write_text(yaml.safe_dump(b.as_list([*objects, *slices, *(b.node(n) for n in ("lab-a1", "lab-b1"))])))
    kubeconfig = k8s.write_kubeconfig(tmp_path / "admin.kubeconfig")
    agree = 0
    for client in ("pol-web/web-0", "pol-web/api-0"):
        args = ["trace", f"{db_ns}/db", "--from-pod", client, "--no-dns", "--no-exec", "-o", "json"]
        code, out, err = run_cli(args, env={"KUBECONFIG": str(kubeconfig)})
        assert code in (0, 1), err
        live = next(h for h in json.loads(out)["ports"][0]["hops"] if h["hop"] == "policy")
        code, out, err = run_cli([*args, "--snapshot", str(snap)])
        assert code in (0, 1), err
        offline = next(h for h in json.loads(out)["ports"][0]["hops"] if h["hop"] == "policy")
        assert live["data"] == offline["data"], client
        want = client.endswith("web-0")
        assert [x["allowed"] for x in live["data"]["backends"]] == [want, want], live["details"]
        agree += 1
    FIGURES.append(f"NetworkPolicy: live trace through the real API server = snapshot trace for {agree} clients")

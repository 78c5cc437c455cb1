"""`check -A` answers every Service from lists read once (sources/prefetch.py): the report is the one the
per-Service reads give, through the real client against the test API server, also when a kind is refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from gen_cluster import _pod, gen_cluster

import svcctl.sources.prefetch as prefetch

RunCli = Callable[..., tuple[int, str, str]]


def cluster() -> list[dict[str, Any]]:
    objs = gen_cluster(24, pods_per_service=3, nodes=5, namespaces=3, crowd="crowd")
    # a near miss that looks like a typo, the same labels in another namespace, a finished Pod
    objs.append(_pod("default", "hostname", "hostname-typo", "10.200.0.1", "node-0001", True))
    objs.append(_pod("team-001", "hostnames", "hostnames-elsewhere", "10.200.0.2", "node-0002", True))
    done = _pod("crowd", "svc-00002", "svc-00002-done", "10.200.0.3", "node-0003", False)
    done["status"]["phase"] = "Succeeded"
    objs.append(done)
    return objs


def report(run_cli: RunCli, kubeconfig: str, *args: str) -> tuple[int, Any]:
    code, out, err = run_cli(["check", "-A", "--no-dns", "-o", "json", "--kubeconfig", kubeconfig, *args])
    assert out.startswith("{"), err
    doc = json.loads(out)

    def strip(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k != "seconds"}
        if isinstance(o, list):
            return [strip(x) for x in o]
        return o

    return code, strip(doc)


def requests(srv: Any, run: Callable[[], Any]) -> int:
    srv.reset_counters()
    run()
    return int(srv.request_count)


@pytest.mark.parametrize("refused", [None, "pods", "endpointslices", "endpoints", "events", "nodes", "namespaces",
                                     "networkpolicies", "get namespaces"])
def test_prefetched_check_is_the_per_service_check(refused: str | None, apiserver: Any, run_cli: RunCli,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from apiserver import Grant

    objs = copy.deepcopy(cluster())
    if refused == "get namespaces":  # a peer chosen by Namespace labels: each Namespace's labels are read
        objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "from-team-a", "namespace": "crowd"},
                     "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]}})
    srv = apiserver(objs)
    everything = {"services", "pods", "endpoints", "endpointslices", "events", "nodes", "namespaces", "networkpolicies"}
    groups = frozenset({"", "discovery.k8s.io", "networking.k8s.io"})
    if refused == "get namespaces":  # list without get: one Service's read narrows a list to its Namespace
        srv.set_rbac([Grant(groups, frozenset(everything - {"namespaces"}), frozenset({"get", "list", "watch"}),
                            frozenset(), None),
                      Grant(groups, frozenset({"namespaces"}), frozenset({"list"}), frozenset(), None)])
    elif refused:
        srv.set_rbac([Grant(groups, frozenset(everything - {refused}), frozenset({"get", "list", "watch"}),
                            frozenset(), None)])
    kc = str(srv.kubeconfig)
    out: dict[str, tuple[int, Any]] = {}
    n: dict[str, int] = {}
    n["lists"] = requests(srv, lambda: out.__setitem__("lists", report(run_cli, kc)))
    monkeypatch.setattr(prefetch, "PREFETCH_MIN", 10**9)
    n["each"] = requests(srv, lambda: out.__setitem__("each", report(run_cli, kc)))
    if out["lists"] != out["each"]:
        import difflib

        a = json.dumps(out["each"], indent=1, sort_keys=True).splitlines()
        b = json.dumps(out["lists"], indent=1, sort_keys=True).splitlines()
        pytest.fail("\n".join(list(difflib.unified_diff(a, b, lineterm="", n=4))[:80]))
    doc = out["lists"][1]
    assert len(doc["services"]) == 24
    if refused in (None, "get namespaces"):
        said = [m for m in json.dumps(doc).split('"') if "namespaces" in m and "forbidden" in m
                and "adminnetworkpolicies" not in m]
        assert said == [], said  # the Namespaces' labels were read (with a list where get is refused)
        codes = {f["code"] for s in doc["services"] for f in s["endpoints"]["findings"]}
        assert {"SelectorMismatch", "OtherNamespace"} <= codes, codes
        assert n["lists"] < n["each"] // 3, n  # a few lists instead of a dozen requests per Service
    else:
        said = [s for s in doc["services"] if f'"{refused}\\" is forbidden' in json.dumps(s)
                or f"{refused} is forbidden" in json.dumps(s) or "forbidden" in json.dumps(s).lower()]
        assert len(said) == len(doc["services"]), refused  # every Service says what it could not read


@pytest.mark.parametrize("grouped", [True, False])
def test_pod_pool_answers_as_a_filter_of_the_list(grouped: bool) -> None:
    """The Pod index answers a selector as the API would, the first `limit` Pods in list order, in one namespace
    and in all: from the namespaces' lists joined when the list comes namespace by namespace (as the API lists
    them), from an index of its own when it does not."""
    import random

    from svcctl.model import Pod
    from svcctl.selectors import labels_match, parse_selector

    rnd = random.Random(7)
    pods: list[Pod] = []
    for i in range(400):
        labels = {k: rnd.choice(["a", "b", "c"]) for k in ("app", "tier", "x") if rnd.random() < 0.7}
        raw = _pod(f"ns-{rnd.randrange(5)}", "w", f"p-{i:03d}", "10.0.0.1", "node-0", True)
        raw["metadata"]["labels"] = labels
        pods.append(Pod.from_dict(raw))
    if grouped:
        pods.sort(key=lambda p: p.meta.namespace)
    pool = prefetch._PodPool()
    for p in pods:
        pool.add(p)
    selectors = [None, "app", "app=a", "app=a,tier=b", "tier,x=c", "app!=a", "x=c,app", "none=x"]
    for ns in [None, "ns-0", "ns-3", "nowhere"]:
        for sel in selectors:
            for limit in (None, 1, 7):
                terms = parse_selector(sel)
                want = [p for p in pods if (ns is None or p.meta.namespace == ns) and labels_match(p.meta.labels,
                                                                                                   terms)]
                got = pool.select(ns, sel, limit)
                assert [p.key for p in got] == [p.key for p in want[:limit]], (ns, sel, limit)


def test_a_checked_services_slices_are_let_go_and_read_again_if_asked(apiserver: Any) -> None:
    """check -A lets each Service's slices go once it is checked (`done`); asked again, they come from the API
    (one request), never as "no slices"."""
    from svcctl.sources.kubeconfig import resolve
    from svcctl.sources.live import LiveSource

    srv = apiserver(copy.deepcopy(cluster()))
    src = LiveSource(resolve(str(srv.kubeconfig)))
    services = src.list_services(None)
    fast = prefetch.prefetch(src, None, services, True)
    try:
        assert isinstance(fast, prefetch.Prefetched)
        first = fast.list_endpoint_slices("default", "hostnames")
        assert [sl.meta.name for sl in first] == ["hostnames-abcde"]
        before = src.requests
        assert [sl.meta.name for sl in fast.list_endpoint_slices("default", "hostnames")] == ["hostnames-abcde"]
        assert src.requests == before  # from the list
        fast.done("default", "hostnames")
        again = fast.list_endpoint_slices("default", "hostnames")
        assert [sl.meta.name for sl in again] == ["hostnames-abcde"] and src.requests == before + 1
        assert [e.addresses for e in again[0].endpoints] == [e.addresses for e in first[0].endpoints]
    finally:
        prefetch.release()

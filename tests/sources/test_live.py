"""LiveSource against the HTTPS test API server: what it asks for, what it reads, and that it only reads."""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from typing import Any

import pytest
from apiserver import FakeAPIServer
from gen_cluster import gen_cluster

from svcctl.model import PodRef
from svcctl.sources.kubeconfig import build_api_client, resolve
from svcctl.sources.live import LiveSource

Factory = Callable[..., FakeAPIServer]


def live(srv: FakeAPIServer, **kw: Any) -> LiveSource:
    return LiveSource(resolve(str(srv.kubeconfig)), **kw)


def why_not_reads(src: LiveSource, ns: str, name: str) -> None:
    """The reads `svcctl endpoints SVC --why-not` makes, in its order."""
    from svcctl.sources.base import selector_string

    svc = src.get_service(ns, name)
    src.list_endpoint_slices(ns, name)
    src.get_endpoints(ns, name)
    pods = src.list_pods(ns, selector_string(svc.selector or {}))
    src.get_nodes(sorted({p.node_name for p in pods}))
    src.list_events(ns, "Pod", [p.meta.name for p in pods])


def test_reads_the_demo_service(apiserver: Factory) -> None:
    srv = apiserver("demo")
    src = live(srv)
    assert src.default_namespace() == "default"
    assert src.name == "context test"
    svc = src.get_service("default", "hostnames")
    assert svc.cluster_ip == "10.0.1.175" and svc.ports[0].target_port == 9376
    assert svc.raw["kind"] == "Service"
    slices = src.list_endpoint_slices("default", "hostnames")
    assert [s.service_name for s in slices] == ["hostnames"]
    assert sorted(a for s in slices for e in s.endpoints for a in e.addresses) == [
        "10.244.0.5", "10.244.0.6", "10.244.0.7"]
    ep = src.get_endpoints("default", "hostnames")
    assert ep is not None and sorted(ep.ready_addresses) == ["10.244.0.5", "10.244.0.6"]
    assert src.get_endpoints("default", "no-such") is None
    pods = src.list_pods("default", "app=hostnames")
    assert sorted(p.pod_ip for p in pods) == ["10.244.0.5", "10.244.0.6", "10.244.0.7"]
    assert [p.meta.name for p in pods if not p.ready] == ["hostnames-632524106-tlaok"]
    assert {p.meta.namespace for p in src.list_pods(None)} == {"default", "kube-system"}
    nodes = src.get_nodes(["kind-worker", "gone-node", "kind-worker"])
    assert set(nodes) == {"kind-worker", "gone-node"}
    assert nodes["gone-node"] is None
    worker = nodes["kind-worker"]
    assert worker is not None and worker.internal_ips == ["172.18.0.3"]
    assert [n.meta.name for n in src.list_nodes()] == ["kind-worker"]
    events = src.list_events("default", "Pod", ["hostnames-632524106-tlaok", "hostnames-632524106-bbpiw"])
    assert [(e.involved_name, e.reason) for e in events] == [("hostnames-632524106-tlaok", "Unhealthy")]
    assert src.namespaces() == ["default", "kube-system"]
    assert src.node_dumps("kind-worker") is None
    assert src.skipped == []
    assert src.requests == srv.request_count
    assert src.bytes_read == srv.bytes_sent


def test_asks_only_for_what_it_needs(apiserver: Factory) -> None:
    srv = apiserver("demo")
    why_not_reads(live(srv), "default", "hostnames")
    asked = [(r.verb, r.path, r.query.get("labelSelector"), r.query.get("fieldSelector")) for r in srv.requests]
    assert asked == [
        ("get", "/api/v1/namespaces/default/services/hostnames", None, None),
        ("list", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
         "kubernetes.io/service-name=hostnames", None),
        ("get", "/api/v1/namespaces/default/endpoints/hostnames", None, None),
        ("list", "/api/v1/namespaces/default/pods", "app=hostnames", None),
        ("get", "/api/v1/nodes/kind-worker", None, None),
        ("list", "/api/v1/namespaces/default/events", None,
         "involvedObject.kind=Pod,involvedObject.name=hostnames-632524106-bbpiw"),
        ("list", "/api/v1/namespaces/default/events", None,
         "involvedObject.kind=Pod,involvedObject.name=hostnames-632524106-ly40y"),
        ("list", "/api/v1/namespaces/default/events", None,
         "involvedObject.kind=Pod,involvedObject.name=hostnames-632524106-tlaok"),
    ]
    assert all(r.query.get("limit") == "500" for r in srv.requests if r.verb == "list")


def test_never_writes(apiserver: Factory) -> None:
    srv = apiserver("demo")
    src = live(srv)
    why_not_reads(src, "default", "hostnames")
    src.list_services(None)
    src.list_nodes()
    src.namespaces()
    src.kube_proxy_pod_for_node("kind-worker")
    assert srv.writes == []
    assert {r.method for r in srv.requests} == {"GET"}
    assert {r.verb for r in srv.requests} <= {"get", "list"}


def test_server_records_and_refuses_writes(apiserver: Factory) -> None:
    """The guard the read-only assertions rely on: a write attempt is refused (405) and recorded."""
    srv = apiserver("demo")
    api = build_api_client(resolve(str(srv.kubeconfig)))
    from kubernetes import client

    with pytest.raises(client.ApiException) as exc:
        client.CoreV1Api(api).delete_namespaced_pod("hostnames-632524106-tlaok", "default")
    assert exc.value.status == 405
    assert [(w.method, w.path) for w in srv.writes] == [
        ("DELETE", "/api/v1/namespaces/default/pods/hostnames-632524106-tlaok")]


def test_paging_follows_continue(apiserver: Factory) -> None:
    srv = apiserver(gen_cluster(3, pods_per_service=7, nodes=4))
    src = live(srv)
    src.page_size = 3
    pods = src.list_pods("default", "app=hostnames")
    assert sorted(p.meta.name for p in pods) == [f"hostnames-632524106-{i:05d}" for i in range(7)]
    pages = [r for r in srv.requests if r.path.endswith("/pods")]
    assert len(pages) == 3
    assert [bool(r.query.get("continue")) for r in pages] == [False, True, True]
    assert all(r.query["labelSelector"] == "app=hostnames" for r in pages)


def test_typed_client_models_deserialize(apiserver: Factory) -> None:
    """The server's objects go through the real client's models, the way any client would read them."""
    srv = apiserver("demo")
    from kubernetes import client

    api = build_api_client(resolve(str(srv.kubeconfig)))
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    pods = core.list_namespaced_pod("default", label_selector="app=hostnames")
    assert pods.kind == "PodList" and pods.metadata.resource_version
    assert sorted(p.status.pod_ip for p in pods.items) == ["10.244.0.5", "10.244.0.6", "10.244.0.7"]
    slices = disc.list_namespaced_endpoint_slice("default", label_selector="kubernetes.io/service-name=hostnames")
    assert slices.items[0].address_type == "IPv4"
    assert sorted(e.conditions.ready for e in slices.items[0].endpoints) == [False, True, True]
    svc = core.read_namespaced_service("hostnames", "default")
    assert svc.spec.cluster_ip == "10.0.1.175" and svc.spec.ports[0].target_port == 9376
    node = core.read_node("kind-worker")
    assert node.spec.pod_cidr == "10.244.0.0/24"
    events = core.list_namespaced_event("default", field_selector="involvedObject.name=hostnames-632524106-tlaok")
    assert [e.reason for e in events.items] == ["Unhealthy"]
    assert core.list_namespace().items[0].metadata.name == "default"
    assert srv.writes == []


def test_server_selectors(apiserver: Factory) -> None:
    objs = gen_cluster(3, pods_per_service=4, nodes=2)
    for i, o in enumerate(o for o in objs if o["kind"] == "Pod"):
        o["metadata"]["labels"]["tier"] = ["web", "db", "cache"][i % 3]
    srv = apiserver(objs)
    src = live(srv)

    def names(sel: str) -> set[str]:
        return {p.meta.name for p in src.list_pods("default", sel)}

    everything = names("")
    assert len(everything) == 4
    assert names("tier in (web,db)") == {p for p in everything if p.endswith(("00", "01", "03"))}
    assert names("tier notin (web,db)") == {p for p in everything if p.endswith("02")}
    assert names("tier!=web,app==hostnames") == names("tier in (db,cache)")
    assert names("tier") == everything and names("!tier") == set()
    on_node = {p.meta.name for p in src.list_pods(None) if p.node_name == "node-0001"}
    from kubernetes import client

    core = client.CoreV1Api(build_api_client(resolve(str(srv.kubeconfig))))
    got = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-0001,status.phase=Running")
    assert {p.metadata.name for p in got.items} == on_node
    with pytest.raises(client.ApiException) as exc:
        core.list_pod_for_all_namespaces(field_selector="spec.bogus=1")
    assert exc.value.status == 400 and "field label not supported" in exc.value.body


def kube_proxy_cluster() -> list[dict[str, Any]]:
    objs = gen_cluster(3, pods_per_service=2, nodes=2)
    tmpl = next(o for o in objs if o["kind"] == "Pod")
    for node in ("node-0000", "node-0001"):
        p = copy.deepcopy(tmpl)
        p["metadata"].update(name=f"kube-proxy-{node[-1]}", namespace="kube-system",
                             labels={"k8s-app": "kube-proxy"})
        p["spec"]["nodeName"] = node
        p["spec"]["containers"][0]["name"] = "kube-proxy"
        objs.append(p)
    return objs


def test_kube_proxy_pod_and_exec(apiserver: Factory) -> None:
    srv = apiserver(kube_proxy_cluster())
    seen: list[tuple[str, str, str, list[str]]] = []

    def handler(ns: str, pod: str, container: str, argv: list[str]) -> tuple[str, str, int]:
        seen.append((ns, pod, container, argv))
        if argv == ["iptables-save", "-t", "nat"]:
            return "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n", "", 0
        return "", "iptables: command not found\n", 127

    srv.exec_handler = handler
    src = live(srv)
    assert src.kube_proxy_pod_for_node("node-0001") == PodRef("kube-system", "kube-proxy-1")
    assert src.kube_proxy_pod_for_node("node-9999") is None
    q = [r.query for r in srv.requests if r.path == "/api/v1/namespaces/kube-system/pods"]
    assert q[0]["labelSelector"] == "k8s-app=kube-proxy" and q[0]["fieldSelector"] == "spec.nodeName=node-0001"
    text = src.exec_in_pod("kube-system", "kube-proxy-1", "kube-proxy", ["iptables-save", "-t", "nat"])
    assert text.startswith("*nat\n") and "COMMIT" in text
    assert seen == [("kube-system", "kube-proxy-1", "kube-proxy", ["iptables-save", "-t", "nat"])]
    from svcctl.errors import ClusterError

    with pytest.raises(ClusterError, match="exited with 127: iptables: command not found"):
        src.exec_in_pod("kube-system", "kube-proxy-1", None, ["ipvsadm-save", "-n"])
    assert srv.writes == []


@pytest.mark.parametrize("crowd", [None, "default"], ids=["spread", "same-namespace"])
def test_request_count_does_not_grow_with_the_cluster(apiserver: Factory, run_cli: Callable[..., tuple[int, str, str]],
                                                      capsys: pytest.CaptureFixture[str], crowd: str | None) -> None:
    """`svcctl endpoints hostnames --why-not` costs the same requests with 3 Services and with 10,000 Services
    / 100,000 Pods, whether the others live in other namespaces or all in `default` beside it (where every
    Pod carries the selector's key `app`: the near-miss search is one bounded page)."""
    use_cli = importlib.util.find_spec("svcctl.cli.endpoints") is not None
    figures = {}
    for n_services in (3, 10_000):
        objs = gen_cluster(n_services, pods_per_service=10, nodes=100, crowd=crowd)
        pods = sum(1 for o in objs if o["kind"] == "Pod")
        srv = apiserver(objs, copy=False)
        if use_cli:
            code, out, err = run_cli(["endpoints", "hostnames", "--why-not", "--kubeconfig", str(srv.kubeconfig)])
            assert code == 1, err  # one Pod is not ready: a problem found
            assert "hostnames-632524106-00009" in out
        else:
            src = live(srv)
            why_not_reads(src, "default", "hostnames")
            assert src.requests == srv.request_count and src.bytes_read == srv.bytes_sent
        figures[n_services] = (srv.request_count, srv.bytes_sent, pods,
                               [(r.verb, r.path, sorted(r.query.items())) for r in srv.requests])
        assert srv.writes == []
        srv.stop()
    small, big = figures[3], figures[10_000]
    assert big[2] == 100_000
    assert small[0] == big[0]
    assert small[3] == big[3]  # the very same requests
    if crowd is None:
        assert abs(small[1] - big[1]) < 0.05 * small[1]  # bytes differ only by resourceVersion digits
    else:  # the near-miss page is full (500 Pods) instead of 20: bounded, not namespace-sized
        assert big[1] < 50 * small[1]
    how = "svcctl endpoints hostnames --why-not" if use_cli else "LiveSource why-not reads"
    with capsys.disabled():
        print(f"\n  {how} ({'others in default' if crowd else 'others in team-*'}): {small[0]} requests / "
              f"{small[1]} bytes with 3 Services, {big[0]} requests / {big[1]} bytes with 10,000 Services and "
              f"{big[2]:,} Pods")

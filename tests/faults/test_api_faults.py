"""What svcctl does when the API server fails: exit 3 with one line, degrade on 403, retry 429/5xx, re-list on 410.

Faults are real: a closed port, a server certificate from another CA, Status errors and slow responses from the
HTTPS test API server, and RBAC enforced from deploy/rbac.yaml.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apiserver import FakeAPIServer, closed_port, load_roles
from gen_cluster import gen_cluster

from svcctl.errors import ClusterError, ForbiddenError, NotFoundError
from svcctl.model import PodRef
from svcctl.sources.kubeconfig import resolve
from svcctl.sources.live import LiveSource

Factory = Callable[..., FakeAPIServer]
RunCli = Callable[..., tuple[int, str, str]]
RBAC = Path(__file__).resolve().parent.parent.parent / "deploy" / "rbac.yaml"
READER = {"ClusterRole/svcctl-reader": None, "ClusterRole/svcctl-node-exec": "kube-system"}


def live(srv: FakeAPIServer, kubeconfig: Path | None = None, **kw: Any) -> LiveSource:
    src = LiveSource(resolve(str(kubeconfig or srv.kubeconfig)), **kw)
    src.backoff = 0.01
    return src




def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def collect(run_cli: RunCli, kc: Path, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(["collect", "--kubeconfig", str(kc), "-o", str(tmp_path / "out.tar.gz"), *args])


# --------------------------------------------------------------------------- cannot reach / read


def test_unreachable(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    kc = srv.write_kubeconfig(tmp_path / "kc", server=f"https://127.0.0.1:{closed_port()}")
    with pytest.raises(ClusterError, match="connection refused"):
        live(srv, kc).get_service("default", "hostnames")
    code, out, err = collect(run_cli, kc, tmp_path, "hostnames")
    assert code == 3 and out == ""
    assert "cannot connect to the API server" in one_line_error(err)


def test_unresolvable_host(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    kc = srv.write_kubeconfig(tmp_path / "kc", server="https://svcctl-no-such-host.invalid:6443")
    with pytest.raises(ClusterError, match="cannot resolve the API server host svcctl-no-such-host.invalid"):
        live(srv, kc, request_timeout=5).get_service("default", "hostnames")


def test_tls_wrong_ca(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    from apiserver import make_ca

    srv = apiserver()
    other_ca, _ = make_ca(tmp_path / "other", name="someone-else")
    kc = srv.write_kubeconfig(tmp_path / "kc", ca="file")
    doc = kc.read_text().replace(str(srv.pki.ca_cert), str(other_ca))
    kc.write_text(doc)
    with pytest.raises(ClusterError, match="TLS verification .* failed"):
        live(srv, kc).get_service("default", "hostnames")
    code, out, err = collect(run_cli, kc, tmp_path, "hostnames")
    assert code == 3 and out == ""
    assert "certificate authority" in one_line_error(err)
    assert srv.requests == []  # nothing got past the handshake


def test_unauthorized(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    kc = srv.write_kubeconfig(tmp_path / "kc", user={"token": "expired"})
    code, out, err = collect(run_cli, kc, tmp_path, "hostnames")
    assert code == 3 and out == ""
    line = one_line_error(err)
    assert "credentials rejected" in line and "401" in line
    assert [r.status for r in srv.requests] == [401]  # no retry of a 401


def test_slow_response_beyond_request_timeout(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    srv.set_fault("services", status=None, delay=3)
    with pytest.raises(ClusterError, match="timed out after 0.5s"):
        live(srv, request_timeout=0.5).get_service("default", "hostnames")
    code, out, err = collect(run_cli, srv.kubeconfig, tmp_path, "--request-timeout", "0.5", "hostnames")
    assert code == 3
    assert "timed out" in one_line_error(err) and "--request-timeout" in err


def test_request_timeout_applies_to_each_request(apiserver: Factory) -> None:
    """A slow secondary read fails the same way: the timeout is per request, not per run."""
    srv = apiserver()
    srv.set_fault("events", status=None, delay=3)
    src = live(srv, request_timeout=0.5)
    src.get_service("default", "hostnames")
    with pytest.raises(ClusterError, match="timed out"):
        src.list_events("default", "Pod", ["hostnames-632524106-tlaok"])


# --------------------------------------------------------------------------- 403: fail or degrade


def test_forbidden_service_is_an_error(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    role = load_roles(RBAC)["ClusterRole/svcctl-reader"]
    role["rules"][0]["resources"].remove("services")
    from apiserver import grants_from_role

    srv.set_rbac(grants_from_role(role))
    with pytest.raises(ForbiddenError, match='cannot get resource "services"'):
        live(srv).get_service("default", "hostnames")
    code, _, err = collect(run_cli, srv.kubeconfig, tmp_path, "hostnames")
    assert code == 3
    assert "forbidden" in one_line_error(err) and "svcctl-reader" in err


def test_forbidden_events_degrades(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    role = load_roles(RBAC)["ClusterRole/svcctl-reader"]
    role["rules"] = [r for r in role["rules"] if "events" not in r["resources"]]
    from apiserver import grants_from_role

    srv.set_rbac(grants_from_role(role))
    src = live(srv)
    svc = src.get_service("default", "hostnames")
    pods = src.list_pods("default", "app=hostnames")
    assert src.list_events("default", "Pod", [p.meta.name for p in pods]) == []
    assert [s.resource for s in src.skipped] == ["events"]
    assert 'cannot list resource "events"' in src.skipped[0].reason
    assert svc.cluster_ip == "10.0.1.175" and len(pods) == 3
    # only one refused request: after the first 403 it stops asking for events
    assert [r.status for r in srv.requests if r.resource == "events"] == [403]
    code, out, err = collect(run_cli, srv.kubeconfig, tmp_path, "hostnames")
    assert code == 0
    assert "not collected: events" in err and "wrote" in err


def test_rbac_yaml_is_enough(apiserver: Factory) -> None:
    """Under deploy/rbac.yaml every LiveSource read succeeds, including exec into kube-proxy in kube-system."""
    objs = gen_cluster(3, pods_per_service=2, nodes=2)
    proxy = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "kube-proxy-abc", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
             "spec": {"nodeName": "node-0000", "containers": [{"name": "kube-proxy", "image": "kube-proxy"}]},
             "status": {"phase": "Running"}}
    srv = apiserver([*objs, proxy])
    srv.exec_handler = lambda ns, pod, c, argv: ("*nat\nCOMMIT\n", "", 0)
    srv.rbac_from_yaml(RBAC, READER)
    src = live(srv)
    svc = src.get_service("default", "hostnames")
    assert src.list_endpoint_slices("default", "hostnames")
    assert src.get_endpoints("default", "hostnames") is not None
    pods = src.list_pods("default", "app=hostnames")
    assert all(src.get_nodes([p.node_name for p in pods]).values())
    assert src.list_events("default", "Pod", [p.meta.name for p in pods])
    assert src.list_services(None) and src.list_pods(None) and src.list_nodes() and src.namespaces()
    assert src.list_all_events(None) and src.list_all_endpoint_slices(None) and src.list_all_endpoints(None)
    assert src.kube_proxy_pod_for_node("node-0000") == PodRef("kube-system", "kube-proxy-abc")
    assert src.exec_in_pod("kube-system", "kube-proxy-abc", "kube-proxy", ["iptables-save"]) == "*nat\nCOMMIT\n"
    assert svc.meta.name == "hostnames" and src.skipped == []
    assert {r.status for r in srv.requests} <= {200, 101}
    # exec is allowed in kube-system only
    with pytest.raises(ForbiddenError, match="cannot exec into default/") as exc:
        src.exec_in_pod("default", pods[0].meta.name, None, ["iptables-save"])
    assert "svcctl-node-exec" in str(exc.value.hint)
    assert srv.writes == []


def test_rbac_without_exec_role(apiserver: Factory) -> None:
    srv = apiserver()
    srv.rbac_from_yaml(RBAC, {"ClusterRole/svcctl-reader": None})
    with pytest.raises(ForbiddenError):
        live(srv).exec_in_pod("kube-system", "coredns-5d78c9869d-q2x7m", None, ["iptables-save"])
    assert srv.execs == []


def test_rbac_namespaced_variant(apiserver: Factory) -> None:
    """The Role variant reads one namespace; nodes (cluster-scoped) are skipped, other namespaces refused."""
    srv = apiserver()
    srv.rbac_from_yaml(RBAC, {"Role/svcctl-namespace-reader": None})
    src = live(srv)
    src.get_service("default", "hostnames")
    pods = src.list_pods("default", "app=hostnames")
    assert len(pods) == 3
    assert src.get_nodes(["kind-worker"]) == {}
    assert src.list_events("default", "Pod", ["hostnames-632524106-tlaok"])
    assert [s.resource for s in src.skipped] == ["nodes"]
    with pytest.raises(ForbiddenError):
        src.get_service("kube-system", "kube-dns")
    with pytest.raises(ForbiddenError):
        src.list_pods(None)


# --------------------------------------------------------------------------- 404, 410, 429/5xx


def test_service_not_found_suggests(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    with pytest.raises(NotFoundError) as exc:
        live(srv).get_service("default", "hostname")
    assert exc.value.hint == "did you mean hostnames?"
    # only on error: the name in other namespaces (server-side field selector), then this namespace's names
    assert [(r.verb, r.path, r.query.get("fieldSelector")) for r in srv.requests] == [
        ("get", "/api/v1/namespaces/default/services/hostname", None),
        ("list", "/api/v1/services", "metadata.name=hostname"),
        ("list", "/api/v1/namespaces/default/services", None)]
    code, out, err = collect(run_cli, srv.kubeconfig, tmp_path, "hostname")
    assert code == 2 and out == ""
    assert "did you mean hostnames?" in one_line_error(err)
    code, _, err = collect(run_cli, srv.kubeconfig, tmp_path, "kube-dns")
    assert code == 2 and "kube-system/kube-dns (use -n)" in err


def test_continue_expired_restarts_once(apiserver: Factory) -> None:
    srv = apiserver(gen_cluster(3, pods_per_service=5, nodes=2))
    srv.set_fault("pods", status=410, only_continue=True, times=1)
    src = live(srv)
    src.page_size = 2
    pods = src.list_pods("default", "app=hostnames")
    assert len({p.meta.name for p in pods}) == 5 and len(pods) == 5
    statuses = [(r.status, bool(r.query.get("continue"))) for r in srv.requests]
    # page, page(410), then the whole list again: 3 pages
    assert statuses == [(200, False), (410, True), (200, False), (200, True), (200, True)]


def test_read_all_pages_restart_once_and_refusal(apiserver: Factory) -> None:
    """read_all (check -A's v1 Endpoints and Events, each object read as its page comes): the objects of every
    page through `read`, a 410 on a continue token restarts the list once, a refusal is recorded and is None."""
    srv = apiserver(gen_cluster(3, pods_per_service=5, nodes=2))
    src = live(srv)
    src.page_size = 2
    assert src.read_all("endpoints", "Endpoints", None, lambda d: (d["kind"], d["metadata"]["name"])) == [
        ("Endpoints", "hostnames"), ("Endpoints", "svc-00001"), ("Endpoints", "svc-00002")]
    assert sum(1 for r in srv.requests if r.path.endswith("/endpoints")) == 2  # 2 + 1 on two pages
    srv.set_fault("events", status=410, only_continue=True, times=1)
    srv.requests.clear()
    names = src.read_all("events", "Event", None, lambda d: d["metadata"]["name"])
    assert names is not None and len(names) == 3 and len(set(names)) == 3
    assert [(r.status, bool(r.query.get("continue"))) for r in srv.requests] == [
        (200, False), (410, True), (200, False), (200, True)]
    srv.set_fault("events", status=403)
    assert src.read_all("events", "Event", None, lambda d: d) is None
    assert [s.resource for s in src.skipped] == ["events"]


def test_continue_expiring_twice_is_an_error(apiserver: Factory) -> None:
    srv = apiserver(gen_cluster(3, pods_per_service=5, nodes=2))
    srv.set_fault("pods", status=410, only_continue=True)
    src = live(srv)
    src.page_size = 2
    with pytest.raises(ClusterError, match="kept expiring"):
        src.list_pods("default", "app=hostnames")


def test_real_expired_token_shape(apiserver: Factory) -> None:
    """The server's own expiry (not an injected fault) carries a real Status and is recovered from."""
    srv = apiserver(gen_cluster(3, pods_per_service=5, nodes=2))
    from kubernetes import client

    from svcctl.sources.kubeconfig import build_api_client

    core = client.CoreV1Api(build_api_client(resolve(str(srv.kubeconfig))))
    first = core.list_namespaced_pod("default", limit=2)
    srv.expire_continue_tokens()
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_pod("default", limit=2, _continue=first.metadata._continue)
    import json

    status = json.loads(exc.value.body)
    assert (exc.value.status, status["kind"], status["reason"], status["code"]) == (410, "Status", "Expired", 410)
    assert status["metadata"]["continue"]


@pytest.mark.parametrize("code", [429, 500, 503])
def test_retried_then_success(apiserver: Factory, code: int) -> None:
    srv = apiserver()
    srv.set_fault("services", status=code, times=2, retry_after=0 if code == 429 else None)
    src = live(srv)
    assert src.get_service("default", "hostnames").meta.name == "hostnames"
    assert [r.status for r in srv.requests] == [code, code, 200]
    assert src.requests == 3


def test_retry_after_is_honoured(apiserver: Factory) -> None:
    srv = apiserver()
    srv.set_fault("pods", status=429, times=1, retry_after=1)
    src = live(srv)
    slept: list[float] = []
    src.sleep = slept.append
    src.list_pods("default")
    assert slept == [1.0]


def test_gives_up_after_three_retries(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    srv.set_fault("services", status=500)
    with pytest.raises(ClusterError, match="kept failing"):
        live(srv).get_service("default", "hostnames")
    assert [r.status for r in srv.requests] == [500] * 4
    srv.reset_counters()
    code, _, err = collect(run_cli, srv.kubeconfig, tmp_path, "hostnames")
    assert code == 3 and "kept failing" in one_line_error(err)



# --------------------------------------------------------------------------- the same faults through `svcctl endpoints`

def endpoints(run_cli: RunCli, kc: Path | str, *args: str) -> tuple[int, str, str]:
    return run_cli(["endpoints", "hostnames", "--why-not", "--kubeconfig", str(kc), *args])


def test_endpoints_unreachable_and_tls(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    from apiserver import make_ca

    srv = apiserver()
    dead = srv.write_kubeconfig(tmp_path / "dead", server=f"https://127.0.0.1:{closed_port()}")
    code, out, err = endpoints(run_cli, dead)
    assert (code, out) == (3, "") and "connection refused" in one_line_error(err)
    other_ca, _ = make_ca(tmp_path / "other", name="other-ca")
    wrong = srv.write_kubeconfig(tmp_path / "wrong", ca="file")
    wrong.write_text(wrong.read_text().replace(str(srv.pki.ca_cert), str(other_ca)))
    code, out, err = endpoints(run_cli, wrong)
    assert (code, out) == (3, "") and "TLS verification" in one_line_error(err)


def test_endpoints_401_and_timeout(apiserver: Factory, tmp_path: Path, run_cli: RunCli) -> None:
    srv = apiserver()
    bad = srv.write_kubeconfig(tmp_path / "bad", user={"token": "nope"})
    code, out, err = endpoints(run_cli, bad)
    assert (code, out) == (3, "") and "credentials rejected" in one_line_error(err)
    srv.set_fault("pods", status=None, delay=3)
    code, out, err = endpoints(run_cli, srv.kubeconfig, "--request-timeout", "0.5")
    assert (code, out) == (3, "") and "timed out after 0.5s" in one_line_error(err)


def test_endpoints_403_events_degrades(apiserver: Factory, run_cli: RunCli) -> None:
    srv = apiserver()
    roles = load_roles(RBAC)
    roles["ClusterRole/svcctl-reader"]["rules"] = [
        r for r in roles["ClusterRole/svcctl-reader"]["rules"] if "events" not in r["resources"]]
    from apiserver import grants_from_role

    srv.set_rbac(grants_from_role(roles["ClusterRole/svcctl-reader"]))
    code, out, err = endpoints(run_cli, srv.kubeconfig)
    assert code == 1, err  # still answers: one Pod is not ready
    assert "hostnames-632524106-tlaok" in out and "10.244.0.5" in out
    assert "CheckSkipped" in out and "events" in out
    code, out, err = endpoints(run_cli, srv.kubeconfig, "-o", "json")
    import json

    doc = json.loads(out)
    assert doc["apiVersion"] == "svcctl/v1" and doc["skippedChecks"]


def test_endpoints_404_410_429(apiserver: Factory, run_cli: RunCli) -> None:
    srv = apiserver()
    code, out, err = run_cli(["endpoints", "hostname", "--kubeconfig", str(srv.kubeconfig)])
    assert (code, out) == (2, "") and "did you mean hostnames?" in one_line_error(err)
    srv.reset_counters()
    srv.set_fault("services", status=429, times=1, retry_after=0)
    srv.set_fault("endpointslices", status=503, times=2)
    code, out, err = endpoints(run_cli, srv.kubeconfig)
    assert code == 1, err
    assert "hostnames-632524106-tlaok" in out
    assert [r.status for r in srv.requests if r.resource == "services"][:2] == [429, 200]
    assert [r.status for r in srv.requests if r.resource == "endpointslices"][:3] == [503, 503, 200]


def test_endpoints_410_while_paging_recovers(apiserver: Factory, run_cli: RunCli) -> None:
    srv = apiserver(gen_cluster(3, pods_per_service=600, nodes=3))  # 600 Pods: two pages of 500
    srv.set_fault("pods", status=410, only_continue=True, times=1)
    code, out, err = endpoints(run_cli, srv.kubeconfig)
    assert code == 1, err
    assert "599 ready, 1 not ready, 600 expected" in out
    first = [(r.status, bool(r.query.get("continue"))) for r in srv.requests if r.resource == "pods"][:4]
    assert first == [(200, False), (410, True), (200, False), (200, True)]


def test_endpoints_under_the_namespaced_role(apiserver: Factory, run_cli: RunCli) -> None:
    """With only the Role variant, svcctl still answers and says which checks it could not make."""
    srv = apiserver()
    srv.rbac_from_yaml(RBAC, {"Role/svcctl-namespace-reader": None})
    code, out, err = endpoints(run_cli, srv.kubeconfig)
    assert code == 1, err
    assert "2 ready, 1 not ready, 3 expected" in out
    assert "cannot read nodes" in out
    assert srv.writes == []


def test_exec_in_pod_times_out(apiserver: Factory) -> None:
    """A kube-proxy exec that never answers ends with ClusterError after --request-timeout."""
    srv = apiserver()
    srv.set_fault("pods/exec", status=None, delay=3)
    src = LiveSource(resolve(str(srv.kubeconfig)), request_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ClusterError, match="exec kube-system/coredns-5d78c9869d-q2x7m: iptables-save") as exc:
        src.exec_in_pod("kube-system", "coredns-5d78c9869d-q2x7m", None, ["iptables-save"])
    assert "--request-timeout" in str(exc.value.hint)
    assert time.monotonic() - started < 2.5  # the 3 s stall was cut short (not a timing assertion on speed)

"""The live path on the real API server: authentication by token, client certificate and exec plugin; real paging
(limit/continue); and `deploy/rbac.yaml`, applied as it is, as the caller's only permission on the real RBAC
authorizer — every command works with it, and taking away each of its rules degrades the answer the way the
README says (the check that needed it is skipped and named; without Services there is nothing to answer).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .controlplane import ControlPlane
from .figures import FIGURES
from .states import probed_service

RunCli = Callable[..., tuple[int, str, str]]
NS = "live"
RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"


def _objects() -> list[dict[str, Any]]:
    return probed_service(NS, "web", 8080, "198.18.40")


def _rbac_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def _reader_role() -> dict[str, Any]:
    return next(d for d in _rbac_docs() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "svcctl-reader")


def _bind(cp: ControlPlane, name: str, role: str, user: str) -> None:
    cp.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}")
    cp.must("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})


def _wait_allowed(cp: ControlPlane, user: str, path: str, allowed: bool = True, timeout: float = 10) -> None:
    """RBAC changes reach the authorizer through its informer: wait until `user` sees them."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status, _ = cp.request("GET", path, user=user)
        if (status == 200) == allowed:
            return
        time.sleep(0.05)
    raise AssertionError(f"{user} GET {path}: still {'refused' if allowed else 'allowed'} after {timeout} s")


@pytest.fixture(scope="module")
def live(k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    for obj in _objects():
        k8s.apply(obj)
    for doc in _rbac_docs():  # deploy/rbac.yaml, as it is
        k8s.apply(doc)
    # the ServiceAccount the file binds, with a token the API server issues (TokenRequest)
    tok = k8s.must("POST", "/api/v1/namespaces/default/serviceaccounts/svcctl/token",
                   {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"expirationSeconds": 3600}})["status"]["token"]
    from .controlplane import Credentials

    k8s.users["system:serviceaccount:default:svcctl"] = Credentials("system:serviceaccount:default:svcctl", token=tok)
    for user in ("svcctl-viewer", "exec-viewer", "cert-viewer"):
        _bind(k8s, f"lab-{user}", "svcctl-reader", user)
    for user in ("svcctl-viewer", "cert-viewer", "system:serviceaccount:default:svcctl"):
        _wait_allowed(k8s, user, f"/api/v1/namespaces/{NS}/services/web")
    d = tmp_path_factory.mktemp("live-kubeconfigs")
    yield {
        "serviceaccount": k8s.write_kubeconfig(d / "sa", "system:serviceaccount:default:svcctl"),
        "token": k8s.write_kubeconfig(d / "token", "svcctl-viewer"),
        "cert": k8s.write_kubeconfig(d / "cert", "cert-viewer"),
        "exec": k8s.write_kubeconfig(d / "exec", "exec-viewer", exec_token="exec-token"),
    }


def _endpoints(run_cli: RunCli, kubeconfig: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(["endpoints", "web", "-n", NS, "--why-not", "-o", "json", *extra],
                             env={"KUBECONFIG": str(kubeconfig)})
    return code, (json.loads(out) if out.strip() else {}), err


@pytest.mark.parametrize("auth", ["serviceaccount", "token", "cert", "exec"])
def test_every_way_to_authenticate_gives_the_same_answer(live: dict[str, Path], auth: str,
                                                          run_cli: RunCli) -> None:
    code, doc, err = _endpoints(run_cli, live[auth])
    assert code == 1, err  # one Pod fails its readiness probe: an error finding
    assert doc["counts"] == {"ready": 2, "notReady": 1, "expected": 3}
    codes = {f["code"] for f in doc["findings"]}
    assert "ReadinessProbeFailing" in codes and "CheckSkipped" not in codes, codes
    assert not doc["skippedChecks"]
    ref_code, ref, _ = _endpoints(run_cli, live["serviceaccount"])
    assert (code, doc) == (ref_code, ref)


def test_every_command_works_with_deploy_rbac_only(live: dict[str, Path], run_cli: RunCli,
                                                    tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(live["serviceaccount"])}
    commands = [
        (["endpoints", "web", "-n", NS, "--why-not"], {1}),
        (["endpoints", "-A", "-o", "json"], {0, 1}),
        (["check", "web", "-n", NS, "-o", "json"], {1}),
        (["check", "-A", "-o", "json"], {0, 1}),
        (["trace", "web", "-n", NS, "--no-dns", "-o", "json"], {1}),
        (["collect", "-n", NS, "-o", str(tmp_path / "c.tar.gz")], {0}),
    ]
    for argv, codes in commands:
        code, out, err = run_cli(argv, env=env)
        assert code in codes, f"{argv}: exit {code}: {err}"
        assert "forbidden" not in (out + err).lower(), f"{argv}: {err or out[:400]}"
        assert "Traceback" not in err
    assert (tmp_path / "c.tar.gz").stat().st_size > 0


# What taking each rule of svcctl-reader away does to `endpoints web --why-not` (the README's RBAC sentence:
# "Without events, nodes, endpoints or endpointslices svcctl still answers and says which check it skipped"):
# the resource whose read is refused, and the exit code.
DEGRADE = {"services": 3, "endpoints": 1, "pods": 1, "nodes": 1, "namespaces": 1, "events": 1,
           "endpointslices": 1, "networkpolicies": 1}


def test_removing_each_rbac_rule_degrades_as_documented(k8s: ControlPlane, live: dict[str, Path],
                                                        run_cli: RunCli) -> None:
    base_code, base, _ = _endpoints(run_cli, live["cert"])
    role = _reader_role()
    resources = sorted({r for rule in role["rules"] for r in rule["resources"]})
    checked = []
    for res in resources:
        reduced = copy.deepcopy(role)
        reduced["metadata"] = {"name": f"svcctl-reader-minus-{res}"}
        for rule in reduced["rules"]:
            rule["resources"] = [r for r in rule["resources"] if r != res]
        reduced["rules"] = [r for r in reduced["rules"] if r["resources"]]
        k8s.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{reduced['metadata']['name']}")
        k8s.apply(reduced)
        _bind(k8s, "lab-cert-viewer", reduced["metadata"]["name"], "cert-viewer")
        probe = {"services": f"/api/v1/namespaces/{NS}/services/web", "pods": f"/api/v1/namespaces/{NS}/pods",
                 "endpoints": f"/api/v1/namespaces/{NS}/endpoints", "nodes": "/api/v1/nodes",
                 "events": f"/api/v1/namespaces/{NS}/events", "namespaces": "/api/v1/namespaces",
                 "endpointslices": f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices",
                 "networkpolicies": f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies"}.get(res)
        if probe:
            _wait_allowed(k8s, "cert-viewer", probe, allowed=False)
        code, doc, err = _endpoints(run_cli, live["cert"])
        want = DEGRADE.get(res, base_code)
        assert code == want, f"without {res}: exit {code}, want {want}: {err}"
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
        if code == 3:
            assert "forbidden" in err.lower() and res in err, err
        else:
            skipped = " ".join(f["evidence"] + " " + f["message"] for f in doc["findings"]
                               if f["code"] == "CheckSkipped")
            used = res in ("endpoints", "pods", "nodes", "events", "endpointslices")
            if used:
                assert res in skipped, f"without {res}: no CheckSkipped names it: {doc['findings']}"
            # what did not need the refused read is unchanged
            if res not in ("pods", "endpointslices"):
                assert doc["counts"]["ready"] == base["counts"]["ready"]
        checked.append(f"{res}: exit {code}")
    _bind(k8s, "lab-cert-viewer", "svcctl-reader", "cert-viewer")
    FIGURES.append(f"RBAC (deploy/rbac.yaml on the real authorizer): every command works; each of "
                   f"{len(checked)} rules taken away degrades as documented ({', '.join(checked)})")


def test_real_paging_follows_continue(k8s: ControlPlane, live: dict[str, Path], run_cli: RunCli,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from svcctl.sources.live import LiveSource

    if k8s.request("GET", "/api/v1/namespaces/paging")[0] == 404:
        k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "paging"}})
        for i in range(23):
            k8s.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "namespace": "paging"},
                       "spec": {"selector": {"app": f"s{i}"}, "ports": [{"port": 80, "protocol": "TCP"}]}})
    all_services = k8s.list("/api/v1/services")
    first = k8s.must("GET", "/api/v1/services?limit=7")
    assert first["metadata"].get("continue"), "the real API server pages at limit=7"
    seen: list[dict[str, Any]] = []
    orig = LiveSource._fetch

    def recording(self: LiveSource, what: str, resource: str, path: str, **query: Any) -> Any:
        seen.append({"path": path, "thread": threading.current_thread().name, **query})
        return orig(self, what, resource, path, **query)

    monkeypatch.setattr(LiveSource, "page_size", 7)
    monkeypatch.setattr(LiveSource, "_fetch", recording)
    code, out, err = run_cli(["endpoints", "-A", "-o", "json"], env={"KUBECONFIG": str(live["token"])})
    assert code in (0, 1), err
    doc = json.loads(out)
    rows = doc.get("items") or doc.get("services") or []
    assert len(rows) == len(all_services), (len(rows), len(all_services))
    svc_pages = [q for q in seen if q["path"] == "/api/v1/services"]
    assert len(svc_pages) >= len(all_services) // 7 and any(q.get("continue") for q in svc_pages), svc_pages[:3]
    # the real API server writes a list's metadata before its items: every page after the first was asked for
    # by the page reader with the token read from the page before's head (sources/page_reader.py)
    assert [q["thread"] == "svcctl-page-reader" for q in svc_pages] == [False] + [True] * (len(svc_pages) - 1)
    assert [bool(q.get("continue")) for q in svc_pages] == [False] + [True] * (len(svc_pages) - 1)

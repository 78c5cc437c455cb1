"""Nothing secret ever leaves svcctl: not on stdout/stderr (with -v/-vv, on success and on every error path),
not in `collect` bundles.

Secrets planted: a bearer token, client-key-data (and the PEM key inside it), a tokenFile's content, an exec
credential plugin's token and an env value given to the plugin, plus Pod env values, a Secret, a ConfigMap and
a last-applied annotation in the cluster itself.
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apiserver import FakeAPIServer, _objects_of, closed_port, make_ca
from test_collect import PLANTED, planted_cluster

RunCli = Callable[..., tuple[int, str, str]]
Factory = Callable[..., FakeAPIServer]
ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "svcctl" / "data" / "demo"
DUMPS = DEMO / "nodes" / "kind-worker"

TOKEN = "tok-LEAKCHECK-bearer-8f3a1c"
FILE_TOKEN = "tok-LEAKCHECK-file-5d2e9b"
EXEC_TOKEN = "tok-LEAKCHECK-exec-77c410"
PLUGIN_ENV = "env-LEAKCHECK-plugin-31e0"
PLUGIN = """\
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
if sys.argv[1] == "fail":
    print("LEAKCHECK-plugin-stdout " + os.environ.get("PLUGIN_SECRET", ""))
    print("please log in first", file=sys.stderr)  # shown to the user, like kubectl does
    sys.exit(1)
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {"token": sys.argv[1]}}))
"""


def kube_proxy_pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-proxy-kw", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
            "spec": {"nodeName": "kind-worker", "containers": [{"name": "kube-proxy", "image": "kube-proxy"}]},
            "status": {"phase": "Running"}}




def secrets_of(srv: FakeAPIServer) -> list[str]:
    key_pem = srv.pki.client_key.read_text()
    key_body = [ln for ln in key_pem.splitlines() if ln and not ln.startswith("-----")]
    return [TOKEN, FILE_TOKEN, EXEC_TOKEN, PLUGIN_ENV, base64.b64encode(key_pem.encode()).decode()[:60],
            *key_body, "LEAKCHECK", PLANTED]


def users(srv: FakeAPIServer, tmp: Path) -> dict[str, dict[str, Any]]:
    plugin = tmp / "plugin.py"
    plugin.write_text(PLUGIN)
    token_file = tmp / "token"
    token_file.write_text(FILE_TOKEN + "\n")
    token_file.chmod(0o600)

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    exec_user = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                 "args": [str(plugin), EXEC_TOKEN], "interactiveMode": "Never",
                 "env": [{"name": "PLUGIN_SECRET", "value": PLUGIN_ENV}]}
    return {
        "bearer token": {"token": TOKEN},
        "tokenFile": {"tokenFile": str(token_file)},
        "client key data": {"client-certificate-data": b64(srv.pki.client_cert),
                            "client-key-data": b64(srv.pki.client_key)},
        "exec plugin": {"exec": exec_user},
        "exec plugin failing": {"exec": {**exec_user, "args": [str(plugin), "fail"]}},
    }


def commands(kc: str, tmp: Path) -> list[list[str]]:
    k = ["--kubeconfig", kc, "--request-timeout", "2"]
    return [
        ["endpoints", "hostnames", "--why-not", *k],
        ["trace", "hostnames", "--node", "kind-worker", "--no-dns", *k],
        ["rules", "--node", "kind-worker", *k],
        ["check", "hostnames", "--no-dns", *k],
        ["collect", "hostnames", "--node-rules", "-o", str(tmp / "b.tar.gz"), *k],
    ]


def assert_clean(text: str, secrets: list[str], what: str) -> None:
    for s in secrets:
        assert s not in text, f"{s!r} leaked in {what}:\n{text[:3000]}"


@pytest.fixture
def cluster(apiserver: Factory) -> FakeAPIServer:
    srv = apiserver([*planted_cluster(), kube_proxy_pod()])
    srv.tokens[TOKEN] = "token-user"
    srv.tokens[FILE_TOKEN] = "file-user"
    srv.tokens[EXEC_TOKEN] = "exec-user"
    srv.exec_handler = lambda ns, pod, c, argv: ((DUMPS / "iptables-save.txt").read_text(), "", 0) \
        if argv == ["iptables-save"] else ("", "", 0)
    return srv


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])
@pytest.mark.parametrize("auth", ["bearer token", "tokenFile", "client key data", "exec plugin"])
def test_no_secret_on_success(auth: str, verbosity: str, cluster: FakeAPIServer, run_cli: RunCli,
                              tmp_path: Path) -> None:
    kc = cluster.write_kubeconfig(tmp_path / "kc", user=users(cluster, tmp_path)[auth])
    secrets = secrets_of(cluster)
    for argv in commands(str(kc), tmp_path):
        code, out, err = run_cli([*argv, verbosity])
        assert code in (0, 1), (auth, argv, code, err[-1500:])
        assert "debug" in err.lower() or verbosity == "-v", err[:500]
        assert_clean(out + err, secrets, f"{auth} {argv[0]} {verbosity}")
    assert cluster.requests and {r.user for r in cluster.requests} <= {"token-user", "file-user", "exec-user",
                                                                       cluster.pki.client_user}


@pytest.mark.parametrize("fault", ["401", "unreachable", "tls", "timeout", "plugin fails", "403 exec"])
@pytest.mark.parametrize("verbosity", ["", "-v", "-vv"])
def test_no_secret_on_errors(fault: str, verbosity: str, cluster: FakeAPIServer, run_cli: RunCli,
                             tmp_path: Path) -> None:
    u = users(cluster, tmp_path)
    secrets = secrets_of(cluster)
    kw: dict[str, Any] = {}
    user = u["exec plugin"] if fault != "plugin fails" else u["exec plugin failing"]
    if fault == "401":
        del cluster.tokens[EXEC_TOKEN]  # the plugin's token is now rejected
    elif fault == "unreachable":
        kw["server"] = f"https://127.0.0.1:{closed_port()}"
    elif fault == "tls":
        other, _ = make_ca(tmp_path / "other", name="other-ca")
        kw["ca"] = "file"
    elif fault == "timeout":
        cluster.set_fault(None, status=None, delay=3)
    elif fault == "403 exec":
        cluster.rbac_from_yaml(ROOT / "deploy" / "rbac.yaml", {"ClusterRole/svcctl-reader": None})
    kc = cluster.write_kubeconfig(tmp_path / "kc", user=user, **kw)
    if fault == "tls":
        kc.write_text(kc.read_text().replace(str(cluster.pki.ca_cert), str(other)))
    for argv in commands(str(kc), tmp_path):
        argv = [a if a != "2" else "0.5" for a in argv]
        code, out, err = run_cli([*argv, *([verbosity] if verbosity else [])])
        # 403 on exec only: commands that do not need node rules still answer (0/1)
        assert code in ((0, 1, 2, 3) if fault == "403 exec" else (1, 2, 3)), (fault, argv, code, err[-1500:])
        assert_clean(out + err, secrets, f"{fault} {argv[0]} {verbosity}")
        if verbosity == "":
            assert "Traceback" not in err
        if fault == "plugin fails":
            assert "please log in first" in err  # the plugin's own advice (stderr) is passed on, its stdout is not


def test_basic_auth_and_auth_provider_values_never_printed(cluster: FakeAPIServer, run_cli: RunCli,
                                                           tmp_path: Path) -> None:
    """Fields svcctl does not use for auth still must not be echoed (e.g. in a `describe` of the config)."""
    user = {"token": TOKEN, "username": "admin", "password": "pw-LEAKCHECK-basic-1",
            "auth-provider": {"name": "oidc", "config": {"id-token": "idtok-LEAKCHECK-2", "refresh-token": "r-3"}}}
    kc = cluster.write_kubeconfig(tmp_path / "kc", user=user)
    code, out, err = run_cli(["endpoints", "hostnames", "-vv", "--kubeconfig", str(kc)])
    assert_clean(out + err, ["pw-LEAKCHECK-basic-1", "idtok-LEAKCHECK-2", TOKEN], "basic/auth-provider -vv")


# --------------------------------------------------------------------------- bundles


def _extracted(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers() if m.isfile()]  # type: ignore[union-attr]


def test_bundles_hold_no_token_and_no_pod_env_values(cluster: FakeAPIServer, run_cli: RunCli,
                                                     tmp_path: Path) -> None:
    kc = cluster.write_kubeconfig(tmp_path / "kc", user={"token": TOKEN})
    secrets = secrets_of(cluster)
    for i, extra in enumerate([["hostnames"], ["-A"], ["hostnames", "--node-rules"], ["-n", "default"]]):
        out = tmp_path / f"b{i}.tar.gz"
        code, _, err = run_cli(["collect", "-vv", "--kubeconfig", str(kc), "-o", str(out), *extra])
        assert code == 0, err
        raw = out.read_bytes()
        assert_clean(raw.decode("latin-1"), secrets, f"compressed bundle {extra}")
        unpacked = gzip.decompress(raw).decode("latin-1")
        assert_clean(unpacked, secrets, f"bundle {extra}")
        for name, data in _extracted(out):
            text = data.decode("utf-8", errors="replace")
            assert_clean(text, secrets, f"{name} in bundle {extra}")
            if name.endswith((".json", ".yaml")):
                assert "last-applied-configuration" not in text
                assert '"kind": "Secret"' not in text and "kind: Secret" not in text
                assert "ConfigMap" not in text
        names = [n for n, _ in _extracted(out)]
        assert not any("secret" in n.lower() or "configmap" in n.lower() for n in names), names
    # the env var names stay (useful), their values do not
    pods = [json.loads(d) for n, d in _extracted(tmp_path / "b0.tar.gz") if n.endswith(".json") and b"Pod" in d]
    text = json.dumps(pods)
    assert "DB_PASSWORD" in text or not pods
    assert not {r.resource for r in cluster.requests} & {"secrets", "configmaps"}


def test_snapshot_read_back_prints_no_env_values(cluster: FakeAPIServer, run_cli: RunCli, tmp_path: Path) -> None:
    """Even a hand-made snapshot with env values: svcctl's own output never shows them."""
    snap = tmp_path / "planted.json"
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": planted_cluster()}))
    for argv in (["endpoints", "hostnames", "--why-not", "-o", "json"], ["trace", "hostnames", "-o", "yaml"],
                 ["check", "-A", "-o", "json"], ["endpoints", "-A", "-o", "wide"]):
        code, out, err = run_cli([*argv, "--snapshot", str(snap), "-vv"])
        assert code in (0, 1), (argv, err)
        assert_clean(out + err, [PLANTED], f"{argv} on a planted snapshot")


def test_demo_objects_unchanged() -> None:
    """The planted cluster really carries the secrets this file looks for (else the checks prove nothing)."""
    text = json.dumps(planted_cluster())
    assert PLANTED in text and "DB_PASSWORD" in text
    assert _objects_of(str(DEMO))

"""kubeconfig resolution, each way of authenticating proven against the HTTPS test API server."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from apiserver import PKI, FakeAPIServer
from conftest import KubeEnv

from svcctl.errors import ClusterError, InputError
from svcctl.sources.kubeconfig import ResolvedConfig, build_api_client, resolve
from svcctl.sources.live import LiveSource

Factory = Callable[..., FakeAPIServer]


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def who(srv: FakeAPIServer, cfg: ResolvedConfig) -> str | None:
    """Make one real request with `cfg`; the user the server authenticated it as."""
    LiveSource(cfg).get_service("default", "hostnames")
    return srv.requests[-1].user


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_token(apiserver: Factory) -> None:
    srv = apiserver()
    cfg = resolve(str(srv.kubeconfig))
    assert (cfg.server, cfg.context, cfg.namespace, cfg.auth_kind) == (srv.url, "test", "default", "token")
    assert who(srv, cfg) == "system:serviceaccount:default:svcctl"
    assert srv.token not in repr(cfg) and srv.token not in cfg.describe()


def test_wrong_token_is_rejected(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    kc = srv.write_kubeconfig(tmp_path / "kc", user={"token": "not-the-token"})
    with pytest.raises(ClusterError, match="credentials rejected") as exc:
        LiveSource(resolve(str(kc))).get_service("default", "hostnames")
    assert "not-the-token" not in str(exc.value.message) + str(exc.value.hint)


def test_token_file_relative_to_kubeconfig(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "token").write_text(srv.token + "\n")
    kc = srv.write_kubeconfig(tmp_path / "kc", user={"tokenFile": "creds/token"})
    cfg = resolve(str(kc))
    assert cfg.auth_kind == "token-file" and cfg.token_file == str(tmp_path / "creds" / "token")
    assert who(srv, cfg) == "system:serviceaccount:default:svcctl"


def test_client_certificate_files(apiserver: Factory, pki: PKI, tmp_path: Path) -> None:
    srv = apiserver(require_client_cert=True)
    kc = srv.write_kubeconfig(tmp_path / "kc", ca="file",
                              user={"client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)})
    cfg = resolve(str(kc))
    assert cfg.auth_kind == "client-cert" and cfg.ca_file == str(pki.ca_cert)
    assert who(srv, cfg) == pki.client_user


def test_client_certificate_inline_data(apiserver: Factory, pki: PKI, tmp_path: Path) -> None:
    srv = apiserver(require_client_cert=True)
    kc = srv.write_kubeconfig(tmp_path / "kc", user={"client-certificate-data": b64(pki.client_cert.read_bytes()),
                                                     "client-key-data": b64(pki.client_key.read_bytes())})
    cfg = resolve(str(kc))
    assert cfg.cert_data and cfg.key_data
    assert "PRIVATE KEY" not in repr(cfg)
    assert who(srv, cfg) == pki.client_user
    api = build_api_client(cfg)
    key_file = api.configuration.key_file
    assert os.stat(key_file).st_mode & 0o077 == 0  # the key written for the TLS stack is private


def test_without_client_certificate_the_server_refuses_tls(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver(require_client_cert=True)
    with pytest.raises(ClusterError):
        LiveSource(resolve(str(srv.kubeconfig))).get_service("default", "hostnames")


def test_insecure_skip_tls_verify(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    cfg = resolve(str(srv.write_kubeconfig(tmp_path / "kc", ca="insecure")))
    assert cfg.insecure and "TLS verification off" in cfg.describe()
    assert who(srv, cfg) is not None


EXEC_PLUGIN = """\
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False, info
if os.environ.get("PLUGIN_MODE") == "fail":
    print("SECRET-ON-STDOUT")
    print("please log in first", file=sys.stderr)
    sys.exit(3)
status = {"token": sys.argv[1]} if sys.argv[1] != "cert" else {
    "clientCertificateData": open(os.environ["CERT"]).read(), "clientKeyData": open(os.environ["KEY"]).read()}
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}))
"""


def exec_user(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    script = tmp_path / "plugin.py"
    script.write_text(EXEC_PLUGIN)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(script), *args], "interactiveMode": "Never",
                     "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}}


def test_exec_plugin_token(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    srv.tokens["exec-issued-token-123"] = "exec-user"
    cfg = resolve(str(srv.write_kubeconfig(tmp_path / "kc", user=exec_user(tmp_path, ["exec-issued-token-123"]))))
    assert cfg.auth_kind == "exec"
    assert who(srv, cfg) == "exec-user"


def test_exec_plugin_client_certificate(apiserver: Factory, pki: PKI, tmp_path: Path) -> None:
    srv = apiserver(require_client_cert=True)
    user = exec_user(tmp_path, ["cert"], {"CERT": str(pki.client_cert), "KEY": str(pki.client_key)})
    cfg = resolve(str(srv.write_kubeconfig(tmp_path / "kc", user=user)))
    assert who(srv, cfg) == pki.client_user


def test_exec_plugin_failure_does_not_show_its_output(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    user = exec_user(tmp_path, ["x"], {"PLUGIN_MODE": "fail"})
    cfg = resolve(str(srv.write_kubeconfig(tmp_path / "kc", user=user)))
    with pytest.raises(ClusterError, match="failed with exit code 3: please log in first") as exc:
        LiveSource(cfg).get_service("default", "hostnames")
    assert "SECRET-ON-STDOUT" not in exc.value.message
    assert srv.requests == []


def test_exec_plugin_missing(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "no-such-plugin-xyz",
                     "installHint": "install no-such-plugin-xyz from your cloud"}}
    cfg = resolve(str(srv.write_kubeconfig(tmp_path / "kc", user=user)))
    with pytest.raises(ClusterError, match="not found") as exc:
        LiveSource(cfg).get_service("default", "hostnames")
    assert exc.value.hint == "install no-such-plugin-xyz from your cloud"


def two_context_config(srv: FakeAPIServer) -> dict[str, Any]:
    a = srv.kubeconfig_dict(context="alpha", namespace="alpha-ns", user={"token": "wrong-token"})
    b = srv.kubeconfig_dict(context="beta", namespace="kube-system")
    a["clusters"] += b["clusters"]
    a["users"] += b["users"]
    a["contexts"] += b["contexts"]
    return a


def test_two_contexts_and_context_flag(apiserver: Factory, tmp_path: Path) -> None:
    srv = apiserver()
    kc = write(tmp_path / "kc", two_context_config(srv))
    current = resolve(str(kc))
    assert (current.context, current.namespace, current.user) == ("alpha", "alpha-ns", "alpha-user")
    with pytest.raises(ClusterError, match="credentials rejected"):
        LiveSource(current).get_service("default", "hostnames")
    chosen = resolve(str(kc), context="beta")
    assert (chosen.context, chosen.namespace) == ("beta", "kube-system")
    src = LiveSource(chosen)
    assert [s.meta.name for s in src.list_services(src.default_namespace())] == ["kube-dns"]
    with pytest.raises(InputError, match="context 'gamma' not found") as exc:
        resolve(str(kc), context="gamma")
    assert exc.value.hint == "contexts: alpha, beta"


def test_kubeconfig_list_merges_first_wins(apiserver: Factory, pki: PKI, kube_env: KubeEnv,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = apiserver()
    good = srv.kubeconfig_dict(context="first", namespace="kube-system")
    first = write(tmp_path / "first", good)
    # the second file redefines the same cluster name with a dead server and sets another current-context
    second_doc = srv.kubeconfig_dict(context="second", server="https://127.0.0.1:1")
    second_doc["clusters"].append({"name": "first-cluster", "cluster": {"server": "https://127.0.0.1:1"}})
    second = write(tmp_path / "second", second_doc)
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{tmp_path / 'missing'}{os.pathsep}{second}")
    cfg = resolve()
    assert (cfg.context, cfg.server, cfg.namespace) == ("first", srv.url, "kube-system")
    assert cfg.origin == f"{first}:{second}"
    assert who(srv, cfg) is not None
    other = resolve(context="second")
    assert other.server == "https://127.0.0.1:1"
    # the second file's current-context is only used when the first sets none
    del good["current-context"]
    write(first, good)
    assert resolve().context == "second"


def test_home_kube_config(apiserver: Factory, kube_env: KubeEnv) -> None:
    srv = apiserver()
    (kube_env.home / ".kube").mkdir()
    srv.write_kubeconfig(kube_env.home / ".kube" / "config", namespace=None)
    cfg = resolve()
    assert cfg.origin == str(kube_env.home / ".kube" / "config")
    assert cfg.namespace == "default"
    assert who(srv, cfg) is not None


def test_in_cluster(apiserver: Factory, pki: PKI, kube_env: KubeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = apiserver()
    sa = kube_env.sa_dir
    sa.mkdir()
    (sa / "token").write_text(srv.token)
    (sa / "ca.crt").write_bytes(pki.ca_pem)
    (sa / "namespace").write_text("kube-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(srv.port))
    cfg = resolve()
    assert (cfg.context, cfg.server, cfg.namespace) == ("in-cluster", srv.url, "kube-system")
    assert who(srv, cfg) == "system:serviceaccount:default:svcctl"
    (sa / "namespace").unlink()
    monkeypatch.setenv("POD_NAMESPACE", "from-downward-api")
    assert resolve().namespace == "from-downward-api"
    monkeypatch.delenv("POD_NAMESPACE")
    assert resolve().namespace == "default"


def test_context_namespace_falls_back_to_pod_namespace(apiserver: Factory, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    srv = apiserver()
    kc = srv.write_kubeconfig(tmp_path / "kc", namespace=None)
    monkeypatch.setenv("POD_NAMESPACE", "pod-ns")
    assert resolve(str(kc)).namespace == "pod-ns"
    kc = srv.write_kubeconfig(tmp_path / "kc2", namespace="ctx-ns")
    assert resolve(str(kc)).namespace == "ctx-ns"


def test_nothing_configured() -> None:
    with pytest.raises(ClusterError, match="no cluster configured") as exc:
        resolve()
    assert "--snapshot" in str(exc.value.hint)


def test_malformed_and_missing_kubeconfig(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\nclusters:\n  - name: x\n   cluster: {\n")
    with pytest.raises(InputError, match=r"bad:\d+: malformed kubeconfig"):
        resolve(str(bad))
    with pytest.raises(InputError, match="kubeconfig file not found"):
        resolve(str(tmp_path / "absent"))
    nocur = write(tmp_path / "nocur", {"apiVersion": "v1", "kind": "Config", "contexts": []})
    with pytest.raises(InputError, match="no current-context"):
        resolve(str(nocur))


def test_kubernetes_globals_untouched(apiserver: Factory) -> None:
    from kubernetes import client

    before = client.Configuration.get_default_copy()
    srv = apiserver()
    LiveSource(resolve(str(srv.kubeconfig))).get_service("default", "hostnames")
    after = client.Configuration.get_default_copy()
    assert after.host == before.host and after.api_key == before.api_key


def test_token_never_printed_with_verbose(apiserver: Factory, run_cli: Callable[..., tuple[int, str, str]],
                                          tmp_path: Path) -> None:
    srv = apiserver()
    srv.tokens["tok-SENSITIVE-value-42"] = "someone"
    srv.token = "tok-SENSITIVE-value-42"
    kc = srv.write_kubeconfig(tmp_path / "kc")
    code, out, err = run_cli(["collect", "-vv", "--kubeconfig", str(kc), "-o", str(tmp_path / "b.tar.gz"),
                              "hostnames"])
    assert code == 0, err
    assert "debug:" in err and "auth token" in err
    assert "tok-SENSITIVE-value-42" not in out + err
    assert "tok-SENSITIVE-value-42" not in (tmp_path / "b.tar.gz").read_bytes().decode("latin-1")
    # and on the error path: the server rejects the token
    del srv.tokens["tok-SENSITIVE-value-42"]
    code, out, err = run_cli(["collect", "-vv", "--kubeconfig", str(kc), "-o", str(tmp_path / "c.tar.gz"),
                              "hostnames"])
    assert code == 3 and "credentials rejected" in err
    assert "tok-SENSITIVE-value-42" not in out + err


def test_exec_output_never_printed_with_verbose(apiserver: Factory, run_cli: Callable[..., tuple[int, str, str]],
                                                tmp_path: Path) -> None:
    srv = apiserver()
    srv.tokens["exec-SENSITIVE-99"] = "exec-user"
    kc = srv.write_kubeconfig(tmp_path / "kc", user=exec_user(tmp_path, ["exec-SENSITIVE-99"]))
    code, out, err = run_cli(["collect", "-vv", "--kubeconfig", str(kc), "-o", str(tmp_path / "b.tar.gz"),
                              "hostnames"])
    assert code == 0, err
    assert "auth exec" in err
    assert "exec-SENSITIVE-99" not in out + err
    assert json.dumps(srv.requests[0].query)  # the requests were made, authenticated as the plugin's user
    assert srv.requests[0].user == "exec-user"


def test_context_flag_and_kubeconfig_env_on_the_cli(apiserver: Factory, run_cli: Callable[..., tuple[int, str, str]],
                                                    tmp_path: Path) -> None:
    srv = apiserver()
    kc = write(tmp_path / "kc", two_context_config(srv))
    out = tmp_path / "b.tar.gz"
    code, _, err = run_cli(["collect", "-o", str(out), "hostnames"], env={"KUBECONFIG": str(kc)})
    assert code == 3 and "credentials rejected" in err and "'alpha'" in err  # current-context alpha: bad token
    code, _, err = run_cli(["collect", "--context", "beta", "-o", str(out), "kube-dns"], env={"KUBECONFIG": str(kc)})
    assert code == 0, err  # beta's namespace is kube-system
    from svcctl.sources.snapshot import SnapshotSource

    assert [s.meta.key for s in SnapshotSource(str(out)).services] == ["kube-system/kube-dns"]
    code, _, err = run_cli(["collect", "--context", "gamma", "-o", str(out), "x"], env={"KUBECONFIG": str(kc)})
    assert code == 2 and "context 'gamma' not found" in err and "alpha, beta" in err


"""The real kubectl (built by tests/lab/build.sh from the same Kubernetes release) as referee for the parts of
svcctl that promise to behave like it: which kubeconfig files, context, cluster, user and namespace a merged
KUBECONFIG resolves to (`kubectl config view --minify --raw --flatten`), and svcctl as a kubectl plugin
(`kubectl svcctl …`, and plugin completion through `kubectl_complete-svcctl`) against the real API server.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from svcctl.errors import SvcctlError
from svcctl.sources.kubeconfig import resolve

from .controlplane import ControlPlane, bin_dir
from .figures import FIGURES
from .states import probed_service

KUBECTL = bin_dir() / "kubectl"
ROOT = Path(__file__).resolve().parents[2]  # this checkout: the plugin runs its svcctl
NS = "kctl"


def _kubectl(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUBECTL), *args], capture_output=True, text=True, env=env, timeout=60, **kw)


def _file(d: Path, name: str, *, current: str | None, clusters: dict[str, str], users: dict[str, str],
          contexts: dict[str, tuple[str, str, str | None]], ca: str | None = None) -> None:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Config",
                           "clusters": [{"name": n, "cluster": {"server": s, **({"certificate-authority": ca}
                                                                                if ca else {})}}
                                        for n, s in clusters.items()],
                           "users": [{"name": n, "user": {"token": t}} for n, t in users.items()],
                           "contexts": [{"name": n, "context": {"cluster": c, "user": u,
                                                                **({"namespace": ns} if ns else {})}}
                                        for n, (c, u, ns) in contexts.items()]}
    if current is not None:
        doc["current-context"] = current
    (d / name).write_text(yaml.safe_dump(doc))


def _cases(d: Path) -> list[tuple[str, str, str | None]]:
    """(what, KUBECONFIG, --context) over files that disagree in every way merging can decide."""
    (d / "sub").mkdir()
    (d / "sub" / "ca.crt").write_text("CA of file a, relative to a's directory\n")
    _file(d / "sub", "a.yaml", current="ctx-a", clusters={"shared": "https://198.18.0.1:6443"},
          users={"ua": "token-a", "shared-user": "token-shared-a"},
          contexts={"ctx-a": ("shared", "ua", "team-a"), "both": ("shared", "shared-user", None)}, ca="ca.crt")
    _file(d, "b.yaml", current="ctx-b", clusters={"shared": "https://198.18.0.2:6443", "only-b": "https://198.18.0.3"},
          users={"ub": "token-b", "shared-user": "token-shared-b"},
          contexts={"ctx-b": ("only-b", "ub", "team-b"), "both": ("only-b", "ub", "team-b2"),
                    "mixed": ("shared", "shared-user", None)})
    _file(d, "nocurrent.yaml", current=None, clusters={"cn": "https://198.18.0.4"}, users={"un": "token-n"},
          contexts={"ctx-n": ("cn", "un", None)})
    _file(d, "dangling.yaml", current="ghost", clusters={}, users={}, contexts={})
    a, b, n, g = (str(d / "sub" / "a.yaml"), str(d / "b.yaml"), str(d / "nocurrent.yaml"), str(d / "dangling.yaml"))
    missing = str(d / "missing.yaml")
    return [
        ("first file's current-context wins", f"{a}:{b}", None),
        ("order reversed", f"{b}:{a}", None),
        ("a file without current-context lets the next one decide", f"{n}:{b}", None),
        ("--context from the second file", f"{a}:{b}", "ctx-b"),
        ("same context name: first file's definition", f"{b}:{a}", "both"),
        ("same context name, the other order", f"{a}:{b}", "both"),
        ("a context of b naming a cluster and a user both files define: first definitions win", f"{a}:{b}", "mixed"),
        ("missing and empty KUBECONFIG entries are skipped", f"{missing}::{a}", None),
        ("no namespace in the context: default", f"{n}", None),
        ("unknown --context", f"{a}:{b}", "nope"),
        ("current-context naming no context", f"{g}:{n}", None),
    ]


def _kubectl_view(kubeconfig: str, context: str | None) -> tuple[Any, ...] | str:
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "KUBECONFIG": kubeconfig}
    args = ["config", "view", "--minify", "--raw", "--flatten", "-o", "json"] + (
        ["--context", context] if context else [])
    r = _kubectl(args, env, cwd="/")
    if r.returncode != 0:
        return "error"
    doc = json.loads(r.stdout)
    ctx = doc["contexts"][0]
    cl, us = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    ca = base64.b64decode(cl["certificate-authority-data"]) if "certificate-authority-data" in cl else None
    return (ctx["name"], cl["server"], ctx["context"].get("namespace") or "default", ctx["context"]["user"],
            us.get("token"), ca)


def _svcctl_view(kubeconfig: str, context: str | None) -> tuple[Any, ...] | str:
    try:
        cfg = resolve(None, context, env={"KUBECONFIG": kubeconfig, "HOME": "/nonexistent"}, sa_dir="/nonexistent")
    except SvcctlError:
        return "error"
    ca = Path(cfg.ca_file).read_bytes() if cfg.ca_file else cfg.ca_data
    return (cfg.context, cfg.server, cfg.namespace, cfg.user, cfg.token, ca)


def test_kubeconfig_merging_is_kubectls(tmp_path: Path) -> None:
    """Every case: svcctl's context, server, namespace, user, token and CA (a relative path resolved against its
    own file's directory, read from a different working directory) are exactly kubectl's; where kubectl
    refuses, svcctl refuses too."""
    rows = []
    for what, kubeconfig, context in _cases(tmp_path):
        want, got = _kubectl_view(kubeconfig, context), _svcctl_view(kubeconfig, context)
        rows.append((what, want == got))
        assert got == want, (what, want, got)
    assert sum(1 for c in _cases_errors(rows)) == 2  # the two refusals were exercised, not skipped
    FIGURES.append(f"kubectl {KUBECTL.parent.parent.name}: kubeconfig resolution agrees in {len(rows)}/{len(rows)} "
                   "merged-KUBECONFIG cases (context, server, namespace, user, token, CA)")


def _cases_errors(rows: list[tuple[str, bool]]) -> list[str]:
    return [w for w, _ in rows if w in ("unknown --context", "current-context naming no context")]


# ------------------------------------------------------------------------------------------------ the plugin


@pytest.fixture(scope="module")
def plugin_env(k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PATH with `kubectl-svcctl` and `kubectl_complete-svcctl` (this checkout's entry points), KUBECONFIG for the
    lab's admin, and one Service with two ready Pods and one not ready."""
    d = tmp_path_factory.mktemp("plugin")
    for exe, fn in (("kubectl-svcctl", "kubectl_main"), ("kubectl_complete-svcctl", "kubectl_complete_main")):
        p = d / exe
        p.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -c "
                     f"'from svcctl.cli.main import {fn}; {fn}()' \"$@\"\n")
        p.chmod(0o755)
    kc = k8s.write_kubeconfig(d / "admin.kubeconfig")
    for obj in probed_service(NS, "web", 8080, "198.18.41"):
        k8s.apply(obj)
    env = {"PATH": f"{d}:{KUBECTL.parent}:{os.environ['PATH']}", "KUBECONFIG": str(kc), "HOME": str(d),
           "NO_COLOR": "1"}
    for _ in range(100):  # the controller publishes the slice
        r = _kubectl(["get", "endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=web", "-o", "json"], env)
        items = json.loads(r.stdout)["items"] if r.returncode == 0 else []
        if items and sum(len(s.get("endpoints") or []) for s in items) == 3:
            break
        import time

        time.sleep(0.1)
    return env


def test_kubectl_svcctl_is_svcctl(plugin_env: dict[str, str]) -> None:
    """`kubectl svcctl endpoints` runs the plugin; its endpoints are the controller's slice as kubectl reads it."""
    listed = _kubectl(["plugin", "list"], plugin_env)
    assert "kubectl-svcctl" in listed.stdout, listed.stderr
    r = _kubectl(["svcctl", "endpoints", "web", "-n", NS, "-o", "json"], plugin_env)
    assert r.returncode == 1 and r.stdout.startswith("{"), (r.returncode, r.stdout[:300], r.stderr)
    doc = json.loads(r.stdout)  # one selected Pod is not ready: exit 1 as documented
    mine = sorted((e["ip"], e["ready"]) for e in doc["endpoints"])
    slices = json.loads(_kubectl(["get", "endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=web",
                                  "-o", "json"], plugin_env).stdout)["items"]
    theirs = sorted((a, bool(ep["conditions"].get("ready"))) for s in slices for ep in s["endpoints"]
                    for a in ep["addresses"])
    assert mine == theirs and len(mine) == 3, (mine, theirs)
    usage = _kubectl(["svcctl", "--help"], plugin_env)
    assert usage.returncode == 0 and "Usage: kubectl svcctl" in usage.stdout, usage.stdout[:200]


def test_kubectl_completes_through_the_plugin(plugin_env: dict[str, str]) -> None:
    """kubectl's own completion asks `kubectl_complete-svcctl __complete …` and shows what it answers: the
    Services of the namespace, read from the real API server."""
    r = _kubectl(["__complete", "svcctl", "endpoints", "-n", NS, ""], plugin_env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines and lines[-1].startswith(":"), r.stdout  # cobra's directive line
    assert "web" in [ln.split("\t")[0] for ln in lines[:-1]], r.stdout

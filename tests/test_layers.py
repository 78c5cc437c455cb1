"""The pipeline's layers, enforced: cli → sources → dataplane/analysis → render, each importing only downwards.

Imports under `if TYPE_CHECKING:` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "svcctl"

# layer -> module prefixes it must never import at run time
FORBIDDEN = {
    "analysis": ("click", "rich", "kubernetes", "svcctl.cli", "svcctl.render", "svcctl.sources.live",
                 "svcctl.sources.kubeconfig", "svcctl.sources.snapshot", "svcctl.sources.node"),
    "dataplane": ("click", "rich", "kubernetes", "svcctl.cli", "svcctl.render", "svcctl.sources.live",
                  "svcctl.sources.kubeconfig", "svcctl.analysis"),
    "sources": ("click", "rich", "svcctl.cli", "svcctl.render"),
    "render": ("kubernetes", "svcctl.sources.live", "svcctl.sources.kubeconfig", "svcctl.cli"),
    "ops": ("click", "svcctl.cli"),
}
KUBERNETES_ALLOWED = {"sources/live.py", "sources/kubeconfig.py"}


def _runtime_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def _modules(layer: str) -> list[Path]:
    return sorted((PKG / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    bad = []
    for path in _modules(layer):
        for mod in _runtime_imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(PKG)} imports {mod}")
    assert bad == []


def test_only_the_live_source_imports_kubernetes() -> None:
    users = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                   if any(m == "kubernetes" or m.startswith("kubernetes.") for m in _runtime_imports(p)))
    assert set(users) <= KUBERNETES_ALLOWED and users, users


def test_import_linter_contracts_hold() -> None:
    """`lint-imports` (import-linter, configured in pyproject.toml): cli -> ops -> (sources | render) -> analysis
    -> dataplane -> model, TYPE_CHECKING imports included, and no import cycle between siblings anywhere."""
    import shutil
    import subprocess

    exe = shutil.which("lint-imports")
    assert exe is not None, "import-linter is a test dependency (pip install -e '.[test]')"
    import os

    env = {**os.environ, "PYTHONPATH": str(PKG.parent)}  # this checkout's svcctl, whatever is installed
    r = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=PKG.parent, env=env, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in r.stdout

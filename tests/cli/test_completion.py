"""Shell integration: the committed completion scripts, dynamic names through click's completion protocol for
bash, zsh and fish, the real bash script in a real bash, and kubectl's plugin completion (cobra protocol)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from svcctl.cli.complete import cobra_complete, complete_names
from svcctl.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPTS = {"bash": ROOT / "completions" / "svcctl.bash", "zsh": ROOT / "completions" / "_svcctl",
           "fish": ROOT / "completions" / "svcctl.fish"}
RunCli = Callable[..., tuple[int, str, str]]
DEMO = ["--snapshot", "demo"]


# ------------------------------------------------------------------------------------------------ scripts


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_committed_script_is_current(run_cli: RunCli, shell: str) -> None:
    """completions/ holds exactly what `svcctl completion SHELL` prints (regenerate: see README)."""
    code, out, _ = run_cli(["completion", shell])
    assert code == 0
    assert out == SCRIPTS[shell].read_text(), f"regenerate: svcctl completion {shell} > {SCRIPTS[shell]}"
    assert "_SVCCTL_COMPLETE" in out


def test_pyproject_installs_the_committed_scripts() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    files = data["tool"]["setuptools"]["data-files"]
    assert files == {"share/bash-completion/completions": ["completions/svcctl.bash"],
                     "share/zsh/site-functions": ["completions/_svcctl"],
                     "share/fish/vendor_completions.d": ["completions/svcctl.fish"]}
    for paths in files.values():
        for p in paths:
            assert (ROOT / p).is_file()


def test_unknown_shell_is_a_usage_error(run_cli: RunCli) -> None:
    assert run_cli(["completion", "tcsh"])[0] == 2


# ------------------------------------------------------------------------------------------------ click protocol


def complete(monkeypatch: pytest.MonkeyPatch, shell: str, line: str, env: dict[str, str] | None = None) -> str:
    """Run svcctl as the shell script would for `line` (the cursor at its end) and return what it prints."""
    from svcctl.cli.main import run

    words = line.split(" ")
    with monkeypatch.context() as m:
        m.setenv("_SVCCTL_COMPLETE", f"{shell}_complete")
        if shell == "fish":
            m.setenv("COMP_WORDS", line)
            m.setenv("COMP_CWORD", words[-1])
        else:
            m.setenv("COMP_WORDS", line)
            m.setenv("COMP_CWORD", str(len(words) - 1))
        for k, v in (env or {}).items():
            m.setenv(k, v)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ex:
            run("svcctl", [])
    assert ex.value.code == 0
    assert err.getvalue() == ""  # completion never talks on stderr
    return out.getvalue()


def bash_values(text: str) -> list[str]:
    return [line.split(",", 1)[1] for line in text.splitlines() if line.startswith("plain,")]


def test_bash_service_names_from_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo endpoints ")) == ["hostnames",
                                                                                               "kubernetes"]
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo endpoints h")) == ["hostnames"]


def test_bash_service_names_respect_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo -n kube-system endpoints ")) == [
        "kube-dns"]
    # flags after the subcommand count too
    assert bash_values(complete(monkeypatch, "bash", "svcctl trace --snapshot demo --namespace kube-system ")) == [
        "kube-dns"]
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo -n nowhere endpoints ")) == []


def test_bash_service_names_across_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo check -A ")) == [
        "default/hostnames", "default/kubernetes", "kube-system/kube-dns"]
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo check kube-system/")) == [
        "kube-system/kube-dns"]
    # check takes several Services: the second is completed too
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo check hostnames k")) == ["kubernetes"]


def test_bash_namespaces_and_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo -n ")) == ["default", "kube-system"]
    assert bash_values(complete(monkeypatch, "bash", "svcctl --snapshot demo rules --node ")) == ["kind-worker"]


def test_bash_commands_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bash_values(complete(monkeypatch, "bash", "svcctl ch")) == ["check"]
    assert bash_values(complete(monkeypatch, "bash", "svcctl check --fail-on ")) == ["error", "warning", "never"]
    assert "--collect-on-failure" in bash_values(complete(monkeypatch, "bash", "svcctl check --co"))
    assert complete(monkeypatch, "bash", "svcctl --snapshot ").splitlines() == ["file,"]


def test_zsh_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    out = complete(monkeypatch, "zsh", "svcctl --snapshot demo endpoints ")
    assert out.splitlines() == ["plain", "hostnames", "ClusterIP 10.0.1.175",
                                "plain", "kubernetes", "ClusterIP 10.0.0.1"]
    out = complete(monkeypatch, "zsh", "svcctl --snapshot demo -n kube-system trace ")
    assert out.splitlines() == ["plain", "kube-dns", "ClusterIP 10.0.0.10"]


def test_fish_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    out = complete(monkeypatch, "fish", "svcctl --snapshot demo endpoints ")
    # svcctl's own fish protocol (click 8.4.0's is broken: pallets/click#3502): `type,value<TAB>help`
    assert out.splitlines() == ["plain,hostnames\tClusterIP 10.0.1.175", "plain,kubernetes\tClusterIP 10.0.0.1"]
    out = complete(monkeypatch, "fish", "svcctl --snapshot demo -n kube-system endpoints kube")
    assert out.splitlines() == ["plain,kube-dns\tClusterIP 10.0.0.10"]
    assert complete(monkeypatch, "fish", "svcctl check --fail-on ").splitlines() == [
        "plain,error", "plain,warning", "plain,never"]


def _kubeconfig(path: Path, contexts: list[str]) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts],
        "current-context": contexts[0],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_contexts_from_the_kubeconfig_on_the_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", ["prod-eu", "prod-us", "staging"])
    assert bash_values(complete(monkeypatch, "bash", f"svcctl --kubeconfig {kc} --context ")) == [
        "prod-eu", "prod-us", "staging"]
    assert bash_values(complete(monkeypatch, "bash", f"svcctl endpoints --kubeconfig {kc} --context prod")) == [
        "prod-eu", "prod-us"]


def test_contexts_from_kubeconfig_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", ["one"])
    b = _kubeconfig(tmp_path / "b", ["two"])
    out = complete(monkeypatch, "bash", "svcctl --context ", env={"KUBECONFIG": f"{a}{os.pathsep}{b}"})
    assert bash_values(out) == ["one", "two"]


def test_service_names_from_a_live_api_server(monkeypatch: pytest.MonkeyPatch, apiserver: Any) -> None:
    srv = apiserver("demo")
    assert bash_values(complete(monkeypatch, "bash", f"svcctl --kubeconfig {srv.kubeconfig} endpoints ")) == [
        "hostnames", "kubernetes"]
    assert bash_values(complete(monkeypatch, "bash",
                                f"svcctl --kubeconfig {srv.kubeconfig} -n kube-system check ")) == ["kube-dns"]
    assert srv.writes == []


def test_failures_are_silent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a snapshot that does not exist, a malformed one, and a cluster nobody listens on: no candidates, no words
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    for line in ("svcctl --snapshot /nonexistent/x.yaml endpoints ", f"svcctl --snapshot {bad} endpoints ",
                 f"svcctl --kubeconfig {_kubeconfig(tmp_path / 'kc', ['dead'])} endpoints "):
        assert complete(monkeypatch, "bash", line).strip() == ""  # click ends even no answer with a newline


def test_slow_api_server_gives_up_quietly(monkeypatch: pytest.MonkeyPatch, apiserver: Any) -> None:
    srv = apiserver("demo")
    srv.set_fault("services", status=None, delay=30.0)
    assert complete(monkeypatch, "bash", f"svcctl --kubeconfig {srv.kubeconfig} endpoints ").strip() == ""


def test_complete_names_without_a_context_is_empty() -> None:
    assert complete_names("service", "") == []
    assert complete_names("no-such-kind", "") == []


def test_request_timeout_is_short_during_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    from svcctl.cli.app import App

    seen: list[float] = []

    @click.command()
    @click.argument("x", shell_complete=lambda ctx, p, inc: (seen.append(ctx.ensure_object(App).request_timeout),
                                                             complete_names("namespace", inc))[1])
    def c(x: str) -> None:  # pragma: no cover - only completed
        pass

    app = App(snapshot="demo")
    with click.Context(c, obj=app) as ctx:
        items = c.params[0].shell_complete(ctx, "")
    assert [i.value for i in items] == ["default", "kube-system"]
    assert app.request_timeout == 2.0


# ------------------------------------------------------------------------------------------------ real shells


def _shell(name: str) -> str:
    """The shell binary, with the installed `svcctl` entry point the scripts call; skip (fail on CI) without."""
    path = shutil.which(name)
    if path is None or shutil.which("svcctl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} and an installed svcctl are needed (apt-get install {name})")
        pytest.skip(f"{name} or the svcctl entry point is not installed")
    return path


def _run_shell(argv: list[str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_SVCCTL")}
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout.splitlines()


def test_the_bash_script_in_bash() -> None:
    """Source completions/svcctl.bash in a real bash and press <TAB> through its function."""
    script = (f"source {SCRIPTS['bash']}\n"
              "COMP_WORDS=(svcctl --snapshot demo -n kube-system endpoints k)\n"
              "COMP_CWORD=6\n"
              "_svcctl_completion svcctl\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
              "complete -p svcctl\n")
    assert _run_shell([_shell("bash"), "--norc", "-c", script]) == [
        "kube-dns", "complete -o nosort -F _svcctl_completion svcctl"]


def test_the_zsh_script_in_zsh() -> None:
    """Source completions/_svcctl in a real zsh; compsys' _describe/compadd are stubbed to print what they get."""
    script = ("compdef() { print -r -- \"compdef $*\" }\n"
              "_describe() { print -rl -- \"${(@P)3}\" }\n"
              "compadd() { print -rl -- \"${(@P)${@[-1]}}\" }\n"
              f"source {SCRIPTS['zsh']}\n"
              "words=(svcctl --snapshot demo endpoints '')\n"
              "CURRENT=5\n"
              "_svcctl_completion\n"
              "words=(svcctl --snapshot demo check --fail-on '')\n"
              "CURRENT=6\n"
              "_svcctl_completion\n")
    assert _run_shell([_shell("zsh"), "-f", "-c", script]) == [
        "compdef _svcctl_completion svcctl",
        "hostnames:ClusterIP 10.0.1.175", "kubernetes:ClusterIP 10.0.0.1",
        "error", "warning", "never"]


def test_the_fish_script_in_fish() -> None:
    """Source completions/svcctl.fish in a real fish and ask it with `complete -C`."""
    script = (f"source {SCRIPTS['fish']}; "
              "complete -C 'svcctl --snapshot demo -n kube-system endpoints '; echo sep; "
              "complete -C 'svcctl --snapshot demo check -A default/h'; echo sep; "
              "complete -C 'svcctl check --fail-on w'")
    assert _run_shell([_shell("fish"), "-N", "-c", script]) == [
        "kube-dns\tClusterIP 10.0.0.10", "sep", "default/hostnames\tClusterIP 10.0.1.175", "sep", "warning"]


# ------------------------------------------------------------------------------------------------ kubectl plugin


def cobra(argv: list[str], command: click.Command = cli) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cobra_complete(command, argv) == 0
    return out.getvalue().splitlines()


def test_cobra_service_names() -> None:
    # kubectl runs `kubectl_complete-svcctl ARGS… TOCOMPLETE`
    assert cobra(["--snapshot", "demo", "-n", "kube-system", "endpoints", ""]) == [
        "kube-dns\tClusterIP 10.0.0.10", ":4"]
    assert cobra(["endpoints", "--snapshot", "demo", "h"]) == ["hostnames\tClusterIP 10.0.1.175", ":4"]


def test_cobra_with_complete_prefix_and_no_descriptions() -> None:
    assert cobra(["__complete", "--snapshot", "demo", "endpoints", ""]) == [
        "hostnames\tClusterIP 10.0.1.175", "kubernetes\tClusterIP 10.0.0.1", ":4"]
    assert cobra(["__completeNoDesc", "--snapshot", "demo", "endpoints", ""]) == ["hostnames", "kubernetes", ":4"]


def test_cobra_commands_flags_and_files() -> None:
    lines = cobra(["__completeNoDesc", ""])
    assert lines[-1] == ":4" and {"trace", "endpoints", "rules", "dns", "check", "collect", "completion"} <= set(lines)
    assert cobra(["check", "--fail-on", ""]) == ["error", "warning", "never", ":4"]
    assert cobra(["--snapshot", ""]) == [":0"]  # a file: let the shell complete paths


def test_cobra_errors_print_only_the_error_directive() -> None:
    def boom(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        raise RuntimeError("boom")

    @click.command()
    @click.argument("x", shell_complete=boom)
    def broken(x: str) -> None:  # pragma: no cover - only completed
        pass

    assert cobra([""], broken) == [":1"]


def test_kubectl_complete_entry_point_in_a_subprocess() -> None:
    code = "from svcctl.cli.main import kubectl_complete_main; kubectl_complete_main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("_SVCCTL")}
    r = subprocess.run([sys.executable, "-c", code, "--snapshot", "demo", "check", "-A", "kube"],
                       capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == "kube-system/kube-dns\tClusterIP 10.0.0.10\n:4\n"


def test_context_given_earlier_picks_the_cluster(monkeypatch: pytest.MonkeyPatch, apiserver: Any,
                                                 tmp_path: Path) -> None:
    """--context on the line selects which cluster the names come from (the current context is dead)."""
    srv = apiserver("demo")
    doc = srv.kubeconfig_dict(context="live")
    dead = {"name": "dead", "context": {"cluster": "dead-cluster", "user": "live-user"}}
    doc["clusters"].append({"name": "dead-cluster", "cluster": {"server": "https://127.0.0.1:1"}})
    doc["contexts"].insert(0, dead)
    doc["current-context"] = "dead"
    kc = tmp_path / "two-contexts"
    kc.write_text(yaml.safe_dump(doc))
    assert complete(monkeypatch, "bash", f"svcctl --kubeconfig {kc} endpoints ").strip() == ""
    assert bash_values(complete(monkeypatch, "bash", f"svcctl --kubeconfig {kc} --context live endpoints ")) == [
        "hostnames", "kubernetes"]
    assert bash_values(complete(monkeypatch, "bash", f"svcctl --kubeconfig {kc} --context ")) == ["dead", "live"]

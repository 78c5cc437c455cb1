"""svcctl.sources.kubeyaml.load_simple: what it reads is what `yaml.safe_load` reads, and anything it is unsure
of (or PyYAML rejects) is left to PyYAML (None). Checked on kubeconfigs as kubectl, client-go, PyYAML and cloud
CLIs write them, on generated documents in several dump styles, and on those documents mutated line by line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svcctl.sources.kubeyaml import load_simple

ROOT = Path(__file__).resolve().parent.parent.parent

KIND = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    server: https://127.0.0.1:40919
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
    namespace: default
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: LS0tLS1CRUdJTi==
    client-key-data: LS0tLS1CRUdJTiBSU0E=
"""

EKS = """\
# written by aws eks update-kubeconfig
apiVersion: v1
clusters:
  - cluster:
      certificate-authority-data: LS0t
      server: https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com
    name: arn:aws:eks:eu-west-1:123456789012:cluster/prod
contexts:
  - context:
      cluster: arn:aws:eks:eu-west-1:123456789012:cluster/prod   # the ARN
      user: arn:aws:eks:eu-west-1:123456789012:cluster/prod
    name: prod
current-context: prod
kind: Config
preferences: {}
users:
  - name: arn:aws:eks:eu-west-1:123456789012:cluster/prod
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1beta1
        args:
          - --region
          - eu-west-1
          - eks
          - get-token
          - --cluster-name
          - prod
        command: aws
        env:
          - name: AWS_PROFILE
            value: "prod"
          - name: DEBUG
            value: 'it''s on'
          - name: EMPTY
            value: ""
        interactiveMode: IfAvailable
        provideClusterInfo: false
"""

ODD = """\
apiVersion: v1
kind: Config
current-context: ""
clusters:
- name: a
  cluster:
    server: http://localhost:8080
    insecure-skip-tls-verify: true
    proxy-url: socks5://proxy:1080
    extensions: []
- name: b
  cluster: {}
contexts: []
users:
- name: tok
  user:
    token: abc.def-ghi_JKL/mn+op==
    username: admin@example
    as-groups:
    -
    - system:masters
  extra: ~
preferences:
  colors: yes
"""

DOCS = [KIND, EKS, ODD, "", "# only a comment\n", "a: 1\nb: 0\nc: -x\nd: --y\n", "a:\n  - - x\n    - y\n  -\n"]

# outside the subset, valid YAML: PyYAML must read these (load_simple gives None)
OUTSIDE = [
    "a: 1.5\n", "a: 012\n", "a: 2024-01-01\n", "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  text\n",
    "a: >-\n  text\n", "a: [1, 2]\n", "a: {b: 1}\n", '"a": 1\n', "a: \"x\\ny\"\n", "a: b\n  c\n", "? a\n: b\n",
    "a: 1_000\n", "---\na: 1\n", "a: b\r\n", "a: é\n", "- a\n", "a: .inf\n", "yes: 1\n", "a: +1\n",
    "a:\n  b\n", "a: -1\n", "%YAML 1.1\n---\na: 1\n", "a: 0x1f\n",
]

# malformed: PyYAML raises, and load_simple must not answer
MALFORMED = ["a: b: c\n", "a:\n    b: 1\n  c: 2\n", "- a\nb: 1\n", "a: 'x\n", 'a: "x\n', "a: 'x'y\n",
             "a: 1\n  b: 2\n", "- a: 1\n   b: 2\n", "a: \"x\"y\n", "a:\n- b\n c: 1\n", "a:\tb\n", "a: @x\n"]


@pytest.mark.parametrize("doc", DOCS)
def test_the_subset_reads_as_pyyaml_does(doc: str) -> None:
    got = load_simple(doc)
    want = yaml.safe_load(doc)
    if not doc.strip() or doc.strip().startswith("#") and "\n" not in doc.strip():
        assert got is None and want is None  # an empty document: the caller's {} either way
        return
    assert got is not None
    assert got == want and json.dumps(got) == json.dumps(want)


@pytest.mark.parametrize("doc", OUTSIDE)
def test_what_is_outside_the_subset_is_left_to_pyyaml(doc: str) -> None:
    assert load_simple(doc) is None
    yaml.safe_load(doc)  # valid YAML all the same


@pytest.mark.parametrize("doc", MALFORMED)
def test_malformed_yaml_is_left_to_pyyaml_which_reports_it(doc: str) -> None:
    assert load_simple(doc) is None
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(doc)


_scalars = st.one_of(
    st.booleans(), st.none(), st.integers(min_value=-10, max_value=10**6),
    st.text(alphabet=st.sampled_from(list("abcXYZ019-_./:@ #'\"=+~,[]{}!&*%?|>")), max_size=12),
    st.sampled_from(["yes", "No", "on", "OFF", "null", "~", "", "0", "012", "1.5", "2024-01-01", "--x", "-x",
                     "https://h:1/p", "a: b", "a #b", "a#b", "x:", "'", "''", '"']),
)
_keys = st.one_of(st.sampled_from(["name", "cluster", "user", "server", "yes", "on", "a-b", "a.b", "x/y", "1"]),
                  st.text(alphabet=st.sampled_from(list("abZ0_-.:/ ")), min_size=1, max_size=6))
_docs = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(_keys, inner, max_size=4)), max_leaves=20)


def _dumps(doc: Any) -> list[str]:
    out = [yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)]
    out.append(yaml.safe_dump(doc, default_flow_style=False, sort_keys=False, indent=4))

    class Indented(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
            return super().increase_indent(flow, False)

    out.append(yaml.dump(doc, Dumper=Indented, default_flow_style=False, sort_keys=False))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _docs, min_size=1, max_size=5))
def test_generated_documents_in_three_dump_styles(doc: dict[str, Any]) -> None:
    for text in _dumps(doc):
        got = load_simple(text)
        if got is not None:
            assert got == yaml.safe_load(text), text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([KIND, EKS, ODD]), st.data())
def test_mutated_kubeconfigs_never_answer_other_than_pyyaml(base: str, data: st.DataObject) -> None:
    """Lines dropped, duplicated, re-indented or cut: whatever load_simple accepts PyYAML reads the same, and
    nothing PyYAML rejects is accepted."""
    lines = base.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "indent", "dedent", "cut", "colon", "dash"]))
        ln = lines[i]
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, ln)
        elif op == "indent":
            lines[i] = " " * data.draw(st.integers(1, 3)) + ln
        elif op == "dedent":
            lines[i] = ln[data.draw(st.integers(1, 3)):] if ln.startswith(" ") else ln
        elif op == "cut" and ln:
            lines[i] = ln[:data.draw(st.integers(0, len(ln) - 1))]
        elif op == "colon":
            lines[i] = ln + ": x"
        else:
            lines[i] = "- " + ln
        if not lines:
            return
    text = "\n".join(lines) + "\n"
    got = load_simple(text)
    if got is None:
        return
    try:
        want = yaml.safe_load(text)
    except yaml.YAMLError:
        raise AssertionError(f"accepted what PyYAML rejects:\n{text}") from None
    assert got == want, text


def test_the_kubeconfig_reader_uses_it_and_falls_back(tmp_path: Path) -> None:
    """A kubectl-shaped kubeconfig is read without importing PyYAML; one outside the subset through PyYAML,
    with the same result; a malformed one still gets PyYAML's error with its line."""
    probe = ("import json, sys; from pathlib import Path; from svcctl.sources.kubeconfig import _load_yaml\n"
             "doc = _load_yaml(Path(sys.argv[1]))\n"
             "print(json.dumps({'doc': doc, 'yaml': 'yaml' in sys.modules}))")
    simple = tmp_path / "simple"
    simple.write_text(EKS)
    anchored = tmp_path / "anchored"
    anchored.write_text(EKS.replace("command: aws", "command: &c aws").replace("prod\n    user:", "prod\n    user:"))
    for path, uses_yaml in ((simple, False), (anchored, True)):
        proc = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, cwd=ROOT,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        res = json.loads(proc.stdout)
        assert res["yaml"] is uses_yaml
        assert res["doc"] == yaml.safe_load(path.read_text())
    from svcctl.errors import InputError
    from svcctl.sources.kubeconfig import _load_yaml

    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\nclusters: a: b\n")
    with pytest.raises(InputError) as e:
        _load_yaml(bad)
    assert "malformed kubeconfig" in e.value.message


@pytest.mark.parametrize("base", [KIND, EKS, ODD])
@pytest.mark.parametrize("style", [{}, {"indent": 2}, {"separators": (",", ":")}])
def test_a_json_kubeconfig_reads_as_pyyaml_does(base: str, style: dict[str, Any]) -> None:
    text = json.dumps(yaml.safe_load(base), **style)
    got = load_simple(text)
    assert got is not None and got == yaml.safe_load(text)


@pytest.mark.parametrize("text", ['{"a": 1e5}', '{"a": 1.5}', '{"a": NaN}', '{"a": "\\u00e9"}', '[{"a": 1}]',
                                  '{"a": 1} x', '{\t"a": 1}'])
def test_json_pyyaml_reads_otherwise_is_left_to_it(text: str) -> None:
    assert load_simple(text) is None

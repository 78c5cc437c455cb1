"""Batched targeted reads (svcctl/sources/batch.py) run by the real sh against the real iptables of a namespace.

The script svcctl composes is run exactly as a kube-proxy container would run it (`ip netns exec NS sh -c
SCRIPT`, dash as in kube-proxy's distroless-iptables image) against rules loaded with iptables-restore; each
command's answer is compared with the same command run on its own: stdout, stderr and exit status, including a
`-C` of a rule that is not there (exit 1), a chain that does not exist, and a rule whose comment carries
frame-like text. Then a whole trace through the test API server with the real sh against the unbatched trace,
and a container without sh (the fallback: one exec per command, the same answer).
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiserver import FakeAPIServer  # noqa: E402
from gen_dumps import GenCluster, iptables_save  # noqa: E402
from netns import Lab, require_netns  # noqa: E402
from test_targeted_reads import NODE, PODS, WEB_VIP, NetnsExec, gen_services, node_view, objects, trace  # noqa: E402

from svcctl.dataplane.hashes import port_proto_hash  # noqa: E402
from svcctl.sources import batch, targeted  # noqa: E402

pytestmark = pytest.mark.netns

Factory = Callable[..., FakeAPIServer]
RunCLI = Callable[..., tuple[int, str, str]]
SVC = "KUBE-SVC-" + port_proto_hash("default/web:http", "tcp")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_netns()
    with Lab(prefix="svt-bat", n_pods=0) as lab:
        text = iptables_save(GenCluster(gen_services(20), cluster_cidr="198.18.0.0/16"))
        lab.iptables_restore(text)
        yield lab


def hostile(lab: Lab, nonce: str) -> str:
    """A rule in the Service's chain whose comment reads like frames: an end marker, a begin marker, with a
    nonce of its own (any nonce a rule can hold was written before the exec's was drawn)."""
    comment = f"{nonce} 0 e 0 {nonce} 1 b x"
    lab.node_exec(["iptables", "-t", "nat", "-I", SVC, "1", "-m", "comment", "--comment", comment, "-j", "RETURN"])
    return comment


def in_ns(lab: Lab, sh_path: str = "") -> batch.Exec:
    """One exec in the node namespace (`sh_path`: a PATH without sh for `sh`, as in an image that has none)."""

    def run(argv: list[str]) -> tuple[str, str, int]:
        if sh_path and argv[:1] == ["sh"]:
            argv = ["env", f"PATH={sh_path}", *argv]
        r = lab.node_exec(argv, check=False)
        return r.stdout, r.stderr, r.returncode

    return run


def commands() -> list[list[str]]:
    """A round as svcctl plans it for `web` (its chains and entry checks), and two that are not there."""
    ipt = targeted.plan([(_service(), None)])[0]
    argvs = [["iptables", "-t", "nat", "-S", c] for c in ipt.chains] + [c.argv("iptables") for c in ipt.checks]
    argvs.append(["iptables", "-t", "nat", "-S", "KUBE-SEP-AAAAAAAAAAAAAAAA"])  # no such chain: exit 1
    argvs.append(["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-m", "comment", "--comment", "default/web:http "
                  "cluster IP", "-m", "tcp", "-p", "tcp", "-d", "198.19.200.1", "--dport", "80", "-j", SVC])
    assert all(targeted.allowed(a) for a in argvs)
    return argvs


def _service() -> Any:
    from svcctl.model import Service

    web = next(o for o in objects() if o["kind"] == "Service" and o["metadata"]["name"] == "web")
    return Service.from_dict(web)


def test_the_real_sh_answers_each_command_as_it_answers_alone(lab: Lab) -> None:
    fake = secrets.token_hex(16)
    comment = hostile(lab, fake)
    try:
        argvs = commands()
        alone = [in_ns(lab)(a) for a in argvs]
        sent: list[list[str]] = []

        def run(argv: list[str]) -> tuple[str, str, int]:
            sent.append(argv)
            return in_ns(lab)(argv)

        got = batch.Batched(run, NODE).run_many(argvs)
        assert got is not None and got.execs == 1 and len(sent) == 1
        assert sent[0][:2] == ["sh", "-c"] and batch.decode(sent[0]) is not None
        assert got.results == alone
        statuses = [rc for _, _, rc in alone]
        # (the plan asks both forms of the NodePort jump rule at once: one is there, the other exits 1)
        assert statuses[-2:] == [1, 1] and set(statuses) == {0, 1} and statuses.count(0) >= len(argvs) - 3, statuses
        assert "Bad rule" in alone[-1][1] and "KUBE-SEP-AAAAAAAAAAAAAAAA" in alone[-2][1]  # (its own words)
        svc_rules = next(o for a, (o, _, _) in zip(argvs, alone, strict=True) if a[4] == SVC)
        assert comment in svc_rules  # the hostile text came back inside its frame, as the rule's text
    finally:
        lab.node_exec(["iptables", "-t", "nat", "-D", SVC, "1"])


def test_an_output_without_its_last_newline_and_a_frame_ending_early_are_kept_whole(lab: Lab) -> None:
    """Frames keep the output byte for byte (the end marker starts its own line), and an answer with a frame
    cut short is not used."""
    argvs = commands()[:2]
    nonce = secrets.token_hex(16)
    argv = batch.compose(argvs, nonce)
    out, err, rc = in_ns(lab)(argv)
    assert rc == 0
    frames = batch.unframe(out, nonce, len(argvs))
    assert frames is not None and [f[0] for f in frames] == [in_ns(lab)(a)[0] for a in argvs]
    assert batch.unframe(out[:-1], nonce, len(argvs)) is None
    assert batch.unframe(out.replace(f"{nonce} 1 b", f"{nonce} 2 b"), nonce, len(argvs)) is None
    assert batch.unframe(out, secrets.token_hex(16), len(argvs)) is None


def test_a_container_without_sh_falls_back_to_one_exec_per_command(lab: Lab) -> None:
    argvs = commands()
    seen: list[str] = []
    b = batch.Batched(in_ns(lab, sh_path="/nonexistent"), NODE, seen.append)
    assert b.run_many(argvs) is None  # `env: 'sh': No such file or directory`, exit 127: no frames
    assert seen and "no sh in its kube-proxy container" in seen[0] and "127" in seen[0]
    assert b.run_many(argvs) is None and len(seen) == 1  # remembered: not tried again on this node
    read = targeted.TargetedRead()
    results = targeted.run_round(b, argvs, read, targeted.allowed)
    assert results == [in_ns(lab)(a) for a in argvs] and read.execs == len(argvs)


def test_a_trace_through_the_real_sh_equals_the_unbatched_trace(lab: Lab, apiserver: Factory,
                                                                run_cli: RunCLI) -> None:
    srv = apiserver(objects())
    ex = NetnsExec(lab)
    srv.exec_handler = ex
    srv.shell = None  # `sh -c` goes to the namespace's real sh
    code, doc, err = trace(run_cli, srv, "web")
    assert code == 0, err
    batched = [e[3] for e in srv.execs]
    assert any(a[:2] == ["sh", "-c"] for a in batched)
    for argv in batched:
        d = batch.decode(argv)
        assert (d is not None and all(targeted.allowed(c) for c in d.commands)) or targeted.allowed(argv), argv
    srv.shell = False  # the same node through a container without sh: one exec per command
    srv.reset_counters()
    ex.calls.clear()
    code2, doc2, err2 = trace(run_cli, srv, "web")
    assert code2 == code, err2
    assert node_view(doc2) == node_view(doc)
    singles = [e[3] for e in srv.execs if e[3][:1] != ["sh"]]
    decoded = [(a, batch.decode(a)) for a in batched]
    asked = [c for a, d in decoded for c in (d.commands if d is not None else [a])]
    assert sorted(map(json.dumps, singles)) == sorted(map(json.dumps, asked))
    assert len(batched) < len(singles)
    assert doc["ports"] and WEB_VIP in json.dumps(doc) and all(ip in json.dumps(doc) for ip in PODS)

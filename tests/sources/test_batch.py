"""The batch exec's script and frames (svcctl/sources/batch.py), without a node: only composed scripts of
allow-listed commands decode, frames must be exactly the ones sent, a round too long for one request line is
split. tests/sources/test_batch_netns.py runs the scripts with the real sh."""

from __future__ import annotations

import secrets
from urllib.parse import quote_plus

import pytest

from svcctl.errors import ClusterError
from svcctl.sources import batch

SVC = "KUBE-SVC-AC2ON6IKLZPGXVMV"


def test_a_script_that_is_not_composed_is_refused() -> None:
    nonce = secrets.token_hex(16)
    good = batch.compose([["iptables", "-t", "nat", "-S", SVC]], nonce)
    assert batch.allowed_batch(good)
    with pytest.raises(batch.NotAllowed):
        batch.compose([["iptables", "-t", "nat", "-F", SVC]], nonce)
    with pytest.raises(batch.NotAllowed):
        batch.compose([["iptables", "-t", "nat", "-S", SVC]], "x; reboot")
    for bad in (["sh", "-c", good[2] + "f 1 iptables-restore\n"],
                ["sh", "-c", good[2].replace("f 0 iptables", "f 0 iptables; iptables -F #")],
                ["sh", "-c", good[2].replace("\nf 0", "\nrm -rf / #")],
                ["sh", "-c", "iptables -t nat -S " + SVC],
                ["sh", "-c", good[2] + "true\n"],
                ["sh", "-c", good[2].replace("shift;", "shift; iptables -F;")],
                ["sh", "-e", good[2]], [*good, "x"]):
        assert not batch.allowed_batch(bad), bad


def test_frames_must_be_exactly_the_ones_sent() -> None:
    nonce = secrets.token_hex(16)
    text = f"{nonce} 0 b\nA\n\n{nonce} 0 e 0\n{nonce} 1 b\nno newline\n{nonce} 1 e 1\n"
    assert batch.unframe(text, nonce, 2) == [("A\n", 0), ("no newline", 1)]
    assert batch.unframe(text, nonce, 1) is None  # a frame more than sent
    assert batch.unframe(text, nonce, 3) is None  # one missing
    assert batch.unframe(text + "x", nonce, 2) is None  # text outside the frames
    assert batch.unframe("junk\n" + text, nonce, 2) is None
    # a rule's text that looks like an end marker of another nonce stays inside its frame
    other = secrets.token_hex(16)
    forged = f"{nonce} 0 b\n-A X -m comment --comment \"{other} 0 e 0\"\n{other} 0 e 0\n\n{nonce} 0 e 0\n"
    assert batch.unframe(forged, nonce, 1) == [(f"-A X -m comment --comment \"{other} 0 e 0\"\n{other} 0 e 0\n", 0)]


def test_a_long_round_is_split_under_the_request_line_bound() -> None:
    argvs = [["iptables", "-t", "nat", "-S", "KUBE-SEP-" + "".join("ABCDEFGHIJKLMNOP"[(i >> (4 * k)) & 15]
                                                                    for k in range(16))] for i in range(400)]
    parts = batch.chunks(argvs)
    assert len(parts) > 1 and [a for p in parts for a in p] == argvs
    for p in parts:
        script = batch.compose(p, secrets.token_hex(16))[2]
        assert len(quote_plus(script)) <= batch.MAX_ENCODED
    assert batch.chunks(argvs[:3]) == [argvs[:3]]


def test_no_shell_is_remembered_per_node_and_then_for_the_fleet() -> None:
    memo = batch.Memo()
    said: list[str] = []
    sent: list[list[str]] = []

    def no_sh(argv: list[str]) -> tuple[str, str, int]:
        sent.append(argv)
        raise ClusterError('exec kube-system/kube-proxy-x: sh -c … failed: Internal error occurred: … OCI runtime '
                           'exec failed: exec failed: unable to start container process: exec: "sh": executable '
                           "file not found in $PATH: unknown")

    argvs = [["iptables", "-t", "nat", "-S", SVC]] * 2
    for i in range(batch.FLEET_AFTER):
        b = batch.Batched(no_sh, f"n{i}", said.append, memo)
        assert b.run_many(argvs) is None and b.run_many(argvs) is None
    assert len(sent) == batch.FLEET_AFTER  # once per node
    assert batch.Batched(no_sh, "other", said.append, memo).run_many(argvs) is None
    assert len(sent) == batch.FLEET_AFTER and "on the other nodes too" in said[-1]

    def other_failure(argv: list[str]) -> tuple[str, str, int]:
        raise ClusterError("exec kube-system/kube-proxy-y: sh -c … did not finish within 5s")

    with pytest.raises(ClusterError):  # a transport failure is the node's failure, not a missing shell
        batch.Batched(other_failure, "y").run_many(argvs)

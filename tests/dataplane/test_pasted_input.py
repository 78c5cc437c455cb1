"""Node output as people paste it: every known section is read, and what was skipped is said, with line numbers.

A corpus of pastes made from real-format outputs (the demo node's ipvsadm / iptables-save / nft, the IPVS
fixtures, conntrack lines as conntrack-tools prints them, kube-proxy's klog line at -v=9): prompt lines, `$ cmd`
lines, Markdown fences, `> ` quotes, `...` / `[...]` elisions, CRLF, a cut last line, several outputs in one file,
header-less `ipvsadm -Ln | grep -A3` fragments, `--persistent-conn`/`--stats`/`--rate`. Each case asserts what
was read (the sections, the Services found) and what was skipped (line ranges and reasons, on stderr and in
JSON); content that is malformed inside a recognised section is still an input error naming the file's line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from gen_dumps import demo_cluster, iptables_save  # noqa: E402

from svcctl.paste import read  # noqa: E402
from svcctl.sources.snapshot import demo_path  # noqa: E402

Run = Callable[..., tuple[int, str, str]]
NODE = demo_path() / "nodes" / "kind-worker"
IPVSADM = (NODE / "ipvsadm.txt").read_text()
IPT = iptables_save(demo_cluster())
NFT = (NODE / "nft.txt").read_text()
CONNS = (HERE / "fixtures" / "ipvs" / "conns.txt").read_text()
STATS = (HERE / "fixtures" / "ipvs" / "stats.txt").read_text()
RATE = (HERE / "fixtures" / "ipvs" / "rate.txt").read_text()
CONNTRACK = ("tcp      6 86395 ESTABLISHED src=10.244.0.9 dst=10.0.1.175 sport=43210 dport=80 src=10.244.0.5 "
             "dst=10.244.0.9 sport=9376 dport=43210 [ASSURED] mark=0 use=1\n"
             "conntrack v1.4.8 (conntrack-tools): 1 flow entries have been shown.\n")
PERSISTENT = """IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn
  -> RemoteAddress:Port
TCP  10.0.1.175:80 rr
  -> 10.244.0.5:9376              1         0          0          0
  -> 10.244.0.6:9376              1         0          0          0
"""


def _rules(run_cli: Run, tmp: Path, flag: str, text: str, *extra: str,
           newline: str | None = None) -> tuple[int, dict[str, Any], str, Path]:
    p = tmp / "paste.txt"
    with open(p, "w", newline=newline) as fh:
        fh.write(text)
    code, out, err = run_cli(["rules", flag, str(p), "-o", "json", *extra])
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err, p


def _addresses(doc: dict[str, Any]) -> set[str]:
    return {f"{s['address']}:{s['port']}/{s['protocol']}" for s in doc["services"]}


def _reading(doc: dict[str, Any]) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = doc["inputs"]
    assert len(inputs) == 1, inputs
    return inputs[0]


def _reasons(reading: dict[str, Any]) -> list[str]:
    return [s["reason"] for s in reading["skipped"]]


def test_chat_paste_of_ipvsadm_and_its_connections(tmp_path: Path, run_cli: Run) -> None:
    lines = IPVSADM.splitlines(keepends=True)
    text = ("Here is what I see on the node:\n\n```\n$ sudo ipvsadm -Ln\n" + "".join(lines[:10]) + "...\n"
            + "".join(lines[10:]) + "$ sudo ipvsadm -Lnc\n" + CONNS + "```\nthanks!\n")
    code, doc, err, p = _rules(run_cli, tmp_path, "--ipvsadm", text)
    assert code == 0, err
    assert {"10.0.1.175:80/TCP", "10.0.0.10:53/UDP", "10.0.0.1:443/TCP"} <= _addresses(doc)
    r = _reading(doc)
    assert [s["kind"] for s in r["sections"]] == ["ipvsadm -Ln", "ipvsadm -Lnc"]
    reasons = _reasons(r)
    assert "Markdown fence" in reasons and "prompt `sudo ipvsadm -Ln`" in reasons
    assert "prompt `sudo ipvsadm -Lnc`" in reasons and any(x.startswith("elision") for x in reasons)
    assert {"lines": [1, 1], "reason": "not part of any output svcctl reads"} in r["skipped"]
    assert f"{p}: skipped line 1 (not part of any output svcctl reads)" in err  # said on stderr too


def test_header_less_grep_fragment_with_crlf(tmp_path: Path, run_cli: Run) -> None:
    text = ("TCP  10.0.1.175:80 rr\n  -> 10.244.0.5:9376              Masq    1      0          0\n"
            "  -> 10.244.0.6:9376              Masq    1      0          0\n--\n"
            "UDP  10.0.0.10:53 rr\n  -> 10.244.0.2:53                Masq    1      0          0\n")
    code, doc, err, _ = _rules(run_cli, tmp_path, "--ipvsadm", text, newline="\r\n")
    assert code == 0, err
    assert _addresses(doc) == {"10.0.1.175:80/TCP", "10.0.0.10:53/UDP"}
    hostnames = next(s for s in doc["services"] if s["port"] == 80)
    assert len(hostnames["backends"]) == 2
    r = _reading(doc)
    assert r["sections"] == [{"kind": "ipvsadm -Ln", "lines": [1, 6], "fragment": True}]
    assert r["skipped"] == [{"lines": [4, 4], "reason": "grep separator"}]


@pytest.mark.parametrize("listing", ["persistent", "stats", "rate"])
def test_ipvsadm_variants_after_a_root_prompt(listing: str, tmp_path: Path, run_cli: Run) -> None:
    body = {"persistent": PERSISTENT, "stats": STATS, "rate": RATE}[listing]
    flag = {"persistent": "--persistent-conn", "stats": "--stats", "rate": "--rate"}[listing]
    code, doc, err, _ = _rules(run_cli, tmp_path, "--ipvsadm", f"[root@node ~]# ipvsadm -Ln {flag}\n{body}")
    assert code == 0, err
    assert "10.0.1.175:80/TCP" in _addresses(doc)
    assert _reasons(_reading(doc)) == [f"prompt `ipvsadm -Ln {flag}`"]


def test_iptables_save_then_conntrack_in_one_file(tmp_path: Path, run_cli: Run) -> None:
    p = tmp_path / "node.txt"
    p.write_text("root@kind-worker:/# iptables-save\n" + IPT + "root@kind-worker:/# conntrack -L\n" + CONNTRACK)
    code, out, err = run_cli(["trace", "10.0.1.175:80", "--iptables-save", str(p), "-o", "json"])
    assert code in (0, 1), err
    doc = json.loads(out)
    selected = next(h for h in doc["ports"][0]["hops"] if h["hop"] == "selected")
    assert selected["summary"].startswith("conntrack: 1 live flow"), selected  # the conntrack section was read
    assert "iptables-save (lines 2–" in err and "conntrack -L (lines" in err


def test_quoted_iptables_save(tmp_path: Path, run_cli: Run) -> None:
    quoted = "".join("> " + ln if ln.strip() else ">\n" for ln in IPT.splitlines(keepends=True))
    code, doc, err, _ = _rules(run_cli, tmp_path, "--iptables-save", "My rules:\n" + quoted)
    assert code == 0, err
    assert "10.0.1.175:80/TCP" in _addresses(doc)


def test_iptables_list_after_a_dollar_prompt(tmp_path: Path, run_cli: Run) -> None:
    from test_mode_detection import _nat_listing

    code, doc, err, _ = _rules(run_cli, tmp_path, "--iptables-save", "$ iptables -t nat -L -n\n" + _nat_listing())
    assert code == 0, err
    assert "10.0.1.175:80/TCP" in _addresses(doc)
    assert [s["kind"] for s in _reading(doc)["sections"]] == ["iptables -L"]


def test_iptables_restore_input_from_a_kube_proxy_log(tmp_path: Path, run_cli: Run) -> None:
    """klog's text format prints a multi-line value as `rules=<`, each line tab-indented, then ` >`."""
    body = "".join("\t" + ln + "\n" for ln in IPT.splitlines() if not ln.startswith("#"))
    text = ('I1201 09:00:00.000000       1 proxier.go:1545] "Restoring iptables" rules=<\n' + body
            + "\t-X KUBE-SEP-OLDOLDOLDOLDOLD1\n >\n"
            + 'I1201 09:00:00.012000       1 proxier.go:1560] "SyncProxyRules complete" elapsed="12ms"\n')
    code, doc, err, _ = _rules(run_cli, tmp_path, "--iptables-save", text)
    assert code == 0, err
    assert "10.0.1.175:80/TCP" in _addresses(doc)
    section = _reading(doc)["sections"][0]
    assert section["kind"].startswith("iptables-restore input") and section["deletedChains"] == [
        "KUBE-SEP-OLDOLDOLDOLDOLD1"]
    assert "leaves out the chains kube-proxy did not change" in err


def test_malformed_line_inside_a_section_names_the_files_line(tmp_path: Path, run_cli: Run) -> None:
    lines = IPVSADM.splitlines(keepends=True)
    lines[5] = "  -> 10.244.0.2:53                Masq    one    0          0\n"
    text = "```\n$ ipvsadm -Ln\n" + "".join(lines) + "```\n"
    code, doc, err, p = _rules(run_cli, tmp_path, "--ipvsadm", text)
    assert code == 2
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {p}:8:"), err  # listing line 6 = paste line 8


def test_cut_last_line_inside_a_section_is_an_error_outside_it_is_skipped(tmp_path: Path, run_cli: Run) -> None:
    cut = "$ ipvsadm -Ln\n" + IPVSADM.rstrip("\n")[:-30]
    code, doc, err, p = _rules(run_cli, tmp_path, "--ipvsadm", cut)
    assert code == 2 and f"{p}:" in err and "cut off" in err, err
    prose = "$ ipvsadm -Ln\n" + IPVSADM + "that was all I go"
    code, doc, err, p = _rules(run_cli, tmp_path, "--ipvsadm", prose)
    assert code == 0, err
    assert {"lines": [IPVSADM.count("\n") + 2] * 2, "reason": "not part of any output svcctl reads"} in _reading(
        doc)["skipped"]


def test_a_truncated_nft_paste_is_never_silent(tmp_path: Path, run_cli: Run) -> None:
    lines = NFT.splitlines(keepends=True)
    text = "```\n# nft list table ip kube-proxy\n" + "".join(lines[: len(lines) // 2]) + "```\n"
    code, doc, err, p = _rules(run_cli, tmp_path, "--nft", text)
    assert code == 2 and str(p) in err, (code, err)


def test_prose_alone_is_still_refused(tmp_path: Path, run_cli: Run) -> None:
    code, doc, err, p = _rules(run_cli, tmp_path, "--ipvsadm", "I ran ipvsadm but it printed nothing useful\n")
    assert code == 2 and str(p) in err


def test_a_clean_dump_is_passed_through_untouched() -> None:
    for key, text in (("iptables", IPT), ("ipvs", IPVSADM), ("nftables", NFT)):
        p = read(text, "f", key)
        assert p.clean and p.sections[0].text is text
    assert not read("$ ipvsadm -Ln\n" + IPVSADM, "f", "ipvs").clean

"""The whole-dump fast paths of the iptables parser (`iptables.FAST`: kube-proxy's rule shapes matched by one regex
each, endpoint chains read from their text, a chain's run of lines kept as offsets) give the same model as the
general parser and walk, on every generator's dumps and on the fixtures, rule by rule and entry by entry."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_dumps import (  # noqa: E402
    GenCluster,
    GenEndpoint,
    GenPort,
    GenService,
    big_cluster,
    demo_cluster,
    iptables_save,
)

from svcctl.dataplane import iptables  # noqa: E402
from svcctl.errors import InputError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


def _shapes() -> GenCluster:
    """Every kind of Service the generator writes: affinity, traffic policy Local, NodePorts, load balancers with
    source ranges, external IPs, no endpoints, UDP, two ports."""
    eps = [GenEndpoint("10.244.1.2"), GenEndpoint("10.244.2.3", local=False), GenEndpoint("10.244.3.4")]
    return GenCluster(services=[
        GenService("a", "plain", "10.96.0.11", [GenPort("http", 80, 8080)], eps),
        GenService("a", "sticky", "10.96.0.12", [GenPort("http", 80, 8080)], eps, affinity_seconds=10800),
        GenService("a", "local", "10.96.0.13", [GenPort("http", 80, 8080, node_port=30080)], eps, etp_local=True,
                   lb_ips=["198.18.0.10"], health_check_node_port=32000),
        GenService("a", "internal", "10.96.0.14", [GenPort("http", 80, 8080)], eps, itp_local=True),
        GenService("a", "fw", "10.96.0.15", [GenPort("http", 80, 8080, node_port=30081)], eps,
                   lb_ips=["198.18.0.11"], source_ranges=["198.18.5.0/24"]),
        GenService("a", "ext", "10.96.0.16", [GenPort("http", 80, 8080)], eps, external_ips=["198.18.0.12"]),
        GenService("a", "empty", "10.96.0.17", [GenPort("http", 80, 8080, node_port=30082)], []),
        GenService("a", "dns", "10.96.0.18", [GenPort("dns", 53, 53, "UDP"), GenPort("dns-tcp", 53, 53)],
                   eps[:1]),
        GenService("a", "one", "10.96.0.19", [GenPort("", 443, 6443)], [GenEndpoint("172.18.0.2", local=False)]),
    ])


def _dumps() -> Iterator[tuple[str, str]]:
    yield "demo", iptables_save(demo_cluster())
    yield "shapes", iptables_save(_shapes())
    yield "shapes, counters", iptables_save(_shapes(), counters=True)
    no_comments = _shapes()
    no_comments.comments = False
    yield "shapes, no comments", iptables_save(no_comments)
    masq_all = _shapes()
    masq_all.masquerade_all = True
    yield "shapes, masquerade all", iptables_save(masq_all)
    yield "big", iptables_save(big_cluster(60, 4))
    yield "big, counters", iptables_save(big_cluster(30, 3), counters=True)
    yield "big, no comments", iptables_save(big_cluster(30, 3, comments=False))
    big = iptables_save(big_cluster(20, 3))
    yield "CRLF", big.replace("\n", "\r\n")
    yield "indented and blank lines", "\n".join(("  " + ln if i % 7 == 0 else ln) + ("\n" if i % 5 == 0 else "")
                                                for i, ln in enumerate(big.splitlines())) + "\n"
    yield "no final newline", big.rstrip("\n")
    yield from _bulk_variants()
    yield from _entry_variants()
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    import tempfile

    from gen_big_dumps import write_iptables_save

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.txt"
        write_iptables_save(str(path), 40, 5)
        yield "gen_big_dumps", path.read_text()
    for path in sorted([*ROOT.glob("svcctl/data/**/*iptables*.txt"), *ROOT.glob("tests/fixtures/**/*iptables*.txt")]):
        yield str(path.relative_to(ROOT)), path.read_text(errors="replace")


def _sep_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("-A KUBE-SEP-")]


def _bulk_variants() -> Iterator[tuple[str, str]]:
    """A generated dump edited where the whole-table scan (`iptables._bulk_nat`) must notice: an endpoint chain
    in two places, one with a line of another shape before or after its own, one never declared, one shared by two
    Services, one nothing jumps to, DNATs to IPv6, to a port range and to a bare address."""
    base = iptables_save(big_cluster(12, 3))
    seps = _sep_lines(base)
    masq, dnat = seps[0], seps[1]  # one endpoint chain's hairpin masquerade and DNAT
    chain = dnat.split()[1]
    def last(text: str, line: str) -> str:  # as the nat table's last rule
        head, _, tail = text.rpartition("\nCOMMIT\n")
        return f"{head}\n{line}\nCOMMIT\n{tail}"

    yield "bulk: an endpoint chain in two places", last(base.replace(dnat + "\n", ""), dnat)
    yield "bulk: its DNAT alone, in two places", last(base.replace(masq + "\n", "").replace(dnat + "\n", ""),
                                                      dnat).replace(seps[3] + "\n", f"{seps[3]}\n{dnat}\n")
    extra = f"-A {chain} -m comment --comment x -j MARK --set-xmark 0x1/0x1"
    yield "bulk: a line of another shape after the DNAT", base.replace(dnat + "\n", f"{dnat}\n{extra}\n")
    yield "bulk: a line of another shape before the masquerade", base.replace(masq + "\n", f"{extra}\n{masq}\n")
    yield "bulk: a line of another shape before a lone DNAT", base.replace(masq + "\n", f"{extra}\n")
    yield "bulk: an undeclared endpoint chain", base.replace(f":{chain} - [0:0]\n", "")
    yield "declarations spaced otherwise", base.replace(f":{chain} - [0:0]", f":{chain}  -  [0:0]").replace(
        ":KUBE-MARK-MASQ - [0:0]", ":KUBE-MARK-MASQ\t- [0:0]").replace(":POSTROUTING ACCEPT [0:0]", ":POSTROUTING")
    other = seps[-1].split()[1]
    yield "bulk: two Services share an endpoint chain", base.replace(f"-j {other}\n", f"-j {chain}\n", 1)
    jump = next(ln for ln in base.splitlines() if ln.startswith("-A KUBE-SVC-") and f"-j {chain}" in ln)
    yield "bulk: an endpoint chain nothing jumps to", base.replace(jump + "\n", "")
    yield "bulk: DNATs elsewhere", base.replace(dnat, dnat.rsplit(" ", 1)[0] + " [2001:db8::5]:8080").replace(
        seps[3], seps[3].rsplit(" ", 1)[0] + " 10.244.9.9:80-90").replace(
        seps[5], seps[5].rsplit(" ", 1)[0] + " 10.244.9.8")
    yield "bulk: a quoted backslash and a comment starting with a dash", base.replace(
        masq, masq.replace('--comment "', '--comment "a\\\\b ')).replace(
        seps[3], seps[3].replace('--comment "', '--comment "-'))


def _entry_variants() -> Iterator[tuple[str, str]]:
    """KUBE-SERVICES lines of the entry shape (`-d VIP -p … --dport … -j X`, read as their match's groups) whose
    target is not a Service chain: old kube-proxy's masquerade mark before the entry, a chain that only sets marks,
    verdicts, the NodePorts jump, a target never declared; and an entry line indented, with a CR, with odd spaces."""
    base = iptables_save(big_cluster(12, 3))
    lines = [ln for ln in base.splitlines() if ln.startswith("-A KUBE-SERVICES -d ")]
    entry, other = lines[0], lines[3]
    head = entry.rsplit(" -j ", 1)[0]
    yield "entries: a masquerade mark before the entry", base.replace(entry, f"{head} -j KUBE-MARK-MASQ\n{entry}")
    nat = base.index("*nat\n")
    end = base.index("\nCOMMIT\n", nat)
    marks = (base[:nat] + base[nat:end].replace(":KUBE-MARK-MASQ - [0:0]", ":KUBE-MARK-MASQ - [0:0]\n:MY-MARK - [0:0]")
             + "\n-A MY-MARK -j MARK --set-xmark 0x4000/0x4000" + base[end:])
    yield "entries: a jump to a chain that only sets marks", marks.replace(entry, f"{head} -j MY-MARK\n{entry}")
    yield "entries: verdicts and NodePorts of the entry shape", base.replace(
        entry, f"{head} -j RETURN\n{head} -j ACCEPT\n{head} -j KUBE-NODEPORTS\n{head} -j MARK\n{entry}")
    yield "entries: a target never declared", base.replace(other, other.rsplit(" -j ", 1)[0] + " -j KUBE-SVC-NOPE")
    yield "entries: an entry line indented, with a CR, spaced otherwise", base.replace(
        entry, "  " + entry + "\r").replace(other, other.replace(" -p tcp", "  -p tcp"))


def _model(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(iptables, "FAST", fast)
    try:
        dump = iptables.parse_dump(text, "dump")
    except InputError as err:
        return ("error", err.message, err.line)
    tables = {name: {"policies": t.policies, "chains": list(t.chains),
                     "rules": {c: [_rule(r) for r in t.rules(c) or []] for c in t.chains}}
              for name, t in dump.tables.items()}
    rules = iptables.parse_iptables_save(text, "dump")
    return tables, dump.n_rules, dump.n_chains, json.dumps(rules.to_json(), indent=1, default=str)


def _rule(r: iptables.Rule) -> tuple[Any, ...]:
    # items in order: the walk's words for a condition follow the options' order
    return (r.chain, r.table, r.line, list(r.opts.items()), r.target, list(r.target_opts.items()), r.goto,
            r.counters)


DUMPS = list(_dumps())


@pytest.mark.parametrize("name,text", DUMPS, ids=[d[0] for d in DUMPS])
def test_the_fast_paths_give_the_general_parsers_model(name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    general = _model(text, False, monkeypatch)
    fast = _model(text, True, monkeypatch)
    assert fast == general


def test_the_fixtures_and_generators_take_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most rules of a generated dump are read by the fast shapes (else the test above compares nothing)."""
    text = iptables_save(big_cluster(20, 3))
    lines = [ln[3:] for ln in text.splitlines() if ln.startswith("-A ")]
    fast = [ln for i, ln in enumerate(lines) if iptables._fast_rule(ln, "nat", i) is not None]
    assert len(fast) > 0.9 * len(lines)
    dump = iptables.parse_save_text(text, "dump")
    nat = dump.tables["nat"]
    assert max(nat.n_rules(c) for c in nat.lazy) > 1
    assert all(v.__class__ is int for v in nat.lazy.values())  # each chain one run of lines, not a line each


@pytest.mark.parametrize("line", [
    'KUBE-SEP-X -s 10.0.0.1/32 -m comment --comment "a/b:c" -j KUBE-MARK-MASQ',
    'KUBE-SEP-X -p tcp -m comment --comment "a/b:c" -m tcp -j DNAT --to-destination 10.0.0.1:80',
    'KUBE-SVC-X -m comment --comment "a/b:c -> 10.0.0.1:80" -m statistic --mode random --probability 0.5 -j '
    'KUBE-SEP-X',
    'KUBE-SVC-X -m comment --comment "" -j KUBE-SEP-X',
    'KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "a/b:c cluster IP" -m tcp --dport 80 -j KUBE-SVC-X',
    'KUBE-SVC-X ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment "a/b:c cluster IP" -m tcp '
    '--dport 80 -j KUBE-MARK-MASQ',
])
def test_each_fast_shape_builds_the_general_rule(line: str) -> None:
    fast = iptables._fast_rule(line, "nat", 7)
    assert fast is not None
    assert _rule(fast) == _rule(iptables._parse_rule_text(line, "nat", 7, "x"))


@pytest.mark.parametrize("line", [
    'KUBE-SEP-X -s 10.0.0.1/32 -m comment --comment "a/b:c" -j KUBE-MARK-MASQ --extra',
    'KUBE-SEP-X -s ! -m comment --comment "a/b:c" -j KUBE-MARK-MASQ',
    'KUBE-SEP-X -s -x -m comment --comment "a/b:c" -j KUBE-MARK-MASQ',
    'KUBE-SVC-X -m comment --comment "-x" -j KUBE-SEP-X',
    'KUBE-SVC-X -m comment --comment "a\\"b" -j KUBE-SEP-X',
    'KUBE-SVC-X -m comment --comment "a" b -j KUBE-SEP-X',
    'KUBE-SEP-X -p tcp -m comment --comment "a/b:c" -m recent --set --name KUBE-SEP-X --mask 255.255.255.255 '
    '--rsource -m tcp -j DNAT --to-destination 10.0.0.1:80',
])
def test_other_lines_take_the_general_parse(line: str) -> None:
    assert iptables._fast_rule(line, "nat", 7) is None


def test_a_generated_services_chains_are_walked_from_their_text() -> None:
    """Every KUBE-SVC- chain of a generated dump is walked by the fast path (the model test then compares it)."""
    dump = iptables.parse_save_text(iptables_save(big_cluster(10, 3)), "dump")
    nat = dump.tables["nat"]
    fol = iptables._Follower(nat, dump)
    svc = [c for c in nat.chains if c.startswith("KUBE-SVC-")]
    assert svc and all(fol._service_walk(c) is not None for c in svc)


def test_a_generated_nat_table_is_indexed_in_one_scan() -> None:
    """A generated dump's endpoint chains are all read by the whole-table scan, and only the other chains get an
    index entry (the model test above compares what that gives with the general parser)."""
    text = iptables_save(big_cluster(12, 3))
    nat = iptables.parse_save_text(text, "dump").tables["nat"]
    seps = {ln.split()[1] for ln in _sep_lines(text)}
    assert set(nat.eps) == seps
    assert not set(nat.lazy) & seps
    assert all(nat.rules(c) for c in seps)  # each one's lines still found when asked


@pytest.mark.parametrize("name", [n for n, _ in DUMPS if n.startswith("bulk: ")])
def test_what_the_scan_cannot_vouch_for_is_read_otherwise(name: str) -> None:
    """In each edited dump the chains the scan cannot vouch for are read from their lines (or the table by the
    line loop), never from the scan's parts."""
    text = dict(DUMPS)[name]
    nat = iptables.parse_save_text(text, "dump").tables["nat"]
    for c in nat.eps:
        lines = [ln for ln in text[text.index("*nat"):].splitlines() if ln.startswith(f"-A {c} ")]
        assert len(lines) == nat.n_rules(c)
        assert nat.raw_lines(c) is not None and [t for _, t in nat.raw_lines(c) or []] == lines


def _text_variants() -> Iterator[tuple[str, str]]:
    """A generated dump edited where the JSON writer of backends left unmade (render/iptables_json.py) must not
    write them from the frame as they are: an endpoint chain's name JSON escapes (a backslash, a letter not
    ASCII), an address of digits that are not ASCII (`\\d` matches them), a port with a leading zero; and a
    Service chain both an entry's straight away and another's through its external chain."""
    base = iptables_save(big_cluster(12, 3))
    seps = _sep_lines(base)
    first, second = seps[1].split()[1], seps[3].split()[1]
    yield "text: endpoint chains JSON escapes", base.replace(first, first[:-2] + "\\\\").replace(
        second, second[:-2] + "\u00c4x")
    dnat = seps[1]
    head, port = dnat.rsplit(":", 1)
    yield "text: an address of digits not ASCII", base.replace(dnat, f"{head[:-1]}\u0663:{port}")
    yield "text: a port with a leading zero", base.replace(dnat, f"{head}:0{port}")
    jump = next(ln for ln in base.splitlines() if ln.startswith("-A KUBE-SVC-") and " -m statistic " in ln)
    yield "text: comments and values not ASCII, a tab in a comment", base.replace(
        seps[0], seps[0].replace('--comment "', '--comment "\u00e9')).replace(
        jump, jump.replace('--comment "', '--comment "\t').replace("--probability 0", "--probability \u0660")).replace(
        seps[5], seps[5].replace("-p tcp", "-p t\u00e7p"))
    ext = iptables_save(_shapes())
    yield "text: shapes, a Service chain reached twice", ext
    unnamed = [ln for ln in base.splitlines() if ln.startswith("-A KUBE-SERVICES -d ")][:3]
    yield "text: entries whose comment names no Service", base.replace(
        unnamed[0], unnamed[0].replace(' cluster IP"', ' is here"')).replace(
        unnamed[1], unnamed[1].replace(' cluster IP"', '"'))


TEXT_DUMPS = DUMPS + list(_text_variants())


def _document(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """`rules -o json` of the dump as the command writes it: with `fast`, read for its JSON alone (`as_text`: the
    backends left unmade where the walk can, `iptables.LeftBackends`); else the general parser's model through
    the ordinary writer."""
    from svcctl.render.console import Output
    from svcctl.render.rules import render_rules

    monkeypatch.setattr(iptables, "FAST", fast)
    try:
        rules = iptables.parse_iptables_save(text, "dump", as_text=fast)
    except InputError as err:
        return f"error {err.message} {err.line}"
    assert fast or rules.deferred is None
    capsys.readouterr()
    render_rules(Output(output="json"), rules)
    return capsys.readouterr().out


@pytest.mark.parametrize("name,text", TEXT_DUMPS, ids=[d[0] for d in TEXT_DUMPS])
def test_backends_left_unmade_give_the_general_writers_text(name: str, text: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    general = _document(text, False, monkeypatch, capsys)
    left = _document(text, True, monkeypatch, capsys)
    assert left == general


def test_a_generated_dumps_backends_are_left_unmade_and_made_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every entry of a generated dump has its backends left for the writer (else the test above compares the
    ordinary writer with itself), and `entry` makes the Backends the general walk makes; the counts are the same."""
    monkeypatch.setattr(iptables, "FAST", True)
    text = iptables_save(big_cluster(10, 3))
    rules = iptables.parse_iptables_save(text, "dump", as_text=True)
    left = rules.deferred
    assert isinstance(left, iptables.LeftBackends)
    assert len(left.records) == len(rules.services) == 10
    assert not any(e.backends for e in rules.services)
    general = iptables.parse_iptables_save(text, "dump")
    full = [left.entry(e) for e in rules.services]
    assert [e.to_json() for e in full] == [e.to_json() for e in general.services]
    assert not left.records
    assert rules.stats.to_json() == general.stats.to_json()
    assert iptables.parse_iptables_save(text, "dump").deferred is None
    assert iptables.parse_iptables_save(text, "dump", {"ns0/svc0"}, as_text=True).deferred is None


def test_the_command_leaves_a_whole_dumps_backends_for_its_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`rules --iptables-save FILE -o json` reads the dump for its JSON alone, and writes the general path's text;
    with an ip6tables-save beside it (two families merged) it does not."""
    from svcctl.cli.main import run

    seen: list[bool] = []
    real = iptables.follow

    def spy(dump: iptables.Dump, as_text: bool = False) -> Any:
        seen.append(as_text)
        return real(dump, as_text)

    monkeypatch.setattr(iptables, "follow", spy)
    path = tmp_path / "iptables-save.txt"
    path.write_text(iptables_save(big_cluster(8, 2)))
    outs = []
    for fast in (True, False):
        monkeypatch.setattr(iptables, "FAST", fast)
        assert run("svcctl", ["rules", "--iptables-save", str(path), "-o", "json"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and '"KUBE-SEP-' in outs[0]
    assert seen == [True, True]
    six = tmp_path / "ip6tables-save.txt"
    six.write_text(iptables_save(big_cluster(2, 1)).replace("10.96.", "10.97."))
    seen.clear()
    monkeypatch.setattr(iptables, "FAST", True)
    assert run("svcctl", ["rules", "--iptables-save", str(path), "--ip6tables-save", str(six), "-o", "json"]) in (0, 2)
    capsys.readouterr()
    assert True not in seen


@pytest.mark.parametrize("name", [n for n, _ in DUMPS if n.startswith("entries: ") or n in ("shapes", "big", "CRLF")])
def test_entry_lines_read_in_one_scan_are_those_read_one_at_a_time(name: str) -> None:
    """KUBE-SERVICES read a scan at a time (`_entry_lines`: the lines found as they are, the rest one by one) give
    the same groups and Rules (with their line numbers) as every line read on its own."""
    text = dict(DUMPS)[name]
    dump = iptables.parse_save_text(text, "dump")
    nat = dump.tables["nat"]
    fol = iptables._Follower(nat, dump)
    runs = nat.runs("KUBE-SERVICES")
    assert runs

    def norm(items: Iterator[Any]) -> list[Any]:
        return [x if isinstance(x, tuple) else _rule(x) for x in items]

    one_by_one = [x for no, start, end, _ in runs
                  for x in norm(iptables._entry_lines_of(nat, start, end, no, fol.plain_entry))]
    assert norm(iptables._entry_lines(nat, runs, fol.plain_entry)) == one_by_one
    assert any(isinstance(x, tuple) for x in one_by_one)

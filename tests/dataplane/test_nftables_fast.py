"""The whole-listing fast paths of the nftables reader (`nftables.FAST`: a listing read a block at a time, each
chain kept as its lines' place in the text; kube-proxy's service and endpoint chains walked from that text) give
the same model as the general reader and walk: every table, chain (hook, comment, rules with their line
numbers), set and element, every entry's JSON and every error, on the generator's listings, on damaged and
unusual variants of them, and on the recorded fixtures."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fast_walks import watch_fast_walks  # noqa: E402
from gen_big_dumps import nft_listing_lines  # noqa: E402
from gen_dumps_ipvs_nft import big_services  # noqa: E402

from svcctl.dataplane import nftables  # noqa: E402
from svcctl.errors import InputError  # noqa: E402


def _listing(n: int, eps: int) -> str:
    return "\n".join(nft_listing_lines(big_services(n, eps))) + "\n"


def _chain_block(text: str, prefix: str, k: int = 0) -> tuple[int, int]:
    """The span of the k-th `chain PREFIX…` block (header to closing line, newline included)."""
    starts = [m.start() for m in re.finditer(rf"(?m)^\tchain {re.escape(prefix)}", text)]
    start = starts[k]
    return start, text.index("\n\t}\n", start) + 4


def _variants(big: str) -> Iterator[tuple[str, str]]:
    """The generator's listing changed in the ways a real one can differ, each a step away from the fast shapes."""
    yield "CRLF", big.replace("\n", "\r\n")
    yield "no final newline", big.rstrip("\n")
    yield "blank lines at the end", big + "\n\n"
    yield "handles", re.sub(r"(?m)^(\t\t.*)$", r"\1 # handle 7", big, count=40)
    yield "counters", big.replace("jump mark-for-masquerade\n", "counter packets 3 bytes 180 jump mark-for-masquerade\n", 30)
    s, e = _chain_block(big, "endpoint-", 3)
    yield "an endpoint chain missing", big[:s] + big[e:]
    yield "an endpoint chain with another rule", big[:e - 3] + "\t\tip saddr 10.0.0.0/8 drop\n" + big[e - 3:]
    yield "an endpoint chain with a comment", big[:e - 3] + '\t\tcounter comment "x y"\n' + big[e - 3:]
    yield "an endpoint chain listed twice", big[:e] + big[s:e] + big[e:]
    yield "a blank line in a chain", big[:e - 3] + "\n" + big[e - 3:]
    yield "a line at column 0 in a chain", big[:e - 3] + "oops\n" + big[e - 3:]
    yield "an unbalanced brace in a chain", big[:e - 3] + "\t\tip daddr { 10.0.0.1\n" + big[e - 3:]
    yield "a lone brace line in a chain", big[:e - 3] + "\t\t}\n" + big[e - 3:]
    yield "a lone brace line closing an open one", big[:e - 3] + "\t\tip daddr { 10.0.0.1\n\t\t }\n" + big[e - 3:]
    yield "a lone brace line before an open one", big[:e - 3] + "\t\t}\xa0\n\t\tip daddr { 10.0.0.1\n" + big[e - 3:]
    yield "a lone brace line in a vmap's chain", big.replace(" }\n\t}\n", " }\n\t\t}\n\t\t{\n\t}\n", 1)
    s, e = _chain_block(big, "service-", 2)
    svc = big[s:e]
    yield "vmap jumps", big[:s] + svc.replace(": goto ", ": jump ") + big[e:]
    yield "vmap keys out of order", big[:s] + svc.replace("0 : goto", "9 : goto", 1) + big[e:]
    yield "a vmap key range", big[:s] + svc.replace("0 : goto", "0-1 : goto", 1) + big[e:]
    first = re.search(r"0 : goto (\S+),", svc)
    assert first
    yield "a vmap target twice", big[:s] + svc.replace("1 : goto ", f"1 : goto {first.group(1)}, 9999 : goto ", 1) + big[e:]
    yield "numgen mod more than the map", big[:s] + re.sub(r"mod \d+ vmap", "mod 12 vmap", svc) + big[e:]
    yield "numgen mod 0", big[:s] + re.sub(r"mod \d+ vmap", "mod 0 vmap", svc) + big[e:]
    yield "no masquerade rule", big[:s] + re.sub(r"\t\tip daddr .* jump mark-for-masquerade\n", "", svc) + big[e:]
    yield "masquerade all", big[:s] + re.sub(r"\t\tip daddr .* jump mark-for-masquerade\n",
                                              "\t\tjump mark-for-masquerade\n", svc) + big[e:]
    yield "a service chain nothing reaches", big[:s] + svc.replace("chain service-", "chain service-STALE000-", 1) + big[e:]
    yield "an endpoint chain that jumps to its service", big.replace(
        "\t\tip saddr 10.128.0.11 jump mark-for-masquerade\n", "\t\tip saddr 10.128.0.11 jump mark-for-masquerade\n"
        "\t\tgoto " + svc.split()[1] + "\n", 1)
    yield "the same endpoint twice", big.replace("dnat to 10.128.0.12:8080", "dnat to 10.128.0.13:8080", 1)
    yield "an IPv6 endpoint", big.replace("dnat to 10.128.0.12:8080", "dnat to [fd00::12]:8080", 1)
    yield "a quoted chain name", big.replace("chain reject-chain {", 'chain "reject-chain" {', 1)
    yield "another kind of block", big.replace("\tchain reject-chain {", "\tflowtable f {\n\t\thook ingress priority 0\n"
                                               "\t}\n\n\tchain reject-chain {", 1)
    yield "truncated", big[:len(big) // 2]
    yield "a second table", big + big.replace("table ip kube-proxy", "table ip6 kube-proxy", 1)
    yield "a nested base chain line", big.replace("\t\tjump services\n", "\t\tjump services\n\t\tpolicy drop;\n", 1)
    # what `\s` matches besides tabs and spaces (the ASCII listing's regexes spell it out; a non-ASCII one is read
    # with the Unicode ones)
    yield "a non-ASCII comment", big.replace('comment "rules for kube-proxy"', 'comment "règles de kube-proxy"', 1)
    for sep, what in (("\x1f", "a unit separator"), ("\x0b", "a vertical tab"), ("\xa0", "a no-break space"),
                      ("\u3000", "an ideographic space")):
        yield f"{what} in an endpoint chain's name", big.replace("http__10.128.0.12/8080", f"http__10.128.0.12/8080{sep}x")
        yield f"{what} in a vmap target only", big.replace(": goto endpoint-", f": goto{sep}endpoint-", 1)
        yield f"{what} opening a rule line", big.replace("\t\tip saddr 10.128.0.13 ", f"\t\t{sep}ip saddr 10.128.0.13 ", 1)
    s, e = _chain_block(big, "mark-for-masquerade")
    yield "no mark-for-masquerade chain", big[:s] + big[e:]
    # endpoint chains kept apart (`_Plain`): found where kube-proxy lists them, or elsewhere, or not at all
    s, e = _chain_block(big, "endpoint-", 5)
    yield "an endpoint chain nothing reaches", big[:e] + big[s:e].replace("chain endpoint-", "chain endpoint-STALE000-", 1) + big[e:]
    yield "an endpoint chain away from its service chain", big[:s] + big[e:].replace("\tchain service-", big[s:e] + "\tchain service-", 3)
    heads = [m.start() for m in re.finditer(r"(?m)^\tchain ", big)]
    blocks = [big[a:b] for a, b in zip(heads, heads[1:] + [big.rindex("}")], strict=True)]
    yield "chains listed last first", big[:heads[0]] + "".join(reversed(blocks)) + big[big.rindex("}"):]
    s2, e2 = _chain_block(big, "endpoint-", 7)
    yield "an endpoint chain listed twice, once with a comment", big[:e] + big[s2:e2].replace(
        "jump mark-for-masquerade\n", 'jump mark-for-masquerade comment "x"\n', 1) + big[e:]
    yield "a service chain's endpoint chains in another order", big[:s] + big[s:e2].replace(
        big[s:e], "", 1).replace(big[s2:e2], big[s2:e2] + big[s:e], 1) + big[e2:]
    yield "a service chain of plain rules among endpoint chains", big.replace(
        "\tchain endpoint-", "\tchain service-PLAIN000-ns/x/tcp/p {\n\t\tgoto reject-chain\n\t}\n\n\tchain endpoint-", 2)


def _dumps() -> Iterator[tuple[str, str]]:
    big = _listing(30, 4)
    yield "generator", big
    yield "generator, one endpoint each", _listing(8, 1)
    yield "generator, 2,000 endpoints", _listing(2, 1000)
    yield from _variants(big)
    layout_a = (ROOT / "tests" / "fixtures" / "nft" / "layout-a.txt").read_text()
    yield "no-endpoint verdicts on entries the service maps have too", layout_a.replace(
        '{ 10.0.4.4 . tcp . 80 comment "ns4/empty:p" : goto reject-chain }',
        '{ 10.0.4.4 . tcp . 80 comment "ns4/empty:p" : goto reject-chain,\n\t\t\t     10.0.5.5 . tcp . 80 comment '
        '"ns5/nolocal:http" : drop,\n\t\t\t     10.0.2.2 . tcp . 80 : goto reject-chain }', 1).replace(
        '{ tcp . 30999 comment "ns4/empty:p" : goto reject-chain }',
        '{ tcp . 30999 comment "ns4/empty:p" : goto reject-chain, tcp . 30555 : drop }', 1)
    for path in sorted([*ROOT.glob("svcctl/data/**/nft*.txt"), *(ROOT / "tests" / "fixtures" / "nft").glob("*")]):
        yield str(path.relative_to(ROOT)), path.read_text(errors="replace")


def _model(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch, only: set[str] | None = None) -> Any:
    monkeypatch.setattr(nftables, "FAST", fast)
    try:
        tables = nftables._read_json(text, "dump") if text.lstrip().startswith("{") else nftables._read_text(
            text, "dump")
        model = [(t.family, t.name,
                  [(name, c.hook, c.comment, c.count(), [(r.text, r.comment, r.line) for r in c.rules])
                   for name, c in t.chains.items()],
                  [(name, st.is_map, st.type, st.flags, st.timeout, st.comment,
                    [(e.key, e.value, e.comment) for e in st.elements]) for name, st in t.sets.items()])
                 for t in tables]
    except InputError as err:
        model = [("error", err.message, err.line)]
    try:
        rules = json.dumps(nftables.parse_nft(text, "dump", only=only).to_json(), indent=1, default=str)
    except InputError as err:
        rules = f"error {err.message} {err.line}"
    return model, rules


DUMPS = list(_dumps())


@pytest.mark.parametrize("name,text", DUMPS, ids=[d[0] for d in DUMPS])
def test_the_fast_paths_give_the_general_readers_model(name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    general = _model(text, False, monkeypatch)
    fast = _model(text, True, monkeypatch)
    assert fast == general


@pytest.mark.parametrize("only", [{"ns3/svc3"}, {"10.96.0.20"}, {"10.96.0.20:80"}])
def test_one_service_reads_the_same_both_ways(only: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    text = _listing(30, 4)
    assert _model(text, True, monkeypatch, only) == _model(text, False, monkeypatch, only)


def test_a_generated_listing_takes_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every per-Service chain of a generated listing is kept as text and walked from it (else the tests above
    compare the general path with itself)."""
    monkeypatch.setattr(nftables, "FAST", True)
    text = _listing(20, 3)
    tables = nftables._read_listing_fast(text)
    assert tables is not None
    t = tables[0]
    per_service = [c for name, c in t.chains.items() if nftables.spn_from_chain(name)]
    assert len(per_service) == 20 * 4 and all(c.lazy for c in per_service)
    walked = watch_fast_walks(monkeypatch)
    rules = nftables.parse_nft(text, "dump")
    assert len(walked) == 20 and all(walked)  # the service chains; their endpoint chains inline
    assert sum(len(e.backends) for e in rules.services) == 60
    assert all(c.lazy for c in per_service)  # walked without making their rules


def _chains_of(tables: list[Any]) -> list[Any]:
    """Every chain of the tables (those kept apart made as chains), by name: name, hook, comment, count and rules."""
    out = []
    for t in tables:
        chains = dict(t.chains)
        if t.plain is not None:
            chains.update((c.name, c) for c in map(t.plain.chain, range(len(t.plain))))
        out.append(sorted((name, c.hook, c.comment, c.count(), [(r.text, r.comment, r.line) for r in c.rules])
                          for name, c in chains.items()))
    return out


@pytest.mark.parametrize("name,text", DUMPS, ids=[d[0] for d in DUMPS])
def test_chains_kept_apart_are_the_readers_chains(name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader for a whole listing's JSON (`compact`: endpoint chains of plain rules kept apart, `_Plain`)
    holds the same chains as the ordinary one, each found by its name (and no name of another chain), or it
    reads nothing (then the general reader does)."""
    monkeypatch.setattr(nftables, "FAST", True)
    if text.lstrip().startswith("{"):
        return
    full = nftables._read_listing_fast(text)
    kept = nftables._read_listing_fast(text, compact=True)
    if kept is None:
        assert full is None
        return
    assert full is not None
    assert _chains_of(kept) == _chains_of(full)
    for t in kept:
        plain = t.plain
        if plain is None:
            continue
        assert len(plain) + len(t.chains) == len(next(f for f in full if f.name == t.name and f.family == t.family).chains)
        for i in range(len(plain)):
            assert plain.find(plain.name(i)) == i
            assert plain.find(plain.name(i) + "x") == -1 and plain.find(plain.name(i)[1:]) == -1
            assert t.get(plain.name(i)) is not None and plain.name(i) not in t.chains


def test_a_generated_listing_keeps_its_endpoint_chains_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole listing's JSON keeps every endpoint chain of a generated listing out of `_Table.chains` and walks
    them from the text (else the tests above compare the ordinary reader with itself)."""
    monkeypatch.setattr(nftables, "FAST", True)
    text = _listing(20, 3)
    tables = nftables._read_listing_fast(text, compact=True)
    assert tables is not None and tables[0].plain is not None
    assert len(tables[0].plain) == 60 and not any(c.startswith("endpoint-") for c in tables[0].chains)
    walked = watch_fast_walks(monkeypatch)
    rules = nftables.parse_nft(text, "dump", as_text=True)
    walks = rules.deferred
    full = [walks.entry(e) for e in rules.services]
    assert len(walked) == 20 and all(walked)
    assert sum(len(e.backends) for e in full) == 60
    walks.finish(rules)
    general = nftables.parse_nft(text, "dump")
    assert rules.stats.to_json() == general.stats.to_json() and rules.stats.chains == 20 * 4 + 16
    assert rules.unreferenced_chains == general.unreferenced_chains == []


def _document(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """`rules -o json` of the listing as the command writes it: with `fast`, its entries walked as they are
    written (`as_text`, nftables.Walks); else the general reader's model through the ordinary writer."""
    from svcctl.render.console import Output
    from svcctl.render.rules import render_rules

    monkeypatch.setattr(nftables, "FAST", fast)
    try:
        rules = nftables.parse_nft(text, "dump", as_text=fast)
    except InputError as err:
        return f"error {err.message} {err.line}"
    assert (rules.deferred is not None) == fast
    capsys.readouterr()
    render_rules(Output(output="json"), rules)
    return capsys.readouterr().out


@pytest.mark.parametrize("name,text", DUMPS, ids=[d[0] for d in DUMPS])
def test_entries_walked_as_written_give_the_general_writers_text(name: str, text: str, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    general = _document(text, False, monkeypatch, capsys)
    walked = _document(text, True, monkeypatch, capsys)
    assert walked == general


def _with_iptables_nft_chain(text: str, escaped: bool) -> str:
    """The listing with iptables-nft's `KUBE-SERVICES` chain in a nat table beside it (in `nft -j` JSON, with the
    name's K written as a JSON escape when `escaped`)."""
    if not text.lstrip().startswith("{"):
        return text + "table ip nat {\n\tchain KUBE-SERVICES {\n\t}\n}\n"
    doc = json.loads(text)
    doc["nftables"] += [{"table": {"family": "ip", "name": "nat", "handle": 99}},
                        {"chain": {"family": "ip", "table": "nat", "name": "KUBE-SERVICES", "handle": 1}}]
    out = json.dumps(doc)
    return out.replace('"KUBE-SERVICES"', '"\\u004bUBE-SERVICES"') if escaped else out


@pytest.mark.parametrize("fixture,escaped", [("layout-a.txt", False), ("layout-b.json", False),
                                             ("layout-b.json", True)])
def test_kube_proxy_beside_iptables_nft_chains_is_told(fixture: str, escaped: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The note on stale iptables-mode chains, whether or not the text spells `KUBE-` (a JSON escape does not),
    both ways."""
    text = _with_iptables_nft_chain((ROOT / "tests" / "fixtures" / "nft" / fixture).read_text(), escaped)
    assert ("KUBE-" in text) != escaped
    for fast in (True, False):
        monkeypatch.setattr(nftables, "FAST", fast)
        notes = nftables.parse_nft(text, "dump").notes
        assert any("iptables-nft KUBE-* chains" in n for n in notes), (fast, notes)
        plain = nftables.parse_nft((ROOT / "tests" / "fixtures" / "nft" / fixture).read_text(), "dump").notes
        assert not any("iptables-nft" in n for n in plain)


def test_a_lone_closing_brace_is_found_as_the_regex_finds_it() -> None:
    """`_lone_close` (each `}`'s line stripped) says what `_FT_LONE_CLOSE.search` says, on every text of a few
    characters from braces, tabs, spaces, Unicode spaces, letters and newlines, and every span starting at a line."""
    import itertools

    alphabet = ["}", "{", " ", "\t", "\n", "a", "\xa0", "\u3000", "\x1f"]
    for size in range(5):
        for chars in itertools.product(alphabet, repeat=size):
            text = "\n" + "".join(chars)
            for start in (i + 1 for i, ch in enumerate(text) if ch == "\n"):
                for end in range(start, len(text) + 1):
                    assert nftables._lone_close(text, start, end) == (
                        nftables._FT_LONE_CLOSE.search(text, start, end) is not None), (text, start, end)

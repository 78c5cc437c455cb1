"""render/entry_json.py writes a service entry's JSON (and its backends') as the JSON writer writes
`ServiceEntry.to_json()`: on entries and backends of every shape, odd field types included, at any depth, and on
each mode's dumps and every generated iptables dump."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from svcctl.dataplane.model import Backend, ServiceEntry
from svcctl.render.entry_json import backend_text, entry_text
from svcctl.render.jsonout import Mapped, write_json

ROOT = Path(__file__).resolve().parent.parent.parent


def _writer(obj: Any) -> str:
    out: list[str] = []
    write_json(obj, out.append)
    return "".join(out)


texts = st.one_of(st.text(max_size=8), st.sampled_from(["10.244.1.2", "KUBE-SEP-ABC", "ns/svc:http", "é\"\\"]))
backends = st.builds(
    Backend, ip=st.one_of(texts, st.just(None)), port=st.one_of(st.integers(0, 70000), st.just(True)),
    probability=st.one_of(st.none(), st.fractions(min_value=0, max_value=1, max_denominator=1000),
                          st.just(Fraction(1))),
    chain=st.one_of(st.just(""), texts), weight=st.one_of(st.none(), st.integers(-3, 300)),
    active_conns=st.one_of(st.none(), st.integers(0, 9)), inactive_conns=st.one_of(st.none(), st.integers(0, 9)),
    local=st.one_of(st.none(), st.booleans()), draining=st.one_of(st.booleans(), st.just(0)),
    connections=st.one_of(st.none(), st.integers(0, 10**12)), state=st.sampled_from(["", "terminating", "é"]),
    node=st.one_of(st.just(""), texts))
words = st.lists(st.one_of(texts, st.integers(0, 3)), max_size=3)
entries = st.builds(
    ServiceEntry, name=st.one_of(st.none(), texts), protocol=st.one_of(texts, st.just(6)),
    address=texts, port=st.one_of(st.integers(0, 70000), st.just(False)), kind=texts,
    backends=st.lists(backends, max_size=3), no_endpoints=st.one_of(st.booleans(), st.just(1)),
    no_local_endpoints=st.booleans(), affinity_seconds=st.one_of(st.none(), st.integers(0, 99999), st.just("x")),
    scheduler=st.one_of(st.none(), st.just(""), texts), path=words, masquerade=words,
    source_ranges=st.one_of(words, st.just(("a",))), notes=words, policy_local=st.booleans(),
    kind_known=st.booleans(), scope=st.one_of(st.just(""), texts), flags=words,
    revnat=st.one_of(st.none(), st.integers(0, 9)), glue=words)


@settings(max_examples=400, deadline=None)
@given(st.lists(entries, max_size=3), st.integers(0, 3))
def test_an_entrys_text_is_the_writers_text_of_its_dict(es: list[ServiceEntry], depth: int) -> None:
    doc: Any = {"services": [e.to_json() for e in es]}
    lazy: Any = {"services": Mapped(es, entry_text, text=True)}
    for _ in range(depth):
        doc, lazy = {"x": [doc]}, {"x": [lazy]}
    assert _writer(lazy) == json.dumps(doc, indent=2, default=str)


@settings(max_examples=300, deadline=None)
@given(backends, st.sampled_from(["\n", "\n    ", "\n        "]))
def test_a_backends_text_is_its_own_json_text(b: Backend, nl: str) -> None:
    assert backend_text(b, nl) == b.json_text(nl)


def test_every_generated_iptables_dump_streams_the_documents_text() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "dataplane"))
    from test_iptables_fast import DUMPS

    from svcctl.dataplane import iptables
    from svcctl.errors import InputError
    from svcctl.render.rules import rules_document, streamed_document

    n = 0
    for name, text in DUMPS:
        try:
            rules = iptables.parse_iptables_save(text, "dump")
        except InputError:
            continue
        n += bool(rules.services)
        assert _writer(streamed_document(rules)) == json.dumps(rules_document(rules), indent=2, default=str), name
    assert n > 20


ints = st.one_of(st.sampled_from([0, 1, 80, 8080]), st.integers(-3, 70000), st.just(True))
ipvs_backends = st.builds(
    Backend, ip=st.one_of(texts, st.just(None)), port=ints,
    probability=st.one_of(st.none(), st.sampled_from([Fraction(1, 10), Fraction(0), Fraction(1, 3)]),
                          st.fractions(min_value=0, max_value=1, max_denominator=50)),
    chain=st.sampled_from(["", "", "", "KUBE-SEP-X"]), weight=st.one_of(ints, st.none()),
    active_conns=st.one_of(ints, st.none()), inactive_conns=st.one_of(ints, st.none()),
    local=st.sampled_from([None, None, True]), draining=st.sampled_from([False, True, 0]),
    connections=st.sampled_from([None, None, 3]), state=st.sampled_from(["", "", "terminating"]),
    node=st.sampled_from(["", "", "n1"]))


FIELDS = ("port", "probability", "weight", "active_conns", "inactive_conns", "draining", "chain", "node", "state",
          "local", "connections", "ip")


@settings(max_examples=400, deadline=None)
@given(ipvs_backends, st.lists(ipvs_backends, max_size=3), st.sampled_from(["\n", "\n    ", "\n        "]))
def test_ipvs_real_servers_texts_are_their_own_json_texts(base: Backend, others: list[Backend], nl: str) -> None:
    """IPVS real servers (a weight, counters, no chain) are written from a text of the fields after the address,
    reused while the fields are the same objects: runs of one backend, each broken by one field of another."""
    from dataclasses import replace

    from svcctl.render.entry_json import _backends_text

    bs = [base, replace(base, ip="10.0.0.1")]
    for o in others:
        for f in FIELDS:
            bs += [replace(base, **{f: getattr(o, f)}), replace(base, ip="10.0.0.2")]
    assert _backends_text(bs, nl) == [b.json_text(nl) for b in bs]


def test_every_ipvs_dump_streams_the_documents_text(monkeypatch: Any) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "dataplane"))
    from test_ipvs_fast import DUMPS

    from svcctl.dataplane import ipvs
    from svcctl.errors import InputError
    from svcctl.render.rules import rules_document, streamed_document

    n = 0
    for fast in (True, False):
        monkeypatch.setattr(ipvs, "FAST", fast)
        for name, text in DUMPS:
            try:
                rules = ipvs.parse_ipvsadm(text, "dump")
            except InputError:
                continue
            n += bool(rules.services)
            assert _writer(streamed_document(rules)) == json.dumps(rules_document(rules), indent=2, default=str), name
    assert n > 20


class _Str(str):
    pass


list_items = st.one_of(texts, st.sampled_from(["\x1f", "a\\u001fb", "\\", "\\u001f", "x\x1fy", "\n\t", "é"]),
                       st.builds(_Str, texts), st.integers(0, 3), st.none())


@settings(max_examples=500, deadline=None)
@given(st.lists(list_items, min_size=1, max_size=8), st.sampled_from(["\n", "\n    ", "\n      "]))
def test_a_string_lists_text_is_the_writers(items: list[Any], nl: str) -> None:
    """Lists of strings (paths, masquerade phrases, notes) are encoded in one call and split at the separator's
    escape: items holding the separator, its escape's text, a backslash, a str subclass or no string at all."""
    from svcctl.render.entry_json import _str_list

    text = _str_list(items, nl)
    out: list[str] = []
    write_json(items, out.append, nl)
    assert text is None or text == "".join(out)
    if all(s.__class__ is str for s in items):
        assert text == "".join(out)


class _Word(str):
    pass


def test_masquerade_words_written_once_are_the_writers_text_everywhere() -> None:
    """An entry's masquerade list is cached by its words (the same one or two in every entry of a dump): the same
    words at other depths, words that are equal but of another class, and items that cannot be keys still give
    the writer's text."""
    words = ["traffic not from 10.244.0.0/16 is masqueraded", "hairpin traffic is masqueraded"]
    odd: list[Any] = [words, [_Word(words[0]), words[1]], [1, True], [True, 1], [["x"]], [{"a": 1}], words[:1]]
    es = [ServiceEntry("a/b:c", "TCP", "10.96.0.1", 80, masquerade=list(m)) for m in odd for _ in range(2)]
    for depth in range(3):
        doc: Any = {"services": [e.to_json() for e in es]}
        lazy: Any = {"services": Mapped(es, entry_text, text=True)}
        for _ in range(depth):
            doc, lazy = {"x": [doc]}, {"x": [lazy]}
        assert _writer(lazy) == json.dumps(doc, indent=2, default=str)

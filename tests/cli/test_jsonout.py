"""The fast indented JSON writer prints exactly what `json.dumps(obj, indent=2, default=str)` prints."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from svcctl.render.jsonout import write_json


def fast(obj: Any) -> str:
    parts: list[str] = []
    write_json(obj, parts.append)
    return "".join(parts)


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(), st.just(Fraction(1, 3)), st.just(Color.RED), st.just(Level.HIGH))
keys = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
docs = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5), st.tuples(inner, inner),
                                                     st.dictionaries(keys, inner, max_size=5)), max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(docs)
def test_same_text_as_the_standard_library(doc: Any) -> None:
    assert fast(doc) == json.dumps(doc, indent=2, default=str)


def test_containers_and_nesting() -> None:
    doc = {"a": [], "b": {}, "c": [[], {}, [1, [2, {"x": None}]]], "d": OrderedDict([("k", "ü\n\"")]),
           "e": (1.5, -0.0, 1e300), 3: True}
    assert fast(doc) == json.dumps(doc, indent=2, default=str)
    assert fast([]) == "[]" and fast({}) == "{}" and fast("x") == '"x"' and fast(None) == "null"


def test_a_big_list_comes_in_batches() -> None:
    doc = {"items": [{"ip": f"10.0.{i // 256}.{i % 256}", "port": i} for i in range(20000)]}
    parts: list[str] = []
    write_json(doc, parts.append)
    assert len(parts) > 1
    assert "".join(parts) == json.dumps(doc, indent=2)


# ------------------------------------------------------------------ the rules document, streamed

from svcctl.dataplane.model import Backend  # noqa: E402

backends = st.builds(
    Backend, ip=st.one_of(st.text(max_size=12), st.just("10.244.1.2"), st.just("2001:db8::1")),
    port=st.one_of(st.integers(0, 70000), st.just(True)),
    probability=st.one_of(st.none(), st.fractions(min_value=0, max_value=1, max_denominator=1000)),
    chain=st.one_of(st.just(""), st.text(max_size=8)), weight=st.one_of(st.none(), st.integers(-3, 300)),
    active_conns=st.one_of(st.none(), st.integers(0, 9)), inactive_conns=st.one_of(st.none(), st.integers(0, 9)),
    local=st.one_of(st.none(), st.booleans()), draining=st.booleans(),
    connections=st.one_of(st.none(), st.integers(0, 10**12)), state=st.sampled_from(["", "terminating", "é"]),
    node=st.one_of(st.just(""), st.text(max_size=5)))


@settings(max_examples=300, deadline=None)
@given(st.lists(backends, max_size=4), st.integers(0, 3))
def test_a_backends_text_is_the_writers_text_of_its_dict(bs: list[Backend], depth: int) -> None:
    from svcctl.render.jsonout import Mapped

    doc = {"services": [{"backends": [b.to_json() for b in bs]}]}
    for _ in range(depth):
        doc = {"x": [doc]}
    lazy: Any = {"services": Mapped([bs], lambda b_list: {"backends": Mapped(b_list, Backend.json_text, text=True)})}
    for _ in range(depth):
        lazy = {"x": [lazy]}
    assert fast(lazy) == json.dumps(doc, indent=2, default=str)


def _rules_of_each_mode() -> list[tuple[str, Any]]:
    from pathlib import Path

    from svcctl.dataplane import load_node_rules
    from svcctl.dataplane.dumps import NodeDumps

    root = Path(__file__).resolve().parent.parent.parent
    demo = root / "svcctl/data/demo/nodes/kind-worker"
    out = []
    for key, path in [("iptables", demo / "iptables-save.txt"), ("ipvs", demo / "ipvsadm.txt"),
                      ("nftables", demo / "nft.txt"), ("ipvs", root / "tests/fixtures/ipvs/full.txt")]:
        if path.exists():
            dumps = NodeDumps(node="n", texts={key: path.read_text()}, origins={key: str(path)})
            out.append((f"{key}:{path.name}", load_node_rules(dumps)))
    return out


def test_the_streamed_rules_document_is_the_documents_text() -> None:
    from svcctl.render.rules import rules_document, streamed_document

    cases = _rules_of_each_mode()
    assert len(cases) >= 3, [c[0] for c in cases]
    for name, rules in cases:
        assert rules.services, name
        assert fast(streamed_document(rules)) == json.dumps(rules_document(rules), indent=2, default=str), name

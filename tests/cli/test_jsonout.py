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

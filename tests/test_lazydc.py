"""svcctl.lazydc.dataclass: the stdlib's dataclasses, their generated methods made on first use.

Each class shape is declared twice, once with each decorator, and every behaviour the project (or a user of its
model) can see is compared: construction, defaults and factories, repr, ==, hashing, frozen assignment, slots,
__post_init__, inheritance, dataclasses.fields / replace / asdict, pattern matching, copy and pickle."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from svcctl import lazydc

ROOT = Path(__file__).resolve().parent.parent


def _shapes(dc: Any) -> dict[str, Any]:
    field = dataclasses.field

    @dc(slots=True)
    class Meta:
        """A slotted class with a factory, an init=False field with a default (set by a slotted __init__)."""

        name: str
        labels: dict[str, str] = field(default_factory=dict)
        ns: str = "default"
        key_: str | None = field(default=None, init=False, repr=False, compare=False)

    @dc(frozen=True)
    class Key:
        a: int
        b: tuple[int, ...] = ()

    @dc
    class Post:
        a: int
        b: int = 0
        hidden: list[int] = field(default_factory=list, repr=False)

        def __post_init__(self) -> None:
            self.b = self.a * 2

    @dc
    class Child(Post):
        c: str = "c"

    @dc(slots=True)
    class Empty:
        pass

    @dc
    class OwnEq:
        a: int

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = object.__hash__

    return {"Meta": Meta, "Key": Key, "Post": Post, "Child": Child, "Empty": Empty, "OwnEq": OwnEq}


STD, LAZY = _shapes(dataclasses.dataclass), _shapes(lazydc.dataclass)

CASES = [
    ("Meta", ("svc",), {}), ("Meta", ("svc", {"app": "x"}, "ns1"), {}), ("Key", (1,), {}), ("Key", (1, (2, 3)), {}),
    ("Post", (3,), {}), ("Post", (), {"a": 1, "hidden": [9]}), ("Child", (2,), {"c": "x"}), ("Empty", (), {}),
    ("OwnEq", (5,), {}),
]


def _pair(name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> tuple[Any, Any]:
    return STD[name](*args, **kw), LAZY[name](*args, **kw)


@pytest.mark.parametrize("name, args, kw", CASES)
def test_instances_behave_as_the_stdlibs(name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    s, lz = _pair(name, args, kw)
    assert repr(lz) == repr(s)
    assert (lz == LAZY[name](*args, **kw)) == (s == STD[name](*args, **kw))
    assert (lz == object()) == (s == object())
    assert [f.name for f in dataclasses.fields(lz)] == [f.name for f in dataclasses.fields(s)]
    assert dataclasses.asdict(lz) == dataclasses.asdict(s)
    assert type(lz).__match_args__ == type(s).__match_args__
    assert hasattr(lz, "__dict__") == hasattr(s, "__dict__")
    assert getattr(type(lz), "__slots__", None) == getattr(type(s), "__slots__", None)
    assert repr(copy.deepcopy(lz)) == repr(lz)
    std_hashable, lazy_hashable = type(s).__hash__ is not None, type(lz).__hash__ is not None
    assert lazy_hashable == std_hashable
    if std_hashable and name == "Key":
        assert hash(lz) == hash(s) and {lz: 1}[LAZY[name](*args, **kw)] == 1


def test_frozen_and_slots_are_enforced_as_the_stdlibs() -> None:
    k = LAZY["Key"](1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.a = 2
    m = LAZY["Meta"]("x")
    assert m.key_ is None  # set by the slotted __init__, as the stdlib's
    with pytest.raises(AttributeError):
        m.other = 1


def test_replace_inheritance_and_post_init() -> None:
    p = LAZY["Post"](3)
    assert (p.a, p.b) == (3, 6)
    assert dataclasses.replace(p, a=4).b == 8
    c = LAZY["Child"](1, c="z")
    assert repr(c) == repr(STD["Child"](1, c="z")) and isinstance(c, LAZY["Post"])
    child = LAZY["Child"]
    match c:
        case child(a, b, _, cc):
            assert (a, b, cc) == (1, 2, "z")
        case _:
            raise AssertionError("no match")


def test_pickle_round_trip_of_a_module_level_model_class() -> None:
    from svcctl.model import ObjectMeta, ServicePort

    meta = ObjectMeta("web", "ns1", labels={"a": "b"})
    assert meta.key == "ns1/web"
    back = pickle.loads(pickle.dumps(meta))
    assert back == ObjectMeta("web", "ns1", labels={"a": "b"}) and back.key == "ns1/web"
    assert ServicePort(80) == ServicePort(80, "TCP") and ServicePort(80) != ServicePort(81)


def test_a_class_with_its_own_eq_keeps_it() -> None:
    assert LAZY["OwnEq"](1) == LAZY["OwnEq"](2)


def test_nothing_is_compiled_until_used() -> None:
    """The point: declaring a class compiles no generated method (a frozen one its __setattr__ and __delattr__,
    which make it frozen); the first instance compiles its __init__ only, the first repr its __repr__, the first
    == its __eq__ (an audit hook counts `compile` of generated source)."""
    probe = r"""
import sys
events = []
sys.addaudithook(lambda e, a: events.append(a[1]) if e == "compile" and a[1] == "<string>" else None)
from svcctl.lazydc import dataclass, field
def count(f):
    n = len(events); f(); return len(events) - n
out = {}
def declare():
    global A, B
    @dataclass(slots=True)
    class A:
        x: int
        y: list[int] = field(default_factory=list)
    out["A declared"] = len(events)
    @dataclass(frozen=True)
    class B:
        x: int
n = len(events)
declare()
out["A declared"] -= n
out["B declared"] = len(events) - n - out["A declared"]
a = A(1)
out["A built"] = count(lambda: A(2))
out["A(1) built"] = len(events) - n - out["A declared"] - out["B declared"]
out["repr"] = count(lambda: repr(a))
out["eq"] = count(lambda: A(2) == a)
out["again"] = count(lambda: (A(3), repr(a), a == a))
print(" ".join(f"{v}" for v in out.values()))
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    a_declared, b_declared, a_built_again, a_built, on_repr, on_eq, again = map(int, proc.stdout.split())
    assert (a_declared, b_declared) == (0, 2)
    assert (a_built, a_built_again) == (1, 0)  # A's __init__, once
    assert (on_repr, on_eq, again) == (1, 1, 0)

"""`dataclass` with its generated methods made on first use: the same classes, a fraction of the import cost.

The stdlib's `dataclass` writes `__init__`, `__repr__` and `__eq__` (and a frozen class's `__hash__`) as source
text and compiles each when the class is created: ≈ 1 ms a class on this project's machine, in every process,
whether or not the class is ever instantiated. A one-Service trace from a file created 53 dataclasses and
instantiated 19 (the API model's 15 classes none of them); a completion created 26 and used 8.

Here the class is made a dataclass at once (fields, `__match_args__`, slots, frozen's `__setattr__`: everything
`dataclasses.fields`, `replace`, `asdict` and pattern matching read) but without those methods; each is a stub
that, on its first call, has the stdlib generate the real one (on a throwaway copy of the class body, so the code
is exactly the stdlib's), puts it on the class, and hands the call over. From then on the class holds the
stdlib's own method: instances are built, compared and printed as fast as before.

Unlike the stdlib's, a class without a docstring keeps none (the stdlib writes its signature there).
Classes the shortcut does not cover (their own `__init__`, `__repr__`, `__eq__` or `__hash__`, a metaclass, a
base with `__init_subclass__`) are handed to the stdlib's `dataclass` as they are.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda f: f

__all__ = ["dataclass", "field"]

field = dataclasses.field
T = TypeVar("T")

_OWN = ("__init__", "__repr__", "__eq__", "__hash__")


@overload
def dataclass(cls: type[T], /) -> type[T]: ...


@overload
def dataclass(*, frozen: bool = False, slots: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def dataclass(cls: type[T] | None = None, /, *, frozen: bool = False,
              slots: bool = False) -> type[T] | Callable[[type[T]], type[T]]:
    """`dataclasses.dataclass(cls, frozen=..., slots=...)` (eq and repr on, as its defaults), its methods lazy."""

    def wrap(c: type[T]) -> type[T]:
        return _lazy(c, frozen, slots)

    return wrap if cls is None else wrap(cls)


def _plain(cls: type[Any]) -> bool:
    own = cls.__dict__
    if type(cls) is not type or any(name in own for name in _OWN[:3]):
        return False
    if own.get("__hash__", dataclasses.MISSING) not in (dataclasses.MISSING, None):
        return False  # an explicit __hash__
    return all(b.__init_subclass__ == object.__init_subclass__ for b in cls.__mro__[1:])


def _lazy(cls: type[T], frozen: bool, slots: bool) -> type[T]:
    if not _plain(cls):
        return dataclasses.dataclass(cls, frozen=frozen, slots=slots)
    body = {k: copy.copy(v) if isinstance(v, dataclasses.Field) else v
            for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    body["__qualname__"] = cls.__qualname__
    body["__doc__"] = "-"  # (the copy is thrown away: spare the stdlib wording a docstring for it)
    undocumented = not cls.__doc__
    if undocumented:  # else the stdlib words one from the signature, here object's: a slow path through ast
        cls.__doc__ = "-"
    real = dataclasses.dataclass(cls, init=False, repr=False, eq=False, frozen=frozen, slots=slots)
    if undocumented:
        real.__doc__ = None
    made: dict[tuple[str, ...], type[Any]] = {}
    # a slotted class's __init__ also sets its init=False fields that have a default (a plain class reads the
    # class attribute): only then is the copy made slotted too (its slots cost a second class)
    slotted_defaults = slots and any(not f.init and f.default is not dataclasses.MISSING
                                     for f in dataclasses.fields(real))  # type: ignore[arg-type]

    def twin(names: tuple[str, ...]) -> type[Any]:
        """The stdlib's dataclass of the same body, with only `names` generated."""
        if names not in made:
            t = type(cls.__name__, cls.__bases__, {k: copy.copy(v) if isinstance(v, dataclasses.Field) else v
                                                   for k, v in body.items()})
            init = "__init__" in names
            made[names] = dataclasses.dataclass(t, init=init, repr="__repr__" in names, eq="__eq__" in names,
                                                frozen=frozen, slots=init and slotted_defaults)
        return made[names]

    def install(names: tuple[str, ...]) -> None:
        # (two threads may both get here: each puts an equal method on the class, the later one stays)
        t = twin(names)
        for n in names:
            setattr(real, n, t.__dict__[n])

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        install(("__init__",))
        real.__init__(self, *args, **kwargs)

    def __repr__(self: Any) -> str:
        install(("__repr__",))
        return real.__repr__(self)

    def __eq__(self: Any, other: object) -> bool:
        install(("__eq__", "__hash__") if frozen else ("__eq__",))
        return real.__eq__(self, other)

    def __hash__(self: Any) -> int:
        install(("__eq__", "__hash__"))
        return real.__hash__(self)

    stubs: dict[str, Any] = {"__init__": __init__, "__repr__": __repr__, "__eq__": __eq__}
    if frozen:
        stubs["__hash__"] = __hash__
    for name, fn in stubs.items():
        fn.__qualname__ = f"{real.__qualname__}.{name}"
        setattr(real, name, fn)
    if not frozen:
        real.__hash__ = None  # type: ignore[assignment]  # as the stdlib's: eq without frozen is unhashable
    return real

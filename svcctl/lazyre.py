"""Regular expressions compiled on first use, not at import.

`re.compile` is paid in every process that imports a module, used or not: the nftables reader's ≈ 50 patterns
alone were ≈ 15 ms of every start, though a one-Service read matches a handful of them (and `--version` none).
A `LazyPattern` keeps the source and flags; the first attribute asked for compiles it and stores the compiled
pattern's methods on the instance, so every later `p.match` (or a `match = p.match` hoisted before a loop) is the
compiled pattern's own bound method, with no wrapper call in between.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, AnyStr, Generic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["LazyPattern"]

# what a LazyPattern forwards: the compiled pattern's matching methods and attributes (all of them, once compiled)
_FORWARD = ("match", "fullmatch", "search", "finditer", "findall", "sub", "subn", "split", "groups", "groupindex",
            "flags", "scanner")


class LazyPattern(Generic[AnyStr]):
    """`re.compile(pattern, flags)` on the first use of any pattern method; `.pattern` never compiles."""

    def __init__(self, pattern: AnyStr, flags: int = 0) -> None:
        self.pattern: AnyStr = pattern
        self._flags = flags

    def compiled(self) -> re.Pattern[AnyStr]:
        """The compiled pattern (compiling it now if nothing used it yet)."""
        c = re.compile(self.pattern, self._flags)
        d = self.__dict__
        for name in _FORWARD:
            d[name] = getattr(c, name)
        return c

    def __getattr__(self, name: str) -> Any:
        # only for attributes the instance lacks: before the first use, every forwarded name
        if name not in _FORWARD:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.compiled(), name)

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r}{f', {self._flags}' if self._flags else ''})"

    if TYPE_CHECKING:  # served by __getattr__ (then the instance's own attributes): typed as re.Pattern's
        flags: int
        groups: int
        groupindex: dict[str, int]

        def match(self, string: AnyStr, pos: int = ..., endpos: int = ...) -> re.Match[AnyStr] | None: ...

        def fullmatch(self, string: AnyStr, pos: int = ..., endpos: int = ...) -> re.Match[AnyStr] | None: ...

        def search(self, string: AnyStr, pos: int = ..., endpos: int = ...) -> re.Match[AnyStr] | None: ...

        def finditer(self, string: AnyStr, pos: int = ..., endpos: int = ...) -> Iterator[re.Match[AnyStr]]: ...

        def findall(self, string: AnyStr, pos: int = ..., endpos: int = ...) -> list[Any]: ...

        def sub(self, repl: AnyStr | Callable[[re.Match[AnyStr]], AnyStr], string: AnyStr,
                count: int = ...) -> AnyStr: ...

        def subn(self, repl: AnyStr | Callable[[re.Match[AnyStr]], AnyStr], string: AnyStr,
                 count: int = ...) -> tuple[AnyStr, int]: ...

        def split(self, string: AnyStr, maxsplit: int = ...) -> list[AnyStr | Any]: ...

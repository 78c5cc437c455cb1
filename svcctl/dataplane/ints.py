"""Numbers read from a whole dump's text: 100,000 backends on a few ports and weights."""

from __future__ import annotations


class Ints(dict[str, int]):
    """int(text), one object for each number's text: a dict lookup, and `int` only for a text not seen before.
    Bounded: past 65,536 distinct texts it starts over."""

    def __missing__(self, key: str) -> int:
        if len(self) > 65536:
            self.clear()
        v = self[key] = int(key)
        return v

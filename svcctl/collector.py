"""The cyclic garbage collector paused while many long-lived, cycle-free objects are made (a whole dump's parse,
check -A's lists): its full passes over them found nothing and were a quarter of a parse's time. One place for it,
at the bottom of the layers, so the dataplane, the sources and the commands pause it the same way."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector off inside the block, and back as it was after it (also on an error): a block entered with
    it already off leaves it off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()

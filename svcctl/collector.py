"""The cyclic garbage collector paused while many long-lived, cycle-free objects are made (a whole dump's parse,
check -A's lists): its full passes over them found nothing and were a quarter of a parse's time. One place for it,
at the bottom of the layers, so the dataplane, the sources and the commands pause it the same way."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from typing import NoReturn


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


# what the process holds to its end, for the OS to reclaim at once (`leave`), and whether the entry point ends it
# right after the command (`end`): only then is anything kept, so in-process callers (the tests) free as usual
_LEFT: list[object] = []
ENDS_AFTER = False


def leave(obj: object) -> None:
    """Keep `obj` (a whole dump's model: 500,000 backends at 50,000 Services) to the end of the process instead of
    freeing it object by object as the command returns (0.5 s of a 12 s `rules`); `end` then skips the
    interpreter's teardown, which would free it the same way."""
    if ENDS_AFTER:
        _LEFT.append(obj)
        gc.freeze()  # (made with the collector paused, they are all still young: no collection walks them now)


def end(code: int) -> NoReturn:
    """The entry point's exit: with something left (`leave`), the atexit hooks run (a kubeconfig's temporary
    credentials removed), the output flushed and the process ended without the interpreter's teardown
    (`os._exit`: no object freed one by one); otherwise `sys.exit`."""
    if _LEFT and sys.getprofile() is None and sys.gettrace() is None:  # (a profiler, coverage: their teardown)
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BrokenPipeError:  # a closed pipe (`| head`) is not an error of ours (as run() says)
                pass
            except ValueError:  # closed: nothing left to write
                pass
            except OSError:  # (a full disk) as the interpreter's own exit says it
                code = code or 120
        os._exit(code)
    sys.exit(code)

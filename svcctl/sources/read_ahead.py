"""The next list page read while this one is used: `check -A` builds 100,000 Pods from 200 pages, and each page's
request waited for the API server (it encodes and sends the page) while svcctl did nothing. Here one thread
fetches and decodes page n+1 while the caller builds the objects of page n: the server's time and the transfer
overlap svcctl's own work (on two CPUs). The pages, their order and their requests are the same; an error of the
reader (a refusal, a lost connection) is raised where the caller would have met it, after the pages before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(pages: Iterator[T], depth: int = 1) -> Iterator[T]:
    """`pages`, each fetched by a reader thread while the one before it is used (at most `depth` waiting).

    The source must not be read from the caller's thread meanwhile (the caller only builds objects); when the
    caller stops early, the reader stops at its next page."""
    q: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for page in pages:
                if not put((page, None)):
                    return
            put((_END, None))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
            put((_END, e))

    reader = threading.Thread(target=run, name="svcctl-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item, err = q.get()
            if item is _END:
                if err is not None:
                    raise err
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join()
        close = getattr(pages, "close", None)
        if callable(close) and not reader.is_alive():
            close()

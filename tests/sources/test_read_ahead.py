"""read_ahead: the pages of a list fetched one ahead by a thread, in order, errors where they happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from svcctl.errors import ForbiddenError
from svcctl.sources.read_ahead import read_ahead


def test_same_pages_in_order_read_by_another_thread() -> None:
    readers: set[str] = set()

    def pages() -> Iterator[list[int]]:
        for i in range(50):
            readers.add(threading.current_thread().name)
            yield [i, i + 1]

    assert list(read_ahead(pages())) == [[i, i + 1] for i in range(50)]
    assert readers == {"svcctl-read-ahead"}


def test_an_error_comes_after_the_pages_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ForbiddenError("forbidden: pods", resource="pods")

    got: list[int] = []
    with pytest.raises(ForbiddenError, match="forbidden: pods"):
        for p in read_ahead(pages()):
            got.append(p)
    assert got == [1, 2]


def test_stopping_early_stops_the_reader() -> None:
    fetched: list[int] = []
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            for i in range(1000):
                fetched.append(i)
                yield i
        finally:
            closed.set()

    it = read_ahead(pages())
    assert next(it) == 0
    it.close()  # the caller gave up (an error of its own)
    assert closed.is_set()
    assert len(fetched) <= 3  # the page in hand, the one waiting, and at most the one being fetched
    assert not any(t.name == "svcctl-read-ahead" for t in threading.enumerate())

"""page_reader: a list's next page asked for while this one is used — the same requests and tokens, in order, the
token read from the page's head checked against the decoded page, errors where they happened."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from apiserver import FakeAPIServer
from gen_cluster import gen_cluster

from svcctl.errors import ClusterError, ForbiddenError
from svcctl.sources.kubeconfig import resolve
from svcctl.sources.live import LiveSource
from svcctl.sources.page_reader import UNKNOWN, PageReader, head_continue

Factory = Callable[..., FakeAPIServer]


def _page(token: str | None, items: list[Any], *, meta_last: bool = False, indent: int | None = None) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": "7"}
    if token is not None:
        meta["continue"] = token
    body = ({"kind": "PodList", "apiVersion": "v1", "items": items, "metadata": meta} if meta_last
            else {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items})
    return json.dumps(body, indent=indent).encode()


@pytest.mark.parametrize(("data", "want"), [
    (_page("abc", [{"a": 1}]), "abc"),
    (_page("abc", [{"a": 1}], indent=2), "abc"),  # pretty-printed
    (_page(None, [{"a": 1}]), None),  # the last page
    (_page("", [{"a": 1}]), None),  # an empty token reads as the last page, as the decoded page does
    (_page("abc", [{"a": 1}], meta_last=True), UNKNOWN),  # the items first: the head cannot say
    (b'{"metadata":{"continue":5},"items":[]}', UNKNOWN),  # not a string: the caller decides
    (b'{"metadata":[],"items":[]}', UNKNOWN),
    (b"<html>not the API</html>", UNKNOWN),
    (b"", UNKNOWN),
    (b'{"kind":"PodList","metadata":{"continue":"abc"', UNKNOWN),  # cut short
    (b'{"kind":"' + b"x" * 9000 + b'","metadata":{"continue":"abc"},"items":[]}', UNKNOWN),  # past the head
    ('{"kind":"Pöd","metadata":{"continue":"tök"},"items":[]}'.encode(), "tök"),
])
def test_head_continue(data: bytes, want: object) -> None:
    assert head_continue(data) == want


def _serve(bodies: dict[str, bytes]) -> tuple[Callable[[str], bytes], list[str]]:
    asked: list[str] = []

    def fetch(token: str) -> bytes:
        asked.append(token)
        return bodies[token]

    return fetch, asked


def _drain(reader: PageReader) -> list[Any]:
    """What a caller does: take a page, decode it, say its token."""
    out = []
    while True:
        data, early = reader.next()
        body = json.loads(data)
        token = (body.get("metadata") or {}).get("continue") or None
        reader.told(early, token)
        out += body["items"]
        if not token:
            return out


@pytest.mark.parametrize("meta_last", [False, True])
def test_reader_asks_for_each_page_once_in_order(meta_last: bool) -> None:
    tokens = ["t1", "t2", "t3"]
    bodies = {t: _page(tokens[i + 1] if i + 1 < len(tokens) else None, [i], meta_last=meta_last)
              for i, t in enumerate(tokens)}
    fetch, asked = _serve(bodies)
    reader = PageReader(fetch, "t1")
    assert _drain(reader) == [0, 1, 2]
    reader.stop()
    assert asked == tokens


def test_a_head_that_disagrees_with_its_page_is_an_error() -> None:
    # the head's metadata says t9, the page decoded (the last "metadata" wins in JSON) says t2
    odd = b'{"metadata":{"continue":"t9"},"items":[1],"metadata":{"continue":"t2"}}'
    fetch, asked = _serve({"t1": odd, "t9": _page(None, [])})
    reader = PageReader(fetch, "t1")
    with pytest.raises(ClusterError, match="different continue token"):
        _drain(reader)


def test_an_error_reaches_the_caller_after_the_pages_before_it() -> None:
    def fetch(token: str) -> bytes:
        if token == "t2":
            raise ForbiddenError("forbidden: pods", resource="pods")
        return _page("t2", ["a"])

    reader = PageReader(fetch, "t1")
    data, early = reader.next()
    assert json.loads(data)["items"] == ["a"]
    reader.told(early, "t2")
    with pytest.raises(ForbiddenError):
        reader.next()
    reader.stop()


def test_stop_ends_the_reader_thread() -> None:
    n = iter(range(10**6))
    reader = PageReader(lambda token: _page(f"t{next(n)}", []), "t0")
    reader.next()  # one taken; the reader waits to hand over the next
    reader.stop()
    assert not any(t.name == "svcctl-page-reader" for t in threading.enumerate())


def test_stopping_early_does_not_wait_for_a_slow_request() -> None:
    """Ctrl-C, or a caller that stops, while the next page is slow to come: the caller goes on at once."""
    release = threading.Event()

    def fetch(token: str) -> bytes:
        if token == "t2":
            release.wait(10)  # a request in flight that takes long
        return _page("t2", [])

    reader = PageReader(fetch, "t1")
    reader.next()
    reader.told("t2", "t2")
    started = time.monotonic()
    reader.stop(wait=False)
    assert time.monotonic() - started < 1
    release.set()
    assert _reader_ends()


def _reader_ends() -> bool:
    """The reader's thread gone within a few seconds (it ends after its request in flight)."""
    deadline = time.monotonic() + 5
    while any(t.name == "svcctl-page-reader" for t in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _requests(srv: FakeAPIServer) -> list[tuple[str, str]]:
    return [(r.path, json.dumps(sorted(r.query.items()))) for r in srv.requests]


def test_live_pages_are_the_same_requests_with_and_without_reading_ahead(apiserver: Factory) -> None:
    objs = gen_cluster(20, pods_per_service=5, nodes=3)
    srv = apiserver(objs)
    seen = {}
    for ahead in (False, True):
        src = LiveSource(resolve(str(srv.kubeconfig)))
        src.page_size = 7
        src.read_ahead = ahead
        srv.reset_counters()
        srv.requests.clear()
        threads: list[str] = []
        fetch = src._fetch

        def record(*a: Any, _fetch: Any = fetch, _threads: list[str] = threads, **k: Any) -> bytes:
            _threads.append(threading.current_thread().name)
            return bytes(_fetch(*a, **k))

        src._fetch = record  # type: ignore[method-assign]
        pages = list(src.iter_pod_pages(None))
        seen[ahead] = ([[i["metadata"]["name"] for i in p] for p in pages], _requests(srv), src.requests)
        # the first page from the caller's thread; with the reader, every later one from its thread
        assert threads[0] == threading.main_thread().name
        assert set(threads[1:]) == ({"svcctl-page-reader"} if ahead else {threading.main_thread().name})
    assert seen[True] == seen[False]
    names, reqs, count = seen[True]
    pods = sum(1 for o in objs if o.get("kind") == "Pod")
    assert len(names) == len(reqs) == count == -(-pods // 7) > 10  # in pages of 7
    assert sum(len(p) for p in names) == pods


def test_live_refusal_mid_list_raises_after_the_pages_before_it(apiserver: Factory) -> None:
    srv = apiserver(gen_cluster(20, pods_per_service=5, nodes=3))
    src = LiveSource(resolve(str(srv.kubeconfig)))
    src.page_size = 10
    srv.set_fault("pods", status=403, only_continue=True)
    got = []
    with pytest.raises(ForbiddenError):
        for page in src.iter_pod_pages(None):
            got.append(page)
    assert len(got) == 1 and len(got[0]) == 10
    assert _reader_ends()


def test_live_caller_stopping_early_stops_the_reader(apiserver: Factory) -> None:
    srv = apiserver(gen_cluster(20, pods_per_service=5, nodes=3))
    src = LiveSource(resolve(str(srv.kubeconfig)))
    src.page_size = 10
    pages = src.iter_pod_pages(None)
    next(pages)
    pages.close()  # type: ignore[attr-defined]  # a generator
    assert _reader_ends()
    assert len([r for r in srv.requests if r.path.endswith("/pods")]) <= 2  # the first, and at most one ahead


def test_live_retries_and_timeouts_in_the_reader_thread(apiserver: Factory) -> None:
    """429/503 on a later page are retried by the reader as the caller's thread would; a later page slower than
    --request-timeout is the caller's timeout error, after the pages before it."""
    srv = apiserver(gen_cluster(20, pods_per_service=5, nodes=3))
    src = LiveSource(resolve(str(srv.kubeconfig)))
    src.page_size = 10
    src.sleep = lambda s: None  # no waiting between retries
    want = [p["metadata"]["name"] for p in srv.objects("pods")]
    srv.set_fault("pods", status=503, only_continue=True, times=2)
    srv.set_fault("pods", status=429, only_continue=True, times=1, retry_after=0)
    got = [i["metadata"]["name"] for page in src.iter_pod_pages(None) for i in page]
    assert got == want
    srv.clear_faults()
    slow = LiveSource(resolve(str(srv.kubeconfig)), request_timeout=0.3)
    slow.page_size = 10
    srv.set_fault("pods", status=None, delay=2, only_continue=True)
    pages = []
    with pytest.raises(ClusterError, match="timed out"):
        for page in slow.iter_pod_pages(None):
            pages.append(page)
    assert len(pages) == 1

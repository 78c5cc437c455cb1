"""A paged list's next page requested while this one is decoded and used.

`check -A` reads 100,000 Pods in 200 pages of 500. Read one after the other, each page's request waited for the
API server (it reads, encodes and sends the page) and for the transfer while svcctl did nothing, and svcctl's own
work (decoding, building the objects) waited for the next request. The token of the next page is in the page's
list metadata, which the API server writes before the items (`{"kind":…,"apiVersion":…,"metadata":{…,"continue":
…},"items":[…]}`); `head_continue` reads it from the first bytes, so a reader thread asks for page n+1 as soon as
page n has arrived, and the caller decodes page n meanwhile. The socket reads and TLS run outside the GIL: on two
CPUs the transfer overlaps the decoding.

The requests are the same, in the same order, with the same tokens: each token read from a head is checked
against the one the caller decodes from the whole page (a difference is an error, never a page of another list),
and where the head does not show it (the metadata after the items, or not JSON at all) the reader waits for the
caller's token, as a plain loop would. An error of a request (a refusal, an expired token, a lost connection)
reaches the caller where the page would have. Raw bytes wait, not decoded pages: at most one page ahead.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable

from svcctl.errors import ClusterError


class _Unknown:
    """The head does not show the token: the caller's decoded page says it."""

    __slots__ = ()


UNKNOWN = _Unknown()
Head = str | None | _Unknown  # what a page's head says of the next page's token
_HEAD = 8192  # a list's metadata (resourceVersion, continue, remainingItemCount) is a few hundred bytes
_WS = " \t\n\r"
_DECODER = json.JSONDecoder()
# the json module's own string scanner (C): typeshed does not declare it
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


def head_continue(data: bytes) -> Head:
    """The `metadata.continue` of a list body, read from its head: the token, None for the last page (no or empty
    token, as the caller reads it), UNKNOWN when the top-level object does not show it before `items`."""
    s = data[:_HEAD].decode("utf-8", "replace")  # a cut character is past the metadata, or the parse fails
    try:
        i = _skip(s, 0)
        if s[i] != "{":
            return UNKNOWN
        i += 1
        while True:
            i = _skip(s, i)
            if s[i] != '"':
                return UNKNOWN
            key, i = scanstring(s, i + 1)
            i = _skip(s, i)
            if s[i] != ":":
                return UNKNOWN
            i = _skip(s, i + 1)
            if key == "items":
                return UNKNOWN
            value, i = _DECODER.raw_decode(s, i)
            if key == "metadata":
                if not isinstance(value, dict):
                    return UNKNOWN
                token = value.get("continue")
                if not token:
                    return None
                return token if isinstance(token, str) else UNKNOWN
            i = _skip(s, i)
            if s[i] != ",":
                return UNKNOWN
            i += 1
    except (ValueError, IndexError):
        return UNKNOWN


def _skip(s: str, i: int) -> int:
    while s[i] in _WS:
        i += 1
    return i


class PageReader:
    """Fetches the pages after the first (`fetch(token)` → the body's bytes) in a thread, one ahead of the caller.

    The caller takes each page with `next()`, decodes it, and says its token with `told()`; `stop()` ends the
    reader (at its next page, after the request in flight). A daemon thread: a process that ends does not wait
    for it."""

    def __init__(self, fetch: Callable[[str], bytes], token: str) -> None:
        self._fetch = fetch
        self._pages: queue.Queue[tuple[bytes, Head, BaseException | None]] = queue.Queue(1)
        self._tokens: queue.Queue[str | None] = queue.Queue(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(token,), name="svcctl-page-reader", daemon=True)
        self._thread.start()

    def _run(self, token: str | None) -> None:
        while token:
            try:
                data = self._fetch(token)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
                self._put((b"", None, e))
                return
            early = head_continue(data)
            if not self._put((data, early, None)):
                return
            del data
            if isinstance(early, _Unknown):
                told, token = self._take_token()
                if not told:
                    return
            else:
                token = early

    def _put(self, item: tuple[bytes, Head, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _take_token(self) -> tuple[bool, str | None]:
        """(False, None) when stopped while waiting."""
        while not self._stop.is_set():
            try:
                return True, self._tokens.get(timeout=0.1)
            except queue.Empty:
                continue
        return False, None

    def next(self) -> tuple[bytes, Head]:
        """The next page's bytes and the token read from its head; the request's error is raised here."""
        data, early, err = self._pages.get()
        if err is not None:
            raise err
        return data, early

    def told(self, early: Head, token: str | None) -> None:
        """The token the caller decoded from the page `next()` gave with `early`."""
        if isinstance(early, _Unknown):
            self._tokens.put(token)
        elif early != token:
            self.stop(wait=False)
            raise ClusterError("the API server's list page names a different continue token in its metadata than "
                               "its head showed", hint="try again; report this if it persists")

    def stop(self, wait: bool = True) -> None:
        """End the reader; `wait` for its thread (the list read to its end: it has already returned). Not when the
        caller stops early or on an error (Ctrl-C among them): the thread ends after its request in flight, at
        most the request timeout later, and nothing waits for that."""
        self._stop.set()
        if wait:
            self._thread.join()

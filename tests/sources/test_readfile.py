"""sources/readfile.py reads a dump file to the very text `open(path, encoding="utf-8", errors="replace").read()`
gives: every newline convention, bad UTF-8 (cut sequences at the end too), a BOM, small and big files, and the
files that cannot be mapped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svcctl.sources import readfile
from svcctl.sources.readfile import read_text


def _text_read(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


pieces = st.sampled_from([b"\r\n", b"\r", b"\n", b"\r\r\n", b"\xff", b"\xe2\x82", b"\xe2\x82\xac", b"\xef\xbb\xbf",
                          b"-A KUBE-SVC-X -j KUBE-SEP-Y", b" ", b"\x00", "é".encode()])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(pieces, st.binary(max_size=6)), max_size=40), st.booleans())
def test_a_file_reads_as_the_text_reader_reads_it(tmp_path_factory: pytest.TempPathFactory, parts: list[bytes],
                                                   mapped: bool) -> None:
    path = tmp_path_factory.mktemp("rf") / "dump"
    path.write_bytes(b"".join(parts))
    old = readfile._SMALL
    readfile._SMALL = 0 if mapped else old  # the mapped way on small files too
    try:
        assert read_text(str(path)) == _text_read(path)
    finally:
        readfile._SMALL = old


def test_a_big_file_is_mapped_and_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big"
    line = "-A KUBE-SVC-ABC -m comment --comment \"ns/svc:http\" -j KUBE-SEP-XYZ\r\n"
    path.write_text(line * (3 * readfile._SMALL // len(line)) + "é\r\xff", encoding="latin-1")
    calls: list[int] = []
    real = readfile.mmap.mmap

    def spy(*a: object, **k: object) -> object:
        calls.append(1)
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(readfile.mmap, "mmap", spy)
    assert read_text(str(path)) == _text_read(path)
    assert calls  # else the test above compared the text reader with itself


def test_what_cannot_be_mapped_is_read_the_ordinary_way(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert read_text(str(empty)) == ""
    r, w = os.pipe()
    os.write(w, b"a\r\nb\rc")
    os.close(w)
    try:
        assert read_text(f"/dev/fd/{r}") == "a\nb\nc"
    finally:
        os.close(r)
    with pytest.raises(FileNotFoundError):
        read_text(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        read_text(str(tmp_path))

"""Every file of the bad-input corpus (tests/fixtures/bad/) gives exit 2 and one `error:` line naming the file.

Big and dangerous inputs are made at test time instead of being committed: 100k-character lines, 50,000-level
nesting (it once crashed the C YAML loader with SIGSEGV), and malicious tarballs (path traversal, absolute
paths, symlinks, hardlinks, device files, a member claiming a huge size, a gzip bomb).
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from svcctl.errors import InputError
from svcctl.sources import snapshot
from svcctl.sources.snapshot import SnapshotSource, parse_objects

RunCli = Callable[..., tuple[int, str, str]]
ROOT = Path(__file__).resolve().parent.parent.parent
BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"
DEMO = ROOT / "svcctl" / "data" / "demo"
IPT = str(DEMO / "nodes" / "kind-worker" / "iptables-save.txt")

# file prefix -> argv, `{}` standing for the file
COMMANDS: dict[str, list[str]] = {
    "iptables": ["rules", "--iptables-save", "{}"],
    "ipvsadm": ["rules", "--ipvsadm", "{}"],
    "nft": ["rules", "--nft", "{}"],
    "conntrack": ["trace", "10.0.1.175:80", "--iptables-save", IPT, "--conntrack", "{}"],
    "snapshot": ["endpoints", "-A", "--snapshot", "{}"],
}
# errors that point at a line of the file (`FILE:LINE: …`)
WITH_LINE = {
    "iptables-mixed.txt", "iptables-shuffled.txt", "iptables-wrong-format.txt", "ipvsadm-connections.txt",
    "ipvsadm-names.txt", "ipvsadm-shuffled.txt", "ipvsadm-truncated.txt", "ipvsadm-wrong-format.txt",
    "nft-truncated.json", "nft-truncated.txt", "nft-wrong-format.txt", "conntrack-bad-port.txt",
    "conntrack-binary.bin", "conntrack-truncated.txt", "conntrack-wrong-format.txt", "snapshot-malformed.json",
    "snapshot-shuffled.yaml", "snapshot-truncated.yaml", "snapshot-wrong-format.yaml",
}
CORPUS = sorted(p.name for p in BAD.iterdir() if p.is_file() and p.suffix in (".txt", ".bin", ".json", ".yaml"))


def argv_for(path: Path | str, prefix: str | None = None) -> list[str]:
    key = prefix or Path(path).name.split("-")[0]
    return [a.replace("{}", str(path)) for a in COMMANDS[key]]


def one_error_line(code: int, out: str, err: str, path: Path | str, with_line: bool = False) -> str:
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code}\nstdout: {out[-800:]}\nstderr: {err[-800:]}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: "), line
    assert str(path) in line, f"the error does not name {path}: {line}"
    if with_line:
        rest = line.split(str(path), 1)[1]
        assert rest[:1] == ":" and rest[1:].split(":", 1)[0].isdigit(), f"no line number: {line}"
    return line


def test_corpus_is_complete() -> None:
    """Each flag has truncated, binary, wrong-format and mixed/shuffled inputs."""
    for prefix in COMMANDS:
        names = [n for n in CORPUS if n.startswith(prefix + "-")]
        kinds = {n.split("-", 1)[1].rsplit(".", 1)[0] for n in names}
        assert {"truncated", "binary", "wrong-format"} <= kinds, (prefix, kinds)
        assert kinds & {"mixed", "shuffled", "bad-port"}, (prefix, kinds)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_gives_one_line_error(name: str, run_cli: RunCli) -> None:
    path = BAD / name
    code, out, err = run_cli(argv_for(path))
    one_error_line(code, out, err, path, with_line=name in WITH_LINE)
    assert out == ""


# --------------------------------------------------------------------------- generated at test time


@pytest.mark.parametrize("prefix", list(COMMANDS))
@pytest.mark.parametrize("fill", ["a", "[", " ", "-A KUBE-SERVICES "])
def test_huge_line(prefix: str, fill: str, tmp_path: Path, run_cli: RunCli) -> None:
    """One 100,000-character line in the middle of a real dump (or alone)."""
    seed = {"iptables": IPT, "ipvsadm": str(ROOT / "tests/fixtures/ipvs/full.txt"),
            "nft": str(DEMO / "nodes/kind-worker/nft.txt"), "conntrack": None,
            "snapshot": str(DEMO / "cluster.yaml")}[prefix]
    text = Path(seed).read_text() if seed else ""
    lines = text.splitlines(keepends=True)
    huge = fill * (100_000 // len(fill)) + "\n"
    p = tmp_path / f"{prefix}-huge.txt"
    p.write_text("".join(lines[: len(lines) // 2] + [huge] + lines[len(lines) // 2:]))
    code, out, err = run_cli(argv_for(p, prefix))
    if code == 2:
        one_error_line(code, out, err, p)
    else:  # a long line can be valid (a comment, whitespace): then it must simply work
        assert code in (0, 1) and "Traceback" not in err, err


@pytest.mark.parametrize(("name", "text"), [
    ("deep.json", '{"kind": "List", "items": ' + "[" * 50_000 + "]" * 50_000 + "}"),
    ("deep.yaml", "kind: List\nitems: " + "[" * 50_000 + "]" * 50_000 + "\n"),
    ("deep-block.yaml", "items:\n" + "- " * 50_000 + "x\n"),
    ("deep-flow.yaml", "a: " + "[" * 100_000 + "\n"),
])
def test_deep_nesting_is_an_input_error_not_a_crash(name: str, text: str, tmp_path: Path) -> None:
    """50,000 levels used to kill the process (SIGSEGV in libyaml's composer; RecursionError in json):
    run in a child process so a regression shows up as a failed test, not a dead test run."""
    p = tmp_path / name
    p.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "svcctl", "endpoints", "-A", "--snapshot", str(p)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    one_error_line(proc.returncode, proc.stdout, proc.stderr, p)
    assert "nested" in proc.stderr


def test_yaml_alias_bomb_is_refused() -> None:
    """24 lines whose aliases expand to 3^23 objects: refused after a bounded walk."""
    data = (BAD / "snapshot-alias-bomb.yaml").read_bytes()
    assert len(data) < 1024
    with pytest.raises(InputError, match="YAML aliases"):
        parse_objects(data, "bomb.yaml")


def test_multi_line_tar_errors_become_one_line(tmp_path: Path, run_cli: RunCli) -> None:
    """tarfile lists every compression it tried, one per line; the CLI error stays one line."""
    p = tmp_path / "empty.tar.gz"
    p.write_bytes(b"")
    line = one_error_line(*run_cli(["endpoints", "-A", "--snapshot", str(p)]), p)
    assert "not a readable tar archive" in line


def test_empty_dump_names_the_file(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    for flag in ("--iptables-save", "--ipvsadm", "--nft"):
        p = tmp_path / f"empty{flag}.txt"
        p.write_text("\n\n")
        line = one_error_line(*run_cli(["rules", flag, str(p)]), p)
        assert "empty" in line
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out, err = run_cli(["rules", "--iptables-save", "-"])
    one_error_line(code, out, err, "<stdin>")


# --------------------------------------------------------------------------- malicious tarballs


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
            link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, data


def _tarball(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    good = (DEMO / "cluster.yaml").read_bytes()
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("cluster.yaml")
        info.size = len(good)
        tf.addfile(info, io.BytesIO(good))
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _raw_tar_with_size_claim(path: Path, name: str, claimed: int) -> Path:
    """A member header claiming `claimed` bytes, followed by a few real ones (tarfile cannot write this)."""
    info = tarfile.TarInfo(name)
    info.size = claimed
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    path.write_bytes(gzip.compress(header + b"kind: List\n".ljust(512, b" ")))
    return path


def _gzip_bomb(path: Path, members: int, member_bytes: int) -> Path:
    """`members` tar members of `member_bytes` NUL bytes each, as a stream of gzip members: 1 MiB of zeros
    compresses to ~1 KiB, so the file is about 1/1000 of what it unpacks to; built without ever holding
    more than 1 MiB."""
    mib = 1 << 20
    assert member_bytes % mib == 0
    chunk = gzip.compress(bytes(mib), compresslevel=9)
    with path.open("wb") as fh:
        for i in range(members):
            info = tarfile.TarInfo(f"nodes/n{i}/iptables-save.txt")
            info.size = member_bytes
            fh.write(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
            for _ in range(member_bytes // mib):
                fh.write(chunk)
        fh.write(gzip.compress(bytes(1024)))  # end-of-archive blocks
    return path


MALICIOUS: dict[str, Callable[[Path], Path]] = {
    "traversal": lambda d: _tarball(d / "t.tar.gz", [_member("../../etc/cron.d/x.yaml", b"kind: List\n")]),
    "traversal-inner": lambda d: _tarball(d / "t.tar.gz", [_member("a/../../x.yaml", b"kind: List\n")]),
    "absolute": lambda d: _tarball(d / "t.tar.gz", [_member("/etc/passwd.yaml", b"kind: List\n")]),
    "symlink": lambda d: _tarball(d / "t.tar.gz", [_member("nodes/n/iptables-save.txt", kind=tarfile.SYMTYPE,
                                                           link="/etc/shadow")]),
    "hardlink": lambda d: _tarball(d / "t.tar.gz", [_member("x.yaml", kind=tarfile.LNKTYPE, link="/etc/shadow")]),
    "device": lambda d: _tarball(d / "t.tar.gz", [_member("zero.yaml", kind=tarfile.CHRTYPE)]),
    "fifo": lambda d: _tarball(d / "t.tar.gz", [_member("pipe.yaml", kind=tarfile.FIFOTYPE)]),
    "huge-size-claim": lambda d: _raw_tar_with_size_claim(d / "t.tar.gz", "cluster.yaml", 1 << 40),
    "truncated-gzip": lambda d: _truncate(_tarball(d / "t.tar.gz", [_member("more.yaml", b"kind: List\n" * 500)])),
    "not-gzip": lambda d: _write(d / "t.tar.gz", zlib.compress(b"kind: List\n" * 100)),
    "bad-deflate-mid-member": lambda d: _write(d / "t.tar.gz", _bad_deflate()),
}


def _bad_deflate() -> bytes:
    """A gzip stream whose first 100 kB are valid (so the archive opens) followed by a deflate block of the
    reserved type: zlib.error (not an OSError) while a member is read. It used to escape as exit 4."""
    info = tarfile.TarInfo("a.yaml")
    info.size = 200_000
    co = zlib.compressobj(1, zlib.DEFLATED, -15)
    body = co.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"#" * 100_000) + co.flush(zlib.Z_FULL_FLUSH)
    return bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]) + body + b"\x07" * 64


def _truncate(p: Path) -> Path:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    return p


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("case", list(MALICIOUS))
def test_malicious_tarball(case: str, tmp_path: Path, run_cli: RunCli) -> None:
    before = set(os.listdir(tmp_path))
    p = MALICIOUS[case](tmp_path)
    code, out, err = run_cli(["endpoints", "-A", "--snapshot", str(p)])
    line = one_error_line(code, out, err, p)
    assert "refusing" in line or "corrupt" in line or "not a readable tar" in line, line
    # never extracted: nothing new appeared next to the archive
    assert set(os.listdir(tmp_path)) - before == {p.name}


def test_gzip_bomb_is_refused_by_the_size_caps(tmp_path: Path, run_cli: RunCli,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """5 × 32 MiB of zeros in a 170 KiB file, with the caps scaled down (64 MiB total) so the test stays small;
    the real caps (512 MiB per member, 2 GiB in all) are the same code path."""
    p = _gzip_bomb(tmp_path / "bomb.tar.gz", members=5, member_bytes=32 << 20)
    assert p.stat().st_size < 256 * 1024
    monkeypatch.setattr(snapshot, "MAX_TOTAL_BYTES", 64 << 20)
    monkeypatch.setattr(snapshot, "MAX_MEMBER_BYTES", 48 << 20)
    line = one_error_line(*run_cli(["endpoints", "-A", "--snapshot", str(p)]), p)
    assert "uncompressed size too large" in line


def test_gzip_bomb_member_over_the_member_cap(tmp_path: Path, run_cli: RunCli) -> None:
    """One member of 1 GiB (real zeros, 1 MiB of gzip): refused from its header, before any of it is read."""
    p = _gzip_bomb(tmp_path / "bomb1.tar.gz", members=1, member_bytes=1 << 30)
    assert p.stat().st_size < 2 << 20
    line = one_error_line(*run_cli(["endpoints", "-A", "--snapshot", str(p)]), p)
    assert "too large" in line


def test_a_good_tarball_still_reads(tmp_path: Path) -> None:
    """The guards refuse the attacks above, not ordinary bundles."""
    p = _tarball(tmp_path / "ok.tar.gz", [])
    src = SnapshotSource(str(p))
    assert "hostnames" in {s.meta.name for s in src.services}

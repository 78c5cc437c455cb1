"""A whole plain IPVS table's `rules -o json` written from its text (dataplane/ipvs_plain.py checks it,
render/ipvs_json.py writes it a window of virtual servers at a time, no model held) is the general reader's and
writer's text character for character — or the table is not taken that way: on kube-proxy's shapes, on every
variant a step away from the shapes the writer handles itself (weights 0, persistence, wrr, other schedulers
and forwarding, counters, leading zeros, IPv6, firewall marks, empty virtual servers, stray whitespace), on
small windows, and through the command."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gen_dumps_ipvs_nft import VS, fixture_vss, gen_ipvsadm, print_ipvsadm  # noqa: E402

from svcctl.dataplane import ipvs, ipvs_plain  # noqa: E402
from svcctl.errors import InputError  # noqa: E402
from svcctl.render.jsonout import write_json  # noqa: E402
from svcctl.render.rules import streamed_document  # noqa: E402


def _reals(n: int, **kw: object) -> list[dict[str, object]]:
    return [{"ip": f"10.244.{i // 200}.{i % 200 + 1}", "port": 8080, **kw} for i in range(n)]


def _shapes() -> list[VS]:
    busy = [{**r, "active": i * 7, "inactive": i * 130} for i, r in enumerate(_reals(5))]
    return [
        VS("TCP", "10.96.0.10", 80, reals=_reals(3)),
        VS("TCP", "10.96.0.11", 443, persistent=10800, reals=_reals(2)),
        VS("UDP", "10.96.0.12", 53, reals=[{"ip": "10.244.9.9", "port": 53, "weight": 0}, *_reals(1)]),
        VS("SCTP", "10.96.0.13", 3868, reals=_reals(2)),
        VS("TCP", "10.96.0.14", 80),
        VS("TCP", "10.96.0.15", 80, scheduler="lc", reals=_reals(2)),
        VS("TCP", "10.96.0.16", 80, scheduler="wrr", reals=[{**_reals(1)[0], "weight": 3}, *_reals(1)]),
        VS("TCP", "10.96.0.17", 80, scheduler="wrr", reals=_reals(3, weight=2)),
        VS("TCP", "10.96.0.18", 80, reals=busy),
        VS("TCP", "10.96.0.19", 80, reals=[{**r, "weight": 1 + i} for i, r in enumerate(_reals(3))]),
        VS("TCP", "10.96.0.20", 80, reals=[{**r, "fwd": "Route"} for r in _reals(2)]),
        VS("TCP", "10.96.0.21", 80, reals=[*_reals(1), {"ip": "10.244.3.3", "port": 9090}]),
        VS("UDP", "172.18.0.3", 30053, persistent=5, reals=[{**r, "active": 1} for r in _reals(4)]),
        VS("TCP", "10.96.0.22", 0, reals=[{"ip": "0.0.0.0", "port": 0}, {"ip": "255.255.255.255", "port": 65535}]),
        VS("TCP", "10.96.0.23", 80, scheduler="sh", reals=_reals(2)),
        VS("TCP", "10.96.0.24", 80, reals=_reals(250)),
        VS("TCP", "10.96.0.25", 80, reals=[{**r, "weight": 0} for r in _reals(2)]),
    ]


def _texts() -> Iterator[tuple[str, str]]:
    big = gen_ipvsadm(60, 4)
    yield "generator", big
    yield "generator, one endpoint each", gen_ipvsadm(6, 1)
    shapes = print_ipvsadm(_shapes())
    yield "shapes", shapes
    yield "fixture_vss", print_ipvsadm(fixture_vss())
    lines = big.splitlines(keepends=True)
    yield "a virtual server with no real server last", big + "TCP  10.96.9.9:80 rr\n"
    yield "a leading zero in a counter", big.replace("Masq    1      0   ", "Masq    1      00  ", 1)
    yield "a leading zero in a weight", big.replace("Masq    1      ", "Masq    01     ", 1)
    yield "a leading zero in a real port", big.replace(":8080 ", ":08080", 1)
    yield "a leading zero in a virtual port", big.replace(":80 rr", ":080 rr", 1)
    yield "a leading zero in a real address", big.replace("-> 10.128.0.2:", "-> 10.128.0.02:", 1)
    yield "a leading zero in a virtual address", big.replace("TCP  10.96.0.17:", "TCP  10.096.0.17:", 1)
    yield "a leading zero first in a real address", big.replace("-> 10.128.0.2:", "-> 010.128.0.2:", 1)
    yield "an octet past 255", big.replace("-> 10.128.0.2:", "-> 10.256.0.2:", 1)
    yield "a first octet past 255", big.replace("-> 10.128.0.2:", "-> 300.128.0.2:", 1)
    yield "a virtual octet past 255", big.replace("TCP  10.96.0.17:", "TCP  10.96.0.299:", 1)
    yield "a port past 65535", big.replace(":8080 ", ":80800", 1)
    yield "a virtual port past 65535", big.replace(":80 rr", ":65536 rr", 1)
    yield "a weight of -1", big.replace("Masq    1 ", "Masq    -1", 1)
    yield "trailing spaces", big.replace("\n", "   \n")
    yield "more trailing spaces on the table's lines", "".join(lines[:3]) + "".join(lines[3:]).replace("\n", "   \n")
    yield "no trailing spaces", big.replace(" \n", "\n")
    yield "tabs", big.replace("Masq    ", "Masq\t", 3)
    yield "CRLF", big.replace("\n", "\r\n")
    yield "no final newline", big.rstrip("\n")
    yield "a blank line between virtual servers", "".join(lines[:9]) + "\n" + "".join(lines[9:])
    yield "blank lines at the end", big + "\n\n"
    yield "a blank line first", "\n" + big
    yield "a real server before any virtual server", "".join(lines[:3] + lines[4:])
    yield "no banner", "".join(lines[1:])
    yield "only the headers", "".join(lines[:3])
    yield "a stray line", big.replace("TCP  10.96.0.17:80 rr\n", "TCP  10.96.0.17:80 rr\nhello\n", 1)
    yield "a firewall mark", big.replace("TCP  10.96.0.17:80 rr\n", "FWM  7 rr\n", 1)
    yield "an IPv6 virtual server", big.replace("TCP  10.96.0.17:80 rr\n", "TCP  [fd00::17]:80 rr\n", 1)
    yield "an IPv6 real server", big.replace("-> 10.128.0.2:8080      ", "-> [fd00::2]:8080        ", 1)
    yield "scheduler flags", big.replace(" rr\n", " sh (sh-fallback,sh-port)\n", 1)
    yield "persistence with a mask", big.replace(" rr\n", " rr persistent 10800 mask 255.255.255.0\n", 1)
    yield "a tunnel column", big.replace("Masq    1 ", "Tunnel  ipip 1 ", 1)
    yield "a truncated real server line", big.replace("Masq    1      0          0", "Masq    1", 1)
    yield "a name, not an address", big.replace("-> 10.128.0.2:8080", "-> web-1:http    ", 1)
    yield "--stats", print_ipvsadm(fixture_vss(), "stats")
    yield "-S -n", print_ipvsadm(_shapes(), "save")
    yield "empty", ""


def _json(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bool]:
    monkeypatch.setattr(ipvs, "FAST", fast)
    try:
        rules = ipvs.parse_ipvsadm(text, "dump", as_text=fast)
    except InputError as err:
        return f"error {err.message} {err.line}", False
    out: list[str] = []
    write_json(streamed_document(rules), out.append)
    return "".join(out), rules.deferred is not None


TEXTS = list(_texts())
PLAIN = {"generator", "generator, one endpoint each", "shapes",
         "a virtual server with no real server last", "a leading zero in a counter", "a leading zero in a weight",
         "a leading zero in a real port", "a leading zero in a virtual port", "a weight of -1",
         "no trailing spaces", "more trailing spaces on the table's lines"}


@pytest.mark.parametrize("window", [1, 300, 1 << 18])
@pytest.mark.parametrize("name,text", TEXTS, ids=[t[0] for t in TEXTS])
def test_the_table_written_from_its_text_is_the_general_writers(name: str, text: str, window: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ipvs_plain, "WINDOW", window)
    general, _ = _json(text, False, monkeypatch)
    fast, deferred = _json(text, True, monkeypatch)
    assert fast == general
    assert deferred == (name in PLAIN)  # what is not of a plain table's checked shape is read the ordinary way


def test_windows_hold_whole_virtual_servers() -> None:
    text = print_ipvsadm(_shapes())
    table = ipvs_plain.plain_table(text, 200)
    assert table is not None and len(table.windows) > 3
    assert all(text.startswith(("TCP ", "UDP ", "SCTP "), a) for a, _ in table.windows)
    assert table.windows[-1][1] == len(text)
    assert (table.virtual_servers, table.real_servers) == (17, sum(len(v.reals) for v in _shapes()))


def test_the_glue_takes_the_ordinary_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    text = gen_ipvsadm(5, 2)
    assert ipvs.parse_ipvsadm(text, "dump", as_text=True).deferred is not None
    assert ipvs.parse_ipvsadm(text, "dump", as_text=True, ip_addr_text="").deferred is None
    assert ipvs.parse_ipvsadm(text, "dump", as_text=True, only={"10.96.0.16"}).deferred is None
    monkeypatch.setattr(ipvs, "FAST", False)
    assert ipvs.parse_ipvsadm(text, "dump", as_text=True).deferred is None


def test_the_command_prints_the_same_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from svcctl.cli.main import cli

    dump = tmp_path / "ipvsadm.txt"
    dump.write_text(gen_ipvsadm(30, 3) + print_ipvsadm(_shapes()).split("InActConn\n", 1)[1])
    runner = CliRunner()
    fast = runner.invoke(cli, ["rules", "--ipvsadm", str(dump), "-o", "json"])
    monkeypatch.setattr(ipvs, "FAST", False)
    general = runner.invoke(cli, ["rules", "--ipvsadm", str(dump), "-o", "json"])
    assert fast.exit_code == general.exit_code == 0, fast.output
    assert fast.output == general.output
    assert len(json.loads(fast.output)["services"]) == 47


def _file_json(path: Path, window: int) -> tuple[str, bool]:
    """The JSON of the table checked from its file as it was streamed (`plain_file`), or the general reader's."""
    table = ipvs_plain.plain_file(str(path), window)
    if table is None:
        return "", False
    out: list[str] = []
    write_json(streamed_document(ipvs.deferred_rules(table, "dump")), out.append)
    return "".join(out), True


@pytest.mark.parametrize("window", [1, 300, 1 << 18])
@pytest.mark.parametrize("name,text", TEXTS, ids=[t[0] for t in TEXTS])
def test_the_table_checked_from_its_file_is_the_general_writers(name: str, text: str, window: int, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ipvsadm.txt"
    path.write_bytes(text.encode())
    fast, taken = _file_json(path, window)
    # the same verdict as the table's text gets (its first virtual servers have real servers: the head has one)
    assert taken == (ipvs_plain.plain_table(text, window) is not None) == (name in PLAIN)
    if taken:
        general, _ = _json(text, False, monkeypatch)
        assert fast == general
        table = ipvs_plain.plain_file(str(path), window)
        assert table is not None and text.startswith(table.head) and "\n  -> " in table.head


def test_a_file_that_is_not_ascii_or_has_no_real_server_first_is_read_the_ordinary_way(tmp_path: Path) -> None:
    text = gen_ipvsadm(20, 2)
    path = tmp_path / "ipvsadm.txt"
    path.write_bytes(text.replace("TCP  10.96.0.17:80 rr\n", "TCP  10.96.0.17:80 rr\xe9\n", 1).encode())
    assert ipvs_plain.plain_file(str(path)) is None
    path.write_bytes(text.encode()[:-1])  # no final newline
    assert ipvs_plain.plain_file(str(path)) is None
    head, rest = text.split("InActConn\n", 1)
    empty = "".join(f"TCP  10.97.{i // 250}.{i % 250 + 1}:80 rr\n" for i in range(500))  # 12 kB of them
    path.write_text(head + "InActConn\n" + empty + rest)
    assert ipvs_plain.plain_file(str(path), 1) is None  # its first window would show no real server
    assert ipvs_plain.plain_file(str(path)) is not None


def test_a_file_changed_between_its_check_and_its_writing_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ipvsadm.txt"
    path.write_text(gen_ipvsadm(40, 3))
    table = ipvs_plain.plain_file(str(path), 300)
    assert table is not None and len(table.windows) > 2
    path.write_text(path.read_text().replace("Masq    1 ", "Masq    2 "))
    with pytest.raises(InputError, match="changed while it was being read"):
        table.part(table.windows[1])


@pytest.mark.parametrize("extra", [[], ["--mode", "kube-router"], ["--mode", "ipvs"]])
def test_a_big_file_is_left_in_it_by_the_command_and_prints_the_same(tmp_path: Path, extra: list[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from svcctl.cli.main import cli
    from svcctl.sources import node, scoped

    dump = tmp_path / "ipvsadm.txt"
    dump.write_text(gen_ipvsadm(300, 3) + print_ipvsadm(_shapes()).split("InActConn\n", 1)[1])
    monkeypatch.setattr(scoped, "STREAM_MIN_BYTES", 1000)
    monkeypatch.setattr(ipvs_plain, "WINDOW", 2000)
    left: list[bool] = []
    real = node._left_in_file
    monkeypatch.setattr(node, "_left_in_file", lambda d, p: left.append(real(d, p)) or left[-1])
    runner = CliRunner()
    fast = runner.invoke(cli, ["rules", "--ipvsadm", str(dump), "-o", "json", *extra])
    assert left == [True]
    monkeypatch.setattr(ipvs, "FAST", False)
    general = runner.invoke(cli, ["rules", "--ipvsadm", str(dump), "-o", "json", *extra])
    assert left == [True, False]
    assert fast.exit_code == general.exit_code == 0, fast.output
    assert fast.output == general.output
    assert len(json.loads(fast.output)["services"]) >= 300
    monkeypatch.setattr(ipvs, "FAST", True)  # a table output, or one Service, reads the file the ordinary way
    runner.invoke(cli, ["rules", "--ipvsadm", str(dump)])
    runner.invoke(cli, ["rules", "10.96.0.16:80", "--ipvsadm", str(dump), "-o", "json"])
    assert left == [True, False]

"""The IPVS reader's fast paths for plain `ipvsadm -Ln` tables and `ipvsadm -S -n` dumps (`ipvs.FAST`: IPv4 virtual
and real server lines of ipvsadm's own shape read a window at a time by one regex) give the same virtual servers, the same NodeRules JSON
(with and without the glue) and the same errors as the general reader, on the generator's tables, on variants a
step away from the fast shape, and on the recorded fixtures."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gen_dumps_ipvs_nft import VS, fixture_vss, gen_ipvsadm, print_ipvsadm  # noqa: E402

from svcctl.dataplane import ipvs  # noqa: E402
from svcctl.errors import InputError  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "ipvs"


def _kube_shapes() -> list[VS]:
    """What kube-proxy programs: rr with weight 1, session affinity (persistent), weight 0 while terminating, wrr,
    no real servers, UDP and SCTP."""
    r = [{"ip": f"10.244.{i}.{j}", "port": 8080, "active": j, "inactive": 2 * j} for i in range(3) for j in (2, 3)]
    return [
        VS("TCP", "10.96.0.10", 80, reals=r[:2]),
        VS("TCP", "10.96.0.11", 443, persistent=10800, reals=r[2:4]),
        VS("UDP", "10.96.0.12", 53, reals=[{"ip": "10.244.9.9", "port": 53, "weight": 0}, *r[4:5]]),
        VS("SCTP", "10.96.0.13", 3868, scheduler="wrr", reals=[{**r[0], "weight": 3}, {**r[1], "weight": 0}]),
        VS("TCP", "10.96.0.14", 80),
        VS("TCP", "10.96.0.15", 80, scheduler="lc", reals=r[5:]),
        VS("TCP", "172.18.0.3", 30080, reals=r[:3]),
        VS("TCP", "10.96.0.16", 80, reals=[{**r[0], "fwd": "Route"}, {**r[1], "fwd": "Local"}]),
    ]


def _dumps() -> Iterator[tuple[str, str]]:
    big = gen_ipvsadm(40, 4)
    yield "generator", big
    yield "generator, one endpoint each", gen_ipvsadm(6, 1)
    yield "kube-proxy's shapes", print_ipvsadm(_kube_shapes())
    for fmt in ("list", "stats", "rate", "save"):
        yield f"fixture_vss {fmt}", print_ipvsadm(fixture_vss(), fmt)
    lines = big.splitlines(keepends=True)
    yield "CRLF", big.replace("\n", "\r\n")
    yield "no final newline", big.rstrip("\n")
    yield "a blank line between virtual servers", "".join(lines[:9]) + "\n" + "".join(lines[9:])
    yield "blank lines at the end", big + "\n\n"
    yield "a blank line first", "\n" + big
    yield "tabs", big.replace("Masq    ", "Masq\t", 3)
    yield "a real server before any virtual server", "".join(lines[:3] + lines[4:])
    yield "no banner", "".join(lines[1:])
    yield "no real-server header", "".join(lines[:2] + lines[3:])
    yield "a port past 65535", big.replace(":8080 ", ":80800", 1)
    yield "a virtual port past 65535", big.replace(":80 rr", ":99999 rr", 1)
    yield "an address with a leading zero", big.replace("-> 10.128.0.2:", "-> 10.128.0.02:", 1)
    yield "a name, not an address", big.replace("-> 10.128.0.2:8080", "-> web-1:http    ", 1)
    yield "a truncated service line", big.replace(":80 rr\n", ":80\n", 1)
    yield "a truncated real server line", big.replace("Masq    1      0          0", "Masq    1", 1)
    yield "persistence with a mask", big.replace(" rr\n", " rr persistent 10800 mask 255.255.255.0\n", 1)
    yield "scheduler flags", big.replace(" rr\n", " sh (sh-fallback,sh-port)\n", 1)
    yield "a firewall mark", big.replace("TCP  10.96.0.17:80 rr\n", "FWM  7 rr\n", 1)
    yield "an IPv6 virtual server", big.replace("TCP  10.96.0.17:80 rr\n", "TCP  [fd00::17]:80 rr\n", 1)
    yield "a weight of -1", big.replace("Masq    1 ", "Masq    -1", 1)
    yield "a tunnel column", big.replace("Masq    1 ", "Tunnel  ipip 1 ", 1)
    yield "the same real server twice", big.replace("10.128.0.3:8080", "10.128.0.2:8080", 1)
    yield "a stray line", big.replace("TCP  10.96.0.17:80 rr\n", "TCP  10.96.0.17:80 rr\nhello\n", 1)
    save = print_ipvsadm(_kube_shapes(), "save")
    yield "kube-proxy's shapes, -S -n", save
    big_save = print_ipvsadm([v for v in _kube_shapes() if v.protocol != "SCTP"] + [VS("TCP", f"10.96.1.{i}", 80, reals=[
        {"ip": f"10.244.5.{i}", "port": 8080}, {"ip": f"10.244.6.{i}", "port": 8080, "weight": 2}])
        for i in range(40)], "save")
    yield "-S -n", big_save
    s_lines = big_save.splitlines(keepends=True)
    yield "-S -n, a real server before its service", "".join(s_lines[1:2] + s_lines[:1] + s_lines[2:])
    yield "-S -n, a service twice", s_lines[0] + big_save
    yield "-S -n, options in another order", big_save.replace(" -m -w 1\n", " -w 1 -m\n", 1)
    yield "-S -n, no scheduler", big_save.replace(" -s rr\n", "\n", 1)
    yield "-S -n, persistence without a timeout", big_save.replace(" -s rr\n", " -s rr -p\n", 1)
    yield "-S -n, a port past 65535", big_save.replace(":8080 -m", ":80800 -m", 1)
    yield "-S -n, trailing spaces", big_save.replace("\n", "  \n")
    yield "-S -n, no final newline", big_save.rstrip("\n")
    yield "-S -n, an IPv6 service", big_save.replace("-A -t 10.96.1.3:80", "-A -t [fd00::3]:80", 1)
    yield "empty", ""
    yield "only the headers", "".join(lines[:3])
    for path in sorted(FIX.glob("*.txt")):
        yield str(path.relative_to(ROOT)), path.read_text()


def _model(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch, glue: dict[str, str]) -> Any:
    monkeypatch.setattr(ipvs, "FAST", fast)
    try:
        vss, fmt = ipvs._read_vss(text, "dump")
        model: Any = (fmt, [(v.protocol, v.address, v.port, v.fwmark, v.scheduler, v.sched_flags, v.persistent,
                             v.notes, v.forwards, v.ipv6, v.line, [b.to_json() for b in v.reals]) for v in vss])
    except InputError as err:
        model = ("error", err.message, err.line)
    try:
        rules = json.dumps(ipvs.parse_ipvsadm(text, "dump", **glue).to_json(), indent=1, default=str)
    except InputError as err:
        rules = f"error {err.message} {err.line}"
    return model, rules


DUMPS = list(_dumps())
GLUE = {"ipset_text": (FIX / "ipset.txt").read_text(), "ip_addr_text": (FIX / "ip-addr-kube-ipvs0.txt").read_text()}


@pytest.mark.parametrize("name,text", DUMPS, ids=[d[0] for d in DUMPS])
def test_the_fast_reader_gives_the_general_readers_model(name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _model(text, True, monkeypatch, {}) == _model(text, False, monkeypatch, {})


@pytest.mark.parametrize("name", ["generator", "kube-proxy's shapes", "fixture_vss list"])
def test_with_the_glue_too(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = dict(DUMPS)[name]
    assert _model(text, True, monkeypatch, GLUE) == _model(text, False, monkeypatch, GLUE)


def test_one_address_reads_the_same_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    text = dict(DUMPS)["generator"]
    glue: dict[str, Any] = {"only": {"10.96.0.20:80"}}
    assert _model(text, True, monkeypatch, glue) == _model(text, False, monkeypatch, glue)


def test_the_generators_tables_take_the_fast_path() -> None:
    """The generator's table and kube-proxy's shapes are read by the fast reader (else the tests above compare the
    general reader with itself)."""
    for name in ("generator", "kube-proxy's shapes", "generator, one endpoint each"):
        vss = ipvs._read_listing_fast(dict(DUMPS)[name])
        assert vss, name
    assert ipvs._read_save_fast(dict(DUMPS)["-S -n"])  # (SCTP's --sctp-service is the general reader's)
    assert sum(len(v.reals) for v in ipvs._read_listing_fast(dict(DUMPS)["generator"]) or []) == 160

"""Property: every parser, fed anything, returns a model or raises InputError; the CLI exits 0/1/2 in one line.

Inputs are random bytes and text, and mutations of the real fixtures: truncated at a random point, lines
shuffled / duplicated / deleted, 100k-character lines, flipped bits, binary garbage, two formats spliced
together, tokens replaced with hostile values, and (for Kubernetes objects) values swapped for wrong types.
Any exception other than InputError is a crash. Figures (inputs tried, distinct crash sites) are printed at the
end of the module and written to $SVCCTL_FUZZ_FIGURES (JSON) when that is set.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tarfile
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svcctl.dataplane import load_node_rules
from svcctl.dataplane.conntrack import parse_conntrack
from svcctl.dataplane.iptables import parse_iptables_save
from svcctl.dataplane.ipvs import parse_ip_addr, parse_ipset, parse_ipvsadm, parse_ipvsadm_connections
from svcctl.dataplane.nftables import parse_nft
from svcctl.errors import InputError
from svcctl.sources.base import NodeDumps
from svcctl.sources.snapshot import SnapshotSource, parse_objects

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "svcctl" / "data" / "demo"
FIX = Path(__file__).resolve().parent.parent / "fixtures"
SRC = "input.txt"

# an `iptables -t nat -L -n -v` listing of the demo Service (written for these tests)
LISTING = """\
Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    4   240 KUBE-SERVICES  all  --  *      *       0.0.0.0/0            0.0.0.0/0            /* kubernetes service portals */

Chain KUBE-SERVICES (2 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-SVC-ODX2UBAZM7RQWOIU  tcp  --  *      *       0.0.0.0/0            10.0.1.175           /* default/hostnames:default cluster IP */ tcp dpt:80

Chain KUBE-MARK-MASQ (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 MARK       all  --  *      *       0.0.0.0/0            0.0.0.0/0            MARK or 0x4000

Chain KUBE-SVC-ODX2UBAZM7RQWOIU (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-MARK-MASQ  tcp  --  *      *      !10.244.0.0/16        10.0.1.175           /* default/hostnames:default cluster IP */ tcp dpt:80
    0     0 KUBE-SEP-AAAAAAAAAAAAAAAA  all  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default -> 10.244.0.5:9376 */ statistic mode random probability 0.50000000000
    0     0 KUBE-SEP-BBBBBBBBBBBBBBBB  all  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default -> 10.244.0.6:9376 */

Chain KUBE-SEP-AAAAAAAAAAAAAAAA (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-MARK-MASQ  all  --  *      *       10.244.0.5           0.0.0.0/0            /* default/hostnames:default */
    0     0 DNAT       tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default */ tcp to:10.244.0.5:9376

Chain KUBE-SEP-BBBBBBBBBBBBBBBB (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-MARK-MASQ  all  --  *      *       10.244.0.6           0.0.0.0/0            /* default/hostnames:default */
    0     0 DNAT       tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            /* default/hostnames:default */ tcp to:10.244.0.6:9376
"""

CONNTRACK = """\
tcp      6 86395 ESTABLISHED src=10.244.0.9 dst=10.0.1.175 sport=51234 dport=80 src=10.244.0.5 dst=10.244.0.9 sport=9376 dport=51234 [ASSURED] mark=0 use=1
tcp      6 117 TIME_WAIT src=172.18.0.3 dst=10.0.1.175 sport=40001 dport=80 src=10.244.0.6 dst=10.244.0.1 sport=9376 dport=40001 [ASSURED] mark=0 use=1
udp      17 29 src=10.244.0.9 dst=10.0.0.10 sport=5353 dport=53 [UNREPLIED] src=10.244.0.2 dst=10.244.0.9 sport=53 dport=5353 mark=0 use=1
ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.0.9 dst=10.0.1.175 sport=51240 dport=80 src=10.244.0.5 dst=10.244.0.9 sport=9376 dport=51240 [ASSURED] mark=0 use=1
icmp     1 29 src=10.244.0.9 dst=10.0.1.175 type=8 code=0 id=7 src=10.0.1.175 dst=10.244.0.9 type=0 code=0 id=7 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.
"""


def _b(path: Path) -> bytes:
    return path.read_bytes()


def _counters_seed() -> bytes:
    """`iptables-save -c` of the demo: `[packets:bytes]` before every rule."""
    from gen_dumps import demo_cluster, iptables_save

    return iptables_save(demo_cluster(), counters=True).encode()


def _cluster_json() -> bytes:
    return json.dumps(yaml.safe_load((DEMO / "cluster.yaml").read_text()), indent=1).encode()


SEEDS: dict[str, list[bytes]] = {
    "iptables-save": [_b(DEMO / "nodes/kind-worker/iptables-save.txt"), _counters_seed()],
    "iptables-list": [LISTING.encode()],
    "ipvsadm": [_b(DEMO / "nodes/kind-worker/ipvsadm.txt"), _b(FIX / "ipvs/full.txt")],
    "ipvsadm-stats": [_b(FIX / "ipvs/stats.txt"), _b(FIX / "ipvs/rate.txt")],
    "ipvsadm-save": [_b(FIX / "ipvs/save.txt")],
    "ipvsadm-conns": [_b(FIX / "ipvs/conns.txt")],
    "ipset": [_b(FIX / "ipvs/ipset.txt")],
    "ip-addr": [_b(FIX / "ipvs/ip-addr-kube-ipvs0.txt")],
    "nft-text": [_b(DEMO / "nodes/kind-worker/nft.txt"), _b(FIX / "nft/layout-b.txt")],
    "nft-json": [_b(FIX / "nft/layout-b.json")],
    "nft-script": [_b(FIX / "nft/layout-b.nft")],
    "conntrack": [CONNTRACK.encode()],
    "objects-yaml": [_b(DEMO / "cluster.yaml")],
    "objects-json": [_cluster_json()],
}
ALL_SEEDS = [s for seeds in SEEDS.values() for s in seeds]


def _text(data: bytes) -> str:
    """What svcctl's file reader hands a parser (UTF-8, undecodable bytes replaced)."""
    return data.decode("utf-8", errors="replace")


def _parse_list(data: bytes) -> object:
    return parse_iptables_save(_text(data), SRC)


PARSERS: dict[str, tuple[list[str], Callable[[bytes], object]]] = {
    # name: (seed families, call)
    "parse_iptables_save": (["iptables-save"], lambda d: parse_iptables_save(_text(d), SRC)),
    "parse_iptables_save(only)": (["iptables-save"], lambda d: parse_iptables_save(
        _text(d), SRC, only={"default/hostnames", "10.0.1.175:80", "kube-system/kube-dns:dns"})),
    "iptables -L -n -v": (["iptables-list"], _parse_list),
    "parse_ipvsadm -Ln": (["ipvsadm"], lambda d: parse_ipvsadm(_text(d), SRC)),
    "parse_ipvsadm --stats/--rate": (["ipvsadm-stats"], lambda d: parse_ipvsadm(_text(d), SRC)),
    "parse_ipvsadm -S -n": (["ipvsadm-save"], lambda d: parse_ipvsadm(_text(d), SRC)),
    "parse_ipvsadm_connections -Lnc": (["ipvsadm-conns"], lambda d: parse_ipvsadm_connections(_text(d), SRC)),
    "parse_ipvsadm + glue": (["ipvsadm", "ipset", "ip-addr"], lambda d: parse_ipvsadm(
        _text(SEEDS["ipvsadm"][0]), SRC, ipset_text=_text(d), ip_addr_text=_text(d), iptables_text=_text(d))),
    "parse_ipset": (["ipset"], lambda d: parse_ipset(_text(d), SRC)),
    "parse_ip_addr": (["ip-addr"], lambda d: parse_ip_addr(_text(d), SRC)),
    "parse_nft text": (["nft-text", "nft-script"], lambda d: parse_nft(_text(d), SRC)),
    "parse_nft json": (["nft-json"], lambda d: parse_nft(_text(d), SRC)),
    "parse_conntrack": (["conntrack"], lambda d: parse_conntrack(_text(d), SRC)),
    "parse_objects": (["objects-yaml", "objects-json"], lambda d: parse_objects(d, SRC)),
    "load_node_rules (detected)": (["iptables-save", "ipvsadm", "nft-text"], lambda d: load_node_rules(
        NodeDumps("n", {"iptables": _text(d), "ipvs": _text(d), "nftables": _text(d)},
                  {"iptables": SRC, "ipvs": SRC, "nftables": SRC}))),
}

# ---------------------------------------------------------------------------------------------- figures

TRIED: Counter[str] = Counter()
CRASH_SITES: dict[str, set[str]] = {}
CRASH_EXAMPLES: dict[str, str] = {}


def _site(exc: BaseException) -> str:
    """Where a crash happened: exception type and the innermost svcctl frame (shrinking re-runs count once)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/svcctl/" in f.filename]
    f = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__} at {Path(f.filename).name}:{f.lineno}"


def _crash(target: str, exc: BaseException, data: bytes) -> None:
    site = _site(exc)
    CRASH_SITES.setdefault(target, set()).add(site)
    CRASH_EXAMPLES.setdefault(f"{target}: {site}", repr(data[:300]))


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    started = time.monotonic()
    yield
    total = sum(TRIED.values())
    crashes = sorted(f"{t}: {s}" for t, sites in CRASH_SITES.items() for s in sites)
    doc = {"inputs": dict(sorted(TRIED.items())), "total": total, "crash_sites": crashes,
           "examples": CRASH_EXAMPLES, "seconds": round(time.monotonic() - started, 1)}
    print(f"\nfuzz: {total} inputs tried, {len(crashes)} distinct crash sites, {doc['seconds']} s")
    for name, n in sorted(TRIED.items()):
        print(f"  {n:6d}  {name}")
    for c in crashes:
        print(f"  CRASH {c}")
    out = os.environ.get("SVCCTL_FUZZ_FIGURES")
    if out:
        Path(out).write_text(json.dumps(doc, indent=1) + "\n")


# ---------------------------------------------------------------------------------------------- strategies

HOSTILE_TOKENS = ["", "-1", "0", "99999999999999999999999", "1e308", "nan", "0x", "::", ":::", "[", "]", "[::1",
                  "{", "}", "(", ")", "\"", "'", "\\", "/*", "*/", "-A", "-a", "-j", "--", "=", "==", ",", ";",
                  "\t", "é", "\u202e", "\ufeff", "１２", "²", "%s", "${x}", "*nat", "COMMIT", "->", "Masq",
                  "10.0.1.175:", ":80", "10.0.1.175:99999", "1.2.3.4/33", "fe80::1%eth0", "null", "~", "&a",
                  "*a", "!!binary", "<<", "---", "...", "? "]
HUGE = 100_000


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


@st.composite
def mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One damaging edit of `data`."""
    op = draw(st.sampled_from(["truncate", "shuffle", "duplicate", "delete", "huge", "flip", "garbage", "mix",
                               "token", "crlf", "wrong"]))
    lines = _lines(data)
    i = draw(st.integers(0, len(lines) - 1))
    if op == "truncate":
        return data[:draw(st.integers(0, len(data)))]
    if op == "shuffle":
        rnd = draw(st.randoms(use_true_random=False))
        lines = lines[:]
        rnd.shuffle(lines)
        return b"".join(lines)
    if op == "duplicate":
        j = draw(st.integers(i, min(len(lines), i + 5)))
        return b"".join(lines[:j] + lines[i:j] * draw(st.integers(1, 3)) + lines[j:])
    if op == "delete":
        j = draw(st.integers(i, min(len(lines), i + 5)))
        return b"".join(lines[:i] + lines[j:])
    if op == "huge":
        prefix = draw(st.sampled_from([b"", b"-A KUBE-SERVICES ", b"TCP  ", b"  -> ", b"tcp      6 1 ", b"chain ",
                                       b"- kind: ", b"{\"a\": \"", b"    ", b"Chain "]))
        fill = draw(st.sampled_from([b"a", b" ", b"x ", b"[", b"{", b"1", b"-", b"\"", b"/*"]))
        line = prefix + fill * (HUGE // len(fill)) + b"\n"
        return b"".join(lines[:i] + [line] + lines[i:])
    if op == "flip":
        buf = bytearray(data) or bytearray(b"\x00")
        for _ in range(draw(st.integers(1, 8))):
            k = draw(st.integers(0, len(buf) - 1))
            buf[k] ^= 1 << draw(st.integers(0, 7))
        return bytes(buf)
    if op == "garbage":
        pos = draw(st.integers(0, len(data)))
        return data[:pos] + draw(st.binary(min_size=1, max_size=300)) + data[pos:]
    if op == "mix":
        other = _lines(draw(st.sampled_from(ALL_SEEDS)))
        a, b = sorted((draw(st.integers(0, len(other))), draw(st.integers(0, len(other)))))
        return b"".join(lines[:i] + other[a:b] + lines[i:])
    if op == "token":
        text = _text(data)
        toks = text.split(" ")
        k = draw(st.integers(0, len(toks) - 1))
        toks[k] = draw(st.sampled_from(HOSTILE_TOKENS) | st.text(max_size=12))
        return " ".join(toks).encode("utf-8", errors="surrogatepass")
    if op == "crlf":
        return data.replace(b"\n", b"\r\n") if draw(st.booleans()) else data.replace(b"\n", b"\r")
    # wrong: another format entirely
    return draw(st.sampled_from(ALL_SEEDS))


@st.composite
def damaged(draw: st.DrawFn, families: list[str]) -> bytes:
    data = draw(st.sampled_from([s for f in families for s in SEEDS[f]]))
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutation(data))
    return data


def random_input() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=2000).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
        st.lists(st.sampled_from(HOSTILE_TOKENS) | st.text(alphabet="-*:[]{}()=,;/ ACKTUPSab0123456789.\n\t",
                                                           max_size=30), max_size=80)
        .map(lambda xs: " ".join(xs).encode("utf-8", errors="surrogatepass")),
    )


def _check(target: str, fn: Callable[[bytes], object], data: bytes) -> None:
    TRIED[target] += 1
    try:
        fn(data)
    except InputError as e:
        assert e.message.strip(), "InputError without a message"
        assert "\n" not in e.message.strip(), f"multi-line error message: {e.message!r}"
        assert e.source is not None, f"InputError without the file it is about: {e.message!r}"
        if e.line is not None:
            assert e.line >= 1, e.line
    except RecursionError as e:
        _crash(target, e, data)
        raise
    except Exception as e:
        _crash(target, e, data)
        raise


FUZZ = settings(max_examples=int(os.environ.get("SVCCTL_FUZZ_EXAMPLES", "120")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


@pytest.mark.parametrize("target", list(PARSERS))
@FUZZ
@given(data=st.data())
def test_damaged_fixture_gives_model_or_input_error(target: str, data: st.DataObject) -> None:
    families, fn = PARSERS[target]
    _check(target, fn, data.draw(damaged(families)))


@pytest.mark.parametrize("target", list(PARSERS))
@settings(FUZZ, max_examples=max(20, FUZZ.max_examples // 2))
@given(blob=random_input())
def test_random_input_gives_model_or_input_error(target: str, blob: bytes) -> None:
    _check(target, PARSERS[target][1], blob)


# ---------------------------------------------------------------------------------------------- Kubernetes objects

WRONG_VALUES: list[Any] = [None, "", "x", -1, 0, 2**70, 1.5, True, [], {}, ["a"], {"a": "b"}, [None], [{}],
                           "10.0.1.175", "None", "::", 65536, "80", "http", [1, 2], {"items": None}]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


DEMO_DOC = yaml.safe_load((DEMO / "cluster.yaml").read_text())
DEMO_PATHS = list(_paths(DEMO_DOC))


@st.composite
def wrong_typed_cluster(draw: st.DrawFn) -> Any:
    """The demo List with 1-4 values swapped for wrong types or deleted (what a hand-edited dump looks like)."""
    doc = copy.deepcopy(DEMO_DOC)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths[1:]))
        delete = draw(st.booleans()) and not isinstance(path[-1], int)
        value = draw(st.sampled_from(WRONG_VALUES) | st.integers() | st.text(max_size=8))
        doc = _set(doc, path, copy.deepcopy(value), delete)
    return doc


def _snapshot_checks(path: str) -> None:
    """Load a snapshot and ask it what the commands ask, the way the endpoints analysis does."""
    src = SnapshotSource(path)
    from svcctl.ops.endpoints import analyze_service

    for s in src.list_services(None):
        analyze_service(src, s.meta.namespace, s.meta.name, why_not=True)


@FUZZ
@given(doc=wrong_typed_cluster(), as_json=st.booleans())
def test_wrong_typed_objects_through_snapshot_and_analysis(doc: Any, as_json: bool) -> None:
    data = json.dumps(doc).encode() if as_json else yaml.safe_dump(doc).encode()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("c.json" if as_json else "c.yaml")
        p.write_bytes(data)
        _check("SnapshotSource + analyze_service (wrong types)", lambda _: _snapshot_checks(str(p)), data)


def _dump_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)


def _cluster_info_files(doc: Any) -> dict[str, bytes]:
    """A `kubectl cluster-info dump --output-directory` tree of the demo: <ns>/<resource>.json typed lists."""
    kinds = {"Service": "services", "Pod": "pods", "Event": "events", "Endpoints": "endpoints",
             "EndpointSlice": "endpointslices", "Node": "nodes"}
    per: dict[str, dict[str, list[Any]]] = {}
    for item in doc.get("items", []):
        ns = item.get("metadata", {}).get("namespace") or ""
        per.setdefault(ns, {}).setdefault(kinds.get(item.get("kind"), "other"), []).append(item)
    files: dict[str, bytes] = {}
    for ns, by in per.items():
        for res, items in by.items():
            kind = {v: k for k, v in kinds.items()}.get(res, "Unknown")
            rel = f"{ns}/{res}.json" if ns else f"{res}.json"
            files[rel] = json.dumps({"kind": f"{kind}List", "apiVersion": "v1", "items": items}).encode()
    files["default/hostnames-632524106-bbpiw/logs.txt"] = b"log line\n"
    for name in ("iptables-save.txt", "ipvsadm.txt", "nft.txt"):
        files[f"nodes/kind-worker/{name}"] = (DEMO / "nodes/kind-worker" / name).read_bytes()
    return files


CLUSTER_INFO = _cluster_info_files(DEMO_DOC)


@st.composite
def damaged_tree(draw: st.DrawFn) -> dict[str, bytes]:
    files = dict(CLUSTER_INFO)
    for _ in range(draw(st.integers(1, 3))):
        rel = draw(st.sampled_from(sorted(files)))
        files[rel] = draw(mutation(files[rel]))
    return files


@FUZZ
@given(files=damaged_tree())
def test_cluster_info_dump_tree(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        _dump_tree(Path(d), files)
        _check("SnapshotSource (cluster-info dump tree)", lambda _: _snapshot_checks(d), b"")


def _tar_bytes(files: dict[str, bytes], compress: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tf:
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TARBALL = _tar_bytes(CLUSTER_INFO, True)
TAR_PLAIN = _tar_bytes(CLUSTER_INFO, False)


@st.composite
def damaged_tarball(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["inner", "outer-gz", "outer-tar", "random"]))
    suffix = draw(st.sampled_from([".tar.gz", ".tgz", ".tar"]))
    if kind == "inner":
        return _tar_bytes(draw(damaged_tree()), suffix != ".tar"), suffix
    if kind == "outer-gz":
        return draw(mutation(TARBALL)), ".tar.gz"
    if kind == "outer-tar":
        return draw(mutation(TAR_PLAIN)), ".tar"
    return draw(st.binary(max_size=4000)), suffix


@FUZZ
@given(tb=damaged_tarball())
def test_tarballs(tb: tuple[bytes, str]) -> None:
    data, suffix = tb
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"snap{suffix}"
        p.write_bytes(data)
        _check("SnapshotSource (tarball)", lambda _: _snapshot_checks(str(p)), data)


# ---------------------------------------------------------------------------------------------- through the CLI


def run_cli(args: list[str]) -> tuple[int, str, str]:
    from svcctl.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run("svcctl", args)
    return code, out.getvalue(), err.getvalue()


def assert_clean_exit(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 1, 2), f"exit {code}: {err[-500:]}"
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, err[-2000:]
        assert lines[0].startswith("error: "), lines[0]
        # (naming the file is checked on the fixed corpus, test_bad_input_corpus.py: here a damaged dump can
        # legitimately turn into a usage error, e.g. "IPVS mode needs `ipvsadm -Ln` output")


IPT = str(DEMO / "nodes/kind-worker/iptables-save.txt")
CLI_CASES: dict[str, tuple[list[str], list[str], str]] = {
    # name: (seed families, argv with {} for the file, file suffix)
    "rules --iptables-save": (["iptables-save", "iptables-list"], ["rules", "--iptables-save", "{}"], ".txt"),
    "rules SVC --iptables-save": (["iptables-save"], ["rules", "default/hostnames", "--iptables-save", "{}"],
                                  ".txt"),
    "rules --ipvsadm": (["ipvsadm", "ipvsadm-stats", "ipvsadm-save"], ["rules", "--ipvsadm", "{}"], ".txt"),
    "rules --nft": (["nft-text", "nft-json"], ["rules", "--nft", "{}", "-o", "json"], ".txt"),
    "trace VIP --conntrack": (["conntrack"], ["trace", "10.0.1.175:80", "--iptables-save", IPT,
                                              "--conntrack", "{}"], ".txt"),
    "endpoints --snapshot": (["objects-yaml", "objects-json"], ["endpoints", "hostnames", "--why-not",
                                                                "--snapshot", "{}"], ".yaml"),
    "trace --snapshot": (["objects-yaml"], ["trace", "hostnames", "--snapshot", "{}", "-o", "yaml"], ".yaml"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
@settings(FUZZ, max_examples=max(15, FUZZ.max_examples // 3))
@given(data=st.data())
def test_cli_exit_codes_and_one_line_errors(case: str, data: st.DataObject) -> None:
    families, argv, suffix = CLI_CASES[case]
    blob = data.draw(damaged(families) | random_input())
    with tempfile.TemporaryDirectory() as d:
        p = str(Path(d) / f"in{suffix}")
        Path(p).write_bytes(blob)
        TRIED[f"CLI {case}"] += 1
        code, _out, err = run_cli([a.replace("{}", p) for a in argv])
        if code not in (0, 1, 2) or "Traceback" in err:
            CRASH_SITES.setdefault(f"CLI {case}", set()).add(err.strip().splitlines()[-1][:160] if err.strip()
                                                                else f"exit {code}")
        assert_clean_exit(code, err)


@settings(FUZZ, max_examples=max(15, FUZZ.max_examples // 3))
@given(doc=wrong_typed_cluster(), cmd=st.sampled_from([["endpoints", "hostnames", "--why-not"],
                                                        ["trace", "hostnames", "--no-dns"],
                                                        ["dns", "hostnames"],
                                                        ["endpoints", "-A", "-o", "json"]]))
def test_cli_on_wrong_typed_snapshot(doc: Any, cmd: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = str(Path(d) / "c.yaml")
        Path(p).write_text(yaml.safe_dump(doc))
        TRIED["CLI wrong-typed snapshot"] += 1
        code, _out, err = run_cli([*cmd, "--snapshot", p])
        if code not in (0, 1, 2) or "Traceback" in err:
            CRASH_SITES.setdefault("CLI wrong-typed snapshot", set()).add(
                err.strip().splitlines()[-1][:160] if err.strip() else f"exit {code}")
        assert_clean_exit(code, err)


def test_seeds_parse_cleanly() -> None:
    """The unmutated seeds are valid: a failure above is the damage, not the fixture."""
    for target, (families, fn) in PARSERS.items():
        if target in ("load_node_rules (detected)", "parse_ipvsadm + glue"):
            continue
        for f in families:
            for seed in SEEDS[f]:
                fn(seed)
    _snapshot_checks(str(DEMO / "cluster.yaml"))
    with tempfile.TemporaryDirectory() as d:
        _dump_tree(Path(d), CLUSTER_INFO)
        src = SnapshotSource(d)
        assert {s.meta.name for s in src.services} >= {"hostnames", "kube-dns"}
        assert src.node_dumps("kind-worker") is not None
        p = Path(d) / "snap.tar.gz"
        p.write_bytes(TARBALL)
        assert len(SnapshotSource(str(p)).pods) == len(src.pods)


_NUMBER_RE = __import__("re").compile(r"(?<![0-9A-Za-z])[0-9]+(?![0-9A-Za-z])")


@pytest.mark.parametrize("target", [t for t in PARSERS if t != "load_node_rules (detected)"])
@pytest.mark.parametrize("digit", ["²", "١", "٣٤", "nan", "1e999", "9" * 5000])
def test_unicode_digit_in_every_number(target: str, digit: str) -> None:
    """`"²".isdigit()` is True but `int("²")` raises: each number of each seed, in turn, becomes a non-ASCII
    digit (superscript, Arabic-Indic); the parser must still return a model or InputError."""
    families, fn = PARSERS[target]
    for f in families:
        for seed in SEEDS[f]:
            text = _text(seed)
            spots = list(_NUMBER_RE.finditer(text))[:400]
            for m in spots:
                _check(target, fn, (text[:m.start()] + digit + text[m.end():]).encode())

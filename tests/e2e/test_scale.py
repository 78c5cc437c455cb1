"""Scale paths give the same answers as the plain ones: the nft / ipvsadm one-Service cut, the commands that use
it, the benchmark's nft listing printer, and `endpoints -A` from a fixed number of paged lists.
(Timings are printed by benchmarks/, never asserted here.)"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apiserver import FakeAPIServer
from gen_big_dumps import nft_listing_lines, write_ipvsadm, write_nft_listing
from gen_cluster import gen_cluster
from gen_dumps_ipvs_nft import big_services, gen_nft_ruleset, nft_list_via_netns, nft_script

from svcctl.dataplane.ipvs import parse_ipvsadm
from svcctl.dataplane.nftables import parse_nft
from svcctl.errors import InputError

ROOT = Path(__file__).resolve().parent.parent.parent


def _parses(parse: Callable[[str, str], Any], path: Path) -> bool:
    try:
        parse(path.read_text(), str(path))
        return True
    except InputError:
        return False


# the fixtures that are kube-proxy tables (others — iptables-nft listings, connection lists, ipsets — are
# tested elsewhere), chosen at collection time so no test skips
NFT_FILES = [p for p in sorted((ROOT / "tests" / "fixtures" / "nft").glob("*")) + [
    ROOT / "svcctl" / "data" / "demo" / "nodes" / "kind-worker" / "nft.txt"] if _parses(parse_nft, p)]
IPVS_FILES = [p for p in sorted((ROOT / "tests" / "fixtures" / "ipvs").glob("*")) + [
    ROOT / "svcctl" / "data" / "demo" / "nodes" / "kind-worker" / "ipvsadm.txt"] if _parses(parse_ipvsadm, p)]
RunCLI = Callable[..., tuple[int, str, str]]


def _keys(rules: Any) -> set[str]:
    """Every way a user can name an entry: ns/svc, ns/svc:port, VIP, VIP:port, :nodePort."""
    keys: set[str] = set()
    for e in rules.services:
        if e.name:
            keys |= {e.name, e.name.split(":")[0]}
        if e.address and not e.address.startswith("fwmark"):
            keys |= {e.address, f"[{e.address}]:{e.port}" if ":" in e.address else f"{e.address}:{e.port}"}
        if e.kind == "NodePort":
            keys.add(f":{e.port}")
    return keys


def _selected(rules: Any, key: str) -> list[dict[str, Any]]:
    out = []
    for e in rules.services:
        addr = f"[{e.address}]:{e.port}" if ":" in e.address else f"{e.address}:{e.port}"
        if (key.startswith(":") and e.kind == "NodePort" and str(e.port) == key[1:]) or key in (e.address, addr) or (
                e.name is not None and (e.name == key or e.name.startswith(key + ":"))):
            out.append(e.to_json())
    return out


@pytest.mark.parametrize("path", NFT_FILES, ids=lambda p: p.name)
def test_nft_one_service_cut_gives_the_whole_parse_answer(path: Path) -> None:
    text = path.read_text()
    whole = parse_nft(text, str(path))
    keys = _keys(whole)
    assert keys
    for key in sorted(keys):
        cut = parse_nft(text, str(path), only={key})
        assert _selected(cut, key) == _selected(whole, key), key
        if path.suffix != ".json":
            assert any(n.startswith("only the chains") for n in cut.notes)


@pytest.mark.parametrize("path", IPVS_FILES, ids=lambda p: p.name)
def test_ipvsadm_one_address_cut_gives_the_whole_parse_answer(path: Path) -> None:
    text = path.read_text()
    whole = parse_ipvsadm(text, str(path))
    for key in sorted(_keys(whole)):
        cut = parse_ipvsadm(text, str(path), only={key})
        assert _selected(cut, key) == _selected(whole, key), key
        assert cut.stats.to_json() == whole.stats.to_json()  # counts are the whole table's


def test_big_dumps_cut_to_one_service(tmp_path: Path) -> None:
    nft, ipvs = tmp_path / "nft.txt", tmp_path / "ipvs.txt"
    write_nft_listing(str(nft), 300, 4)
    write_ipvsadm(str(ipvs), 300, 4)
    svc = big_services(300, 4)[217]
    for text, parse in ((nft.read_text(), parse_nft), (ipvs.read_text(), parse_ipvsadm),
                        (gen_nft_ruleset(300, 4), parse_nft)):
        whole = parse(text, "big")  # type: ignore[operator]
        for key in (f"{svc.cluster_ip}:80", svc.cluster_ip, f"{svc.namespace}/{svc.name}"):
            if parse is parse_ipvsadm and "/" in key:
                continue  # IPVS entries carry no names
            cut = parse(text, "big", only={key})  # type: ignore[operator]
            assert len(cut.services) == 1
            assert _selected(cut, key) == _selected(whole, key)
            assert [b.ip for b in cut.services[0].backends] == sorted(ip for ip, _ in svc.endpoints)


def test_a_damaged_dump_is_reported_by_the_whole_parse(tmp_path: Path) -> None:
    """The cut must not hide where a dump is broken: the error names the line of the original text."""
    text = "".join(ln + "\n" for ln in nft_listing_lines(big_services(5, 2)))
    broken = text[: text.index("\tchain endpoint-", len(text) // 2) + 40]  # cut off in the middle of a chain
    with pytest.raises(InputError) as whole:
        parse_nft(broken, "node.nft")
    with pytest.raises(InputError) as cut:
        parse_nft(broken, "node.nft", only={"ns1/svc1"})
    assert str(cut.value) == str(whole.value)


def test_rules_and_trace_take_the_cut_path(tmp_path: Path, run_cli: RunCLI) -> None:
    nft = tmp_path / "nft.txt"
    write_nft_listing(str(nft), 50, 3)
    svc = big_services(50, 3)[31]
    code, out, err = run_cli(["rules", f"{svc.cluster_ip}:80", "--nft", str(nft), "-o", "json"])
    assert code == 0, err
    doc = json.loads(out)
    assert [(s["address"], len(s["backends"])) for s in doc["services"]] == [(svc.cluster_ip, 3)]
    assert any(n.startswith("only the chains") for n in doc["notes"])
    assert doc["summary"]["chains"] == 50 * 4 + 16  # the whole dump's chains
    code, out, err = run_cli(["trace", f"{svc.cluster_ip}:80", "--nft", str(nft), "-o", "json"])
    assert code == 0, err
    assert "only the chains of the Service asked about were read" in out


def test_nft_listing_printer_matches_real_nft() -> None:
    """The benchmark's listing printer against `nft list` of the same ruleset loaded by the real nft."""
    if os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("root, nft and ip are needed to load a ruleset into a network namespace")
        pytest.skip("needs root, nft and ip netns")
    services = big_services(25, 3)
    real = nft_list_via_netns(nft_script(services, pod_cidr="10.128.0.0/9", service_cidr="10.96.0.0/12"))
    mine = "".join(ln + "\n" for ln in nft_listing_lines(services))
    assert _no_elements(mine) == _no_elements(real)  # the same text, element order aside (nft hashes sets)
    a, b = parse_nft(mine, "x").to_json(), parse_nft(real, "x").to_json()
    assert a == b


def _no_elements(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "elements = {" not in ln and not ln.startswith("\t\t\t     ")]


def test_endpoints_all_namespaces_reads_a_fixed_number_of_lists(apiserver: Callable[..., FakeAPIServer],
                                                                 run_cli: RunCLI) -> None:
    """600 Services: pages of three lists, not one slice list per Service; counts as the brute force says."""
    objs = gen_cluster(600, pods_per_service=3, nodes=5)
    srv = apiserver(objs, copy=False)
    code, out, err = run_cli(["endpoints", "-A", "-o", "json", "--kubeconfig", str(srv.kubeconfig)])
    assert code == 0, err
    lists = [(r.path, r.query.get("limit")) for r in srv.requests if r.verb == "list"]
    paths = sorted({p for p, _ in lists})
    assert paths == ["/api/v1/pods", "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices"]
    assert len(lists) == 2 + 4 + 2  # 600 Services / 1800 Pods / 600 slices at 500 a page
    assert all(limit == "500" for _, limit in lists)
    doc = json.loads(out)
    items = doc.get("items") or doc.get("services")
    assert len(items) == 600
    row = next(i for i in items if i["name"] == "hostnames")
    assert (row["ready"], row["notReady"], row["expected"]) == (2, 1, 3)
    assert all((i["ready"], i["notReady"], i["expected"]) == (2, 1, 3) for i in items)


def test_cut_tests_cover_the_fixtures() -> None:
    assert len(NFT_FILES) >= 10 and len(IPVS_FILES) >= 4

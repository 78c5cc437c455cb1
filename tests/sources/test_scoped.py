"""The streamed one-Service cut of a dump file (sources/scoped.py) answers exactly what the whole dump answers.

Every Service of varied generated dumps (NodePorts, external and LB IPs with source ranges, traffic policy
Local, affinity, no endpoints, UDP, with and without kube-proxy's comments, with counters) is asked by name, by
address and by both, with tiny chunks so blocks cross chunk edges; the parse of the cut must equal the parse of
the whole file. Then the cases where the cut must step aside (and the whole file is read, as before).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gen_big_dumps import write_ipvsadm
from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, iptables_save

import svcctl.sources.scoped as scoped
from svcctl.dataplane.iptables import parse_iptables_save
from svcctl.dataplane.ipvs import parse_ipvsadm
from svcctl.sources.node import read_files


def varied(comments: bool) -> GenCluster:
    svcs = [
        GenService("default", "web", "10.96.0.10", [GenPort("http", 80, 8080, node_port=30080)],
                   [GenEndpoint("10.244.1.1"), GenEndpoint("10.244.1.2", local=False)]),
        GenService("default", "lb", "10.96.0.11", [GenPort("https", 443, 8443, node_port=30443)],
                   [GenEndpoint("10.244.1.3")], external_ips=["198.18.0.5"], lb_ips=["198.18.0.6"],
                   source_ranges=["198.18.1.0/24"], etp_local=True, health_check_node_port=32000),
        GenService("kube-system", "dns", "10.96.0.12", [GenPort("dns", 53, 53, "UDP"), GenPort("dns-tcp", 53, 53)],
                   [GenEndpoint("10.244.1.4")], affinity_seconds=10800),
        GenService("default", "empty", "10.96.0.13", [GenPort("http", 80, 8080)], []),
        GenService("default", "local", "10.96.0.14", [GenPort("http", 80, 8080)],
                   [GenEndpoint("10.244.1.5", local=False)], itp_local=True),
    ]
    for i in range(40):  # filler, so the interesting ones sit among others
        svcs.append(GenService(f"ns{i % 3}", f"svc{i}", f"10.96.1.{i + 1}", [GenPort("http", 80, 8080)],
                               [GenEndpoint(f"10.244.2.{i * 4 + j + 1}") for j in range(3)]))
    return GenCluster(services=svcs, comments=comments)


def entries(rules: Any) -> str:
    return json.dumps([s.to_json() for s in rules.services], sort_keys=True)


@pytest.fixture(params=[True, False], ids=["mapped", "read"])
def tiny_chunks(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Chunks (and mapped windows: the granularity, 4 KB) small enough that blocks cross their edges, through a
    mapped window of the file and through chunks read into a buffer."""
    monkeypatch.setattr(scoped, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(scoped, "CHUNK", 2048)
    monkeypatch.setattr(scoped, "MAPPED", request.param)


@pytest.mark.parametrize("comments", [True, False])
@pytest.mark.parametrize("counters", [False, True])
def test_cut_iptables_equals_the_whole_dump(tmp_path: Path, tiny_chunks: None, comments: bool,
                                            counters: bool) -> None:
    cluster = varied(comments)
    text = iptables_save(cluster, counters=counters)
    path = tmp_path / "iptables-save.txt"
    path.write_text(text)
    asked = 0
    for svc in cluster.services[:8]:
        key = f"{svc.namespace}/{svc.name}"
        port = svc.ports[0]
        for only in ({key}, {f"{svc.cluster_ip}:{port.port}"}, {key, svc.cluster_ip},
                     {f"{key}:{port.name}"}):
            whole = parse_iptables_save(text, str(path), only=set(only))
            cut = scoped.read_scoped(str(path), "iptables", set(only))
            if cut is None:  # stepping aside is allowed (the whole file is then read); never a different answer
                continue
            asked += 1
            got = parse_iptables_save(cut[0], str(path), only=set(only))
            assert entries(got) == entries(whole), (only, cut[0])
            assert len(cut[0]) < len(text) // 3
    # the cut was really taken: for every ask with comments; without them, by address and by `ns/svc:port`
    assert asked >= (28 if comments else 12), asked


def test_nodeport_entries_come_through(tmp_path: Path, tiny_chunks: None) -> None:
    cluster = varied(True)
    path = tmp_path / "iptables-save.txt"
    path.write_text(iptables_save(cluster))
    cut = scoped.read_scoped(str(path), "iptables", {"default/web"})
    assert cut is not None
    kinds = {e.kind for e in parse_iptables_save(cut[0], "x", only={"default/web"}).services}
    assert "NodePort" in kinds and "ClusterIP" in kinds


@pytest.mark.parametrize("ask", ["10.96.0.16:80", "10.96.0.17", ":30000"])
def test_cut_ipvs_equals_the_whole_table(tmp_path: Path, tiny_chunks: None, ask: str) -> None:
    path = tmp_path / "ipvsadm.txt"
    write_ipvsadm(str(path), 60)
    text = path.read_text()
    only = {ask}
    whole = parse_ipvsadm(text, str(path), only=only)
    cut = scoped.read_scoped(str(path), "ipvs", only)
    assert cut is not None
    got = parse_ipvsadm(cut[0], str(path), only=only)
    assert entries(got) == entries(whole)
    if ask != ":30000":
        assert got.services


def test_steps_aside(tmp_path: Path, tiny_chunks: None) -> None:
    text = iptables_save(varied(True))
    p = tmp_path / "d.txt"
    # not programmed here: absence needs the whole dump
    p.write_text(text)
    assert scoped.read_scoped(str(p), "iptables", {"default/nosuch"}) is None
    # pasted with CRLF line ends, or with a prompt line first
    p.write_text(text.replace("\n", "\r\n"))
    assert scoped.read_scoped(str(p), "iptables", {"default/web"}) is None
    p.write_text("$ sudo iptables-save\n" + text)
    assert scoped.read_scoped(str(p), "iptables", {"default/web"}) is None
    # a truncated dump (its last table without COMMIT)
    p.write_text(text[: text.rindex("COMMIT")])
    assert scoped.read_scoped(str(p), "iptables", {"default/web"}) is None
    # IPVS mode's iptables glue names no Service chains
    p.write_text("*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster "
                 "ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ\n"
                 "COMMIT\n")
    assert scoped.read_scoped(str(p), "iptables", {"default/web"}) is None


def test_read_files_streams_big_files_and_a_broken_cut_is_read_whole(tmp_path: Path, tiny_chunks: None) -> None:
    from svcctl.dataplane import load_node_rules
    from svcctl.errors import InputError

    text = iptables_save(varied(True))
    p = tmp_path / "d.txt"
    p.write_text(text)
    dumps = read_files({"iptables": str(p)}, "n1", only={"default/web"})
    assert dumps.streamed and len(dumps.texts["iptables"]) < len(text)
    rules = load_node_rules(dumps, only={"default/web"})
    assert any("streamed" in n for n in rules.notes)
    whole = load_node_rules(read_files({"iptables": str(p)}, "n1"), only={"default/web"})
    assert entries(rules) == entries(whole)
    # a damaged rule inside the Service's own chain: the error names its line in the real file
    lines = text.splitlines()
    bad = next(i for i, ln in enumerate(lines) if ln.startswith("-A KUBE-SVC-") and '"default/web:http' in ln)
    lines[bad] = lines[bad].replace(" -j ", " -j ", 1) + " --bogus-flag-without-value -j"
    p.write_text("\n".join(lines) + "\n")
    dumps = read_files({"iptables": str(p)}, "n1", only={"default/web"})
    with pytest.raises(InputError) as exc:
        load_node_rules(dumps, only={"default/web"})
    assert exc.value.line == bad + 1


# --------------------------------------------------------------------------- nft list table ip kube-proxy

NFT = Path(__file__).resolve().parent.parent / "fixtures" / "nft"


def nft_asks(text: str) -> list[str]:
    """Every Service of a listing by name, each of its map keys by address and address:port, each NodePort."""
    import re

    asks: set[str] = set()
    for m in re.finditer(r"chain (?:service|external)-[A-Z2-7]{8}-([^/]+)/([^/]+)/", text):
        asks.add(f"{m.group(1)}/{m.group(2)}")
    for m in re.finditer(r"([0-9a-f.:]+) \. (?:tcp|udp|sctp) \. (\d+) (?:comment \"[^\"]*\" )?:", text):
        addr = m.group(1)
        asks |= {addr, f"{addr}:{m.group(2)}" if "." in addr else f"[{addr}]:{m.group(2)}"}
    for m in re.finditer(r"(?:tcp|udp|sctp) \. (\d+) (?:comment \"[^\"]*\" )?: goto", text):
        asks.add(":" + m.group(1))
    return sorted(asks)


@pytest.mark.parametrize("name", ["layout-a", "layout-b", "ip6-a", "ip6-b", "stale"])
@pytest.mark.parametrize("chunk", [300, 2048, 1 << 20])
@pytest.mark.parametrize("mapped", [True, False])
def test_cut_nft_equals_the_whole_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                          chunk: int, mapped: bool) -> None:
    """The real `nft list table` output (the fixtures were printed by the real nft), every ask, chunks small
    enough that blocks cross their edges."""
    from svcctl.dataplane.nftables import parse_nft

    monkeypatch.setattr(scoped, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(scoped, "CHUNK", chunk)
    monkeypatch.setattr(scoped, "MAPPED", mapped)
    path = NFT / f"{name}.txt"
    text = path.read_text()
    asked = 0
    for ask in nft_asks(text):
        whole = parse_nft(text, str(path), only={ask})
        cut = scoped.read_scoped(str(path), "nftables", {ask})
        if cut is None:
            assert not whole.services or ask.startswith(":"), ask  # stepping aside only when nothing is found
            continue
        asked += 1
        got = parse_nft(cut[0], str(path), only={ask})
        assert entries(got) == entries(whole), (ask, cut[0])
        assert got.unreferenced_chains == whole.unreferenced_chains
        assert got.services or got.unreferenced_chains, ask
        if "/" in ask and got.services:  # one Service's entries, not its neighbours' with their chains missing
            assert {e.name.split(":")[0] for e in got.services} == {ask}
        assert len(cut[0]) < len(text)
    assert asked >= (6 if name.startswith("ip6") else 12), asked


def test_cut_nft_of_a_big_generated_listing(tmp_path: Path, tiny_chunks: None) -> None:
    from gen_big_dumps import service_for, write_nft_listing

    from svcctl.dataplane.nftables import parse_nft

    path = tmp_path / "nft.txt"
    write_nft_listing(str(path), 300)
    text = path.read_text()
    s = service_for(210)
    for ask in (f"{s.namespace}/{s.name}", f"{s.cluster_ip}:80", s.cluster_ip):
        cut = scoped.read_scoped(str(path), "nftables", {ask})
        assert cut is not None, ask
        assert len(cut[0]) < len(text) // 50
        got = parse_nft(cut[0], str(path), only={ask})
        assert entries(got) == entries(parse_nft(text, str(path), only={ask}))
        assert [len(e.backends) for e in got.services] == [10]


def test_cut_nft_follows_a_base_chain_and_jumps_past_the_service_chains(tmp_path: Path, tiny_chunks: None) -> None:
    """A chain kube-proxy added after the per-Service ones (a newer kube-proxy's base chain, and a helper it
    jumps to) is still read; a second table after the first makes the whole file be read."""
    from svcctl.dataplane.nftables import parse_nft

    text = (NFT / "layout-a.txt").read_text()
    body = text.rstrip("\n")
    assert body.endswith("\n}")
    late = ("\n\tchain filter-late {\n\t\ttype filter hook output priority 10; policy accept;\n"
            "\t\tip daddr 10.0.2.2 tcp dport 80 jump late-helper\n\t}\n"
            "\n\tchain late-helper {\n\t\tdrop\n\t}\n")
    p = tmp_path / "late.txt"
    p.write_text(body[:-2] + "\n" + late + "}\n")
    cut = scoped.read_scoped(str(p), "nftables", {"ns2/web"})
    assert cut is not None and "chain filter-late {" in cut[0] and "chain late-helper {" in cut[0]
    assert entries(parse_nft(cut[0], "x", only={"ns2/web"})) == entries(parse_nft(p.read_text(), "x",
                                                                                 only={"ns2/web"}))
    # the IPv6 table after the IPv4 one (`nft list ruleset` of a dual-stack node)
    p.write_text(text + (NFT / "ip6-a.txt").read_text())
    assert scoped.read_scoped(str(p), "nftables", {"ns2/web"}) is None


def test_cut_nft_steps_aside(tmp_path: Path, tiny_chunks: None) -> None:
    text = (NFT / "layout-a.txt").read_text()
    p = tmp_path / "d.txt"
    for bad in (text[: text.rindex("\t}")],  # truncated
                (NFT / "layout-a-handles.txt").read_text(),  # `nft -a`
                (NFT / "ruleset.txt").read_text(),  # another table first
                (NFT / "layout-a.json").read_text(),
                text.replace("\n", "\r\n")):
        p.write_text(bad)
        assert scoped.read_scoped(str(p), "nftables", {"ns2/web"}) is None
    p.write_text(text)
    assert scoped.read_scoped(str(p), "nftables", {"default/nosuch"}) is None
    # a node address takes every NodePort: every Service may be meant
    node_ip = next(ln for ln in text.splitlines() if "nodeport-ips" in ln)
    assert node_ip
    ips = text.split("set nodeport-ips {", 1)[1].split("elements = { ", 1)[1].split(" ", 1)[0].rstrip(",}")
    assert scoped.read_scoped(str(p), "nftables", {ips}) is None

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


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoped, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(scoped, "CHUNK", 2048)


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

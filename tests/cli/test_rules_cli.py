"""`svcctl rules`: output shapes, SERVICE forms, exit statuses (0 ok, 1 absent, 2 bad input, 3 unreadable node)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_dumps import GenCluster, GenEndpoint, GenPort, GenService, demo_cluster, iptables_save  # noqa: E402

from svcctl.cli.main import run  # noqa: E402
from svcctl.cli.rules import service_keys  # noqa: E402

DEMO_DUMP = Path(__file__).resolve().parent.parent.parent / "svcctl" / "data" / "demo" / "nodes" / "kind-worker" / \
    "iptables-save.txt"


def svcctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = run("svcctl", list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", str(DEMO_DUMP), "-o", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["apiVersion"] == "svcctl/v1" and doc["kind"] == "NodeRules" and doc["mode"] == "iptables"
    hn = next(s for s in doc["services"] if s["name"] == "default/hostnames:default")
    assert {k: hn[k] for k in ("protocol", "address", "port", "kind", "noEndpoints", "affinitySeconds")} == {
        "protocol": "TCP", "address": "10.0.1.175", "port": 80, "kind": "ClusterIP", "noEndpoints": False,
        "affinitySeconds": None}
    assert [(b["ip"], b["port"], b["probability"]) for b in hn["backends"]] == [
        ("10.244.0.5", 9376, 0.5), ("10.244.0.6", 9376, 0.5)]
    assert "10.244.0.7" not in out  # the unready Pod is not in the rules


@pytest.mark.parametrize("service", ["hostnames", "default/hostnames", "10.0.1.175:80", "10.0.1.175",
                                     "default/hostnames:default"])
def test_service_forms(capsys: pytest.CaptureFixture[str], service: str) -> None:
    rc, out, _ = svcctl(capsys, "rules", service, "--iptables-save", str(DEMO_DUMP), "-o", "json")
    assert rc == 0
    assert [s["name"] for s in json.loads(out)["services"]] == ["default/hostnames:default"]


def test_namespace_flag(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = svcctl(capsys, "rules", "kube-dns", "-n", "kube-system", "--iptables-save", str(DEMO_DUMP),
                        "-o", "json")
    assert rc == 0
    assert sorted(s["protocol"] for s in json.loads(out)["services"]) == ["TCP", "UDP"]


def test_snapshot_demo_single_node(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = svcctl(capsys, "rules", "hostnames", "--snapshot", "demo")
    assert rc == 0
    assert "10.244.0.5:9376 1/2 (50.0%)" in out and "10.244.0.6:9376 1/2 (50.0%)" in out
    assert "not round-robin" in out


def test_plain_table_and_wide(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", str(DEMO_DUMP))
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SERVICE", "PORT", "KIND"]
    assert any(ln.startswith("kube-system/kube-dns:dns ") and "10.0.0.10:53/UDP" in ln for ln in lines)
    assert any("rules in" in ln and "chains" in ln for ln in lines)
    assert any("how much kube-proxy writes here" in ln for ln in lines)
    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", str(DEMO_DUMP), "-o", "wide")
    assert "KUBE-SVC-ODX2UBAZM7RQWOIU" in out and "KUBE-SEP-WP4DJFDWEPABKXDE" in out
    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", str(DEMO_DUMP), "--no-headers")
    assert not out.startswith("SERVICE")


def test_absent_service_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = svcctl(capsys, "rules", "10.0.9.9:80", "--iptables-save", str(DEMO_DUMP))
    assert rc == 1 and "not in this node's rules" in err and out == ""
    rc, _, err = svcctl(capsys, "rules", "nope", "--iptables-save", str(DEMO_DUMP))
    assert rc == 1


def test_not_a_dump_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nworld\n")
    rc, out, err = svcctl(capsys, "rules", "--iptables-save", str(bad))
    assert rc == 2 and out == ""
    assert f"{bad}:1:" in err and "not an iptables-save dump" in err
    rc, _, err = svcctl(capsys, "rules", "--iptables-save", str(tmp_path / "missing.txt"))
    assert rc == 2 and "no such file" in err


def test_no_node_input_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    snap = tmp_path / "snap.yaml"
    snap.write_text("apiVersion: v1\nkind: List\nitems: []\n")
    (tmp_path / "objs").mkdir()
    (tmp_path / "objs" / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default}\nspec: {clusterIP: 10.0.0.5}\n")
    rc, _, err = svcctl(capsys, "rules", "--snapshot", str(tmp_path / "objs"))
    assert rc == 2 and "no node rules" in err


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(DEMO_DUMP.read_text()))
    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", "-", "-o", "json")
    assert rc == 0 and json.loads(out)["source"] == "<stdin>"


def test_no_endpoints_and_affinity_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    c = GenCluster(services=[
        GenService("a", "empty", "10.96.0.3", [GenPort("p", 80, 80)], []),
        GenService("a", "sticky", "10.96.0.4", [GenPort("p", 80, 80)], [GenEndpoint("10.244.0.3")],
                   affinity_seconds=300),
    ])
    f = tmp_path / "n.txt"
    f.write_text(iptables_save(c))
    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", str(f), "-o", "json")
    doc = {s["name"]: s for s in json.loads(out)["services"]}
    assert doc["a/empty:p"]["noEndpoints"] is True and doc["a/empty:p"]["backends"] == []
    assert doc["a/sticky:p"]["affinitySeconds"] == 300
    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", str(f))
    assert "NO ENDPOINTS" in out and "ClientIP 300s" in out


def test_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    rc, out, _ = svcctl(capsys, "rules", "--iptables-save", str(DEMO_DUMP), "-o", "yaml")
    assert rc == 0 and yaml.safe_load(out)["kind"] == "NodeRules"


def test_service_keys() -> None:
    assert service_keys("hostnames", "default") == {"default/hostnames"}
    assert service_keys("10.0.0.1:443", "x") == {"10.0.0.1:443"}
    assert service_keys("[2001:db8::1]:80", "x") == {"[2001:db8::1]:80"}
    assert service_keys("2001:db8::1", "x") == {"2001:db8::1"}
    assert service_keys("kube-system/kube-dns:dns", "x") == {"kube-system/kube-dns:dns"}


def test_ipv6_vip_lookup(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    c = GenCluster(services=[GenService("ns", "v6", "2001:db8:ff::a", [GenPort("http", 80, 8080)],
                                        [GenEndpoint("2001:db8:1::5")])], cluster_cidr="2001:db8:1::/64",
                   banner="ip6tables-save v1.8.9 (nf_tables)")
    f = tmp_path / "v6.txt"
    f.write_text(iptables_save(c))
    rc, out, _ = svcctl(capsys, "rules", "[2001:db8:ff::a]:80", "--ip6tables-save", str(f), "-o", "json")
    assert rc == 0
    assert json.loads(out)["services"][0]["backends"][0]["ip"] == "2001:db8:1::5"


def test_demo_generator_output_is_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert iptables_save(demo_cluster()) == DEMO_DUMP.read_text()


def test_demo_holds_every_mode_iptables_preferred(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = svcctl(capsys, "rules", "--snapshot", "demo", "-o", "json")
    doc = json.loads(out)
    assert rc == 0 and doc["mode"] == "iptables"
    assert any("also hold ipvs and nftables rules" in n for n in doc["notes"])


@pytest.mark.parametrize("mode", ["iptables", "ipvs", "nftables"])
def test_service_by_name_in_every_mode(capsys: pytest.CaptureFixture[str], mode: str) -> None:
    """IPVS virtual servers carry no names: the snapshot's Service gives its VIP, so `hostnames` still works."""
    rc, out, _ = svcctl(capsys, "rules", "hostnames", "--snapshot", "demo", "--mode", mode, "-o", "json")
    assert rc == 0
    (entry,) = json.loads(out)["services"]
    assert entry["name"] == "default/hostnames:default" and entry["address"] == "10.0.1.175"
    assert sorted(b["ip"] for b in entry["backends"]) == ["10.244.0.5", "10.244.0.6"]


def test_snapshot_unknown_node_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = svcctl(capsys, "rules", "--snapshot", "demo", "--node", "nope")
    assert rc == 2 and out == "" and "nodes with rules: kind-worker" in err


def test_ipvs_entries_are_named_from_the_snapshot(run_cli: Any) -> None:
    """ipvsadm knows no Service names: the snapshot's Services name them by address, port and protocol."""
    code, out, err = run_cli(["rules", "--snapshot", "demo", "--mode", "ipvs", "-o", "json"])
    assert code == 0, err
    names = {(s["address"], s["port"], s["protocol"]): s["name"] for s in json.loads(out)["services"]}
    assert names == {("10.0.0.1", 443, "TCP"): "default/kubernetes:https",
                     ("10.0.0.10", 53, "TCP"): "kube-system/kube-dns:dns-tcp",
                     ("10.0.0.10", 53, "UDP"): "kube-system/kube-dns:dns",
                     ("10.0.1.175", 80, "TCP"): "default/hostnames:default"}


def test_chains_with_no_current_owner_are_flagged(run_cli: Any, tmp_path: Path) -> None:
    """Chain names are recomputed from the cluster (portProtoHash / servicePortEndpointChainName): a SEP chain
    whose endpoint left the slice belongs to no current endpoint, even without comments to go by."""
    import shutil

    import yaml

    from svcctl.dataplane.hashes import endpoint_chain
    from svcctl.sources.snapshot import demo_path

    snap = tmp_path / "snap"
    shutil.copytree(demo_path(), snap)
    code, out, err = run_cli(["rules", "--snapshot", str(snap), "--mode", "iptables", "-o", "json"])
    assert code == 0 and "orphanChains" not in json.loads(out)
    doc = yaml.safe_load((snap / "cluster.yaml").read_text())
    sl = next(i for i in doc["items"] if i["kind"] == "EndpointSlice" and i["metadata"]["name"] == "hostnames-x7k2p")
    sl["endpoints"] = [e for e in sl["endpoints"] if e["addresses"] != ["10.244.0.6"]]
    (snap / "cluster.yaml").write_text(yaml.safe_dump(doc))
    code, out, err = run_cli(["rules", "--snapshot", str(snap), "--mode", "iptables", "-o", "json"])
    assert code == 0, err
    assert json.loads(out)["orphanChains"] == [endpoint_chain("default/hostnames:default", "tcp", "10.244.0.6", 9376)]


def test_status_lines_are_never_hard_wrapped(run_cli: Any) -> None:
    """stderr goes to CI logs: a long status line stays one line (rich would wrap it at 80 columns)."""
    code, out, err = run_cli(["-v", "rules", "--snapshot", "demo"])
    assert code == 0
    line = next(ln for ln in err.splitlines() if "node dumps:" in ln)
    assert len(line) > 120 and "iptables-save.txt" in line and "nft.txt" in line


IPVS_DEMO = DEMO_DUMP.parent / "ipvsadm.txt"
ROOT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_an_ipvs_dump_asked_by_name_without_cluster_data_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    """IPVS virtual servers carry no Service names: without cluster data svcctl cannot look for a name, so it must
    not say the Service is missing from the node (exit 1) — it says what it needs (exit 2)."""
    rc, out, err = svcctl(capsys, "rules", "default/hostnames", "--ipvsadm", str(IPVS_DEMO), "-o", "json")
    assert (rc, out) == (2, "")
    assert "ipvs rules name no Service" in err and "not in this node's rules" not in err
    assert len(err.strip().splitlines()) == 1
    # the same name with the snapshot's Service maps to its addresses and is found
    rc, out, err = svcctl(capsys, "rules", "default/hostnames", "--ipvsadm", str(IPVS_DEMO), "--snapshot", "demo",
                          "-o", "json")
    assert rc == 0, err
    assert [e["name"] for e in json.loads(out)["services"]] == ["default/hostnames:default"]
    # Cilium's service list names no Service either
    rc, _, err = svcctl(capsys, "rules", "default/hostnames", "--cilium",
                        str(ROOT_FIXTURES / "cilium" / "service-list-1.14.txt"))
    assert rc == 2 and "cilium rules name no Service" in err
    # asked by address, absence is a finding the dump can show
    rc, _, err = svcctl(capsys, "rules", "198.18.250.250:80", "--ipvsadm", str(IPVS_DEMO))
    assert rc == 1 and "not in this node's rules" in err


def test_an_ipvs_dump_asked_for_a_name_the_cluster_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = svcctl(capsys, "rules", "default/nosuch", "--ipvsadm", str(IPVS_DEMO), "--snapshot", "demo")
    assert (rc, out) == (2, "")
    assert "default/nosuch: the cluster data gave no such Service" in err
    # iptables rules name their Services: there the same question is answered from the dump itself
    rc, _, err = svcctl(capsys, "rules", "default/nosuch", "--iptables-save", str(DEMO_DUMP), "--snapshot", "demo")
    assert rc == 1 and "not in this node's rules" in err

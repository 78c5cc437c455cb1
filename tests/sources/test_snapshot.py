"""The snapshot source reads every layout kubectl writes, and refuses what it must not read."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from svcctl.errors import InputError, NotFoundError
from svcctl.sources.snapshot import SnapshotSource, demo_path

DEMO_YAML = demo_path() / "cluster.yaml"


def _items() -> list[dict[str, object]]:
    doc = yaml.safe_load(DEMO_YAML.read_text())
    return list(doc["items"])


def _summary(src: SnapshotSource) -> tuple[list[str], list[str], list[str], list[str], int]:
    return (sorted(s.meta.key for s in src.services), sorted(p.key for p in src.pods),
            sorted(s.meta.key for s in src.slices), sorted(src.nodes), len(src.events))


def test_demo_loads() -> None:
    src = SnapshotSource("demo")
    svcs, pods, slices, nodes, events = _summary(src)
    assert "default/hostnames" in svcs and nodes == ["kind-worker"] and events == 1
    assert len([p for p in pods if "hostnames" in p]) == 3
    assert src.get_service("default", "hostnames").cluster_ip == "10.0.1.175"


def test_json_list_equals_yaml_list(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": _items()}))
    assert _summary(SnapshotSource(str(tmp_path / "c.json"))) == _summary(SnapshotSource(str(DEMO_YAML)))


def test_multi_document_yaml_and_directory(tmp_path: Path) -> None:
    items = _items()
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all(items[:4]))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(yaml.safe_dump({"kind": "List", "items": items[4:]}))
    (tmp_path / "notes.txt").write_text("ignored")
    assert _summary(SnapshotSource(str(tmp_path))) == _summary(SnapshotSource(str(DEMO_YAML)))


def test_cluster_info_dump_tree(tmp_path: Path) -> None:
    """`kubectl cluster-info dump --output-directory`: typed lists whose items carry no kind."""
    by_kind: dict[tuple[str, str], list[dict[str, object]]] = {}
    for it in _items():
        meta = it["metadata"]
        assert isinstance(meta, dict)
        ns = str(meta.get("namespace", ""))
        item = {k: v for k, v in it.items() if k not in ("kind", "apiVersion")}
        by_kind.setdefault((str(it["kind"]), ns), []).append(item)
    for (kind, ns), objs in by_kind.items():
        fname = {"Service": "services.json", "Pod": "pods.json", "Node": "nodes.json", "Event": "events.json",
                 "Endpoints": "endpoints.json", "EndpointSlice": "endpointslices.json"}[kind]
        d = tmp_path / ns if ns else tmp_path
        d.mkdir(exist_ok=True)
        (d / fname).write_text(json.dumps({"kind": f"{kind}List", "apiVersion": "v1", "items": objs}))
        (d / "deployments.json").write_text(json.dumps({"kind": "DeploymentList", "items": [{"metadata": {"name": "x"}}]}))
    (tmp_path / "default" / "hostnames-632524106-bbpiw").mkdir()
    (tmp_path / "default" / "hostnames-632524106-bbpiw" / "logs.txt").write_text("log line\n")
    assert _summary(SnapshotSource(str(tmp_path))) == _summary(SnapshotSource(str(DEMO_YAML)))


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_tarball_with_node_dumps(tmp_path: Path) -> None:
    data = DEMO_YAML.read_bytes()
    p = _tar(tmp_path / "b.tar.gz", [_file("bundle/cluster.yaml", data),
                                     _file("bundle/nodes/n1/iptables-save.txt", b"*nat\nCOMMIT\n")])
    src = SnapshotSource(str(p))
    assert _summary(src) == _summary(SnapshotSource(str(DEMO_YAML)))
    dumps = src.node_dumps("n1")
    assert dumps is not None and dumps.get("iptables") == "*nat\nCOMMIT\n"


@pytest.mark.parametrize("bad", ["../evil.yaml", "/etc/evil.yaml", "a/../../evil.yaml"])
def test_tar_path_traversal_refused(tmp_path: Path, bad: str) -> None:
    p = _tar(tmp_path / "t.tgz", [_file(bad, b"kind: List\nitems: []\n")])
    with pytest.raises(InputError, match="unsafe path"):
        SnapshotSource(str(p))


def test_tar_symlink_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("cluster.yaml")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    p = _tar(tmp_path / "t.tgz", [(link, None)])
    with pytest.raises(InputError, match="links are not allowed"):
        SnapshotSource(str(p))


def test_tar_absurd_size_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("huge.yaml")
    info.size = 10
    p = tmp_path / "t.tar"
    with tarfile.open(p, "w") as tf:
        tf.addfile(info, io.BytesIO(b"kind: List"))
    raw = bytearray(p.read_bytes())
    # forge the header's size field (octal, 12 bytes at offset 124) to claim 100 GB, and fix the checksum
    raw[124:136] = b"%011o\0" % (100 * 1024**3)
    raw[148:156] = b"        "
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    p.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="too large|corrupt"):
        SnapshotSource(str(p))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"kind: List\nitems: [\n", "malformed YAML"),
        (b'{"kind": "List", "items": [', "malformed JSON"),
        (b"\x00\x01\x02binary", "binary"),
        (b"\xff\xfe\xfa not utf8", "not UTF-8"),
        (b"- 1\n- 2\n", "expected Kubernetes objects"),
        (b"kind: Service\nmetadata: {}\n", "without metadata.name"),
        (b"just: a mapping\n", "without `kind`"),
    ],
)
def test_malformed_files_say_which_file(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as ei:
        SnapshotSource(str(p))
    assert str(p) in ei.value.message


def test_yaml_error_has_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("kind: List\nitems:\n- kind: Service\n  metadata: {name: x\n")
    with pytest.raises(InputError) as ei:
        SnapshotSource(str(p))
    assert ei.value.line is not None and ei.value.line >= 4


def test_missing_path_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        SnapshotSource(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no Kubernetes objects"):
        SnapshotSource(str(tmp_path))


def test_unknown_service_suggests_close_names() -> None:
    src = SnapshotSource("demo")
    with pytest.raises(NotFoundError) as ei:
        src.get_service("default", "hostname")
    assert ei.value.hint and "hostnames" in ei.value.hint
    with pytest.raises(NotFoundError) as ei:
        src.get_service("default", "kube-dns")
    assert ei.value.hint and "kube-system/kube-dns" in ei.value.hint


def test_selectors_filter_like_the_apiserver() -> None:
    src = SnapshotSource("demo")
    assert len(src.list_pods("default", "app=hostnames")) == 3
    assert len(src.list_pods(None, "app")) == 3
    assert len(src.list_pods(None, "!app")) == 1
    assert len(src.list_pods("default", "app!=hostnames")) == 0
    assert src.list_pods("kube-system", "app=hostnames") == []
    assert [e.involved_name for e in src.list_events("default", "Pod", ["hostnames-632524106-tlaok"])] == [
        "hostnames-632524106-tlaok"]


def test_snapshot_from_a_pipe(tmp_path: Path) -> None:
    """`--snapshot <(kubectl get … -o yaml)` and a piped tarball: no seeking, any file name."""
    import os
    import threading

    data = DEMO_YAML.read_bytes()
    tgz = _tar(tmp_path / "b.tgz", [_file("cluster.yaml", data)]).read_bytes()
    for payload in (data, tgz):
        fifo = tmp_path / f"fifo{len(payload)}"
        os.mkfifo(fifo)

        def feed(f: Path = fifo, b: bytes = payload) -> None:
            with open(f, "wb") as w:
                w.write(b)

        t = threading.Thread(target=feed)
        t.start()
        src = SnapshotSource(str(fifo))
        t.join()
        assert _summary(src) == _summary(SnapshotSource(str(DEMO_YAML)))


def test_single_file_any_name(tmp_path: Path) -> None:
    p = tmp_path / "dump.txt"
    p.write_bytes(DEMO_YAML.read_bytes())
    assert _summary(SnapshotSource(str(p))) == _summary(SnapshotSource(str(DEMO_YAML)))

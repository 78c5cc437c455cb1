"""Capture bundles people already have, read as snapshots: `cilium sysdump` archives and Retina captures.

- `cilium sysdump` (cilium-cli `sysdump/constants.go`) writes a .zip of `k8s-services-<ts>.yaml`,
  `k8s-pods-<ts>.yaml`, `k8s-nodes-<ts>.yaml`, `k8s-endpoints-<ts>.yaml` (v1 Endpoints: no EndpointSlices),
  `k8s-events-<ts>.yaml`, … and one `cilium-bugtool-<agent pod>-<ts>.tar.gz` per agent (or that archive
  unpacked). Inside a bugtool archive every command's output is `cmd/<command with spaces and slashes as
  dashes>.md` (bugtool's `writeCmdToFile`), markdown-wrapped (`# prompt`, a ``` fence) in older releases:
  `cilium-dbg-service-list.md`, `cilium-service-list--o-json.md`, `cilium-bpf-lb-list---revnat.md`,
  `iptables-save--c.md`, `ipset-list.md`. The agent Pod's node comes from the Pods file.
- A Retina capture (microsoft/retina `pkg/capture/provider`) is a tarball `<capture>-<node>-<ts>.tar.gz`
  (`<ts>` = `20060102150405UTC`) holding `<capture>-<node>-<ts>.pcap`, `iptables-rules.txt` (a "Summary:" of
  the commands, then "Execute:" and each command line followed by its output: `iptables-nft-save` first),
  `ip-resources.txt`, `socket-stats.txt`. The node is the file name's middle part.
"""

from __future__ import annotations

import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from svcctl.errors import InputError
from svcctl.lazyre import LazyPattern
from svcctl.model import Pod
from svcctl.sources.archive import count_member, member_path

MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 200_000

SYSDUMP_OBJECTS = LazyPattern(r"^k8s-(services|pods|nodes|endpoints|endpointslices|events)-\d{8}-\d{6}\.(yaml|json)$")
SYSDUMP_FILE = LazyPattern(r"-\d{8}-\d{6}(?:-prev)?\.(?:yaml|json|log|txt|html)$")
BUGTOOL_ARCHIVE = LazyPattern(r"^cilium-bugtool-(?P<pod>.+)-(?P<ts>\d{8}-\d{6})\.(?:tar\.gz|tgz|tar)$")
BUGTOOL_DIR = LazyPattern(r"^cilium-bugtool-(?P<pod>.+)-(?P<ts>\d{8}-\d{6})$")
RETINA_TS = LazyPattern(r"-(?P<ts>\d{14}UTC)(?:\.pcap|\.tar\.gz|\.tgz)?$")
# bugtool file name (without .md) -> NodeDumps key
BUGTOOL_CMDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^cilium(?:-dbg)?-service-list(?:--o-json)?$"), "cilium"),
    (re.compile(r"^cilium(?:-dbg)?-bpf-lb-list(?:---revnat)?$"), "cilium"),
    (re.compile(r"^iptables(?:-nft|-legacy)?-save(?:--c)?$"), "iptables"),
    (re.compile(r"^ip6tables(?:-nft|-legacy)?-save(?:--c)?$"), "ip6tables"),
    (re.compile(r"^ipset-list$"), "ipset"),
]


def read_zip(path: Path) -> Iterator[tuple[str, bytes]]:
    """Members of a zip (a `cilium sysdump`), with the tar reader's limits: no absolute or `..` paths, no
    links, bounded sizes."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"not a readable zip archive: {e}", source=str(path)) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InputError(f"refusing archive with more than {MAX_MEMBERS} entries", source=str(path))
        total = 0
        for info in infos:
            name = info.filename
            pure = member_path(name, link=stat.S_ISLNK(info.external_attr >> 16), source=str(path))
            if info.is_dir():
                continue
            total = count_member(name, info.file_size, total, source=str(path), max_member=MAX_MEMBER_BYTES,
                                 max_total=MAX_TOTAL_BYTES)
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise InputError(f"corrupt zip archive at {name!r}: {e}", source=str(path)) from None
            yield pure.as_posix(), data


def unwrap_markdown(text: str) -> str:
    """bugtool's markdown form (`# prompt`, blank, ``` … ```) back to the command's output."""
    lines = text.splitlines()
    if len(lines) >= 3 and lines[0].startswith("# ") and "```" in lines[1:3]:
        start = lines.index("```", 1) + 1
        end = max((i for i, ln in enumerate(lines) if ln == "```"), default=len(lines))
        if end <= start:
            end = len(lines)
        return "\n".join(lines[start:end]) + "\n"
    return text


def bugtool_key(basename: str) -> str | None:
    """The NodeDumps key a bugtool `cmd/*.md` file holds, or None for the files svcctl does not read."""
    if not basename.endswith(".md"):
        return None
    stem = basename[:-3]
    return next((key for rx, key in BUGTOOL_CMDS if rx.match(stem)), None)


def retina_iptables(text: str) -> str | None:
    """The `iptables-<mode>-save` section of Retina's iptables-rules.txt."""
    lines = text.splitlines()
    try:
        execute = lines.index("Execute:")
    except ValueError:
        return None
    start = None
    for i in range(execute + 1, len(lines)):
        if re.fullmatch(r"(?:\S*/)?iptables(?:-nft|-legacy)?-save", lines[i].strip()):
            start = i + 1
            break
    if start is None:
        return None
    end = next((i for i in range(start, len(lines))
                if re.match(r"^(?:\S*/)?iptables(?:-nft|-legacy)? -vnx -L", lines[i])), len(lines))
    body = "\n".join(lines[start:end]).strip("\n")
    return body + "\n" if body.strip() else None


def retina_node(name: str, known: set[str]) -> str:
    """`<capture>-<node>-<ts>` → node: the known Node whose name ends the remainder, else the remainder."""
    base = PurePosixPath(name).name
    m = RETINA_TS.search(base)
    rest = base[:m.start()] if m else base.rsplit(".", 1)[0]
    for node in sorted(known, key=len, reverse=True):
        if rest.endswith("-" + node) or rest == node:
            return node
    return rest


# ------------------------------------------------------------------------------------------------ snapshot hooks


class BundleState:
    """What a snapshot collects from bundles before the whole tree is read: the Pods file of a sysdump may
    come after the agents' archives, so their node is settled at the end."""

    def __init__(self, read_tar: Callable[[Path, bytes | None], Iterator[tuple[str, bytes]]]) -> None:
        self.read_tar = read_tar  # the snapshot's safe tar reader (its limits), for archives inside the bundle
        self.bugtool: dict[str, dict[str, list[tuple[str, str]]]] = {}  # agent pod -> key -> [(source, text)]
        self.retina: list[tuple[str, str, str]] = []  # (name to derive the node from, source, iptables text)
        self.retina_pcaps: dict[str, str] = {}  # directory -> pcap member name
        self.sysdump = False
        self.notes: list[str] = []


def add_bundle_file(state: BundleState, rel: str, data: bytes, source: str, snapshot_path: str) -> int | None:
    """Take the bundle files among a snapshot's files; None: not a bundle file, read it as usual."""
    parts = rel.split("/")
    base = parts[-1]
    if any(p.startswith("cilium-sysdump") for p in [*parts[:-1], PurePosixPath(snapshot_path).name]):
        state.sysdump = True
    m = BUGTOOL_ARCHIVE.match(base)
    if m:
        for inner, content in state.read_tar(Path(source), data):
            _add_bugtool(state, m["pod"], inner, content, f"{source}:{inner}")
        state.sysdump = True
        return 0
    for p in parts[:-1]:
        d = BUGTOOL_DIR.match(p)
        if d:
            _add_bugtool(state, d["pod"], rel, data, source)
            return 0
    if base.endswith((".tar.gz", ".tgz")):
        members = list(state.read_tar(Path(source), data))
        names = {PurePosixPath(n).name for n, _ in members}
        if "iptables-rules.txt" not in names:
            return 0
        pcap = next((PurePosixPath(n).name for n in names if n.endswith(".pcap")), base)
        for n, content in members:
            if PurePosixPath(n).name == "iptables-rules.txt":
                _add_retina(state, pcap, f"{source}:{n}", content)
        return 0
    if base == "iptables-rules.txt" and data.startswith(b"Summary:"):
        key = "/".join(parts[:-1])
        _add_retina(state, key or PurePosixPath(snapshot_path).name, source, data)
        return 0
    if base.endswith(".pcap"):
        state.retina_pcaps["/".join(parts[:-1])] = base
        return 0
    if state.sysdump and SYSDUMP_FILE.search(base) and not SYSDUMP_OBJECTS.match(base):
        return 0  # the sysdump's other files (Cilium CRDs, Helm values, logs): not read
    return None


def _add_bugtool(state: BundleState, pod: str, rel: str, data: bytes, source: str) -> None:
    key = bugtool_key(PurePosixPath(rel).name)
    if key is None:
        return
    text = unwrap_markdown(data.decode("utf-8", errors="replace"))
    if not text.strip() or text.lstrip().startswith("> Error while running"):
        return
    prompt = _prompt(PurePosixPath(rel).name[:-3])
    state.bugtool.setdefault(pod, {}).setdefault(key, []).append(
        (source, f"$ {prompt}\n{text}" if key == "cilium" else text))


def _prompt(stem: str) -> str:
    """The command a bugtool file name came from (`cilium-dbg-bpf-lb-list---revnat` → `cilium-dbg bpf lb list
    --revnat`): it names the kind of listing for the parser."""
    binary = "cilium-dbg" if stem.startswith("cilium-dbg-") else stem.split("-", 1)[0]
    rest = stem[len(binary) + 1:]
    words = {"service-list": "service list", "service-list--o-json": "service list -o json",
             "bpf-lb-list": "bpf lb list", "bpf-lb-list---revnat": "bpf lb list --revnat"}
    return f"{binary} {words.get(rest, rest.replace('-', ' '))}"


def _add_retina(state: BundleState, name: str, source: str, data: bytes) -> None:
    text = retina_iptables(data.decode("utf-8", errors="replace"))
    if text is not None:
        state.retina.append((name, source, text))


def finish(state: BundleState, pods: list[Pod], nodes: set[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """node -> key -> (source, text) for every bundle read; agent Pods are placed on their node."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    by_pod = {p.meta.name: p.node_name for p in pods if p.node_name}
    for pod, keys in state.bugtool.items():
        node = by_pod.get(pod)
        if node is None:
            state.notes.append(f"cilium-bugtool of {pod}: the Pod is not in the sysdump's Pods file; its "
                               f"outputs are kept under node {pod!r}")
            node = pod
        for key, pieces in keys.items():
            if key == "cilium":
                text = "".join(t if t.endswith("\n") else t + "\n" for _, t in pieces)
            else:  # several iptables-save flavours (nft, legacy): the fullest one is the node's
                text = max((t for _, t in pieces), key=len)
            out.setdefault(node, {})[key] = (", ".join(s for s, _ in pieces), text)
    for name, source, text in state.retina:
        pcap = state.retina_pcaps.get(name, name)
        node = retina_node(pcap, nodes)
        out.setdefault(node, {})["iptables"] = (source, text)
    return out


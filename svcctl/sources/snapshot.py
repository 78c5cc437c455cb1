"""Snapshot source: what kubectl writes, read back as if it were the API.

Accepted inputs (documented in the README):
- one file: `kubectl get svc,endpointslices,endpoints,pods,nodes,events -A -o yaml|json` (a `kind: List`), typed
  lists (`ServiceList`), single objects, or several YAML documents;
- a directory of such files, including a `kubectl cluster-info dump --output-directory` tree;
- a `.tar.gz`/`.tgz`/`.tar` of either, read in memory (never extracted: no path traversal, no symlinks, sizes capped);
- node dumps beside them: `nodes/<node>/iptables-save.txt`, `ip6tables-save.txt`, `ipvsadm.txt`, `nft.txt`,
  `conntrack.txt`, `ipset.txt`, `ip-addr-kube-ipvs0.txt`;
- `demo`: the built-in `hostnames` snapshot shipped in the package.
"""

from __future__ import annotations

import difflib
import io
import json
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from svcctl.dataplane.modes import dump_files
from svcctl.errors import InputError, NotFoundError
from svcctl.lazyre import LazyPattern
from svcctl.model import JSON, Endpoints, EndpointSlice, Event, Node, Pod, Service
from svcctl.sources.archive import count_member, member_path
from svcctl.sources.base import NodeDumps, Skipped, labels_match, parse_selector
from svcctl.sources.coverage import Coverage

DEMO_NAME = "demo"
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one file inside a tarball (a 50,000-Service iptables dump is ~240 MB)
MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # the whole tarball, uncompressed: bounds what a gzip bomb can cost
MAX_MEMBERS = 200_000

_LIST_KINDS = {
    "ServiceList": "Service", "PodList": "Pod", "NodeList": "Node", "EventList": "Event",
    "EndpointSliceList": "EndpointSlice", "EndpointsList": "Endpoints",
    "NetworkPolicyList": "NetworkPolicy", "NamespaceList": "Namespace",
    "AdminNetworkPolicyList": "AdminNetworkPolicy", "BaselineAdminNetworkPolicyList": "BaselineAdminNetworkPolicy",
}
_FILE_KINDS = {  # cluster-info dump file names
    "services.json": "Service", "pods.json": "Pod", "nodes.json": "Node", "events.json": "Event",
    "endpoints.json": "Endpoints", "endpointslices.json": "EndpointSlice",
}
_READ_KINDS = set(_LIST_KINDS.values())
_OBJECT_SUFFIXES = (".yaml", ".yml", ".json")


def demo_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "demo"


def _read_tree(path: Path) -> Iterator[tuple[str, bytes]]:
    """(relative posix path, content) for every regular file below `path`; symlinks are not followed."""
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for f in sorted(files):
            full = Path(root) / f
            if full.is_symlink() or not full.is_file():
                continue
            try:
                data = full.read_bytes()
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror}", source=str(full)) from None
            yield full.relative_to(path).as_posix(), data


def _read_tar(path: Path, data: bytes | None = None) -> Iterator[tuple[str, bytes]]:
    """Members of a tar archive at `path`, or in `data` when the path could not be seeked (a pipe)."""
    try:
        # closed by the `with` below, after the check
        tf = (tarfile.open(fileobj=io.BytesIO(data), mode="r:*") if data is not None  # noqa: SIM115
              else tarfile.open(path, "r:*"))  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise InputError(f"not a readable tar archive: {_one_line(e)}", source=str(path)) from None
    total = 0
    count = 0
    with tf:
        while True:
            try:
                member = tf.next()
            except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as e:
                raise InputError(f"corrupt tar archive: {_one_line(e)}", source=str(path)) from None
            if member is None:
                break
            count += 1
            if count > MAX_MEMBERS:
                raise InputError(f"refusing archive with more than {MAX_MEMBERS} entries", source=str(path))
            name = member.name
            pure = member_path(name, link=member.issym() or member.islnk(), source=str(path))
            if member.isdir():
                continue
            if not member.isfile():
                raise InputError(f"refusing archive member {name!r}: not a regular file", source=str(path))
            total = count_member(name, member.size, total, source=str(path), max_member=MAX_MEMBER_BYTES,
                                 max_total=MAX_TOTAL_BYTES)
            fh = tf.extractfile(member)
            if fh is None:
                continue
            try:
                data = fh.read()
            except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as e:
                raise InputError(f"corrupt tar archive at {name!r}: {_one_line(e)}", source=str(path)) from None
            yield pure.as_posix().removeprefix("./"), data


def _one_line(e: BaseException) -> str:
    """tarfile's errors can span lines (one per compression method tried): the first one is the message."""
    lines = str(e).strip().splitlines()
    return lines[0].rstrip(":") if lines else type(e).__name__


MAX_NESTING = 5000  # libyaml's C composer recurses per level and overflows the C stack near 30,000 levels
MAX_VISITS = 5_000_000  # YAML aliases can make a small file expand exponentially ("billion laughs")
_BLOCK_PREFIX_RE = LazyPattern(r"^(?=[-?: \t]{" + str(MAX_NESTING // 2) + r"})[ \t]*(?:[-?:][ \t]+)*", re.M)
_NOT_BRACKET_RE = LazyPattern(r"[^\[\]{}]+")


def _too_deep(text: str) -> bool:
    """An upper bound on YAML nesting exceeds MAX_NESTING: block levels need indentation or `- ` per level,
    flow levels an open bracket; Kubernetes objects nest a few dozen levels at most."""
    brackets = _NOT_BRACKET_RE.sub("", text)
    if len(brackets) > MAX_NESTING:
        depth = 0
        for ch in brackets:
            depth = depth + 1 if ch in "[{" else max(depth - 1, 0)
            if depth > MAX_NESTING:
                return True
    return any(len(m.group()) > MAX_NESTING // 2 for m in _BLOCK_PREFIX_RE.finditer(text))


def _yaml_load_all(text: str, source: str) -> list[Any]:
    import yaml

    if _too_deep(text):
        raise InputError(f"YAML nested more than {MAX_NESTING} levels deep: not a Kubernetes dump", source=source)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return [d for d in yaml.load_all(text, Loader=loader) if d is not None]
    except ValueError as e:  # int() refuses numbers of more than 4300 digits
        raise InputError(f"malformed YAML: {str(e)[:80]}", source=source) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"malformed YAML: {problem}", source=source, line=line) from None


def parse_objects(data: bytes, source: str, kind_hint: str | None = None,
                  kinds: set[str] | None = None) -> list[JSON]:
    """Flatten a file's documents, Lists and typed lists into objects that each carry `kind`.

    `kinds` collects every kind the file holds, including typed lists that are empty (an empty `EventList`
    says there are no Events; a List without Events says nothing)."""
    if b"\x00" in data[:8192]:
        raise InputError("binary data, not a YAML or JSON dump", source=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text ({e.reason} at byte {e.start})", source=source) from None
    stripped = text.lstrip()
    docs: list[Any]
    if stripped.startswith(("{", "[")):
        try:
            docs = [json.loads(text)]
        except json.JSONDecodeError as e:
            raise InputError(f"malformed JSON: {e.msg}", source=source, line=e.lineno) from None
        except RecursionError:
            raise InputError("JSON nested too deeply: not a Kubernetes dump", source=source) from None
        except ValueError as e:  # int() refuses numbers of more than 4300 digits
            raise InputError(f"malformed JSON: {str(e)[:80]}", source=source) from None
    else:
        docs = _yaml_load_all(text, source)
    out: list[JSON] = []
    budget = [MAX_VISITS]
    try:
        for doc in docs:
            _flatten(doc, source, kind_hint, out, budget, kinds)
    except RecursionError:
        raise InputError("lists nested too deeply: not a Kubernetes dump", source=source) from None
    return out


def _flatten(doc: Any, source: str, kind_hint: str | None, out: list[JSON], budget: list[int] | None = None,
             kinds: set[str] | None = None) -> None:
    if budget is not None:
        budget[0] -= 1
        if budget[0] < 0:
            raise InputError(f"more than {MAX_VISITS} objects (YAML aliases expanding?): not a Kubernetes dump",
                             source=source)
    if isinstance(doc, list):
        for d in doc:
            _flatten(d, source, kind_hint, out, budget, kinds)
        return
    if not isinstance(doc, dict):
        raise InputError(f"expected Kubernetes objects, found {type(doc).__name__}", source=source)
    kind = doc.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in doc) or (
            kind is None and "items" in doc):
        item_kind = _LIST_KINDS.get(kind or "", kind_hint)
        if item_kind is None and isinstance(kind, str) and kind != "List":
            item_kind = kind.removesuffix("List")
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise InputError("`items` is not a list", source=source)
        if kinds is not None and item_kind and kind != "List":
            kinds.add(item_kind)
        for item in items:
            if not isinstance(item, dict):
                raise InputError("list item is not an object", source=source)
            if "kind" not in item and item_kind:
                item = {**item, "kind": item_kind}
            _flatten(item, source, item_kind, out, budget, kinds)
        return
    if kind is None and kind_hint:
        doc = {**doc, "kind": kind_hint}
        kind = kind_hint
    if not isinstance(kind, str):
        raise InputError("object without `kind`", source=source)
    if kinds is not None:
        kinds.add(kind)
    out.append(doc)


class SnapshotSource:
    """A ClusterSource over objects read from files; filters the way the apiserver would."""

    def __init__(self, path: str, default_ns: str | None = None) -> None:
        self.skipped: list[Skipped] = []
        self.path = path
        self.services: list[Service] = []
        self.pods: list[Pod] = []
        self.nodes: dict[str, Node] = {}
        self.events: list[Event] = []
        self.slices: list[EndpointSlice] = []
        self.endpoints: dict[str, Endpoints] = {}
        self.dumps: dict[str, NodeDumps] = {}
        self.coverage = Coverage(f"snapshot {path}")
        self.network_policies: list[JSON] = []
        self.namespace_objects: dict[str, JSON] = {}
        self.admin_policies: list[JSON] = []
        self.baseline_policies: list[JSON] = []
        self._default_ns = default_ns or "default"
        from svcctl.sources.capture_bundles import BundleState

        self._bundles = BundleState(_read_tar)  # cilium sysdump / Retina capture files, settled after the whole tree
        self._single_file = False  # errors then name the file itself, not `file/file`
        if path == DEMO_NAME:
            root = demo_path()
            self.name = "snapshot demo"
            files = _read_tree(root)
        else:
            p = Path(path)
            self.name = f"snapshot {path}"
            if not p.exists():
                raise InputError("no such file or directory", hint="give a snapshot file, directory, .tar.gz, "
                                 "or `demo`", source=path)
            piped: bytes | None = None
            try:
                if not p.is_dir() and not p.is_file():  # a pipe (`--snapshot <(kubectl get … -o yaml)`): read once
                    piped = p.read_bytes()
                    is_tar = piped[:2] == b"\x1f\x8b" or piped[257:262] == b"ustar" or piped[:3] == b"BZh" \
                        or piped[:6] == b"\xfd7zXZ\x00"
                else:
                    is_tar = not p.is_dir() and (p.suffix in (".gz", ".tgz", ".tar") or tarfile.is_tarfile(p))
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror}", source=path) from None
            except (EOFError, zlib.error, lzma.LZMAError):  # tarfile.is_tarfile on a cut-off compressed file
                raise InputError("truncated or damaged compressed archive", source=path,
                                 hint="give the whole snapshot file (svcctl collect -o FILE.tar.gz)") from None
            if p.is_dir():
                files = _read_tree(p)
            elif piped is None and not is_tar and zipfile.is_zipfile(p):  # a `cilium sysdump` archive
                from svcctl.sources.capture_bundles import read_zip

                files = read_zip(p)
            elif piped is not None and not is_tar:
                files = iter([(p.name, piped)])
                self._single_file = True
            elif is_tar:
                files = _read_tar(p, piped)
            else:
                try:
                    files = iter([(p.name, p.read_bytes())])
                    self._single_file = True
                except OSError as e:
                    raise InputError(f"cannot read: {e.strerror}", source=path) from None
        n_objects = 0
        for rel, data in files:
            n_objects += self._add_file(rel, data, path)
        self._settle_bundles()
        if n_objects == 0 and not self.dumps:
            raise InputError("no Kubernetes objects or node dumps found", source=path,
                             hint="see `svcctl --help` for the snapshot layout")

    def _settle_bundles(self) -> None:
        """Bundle outputs onto their nodes (a sysdump's v1 Endpoints stand in for the slices it lacks, as for
        any snapshot without them: analysis/partial.py)."""
        from svcctl.sources.capture_bundles import finish

        for node, keys in finish(self._bundles, list(self.pods), set(self.nodes)).items():
            d = self.dumps.setdefault(node, NodeDumps(node))
            for key, (src, text) in keys.items():
                d.texts.setdefault(key, text)
                d.origins.setdefault(key, src)
        if self._bundles.sysdump:
            self.coverage.layout = "cilium sysdump"

    def _add_file(self, rel: str, data: bytes, root: str) -> int:
        parts = rel.split("/")
        source = f"{root}/{rel}" if root != DEMO_NAME else f"demo/{rel}"
        if self._single_file:
            source = root
        from svcctl.sources.capture_bundles import add_bundle_file

        taken = add_bundle_file(self._bundles, rel, data, source, root)
        if taken is not None:
            return taken
        # nodes/<node>/<dump>.txt
        dump_names = {v: k for k, v in dump_files().items()}  # the registry's: a mode added later counts
        if len(parts) >= 3 and parts[-3] == "nodes" and parts[-1] in dump_names:
            node = parts[-2]
            d = self.dumps.setdefault(node, NodeDumps(node))
            from svcctl.paste import add_dump

            add_dump(d, dump_names[parts[-1]], data.decode("utf-8", errors="replace"), source)
            return 0
        base = parts[-1]
        if not base.endswith(_OBJECT_SUFFIXES) and not self._single_file:
            return 0  # logs and other files of a cluster-info dump (a file named on its own is always read)
        hint = _FILE_KINDS.get(base)
        if hint is not None and not self._single_file and base != "endpointslices.json":
            self.coverage.layout = "cluster-info dump"
        objs = parse_objects(data, source, hint, self.coverage.held)
        for o in objs:
            self._add(o, source)
        return len(objs)

    def _add(self, o: JSON, source: str) -> None:
        kind = o.get("kind")
        if kind not in _READ_KINDS:
            return  # Deployments, ReplicaSets, … (cluster-info dump writes them too): not needed
        meta = o.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise InputError(f"{kind} without metadata.name", source=source)
        try:
            if kind == "Service":
                self.services.append(Service.from_dict(o))
            elif kind == "Pod":
                self.pods.append(Pod.from_dict(o))
            elif kind == "Node":
                n = Node.from_dict(o)
                self.nodes[n.meta.name] = n
            elif kind == "Event":
                self.events.append(Event.from_dict(o))
            elif kind == "EndpointSlice":
                self.slices.append(EndpointSlice.from_dict(o))
            elif kind == "Endpoints":
                e = Endpoints.from_dict(o)
                self.endpoints[e.meta.key] = e
            elif kind == "NetworkPolicy":
                self.network_policies.append(o)
            elif kind == "Namespace":
                self.namespace_objects[meta["name"]] = o
            elif kind == "AdminNetworkPolicy":
                self.admin_policies.append(o)
            elif kind == "BaselineAdminNetworkPolicy":
                self.baseline_policies.append(o)
        except (TypeError, ValueError, AttributeError) as e:
            raise InputError(f"malformed {kind} {meta.get('name')!r}: {e}", source=source) from None

    # ------------------------------------------------------------------ ClusterSource

    def default_namespace(self) -> str:
        return self._default_ns

    def get_service(self, namespace: str, name: str) -> Service:
        for s in self.services:
            if s.meta.namespace == namespace and s.meta.name == name:
                return s
        raise NotFoundError(f'service "{name}" not found in namespace "{namespace}"',
                            hint=suggest(name, namespace, self.services))

    def list_services(self, namespace: str | None, label_selector: str | None = None,
                      limit: int | None = None) -> list[Service]:
        sel = parse_selector(label_selector)
        out = [s for s in self.services
               if (namespace is None or s.meta.namespace == namespace) and labels_match(s.meta.labels, sel)]
        return out[:limit] if limit is not None else out

    def list_all_endpoint_slices(self, namespace: str | None) -> list[EndpointSlice]:
        """Every EndpointSlice of the namespace (None: all) the snapshot holds (BulkSlices)."""
        return [s for s in self.slices if namespace is None or s.meta.namespace == namespace]

    def list_endpoint_slices(self, namespace: str, service_name: str) -> list[EndpointSlice]:
        return [s for s in self.slices if s.meta.namespace == namespace and s.service_name == service_name]

    def get_endpoints(self, namespace: str, name: str) -> Endpoints | None:
        return self.endpoints.get(f"{namespace}/{name}")

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        return next((p for p in self.pods if p.meta.namespace == namespace and p.meta.name == name), None)

    def list_pods(self, namespace: str | None, label_selector: str | None = None,
                  limit: int | None = None) -> list[Pod]:
        sel = parse_selector(label_selector)
        out = [p for p in self.pods
               if (namespace is None or p.meta.namespace == namespace) and labels_match(p.meta.labels, sel)]
        return out[:limit] if limit is not None else out

    def get_nodes(self, names: list[str]) -> dict[str, Node | None]:
        return {n: self.nodes.get(n) for n in names}

    def list_nodes(self) -> list[Node]:
        return list(self.nodes.values())

    def list_events(self, namespace: str, kind: str, names: list[str]) -> list[Event]:
        want = set(names)
        return [e for e in self.events
                if e.involved_namespace == namespace and e.involved_kind == kind and e.involved_name in want]

    def node_dumps(self, node: str) -> NodeDumps | None:
        return self.dumps.get(node)

    def namespaces(self) -> list[str]:
        return sorted({s.meta.namespace for s in self.services} | {p.meta.namespace for p in self.pods})

    def list_network_policies(self, namespace: str) -> list[JSON] | None:
        if "NetworkPolicy" not in self.coverage.held:
            return None  # not "there are none": the snapshot was made without them
        return [o for o in self.network_policies if (o.get("metadata") or {}).get("namespace", "default") == namespace]

    def get_namespace(self, name: str) -> JSON | None:
        return self.namespace_objects.get(name)

    def list_admin_network_policies(self) -> tuple[list[JSON], list[JSON]] | None:
        if not self.admin_policies and not self.baseline_policies:
            return None
        return list(self.admin_policies), list(self.baseline_policies)



def suggest(name: str, namespace: str, services: list[Service]) -> str:
    """`did you mean` for a Service name, from the same namespace first, then any."""
    others = [s.meta.key for s in services if s.meta.name == name]
    if others:
        return "a Service of that name exists in: " + ", ".join(others) + " (use -n)"
    same = [s.meta.name for s in services if s.meta.namespace == namespace]
    close = difflib.get_close_matches(name, same, n=3, cutoff=0.6)
    if close:
        return "did you mean " + ", ".join(close) + "?"
    return "list Services with `svcctl endpoints -n " + namespace + "`"

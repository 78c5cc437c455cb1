"""Writing snapshot bundles: what `svcctl collect` saves, in the layout `--snapshot` reads back.

A bundle is a .tar.gz with `cluster.yaml` (one `kind: List`), optional `nodes/<node>/<dump>.txt` files, and
`svcctl-collect.txt` (what was collected, from where, what was skipped). It is meant to be attached to a bug
report, so it is scrubbed: no Secrets or ConfigMaps, env values in Pod specs replaced, managedFields and
kubectl's last-applied-configuration dropped.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from svcctl.dataplane.modes import dump_files
from svcctl.lazydc import dataclass, field
from svcctl.model import JSON
from svcctl.sources.base import NodeDumps

REDACTED = "REDACTED"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NEVER_KINDS = frozenset({"Secret", "ConfigMap"})
# the order kubectl prints them in, so bundles diff well
KIND_ORDER = {"Service": 0, "EndpointSlice": 1, "Endpoints": 2, "Pod": 3, "Node": 4, "Event": 5, "Namespace": 6,
              "NetworkPolicy": 7}


def _scrub_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    for e in c.get("env") or []:
        if not isinstance(e, dict):
            continue
        if "value" in e:
            e["value"] = REDACTED
        vf = e.get("valueFrom")
        if isinstance(vf, dict):
            # keep which Secret/ConfigMap key is referenced (useful, not secret); there is no value to drop
            for ref in ("secretKeyRef", "configMapKeyRef"):
                r = vf.get(ref)
                if isinstance(r, dict):
                    vf[ref] = {k: r[k] for k in ("name", "key", "optional") if k in r}


def sanitize(obj: JSON) -> JSON:
    """A scrubbed deep copy: no managedFields, no last-applied annotation, no env values in Pod specs."""
    o = copy.deepcopy(obj)
    meta = o.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        ann = meta.get("annotations")
        if isinstance(ann, dict):
            ann.pop(LAST_APPLIED, None)
            if not ann:
                meta.pop("annotations")
    if o.get("kind") == "Pod":
        spec = o.get("spec")
        if isinstance(spec, dict):
            for key in ("containers", "initContainers", "ephemeralContainers"):
                for c in spec.get(key) or []:
                    _scrub_container(c)
    return o


@dataclass
class Bundle:
    """Objects and node dumps to write; add() de-duplicates by kind/namespace/name."""

    objects: dict[tuple[str, str, str], JSON] = field(default_factory=dict)
    dumps: dict[str, NodeDumps] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # kinds read in full for their scope, written as typed lists of their own so that "read, and there are
    # none" stays distinguishable from "not collected" (NetworkPolicy, Namespace)
    typed: set[str] = field(default_factory=set)

    def add(self, raw: JSON) -> None:
        kind = str(raw.get("kind") or "")
        if not kind or kind in NEVER_KINDS:
            return
        meta = raw.get("metadata") or {}
        key = (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        self.objects.setdefault(key, sanitize(raw))

    def add_all(self, raws: Iterable[JSON]) -> None:
        for r in raws:
            self.add(r)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind, _, _ in self.objects:
            out[kind] = out.get(kind, 0) + 1
        return out

    def items(self) -> list[JSON]:
        keys = sorted(self.objects, key=lambda k: (KIND_ORDER.get(k[0], 99), k[0], k[1], k[2]))
        return [self.objects[k] for k in keys]


def cluster_yaml(items: list[JSON]) -> bytes:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    doc = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
    header = "# Written by `svcctl collect`; read it back with `svcctl --snapshot <bundle>`.\n"
    return header.encode() + yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False).encode()


TYPED_API = {"NetworkPolicy": "networking.k8s.io/v1", "Namespace": "v1"}
TYPED_FILES = {"NetworkPolicy": "networkpolicies.yaml", "Namespace": "namespaces.yaml"}


def typed_list_yaml(kind: str, items: list[JSON]) -> bytes:
    """`kind: <Kind>List`, as `kubectl get <kind> -o yaml` writes it: an empty one still says "none"."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    doc = {"apiVersion": TYPED_API.get(kind, "v1"), "kind": f"{kind}List", "metadata": {"resourceVersion": ""},
           "items": items}
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False).encode()


def _member(tf: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    info.uname = info.gname = "svcctl"
    tf.addfile(info, io.BytesIO(data))


def _safe_node_dir(node: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in node).strip(".") or "node"
    return safe


def write_bundle(path: str | Path, bundle: Bundle) -> int:
    """Write the tarball atomically (temp file + rename); returns its size in bytes."""
    p = Path(path)
    now = time.time()
    parent = p.parent if str(p.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".svcctl-collect-", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tf:
            _member(tf, "cluster.yaml", cluster_yaml([o for o in bundle.items()
                                                      if o.get("kind") not in bundle.typed]), now)
            for kind in sorted(bundle.typed):
                items = [o for o in bundle.items() if o.get("kind") == kind]
                _member(tf, TYPED_FILES.get(kind, f"{kind.lower()}s.yaml"), typed_list_yaml(kind, items), now)
            for node in sorted(bundle.dumps):
                d = bundle.dumps[node]
                for key, text in sorted(d.texts.items()):
                    fname = dump_files().get(key)
                    if fname:
                        _member(tf, f"nodes/{_safe_node_dir(node)}/{fname}", text.encode(), now)
            if bundle.notes:
                _member(tf, "svcctl-collect.txt", ("\n".join(bundle.notes) + "\n").encode(), now)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p.stat().st_size

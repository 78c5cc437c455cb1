"""What the kube-proxy replacements (Cilium, Calico eBPF, kube-router) share: pasted agent output and shares.

Agent output usually reaches svcctl pasted from a terminal, an issue or a chat: prompt lines
(`root@node:/home/cilium# cilium-dbg service list`, `$ kubectl -n kube-system exec ds/cilium -- ...`),
kubectl's own chatter (`Defaulted container "cilium-agent" out of: ...`), ANSI colours and elisions
(`...`, `[snip]`). `clean_lines` keeps the command each block came from (it names the block's kind) and turns
every elision into a note, so a parser reads as far as the text goes and says what it could not see.
"""

from __future__ import annotations

import re
from fractions import Fraction

from svcctl.dataplane.model import Backend, ServiceEntry
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern

ANSI = LazyPattern(r"\x1b\[[0-9;?]*[A-Za-z]")
# a shell prompt (user@host:dir$ / # / bare $), optionally followed by the command typed there
PROMPT = LazyPattern(r"^(?:\(?[\w.-]+\)?\s)?(?:[\w.-]+@[\w.-]+(?::[^\s$#]*)?\s?[$#]|[$#%>])\s+(?P<cmd>\S.*)$")
KUBECTL_EXEC = LazyPattern(r"^(?:kubectl|oc|k)\s.*?\sexec\b.*?\s--\s+(?P<cmd>\S.*)$")
ELISION = LazyPattern(r"^\s*(?:\.{3,}|…|\[\.\.\.\]|\[snip(?:ped)?\]|<snip(?:ped)?>|\(truncated\)|\(\d+ more\b.*\)|"
                     r"--More--|# \.\.\..*)\s*$", re.I)
KUBECTL_NOISE = LazyPattern(r"^(?:Defaulted container |Unable to use a TTY|If you don't see a command prompt|"
                           r"command terminated with exit code|error: unable to upgrade connection)")
ACTIVE, TERMINATING, QUARANTINED, MAINTENANCE = "active", "terminating", "quarantined", "maintenance"
STATES = (ACTIVE, TERMINATING, "terminating-not-serving", QUARANTINED, MAINTENANCE)


@dataclass
class Block:
    """Consecutive lines of one command's output; `command` is the prompt line above them, when pasted."""

    command: str = ""
    lines: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, text)


@dataclass
class Cleaned:
    blocks: list[Block]
    notes: list[str]


def clean_lines(text: str, source: str) -> Cleaned:
    """Split pasted text into blocks at prompt lines; drop terminal noise; note every elision."""
    blocks: list[Block] = [Block()]
    notes: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = ANSI.sub("", raw).rstrip("\r")
        if not line.strip():
            blocks[-1].lines.append((n, ""))
            continue
        if ELISION.match(line):
            notes.append(f"{source}:{n}: the pasted output was cut here ({line.strip()!r}); "
                         "entries hidden there are not known")
            continue
        if KUBECTL_NOISE.match(line.strip()):
            continue
        m = PROMPT.match(line) if not line.startswith((" ", "\t")) else None
        cmd = m.group("cmd").strip() if m else None
        if cmd is None:
            k = KUBECTL_EXEC.match(line.strip())
            cmd = k.group("cmd").strip() if k else None
        if cmd is not None:
            k = KUBECTL_EXEC.match(cmd)
            if k:
                cmd = k.group("cmd").strip()
            blocks.append(Block(command=cmd))
            continue
        blocks[-1].lines.append((n, line))
    return Cleaned([b for b in blocks if any(t.strip() for _, t in b.lines) or b.command], notes)


def assign_shares(entry: ServiceEntry, algorithm: str | None = None) -> None:
    """New connections go to active backends only, evenly (random, or Maglev with equal weights); with no
    active backend, terminating ones are used as a fallback (as kube-proxy does); quarantined and maintenance
    backends get none. Unequal weights make the share depend on the Maglev table: unknown (None)."""
    active = [b for b in entry.backends if b.effective_state == ACTIVE]
    pool = active or [b for b in entry.backends if b.effective_state == TERMINATING]
    if pool and not active:
        entry.notes.append("no active backend: terminating backends take new connections as a fallback")
    weights = {b.weight for b in pool if b.weight is not None}
    uneven = len(weights) > 1 or (weights and 0 in weights)
    for b in entry.backends:
        if b not in pool:
            b.probability = Fraction(0)
        elif uneven:
            b.probability = None
        else:
            b.probability = Fraction(1, len(pool))
    if uneven and pool:
        entry.notes.append("backend weights differ: with Maglev each backend's share follows its weight "
                           "(weight / total), with random selection weights are ignored")
    if algorithm:
        entry.scheduler = algorithm


def split_addr(text: str) -> tuple[str, int, str, bool] | None:
    """`10.0.0.1:80`, `10.0.0.1:80/TCP`, `[fd00::1]:80/UDP/i` → (ip, port, protocol or "ANY", internal scope)."""
    m = re.fullmatch(r"(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<v4>[0-9.]+)):(?P<port>\d{1,5})"
                     r"(?:/(?P<proto>TCP|UDP|SCTP|ANY|NONE))?(?P<scope>/i)?", text.strip())
    if not m:
        return None
    port = int(m["port"])
    if port > 65535:
        return None
    proto = m["proto"] or "ANY"
    return (m["v6"] or m["v4"], port, "ANY" if proto == "NONE" else proto, bool(m["scope"]))


def backend(ip: str, port: int, state: str = ACTIVE, weight: int | None = None, node: str = "") -> Backend:
    return Backend(ip=ip, port=port, state=state, weight=weight, node=node)


def misplaced(texts: dict[str, str], origins: dict[str, str]) -> None:
    """A replacement's listing given as a kube-proxy dump (`--iptables-save cilium.txt`): say which flag reads
    it, instead of a parse error about the wrong format."""
    from svcctl.errors import InputError

    # the shapes cilium.looks_like_cilium / calico.looks_like_calico_nat test (this module sits below them)
    def looks_like_cilium(text: str) -> bool:
        head = text[:20000]
        return bool(re.search(r"^\s*(?:ID\s+)?Frontend\s+Service Type\s+Backend\s*$", head, re.M)
                    or re.search(r"^\s*SERVICE ADDRESS\s+BACKEND ADDRESS", head, re.M)
                    or ('"frontend-address"' in head and '"backend-addresses"' in head))

    def looks_like_calico_nat(text: str) -> bool:
        return bool(re.search(r"^\S+ port \d+ proto \d+ id \d+ count \d+ local \d+", text[:20000], re.M))

    flags = {"iptables": "--iptables-save", "ip6tables": "--ip6tables-save", "ipvs": "--ipvsadm", "nftables": "--nft"}
    for key, flag in flags.items():
        text = texts.get(key) or ""
        if not text or text.isspace():  # not `text.strip()`: a copy of a whole dump
            continue
        if looks_like_cilium(text):
            raise InputError(f"this is Cilium output, not what {flag} reads", source=origins.get(key, key),
                             hint="give it with --cilium FILE")
        if looks_like_calico_nat(text):
            raise InputError(f"this is `calico-node -bpf nat dump` output, not what {flag} reads",
                             source=origins.get(key, key), hint="give it with --calico-nat FILE")

"""A round of targeted read commands as one pods/exec (`sh -c SCRIPT`) instead of one exec per command.

Every exec costs svcctl a TCP connection, a TLS handshake and a websocket upgrade (≈ 1.5–1.7 ms of its CPU,
most of it the handshake), and the API server and the kubelet a stream each; a node's targeted read is a
round of ≈ 11 commands. kube-proxy's image (registry.k8s.io/build-image/distroless-iptables: it stages dash
as /bin/sh for iptables-wrapper) has a shell, so the round goes as one exec of `sh -c SCRIPT`.

What keeps this read-only and inside the allow-list:
- SCRIPT is only ever built here, by `compose`, from argvs that each pass the targeted allow-list
  (`sources/targeted.allowed`; anything else raises NotAllowed before anything is sent), every word
  shlex-quoted, one command per line behind a fixed prelude (the nonce and the framing function `f`). No
  pipes, redirections, variables or substitutions of svcctl's choosing reach the shell: there is no way to
  send a free-form script. `decode` reads an exec's argv back into its commands only when it is exactly what
  `compose` builds from them (tests/cli/test_readonly.py checks every exec with it).
- Each command's stdout and stderr are framed on their own channel by markers holding a nonce drawn for that
  exec (`secrets.token_hex(16)`): `N I b` before, `\\nN I e STATUS` after. A rule's text (a comment, say)
  was written before the nonce was drawn, so it cannot end a frame early or forge one; an answer whose
  frames are not exactly the ones sent is not used.
- The commands run one after another in the shell, each with stdin from /dev/null; each one's exit status
  is in its frame, so `-C`'s "no such rule" (1) is read as it is without a shell. A round too long for one
  request line (MAX_ENCODED) is split into several execs, run in parallel like a round's single commands.

No shell in the container (the exec fails as "not found" / "executable file not found", or exits 126 / 127
without a frame): that node's rounds go one exec per command, as before, remembered for the node, and for the
rest of the fleet once FLEET_AFTER nodes have lacked it and none had it; `-v` says so.
"""

from __future__ import annotations

import secrets
import shlex
import threading
from collections.abc import Callable
from urllib.parse import quote_plus

from svcctl.errors import ClusterError, ForbiddenError
from svcctl.lazydc import dataclass

Result = tuple[str, str, int]
Exec = Callable[[list[str]], Result]

# the framing function: begin markers on both channels, the command with stdin from /dev/null, end markers
# carrying its exit status (each end marker starts on a line of its own, so the output's last byte is kept)
PRELUDE = ('f() { n=$1; shift; printf \'%s %s b\\n\' "$N" "$n"; printf \'%s %s b\\n\' "$N" "$n" >&2; '
           '"$@" </dev/null; s=$?; printf \'\\n%s %s e %s\\n\' "$N" "$n" "$s"; '
           'printf \'\\n%s %s e %s\\n\' "$N" "$n" "$s" >&2; }')
# one exec's script, URL-encoded as the `command` query parameter: under 8 kB request lines (the smallest
# default of the proxies and load balancers put in front of API servers) and far under Linux's 128 kB per
# argument; a longer round is split into several execs
MAX_ENCODED = 6000
FLEET_AFTER = 3  # nodes without a shell (and none with one) before the rest of the fleet is not tried
_NONCE_LEN = 32


def _allowed(argv: list[str]) -> bool:
    from svcctl.sources.targeted import allowed

    return bool(argv) and allowed(argv)


class NotAllowed(Exception):
    """A command outside the targeted shapes: refused before anything is sent."""


def compose(argvs: list[list[str]], nonce: str) -> list[str]:
    """`["sh", "-c", SCRIPT]` running `argvs` in order, each framed; every argv must pass the allow-list."""
    if len(nonce) != _NONCE_LEN or not all(c in "0123456789abcdef" for c in nonce):
        raise NotAllowed("the nonce must be 32 lowercase hex digits")
    lines = [f"N={nonce}", PRELUDE]
    for i, argv in enumerate(argvs):
        if not _allowed(argv):
            raise NotAllowed(f"not a targeted read command: {argv!r}")
        lines.append(f"f {i} " + " ".join(shlex.quote(w) for w in argv))
    return ["sh", "-c", "\n".join(lines) + "\n"]


@dataclass(frozen=True)
class Decoded:
    nonce: str
    commands: list[list[str]]


def decode(argv: list[str]) -> Decoded | None:
    """The commands of a batch exec, or None when `argv` is not exactly what `compose` builds from commands
    that each pass the allow-list (a free-form script never decodes)."""
    if len(argv) != 3 or argv[:2] != ["sh", "-c"]:
        return None
    lines = argv[2].split("\n")
    if len(lines) < 3 or not lines[0].startswith("N=") or lines[1] != PRELUDE or lines[-1] != "":
        return None
    nonce = lines[0][2:]
    commands: list[list[str]] = []
    for i, line in enumerate(lines[2:-1]):
        try:
            words = shlex.split(line)
        except ValueError:
            return None
        if words[:2] != ["f", str(i)]:
            return None
        commands.append(words[2:])
    try:
        if compose(commands, nonce) != argv:
            return None
    except NotAllowed:
        return None
    return Decoded(nonce, commands)


def allowed_batch(argv: list[str]) -> bool:
    """Whether `argv` is a batch of allow-listed commands, exactly as composed here."""
    return decode(argv) is not None


def unframe(text: str, nonce: str, n: int) -> list[tuple[str, int]] | None:
    """One channel of a batch answer -> each command's text and exit status, or None when its frames are not
    exactly the `n` that were sent (in order, nothing outside them)."""
    out: list[tuple[str, int]] = []
    pos = 0
    for i in range(n):
        head = f"{nonce} {i} b\n"
        if not text.startswith(head, pos):
            return None
        pos += len(head)
        tail = f"\n{nonce} {i} e "
        end = text.find(tail, pos)
        if end < 0:
            return None
        nl = text.find("\n", end + len(tail))
        status = text[end + len(tail):nl] if nl >= 0 else ""
        if not status.isdecimal():
            return None
        out.append((text[pos:end], int(status)))
        pos = nl + 1
    return out if pos == len(text) else None


def chunks(argvs: list[list[str]], limit: int = MAX_ENCODED) -> list[list[list[str]]]:
    """The round split so that each exec's script stays under `limit` bytes URL-encoded (at least one command
    per exec)."""
    base = len(quote_plus("\n".join([f"N={'0' * _NONCE_LEN}", PRELUDE, ""])))
    out: list[list[list[str]]] = []
    size = base
    for i, argv in enumerate(argvs):
        one = len(quote_plus(f"f {i} " + " ".join(shlex.quote(w) for w in argv) + "\n"))
        if out and out[-1] and size + one <= limit:
            out[-1].append(argv)
            size += one
        else:
            out.append([argv])
            size = base + one
    return out


class Memo:
    """Which nodes have no shell, for the run: a node found without one is not asked again, and once
    FLEET_AFTER nodes lacked one while none had one, the other nodes are not tried either."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.without: set[str] = set()
        self.with_shell = 0
        self.fleet_said = False

    def skip(self, node: str) -> bool:
        with self._lock:
            return node in self.without or (len(self.without) >= FLEET_AFTER and self.with_shell == 0)

    def record(self, node: str, has: bool, debug: Callable[[str], None] | None) -> None:
        with self._lock:
            if has:
                self.with_shell += 1
                return
            self.without.add(node)
            say = len(self.without) >= FLEET_AFTER and self.with_shell == 0 and not self.fleet_said
            self.fleet_said = self.fleet_said or say
        if say and debug is not None:
            debug(f"{FLEET_AFTER} nodes have no sh in their kube-proxy container and none had one: one exec per "
                  "command on the other nodes too")


@dataclass
class Answer:
    results: list[Result]
    execs: int
    bytes_in: int




def _says_no_shell(text: str) -> bool:
    """The runtime's words for a missing `sh` (containerd / runc: `exec: "sh": executable file not found in
    $PATH`; a shell-less PATH lookup: `sh: not found`, `no such file or directory`)."""
    t = text.lower()
    return "executable file not found" in t or (
        any(w in t for w in ('"sh"', "`sh`", "'sh'", "sh:")) and ("not found" in t or "no such file" in t))


class Batched:
    """An Exec for one node that can also run a round as batch execs (`run_many`); `__call__` is one command
    as before (the whole reads, a one-command round)."""

    def __init__(self, execute: Exec, node: str, debug: Callable[[str], None] | None = None,
                 memo: Memo | None = None) -> None:
        self.execute = execute
        self.node = node
        self.debug = debug
        self.memo = memo or Memo()  # a fleet read shares one across its nodes
        self.unusable = False  # an answer that could not be unframed: this node's rounds go one by one

    def __call__(self, argv: list[str]) -> Result:
        return self.execute(argv)

    def run_many(self, argvs: list[list[str]]) -> Answer | None:
        """The round's results in order through batch execs, or None: run them one exec per command (no
        shell in the container, or an answer that is not the frames sent)."""
        if self.unusable or self.memo.skip(self.node):
            return None
        parts = chunks(argvs)
        if len(parts) == 1:
            answers = [self._one(parts[0])]
        else:  # several execs of the round in parallel, as many at once as a round's single commands
            from svcctl.sources.targeted_base import WORKERS, _pool

            answers = []
            for i in range(0, len(parts), WORKERS):
                futures = [_pool().submit(self._one, p) for p in parts[i:i + WORKERS]]
                answers += [f.result() for f in futures]
        if any(a is None for a in answers):
            return None
        got = [a for a in answers if a is not None]
        return Answer([r for a in got for r in a.results], len(got), sum(a.bytes_in for a in got))

    def _one(self, argvs: list[list[str]]) -> Answer | None:
        nonce = secrets.token_hex(_NONCE_LEN // 2)
        argv = compose(argvs, nonce)
        try:
            out, err, rc = self.execute(argv)
        except ForbiddenError:
            raise
        except ClusterError as e:
            said = e.message.replace(argv[2], "")
            if _says_no_shell(said):
                self._no_shell(said.strip()[-200:])
                return None
            raise
        outs, errs = unframe(out, nonce, len(argvs)), unframe(err, nonce, len(argvs))
        if outs is not None and errs is not None and rc == 0 and all(a[1] == b[1] for a, b in zip(outs, errs, strict=True)):
            self.memo.record(self.node, True, None)
            return Answer([(o, e, s) for (o, s), (e, _) in zip(outs, errs, strict=True)], 1, len(out) + len(err))
        framed = out.startswith(f"{nonce} 0 b\n") or err.startswith(f"{nonce} 0 b\n")
        if not framed and (rc in (126, 127) or _says_no_shell(err)):
            self._no_shell(f"exit {rc}: {(err.strip().splitlines() or [''])[-1][:200]}")
            return None
        self.unusable = True
        if self.debug is not None:
            self.debug(f"node {self.node}: the batched answer (sh -c, exit {rc}) is not the frames sent: one exec "
                       "per command on this node")
        return None

    def _no_shell(self, why: str) -> None:
        if self.debug is not None:
            self.debug(f"node {self.node}: no sh in its kube-proxy container ({why}): one exec per command on "
                       "this node")
        self.memo.record(self.node, False, self.debug)

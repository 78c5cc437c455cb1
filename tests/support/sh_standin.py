"""The test API server's stand-in for a kube-proxy container's /bin/sh, for svcctl's batched exec.

It understands exactly the script shape svcctl sends (svcctl/sources/batch.py): `N=NONCE`, the framing function
`f` on one line, then one `f I WORD…` line per command. Each command's words (shell-unquoted with shlex, as sh
would) are run through the server's own exec handler, one after another, and framed as `f` frames them: on
stdout `N I b\\n`, the command's stdout, `\\nN I e STATUS\\n`, the same on stderr. Any other script is a syntax
error (exit 2), as a shell would refuse what it cannot parse. tests/sources/test_batch_netns.py runs the same
scripts with the real sh and shows the answers are the same.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

Result = tuple[str, str, int]
_NONCE = re.compile(r"N=([0-9a-f]{32})")


def run_sh(script: str, run: Callable[[list[str]], Result]) -> Result:
    lines = script.split("\n")
    m = _NONCE.fullmatch(lines[0]) if lines else None
    if m is None or len(lines) < 3 or not lines[1].startswith("f() {") or lines[-1] != "":
        return "", "sh: 1: Syntax error: not a script this stand-in knows\n", 2
    nonce = m.group(1)
    out: list[str] = []
    err: list[str] = []
    for line in lines[2:-1]:
        try:
            words = shlex.split(line)
        except ValueError:
            return "".join(out), "".join(err) + "sh: Syntax error: Unterminated quoted string\n", 2
        if len(words) < 3 or words[0] != "f" or not words[1].isdecimal():
            return "".join(out), "".join(err) + f"sh: {words[:1]}: not found\n", 127
        i, argv = words[1], words[2:]
        o, e, rc = run(argv)
        out += [f"{nonce} {i} b\n", o, f"\n{nonce} {i} e {rc}\n"]
        err += [f"{nonce} {i} b\n", e, f"\n{nonce} {i} e {rc}\n"]
    return "".join(out), "".join(err), 0
